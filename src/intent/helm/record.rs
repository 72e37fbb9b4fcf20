//! Helm v3's release record: a Secret of type `helm.sh/release.v1` (or a ConfigMap, Helm's
//! other storage driver) named `sh.helm.release.v1.<release>.v<revision>`, labelled `owner=helm`,
//! `name`, `status`, `version`, whose `data.release` is the release as JSON, gzip'd (Helm
//! before 3.0.0-beta.4 wrote it plain) and base64'd — one layer more in a Secret's `data`,
//! which the API base64s again.
//!
//! The record holds the chart and every value, secrets included. Only what the intent needs
//! is taken from it: the manifest, name, namespace, revision, status, and the user-supplied
//! values, which are only ever digested ([`Release::values_digest`]), never kept whole or shown.

use std::io::Read as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;

/// The type of Helm's release Secrets.
pub const SECRET_TYPE: &str = "helm.sh/release.v1";
/// The label every release record carries.
pub const OWNER_SELECTOR: &str = "owner=helm";
/// A release larger than this, inflated, is refused: Helm's own records are bounded by the
/// object size limit (about 1.5 MiB gzip'd); a larger one is a bomb, not a release.
pub const MAX_RELEASE_BYTES: u64 = 64 << 20;

/// The state of a revision, as Helm records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Deployed,
    Superseded,
    Failed,
    Uninstalling,
    Uninstalled,
    PendingInstall,
    PendingUpgrade,
    PendingRollback,
    Unknown(String),
}

impl Status {
    pub fn parse(s: &str) -> Status {
        match s {
            "deployed" => Status::Deployed,
            "superseded" => Status::Superseded,
            "failed" => Status::Failed,
            "uninstalling" => Status::Uninstalling,
            "uninstalled" => Status::Uninstalled,
            "pending-install" => Status::PendingInstall,
            "pending-upgrade" => Status::PendingUpgrade,
            "pending-rollback" => Status::PendingRollback,
            other => Status::Unknown(other.to_owned()),
        }
    }

    /// Whether Helm is changing the release now.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            Status::PendingInstall | Status::PendingUpgrade | Status::PendingRollback
        )
    }

    /// Whether the release is being removed or was (`helm uninstall --keep-history`).
    pub fn is_gone(&self) -> bool {
        matches!(self, Status::Uninstalling | Status::Uninstalled)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Deployed => "deployed",
            Status::Superseded => "superseded",
            Status::Failed => "failed",
            Status::Uninstalling => "uninstalling",
            Status::Uninstalled => "uninstalled",
            Status::PendingInstall => "pending-install",
            Status::PendingUpgrade => "pending-upgrade",
            Status::PendingRollback => "pending-rollback",
            Status::Unknown(s) => s,
        })
    }
}

/// The name of release `release`'s record of `revision` (either driver).
pub fn object_name(release: &str, revision: u64) -> String {
    format!("sh.helm.release.v1.{release}.v{revision}")
}

/// Whether `object` is one of release `release`'s records.
pub fn is_record_of(object: &str, release: &str) -> bool {
    object
        .strip_prefix("sh.helm.release.v1.")
        .and_then(|rest| rest.strip_prefix(release))
        .and_then(|rest| rest.strip_prefix(".v"))
        .is_some_and(|v| v.parse::<u64>().is_ok())
}

/// What a record says of its revision, from its labels and name alone: enough to choose
/// which record to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The record object's own name (`sh.helm.release.v1.web.v3`).
    pub object: String,
    pub release: String,
    pub revision: u64,
    pub status: Status,
}

impl Meta {
    /// The labels of a record (`name`, `version`, `status`, `owner=helm`); `None` for an
    /// object that is no release record.
    pub fn of(object: &str, labels: &std::collections::BTreeMap<String, String>) -> Option<Meta> {
        if labels.get("owner").map(String::as_str) != Some("helm") {
            return None;
        }
        let release = labels.get("name")?.clone();
        let revision = labels.get("version")?.parse().ok()?;
        let status = Status::parse(labels.get("status")?);
        Some(Meta {
            object: object.to_owned(),
            release,
            revision,
            status,
        })
    }
}

/// One revision of a release, as much of it as tfdrift reads.
#[derive(Clone)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub revision: u64,
    pub status: Status,
    /// The rendered objects, `---`-separated (hooks are not among them).
    pub manifest: String,
    /// The user-supplied values (`helm install -f`, `--set`): digested, never shown.
    values: Value,
}

// No value of a release is ever printed, not even in a debug log.
impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Release")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("revision", &self.revision)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    info: Option<WireInfo>,
    #[serde(default)]
    manifest: String,
    #[serde(default)]
    config: Option<Value>,
}

#[derive(Deserialize)]
struct WireInfo {
    #[serde(default)]
    status: String,
}

/// Why a record could not be read. None of them carries a byte of the record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("has no data.release")]
    NoRelease,
    #[error("is labelled owner=helm but is not of type {SECRET_TYPE}")]
    NotARecord,
    #[error("data.release is not base64")]
    NotBase64,
    #[error("data.release does not inflate (corrupt gzip)")]
    Corrupt,
    #[error("data.release inflates to more than {MAX_RELEASE_BYTES} bytes")]
    TooLarge,
    #[error("data.release is not a Helm release (JSON): {0}")]
    NotRelease(String),
}

impl Release {
    /// The release a record Secret holds (the Secret driver).
    pub fn of_secret(secret: k8s_openapi::api::core::v1::Secret) -> Result<Release, RecordError> {
        if secret.type_.as_deref() != Some(SECRET_TYPE) {
            return Err(RecordError::NotARecord);
        }
        let data = secret
            .data
            .and_then(|mut d| d.remove("release"))
            .map(|b| b.0)
            .unwrap_or_default();
        Release::decode(&data)
    }

    /// The release a record ConfigMap holds (`HELM_DRIVER=configmap`).
    pub fn of_config_map(
        config_map: k8s_openapi::api::core::v1::ConfigMap,
    ) -> Result<Release, RecordError> {
        let data = config_map
            .data
            .and_then(|mut d| d.remove("release"))
            .unwrap_or_default();
        Release::decode(data.as_bytes())
    }

    /// A record's `data.release` as the storage driver wrote it: base64 text (a Secret's
    /// bytes after the API's own base64 is undone, or a ConfigMap's string).
    pub fn decode(data: &[u8]) -> Result<Release, RecordError> {
        let text: Vec<u8> = data
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if text.is_empty() {
            return Err(RecordError::NoRelease);
        }
        let bytes = STANDARD.decode(&text).map_err(|_| RecordError::NotBase64)?;
        let json = if bytes.starts_with(&[0x1f, 0x8b, 0x08]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .take(MAX_RELEASE_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|_| RecordError::Corrupt)?;
            if out.len() as u64 > MAX_RELEASE_BYTES {
                return Err(RecordError::TooLarge);
            }
            out
        } else {
            bytes
        };
        // serde_json's own message names a line and column and what it expected, never
        // the text it read.
        let wire: Wire = serde_json::from_slice(&json).map_err(|e| {
            RecordError::NotRelease(format!(
                "{} at line {} column {}",
                match e.classify() {
                    serde_json::error::Category::Io => "unreadable",
                    serde_json::error::Category::Syntax => "syntax error",
                    serde_json::error::Category::Data => "unexpected shape",
                    serde_json::error::Category::Eof => "cut short",
                },
                e.line(),
                e.column()
            ))
        })?;
        Ok(Release {
            name: wire.name,
            namespace: wire.namespace,
            revision: wire.version,
            status: Status::parse(&wire.info.map(|i| i.status).unwrap_or_default()),
            manifest: wire.manifest,
            values: wire.config.unwrap_or(Value::Null),
        })
    }

    /// A keyed digest of the user-supplied values, with the leaves at `cloaked` (paths of
    /// map keys) taken as `(sensitive value)`, as the Helm provider writes `set_sensitive`
    /// values into its state's `metadata.values`. Empty values and none are alike.
    pub fn values_digest(&self, cloaked: &[Vec<String>]) -> String {
        values_digest(&self.values, cloaked)
    }
}

/// The word the Helm provider writes in place of a `set_sensitive` value.
pub const SENSITIVE: &str = "(sensitive value)";

/// A keyed digest of `values` (as [`Release::values_digest`]): key order does not count.
pub fn values_digest(values: &Value, cloaked: &[Vec<String>]) -> String {
    let mut values = match values {
        Value::Null => Value::Object(Default::default()),
        v => v.clone(),
    };
    for path in cloaked {
        let mut at = &mut values;
        for (i, key) in path.iter().enumerate() {
            let Some(map) = at.as_object_mut() else { break };
            if i + 1 == path.len() {
                if map.contains_key(key) {
                    map.insert(key.clone(), Value::from(SENSITIVE));
                }
                break;
            }
            match map.get_mut(key) {
                Some(next) => at = next,
                None => break,
            }
        }
    }
    let mut canonical = Vec::new();
    write_canonical(&values, &mut canonical);
    crate::core::secret::digest(&canonical)
}

/// The paths of the `(sensitive value)` leaves of `values`.
pub fn sensitive_paths(values: &Value) -> Vec<Vec<String>> {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::String(s) if s == SENSITIVE => out.push(path.clone()),
            Value::Object(map) => {
                for (k, v) in map {
                    path.push(k.clone());
                    walk(v, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(values, &mut Vec::new(), &mut out);
    out
}

/// JSON with every map's keys sorted.
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(Value::from(k.as_str()).to_string().as_bytes());
                out.push(b':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        other => out.extend(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn encoded(json: &str, gzip: bool) -> Vec<u8> {
        let bytes = if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(json.as_bytes()).unwrap();
            enc.finish().unwrap()
        } else {
            json.as_bytes().to_vec()
        };
        STANDARD.encode(bytes).into_bytes()
    }

    const RELEASE: &str = r#"{"name":"web","namespace":"default","version":3,
        "info":{"status":"deployed","notes":"x"},"chart":{"metadata":{"name":"web"}},
        "config":{"password":"hunter2","replicas":2},"manifest":"---\nkind: A\n","hooks":[]}"#;

    #[test]
    fn reads_gzipped_and_plain_records() {
        for gzip in [true, false] {
            let r = Release::decode(&encoded(RELEASE, gzip)).unwrap();
            assert_eq!(
                (r.name.as_str(), r.namespace.as_str(), r.revision),
                ("web", "default", 3)
            );
            assert_eq!(r.status, Status::Deployed);
            assert_eq!(r.manifest, "---\nkind: A\n");
            let debug = format!("{r:?}");
            assert!(!debug.contains("hunter2"), "{debug}");
        }
    }

    #[test]
    fn corrupt_records_are_errors_without_their_bytes() {
        assert_eq!(Release::decode(b"").unwrap_err(), RecordError::NoRelease);
        assert_eq!(Release::decode(b"%%%").unwrap_err(), RecordError::NotBase64);
        let mut gz = STANDARD.decode(encoded(RELEASE, true)).unwrap();
        gz.truncate(20);
        assert_eq!(
            Release::decode(STANDARD.encode(&gz).as_bytes()).unwrap_err(),
            RecordError::Corrupt
        );
        let e = Release::decode(&encoded(r#"{"config":{"password":"hunter2""#, false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cut short") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn values_digest_ignores_key_order_and_honours_cloaked_values() {
        let r = Release::decode(&encoded(RELEASE, true)).unwrap();
        let state: Value = serde_json::json!({"replicas": 2, "password": "hunter2"});
        assert_eq!(r.values_digest(&[]), values_digest(&state, &[]));
        let cloaked = serde_json::json!({"replicas": 2, "password": SENSITIVE});
        let paths = sensitive_paths(&cloaked);
        assert_eq!(paths, vec![vec!["password".to_owned()]]);
        assert_eq!(r.values_digest(&paths), values_digest(&cloaked, &paths));
        let changed = serde_json::json!({"replicas": 3, "password": SENSITIVE});
        assert_ne!(r.values_digest(&paths), values_digest(&changed, &paths));
        assert_eq!(
            values_digest(&Value::Null, &[]),
            values_digest(&serde_json::json!({}), &[])
        );
    }

    #[test]
    fn record_names() {
        assert_eq!(object_name("web", 3), "sh.helm.release.v1.web.v3");
        assert!(is_record_of("sh.helm.release.v1.web.v3", "web"));
        assert!(!is_record_of("sh.helm.release.v1.web-api.v3", "web"));
        assert!(!is_record_of("sh.helm.release.v1.web.vx", "web"));
    }

    #[test]
    fn meta_from_labels() {
        let labels = [
            ("owner", "helm"),
            ("name", "web"),
            ("version", "4"),
            ("status", "pending-upgrade"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let m = Meta::of("sh.helm.release.v1.web.v4", &labels).unwrap();
        assert_eq!((m.release.as_str(), m.revision), ("web", 4));
        assert!(m.status.is_pending());
        let mut other = labels.clone();
        other.insert("owner".into(), "flux".into());
        assert!(Meta::of("x", &other).is_none());
    }
}
