//! Which Deployments and StatefulSets an HorizontalPodAutoscaler scales, so that their
//! `replicas` is not taken for intent: read from an HPA the operator watches or from one in
//! `tfdrift hash`'s input.

use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use serde_json::Value;

use crate::core::object::ObjectId;

pub const KIND: &str = "HorizontalPodAutoscaler";

/// The kinds an HPA can scale that tfdrift fingerprints.
pub const SCALABLE: [&str; 2] = ["Deployment", "StatefulSet"];

/// The target named by a `scaleTargetRef`, if tfdrift fingerprints its kind.
fn target(namespace: &str, api_version: Option<&str>, kind: &str, name: &str) -> Option<ObjectId> {
    let in_apps = api_version.is_none_or(|v| v.starts_with("apps/"));
    (SCALABLE.contains(&kind) && in_apps && !name.is_empty()).then(|| ObjectId {
        group: "apps".to_owned(),
        kind: kind.to_owned(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

/// The Deployment or StatefulSet `hpa` scales, if any.
pub fn target_of(hpa: &HorizontalPodAutoscaler) -> Option<ObjectId> {
    let reference = &hpa.spec.as_ref()?.scale_target_ref;
    target(
        hpa.metadata.namespace.as_deref().unwrap_or(""),
        reference.api_version.as_deref(),
        &reference.kind,
        &reference.name,
    )
}

/// The target of an HPA given as a manifest (any autoscaling version: `scaleTargetRef`
/// is the same in all), for `tfdrift hash`.
pub fn target_of_manifest(value: &Value) -> Option<ObjectId> {
    let api_version = value.get("apiVersion")?.as_str()?;
    if value.get("kind")?.as_str()? != KIND || !api_version.starts_with("autoscaling/") {
        return None;
    }
    let namespace = value
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let reference = value.pointer("/spec/scaleTargetRef")?;
    let field = |f: &str| reference.get(f).and_then(Value::as_str);
    target(
        namespace,
        field("apiVersion"),
        field("kind")?,
        field("name")?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_only_scalable_apps_kinds() {
        let hpa = |api: &str, kind: &str| {
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                   "metadata": {"name": "h", "namespace": "ns"},
                   "spec": {"scaleTargetRef": {"apiVersion": api, "kind": kind, "name": "web"}}})
        };
        assert_eq!(
            target_of_manifest(&hpa("apps/v1", "Deployment")),
            Some(ObjectId {
                group: "apps".into(),
                kind: "Deployment".into(),
                namespace: "ns".into(),
                name: "web".into()
            })
        );
        assert!(target_of_manifest(&hpa("apps/v1", "StatefulSet")).is_some());
        assert!(target_of_manifest(&hpa("apps/v1", "ReplicaSet")).is_none());
        assert!(target_of_manifest(&hpa("example.com/v1", "Deployment")).is_none());
        assert!(target_of_manifest(&json!({"kind": "HorizontalPodAutoscaler"})).is_none());
    }
}
