//! What drifted: the baseline record (an object's canonical fingerprint at a time it was
//! in sync, compressed into an annotation) and a field-level diff of two fingerprints
//! with readable paths: `replicas: 1 → 3`, `containers[web].image: nginx:1.25 → nginx:1.27`,
//! `containers[web].env[LOG_LEVEL]: added`.

use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use serde_json::Value;

/// Largest baseline record written (bytes of annotation value). A typical Deployment's is
/// a few hundred bytes; the API allows 256 KiB of annotations in all.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;
/// Largest fingerprint a record may inflate to: guards against a hostile annotation.
const MAX_INFLATED_BYTES: u64 = 1024 * 1024;
/// Longest value shown in a diff line.
const VALUE_LIMIT: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the baseline record is not `v1:<hash>:<base64>`")]
    Format,
    #[error("the baseline record is not valid base64")]
    Base64(#[source] base64::DecodeError),
    #[error("the baseline record does not inflate")]
    Inflate(#[source] std::io::Error),
    #[error("the baseline record is not a JSON fingerprint")]
    Json(#[source] serde_json::Error),
    #[error("the baseline record would be {0} bytes, over the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge(usize),
}

/// `v1:<hash>:<base64 of deflated canonical spec JSON>`.
pub fn encode_record(hash: &str, spec: &Value) -> Result<String, RecordError> {
    let json = serde_json::to_vec(spec).map_err(RecordError::Json)?;
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
    enc.write_all(&json).map_err(RecordError::Inflate)?;
    let deflated = enc.finish().map_err(RecordError::Inflate)?;
    let record = format!("v1:{hash}:{}", STANDARD.encode(deflated));
    if record.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge(record.len()));
    }
    Ok(record)
}

/// The hash a record was taken at, without decoding it.
pub fn record_hash(record: &str) -> Option<&str> {
    let rest = record.strip_prefix("v1:")?;
    let (hash, _) = rest.split_once(':')?;
    crate::core::fingerprint::is_hash(hash).then_some(hash)
}

/// The hash and the fingerprint a record holds.
pub fn decode_record(record: &str) -> Result<(String, Value), RecordError> {
    let hash = record_hash(record).ok_or(RecordError::Format)?.to_owned();
    let b64 = &record[3 + hash.len() + 1..];
    let deflated = STANDARD.decode(b64.trim()).map_err(RecordError::Base64)?;
    let mut json = Vec::new();
    DeflateDecoder::new(deflated.as_slice())
        .take(MAX_INFLATED_BYTES)
        .read_to_end(&mut json)
        .map_err(RecordError::Inflate)?;
    let spec = serde_json::from_slice(&json).map_err(RecordError::Json)?;
    Ok((hash, spec))
}

/// One field-level difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Readable path: `containers[web].env[LOG_LEVEL]`.
    pub path: String,
    /// The same place as a list of segments, for attribution.
    pub segments: Vec<Segment>,
    pub was: Option<Value>,
    pub now: Option<Value>,
    /// An item that came into (`now`) or left (`was`) a set: `rules[0].verbs: + delete`.
    pub member: bool,
}

/// Fingerprint fields whose keys are user data (rendered `labels[app]`).
const MAP_FIELDS: [&str; 7] = [
    "labels",
    "selector",
    "nodeSelector",
    "data",
    "binaryData",
    "limits",
    "requests",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Field(String),
    /// A key of a map-valued field (`labels`, `data`, `limits`…).
    MapKey(String),
    /// A list element identified by its key fields (`name`, or `port`/`protocol`…).
    Element(Vec<(String, Value)>),
    Index(usize),
}

impl Change {
    /// Whether the values at this path may be secrets: an env var's value, a ConfigMap's
    /// data, a command line.
    pub fn is_sensitive(&self) -> bool {
        let in_env = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Field(f) if f == "env"));
        let is_value = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Field(f) if f == "value"));
        let is_data = matches!(
            self.segments.first(),
            Some(Segment::Field(f)) if f == "data" || f == "binaryData" || f == "stringData"
        );
        // `kubectl apply` keeps the whole applied object, values included, in an annotation.
        let is_applied_object = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::MapKey(k) if k == crate::core::secret::LAST_APPLIED));
        // Command lines carry secrets as often as env does (`--db-password=…`).
        let is_command_line = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Field(f) if f == "args" || f == "command"));
        (in_env
            && (is_value
                || self
                    .segments
                    .last()
                    .is_some_and(|s| matches!(s, Segment::Element(_)))))
            || is_data
            || is_command_line
            || is_applied_object
    }

    /// The line without values where [`Change::is_sensitive`].
    pub fn redacted(&self) -> String {
        match (&self.was, &self.now) {
            (Some(_), Some(_)) if self.is_sensitive() => format!("{}: changed", self.path),
            (None, Some(_)) if self.member && self.is_sensitive() => {
                format!("{}: an item added", self.path)
            }
            (Some(_), None) if self.member && self.is_sensitive() => {
                format!("{}: an item removed", self.path)
            }
            _ => self.to_string(),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.was, &self.now) {
            (None, Some(v)) if self.member => write!(f, "{}: + {}", self.path, show(v)),
            (Some(v), None) if self.member => write!(f, "{}: - {}", self.path, show(v)),
            (None, Some(_)) => write!(f, "{}: added", self.path),
            (Some(_), None) => write!(f, "{}: removed", self.path),
            (Some(a), Some(b)) => write!(f, "{}: {} → {}", self.path, show(a), show(b)),
            (None, None) => write!(f, "{}", self.path),
        }
    }
}

fn show(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > VALUE_LIMIT {
        format!("{}…", s.chars().take(VALUE_LIMIT).collect::<String>())
    } else {
        s
    }
}

/// Differences from `was` to `now`, two canonical fingerprints of one kind, in a stable
/// order. The pod template is flattened into the top level (`containers[web]`, not
/// `template.containers[web]`).
pub fn diff(was: &Value, now: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(
        &flatten_template(was),
        &flatten_template(now),
        &mut Vec::new(),
        &mut out,
    );
    out
}

pub(crate) fn flatten_template(v: &Value) -> Value {
    let Value::Object(map) = v else {
        return v.clone();
    };
    let mut flat = serde_json::Map::new();
    for (k, val) in map {
        match (k.as_str(), val) {
            ("template", Value::Object(t)) => flat.extend(t.clone()),
            _ => {
                flat.insert(k.clone(), val.clone());
            }
        }
    }
    Value::Object(flat)
}

fn empty_like(v: &Value) -> Value {
    if v.is_array() {
        Value::Array(Vec::new())
    } else {
        Value::Object(serde_json::Map::new())
    }
}

/// Fields that identify an element of a keyed list, most specific first.
fn element_key(v: &Value) -> Option<Vec<(String, Value)>> {
    let obj = v.as_object()?;
    for fields in [
        &["name"][..],
        &["containerPort", "protocol"],
        &["port", "protocol"],
    ] {
        let key: Vec<_> = fields
            .iter()
            .filter_map(|f| obj.get(*f).map(|val| ((*f).to_owned(), val.clone())))
            .collect();
        if key.len() == fields.len() {
            return Some(key);
        }
    }
    None
}

/// How a keyed list entry is named in a path: its key values joined by `/` (`web`,
/// `80/TCP`), never truncated, so that an ignore rule can name it. `None` for an entry
/// without key fields.
pub(crate) fn element_label(v: &Value) -> Option<String> {
    element_key(v).map(|key| key_label(&key))
}

fn key_label(key: &[(String, Value)]) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|(_, v)| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    parts.join("/")
}

pub(crate) fn label(seg: &Segment) -> String {
    match seg {
        Segment::Field(f) => f.clone(),
        Segment::Index(i) => format!("[{i}]"),
        Segment::MapKey(k) => format!("[{k}]"),
        Segment::Element(key) => format!("[{}]", key_label(key)),
    }
}

pub(crate) fn path_string(segments: &[Segment]) -> String {
    let mut s = String::new();
    for seg in segments {
        match seg {
            Segment::Field(_) if !s.is_empty() => {
                s.push('.');
                s.push_str(&label(seg));
            }
            _ => s.push_str(&label(seg)),
        }
    }
    s
}

fn push(out: &mut Vec<Change>, path: &[Segment], was: Option<&Value>, now: Option<&Value>) {
    out.push(Change {
        path: path_string(path),
        segments: path.to_vec(),
        was: was.cloned(),
        now: now.cloned(),
        member: false,
    });
}

fn walk(was: &Value, now: &Value, path: &mut Vec<Segment>, out: &mut Vec<Change>) {
    if was == now {
        return;
    }
    match (was, now) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            let is_map =
                matches!(path.last(), Some(Segment::Field(f)) if MAP_FIELDS.contains(&f.as_str()));
            for k in keys {
                path.push(if is_map {
                    Segment::MapKey(k.clone())
                } else {
                    Segment::Field(k.clone())
                });
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => walk(x, y, path, out),
                    // An absent list or map is an empty one: name the entries that came or went.
                    (None, Some(y)) if y.is_array() || y.is_object() => {
                        walk(&empty_like(y), y, path, out)
                    }
                    (Some(x), None) if x.is_array() || x.is_object() => {
                        walk(x, &empty_like(x), path, out)
                    }
                    (x, y) => push(out, path, x, y),
                }
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let keyed = a.iter().chain(b.iter()).all(|v| element_key(v).is_some());
            if keyed && !(a.is_empty() && b.is_empty()) {
                let mut keys: Vec<Vec<(String, Value)>> = Vec::new();
                for v in a.iter().chain(b.iter()) {
                    if let Some(k) = element_key(v)
                        && !keys.contains(&k)
                    {
                        keys.push(k);
                    }
                }
                for key in keys {
                    let find = |list: &[Value]| {
                        list.iter()
                            .find(|v| element_key(v).as_ref() == Some(&key))
                            .cloned()
                    };
                    path.push(Segment::Element(key.clone()));
                    match (find(a), find(b)) {
                        (Some(x), Some(y)) => walk(&x, &y, path, out),
                        (x, y) => push(out, path, x.as_ref(), y.as_ref()),
                    }
                    path.pop();
                }
            } else {
                for i in 0..a.len().max(b.len()) {
                    path.push(Segment::Index(i));
                    match (a.get(i), b.get(i)) {
                        (Some(x), Some(y)) => walk(x, y, path, out),
                        (x, y) => push(out, path, x, y),
                    }
                    path.pop();
                }
            }
        }
        _ => push(out, path, Some(was), Some(now)),
    }
}

/// [`summary`] with sensitive values left out ([`Change::redacted`]).
pub fn summary_redacted(changes: &[Change], limit: usize) -> String {
    let lines: Vec<String> = changes.iter().map(Change::redacted).collect();
    crate::core::text::join_bounded(&lines, limit)
}

/// One line for events and the annotation: changes joined with `; `, bounded.
pub fn summary(changes: &[Change], limit: usize) -> String {
    let lines: Vec<String> = changes.iter().map(Change::to_string).collect();
    crate::core::text::join_bounded(&lines, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &std::path::Path) -> Value {
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        crate::core::fingerprint::fingerprint_value(&v)
            .unwrap()
            .unwrap()
            .1
    }

    fn managed(
        path: &std::path::Path,
    ) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry> {
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        serde_json::from_value(v["metadata"]["managedFields"].clone()).unwrap_or_default()
    }

    /// Every drift fixture of both servers gives a non-empty diff attributed to the
    /// manager that made it (`kubectl patch` → `kubectl-patch`); every same-* one is empty.
    #[test]
    fn fixture_drifts_are_explained_and_attributed() {
        let mut checked = 0;
        for d in crate::testing::fixture_cases() {
            let kind = crate::testing::object(&d.join("live.json"))["kind"]
                .as_str()
                .unwrap()
                .to_owned();
            let live = spec(&d.join("live.json"));
            for (name, f) in crate::testing::edits(&d) {
                let changes = diff(&live, &spec(&f));
                if name.starts_with("same-") {
                    assert!(changes.is_empty(), "{}: {changes:?}", f.display());
                    continue;
                }
                assert!(!changes.is_empty(), "{}: no change found", f.display());
                let writers =
                    crate::core::explain::attribution::writers(&kind, &managed(&f), &changes);
                assert_eq!(
                    writers.first().map(|w| w.manager.as_str()),
                    Some("kubectl-patch"),
                    "{}: {} attributed to {writers:?}",
                    f.display(),
                    summary(&changes, 500)
                );
                checked += 1;
            }
        }
        assert!(checked >= 40, "{checked}");
    }

    #[test]
    fn readable_lines_for_typical_changes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/kube-apiserver-v1.20.2");
        for (case, file, line) in [
            (
                "deploy-minimal",
                "drift-image.json",
                "containers[app].image: nginx:1.25 → nginx:1.27",
            ),
            (
                "deploy-minimal",
                "drift-add-env.json",
                "containers[app].env[DEBUG]: added",
            ),
            ("sts-basic", "drift-replicas.json", "replicas: 1 → 3"),
            (
                "deploy-multi-container",
                "drift-init-command.json",
                "initContainers[migrate].command[1]: --up → --down",
            ),
            (
                "deploy-quantities-env",
                "drift-cpu-limit.json",
                "containers[api].resources.limits[cpu]: 1 → 1500m",
            ),
            (
                "svc-clusterip",
                "drift-selector.json",
                "selector[app]: minimal → other",
            ),
            ("cm-basic", "drift-add-key.json", "data[extra]: added"),
        ] {
            let d = root.join(case);
            let got = summary(
                &diff(&spec(&d.join("live.json")), &spec(&d.join(file))),
                500,
            );
            assert_eq!(got, line, "{case}/{file}");
        }
    }

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let v = serde_json::json!({"replicas": 3, "template": {"containers": [{"name": "web", "image": "nginx"}]}});
        let h = "0".repeat(64);
        let r = encode_record(&h, &v).unwrap();
        assert_eq!(record_hash(&r), Some(h.as_str()));
        assert_eq!(decode_record(&r).unwrap(), (h.clone(), v));
        for bad in [
            "",
            "v1:",
            "v2:abc:def",
            &format!("v1:{h}:!!!"),
            &format!("v1:{h}:AAAA"),
        ] {
            assert!(decode_record(bad).is_err(), "{bad:?}");
        }
        // A deflate bomb inflates no further than the limit, then fails to parse.
        let zeros = vec![b' '; 8 * 1024 * 1024];
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
        enc.write_all(&zeros).unwrap();
        let bomb = format!("v1:{h}:{}", STANDARD.encode(enc.finish().unwrap()));
        assert!(decode_record(&bomb).is_err());
    }
}
