//! Intent from Terraform's own record, its state (format v4): every instance of a typed
//! `kubernetes_*` resource of a supported kind, and every `kubernetes_manifest` of one.
//!
//! State holds secret values in plain text. Nothing read here is logged; a skipped
//! resource is named by its address only; an [`Instance`] keeps only what a fingerprint
//! reads (see [`typed`]).

pub mod address;
pub mod state;
pub mod typed;

use serde_json::Value;

use crate::core::fingerprint;
use crate::core::object::ObjectId;
pub use state::{MAX_STATE_BYTES, StateError, inflate};
use typed::TypedKind;

/// One object Terraform manages, as its state records it.
#[derive(Debug, Clone)]
pub struct Instance {
    /// As Terraform prints it: `module.app.kubernetes_deployment_v1.web["blue"]`.
    pub address: String,
    pub id: ObjectId,
    /// The uid Terraform saw; absent for `kubernetes_manifest` (its state drops it).
    pub uid: Option<String>,
    /// The object as a manifest holding only what its fingerprint reads.
    pub object: Value,
}

/// What a state names: the supported instances, the manifests of the HPAs it manages (for
/// ignore rules), and notes for what was skipped.
#[derive(Debug, Default)]
pub struct Read {
    pub instances: Vec<Instance>,
    pub hpas: Vec<Value>,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{address}: {source}")]
    Typed {
        address: String,
        #[source]
        source: typed::TypedError,
    },
    #[error("{address}: {why}")]
    Instance { address: String, why: &'static str },
}

/// The kinds `kubernetes_manifest` may hold for tfdrift: those it fingerprints.
fn manifest_kind_supported(manifest: &Value) -> bool {
    fingerprint::is_supported(manifest)
}

/// Reads a state (plain or gzip'd JSON); an instance that does not describe an object is an
/// error naming its address.
pub fn read(bytes: Vec<u8>) -> Result<Read, ReadError> {
    read_with(bytes, Err)
}

/// [`read`], handing each instance that does not describe an object to `on_bad`: `Ok` skips
/// it (the operator keeps the rest of the state), `Err` stops.
pub fn read_with(
    bytes: Vec<u8>,
    on_bad: impl FnMut(ReadError) -> Result<(), ReadError>,
) -> Result<Read, ReadError> {
    let mut instances = Vec::new();
    let mut out = read_each(bytes, on_bad, |i| instances.push(i))?;
    out.instances = instances;
    Ok(out)
}

/// [`read_with`], handing each instance to `each` as it is read instead of keeping them
/// all: what the caller keeps of an instance is then allocated next to the rest of it,
/// not scattered among every instance's decoded attributes, which are most of the memory
/// reading a large state takes and would otherwise pin it after they are freed. The returned [`Read`] has no instances.
pub fn read_each(
    bytes: Vec<u8>,
    mut on_bad: impl FnMut(ReadError) -> Result<(), ReadError>,
    mut each: impl FnMut(Instance),
) -> Result<Read, ReadError> {
    let json = inflate(bytes)?;
    let resources = state::resources(&json)?;
    let mut out = Read::default();
    for resource in &resources {
        for instance in &resource.instances {
            match one(resource, instance, &mut out) {
                Ok(Some(i)) => each(i),
                Ok(None) => {}
                Err(error) => on_bad(error)?,
            }
        }
    }
    Ok(out)
}

/// One instance: `None` when it is skipped (with a note in `out`).
fn one(
    resource: &state::Resource<'_>,
    instance: &state::Instance<'_>,
    out: &mut Read,
) -> Result<Option<Instance>, ReadError> {
    let address = resource.address(instance.index_key.as_ref());
    if !resource.is_managed() {
        out.notes.push(format!("skipped {address}: a data source"));
        return Ok(None);
    }
    if let Some(deposed) = &instance.deposed {
        out.notes.push(format!(
            "skipped {address} (deposed object {deposed}): Terraform will destroy it"
        ));
        return Ok(None);
    }
    if instance.status.as_deref() == Some("tainted") {
        out.notes.push(format!(
            "skipped {address}: tainted, Terraform will replace it"
        ));
        return Ok(None);
    }
    let attrs: Value = match instance.attributes {
        Some(raw) => serde_json::from_str(raw.get()).map_err(|_| ReadError::Instance {
            address: address.clone(),
            why: "attributes are not JSON",
        })?,
        None => Value::Null,
    };
    if resource
        .type_
        .starts_with("kubernetes_horizontal_pod_autoscaler")
    {
        out.hpas.extend(typed::hpa_manifest(&attrs));
        return Ok(None);
    }
    let object = match (TypedKind::of(&resource.type_), resource.type_.as_str()) {
        (Some(kind), _) => typed::object(kind, &attrs).map_err(|source| ReadError::Typed {
            address: address.clone(),
            source,
        })?,
        (None, "kubernetes_manifest") => match manifest_object(&attrs, &address)? {
            Some(object) => object,
            None => {
                out.notes.push(format!(
                    "skipped {address}: its kind is not one tfdrift fingerprints"
                ));
                return Ok(None);
            }
        },
        _ => {
            out.notes
                .push(format!("skipped {address}: not a supported resource type"));
            return Ok(None);
        }
    };
    instance_of(address, object, instance.identity.as_ref()).map(Some)
}

/// The object a `kubernetes_manifest` instance holds: what the user wrote (`manifest`), with
/// the namespace the applied `object` has when the manifest leaves it out.
fn manifest_object(attrs: &Value, address: &str) -> Result<Option<Value>, ReadError> {
    let Some(manifest) = attrs.pointer("/manifest/value").filter(|m| m.is_object()) else {
        return Err(ReadError::Instance {
            address: address.to_owned(),
            why: "kubernetes_manifest without a manifest value",
        });
    };
    if !manifest_kind_supported(manifest) {
        return Ok(None);
    }
    let mut object = manifest.clone();
    let namespace = manifest
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            attrs
                .pointer("/object/value/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_owned();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), Value::from(namespace));
    }
    Ok(Some(object))
}

fn instance_of(
    address: String,
    object: Value,
    identity: Option<&state::Identity>,
) -> Result<Instance, ReadError> {
    let field = |f: &str| {
        object
            .get("metadata")
            .and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // The identity Terraform records is the provider's own word on which object it is.
    let name = identity
        .and_then(|i| i.name.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| field("name"));
    let Some(name) = name else {
        return Err(ReadError::Instance {
            address,
            why: "has no metadata.name",
        });
    };
    let namespace = identity
        .and_then(|i| i.namespace.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| field("namespace"))
        .unwrap_or_else(|| "default".to_owned());
    let uid = field("uid");
    Ok(Instance {
        id: ObjectId::new(&kind, &namespace, &name),
        address,
        uid,
        object,
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

/// The intent of `instance` under `defaults` (the kind's default ignore rules).
pub fn intent(
    instance: &Instance,
    defaults: &[crate::core::ignore::Rule],
) -> Result<Intent, fingerprint::ValueError> {
    use crate::core::ignore;
    let kind = instance.id.kind.as_str();
    let annotation = instance
        .object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(crate::core::contract::IGNORE))
        .and_then(Value::as_str);
    let spec = match fingerprint::spec_of(&instance.object) {
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
