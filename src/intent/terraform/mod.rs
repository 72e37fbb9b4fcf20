//! Intent from Terraform's own record, its state (format v4): every managed instance of the
//! Kubernetes provider (typed `kubernetes_*` resources, `kubernetes_manifest`, the patch-style
//! resources) and of `kubectl_manifest`, each read into the object it intends or named with
//! the reason it is not judged; a `helm_release` into the release it names, whose objects are
//! in the cluster's release record ([`crate::intent::helm`]).
//!
//! State holds secret values in plain text. Nothing read here is logged; an instance is named
//! by its address only; Secret values are kept as keyed digests ([`crate::core::secret`]).

pub mod address;
pub mod backend;
pub mod compact;
pub mod judge;
pub mod kubectl;
pub mod manifest;
pub mod patch;
pub mod state;
pub mod typed;

use serde_json::Value;

use crate::core::fingerprint;
use crate::core::ignore::Path;
use crate::core::kind;
use crate::core::object::ObjectId;
pub use state::{MAX_STATE_BYTES, StateError, inflate};

/// One object Terraform manages, as its state records it.
#[derive(Debug, Clone)]
pub struct Instance {
    /// As Terraform prints it: `module.app.kubernetes_deployment_v1.web["blue"]`.
    pub address: String,
    pub resource_type: String,
    pub id: ObjectId,
    pub api_version: String,
    /// The uid Terraform saw; absent where its state keeps none (`kubernetes_manifest`).
    pub uid: Option<String>,
    /// The object as intended, in the API's names and shapes (Secret values as digests).
    pub object: Value,
    pub source: Source,
}

/// Which kind of intent an instance holds, which decides how it is compared.
#[derive(Debug, Clone)]
pub enum Source {
    /// A typed resource: every attribute the state holds.
    Typed {
        resource: &'static typed::Resource,
        /// A Secret whose data is write-only (`data_wo`): not in state, not judged.
        write_only_data: bool,
    },
    /// `kubernetes_manifest`: the paths the manifest sets, but its `computed_fields`.
    Manifest { computed: Vec<Path> },
    /// `kubectl_manifest`: the fields of the body, but its `ignore_fields`; additions are not
    /// drift.
    Kubectl { ignored: Vec<Path> },
    /// A patch-style resource: only the keys it sets.
    Patch,
    /// An object of a Helm release (`NAMESPACE/NAME`) at `revision`: the paths its manifest
    /// sets, Helm's label and annotations among them.
    Helm {
        release: std::sync::Arc<str>,
        revision: u64,
    },
}

/// Why an instance is not judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// A resource type tfdrift does not read.
    Unsupported(String),
    /// Read, but not judged by design or for now (tainted, deposed, a Helm release Helm is changing).
    NotJudged(String),
    /// Its attributes do not describe an object.
    Invalid(String),
    /// Judged as a whole, not by an object, and not in the cluster: a Helm release with no
    /// record, or uninstalled.
    Missing(String),
    /// Judged as a whole, not by an object, and drifted: a Helm release upgraded, rolled
    /// back or given other values outside Terraform.
    Drifted(String),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Unsupported(why)
            | Why::NotJudged(why)
            | Why::Invalid(why)
            | Why::Missing(why)
            | Why::Drifted(why) => f.write_str(why),
        }
    }
}

/// A managed Kubernetes instance that is not judged, and why.
#[derive(Debug, Clone)]
pub struct Unjudged {
    pub address: String,
    pub resource_type: String,
    /// The object, where the instance names one.
    pub id: Option<ObjectId>,
    pub why: Why,
}

/// One instance of a state, as read.
#[derive(Debug)]
pub enum Item {
    Instance(Box<Instance>),
    Unjudged(Unjudged),
    /// A `helm_release`: its objects are in the release record, in the cluster.
    Release(crate::intent::helm::Named),
}

/// What a state names: every instance read, the HPAs it manages (for ignore rules), and
/// notes for what was skipped that is no Kubernetes instance (data sources).
#[derive(Debug, Default)]
pub struct Read {
    pub instances: Vec<Instance>,
    pub unjudged: Vec<Unjudged>,
    pub hpas: Vec<Value>,
    pub notes: Vec<String>,
    /// The Helm releases `helm_release` instances name.
    pub releases: Vec<crate::intent::helm::Named>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    State(#[from] StateError),
}

/// Reads a state (plain or gzip'd JSON). An instance that does not describe an object is
/// reported by address among [`Read::unjudged`]; it never stops the rest.
pub fn read(bytes: Vec<u8>) -> Result<Read, ReadError> {
    let mut instances = Vec::new();
    let mut unjudged = Vec::new();
    let mut releases = Vec::new();
    let mut out = read_each(bytes, |item| match item {
        Item::Instance(i) => instances.push(*i),
        Item::Unjudged(u) => unjudged.push(u),
        Item::Release(r) => releases.push(r),
    })?;
    out.instances = instances;
    out.unjudged = unjudged;
    out.releases = releases;
    Ok(out)
}

/// [`read`], handing each instance to `each` as it is read instead of keeping them all: what
/// the caller keeps of an instance is then allocated next to the rest of it, not scattered
/// among every instance's decoded attributes, which are most of the memory reading a large
/// state takes and would otherwise pin it after they are freed. The returned [`Read`] holds
/// the HPAs and notes, no instances.
pub fn read_each(bytes: Vec<u8>, mut each: impl FnMut(Item)) -> Result<Read, ReadError> {
    let json = inflate(bytes)?;
    let resources = state::resources(&json)?;
    let mut out = Read::default();
    for resource in &resources {
        for instance in &resource.instances {
            if let Some(item) = one(resource, instance, &mut out) {
                each(item);
            }
        }
    }
    Ok(out)
}

/// Whether a resource type is one of Kubernetes: every instance of these is accounted for.
pub fn is_kubernetes_type(resource_type: &str) -> bool {
    resource_type.starts_with("kubernetes_")
        || resource_type == "kubectl_manifest"
        || resource_type == "helm_release"
}

/// One instance: `None` when it is no Kubernetes instance (with a note in `out` for a data
/// source).
fn one(
    resource: &state::Resource<'_>,
    instance: &state::Instance<'_>,
    out: &mut Read,
) -> Option<Item> {
    let address = resource.address(instance.index_key.as_ref());
    let resource_type = resource.type_.as_str();
    if !is_kubernetes_type(resource_type) {
        return None;
    }
    if !resource.is_managed() {
        out.notes.push(format!("skipped {address}: a data source"));
        return None;
    }
    let unjudged = |why: Why| {
        Some(Item::Unjudged(Unjudged {
            address: address.clone(),
            resource_type: resource_type.to_owned(),
            id: None,
            why,
        }))
    };
    let replaced = match (&instance.deposed, instance.status.as_deref()) {
        (Some(deposed), _) => Some(format!(
            "deposed object {deposed}: Terraform will destroy it"
        )),
        (None, Some("tainted")) => Some("tainted: Terraform will replace it".to_owned()),
        _ => None,
    };
    if let Some(why) = replaced {
        // Named by the object it describes, where it describes one.
        let id = one(
            resource,
            &state::Instance {
                status: None,
                deposed: None,
                index_key: instance.index_key.clone(),
                schema_version: instance.schema_version,
                attributes: instance.attributes,
                identity: None,
            },
            &mut Read::default(),
        )
        .and_then(|item| match item {
            Item::Instance(i) => Some(i.id),
            Item::Unjudged(_) | Item::Release(_) => None,
        });
        return Some(Item::Unjudged(Unjudged {
            address,
            resource_type: resource_type.to_owned(),
            id,
            why: Why::NotJudged(why),
        }));
    }
    let attrs: Value = match instance.attributes {
        Some(raw) => match serde_json::from_str(raw.get()) {
            Ok(attrs) => attrs,
            Err(_) => return unjudged(Why::Invalid("its attributes are not JSON".into())),
        },
        None => Value::Null,
    };
    if resource_type == "helm_release" {
        return match crate::intent::helm::Named::of(&address, &attrs) {
            Some(named) => Some(Item::Release(named)),
            None => unjudged(Why::Invalid("a helm_release without a name".into())),
        };
    }
    let read = match resource_type {
        "kubernetes_manifest" => manifest::read(&attrs)
            .map(|m| {
                (
                    m.object,
                    None,
                    Source::Manifest {
                        computed: m.computed,
                    },
                )
            })
            .map_err(|e| e.to_string()),
        "kubectl_manifest" => kubectl::read(&attrs)
            .map(|k| (k.object, None, Source::Kubectl { ignored: k.ignored }))
            .map_err(|e| e.to_string()),
        t if patch::TYPES.contains(&t) => patch::object(t, &attrs)
            .map(|o| (o, None, Source::Patch))
            .map_err(|e| e.to_string()),
        t => match typed::object(t, &attrs) {
            None => {
                return unjudged(Why::Unsupported(format!(
                    "{t} is not a resource type tfdrift reads"
                )));
            }
            Some(Err(e)) => Err(e.to_string()),
            Some(Ok(typed)) => Ok((
                typed.object,
                typed.uid,
                Source::Typed {
                    resource: typed.resource,
                    write_only_data: typed.write_only_data,
                },
            )),
        },
    };
    let (mut object, uid, source) = match read {
        Ok(read) => read,
        Err(why) => return unjudged(Why::Invalid(why)),
    };
    if object.get("kind").and_then(Value::as_str) == Some("Secret")
        && !matches!(source, Source::Typed { .. } | Source::Patch)
    {
        crate::core::secret::digest_object(&mut object);
    }
    if object.get("kind").and_then(Value::as_str) == Some(crate::core::ignore::scaled::KIND) {
        out.hpas.push(object.clone());
    }
    match instance_of(
        address.clone(),
        resource_type,
        object,
        uid,
        source,
        instance.identity.as_ref(),
    ) {
        Ok(i) => Some(Item::Instance(Box::new(i))),
        Err(why) => unjudged(Why::Invalid(why.into())),
    }
}

/// An instance of `object`, in the namespace it names (or `default`, for a namespaced kind).
pub(crate) fn instance_of(
    address: String,
    resource_type: &str,
    mut object: Value,
    uid: Option<String>,
    source: Source,
    identity: Option<&state::Identity>,
) -> Result<Instance, &'static str> {
    let field = |object: &Value, f: &str| {
        object
            .get("metadata")
            .and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let text = |f: &str| {
        object
            .get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if kind.is_empty() || api_version.is_empty() {
        return Err("names no apiVersion and kind");
    }
    let (group, _) = kind::split_api_version(&api_version);
    // The identity Terraform records is the provider's own word on which object it is.
    let name = identity
        .and_then(|i| i.name.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| field(&object, "name"))
        .ok_or("has no metadata.name")?;
    let namespaced = kind::namespaced(group, &kind);
    let mut namespace = identity
        .and_then(|i| i.namespace.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| field(&object, "namespace"))
        .unwrap_or_default();
    match namespaced {
        Some(false) => namespace.clear(),
        // kubectl applies a namespaced object without one to `default`, and the provider
        // does so for its own resources.
        Some(true) if namespace.is_empty() => namespace = "default".to_owned(),
        _ => {}
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
        && !namespace.is_empty()
    {
        meta.insert("namespace".into(), Value::from(namespace.as_str()));
    }
    Ok(Instance {
        id: ObjectId::in_group(group, &kind, &namespace, &name),
        api_version,
        resource_type: resource_type.to_owned(),
        address,
        uid,
        object,
        source,
    })
}

/// What the operator keeps of one instance: hashes and a compressed fingerprint, no
/// attribute value beyond them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The hash under the kind's default rules and the object's own ignore annotation.
    pub hash: String,
    /// The same with `replicas` left out, for when an HPA scales the object; `None` when
    /// that changes nothing.
    pub scaled_hash: Option<String>,
    /// The fingerprint as a baseline record (`v1:<hash>:<deflated JSON>`), to say what
    /// drifted; `None` when it would be too large.
    pub record: Option<String>,
    /// The object's `tfdrift.jin.dev/ignore` annotation as the state records it (as written
    /// in HCL): the live object is hashed under the same rules.
    pub ignore: Option<std::sync::Arc<str>>,
}

/// The object of `instance` in the form its fingerprint reads: what the server stores of it
/// (no `null`, no empty block or list), for the kinds tfdrift fingerprints.
pub fn fingerprint_object(instance: &Instance) -> Option<Value> {
    if !fingerprint::is_supported(&instance.object) {
        return None;
    }
    let mut object = instance.object.clone();
    if let Source::Typed { resource, .. } = &instance.source {
        let schema = crate::core::schema::builtin::schema();
        if let Some(root) =
            kind::builtin(resource.api_version, resource.kind).and_then(|k| schema.def(k.def))
        {
            schema.stored(&mut object, root);
        }
    }
    Some(object)
}

/// The intent of `instance` under `defaults` (the kind's default ignore rules) and `extra`
/// fingerprint paths (address rules), for the kinds tfdrift fingerprints.
pub fn intent(
    instance: &Instance,
    defaults: &[crate::core::ignore::Rule],
    extra: &[String],
) -> Result<Intent, fingerprint::ValueError> {
    use crate::core::ignore;
    let kind = instance.id.kind.as_str();
    let object = fingerprint_object(instance).ok_or(fingerprint::ValueError::Unsupported)?;
    let own = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(crate::core::contract::IGNORE))
        .and_then(Value::as_str);
    let joined: Option<String> = match (own, extra.is_empty()) {
        (own, true) => own.map(str::to_owned),
        (None, false) => Some(extra.join(",")),
        (Some(own), false) => Some(format!("{own},{}", extra.join(","))),
    };
    let annotation = joined.as_deref();
    let spec = match fingerprint::spec_of(&object) {
        Some(spec) => spec?,
        None => return Err(fingerprint::ValueError::Unsupported),
    };
    let hashed = |scaled: bool| -> Result<(String, Value), fingerprint::ValueError> {
        let mut spec = spec.clone();
        ignore::apply(
            &mut spec,
            &ignore::rules_for(kind, defaults, annotation, scaled).rules,
        );
        let hash =
            fingerprint::hash_spec(kind, &spec).map_err(fingerprint::ValueError::Fingerprint)?;
        Ok((hash, spec))
    };
    let (hash, spec) = hashed(false)?;
    let (scaled, _) = hashed(true)?;
    let record = crate::core::explain::diff::encode_record(&hash, &spec).ok();
    Ok(Intent {
        scaled_hash: (scaled != hash).then_some(scaled),
        hash,
        record,
        ignore: annotation.map(Into::into),
    })
}

#[cfg(test)]
mod tests;
