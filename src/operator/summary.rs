//! What the operator caches per object: the metadata reconcile reads and the live hash,
//! computed once per watch event. The fingerprint needs the spec, but the verdict only
//! needs its hash: a cached Deployment is about a kilobyte instead of the ~14 KB the full
//! typed object takes, and a resync recomputes nothing.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::NamespaceResourceScope;
use kube::runtime::watcher;
use serde::Deserialize;
use serde_json::Value;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

use crate::core::contract;
use crate::core::explain::{self, diff};
use crate::core::fingerprint::{self, Fingerprint};
use crate::core::ignore::{self, Rule};
use crate::core::text;

const RECORD_OF_ANOTHER_HASH: &str =
    "cannot say what changed: the baseline record is of another spec-hash";
const NO_RECORD: &str = "cannot say what changed: no tfdrift.jin.dev/baseline record \
    (write one with `tfdrift hash --annotate`)";

/// Longest drift summary kept in the annotation; events.k8s.io notes hold 1 KiB in all.
pub(crate) const SUMMARY_LIMIT: usize = 900;

/// The annotations reconcile reads; every other annotation is dropped from the cache.
const KEPT_ANNOTATIONS: [&str; 12] = [
    contract::SPEC_HASH,
    contract::DRIFTED,
    contract::DRIFTED_AT,
    contract::LIVE_HASH,
    contract::DRIFT_SUMMARY,
    contract::IGNORED,
    contract::IGNORE_INVALID,
    contract::INTENT_SOURCE,
    contract::TERRAFORM_ADDRESS,
    contract::TERRAFORM_WORKSPACE,
    contract::HELM_RELEASE,
    contract::HELM_REVISION,
];

/// What every cached object is summarised with.
#[derive(Clone, Default)]
pub struct Options {
    /// Prepare baseline records for in-sync objects (`--baseline-record`).
    pub record_baselines: bool,
    /// The default ignore rules for this kind (`--ignore-containers`, `--ignore-paths`).
    pub defaults: Arc<[Rule]>,
    /// Also summarise the object as if an HPA scaled it (`--ignore-hpa-replicas`).
    pub hpa_aware: bool,
}

/// The live state under one set of ignore rules.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Live {
    /// The hash of the live fingerprint with the rules applied.
    pub hash: String,
    /// The baseline record (taken at the spec-hash), with the same rules applied, equals
    /// the live fingerprint: in sync, although the spec-hash was computed under fewer
    /// rules (an HPA `tfdrift hash` did not see).
    pub record_agrees: bool,
}

/// A watched object as cached: identity metadata, whether it is opted in, the tfdrift
/// annotations (a boxed slice, not a map: a map node costs more than all four values), and
/// its live hash (or why it has none).
#[derive(Deserialize)]
#[serde(bound = "")]
pub struct Cached<K> {
    pub metadata: ObjectMeta,
    pub opted_in: bool,
    #[serde(skip)]
    tfdrift_annotations: Box<[(&'static str, Box<str>)]>,
    /// A fresh baseline record to write: only while the object is in sync and its record
    /// is stale or missing, made from the object this event already decoded.
    #[serde(skip)]
    pub pending_record: Option<Box<str>>,
    /// The live state under the object's ignore rules (defaults and its annotation).
    pub live: Result<Live, String>,
    /// The same with `replicas` ignored too, for when an HPA scales the object; `None` when
    /// that changes nothing (no replicas, or already ignored) or HPAs are not watched.
    #[serde(skip)]
    pub scaled: Option<Live>,
    /// The rules that changed the live fingerprint, comma-separated.
    #[serde(skip)]
    pub ignored: Option<Box<str>>,
    /// What is wrong with the rules of its `tfdrift.jin.dev/ignore` annotation, if anything.
    #[serde(skip)]
    pub invalid_rules: Option<Box<str>>,
    /// What drifted and who changed it, for each view that differs from the spec-hash: made
    /// from the object this event decoded (managedFields and all), so that reporting a
    /// drift takes no second round trip. `None` while in sync.
    #[serde(skip)]
    explained: Option<Box<Explained>>,
    #[serde(skip)]
    kind: PhantomData<fn() -> K>,
}

/// (summary for the annotation, explanation for the event; empty when nothing can be said
/// beyond the summary), per view.
#[derive(Clone, Default)]
struct Explained {
    plain: Option<(Box<str>, Box<str>)>,
    scaled: Option<(Box<str>, Box<str>)>,
}

/// What changed between the baseline record and `spec` (the live fingerprint under `rules`)
/// and who changed it.
fn explanation(
    kind: &str,
    spec: &Value,
    rules: &[Rule],
    record: Option<&str>,
    spec_hash: &str,
    managed: &[ManagedFieldsEntry],
) -> (Box<str>, Box<str>) {
    let (summary, why) = match record.map(diff::decode_record) {
        Some(Ok((h, mut baseline))) if h == spec_hash => {
            ignore::apply(&mut baseline, rules);
            let why = explain::describe(
                kind,
                &baseline,
                spec,
                managed,
                explain::Values::Shown,
                SUMMARY_LIMIT,
                // E.g. the scale subresource before 1.22 recorded no field owner.
                "no writer recorded since tfdrift last saw it in sync, to the second",
            );
            (why.clone(), why)
        }
        Some(Ok(_)) => (RECORD_OF_ANOTHER_HASH.to_owned(), String::new()),
        Some(Err(error)) => (format!("cannot say what changed: {error}"), String::new()),
        None => (NO_RECORD.to_owned(), String::new()),
    };
    (
        text::bounded(&summary, SUMMARY_LIMIT).into(),
        text::bounded(&why, SUMMARY_LIMIT).into(),
    )
}

/// The baseline record's fingerprint, decoded at most once and only when needed; `None`
/// unless it was taken at the spec-hash and is intact (its content hashes to its hash).
struct Record<'a> {
    kind: &'static str,
    text: Option<&'a str>,
    spec_hash: Option<&'a str>,
    decoded: Option<Option<Value>>,
}

impl Record<'_> {
    fn spec(&mut self) -> Option<&Value> {
        let (kind, text, spec_hash) = (self.kind, self.text, self.spec_hash);
        self.decoded
            .get_or_insert_with(|| {
                let text = text?;
                if diff::record_hash(text) != spec_hash {
                    return None;
                }
                let (hash, spec) = diff::decode_record(text).ok()?;
                (fingerprint::hash_spec(kind, &spec).ok()? == hash).then_some(spec)
            })
            .as_ref()
    }
}

impl<K: Fingerprint> Cached<K> {
    /// Summarises `obj`: its live hash under its ignore rules (and, for an object an HPA
    /// may scale, also without `replicas`), whether its baseline record agrees, and the
    /// baseline record to write when it is in sync and the one it carries is stale.
    pub fn new(mut obj: K, opts: &Options) -> Self {
        let kind = <K as k8s_openapi::Resource>::KIND;
        let meta = std::mem::take(obj.meta_mut());
        let opted_in = opted_in(&meta);
        let mut annotations = meta.annotations.unwrap_or_default();
        let annotation = annotations.get(contract::IGNORE).map(String::as_str);
        let parsed = ignore::rules_for(kind, &opts.defaults, annotation, false);
        let spec_hash = annotations
            .get(contract::SPEC_HASH)
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| fingerprint::is_hash(h));
        let baseline_hash = annotations
            .get(contract::BASELINE)
            .and_then(|r| diff::record_hash(r));
        let mut record = Record {
            kind,
            text: annotations.get(contract::BASELINE).map(String::as_str),
            spec_hash: spec_hash.as_deref(),
            decoded: None,
        };
        let mut pending_record = None;
        let mut ignored = None;
        let mut scaled = None;
        let mut explained = Explained::default();
        let managed = meta.managed_fields.as_deref().unwrap_or_default();
        let baseline_text = annotations.get(contract::BASELINE).map(String::as_str);
        let drifted = |live: &Result<Live, String>| match (live, spec_hash.as_deref()) {
            (Ok(l), Some(h)) => l.hash != h && !l.record_agrees,
            _ => false,
        };
        // One canonicalisation serves every variant and, when needed, the record.
        let live = match fingerprint::spec_value(&obj) {
            Err(e) => Err(text::chain(&e)),
            Ok(mut spec) => {
                ignored = ignore::apply(&mut spec, &parsed.rules).map(Into::into);
                let mut view = |spec: &Value, rules: &[Rule]| -> Result<Live, String> {
                    let hash = fingerprint::hash_spec(kind, spec).map_err(|e| text::chain(&e))?;
                    let in_sync = spec_hash.as_deref() == Some(hash.as_str());
                    if in_sync && opts.record_baselines && baseline_hash != Some(hash.as_str()) {
                        // Too large to record: left out, the drift is then reported without detail.
                        pending_record = diff::encode_record(&hash, spec)
                            .ok()
                            .map(String::into_boxed_str);
                    }
                    let record_agrees = !in_sync
                        && record.spec().is_some_and(|r| {
                            let mut r = r.clone();
                            ignore::apply(&mut r, rules);
                            fingerprint::hash_spec(kind, &r).ok().as_ref() == Some(&hash)
                        });
                    Ok(Live {
                        hash,
                        record_agrees,
                    })
                };
                let live = view(&spec, &parsed.rules);
                if drifted(&live) {
                    explained.plain = Some(explanation(
                        kind,
                        &spec,
                        &parsed.rules,
                        baseline_text,
                        spec_hash.as_deref().unwrap_or_default(),
                        managed,
                    ));
                }
                if let Some(replicas) = opts
                    .hpa_aware
                    .then(|| Rule::replicas(kind))
                    .flatten()
                    .filter(|r| !parsed.rules.contains(r))
                    && live.is_ok()
                    && replicas.apply(&mut spec)
                {
                    let mut rules = parsed.rules.clone();
                    rules.push(replicas);
                    let view = view(&spec, &rules);
                    if drifted(&view) {
                        explained.scaled = Some(explanation(
                            kind,
                            &spec,
                            &rules,
                            baseline_text,
                            spec_hash.as_deref().unwrap_or_default(),
                            managed,
                        ));
                    }
                    scaled = view.ok();
                }
                live
            }
        };
        let invalid_rules = parsed.invalid_note().map(String::into_boxed_str);
        Cached {
            metadata: identity(meta.name, meta.namespace, meta.uid, meta.resource_version),
            opted_in,
            tfdrift_annotations: take_annotations(&mut annotations, &KEPT_ANNOTATIONS),
            pending_record,
            live,
            scaled,
            ignored,
            invalid_rules,
            explained: (explained.plain.is_some() || explained.scaled.is_some())
                .then(|| Box::new(explained)),
            kind: PhantomData,
        }
    }

    /// What drifted and who changed it in the view judged by (`scaled`: an HPA scales the
    /// object): the summary for the annotation and the explanation for the event. `None`
    /// when that view is not drifted.
    pub fn explanation(&self, scaled: bool) -> Option<(String, String)> {
        let e = self.explained.as_deref()?;
        let view = if scaled && self.scaled.is_some() {
            &e.scaled
        } else {
            &e.plain
        };
        view.as_ref()
            .map(|(summary, why)| (summary.to_string(), why.to_string()))
    }

    /// The live state to judge by: without `replicas` when an HPA scales the object.
    pub fn view(&self, scaled: bool) -> Result<&Live, &str> {
        match (&self.live, &self.scaled) {
            (Ok(_), Some(s)) if scaled => Ok(s),
            (Ok(l), _) => Ok(l),
            (Err(e), _) => Err(e),
        }
    }

    /// The tfdrift annotations the object carried, as a map for the verdict functions.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.tfdrift_annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_string()))
            .collect()
    }
}

/// Metadata with the identity fields only.
pub(crate) fn identity(
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
) -> ObjectMeta {
    ObjectMeta {
        name,
        namespace,
        uid,
        resource_version,
        ..ObjectMeta::default()
    }
}

/// Whether the object carries the opt-in label.
pub(crate) fn opted_in(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(contract::ENABLED_LABEL))
        .map(String::as_str)
        == Some("true")
}

/// The annotations of `keys`, taken out of `annotations`, as a boxed slice (a map node
/// costs more than the values).
pub(crate) fn take_annotations(
    annotations: &mut BTreeMap<String, String>,
    keys: &[&'static str],
) -> Box<[(&'static str, Box<str>)]> {
    keys.iter()
        .filter_map(|k| annotations.remove(*k).map(|v| (*k, v.into_boxed_str())))
        .collect()
}

/// A watcher event with its object cached.
pub fn event<K: Fingerprint>(
    event: watcher::Event<K>,
    opts: &Options,
) -> watcher::Event<Cached<K>> {
    match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(Cached::new(o, opts)),
        // Only the identity of a deleted object is read.
        watcher::Event::Delete(o) => watcher::Event::Delete(Cached::new(o, &Options::default())),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(Cached::new(o, opts)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

impl<K> Clone for Cached<K> {
    fn clone(&self) -> Self {
        Cached {
            metadata: self.metadata.clone(),
            opted_in: self.opted_in,
            tfdrift_annotations: self.tfdrift_annotations.clone(),
            pending_record: self.pending_record.clone(),
            live: self.live.clone(),
            scaled: self.scaled.clone(),
            ignored: self.ignored.clone(),
            invalid_rules: self.invalid_rules.clone(),
            explained: self.explained.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Cached<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("metadata", &self.metadata)
            .field("opted_in", &self.opted_in)
            .field("annotations", &self.tfdrift_annotations)
            .field("live", &self.live)
            .field("scaled", &self.scaled)
            .finish()
    }
}

impl<K: Fingerprint> kube::Resource for Cached<K> {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::Resource;

    #[test]
    fn keeps_what_reconcile_needs_and_the_hash() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kube-apiserver-v1.36.2/deploy-multi-container/live.json"
        );
        let mut d: Deployment = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let mut ann = d.metadata.annotations.clone().unwrap_or_default();
        ann.insert(contract::SPEC_HASH.into(), "abc".into());
        ann.insert(
            "kubectl.kubernetes.io/last-applied-configuration".into(),
            "x".repeat(10_000),
        );
        d.metadata.annotations = Some(ann);
        let expected = fingerprint::hash(&d).unwrap();
        let c = Cached::new(
            d,
            &Options {
                record_baselines: true,
                ..Options::default()
            },
        );
        assert!(
            c.pending_record.is_none(),
            "not in sync (spec-hash abc): no record"
        );
        assert_eq!(
            c.live.as_ref().map(|l| l.hash.as_str()),
            Ok(expected.as_str())
        );
        assert_eq!(c.metadata.name.as_deref(), Some("deploy-multi-container"));
        assert!(c.opted_in);
        assert_eq!(c.annotations().len(), 1, "only tfdrift annotations");
        assert_eq!(c.annotations()[contract::SPEC_HASH], "abc");
        assert!(c.metadata.managed_fields.is_none());
        assert_eq!(c.object_ref(&()).kind.as_deref(), Some("Deployment"));
        assert_eq!(c.object_ref(&()).api_version.as_deref(), Some("apps/v1"));
    }

    fn live_fixture() -> Deployment {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kube-apiserver-v1.20.2/deploy-minimal/live.json"
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn annotate(d: &mut Deployment, pairs: &[(&str, &str)]) {
        let ann = d.metadata.annotations.get_or_insert_with(Default::default);
        for (k, v) in pairs {
            ann.insert((*k).into(), (*v).into());
        }
    }

    /// A copy of the first container, named `istio-proxy`: what a mesh would inject.
    fn add_istio_proxy(d: &mut Deployment) {
        let pod = d.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
        let mut sidecar = pod.containers[0].clone();
        sidecar.name = "istio-proxy".into();
        pod.containers.push(sidecar);
    }

    fn istio_defaults() -> Vec<Rule> {
        ignore::Defaults::new(&["istio-proxy".into()], &[], true)
            .unwrap()
            .for_kind("Deployment")
    }

    fn hpa_aware(defaults: Vec<Rule>) -> Options {
        Options {
            record_baselines: true,
            defaults: defaults.into(),
            hpa_aware: true,
        }
    }

    /// Scaled by hand to 3: drift. Under an HPA the scaled view ignores replicas, and the
    /// baseline record (replicas 1), with the same rule applied, agrees with it.
    #[test]
    fn an_hpa_view_ignores_replicas_and_the_record_bridges_the_spec_hash() {
        let intended = live_fixture();
        let spec_hash = fingerprint::hash(&intended).unwrap();
        let record =
            diff::encode_record(&spec_hash, &fingerprint::spec_value(&intended).unwrap()).unwrap();
        let mut scaled = intended.clone();
        scaled.spec.as_mut().unwrap().replicas = Some(3);
        annotate(
            &mut scaled,
            &[
                (contract::SPEC_HASH, &spec_hash),
                (contract::BASELINE, &record),
            ],
        );
        let c = Cached::new(scaled.clone(), &hpa_aware(Vec::new()));
        let base = c.view(false).unwrap();
        assert_ne!(base.hash, spec_hash);
        assert!(!base.record_agrees, "replicas differ: drift without an HPA");
        let under_hpa = c.view(true).unwrap();
        assert_ne!(under_hpa.hash, base.hash);
        assert!(under_hpa.record_agrees, "{c:?}");
        assert!(
            c.pending_record.is_none(),
            "not in sync by hash: record kept"
        );

        // A record of another spec-hash, or tampered with, proves nothing.
        let mut forged = scaled.clone();
        let other = diff::encode_record(&"0".repeat(64), &serde_json::json!({})).unwrap();
        annotate(&mut forged, &[(contract::BASELINE, &other)]);
        assert!(
            !Cached::new(forged, &hpa_aware(Vec::new()))
                .view(true)
                .unwrap()
                .record_agrees
        );
        let mut tampered = scaled;
        let lie = diff::encode_record(&spec_hash, &serde_json::json!({"replicas": 3})).unwrap();
        annotate(&mut tampered, &[(contract::BASELINE, &lie)]);
        assert!(
            !Cached::new(tampered, &hpa_aware(Vec::new()))
                .view(true)
                .unwrap()
                .record_agrees
        );
    }

    #[test]
    fn rules_from_defaults_and_annotation_shape_the_live_hash() {
        let mut d = live_fixture();
        let plain = fingerprint::hash(&d).unwrap();
        add_istio_proxy(&mut d);
        annotate(
            &mut d,
            &[(contract::IGNORE, "replicas, bogus[, env[BUILD_ID]")],
        );
        let defaults = istio_defaults();
        let c = Cached::new(d, &hpa_aware(defaults));
        let (pr, rest) = (c.live.as_ref().unwrap(), c.scaled.as_ref());
        assert_ne!(pr.hash, plain, "replicas ignored by the annotation");
        assert!(rest.is_none(), "replicas already ignored: no HPA view");
        assert_eq!(
            c.ignored.as_deref(),
            Some("containers[istio-proxy],replicas")
        );
        let invalid = c.invalid_rules.as_deref().unwrap();
        assert!(invalid.contains("`bogus[`"), "{invalid}");
        assert!(!invalid.contains("BUILD_ID"), "{invalid}");
    }

    /// A spec-hash from before a default rule existed that matches the object (it declares
    /// `istio-proxy` itself): the baseline record, under the same rule, keeps it in sync.
    #[test]
    fn a_new_default_rule_keeps_an_old_spec_hash_in_sync_through_the_record() {
        let mut d = live_fixture();
        add_istio_proxy(&mut d);
        let old_hash = fingerprint::hash(&d).unwrap();
        let record = diff::encode_record(&old_hash, &fingerprint::spec_value(&d).unwrap()).unwrap();
        annotate(&mut d, &[(contract::SPEC_HASH, &old_hash)]);
        let defaults = istio_defaults();
        let without_record = Cached::new(d.clone(), &hpa_aware(defaults.clone()));
        assert_ne!(without_record.view(false).unwrap().hash, old_hash);
        assert!(!without_record.view(false).unwrap().record_agrees);
        annotate(&mut d, &[(contract::BASELINE, &record)]);
        let with_record = Cached::new(d, &hpa_aware(defaults));
        assert!(with_record.view(false).unwrap().record_agrees);
        assert!(with_record.view(true).unwrap().record_agrees);
    }
}
