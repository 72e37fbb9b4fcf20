//! Small normalisation helpers shared by the per-kind fingerprints.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::Value;

/// Go's `omitempty` means the server never stores `""`: an empty string is absent.
pub fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A string map with values trimmed; absent and empty are one thing.
pub fn trimmed_map(m: &Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    m.iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.trim().to_owned()))
        .collect()
}

/// An empty list is the same as no list.
pub fn list(v: &Option<Vec<String>>) -> Vec<String> {
    v.clone().unwrap_or_default()
}

/// Object keys sorted at every depth, whatever serde_json's map type is built with, and
/// empty strings dropped (the server omits them).
pub fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> = map
                .into_iter()
                .filter(|(_, v)| !matches!(v, Value::String(s) if s.is_empty()))
                .map(|(k, v)| (k, sorted(v)))
                .collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Sorts `items` by `by`, then (only for ties) by their full canonical JSON, so that
/// equal keys still give one order whatever order they came in.
pub fn sort_canonical<T: serde::Serialize>(items: &mut [T], by: impl Fn(&T, &T) -> Ordering) {
    items.sort_by(|a, b| {
        by(a, b).then_with(|| {
            let json = |v: &T| serde_json::to_vec(v).unwrap_or_default();
            json(a).cmp(&json(b))
        })
    });
}
