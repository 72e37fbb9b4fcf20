//! `tfdrift run`: builds the client, starts the servers, the lease and one controller
//! per kind, and stops them all on SIGTERM/SIGINT. Any task failing stops the process.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context as _;
use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::core::contract;
use crate::operator::config::Config;
use crate::operator::controller;
use crate::operator::http::{self, Readiness};
use crate::operator::leader;
use crate::operator::metrics::Metrics;
use crate::operator::reconcile::{Context, Settings};

const IN_CLUSTER_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

pub fn main(args: Config) -> anyhow::Result<()> {
    init_tracing(args.json_logs);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run(args))
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init()
    } else {
        builder.init()
    }
}

fn identity(args: &Config) -> String {
    args.identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("tfdrift-{}", std::process::id()))
}

fn lease_namespace(args: &Config, client: &Client) -> String {
    args.leader_election_namespace
        .clone()
        .or_else(|| {
            std::fs::read_to_string(IN_CLUSTER_NAMESPACE)
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| client.default_namespace().to_owned())
}

/// Resolves on SIGTERM or SIGINT.
async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                warn!(
                    error = &error as &dyn std::error::Error,
                    "cannot listen for SIGTERM"
                );
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = term => info!("SIGTERM received; shutting down"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT received; shutting down"),
    }
}

async fn run(args: Config) -> anyhow::Result<()> {
    info!(
        version = contract::VERSION,
        commit = contract::COMMIT,
        "tfdrift starting"
    );
    let ignore = args.ignore.clone();
    let client = crate::cluster::client(args.kubeconfig.as_deref()).await?;
    let identity = identity(&args);
    let metrics = Metrics::new().context("cannot register metrics")?;
    let readiness = Readiness::default();
    let shutdown = CancellationToken::new();
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();

    let metrics_listener = http::bind(args.metrics_bind_address).await?;
    let probe_listener = http::bind(args.health_probe_bind_address).await?;
    info!(metrics = %args.metrics_bind_address, probes = %args.health_probe_bind_address, "serving");
    tasks.spawn(
        serve(
            metrics_listener,
            http::metrics_router(metrics.clone()),
            shutdown.clone(),
        )
        .instrument(info_span!("metrics_server")),
    );
    tasks.spawn(
        serve(
            probe_listener,
            http::probe_router(readiness.clone()),
            shutdown.clone(),
        )
        .instrument(info_span!("probe_server")),
    );

    let (leader_tx, leader_rx) = watch::channel(!args.leader_elect);
    if args.leader_elect {
        let params = leader::Params {
            namespace: lease_namespace(&args, &client),
            name: args.leader_election_id.clone(),
            identity: identity.clone(),
            lease_duration: args.leader_election_lease_duration,
            renew_deadline: args.leader_election_renew_deadline,
        };
        let lease = format!("{}/{}", params.namespace, params.name);
        let manager = leader::manager(client.clone(), &params).await?;
        info!(%lease, %identity, "campaigning for leadership");
        let (m, s) = (metrics.clone(), shutdown.clone());
        tasks.spawn(
            async move {
                leader::run(manager, lease, leader_tx, m, s)
                    .await
                    .map_err(Into::into)
            }
            .instrument(info_span!("leader_election")),
        );
    } else {
        metrics.leader.set(1);
        // Keep the sender alive until shutdown: a dropped sender would end the channel.
        let s = shutdown.clone();
        tasks.spawn(
            async move {
                s.cancelled().await;
                drop(leader_tx);
                Ok(())
            }
            .instrument(info_span!("leader_without_election")),
        );
    }

    let kinds: Vec<&'static str> = if args.kinds.is_empty() {
        crate::core::fingerprint::KINDS.to_vec()
    } else {
        let mut seen = HashSet::new();
        args.kinds
            .iter()
            .copied()
            .filter(|k| seen.insert(*k))
            .collect()
    };
    let mut ignore = ignore;
    // HPAs matter only to the kinds they scale (which a state may name whatever --kinds says).
    ignore.hpa_replicas &= !args.terraform_state_namespaces.is_empty()
        || !args.helm_namespaces.is_empty()
        || kinds
            .iter()
            .any(|k| matches!(*k, "Deployment" | "StatefulSet"));
    // Verdict records go where the lease does: the operator's own namespace.
    let own_namespace = lease_namespace(&args, &client);
    let events =
        crate::operator::events::Publisher::new(client.clone(), contract::REPORTER, &identity);
    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics.clone(),
        events,
        leader_rx.clone(),
        readiness.clone(),
        Settings {
            resync_period: args.resync_period,
            api_timeout: args.api_timeout,
            record_baseline: args.baseline_record,
            ignore,
            terraform_state: (!args.terraform_state_namespaces.is_empty()
                || !args.helm_namespaces.is_empty())
            .then(|| own_namespace.clone()),
            helm: !args.helm_namespaces.is_empty(),
            concurrency: args.concurrency,
        },
    ));

    let (synced_tx, synced_rx) = mpsc::unbounded_channel();
    let mut hpa_triggers = crate::operator::hpa::Triggers::new();
    let mut state_triggers = crate::operator::tfstate::Triggers::new();
    let mut watches = kinds.len();
    for kind in &kinds {
        // One channel per kind: the HPA and state watches re-decide objects through it.
        let (tx, rx) = mpsc::unbounded_channel();
        if let name @ ("Deployment" | "StatefulSet") = *kind {
            hpa_triggers.insert(name, tx.clone());
        }
        state_triggers.insert(kind, tx);
        let opts = controller::Options {
            namespace: args.namespace.clone(),
            concurrency: args.concurrency,
            triggers: Some(rx),
        };
        let (ctx, tx, s) = (ctx.clone(), synced_tx.clone(), shutdown.clone());
        macro_rules! spawn_kind {
            ($($variant:ident: $ty:ty => $kind:literal, $api:literal;)*) => {
                match *kind {
                    $($kind => tasks.spawn(
                        run_kind::<$ty>(ctx, opts, tx, s).instrument(info_span!("controller", kind = $kind)),
                    ),)*
                    other => anyhow::bail!("{other} is not a kind tfdrift watches"),
                }
            };
        }
        crate::for_each_kind!(spawn_kind);
    }
    if let Some(scalers) = ctx.scalers.clone() {
        watches += 1;
        let (client, namespace, readiness) =
            (client.clone(), args.namespace.clone(), readiness.clone());
        let (tx, s) = (synced_tx.clone(), shutdown.clone());
        let named = ctx.intents.clone();
        tasks.spawn(
            async move {
                crate::operator::hpa::run(
                    client,
                    namespace,
                    scalers,
                    crate::operator::hpa::Listeners {
                        spec_hash: hpa_triggers,
                        named,
                    },
                    readiness,
                    tx,
                    s.clone(),
                )
                .await;
                if s.is_cancelled() {
                    Ok(())
                } else {
                    anyhow::bail!("the HorizontalPodAutoscaler watch stopped unexpectedly")
                }
            }
            .instrument(info_span!("hpa_watch")),
        );
    }
    if let Some(intents) = ctx.intents.clone() {
        // What both sources of intent judge with, and publish their events through.
        let defaults: Arc<[crate::core::ignore::api::ApiRule]> = args.ignore.api_rules().into();
        let address_rules: Arc<[crate::core::ignore::api::AddressRule]> =
            args.address_rules.clone().into();
        let source_events = Arc::new(crate::operator::events::Publisher::new(
            client.clone(),
            contract::REPORTER,
            &identity,
        ));
        if !args.helm_namespaces.is_empty() {
            watches += 1;
            let watch = crate::operator::helm::Watch {
                client: client.clone(),
                namespaces: args.helm_namespaces.clone(),
                intents: intents.clone(),
                triggers: state_triggers.clone(),
                defaults: defaults.clone(),
                address_rules: address_rules.clone(),
                events: source_events.clone(),
                metrics: metrics.clone(),
                readiness: readiness.clone(),
                leader: leader_rx.clone(),
                api_timeout: args.api_timeout,
                synced: synced_tx.clone(),
            };
            let s = shutdown.clone();
            tasks.spawn(
                async move {
                    crate::operator::helm::run(watch, s.clone()).await;
                    if s.is_cancelled() {
                        Ok(())
                    } else {
                        anyhow::bail!("the Helm release watch stopped unexpectedly")
                    }
                }
                .instrument(info_span!("helm_release_watch")),
            );
        }
        // The state watch also reports the named objects the cluster lacks (a release's too).
        watches += 1;
        let watch = crate::operator::tfstate::Watch {
            client: client.clone(),
            namespaces: args.terraform_state_namespaces.clone(),
            intents,
            triggers: state_triggers,
            defaults,
            address_rules,
            events: source_events,
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            leader: leader_rx.clone(),
            watch_namespace: args.namespace.clone(),
            helm_namespaces: args.helm_namespaces.clone().into(),
            synced: synced_tx.clone(),
        };
        let s = shutdown.clone();
        tasks.spawn(
            async move {
                crate::operator::tfstate::run(watch, s.clone()).await;
                if s.is_cancelled() {
                    Ok(())
                } else {
                    anyhow::bail!("the Terraform state watch stopped unexpectedly")
                }
            }
            .instrument(info_span!("terraform_state_watch")),
        );
        // The kinds the states name, each watched once discovery finds it.
        watches += 1;
        let settings = crate::operator::kinds::Settings {
            namespace: args.namespace.clone(),
            secrets: args.secret_namespaces.clone(),
            annotate: args.annotate_kinds.clone(),
            rediscover: args.rediscover_period,
        };
        let events = Arc::new(crate::operator::events::Publisher::new(
            client.clone(),
            contract::REPORTER,
            &identity,
        ));
        let (c, tx, s) = (ctx.clone(), synced_tx.clone(), shutdown.clone());
        tasks.spawn(
            async move {
                crate::operator::kinds::run(c, settings, events, tx, s.clone()).await;
                if s.is_cancelled() {
                    Ok(())
                } else {
                    anyhow::bail!("the watches of the kinds the states name stopped unexpectedly")
                }
            }
            .instrument(info_span!("kinds")),
        );
        if let Some(records) = ctx.records.clone() {
            let (r, s) = (readiness.clone(), shutdown.clone());
            tasks.spawn(
                async move {
                    records.run(r, s.clone()).await;
                    if s.is_cancelled() {
                        Ok(())
                    } else {
                        anyhow::bail!("the watch of verdict records stopped unexpectedly")
                    }
                }
                .instrument(info_span!("verdict_records")),
            );
        }
    }
    drop(synced_tx);
    info!(
        kinds = ?kinds,
        namespace = args.namespace.as_deref().unwrap_or("(all)"),
        resync = ?args.resync_period,
        leader_elect = args.leader_elect,
        hpa_aware = ctx.scalers.is_some(),
        "controllers started"
    );
    tasks.spawn(
        track_readiness(
            readiness,
            watches,
            synced_rx,
            leader_rx,
            args.leader_elect,
            shutdown.clone(),
        )
        .instrument(info_span!("readiness")),
    );

    let s = shutdown.clone();
    tasks.spawn(
        async move {
            tokio::select! {
                _ = signal() => s.cancel(),
                _ = s.cancelled() => {}
            }
            Ok(())
        }
        .instrument(info_span!("signals")),
    );

    // The first task to end (an error, or everything winding down on shutdown) decides.
    let mut failure: Option<anyhow::Error> = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(err) = result {
            let chain: &(dyn std::error::Error + 'static) = err.as_ref();
            error!(
                error = crate::core::text::chain(chain),
                "a task failed; stopping"
            );
            failure.get_or_insert(err);
        }
        if !shutdown.is_cancelled() {
            shutdown.cancel();
        }
    }
    match failure {
        Some(err) => Err(err),
        None => {
            info!("stopped");
            Ok(())
        }
    }
}

async fn run_kind<K: crate::core::fingerprint::Fingerprint>(
    ctx: Arc<Context>,
    opts: controller::Options,
    synced: mpsc::UnboundedSender<&'static str>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    controller::run::<K>(ctx, opts, synced, shutdown.clone()).await;
    if shutdown.is_cancelled() {
        Ok(())
    } else {
        anyhow::bail!(
            "the {} controller stopped unexpectedly",
            <K as k8s_openapi::Resource>::KIND
        )
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().ok();
    http::serve(listener, router, shutdown.cancelled_owned())
        .await
        .with_context(|| format!("HTTP server on {addr:?} failed"))
}

/// How often freed heap is handed back to the OS.
const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// Hands freed heap pages back to the OS. Bursts (the initial lists, which decode every
/// object in full before the cache keeps its small summary, and the first round of
/// patches) leave freed memory that glibc would otherwise keep for the life of the
/// process. A trim walks only free chunks: cheap at this heap size.
#[allow(unsafe_code)]
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the OS; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Ready once every kind's cache has synced; a standby (leader election on, not leading)
/// is ready too, so that a rollout does not wait on the lease.
async fn track_readiness(
    readiness: Readiness,
    kinds: usize,
    mut synced: mpsc::UnboundedReceiver<&'static str>,
    mut leader: watch::Receiver<bool>,
    leader_elect: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut synced_kinds = HashSet::new();
    let mut synced_open = true;
    let mut trim = tokio::time::interval(TRIM_INTERVAL);
    trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let all_synced = synced_kinds.len() >= kinds;
        let standby = leader_elect && !*leader.borrow_and_update();
        readiness.set(all_synced || standby);
        tokio::select! {
            _ = shutdown.cancelled() => {
                readiness.set(false);
                return Ok(());
            }
            kind = synced.recv(), if synced_open => match kind {
                Some(kind) => { synced_kinds.insert(kind); }
                None => synced_open = false,
            },
            // Off the async workers: a trim must not delay a reconcile.
            _ = trim.tick() => drop(tokio::task::spawn_blocking(release_freed_memory)),
            changed = leader.changed() => if changed.is_err() {
                // The lease task has ended; its own result stops the process.
                shutdown.cancelled().await;
            },
        }
    }
}
