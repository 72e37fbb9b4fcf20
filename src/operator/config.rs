//! What `tfdrift run` is told: the operator's own configuration, built from the command line
//! by [`crate::cli::args::RunArgs::config`] (so the runtime knows nothing of flags).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::core::ignore::Defaults;
use crate::core::ignore::api::AddressRule;
use crate::operator::kinds::{AnnotateKinds, SecretScope};

#[derive(Debug, Clone)]
pub struct Config {
    pub metrics_bind_address: SocketAddr,
    pub health_probe_bind_address: SocketAddr,
    /// Elect a leader through a Lease; only the leader writes.
    pub leader_elect: bool,
    /// The Lease's namespace; `None`: the pod's own, else the kubeconfig's.
    pub leader_election_namespace: Option<String>,
    pub leader_election_id: String,
    pub leader_election_lease_duration: Duration,
    pub leader_election_renew_deadline: Duration,
    pub resync_period: Duration,
    /// One namespace to watch; `None`: all.
    pub namespace: Option<String>,
    /// Namespaces of Terraform `kubernetes`-backend states to take intent from.
    pub terraform_state_namespaces: Vec<String>,
    /// Namespaces of Helm release records to take intent from.
    pub helm_namespaces: Vec<String>,
    /// Kinds whose named objects carry verdict annotations; the rest get records.
    pub annotate_kinds: AnnotateKinds,
    /// Where named Secrets are read.
    pub secret_namespaces: SecretScope,
    /// How often discovery is asked again while a named kind is not served.
    pub rediscover_period: Duration,
    /// The kinds of the spec-hash flow to watch, by name (`Deployment`), each once; empty:
    /// every kind tfdrift fingerprints.
    pub kinds: Vec<&'static str>,
    /// Objects reconciled at once, per kind.
    pub concurrency: u16,
    pub baseline_record: bool,
    pub ignore: Defaults,
    /// Ignore rules by Terraform address, for objects a state names.
    pub address_rules: Vec<AddressRule>,
    pub api_timeout: Duration,
    pub json_logs: bool,
    /// This replica in the Lease and in events; `None`: `$POD_NAME`, else the hostname.
    pub identity: Option<String>,
    pub kubeconfig: Option<PathBuf>,
}
