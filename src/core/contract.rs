//! The names that make up the contract with users: label, annotations, event types and
//! reasons.
//!
//! The `tfdrift.jin.dev` prefix is kept so that resources annotated for the original Go
//! `tfdrift-operator` keep working.

/// The crate version, as `tfdrift --version` and `tfdrift_build_info` say it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit this binary was built from (build.rs), or "unknown".
pub const COMMIT: &str = env!("TFDRIFT_GIT_COMMIT");

/// Opt-in label; only the exact value `"true"` opts in.
pub const ENABLED_LABEL: &str = "tfdrift.jin.dev/enabled";
pub const ENABLED_SELECTOR: &str = "tfdrift.jin.dev/enabled=true";
/// Intended state, written by the user, Terraform or CI (`tfdrift hash`).
pub const SPEC_HASH: &str = "tfdrift.jin.dev/spec-hash";
/// Verdict: "true", "false" or "unknown".
pub const DRIFTED: &str = "tfdrift.jin.dev/drifted";
/// RFC 3339 UTC time drift was first seen.
pub const DRIFTED_AT: &str = "tfdrift.jin.dev/drifted-at";
/// The live fingerprint's hash.
pub const LIVE_HASH: &str = "tfdrift.jin.dev/live-hash";
/// The fingerprint at a time the object was in sync: `v1:<hash>:<base64 deflate JSON>`.
pub const BASELINE: &str = "tfdrift.jin.dev/baseline";
/// What drifted, and who changed it, while drifted.
pub const DRIFT_SUMMARY: &str = "tfdrift.jin.dev/drift-summary";

/// Ignore rules, written by the user: comma-separated fingerprint paths.
pub const IGNORE: &str = "tfdrift.jin.dev/ignore";
/// The ignore rules that changed the live fingerprint (defaults, the object's own, an
/// HPA's `replicas`), comma-separated: what `tfdrift hash` must apply to match live-hash.
pub const IGNORED: &str = "tfdrift.jin.dev/ignored";
/// What is wrong with the rules of the ignore annotation, while something is.
pub const IGNORE_INVALID: &str = "tfdrift.jin.dev/ignore-invalid";

/// Where the operator took intent from, when it was not the spec-hash annotation:
/// `terraform-state`, or `helm` (a Helm release's record). Terraform's state wins over a spec-hash (it is Terraform's own record).
pub const INTENT_SOURCE: &str = "tfdrift.jin.dev/intent-source";
/// The Terraform address of an object named in state:
/// `module.app.kubernetes_deployment_v1.web["blue"]`.
pub const TERRAFORM_ADDRESS: &str = "tfdrift.jin.dev/terraform-address";
/// The state it is named in: `<namespace>/<workspace>/<secret suffix>` of the
/// `kubernetes` backend.
pub const TERRAFORM_WORKSPACE: &str = "tfdrift.jin.dev/terraform-workspace";

/// The Helm release an object's intent comes from (`intent-source: helm`): `NAMESPACE/NAME`.
pub const HELM_RELEASE: &str = "tfdrift.jin.dev/helm-release";
/// The revision of that release the object is judged against.
pub const HELM_REVISION: &str = "tfdrift.jin.dev/helm-revision";

/// The annotations the operator owns (and removes on opt-out). The baseline record is
/// intent, like the spec-hash, and stays.
pub const OPERATOR_ANNOTATIONS: [&str; 11] = [
    DRIFTED,
    DRIFTED_AT,
    LIVE_HASH,
    DRIFT_SUMMARY,
    IGNORED,
    IGNORE_INVALID,
    INTENT_SOURCE,
    TERRAFORM_ADDRESS,
    TERRAFORM_WORKSPACE,
    HELM_RELEASE,
    HELM_REVISION,
];

/// Field manager of the operator's patches.
pub const FIELD_MANAGER: &str = "tfdrift";
/// Event reporting controller.
pub const REPORTER: &str = "tfdrift.jin.dev/operator";

/// The type of an event tfdrift emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

pub mod reason {
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    pub const DRIFT_RESOLVED: &str = "DriftResolved";
    pub const BASELINE_MISSING: &str = "BaselineMissing";
    pub const INVALID_BASELINE: &str = "InvalidBaseline";
    pub const INVALID_IGNORE_RULE: &str = "InvalidIgnoreRule";
    pub const INVALID_TERRAFORM_STATE: &str = "InvalidTerraformState";
    pub const TERRAFORM_RESOURCE_MISSING: &str = "TerraformResourceMissing";
    /// Objects a state names that the operator cannot judge (a kind not served, not
    /// readable, outside what it watches), on the state's Secret.
    pub const NOT_JUDGED: &str = "NotJudged";
    /// A Helm release record that does not decode, on the record.
    pub const INVALID_HELM_RELEASE: &str = "InvalidHelmRelease";
    /// A release upgraded, rolled back or given other values outside the Terraform state
    /// whose `helm_release` names it, on the release's record.
    pub const HELM_RELEASE_CHANGED: &str = "HelmReleaseChanged";
}
