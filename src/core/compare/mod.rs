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
use crate::core::schema::{ListKind, Node, NodeId, Schema, builtin};

pub use value::{is_zero, scalar_eq};

/// Where a list is: the field `field` of the struct definition `def` (if it has one), at
/// `path`.
pub struct Site<'a> {
    pub def: Option<&'a str>,
    pub field: &'a str,
    pub path: &'a [Segment],
}

/// Whether the list at a site is compared as a set, whatever the API schema says (the
/// Terraform provider's `TypeSet` attributes).
pub type Sets<'a> = &'a (dyn Fn(&Site<'_>) -> bool + Sync);

/// Whether a path is left out of the comparison (ignore rules, keys the applier ignores).
pub type Ignored<'a> = &'a (dyn Fn(&[Segment]) -> bool + Sync);

/// How one comparison reads its intent.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Keys and items added live to a map or list the intent sets are drift (typed Terraform
    /// resources, `kubernetes_manifest`); without, only what the intent names is compared
    /// (`kubectl_manifest`).
    pub additions: Additions,
    /// `null` in the intent means "absent" (a Terraform attribute the provider does not send):
    /// a live value there is drift, unless it is the zero of a field whose zero is absence.
    /// Without, `null` says nothing (a manifest's `key:` with no value).
    pub null_is_absent: bool,
    pub sets: Sets<'a>,
    /// Whether the zero of field `field` of definition `def` equals absence although the
    /// schema says it is a value (an applier that sends it only sometimes).
    pub lenient: Lenient<'a>,
    pub ignored: Ignored<'a>,
}

/// Which additions live are drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Additions {
    /// Keys added to a map the intent sets.
    pub keys: bool,
    /// Items added to a list or set the intent sets.
    pub items: bool,
    /// Content in a struct the intent sets empty (`strategy: {}`, which the server fills
    /// with its defaults).
    pub blocks: bool,
}

impl Additions {
    /// The intent owns what it sets, whole (typed Terraform resources, `kubernetes_manifest`).
    pub const ALL: Additions = Additions {
        keys: true,
        items: true,
        blocks: true,
    };
    /// Only what the intent names is compared (patch-style resources).
    pub const NONE: Additions = Additions {
        keys: false,
        items: false,
        blocks: false,
    };
}

/// See [`Options::lenient`].
pub type Lenient<'a> = &'a (dyn Fn(Option<&str>, &str) -> bool + Sync);

/// No zero is lenient beyond what the schema says.
pub fn schema_zeros(_: Option<&str>, _: &str) -> bool {
    false
}

/// No list is a set beyond what the schema says.
pub fn schema_sets(_: &Site<'_>) -> bool {
    false
}

/// Nothing is ignored.
pub fn nothing_ignored(_: &[Segment]) -> bool {
    false
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            additions: Additions::ALL,
            null_is_absent: false,
            sets: &schema_sets,
            lenient: &schema_zeros,
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
    walker.walk(
        intent,
        Some(live),
        root,
        &mut Vec::new(),
        Context::default(),
    );
    walker.out
}

/// What the walk knows of the field a value is in.
#[derive(Clone, Copy, Default)]
struct Context<'a> {
    def: Option<&'a str>,
    field: &'a str,
    zero_is_value: bool,
}

impl Context<'_> {
    /// An entry of a map or an item of a list: its zero is data.
    fn entry(self) -> Self {
        Context {
            zero_is_value: true,
            ..self
        }
    }
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

    /// `intent` against `live` (`None`: absent) at `path`, in the field `ctx` says.
    fn walk(
        &mut self,
        intent: &Value,
        live: Option<&Value>,
        node: NodeId,
        path: &mut Vec<Segment>,
        ctx: Context<'_>,
    ) {
        if (self.options.ignored)(path) {
            return;
        }
        let live = live.filter(|l| !l.is_null());
        if intent.is_null() {
            // Absent (a Terraform attribute not sent): only a value that is more than the zero
            // of a field whose zero is absence differs. A manifest's `null` says nothing.
            if let Some(l) = live
                && self.options.null_is_absent
                && (ctx.zero_is_value || !is_zero(l))
            {
                self.push(path, None, Some(l), false);
            }
            return;
        }
        let zero_is_value = ctx.zero_is_value;
        if live.is_none() && is_zero(intent) && (!zero_is_value || is_empty_collection(intent)) {
            return;
        }
        let schema = self.schema;
        match (schema.node(node), intent) {
            (Node::Struct { def, fields, .. }, Value::Object(map)) => {
                let def = def.as_deref();
                self.object(map, live, path, |w, k| {
                    match fields.binary_search_by(|(f, _)| f.as_ref().cmp(k)) {
                        Ok(i) => {
                            let zero = fields[i].1.zero_is_value && !(w.options.lenient)(def, k);
                            (fields[i].1.node, zero, def)
                        }
                        // A field the schema does not know: compared as plain JSON.
                        Err(_) => (0, w.schema.keeps_zeros(), def),
                    }
                });
            }
            (Node::Map(item), Value::Object(map)) => self.map(map, live, *item, path, ctx),
            (Node::List { item, kind }, Value::Array(items)) => {
                let site = Site {
                    def: ctx.def,
                    field: ctx.field,
                    path,
                };
                let set = ListKind::Set;
                let kind = if (self.options.sets)(&site) {
                    &set
                } else {
                    kind
                };
                self.list(items, live, *item, kind, path, ctx)
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
            // Free-form (`x-kubernetes-preserve-unknown-fields`, a RawExtension): owned whole.
            (Node::Free, Value::Object(map)) => self.map(map, live, free_node(schema), path, ctx),
            // A shape the schema does not know: as JSON, the intent's keys only.
            (_, Value::Object(map)) => {
                self.object(map, live, path, |w, _| (0, w.schema.keeps_zeros(), None))
            }
            (_, Value::Array(items)) => self.list(items, live, 0, &ListKind::Atomic, path, ctx),
            (_, _) => {
                if live.is_none_or(|l| !value::json_scalar_eq(intent, l)) {
                    self.push(path, Some(intent), live, false);
                }
            }
        }
    }

    /// A struct: every field the intent sets, each compared with the live field.
    fn object<'s>(
        &mut self,
        intent: &Map<String, Value>,
        live: Option<&Value>,
        path: &mut Vec<Segment>,
        field: impl Fn(&Self, &str) -> (NodeId, bool, Option<&'s str>),
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
                && self.options.additions.blocks
                && m.values().any(|v| !is_zero(v))
                && !(self.options.ignored)(path)
            {
                self.push(path, None, live, false);
            }
            return;
        }
        let before = self.out.len();
        for (k, v) in intent {
            let (node, zero_is_value, def) = field(self, k);
            let ctx = Context {
                def,
                field: k,
                zero_is_value,
            };
            path.push(Segment::Field(k.clone()));
            self.walk(v, live_map.and_then(|m| m.get(k)), node, path, ctx);
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
        ctx: Context<'_>,
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
                Some(l) => self.walk(v, Some(l), item, path, ctx.entry()),
            }
            path.pop();
        }
        if self.options.additions.keys {
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
        ctx: Context<'_>,
    ) {
        let ctx = ctx.entry();
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
            ListKind::Keyed(keys) => self.keyed(intent, live_items, item, keys, path, ctx),
            ListKind::Set => self.set(intent, live_items, item, path, ctx),
            ListKind::Atomic => {
                for (i, v) in intent.iter().enumerate() {
                    path.push(Segment::Index(i));
                    match live_items.get(i) {
                        Some(l) => self.walk(v, Some(l), item, path, ctx),
                        None if !(self.options.ignored)(path) => {
                            self.push(path, Some(v), None, false)
                        }
                        None => {}
                    }
                    path.pop();
                }
                if self.options.additions.items {
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
        ctx: Context<'_>,
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
                    self.walk(v, Some(&live[i]), item, path, ctx);
                }
                None if !(self.options.ignored)(path) => self.push(path, Some(v), None, false),
                None => {}
            }
            path.pop();
        }
        if self.options.additions.items {
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
    fn set(
        &mut self,
        intent: &[Value],
        live: &[Value],
        item: NodeId,
        path: &[Segment],
        ctx: Context<'_>,
    ) {
        let mut matched = vec![false; live.len()];
        for v in intent {
            let found = (0..live.len()).find(|&i| {
                !matched[i] && {
                    let mut probe = Walker {
                        schema: self.schema,
                        options: self.options,
                        out: Vec::new(),
                    };
                    probe.walk(v, Some(&live[i]), item, &mut path.to_vec(), ctx);
                    probe.out.is_empty()
                }
            });
            match found {
                Some(i) => matched[i] = true,
                None => self.push(path, Some(v), None, true),
            }
        }
        if self.options.additions.items {
            for (i, l) in live.iter().enumerate() {
                if !matched[i] {
                    self.push(path, None, Some(l), true);
                }
            }
        }
    }
}

/// The node of a free-form value's children: free-form too.
fn free_node(schema: &Schema) -> NodeId {
    schema.free()
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
