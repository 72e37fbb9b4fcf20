//! HorizontalPodAutoscaler awareness: which Deployments and StatefulSets an HPA scales, so
//! that their `replicas` is not taken for intent. HPAs are watched read-only through
//! `autoscaling/v1` (served by every Kubernetes version the operator supports, and enough:
//! only `scaleTargetRef` is read); only each HPA's target is kept.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::core::ignore::scaled::{KIND, SCALABLE, target_of};
use crate::core::object::ObjectId;
use crate::operator::http::Readiness;
use crate::operator::watch_index::WatchIndex;

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
            group: "apps".to_owned(),
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

    fn replace(&self, by_hpa: &WatchIndex<ObjectId>) {
        let mut targets: HashMap<ObjectId, BTreeSet<String>> = HashMap::new();
        for ((_, hpa), target) in by_hpa.values() {
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

/// Who hears of a target whose HPA came, went or changed: the spec-hash flow's controllers,
/// and those of named objects.
pub struct Listeners {
    pub spec_hash: Triggers,
    pub named: Option<Arc<crate::operator::intents::Intents>>,
}

/// Watches HPAs until `shutdown`, keeping `scalers` current and re-triggering every object
/// whose HPA came, went or changed target. `synced` is told after the first list.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    scalers: Arc<Scalers>,
    listeners: Listeners,
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
    let mut index = WatchIndex::default();
    let trigger = |t: &ObjectId| {
        if let Some(tx) = SCALABLE
            .iter()
            .find(|k| **k == t.kind)
            .and_then(|k| listeners.spec_hash.get(k))
        {
            let _ = tx.send((t.namespace.clone(), t.name.clone()));
        }
        if let Some(named) = &listeners.named {
            named.trigger(t);
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
                if !readiness.watch_error(KIND, &error) {
                    continue;
                }
                warn!(
                    kind = KIND,
                    error = &error as &dyn std::error::Error,
                    concat!(
                        "watch failed; retrying with backoff (tfdrift needs list and watch on ",
                        "horizontalpodautoscalers.autoscaling, or --ignore-hpa-replicas=false)"
                    )
                );
                continue;
            }
        };
        let changed = observe(&mut index, &event);
        let first_sync = !scalers.is_synced() && matches!(event, watcher::Event::InitDone);
        if !changed.is_empty() || first_sync {
            scalers.replace(&index);
        }
        if first_sync {
            info!(kind = KIND, scaled = index.len(), "cache synced");
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

/// Applies `event` to the index of each HPA's target; returns the targets whose HPAs came,
/// went or changed target (old and new, sorted, once each). A status update changes none.
fn observe(
    index: &mut WatchIndex<ObjectId>,
    event: &watcher::Event<HorizontalPodAutoscaler>,
) -> Vec<ObjectId> {
    let mut targets: Vec<ObjectId> = index
        .observe(event, target_of)
        .into_iter()
        .flat_map(|c| c.old.into_iter().chain(c.new))
        .collect();
    targets.sort();
    targets.dedup();
    targets
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
        ObjectId::new("Deployment", "ns", name)
    }

    #[test]
    fn the_index_reports_every_target_whose_hpa_changed() {
        use watcher::Event;
        let mut index = WatchIndex::default();
        assert!(observe(&mut index, &Event::Init).is_empty());
        assert!(observe(&mut index, &Event::InitApply(hpa("a", "web"))).is_empty());
        assert!(observe(&mut index, &Event::InitApply(hpa("b", "api"))).is_empty());
        assert_eq!(
            observe(&mut index, &Event::InitDone),
            [deployment("api"), deployment("web")]
        );
        // A status update: same target, nothing to re-decide.
        assert!(observe(&mut index, &Event::Apply(hpa("a", "web"))).is_empty());
        // Retargeted: both the old and the new target.
        assert_eq!(
            observe(&mut index, &Event::Apply(hpa("a", "other"))),
            [deployment("other"), deployment("web")]
        );
        assert_eq!(
            observe(&mut index, &Event::Delete(hpa("a", "other"))),
            [deployment("other")]
        );
        // A relist after the watch was down: `b` was deleted meanwhile, `c` created.
        observe(&mut index, &Event::Init);
        observe(&mut index, &Event::InitApply(hpa("c", "new")));
        assert_eq!(
            observe(&mut index, &Event::InitDone),
            [deployment("api"), deployment("new")]
        );
        assert_eq!(index.len(), 1);
    }
}
