//! Ignore paths: the readable syntax of the drift diff (`replicas`,
//! `containers[istio-proxy]`, `containers[*].resources`, `env[BUILD_ID]`), parsed, printed
//! back, and cut out of a canonical fingerprint.

use std::fmt;

use serde_json::Value;

/// Longest path accepted: a guard against hostile annotations, far above real ones.
pub const MAX_PATH_LEN: usize = 512;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// A field of the fingerprint: `containers`, `resources`.
    Field(String),
    /// Entries of a list or a map: `[web]` (a container, by name), `[80/TCP]` (a port by
    /// number and protocol), `[app]` (a label key), `[1]` (an unkeyed list's index), `[*]`.
    Select(Selector),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    All,
    Key(String),
}

/// A parsed path: a field, then fields and selectors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("expected a field name at byte {0}")]
    ExpectedField(usize),
    #[error("`[` at byte {0} is never closed")]
    Unclosed(usize),
    #[error("empty `[]` at byte {0}")]
    EmptySelector(usize),
    #[error("unexpected {ch:?} at byte {at}")]
    Unexpected { ch: char, at: usize },
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, PathError> {
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        if text.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        let mut steps = Vec::new();
        let mut rest = text;
        let at = |rest: &str| text.len() - rest.len();
        loop {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                return Err(PathError::ExpectedField(at(rest)));
            }
            steps.push(Step::Field(rest[..end].to_owned()));
            rest = &rest[end..];
            while let Some(inner) = rest.strip_prefix('[') {
                let open = at(rest);
                let close = inner.find(']').ok_or(PathError::Unclosed(open))?;
                let key = &inner[..close];
                if key.trim().is_empty() {
                    return Err(PathError::EmptySelector(open));
                }
                if let Some(i) = key.find('[') {
                    return Err(PathError::Unexpected {
                        ch: '[',
                        at: open + 1 + i,
                    });
                }
                steps.push(Step::Select(if key == "*" {
                    Selector::All
                } else {
                    Selector::Key(key.to_owned())
                }));
                rest = &inner[close + 1..];
            }
            match rest.chars().next() {
                None => return Ok(Path { steps }),
                Some('.') => rest = &rest[1..],
                Some(ch) => {
                    return Err(PathError::Unexpected { ch, at: at(rest) });
                }
            }
        }
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The path of one top-level field (`replicas`).
    pub fn field(name: &str) -> Path {
        Path {
            steps: vec![Step::Field(name.to_owned())],
        }
    }

    /// `list[key]`: one entry of a top-level list (`containers[istio-proxy]`).
    pub fn entry(list: &str, key: &str) -> Path {
        Path {
            steps: vec![
                Step::Field(list.to_owned()),
                Step::Select(Selector::Key(key.to_owned())),
            ],
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Field(name) if i > 0 => write!(f, ".{name}")?,
                Step::Field(name) => f.write_str(name)?,
                Step::Select(Selector::All) => f.write_str("[*]")?,
                Step::Select(Selector::Key(k)) => write!(f, "[{k}]")?,
            }
        }
        Ok(())
    }
}

/// Removes what `steps` name below `node`. Whatever the removal leaves empty (a map, a
/// list, an object) goes too, on both sides of a comparison alike: the fingerprint omits
/// empty fields, so an emptied one must read as absent. Returns whether `node` changed.
pub(super) fn strip(node: &mut Value, steps: &[Step]) -> bool {
    let Some((first, rest)) = steps.split_first() else {
        return false;
    };
    match (first, node) {
        (Step::Field(name), Value::Object(map)) => {
            if rest.is_empty() {
                return map.remove(name).is_some();
            }
            let Some(child) = map.get_mut(name) else {
                return false;
            };
            let mut changed = strip(child, rest);
            if is_empty(child) {
                map.remove(name);
                changed = true;
            }
            changed
        }
        (Step::Select(selector), Value::Array(items)) => {
            // A list is addressed by its entries' keys when they all have one (as the diff
            // prints it), else by index.
            let keyed = items
                .iter()
                .all(|v| crate::core::explain::diff::element_label(v).is_some());
            let hits: Vec<bool> = items
                .iter()
                .enumerate()
                .map(|(i, v)| match selector {
                    Selector::All => true,
                    Selector::Key(k) if keyed => {
                        crate::core::explain::diff::element_label(v).as_deref() == Some(k.as_str())
                    }
                    Selector::Key(k) => k.parse::<usize>().ok() == Some(i),
                })
                .collect();
            let mut changed = false;
            let mut drop = hits.clone();
            if !rest.is_empty() {
                for ((item, hit), gone) in items.iter_mut().zip(&hits).zip(drop.iter_mut()) {
                    if *hit {
                        changed |= strip(item, rest);
                        *gone = is_empty(item);
                    }
                }
            }
            let mut i = 0;
            items.retain(|_| {
                let keep = !drop[i];
                i += 1;
                keep
            });
            changed || drop.contains(&true)
        }
        (Step::Select(selector), Value::Object(map)) => {
            let keys: Vec<String> = match selector {
                Selector::All => map.keys().cloned().collect(),
                Selector::Key(k) => map.contains_key(k).then(|| k.clone()).into_iter().collect(),
            };
            let mut changed = false;
            for key in keys {
                if rest.is_empty() {
                    map.remove(&key);
                    changed = true;
                } else if let Some(child) = map.get_mut(&key) {
                    changed |= strip(child, rest);
                    if is_empty(child) {
                        map.remove(&key);
                        changed = true;
                    }
                }
            }
            changed
        }
        _ => false,
    }
}

/// [`strip`] wherever the path's first field occurs, at any depth.
pub(super) fn strip_anywhere(node: &mut Value, steps: &[Step]) -> bool {
    let mut changed = false;
    if let Some(Step::Field(name)) = steps.first()
        && node.get(name).is_some()
    {
        changed |= strip(node, steps);
    }
    match node {
        Value::Object(map) => {
            for child in map.values_mut() {
                changed |= strip_anywhere(child, steps);
            }
        }
        Value::Array(items) => {
            for child in items {
                changed |= strip_anywhere(child, steps);
            }
        }
        _ => {}
    }
    changed
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_prints_back() {
        for text in [
            "replicas",
            "containers[istio-proxy]",
            "containers[*].resources",
            "env[BUILD_ID]",
            "containers[web].resources.limits[cpu]",
            "labels[app.kubernetes.io/name]",
            "ports[80/TCP]",
            "command[1]",
        ] {
            assert_eq!(Path::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn rejects_malformed_paths_with_the_place() {
        for (text, error) in [
            ("", PathError::Empty),
            (".replicas", PathError::ExpectedField(0)),
            ("replicas.", PathError::ExpectedField(9)),
            ("containers[web", PathError::Unclosed(10)),
            ("containers[]", PathError::EmptySelector(10)),
            ("[web]", PathError::ExpectedField(0)),
            (
                "containers[a[b]]",
                PathError::Unexpected { ch: '[', at: 12 },
            ),
            (
                "containers[web]x",
                PathError::Unexpected { ch: 'x', at: 15 },
            ),
            ("replicas count", PathError::Unexpected { ch: ' ', at: 8 }),
            ("a..b", PathError::ExpectedField(2)),
        ] {
            assert_eq!(Path::parse(text), Err(error), "{text:?}");
        }
        assert_eq!(Path::parse(&"a".repeat(600)), Err(PathError::TooLong));
    }

    fn stripped(mut v: Value, path: &str) -> Value {
        strip(&mut v, Path::parse(path).unwrap().steps());
        v
    }

    #[test]
    fn strips_fields_entries_and_what_they_leave_empty() {
        let spec = json!({
            "replicas": 3,
            "containers": [
                {"name": "web", "image": "a", "resources": {"limits": {"cpu": "1"}}},
                {"name": "istio-proxy", "image": "b"}
            ],
            "labels": {"app": "x"}
        });
        assert_eq!(stripped(spec.clone(), "replicas").get("replicas"), None);
        let no_proxy = stripped(spec.clone(), "containers[istio-proxy]");
        assert_eq!(no_proxy["containers"].as_array().unwrap().len(), 1);
        let no_limits = stripped(spec.clone(), "containers[*].resources.limits[cpu]");
        assert_eq!(
            no_limits["containers"][0],
            json!({"name": "web", "image": "a"})
        );
        assert_eq!(stripped(spec.clone(), "labels[app]").get("labels"), None);
        assert_eq!(
            stripped(spec.clone(), "labels[other]"),
            spec,
            "no match: unchanged"
        );
        assert_eq!(
            stripped(json!({"command": ["a", "b", "c"]}), "command[1]"),
            json!({"command": ["a", "c"]})
        );
    }

    #[test]
    fn anywhere_reaches_every_container() {
        let mut spec = json!({
            "initContainers": [{"name": "i", "env": [{"name": "BUILD_ID", "value": "1"}]}],
            "containers": [{"name": "c", "env": [{"name": "BUILD_ID", "value": "2"}, {"name": "K", "value": "v"}]}]
        });
        let path = Path::parse("env[BUILD_ID]").unwrap();
        assert!(strip_anywhere(&mut spec, path.steps()));
        assert_eq!(
            spec,
            json!({
                "initContainers": [{"name": "i"}],
                "containers": [{"name": "c", "env": [{"name": "K", "value": "v"}]}]
            })
        );
        assert!(!strip_anywhere(&mut spec, path.steps()), "idempotent");
    }
}
