//! The patch-style resources of the Kubernetes provider, which manage part of an object
//! another tool (or another address) owns: `kubernetes_labels`, `kubernetes_annotations`,
//! `kubernetes_env`, `kubernetes_config_map_v1_data`, `kubernetes_secret_v1_data`,
//! `kubernetes_node_taint`. Each is judged on the keys it sets, on the object it targets.

use serde_json::{Map, Value, json};

use crate::core::secret::{Encoding, digest_map};

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("has no metadata.name")]
    NoName,
    #[error("attribute {0} is not what the provider writes")]
    Attribute(&'static str),
}

/// The patch-style resource types.
pub const TYPES: [&str; 6] = [
    "kubernetes_labels",
    "kubernetes_annotations",
    "kubernetes_env",
    "kubernetes_config_map_v1_data",
    "kubernetes_secret_v1_data",
    "kubernetes_node_taint",
];

/// The part of its target a patch-style instance sets, as a partial object of the target's
/// kind: only the keys it owns.
pub fn object(resource_type: &str, attrs: &Value) -> Result<Value, PatchError> {
    let meta = attrs
        .get("metadata")
        .and_then(|m| m.as_array().and_then(|a| a.first()).or(Some(m)))
        .and_then(Value::as_object)
        .ok_or(PatchError::NoName)?;
    let name = text(meta.get("name")).ok_or(PatchError::NoName)?;
    let namespace = text(meta.get("namespace"));
    let (api_version, kind) = match resource_type {
        "kubernetes_config_map_v1_data" => ("v1".to_owned(), "ConfigMap".to_owned()),
        "kubernetes_secret_v1_data" => ("v1".to_owned(), "Secret".to_owned()),
        "kubernetes_node_taint" => ("v1".to_owned(), "Node".to_owned()),
        _ => (
            text(attrs.get("api_version")).ok_or(PatchError::Attribute("api_version"))?,
            text(attrs.get("kind")).ok_or(PatchError::Attribute("kind"))?,
        ),
    };
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::from(name));
    if let Some(ns) = namespace {
        metadata.insert("namespace".into(), Value::from(ns));
    }
    let mut object = json!({"apiVersion": api_version, "kind": kind});
    let template = |spec: Value| -> Value {
        match kind.as_str() {
            "CronJob" => json!({"jobTemplate": {"spec": {"template": spec}}}),
            "Pod" => spec.get("spec").cloned().unwrap_or(Value::Null),
            _ => json!({ "template": spec }),
        }
    };
    match resource_type {
        "kubernetes_labels" => {
            metadata.insert("labels".into(), map(attrs, "labels"));
        }
        "kubernetes_annotations" => {
            let annotations = map(attrs, "annotations");
            if annotations.as_object().is_some_and(|m| !m.is_empty()) {
                metadata.insert("annotations".into(), annotations);
            }
            let on_template = map(attrs, "template_annotations");
            if on_template.as_object().is_some_and(|m| !m.is_empty()) {
                object["spec"] = template(json!({"metadata": {"annotations": on_template}}));
            }
        }
        "kubernetes_env" => {
            let (list, container) = match (
                text(attrs.get("container")),
                text(attrs.get("init_container")),
            ) {
                (Some(c), _) => ("containers", c),
                (None, Some(c)) => ("initContainers", c),
                (None, None) => return Err(PatchError::Attribute("container")),
            };
            let env = super::typed::env_list(attrs.get("env").unwrap_or(&Value::Null))
                .map_err(|_| PatchError::Attribute("env"))?;
            object["spec"] = template(json!({"spec": {list: [{"name": container, "env": env}]}}));
        }
        "kubernetes_config_map_v1_data" => object["data"] = map(attrs, "data"),
        "kubernetes_secret_v1_data" => {
            let data = attrs
                .get("data")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            object["data"] = Value::Object(digest_map(&data, Encoding::Plain));
        }
        "kubernetes_node_taint" => {
            let taints: Vec<Value> = attrs
                .get("taint")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .map(|t| {
                    let mut out = Map::new();
                    for k in ["key", "value", "effect"] {
                        if let Some(v) = text(t.get(k)) {
                            out.insert(k.into(), Value::from(v));
                        }
                    }
                    Value::Object(out)
                })
                .collect();
            object["spec"] = json!({ "taints": taints });
        }
        _ => return Err(PatchError::Attribute("type")),
    }
    object["metadata"] = Value::Object(metadata);
    Ok(object)
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn map(attrs: &Value, key: &str) -> Value {
    Value::Object(
        attrs
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    )
}
