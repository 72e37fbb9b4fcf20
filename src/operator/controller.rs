//! Wiring only: one kube-rs Controller per kind over a label-selected, trimmed watch,
//! and the handling of objects that leave the watch (deleted or opted out).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{Stream, StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::core::contract;
use crate::core::fingerprint::Fingerprint;
use crate::core::object::ObjectId;
use crate::core::verdict;
use crate::operator::reconcile::{self, Context};
use crate::operator::summary::{self, Cached};

/// Attempts to tell opt-out from deletion before giving up on one object.
const GONE_ATTEMPTS: u32 = 5;

pub struct Options {
    pub namespace: Option<String>,
    pub concurrency: u16,
    /// Objects to re-decide because an HPA started or stopped scaling them.
    pub triggers: Option<mpsc::UnboundedReceiver<(String, String)>>,
}

/// Runs the controller for kind `K` until `shutdown`. `synced` is told once the first
/// list has completed.
pub async fn run<K: Fingerprint>(
    ctx: Arc<Context>,
    opts: Options,
    synced: mpsc::UnboundedSender<&'static str>,
    shutdown: CancellationToken,
) {
    let kind = <K as k8s_openapi::Resource>::KIND;
    let api: Api<K> = match &opts.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let config = watcher::Config::default()
        .labels(contract::ENABLED_SELECTOR)
        .any_semantic();
    let (reader, writer) = reflector::store::<Cached<K>>();
    let (gone_tx, gone_rx) = mpsc::unbounded_channel::<ObjectId>();

    let mut tracker = Tracker::default();
    let watch_ctx = ctx.clone();
    // Told on the first completed list. (Not Store::wait_until_ready: its one-shot wakes
    // only the last of several waiters, and the Controller already waits on it.)
    let mut synced = Some(synced);
    let has_synced = Arc::new(AtomicBool::new(false));
    let has_synced_in_stream = has_synced.clone();
    let stream = watcher(api, config)
        .default_backoff()
        .map_ok({
            let opts = ctx.cache_options(kind);
            move |event| summary::event::<K>(event, &opts)
        })
        .reflect(writer)
        .inspect(move |event| match event {
            Ok(event) => {
                watch_ctx.readiness.watch_ok(kind);
                for key in tracker.observe(kind, event) {
                    let _ = gone_tx.send(key);
                }
                watch_ctx
                    .metrics
                    .resources_watched
                    .with_label_values(&[kind])
                    .set(tracker.len() as i64);
                if matches!(event, watcher::Event::InitDone)
                    && let Some(tx) = synced.take()
                {
                    info!(kind, objects = tracker.len(), "cache synced");
                    has_synced_in_stream.store(true, Ordering::Relaxed);
                    let _ = tx.send(kind);
                }
            }
            Err(error) => {
                watch_ctx.readiness.watch_failed(kind);
                watch_ctx.api_error(kind, "watch");
                warn!(
                    kind,
                    error = error as &dyn std::error::Error,
                    "watch failed; retrying with backoff"
                );
            }
        })
        .touched_objects();

    tokio::spawn(handle_gone::<K>(ctx.clone(), gone_rx, shutdown.clone()));

    let retriggered = futures::stream::unfold(opts.triggers, |rx| async move {
        let mut rx = rx?;
        let (namespace, name) = rx.recv().await?;
        Some((ObjectRef::new(&name).within(&namespace), Some(rx)))
    });
    // Until the HPAs are listed reconciles wait; their first list re-decides everything.
    let hpa_synced = match &ctx.scalers {
        Some(scalers) => became_true(scalers.subscribe()).left_stream(),
        None => futures::stream::empty().right_stream(),
    };
    let grace = ctx.api_timeout;
    let stop = shutdown.clone();
    let controller = Controller::for_stream(stream, reader)
        .with_config(controller::Config::default().concurrency(opts.concurrency))
        .reconcile_all_on(became_true(ctx.leader.clone()))
        .reconcile_all_on(hpa_synced)
        .reconcile_on(retriggered)
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile::reconcile::<K>, reconcile::error_policy::<K>, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => debug!(object = %obj, "reconciled"),
                // Deleted objects still trigger once; they are handled by handle_gone.
                Err(controller::Error::ObjectNotFound(obj)) => {
                    debug!(object = %obj, "object left the cache")
                }
                Err(controller::Error::ReconcilerFailed(..)) => {} // logged by error_policy
                Err(error) => debug!(
                    kind,
                    error = &error as &dyn std::error::Error,
                    "controller stream error"
                ),
            }
        });
    tokio::select! {
        _ = controller => info!(kind, "controller stopped"),
        _ = async {
            stop.cancelled().await;
            // The Controller holds its runner until the cache is ready but stops watching on
            // shutdown, so a cache that never synced would wait forever: nothing is in flight
            // there. A synced one may finish in-flight reconciles, bounded by the API timeout.
            if has_synced.load(Ordering::Relaxed) {
                tokio::time::sleep(grace).await;
            }
        } => warn!(kind, "controller did not wind down in time; stopped"),
    }
}

/// Fires once each time the flag turns true: this replica became leader, or the HPAs were
/// listed; either way every object is decided.
fn became_true(rx: watch::Receiver<bool>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold((rx, false), |(mut rx, mut was)| async move {
        loop {
            let now = *rx.borrow_and_update();
            if now && !was {
                return Some(((), (rx, true)));
            }
            was = now;
            rx.changed().await.ok()?;
        }
    })
}

/// Which objects the watch holds, to notice the ones that leave it: a Delete event, or
/// absence from a relist (after a 410 Gone or a reconnect, deletes are not replayed).
#[derive(Default)]
struct Tracker {
    known: HashSet<(String, String)>,
    relisting: Option<HashSet<(String, String)>>,
}

impl Tracker {
    fn observe<R: kube::Resource>(
        &mut self,
        kind: &'static str,
        event: &watcher::Event<R>,
    ) -> Vec<ObjectId> {
        let id = |o: &R| (o.namespace().unwrap_or_default(), o.name_any());
        let key = |(namespace, name): (String, String)| ObjectId {
            kind: kind.to_owned(),
            namespace,
            name,
        };
        match event {
            watcher::Event::Apply(o) => {
                self.known.insert(id(o));
                Vec::new()
            }
            watcher::Event::Delete(o) => {
                self.known.remove(&id(o));
                vec![key(id(o))]
            }
            watcher::Event::Init => {
                self.relisting = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(o) => {
                self.relisting
                    .get_or_insert_with(HashSet::new)
                    .insert(id(o));
                Vec::new()
            }
            watcher::Event::InitDone => {
                let fresh = self.relisting.take().unwrap_or_default();
                let gone: Vec<_> = self.known.difference(&fresh).cloned().map(key).collect();
                self.known = fresh;
                gone
            }
        }
    }

    fn len(&self) -> usize {
        self.known.len()
    }
}

/// An object left the label-selected watch: it was deleted, or its label was removed
/// (opt-out). Its metrics go either way; on opt-out the leader also removes the
/// operator's annotations. A GET tells the two apart.
async fn handle_gone<K: Fingerprint>(
    ctx: Arc<Context>,
    mut gone: mpsc::UnboundedReceiver<ObjectId>,
    shutdown: CancellationToken,
) {
    loop {
        let key = tokio::select! {
            _ = shutdown.cancelled() => return,
            key = gone.recv() => match key { Some(k) => k, None => return },
        };
        ctx.forget(&key);
        if !ctx.is_leader() {
            continue;
        }
        let ctx = ctx.clone();
        tokio::spawn(async move {
            for attempt in 1..=GONE_ATTEMPTS {
                match clean_up_opt_out::<K>(&ctx, &key).await {
                    Ok(()) => return,
                    Err(error) => {
                        let delay = reconcile::backoff(attempt, 0);
                        warn!(object = %key, attempt, error = &error as &dyn std::error::Error, retry_in = ?delay, "cannot check an object that left the watch");
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        });
    }
}

async fn clean_up_opt_out<K: Fingerprint>(
    ctx: &Context,
    key: &ObjectId,
) -> Result<(), reconcile::Error> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &key.namespace);
    // Labels and annotations are all this needs: fetch metadata only.
    let obj = ctx.call(key, "get", api.get_metadata(&key.name)).await?;
    let Some(obj) = obj else {
        info!(object = %key, "deleted; metrics dropped");
        return Ok(());
    };
    if obj
        .labels()
        .get(contract::ENABLED_LABEL)
        .map(String::as_str)
        == Some("true")
    {
        // Still opted in (it left and came back): the watch brings it back.
        return Ok(());
    }
    let patch = verdict::cleanup_patch(obj.annotations());
    if !patch.is_empty() && ctx.is_leader() {
        ctx.patch_annotations::<K>(key, &patch).await?;
        info!(object = %key, "opted out; annotations removed");
    }
    Ok(())
}
