//! What the controller of named objects caches per object: its identity, the tfdrift
//! annotations it carries, and its verdict — the comparison with what the state says, made as
//! its watch event arrives, with the object the event already decoded (what changed and who
//! changed it need `managedFields`, which are not kept). The live object itself is dropped:
//! an entry is a few hundred bytes whatever the object's size.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject};
use kube::core::DynamicResourceScope;

use crate::cluster::Served;
use crate::core::contract;
use crate::core::ignore::api::ApiRule;
use crate::core::object::ObjectId;
use crate::intent::terraform::judge::{self, Judgment};
use crate::operator::intents::StateIntent;
use crate::operator::summary;

/// The annotations a plan reads; every other one is dropped.
const KEPT_ANNOTATIONS: [&str; 11] = contract::OPERATOR_ANNOTATIONS;

/// What an object was judged against: the digest of its intent, and whether an HPA had
/// `spec.replicas`. When either differs from what holds now, the object is fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Basis {
    pub digest: [u8; 16],
    pub scaled: bool,
}

impl Basis {
    pub fn of(intent: &StateIntent, scaled: bool) -> Basis {
        Basis {
            digest: intent.digest,
            scaled,
        }
    }
}

/// The verdict on a named object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every field the intent sets holds; `note` says what could not be judged of it.
    InSync { note: Option<&'static str> },
    /// The addresses whose fields changed, and what changed and who changed it.
    Drifted {
        addresses: Box<str>,
        summary: Box<str>,
    },
    /// Deleted and created again outside Terraform.
    Recreated { live: Box<str>, state: Box<str> },
    /// What the operator kept of the intent could not be read back: not the cluster's doing.
    Failed(Box<str>),
}

/// A named object as cached. (Deserialisable only because kube's `Controller` asks it of
/// what it caches: only the metadata would be read.)
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Judged {
    /// Name, namespace, uid and resourceVersion only.
    pub metadata: ObjectMeta,
    /// It carries `tfdrift.jin.dev/enabled: "true"`: when no state names it any more, the
    /// spec-hash flow takes it over.
    #[serde(skip)]
    pub opted_in: bool,
    #[serde(skip)]
    tfdrift_annotations: Box<[(&'static str, Box<str>)]>,
    #[serde(skip)]
    pub outcome: Outcome,
    #[serde(skip)]
    pub basis: Basis,
}

impl Judged {
    /// Judges `obj` against `intent`; `scaled`: an HPA scales it, so `spec.replicas` is left
    /// to it.
    pub fn new(
        mut obj: DynamicObject,
        id: &ObjectId,
        intent: &StateIntent,
        served: &Served,
        scaled: bool,
    ) -> Judged {
        // The items of a list carry no apiVersion and kind; the intent does.
        if obj.types.is_none() {
            obj.types = Some(kube::api::TypeMeta {
                api_version: served.resource.api_version.clone(),
                kind: served.resource.kind.clone(),
            });
        }
        let managed = obj.metadata.managed_fields.clone().unwrap_or_default();
        let outcome = match serde_json::to_value(&obj) {
            Ok(live) => judge_all(&live, &managed, id, intent, served, scaled),
            Err(_) => Outcome::Failed("the live object is not JSON".into()),
        };
        let mut judged = Judged::identity(obj.metadata);
        judged.outcome = outcome;
        judged.basis = Basis::of(intent, scaled);
        judged
    }

    /// `meta`'s identity and tfdrift annotations only, not judged: what a deletion carries.
    pub fn identity(meta: ObjectMeta) -> Judged {
        let opted_in = summary::opted_in(&meta);
        let mut annotations = meta.annotations.unwrap_or_default();
        let tfdrift_annotations = summary::take_annotations(&mut annotations, &KEPT_ANNOTATIONS);
        Judged {
            metadata: summary::identity(meta.name, meta.namespace, meta.uid, meta.resource_version),
            opted_in,
            tfdrift_annotations,
            outcome: Outcome::InSync { note: None },
            basis: Basis::default(),
        }
    }

    /// The tfdrift annotations the object carried.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.tfdrift_annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_string()))
            .collect()
    }
}

/// Every claim of `intent` against `live`: recreated if the instance that makes the object
/// saw another uid, drifted if any claim's fields changed (each address named), else in sync.
fn judge_all(
    live: &serde_json::Value,
    managed: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry],
    id: &ObjectId,
    intent: &StateIntent,
    served: &Served,
    scaled: bool,
) -> Outcome {
    let mut changes = Vec::new();
    let mut addresses = Vec::new();
    let mut note = None;
    for claim in &intent.claims {
        let instance = match claim.instance.expand(id) {
            Ok(instance) => instance,
            Err(error) => return Outcome::Failed(crate::core::text::chain(&error).into()),
        };
        let mut context = claim.context.clone();
        if scaled && let Ok(replicas) = ApiRule::parse("spec.replicas") {
            context.rules.push(replicas);
        }
        match judge::judge(&instance, live, &served.schema, served.root, &context) {
            Judgment::Recreated { live, state } => {
                return Outcome::Recreated {
                    live: live.into(),
                    state: state.into(),
                };
            }
            Judgment::Drifted { changes: found } => {
                changes.extend(found);
                addresses.push(instance.address);
            }
            Judgment::InSync { note: n } => note = note.or(n),
        }
    }
    if addresses.is_empty() {
        return Outcome::InSync { note };
    }
    Outcome::Drifted {
        addresses: addresses.join(", ").into(),
        summary: judge::explain(&changes, managed, summary::SUMMARY_LIMIT).into(),
    }
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome::InSync { note: None }
    }
}

impl kube::Resource for Judged {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }
    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
