//! Ignore rules: parts of a fingerprint left out before hashing, so that what a
//! HorizontalPodAutoscaler, a service mesh or a chosen process changes is not drift.
//!
//! A rule is a path in the drift diff's syntax. It comes from the object's
//! `tfdrift.jin.dev/ignore` annotation, from the flags every object gets
//! (`--ignore-containers`, `--ignore-paths`), or from an HPA targeting the object
//! (`replicas`). `tfdrift hash` and the operator apply the same rules the same way, so the
//! spec-hash and the live hash agree.

pub mod api;
mod path;
pub mod scaled;
pub mod schema;

use serde_json::Value;

pub use path::{Path, PathError, Selector, Step};
use schema::Anchor;

/// Most rules read from one annotation: a guard against hostile input, far above use.
pub const MAX_RULES: usize = 64;
/// Longest note about invalid rules.
const NOTE_LIMIT: usize = 800;

/// A valid rule for one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    path: Path,
    anchor: Anchor,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("`{text}` is not a path")]
    Malformed {
        text: String,
        #[source]
        source: PathError,
    },
    #[error("`{text}` names nothing in a {kind}'s fingerprint: {why}")]
    Unknown {
        text: String,
        kind: String,
        why: String,
    },
    #[error("{kind} is not a supported kind")]
    Kind { kind: String },
    #[error("more than {MAX_RULES} rules: {text} and the rest are not read")]
    TooMany { text: String },
}

impl Rule {
    /// Parses `text` as a rule for `kind`.
    pub fn parse(kind: &str, text: &str) -> Result<Rule, RuleError> {
        let path = Path::parse(text).map_err(|source| RuleError::Malformed {
            text: text.to_owned(),
            source,
        })?;
        Rule::new(kind, path)
    }

    fn new(kind: &str, path: Path) -> Result<Rule, RuleError> {
        let root = schema::of(kind).ok_or_else(|| RuleError::Kind {
            kind: kind.to_owned(),
        })?;
        let anchor = schema::locate(root, path.steps()).map_err(|why| RuleError::Unknown {
            text: path.to_string(),
            kind: kind.to_owned(),
            why,
        })?;
        Ok(Rule { path, anchor })
    }

    /// `replicas`, for a kind that has it: what an HPA owns.
    pub fn replicas(kind: &str) -> Option<Rule> {
        Rule::new(kind, Path::field("replicas")).ok()
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Cuts what the rule names out of `spec`, a canonical fingerprint (pod template
    /// nested, as hashed). Returns whether anything changed.
    pub fn apply(&self, spec: &mut Value) -> bool {
        let steps = self.path.steps();
        match self.anchor {
            Anchor::Anywhere => path::strip_anywhere(spec, steps),
            Anchor::Top => {
                // Paths read the pod template's fields as top-level ones, as the diff
                // prints them.
                let Some(Step::Field(first)) = steps.first() else {
                    return false;
                };
                let in_template = spec.get(first).is_none()
                    && spec.get("template").is_some_and(|t| t.get(first).is_some());
                if !in_template {
                    return path::strip(spec, steps);
                }
                let Some(template) = spec.get_mut("template") else {
                    return false;
                };
                let changed = path::strip(template, steps);
                if template.as_object().is_some_and(|t| t.is_empty())
                    && let Some(map) = spec.as_object_mut()
                {
                    map.remove("template");
                }
                changed
            }
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.path.fmt(f)
    }
}

/// The rules of a comma-separated list (an annotation's value): the valid ones, and why
/// each of the others is not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub rules: Vec<Rule>,
    pub invalid: Vec<RuleError>,
}

impl Parsed {
    /// One line naming the invalid rules and why, for an event, an annotation or an
    /// error; bounded (an event's note holds 1 KiB), the rest counted.
    pub fn invalid_note(&self) -> Option<String> {
        if self.invalid.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .invalid
            .iter()
            .map(|e| crate::core::text::chain(e))
            .collect();
        Some(crate::core::text::join_bounded(&parts, NOTE_LIMIT))
    }
}

/// Parses `text`, a comma-separated list of paths, for `kind`. Blank entries are skipped;
/// past [`MAX_RULES`] the rest is reported, not read.
pub fn parse_list(kind: &str, text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let entries = text.split(',').map(str::trim).filter(|e| !e.is_empty());
    for (i, entry) in entries.enumerate() {
        if i == MAX_RULES {
            parsed.invalid.push(RuleError::TooMany {
                text: crate::core::text::quote(entry),
            });
            break;
        }
        match Rule::parse(kind, entry) {
            Ok(rule) if !parsed.rules.contains(&rule) => parsed.rules.push(rule),
            Ok(_) => {}
            Err(error) => parsed.invalid.push(error),
        }
    }
    parsed
}

/// Applies `rules` to `spec` in order; returns the rules that changed it, as the
/// comma-separated list the operator's `tfdrift.jin.dev/ignored` annotation shows.
pub fn apply<'a>(spec: &mut Value, rules: impl IntoIterator<Item = &'a Rule>) -> Option<String> {
    let applied: Vec<String> = rules
        .into_iter()
        .filter(|rule| rule.apply(spec))
        .map(ToString::to_string)
        .collect();
    (!applied.is_empty()).then(|| applied.join(","))
}

/// Rules every object gets: from `--ignore-containers`, `--ignore-paths` and
/// `--ignore-hpa-replicas`, shared by `tfdrift run` and `tfdrift hash`.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    containers: Vec<String>,
    paths: Vec<Path>,
    /// Ignore `replicas` of a Deployment or StatefulSet an HPA targets.
    pub hpa_replicas: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DefaultsError {
    #[error("--ignore-containers: {name:?} is not a container name")]
    Container { name: String },
    #[error("--ignore-paths")]
    Path(#[source] RuleError),
    #[error("--ignore-paths: `{path}` names nothing in the fingerprint of any kind")]
    NoKind { path: String },
}

impl Defaults {
    /// Checks the flags: every container name usable in a path, every path valid for at
    /// least one kind.
    pub fn new(
        containers: &[String],
        paths: &[String],
        hpa_replicas: bool,
    ) -> Result<Self, DefaultsError> {
        let mut defaults = Defaults {
            hpa_replicas,
            ..Defaults::default()
        };
        for name in containers
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
        {
            if name.contains(['[', ']', ',']) || name.chars().any(char::is_whitespace) {
                return Err(DefaultsError::Container {
                    name: name.to_owned(),
                });
            }
            defaults.containers.push(name.to_owned());
        }
        for text in paths.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let path = Path::parse(text).map_err(|source| {
                DefaultsError::Path(RuleError::Malformed {
                    text: text.to_owned(),
                    source,
                })
            })?;
            if !crate::core::fingerprint::KINDS
                .iter()
                .any(|kind| Rule::new(kind, path.clone()).is_ok())
            {
                return Err(DefaultsError::NoKind {
                    path: text.to_owned(),
                });
            }
            defaults.paths.push(path);
        }
        Ok(defaults)
    }

    /// The containers `--ignore-containers` names.
    pub fn containers(&self) -> &[String] {
        &self.containers
    }

    /// The paths `--ignore-paths` gives.
    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// The rules every object of intent known in full gets: the containers as
    /// `containers[name]` and `initContainers[name]` wherever they occur, and the paths.
    pub fn api_rules(&self) -> Vec<api::ApiRule> {
        let containers = self.containers.iter().flat_map(|name| {
            [
                Path::entry("containers", name),
                Path::entry("initContainers", name),
            ]
        });
        containers
            .chain(self.paths.iter().cloned())
            .map(api::ApiRule::from_path)
            .collect()
    }

    /// [`Defaults::for_kind`] for every supported kind.
    pub fn by_kind(&self) -> std::collections::HashMap<&'static str, Vec<Rule>> {
        crate::core::fingerprint::KINDS
            .iter()
            .map(|kind| (*kind, self.for_kind(kind)))
            .collect()
    }

    /// The default rules that mean something for `kind`.
    pub fn for_kind(&self, kind: &str) -> Vec<Rule> {
        let containers = self.containers.iter().flat_map(|name| {
            [
                Path::entry("containers", name),
                Path::entry("initContainers", name),
            ]
        });
        let mut rules: Vec<Rule> = Vec::new();
        for path in containers.chain(self.paths.iter().cloned()) {
            if let Ok(rule) = Rule::new(kind, path)
                && !rules.contains(&rule)
            {
                rules.push(rule);
            }
        }
        rules
    }
}

/// The rules for one object: `defaults`, then its own (an annotation's value), then
/// `replicas` when an HPA scales it. Returns them with the object's invalid ones.
pub fn rules_for(kind: &str, defaults: &[Rule], annotation: Option<&str>, scaled: bool) -> Parsed {
    let own = annotation.map(|a| parse_list(kind, a)).unwrap_or_default();
    let mut rules = defaults.to_vec();
    for rule in own
        .rules
        .into_iter()
        .chain(scaled.then(|| Rule::replicas(kind)).flatten())
    {
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    Parsed {
        rules,
        invalid: own.invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_checked_against_the_kind() {
        assert!(Rule::parse("Deployment", "replicas").is_ok());
        assert!(Rule::parse("Deployment", "containers[*].resources").is_ok());
        assert!(Rule::parse("Deployment", "labels[app]").is_ok());
        assert!(Rule::parse("StatefulSet", "serviceName").is_ok());
        assert!(Rule::parse("Service", "ports[80/TCP].targetPort").is_ok());
        assert!(Rule::parse("ConfigMap", "data[build-id]").is_ok());
        assert!(Rule::parse("Deployment", "volumes[cfg].source.configMap.name").is_ok());
        for (kind, bad) in [
            ("DaemonSet", "replicas"),
            ("Deployment", "replicaz"),
            ("Deployment", "containers.image"),
            ("Deployment", "replicas[0]"),
            ("Deployment", "template.containers"),
            ("ConfigMap", "env[X]"),
            ("Service", "containers[web]"),
        ] {
            let error = Rule::parse(kind, bad).unwrap_err();
            assert!(
                matches!(error, RuleError::Unknown { .. }),
                "{kind} {bad}: {error}"
            );
        }
        assert!(matches!(
            Rule::parse("Pod", "replicas"),
            Err(RuleError::Kind { .. })
        ));
    }

    #[test]
    fn relative_paths_apply_anywhere() {
        let rule = Rule::parse("Deployment", "env[BUILD_ID]").unwrap();
        assert_eq!(rule.anchor, Anchor::Anywhere);
        assert_eq!(
            Rule::parse("Deployment", "containers[a].env[X]")
                .unwrap()
                .anchor,
            Anchor::Top
        );
    }

    #[test]
    fn lists_keep_the_valid_and_name_the_invalid() {
        let parsed = parse_list("Deployment", " replicas, ,containers[x, bogus ,replicas,");
        assert_eq!(parsed.rules.len(), 1);
        assert_eq!(parsed.invalid.len(), 2);
        let note = parsed.invalid_note().unwrap();
        assert!(note.contains("`containers[x` is not a path"), "{note}");
        assert!(note.contains("`bogus` names nothing"), "{note}");
        let many = vec!["replicas"; 100].join(",");
        assert_eq!(parse_list("Deployment", &many).invalid.len(), 1);
        let hostile = vec!["x".repeat(500); 60].join(",");
        let note = parse_list("Deployment", &hostile).invalid_note().unwrap();
        assert!(
            note.len() < 1000 && note.ends_with("more"),
            "{}",
            note.len()
        );
    }

    #[test]
    fn defaults_apply_where_they_mean_something() {
        let d = Defaults::new(
            &["istio-proxy".into()],
            &["replicas".into(), "env[BUILD_ID]".into()],
            true,
        )
        .unwrap();
        let names = |kind| {
            d.for_kind(kind)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("Deployment"),
            [
                "containers[istio-proxy]",
                "initContainers[istio-proxy]",
                "replicas",
                "env[BUILD_ID]"
            ]
        );
        assert_eq!(names("DaemonSet").len(), 3);
        assert!(names("ConfigMap").is_empty());
        assert!(Defaults::new(&["a[b]".into()], &[], true).is_err());
        assert!(Defaults::new(&[], &["nothing".into()], true).is_err());
        assert!(Defaults::new(&[], &["containers[".into()], true).is_err());
    }

    #[test]
    fn the_pod_template_reads_as_top_level() {
        let mut spec = serde_json::json!({
            "replicas": 2,
            "template": {"labels": {"a": "1"}, "containers": [{"name": "c", "image": "i"}, {"name": "istio-proxy", "image": "p"}]}
        });
        let rules = rules_for(
            "Deployment",
            &Defaults::new(&["istio-proxy".into()], &[], true)
                .unwrap()
                .for_kind("Deployment"),
            Some("labels[a]"),
            true,
        );
        assert_eq!(
            apply(&mut spec, &rules.rules).as_deref(),
            Some("containers[istio-proxy],labels[a],replicas")
        );
        assert_eq!(
            spec,
            serde_json::json!({"template": {"containers": [{"name": "c", "image": "i"}]}})
        );
    }

    /// A fixture case: kind, live fingerprint, and each edit's file name and fingerprint.
    type Case = (String, Value, Vec<(String, Value)>);

    /// Every fixture case of both servers.
    fn fixture_cases() -> Vec<Case> {
        let spec = |p: &std::path::Path| {
            crate::core::fingerprint::fingerprint_value(&crate::testing::object(p))
                .unwrap()
                .unwrap()
                .1
        };
        let cases: Vec<Case> = crate::testing::fixture_cases()
            .iter()
            .map(|d| {
                let kind = crate::testing::object(&d.join("live.json"))["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let edits = crate::testing::edits(d)
                    .into_iter()
                    .map(|(name, path)| (name, spec(&path)))
                    .collect();
                (kind, spec(&d.join("live.json")), edits)
            })
            .collect();
        assert!(cases.len() >= 10);
        cases
    }

    /// The schema knows every field any fixture's fingerprint has.
    #[test]
    fn schema_covers_every_fixture() {
        for (kind, live, edits) in fixture_cases() {
            for spec in std::iter::once(&live).chain(edits.iter().map(|(_, s)| s)) {
                let flat = crate::core::explain::diff::flatten_template(spec);
                schema::conforms(schema::of(&kind).unwrap(), &flat, &kind).unwrap();
            }
        }
    }

    /// Every path the drift diff prints is a valid rule, and ignoring exactly those paths
    /// makes a drifted fingerprint hash like the live one again; ignoring anything else
    /// leaves the drift visible.
    #[test]
    fn diff_paths_are_rules_that_hide_exactly_that_drift() {
        let mut checked = 0;
        for (kind, live, edits) in fixture_cases() {
            let hash = |s: &Value| crate::core::fingerprint::hash_spec(&kind, s).unwrap();
            for (name, edited) in edits.iter().filter(|(n, _)| n.starts_with("drift-")) {
                let changes = crate::core::explain::diff::diff(&live, edited);
                let rules: Vec<Rule> = changes
                    .iter()
                    .map(|c| {
                        Rule::parse(&kind, &c.path).unwrap_or_else(|e| panic!("{kind} {name}: {e}"))
                    })
                    .collect();
                let (mut a, mut b) = (live.clone(), edited.clone());
                apply(&mut a, &rules);
                apply(&mut b, &rules);
                assert_eq!(hash(&a), hash(&b), "{kind} {name}: {:?}", rules);
                // An unrelated rule hides nothing.
                let other = [
                    "labels[not-there]",
                    "selector[not-there]",
                    "data[not-there]",
                ]
                .iter()
                .find_map(|p| Rule::parse(&kind, p).ok())
                .unwrap();
                let (mut a, mut b) = (live.clone(), edited.clone());
                apply(&mut a, [&other]);
                apply(&mut b, [&other]);
                assert_ne!(hash(&a), hash(&b), "{kind} {name}");
                checked += 1;
            }
        }
        assert!(checked >= 40, "{checked}");
    }
}
