//! `tfdrift hash`: fingerprints of manifests or live objects, as text, JSON, or the
//! manifests themselves annotated with their spec-hash.

use serde::Serialize;
use serde_json::Value;

use std::collections::HashSet;

use crate::fingerprint::{self, FingerprintError};
use crate::hpa::Target;
use crate::ignore::{self, Defaults, Rule};
use crate::keys;
use crate::manifest::{Document, ManifestError, Manifests, RenderError};

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

/// The hash of one object of a supported kind, `None` for any other kind.
pub fn hash_value(value: &Value) -> Option<Result<String, HashValueError>> {
    fingerprint_value(value).map(|r| r.map(|(hash, _)| hash))
}

/// The hash and canonical fingerprint of one object of a supported kind.
pub fn fingerprint_value(value: &Value) -> Option<Result<(String, Value), HashValueError>> {
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    macro_rules! dispatch {
        ($($variant:ident: $ty:ty => $kind:literal, $api:literal;)*) => {
            match (api_version, kind) {
                $(($api, $kind) => Some(
                    serde_json::from_value::<$ty>(value.clone())
                        .map_err(HashValueError::Decode)
                        .and_then(|obj| {
                            let spec = fingerprint::spec_value(&obj).map_err(HashValueError::Fingerprint)?;
                            let hash = fingerprint::hash_spec($kind, &spec).map_err(HashValueError::Fingerprint)?;
                            Ok((hash, spec))
                        }),
                ),)*
                _ => None,
            }
        };
    }
    crate::for_each_kind!(dispatch)
}

#[derive(Debug, thiserror::Error)]
pub enum HashValueError {
    #[error("not a valid object of its kind")]
    Decode(#[source] serde_json::Error),
    #[error(transparent)]
    Fingerprint(FingerprintError),
    #[error("invalid ignore rules in {annotation}: {note}")]
    Ignore {
        annotation: &'static str,
        note: String,
    },
}

/// An object's hash, fingerprint, and the rules that changed the fingerprint.
type Filtered = (String, Value, Option<String>);

/// The ignore rules `tfdrift hash` applies: the defaults from its flags, and the HPAs its
/// input holds.
#[derive(Debug, Default)]
pub struct Ignore {
    defaults: Defaults,
    scaled: HashSet<Target>,
}

impl Ignore {
    /// No rules at all: the plain fingerprint.
    pub fn none() -> Self {
        Ignore::default()
    }

    /// `defaults`, and (when they say so) `replicas` of the objects an HPA in `manifests`
    /// scales.
    pub fn new(defaults: Defaults, manifests: &Manifests) -> Result<Self, HashError> {
        let scaled = if defaults.hpa_replicas {
            manifests
                .objects()?
                .iter()
                .filter_map(|doc| crate::hpa::target_of_manifest(&doc.value))
                .collect()
        } else {
            HashSet::new()
        };
        Ok(Ignore { defaults, scaled })
    }

    /// The hash and fingerprint of `value` with its rules applied: the defaults, its
    /// `tfdrift.jin.dev/ignore` annotation, the `tfdrift.jin.dev/ignored` one a live object
    /// carries (so that a live object hashes to its live-hash), `replicas` if an HPA in the
    /// input scales it. `None` for an unsupported kind; an invalid rule is an error.
    pub fn fingerprint(&self, value: &Value) -> Option<Result<(String, Value), HashValueError>> {
        self.filtered(value)
            .map(|r| r.map(|(hash, spec, _)| (hash, spec)))
    }

    /// [`Ignore::fingerprint`], and the rules that changed the fingerprint.
    fn filtered(&self, value: &Value) -> Option<Result<Filtered, HashValueError>> {
        let (_, raw) = match fingerprint_value(value)? {
            Ok(found) => found,
            Err(e) => return Some(Err(e)),
        };
        Some(self.filter(value, raw))
    }

    fn filter(&self, value: &Value, mut spec: Value) -> Result<Filtered, HashValueError> {
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        let annotation =
            |key: &str| value.pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")));
        let mut rules = self.defaults.for_kind(kind);
        for key in [keys::IGNORE, keys::IGNORED] {
            let Some(text) = annotation(key) else {
                continue;
            };
            let parsed = ignore::parse_list(kind, text.as_str().unwrap_or(""));
            if let Some(note) = parsed.invalid_note() {
                return Err(HashValueError::Ignore {
                    annotation: key,
                    note,
                });
            }
            rules.extend(parsed.rules);
        }
        let meta = value.get("metadata");
        let field = |f: &str| {
            meta.and_then(|m| m.get(f))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let (namespace, name) = (field("namespace"), field("name"));
        // Manifests often leave the namespace to `kubectl apply -n`: a side without one
        // matches any.
        let scaled = self.scaled.iter().any(|t| {
            t.kind == kind
                && t.name == name
                && (t.namespace == namespace || t.namespace.is_empty() || namespace.is_empty())
        });
        if scaled {
            rules.extend(Rule::replicas(kind));
        }
        let ignored = ignore::apply(&mut spec, &rules);
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
                let why = match crate::hpa::target_of_manifest(&doc.value) {
                    Some(t) if rules.defaults.hpa_replicas => format!(
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
            Some(Ok((hash, _, ignored))) => {
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
    let outcome = hash_all(manifests, rules)?;
    let mut hashes = outcome.hashed.into_iter();
    for doc in &mut manifests.documents {
        let targets: Vec<&mut Value> = if crate::manifest::is_list(doc) {
            doc.get_mut("items")
                .and_then(Value::as_array_mut)
                .map(|items| items.iter_mut().collect())
                .unwrap_or_default()
        } else {
            vec![doc]
        };
        for obj in targets {
            let Some(Ok((_, spec))) = rules.fingerprint(obj) else {
                continue;
            };
            let Some(h) = hashes.next() else { break };
            // A record too large to write is left out: the operator then reports drift
            // without field detail.
            let record = baseline
                .then(|| crate::diff::encode_record(&h.hash, &spec).ok())
                .flatten();
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
        ("labels", keys::ENABLED_LABEL, "true"),
        ("annotations", keys::SPEC_HASH, hash),
    ];
    if let Some(record) = record {
        entries.push(("annotations", keys::BASELINE, record));
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
