//! Intent from the Secrets of Terraform's `kubernetes` backend: every state in the
//! namespaces given with `--terraform-state-namespace` is read (its part Secrets
//! reassembled, gzip inflated), and each instance it names becomes the intent its object is
//! judged by — with no label and no annotation on the object.
//!
//! Decoded state is never logged and not kept: per object only its address, uid, intent
//! hashes and compressed fingerprint stay (see [`crate::intent::terraform::Intent`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::core::contract::{self, EventType};
use crate::core::ignore::Rule;
use crate::core::object::ObjectId;
use crate::intent::terraform;
use crate::operator::events::Publisher;
use crate::operator::http::Readiness;
use crate::operator::metrics::Metrics;

/// The readiness and metrics name of this watch.
pub const KIND: &str = "TerraformState";
/// The labels the backend sets on every state Secret.
const SELECTOR: &str = "tfstate=true";
const WORKSPACE_LABEL: &str = "tfstateWorkspace";
const SUFFIX_LABEL: &str = "tfstateSecretSuffix";
/// Largest state read, compressed (all parts together).
pub const MAX_COMPRESSED: usize = 64 * 1024 * 1024;
/// Terraform writes a state's parts one after another: a state is read once its Secrets
/// have been quiet this long.
const QUIET: Duration = Duration::from_millis(500);

/// One state of the backend: `tfstate-<workspace>-<suffix>` in `namespace`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateId {
    pub namespace: String,
    pub workspace: String,
    pub suffix: String,
}

impl fmt::Display for StateId {
    /// `<namespace>/<workspace>/<suffix>`, the value of `tfdrift.jin.dev/terraform-workspace`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.workspace, self.suffix)
    }
}

impl StateId {
    fn secret_name(&self) -> String {
        format!("tfstate-{}-{}", self.workspace, self.suffix)
    }
}

/// What an object is judged by when a state names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateIntent {
    pub state: Arc<StateId>,
    pub address: Box<str>,
    pub uid: Option<Box<str>>,
    pub intent: terraform::Intent,
}

/// Every object the states name, shared with the controllers.
pub struct Intents {
    by_object: RwLock<HashMap<ObjectId, Arc<StateIntent>>>,
    synced: watch::Sender<bool>,
}

impl Default for Intents {
    fn default() -> Self {
        Intents {
            by_object: RwLock::default(),
            synced: watch::Sender::new(false),
        }
    }
}

impl Intents {
    pub fn get(&self, key: &ObjectId) -> Option<Arc<StateIntent>> {
        read(&self.by_object).get(key).cloned()
    }

    /// Whether every state has been read once: before that no object may be judged by the
    /// label alone (a state could still claim it).
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.synced.subscribe()
    }

    /// Replaces what `state` names by `named`; returns the objects whose intent changed.
    fn replace(
        &self,
        state: &StateId,
        named: HashMap<ObjectId, Arc<StateIntent>>,
    ) -> Vec<ObjectId> {
        let mut map = write(&self.by_object);
        let mut changed = Vec::new();
        map.retain(|key, intent| {
            let keep = *intent.state != *state || named.contains_key(key);
            if !keep {
                changed.push(key.clone());
            }
            keep
        });
        for (key, intent) in named {
            if map.get(&key) != Some(&intent) {
                changed.push(key.clone());
                map.insert(key, intent);
            }
        }
        changed
    }

    fn counts(&self) -> BTreeMap<StateId, usize> {
        let mut counts = BTreeMap::new();
        for intent in read(&self.by_object).values() {
            *counts.entry((*intent.state).clone()).or_insert(0) += 1;
        }
        counts
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Where a change of intent is sent: one channel per kind, to that kind's controller.
pub type Triggers = HashMap<&'static str, mpsc::UnboundedSender<(String, String)>>;

/// One Secret of a state: which part it is and its bytes (gzip, compressed).
struct Part {
    state: StateId,
    index: usize,
    data: Vec<u8>,
    reference: ObjectReference,
}

/// Why a state was not read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("part {0} of the state is missing")]
    MissingPart(usize),
    #[error("larger than {} MiB compressed; refused", MAX_COMPRESSED >> 20)]
    TooLarge,
    #[error(transparent)]
    Read(#[from] terraform::ReadError),
}

impl StateError {
    fn reason(&self) -> &'static str {
        match self {
            StateError::MissingPart(_) => "missing_part",
            StateError::TooLarge => "too_large",
            StateError::Read(terraform::ReadError::State(_)) => "undecodable",
            StateError::Read(_) => "invalid_instance",
        }
    }
}

/// The part index a Secret's name gives: `…-part-<i>`, the first part has none.
fn part_index(name: &str) -> usize {
    name.rsplit_once("-part-")
        .and_then(|(_, i)| i.parse().ok())
        .unwrap_or(0)
}

/// The parts of `state` reassembled in order.
fn reassemble(parts: &[&Part]) -> Result<Vec<u8>, StateError> {
    let mut sorted: Vec<&&Part> = parts.iter().collect();
    sorted.sort_by_key(|p| p.index);
    let mut out = Vec::new();
    for (expected, part) in sorted.iter().enumerate() {
        if part.index != expected {
            return Err(StateError::MissingPart(expected));
        }
        if out.len() + part.data.len() > MAX_COMPRESSED {
            return Err(StateError::TooLarge);
        }
        out.extend_from_slice(&part.data);
    }
    Ok(out)
}

/// What the state watch needs from the operator.
pub struct Watch {
    pub client: Client,
    pub namespaces: Vec<String>,
    pub intents: Arc<Intents>,
    pub triggers: Triggers,
    pub defaults: HashMap<&'static str, Arc<[Rule]>>,
    pub events: Arc<Publisher>,
    pub metrics: Metrics,
    pub readiness: Readiness,
    pub synced: mpsc::UnboundedSender<&'static str>,
}

/// Watches the state Secrets until `shutdown`, keeping `intents` current and
/// re-triggering every object whose intent came, went or changed.
pub async fn run(w: Watch, shutdown: CancellationToken) {
    let streams = w.namespaces.iter().map(|ns| {
        let api: Api<Secret> = Api::namespaced(w.client.clone(), ns);
        let ns = ns.clone();
        watcher(
            api,
            watcher::Config::default().labels(SELECTOR).any_semantic(),
        )
        .default_backoff()
        .map(move |e| (ns.clone(), e))
        .boxed()
    });
    let mut stream = futures::stream::select_all(streams);
    let mut parts: HashMap<(String, String), Part> = HashMap::new();
    let mut relisting: HashMap<String, HashMap<(String, String), Part>> = HashMap::new();
    let mut listed: HashSet<String> = HashSet::new();
    let mut pending: HashMap<StateId, tokio::time::Instant> = HashMap::new();
    loop {
        let next_due = pending.values().min().copied();
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = async { match next_due { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => None,
            event = stream.next() => match event {
                Some(event) => Some(event),
                None => return,
            },
        };
        if let Some((ns, event)) = event {
            let event = match event {
                Ok(event) => {
                    w.readiness.watch_ok(KIND);
                    event
                }
                Err(error) => {
                    w.readiness.watch_failed(KIND);
                    warn!(
                        namespace = %ns,
                        error = &error as &dyn std::error::Error,
                        concat!(
                            "watch of Terraform state Secrets failed; retrying with backoff ",
                            "(tfdrift needs get, list and watch on secrets in this namespace: ",
                            "the config/terraform-state component)"
                        )
                    );
                    continue;
                }
            };
            let due = tokio::time::Instant::now() + QUIET;
            match event {
                watcher::Event::Apply(s) => {
                    if let Some(p) = part_of(&s) {
                        pending.insert(p.state.clone(), due);
                        parts.insert((ns.clone(), s.name_any()), p);
                    }
                }
                watcher::Event::Delete(s) => {
                    if let Some(p) = parts.remove(&(ns.clone(), s.name_any())) {
                        pending.insert(p.state, due);
                    }
                }
                watcher::Event::Init => {
                    relisting.insert(ns.clone(), HashMap::new());
                }
                watcher::Event::InitApply(s) => {
                    if let Some(p) = part_of(&s) {
                        relisting
                            .entry(ns.clone())
                            .or_default()
                            .insert((ns.clone(), s.name_any()), p);
                    }
                }
                watcher::Event::InitDone => {
                    let fresh = relisting.remove(&ns).unwrap_or_default();
                    let now = tokio::time::Instant::now();
                    // Every state of the namespace, before and after the relist, is read again.
                    for p in parts.values().filter(|p| p.state.namespace == ns) {
                        pending.insert(p.state.clone(), now);
                    }
                    parts.retain(|(n, _), _| *n != ns);
                    for (k, p) in fresh {
                        pending.insert(p.state.clone(), now);
                        parts.insert(k, p);
                    }
                    listed.insert(ns.clone());
                }
            }
        }
        let now = tokio::time::Instant::now();
        let due: Vec<StateId> = pending
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(s, _)| s.clone())
            .collect();
        for state in due {
            pending.remove(&state);
            let of_state: Vec<&Part> = parts.values().filter(|p| p.state == state).collect();
            let changed = if of_state.is_empty() {
                info!(state = %state, "state deleted; its objects go back to label-only tracking");
                w.intents.replace(&state, HashMap::new())
            } else {
                match decode(&w, &state, &of_state) {
                    Ok(named) => {
                        info!(state = %state, objects = named.len(), "state read");
                        w.intents.replace(&state, named)
                    }
                    Err(error) => {
                        // Its objects keep their last intent: no flapping to unknown.
                        w.metrics
                            .terraform_state_errors_total
                            .with_label_values(&[
                                &state.namespace,
                                &state.workspace,
                                &state.suffix,
                                error.reason(),
                            ])
                            .inc();
                        warn!(state = %state, error = &error as &dyn std::error::Error, "cannot read the Terraform state; its objects keep their last verdict");
                        if let Some(first) =
                            of_state.iter().find(|p| p.index == 0).or(of_state.first())
                        {
                            let note = format!(
                                "{}: {error}; its objects keep their last verdict",
                                state.secret_name()
                            );
                            let _ = w
                                .events
                                .publish(
                                    first.reference.clone(),
                                    EventType::Warning,
                                    contract::reason::INVALID_TERRAFORM_STATE,
                                    "ReadState",
                                    &note,
                                )
                                .await;
                        }
                        Vec::new()
                    }
                }
            };
            for key in changed {
                debug!(object = %key, "intent from Terraform state changed; re-deciding it");
                if let Some(tx) = w.triggers.get(key.kind.as_str()) {
                    let _ = tx.send((key.namespace.clone(), key.name.clone()));
                }
            }
            record_counts(&w);
        }
        if !w.intents.is_synced()
            && w.namespaces.iter().all(|n| listed.contains(n))
            && pending.is_empty()
        {
            info!(states = w.intents.counts().len(), "Terraform states read");
            w.intents.synced.send_replace(true);
            let _ = w.synced.send(KIND);
        }
    }
}

fn record_counts(w: &Watch) {
    for (state, n) in w.intents.counts() {
        w.metrics
            .terraform_state_resources
            .with_label_values(&[&state.namespace, &state.workspace, &state.suffix])
            .set(n as i64);
    }
}

/// The part a state Secret holds, `None` for a Secret without the backend's labels.
fn part_of(secret: &Secret) -> Option<Part> {
    let labels = secret.labels();
    let state = StateId {
        namespace: secret.namespace().unwrap_or_default(),
        workspace: labels.get(WORKSPACE_LABEL)?.clone(),
        suffix: labels.get(SUFFIX_LABEL)?.clone(),
    };
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("tfstate"))
        .map(|b| b.0.clone())
        .unwrap_or_default();
    Some(Part {
        index: part_index(&secret.name_any()),
        state,
        data,
        reference: secret.object_ref(&()),
    })
}

/// Reads one state and computes what each object it names is judged by.
fn decode(
    w: &Watch,
    state: &StateId,
    parts: &[&Part],
) -> Result<HashMap<ObjectId, Arc<StateIntent>>, StateError> {
    let bytes = reassemble(parts)?;
    let read = terraform::read(bytes)?;
    let state = Arc::new(state.clone());
    let mut named = HashMap::new();
    for instance in read.instances {
        let defaults = w
            .defaults
            .get(instance.id.kind.as_str())
            .cloned()
            .unwrap_or_else(|| Arc::new([]));
        let intent = match terraform::intent(&instance, &defaults) {
            Ok(intent) => intent,
            Err(error) => {
                warn!(address = %instance.address, error = &error as &dyn std::error::Error, "cannot fingerprint this instance; skipped");
                continue;
            }
        };
        named.insert(
            instance.id,
            Arc::new(StateIntent {
                state: state.clone(),
                address: instance.address.into(),
                uid: instance.uid.map(Into::into),
                intent,
            }),
        );
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_ordered_by_the_index_in_their_name() {
        assert_eq!(part_index("tfstate-default-app"), 0);
        assert_eq!(part_index("tfstate-default-app-part-1"), 1);
        assert_eq!(part_index("tfstate-default-app-part-12"), 12);
        let state = StateId {
            namespace: "ns".into(),
            workspace: "default".into(),
            suffix: "app".into(),
        };
        let part = |index: usize, data: &[u8]| Part {
            state: state.clone(),
            index,
            data: data.to_vec(),
            reference: ObjectReference::default(),
        };
        let (a, b, c) = (part(0, b"ab"), part(1, b"cd"), part(2, b"ef"));
        assert_eq!(reassemble(&[&c, &a, &b]).unwrap(), b"abcdef");
        assert!(matches!(
            reassemble(&[&a, &c]),
            Err(StateError::MissingPart(1))
        ));
    }
}
