//! One kube-rs Controller per kind: its watch (label-selected, or every object when Terraform
//! states are read; trimmed to a summary as it is cached), what re-triggers a reconcile (the
//! leader, the HPA index, the states), objects fetched again when their summary no longer
//! fits what judges them, and objects that leave the watch (deleted or opted out).

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
    /// Watch every object of the kind, not only labelled ones: Terraform states name
    /// objects that carry no label.
    pub all_objects: bool,
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
    let config = if opts.all_objects {
        watcher::Config::default().any_semantic()
    } else {
        watcher::Config::default()
            .labels(contract::ENABLED_SELECTOR)
            .any_semantic()
    };
    let (reader, writer) = reflector::store::<Cached<K>>();
    let (gone_tx, gone_rx) = mpsc::unbounded_channel::<ObjectId>();
    // Objects whose summary no longer fits what the states say (cached by identity only
    // before a state named them, or hashed under other ignore rules): fetched again.
    let (refetch, refetch_rx) = Refetch::<K>::new();
    let outdated = {
        let intents = ctx.intents.clone();
        move |c: &Cached<K>| {
            intents.as_ref().is_some_and(|i| {
                let state = i.get(&reconcile::object_id(c));
                c.outdated(state.as_ref().map(|s| &s.intent.ignore))
            })
        }
    };

    // Which objects the watch holds, to notice the ones that leave it.
    let mut tracker = WatchIndex::<()>::default();
    let watch_ctx = ctx.clone();
    // Told on the first completed list. (Not Store::wait_until_ready: its one-shot wakes
    // only the last of several waiters, and the Controller already waits on it.)
    let mut synced = Some(synced);
    let has_synced = Arc::new(AtomicBool::new(false));
    let has_synced_in_stream = has_synced.clone();
    let watch = watcher(api.clone(), config).default_backoff();
    // With states to read, the first list waits for them: the objects they name are then
    // summarised in full as they are listed, not fetched again one by one.
    let states_read_once = ctx.intents.as_ref().map(|i| i.subscribe());
    let watch = futures::stream::once(async move {
        if let Some(mut rx) = states_read_once {
            let _ = rx.wait_for(|read| *read).await;
        }
        watch
    })
    .flatten();
    let upgrades = upgrades::<K>(
        ctx.clone(),
        reader.clone(),
        outdated.clone(),
        refetch.clone(),
        refetch_rx,
        usize::from(opts.concurrency),
    );
    let upgrade_store = reader.clone();
    let upgrade_outdated = outdated.clone();
    let refetch_on_trigger = refetch.clone();
    let stream = futures::stream::select(watch, upgrades)
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
                    let key = ObjectId::new(kind, &namespace, &name);
                    if let Some(intents) = &watch_ctx.intents {
                        intents.object_seen(&key);
                    }
                    if change.new.is_none() {
                        // At once, so that no series outlives the object.
                        watch_ctx.forget(&key);
                        let _ = gone_tx.send(key);
                    }
                }
                watch_ctx
                    .metrics
                    .resources_watched
                    .with_label_values(&[kind])
                    .set(tracker.len() as i64);
                match event {
                    watcher::Event::Apply(c) if outdated(c) => refetch.request(c),
                    watcher::Event::InitDone => {
                        // A state read while the list ran may have outdated what it cached.
                        for c in upgrade_store.state() {
                            if outdated(&c) {
                                refetch.request(&c);
                            }
                        }
                        if let Some(intents) = &watch_ctx.intents {
                            let store = upgrade_store.clone();
                            intents.kind_synced(
                                kind,
                                Box::new(move |namespace, name| {
                                    store.get(&ObjectRef::new(name).within(namespace)).is_some()
                                }),
                            );
                        }
                    }
                    _ => {}
                }
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
                    watch_ctx.api_error(kind, "watch");
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

    let trigger_store = reader.clone();
    let retriggered = futures::stream::unfold(opts.triggers, |rx| async move {
        let mut rx = rx?;
        let (namespace, name) = rx.recv().await?;
        Some((ObjectRef::new(&name).within(&namespace), Some(rx)))
    })
    .filter(move |r| {
        // An outdated summary has nothing to decide with: the object is fetched, and its
        // arrival in the cache triggers the reconcile.
        let cached = trigger_store
            .get(r)
            .filter(|c| upgrade_outdated(c.as_ref()));
        if let Some(c) = &cached {
            refetch_on_trigger.request(c);
        }
        futures::future::ready(cached.is_none())
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

/// Objects to fetch again, each queued once while a fetch of it is under way.
struct Refetch<K: Fingerprint> {
    tx: mpsc::UnboundedSender<ObjectRef<Cached<K>>>,
    queued: Arc<std::sync::Mutex<std::collections::HashSet<(String, String)>>>,
}

impl<K: Fingerprint> Clone for Refetch<K> {
    fn clone(&self) -> Self {
        Refetch {
            tx: self.tx.clone(),
            queued: self.queued.clone(),
        }
    }
}

impl<K: Fingerprint> Refetch<K> {
    fn new() -> (Self, mpsc::UnboundedReceiver<ObjectRef<Cached<K>>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::default();
        (Refetch { tx, queued }, rx)
    }

    fn key(r: &ObjectRef<Cached<K>>) -> (String, String) {
        (r.namespace.clone().unwrap_or_default(), r.name.clone())
    }

    fn request(&self, cached: &Cached<K>) {
        let r = ObjectRef::from_obj(cached);
        let fresh = reconcile::lock(&self.queued).insert(Self::key(&r));
        if fresh {
            let _ = self.tx.send(r);
        }
    }

    fn done(&self, r: &ObjectRef<Cached<K>>) {
        reconcile::lock(&self.queued).remove(&Self::key(r));
    }
}

/// Fetches objects whose summary is outdated (see [`Cached::outdated`]), at most
/// `concurrency` at a time; yields each as a watch event for the cache if its entry is
/// still the outdated one it was fetched for. An entry the watch changed meanwhile is
/// fetched again if it is still outdated: the GET may have returned an older object.
fn upgrades<K: Fingerprint>(
    ctx: Arc<Context>,
    store: reflector::Store<Cached<K>>,
    outdated: impl Fn(&Cached<K>) -> bool + Clone + Send + Sync + 'static,
    refetch: Refetch<K>,
    requests: mpsc::UnboundedReceiver<ObjectRef<Cached<K>>>,
    concurrency: usize,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static {
    futures::stream::unfold(requests, |mut rx| async move {
        let r = rx.recv().await?;
        Some((r, rx))
    })
    .map({
        let (store, outdated) = (store.clone(), outdated.clone());
        move |r| fetch_again(ctx.clone(), store.clone(), outdated.clone(), r)
    })
    .buffer_unordered(concurrency.max(1))
    .filter_map(move |(r, fetched)| {
        // Checked as the event enters the cache, not when the GET returned.
        refetch.done(&r);
        let event = fetched.and_then(|(version, obj)| {
            let entry = store.get(&r).filter(|c| outdated(c.as_ref()))?;
            if entry.metadata.resource_version == version {
                Some(Ok(watcher::Event::Apply(obj)))
            } else {
                refetch.request(&entry);
                None
            }
        });
        futures::future::ready(event)
    })
}

/// One object of [`upgrades`]: the resourceVersion of the outdated entry it was fetched
/// for and the object, unless it is gone, no longer outdated, or could not be fetched in
/// [`GONE_ATTEMPTS`] tries (it is then judged when it next changes or is triggered).
async fn fetch_again<K: Fingerprint>(
    ctx: Arc<Context>,
    store: reflector::Store<Cached<K>>,
    outdated: impl Fn(&Cached<K>) -> bool,
    r: ObjectRef<Cached<K>>,
) -> (ObjectRef<Cached<K>>, Option<(Option<String>, K)>) {
    let kind = <K as k8s_openapi::Resource>::KIND;
    let key = ObjectId::new(kind, r.namespace.as_deref().unwrap_or_default(), &r.name);
    // Namespaced whatever the watch is: every kind tfdrift watches is.
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &key.namespace);
    for attempt in 1..=GONE_ATTEMPTS {
        let Some(entry) = store.get(&r).filter(|c| outdated(c.as_ref())) else {
            return (r, None);
        };
        let version = entry.metadata.resource_version.clone();
        match ctx.call(&key, "get", api.get(&key.name)).await {
            Ok(obj) => {
                debug!(
                    object = %key,
                    "fetched again: a state started or stopped naming it, or changed its rules"
                );
                return (r, obj.map(|obj| (version, obj)));
            }
            Err(error) => {
                let delay = reconcile::backoff(attempt, 0);
                warn!(
                    object = %key,
                    attempt,
                    error = &error as &dyn std::error::Error,
                    retry_in = ?delay,
                    "cannot fetch an object a Terraform state started or stopped naming"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
    warn!(object = %key, "gave up fetching it; it is judged when it next changes or is named again");
    (r, None)
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
    if !ctx.is_leader() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::reconcile::tests::{context, fixture, next, respond};
    use crate::operator::summary::Options;
    use http::{Method, StatusCode};
    use k8s_openapi::api::apps::v1::Deployment;
    use std::time::Duration;

    fn identity_only(namespace: &str, version: &str) -> Cached<Deployment> {
        let mut d = fixture();
        d.metadata.namespace = Some(namespace.into());
        d.metadata.resource_version = Some(version.into());
        d.metadata.labels = None;
        let nobody: summary::NamedBy = Arc::new(|_: &str, _: &str| None);
        Cached::new(
            d,
            &Options {
                named_by: Some(nobody),
                ..Options::default()
            },
        )
    }

    /// The GET goes to the object's namespace whatever the watch covers (a cluster-wide
    /// `Api` answers 404 for a namespaced name); the fetched object enters the cache only
    /// if the entry is still the one it was fetched for, else it is fetched again.
    #[tokio::test]
    async fn an_outdated_object_is_fetched_in_its_namespace_and_only_replaces_what_it_was_fetched_for()
     {
        let (ctx, mut handle, _leader) = context(true);
        let (store, mut writer) = reflector::store::<Cached<Deployment>>();
        writer.apply_watcher_event(&watcher::Event::Apply(identity_only("team-a", "1")));
        let (refetch, rx) = Refetch::<Deployment>::new();
        let outdated = |c: &Cached<Deployment>| c.identity_only;
        let stream = upgrades(ctx, store.clone(), outdated, refetch.clone(), rx, 2);
        refetch.request(&identity_only("team-a", "1"));
        refetch.request(&identity_only("team-a", "1"));
        let first = tokio::spawn(async move { Box::pin(stream).next().await });

        let mut live = fixture();
        live.metadata.namespace = Some("team-a".into());
        live.metadata.resource_version = Some("2".into());
        let wait = Duration::from_secs(10);
        let (seen, send) = tokio::time::timeout(wait, next(&mut handle))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen.method, Method::GET);
        let name = live.metadata.name.clone().unwrap();
        assert_eq!(
            seen.path,
            format!("/apis/apps/v1/namespaces/team-a/deployments/{name}")
        );
        // The watch brings a newer, still outdated, entry before the GET's answer.
        writer.apply_watcher_event(&watcher::Event::Apply(identity_only("team-a", "3")));
        respond(send, StatusCode::OK, serde_json::to_value(&live).unwrap());
        // Not applied over it: fetched again (once: the second request was a duplicate).
        let (seen, send) = tokio::time::timeout(wait, next(&mut handle))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen.method, Method::GET);
        live.metadata.resource_version = Some("3".into());
        respond(send, StatusCode::OK, serde_json::to_value(&live).unwrap());
        let first = tokio::time::timeout(wait, first)
            .await
            .expect("the fetched object is yielded")
            .unwrap();
        match first {
            Some(Ok(watcher::Event::Apply(d))) => {
                assert_eq!(d.metadata.resource_version.as_deref(), Some("3"))
            }
            other => panic!("expected the fetched object, got {other:?}"),
        }
    }
}
