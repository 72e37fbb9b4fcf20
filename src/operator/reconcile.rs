//! Where the verdict is decided and reported: fingerprint → live hash → verdict →
//! merge-patch of only the annotations that change → an event on transitions → metrics.
//!
//! Fail open: an API error never becomes a verdict; nothing is written that was not
//! verified. At steady state a reconcile makes no API call at all.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::core::contract;
use crate::core::fingerprint::Fingerprint;
use crate::core::ignore::{self, Rule};
use crate::core::object::ObjectId;
use crate::core::verdict::Verdict;
use crate::operator::hpa::Scalers;
use crate::operator::metrics::Metrics;
use crate::operator::plan::{self, PlannedEvent, Situation, Step};
use crate::operator::summary::Cached;
use crate::operator::tfstate::{Intents, StateId};

/// First retry delay after a transient error; doubles per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How many API timeouts a forgotten object's tombstone outlives it.
const TOMBSTONE_TIMEOUTS: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot fingerprint {object}: {reason}")]
    Fingerprint { object: String, reason: String },
    #[error("cannot judge {object}: {reason}")]
    Judge { object: String, reason: String },
    #[error("{verb} {object} failed")]
    Api {
        verb: &'static str,
        object: String,
        #[source]
        source: Box<crate::cluster::ApiError>,
    },
    #[error("{verb} {object} timed out after {timeout:?}")]
    Timeout {
        verb: &'static str,
        object: String,
        timeout: Duration,
    },
    #[error(transparent)]
    Record(#[from] crate::operator::named::records::RecordError),
}

impl Error {
    /// Bounded reason for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Fingerprint { .. } => "FingerprintFailed",
            Error::Judge { .. } => "JudgeFailed",
            Error::Api { .. } => "ApiError",
            Error::Timeout { .. } => "ApiTimeout",
            Error::Record(_) => "RecordFailed",
        }
    }

    /// A permanent problem waits for the object to change; retrying sooner cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Error::Fingerprint { .. } | Error::Judge { .. })
    }
}

/// The identity of a cached object.
pub fn object_id<K: Fingerprint>(obj: &Cached<K>) -> ObjectId {
    ObjectId::new(
        <K as k8s_openapi::Resource>::KIND,
        &obj.namespace().unwrap_or_default(),
        &obj.name_any(),
    )
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub metrics: Metrics,
    pub events: crate::operator::events::Publisher,
    pub leader: watch::Receiver<bool>,
    pub resync_period: Duration,
    pub api_timeout: Duration,
    pub readiness: crate::operator::http::Readiness,
    /// Write the baseline record of in-sync objects (`--baseline-record`).
    pub record_baseline: bool,
    /// Default ignore rules per kind.
    defaults: HashMap<&'static str, Arc<[Rule]>>,
    /// The HPAs' targets, when `replicas` of HPA-scaled objects is ignored.
    pub scalers: Option<Arc<Scalers>>,
    /// What Terraform states name, with `--terraform-state-namespace`.
    pub intents: Option<Arc<Intents>>,
    /// The verdicts of named objects of kinds without annotations.
    pub records: Option<Arc<crate::operator::named::records::Records>>,
    /// Objects reconciled at once, per controller.
    pub concurrency: u16,
    /// The verdict last reported per object: events fire on its transitions.
    verdicts: Mutex<HashMap<ObjectId, Reported>>,
    /// Consecutive transient failures per object, for exponential backoff.
    pub(crate) failures: Mutex<HashMap<ObjectId, u32>>,
    /// Objects forgotten (deleted or opted out), with the epoch and time they left: a
    /// reconcile that started before cannot bring their series back.
    forgotten: Mutex<Forgotten>,
}

/// A verdict reported, and the Terraform state it was judged against.
#[derive(Debug, Clone, PartialEq)]
struct Reported {
    verdict: Verdict,
    state: Option<Arc<StateId>>,
}

/// Tombstones of forgotten objects. The epoch counts forgets; a reconcile notes it when it
/// starts.
#[derive(Default)]
struct Forgotten {
    epoch: u64,
    at: HashMap<ObjectId, (u64, std::time::Instant)>,
}

/// The reconciler's tunables, from the command line.
pub struct Settings {
    pub resync_period: Duration,
    pub api_timeout: Duration,
    pub record_baseline: bool,
    pub ignore: ignore::Defaults,
    /// Take intent from Terraform states too (`--terraform-state-namespace`), keeping the
    /// verdict records of kinds without annotations in this namespace.
    pub terraform_state: Option<String>,
    /// Helm releases are a source of intent (`--helm-namespace`).
    pub helm: bool,
    pub concurrency: u16,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Metrics,
        events: crate::operator::events::Publisher,
        leader: watch::Receiver<bool>,
        readiness: crate::operator::http::Readiness,
        settings: Settings,
    ) -> Self {
        let records = settings.terraform_state.clone().map(|namespace| {
            Arc::new(crate::operator::named::records::Records::new(
                client.clone(),
                namespace,
            ))
        });
        Context {
            client,
            metrics,
            events,
            leader,
            resync_period: settings.resync_period,
            api_timeout: settings.api_timeout,
            readiness,
            record_baseline: settings.record_baseline,
            defaults: settings
                .ignore
                .by_kind()
                .into_iter()
                .map(|(kind, rules)| (kind, rules.into()))
                .collect(),
            scalers: settings
                .ignore
                .hpa_replicas
                .then(|| Arc::new(Scalers::default())),
            // The state watch runs whenever there are intents (it also reports what is
            // missing); the Helm watch with --helm-namespace.
            intents: settings
                .terraform_state
                .is_some()
                .then(|| Arc::new(Intents::with_sources(1 + usize::from(settings.helm)))),
            records,
            concurrency: settings.concurrency,
            verdicts: Mutex::default(),
            failures: Mutex::default(),
            forgotten: Mutex::default(),
        }
    }

    /// Every kind's default ignore rules.
    pub fn all_defaults(&self) -> HashMap<&'static str, Arc<[Rule]>> {
        self.defaults.clone()
    }

    /// The default ignore rules for `kind`.
    pub fn defaults(&self, kind: &str) -> Arc<[Rule]> {
        self.defaults
            .get(kind)
            .cloned()
            .unwrap_or_else(|| Arc::new([]))
    }

    /// How objects of `kind` are summarised in the cache.
    pub fn cache_options(&self, kind: &str) -> crate::operator::summary::Options {
        crate::operator::summary::Options {
            record_baselines: self.record_baseline,
            defaults: self.defaults(kind),
            hpa_aware: self.scalers.is_some(),
        }
    }

    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// The epoch a reconcile starts in, for [`Context::remember`].
    pub fn epoch(&self) -> u64 {
        lock(&self.forgotten).epoch
    }

    /// The verdict this process last reported for `key`.
    pub fn previous(&self, key: &ObjectId) -> Option<Verdict> {
        lock(&self.verdicts).get(key).map(|r| r.verdict.clone())
    }

    /// Records `verdict` for `key`, keeping the per-object metrics in step — unless the
    /// object was forgotten after `started` (the epoch the reconcile began in): a reconcile
    /// racing the object's deletion must not bring its series back.
    pub fn remember(
        &self,
        key: &ObjectId,
        verdict: Verdict,
        state: Option<Arc<StateId>>,
        started: u64,
    ) {
        // One lock order everywhere: forgotten, then verdicts.
        let forgotten = lock(&self.forgotten);
        if forgotten.at.get(key).is_some_and(|(e, _)| *e > started) {
            return;
        }
        let drifted = verdict == Verdict::Drifted;
        let now = Reported { verdict, state };
        let previous = lock(&self.verdicts).insert(key.clone(), now.clone());
        drop(forgotten);
        if previous.as_ref() != Some(&now) {
            self.recount_state_drift(previous.as_ref());
            self.recount_state_drift(Some(&now));
        }
        let was_drifted = previous.as_ref().map(|r| &r.verdict) == Some(&Verdict::Drifted);
        let labels = [key.group.as_str(), &key.kind, &key.namespace, &key.name];
        if drifted && !was_drifted {
            self.metrics
                .resources_drifted
                .with_label_values(&[key.group.as_str(), &key.kind])
                .inc();
            self.metrics
                .resource_drifted
                .with_label_values(&labels)
                .set(1);
        } else if !drifted && was_drifted {
            self.metrics
                .resources_drifted
                .with_label_values(&[key.group.as_str(), &key.kind])
                .dec();
            let _ = self.metrics.resource_drifted.remove_label_values(&labels);
        }
    }

    /// Forgets an object that was deleted or opted out: its series are dropped, and no
    /// reconcile already under way can bring them back.
    pub fn forget(&self, key: &ObjectId) {
        let mut forgotten = lock(&self.forgotten);
        forgotten.epoch += 1;
        let epoch = forgotten.epoch;
        let now = std::time::Instant::now();
        // A reconcile lasts a few API calls at most; older tombstones guard nothing.
        let keep = self.api_timeout.saturating_mul(TOMBSTONE_TIMEOUTS);
        forgotten
            .at
            .retain(|_, (_, t)| now.duration_since(*t) < keep);
        forgotten.at.insert(key.clone(), (epoch, now));
        let previous = lock(&self.verdicts).remove(key);
        drop(forgotten);
        lock(&self.failures).remove(key);
        self.recount_state_drift(previous.as_ref());
        if previous.map(|r| r.verdict) == Some(Verdict::Drifted) {
            self.metrics
                .resources_drifted
                .with_label_values(&[key.group.as_str(), &key.kind])
                .dec();
            let _ = self.metrics.resource_drifted.remove_label_values(&[
                key.group.as_str(),
                key.kind.as_str(),
                key.namespace.as_str(),
                key.name.as_str(),
            ]);
        }
    }

    /// Sets the drifted count of the state `reported` was judged against, if it was
    /// drifted against one, from the verdicts themselves (counted, not added up: a state
    /// deleted and pushed again must not inherit the old one's objects leaving it).
    fn recount_state_drift(&self, reported: Option<&Reported>) {
        let Some(Reported {
            verdict: Verdict::Drifted,
            state: Some(state),
        }) = reported
        else {
            return;
        };
        // Helm releases have no state series.
        if state.is_helm() {
            return;
        }
        let drifted = lock(&self.verdicts)
            .values()
            .filter(|r| r.verdict == Verdict::Drifted && r.state.as_deref() == Some(&**state))
            .count();
        let series = &self.metrics.terraform_state_drifted;
        // A state that names nothing any more (deleted) keeps no series.
        let gone = drifted == 0 && self.intents.as_ref().is_some_and(|i| !i.names_any(state));
        if gone {
            let _ = series.remove_label_values(&state.labels());
        } else {
            series
                .with_label_values(&state.labels())
                .set(drifted as i64);
        }
    }

    /// Whether `key` was forgotten recently (its failures are not counted).
    fn was_forgotten(&self, key: &ObjectId) -> bool {
        lock(&self.forgotten).at.contains_key(key)
    }

    pub fn api_error(&self, key: &ObjectId, verb: &str) {
        self.metrics
            .api_errors_total
            .with_label_values(&[key.group.as_str(), &key.kind, verb])
            .inc();
    }

    /// Merge-patches `metadata.annotations` with `patch` (`None` removes a key), under
    /// the operator's field manager and a timeout. `Ok(false)` if the object is gone.
    pub async fn patch_annotations<K: Fingerprint>(
        &self,
        key: &ObjectId,
        patch: &BTreeMap<&'static str, Option<String>>,
    ) -> Result<bool, Error> {
        let api: Api<K> = Api::namespaced(self.client.clone(), &key.namespace);
        self.patch_annotations_of(api, key, patch).await
    }

    /// [`Context::patch_annotations`] for an object of any kind, through `api` (the
    /// object's namespace's, or the cluster's for a cluster-scoped kind).
    pub async fn patch_annotations_of<K>(
        &self,
        api: Api<K>,
        key: &ObjectId,
        patch: &BTreeMap<&'static str, Option<String>>,
    ) -> Result<bool, Error>
    where
        K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let body = json!({ "metadata": { "annotations": patch } });
        let params = PatchParams {
            field_manager: Some(contract::FIELD_MANAGER.into()),
            ..Default::default()
        };
        // A metadata patch: the server answers with metadata only, which is all we need.
        let patch = Patch::Merge(&body);
        let call = api.patch_metadata(&key.name, &params, &patch);
        Ok(self.call(key, "patch", call).await?.is_some())
    }

    /// Runs one API call about `key` under the API timeout; a failure is counted and named.
    /// A 404 is `Ok(None)`: the object is gone, which is not an error.
    pub async fn call<T>(
        &self,
        key: &ObjectId,
        verb: &'static str,
        call: impl Future<Output = kube::Result<T>>,
    ) -> Result<Option<T>, Error> {
        match tokio::time::timeout(self.api_timeout, call).await {
            Ok(Ok(value)) => Ok(Some(value)),
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(None),
            Ok(Err(source)) => {
                self.api_error(key, verb);
                Err(Error::Api {
                    verb,
                    object: key.to_string(),
                    source: Box::new(crate::cluster::ApiError(source)),
                })
            }
            Err(_) => {
                self.api_error(key, verb);
                Err(Error::Timeout {
                    verb,
                    object: key.to_string(),
                    timeout: self.api_timeout,
                })
            }
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps inconsistent: keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Now in RFC 3339 UTC, truncated to the second (never rounded into the future).
pub(crate) fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

#[tracing::instrument(skip_all, fields(kind = <K as k8s_openapi::Resource>::KIND, namespace = obj.namespace().unwrap_or_default(), name = obj.name_any()))]
pub async fn reconcile<K: Fingerprint>(
    obj: Arc<Cached<K>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let key = object_id(obj.as_ref());
    let _timer = ctx
        .metrics
        .reconcile_duration_seconds
        .with_label_values(&[key.group.as_str(), &key.kind])
        .start_timer();
    let started = ctx.epoch();
    let scaled_by = match (&ctx.scalers, &obj.scaled) {
        (Some(scalers), Some(_)) => scalers.scaler_of(&key.kind, &key.namespace, &key.name),
        _ => None,
    };
    let previous = ctx.previous(&key);
    let situation = Situation {
        leader: ctx.is_leader(),
        hpas_listed: ctx.scalers.as_ref().is_none_or(|s| s.is_synced())
            && ctx.intents.as_ref().is_none_or(|i| i.is_synced()),
        scaled_by: scaled_by.as_deref(),
        previous: previous.as_ref(),
        named: ctx.intents.as_ref().is_some_and(|i| i.names(&key)),
        state_unreadable: match &ctx.intents {
            Some(intents) => obj
                .annotations()
                .get(contract::TERRAFORM_WORKSPACE)
                .is_some_and(|w| intents.is_unreadable(w)),
            None => false,
        },
    };
    let step =
        plan::plan(obj.as_ref(), &situation, now_rfc3339).map_err(|reason| Error::Fingerprint {
            object: key.to_string(),
            reason,
        })?;
    let mut plan = match step {
        Step::Wait => return Ok(Action::await_change()),
        Step::CleanUp(patch) => {
            if ctx.patch_annotations::<K>(&key, &patch).await? {
                info!("named by no Terraform state and not labelled; annotations removed");
            }
            ctx.forget(&key);
            return Ok(Action::await_change());
        }
        Step::Decide(plan) => plan,
    };
    if plan.ignored_changed {
        info!(
            ignored = plan
                .patch
                .get(contract::IGNORED)
                .cloned()
                .flatten()
                .as_deref()
                .unwrap_or(""),
            hpa = scaled_by.as_deref().unwrap_or(""),
            "ignore rules in effect changed"
        );
    }
    if plan.explain
        && let Some((summary, why)) = obj.explanation(scaled_by.is_some())
    {
        if obj.annotations().get(contract::DRIFT_SUMMARY) != Some(&summary) {
            plan.patch.insert(contract::DRIFT_SUMMARY, Some(summary));
        }
        for event in &mut plan.events {
            if event.reason == contract::reason::DRIFT_DETECTED && !why.is_empty() {
                event.note = format!("{}: {why}", event.note);
            }
        }
    }
    // Events go before the patch that records the verdict: a stop between the two leaves
    // the old verdict on the object, so the next leader decides — and sends — again. At
    // least once, at most one duplicate per crash; never a verdict without its event.
    for event in &plan.events {
        if !ctx.is_leader() {
            return Ok(Action::await_change());
        }
        if event.reason == contract::reason::INVALID_IGNORE_RULE {
            warn!(invalid = %event.note, "invalid ignore rules; the others apply");
        } else {
            info!(
                reason = event.reason,
                verdict = plan.verdict.label(),
                live_hash = %plan.live_hash,
                "verdict changed"
            );
        }
        if event.reason == contract::reason::DRIFT_DETECTED {
            ctx.metrics
                .drift_detected_total
                .with_label_values(&[key.group.as_str(), &key.kind])
                .inc();
        }
        publish(&ctx, obj.object_ref(&()), &key, event).await;
    }
    // Remembered before patching: a failed patch is retried without a second event.
    ctx.remember(&key, plan.verdict.clone(), None, started);
    if !plan.patch.is_empty() {
        // Leadership may have moved while we computed: never write without it.
        if !ctx.is_leader() {
            return Ok(Action::await_change());
        }
        if !ctx.patch_annotations::<K>(&key, &plan.patch).await? {
            debug!("object is gone; nothing to report");
            ctx.forget(&key);
            return Ok(Action::await_change());
        }
        debug!(changed = ?plan.patch.keys().collect::<Vec<_>>(), "annotations patched");
    }
    ctx.metrics
        .reconcile_total
        .with_label_values(&[key.group.as_str(), &key.kind, plan.verdict.label()])
        .inc();
    lock(&ctx.failures).remove(&key);
    Ok(Action::requeue(ctx.resync_period))
}

/// Publishes an event. A failure is logged and counted, not retried: the annotations
/// already carry the verdict, and a retry could only duplicate the event.
pub(crate) async fn publish(
    ctx: &Context,
    regarding: k8s_openapi::api::core::v1::ObjectReference,
    key: &ObjectId,
    event: &PlannedEvent,
) {
    let reason = event.reason;
    let publish = ctx
        .events
        .publish(regarding, event.type_, reason, "DriftCheck", &event.note);
    match tokio::time::timeout(ctx.api_timeout, publish).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            ctx.api_error(key, "create_event");
            warn!(
                object = %key,
                reason,
                error = &error as &dyn std::error::Error,
                "cannot publish event"
            );
        }
        Err(_) => {
            ctx.api_error(key, "create_event");
            warn!(object = %key, reason, "publishing event timed out");
        }
    }
}

/// Permanent errors wait for a resync; transient ones back off exponentially per object
/// (1 s doubling to 5 min, with jitter), reset by the next success.
pub fn error_policy<K: Fingerprint>(
    obj: Arc<Cached<K>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    error_action(&ctx, &object_id(obj.as_ref()), error)
}

/// What to do after `error` reconciling `key`, for both flows (see [`error_policy`]).
pub(crate) fn error_action(ctx: &Context, key: &ObjectId, error: &Error) -> Action {
    let key = key.clone();
    ctx.metrics
        .reconcile_total
        .with_label_values(&[key.group.as_str(), &key.kind, "error"])
        .inc();
    // A reconcile of an object deleted meanwhile: no failure to keep (a new object of the
    // same name is still looked at again at the next resync).
    if ctx.was_forgotten(&key) {
        return Action::requeue(ctx.resync_period);
    }
    if error.is_permanent() {
        warn!(
            object = %key,
            reason = error.reason(),
            error = error as &dyn std::error::Error,
            "reconcile failed; waiting for a change"
        );
        return Action::requeue(ctx.resync_period);
    }
    let failures = {
        let mut map = lock(&ctx.failures);
        let n = map.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = backoff(failures, jitter_seed(&key, failures));
    warn!(
        object = %key,
        reason = error.reason(),
        error = error as &dyn std::error::Error,
        retry_in = ?delay,
        "reconcile failed; will retry"
    );
    Action::requeue(delay)
}

/// Delay after `failures` consecutive failures: 1 s × 2^(n−1), capped at 5 min, then
/// spread by up to +25 % (from `seed`) so that many failing objects do not retry in step.
pub fn backoff(failures: u32, seed: u64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = MIN_BACKOFF.saturating_mul(1u32 << exp).min(MAX_BACKOFF);
    let jitter_ms = (base.as_millis() as u64 / 4).max(1);
    base + Duration::from_millis(seed % jitter_ms)
}

fn jitter_seed(key: &ObjectId, n: u32) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    key.hash(&mut h);
    n.hash(&mut h);
    h.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::text;

    /// An operator error — a failed watch or patch, an unreadable state — says each cause once.
    #[test]
    fn operator_errors_say_each_thing_once() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "message": "deployments.apps \"web\" is forbidden: User \"x\" cannot patch",
            "reason": "Forbidden", "code": 403
        }))
        .unwrap();
        let patch = Error::Api {
            verb: "patch",
            object: "Deployment/ns/web".into(),
            source: Box::new(crate::cluster::ApiError(kube::Error::Api(Box::new(status)))),
        };
        let text = text::chain(&patch);
        assert_eq!(
            text,
            "patch Deployment/ns/web failed: 403 Forbidden: deployments.apps \"web\" is forbidden: User \"x\" cannot patch"
        );
        let state = crate::intent::terraform::backend::StateError::Read(
            crate::intent::terraform::ReadError::State(crate::intent::terraform::StateError::Gzip(
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "incomplete deflate stream",
                ),
            )),
        );
        assert_eq!(
            text::chain(&state),
            "not a complete gzip stream (truncated or corrupt): incomplete deflate stream"
        );
    }
    use crate::operator::http::Readiness;
    use crate::operator::summary::Options;
    use http::{Method, Request, Response, StatusCode};
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::client::Body;

    #[test]
    fn backoff_doubles_and_caps() {
        assert!(backoff(1, 0) >= Duration::from_secs(1) && backoff(1, 0) < Duration::from_secs(2));
        assert_eq!(backoff(3, 0), Duration::from_secs(4));
        assert_eq!(backoff(30, 0), MAX_BACKOFF);
        assert!(backoff(30, u64::MAX) <= MAX_BACKOFF + MAX_BACKOFF / 4);
        assert!(backoff(u32::MAX, 7) <= MAX_BACKOFF + MAX_BACKOFF / 4);
    }

    // The executor against a mocked HTTP layer: only the call sequence is checked here;
    // behaviour is tested on the real API server (tests/integration/).

    pub(crate) type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    const OTHER: &str = "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    pub(crate) fn fixture() -> Deployment {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kube-apiserver-v1.20.2/deploy-minimal/live.json"
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn with_annotations(pairs: &[(&str, &str)]) -> Deployment {
        let mut d = fixture();
        let ann = d.metadata.annotations.get_or_insert_with(Default::default);
        for (k, v) in pairs {
            ann.insert((*k).into(), (*v).into());
        }
        d
    }

    fn cached(d: Deployment) -> Arc<Cached<Deployment>> {
        Arc::new(Cached::new(d, &Options::default()))
    }

    fn live_hash() -> String {
        cached(fixture()).view(false).unwrap().hash.clone()
    }

    pub(crate) fn context(leader: bool) -> (Arc<Context>, Handle, watch::Sender<bool>) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let (tx, rx) = watch::channel(leader);
        let events =
            crate::operator::events::Publisher::new(client.clone(), contract::REPORTER, "test");
        let ctx = Context::new(
            client,
            Metrics::new().unwrap(),
            events,
            rx,
            Readiness::default(),
            Settings {
                resync_period: Duration::from_secs(600),
                api_timeout: Duration::from_secs(10),
                record_baseline: false,
                ignore: ignore::Defaults::new(&[], &[], false).unwrap(),
                terraform_state: None,
                helm: false,
                concurrency: 4,
            },
        );
        (Arc::new(ctx), handle, tx)
    }

    /// One request as the mock saw it: method, path and body.
    pub(crate) struct Seen {
        pub method: Method,
        pub path: String,
        pub body: serde_json::Value,
    }

    pub(crate) async fn next(
        handle: &mut Handle,
    ) -> Option<(Seen, tower_test::mock::SendResponse<Response<Body>>)> {
        let (request, send) = handle.next_request().await?;
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let bytes = http_body_util::BodyExt::collect(request.into_body())
            .await
            .unwrap()
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Some((Seen { method, path, body }, send))
    }

    pub(crate) fn respond(
        send: tower_test::mock::SendResponse<Response<Body>>,
        status: StatusCode,
        body: serde_json::Value,
    ) {
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }

    fn not_found() -> serde_json::Value {
        json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": "NotFound", "code": 404, "message": "not found"
        })
    }

    fn metadata_of(d: &Deployment) -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": d.metadata})
    }

    /// Answers the drift sequence: GET → the object, event → echoed, PATCH → `patch`.
    async fn answer_drift(handle: &mut Handle, d: &Deployment, patch: StatusCode) -> Vec<Seen> {
        let mut seen = Vec::new();
        while let Some((request, send)) = next(handle).await {
            match request.method {
                Method::GET => respond(send, StatusCode::OK, serde_json::to_value(d).unwrap()),
                Method::POST => respond(send, StatusCode::CREATED, request.body.clone()),
                Method::PATCH if patch == StatusCode::OK => {
                    respond(send, StatusCode::OK, metadata_of(d))
                }
                Method::PATCH => respond(send, patch, not_found()),
                other => panic!("unexpected {other} {}", request.path),
            }
            seen.push(request);
        }
        seen
    }

    fn key() -> ObjectId {
        ObjectId::new("Deployment", "fixtures", "deploy-minimal")
    }

    fn drifted_series(ctx: &Context) -> bool {
        ctx.metrics
            .render()
            .lines()
            .any(|l| l.starts_with("tfdrift_resource_drifted{"))
    }

    #[tokio::test]
    async fn in_sync_at_steady_state_makes_no_api_call() {
        let live = live_hash();
        let obj = cached(with_annotations(&[
            (contract::SPEC_HASH, &live),
            (contract::DRIFTED, "false"),
            (contract::LIVE_HASH, &live),
        ]));
        let (ctx, mut handle, _leader) = context(true);
        reconcile(obj, ctx.clone()).await.unwrap();
        drop(ctx);
        assert!(
            next(&mut handle).await.is_none(),
            "an API call at steady state"
        );
    }

    #[tokio::test]
    async fn a_standby_makes_no_api_call() {
        let obj = cached(with_annotations(&[(contract::SPEC_HASH, OTHER)]));
        let (ctx, mut handle, _leader) = context(false);
        reconcile(obj, ctx.clone()).await.unwrap();
        assert_eq!(ctx.previous(&key()), None);
        drop(ctx);
        assert!(next(&mut handle).await.is_none());
    }

    #[tokio::test]
    async fn drift_is_reported_then_recorded_without_a_fetch() {
        let d = with_annotations(&[(contract::SPEC_HASH, OTHER)]);
        let (ctx, mut handle, _leader) = context(true);
        let verifier =
            tokio::spawn(async move { answer_drift(&mut handle, &d, StatusCode::OK).await });
        reconcile(
            cached(with_annotations(&[(contract::SPEC_HASH, OTHER)])),
            ctx.clone(),
        )
        .await
        .unwrap();
        assert_eq!(ctx.previous(&key()), Some(Verdict::Drifted));
        assert!(drifted_series(&ctx));
        drop(ctx);
        let seen = verifier.await.unwrap();
        let calls: Vec<_> = seen.iter().map(|s| s.method.clone()).collect();
        // The watch event carried what explains the drift: no GET before the event.
        assert_eq!(calls, [Method::POST, Method::PATCH]);
        assert_eq!(
            seen[0].path,
            "/apis/events.k8s.io/v1/namespaces/fixtures/events"
        );
        assert_eq!(seen[0].body["reason"], "DriftDetected");
        assert_eq!(
            seen[1].body["metadata"]["annotations"][contract::DRIFTED],
            "true"
        );
    }

    #[tokio::test]
    async fn a_404_on_patch_leaves_nothing_remembered() {
        let d = with_annotations(&[(contract::SPEC_HASH, OTHER)]);
        let (ctx, mut handle, _leader) = context(true);
        let verifier =
            tokio::spawn(async move { answer_drift(&mut handle, &d, StatusCode::NOT_FOUND).await });
        reconcile(
            cached(with_annotations(&[(contract::SPEC_HASH, OTHER)])),
            ctx.clone(),
        )
        .await
        .unwrap();
        assert_eq!(ctx.previous(&key()), None);
        assert!(!drifted_series(&ctx), "a series for a deleted object");
        drop(ctx);
        assert_eq!(
            verifier.await.unwrap().last().map(|s| s.method.clone()),
            Some(Method::PATCH)
        );
    }

    /// The operator killed between the DriftDetected event and the PATCH that records it:
    /// the object still says it is not drifted, so the next process sends the event again
    /// — one duplicate for one crash, never a drift without its event.
    #[tokio::test]
    async fn killed_before_recording_a_drift_the_next_process_reports_it_again() {
        let annotations = [(contract::SPEC_HASH, OTHER), (contract::DRIFTED, "false")];
        let d = with_annotations(&annotations);
        let (ctx, mut handle, _leader) = context(true);
        let running = tokio::spawn(reconcile(cached(d.clone()), ctx));
        let mut first = Vec::new();
        while let Some((request, send)) = next(&mut handle).await {
            let method = request.method.clone();
            first.push(request);
            match method {
                Method::GET => respond(send, StatusCode::OK, serde_json::to_value(&d).unwrap()),
                Method::POST => respond(
                    send,
                    StatusCode::CREATED,
                    first.last().unwrap().body.clone(),
                ),
                // The PATCH is in flight: the process dies here.
                _ => {
                    running.abort();
                    break;
                }
            }
        }
        assert!(running.await.unwrap_err().is_cancelled());
        let first: Vec<_> = first
            .iter()
            .map(|s| (s.method.clone(), s.body["reason"].clone()))
            .collect();
        assert_eq!(first[0], (Method::POST, json!("DriftDetected")));
        assert_eq!(first[1].0, Method::PATCH);

        // The restarted operator sees the object as the lost PATCH left it.
        let (ctx, mut handle, _leader) = context(true);
        let d2 = d.clone();
        let verifier =
            tokio::spawn(async move { answer_drift(&mut handle, &d2, StatusCode::OK).await });
        reconcile(cached(d), ctx.clone()).await.unwrap();
        drop(ctx);
        let again = verifier.await.unwrap();
        let events: Vec<_> = again.iter().filter(|s| s.method == Method::POST).collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].body["reason"], "DriftDetected");
    }

    /// An object deleted while its reconcile is in flight: the reconcile finishes, but
    /// the series it would record do not come back.
    #[tokio::test]
    async fn forget_during_a_reconcile_keeps_the_series_gone() {
        let d = with_annotations(&[(contract::SPEC_HASH, OTHER)]);
        let (ctx, mut handle, _leader) = context(true);
        let running = tokio::spawn(reconcile(cached(d.clone()), ctx.clone()));
        while let Some((request, send)) = next(&mut handle).await {
            match request.method {
                Method::GET => respond(send, StatusCode::OK, serde_json::to_value(&d).unwrap()),
                Method::POST => {
                    // The watch sees the deletion now.
                    ctx.forget(&key());
                    respond(send, StatusCode::CREATED, request.body.clone());
                }
                _ => {
                    respond(send, StatusCode::OK, metadata_of(&d));
                    break;
                }
            }
        }
        running.await.unwrap().unwrap();
        assert_eq!(ctx.previous(&key()), None);
        assert!(!drifted_series(&ctx), "a deleted object's series came back");
        // A failure of that reconcile is not kept either.
        let error = Error::Timeout {
            verb: "patch",
            object: key().to_string(),
            timeout: Duration::from_secs(1),
        };
        error_policy(cached(d), &error, ctx.clone());
        assert!(lock(&ctx.failures).is_empty());
    }
}
