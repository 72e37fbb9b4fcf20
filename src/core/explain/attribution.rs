//! Who changed it: the field managers (`kubectl-edit`, `kubectl-set`, `kubectl-patch`,
//! `Terraform`, …) that own a changed field in `metadata.managedFields`, newest first.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use serde_json::Value;

use crate::core::contract;
use crate::core::explain::diff::{Change, Segment};

/// A field manager that wrote a changed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    pub manager: String,
    pub operation: String,
    pub subresource: Option<String>,
    /// RFC 3339, as the API server recorded it.
    pub time: Option<String>,
}

impl std::fmt::Display for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.manager)?;
        if let Some(sub) = &self.subresource {
            write!(f, " (subresource {sub})")?;
        }
        if let Some(t) = &self.time {
            write!(f, " at {t}")?;
        }
        Ok(())
    }
}

/// Where a fingerprint field lives in the object, as managedFields segments.
fn object_prefix(kind: &str, field: &str) -> Vec<String> {
    let f = |s: &str| format!("f:{s}");
    match (kind, field) {
        ("ConfigMap", _) => vec![f(field)],
        ("Service", "headless") => vec![f("spec"), f("clusterIP")],
        ("Service", "sessionAffinityTimeoutSeconds") => vec![f("spec"), f("sessionAffinityConfig")],
        ("Service", _) | (_, "replicas" | "serviceName") => vec![f("spec"), f(field)],
        (_, "labels") => vec![f("spec"), f("template"), f("metadata"), f("labels")],
        _ => vec![f("spec"), f("template"), f("spec"), f(field)],
    }
}

/// How the paths of changes relate to the object's fields.
#[derive(Debug, Clone, Copy)]
pub enum Paths<'a> {
    /// Fingerprint paths of this kind (`replicas`, `containers[web].image`).
    Fingerprint(&'a str),
    /// Paths of the object itself (`spec.replicas`), as the comparison of intent known in
    /// full prints them.
    Object,
}

/// The managedFields path of a change (`f:spec/f:replicas`,
/// `…/f:containers/k:{"name":"web"}/f:image`).
fn field_path(paths: Paths<'_>, change: &Change) -> Vec<String> {
    let mut segs = change.segments.iter().peekable();
    let mut path = match paths {
        Paths::Fingerprint(kind) => {
            let Some(Segment::Field(first)) = segs.next() else {
                return Vec::new();
            };
            object_prefix(kind, first)
        }
        Paths::Object => Vec::new(),
    };
    // A set's member is owned as `v:<value>` below the list.
    if change.member
        && let Some(item) = change.now.as_ref().or(change.was.as_ref())
    {
        let tail: Vec<String> = segs
            .filter_map(|s| match s {
                Segment::Field(f) | Segment::MapKey(f) => Some(format!("f:{f}")),
                _ => None,
            })
            .collect();
        path.extend(tail);
        path.push(format!(
            "v:{}",
            serde_json::to_string(item).unwrap_or_default()
        ));
        return path;
    }
    for seg in segs {
        match seg {
            // The fingerprint's own grouping, not a field of the object.
            Segment::Field(f) if f == "source" => {}
            Segment::Field(f) | Segment::MapKey(f) => path.push(format!("f:{f}")),
            Segment::Element(key) => {
                let sorted: BTreeMap<&str, &Value> =
                    key.iter().map(|(k, v)| (k.as_str(), v)).collect();
                path.push(format!(
                    "k:{}",
                    serde_json::to_string(&sorted).unwrap_or_default()
                ));
            }
            Segment::Index(_) => break,
        }
    }
    path
}

/// Every path a manager owns, `/`-joined.
fn owned_paths(fields: &Value, prefix: &mut Vec<String>, out: &mut Vec<String>) {
    if let Value::Object(map) = fields {
        if map.is_empty() && !prefix.is_empty() {
            out.push(prefix.join("/"));
        }
        for (k, v) in map {
            if k == "." {
                out.push(prefix.join("/"));
                continue;
            }
            prefix.push(k.clone());
            owned_paths(v, prefix, out);
            prefix.pop();
        }
    }
}

/// The managers (other than tfdrift itself) that own the fields of `changes`, newest
/// first. A change whose exact field nobody owns (a key the fingerprint names differently
/// from the API's merge key) is matched at its nearest owned ancestor.
///
/// A manager whose last write is older than tfdrift's own last write cannot have made the
/// drift: tfdrift last wrote while the object was in sync. Such stale owners are left out,
/// so a change the API server did not attribute (the scale subresource before 1.22) gives
/// no writer rather than a wrong one.
pub fn writers(kind: &str, managed: &[ManagedFieldsEntry], changes: &[Change]) -> Vec<Writer> {
    writers_of(Paths::Fingerprint(kind), managed, changes)
}

/// [`writers`] of changes with paths of either form.
pub fn writers_of(
    paths: Paths<'_>,
    managed: &[ManagedFieldsEntry],
    changes: &[Change],
) -> Vec<Writer> {
    let ours = managed
        .iter()
        .filter(|m| m.manager.as_deref() == Some(contract::FIELD_MANAGER))
        .filter_map(|m| m.time.as_ref().map(|t| t.0))
        .max();
    let owned: Vec<(Writer, Vec<String>)> = managed
        .iter()
        .filter(|m| m.manager.as_deref() != Some(contract::FIELD_MANAGER))
        .filter(|m| match (ours, m.time.as_ref()) {
            // Times have one-second resolution: a write in the very second of ours is
            // indistinguishable from one before it, and counts as before.
            (Some(ours), Some(t)) => t.0 > ours,
            _ => true,
        })
        .map(|m| {
            let mut paths = Vec::new();
            if let Some(fields) = &m.fields_v1 {
                owned_paths(&fields.0, &mut Vec::new(), &mut paths);
            }
            let writer = Writer {
                manager: m
                    .manager
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "an unnamed manager".into()),
                operation: m.operation.clone().unwrap_or_default(),
                subresource: m.subresource.clone().filter(|s| !s.is_empty()),
                time: m.time.as_ref().map(|t| t.0.to_string()),
            };
            (writer, paths)
        })
        .collect();
    let mut found: Vec<Writer> = Vec::new();
    for change in changes {
        let mut path = field_path(paths, change);
        while !path.is_empty() {
            let p = path.join("/");
            let under = format!("{p}/");
            let owners: Vec<&Writer> = owned
                .iter()
                .filter(|(_, paths)| paths.iter().any(|o| *o == p || o.starts_with(&under)))
                .map(|(w, _)| w)
                .collect();
            if !owners.is_empty() {
                // The most recent writer of a changed field is the one who changed it.
                if let Some(w) = owners.into_iter().max_by(|a, b| a.time.cmp(&b.time))
                    && !found.contains(w)
                {
                    found.push(w.clone());
                }
                break;
            }
            path.pop();
        }
    }
    found.sort_by(|a, b| b.time.cmp(&a.time));
    found
}
