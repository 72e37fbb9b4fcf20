//! What the Terraform states name, shared by the state watch and the controllers: per object
//! the claims of the states naming it (judged against the first), which states Terraform holds
//! the lock of, which cannot be read now, and which objects the controllers' caches hold.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tracing::warn;

use crate::core::object::ObjectId;
pub use crate::intent::terraform::backend::StateId;
use crate::intent::terraform::compact::Compact;
use crate::intent::terraform::judge;

/// What an object is judged by when a state names it: the instances of that state that name
/// it — the one that makes the object first (a typed resource, a manifest), then patch-style
/// ones (`kubernetes_labels`, …) in state order — each with what it is judged with.
#[derive(Debug, Clone)]
pub struct StateIntent {
    pub state: Arc<StateId>,
    pub claims: Box<[Claim]>,
    /// A digest of the claims: equal as long as what the object is judged by is unchanged, so
    /// that reading a state again re-judges only the objects whose intent changed.
    pub digest: [u8; 16],
}

/// One instance naming an object.
#[derive(Debug, Clone)]
pub struct Claim {
    pub instance: Compact,
    pub context: judge::Context,
}

impl StateIntent {
    pub fn new(state: Arc<StateId>, mut claims: Vec<Claim>) -> StateIntent {
        // The instance that makes the object first; the rest keep their state order.
        claims.sort_by_key(|c| !c.instance.creates());
        let mut hasher = Sha256::new();
        hasher.update(state.to_string().as_bytes());
        for claim in &claims {
            claim.instance.digest(&mut hasher);
            hasher.update(format!("{:?}", claim.context).as_bytes());
        }
        let full = hasher.finalize();
        let mut digest = [0; 16];
        digest.copy_from_slice(&full[..16]);
        StateIntent {
            state,
            claims: claims.into_boxed_slice(),
            digest,
        }
    }

    /// The address the object goes by: its first claim's.
    pub fn address(&self) -> &str {
        self.claims.first().map_or("", |c| &c.instance.address)
    }

    /// Every address naming the object, `, `-separated.
    pub fn addresses(&self) -> String {
        let all: Vec<&str> = self.claims.iter().map(|c| &*c.instance.address).collect();
        all.join(", ")
    }

    /// The uid Terraform saw, where the instance that makes the object keeps one.
    pub fn uid(&self) -> Option<&str> {
        self.claims
            .iter()
            .find(|c| c.instance.creates())
            .and_then(|c| c.instance.uid.as_deref())
    }

    /// The revision of the Helm release the intent is of, if it is of one.
    pub fn helm_revision(&self) -> Option<u64> {
        self.claims.iter().find_map(|c| match &c.instance.source {
            crate::intent::terraform::Source::Helm { revision, .. } => Some(*revision),
            _ => None,
        })
    }

    /// The release record the intent was read from, for a Helm release.
    pub fn helm_record(&self) -> Option<String> {
        let revision = self.helm_revision()?;
        self.state
            .is_helm()
            .then(|| crate::intent::helm::record::object_name(&self.state.suffix, revision))
    }

    /// Where the intent comes from, as events say it: `Terraform state (ADDRESS)`, `Helm
    /// release NS/NAME (revision N)` (with the address of a `helm_release` naming it).
    pub fn origin(&self) -> String {
        if self.state.is_helm() {
            let address = self.address();
            let revision = self.helm_revision().unwrap_or_default();
            let named = if crate::intent::helm::is_release_address(address) {
                String::new()
            } else {
                format!(", {address}")
            };
            format!(
                "Helm release {}/{} (revision {revision}{named})",
                self.state.namespace, self.state.suffix
            )
        } else {
            format!("Terraform state ({})", self.addresses())
        }
    }

    /// The API version the object is read in: its first claim's.
    pub fn api_version(&self) -> &str {
        self.claims.first().map_or("", |c| &c.instance.api_version)
    }
}

impl PartialEq for StateIntent {
    fn eq(&self, other: &Self) -> bool {
        self.state == other.state && self.digest == other.digest
    }
}

impl Eq for StateIntent {}

/// A kind as the states name it: API version and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamedKind {
    pub api_version: String,
    pub kind: String,
}

impl NamedKind {
    pub fn of(intent: &StateIntent, id: &ObjectId) -> NamedKind {
        NamedKind {
            api_version: intent.api_version().to_owned(),
            kind: id.kind.clone(),
        }
    }

    pub fn group(&self) -> &str {
        crate::core::kind::split_api_version(&self.api_version).0
    }
}

impl std::fmt::Display for NamedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.api_version, self.kind)
    }
}

/// The states naming one object, in [`StateId`] order; it is judged against the first.
/// Two states naming one object is a mistake in the Terraform code (both would fight over
/// it); a fixed order keeps the verdict from flipping with the order states are read in.
#[derive(Debug, Clone)]
enum Claims {
    One(Arc<StateIntent>),
    Many(Vec<Arc<StateIntent>>),
}

impl Claims {
    fn all(&self) -> &[Arc<StateIntent>] {
        match self {
            Claims::One(one) => std::slice::from_ref(one),
            Claims::Many(many) => many,
        }
    }

    fn first(&self) -> &Arc<StateIntent> {
        &self.all()[0]
    }

    fn from_vec(mut claims: Vec<Arc<StateIntent>>) -> Option<Claims> {
        claims.sort_by(|a, b| a.state.cmp(&b.state));
        match claims.len() {
            0 => None,
            1 => claims.pop().map(Claims::One),
            _ => Some(Claims::Many(claims)),
        }
    }

    /// With `intent` as its state's claim.
    fn with(&self, intent: Arc<StateIntent>) -> Claims {
        let mut claims: Vec<_> = self
            .all()
            .iter()
            .filter(|c| c.state != intent.state)
            .cloned()
            .collect();
        claims.push(intent);
        claims.sort_by(|a, b| a.state.cmp(&b.state));
        if claims.len() == 1 {
            Claims::One(claims.remove(0))
        } else {
            Claims::Many(claims)
        }
    }

    /// Without `state`'s claim; `None` when no state names the object any more.
    fn without(&self, state: &StateId) -> Option<Claims> {
        Claims::from_vec(
            self.all()
                .iter()
                .filter(|c| *c.state != *state)
                .cloned()
                .collect(),
        )
    }

    fn by(&self, state: &StateId) -> bool {
        self.all().iter().any(|c| *c.state == *state)
    }
}

/// Every object the states name, shared with the controllers.
pub struct Intents {
    by_object: RwLock<HashMap<ObjectId, Claims>>,
    pub(crate) synced: watch::Sender<bool>,
    /// States whose lock Lease has a holder: Terraform is changing things.
    pub(crate) locked: RwLock<HashSet<StateId>>,
    /// The controllers' caches, per kind, once synced: what a state names but a synced
    /// cache lacks is missing. (Asked, not copied: a set of every object of the cluster
    /// would cost more than the rest of the state watch.)
    caches: RwLock<HashMap<(NamedKind, Option<String>), Present>>,
    pub(crate) presence_changed: tokio::sync::Notify,
    /// Told when the objects states name, or their intent, changed: the kinds to watch may
    /// have too.
    pub(crate) named_changed: tokio::sync::Notify,
    /// States that exist but cannot be read now: their objects keep their last verdict.
    pub(crate) unreadable: RwLock<HashSet<StateId>>,
    /// The controllers of named objects, per group and kind: told of an object to decide again.
    triggers: RwLock<HashMap<(String, String), Vec<Trigger>>>,
    /// The sources of intent (the state watch, the Helm release watch) not read once yet.
    unsynced_sources: std::sync::Mutex<usize>,
    /// The Helm releases the `helm_release` instances of each state name.
    helm_named: RwLock<BTreeMap<StateId, Vec<crate::intent::helm::Named>>>,
    /// Told when what `helm_release` instances name changed.
    pub(crate) helm_named_changed: tokio::sync::Notify,
    /// Every Terraform state has been read once (what `helm_release` instances name is known).
    pub(crate) states_read: watch::Sender<bool>,
}

/// Where a controller of named objects hears of an object to decide again.
type Trigger = mpsc::UnboundedSender<ObjectId>;

/// Whether a controller's cache holds the object (namespace, name).
pub type Present = Box<dyn Fn(&str, &str) -> bool + Send + Sync>;

impl Default for Intents {
    fn default() -> Self {
        Intents {
            by_object: RwLock::default(),
            synced: watch::Sender::new(false),
            locked: RwLock::default(),
            caches: RwLock::default(),
            presence_changed: tokio::sync::Notify::new(),
            named_changed: tokio::sync::Notify::new(),
            unreadable: RwLock::default(),
            triggers: RwLock::default(),
            unsynced_sources: std::sync::Mutex::new(1),
            helm_named: RwLock::default(),
            helm_named_changed: tokio::sync::Notify::new(),
            states_read: watch::Sender::new(false),
        }
    }
}

impl Intents {
    /// Intents fed by `sources` watches (states, Helm releases): synced once each has been
    /// read once.
    pub fn with_sources(sources: usize) -> Intents {
        let intents = Intents::default();
        *intents
            .unsynced_sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = sources.max(1);
        intents
    }

    /// One source has read everything once; the last one makes the intents synced.
    pub(crate) fn source_synced(&self) {
        let mut left = self
            .unsynced_sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.synced.send_replace(true);
        }
    }

    /// The `helm_release` instances of `state` now.
    pub(crate) fn set_helm_named(&self, state: &StateId, named: Vec<crate::intent::helm::Named>) {
        let mut all = write(&self.helm_named);
        let before = all.get(state).cloned().unwrap_or_default();
        if before == named {
            return;
        }
        if named.is_empty() {
            all.remove(state);
        } else {
            all.insert(state.clone(), named);
        }
        drop(all);
        self.helm_named_changed.notify_one();
    }

    /// Every release a `helm_release` instance names, as (namespace, name).
    pub(crate) fn helm_named_releases(&self) -> Vec<(String, String)> {
        read(&self.helm_named)
            .values()
            .flatten()
            .map(|n| (n.namespace.clone(), n.name.clone()))
            .collect()
    }

    /// The `helm_release` instance naming release `name` in `namespace`, of the first state
    /// (in state order) that names it.
    pub fn helm_named(&self, namespace: &str, name: &str) -> Option<crate::intent::helm::Named> {
        read(&self.helm_named)
            .values()
            .flatten()
            .find(|n| n.namespace == namespace && n.name == name)
            .cloned()
    }

    pub fn get(&self, key: &ObjectId) -> Option<Arc<StateIntent>> {
        read(&self.by_object).get(key).map(|c| c.first().clone())
    }

    /// Whether `state` names any object (else it has no series of its own).
    pub fn names_any(&self, state: &StateId) -> bool {
        read(&self.by_object).values().any(|c| c.by(state))
    }

    /// Whether a state names `key`.
    pub fn names(&self, key: &ObjectId) -> bool {
        read(&self.by_object).contains_key(key)
    }

    /// Whether every state has been read once: before that no object may be judged by the
    /// label alone (a state could still claim it).
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.synced.subscribe()
    }

    /// Whether `workspace` (a `tfdrift.jin.dev/terraform-workspace` value) names a state that
    /// exists but cannot be read now: its objects keep what they have.
    pub fn is_unreadable(&self, workspace: &str) -> bool {
        read(&self.unreadable)
            .iter()
            .any(|s| s.to_string() == workspace)
    }

    /// Whether Terraform holds `state`'s lock (an apply, a plan, a console is running).
    pub fn is_locked(&self, state: &StateId) -> bool {
        read(&self.locked).contains(state)
    }

    /// A controller of named objects of `group` `kind` starts: it is told of objects to decide
    /// again on `tx` until it drops the receiver.
    pub fn register(&self, group: &str, kind: &str, tx: mpsc::UnboundedSender<ObjectId>) {
        write(&self.triggers)
            .entry((group.to_owned(), kind.to_owned()))
            .or_default()
            .push(tx);
    }

    /// Tells the controllers of `key`'s kind to decide it again: its intent changed, its
    /// state was unlocked, an HPA started or stopped scaling it.
    pub fn trigger(&self, key: &ObjectId) {
        let of_kind = (key.group.clone(), key.kind.clone());
        let mut stopped = false;
        if let Some(txs) = read(&self.triggers).get(&of_kind) {
            for tx in txs {
                stopped |= tx.send(key.clone()).is_err();
            }
        }
        if stopped && let Some(txs) = write(&self.triggers).get_mut(&of_kind) {
            txs.retain(|tx| !tx.is_closed());
        }
    }

    /// A controller's cache gained or lost `key`.
    pub fn object_seen(&self, key: &ObjectId) {
        if self.names(key) {
            self.presence_changed.notify_one();
        }
    }

    /// A controller's cache of `kind` (in `namespace`, `None`: all) has synced: from now on
    /// its absent objects are missing, `present` says which it holds.
    pub fn kind_synced(&self, kind: &NamedKind, namespace: Option<&str>, present: Present) {
        let key = (kind.clone(), namespace.map(str::to_owned));
        let first = write(&self.caches).insert(key, present).is_none();
        if first {
            self.presence_changed.notify_one();
        }
    }

    /// `kind` is no longer watched (in `namespace`): its objects there are not missing,
    /// whatever they are.
    pub fn kind_unwatched(&self, kind: &NamedKind, namespace: Option<&str>) {
        let key = (kind.clone(), namespace.map(str::to_owned));
        if write(&self.caches).remove(&key).is_some() {
            self.presence_changed.notify_one();
        }
    }

    /// Every object the states name, by the kind it is read as.
    pub fn by_kind(&self) -> HashMap<NamedKind, Vec<(ObjectId, Arc<StateIntent>)>> {
        let mut out: HashMap<NamedKind, Vec<(ObjectId, Arc<StateIntent>)>> = HashMap::new();
        for (id, claims) in read(&self.by_object).iter() {
            let first = claims.first();
            out.entry(NamedKind::of(first, id))
                .or_default()
                .push((id.clone(), first.clone()));
        }
        out
    }

    /// The objects states name that the cluster lacks (of kinds whose caches synced).
    pub(crate) fn missing(&self) -> HashMap<ObjectId, Arc<StateIntent>> {
        let caches = read(&self.caches);
        read(&self.by_object)
            .iter()
            .filter(|(k, v)| {
                let kind = NamedKind::of(v.first(), k);
                caches
                    .get(&(kind.clone(), Some(k.namespace.clone())))
                    .or_else(|| caches.get(&(kind, None)))
                    .is_some_and(|present| !present(&k.namespace, &k.name))
            })
            .map(|(k, v)| (k.clone(), v.first().clone()))
            .collect()
    }

    /// The objects `state` names.
    pub(crate) fn named_by(&self, state: &StateId) -> Vec<ObjectId> {
        read(&self.by_object)
            .iter()
            .filter(|(_, v)| v.by(state))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Replaces what `state` names by `named`; returns the objects whose intent changed.
    pub(crate) fn replace(
        &self,
        state: &StateId,
        named: HashMap<ObjectId, Arc<StateIntent>>,
    ) -> Vec<ObjectId> {
        let mut map = write(&self.by_object);
        let mut changed = Vec::new();
        let mut contested = Vec::new();
        map.retain(|key, claims| {
            if named.contains_key(key) || !claims.by(state) {
                return true;
            }
            let before = claims.first().clone();
            match claims.without(state) {
                None => {
                    changed.push(key.clone());
                    false
                }
                Some(rest) => {
                    if *rest.first() != before {
                        changed.push(key.clone());
                    }
                    *claims = rest;
                    true
                }
            }
        });
        for (key, intent) in named {
            match map.get_mut(&key) {
                None => {
                    changed.push(key.clone());
                    map.insert(key, Claims::One(intent));
                }
                Some(claims) => {
                    let before = claims.first().clone();
                    let was_contested = claims.all().len() > 1;
                    *claims = claims.with(intent);
                    if *claims.first() != before {
                        changed.push(key.clone());
                    }
                    if !was_contested && claims.all().len() > 1 {
                        contested.push((key, claims.clone()));
                    }
                }
            }
        }
        drop(map);
        if !changed.is_empty() {
            self.named_changed.notify_one();
        }
        for (key, claims) in contested {
            let states: Vec<String> = claims
                .all()
                .iter()
                .map(|c| format!("{} ({})", c.state, c.address()))
                .collect();
            warn!(
                object = %key,
                states = states.join(", "),
                "named by more than one source of intent (Terraform states, Helm releases); judged against the first"
            );
        }
        changed
    }

    /// How many objects each Terraform state names (Helm releases are not counted).
    pub(crate) fn counts(&self) -> BTreeMap<StateId, usize> {
        let mut counts = BTreeMap::new();
        for claims in read(&self.by_object).values() {
            for claim in claims.all().iter().filter(|c| !c.state.is_helm()) {
                *counts.entry((*claim.state).clone()).or_insert(0) += 1;
            }
        }
        counts
    }
}

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A claim of `workspace`'s state on a ConfigMap, its data `value`.
    fn claim(workspace: &str, value: &str) -> Arc<StateIntent> {
        let instance = crate::intent::terraform::Instance {
            address: format!("kubernetes_deployment_v1.{workspace}"),
            resource_type: "kubernetes_manifest".into(),
            id: ObjectId::new("ConfigMap", "default", "web"),
            api_version: "v1".into(),
            uid: None,
            object: serde_json::json!({"data": {"a": value}}),
            source: crate::intent::terraform::Source::Manifest {
                computed: Vec::new(),
            },
        };
        let state = Arc::new(StateId {
            namespace: "infra".into(),
            workspace: workspace.into(),
            suffix: "app".into(),
        });
        Arc::new(StateIntent::new(
            state,
            vec![Claim {
                instance: Compact::new(&instance).unwrap(),
                context: judge::Context::default(),
            }],
        ))
    }

    /// Two states naming one object: judged against the first in state order, whichever
    /// was read last; when it stops naming the object the other takes over.
    #[test]
    fn an_object_two_states_name_is_judged_against_the_first_in_order() {
        let web = ObjectId::new("Deployment", "default", "web");
        let (a, b) = (claim("a", "1"), claim("b", "2"));
        for order in [[&a, &b], [&b, &a]] {
            let intents = Intents::default();
            for c in order {
                intents.replace(&c.state, HashMap::from([(web.clone(), c.clone())]));
            }
            assert_eq!(
                intents.get(&web).unwrap().address(),
                "kubernetes_deployment_v1.a"
            );
            assert_eq!(intents.counts().len(), 2, "each state counts what it names");
            let changed = intents.replace(&a.state, HashMap::new());
            assert_eq!(changed, std::slice::from_ref(&web));
            assert_eq!(
                intents.get(&web).unwrap().address(),
                "kubernetes_deployment_v1.b"
            );
            assert!(!intents.names_any(&a.state) && intents.names_any(&b.state));
            assert_eq!(
                intents.replace(&b.state, HashMap::new()),
                std::slice::from_ref(&web)
            );
            assert!(intents.get(&web).is_none());
        }
        // The second state changing its claim changes nothing while the first holds.
        let intents = Intents::default();
        intents.replace(&a.state, HashMap::from([(web.clone(), a.clone())]));
        intents.replace(&b.state, HashMap::from([(web.clone(), b.clone())]));
        let changed = intents.replace(&b.state, HashMap::from([(web.clone(), claim("b", "3"))]));
        assert!(changed.is_empty(), "{changed:?}");
    }
}
