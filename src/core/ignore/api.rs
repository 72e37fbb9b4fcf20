//! Ignore rules for intent known in full: API paths in the syntax the comparison prints
//! (`spec.replicas`, `spec.template.spec.containers[istio-proxy]`, `metadata.labels[team]`,
//! `rules[0].verbs`), optionally for the Terraform addresses a pattern matches. They stand in
//! for what lives only in HCL and never reaches the state (`lifecycle { ignore_changes }`, the
//! provider's `ignore_annotations`).
//!
//! A path whose first field is the first field of a changed path applies from the object's
//! root; any other applies wherever its first field occurs (`replicas`, `containers[x]`,
//! `env[BUILD_ID]`), so the spec-hash flow's shorter paths keep working. A path ignores what
//! it names and everything below it.

use crate::core::explain::diff::{Segment, element_label};

use super::path::{Path, PathError, Selector, Step};

/// One API path rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRule {
    path: Path,
}

impl ApiRule {
    pub fn parse(text: &str) -> Result<ApiRule, PathError> {
        Path::parse(text.trim()).map(|path| ApiRule { path })
    }

    pub fn from_path(path: Path) -> ApiRule {
        ApiRule { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the change at `segments` is what this rule names or lies below it.
    pub fn matches(&self, segments: &[Segment]) -> bool {
        let steps = self.path.steps();
        let Some(Step::Field(first)) = steps.first() else {
            return false;
        };
        let rooted = matches!(segments.first(), Some(Segment::Field(f)) if f == first);
        if rooted {
            return prefix_matches(steps, segments);
        }
        (0..segments.len()).any(|i| {
            matches!(&segments[i], Segment::Field(f) if f == first)
                && prefix_matches(steps, &segments[i..])
        })
    }
}

impl std::fmt::Display for ApiRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.path.fmt(f)
    }
}

fn prefix_matches(steps: &[Step], segments: &[Segment]) -> bool {
    steps.len() <= segments.len()
        && steps
            .iter()
            .zip(segments)
            .all(|(step, seg)| match (step, seg) {
                // A dotted path (`data.replicas`, as `ignore_fields` and `computed_fields` write
                // one) names a map's key as a field.
                (Step::Field(name), Segment::Field(f) | Segment::MapKey(f)) => name == f,
                (
                    Step::Select(Selector::All),
                    Segment::MapKey(_) | Segment::Element(_) | Segment::Index(_),
                ) => true,
                (Step::Select(Selector::Key(k)), Segment::MapKey(key)) => k == key,
                (Step::Select(Selector::Key(k)), Segment::Index(i)) => {
                    k.parse::<usize>().ok() == Some(*i)
                }
                (Step::Select(Selector::Key(k)), Segment::Element(key)) => {
                    let label =
                        element_label(&serde_json::Value::Object(key.iter().cloned().collect()));
                    label.as_deref() == Some(k.as_str())
                        || key.iter().any(|(_, v)| v.as_str() == Some(k.as_str()))
                }
                _ => false,
            })
}

/// Rules for the instances whose Terraform address a pattern matches (`*` any characters,
/// `?` one): `module.app.*  spec.replicas`.
#[derive(Debug, Clone)]
pub struct AddressRule {
    pattern: String,
    matcher: wildmatch::WildMatch,
    pub rule: ApiRule,
}

#[derive(Debug, thiserror::Error)]
pub enum AddressRuleError {
    #[error("`{0}` is not `ADDRESS PATH` (an address pattern, a space, an API path)")]
    Shape(String),
    #[error("`{text}` does not end in an API path")]
    Path {
        text: String,
        #[source]
        source: PathError,
    },
    #[error("{file}: line {line}")]
    Line {
        file: String,
        line: usize,
        #[source]
        source: Box<AddressRuleError>,
    },
}

impl AddressRule {
    /// `ADDRESS PATH`, or a path alone for every address.
    pub fn parse(text: &str) -> Result<AddressRule, AddressRuleError> {
        let text = text.trim();
        let (pattern, path) = match text.rsplit_once(char::is_whitespace) {
            Some((pattern, path)) if !pattern.trim().is_empty() => (pattern.trim(), path),
            _ if !text.is_empty() => ("*", text),
            _ => return Err(AddressRuleError::Shape(text.to_owned())),
        };
        let rule = ApiRule::parse(path).map_err(|source| AddressRuleError::Path {
            text: text.to_owned(),
            source,
        })?;
        Ok(AddressRule {
            pattern: pattern.to_owned(),
            matcher: wildmatch::WildMatch::new(pattern),
            rule,
        })
    }

    /// The rules of a file: one `ADDRESS PATH` (or `PATH`) per line; blank lines and lines
    /// starting with `#` are skipped.
    pub fn parse_file(file: &str, text: &str) -> Result<Vec<AddressRule>, AddressRuleError> {
        text.lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .map(|(line, l)| {
                AddressRule::parse(l).map_err(|source| AddressRuleError::Line {
                    file: file.to_owned(),
                    line,
                    source: Box::new(source),
                })
            })
            .collect()
    }

    pub fn applies_to(&self, address: &str) -> bool {
        self.matcher.matches(address)
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// This rule's path as a fingerprint path for the spec-hash flow of a workload, Service
    /// or ConfigMap (`spec.template.spec.containers[web].image` → `containers[web].image`,
    /// `spec.replicas` → `replicas`), where it has one.
    pub fn fingerprint_path(&self) -> Option<String> {
        let text = self.rule.path.to_string();
        for prefix in ["spec.template.spec.", "spec.template.metadata.", "spec."] {
            if let Some(rest) = text.strip_prefix(prefix) {
                return Some(rest.to_owned());
            }
        }
        (!text.starts_with("metadata") && !text.starts_with("spec")).then_some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &[Segment]) -> Vec<Segment> {
        p.to_vec()
    }

    fn field(f: &str) -> Segment {
        Segment::Field(f.into())
    }

    #[test]
    fn rooted_and_anywhere_paths() {
        let replicas = path(&[field("spec"), field("replicas")]);
        assert!(ApiRule::parse("spec.replicas").unwrap().matches(&replicas));
        assert!(ApiRule::parse("replicas").unwrap().matches(&replicas));
        assert!(!ApiRule::parse("spec.template").unwrap().matches(&replicas));
        let sidecar = path(&[
            field("spec"),
            field("template"),
            field("spec"),
            field("containers"),
            Segment::Element(vec![("name".into(), json!("istio-proxy"))]),
            field("image"),
        ]);
        assert!(
            ApiRule::parse("containers[istio-proxy]")
                .unwrap()
                .matches(&sidecar)
        );
        assert!(
            ApiRule::parse("spec.template.spec.containers[*]")
                .unwrap()
                .matches(&sidecar)
        );
        assert!(!ApiRule::parse("containers[web]").unwrap().matches(&sidecar));
        let label = path(&[
            field("metadata"),
            field("labels"),
            Segment::MapKey("team".into()),
        ]);
        assert!(
            ApiRule::parse("metadata.labels[team]")
                .unwrap()
                .matches(&label)
        );
        assert!(ApiRule::parse("metadata.labels").unwrap().matches(&label));
        assert!(
            !ApiRule::parse("metadata.labels[other]")
                .unwrap()
                .matches(&label)
        );
        let verbs = path(&[field("rules"), Segment::Index(0), field("verbs")]);
        assert!(ApiRule::parse("rules[0].verbs").unwrap().matches(&verbs));
        assert!(!ApiRule::parse("rules[1]").unwrap().matches(&verbs));
    }

    #[test]
    fn address_patterns_and_files() {
        let r = AddressRule::parse(r#"module.app.kubernetes_deployment_v1.web["*"] spec.replicas"#)
            .unwrap();
        assert!(r.applies_to(r#"module.app.kubernetes_deployment_v1.web["blue"]"#));
        assert!(!r.applies_to("kubernetes_deployment_v1.web"));
        let any = AddressRule::parse("metadata.annotations[x]").unwrap();
        assert_eq!(any.pattern(), "*");
        assert!(any.applies_to("anything"));
        let rules = AddressRule::parse_file(
            "f",
            "# c\n\n* spec.replicas\nkubernetes_service_v1.* spec.ports\n",
        )
        .unwrap();
        assert_eq!(rules.len(), 2);
        let bad = AddressRule::parse_file("f", "ok spec\nx spec..y\n").unwrap_err();
        assert_eq!(bad.to_string(), "f: line 2");
        assert!(std::error::Error::source(&bad).is_some());
        assert_eq!(
            AddressRule::parse("* spec.template.spec.containers[web].image")
                .unwrap()
                .fingerprint_path()
                .as_deref(),
            Some("containers[web].image")
        );
        assert_eq!(
            AddressRule::parse("* metadata.labels[a]")
                .unwrap()
                .fingerprint_path(),
            None
        );
    }
}
