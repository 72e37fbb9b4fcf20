//! Leader election on a `coordination.k8s.io/v1` Lease (kube-lease-manager).
//!
//! "Am I leader" is a watch channel. A leader that loses the lease, or cannot renew it,
//! stops at once: the task returns an error and the process exits for a restart, as
//! controller-runtime does. Two replicas never both believe they lead past the lease.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::operator::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("invalid leader election timing: {0}")]
    Timing(String),
    #[error("cannot set up the lease {namespace}/{name}")]
    Setup {
        namespace: String,
        name: String,
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
    #[error("lost the lease {0}; stopping so that another replica leads")]
    Lost(String),
    #[error("cannot renew the lease {lease}; stopping so that another replica leads")]
    RenewFailed {
        lease: String,
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
}

pub struct Params {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
}

impl Params {
    /// Whole seconds (the Lease API's unit): duration, and the grace before expiry at
    /// which the holder renews (duration − renew deadline).
    fn seconds(&self) -> Result<(u64, u64), LeaderError> {
        let duration = self.lease_duration.as_secs();
        let deadline = self.renew_deadline.as_secs();
        if duration < 2 || deadline == 0 || deadline >= duration {
            return Err(LeaderError::Timing(format!(
                "need whole seconds with 0 < renew deadline ({deadline}s) < lease duration ({duration}s)"
            )));
        }
        Ok((duration, duration - deadline))
    }
}

/// Builds the lease manager; fails fast on bad timing or a Lease it cannot create or read.
pub async fn manager(client: Client, p: &Params) -> Result<LeaseManager, LeaderError> {
    let (duration, grace) = p.seconds()?;
    LeaseManagerBuilder::new(client, &p.name)
        .with_namespace(&p.namespace)
        .with_identity(&p.identity)
        .with_duration(duration)
        .with_grace(grace)
        .with_field_manager(format!("tfdrift-leader-{}", p.identity))
        .build()
        .await
        .map_err(|source| LeaderError::Setup {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            source,
        })
}

/// Campaigns until `shutdown`, publishing leadership on `tx`. Releases the lease on
/// shutdown so that a standby takes over at once.
pub async fn run(
    manager: LeaseManager,
    lease: String,
    tx: watch::Sender<bool>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), LeaderError> {
    let mut backoff = Duration::from_millis(500);
    loop {
        let changed = tokio::select! {
            _ = shutdown.cancelled() => {
                let was_leader = *tx.borrow();
                let _ = tx.send(false);
                metrics.leader.set(0);
                if was_leader {
                    match manager.release().await {
                        Ok(()) => info!(%lease, "lease released"),
                        Err(error) => warn!(
                            %lease,
                            error = &error as &dyn std::error::Error,
                            "cannot release the lease; it expires by itself"
                        ),
                    }
                }
                return Ok(());
            }
            changed = manager.changed() => changed,
        };
        let leading = *tx.borrow();
        match changed {
            Ok(true) => {
                info!(%lease, "became leader");
                metrics.leader.set(1);
                let _ = tx.send(true);
                backoff = Duration::from_millis(500);
            }
            Ok(false) if leading => {
                let _ = tx.send(false);
                metrics.leader.set(0);
                return Err(LeaderError::Lost(lease));
            }
            Ok(false) => {}
            Err(source) if leading => {
                let _ = tx.send(false);
                metrics.leader.set(0);
                return Err(LeaderError::RenewFailed { lease, source });
            }
            Err(error) => {
                warn!(
                    %lease,
                    error = &error as &dyn std::error::Error,
                    retry_in = ?backoff,
                    "cannot check the lease"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
