//! Intent from Helm v3's own record of a release ([`record`]): every object of the latest
//! `deployed` revision's manifest, any kind, as Helm applied it — namespaced objects in the
//! release's namespace unless the chart names one, with the label and annotations Helm adds to
//! each (`app.kubernetes.io/managed-by: Helm`, `meta.helm.sh/release-name`,
//! `meta.helm.sh/release-namespace`). Compared like `kubernetes_manifest`: the paths the
//! manifest sets hold, what the server or a controller adds is not drift.

pub mod record;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::core::object::ObjectId;
use crate::intent::terraform::{Instance, Source, Unjudged, Why, instance_of};
pub use record::{Meta, RecordError, Release, Status};

/// Helm's own label and annotations on every object of a release.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const RELEASE_NAME: &str = "meta.helm.sh/release-name";
pub const RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";

/// The resource type rows of a release go by where no Terraform address names it.
pub const RESOURCE_TYPE: &str = "helm_release";

/// The release as the object rows name it: `helm:NAMESPACE/NAME`.
pub fn address_of(namespace: &str, name: &str) -> String {
    format!("helm:{namespace}/{name}")
}

/// Whether `address` is one [`address_of`] made (no Terraform address names the release).
pub fn is_release_address(address: &str) -> bool {
    address.starts_with("helm:")
}

/// The id a release itself is named by in rows about it (`Release.helm.sh/NS/NAME`).
pub fn release_id(namespace: &str, name: &str) -> ObjectId {
    ObjectId::in_group("helm.sh", "Release", namespace, name)
}

/// Which records of one release decide its intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice<'a> {
    /// The latest `deployed` revision: its record holds the intent.
    Deployed(&'a Meta),
    /// Helm is changing the release (the newest record is `pending-*`): no new verdict.
    Pending(&'a Meta),
    /// Uninstalled (with `--keep-history`) or being uninstalled: it names no object.
    Gone(&'a Meta),
    /// Records, but none deployed (every revision failed).
    NoneDeployed(&'a Meta),
}

/// The records of one release (any order) → what decides it; `None` without records.
pub fn choose(records: &[Meta]) -> Option<Choice<'_>> {
    let newest = records.iter().max_by_key(|m| m.revision)?;
    if newest.status.is_pending() {
        return Some(Choice::Pending(newest));
    }
    if newest.status.is_gone() {
        return Some(Choice::Gone(newest));
    }
    Some(
        records
            .iter()
            .filter(|m| m.status == Status::Deployed)
            .max_by_key(|m| m.revision)
            .map_or(Choice::NoneDeployed(newest), Choice::Deployed),
    )
}

/// The objects of `release`, named by `address` (a Terraform address, or [`address_of`]);
/// a document that describes no object is among the second list, by its place.
pub fn objects(release: &Release, address: &str) -> (Vec<Instance>, Vec<Unjudged>) {
    let name = format!("{}/{}", release.namespace, release.name);
    let invalid = |why: String| Unjudged {
        address: address.to_owned(),
        resource_type: RESOURCE_TYPE.to_owned(),
        id: Some(release_id(&release.namespace, &release.name)),
        why: Why::Invalid(why),
    };
    let documents: Vec<Value> = match serde_saphyr::from_multiple(&release.manifest) {
        Ok(docs) => docs,
        Err(_) => {
            return (
                Vec::new(),
                vec![invalid(format!(
                    "the manifest of revision {} is not YAML",
                    release.revision
                ))],
            );
        }
    };
    let source = Source::Helm {
        release: Arc::from(name.as_str()),
        revision: release.revision,
    };
    let mut instances = Vec::new();
    let mut unjudged = Vec::new();
    let mut each = |index: usize, doc: Value| match of_document(release, doc) {
        Some((object, unknown_scope)) => {
            match instance_of(
                address.to_owned(),
                RESOURCE_TYPE,
                object,
                None,
                source.clone(),
                None,
            ) {
                Ok(mut i) => {
                    // Helm puts an object of a kind tfdrift does not know (a custom
                    // resource) in the release namespace if the kind is namespaced: named
                    // there, its scope left to discovery, the intent not claiming one.
                    if unknown_scope {
                        i.id.namespace = release.namespace.clone();
                    }
                    instances.push(i)
                }
                Err(why) => unjudged.push(invalid(format!(
                    "document {index} of revision {}'s manifest {why}",
                    release.revision
                ))),
            }
        }
        None => unjudged.push(invalid(format!(
            "document {index} of revision {}'s manifest is no object",
            release.revision
        ))),
    };
    let mut index = 0;
    for doc in documents.into_iter().filter(|d| !d.is_null()) {
        // Helm applies a List's items one by one.
        let is_list = doc
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && doc.get("items").is_some_and(Value::is_array);
        if is_list {
            if let Some(Value::Array(items)) = doc.get("items").cloned() {
                for item in items {
                    index += 1;
                    each(index, item);
                }
            }
        } else {
            index += 1;
            each(index, doc);
        }
    }
    (instances, unjudged)
}

/// One manifest document as Helm sends it: its namespace, Helm's label and annotations; a
/// Secret's values as digests; and whether its scope is unknown (a kind tfdrift does not
/// know, with no namespace of its own). `None` for a document that is no object.
fn of_document(release: &Release, mut doc: Value) -> Option<(Value, bool)> {
    let map = doc.as_object_mut()?;
    let api_version = map.get("apiVersion").and_then(Value::as_str)?.to_owned();
    let kind = map.get("kind").and_then(Value::as_str)?.to_owned();
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()?;
    let (group, _) = crate::core::kind::split_api_version(&api_version);
    let namespaced = crate::core::kind::namespaced(group, &kind);
    let has_namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if namespaced == Some(true) && !has_namespace {
        meta.insert("namespace".into(), Value::from(release.namespace.as_str()));
    }
    let unknown_scope = namespaced.is_none() && !has_namespace;
    let entry = |meta: &mut Map<String, Value>, field: &str| -> Option<Map<String, Value>> {
        match meta.remove(field) {
            Some(Value::Object(m)) => Some(m),
            _ => Some(Map::new()),
        }
    };
    let mut labels = entry(meta, "labels")?;
    labels.insert(MANAGED_BY.into(), Value::from("Helm"));
    meta.insert("labels".into(), Value::Object(labels));
    let mut annotations = entry(meta, "annotations")?;
    annotations.insert(RELEASE_NAME.into(), Value::from(release.name.as_str()));
    annotations.insert(
        RELEASE_NAMESPACE.into(),
        Value::from(release.namespace.as_str()),
    );
    meta.insert("annotations".into(), Value::Object(annotations));
    if kind == "Secret" && group.is_empty() {
        crate::core::secret::digest_object(&mut doc);
    }
    Some((doc, unknown_scope))
}

/// A `helm_release` instance of a Terraform state: the release it names, the revision it
/// recorded, and a digest of the values it recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub address: String,
    pub namespace: String,
    pub name: String,
    /// `metadata[0].revision` (`metadata.revision` in provider v3).
    pub revision: Option<u64>,
    /// `metadata[0].values`, as a digest, with the paths of its `(sensitive value)` leaves.
    pub values: Option<(String, Vec<Vec<String>>)>,
}

impl Named {
    /// The release a `helm_release` instance's attributes name; `None` without a name.
    pub fn of(address: &str, attrs: &Value) -> Option<Named> {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let metadata = match attrs.get("metadata") {
            Some(Value::Array(items)) => items.first(),
            other => other,
        };
        let name =
            text(attrs.get("name")).or_else(|| text(metadata.and_then(|m| m.get("name"))))?;
        let namespace = text(attrs.get("namespace"))
            .or_else(|| text(metadata.and_then(|m| m.get("namespace"))))
            .unwrap_or_else(|| "default".to_owned());
        let revision = metadata
            .and_then(|m| m.get("revision"))
            .and_then(Value::as_u64);
        let values = metadata
            .and_then(|m| m.get("values"))
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .map(|v| {
                let cloaked = record::sensitive_paths(&v);
                (record::values_digest(&v, &cloaked), cloaked)
            });
        Some(Named {
            address: address.to_owned(),
            namespace,
            name,
            revision,
            values,
        })
    }

    /// What differs between the release as Terraform recorded it and `deployed`, the
    /// release's latest deployed revision (no value named).
    pub fn differences(&self, deployed: &Release) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(state) = self.revision
            && state != deployed.revision
        {
            out.push(format!(
                "release upgraded or rolled back outside Terraform: revision {}, Terraform state has {state}",
                deployed.revision
            ));
        }
        if let Some((digest, cloaked)) = &self.values
            && *digest != deployed.values_digest(cloaked)
        {
            out.push("values changed outside Terraform".to_owned());
        }
        out
    }
}

#[cfg(test)]
mod tests;
