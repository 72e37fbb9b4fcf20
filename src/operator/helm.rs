//! Intent from Helm v3's release records: in each `--helm-namespace`, the records (Secrets
//! labelled `owner=helm`) are watched by their metadata alone, and for each release the
//! record of its latest deployed revision is read and decoded once, its objects published
//! as that release's intent — beside the Terraform states', after them in precedence.
//!
//! While the newest record is `pending-*` (Helm is installing, upgrading or rolling back),
//! or the deployed revision's record cannot be read or decoded, the release is held like a
//! state under Terraform's lock: its objects keep their last intent and no new drift is
//! reported until it settles. An uninstalled release, or one whose records are gone, names
//! nothing any more. A record that does not decode is a Warning on the record. No byte of a
//! record is logged or kept beyond the intent.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::Client;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::core::contract::{self, EventType};
use crate::core::ignore::api::{AddressRule, ApiRule};
use crate::core::object::ObjectId;
use crate::intent::helm::{self, Choice, Meta, Release, record};
use crate::intent::terraform::compact::Compact;
use crate::intent::terraform::judge;
use crate::operator::events::Publisher;
use crate::operator::http::Readiness;
use crate::operator::intents::{Claim, Intents, StateId, StateIntent, write};
use crate::operator::tfstate::Triggers;

/// The readiness name of this watch.
pub const KIND: &str = "HelmRelease";
/// The longest an event about a release may hold up the watch.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// When a record could not be read (not decoded: read), how soon it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// What the release watch needs from the operator.
pub struct Watch {
    pub client: Client,
    pub namespaces: Vec<String>,
    pub intents: Arc<Intents>,
    pub triggers: Triggers,
    /// The `--ignore-*` flags as API paths, for every object.
    pub defaults: Arc<[ApiRule]>,
    /// `--ignore-field` / `--ignore-file` rules, for the objects whose address they match.
    pub address_rules: Arc<[AddressRule]>,
    pub events: Arc<Publisher>,
    pub metrics: crate::operator::metrics::Metrics,
    pub readiness: Readiness,
    pub leader: watch::Receiver<bool>,
    pub api_timeout: Duration,
    pub synced: mpsc::UnboundedSender<&'static str>,
}

/// What was published for one release.
struct Published {
    /// The record its intent was read from.
    record: String,
    /// The address its objects go by (a `helm_release`'s, or `helm:NS/NAME`).
    address: String,
    /// The `helm_release` naming it when it was published.
    named: Option<helm::Named>,
    objects: Vec<ObjectId>,
    /// What a `helm_release` naming it says differs, as last read.
    differences: Vec<String>,
    /// What of that this leader has warned of.
    announced: Vec<String>,
}

struct Releases {
    w: Watch,
    /// Per namespace: every record's labels, by the record's name.
    records: HashMap<String, BTreeMap<String, Meta>>,
    relisting: HashMap<String, BTreeMap<String, Meta>>,
    listed: HashSet<String>,
    published: HashMap<StateId, Published>,
    /// Records that did not decode (a Warning was sent for each, by this leader).
    corrupt: HashSet<(String, String)>,
    /// Releases to decide again.
    dirty: BTreeSet<StateId>,
    /// Releases a `helm_release` names that have no deployed revision (logged once).
    absent: HashSet<StateId>,
    /// Releases whose record could not be read, and when to try again.
    retry: BTreeMap<StateId, (tokio::time::Instant, Duration)>,
    /// Every namespace listed and decided once.
    decided_once: bool,
    told_synced: bool,
    /// Discovery, for the scope of kinds tfdrift does not know (custom resources).
    catalog: crate::cluster::Catalog,
}

/// How long before an unreadable record is tried again: doubling up to this.
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Watches the release records of every `--helm-namespace` until `shutdown`, keeping each
/// release's objects in `intents`.
pub async fn run(w: Watch, shutdown: CancellationToken) {
    let config = || {
        watcher::Config::default()
            .labels(record::OWNER_SELECTOR)
            .any_semantic()
    };
    let streams: Vec<_> = w
        .namespaces
        .iter()
        .map(|ns| {
            let ns = ns.clone();
            // Names and labels only: the records themselves are read one by one, when chosen.
            let secrets: Api<PartialObjectMeta<Secret>> = Api::namespaced(w.client.clone(), &ns);
            watcher(secrets, config())
                .default_backoff()
                .map(move |e| (ns.clone(), e))
                .boxed()
        })
        .collect();
    let mut stream = futures::stream::select_all(streams);
    let catalog = crate::cluster::Catalog::new(w.client.clone(), w.api_timeout);
    let mut releases = Releases {
        w,
        records: HashMap::new(),
        relisting: HashMap::new(),
        listed: HashSet::new(),
        published: HashMap::new(),
        corrupt: HashSet::new(),
        dirty: BTreeSet::new(),
        absent: HashSet::new(),
        retry: BTreeMap::new(),
        decided_once: false,
        told_synced: false,
        catalog,
    };
    let intents = releases.w.intents.clone();
    let mut states_read = intents.states_read.subscribe();
    let mut leader = releases.w.leader.clone();
    loop {
        let retry = releases.retry.values().map(|(at, _)| *at).min();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = intents.helm_named_changed.notified() => {
                // A state's helm_release came, went or changed: its release's address and
                // differences may have.
                let all: Vec<StateId> = releases.known();
                releases.dirty.extend(all);
            }
            // The states read: what their helm_releases name is known.
            Ok(()) = states_read.changed() => {}
            Ok(()) = leader.changed() => {
                // A new leader warns afresh of what is wrong now; a standby warns of nothing.
                releases.corrupt.clear();
                for p in releases.published.values_mut() {
                    p.announced.clear();
                }
                let all: Vec<StateId> = releases.known();
                releases.dirty.extend(all);
            }
            _ = async {
                match retry {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = tokio::time::Instant::now();
                let due: Vec<StateId> = releases
                    .retry
                    .iter()
                    .filter(|(_, (at, _))| *at <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                releases.dirty.extend(due);
            }
            seen = stream.next() => match seen {
                Some((ns, event)) => releases.on_event(ns, event),
                None => return,
            },
        }
        // Until the states are read, a release's address (a helm_release's) is not known:
        // publishing now would name it wrongly, then again.
        if *states_read.borrow() {
            releases.decide_dirty().await;
            releases.tell_synced();
        }
    }
}

impl Releases {
    fn on_event(
        &mut self,
        ns: String,
        event: Result<watcher::Event<PartialObjectMeta<Secret>>, watcher::Error>,
    ) {
        let watch = format!("{KIND} records in {ns}");
        let event = match event {
            Ok(event) => {
                self.w.readiness.watch_ok(&watch);
                event
            }
            Err(error) => {
                if self.w.readiness.watch_error(&watch, &error) {
                    warn!(namespace = %ns, error = &error as &dyn std::error::Error, "watch of Helm release records failed; retrying with backoff (tfdrift needs get, list and watch on secrets in this namespace: apply config/helm-releases)");
                }
                return;
            }
        };
        let meta_of = |m: &PartialObjectMeta<Secret>| {
            let name = m.metadata.name.clone().unwrap_or_default();
            let labels = m.metadata.labels.clone().unwrap_or_default();
            Meta::of(&name, &labels)
        };
        match event {
            watcher::Event::Apply(m) => {
                let name = m.metadata.name.clone().unwrap_or_default();
                // Written again (Helm reuses a revision's name): read it afresh.
                self.corrupt.remove(&(ns.clone(), name.clone()));
                let records = self.records.entry(ns.clone()).or_default();
                match meta_of(&m) {
                    Some(meta) => {
                        self.dirty.insert(StateId::helm(&ns, &meta.release));
                        records.insert(name, meta);
                    }
                    None => {
                        if let Some(old) = records.remove(&name) {
                            self.dirty.insert(StateId::helm(&ns, &old.release));
                        }
                    }
                }
            }
            watcher::Event::Delete(m) => {
                let name = m.metadata.name.clone().unwrap_or_default();
                self.corrupt.remove(&(ns.clone(), name.clone()));
                if let Some(old) = self.records.entry(ns.clone()).or_default().remove(&name) {
                    self.dirty.insert(StateId::helm(&ns, &old.release));
                }
            }
            watcher::Event::Init => {
                self.relisting.insert(ns, BTreeMap::new());
            }
            watcher::Event::InitApply(m) => {
                if let Some(meta) = meta_of(&m) {
                    let name = m.metadata.name.clone().unwrap_or_default();
                    self.relisting.entry(ns).or_default().insert(name, meta);
                }
            }
            watcher::Event::InitDone => {
                let fresh = self.relisting.remove(&ns).unwrap_or_default();
                let before = self.records.insert(ns.clone(), fresh).unwrap_or_default();
                // Every release of the namespace, before and after the relist, is decided again.
                for meta in before.values().chain(self.records[&ns].values()) {
                    self.dirty.insert(StateId::helm(&ns, &meta.release));
                }
                for id in self.published.keys().filter(|id| id.namespace == ns) {
                    self.dirty.insert(id.clone());
                }
                self.listed.insert(ns);
            }
        }
    }

    /// Every release known: with records, or published.
    fn known(&self) -> Vec<StateId> {
        let mut all: BTreeSet<StateId> = self.published.keys().cloned().collect();
        for (ns, records) in &self.records {
            all.extend(records.values().map(|m| StateId::helm(ns, &m.release)));
        }
        // Those a helm_release names, records or not.
        for (ns, name) in self.w.intents.helm_named_releases() {
            if self.w.namespaces.contains(&ns) {
                all.insert(StateId::helm(&ns, &name));
            }
        }
        all.into_iter().collect()
    }

    fn tell_synced(&mut self) {
        // A record that cannot be read now is retried; it does not hold up the rest.
        if !self.told_synced && self.decided_once {
            self.told_synced = true;
            info!(releases = self.published.len(), "Helm releases read");
            self.w.intents.source_synced();
            let _ = self.w.synced.send(KIND);
        }
    }

    async fn decide_dirty(&mut self) {
        let dirty: Vec<StateId> = self
            .dirty
            .iter()
            .filter(|id| self.listed.contains(&id.namespace))
            .cloned()
            .collect();
        for id in dirty {
            self.dirty.remove(&id);
            self.decide(&id).await;
        }
        if self.w.namespaces.iter().all(|n| self.listed.contains(n)) {
            self.decided_once = true;
        }
    }

    /// Decides release `id` from its records.
    async fn decide(&mut self, id: &StateId) {
        let metas: Vec<Meta> = self
            .records
            .get(&id.namespace)
            .into_iter()
            .flat_map(|r| r.values())
            .filter(|m| m.release == id.suffix)
            .cloned()
            .collect();
        match helm::choose(&metas) {
            Some(Choice::Pending(m)) => {
                if write(&self.w.intents.locked).insert(id.clone()) {
                    info!(release = %id, status = %m.status, revision = m.revision, "Helm is changing the release; no new drift until it settles");
                }
            }
            Some(Choice::Deployed(m)) => {
                let m = m.clone();
                self.absent.remove(id);
                // Held until its record is read: no new drift against the revision before.
                if self.publish(id, &m).await {
                    self.unlock(id);
                } else {
                    write(&self.w.intents.locked).insert(id.clone());
                }
            }
            None | Some(Choice::Gone(_)) | Some(Choice::NoneDeployed(_)) => {
                if let Some(named) = self.w.intents.helm_named(&id.namespace, &id.suffix)
                    && self.absent.insert(id.clone())
                {
                    warn!(release = %id, address = %named.address, "a helm_release names this Helm release, which has no deployed revision in the cluster (uninstalled outside Terraform?)");
                }
                self.unlock(id);
                self.retry.remove(id);
                self.corrupt.retain(|(ns, object)| {
                    *ns != id.namespace || !record::is_record_of(object, &id.suffix)
                });
                if let Some(gone) = self.published.remove(id) {
                    self.set_changed(id, &gone.address, false);
                    let _ = self
                        .w
                        .metrics
                        .helm_release_resources
                        .remove_label_values(&[&id.namespace, &id.suffix]);
                    info!(release = %id, "Helm release uninstalled or without a deployed revision; its objects are released");
                    let changed = self.w.intents.replace(id, HashMap::new());
                    // The state watch reports what is missing: told, as for a state read.
                    self.w.intents.presence_changed.notify_one();
                    self.trigger_all(&changed);
                }
            }
        }
    }

    /// `tfdrift_helm_release_changed` for release `id` under `address`: a series only while
    /// it differs (and none left under an address it no longer goes by).
    fn set_changed(&self, id: &StateId, address: &str, differs: bool) {
        let series = &self.w.metrics.helm_release_changed;
        if let Some(before) = self.published.get(id).map(|p| p.address.as_str())
            && before != address
        {
            let _ = series.remove_label_values(&[&id.namespace, &id.suffix, before]);
        }
        let labels = [id.namespace.as_str(), id.suffix.as_str(), address];
        if differs {
            series.with_label_values(&labels).set(1);
        } else {
            let _ = series.remove_label_values(&labels);
        }
    }

    /// Lifts the hold of a release (pending, or its record unusable): every object of it is
    /// decided again.
    fn unlock(&mut self, id: &StateId) {
        if write(&self.w.intents.locked).remove(id) {
            info!(release = %id, "the Helm release settled");
            let objects = self
                .published
                .get(id)
                .map(|p| p.objects.clone())
                .unwrap_or_default();
            self.trigger_all(&objects);
        }
    }

    fn trigger_all(&self, objects: &[ObjectId]) {
        for key in objects {
            crate::operator::tfstate::trigger(&self.w.triggers, &self.w.intents, key);
        }
    }

    /// Reads `meta`'s record (unless its intent is published already) and publishes its
    /// objects as release `id`'s intent; `false` when the record could not be used.
    async fn publish(&mut self, id: &StateId, meta: &Meta) -> bool {
        let named = self.w.intents.helm_named(&id.namespace, &id.suffix);
        let address = named.as_ref().map_or_else(
            || helm::address_of(&id.namespace, &id.suffix),
            |n| n.address.clone(),
        );
        let unchanged = self
            .published
            .get(id)
            .is_some_and(|p| p.record == meta.object && p.address == address && p.named == named);
        let key = (id.namespace.clone(), meta.object.clone());
        if unchanged {
            self.announce(id).await;
            return true;
        }
        if self.corrupt.contains(&key) {
            return false;
        }
        let release = match self.read(&id.namespace, &meta.object).await {
            Ok(Some(release)) => release,
            // Deleted since it was listed: its deletion decides.
            Ok(None) => return self.published.contains_key(id),
            Err(ReadError::Unreadable(why)) => {
                self.w
                    .metrics
                    .helm_release_errors_total
                    .with_label_values(&[&id.namespace, &id.suffix, "unreadable"])
                    .inc();
                let delay = self
                    .retry
                    .get(id)
                    .map_or(RETRY_AFTER, |(_, d)| (*d * 2).min(RETRY_MAX));
                warn!(release = %id, record = %meta.object, error = %why, retry_in = ?delay, "cannot read the Helm release record; its objects keep their last verdict");
                self.retry
                    .insert(id.clone(), (tokio::time::Instant::now() + delay, delay));
                return false;
            }
            Err(ReadError::Corrupt(why)) => {
                self.w
                    .metrics
                    .helm_release_errors_total
                    .with_label_values(&[&id.namespace, &id.suffix, "invalid"])
                    .inc();
                self.corrupt.insert(key);
                warn!(release = %id, record = %meta.object, error = %why, "the Helm release record does not decode; its objects keep their last verdict");
                let note = format!(
                    "Helm release {}/{}: record {} {why}; its objects keep their last verdict",
                    id.namespace, id.suffix, meta.object
                );
                self.event(
                    &id.namespace,
                    &meta.object,
                    contract::reason::INVALID_HELM_RELEASE,
                    &note,
                )
                .await;
                return false;
            }
        };
        self.retry.remove(id);
        let differences = named
            .as_ref()
            .map(|n| n.differences(&release))
            .unwrap_or_default();
        self.set_changed(id, &address, !differences.is_empty());
        if let Some(p) = self.published.get_mut(id)
            && p.record == meta.object
            && p.address == address
        {
            // Only what the helm_release says changed: the objects' intent is the same.
            p.differences = differences;
            p.named = named;
            self.announce(id).await;
            return true;
        }
        let (mut instances, unjudged) = helm::objects(&release, &address);
        for u in &unjudged {
            warn!(release = %id, address = %u.address, error = %u.why, "a document of the Helm release does not describe an object; skipped");
        }
        // A kind tfdrift does not know is named in the release namespace; discovery says
        // whether it is namespaced at all.
        for instance in &mut instances {
            let (group, _) = crate::core::kind::split_api_version(&instance.api_version);
            if crate::core::kind::namespaced(group, &instance.id.kind).is_none()
                && instance.object.pointer("/metadata/namespace").is_none()
                && let Ok(false) = self
                    .catalog
                    .namespaced(&instance.api_version, &instance.id.kind)
                    .await
            {
                instance.id.namespace.clear();
            }
        }
        let state = Arc::new(id.clone());
        let mut claims: HashMap<ObjectId, Vec<Claim>> = HashMap::new();
        for instance in instances {
            let context = judge::Context {
                rules: judge::rules_for(&instance, &self.w.defaults, &self.w.address_rules),
                others: Vec::new(),
            };
            match Compact::new(&instance) {
                Ok(compact) => claims.entry(instance.id.clone()).or_default().push(Claim {
                    instance: compact,
                    context,
                }),
                Err(error) => {
                    warn!(release = %id, object = %instance.id, error = %error, "cannot keep this object's intent; skipped");
                }
            }
        }
        let named_objects: HashMap<ObjectId, Arc<StateIntent>> = claims
            .into_iter()
            .map(|(oid, claims)| (oid, Arc::new(StateIntent::new(state.clone(), claims))))
            .collect();
        let objects: Vec<ObjectId> = named_objects.keys().cloned().collect();
        info!(release = %id, revision = release.revision, objects = objects.len(), address = %address, "Helm release read");
        self.w
            .metrics
            .helm_release_resources
            .with_label_values(&[&id.namespace, &id.suffix])
            .set(objects.len() as i64);
        let changed = self.w.intents.replace(id, named_objects);
        self.w.intents.presence_changed.notify_one();
        for key in &changed {
            debug!(object = %key, release = %id, "intent from the Helm release changed; re-deciding it");
        }
        self.trigger_all(&changed);
        let announced = self
            .published
            .remove(id)
            .map(|p| p.announced)
            .unwrap_or_default();
        self.published.insert(
            id.clone(),
            Published {
                record: meta.object.clone(),
                address,
                named,
                objects,
                differences,
                announced,
            },
        );
        self.announce(id).await;
        true
    }

    /// A `HelmReleaseChanged` Warning on the release's record when what its `helm_release`
    /// says differs is new (to this leader).
    async fn announce(&mut self, id: &StateId) {
        let Some(p) = self.published.get(id) else {
            return;
        };
        if p.differences.is_empty() || p.differences == p.announced || !*self.w.leader.borrow() {
            return;
        }
        let (record, address, differences) =
            (p.record.clone(), p.address.clone(), p.differences.clone());
        let note = format!(
            "Helm release {}/{} ({address}): {}",
            id.namespace,
            id.suffix,
            differences.join("; ")
        );
        warn!(release = %id, address = %address, "{}", differences.join("; "));
        self.event(
            &id.namespace,
            &record,
            contract::reason::HELM_RELEASE_CHANGED,
            &note,
        )
        .await;
        if let Some(p) = self.published.get_mut(id) {
            p.announced = differences;
        }
    }

    /// The record `name` in `ns`, decoded; `None` when it is gone.
    async fn read(&self, ns: &str, name: &str) -> Result<Option<Release>, ReadError> {
        let api: Api<Secret> = Api::namespaced(self.w.client.clone(), ns);
        let got = tokio::time::timeout(self.w.api_timeout, api.get_opt(name))
            .await
            .map_err(|_| {
                ReadError::Unreadable(format!("timed out after {:?}", self.w.api_timeout))
            })?
            .map_err(|e| {
                ReadError::Unreadable(crate::core::text::chain(&crate::cluster::ApiError(e)))
            })?;
        let Some(secret) = got else { return Ok(None) };
        // Inflating a release (up to 64 MiB) runs on the blocking pool.
        tokio::task::spawn_blocking(move || Release::of_secret(secret))
            .await
            .map_err(|_| ReadError::Unreadable("decoding was aborted".into()))?
            .map(Some)
            .map_err(|e| ReadError::Corrupt(e.to_string()))
    }

    /// A Warning on release record `name` (the leader's alone).
    async fn event(&self, ns: &str, name: &str, reason: &str, note: &str) {
        if !*self.w.leader.borrow() {
            return;
        }
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Secret".into()),
            namespace: Some(ns.to_owned()),
            name: Some(name.to_owned()),
            ..ObjectReference::default()
        };
        let publish = self.w.events.publish(
            reference,
            EventType::Warning,
            reason,
            "ReadHelmRelease",
            note,
        );
        match tokio::time::timeout(EVENT_TIMEOUT, publish).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                warn!(record = %name, error = &error as &dyn std::error::Error, "cannot publish an event about a Helm release")
            }
            Err(_) => warn!(record = %name, "publishing an event about a Helm release timed out"),
        }
    }
}

enum ReadError {
    /// The record could not be read now (the API server): tried again.
    Unreadable(String),
    /// It was read and does not decode: a Warning, until a new record comes.
    Corrupt(String),
}
