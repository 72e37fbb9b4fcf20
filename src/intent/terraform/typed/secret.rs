//! `kubernetes_secret(_v1)`: state holds `data` in plain text and `binary_data` in base64; the
//! provider sends the first as `stringData` and the second as `data`, which the server merges
//! into one `data`. The intent keeps a digest of each value, never the value.

use serde_json::{Map, Value};

use super::TypedError;
use crate::core::secret::{Encoding, digest_map};

/// The Secret's `data` from its attributes, digested; none when the provider does not read it
/// back (write-only data, a service-account token the token controller fills).
pub fn finish(object: &mut Value, attrs: &Value) -> Result<(), TypedError> {
    let Some(map) = object.as_object_mut() else {
        return Ok(());
    };
    let write_only = ["data_wo_revision", "binary_data_wo_revision"]
        .iter()
        .any(|k| attrs.get(k).and_then(Value::as_i64).is_some_and(|n| n > 0));
    let token =
        map.get("type").and_then(Value::as_str) == Some("kubernetes.io/service-account-token");
    if write_only || token {
        return Ok(());
    }
    let mut data = Map::new();
    if let Some(Value::Object(plain)) = attrs.get("data") {
        data.extend(digest_map(plain, Encoding::Plain));
    }
    if let Some(Value::Object(encoded)) = attrs.get("binary_data") {
        data.extend(digest_map(encoded, Encoding::Base64));
    }
    map.insert("data".into(), Value::Object(data));
    Ok(())
}

/// Whether the state holds the Secret's data: not when it is write-only (`data_wo`).
pub fn write_only(attrs: &Value) -> bool {
    ["data_wo_revision", "binary_data_wo_revision"]
        .iter()
        .any(|k| attrs.get(k).and_then(Value::as_i64).is_some_and(|n| n > 0))
}
