//! The controllers of named objects: one watch per kind a Terraform state names (cluster-wide,
//! or per namespace), found through discovery and started and stopped as states change
//! (`operator/kinds.rs`). Each object a state names is judged as `tfdrift check` judges it —
//! every field the state sets — the moment its watch event arrives; objects no state names are
//! not kept at all. Verdicts go out as events on the object, metrics, and either the verdict
//! annotations (the kinds of `--annotate-kinds`) or a verdict record in the operator's own
//! namespace (every other kind: the operator never patches a Role or a Secret).

pub mod judged;
pub mod plan;
pub mod records;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use crate::cluster::Served;
use crate::core::object::ObjectId;
use crate::operator::controller::became_true;
use crate::operator::intents::{NamedKind, StateIntent};
use crate::operator::reconcile::{self, Context, Error, lock};
use crate::operator::watch_index::WatchIndex;
use judged::Judged;
use plan::{RecordStep, Situation, Step};

/// Attempts at fetching an object again before it waits for its next change.
const FETCH_ATTEMPTS: u32 = 5;

/// One watch of named objects.
pub struct Scope {
    pub kind: NamedKind,
    pub served: Served,
    /// Watch this namespace only (`--namespace`, or one of `--secret-namespaces`).
    pub namespace: Option<String>,
    /// The kind carries verdict annotations (`--annotate-kinds`).
    pub annotate: bool,
}

impl Scope {
    /// What readiness and logs call this watch.
    pub fn name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} in {ns}", self.kind),
            None => self.kind.to_string(),
        }
    }

    fn id(&self, namespace: &str, name: &str) -> ObjectId {
        ObjectId::in_group(
            &self.served.resource.group,
            &self.kind.kind,
            namespace,
            name,
        )
    }

    /// The API to read or patch `id` through: its namespace's, or the cluster's.
    fn api_for(&self, ctx: &Context, id: &ObjectId) -> Api<DynamicObject> {
        if self.served.namespaced {
            Api::namespaced_with(ctx.client.clone(), &id.namespace, &self.served.resource)
        } else {
            Api::all_with(ctx.client.clone(), &self.served.resource)
        }
    }
}

/// How a watch is doing, for the kinds manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Listed once: its named objects are judged, the ones it lacks are missing.
    Synced,
    /// The operator may not list or watch the kind here: the permission it lacks.
    Forbidden(String),
    /// Working again after being forbidden.
    Allowed,
}

/// Something the controller does besides the watch: fetch an object again (with the
/// resourceVersion of the entry it is fetched for, `None` for one not cached), or drop one
/// no state names any more from the cache.
enum Side {
    Fetch(ObjectId, Option<String>),
    Drop(ObjectId),
}

/// What every reconcile of one watch shares.
pub(crate) struct Named {
    ctx: Arc<Context>,
    scope: Arc<Scope>,
    store: Store<Judged>,
    side: mpsc::UnboundedSender<Side>,
}

impl Named {
    /// What a state says of `id` now, if it is read as this watch's kind. A custom resource
    /// the state names without a namespace is in `default`, as kubectl applies it.
    fn intent(&self, id: &ObjectId) -> Option<Arc<StateIntent>> {
        intent_for(&self.ctx, &self.scope, id)
    }
}

fn intent_for(ctx: &Context, scope: &Scope, id: &ObjectId) -> Option<Arc<StateIntent>> {
    let intents = ctx.intents.as_ref()?;
    let of_this_kind = |s: &Arc<StateIntent>| s.api_version() == scope.kind.api_version;
    intents.get(id).filter(of_this_kind).or_else(|| {
        (scope.served.namespaced && id.namespace == "default")
            .then(|| {
                intents.get(&ObjectId {
                    namespace: String::new(),
                    ..id.clone()
                })
            })
            .flatten()
            .filter(of_this_kind)
    })
}

/// How long a retiring watch waits for its objects to be released (the operator's
/// annotations removed) before it stops anyway.
const RETIRE_WITHIN: Duration = Duration::from_secs(60);

/// Runs the watch of `scope` until `shutdown`, or until `retire` turns true and every object
/// it cached has been released; `status` hears how it is doing.
pub async fn run(
    ctx: Arc<Context>,
    scope: Arc<Scope>,
    status: mpsc::UnboundedSender<(NamedKind, Option<String>, Status)>,
    mut retire: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    let resource: ApiResource = scope.served.resource.clone();
    let name = scope.name();
    let api: Api<DynamicObject> = match &scope.namespace {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, &resource),
        None => Api::all_with(ctx.client.clone(), &resource),
    };
    let writer: Writer<Judged> = Writer::new(resource.clone());
    let reader = writer.as_reader();
    let (side_tx, side_rx) = mpsc::unbounded_channel();
    let (trigger_tx, trigger_rx) = mpsc::unbounded_channel::<ObjectId>();
    if let Some(intents) = &ctx.intents {
        intents.register(&resource.group, &scope.kind.kind, trigger_tx);
    }
    let named = Arc::new(Named {
        ctx: ctx.clone(),
        scope: scope.clone(),
        store: reader.clone(),
        side: side_tx,
    });

    // With the states read first, the objects they name are judged as they are listed.
    let states_read = ctx.intents.as_ref().map(|i| i.subscribe());
    let watch = futures::stream::once(async move {
        if let Some(mut rx) = states_read {
            let _ = rx.wait_for(|read| *read).await;
        }
        watcher(api, watcher::Config::default().any_semantic()).default_backoff()
    })
    .flatten();
    let side = side_stream(named.clone(), side_rx, usize::from(ctx.concurrency.max(1)));
    let judge = named.clone();
    let watched = &ctx.metrics.resources_watched;
    let gauge =
        watched.with_label_values(&[resource.group.as_str(), &scope.kind.kind, "terraform-state"]);
    let mut tracker = WatchIndex::<()>::default();
    let mut synced = false;
    let mut forbidden = false;
    let has_synced = Arc::new(AtomicBool::new(false));
    let has_synced_in_stream = has_synced.clone();
    let (watch_ctx, watch_scope, watch_status) = (ctx.clone(), scope.clone(), status.clone());
    let watch_name = name.clone();
    let present_store = reader.clone();
    let stream = futures::stream::select(watch, side)
        .try_filter_map(move |event| futures::future::ready(Ok(judge_event(&judge, event))))
        .reflect(writer)
        .inspect(move |event| match event {
            Ok(event) => {
                watch_ctx.readiness.watch_ok(&watch_name);
                if std::mem::take(&mut forbidden) {
                    info!(watch = %watch_name, "allowed to read it now");
                    let _ = watch_status.send((watch_scope.kind.clone(), watch_scope.namespace.clone(), Status::Allowed));
                }
                for change in tracker.observe(event, |_| Some(())) {
                    let (namespace, name) = change.key;
                    let id = watch_scope.id(&namespace, &name);
                    if let Some(intents) = &watch_ctx.intents {
                        intents.object_seen(&id);
                    }
                    if change.new.is_none() {
                        gauge.dec();
                        watch_ctx.forget(&id);
                    } else {
                        gauge.inc();
                    }
                }
                if matches!(event, watcher::Event::InitDone) && !synced {
                    synced = true;
                    if let Some(intents) = &watch_ctx.intents {
                        let (store, scope) = (present_store.clone(), watch_scope.clone());
                        intents.kind_synced(
                            &watch_scope.kind,
                            watch_scope.namespace.as_deref(),
                            Box::new(move |namespace, name| {
                                let namespace = if scope.served.namespaced && namespace.is_empty() {
                                    "default"
                                } else {
                                    namespace
                                };
                                let r = ObjectRef::new_with(name, scope.served.resource.clone())
                                    .within(namespace);
                                store.get(&r).is_some()
                            }),
                        );
                    }
                    has_synced_in_stream.store(true, Ordering::Relaxed);
                    info!(watch = %watch_name, objects = tracker.len(), "named objects listed");
                    let _ = watch_status.send((watch_scope.kind.clone(), watch_scope.namespace.clone(), Status::Synced));
                }
            }
            Err(error) => {
                if let Some(why) = forbidden_by(error, &watch_scope) {
                    // Not a failing operator: the objects are reported not judged, once.
                    if !std::mem::replace(&mut forbidden, true) {
                        warn!(watch = %watch_name, why = %why, "may not read this kind; its objects are not judged");
                        let _ = watch_status.send((watch_scope.kind.clone(), watch_scope.namespace.clone(), Status::Forbidden(why)));
                    }
                } else if watch_ctx.readiness.watch_error(&watch_name, error) {
                    watch_ctx.api_error(&watch_scope.id("", ""), "watch");
                    warn!(
                        watch = %watch_name,
                        error = error as &dyn std::error::Error,
                        "watch failed; retrying with backoff"
                    );
                }
            }
        })
        .touched_objects();

    let trigger_named = named.clone();
    let triggers = futures::stream::unfold(trigger_rx, |mut rx| async move {
        let id = rx.recv().await?;
        Some((id, rx))
    })
    .filter_map(move |id| {
        let named = trigger_named.clone();
        async move {
            let id = normalise(&named.scope, id);
            let r = ObjectRef::new_with(&id.name, named.scope.served.resource.clone())
                .within(&id.namespace);
            if named.store.get(&r).is_some() {
                return Some(r);
            }
            // Named now and not cached: fetched, and its arrival decides.
            if named.intent(&id).is_some() {
                let _ = named.side.send(Side::Fetch(id, None));
            }
            None
        }
    });
    let hpa_synced = match &ctx.scalers {
        Some(scalers) => became_true(scalers.subscribe()).left_stream(),
        None => futures::stream::empty().right_stream(),
    };
    let records_synced = match &ctx.records {
        Some(records) => became_true(records.subscribe()).left_stream(),
        None => futures::stream::empty().right_stream(),
    };
    let grace = ctx.api_timeout;
    let stop = shutdown.clone();
    let retiring_store = reader.clone();
    let retiring_ctx = ctx.clone();
    let controller = Controller::for_stream_with(stream, reader, resource)
        .with_config(controller::Config::default().concurrency(ctx.concurrency))
        .reconcile_all_on(became_true(ctx.leader.clone()))
        .reconcile_all_on(hpa_synced)
        .reconcile_all_on(records_synced)
        .reconcile_on(triggers)
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile_named, error_policy, named)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => debug!(object = %obj, "reconciled"),
                Err(controller::Error::ObjectNotFound(obj)) => {
                    debug!(object = %obj, "object left the cache")
                }
                Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(error) => debug!(
                    error = &error as &dyn std::error::Error,
                    "controller stream error"
                ),
            }
        });
    let retired = async {
        // No state names the kind any more: its objects are released (each reconcile removes
        // what the operator wrote, then drops it) before the watch stops. A standby writes
        // nothing, so it has nothing to wait for.
        let _ = retire.wait_for(|r| *r).await;
        let deadline = tokio::time::Instant::now() + RETIRE_WITHIN;
        loop {
            if retiring_store.state().is_empty() || !retiring_ctx.is_leader() {
                return true;
            }
            if tokio::time::Instant::now() > deadline || retire.has_changed().is_err() {
                return false;
            }
            if !*retire.borrow() {
                let _ = retire.wait_for(|r| *r).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        _ = controller => info!(watch = %name, "controller stopped"),
        released = retired => if released {
            info!(watch = %name, "no state names this kind any more; its watch stopped");
        } else {
            warn!(watch = %name, "no state names this kind any more; stopped before every object was released");
        },
        _ = async {
            stop.cancelled().await;
            if has_synced.load(Ordering::Relaxed) {
                tokio::time::sleep(grace).await;
            }
        } => warn!(watch = %name, "controller did not wind down in time; stopped"),
    }
    if let Some(intents) = &ctx.intents {
        intents.kind_unwatched(&scope.kind, scope.namespace.as_deref());
    }
}

/// A namespaced custom resource a state names without a namespace is in `default`.
fn normalise(scope: &Scope, id: ObjectId) -> ObjectId {
    if scope.served.namespaced && id.namespace.is_empty() {
        ObjectId {
            namespace: "default".to_owned(),
            ..id
        }
    } else {
        id
    }
}

/// Why `error` means the operator may not read the kind, if it does.
fn forbidden_by(error: &watcher::Error, scope: &Scope) -> Option<String> {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code,
        watcher::Error::WatchError(s) => s.code,
        _ => return None,
    };
    if status != 403 {
        return None;
    }
    let r = &scope.served.resource;
    let resource = if r.group.is_empty() {
        r.plural.clone()
    } else {
        format!("{}.{}", r.plural, r.group)
    };
    Some(match &scope.namespace {
        Some(ns) => format!("forbidden: needs list and watch on {resource} in namespace {ns}"),
        None => format!("forbidden: needs list and watch on {resource} cluster-wide"),
    })
}

/// A watch event as the cache takes it: named objects judged, the rest left out (and taken
/// out, if a state named them before).
fn judge_event(
    named: &Named,
    event: watcher::Event<DynamicObject>,
) -> Option<watcher::Event<Judged>> {
    let scope = &named.scope;
    let id_of = |o: &DynamicObject| {
        scope.id(
            o.metadata.namespace.as_deref().unwrap_or_default(),
            o.metadata.name.as_deref().unwrap_or_default(),
        )
    };
    let cached = |id: &ObjectId| {
        named
            .store
            .get(
                &ObjectRef::new_with(&id.name, scope.served.resource.clone()).within(&id.namespace),
            )
            .is_some()
    };
    // The intent `o` is judged against, if a state names it as this kind.
    let intent_of = |o: &DynamicObject| {
        let id = id_of(o);
        named.intent(&id).map(|intent| (id, intent))
    };
    let judge = |o: DynamicObject, (id, intent): (ObjectId, Arc<StateIntent>)| {
        let scaled = named
            .ctx
            .scalers
            .as_ref()
            .and_then(|s| s.scaler_of(&id.kind, &id.namespace, &id.name))
            .is_some();
        Judged::new(o, &id, &intent, &scope.served, scaled)
    };
    match event {
        watcher::Event::Apply(o) => match intent_of(&o) {
            Some(named) => Some(watcher::Event::Apply(judge(o, named))),
            None => {
                cached(&id_of(&o)).then(|| watcher::Event::Delete(Judged::identity(o.metadata)))
            }
        },
        watcher::Event::InitApply(o) => {
            intent_of(&o).map(|named| watcher::Event::InitApply(judge(o, named)))
        }
        watcher::Event::Delete(o) => {
            cached(&id_of(&o)).then(|| watcher::Event::Delete(Judged::identity(o.metadata)))
        }
        watcher::Event::Init => Some(watcher::Event::Init),
        watcher::Event::InitDone => Some(watcher::Event::InitDone),
    }
}

/// The fetches and drops of [`Side`], as watch events: a fetched object is yielded only if
/// the entry it was fetched for is still the cached one (a newer one came by the watch and
/// was judged under what holds now), at most `concurrency` fetches at a time.
fn side_stream(
    named: Arc<Named>,
    requests: mpsc::UnboundedReceiver<Side>,
    concurrency: usize,
) -> impl futures::Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Send + 'static
{
    futures::stream::unfold(requests, |mut rx| async move {
        let side = rx.recv().await?;
        Some((side, rx))
    })
    .map(move |side| {
        let named = named.clone();
        async move {
            match side {
                Side::Drop(id) => {
                    let mut o = DynamicObject::new(&id.name, &named.scope.served.resource);
                    if named.scope.served.namespaced {
                        o.metadata.namespace = Some(id.namespace);
                    }
                    Some(watcher::Event::Delete(o))
                }
                Side::Fetch(id, version) => {
                    fetch(&named, &id, version).await.map(watcher::Event::Apply)
                }
            }
        }
    })
    .buffer_unordered(concurrency)
    .filter_map(|event| futures::future::ready(event.map(Ok)))
}

/// `id` fetched again, unless the cache moved past `version` meanwhile or it is gone.
async fn fetch(named: &Named, id: &ObjectId, version: Option<String>) -> Option<DynamicObject> {
    let r =
        ObjectRef::new_with(&id.name, named.scope.served.resource.clone()).within(&id.namespace);
    let api = named.scope.api_for(&named.ctx, id);
    for attempt in 1..=FETCH_ATTEMPTS {
        match named.ctx.call(id, "get", api.get(&id.name)).await {
            Ok(found) => {
                let current = named
                    .store
                    .get(&r)
                    .and_then(|c| c.metadata.resource_version.clone());
                if current != version {
                    // The watch brought it meanwhile: judged under what holds now.
                    return None;
                }
                debug!(object = %id, "fetched again: a state started naming it, or its intent changed");
                return found;
            }
            Err(error) => {
                let delay = reconcile::backoff(attempt, 0);
                warn!(object = %id, attempt, error = &error as &dyn std::error::Error, retry_in = ?delay, "cannot fetch an object a Terraform state names");
                tokio::time::sleep(delay).await;
            }
        }
    }
    warn!(object = %id, "gave up fetching it; it is judged when it next changes");
    None
}

#[tracing::instrument(skip_all, fields(kind = %named.scope.kind.kind, namespace = obj.metadata.namespace.as_deref().unwrap_or_default(), name = obj.metadata.name.as_deref().unwrap_or_default()))]
async fn reconcile_named(obj: Arc<Judged>, named: Arc<Named>) -> Result<Action, Error> {
    let ctx = &named.ctx;
    let scope = &named.scope;
    let id = scope.id(
        obj.metadata.namespace.as_deref().unwrap_or_default(),
        obj.metadata.name.as_deref().unwrap_or_default(),
    );
    let _timer = ctx
        .metrics
        .reconcile_duration_seconds
        .with_label_values(&[id.group.as_str(), &id.kind])
        .start_timer();
    let started = ctx.epoch();
    let state = named.intent(&id);
    let record = ctx.records.as_ref().and_then(|r| r.get(&id));
    let previous = ctx.previous(&id);
    let situation = Situation {
        leader: ctx.is_leader(),
        listed: ctx.scalers.as_ref().is_none_or(|s| s.is_synced())
            && ctx.records.as_ref().is_none_or(|r| r.is_synced()),
        state: state.as_deref(),
        scaled: ctx
            .scalers
            .as_ref()
            .and_then(|s| s.scaler_of(&id.kind, &id.namespace, &id.name))
            .is_some(),
        locked: match (&ctx.intents, &state) {
            (Some(intents), Some(state)) => intents.is_locked(&state.state),
            _ => false,
        },
        previous: previous.as_ref(),
        annotate: scope.annotate,
        record: record.as_ref(),
    };
    let step =
        plan::plan(&obj, &situation, reconcile::now_rfc3339).map_err(|reason| Error::Judge {
            object: id.to_string(),
            reason,
        })?;
    let plan = match step {
        Step::Wait => return Ok(Action::await_change()),
        Step::Refetch => {
            let _ = named
                .side
                .send(Side::Fetch(id, obj.metadata.resource_version.clone()));
            return Ok(Action::await_change());
        }
        Step::Release {
            patch,
            delete_record,
        } => {
            if !patch.is_empty() {
                ctx.patch_annotations_of(scope.api_for(ctx, &id), &id, &patch)
                    .await?;
            }
            if delete_record && let Some(records) = &ctx.records {
                records.delete(&id, ctx.api_timeout).await?;
            }
            if !obj.opted_in {
                ctx.forget(&id);
            }
            info!("no Terraform state names it any more");
            let _ = named.side.send(Side::Drop(id));
            return Ok(Action::await_change());
        }
        Step::Decide(plan) => plan,
    };
    let regarding = kube::Resource::object_ref(obj.as_ref(), &scope.served.resource);
    // Events first: a stop before the verdict is recorded decides — and sends — again.
    for event in &plan.events {
        if !ctx.is_leader() {
            return Ok(Action::await_change());
        }
        info!(
            reason = event.reason,
            verdict = plan.verdict.label(),
            "verdict changed"
        );
        if event.reason == crate::core::contract::reason::DRIFT_DETECTED {
            ctx.metrics
                .drift_detected_total
                .with_label_values(&[id.group.as_str(), &id.kind])
                .inc();
        }
        reconcile::publish(ctx, regarding.clone(), &id, event).await;
    }
    ctx.remember(
        &id,
        plan.verdict.clone(),
        state.as_ref().map(|s| s.state.clone()),
        started,
    );
    if !ctx.is_leader() {
        return Ok(Action::await_change());
    }
    if !plan.patch.is_empty() {
        if !ctx
            .patch_annotations_of(scope.api_for(ctx, &id), &id, &plan.patch)
            .await?
        {
            debug!("object is gone; nothing to report");
            return Ok(Action::await_change());
        }
        debug!(changed = ?plan.patch.keys().collect::<Vec<_>>(), "annotations patched");
    }
    match (&plan.record, &ctx.records) {
        (RecordStep::Write(record), Some(records)) => {
            records.put(&id, record.clone(), ctx.api_timeout).await?;
        }
        (RecordStep::Delete, Some(records)) => records.delete(&id, ctx.api_timeout).await?,
        _ => {}
    }
    ctx.metrics
        .reconcile_total
        .with_label_values(&[id.group.as_str(), &id.kind, plan.verdict.label()])
        .inc();
    lock(&ctx.failures).remove(&id);
    Ok(Action::requeue(ctx.resync_period))
}

fn error_policy(obj: Arc<Judged>, error: &Error, named: Arc<Named>) -> Action {
    let id = named.scope.id(
        obj.metadata.namespace.as_deref().unwrap_or_default(),
        obj.metadata.name.as_deref().unwrap_or_default(),
    );
    reconcile::error_action(&named.ctx, &id, error)
}

/// A running watch of named objects, as the kinds manager holds it.
pub struct Handle {
    pub stop: CancellationToken,
    /// True: no state names the kind any more (the watch ends once its objects are
    /// released); false again if one starts naming it before that.
    pub retire: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Whether the watch has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Spawns [`run`] for `scope` under `parent`, in a span naming it.
pub fn spawn(
    ctx: Arc<Context>,
    scope: Arc<Scope>,
    status: mpsc::UnboundedSender<(NamedKind, Option<String>, Status)>,
    parent: &CancellationToken,
) -> Handle {
    let stop = parent.child_token();
    let (retire, retire_rx) = watch::channel(false);
    let span = tracing::info_span!("named", watch = %scope.name());
    let task = tokio::spawn(run(ctx, scope, status, retire_rx, stop.clone()).instrument(span));
    Handle { stop, retire, task }
}
