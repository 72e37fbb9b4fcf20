//! The operator's Prometheus metrics (prefix `tfdrift_`). Labels come from bounded sets
//! (the group and kind of what states name or the operator fingerprints, result, verb); the
//! per-object series, `resource_drifted` and `resource_missing`, exist only while their object
//! is drifted or missing.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub resources_watched: IntGaugeVec,
    pub resources_drifted: IntGaugeVec,
    pub resource_drifted: IntGaugeVec,
    pub drift_detected_total: IntCounterVec,
    pub reconcile_total: IntCounterVec,
    pub reconcile_duration_seconds: HistogramVec,
    pub api_errors_total: IntCounterVec,
    pub leader: IntGauge,
    pub terraform_state_resources: IntGaugeVec,
    pub terraform_state_drifted: IntGaugeVec,
    pub terraform_state_missing: IntGaugeVec,
    pub terraform_state_errors_total: IntCounterVec,
    pub terraform_state_not_judged: IntGaugeVec,
    pub resource_missing: IntGaugeVec,
    pub helm_release_resources: IntGaugeVec,
    pub helm_release_changed: IntGaugeVec,
    pub helm_release_errors_total: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("tfdrift".into()), None)?;
        let gauge =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
                let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(g.clone()))?;
                Ok(g)
            };
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let resources_watched = gauge(
            "resources_watched",
            "Objects judged, by intent source: opted in by label (spec-hash), or named by a Terraform state (terraform-state)",
            &["group", "kind", "source"],
        )?;
        let resources_drifted = gauge(
            "resources_drifted",
            "Objects currently drifted",
            &["group", "kind"],
        )?;
        let resource_drifted = gauge(
            "resource_drifted",
            "1 for each object currently drifted (no series otherwise)",
            &["group", "kind", "namespace", "name"],
        )?;
        let drift_detected_total = counter(
            "drift_detected_total",
            "Transitions into drift",
            &["group", "kind"],
        )?;
        let reconcile_total = counter(
            "reconcile_total",
            "Reconciles by outcome: in_sync, drifted, baseline_missing, invalid_baseline, error",
            &["group", "kind", "result"],
        )?;
        let api_errors_total = counter(
            "api_errors_total",
            "Failed Kubernetes API calls",
            &["group", "kind", "verb"],
        )?;
        let reconcile_duration_seconds = HistogramVec::new(
            HistogramOpts::new("reconcile_duration_seconds", "Time spent in one reconcile")
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                ]),
            &["group", "kind"],
        )?;
        registry.register(Box::new(reconcile_duration_seconds.clone()))?;
        let leader = IntGauge::new(
            "leader",
            "1 while this replica holds the leader lease (or runs without election)",
        )?;
        registry.register(Box::new(leader.clone()))?;
        let build_info = gauge(
            "build_info",
            "Always 1; the labels say which build is running",
            &["version", "commit"],
        )?;
        build_info
            .with_label_values(&[
                crate::core::contract::VERSION,
                crate::core::contract::COMMIT,
            ])
            .set(1);
        let terraform_state_resources = gauge(
            "terraform_state_resources",
            "Objects a Terraform state names, per state of the kubernetes backend",
            &["namespace", "workspace", "suffix"],
        )?;
        let terraform_state_drifted = gauge(
            "terraform_state_drifted",
            "Objects a Terraform state names that are drifted",
            &["namespace", "workspace", "suffix"],
        )?;
        let terraform_state_missing = gauge(
            "terraform_state_missing",
            "Objects a Terraform state names that the cluster lacks",
            &["namespace", "workspace", "suffix"],
        )?;
        let resource_missing = gauge(
            "resource_missing",
            "1 for each object a Terraform state names that the cluster lacks (no series otherwise)",
            &["group", "kind", "namespace", "name", "address"],
        )?;
        let terraform_state_errors_total = counter(
            "terraform_state_errors_total",
            "Terraform states that could not be read (their objects keep their last verdict)",
            &["namespace", "workspace", "suffix", "reason"],
        )?;
        let terraform_state_not_judged = gauge(
            "terraform_state_not_judged",
            "Instances of a Terraform state the operator does not judge, by reason: unsupported (a type tfdrift does not read), not_judged (tainted, deposed, a helm_release outside --helm-namespace), invalid, not_served (the cluster does not serve the kind), forbidden (the operator may not read it), not_watched (outside --namespace or --secret-namespaces, or cluster-scoped under --namespace)",
            &["namespace", "workspace", "suffix", "reason"],
        )?;
        let helm_release_resources = gauge(
            "helm_release_resources",
            "Objects of a Helm release's deployed revision the operator judges (--helm-namespace)",
            &["namespace", "release"],
        )?;
        let helm_release_changed = gauge(
            "helm_release_changed",
            "1 while a Helm release's deployed revision or values differ from what the helm_release naming it recorded (no series otherwise)",
            &["namespace", "release", "address"],
        )?;
        let helm_release_errors_total = counter(
            "helm_release_errors_total",
            "Helm release records that could not be read (unreadable: the API; invalid: the record does not decode); the release's objects keep their last verdict",
            &["namespace", "release", "reason"],
        )?;
        Ok(Metrics {
            registry,
            helm_release_resources,
            helm_release_changed,
            helm_release_errors_total,
            terraform_state_not_judged,
            resources_watched,
            resources_drifted,
            resource_drifted,
            drift_detected_total,
            reconcile_total,
            reconcile_duration_seconds,
            api_errors_total,
            leader,
            terraform_state_resources,
            terraform_state_drifted,
            terraform_state_missing,
            terraform_state_errors_total,
            resource_missing,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let families = self.registry.gather();
        // Encoding into a Vec cannot fail for well-formed families; an empty page beats a panic.
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_names_version_and_commit() {
        let text = Metrics::new().unwrap().render();
        let line = text
            .lines()
            .find(|l| l.starts_with("tfdrift_build_info{"))
            .unwrap_or_else(|| panic!("no build_info in\n{text}"));
        assert!(line.contains(&format!("version=\"{}\"", crate::core::contract::VERSION)));
        assert!(line.contains(&format!("commit=\"{}\"", crate::core::contract::COMMIT)));
        assert!(line.ends_with(" 1"), "{line}");
    }
}
