//! Intent known in full (a Terraform state, a manifest) against the live object, for any
//! kind: only the fields the intent sets are compared, values normalised as the API server
//! normalises them, lists matched by their schema's semantics. The result is the field-level
//! diff the explanation and attribution already read ([`Change`]).
//!
//! - A struct field the intent leaves out is not compared: server defaults need no table.
//! - A zero value (`""`, `0`, `false`, `[]`, `{}`) equals absence, as Go's `omitempty` has it,
//!   unless the field's zero is a value ([`Field::zero_is_value`], or the intent source says
//!   the applier sends it): then `allowPrivilegeEscalation: false` removed live is drift.
//!   A map's entries are values: a ConfigMap key holding `""` is there or not.
//! - Lists: keyed lists match items by their key fields, sets compare as sets, other lists
//!   as a whole and in order. A reordering alone of a keyed list or a set is not drift.
//! - Where the intent owns a map or list ([`Options::additions`]), keys and items added live
//!   are drift.

mod value;

use serde_json::{Map, Value};

use crate::core::explain::diff::{Change, Segment, path_string};
use crate::core::schema::{Field, ListKind, Node, NodeId, Schema, builtin};

pub use value::{is_zero, scalar_eq};

/// Whether the zero value of field `field` of struct definition `def` (if it has one) is
/// compared as a value; given the schema's own opinion.
pub type ZeroIsValue<'a> = &'a (dyn Fn(Option<&str>, &str, Field) -> bool + Sync);

/// Whether a path is left out of the comparison (ignore rules, keys the applier ignores).
pub type Ignored<'a> = &'a (dyn Fn(&[Segment]) -> bool + Sync);

/// How one comparison reads its intent.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Keys and items added live to a map or list the intent sets are drift (typed Terraform
    /// resources, `kubernetes_manifest`); without, only what the intent names is compared
    /// (`kubectl_manifest`).
    pub additions: bool,
    pub zero_is_value: ZeroIsValue<'a>,
    pub ignored: Ignored<'a>,
}

/// The schema's own opinion of a zero: a Go pointer's, or any field of a custom resource.
pub fn schema_zeros(_: Option<&str>, _: &str, field: Field) -> bool {
    field.zero_is_value
}

/// Nothing is ignored.
pub fn nothing_ignored(_: &[Segment]) -> bool {
    false
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            additions: true,
            zero_is_value: &schema_zeros,
            ignored: &nothing_ignored,
        }
    }
}

/// What differs from `intent` to `live` (`live` absent: the object as a whole was removed,
/// which the caller reports as missing), starting at node `root` of `schema`.
pub fn compare(
    intent: &Value,
    live: &Value,
    schema: &Schema,
    root: NodeId,
    options: &Options<'_>,
) -> Vec<Change> {
    let mut walker = Walker {
        schema,
        options,
        out: Vec::new(),
    };
    walker.walk(intent, Some(live), root, &mut Vec::new(), false);
    walker.out
}

struct Walker<'a> {
    schema: &'a Schema,
    options: &'a Options<'a>,
    out: Vec<Change>,
}

impl Walker<'_> {
    fn push(&mut self, path: &[Segment], was: Option<&Value>, now: Option<&Value>, member: bool) {
        self.out.push(Change {
            path: path_string(path),
            segments: path.to_vec(),
            was: was.cloned(),
            now: now.cloned(),
            member,
        });
    }

    /// `intent` against `live` (`None`: absent) at `path`; `zero_is_value` for the field
    /// this value is.
    fn walk(
        &mut self,
        intent: &Value,
        live: Option<&Value>,
        node: NodeId,
        path: &mut Vec<Segment>,
        zero_is_value: bool,
    ) {
        if (self.options.ignored)(path) {
            return;
        }
        let live = live.filter(|l| !l.is_null());
        if intent.is_null() {
            // `null` in intent says nothing (an unset attribute).
            return;
        }
        if live.is_none() && is_zero(intent) && (!zero_is_value || is_empty_collection(intent)) {
            return;
        }
        let schema = self.schema;
        match (schema.node(node), intent) {
            (Node::Struct { def, fields, .. }, Value::Object(map)) => {
                self.object(map, live, path, |w, k| {
                    match fields.binary_search_by(|(f, _)| f.as_ref().cmp(k)) {
                        Ok(i) => {
                            let field = fields[i].1;
                            let zero = (w.options.zero_is_value)(def.as_deref(), k, field);
                            (field.node, zero)
                        }
                        // A field the schema does not know: compared as plain JSON.
                        Err(_) => (0, w.schema.keeps_zeros()),
                    }
                });
            }
            (Node::Map(item), Value::Object(map)) => self.map(map, live, *item, path),
            (Node::List { item, kind }, Value::Array(items)) => {
                self.list(items, live, *item, kind, path)
            }
            (Node::Scalar(s), _) if !intent.is_object() && !intent.is_array() => {
                let equal = match live {
                    Some(l) => scalar_eq(*s, intent, l),
                    None => false,
                };
                if !equal {
                    self.push(path, Some(intent), live, false);
                }
            }
            // Free-form, or a shape the schema does not expect: as JSON, the intent's keys only.
            (_, Value::Object(map)) => {
                self.object(map, live, path, |w, _| (0, w.schema.keeps_zeros()))
            }
            (_, Value::Array(items)) => self.list(items, live, 0, &ListKind::Atomic, path),
            (_, _) => {
                if live.is_none_or(|l| !value::json_scalar_eq(intent, l)) {
                    self.push(path, Some(intent), live, false);
                }
            }
        }
    }

    /// A struct: every field the intent sets, each compared with the live field.
    fn object(
        &mut self,
        intent: &Map<String, Value>,
        live: Option<&Value>,
        path: &mut Vec<Segment>,
        field: impl Fn(&Self, &str) -> (NodeId, bool),
    ) {
        let live_map = match live {
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                self.push(
                    path,
                    Some(&Value::Object(intent.clone())),
                    Some(other),
                    false,
                );
                return;
            }
            None => None,
        };
        // An empty struct the intent owns (a Terraform block written `[]`): anything live
        // there was added.
        if intent.is_empty() {
            if let Some(m) = live_map
                && self.options.additions
                && m.values().any(|v| !is_zero(v))
                && !(self.options.ignored)(path)
            {
                self.push(path, None, live, false);
            }
            return;
        }
        let before = self.out.len();
        for (k, v) in intent {
            let (node, zero) = field(self, k);
            path.push(Segment::Field(k.clone()));
            self.walk(v, live_map.and_then(|m| m.get(k)), node, path, zero);
            path.pop();
        }
        // A struct removed as a whole is one change, not one per field it held.
        if live_map.is_none() && self.out.len() > before {
            self.out.truncate(before);
            self.push(path, Some(&Value::Object(intent.clone())), None, false);
        }
    }

    /// A map with user keys: every entry is a value; entries added live are drift when the
    /// intent owns the map.
    fn map(
        &mut self,
        intent: &Map<String, Value>,
        live: Option<&Value>,
        item: NodeId,
        path: &mut Vec<Segment>,
    ) {
        let empty = Map::new();
        let live_map = match live {
            Some(Value::Object(m)) => m,
            Some(other) => {
                self.push(
                    path,
                    Some(&Value::Object(intent.clone())),
                    Some(other),
                    false,
                );
                return;
            }
            None => &empty,
        };
        for (k, v) in intent {
            path.push(Segment::MapKey(k.clone()));
            match live_map.get(k) {
                // A key gone is drift even if it held "": the key itself is intent.
                None if !(self.options.ignored)(path) => self.push(path, Some(v), None, false),
                None => {}
                Some(l) => self.walk(v, Some(l), item, path, true),
            }
            path.pop();
        }
        if self.options.additions {
            for (k, l) in live_map {
                if intent.contains_key(k) {
                    continue;
                }
                path.push(Segment::MapKey(k.clone()));
                if !(self.options.ignored)(path) {
                    self.push(path, None, Some(l), false);
                }
                path.pop();
            }
        }
    }

    fn list(
        &mut self,
        intent: &[Value],
        live: Option<&Value>,
        item: NodeId,
        kind: &ListKind,
        path: &mut Vec<Segment>,
    ) {
        let live_items: &[Value] = match live {
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.push(
                    path,
                    Some(&Value::Array(intent.to_vec())),
                    Some(other),
                    false,
                );
                return;
            }
            None => &[],
        };
        match kind {
            ListKind::Keyed(keys) => self.keyed(intent, live_items, item, keys, path),
            ListKind::Set => self.set(intent, live_items, item, path),
            ListKind::Atomic => {
                for (i, v) in intent.iter().enumerate() {
                    path.push(Segment::Index(i));
                    match live_items.get(i) {
                        Some(l) => self.walk(v, Some(l), item, path, true),
                        None if !(self.options.ignored)(path) => {
                            self.push(path, Some(v), None, false)
                        }
                        None => {}
                    }
                    path.pop();
                }
                if self.options.additions {
                    for (i, l) in live_items.iter().enumerate().skip(intent.len()) {
                        path.push(Segment::Index(i));
                        if !(self.options.ignored)(path) {
                            self.push(path, None, Some(l), false);
                        }
                        path.pop();
                    }
                }
            }
        }
    }

    /// Items matched by their key fields; the intent's items get the server's default for a
    /// key they leave out (a port's `protocol`).
    fn keyed(
        &mut self,
        intent: &[Value],
        live: &[Value],
        item: NodeId,
        keys: &[Box<str>],
        path: &mut Vec<Segment>,
    ) {
        let schema = self.schema;
        let def = match schema.node(item) {
            Node::Struct { def, .. } => def.as_deref(),
            _ => None,
        };
        let key_of = |v: &Value, defaulted: bool| -> Option<Vec<(String, Value)>> {
            let obj = v.as_object()?;
            keys.iter()
                .map(|k| {
                    let value = obj
                        .get(k.as_ref())
                        .filter(|v| !v.is_null())
                        .cloned()
                        .or_else(|| {
                            defaulted
                                .then(|| def.and_then(|d| builtin::key_default(d, k)))
                                .flatten()
                                .map(Value::from)
                        });
                    // A key field that is absent on both sides matches as absent.
                    Some((k.to_string(), value.unwrap_or(Value::Null)))
                })
                .collect()
        };
        let live_keys: Vec<Option<Vec<(String, Value)>>> =
            live.iter().map(|l| key_of(l, true)).collect();
        let mut matched = vec![false; live.len()];
        for v in intent {
            let Some(key) = key_of(v, true) else {
                continue;
            };
            let found = live_keys
                .iter()
                .enumerate()
                .find(|(i, k)| !matched[*i] && keys_match(k.as_deref(), &key));
            path.push(Segment::Element(key.clone()));
            match found {
                Some((i, _)) => {
                    matched[i] = true;
                    self.walk(v, Some(&live[i]), item, path, true);
                }
                None if !(self.options.ignored)(path) => self.push(path, Some(v), None, false),
                None => {}
            }
            path.pop();
        }
        if self.options.additions {
            for (i, l) in live.iter().enumerate() {
                if matched[i] {
                    continue;
                }
                let key = live_keys[i].clone().unwrap_or_default();
                path.push(Segment::Element(key));
                if !(self.options.ignored)(path) {
                    self.push(path, None, Some(l), false);
                }
                path.pop();
            }
        }
    }

    /// Items compared as a set: an intent item matches a live item that compares equal.
    fn set(&mut self, intent: &[Value], live: &[Value], item: NodeId, path: &[Segment]) {
        let mut matched = vec![false; live.len()];
        for v in intent {
            let found = (0..live.len()).find(|&i| {
                !matched[i] && {
                    let mut probe = Walker {
                        schema: self.schema,
                        options: self.options,
                        out: Vec::new(),
                    };
                    probe.walk(v, Some(&live[i]), item, &mut path.to_vec(), true);
                    probe.out.is_empty()
                }
            });
            match found {
                Some(i) => matched[i] = true,
                None => self.push(path, Some(v), None, true),
            }
        }
        if self.options.additions {
            for (i, l) in live.iter().enumerate() {
                if !matched[i] {
                    self.push(path, None, Some(l), true);
                }
            }
        }
    }
}

fn keys_match(live: Option<&[(String, Value)]>, intent: &[(String, Value)]) -> bool {
    let Some(live) = live else { return false };
    live.len() == intent.len()
        && live
            .iter()
            .zip(intent)
            .all(|((_, a), (_, b))| value::json_scalar_eq(a, b))
}

fn is_empty_collection(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
