//! `kubectl_manifest` (gavinbunney/kubectl and the alekc/kubectl fork): the intent is the
//! object of its `yaml_body`, with `override_namespace` applied; the fields of the body are
//! compared except its `ignore_fields`, and keys or items added live are not drift, as the
//! provider has it.

use serde_json::Value;

use crate::core::ignore::Path;

#[derive(Debug, thiserror::Error)]
pub enum KubectlError {
    #[error("kubectl_manifest without a yaml_body")]
    NoBody,
    /// Where, not what: the body may hold a Secret.
    #[error("yaml_body is not one YAML object")]
    NotAnObject,
}

/// What a `kubectl_manifest` instance intends.
pub struct Kubectl {
    pub object: Value,
    /// `ignore_fields`.
    pub ignored: Vec<Path>,
}

pub fn read(attrs: &Value) -> Result<Kubectl, KubectlError> {
    let body = attrs
        .get("yaml_body")
        .and_then(Value::as_str)
        .filter(|b| !b.trim().is_empty())
        .ok_or(KubectlError::NoBody)?;
    let mut object: Value = serde_saphyr::from_str(body).map_err(|_| KubectlError::NotAnObject)?;
    if !object.is_object() {
        return Err(KubectlError::NotAnObject);
    }
    if let Some(ns) = attrs
        .get("override_namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("namespace".into(), Value::from(ns));
    }
    let ignored = attrs
        .get("ignore_fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|f| Path::parse(f).ok())
        .collect();
    Ok(Kubectl { object, ignored })
}
