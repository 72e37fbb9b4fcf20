use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use serde::Serialize;

use super::{Fingerprint, FingerprintError};

/// Data is intent byte for byte: values are not trimmed.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapFingerprint {
    data: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    binary_data: BTreeMap<String, ByteString>,
}

impl Fingerprint for ConfigMap {
    type Canonical = ConfigMapFingerprint;

    fn canonical(&self) -> Result<ConfigMapFingerprint, FingerprintError> {
        Ok(ConfigMapFingerprint {
            data: self.data.clone().unwrap_or_default(),
            binary_data: self.binary_data.clone().unwrap_or_default(),
        })
    }
}
