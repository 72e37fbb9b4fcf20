//! HorizontalPodAutoscaler awareness: which Deployments and StatefulSets an HPA scales, so
//! that their `replicas` is not taken for intent. HPAs are watched read-only through
//! `autoscaling/v1` (served by every Kubernetes version the operator supports, and enough:
//! only `scaleTargetRef` is read); only each HPA's target is kept.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::core::ignore::scaled::{KIND, SCALABLE, target_of};
use crate::core::object::ObjectId;
use crate::operator::http::Readiness;

/// The targets of the HPAs in the cluster, shared by the controllers.
pub struct Scalers {
    targets: RwLock<HashMap<ObjectId, BTreeSet<String>>>,
    synced: watch::Sender<bool>,
}

impl Default for Scalers {
    fn default() -> Self {
        Scalers {
            targets: RwLock::default(),
            synced: watch::Sender::new(false),
        }
    }
}

impl Scalers {
    /// The name of an HPA scaling `kind` `namespace/name`, if one does.
    pub fn scaler_of(&self, kind: &str, namespace: &str, name: &str) -> Option<String> {
        let key = ObjectId {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        let targets = self.targets.read().unwrap_or_else(|p| p.into_inner());
        targets.get(&key).and_then(|hpas| hpas.first().cloned())
    }

    /// Whether the HPAs have been listed once: before that, no verdict can be trusted.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.synced.subscribe()
    }

    fn replace(&self, by_hpa: &HashMap<(String, String), ObjectId>) {
        let mut targets: HashMap<ObjectId, BTreeSet<String>> = HashMap::new();
        for ((_, hpa), target) in by_hpa {
            targets
                .entry(target.clone())
                .or_default()
                .insert(hpa.clone());
        }
        *self.targets.write().unwrap_or_else(|p| p.into_inner()) = targets;
    }
}

/// Where a change of an HPA's target is sent: one channel per scalable kind, to that
/// kind's controller, which then re-decides the object.
pub type Triggers = HashMap<&'static str, mpsc::UnboundedSender<(String, String)>>;

/// Watches HPAs until `shutdown`, keeping `scalers` current and re-triggering every object
/// whose HPA came, went or changed target. `synced` is told after the first list.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    scalers: Arc<Scalers>,
    triggers: Triggers,
    readiness: Readiness,
    synced: mpsc::UnboundedSender<&'static str>,
    shutdown: CancellationToken,
) {
    let api: Api<HorizontalPodAutoscaler> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .boxed();
    let mut index = Index::default();
    let trigger = |t: &ObjectId| {
        if let Some(tx) = SCALABLE
            .iter()
            .find(|k| **k == t.kind)
            .and_then(|k| triggers.get(k))
        {
            let _ = tx.send((t.namespace.clone(), t.name.clone()));
        }
    };
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = stream.next() => match event {
                Some(event) => event,
                None => return,
            },
        };
        let event = match event {
            Ok(event) => {
                readiness.watch_ok(KIND);
                event
            }
            Err(error) => {
                readiness.watch_failed(KIND);
                warn!(
                    kind = KIND,
                    error = &error as &dyn std::error::Error,
                    "watch failed; retrying with backoff (tfdrift needs list and watch on horizontalpodautoscalers.autoscaling, or --ignore-hpa-replicas=false)"
                );
                continue;
            }
        };
        let changed = index.observe(&event);
        let first_sync = !scalers.is_synced() && matches!(event, watcher::Event::InitDone);
        if !changed.is_empty() || first_sync {
            scalers.replace(&index.by_hpa);
        }
        if first_sync {
            info!(kind = KIND, scaled = index.by_hpa.len(), "cache synced");
            scalers.synced.send_replace(true);
            let _ = synced.send(KIND);
        } else {
            for target in &changed {
                debug!(
                    ?target,
                    "an HPA came, went or changed target; re-deciding it"
                );
                trigger(target);
            }
        }
    }
}

/// Each HPA's target, from the watch: what a watch event changes.
#[derive(Default)]
struct Index {
    by_hpa: HashMap<(String, String), ObjectId>,
    /// Filled during a (re)list; replaces `by_hpa` when it completes.
    relist: Option<HashMap<(String, String), ObjectId>>,
}

impl Index {
    /// Applies `event`; returns the targets whose HPAs changed (sorted, once each). A
    /// relist is diffed against what was known: HPAs deleted while the watch was down are
    /// noticed there.
    fn observe(&mut self, event: &watcher::Event<HorizontalPodAutoscaler>) -> Vec<ObjectId> {
        let id = |h: &HorizontalPodAutoscaler| (h.namespace().unwrap_or_default(), h.name_any());
        let mut changed: Vec<ObjectId> = Vec::new();
        match event {
            watcher::Event::Apply(hpa) => {
                let new = target_of(hpa);
                let old = match &new {
                    Some(t) => self.by_hpa.insert(id(hpa), t.clone()),
                    None => self.by_hpa.remove(&id(hpa)),
                };
                if old != new {
                    changed.extend(old.into_iter().chain(new));
                }
            }
            watcher::Event::Delete(hpa) => changed.extend(self.by_hpa.remove(&id(hpa))),
            watcher::Event::Init => self.relist = Some(HashMap::new()),
            watcher::Event::InitApply(hpa) => {
                if let Some(t) = target_of(hpa) {
                    self.relist
                        .get_or_insert_with(HashMap::new)
                        .insert(id(hpa), t);
                }
            }
            watcher::Event::InitDone => {
                let fresh = self.relist.take().unwrap_or_default();
                for (hpa, t) in &fresh {
                    if self.by_hpa.get(hpa) != Some(t) {
                        changed.push(t.clone());
                    }
                }
                for (hpa, t) in &self.by_hpa {
                    if fresh.get(hpa) != Some(t) {
                        changed.push(t.clone());
                    }
                }
                self.by_hpa = fresh;
            }
        }
        changed.sort();
        changed.dedup();
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hpa(name: &str, target: &str) -> HorizontalPodAutoscaler {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "maxReplicas": 3}
        }))
        .unwrap()
    }

    fn deployment(name: &str) -> ObjectId {
        ObjectId {
            kind: "Deployment".into(),
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    #[test]
    fn the_index_reports_every_target_whose_hpa_changed() {
        use watcher::Event;
        let mut index = Index::default();
        assert!(index.observe(&Event::Init).is_empty());
        assert!(index.observe(&Event::InitApply(hpa("a", "web"))).is_empty());
        assert!(index.observe(&Event::InitApply(hpa("b", "api"))).is_empty());
        assert_eq!(
            index.observe(&Event::InitDone),
            [deployment("api"), deployment("web")]
        );
        // A status update: same target, nothing to re-decide.
        assert!(index.observe(&Event::Apply(hpa("a", "web"))).is_empty());
        // Retargeted: both the old and the new target.
        assert_eq!(
            index.observe(&Event::Apply(hpa("a", "other"))),
            [deployment("other"), deployment("web")]
        );
        assert_eq!(
            index.observe(&Event::Delete(hpa("a", "other"))),
            [deployment("other")]
        );
        // A relist after the watch was down: `b` was deleted meanwhile, `c` created.
        index.observe(&Event::Init);
        index.observe(&Event::InitApply(hpa("c", "new")));
        assert_eq!(
            index.observe(&Event::InitDone),
            [deployment("api"), deployment("new")]
        );
        assert_eq!(index.by_hpa.len(), 1);
    }
}
