//! What the operator caches per object: the metadata reconcile reads and the live hash,
//! computed once per watch event. The fingerprint needs the spec, but the verdict only
//! needs its hash: a cached Deployment is about a kilobyte instead of the ~14 KB the full
//! typed object takes, and a resync recomputes nothing.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::NamespaceResourceScope;
use kube::runtime::watcher;
use serde::Deserialize;

use crate::fingerprint::{self, Fingerprint};
use crate::keys;

/// The annotations reconcile reads; every other annotation is dropped from the cache.
const KEPT_ANNOTATIONS: [&str; 5] = [
    keys::SPEC_HASH,
    keys::DRIFTED,
    keys::DRIFTED_AT,
    keys::LIVE_HASH,
    keys::DRIFT_SUMMARY,
];

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
    /// The hash the baseline record was taken at (the record itself is not cached).
    pub baseline_hash: Option<Box<str>>,
    /// A fresh baseline record to write: only while the object is in sync and its record
    /// is stale or missing, made from the object this event already decoded.
    #[serde(skip)]
    pub pending_record: Option<Box<str>>,
    pub live_hash: Result<String, String>,
    #[serde(skip)]
    kind: PhantomData<fn() -> K>,
}

impl<K: Fingerprint> Cached<K> {
    /// Summarises `obj`; with `record_baselines`, also prepares its baseline record when it
    /// is in sync and the one it carries is stale.
    pub fn new(mut obj: K, record_baselines: bool) -> Self {
        let kind = <K as k8s_openapi::Resource>::KIND;
        // One canonicalisation serves both the hash and, when needed, the record.
        let spec = fingerprint::spec_value(&obj);
        let live_hash = spec
            .as_ref()
            .map_err(|e| error_chain(e))
            .and_then(|s| fingerprint::hash_spec(kind, s).map_err(|e| error_chain(&e)));
        let meta = std::mem::take(obj.meta_mut());
        let opted_in = meta
            .labels
            .as_ref()
            .and_then(|l| l.get(keys::ENABLED_LABEL))
            .map(String::as_str)
            == Some("true");
        let mut annotations = meta.annotations.unwrap_or_default();
        let baseline_hash: Option<Box<str>> = annotations
            .get(keys::BASELINE)
            .and_then(|r| crate::diff::record_hash(r))
            .map(Into::into);
        let pending_record = match (&live_hash, &spec) {
            (Ok(live), Ok(spec))
                if record_baselines
                    && baseline_hash.as_deref() != Some(live.as_str())
                    && crate::verdict::decide(
                        annotations.get(keys::SPEC_HASH).map(String::as_str),
                        live,
                    ) == crate::verdict::Verdict::InSync =>
            {
                // Too large to record: left out, the drift is then reported without detail.
                crate::diff::encode_record(live, spec)
                    .ok()
                    .map(String::into_boxed_str)
            }
            _ => None,
        };
        let tfdrift_annotations = KEPT_ANNOTATIONS
            .iter()
            .filter_map(|k| annotations.remove(*k).map(|v| (*k, v.into_boxed_str())))
            .collect();
        Cached {
            metadata: ObjectMeta {
                name: meta.name,
                namespace: meta.namespace,
                uid: meta.uid,
                resource_version: meta.resource_version,
                ..ObjectMeta::default()
            },
            opted_in,
            tfdrift_annotations,
            baseline_hash,
            pending_record,
            live_hash,
            kind: PhantomData,
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

/// A watcher event with its object cached.
pub fn event<K: Fingerprint>(
    event: watcher::Event<K>,
    record_baselines: bool,
) -> watcher::Event<Cached<K>> {
    match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(Cached::new(o, record_baselines)),
        watcher::Event::Delete(o) => watcher::Event::Delete(Cached::new(o, false)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(Cached::new(o, record_baselines)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

impl<K> Clone for Cached<K> {
    fn clone(&self) -> Self {
        Cached {
            metadata: self.metadata.clone(),
            opted_in: self.opted_in,
            tfdrift_annotations: self.tfdrift_annotations.clone(),
            baseline_hash: self.baseline_hash.clone(),
            pending_record: self.pending_record.clone(),
            live_hash: self.live_hash.clone(),
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
            .field("live_hash", &self.live_hash)
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
        ann.insert(keys::SPEC_HASH.into(), "abc".into());
        ann.insert(
            "kubectl.kubernetes.io/last-applied-configuration".into(),
            "x".repeat(10_000),
        );
        d.metadata.annotations = Some(ann);
        let expected = fingerprint::hash(&d).unwrap();
        let c = Cached::new(d, true);
        assert!(
            c.pending_record.is_none(),
            "not in sync (spec-hash abc): no record"
        );
        assert_eq!(c.live_hash.as_deref(), Ok(expected.as_str()));
        assert_eq!(c.metadata.name.as_deref(), Some("deploy-multi-container"));
        assert!(c.opted_in);
        assert_eq!(c.annotations().len(), 1, "only tfdrift annotations");
        assert_eq!(c.annotations()[keys::SPEC_HASH], "abc");
        assert!(c.metadata.managed_fields.is_none());
        assert_eq!(c.object_ref(&()).kind.as_deref(), Some("Deployment"));
        assert_eq!(c.object_ref(&()).api_version.as_deref(), Some("apps/v1"));
    }
}
