//! The typed `kubernetes_*` resources of the Terraform Kubernetes provider, turned back into
//! the Kubernetes objects they describe: every attribute the state holds, as the API names
//! and shapes it ([`expand`]), with what each resource does differently ([`resources`]).
//!
//! The provider's layout: snake_case names; nested blocks stored as lists (one element for a
//! single block); unset blocks `[]`, unset strings `""`, unset maps `null` or `{}`; numbers
//! kept as strings (`replicas`, security-context ids, `toleration_seconds`); modes as octal
//! strings; every volume carrying every source key. Schema version 0 (provider < 2.0) stored
//! resource limits and requests as blocks where version 1 has maps.

pub(crate) mod expand;
pub mod resources;
mod secret;
mod volumes;

use serde_json::{Map, Value};

use crate::core::kind::{self, Kind};
use crate::core::schema::{Schema, builtin};
pub use resources::Resource;

/// Why an instance's attributes do not describe an object. Names the attribute, never its
/// value (state holds secrets).
#[derive(Debug, thiserror::Error)]
pub enum TypedError {
    #[error("has no metadata.name")]
    NoName,
    #[error("attribute {0} is not what the provider writes")]
    Attribute(String),
    #[error("tfdrift has no schema for {0}")]
    NoSchema(String),
}

/// The object a typed instance describes.
#[derive(Debug, Clone)]
pub struct Typed {
    pub resource: &'static Resource,
    pub kind: &'static Kind,
    /// The object, in the API's names and shapes.
    pub object: Value,
    /// The uid the provider recorded.
    pub uid: Option<String>,
    /// The Secret's data is write-only (`data_wo`): not in state, not judged.
    pub write_only_data: bool,
    /// Attributes with no API field tfdrift knows of (for tests: none should be).
    pub unmapped: Vec<String>,
}

/// The object instance attributes `attrs` of provider type `resource_type` describe; `None`
/// for a type tfdrift does not read.
pub fn object(resource_type: &str, attrs: &Value) -> Option<Result<Typed, TypedError>> {
    let resource = resources::of(resource_type, attrs)?;
    Some(convert(resource, attrs, builtin::schema()))
}

fn convert(
    resource: &'static Resource,
    attrs: &Value,
    schema: &Schema,
) -> Result<Typed, TypedError> {
    let kind = kind::builtin(resource.api_version, resource.kind).ok_or_else(|| {
        TypedError::NoSchema(format!("{} {}", resource.api_version, resource.kind))
    })?;
    let root = schema
        .def(kind.def)
        .ok_or_else(|| TypedError::NoSchema(kind.def.to_owned()))?;
    let Some(fields) = attrs.as_object() else {
        return Err(TypedError::NoName);
    };
    let meta =
        expand::block(attrs.get("metadata").unwrap_or(&Value::Null)).ok_or(TypedError::NoName)?;
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(TypedError::NoName)?;
    let uid = meta
        .get("uid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let mut expander = expand::Expander {
        schema,
        resource,
        path: Vec::new(),
        state_path: Vec::new(),
        unmapped: Vec::new(),
    };
    let mut body = expander.structure(fields, root)?;
    body.insert("apiVersion".into(), Value::from(resource.api_version));
    body.insert("kind".into(), Value::from(resource.kind));
    let metadata = body
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(m) = metadata.as_object_mut() {
        m.insert("name".into(), Value::from(name));
        if kind.namespaced {
            let ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("default");
            m.insert("namespace".into(), Value::from(ns));
        } else {
            m.remove("namespace");
        }
    }
    let mut object = Value::Object(body);
    if let Some(finish) = resource.finish {
        finish(&mut object, attrs)?;
    }
    Ok(Typed {
        resource,
        kind,
        object,
        uid,
        write_only_data: resource.kind == "Secret" && secret::write_only(attrs),
        unmapped: expander.unmapped,
    })
}

/// Whether the zero of field `field` of definition `def` means "zero or absent" for a typed
/// resource (whatever the field's Go type).
pub fn is_lenient(def: Option<&str>, field: &str) -> bool {
    def.and_then(|d| resources::def_rule(d, field))
        .is_some_and(|r| matches!(r, resources::DefRule::Lenient))
}

/// Whether the list at an API path of a typed resource's object is compared as a set: the
/// provider's `TypeSet` attributes there or in a type it shares.
pub fn is_set(resource: &Resource, def: Option<&str>, field: &str, api_path: &str) -> bool {
    resource.is_set(api_path)
        || def
            .and_then(|d| resources::def_rule(d, field))
            .is_some_and(|r| matches!(r, resources::DefRule::Set))
}

/// A container's `env` blocks (as `kubernetes_env` holds them) as the API's `env` list.
pub fn env_list(value: &Value) -> Result<Value, TypedError> {
    let schema = builtin::schema();
    let node = schema
        .def("io.k8s.api.core.v1.Container")
        .and_then(|c| schema.field(c, "env"))
        .map(|f| f.node)
        .ok_or_else(|| TypedError::NoSchema("io.k8s.api.core.v1.Container".into()))?;
    let mut expander = expand::Expander {
        schema,
        resource: &resources::GENERIC,
        path: vec!["env".into()],
        state_path: vec!["env".into()],
        unmapped: Vec::new(),
    };
    expander.value(value, node)
}
