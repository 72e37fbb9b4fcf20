use k8s_openapi::api::apps::v1::DaemonSet;
use serde::Serialize;

use super::pod::PodTemplateFingerprint;
use super::{Fingerprint, FingerprintError};

/// A DaemonSet runs one pod per node: no replicas.
#[derive(Debug, PartialEq, Serialize)]
pub struct DaemonSetFingerprint {
    template: PodTemplateFingerprint,
}

impl Fingerprint for DaemonSet {
    type Canonical = DaemonSetFingerprint;

    fn canonical(&self) -> Result<DaemonSetFingerprint, FingerprintError> {
        let spec = self
            .spec
            .as_ref()
            .ok_or(FingerprintError::MissingSpec { kind: "DaemonSet" })?;
        Ok(DaemonSetFingerprint {
            template: PodTemplateFingerprint::new(&spec.template)?,
        })
    }
}
