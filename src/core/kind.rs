//! The one table of kinds tfdrift knows without asking a server: identity (group, version,
//! kind), the resource's plural name and scope, and the definition its schema has among the
//! built-in ones ([`crate::core::schema::builtin`]). Any other kind is known at run time
//! through API discovery and the server's OpenAPI.

/// A built-in kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The resource's name in URLs (`deployments`).
    pub plural: &'static str,
    pub namespaced: bool,
    /// The definition of its schema (`io.k8s.api.apps.v1.Deployment`).
    pub def: &'static str,
}

impl Kind {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        api_version(self.group, self.version)
    }
}

/// `group/version`, or `version` for the core group.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// The group and version of an `apiVersion` (`apps/v1` → (`apps`, `v1`), `v1` → (``, `v1`)).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

macro_rules! kinds {
    ($($group:literal $version:literal $kind:ident $plural:literal $scope:ident $def:literal;)*) => {
        /// Every built-in kind.
        pub static BUILTIN: &[Kind] = &[$(Kind {
            group: $group,
            version: $version,
            kind: stringify!($kind),
            plural: $plural,
            namespaced: kinds!(@scope $scope),
            def: $def,
        },)*];
    };
    (@scope namespaced) => { true };
    (@scope cluster) => { false };
}

// Versions k8s-openapi no longer carries (v1beta1 APIs servers before 1.22–1.26 serve) use the
// schema of their successor where the shapes agree; Ingress v1beta1 has one of its own.
kinds! {
    "" "v1" ConfigMap "configmaps" namespaced "io.k8s.api.core.v1.ConfigMap";
    "" "v1" Endpoints "endpoints" namespaced "io.k8s.api.core.v1.Endpoints";
    "" "v1" LimitRange "limitranges" namespaced "io.k8s.api.core.v1.LimitRange";
    "" "v1" Namespace "namespaces" cluster "io.k8s.api.core.v1.Namespace";
    "" "v1" Node "nodes" cluster "io.k8s.api.core.v1.Node";
    "" "v1" PersistentVolume "persistentvolumes" cluster "io.k8s.api.core.v1.PersistentVolume";
    "" "v1" PersistentVolumeClaim "persistentvolumeclaims" namespaced "io.k8s.api.core.v1.PersistentVolumeClaim";
    "" "v1" Pod "pods" namespaced "io.k8s.api.core.v1.Pod";
    "" "v1" ReplicationController "replicationcontrollers" namespaced "io.k8s.api.core.v1.ReplicationController";
    "" "v1" ResourceQuota "resourcequotas" namespaced "io.k8s.api.core.v1.ResourceQuota";
    "" "v1" Secret "secrets" namespaced "io.k8s.api.core.v1.Secret";
    "" "v1" Service "services" namespaced "io.k8s.api.core.v1.Service";
    "" "v1" ServiceAccount "serviceaccounts" namespaced "io.k8s.api.core.v1.ServiceAccount";
    "admissionregistration.k8s.io" "v1" MutatingWebhookConfiguration "mutatingwebhookconfigurations" cluster "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration";
    "admissionregistration.k8s.io" "v1" ValidatingWebhookConfiguration "validatingwebhookconfigurations" cluster "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration";
    "admissionregistration.k8s.io" "v1beta1" MutatingWebhookConfiguration "mutatingwebhookconfigurations" cluster "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration";
    "admissionregistration.k8s.io" "v1beta1" ValidatingWebhookConfiguration "validatingwebhookconfigurations" cluster "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration";
    "apiextensions.k8s.io" "v1" CustomResourceDefinition "customresourcedefinitions" cluster "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition";
    "apiregistration.k8s.io" "v1" APIService "apiservices" cluster "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService";
    "apps" "v1" DaemonSet "daemonsets" namespaced "io.k8s.api.apps.v1.DaemonSet";
    "apps" "v1" Deployment "deployments" namespaced "io.k8s.api.apps.v1.Deployment";
    "apps" "v1" ReplicaSet "replicasets" namespaced "io.k8s.api.apps.v1.ReplicaSet";
    "apps" "v1" StatefulSet "statefulsets" namespaced "io.k8s.api.apps.v1.StatefulSet";
    "autoscaling" "v1" HorizontalPodAutoscaler "horizontalpodautoscalers" namespaced "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler";
    "autoscaling" "v2" HorizontalPodAutoscaler "horizontalpodautoscalers" namespaced "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler";
    "autoscaling" "v2beta2" HorizontalPodAutoscaler "horizontalpodautoscalers" namespaced "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler";
    "batch" "v1" CronJob "cronjobs" namespaced "io.k8s.api.batch.v1.CronJob";
    "batch" "v1" Job "jobs" namespaced "io.k8s.api.batch.v1.Job";
    "batch" "v1beta1" CronJob "cronjobs" namespaced "io.k8s.api.batch.v1.CronJob";
    "certificates.k8s.io" "v1" CertificateSigningRequest "certificatesigningrequests" cluster "io.k8s.api.certificates.v1.CertificateSigningRequest";
    "coordination.k8s.io" "v1" Lease "leases" namespaced "io.k8s.api.coordination.v1.Lease";
    "discovery.k8s.io" "v1" EndpointSlice "endpointslices" namespaced "io.k8s.api.discovery.v1.EndpointSlice";
    "networking.k8s.io" "v1" Ingress "ingresses" namespaced "io.k8s.api.networking.v1.Ingress";
    "networking.k8s.io" "v1" IngressClass "ingressclasses" cluster "io.k8s.api.networking.v1.IngressClass";
    "networking.k8s.io" "v1" NetworkPolicy "networkpolicies" namespaced "io.k8s.api.networking.v1.NetworkPolicy";
    "networking.k8s.io" "v1beta1" Ingress "ingresses" namespaced "io.k8s.api.networking.v1beta1.Ingress";
    "extensions" "v1beta1" Ingress "ingresses" namespaced "io.k8s.api.networking.v1beta1.Ingress";
    "node.k8s.io" "v1" RuntimeClass "runtimeclasses" cluster "io.k8s.api.node.v1.RuntimeClass";
    "policy" "v1" PodDisruptionBudget "poddisruptionbudgets" namespaced "io.k8s.api.policy.v1.PodDisruptionBudget";
    "policy" "v1beta1" PodDisruptionBudget "poddisruptionbudgets" namespaced "io.k8s.api.policy.v1.PodDisruptionBudget";
    "rbac.authorization.k8s.io" "v1" ClusterRole "clusterroles" cluster "io.k8s.api.rbac.v1.ClusterRole";
    "rbac.authorization.k8s.io" "v1" ClusterRoleBinding "clusterrolebindings" cluster "io.k8s.api.rbac.v1.ClusterRoleBinding";
    "rbac.authorization.k8s.io" "v1" Role "roles" namespaced "io.k8s.api.rbac.v1.Role";
    "rbac.authorization.k8s.io" "v1" RoleBinding "rolebindings" namespaced "io.k8s.api.rbac.v1.RoleBinding";
    "scheduling.k8s.io" "v1" PriorityClass "priorityclasses" cluster "io.k8s.api.scheduling.v1.PriorityClass";
    "storage.k8s.io" "v1" CSIDriver "csidrivers" cluster "io.k8s.api.storage.v1.CSIDriver";
    "storage.k8s.io" "v1" StorageClass "storageclasses" cluster "io.k8s.api.storage.v1.StorageClass";
}

/// The built-in kind of `apiVersion` and `kind`.
pub fn builtin(api_version: &str, kind: &str) -> Option<&'static Kind> {
    let (group, version) = split_api_version(api_version);
    BUILTIN
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// Whether objects of `kind` in `group` are namespaced, where the table knows the kind in
/// some version.
pub fn namespaced(group: &str, kind: &str) -> Option<bool> {
    BUILTIN
        .iter()
        .find(|k| k.group == group && k.kind == kind)
        .map(|k| k.namespaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_found_by_api_version() {
        let d = builtin("apps/v1", "Deployment").unwrap();
        assert_eq!((d.plural, d.namespaced), ("deployments", true));
        assert_eq!(builtin("v1", "Namespace").unwrap().api_version(), "v1");
        assert!(builtin("apps/v1beta1", "Deployment").is_none());
        assert_eq!(
            namespaced("rbac.authorization.k8s.io", "ClusterRole"),
            Some(false)
        );
        assert_eq!(split_api_version("example.com/v1"), ("example.com", "v1"));
        let mut seen = std::collections::HashSet::new();
        for k in BUILTIN {
            assert!(seen.insert((k.group, k.version, k.kind)), "{k:?} twice");
        }
    }
}
