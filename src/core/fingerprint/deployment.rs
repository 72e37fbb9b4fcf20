use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;

use super::pod::PodTemplateFingerprint;
use super::{Fingerprint, FingerprintError};

#[derive(Debug, PartialEq, Serialize)]
pub struct DeploymentFingerprint {
    replicas: i32,
    template: PodTemplateFingerprint,
}

impl Fingerprint for Deployment {
    type Canonical = DeploymentFingerprint;

    fn canonical(&self) -> Result<DeploymentFingerprint, FingerprintError> {
        let spec = self
            .spec
            .as_ref()
            .ok_or(FingerprintError::MissingSpec { kind: "Deployment" })?;
        Ok(DeploymentFingerprint {
            replicas: spec.replicas.unwrap_or(1),
            template: PodTemplateFingerprint::new(&spec.template)?,
        })
    }
}
