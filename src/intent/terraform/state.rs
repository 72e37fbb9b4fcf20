//! Reading Terraform's state format v4: the envelope, resources and instances, with each
//! instance's attributes left as raw JSON until a supported type asks for them (a state
//! of thousands of instances is never held as one JSON tree).

use std::io::Read;

use flate2::read::GzDecoder;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Largest state read, uncompressed: a gzip stream inflating beyond it is refused.
pub const MAX_STATE_BYTES: usize = 256 * 1024 * 1024;
/// The one state format version tfdrift reads (Terraform 0.12 and later write it).
pub const SUPPORTED_VERSION: u64 = 4;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("larger than {} MiB uncompressed; refused", MAX_STATE_BYTES >> 20)]
    TooLarge,
    #[error("not a complete gzip stream (truncated or corrupt)")]
    Gzip(#[source] std::io::Error),
    #[error("not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("not a Terraform state: no \"version\" field")]
    NotState,
    #[error(
        "state format version {0} is not supported; tfdrift reads version {SUPPORTED_VERSION} (Terraform 0.12 and later)"
    )]
    Version(String),
    /// Where, not what: serde's message for a field of the wrong type quotes the value,
    /// and this error reaches logs, events and CI output.
    #[error(
        "not a Terraform state v4: a field has an unexpected type or shape at line {line}, column {column}"
    )]
    Shape { line: usize, column: usize },
}

impl StateError {
    fn shape(e: &serde_json::Error) -> Self {
        StateError::Shape {
            line: e.line(),
            column: e.column(),
        }
    }
}

/// The bytes of a state: gzip'd input (as the Terraform `kubernetes` backend stores it)
/// is inflated, anything else is taken as it is. At most [`MAX_STATE_BYTES`] either way.
pub fn inflate(bytes: Vec<u8>) -> Result<Vec<u8>, StateError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        if bytes.len() > MAX_STATE_BYTES {
            return Err(StateError::TooLarge);
        }
        return Ok(bytes);
    }
    let mut out = Vec::new();
    GzDecoder::new(bytes.as_slice())
        .take(MAX_STATE_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(StateError::Gzip)?;
    if out.len() > MAX_STATE_BYTES {
        return Err(StateError::TooLarge);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    version: Option<Value>,
    #[serde(borrow, default)]
    resources: Option<&'a RawValue>,
}

/// One resource block of the state: every instance of one `count`/`for_each` resource.
#[derive(Debug, Deserialize)]
pub struct Resource<'a> {
    #[serde(default)]
    pub module: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    #[serde(borrow, default)]
    pub instances: Vec<Instance<'a>>,
}

/// One instance object of a resource.
#[derive(Debug, Deserialize)]
pub struct Instance<'a> {
    #[serde(default)]
    pub index_key: Option<Value>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub deposed: Option<String>,
    #[serde(default)]
    pub schema_version: Option<u64>,
    #[serde(borrow, default)]
    pub attributes: Option<&'a RawValue>,
    #[serde(default)]
    pub identity: Option<Identity>,
}

/// The resource identity Terraform ≥ 1.12 records for provider ≥ 2.38.
#[derive(Debug, Default, Deserialize)]
pub struct Identity {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// How much of an unsupported `version` value an error quotes.
const VERSION_SHOWN: usize = 16;

/// The resources of a state v4 document, borrowing from `json`.
pub fn resources(json: &[u8]) -> Result<Vec<Resource<'_>>, StateError> {
    let envelope: Envelope<'_> = serde_json::from_slice(json).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            StateError::NotJson(e)
        } else {
            StateError::shape(&e)
        }
    })?;
    match &envelope.version {
        None => return Err(StateError::NotState),
        Some(Value::Number(n)) if n.as_u64() == Some(SUPPORTED_VERSION) => {}
        Some(other) => {
            return Err(StateError::Version(crate::core::text::bounded(
                &other.to_string(),
                VERSION_SHOWN,
            )));
        }
    }
    match envelope.resources {
        None => Ok(Vec::new()),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|e| StateError::shape(&e)),
    }
}

impl Resource<'_> {
    pub fn is_managed(&self) -> bool {
        self.mode.as_deref().unwrap_or("managed") == "managed"
    }

    /// The address as Terraform prints it, for the instance with `index_key`:
    /// `module.app.kubernetes_deployment_v1.web["blue"]`, `data.x.y`, `kubernetes_service.api[0]`.
    pub fn address(&self, index_key: Option<&Value>) -> String {
        let mut out = String::new();
        if let Some(module) = self.module.as_deref().filter(|m| !m.is_empty()) {
            out.push_str(module);
            out.push('.');
        }
        if !self.is_managed() {
            out.push_str("data.");
        }
        out.push_str(&self.type_);
        out.push('.');
        out.push_str(&self.name);
        if let Some(index) = index_key.and_then(super::address::index) {
            out.push_str(&index);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(module: Option<&str>, mode: &str) -> Resource<'static> {
        Resource {
            module: module.map(str::to_owned),
            mode: Some(mode.to_owned()),
            type_: "kubernetes_deployment_v1".into(),
            name: "web".into(),
            instances: Vec::new(),
        }
    }

    #[test]
    fn addresses_are_spelled_as_terraform_prints_them() {
        let r = resource(Some("module.app"), "managed");
        assert_eq!(
            r.address(Some(&Value::from("blue"))),
            r#"module.app.kubernetes_deployment_v1.web["blue"]"#
        );
        assert_eq!(
            r.address(Some(&Value::from("${x}"))),
            r#"module.app.kubernetes_deployment_v1.web["$${x}"]"#
        );
        assert_eq!(
            resource(None, "managed").address(Some(&Value::from(0))),
            "kubernetes_deployment_v1.web[0]"
        );
        assert_eq!(
            resource(Some("module.a.module.b"), "data").address(None),
            "module.a.module.b.data.kubernetes_deployment_v1.web"
        );
    }

    #[test]
    fn refuses_what_is_not_a_v4_state() {
        assert!(matches!(resources(b"{"), Err(StateError::NotJson(_))));
        assert!(matches!(resources(b"{}"), Err(StateError::NotState)));
        assert!(matches!(
            resources(br#"{"version":3,"modules":[]}"#),
            Err(StateError::Version(v)) if v == "3"
        ));
        assert!(matches!(
            resources(br#"{"version":4,"resources":{}}"#),
            Err(StateError::Shape { .. })
        ));
        // A value of the wrong type is located, never quoted.
        let wrong = resources(
            br#"{"version":4,"resources":[{"type":"s3cr3t-value","instances":"s3cr3t-too"}]}"#,
        )
        .unwrap_err();
        let text = wrong.to_string();
        assert!(
            !text.contains("s3cr3t") && text.contains("line 1"),
            "{text}"
        );
        assert!(std::error::Error::source(&wrong).is_none());
        assert!(resources(br#"{"version":4}"#).unwrap().is_empty());
    }

    #[test]
    fn gzip_is_inflated_and_a_truncated_stream_refused() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(br#"{"version":4}"#).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(inflate(gz.clone()).unwrap(), br#"{"version":4}"#);
        assert!(matches!(
            inflate(gz[..gz.len() - 6].to_vec()),
            Err(StateError::Gzip(_))
        ));
        assert_eq!(inflate(b"plain".to_vec()).unwrap(), b"plain");
    }
}
