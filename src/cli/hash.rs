//! `tfdrift hash`: fingerprints of manifests or live objects, as text, JSON, or the
//! manifests themselves annotated with their spec-hash.

use serde::Serialize;
use serde_json::Value;

use std::collections::{HashMap, HashSet};

use crate::cli::manifest::{Document, ManifestError, Manifests, RenderError};
use crate::core::contract;
use crate::core::fingerprint::{self, FingerprintError, ValueError, is_supported, spec_of};
use crate::core::ignore::{self, Defaults, Rule};
use crate::core::object::ObjectId;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// `object` is `Kind/name` as written.
    #[error("{position} ({object})")]
    Object {
        position: String,
        object: String,
        #[source]
        source: Box<HashValueError>,
    },
    #[error("{position}: {why}")]
    Identity { position: String, why: &'static str },
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// One hashed object, as `-o json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hashed {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub hash: String,
}

impl Hashed {
    /// `HASH  Kind/namespace/name`, or `Kind/name` without a namespace.
    pub fn line(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}  {}/{}/{}", self.hash, self.kind, ns, self.name),
            None => format!("{}  {}/{}", self.hash, self.kind, self.name),
        }
    }
}

/// What hashing the input gave: the hashed objects, and notes for stderr (a skipped
/// object; what ignore rules left out of one).
#[derive(Debug, Default)]
pub struct Outcome {
    pub hashed: Vec<Hashed>,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HashValueError {
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error(transparent)]
    Fingerprint(FingerprintError),
    #[error("invalid ignore rules in {annotation}: {note}")]
    Ignore {
        annotation: &'static str,
        note: String,
    },
}

/// An object's hash, fingerprint, and the rules that changed the fingerprint.
pub(crate) type Filtered = (String, Value, Option<String>);

/// The ignore rules `tfdrift hash` applies: the defaults from its flags, and the HPAs its
/// input holds.
#[derive(Debug, Default)]
pub struct Ignore {
    hpa_replicas: bool,
    defaults: HashMap<&'static str, Vec<Rule>>,
    scaled: HashSet<ObjectId>,
}

impl Ignore {
    /// No rules at all: the plain fingerprint.
    pub fn none() -> Self {
        Ignore::default()
    }

    /// `defaults`, and (when they say so) `replicas` of the objects an HPA in `manifests`
    /// scales.
    pub fn new(defaults: Defaults, manifests: &Manifests) -> Result<Self, HashError> {
        let docs = manifests.objects()?;
        Ok(Ignore::with_hpas(
            defaults,
            docs.iter().map(|doc| &doc.value),
        ))
    }

    /// `defaults`, and (when they say so) `replicas` of the objects `hpas` (HPA manifests)
    /// scale.
    pub fn with_hpas<'v>(defaults: Defaults, hpas: impl Iterator<Item = &'v Value>) -> Self {
        let scaled = if defaults.hpa_replicas {
            hpas.filter_map(ignore::scaled::target_of_manifest)
                .collect()
        } else {
            HashSet::new()
        };
        Ignore {
            hpa_replicas: defaults.hpa_replicas,
            defaults: defaults.by_kind(),
            scaled,
        }
    }

    /// The hash and fingerprint of `value` with its rules applied, and the rules that
    /// changed it: the defaults, its `tfdrift.jin.dev/ignore` annotation, `replicas` if an
    /// HPA in the input scales it, and the `tfdrift.jin.dev/ignored` rules a live object
    /// carries (so that a live object hashes to its live-hash). `None` for an unsupported
    /// kind; an invalid rule is an error.
    pub(crate) fn filtered(&self, value: &Value) -> Option<Result<Filtered, HashValueError>> {
        spec_of(value).map(|spec| self.filter(value, spec?))
    }

    fn filter(&self, value: &Value, mut spec: Value) -> Result<Filtered, HashValueError> {
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        let meta = value.get("metadata");
        let field = |f: &str| {
            meta.and_then(|m| m.get(f))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let annotation = |key: &str| {
            meta.and_then(|m| m.get("annotations"))
                .and_then(|a| a.get(key))
                .map(|v| v.as_str().unwrap_or(""))
        };
        let (namespace, name) = (field("namespace"), field("name"));
        // Manifests often leave the namespace to `kubectl apply -n`: a side without one
        // matches any.
        let scaled = self.scaled.iter().any(|t| {
            t.kind == kind
                && t.name == name
                && (t.namespace == namespace || t.namespace.is_empty() || namespace.is_empty())
        });
        // The operator's rules, then those it recorded on a live object.
        let defaults = self
            .defaults
            .get(kind)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut rules = ignore::rules_for(kind, defaults, annotation(contract::IGNORE), scaled);
        let recorded = annotation(contract::IGNORED)
            .map(|text| ignore::parse_list(kind, text))
            .unwrap_or_default();
        for (key, parsed) in [(contract::IGNORE, &rules), (contract::IGNORED, &recorded)] {
            if let Some(note) = parsed.invalid_note() {
                return Err(HashValueError::Ignore {
                    annotation: key,
                    note,
                });
            }
        }
        rules.rules.extend(recorded.rules);
        let ignored = ignore::apply(&mut spec, &rules.rules);
        let hash = fingerprint::hash_spec(kind, &spec).map_err(HashValueError::Fingerprint)?;
        Ok((hash, spec, ignored))
    }
}

fn identity(doc: &Document) -> Result<(String, Option<String>, String), HashError> {
    let kind = doc
        .value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if kind.is_empty() {
        return Err(HashError::Identity {
            position: doc.position(),
            why: "has no kind",
        });
    }
    let meta = doc.value.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .map(str::to_owned);
    Ok((kind, namespace, name))
}

/// Hashes every supported object in `manifests` under `rules`; unsupported kinds are
/// noted, not errors.
pub fn hash_all(manifests: &Manifests, rules: &Ignore) -> Result<Outcome, HashError> {
    hash_each(manifests, rules, |_| {})
}

/// [`hash_all`], handing each hashed object's fingerprint to `keep`, in order.
fn hash_each(
    manifests: &Manifests,
    rules: &Ignore,
    mut keep: impl FnMut(Value),
) -> Result<Outcome, HashError> {
    let mut outcome = Outcome::default();
    for doc in manifests.objects()? {
        let (kind, namespace, name) = identity(&doc)?;
        match rules.filtered(&doc.value) {
            None => {
                let api = doc
                    .value
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let why = match ignore::scaled::target_of_manifest(&doc.value) {
                    Some(t) if rules.hpa_replicas => format!(
                        "not fingerprinted; {}/{}'s replicas is left out of its hash",
                        t.kind, t.name
                    ),
                    _ => "not a supported kind".to_owned(),
                };
                outcome.notes.push(format!(
                    "{}: skipped {kind}/{name} ({api}): {why}",
                    doc.position()
                ));
            }
            Some(Err(source)) => {
                return Err(HashError::Object {
                    position: doc.position(),
                    object: format!("{kind}/{name}"),
                    source: Box::new(source),
                });
            }
            Some(Ok((hash, spec, ignored))) => {
                keep(spec);
                if let Some(ignored) = ignored {
                    outcome.notes.push(format!(
                        "{}: {kind}/{name}: left out by ignore rules: {ignored}",
                        doc.position()
                    ));
                }
                outcome.hashed.push(Hashed {
                    kind,
                    namespace,
                    name,
                    hash,
                })
            }
        }
    }
    Ok(outcome)
}

/// Sets the opt-in label, the spec-hash annotation and (with `baseline`) the baseline
/// record on every supported object, under `rules`, in place (inside Lists too). Returns the
/// notes for stderr.
pub fn annotate(
    manifests: &mut Manifests,
    baseline: bool,
    rules: &Ignore,
) -> Result<Vec<String>, HashError> {
    let mut specs = Vec::new();
    let outcome = hash_each(manifests, rules, |spec| {
        if baseline {
            specs.push(spec)
        }
    })?;
    let mut hashes = outcome.hashed.into_iter();
    let mut specs = specs.into_iter();
    for doc in &mut manifests.documents {
        let targets: Vec<&mut Value> = if crate::cli::manifest::is_list(doc) {
            doc.get_mut("items")
                .and_then(Value::as_array_mut)
                .map(|items| items.iter_mut().collect())
                .unwrap_or_default()
        } else {
            vec![doc]
        };
        // hash_each hashed exactly the supported objects, in this order.
        for obj in targets.into_iter().filter(|o| is_supported(o)) {
            let Some(h) = hashes.next() else { break };
            // A record too large to write is left out: the operator then reports drift
            // without field detail.
            let record = specs
                .next()
                .and_then(|spec| crate::core::explain::diff::encode_record(&h.hash, &spec).ok());
            set_opt_in(obj, &h.hash, record.as_deref());
        }
    }
    Ok(outcome.notes)
}

fn set_opt_in(obj: &mut Value, hash: &str, record: Option<&str>) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    if !meta.is_object() {
        *meta = Value::Object(Default::default());
    }
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let mut entries = vec![
        ("labels", contract::ENABLED_LABEL, "true"),
        ("annotations", contract::SPEC_HASH, hash),
    ];
    if let Some(record) = record {
        entries.push(("annotations", contract::BASELINE, record));
    }
    for (field, key, value) in entries {
        let map = meta
            .entry(field)
            .or_insert_with(|| Value::Object(Default::default()));
        if !map.is_object() {
            *map = Value::Object(Default::default());
        }
        if let Some(map) = map.as_object_mut() {
            map.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    }
}
