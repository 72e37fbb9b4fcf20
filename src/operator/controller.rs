//! The spec-hash flow: one kube-rs Controller per fingerprinted kind over a label-selected
//! watch (trimmed to a summary as it is cached), what re-triggers a reconcile (the leader, the
//! HPA index, a state that starts or stops naming a labelled object), and objects that leave
//! the watch (deleted or opted out). Objects a Terraform state names are judged by the
//! controllers of named objects (`operator/named/`).

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
use tracing::{Instrument, debug, info, warn};

use crate::core::contract;
use crate::core::fingerprint::Fingerprint;
use crate::core::object::ObjectId;
use crate::core::verdict;
use crate::operator::reconcile::{self, Context};
use crate::operator::summary::{self, Cached};
use crate::operator::watch_index::WatchIndex;

/// Attempts to tell opt-out from deletion before giving up on one object.
const GONE_ATTEMPTS: u32 = 5;

pub struct Options {
    pub namespace: Option<String>,
    pub concurrency: u16,
    /// Objects to re-decide because an HPA started or stopped scaling them, or a state
    /// started or stopped naming them.
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
    let group = ObjectId::new(kind, "", "").group;

    // Which objects the watch holds, to notice the ones that leave it.
    let mut tracker = WatchIndex::<()>::default();
    let watch_ctx = ctx.clone();
    // Told on the first completed list. (Not Store::wait_until_ready: its one-shot wakes
    // only the last of several waiters, and the Controller already waits on it.)
    let mut synced = Some(synced);
    let has_synced = Arc::new(AtomicBool::new(false));
    let has_synced_in_stream = has_synced.clone();
    let stream = watcher(api.clone(), config)
        .default_backoff()
        .map_ok({
            let opts = ctx.cache_options(kind);
            move |event| summary::event::<K>(event, &opts)
        })
        .reflect(writer)
        .inspect(move |event| match event {
            Ok(event) => {
                watch_ctx.readiness.watch_ok(kind);
                for change in tracker.observe(event, |_| Some(())) {
                    let (namespace, name) = change.key;
                    if change.new.is_none() {
                        let key = ObjectId::new(kind, &namespace, &name);
                        // At once, so that no series outlives the object.
                        if !watch_ctx.intents.as_ref().is_some_and(|i| i.names(&key)) {
                            watch_ctx.forget(&key);
                        }
                        let _ = gone_tx.send(key);
                    }
                }
                watch_ctx
                    .metrics
                    .resources_watched
                    .with_label_values(&[group.as_str(), kind, "spec-hash"])
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
                if watch_ctx.readiness.watch_error(kind, error) {
                    watch_ctx.api_error(&ObjectId::new(kind, "", ""), "watch");
                    warn!(
                        kind,
                        error = error as &dyn std::error::Error,
                        "watch failed; retrying with backoff"
                    );
                }
            }
        })
        .touched_objects();

    let gone_checks = tokio::spawn(
        check_gone::<K>(
            ctx.clone(),
            gone_rx,
            usize::from(opts.concurrency),
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("gone_checks", kind)),
    );

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
    // Until the states are read likewise; their first read re-decides everything.
    let states_read = match &ctx.intents {
        Some(intents) => became_true(intents.subscribe()).left_stream(),
        None => futures::stream::empty().right_stream(),
    };
    let grace = ctx.api_timeout;
    let stop = shutdown.clone();
    let controller = Controller::for_stream(stream, reader)
        .with_config(controller::Config::default().concurrency(opts.concurrency))
        .reconcile_all_on(became_true(ctx.leader.clone()))
        .reconcile_all_on(hpa_synced)
        .reconcile_all_on(states_read)
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
    // The checks end with the controller; a panic in them is reported, not lost.
    gone_checks.abort();
    if let Err(error) = gone_checks.await
        && error.is_panic()
    {
        warn!(
            kind,
            error = &error as &dyn std::error::Error,
            "checking objects that left the watch panicked"
        );
    }
}

/// Fires once each time the flag turns true: this replica became leader, or the HPAs were
/// listed; either way every object is decided.
pub(crate) fn became_true(rx: watch::Receiver<bool>) -> impl Stream<Item = ()> + Send + 'static {
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

/// Objects that left the label-selected watch: deleted, or their label removed (opt-out).
/// Their series were dropped when they left; here the leader tells the two apart with a
/// GET and, on opt-out, removes the operator's annotations — at most `concurrency` checks
/// at a time, each retried with backoff, all dropped on shutdown.
async fn check_gone<K: Fingerprint>(
    ctx: Arc<Context>,
    gone: mpsc::UnboundedReceiver<ObjectId>,
    concurrency: usize,
    shutdown: CancellationToken,
) {
    let keys = futures::stream::unfold(gone, |mut rx| async move {
        let key = rx.recv().await?;
        Some((key, rx))
    });
    let checks = keys.for_each_concurrent(concurrency.max(1), |key| {
        let span = tracing::info_span!("left_watch", object = %key);
        check_one_gone::<K>(ctx.clone(), key).instrument(span)
    });
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = checks => {}
    }
}

async fn check_one_gone<K: Fingerprint>(ctx: Arc<Context>, key: ObjectId) {
    // An object a state names keeps what the controller of named objects wrote on it.
    if !ctx.is_leader() || ctx.intents.as_ref().is_some_and(|i| i.names(&key)) {
        return;
    }
    for attempt in 1..=GONE_ATTEMPTS {
        match clean_up_opt_out::<K>(&ctx, &key).await {
            Ok(()) => return,
            Err(error) => {
                let delay = reconcile::backoff(attempt, 0);
                warn!(
                    attempt,
                    error = &error as &dyn std::error::Error,
                    retry_in = ?delay,
                    "cannot check an object that left the watch"
                );
                tokio::time::sleep(delay).await;
            }
        }
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
