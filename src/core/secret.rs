//! Secret values compared without being kept: each value becomes a keyed digest
//! (HMAC-SHA-256 under a key drawn at random once per process), so that two values are equal
//! exactly when their digests are, and a digest says nothing about the value outside this
//! process. Intent and live are digested alike before they are compared.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

/// The prefix of a digest, so that one is never taken for a value.
const PREFIX: &str = "hmac-sha256:";

fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        // Without an OS random source the key is fixed: digests then still compare equal
        // values, but one could be checked against a guessed value by anyone with this build.
        let _ = getrandom::fill(&mut key);
        key
    })
}

/// The keyed digest of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key()) else {
        return PREFIX.to_owned();
    };
    mac.update(bytes);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `s` is a digest this module made.
pub fn is_digest(s: &str) -> bool {
    s.starts_with(PREFIX)
}

/// How a Secret's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As the API holds `data`: base64.
    Base64,
    /// As they are (`stringData`, Terraform state's `data`).
    Plain,
}

/// A map of Secret values with each value replaced by its digest; a value that is not valid
/// base64 where base64 is expected is digested as the text it is (it then differs from any
/// valid value).
pub fn digest_map(values: &Map<String, Value>, encoding: Encoding) -> Map<String, Value> {
    values
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let bytes = match encoding {
                Encoding::Plain => text.into_bytes(),
                Encoding::Base64 => STANDARD
                    .decode(text.trim())
                    .unwrap_or_else(|_| text.into_bytes()),
            };
            (k.clone(), Value::from(digest(&bytes)))
        })
        .collect()
}

/// A Secret object (live, or a manifest) with `data` and `stringData` digested into one
/// `data` map, as the server merges them: no value of it is left.
pub fn digest_object(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let mut data = match map.remove("data") {
        Some(Value::Object(d)) => digest_map(&d, Encoding::Base64),
        _ => Map::new(),
    };
    if let Some(Value::Object(s)) = map.remove("stringData") {
        data.extend(digest_map(&s, Encoding::Plain));
    }
    // `last-applied-configuration` holds the whole object kubectl applied, values included.
    if let Some(annotations) = map
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
        && let Some(v) = annotations.get_mut(LAST_APPLIED)
    {
        *v = Value::from(digest(v.as_str().unwrap_or_default().as_bytes()));
    }
    map.insert("data".into(), Value::Object(data));
}

/// The annotation `kubectl apply` keeps the applied object in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digests_meet_whatever_the_encoding_and_hold_no_value() {
        let mut live =
            json!({"kind": "Secret", "data": {"password": STANDARD.encode("s3cr3t"), "e": ""}});
        digest_object(&mut live);
        let intent = digest_map(
            json!({"password": "s3cr3t", "e": ""}).as_object().unwrap(),
            Encoding::Plain,
        );
        assert_eq!(live["data"], Value::Object(intent));
        let text = live.to_string();
        assert!(
            !text.contains("s3cr3t") && !text.contains(&STANDARD.encode("s3cr3t")),
            "{text}"
        );
        assert!(is_digest(live["data"]["password"].as_str().unwrap()));
        let mut manifest = json!({"kind": "Secret", "stringData": {"password": "s3cr3t"}});
        digest_object(&mut manifest);
        assert_eq!(manifest["data"]["password"], live["data"]["password"]);
        assert_ne!(digest(b"a"), digest(b"b"));
    }
}
