use k8s_openapi::api::apps::v1::StatefulSet;
use serde::Serialize;

use super::canonical::non_empty;
use super::pod::PodTemplateFingerprint;
use super::{Fingerprint, FingerprintError};

#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetFingerprint {
    replicas: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_name: Option<String>,
    template: PodTemplateFingerprint,
}

impl Fingerprint for StatefulSet {
    type Canonical = StatefulSetFingerprint;

    fn canonical(&self) -> Result<StatefulSetFingerprint, FingerprintError> {
        let spec = self.spec.as_ref().ok_or(FingerprintError::MissingSpec {
            kind: "StatefulSet",
        })?;
        Ok(StatefulSetFingerprint {
            replicas: spec.replicas.unwrap_or(1),
            service_name: non_empty(&spec.service_name),
            template: PodTemplateFingerprint::new(&spec.template)?,
        })
    }
}
