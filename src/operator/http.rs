//! HTTP endpoints: `/metrics` on the metrics address, `/healthz` and `/readyz` on the
//! probe address. HTTP/1 only; probes are not logged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::operator::metrics::Metrics;

/// How long a watch counts as failing after its last error, unless an event arrives
/// sooner. While the API server is unreachable the watcher retries (and errs) at least
/// every 30 s, its backoff cap.
const WATCH_FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Whether the operator is ready: every watch has listed once (or this replica stands by
/// as a non-leader), and no watch is failing right now.
#[derive(Clone, Default)]
pub struct Readiness {
    synced: Arc<AtomicBool>,
    /// The watches failing now, by what they watch (a kind, or the Terraform state
    /// Secrets of one namespace), and since when.
    failing: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.synced.store(ready, Ordering::Relaxed);
    }

    /// The watch of `kind` failed just now.
    pub fn watch_failed(&self, kind: &str) {
        lock(&self.failing).insert(kind.to_owned(), Instant::now());
    }

    /// The watch of `kind` ended with `error`; whether that is a failure, which it is
    /// unless the API server expired the watch (410 Gone: routine, it relists at once).
    /// Callers log and count failures only.
    pub fn watch_error(&self, kind: &str, error: &kube::runtime::watcher::Error) -> bool {
        if is_expired(error) {
            tracing::debug!(kind, "watch expired (410); relisting");
            return false;
        }
        self.watch_failed(kind);
        true
    }

    /// The watch of `kind` delivered an event: it works.
    pub fn watch_ok(&self, kind: &str) {
        let mut failing = lock(&self.failing);
        if !failing.is_empty() {
            failing.remove(kind);
        }
    }

    /// `Ok` when ready, else why not.
    pub fn check(&self) -> Result<(), String> {
        if !self.synced.load(Ordering::Relaxed) {
            return Err("caches not synced".into());
        }
        let mut failing = lock(&self.failing);
        failing.retain(|_, at| at.elapsed() < WATCH_FAILURE_WINDOW);
        if failing.is_empty() {
            Ok(())
        } else {
            let mut kinds: Vec<&str> = failing.keys().map(String::as_str).collect();
            kinds.sort_unstable();
            Err(format!("watch failing: {}", kinds.join(", ")))
        }
    }

    #[cfg(test)]
    pub fn get(&self) -> bool {
        self.check().is_ok()
    }
}

/// A watch the API server ended with `410 Gone` (the history it resumed from was
/// compacted) relists at once: routine, not a failing watch, and no reason to turn
/// unready for a minute.
fn is_expired(error: &kube::runtime::watcher::Error) -> bool {
    matches!(error, kube::runtime::watcher::Error::WatchError(status) if status.code == 410)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}")]
pub struct BindError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Metrics>| async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    m.render(),
                )
            }),
        )
        .with_state(metrics)
}

pub fn probe_router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(r): State<Readiness>| async move {
                match r.check() {
                    Ok(()) => (StatusCode::OK, "ok".to_owned()).into_response(),
                    Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
                }
            }),
        )
        .with_state(readiness)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_sync_and_healthy_watches() {
        let r = Readiness::default();
        assert_eq!(r.check(), Err("caches not synced".into()));
        r.set(true);
        assert!(r.get());
        r.watch_failed("Service");
        r.watch_failed("Deployment");
        assert_eq!(r.check(), Err("watch failing: Deployment, Service".into()));
        r.watch_ok("Deployment");
        r.watch_ok("Service");
        assert!(r.get());
    }

    #[test]
    fn a_watch_the_server_expired_is_routine_and_other_errors_are_not() {
        use kube::core::Status;
        use kube::runtime::watcher::Error;
        let gone = Status::failure("too old resource version", "Expired").with_code(410);
        assert!(is_expired(&Error::WatchError(gone.clone().boxed())));
        let forbidden = Status::failure("forbidden", "Forbidden").with_code(403);
        assert!(!is_expired(&Error::WatchError(forbidden.clone().boxed())));
        assert!(!is_expired(&Error::NoResourceVersion));
        let r = Readiness::default();
        r.set(true);
        assert!(!r.watch_error("HorizontalPodAutoscaler", &Error::WatchError(gone.boxed())));
        assert!(r.get(), "a 410 leaves readiness alone");
        assert!(r.watch_error(
            "HorizontalPodAutoscaler",
            &Error::WatchError(forbidden.boxed())
        ));
        assert_eq!(
            r.check(),
            Err("watch failing: HorizontalPodAutoscaler".into())
        );
    }
}
