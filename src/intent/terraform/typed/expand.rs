//! A typed resource's attributes turned into the Kubernetes object they describe, guided by
//! the API schema of its kind: an attribute is the API field of the same name (ignoring case
//! and underscores, or the singular of the API's plural: `container` → `containers`); a block
//! (a list in state) is an object where the API has an object and an array where it has one;
//! numbers kept as strings (`replicas = "1"`), octal modes (`"0644"`) and int-or-strings are
//! read back into what the API stores. What the provider does differently is in
//! [`super::resources`].
//!
//! Every attribute the state holds is kept, zeros and empty blocks included: the state says the
//! field is empty, so anything added live there is a change (a toleration, a security
//! context). `""` for a number, and `null`, become `null`: absent or zero.

use serde_json::{Map, Value};

use super::TypedError;
use super::resources::{DefRule, Resource, def_rule};
use crate::core::schema::{Node, NodeId, Scalar, Schema};

/// Walks one instance's attributes.
pub(crate) struct Expander<'a> {
    pub schema: &'a Schema,
    pub resource: &'a Resource,
    /// The API path being built (`spec.template.spec.containers`), field names only.
    pub path: Vec<String>,
    /// The state path (`spec.template.spec.container`), for errors and the unmapped list.
    pub state_path: Vec<String>,
    /// State attributes with no API field and not known to have none: tests fail on these.
    pub unmapped: Vec<String>,
}

impl Expander<'_> {
    pub fn api_path(&self) -> String {
        self.path.join(".")
    }

    fn state_path(&self) -> String {
        self.state_path.join(".")
    }

    pub fn error(&self) -> TypedError {
        TypedError::Attribute(self.state_path())
    }

    /// The object a block's attributes describe, for struct node `node`.
    pub fn structure(
        &mut self,
        attrs: &Map<String, Value>,
        node: NodeId,
    ) -> Result<Map<String, Value>, TypedError> {
        let mut out = Map::new();
        self.fill(attrs, node, &mut out)?;
        Ok(out)
    }

    fn fill(
        &mut self,
        attrs: &Map<String, Value>,
        node: NodeId,
        out: &mut Map<String, Value>,
    ) -> Result<(), TypedError> {
        let schema = self.schema;
        let (def, fields) = match schema.node(node) {
            Node::Struct { def, fields, .. } => (def.as_deref(), fields),
            _ => return Ok(()),
        };
        for (attr, value) in attrs {
            self.state_path.push(attr.clone());
            let state_path = self.state_path();
            if self.resource.is_inline(&state_path) {
                // A wrapper block whose fields the API has in this object (a PV's
                // `persistent_volume_source`).
                if let Some(inner) = block(value) {
                    self.fill(inner, node, out)?;
                }
                self.state_path.pop();
                continue;
            }
            let name = self
                .resource
                .rename(&state_path)
                .or_else(|| def.and_then(|d| super::resources::def_rename(d, attr)))
                .map(str::to_owned)
                .or_else(|| {
                    field_for(attr, fields.iter().map(|(f, _)| f.as_ref())).map(str::to_owned)
                });
            let Some(name) = name else {
                let shared = def.is_some_and(|d| super::resources::def_not_api(d, attr));
                if !shared && !self.resource.is_not_api(&state_path) {
                    self.unmapped.push(state_path);
                }
                self.state_path.pop();
                continue;
            };
            self.path.push(name.clone());
            let api_path = self.api_path();
            let rule = def.and_then(|d| def_rule(d, &name));
            let skipped =
                self.resource.is_skipped(&api_path) || matches!(rule, Some(DefRule::Skip));
            if !skipped {
                let field = schema.field(node, &name);
                let mut converted = match (rule, field) {
                    (Some(DefRule::Special(special)), _) => special(self, value)?,
                    (_, Some(field)) => self.value(value, field.node)?,
                    (_, None) => value.clone(),
                };
                // The zero of a pointer the provider does not send: absent, not a value. A
                // number kept as a non-empty string (`run_as_user = "0"`) was sent.
                let sent = matches!(rule, Some(DefRule::SendsZero | DefRule::Lenient))
                    || matches!(value, Value::String(s) if !s.is_empty());
                if field.is_some_and(|f| f.zero_is_value) && !sent && is_zero_scalar(&converted) {
                    converted = Value::Null;
                }
                let empty = crate::core::compare::is_zero(&converted);
                let drop = empty
                    && (self.resource.is_kept_only_if_set(&api_path)
                        || matches!(rule, Some(DefRule::OnlyIfSet)));
                if !drop {
                    out.insert(name, converted);
                }
            }
            self.path.pop();
            self.state_path.pop();
        }
        Ok(())
    }

    /// One attribute's value as the API field `node` holds it.
    pub fn value(&mut self, value: &Value, node: NodeId) -> Result<Value, TypedError> {
        let schema = self.schema;
        Ok(match schema.node(node) {
            Node::Struct { .. } => match block(value) {
                Some(attrs) => Value::Object(self.structure(attrs, node)?),
                None => Value::Object(Map::new()),
            },
            Node::List { item, .. } => {
                let item = *item;
                match value {
                    Value::Array(items) => {
                        let mut out = Vec::with_capacity(items.len());
                        for (i, v) in items.iter().enumerate() {
                            self.state_path.push(i.to_string());
                            out.push(self.value(v, item)?);
                            self.state_path.pop();
                        }
                        Value::Array(out)
                    }
                    Value::Null => Value::Array(Vec::new()),
                    other => Value::Array(vec![self.value(other, item)?]),
                }
            }
            Node::Map(item) => {
                let item = *item;
                // Schema 0 stored some maps (resource limits) as one-element blocks.
                let Some(entries) = block(value) else {
                    return Ok(Value::Object(Map::new()));
                };
                let mut out = Map::new();
                for (k, v) in entries {
                    self.state_path.push(k.clone());
                    let converted = self.value(v, item)?;
                    self.state_path.pop();
                    out.insert(k.clone(), converted);
                }
                Value::Object(out)
            }
            Node::Scalar(kind) => self.scalar(value, *kind)?,
            Node::Any | Node::Free => value.clone(),
        })
    }

    fn scalar(&self, value: &Value, kind: Scalar) -> Result<Value, TypedError> {
        let octal = self
            .path
            .last()
            .is_some_and(|f| f == "mode" || f == "defaultMode");
        Ok(match (kind, value) {
            (_, Value::Null) => Value::Null,
            (Scalar::Integer, Value::String(s)) if s.is_empty() => Value::Null,
            (Scalar::Integer, Value::String(s)) if octal => {
                let digits = s.trim_start_matches("0o");
                Value::from(i64::from_str_radix(digits, 8).map_err(|_| self.error())?)
            }
            (Scalar::Integer | Scalar::Number, Value::String(s)) => match s.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::from(s.parse::<f64>().map_err(|_| self.error())?),
            },
            (Scalar::IntOrString, Value::String(s)) if s.is_empty() => Value::Null,
            (Scalar::IntOrString, Value::String(s)) => match s.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => value.clone(),
            },
            (Scalar::Quantity, Value::String(s)) if s.is_empty() => Value::Null,
            (Scalar::Boolean, Value::String(s)) => match s.as_str() {
                "" => Value::Null,
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(self.error()),
            },
            (Scalar::String, Value::Number(n)) => Value::from(n.to_string()),
            _ => value.clone(),
        })
    }
}

fn is_zero_scalar(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// The attributes of a block: its one element (a list in state), or the object itself.
pub(super) fn block(value: &Value) -> Option<&Map<String, Value>> {
    match value {
        Value::Array(items) => items.first().and_then(Value::as_object),
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The API field an attribute names: the same name ignoring case and underscores, or the
/// attribute in the singular of the API's plural.
pub(super) fn field_for<'f>(
    attr: &str,
    fields: impl Iterator<Item = &'f str> + Clone,
) -> Option<&'f str> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let a = norm(attr);
    let plurals = [
        format!("{a}s"),
        format!("{a}es"),
        a.strip_suffix('y')
            .map(|s| format!("{s}ies"))
            .unwrap_or_default(),
    ];
    fields
        .clone()
        .find(|f| norm(f) == a)
        .or_else(|| fields.clone().find(|f| plurals.contains(&norm(f))))
}

/// The blocks of a repeated block attribute.
pub(super) fn blocks(value: &Value) -> impl Iterator<Item = &Map<String, Value>> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_find_their_fields() {
        let fields = [
            "imagePullPolicy",
            "hostIP",
            "cephfs",
            "containers",
            "addresses",
            "policies",
            "nonResourceURLs",
            "env",
        ];
        for (attr, field) in [
            ("image_pull_policy", "imagePullPolicy"),
            ("host_ip", "hostIP"),
            ("ceph_fs", "cephfs"),
            ("container", "containers"),
            ("address", "addresses"),
            ("policy", "policies"),
            ("non_resource_urls", "nonResourceURLs"),
            ("env", "env"),
        ] {
            assert_eq!(
                field_for(attr, fields.iter().copied()),
                Some(field),
                "{attr}"
            );
        }
        assert_eq!(field_for("wait_for_rollout", fields.iter().copied()), None);
    }
}
