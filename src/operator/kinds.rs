//! Which kinds the operator watches: every kind the Terraform states name, resolved through
//! API discovery (resource name, scope) with the schema it is compared by, and a watch of
//! named objects for each (`operator/named/`) — started when a state starts naming the kind,
//! stopped when none does any more, no restart needed. What cannot be judged is reported,
//! never a crash: a kind the cluster does not serve (discovery is asked again every
//! `--rediscover-period` while one is named), a kind the operator may not read, an object
//! outside what it watches (`--namespace`, `--secret-namespaces`) — a Warning on the state's
//! Secret naming the addresses, once per transition, and `tfdrift_terraform_state_not_judged`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cluster::{Catalog, Served, Unserved};
use crate::core::contract::{self, EventType};
use crate::core::object::ObjectId;
use crate::operator::events::Publisher;
use crate::operator::intents::{NamedKind, StateId, StateIntent};
use crate::operator::named::{self, Scope, Status};
use crate::operator::reconcile::Context;

/// The readiness name of the kinds' watches together.
pub const KIND: &str = "TerraformKinds";
/// The longest an event about a state may hold up the watches.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most addresses one not-judged Warning names.
const ADDRESSES_PER_EVENT: usize = 20;

/// Where Secrets may be read (`--secret-namespaces`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SecretScope {
    /// Not at all: named Secrets are not judged.
    #[default]
    None,
    /// In these namespaces only.
    Namespaces(Vec<String>),
    /// Cluster-wide (`*`).
    All,
}

/// Which kinds get verdict annotations (`--annotate-kinds`): by group and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotateKinds(pub Vec<(String, String)>);

impl AnnotateKinds {
    pub fn contains(&self, group: &str, kind: &str) -> bool {
        self.0.iter().any(|(g, k)| g == group && k == kind)
    }
}

/// How the kinds are watched.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--namespace`: objects elsewhere, and cluster-scoped ones, are not judged.
    pub namespace: Option<String>,
    pub secrets: SecretScope,
    pub annotate: AnnotateKinds,
    pub rediscover: Duration,
}

/// Why the objects of a kind, or one object, are not judged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct NotJudged {
    /// A `tfdrift_terraform_state_not_judged` reason.
    reason: &'static str,
    why: String,
}

/// One kind's watches, by namespace (`None`: cluster-wide).
struct Watched {
    served: Served,
    scopes: HashMap<Option<String>, Running>,
}

struct Running {
    handle: named::Handle,
    status: Option<Status>,
}

/// Keeps the watches in step with what the states name until `shutdown`; `synced` is told
/// once the states are read and every kind they name is listed or known not to be judged.
pub async fn run(
    ctx: Arc<Context>,
    settings: Settings,
    events: Arc<Publisher>,
    synced: mpsc::UnboundedSender<&'static str>,
    shutdown: CancellationToken,
) {
    let Some(intents) = ctx.intents.clone() else {
        return;
    };
    let (status_tx, mut status_rx) = mpsc::unbounded_channel();
    let mut manager = Manager {
        ctx: ctx.clone(),
        settings,
        events,
        status_tx,
        watched: HashMap::new(),
        unserved: HashMap::new(),
        reported: HashMap::new(),
        told_synced: false,
        shutdown: shutdown.clone(),
    };
    let mut states_read = intents.subscribe();
    let mut leader = ctx.leader.clone();
    loop {
        let rediscover = manager.settings.rediscover;
        let waiting = !manager.unserved.is_empty();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = intents.named_changed.notified() => {}
            Ok(()) = states_read.changed() => {}
            Ok(()) = leader.changed() => {
                // A new leader reports afresh; a standby reports nothing.
                manager.reported.clear();
            }
            Some((kind, namespace, status)) = status_rx.recv() => manager.status(kind, namespace, status),
            _ = tokio::time::sleep(rediscover), if waiting => {
                let kinds: Vec<NamedKind> = manager.unserved.keys().cloned().collect();
                info!(kinds = kinds.len(), "asking discovery again for the kinds the cluster did not serve");
                manager.unserved.clear();
            }
        }
        if !intents.is_synced() {
            continue;
        }
        let named = intents.by_kind();
        manager.resolve(&named).await;
        manager.start_and_stop(&named);
        manager.report(&named).await;
        manager.clean_records(&named).await;
        if !manager.told_synced && manager.all_known(&named) {
            manager.told_synced = true;
            info!(
                kinds = manager.watched.len(),
                "every kind the states name is watched"
            );
            let _ = synced.send(KIND);
        }
    }
    for watched in manager.watched.values() {
        for running in watched.scopes.values() {
            running.handle.stop.cancel();
        }
    }
}

struct Manager {
    ctx: Arc<Context>,
    settings: Settings,
    events: Arc<Publisher>,
    status_tx: mpsc::UnboundedSender<(NamedKind, Option<String>, Status)>,
    watched: HashMap<NamedKind, Watched>,
    /// Kinds discovery did not find, until it is asked again.
    unserved: HashMap<NamedKind, Unserved>,
    /// What was reported not judged, per object, by this leader.
    reported: HashMap<ObjectId, NotJudged>,
    told_synced: bool,
    shutdown: CancellationToken,
}

impl Manager {
    /// Resolves every named kind not resolved yet, with one discovery round for all of them.
    async fn resolve(&mut self, named: &HashMap<NamedKind, Vec<(ObjectId, Arc<StateIntent>)>>) {
        let new: Vec<&NamedKind> = named
            .keys()
            .filter(|k| !self.watched.contains_key(*k) && !self.unserved.contains_key(*k))
            .collect();
        if new.is_empty() {
            return;
        }
        // One catalog per round: its documents are dropped with it.
        let catalog = Catalog::new(self.ctx.client.clone(), self.ctx.api_timeout);
        for kind in new {
            match catalog.resolve(&kind.api_version, &kind.kind).await {
                Ok(served) => {
                    info!(kind = %kind, resource = %served.resource.plural, namespaced = served.namespaced, "watching a kind the states name");
                    self.watched.insert(
                        kind.clone(),
                        Watched {
                            served,
                            scopes: HashMap::new(),
                        },
                    );
                }
                Err(unserved) => {
                    warn!(kind = %kind, why = %unserved, "a kind the states name cannot be watched; asking again later");
                    self.unserved.insert(kind.clone(), unserved);
                }
            }
        }
    }

    /// The namespaces (`None`: cluster-wide) `kind` is watched in, or why it is not watched.
    fn scopes_of(
        &self,
        kind: &NamedKind,
        served: &Served,
    ) -> Result<Vec<Option<String>>, NotJudged> {
        let not_watched = |why: &str| NotJudged {
            reason: "not_watched",
            why: why.to_owned(),
        };
        if !served.namespaced {
            return match &self.settings.namespace {
                Some(_) => Err(not_watched(
                    "cluster-scoped: judged when the operator runs cluster-wide (without --namespace)",
                )),
                None => Ok(vec![None]),
            };
        }
        let is_secret = kind.group().is_empty() && kind.kind == "Secret";
        match (&self.settings.namespace, is_secret, &self.settings.secrets) {
            (_, true, SecretScope::None) => Err(not_watched(
                "Secrets are not read: grant it (config/secrets) and set --secret-namespaces",
            )),
            (None, true, SecretScope::Namespaces(list)) => {
                Ok(list.iter().cloned().map(Some).collect())
            }
            (Some(ns), true, SecretScope::Namespaces(list)) => Ok(list
                .iter()
                .filter(|n| *n == ns)
                .cloned()
                .map(Some)
                .collect()),
            (namespace, _, _) => Ok(vec![namespace.clone()]),
        }
    }

    fn start_and_stop(&mut self, named: &HashMap<NamedKind, Vec<(ObjectId, Arc<StateIntent>)>>) {
        // A kind no state names any more: its watches retire (they end once their objects
        // are released); one named again before that keeps going.
        for (kind, watched) in &mut self.watched {
            let retire = !named.contains_key(kind);
            for running in watched.scopes.values() {
                running
                    .handle
                    .retire
                    .send_if_modified(|r| std::mem::replace(r, retire) != retire);
            }
            watched.scopes.retain(|_, r| !r.handle.is_finished());
        }
        self.watched
            .retain(|k, w| named.contains_key(k) || !w.scopes.is_empty());
        self.unserved.retain(|k, _| named.contains_key(k));
        let kinds: Vec<NamedKind> = self
            .watched
            .keys()
            .filter(|k| named.contains_key(*k))
            .cloned()
            .collect();
        for kind in kinds {
            let Some(served) = self.watched.get(&kind).map(|w| w.served.clone()) else {
                continue;
            };
            let scopes = self.scopes_of(&kind, &served).unwrap_or_default();
            let annotate = self.settings.annotate.contains(kind.group(), &kind.kind);
            let Some(watched) = self.watched.get_mut(&kind) else {
                continue;
            };
            for namespace in scopes {
                if watched.scopes.contains_key(&namespace) {
                    continue;
                }
                let scope = Arc::new(Scope {
                    kind: kind.clone(),
                    served: served.clone(),
                    namespace: namespace.clone(),
                    annotate,
                });
                let handle = named::spawn(
                    self.ctx.clone(),
                    scope,
                    self.status_tx.clone(),
                    &self.shutdown,
                );
                watched.scopes.insert(
                    namespace,
                    Running {
                        handle,
                        status: None,
                    },
                );
            }
        }
    }

    fn status(&mut self, kind: NamedKind, namespace: Option<String>, status: Status) {
        if let Some(running) = self
            .watched
            .get_mut(&kind)
            .and_then(|w| w.scopes.get_mut(&namespace))
        {
            running.status = Some(status);
        }
    }

    /// Whether every named kind is listed, forbidden, not watched or not served.
    fn all_known(&self, named: &HashMap<NamedKind, Vec<(ObjectId, Arc<StateIntent>)>>) -> bool {
        named.keys().all(|k| {
            self.unserved.contains_key(k)
                || self
                    .watched
                    .get(k)
                    .is_some_and(|w| w.scopes.values().all(|r| r.status.is_some()))
        })
    }

    /// Why `id` of `kind` is not judged, if it is not.
    fn not_judged(&self, kind: &NamedKind, id: &ObjectId) -> Option<NotJudged> {
        if let Some(unserved) = self.unserved.get(kind) {
            return Some(NotJudged {
                reason: "not_served",
                why: unserved.to_string(),
            });
        }
        let watched = self.watched.get(kind)?;
        let namespace = if watched.served.namespaced && id.namespace.is_empty() {
            "default"
        } else {
            id.namespace.as_str()
        };
        let scopes = match self.scopes_of(kind, &watched.served) {
            Ok(scopes) => scopes,
            Err(why) => return Some(why),
        };
        let scope = scopes
            .iter()
            .find(|s| s.as_deref().is_none_or(|s| s == namespace));
        let Some(scope) = scope else {
            let why = if kind.group().is_empty()
                && kind.kind == "Secret"
                && self.settings.namespace.is_none()
            {
                format!("namespace {namespace} is not among --secret-namespaces")
            } else {
                format!("namespace {namespace} is outside --namespace")
            };
            return Some(NotJudged {
                reason: "not_watched",
                why,
            });
        };
        match watched.scopes.get(scope).and_then(|r| r.status.as_ref()) {
            Some(Status::Forbidden(why)) => Some(NotJudged {
                reason: "forbidden",
                why: why.clone(),
            }),
            _ => None,
        }
    }

    /// Counts, per state, what is not judged, and warns of what newly is (the leader only).
    async fn report(&mut self, named: &HashMap<NamedKind, Vec<(ObjectId, Arc<StateIntent>)>>) {
        let mut now: HashMap<ObjectId, (NotJudged, Arc<StateIntent>, NamedKind)> = HashMap::new();
        let mut per_state: BTreeMap<Arc<StateId>, BTreeMap<&'static str, i64>> = BTreeMap::new();
        for (kind, objects) in named {
            for (id, intent) in objects {
                per_state.entry(intent.state.clone()).or_default();
                if let Some(why) = self.not_judged(kind, id) {
                    *per_state
                        .entry(intent.state.clone())
                        .or_default()
                        .entry(why.reason)
                        .or_insert(0) += 1;
                    now.insert(id.clone(), (why, intent.clone(), kind.clone()));
                }
            }
        }
        let series = &self.ctx.metrics.terraform_state_not_judged;
        // Helm releases have no state series.
        for (state, counts) in per_state.iter().filter(|(s, _)| !s.is_helm()) {
            for reason in ["not_served", "forbidden", "not_watched"] {
                let labels = [
                    state.namespace.as_str(),
                    &state.workspace,
                    &state.suffix,
                    reason,
                ];
                match counts.get(reason) {
                    Some(n) => series.with_label_values(&labels).set(*n),
                    None => {
                        let _ = series.remove_label_values(&labels);
                    }
                }
            }
        }
        self.reported
            .retain(|id, why| now.get(id).is_some_and(|(w, _, _)| w == why));
        if !self.ctx.is_leader() {
            return;
        }
        // One Warning per state, kind and reason, naming the addresses.
        let mut fresh: BTreeMap<(Arc<StateId>, NamedKind, NotJudged), Vec<String>> =
            BTreeMap::new();
        // What the Warning is on: the state's Secret, or the release's record.
        let mut secrets: BTreeMap<Arc<StateId>, String> = BTreeMap::new();
        for (id, (why, intent, kind)) in &now {
            if self.reported.contains_key(id) {
                continue;
            }
            secrets.entry(intent.state.clone()).or_insert_with(|| {
                intent
                    .helm_record()
                    .unwrap_or_else(|| intent.state.secret_name())
            });
            fresh
                .entry((intent.state.clone(), kind.clone(), why.clone()))
                .or_default()
                .push(format!("{} ({id})", intent.address()));
        }
        for ((state, kind, why), mut addresses) in fresh {
            addresses.sort();
            let n = addresses.len();
            let mut listed = addresses
                .iter()
                .take(ADDRESSES_PER_EVENT)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if n > ADDRESSES_PER_EVENT {
                listed.push_str(&format!(" and {} more", n - ADDRESSES_PER_EVENT));
            }
            let note = format!("not judged ({kind}): {}: {listed}", why.why);
            warn!(state = %state, kind = %kind, objects = n, why = %why.why, "objects a state names are not judged");
            let secret = secrets
                .get(&state)
                .cloned()
                .unwrap_or_else(|| state.secret_name());
            self.publish(&state, secret, &note).await;
        }
        for (id, (why, _, _)) in now {
            self.reported.insert(id, why);
        }
    }

    async fn publish(&self, state: &StateId, secret: String, note: &str) {
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Secret".into()),
            namespace: Some(state.namespace.clone()),
            name: Some(secret),
            ..ObjectReference::default()
        };
        let publish = self.events.publish(
            reference,
            EventType::Warning,
            contract::reason::NOT_JUDGED,
            "ReadState",
            note,
        );
        match tokio::time::timeout(EVENT_TIMEOUT, publish).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => warn!(
                error = &error as &dyn std::error::Error,
                "cannot publish event"
            ),
            Err(_) => warn!("publishing event timed out"),
        }
    }

    /// Deletes the verdict records of objects no state names any more (a state deleted
    /// while no replica was leading): the leader only.
    async fn clean_records(&self, named: &HashMap<NamedKind, Vec<(ObjectId, Arc<StateIntent>)>>) {
        let Some(records) = &self.ctx.records else {
            return;
        };
        if !self.ctx.is_leader() || !records.is_synced() {
            return;
        }
        let names: HashSet<&ObjectId> = named.values().flatten().map(|(id, _)| id).collect();
        for id in records.objects() {
            // A custom resource named without a namespace is recorded in `default`.
            let unscoped = ObjectId {
                namespace: String::new(),
                ..id.clone()
            };
            if names.contains(&id) || (id.namespace == "default" && names.contains(&unscoped)) {
                continue;
            }
            match records.delete(&id, self.ctx.api_timeout).await {
                Ok(()) => {
                    info!(object = %id, "no state names it any more; its verdict record is deleted")
                }
                Err(error) => warn!(
                    error = &error as &dyn std::error::Error,
                    "cannot delete a verdict record"
                ),
            }
        }
    }
}
