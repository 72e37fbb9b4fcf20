//! The shape of Kubernetes objects, as far as turning intent into objects and comparing them
//! needs it: which fields are objects, maps with user keys, lists (and how a list's items are
//! matched: atomic, as a set, or by key fields), and what kind of scalar a value is.
//!
//! A [`Schema`] is read from an OpenAPI document — the server's (`/openapi/v2` definitions or a
//! `/openapi/v3` group-version document) for custom resources, or the JSON Schemas k8s-openapi
//! carries for the built-in kinds ([`builtin`]). Nodes live in one arena, so recursive types
//! (a CRD's `JSONSchemaProps`) are fine.

pub mod builtin;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

/// Index of a node in its [`Schema`].
pub type NodeId = usize;

/// How the items of a list are matched between intent and live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Compared as a whole, in order.
    Atomic,
    /// Compared as a set: order and repetition are not intent.
    Set,
    /// Items matched by these fields (a container by `name`, a port by `containerPort` and
    /// `protocol`); order is not intent.
    Keyed(Arc<[Box<str>]>),
}

/// A scalar's kind, for normalising values as the API server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Integer,
    Number,
    Boolean,
    /// A resource quantity (`500m`, `1Gi`): compared by value.
    Quantity,
    /// An int-or-string (`8080`, `"http"`, `"25%"`).
    IntOrString,
    /// Base64 in JSON (`binaryData`, a `caBundle`).
    Bytes,
}

#[derive(Debug, Clone)]
pub enum Node {
    /// An object with named fields; `def` is its definition's name
    /// (`io.k8s.api.core.v1.Container`) where it has one.
    Struct {
        def: Option<Arc<str>>,
        fields: Vec<(Box<str>, Field)>,
        /// Fields not listed may appear (`x-kubernetes-preserve-unknown-fields`).
        open: bool,
    },
    /// An object whose keys are data (`labels`, `data`), every value of one shape.
    Map(NodeId),
    List {
        item: NodeId,
        kind: ListKind,
    },
    Scalar(Scalar),
    /// Free-form JSON the schema leaves open (`x-kubernetes-preserve-unknown-fields`, a
    /// `RawExtension`): owned whole, like a map.
    Free,
    /// Nothing known (no schema at all): compared as JSON, the intent's keys only.
    Any,
}

/// A field of a struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub node: NodeId,
    /// Zero (`false`, `0`, `""`) is a value the server keeps, not the same as absence: a Go
    /// pointer field of a built-in type, or any field of a custom resource (stored as sent).
    pub zero_is_value: bool,
}

/// Nodes, and the definitions they came from.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    nodes: Vec<Node>,
    defs: HashMap<Arc<str>, NodeId>,
    /// Custom resources keep what they are sent: every zero is a value.
    zero_is_value: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the OpenAPI document has no definitions")]
    NoDefinitions,
    #[error("the OpenAPI document refers to a missing definition {0}")]
    MissingDefinition(String),
}

/// The node every unknown part of a document gets.
const ANY: NodeId = 0;
/// The node of free-form parts.
const FREE: NodeId = 1;

impl Schema {
    /// An empty schema: every value is [`Node::Any`].
    pub fn any() -> Schema {
        Schema {
            nodes: vec![Node::Any, Node::Free],
            ..Schema::default()
        }
    }

    /// The free-form node.
    pub fn free(&self) -> NodeId {
        FREE
    }

    /// Makes field `field` of definition `def` free-form: owned whole.
    pub fn set_free(&mut self, def: &str, field: &str) {
        let Some(id) = self.def(def) else { return };
        if let Some(Node::Struct { fields, .. }) = self.nodes.get_mut(id)
            && let Ok(i) = fields.binary_search_by(|(f, _)| f.as_ref().cmp(field))
        {
            fields[i].1.node = FREE;
        }
    }

    pub fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id).unwrap_or(&Node::Any)
    }

    /// The node of the definition `def`.
    pub fn def(&self, def: &str) -> Option<NodeId> {
        self.defs.get(def).copied()
    }

    /// The field `name` of the struct `id`.
    pub fn field(&self, id: NodeId, name: &str) -> Option<Field> {
        match self.node(id) {
            Node::Struct { fields, .. } => fields
                .binary_search_by(|(f, _)| f.as_ref().cmp(name))
                .ok()
                .map(|i| fields[i].1),
            _ => None,
        }
    }

    /// Whether this schema describes custom resources (every zero is a value).
    pub fn keeps_zeros(&self) -> bool {
        self.zero_is_value
    }

    /// The definitions of an OpenAPI v2 document (`definitions`), a v3 document
    /// (`components.schemas`) or a JSON Schema (`$defs`); `zero_is_value` for the documents of
    /// custom resources.
    pub fn from_openapi(doc: &Value, zero_is_value: bool) -> Result<Schema, SchemaError> {
        let defs = doc
            .get("definitions")
            .or_else(|| doc.pointer("/components/schemas"))
            .or_else(|| doc.get("$defs"))
            .and_then(Value::as_object)
            .ok_or(SchemaError::NoDefinitions)?;
        let mut reader = Reader {
            schema: Schema {
                zero_is_value,
                ..Schema::any()
            },
            source: defs,
        };
        for name in defs.keys() {
            reader.def(name)?;
        }
        Ok(reader.schema)
    }

    /// Adds the definitions of `doc` (as [`Schema::from_openapi`]) that this schema lacks.
    pub fn extend_from(
        &mut self,
        defs: &serde_json::Map<String, Value>,
    ) -> Result<(), SchemaError> {
        let mut reader = Reader {
            schema: std::mem::take(self),
            source: defs,
        };
        let result = defs.keys().try_for_each(|name| reader.def(name).map(drop));
        *self = reader.schema;
        result
    }

    /// Replaces how the items of list `field` of definition `def` are matched.
    pub fn set_list_kind(&mut self, def: &str, field: &str, kind: ListKind) {
        let Some(list) = self.def(def).and_then(|id| self.field(id, field)) else {
            return;
        };
        if let Some(Node::List { kind: k, .. }) = self.nodes.get_mut(list.node) {
            *k = kind;
        }
    }

    /// Marks field `field` of definition `def` as one whose zero is a value (a Go pointer).
    pub fn set_zero_is_value(&mut self, def: &str, field: &str) {
        let Some(id) = self.def(def) else { return };
        if let Some(Node::Struct { fields, .. }) = self.nodes.get_mut(id)
            && let Ok(i) = fields.binary_search_by(|(f, _)| f.as_ref().cmp(field))
        {
            fields[i].1.zero_is_value = true;
        }
    }

    /// Adds a node, for schemas built by hand.
    pub fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Names `id` as definition `def`.
    pub fn name(&mut self, def: &str, id: NodeId) {
        self.defs.insert(def.into(), id);
    }
}

impl Schema {
    /// What the server stores of `value` sent as node `node`: `null`s, empty lists and
    /// objects, and the zeros of fields whose zero is no value (Go's `omitempty` on a
    /// non-pointer) are gone; a map's entries stay whatever they hold (a ConfigMap key with
    /// `""` is data).
    pub fn stored(&self, value: &mut Value, node: NodeId) {
        match (self.node(node), value) {
            (Node::Struct { fields, .. }, Value::Object(map)) => {
                map.retain(|k, v| {
                    let field = fields
                        .binary_search_by(|(f, _)| f.as_ref().cmp(k))
                        .ok()
                        .map(|i| fields[i].1);
                    let (child, zero_is_value) = match field {
                        Some(f) => (f.node, f.zero_is_value),
                        None => (ANY, self.zero_is_value),
                    };
                    self.stored(v, child);
                    !(v.is_null() || is_empty(v) || (!zero_is_value && is_zero_scalar(v)))
                });
            }
            (Node::Map(item), Value::Object(map)) => {
                for v in map.values_mut() {
                    self.stored(v, *item);
                }
            }
            (Node::List { item, .. }, Value::Array(items)) => {
                for v in items.iter_mut() {
                    self.stored(v, *item);
                }
            }
            (Node::Any | Node::Free, Value::Object(map)) => {
                for v in map.values_mut() {
                    self.stored(v, ANY);
                }
                map.retain(|_, v| !v.is_null() && !is_empty(v));
            }
            _ => {}
        }
    }
}

fn is_empty(v: &Value) -> bool {
    matches!(v, Value::Array(a) if a.is_empty()) || matches!(v, Value::Object(m) if m.is_empty())
}

fn is_zero_scalar(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

struct Reader<'a> {
    schema: Schema,
    source: &'a serde_json::Map<String, Value>,
}

impl Reader<'_> {
    /// The node of definition `name`, read on first use; a placeholder is named before its
    /// body is read so that recursive definitions resolve.
    fn def(&mut self, name: &str) -> Result<NodeId, SchemaError> {
        if let Some(id) = self.schema.def(name) {
            return Ok(id);
        }
        let body = self
            .source
            .get(name)
            .ok_or_else(|| SchemaError::MissingDefinition(name.to_owned()))?;
        let id = self.schema.push(Node::Any);
        self.schema.name(name, id);
        let node = self.node_of(body, Some(name))?;
        self.schema.nodes[id] = node;
        Ok(id)
    }

    fn reference(&mut self, body: &Value) -> Result<Option<NodeId>, SchemaError> {
        let target = body.get("$ref").and_then(Value::as_str).or_else(|| {
            // OpenAPI v3 wraps a reference with a description in `allOf`.
            match body
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                Some([only]) => only.get("$ref").and_then(Value::as_str),
                _ => None,
            }
        });
        let Some(target) = target else {
            return Ok(None);
        };
        let name = target.rsplit('/').next().unwrap_or(target);
        self.def(name).map(Some)
    }

    fn child(&mut self, body: &Value) -> Result<NodeId, SchemaError> {
        if let Some(id) = self.reference(body)? {
            return Ok(id);
        }
        let node = self.node_of(body, None)?;
        Ok(self.schema.push(node))
    }

    fn node_of(&mut self, body: &Value, def: Option<&str>) -> Result<Node, SchemaError> {
        if let Some(id) = self.reference(body)? {
            return Ok(self.schema.nodes[id].clone());
        }
        if def == Some(QUANTITY) {
            return Ok(Node::Scalar(Scalar::Quantity));
        }
        let flag = |k: &str| body.get(k).and_then(Value::as_bool) == Some(true);
        if flag("x-kubernetes-int-or-string") {
            return Ok(Node::Scalar(Scalar::IntOrString));
        }
        let ty = body.get("type").and_then(Value::as_str);
        let format = body.get("format").and_then(Value::as_str);
        Ok(match ty {
            Some("string") => Node::Scalar(match format {
                Some("byte") => Scalar::Bytes,
                Some("int-or-string") => Scalar::IntOrString,
                _ => Scalar::String,
            }),
            Some("integer") => Node::Scalar(Scalar::Integer),
            Some("number") => Node::Scalar(Scalar::Number),
            Some("boolean") => Node::Scalar(Scalar::Boolean),
            Some("array") => {
                let item = match body.get("items") {
                    Some(items) => self.child(items)?,
                    None => ANY,
                };
                Node::List {
                    item,
                    kind: list_kind(body),
                }
            }
            _ => {
                let properties = body.get("properties").and_then(Value::as_object);
                let additional = body.get("additionalProperties").filter(|a| a.is_object());
                match (properties, additional) {
                    (Some(props), _) => {
                        let mut fields = Vec::with_capacity(props.len());
                        for (name, prop) in props {
                            let node = self.child(prop)?;
                            fields.push((
                                name.as_str().into(),
                                Field {
                                    node,
                                    zero_is_value: self.schema.zero_is_value,
                                },
                            ));
                        }
                        fields.sort_by(|a: &(Box<str>, Field), b| a.0.cmp(&b.0));
                        Node::Struct {
                            def: def.map(Into::into),
                            fields,
                            open: flag("x-kubernetes-preserve-unknown-fields"),
                        }
                    }
                    (None, Some(values)) => Node::Map(self.child(values)?),
                    (None, None)
                        if ty == Some("object") || flag("x-kubernetes-preserve-unknown-fields") =>
                    {
                        Node::Free
                    }
                    (None, None) => Node::Any,
                }
            }
        })
    }
}

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// How a list's items are matched, from its extensions: `x-kubernetes-list-type` (`map` with
/// `x-kubernetes-list-map-keys`, `set`, `atomic`), else `x-kubernetes-patch-merge-key`.
fn list_kind(body: &Value) -> ListKind {
    let keys = |v: Option<&Value>| -> Option<Arc<[Box<str>]>> {
        let keys: Vec<Box<str>> = v?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .map(Into::into)
            .collect();
        (!keys.is_empty()).then(|| keys.into())
    };
    match body.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => return ListKind::Set,
        Some("atomic") => return ListKind::Atomic,
        Some("map") => {
            if let Some(keys) = keys(body.get("x-kubernetes-list-map-keys")) {
                return ListKind::Keyed(keys);
            }
        }
        _ => {}
    }
    match body
        .get("x-kubernetes-patch-merge-key")
        .and_then(Value::as_str)
    {
        Some(key) => ListKind::Keyed(Arc::from(vec![Box::<str>::from(key)])),
        None => ListKind::Atomic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_openapi_v2_with_extensions_and_recursion() {
        let doc = json!({"definitions": {
            "a.Spec": {"type": "object", "properties": {
                "ports": {"type": "array", "items": {"$ref": "#/definitions/a.Port"},
                    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"]},
                "env": {"type": "array", "items": {"$ref": "#/definitions/a.Port"},
                    "x-kubernetes-patch-merge-key": "name"},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "size": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"},
                "self": {"$ref": "#/definitions/a.Spec"},
                "blob": {"type": "string", "format": "byte"}
            }},
            "a.Port": {"type": "object", "properties": {"port": {"type": "integer"},
                "target": {"type": "string", "format": "int-or-string"}}},
            "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"}
        }});
        let s = Schema::from_openapi(&doc, false).unwrap();
        let spec = s.def("a.Spec").unwrap();
        let kind = |f: &str| match s.node(s.field(spec, f).unwrap().node) {
            Node::List { kind, .. } => kind.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            kind("ports"),
            ListKind::Keyed(Arc::from(vec!["port".into(), "protocol".into()]))
        );
        assert_eq!(kind("env"), ListKind::Keyed(Arc::from(vec!["name".into()])));
        assert_eq!(kind("tags"), ListKind::Set);
        assert!(matches!(
            s.node(s.field(spec, "labels").unwrap().node),
            Node::Map(_)
        ));
        assert!(matches!(
            s.node(s.field(spec, "size").unwrap().node),
            Node::Scalar(Scalar::Quantity)
        ));
        assert_eq!(s.field(spec, "self").unwrap().node, spec);
        assert!(matches!(
            s.node(s.field(spec, "blob").unwrap().node),
            Node::Scalar(Scalar::Bytes)
        ));
        let port = s.def("a.Port").unwrap();
        assert!(matches!(
            s.node(s.field(port, "target").unwrap().node),
            Node::Scalar(Scalar::IntOrString)
        ));
        assert!(!s.field(port, "port").unwrap().zero_is_value);
    }

    #[test]
    fn reads_openapi_v3_references_wrapped_in_all_of() {
        let doc = json!({"components": {"schemas": {
            "b.Obj": {"type": "object", "properties": {
                "spec": {"allOf": [{"$ref": "#/components/schemas/b.Spec"}], "description": "x"}}},
            "b.Spec": {"type": "object", "properties": {"replicas": {"type": "integer"}},
                "x-kubernetes-preserve-unknown-fields": true}
        }}});
        let s = Schema::from_openapi(&doc, true).unwrap();
        let obj = s.def("b.Obj").unwrap();
        let spec = s.field(obj, "spec").unwrap();
        assert_eq!(Some(spec.node), s.def("b.Spec"));
        assert!(spec.zero_is_value, "custom resources keep zeros");
        assert!(matches!(s.node(spec.node), Node::Struct { open: true, .. }));
        assert!(matches!(
            Schema::from_openapi(
                &json!({"definitions": {"x": {"$ref": "#/definitions/y"}}}),
                false
            ),
            Err(SchemaError::MissingDefinition(_))
        ));
    }
}
