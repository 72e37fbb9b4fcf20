//! Intent from the Secrets of Terraform's `kubernetes` backend: every state in the
//! namespaces given with `--terraform-state-namespace` is read (its part Secrets
//! reassembled, gzip inflated), and each instance it names becomes the intent its object is
//! judged by — with no label and no annotation on the object.
//!
//! Decoded state is never logged and not kept: per object only its address, uid, intent
//! hashes and compressed fingerprint stay (see [`crate::intent::terraform::Intent`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::core::contract::{self, EventType};
use crate::core::ignore::api::{AddressRule, ApiRule};
use crate::core::object::ObjectId;
use crate::intent::terraform;
use crate::intent::terraform::backend::{
    Part, SELECTOR, SUFFIX_LABEL, StateError, WORKSPACE_LABEL, is_held, part_of, reassemble,
    state_of_lease,
};
use crate::intent::terraform::compact::Compact;
use crate::intent::terraform::judge;
use crate::operator::events::Publisher;
use crate::operator::http::Readiness;
pub use crate::operator::intents::{Claim, Intents, StateId, StateIntent};
use crate::operator::intents::{read, write};
use crate::operator::metrics::Metrics;

/// The readiness and metrics name of this watch.
pub const KIND: &str = "TerraformState";
/// Terraform writes a state's parts one after another: a state is read once its Secrets
/// have been quiet this long.
const QUIET: Duration = Duration::from_millis(500);
/// The longest listing a state's Secrets may take (a state may be 64 MiB).
const LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// When a state's Secrets could not be listed, how soon they are tried again.
const RELIST_AFTER: Duration = Duration::from_secs(5);
/// The longest an event about a state may hold up the state watch.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a change of intent is sent: one channel per kind, to that kind's controller.
pub type Triggers = HashMap<&'static str, mpsc::UnboundedSender<(String, String)>>;

/// What the state watch needs from the operator.
pub struct Watch {
    pub client: Client,
    pub namespaces: Vec<String>,
    pub intents: Arc<Intents>,
    pub triggers: Triggers,
    /// The `--ignore-*` flags as API paths, for every instance.
    pub defaults: Arc<[ApiRule]>,
    /// `--ignore-field` / `--ignore-file` rules, for the instances whose address they match.
    pub address_rules: Arc<[AddressRule]>,
    pub events: Arc<Publisher>,
    pub metrics: Metrics,
    pub readiness: Readiness,
    pub leader: watch::Receiver<bool>,
    /// `--namespace`: objects elsewhere are not watched, so never reported missing.
    pub watch_namespace: Option<String>,
    /// `--helm-namespace`: where the releases `helm_release` instances name are judged.
    pub helm_namespaces: Arc<[String]>,
    pub synced: mpsc::UnboundedSender<&'static str>,
}

/// One event of the two watches, per namespace.
enum Seen {
    Secret(String, Result<watcher::Event<Secret>, watcher::Error>),
    Lease(String, Result<watcher::Event<Lease>, watcher::Error>),
}

/// Watches the state Secrets and their lock Leases until `shutdown`, keeping `intents`
/// current and re-triggering every object whose intent came, went or changed, or whose
/// state was unlocked.
pub async fn run(w: Watch, shutdown: CancellationToken) {
    let config = || watcher::Config::default().labels(SELECTOR).any_semantic();
    let mut streams = Vec::new();
    for ns in &w.namespaces {
        let (n1, n2) = (ns.clone(), ns.clone());
        let secrets: Api<Secret> = Api::namespaced(w.client.clone(), ns);
        let leases: Api<Lease> = Api::namespaced(w.client.clone(), ns);
        streams.push(
            watcher(secrets, config())
                .default_backoff()
                .map(move |e| Seen::Secret(n1.clone(), e))
                .boxed(),
        );
        streams.push(
            watcher(leases, config())
                .default_backoff()
                .map(move |e| Seen::Lease(n2.clone(), e))
                .boxed(),
        );
    }
    // With no state namespace (Helm releases alone) the watch still reports what is missing.
    streams.push(futures::stream::pending().boxed());
    let mut stream = futures::stream::select_all(streams);
    let mut leader = w.leader.clone();
    let mut reader = Reader::new(w);
    let mut missing_may_change = false;
    // With no state namespace there is nothing to read: synced at once.
    reader.tell_synced();
    loop {
        let next_due = reader.pending.values().min().copied();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = async {
                match next_due {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = reader.w.intents.presence_changed.notified() => missing_may_change = true,
            // A new leader reports what is missing now; a standby reports nothing.
            Ok(()) = leader.changed() => missing_may_change = true,
            seen = stream.next() => match seen {
                Some(Seen::Secret(ns, event)) => reader.on_secret(ns, event),
                Some(Seen::Lease(ns, event)) => {
                    reader.on_lease(ns, event).await;
                    missing_may_change = true;
                }
                None => return,
            },
        }
        missing_may_change |= reader.read_due().await;
        // Comparing every named object with the caches is O(objects): only when an object
        // came or went, a state was read, or a lock changed.
        if std::mem::take(&mut missing_may_change) {
            reader.report_missing().await;
        }
        reader.tell_synced();
    }
}

/// The state watch's own state: the Secrets' parts, what is due to be read, what was
/// reported missing.
struct Reader {
    w: Watch,
    parts: HashMap<(String, String), Part>,
    relisting: HashMap<String, HashMap<(String, String), Part>>,
    /// Namespaces whose Secrets, and whose Leases, have been listed once.
    listed: HashSet<(&'static str, String)>,
    pending: HashMap<StateId, tokio::time::Instant>,
    missing: HashMap<ObjectId, Arc<StateIntent>>,
    /// The held locks a (re)list of a namespace's Leases has shown so far.
    leases_relisted: HashMap<String, HashSet<StateId>>,
    /// Every state has been read once, and the intents told so.
    told_synced: bool,
}

impl Reader {
    fn new(w: Watch) -> Self {
        Reader {
            w,
            parts: HashMap::new(),
            relisting: HashMap::new(),
            listed: HashSet::new(),
            pending: HashMap::new(),
            missing: HashMap::new(),
            leases_relisted: HashMap::new(),
            told_synced: false,
        }
    }

    fn watch_result<T>(&self, ns: &str, what: &str, event: Result<T, watcher::Error>) -> Option<T> {
        // One readiness entry per watch: one namespace's watch working says nothing of
        // another's.
        let watch = format!("{KIND} {what} in {ns}");
        match event {
            Ok(event) => {
                self.w.readiness.watch_ok(&watch);
                Some(event)
            }
            Err(error) => {
                if !self.w.readiness.watch_error(&watch, &error) {
                    return None;
                }
                warn!(
                    namespace = %ns,
                    error = &error as &dyn std::error::Error,
                    "watch of Terraform state {what} failed; retrying with backoff (tfdrift needs get, list and watch on secrets and leases in this namespace: apply config/terraform-state)"
                );
                None
            }
        }
    }

    fn on_secret(&mut self, ns: String, event: Result<watcher::Event<Secret>, watcher::Error>) {
        let Some(event) = self.watch_result(&ns, "Secrets", event) else {
            return;
        };
        let due = tokio::time::Instant::now() + QUIET;
        match event {
            watcher::Event::Apply(s) => {
                if let Some(p) = part_of(&s) {
                    self.pending.insert(p.state.clone(), due);
                    self.parts.insert((ns, s.name_any()), p);
                }
            }
            watcher::Event::Delete(s) => {
                if let Some(p) = self.parts.remove(&(ns, s.name_any())) {
                    self.pending.insert(p.state, due);
                }
            }
            watcher::Event::Init => {
                self.relisting.insert(ns, HashMap::new());
            }
            watcher::Event::InitApply(s) => {
                if let Some(p) = part_of(&s) {
                    let name = s.name_any();
                    self.relisting
                        .entry(ns.clone())
                        .or_default()
                        .insert((ns, name), p);
                }
            }
            watcher::Event::InitDone => {
                let fresh = self.relisting.remove(&ns).unwrap_or_default();
                let now = tokio::time::Instant::now();
                // Every state of the namespace, before and after the relist, is read again.
                for p in self.parts.values().filter(|p| p.state.namespace == ns) {
                    self.pending.insert(p.state.clone(), now);
                }
                self.parts.retain(|(n, _), _| *n != ns);
                for (k, p) in fresh {
                    self.pending.insert(p.state.clone(), now);
                    self.parts.insert(k, p);
                }
                self.listed.insert(("secrets", ns));
            }
        }
    }

    async fn on_lease(&mut self, ns: String, event: Result<watcher::Event<Lease>, watcher::Error>) {
        let Some(event) = self.watch_result(&ns, "lock Leases", event) else {
            return;
        };
        let (lease, held) = match &event {
            watcher::Event::Apply(l) | watcher::Event::InitApply(l) => (l, is_held(l)),
            watcher::Event::Delete(l) => (l, false),
            watcher::Event::Init => {
                self.leases_relisted.insert(ns, HashSet::new());
                return;
            }
            watcher::Event::InitDone => {
                // A lock released (or its Lease deleted) while the watch was down is seen
                // only here: every state of the namespace still marked locked but no longer
                // held is unlocked.
                let held_now = self.leases_relisted.remove(&ns).unwrap_or_default();
                let released: Vec<StateId> = read(&self.w.intents.locked)
                    .iter()
                    .filter(|s| !s.is_helm() && s.namespace == ns && !held_now.contains(*s))
                    .cloned()
                    .collect();
                for state in released {
                    write(&self.w.intents.locked).remove(&state);
                    info!(state = %state, "the state lock was released while the watch was down; reading the state again");
                    self.reread(&state).await;
                }
                self.listed.insert(("leases", ns));
                return;
            }
        };
        if let (watcher::Event::InitApply(_), true) = (&event, held)
            && let Some(state) = state_of_lease(lease)
        {
            self.leases_relisted
                .entry(ns.clone())
                .or_default()
                .insert(state);
        }
        let Some(state) = state_of_lease(lease) else {
            return;
        };
        let was = {
            let mut locked = write(&self.w.intents.locked);
            let was = locked.contains(&state);
            if held {
                locked.insert(state.clone());
            } else {
                locked.remove(&state);
            }
            was
        };
        if was && !held {
            // Unlocked: Terraform wrote its state before releasing the lock, but that write
            // may arrive on the Secret watch after this. Read the state from the API now
            // and decide every object it names again.
            info!(state = %state, "Terraform released the state lock; reading the state again");
            self.reread(&state).await;
        } else if held && !was {
            info!(state = %state, "Terraform holds the state lock; no new drift is reported until it is released");
        }
    }

    /// Lists `state`'s Secrets (a consistent read) and reads it now; then every object it
    /// names is decided again, changed or not.
    async fn reread(&mut self, state: &StateId) {
        self.pending.remove(state);
        self.read(state, true).await;
        for key in self.w.intents.named_by(state) {
            self.trigger(&key);
        }
    }

    /// Lists `state`'s Secrets (a consistent read) into `parts`; whether it could.
    async fn list_parts(&mut self, state: &StateId) -> bool {
        let api: Api<Secret> = Api::namespaced(self.w.client.clone(), &state.namespace);
        let selector = format!(
            "{SELECTOR},{WORKSPACE_LABEL}={},{SUFFIX_LABEL}={}",
            state.workspace, state.suffix
        );
        let params = kube::api::ListParams::default().labels(&selector);
        let list = api.list(&params);
        match tokio::time::timeout(LIST_TIMEOUT, list)
            .await
            .unwrap_or_else(|_| Err(kube::Error::Service("timed out".into())))
        {
            Ok(list) => {
                self.parts.retain(|_, p| p.state != *state);
                for s in &list.items {
                    if let Some(p) = part_of(s) {
                        self.parts
                            .insert((state.namespace.clone(), s.name_any()), p);
                    }
                }
            }
            Err(error) => {
                warn!(state = %state, error = &error as &dyn std::error::Error, "cannot list the state's Secrets");
                return false;
            }
        }
        true
    }

    /// Has `key` decided again: by the label flow (a labelled object a state stopped or
    /// started naming) and by the controller of its kind for named objects.
    fn trigger(&self, key: &ObjectId) {
        trigger(&self.w.triggers, &self.w.intents, key);
    }

    /// Logs and counts the instances of `state` that are not judged, by reason.
    fn note_unjudged(&self, state: &StateId, unjudged: &[(String, &'static str, String)]) {
        let mut by_reason: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for (address, reason, why) in unjudged {
            by_reason
                .entry(reason)
                .or_default()
                .push(format!("{address} ({why})"));
        }
        for reason in ["unsupported", "not_judged", "invalid"] {
            let labels = [
                state.namespace.as_str(),
                &state.workspace,
                &state.suffix,
                reason,
            ];
            match by_reason.get(reason) {
                Some(list) => {
                    self.w
                        .metrics
                        .terraform_state_not_judged
                        .with_label_values(&labels)
                        .set(list.len() as i64);
                    if reason != "invalid" {
                        info!(
                            state = %state,
                            count = list.len(),
                            instances = crate::core::text::bounded(&list.join(", "), 600),
                            "instances not judged"
                        );
                    }
                }
                None => {
                    let _ = self
                        .w
                        .metrics
                        .terraform_state_not_judged
                        .remove_label_values(&labels);
                }
            }
        }
    }

    /// Reads every state whose Secrets have been quiet long enough; whether it read any.
    async fn read_due(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let due: Vec<StateId> = self
            .pending
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(s, _)| s.clone())
            .collect();
        let any = !due.is_empty();
        for state in due {
            self.pending.remove(&state);
            // While Terraform holds the lock its parts may be half written; the unlock
            // reads it again.
            if self.w.intents.is_locked(&state) && self.w.intents.is_synced() {
                debug!(state = %state, "state changed while locked; read again on unlock");
                continue;
            }
            self.read(&state, false).await;
        }
        any
    }

    /// Reads `state`; with `list`, from its Secrets listed now rather than what the watch
    /// brought.
    async fn read(&mut self, state: &StateId, list: bool) {
        // The parts of a state read before were dropped: list them again, all at once.
        let dropped = self
            .parts
            .values()
            .any(|p| p.state == *state && p.data.is_none());
        if (list || dropped) && !self.list_parts(state).await {
            if dropped {
                // Its objects keep their intent; an API error says nothing of the state.
                self.pending
                    .insert(state.clone(), tokio::time::Instant::now() + RELIST_AFTER);
                return;
            }
            warn!(state = %state, "deciding with what the watch holds");
        }
        let of_state: Vec<&Part> = self.parts.values().filter(|p| p.state == *state).collect();
        let changed = if of_state.is_empty() {
            info!(state = %state, "state deleted; its objects go back to label-only tracking");
            self.note_unjudged(state, &[]);
            write(&self.w.intents.unreadable).remove(state);
            let labels = state.labels();
            let _ = self
                .w
                .metrics
                .terraform_state_missing
                .remove_label_values(&labels);
            // Named nothing first: a reconcile counting its drift after this sees a state
            // that names nothing, and keeps no series either.
            let changed = self.w.intents.replace(state, HashMap::new());
            self.w.intents.set_helm_named(state, Vec::new());
            let _ = self
                .w
                .metrics
                .terraform_state_drifted
                .remove_label_values(&labels);
            changed
        } else {
            // Decoding (up to 256 MiB of JSON) runs on the blocking pool, not a runtime worker.
            let decoded = match reassemble(&of_state) {
                Err(error) => Err(error),
                Ok(bytes) => {
                    let (st, defaults) = (state.clone(), self.w.defaults.clone());
                    let rules = self.w.address_rules.clone();
                    let helm = self.w.helm_namespaces.clone();
                    tokio::task::spawn_blocking(move || {
                        decode(bytes, &st, &defaults, &rules, &helm)
                    })
                    .await
                    .unwrap_or(Err(StateError::Aborted))
                }
            };
            match decoded {
                Ok(Decoded {
                    named,
                    unjudged,
                    releases,
                }) => {
                    self.w.intents.set_helm_named(state, releases);
                    info!(state = %state, objects = named.len(), "state read");
                    self.note_unjudged(state, &unjudged);
                    let invalid = unjudged.iter().filter(|u| u.1 == "invalid").count();
                    if invalid > 0 {
                        self.w
                            .metrics
                            .terraform_state_errors_total
                            .with_label_values(&[
                                &state.namespace,
                                &state.workspace,
                                &state.suffix,
                                "invalid_instance",
                            ])
                            .inc_by(u64::try_from(invalid).unwrap_or(u64::MAX));
                    }
                    write(&self.w.intents.unreadable).remove(state);
                    self.w.intents.replace(state, named)
                }
                Err(error) => {
                    // Its objects keep their last intent: no flapping to unknown, and no
                    // clean-up of objects this process has not seen it name yet.
                    // One Warning when a state becomes unreadable, not one per relist.
                    let newly = write(&self.w.intents.unreadable).insert(state.clone());
                    self.w
                        .metrics
                        .terraform_state_errors_total
                        .with_label_values(&[
                            &state.namespace,
                            &state.workspace,
                            &state.suffix,
                            error.reason(),
                        ])
                        .inc();
                    warn!(state = %state, error = &error as &dyn std::error::Error, "cannot read the Terraform state; its objects keep their last verdict");
                    let first = of_state
                        .iter()
                        .min_by_key(|p| p.index)
                        .map(|p| p.reference.clone());
                    if let Some(reference) = first
                        && newly
                        && *self.w.leader.borrow()
                    {
                        let note = format!(
                            "{}: {error}; its objects keep their last verdict",
                            state.secret_name()
                        );
                        self.publish(reference, contract::reason::INVALID_TERRAFORM_STATE, &note)
                            .await;
                    }
                    Vec::new()
                }
            }
        };
        for part in self.parts.values_mut().filter(|p| p.state == *state) {
            part.data = None;
        }
        for key in changed {
            debug!(object = %key, "intent from Terraform state changed; re-deciding it");
            self.trigger(&key);
        }
        let counts = self.w.intents.counts();
        for (state, n) in &counts {
            self.w
                .metrics
                .terraform_state_resources
                .with_label_values(&state.labels())
                .set(*n as i64);
        }
        if !counts.contains_key(state) {
            let labels = state.labels();
            let _ = self
                .w
                .metrics
                .terraform_state_resources
                .remove_label_values(&labels);
        }
    }

    async fn publish(&self, regarding: ObjectReference, reason: &str, note: &str) {
        let publish =
            self.w
                .events
                .publish(regarding, EventType::Warning, reason, "ReadState", note);
        // Bounded: the state and lock handling waits for it.
        match tokio::time::timeout(EVENT_TIMEOUT, publish).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => warn!(
                reason,
                error = &error as &dyn std::error::Error,
                "cannot publish event"
            ),
            Err(_) => warn!(reason, "publishing event timed out"),
        }
    }

    /// Reports, per transition, the objects a state names that the cluster lacks: a
    /// Warning on the state's Secret and `tfdrift_resource_missing` while it lasts.
    async fn report_missing(&mut self) {
        if !*self.w.leader.borrow() {
            // Missing series come from the leader alone; a new leader reports afresh.
            for (key, intent) in self.missing.drain() {
                let _ = self
                    .w
                    .metrics
                    .resource_missing
                    .remove_label_values(&missing_labels(&key, &intent));
            }
            for state in self.w.intents.counts().keys() {
                let _ = self
                    .w
                    .metrics
                    .terraform_state_missing
                    .remove_label_values(&state.labels());
            }
            return;
        }
        let mut now = self.w.intents.missing();
        let watched = |k: &ObjectId| {
            self.w
                .watch_namespace
                .as_ref()
                .is_none_or(|n| *n == k.namespace)
        };
        now.retain(|k, _| watched(k));
        // While Terraform holds a state's lock (a destroy deletes objects before it writes
        // the state) its objects are neither reported nor cleared; the unlock decides.
        let locked: Vec<ObjectId> = self
            .missing
            .iter()
            .filter(|(_, i)| self.w.intents.is_locked(&i.state))
            .map(|(k, _)| k.clone())
            .collect();
        now.retain(|k, i| !self.w.intents.is_locked(&i.state) || locked.contains(k));
        for k in &locked {
            if let Some(i) = self.missing.get(k) {
                now.entry(k.clone()).or_insert_with(|| i.clone());
            }
        }
        let gone: Vec<ObjectId> = self
            .missing
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(intent) = self.missing.remove(&key) {
                let _ = self
                    .w
                    .metrics
                    .resource_missing
                    .remove_label_values(&missing_labels(&key, &intent));
            }
        }
        for (key, intent) in now {
            if self.missing.contains_key(&key) {
                continue;
            }
            self.w
                .metrics
                .resource_missing
                .with_label_values(&missing_labels(&key, &intent))
                .set(1);
            info!(object = %key, address = %intent.address(), source = %intent.state, "named in Terraform state or a Helm release, not in the cluster");
            // Said on what names it: the state's Secret, or the release's record.
            let reference = ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Secret".into()),
                namespace: Some(intent.state.namespace.clone()),
                name: Some(
                    intent
                        .helm_record()
                        .unwrap_or_else(|| intent.state.secret_name()),
                ),
                ..ObjectReference::default()
            };
            let note = if intent.state.is_helm() {
                format!("{key} is in {} but not in the cluster", intent.origin())
            } else {
                format!(
                    "{} ({key}) is in the Terraform state but not in the cluster",
                    intent.address()
                )
            };
            self.publish(
                reference,
                contract::reason::TERRAFORM_RESOURCE_MISSING,
                &note,
            )
            .await;
            self.missing.insert(key, intent);
        }
        let mut per_state: BTreeMap<&StateId, i64> = BTreeMap::new();
        for intent in self.missing.values() {
            *per_state.entry(&intent.state).or_insert(0) += 1;
        }
        for state in self.w.intents.counts().keys() {
            self.w
                .metrics
                .terraform_state_missing
                .with_label_values(&state.labels())
                .set(per_state.get(state).copied().unwrap_or(0));
        }
    }

    /// Tells readiness once every namespace's Secrets and Leases are listed and read.
    fn tell_synced(&mut self) {
        let all_listed = self.w.namespaces.iter().all(|n| {
            self.listed.contains(&("secrets", n.clone()))
                && self.listed.contains(&("leases", n.clone()))
        });
        if !self.told_synced && all_listed && self.pending.is_empty() {
            info!(
                states = self.w.intents.counts().len(),
                "Terraform states read"
            );
            self.told_synced = true;
            self.w.intents.states_read.send_replace(true);
            self.w.intents.source_synced();
            let _ = self.w.synced.send(KIND);
        }
    }
}

/// Tells whoever decides `key` to decide it again: the spec-hash flow's controller of its
/// kind (it may have to give the object up, or take it back) and the named objects'.
pub(crate) fn trigger(triggers: &Triggers, intents: &Intents, key: &ObjectId) {
    if let Some(tx) = triggers.get(key.kind.as_str())
        && crate::core::fingerprint::KINDS.contains(&key.kind.as_str())
        && ObjectId::new(&key.kind, "", "").group == key.group
    {
        let _ = tx.send((key.namespace.clone(), key.name.clone()));
    }
    intents.trigger(key);
}

/// The labels of `tfdrift_resource_missing`.
fn missing_labels<'a>(key: &'a ObjectId, intent: &'a StateIntent) -> [&'a str; 5] {
    [
        &key.group,
        &key.kind,
        &key.namespace,
        &key.name,
        intent.address(),
    ]
}

/// What one state says: every object it names with what it is judged by, and the instances
/// that are not judged (never their values).
pub(crate) struct Decoded {
    pub named: HashMap<ObjectId, Arc<StateIntent>>,
    /// Address, reason (a `tfdrift_terraform_state_not_judged` label) and why.
    pub unjudged: Vec<(String, &'static str, String)>,
    /// The Helm releases its `helm_release` instances name.
    pub releases: Vec<crate::intent::helm::Named>,
}

/// Reads one state: what each object it names is judged by (every instance of every kind),
/// under `defaults` (the `--ignore-*` flags) and the address rules.
pub(crate) fn decode(
    bytes: Vec<u8>,
    state: &StateId,
    defaults: &[ApiRule],
    address_rules: &[AddressRule],
    helm_namespaces: &[String],
) -> Result<Decoded, StateError> {
    // One bad instance does not cost the others their intent: it is skipped, named by
    // its address (never its values).
    let state = Arc::new(state.clone());
    let mut claims: HashMap<ObjectId, Vec<Claim>> = HashMap::new();
    let mut owned: HashMap<ObjectId, Vec<ApiRule>> = HashMap::new();
    let mut unjudged = Vec::new();
    let mut releases = Vec::new();
    terraform::read_each(bytes, |item| {
        let instance = match item {
            terraform::Item::Instance(instance) => instance,
            terraform::Item::Unjudged(u) => {
                let reason = match &u.why {
                    terraform::Why::Unsupported(_) => "unsupported",
                    terraform::Why::NotJudged(_)
                    | terraform::Why::Drifted(_)
                    | terraform::Why::Missing(_) => "not_judged",
                    terraform::Why::Invalid(why) => {
                        warn!(address = %u.address, error = %why, "an instance of the Terraform state does not describe an object; skipped");
                        "invalid"
                    }
                };
                unjudged.push((u.address, reason, u.why.to_string()));
                return;
            }
            terraform::Item::Release(named) => {
                if !helm_namespaces.contains(&named.namespace) {
                    unjudged.push((
                        named.address.clone(),
                        "not_judged",
                        format!(
                            "a Helm release in namespace {}: judged by its release record with --helm-namespace {}",
                            named.namespace, named.namespace
                        ),
                    ));
                }
                releases.push(named);
                return;
            }
        };
        let mut id = instance.id.clone();
        // A namespaced object without a namespace is in `default`, as the provider creates it.
        if id.namespace.is_empty()
            && crate::core::kind::BUILTIN
                .iter()
                .any(|k| k.group == id.group && k.kind == id.kind && k.namespaced)
        {
            id.namespace = "default".to_owned();
        }
        if matches!(instance.source, terraform::Source::Patch) {
            owned
                .entry(id.clone())
                .or_default()
                .extend(judge::owned_paths(&instance.object));
        }
        let context = judge::Context {
            rules: judge::rules_for(&instance, defaults, address_rules),
            others: Vec::new(),
        };
        match Compact::new(&instance) {
            Ok(compact) => claims.entry(id).or_default().push(Claim {
                instance: compact,
                context,
            }),
            Err(error) => {
                warn!(address = %instance.address, error = %error, "cannot keep this instance's intent; skipped");
                unjudged.push((instance.address.clone(), "invalid", error.to_string()));
            }
        }
    })?;
    let named = claims
        .into_iter()
        .map(|(id, mut claims)| {
            // What patch-style instances own on an object is theirs, not its other address's.
            if let Some(theirs) = owned.get(&id) {
                for claim in claims.iter_mut().filter(|c| c.instance.creates()) {
                    claim.context.others = theirs.clone();
                }
            }
            let intent = Arc::new(StateIntent::new(state.clone(), claims));
            (id, intent)
        })
        .collect();
    Ok(Decoded {
        named,
        unjudged,
        releases,
    })
}
