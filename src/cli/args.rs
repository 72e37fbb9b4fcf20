//! Command line: `tfdrift run` (the operator), `tfdrift hash` (fingerprints) and `tfdrift
//! check` (a Terraform state against the cluster). Every `run` flag can also be set through a
//! `TFDRIFT_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tfdrift",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TFDRIFT_GIT_COMMIT"), ")"),
    about = "Detects drift between what Terraform (or any IaC tool) applied and what is live in Kubernetes",
    long_about = "Detects drift between what Terraform (or any IaC/GitOps tool) applied and what is \
live in a Kubernetes cluster. Resources opt in with the label tfdrift.jin.dev/enabled=true and \
carry their intended state as the annotation tfdrift.jin.dev/spec-hash (computed with \
`tfdrift hash`). Objects Terraform manages with typed resources need neither: `tfdrift check \
--tfstate` compares a Terraform state with the cluster. Fields that are not intent (an HPA's replicas, an injected sidecar, a stamped \
BUILD_ID) are left out with the tfdrift.jin.dev/ignore annotation or the --ignore-* flags. The \
operator never changes a spec: it reports through annotations, Warning events and Prometheus \
metrics."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator against the cluster of the current kubeconfig (or in-cluster config).
    Run(Box<RunArgs>),
    /// Print the spec-hash of manifests or live objects (YAML or JSON, multi-document, or a List).
    #[command(
        long_about = "Print the spec-hash of manifests or live objects (YAML or JSON, multi-document, \
or a List). Ignore rules are applied before hashing, as the operator applies them: each object's \
tfdrift.jin.dev/ignore annotation (and the tfdrift.jin.dev/ignored one the operator writes on live \
objects), the --ignore-* flags (give them the values tfdrift run has), and `replicas` of a \
Deployment or StatefulSet that an HPA in the same input scales."
    )]
    Hash(HashArgs),
    /// Compare every Kubernetes instance of a Terraform state, or every object of a Helm
    /// release, with the live cluster (read-only), on every field the intent sets.
    #[command(
        long_about = "Compare every Kubernetes instance of a Terraform state with the live cluster, \
read-only, on every field the state sets: every managed kubernetes_* resource (typed resources of \
any kind the provider has, kubernetes_manifest of any kind including custom resources, the \
patch-style kubernetes_labels, kubernetes_annotations, kubernetes_env, kubernetes_config_map_v1_data, \
kubernetes_secret_v1_data, kubernetes_node_taint), kubectl_manifest, and helm_release. Each is \
in-sync, drifted (each changed field by its API path, and who changed it), missing (in state, not \
in the cluster), recreated (deleted and created again outside Terraform: its uid differs), or \
not-judged / unsupported with the reason (a kind the cluster does not serve or the caller may not \
read, a tainted instance, a type tfdrift does not read). A helm_release is judged by its release \
record in the cluster: every object of the latest deployed revision, named by the address; a \
revision or values other than the state's are drift of the release itself. --helm-release judges \
the objects of Helm releases with no Terraform state at all.\n\nSemantics are those of \
`terraform plan -refresh-only`: typed resources own every attribute the state holds (a label, a \
toleration, a container, a verb added live is drift; the provider's sets compare as sets); \
kubernetes_manifest the paths its manifest sets but its computed_fields; kubectl_manifest the fields \
of its body but its ignore_fields; patch-style resources only their keys. A reordering alone of a \
keyed list or a set is not drift. Fields the server or a controller assigns (cluster IPs, node \
ports, token Secrets, a Job's selector) are not compared. Secret values, env values, ConfigMap data \
and command lines are never printed: Secret values are kept as keyed digests only.\n\nWorks with \
every backend: `terraform state pull | tfdrift check --tfstate -`.\n\nExit status: 0 all judged in \
sync, 2 any drifted, missing or recreated (or, with --fail-on-unjudged, any not judged), 1 an error \
(a bad state, an unreachable cluster, an object that could not be read), as terraform plan \
-detailed-exitcode."
    )]
    Check(CheckArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

macro_rules! watched_kind {
    ($($variant:ident: $ty:ty => $kind:literal, $api:literal;)*) => {
        /// The kinds the operator can watch.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
        #[value(rename_all = "PascalCase")]
        pub enum WatchedKind {
            $($variant,)*
        }

        impl WatchedKind {
            /// The kind's name, as in `kind:`.
            pub fn name(self) -> &'static str {
                match self {
                    $(WatchedKind::$variant => $kind,)*
                }
            }
        }
    };
}
crate::for_each_kind!(watched_kind);

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Address of the Prometheus /metrics endpoint.
    #[arg(
        long,
        env = "TFDRIFT_METRICS_BIND_ADDRESS",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_bind_address: SocketAddr,

    /// Address of the /healthz and /readyz probes.
    #[arg(
        long,
        env = "TFDRIFT_HEALTH_PROBE_BIND_ADDRESS",
        default_value = "0.0.0.0:8081"
    )]
    pub health_probe_bind_address: SocketAddr,

    /// Elect a leader through a coordination.k8s.io/v1 Lease; only the leader writes.
    /// Standbys keep their caches warm and report ready.
    #[arg(long, env = "TFDRIFT_LEADER_ELECT")]
    pub leader_elect: bool,

    /// Namespace of the leader-election Lease. Default: the pod's own namespace in
    /// cluster, otherwise the kubeconfig's namespace.
    #[arg(long, env = "TFDRIFT_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "TFDRIFT_LEADER_ELECTION_ID",
        default_value = "tfdrift-operator"
    )]
    pub leader_election_id: String,

    /// How long a lease is valid without renewal; a standby takes over after it.
    #[arg(long, env = "TFDRIFT_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub leader_election_lease_duration: Duration,

    /// How long the leader keeps trying to renew before it gives up leadership and exits.
    #[arg(long, env = "TFDRIFT_LEADER_ELECTION_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub leader_election_renew_deadline: Duration,

    /// Re-check every object this often even without a change (e.g. 30s, 10m, 1h).
    #[arg(long, env = "TFDRIFT_RESYNC_PERIOD", default_value = "10m", value_parser = parse_duration)]
    pub resync_period: Duration,

    /// Watch only this namespace. Default: all namespaces.
    #[arg(long, env = "TFDRIFT_NAMESPACE")]
    pub namespace: Option<String>,

    /// Namespaces holding the state Secrets of Terraform's `kubernetes` backend,
    /// comma-separated. Every object a state there names, of any kind, is judged against it
    /// as `tfdrift check` judges it — no label, no annotation needed; the state wins over a
    /// spec-hash. Each kind the states name is watched (found through discovery; objects no
    /// state names are not kept); reading the state Secrets and Leases there needs the
    /// config/terraform-state component, reading the kinds the config/terraform-kinds one.
    #[arg(
        long,
        env = "TFDRIFT_TERRAFORM_STATE_NAMESPACE",
        value_delimiter = ',',
        value_name = "NS"
    )]
    pub terraform_state_namespace: Vec<String>,

    /// Namespaces whose Helm v3 releases are a source of intent, comma-separated. Every
    /// object of each release's latest deployed revision (its manifest, read from Helm's
    /// release record Secret) is judged as `tfdrift check --helm-release` judges it, and
    /// named by the release (and by the Terraform address of a `helm_release` naming it in
    /// a --terraform-state-namespace state). While Helm is installing, upgrading or rolling
    /// back, no new drift is reported. Reading the records needs the config/helm-releases
    /// component per namespace, reading the kinds the config/terraform-kinds one.
    #[arg(
        long,
        env = "TFDRIFT_HELM_NAMESPACE",
        value_delimiter = ',',
        value_name = "NS"
    )]
    pub helm_namespace: Vec<String>,

    /// Kinds whose objects named by a state carry the verdict annotations, comma-separated,
    /// `Kind` for the core group or `Kind.group` (e.g. Deployment.apps,Ingress.networking.k8s.io);
    /// empty: none. Every other kind gets no write at all: its verdict is kept in a record in
    /// the operator's own namespace. Secrets and RBAC kinds are refused: patching a Role needs
    /// every permission it grants. Each kind added needs `patch` on it.
    #[arg(
        long,
        env = "TFDRIFT_ANNOTATE_KINDS",
        value_delimiter = ',',
        value_name = "KIND[.GROUP]",
        default_value = "Deployment.apps,StatefulSet.apps,DaemonSet.apps,Service,ConfigMap"
    )]
    pub annotate_kinds: Vec<String>,

    /// Namespaces where the Secrets a state names are read, comma-separated, or `*` for every
    /// namespace. Default: none (named Secrets are reported not judged). Needs the
    /// config/secrets component (one namespace) or config/secrets-cluster (`*`).
    #[arg(
        long,
        env = "TFDRIFT_SECRET_NAMESPACES",
        value_delimiter = ',',
        value_name = "NS"
    )]
    pub secret_namespaces: Vec<String>,

    /// While a kind a state names is not served (a CRD not installed yet), ask discovery
    /// again this often.
    #[arg(long, env = "TFDRIFT_REDISCOVER_PERIOD", default_value = "2m", value_parser = parse_duration)]
    pub rediscover_period: Duration,

    /// Kinds of the spec-hash flow (labelled objects) to watch, comma-separated (e.g.
    /// Deployment,Service). Default: all five it fingerprints. Objects states name are
    /// watched whatever their kind.
    #[arg(long, env = "TFDRIFT_KINDS", value_delimiter = ',', value_enum)]
    pub kinds: Vec<WatchedKind>,

    /// Objects reconciled at once, per kind.
    #[arg(long, env = "TFDRIFT_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Record the fingerprint of in-sync objects in the tfdrift.jin.dev/baseline annotation
    /// (compressed, at most 16 KiB), so that a later drift can be explained field by field.
    #[arg(long, env = "TFDRIFT_BASELINE_RECORD", default_value_t = true, action = clap::ArgAction::Set)]
    pub baseline_record: bool,

    #[command(flatten)]
    pub ignore: IgnoreArgs,

    #[command(flatten)]
    pub fields: IgnoreFieldArgs,

    /// Timeout of every API call the reconciler makes.
    #[arg(long, env = "TFDRIFT_API_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub api_timeout: Duration,

    /// Log format; the level is set with RUST_LOG (default info).
    #[arg(long, env = "TFDRIFT_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// This replica's identity in the Lease and in events. Default: $POD_NAME, else the
    /// hostname.
    #[arg(long, env = "TFDRIFT_IDENTITY")]
    pub identity: Option<String>,

    /// Path to a kubeconfig. Default: $KUBECONFIG, ~/.kube/config, or in-cluster config.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

impl RunArgs {
    /// The operator's configuration: the flags, checked.
    pub fn config(&self) -> Result<crate::operator::config::Config, RunArgsError> {
        let mut kinds: Vec<&'static str> = Vec::new();
        for kind in &self.kinds {
            if !kinds.contains(&kind.name()) {
                kinds.push(kind.name());
            }
        }
        Ok(crate::operator::config::Config {
            metrics_bind_address: self.metrics_bind_address,
            health_probe_bind_address: self.health_probe_bind_address,
            leader_elect: self.leader_elect,
            leader_election_namespace: self.leader_election_namespace.clone(),
            leader_election_id: self.leader_election_id.clone(),
            leader_election_lease_duration: self.leader_election_lease_duration,
            leader_election_renew_deadline: self.leader_election_renew_deadline,
            resync_period: self.resync_period,
            namespace: self.namespace.clone(),
            terraform_state_namespaces: self.terraform_state_namespace.clone(),
            helm_namespaces: self.helm_namespace.clone(),
            annotate_kinds: annotate_kinds(&self.annotate_kinds)?,
            secret_namespaces: secret_scope(&self.secret_namespaces),
            rediscover_period: self.rediscover_period,
            kinds,
            concurrency: self.concurrency,
            baseline_record: self.baseline_record,
            ignore: self.ignore.defaults().map_err(RunArgsError::Ignore)?,
            address_rules: self.fields.rules().map_err(RunArgsError::Fields)?,
            api_timeout: self.api_timeout,
            json_logs: self.log_format == LogFormat::Json,
            identity: self.identity.clone(),
            kubeconfig: self.kubeconfig.clone(),
        })
    }
}

/// Flags of `tfdrift run` that do not hold together.
#[derive(Debug, thiserror::Error)]
pub enum RunArgsError {
    #[error(transparent)]
    Ignore(crate::core::ignore::DefaultsError),
    #[error(transparent)]
    Fields(IgnoreFieldError),
    #[error(
        "--annotate-kinds: {0} is never annotated: patching it needs every permission it grants or holds (its verdict is kept in a record instead)"
    )]
    NeverAnnotated(String),
}

/// `--annotate-kinds`: `Kind` (core group) or `Kind.group`, Secrets and RBAC kinds refused.
fn annotate_kinds(list: &[String]) -> Result<crate::operator::kinds::AnnotateKinds, RunArgsError> {
    let mut kinds = Vec::new();
    for item in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (kind, group) = item.split_once('.').unwrap_or((item, ""));
        let never = (group.is_empty() && kind == "Secret") || group == "rbac.authorization.k8s.io";
        if never {
            return Err(RunArgsError::NeverAnnotated(item.to_owned()));
        }
        let entry = (group.to_owned(), kind.to_owned());
        if !kinds.contains(&entry) {
            kinds.push(entry);
        }
    }
    Ok(crate::operator::kinds::AnnotateKinds(kinds))
}

/// `--secret-namespaces`: none, some, or `*`.
fn secret_scope(list: &[String]) -> crate::operator::kinds::SecretScope {
    use crate::operator::kinds::SecretScope;
    let list: Vec<String> = list
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if list.iter().any(|s| s == "*") {
        SecretScope::All
    } else if list.is_empty() {
        SecretScope::None
    } else {
        SecretScope::Namespaces(list)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people: `HASH  Kind/namespace/name` lines (with the address for hash --tfstate);
    /// check prints a table and a summary line.
    Text,
    /// For scripts: hash prints an array of {"kind","namespace","name","hash"} (and
    /// "address" with --tfstate); check prints {"resources":[…],"summary":{…}}.
    Json,
}

#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("intent").required(true).multiple(true).args(["tfstate", "helm_release"]))]
pub struct CheckArgs {
    /// The Terraform state (format v4, plain or gzip'd JSON), or - for standard input. Its
    /// helm_release instances are judged by their release records in the cluster.
    #[arg(long, value_name = "FILE")]
    pub tfstate: Option<PathBuf>,

    /// A Helm v3 release to judge every object of: `NAMESPACE/NAME`, `NAME` (in the
    /// kubeconfig's namespace), or `NAMESPACE/*` for every release there. Its intent is the
    /// latest deployed revision's manifest, read from Helm's release record (a Secret, or a
    /// ConfigMap with HELM_DRIVER=configmap); needs list and get on secrets there.
    /// Repeatable; may be given with --tfstate.
    #[arg(long, value_name = "[NAMESPACE/]NAME")]
    pub helm_release: Vec<crate::cli::helm::Wanted>,

    /// Path to a kubeconfig. Default: $KUBECONFIG, ~/.kube/config, or in-cluster config.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Output format: a table with a summary line, or JSON.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: OutputFormat,

    /// Objects read from the API server at once.
    #[arg(long, env = "TFDRIFT_CHECK_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Timeout of each API call (e.g. 10s, 1m).
    #[arg(long, env = "TFDRIFT_API_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub api_timeout: Duration,

    #[command(flatten)]
    pub ignore: IgnoreArgs,

    #[command(flatten)]
    pub fields: IgnoreFieldArgs,

    /// Exit 2 when any instance is not judged or unsupported (a pipeline that wants every
    /// instance judged), as it does for drift.
    #[arg(long, env = "TFDRIFT_FAIL_ON_UNJUDGED")]
    pub fail_on_unjudged: bool,
}

/// Rules by Terraform address and API path, for what `lifecycle { ignore_changes }` or the
/// provider's `ignore_annotations` say in HCL (never in the state).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Ignore rules by address")]
pub struct IgnoreFieldArgs {
    /// `ADDRESS PATH`: leave the API path PATH out of the instances whose address matches
    /// ADDRESS (`*` any characters, `?` one), e.g. `'kubernetes_deployment_v1.web spec.replicas'`,
    /// `'module.app.* metadata.annotations[example.com/owner]'`; a PATH alone applies to every
    /// instance. Repeatable.
    #[arg(long = "ignore-field", value_name = "'ADDRESS PATH'")]
    pub ignore_field: Vec<String>,

    /// A file of such rules, one per line (`#` starts a comment).
    #[arg(long, env = "TFDRIFT_IGNORE_FILE", value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
}

impl IgnoreFieldArgs {
    /// The rules of the flags and the file.
    pub fn rules(&self) -> Result<Vec<crate::core::ignore::api::AddressRule>, IgnoreFieldError> {
        use crate::core::ignore::api::AddressRule;
        let mut rules = self
            .ignore_field
            .iter()
            .map(|r| AddressRule::parse(r).map_err(IgnoreFieldError::Flag))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(path) = &self.ignore_file {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| IgnoreFieldError::Io {
                file: name.clone(),
                source,
            })?;
            rules.extend(AddressRule::parse_file(&name, &text).map_err(IgnoreFieldError::File)?);
        }
        Ok(rules)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IgnoreFieldError {
    #[error("--ignore-field")]
    Flag(#[source] crate::core::ignore::api::AddressRuleError),
    #[error("--ignore-file")]
    File(#[source] crate::core::ignore::api::AddressRuleError),
    #[error("--ignore-file: cannot read {file}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["file", "tfstate"]))]
pub struct HashArgs {
    /// File to read, or - for standard input. YAML or JSON: one object, several YAML
    /// documents, or a `kind: List` as `kubectl get -o json` prints.
    #[arg(short = 'f', long = "filename")]
    pub file: Option<PathBuf>,

    /// A Terraform state (format v4, plain or gzip'd JSON: terraform.tfstate, a .backup,
    /// or - for `terraform state pull | …`) to hash instead: one line per supported
    /// instance, `HASH  Kind/namespace/name  ADDRESS`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["annotate", "no_baseline"])]
    pub tfstate: Option<PathBuf>,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: OutputFormat,

    /// Print the manifests back with the opt-in label and the spec-hash annotation set,
    /// ready to apply.
    #[arg(long, conflicts_with = "output")]
    pub annotate: bool,

    #[command(flatten)]
    pub ignore: IgnoreArgs,

    /// With --annotate, do not write the tfdrift.jin.dev/baseline record (the compressed
    /// fingerprint that lets the operator say what drifted from the very first verdict).
    #[arg(long, requires = "annotate")]
    pub no_baseline: bool,
}

/// Ignore rules every object gets. `tfdrift run` and `tfdrift hash` take the same flags
/// and environment variables, and must be given the same values for their hashes to meet.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Ignore rules (give tfdrift run and tfdrift hash the same)")]
pub struct IgnoreArgs {
    /// Containers and init containers left out of every fingerprint, by name, comma-separated
    /// (sidecars a mesh or webhook injects). Empty (--ignore-containers=) ignores none.
    #[arg(
        long,
        env = "TFDRIFT_IGNORE_CONTAINERS",
        value_delimiter = ',',
        default_value = "istio-proxy,istio-init,linkerd-proxy,linkerd-init",
        value_name = "NAMES"
    )]
    pub ignore_containers: Vec<String>,

    /// Fingerprint paths left out of every object that has them, comma-separated, in the
    /// syntax of the drift diff and the tfdrift.jin.dev/ignore annotation (e.g.
    /// `containers[*].resources,env[BUILD_ID]`).
    #[arg(
        long,
        env = "TFDRIFT_IGNORE_PATHS",
        value_delimiter = ',',
        value_name = "PATHS"
    )]
    pub ignore_paths: Vec<String>,

    /// Leave out `replicas` of a Deployment or StatefulSet a HorizontalPodAutoscaler scales.
    /// `tfdrift run` watches HPAs (read-only) for it; `tfdrift hash` looks for HPAs in its
    /// input.
    #[arg(long, env = "TFDRIFT_IGNORE_HPA_REPLICAS", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub ignore_hpa_replicas: bool,
}

impl IgnoreArgs {
    /// The checked rules.
    pub fn defaults(
        &self,
    ) -> Result<crate::core::ignore::Defaults, crate::core::ignore::DefaultsError> {
        crate::core::ignore::Defaults::new(
            &self.ignore_containers,
            &self.ignore_paths,
            self.ignore_hpa_replicas,
        )
    }
}

/// Accepts Go-style and friendly durations (`90s`, `10m`, `1h30m`, `2 minutes`) and ISO 8601.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration like 30s, 10m or 1h: {e}"))?;
    let d = Duration::try_from(d).map_err(|_| format!("{s:?} is negative"))?;
    if d.is_zero() {
        return Err(format!("{s:?} must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn run_defaults_follow_the_design() {
        let cli = Cli::try_parse_from(["tfdrift", "run"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.metrics_bind_address.to_string(), "0.0.0.0:8080");
        assert_eq!(args.health_probe_bind_address.to_string(), "0.0.0.0:8081");
        assert_eq!(args.resync_period, Duration::from_secs(600));
        assert!(args.kinds.is_empty(), "empty means all");
        assert!(!args.leader_elect);
    }

    #[test]
    fn kinds_parse_comma_separated() {
        let cli = Cli::try_parse_from(["tfdrift", "run", "--kinds", "Deployment,Service"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            args.kinds,
            vec![WatchedKind::Deployment, WatchedKind::Service]
        );
        assert!(Cli::try_parse_from(["tfdrift", "run", "--kinds", "Pod"]).is_err());
    }
}
