//! Fingerprints of objects given as JSON values (manifests, live objects, objects built
//! from Terraform state), dispatched on `apiVersion` and `kind`.

use serde_json::Value;

use super::FingerprintError;

/// Why a JSON value of a supported kind has no fingerprint.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("not a valid object of its kind")]
    Decode(#[source] serde_json::Error),
    #[error(transparent)]
    Fingerprint(FingerprintError),
    #[error("not a kind tfdrift fingerprints")]
    Unsupported,
}

/// The hash of one object of a supported kind, `None` for any other kind.
pub fn hash_value(value: &Value) -> Option<Result<String, ValueError>> {
    fingerprint_value(value).map(|r| r.map(|(hash, _)| hash))
}

/// The hash and canonical fingerprint of one object of a supported kind.
pub fn fingerprint_value(value: &Value) -> Option<Result<(String, Value), ValueError>> {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    spec_of(value).map(|spec| {
        let spec = spec?;
        let hash = super::hash_spec(kind, &spec).map_err(ValueError::Fingerprint)?;
        Ok((hash, spec))
    })
}

/// The canonical fingerprint of one object of a supported kind, `None` for any other.
pub fn spec_of(value: &Value) -> Option<Result<Value, ValueError>> {
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    macro_rules! dispatch {
        ($($variant:ident: $ty:ty => $kind:literal, $api:literal;)*) => {
            match (api_version, kind) {
                $(($api, $kind) => Some(
                    serde_json::from_value::<$ty>(value.clone())
                        .map_err(ValueError::Decode)
                        .and_then(|obj| super::spec_value(&obj).map_err(ValueError::Fingerprint)),
                ),)*
                _ => None,
            }
        };
    }
    crate::for_each_kind!(dispatch)
}

/// Whether `value` is of a supported kind (its apiVersion and kind).
pub fn is_supported(value: &Value) -> bool {
    let field = |f: &str| value.get(f).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    macro_rules! supported {
        ($($variant:ident: $ty:ty => $kind:literal, $api:literal;)*) => {
            matches!((api_version, kind), $(($api, $kind))|*)
        };
    }
    crate::for_each_kind!(supported)
}
