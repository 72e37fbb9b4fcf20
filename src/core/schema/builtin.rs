//! The schemas of the built-in kinds ([`crate::core::kind::BUILTIN`]), from the JSON Schemas
//! k8s-openapi carries, with what those leave out: how lists are matched (the API's
//! `+listType`/`+listMapKey`/`patchMergeKey`), which scalar fields are Go pointers (their zero
//! is a value the server keeps), and the defaults of list keys. Built once, without asking any
//! server, so that judging a built-in kind never depends on a network hiccup.

use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use super::{ListKind, Schema};

/// The schema of every built-in kind, by definition name ([`crate::core::kind::Kind::def`]).
pub fn schema() -> &'static Schema {
    shared()
}

/// [`schema`], to hold beside schemas read from a server.
pub fn shared() -> &'static Arc<Schema> {
    static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    SCHEMA.get_or_init(|| Arc::new(build()))
}

fn build() -> Schema {
    let mut generator = schemars::SchemaGenerator::default();
    macro_rules! generate {
        ($($ty:path),* $(,)?) => { $( let _ = generator.subschema_for::<$ty>(); )* };
    }
    {
        use k8s_openapi::api::{
            admissionregistration, apps, autoscaling, batch, certificates, coordination, core,
            discovery, networking, node, policy, rbac, scheduling, storage,
        };
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
        use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;
        generate!(
            core::v1::ConfigMap,
            core::v1::Endpoints,
            core::v1::LimitRange,
            core::v1::Namespace,
            core::v1::Node,
            core::v1::PersistentVolume,
            core::v1::PersistentVolumeClaim,
            core::v1::Pod,
            core::v1::ReplicationController,
            core::v1::ResourceQuota,
            core::v1::Secret,
            core::v1::Service,
            core::v1::ServiceAccount,
            admissionregistration::v1::MutatingWebhookConfiguration,
            admissionregistration::v1::ValidatingWebhookConfiguration,
            apiextensions::v1::CustomResourceDefinition,
            apiregistration::v1::APIService,
            apps::v1::DaemonSet,
            apps::v1::Deployment,
            apps::v1::ReplicaSet,
            apps::v1::StatefulSet,
            autoscaling::v1::HorizontalPodAutoscaler,
            autoscaling::v2::HorizontalPodAutoscaler,
            batch::v1::CronJob,
            batch::v1::Job,
            certificates::v1::CertificateSigningRequest,
            coordination::v1::Lease,
            discovery::v1::EndpointSlice,
            networking::v1::Ingress,
            networking::v1::IngressClass,
            networking::v1::NetworkPolicy,
            node::v1::RuntimeClass,
            policy::v1::PodDisruptionBudget,
            rbac::v1::ClusterRole,
            rbac::v1::ClusterRoleBinding,
            rbac::v1::Role,
            rbac::v1::RoleBinding,
            scheduling::v1::PriorityClass,
            storage::v1::CSIDriver,
            storage::v1::StorageClass,
        );
    }
    let mut defs = generator.take_definitions(false);
    for (name, def) in ingress_v1beta1() {
        defs.insert(name, def);
    }
    let mut schema = match Schema::from_openapi(&json!({ "$defs": defs }), false) {
        Ok(schema) => schema,
        // Generated from types compiled into this binary: it cannot refer to a missing
        // definition. Should it ever, every value compares as plain JSON.
        Err(_) => Schema::any(),
    };
    for (def, field, kind) in LISTS {
        let kind = match kind {
            List::Set => ListKind::Set,
            List::Keyed(keys) => ListKind::Keyed(Arc::from(
                keys.iter().map(|k| (*k).into()).collect::<Vec<_>>(),
            )),
        };
        schema.set_list_kind(def, field, kind);
    }
    for (def, fields) in POINTERS {
        for field in *fields {
            schema.set_zero_is_value(def, field);
        }
    }
    // A CRD's schema is compared whole: the Kubernetes provider reads it as a dynamic value.
    schema.set_free(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceValidation",
        "openAPIV3Schema",
    );
    schema
}

/// `networking.k8s.io/v1beta1` (and `extensions/v1beta1`) Ingress, which k8s-openapi no longer
/// carries: v1's shape, but a backend names its Service by `serviceName` and `servicePort`.
fn ingress_v1beta1() -> Vec<(String, Value)> {
    let def = |name: &str| json!({ "$ref": format!("#/$defs/{name}") });
    let v1 = "io.k8s.api.networking.v1";
    let beta = "io.k8s.api.networking.v1beta1";
    let meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
    vec![
        (
            format!("{beta}.Ingress"),
            json!({"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                "metadata": def(meta), "spec": def(&format!("{beta}.IngressSpec")),
                "status": def(&format!("{v1}.IngressStatus"))}}),
        ),
        (
            format!("{beta}.IngressSpec"),
            json!({"type": "object", "properties": {
                "backend": def(&format!("{beta}.IngressBackend")),
                "ingressClassName": {"type": "string"},
                "rules": {"type": "array", "items": def(&format!("{beta}.IngressRule"))},
                "tls": {"type": "array", "items": def(&format!("{v1}.IngressTLS"))}}}),
        ),
        (
            format!("{beta}.IngressBackend"),
            json!({"type": "object", "properties": {
                "serviceName": {"type": "string"},
                "servicePort": {"x-kubernetes-int-or-string": true},
                "resource": def("io.k8s.api.core.v1.TypedLocalObjectReference")}}),
        ),
        (
            format!("{beta}.IngressRule"),
            json!({"type": "object", "properties": {
                "host": {"type": "string"},
                "http": {"type": "object", "properties": {"paths": {"type": "array",
                    "items": def(&format!("{beta}.HTTPIngressPath"))}}}}}),
        ),
        (
            format!("{beta}.HTTPIngressPath"),
            json!({"type": "object", "properties": {
                "path": {"type": "string"}, "pathType": {"type": "string"},
                "backend": def(&format!("{beta}.IngressBackend"))}}),
        ),
    ]
}

enum List {
    Set,
    Keyed(&'static [&'static str]),
}

/// Lists whose items are matched by key or as a set; every other list is atomic.
const LISTS: &[(&str, &str, List)] = &[
    (
        "io.k8s.api.admissionregistration.v1.MutatingWebhook",
        "matchConditions",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
        "webhooks",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingWebhook",
        "matchConditions",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
        "webhooks",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
        "values",
        List::Set,
    ),
    (
        "io.k8s.api.core.v1.Container",
        "env",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        List::Keyed(&["containerPort", "protocol"]),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        List::Keyed(&["devicePath"]),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        List::Keyed(&["mountPath"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        List::Keyed(&["containerPort", "protocol"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        List::Keyed(&["devicePath"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        List::Keyed(&["mountPath"]),
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", List::Set),
    (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        List::Keyed(&["ip"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        List::Keyed(&["topologyKey", "whenUnsatisfiable"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.core.v1.ResourceRequirements",
        "claims",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        List::Keyed(&["name"]),
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        List::Keyed(&["port", "protocol"]),
    ),
    ("io.k8s.api.discovery.v1.Endpoint", "addresses", List::Set),
    (
        "io.k8s.api.storage.v1.CSIDriverSpec",
        "volumeLifecycleModes",
        List::Set,
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        List::Set,
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        List::Keyed(&["uid"]),
    ),
];

/// The default of a list key the server fills in when an item leaves it out: the intent's
/// items are keyed with it (`containerPort: 80` is the port `80/TCP`).
pub fn key_default(def: &str, key: &str) -> Option<&'static str> {
    match (def, key) {
        (
            "io.k8s.api.core.v1.ContainerPort"
            | "io.k8s.api.core.v1.ServicePort"
            | "io.k8s.api.core.v1.EndpointPort",
            "protocol",
        ) => Some("TCP"),
        _ => None,
    }
}

/// Scalar fields that are Go pointers in the API types: the server keeps their zero
/// (`allowPrivilegeEscalation: false`, `storageClassName: ""`), so it is a value, not absence.
const POINTERS: &[(&str, &[&str])] = &[
    (
        "io.k8s.api.admissionregistration.v1.MutatingWebhook",
        &[
            "failurePolicy",
            "matchPolicy",
            "reinvocationPolicy",
            "sideEffects",
            "timeoutSeconds",
        ],
    ),
    (
        "io.k8s.api.admissionregistration.v1.RuleWithOperations",
        &["scope"],
    ),
    (
        "io.k8s.api.admissionregistration.v1.ServiceReference",
        &["path", "port"],
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingWebhook",
        &[
            "failurePolicy",
            "matchPolicy",
            "sideEffects",
            "timeoutSeconds",
        ],
    ),
    (
        "io.k8s.api.admissionregistration.v1.WebhookClientConfig",
        &["url"],
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetSpec",
        &["revisionHistoryLimit"],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        &[
            "progressDeadlineSeconds",
            "replicas",
            "revisionHistoryLimit",
        ],
    ),
    ("io.k8s.api.apps.v1.ReplicaSetSpec", &["replicas"]),
    (
        "io.k8s.api.apps.v1.RollingUpdateDaemonSet",
        &["maxSurge", "maxUnavailable"],
    ),
    (
        "io.k8s.api.apps.v1.RollingUpdateDeployment",
        &["maxSurge", "maxUnavailable"],
    ),
    (
        "io.k8s.api.apps.v1.RollingUpdateStatefulSetStrategy",
        &["maxUnavailable", "partition"],
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetSpec",
        &["replicas", "revisionHistoryLimit"],
    ),
    (
        "io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec",
        &["minReplicas", "targetCPUUtilizationPercentage"],
    ),
    (
        "io.k8s.api.autoscaling.v2.HPAScalingRules",
        &["stabilizationWindowSeconds", "tolerance"],
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
        &["minReplicas"],
    ),
    (
        "io.k8s.api.autoscaling.v2.MetricTarget",
        &["averageUtilization", "averageValue", "value"],
    ),
    (
        "io.k8s.api.batch.v1.CronJobSpec",
        &[
            "failedJobsHistoryLimit",
            "startingDeadlineSeconds",
            "successfulJobsHistoryLimit",
            "suspend",
            "timeZone",
        ],
    ),
    (
        "io.k8s.api.batch.v1.JobSpec",
        &[
            "activeDeadlineSeconds",
            "backoffLimit",
            "backoffLimitPerIndex",
            "completionMode",
            "completions",
            "managedBy",
            "manualSelector",
            "maxFailedIndexes",
            "parallelism",
            "podReplacementPolicy",
            "suspend",
            "ttlSecondsAfterFinished",
        ],
    ),
    (
        "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
        &["containerName"],
    ),
    (
        "io.k8s.api.batch.v1.SuccessPolicyRule",
        &["succeededCount", "succeededIndexes"],
    ),
    (
        "io.k8s.api.coordination.v1.LeaseSpec",
        &[
            "holderIdentity",
            "leaseDurationSeconds",
            "leaseTransitions",
            "preferredHolder",
        ],
    ),
    (
        "io.k8s.api.core.v1.AzureDiskVolumeSource",
        &["cachingMode", "fsType", "readOnly"],
    ),
    ("io.k8s.api.core.v1.ClientIPConfig", &["timeoutSeconds"]),
    ("io.k8s.api.core.v1.ConfigMap", &["immutable"]),
    ("io.k8s.api.core.v1.ConfigMapEnvSource", &["optional"]),
    ("io.k8s.api.core.v1.ConfigMapKeySelector", &["optional"]),
    ("io.k8s.api.core.v1.ConfigMapProjection", &["optional"]),
    (
        "io.k8s.api.core.v1.ConfigMapVolumeSource",
        &["defaultMode", "optional"],
    ),
    ("io.k8s.api.core.v1.Container", &["restartPolicy"]),
    (
        "io.k8s.api.core.v1.CSIVolumeSource",
        &["fsType", "readOnly"],
    ),
    ("io.k8s.api.core.v1.DownwardAPIVolumeFile", &["mode"]),
    (
        "io.k8s.api.core.v1.DownwardAPIVolumeSource",
        &["defaultMode"],
    ),
    ("io.k8s.api.core.v1.EmptyDirVolumeSource", &["sizeLimit"]),
    ("io.k8s.api.core.v1.EndpointAddress", &["nodeName"]),
    ("io.k8s.api.core.v1.EndpointPort", &["appProtocol"]),
    ("io.k8s.api.core.v1.FCVolumeSource", &["lun"]),
    (
        "io.k8s.api.core.v1.GlusterfsPersistentVolumeSource",
        &["endpointsNamespace"],
    ),
    ("io.k8s.api.core.v1.GRPCAction", &["service"]),
    ("io.k8s.api.core.v1.HostPathVolumeSource", &["type"]),
    (
        "io.k8s.api.core.v1.ISCSIPersistentVolumeSource",
        &["initiatorName"],
    ),
    ("io.k8s.api.core.v1.ISCSIVolumeSource", &["initiatorName"]),
    ("io.k8s.api.core.v1.KeyToPath", &["mode"]),
    ("io.k8s.api.core.v1.LocalVolumeSource", &["fsType"]),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
        &[
            "storageClassName",
            "volumeAttributesClassName",
            "volumeMode",
        ],
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeSpec",
        &["volumeAttributesClassName", "volumeMode"],
    ),
    ("io.k8s.api.core.v1.PodDNSConfigOption", &["value"]),
    (
        "io.k8s.api.core.v1.PodSecurityContext",
        &[
            "fsGroup",
            "fsGroupChangePolicy",
            "runAsGroup",
            "runAsNonRoot",
            "runAsUser",
            "seLinuxChangePolicy",
            "supplementalGroupsPolicy",
        ],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        &[
            "activeDeadlineSeconds",
            "automountServiceAccountToken",
            "enableServiceLinks",
            "hostUsers",
            "preemptionPolicy",
            "priority",
            "runtimeClassName",
            "setHostnameAsFQDN",
            "shareProcessNamespace",
            "terminationGracePeriodSeconds",
        ],
    ),
    (
        "io.k8s.api.core.v1.Probe",
        &["terminationGracePeriodSeconds"],
    ),
    ("io.k8s.api.core.v1.ProjectedVolumeSource", &["defaultMode"]),
    (
        "io.k8s.api.core.v1.ReplicationControllerSpec",
        &["replicas"],
    ),
    ("io.k8s.api.core.v1.SeccompProfile", &["localhostProfile"]),
    ("io.k8s.api.core.v1.Secret", &["immutable"]),
    ("io.k8s.api.core.v1.SecretEnvSource", &["optional"]),
    ("io.k8s.api.core.v1.SecretKeySelector", &["optional"]),
    ("io.k8s.api.core.v1.SecretProjection", &["optional"]),
    (
        "io.k8s.api.core.v1.SecretVolumeSource",
        &["defaultMode", "optional"],
    ),
    (
        "io.k8s.api.core.v1.SecurityContext",
        &[
            "allowPrivilegeEscalation",
            "privileged",
            "procMount",
            "readOnlyRootFilesystem",
            "runAsGroup",
            "runAsNonRoot",
            "runAsUser",
        ],
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        &["automountServiceAccountToken"],
    ),
    (
        "io.k8s.api.core.v1.ServiceAccountTokenProjection",
        &["expirationSeconds"],
    ),
    ("io.k8s.api.core.v1.ServicePort", &["appProtocol"]),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        &[
            "allocateLoadBalancerNodePorts",
            "internalTrafficPolicy",
            "ipFamilyPolicy",
            "loadBalancerClass",
            "trafficDistribution",
        ],
    ),
    ("io.k8s.api.core.v1.Toleration", &["tolerationSeconds"]),
    (
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        &["minDomains", "nodeAffinityPolicy", "nodeTaintsPolicy"],
    ),
    (
        "io.k8s.api.core.v1.TypedLocalObjectReference",
        &["apiGroup"],
    ),
    (
        "io.k8s.api.core.v1.TypedObjectReference",
        &["apiGroup", "namespace"],
    ),
    (
        "io.k8s.api.core.v1.VolumeMount",
        &["mountPropagation", "recursiveReadOnly"],
    ),
    (
        "io.k8s.api.core.v1.WindowsSecurityContextOptions",
        &[
            "gmsaCredentialSpec",
            "gmsaCredentialSpecName",
            "hostProcess",
            "runAsUserName",
        ],
    ),
    (
        "io.k8s.api.discovery.v1.Endpoint",
        &["hostname", "nodeName", "zone"],
    ),
    (
        "io.k8s.api.discovery.v1.EndpointPort",
        &["appProtocol", "name", "port"],
    ),
    ("io.k8s.api.networking.v1.HTTPIngressPath", &["pathType"]),
    (
        "io.k8s.api.networking.v1.IngressClassParametersReference",
        &["apiGroup", "namespace", "scope"],
    ),
    (
        "io.k8s.api.networking.v1.IngressSpec",
        &["ingressClassName"],
    ),
    (
        "io.k8s.api.networking.v1.NetworkPolicyPort",
        &["endPort", "port"],
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        &[
            "maxUnavailable",
            "minAvailable",
            "unhealthyPodEvictionPolicy",
        ],
    ),
    (
        "io.k8s.api.scheduling.v1.PriorityClass",
        &["preemptionPolicy"],
    ),
    (
        "io.k8s.api.storage.v1.CSIDriverSpec",
        &[
            "attachRequired",
            "fsGroupPolicy",
            "podInfoOnMount",
            "requiresRepublish",
            "seLinuxMount",
            "storageCapacity",
        ],
    ),
    (
        "io.k8s.api.storage.v1.StorageClass",
        &["allowVolumeExpansion", "reclaimPolicy", "volumeBindingMode"],
    ),
    ("io.k8s.api.storage.v1.TokenRequest", &["expirationSeconds"]),
];

#[cfg(test)]
mod tests {
    use super::super::{Node, Scalar};
    use super::*;

    #[test]
    fn every_builtin_kind_has_a_schema_with_its_lists_and_pointers() {
        let s = schema();
        for kind in crate::core::kind::BUILTIN {
            let id = s
                .def(kind.def)
                .unwrap_or_else(|| panic!("no schema for {kind:?}"));
            assert!(s.field(id, "metadata").is_some(), "{kind:?}");
        }
        let spec = s.def("io.k8s.api.core.v1.PodSpec").unwrap();
        let containers = s.field(spec, "containers").unwrap();
        let Node::List { item, kind } = s.node(containers.node) else {
            panic!("containers is not a list")
        };
        assert_eq!(*kind, ListKind::Keyed(Arc::from(vec!["name".into()])));
        let env = s.field(*item, "env").unwrap();
        assert!(matches!(
            s.node(env.node),
            Node::List {
                kind: ListKind::Keyed(_),
                ..
            }
        ));
        let sc = s.def("io.k8s.api.core.v1.SecurityContext").unwrap();
        assert!(
            s.field(sc, "allowPrivilegeEscalation")
                .unwrap()
                .zero_is_value
        );
        assert!(!s.field(*item, "stdin").unwrap().zero_is_value);
        let resources = s.def("io.k8s.api.core.v1.ResourceRequirements").unwrap();
        let limits = s.field(resources, "limits").unwrap();
        let Node::Map(q) = s.node(limits.node) else {
            panic!("limits is not a map")
        };
        assert!(matches!(s.node(*q), Node::Scalar(Scalar::Quantity)));
        let port = s.def("io.k8s.api.core.v1.ServicePort").unwrap();
        assert!(matches!(
            s.node(s.field(port, "targetPort").unwrap().node),
            Node::Scalar(Scalar::IntOrString)
        ));
        let cm = s.def("io.k8s.api.core.v1.ConfigMap").unwrap();
        let Node::Map(b) = s.node(s.field(cm, "binaryData").unwrap().node) else {
            panic!()
        };
        assert!(matches!(s.node(*b), Node::Scalar(Scalar::Bytes)));
        // Every overlay names a field that exists: a typo would silently do nothing.
        let named = LISTS.iter().map(|(def, field, _)| (*def, *field)).chain(
            POINTERS
                .iter()
                .flat_map(|(def, fs)| fs.iter().map(move |f| (*def, *f))),
        );
        let missing: Vec<String> = named
            .filter(|(def, field)| s.def(def).and_then(|id| s.field(id, field)).is_none())
            .map(|(def, field)| format!("{def}.{field}"))
            .collect();
        assert!(missing.is_empty(), "{missing:?}");
        let beta = s
            .def("io.k8s.api.networking.v1beta1.IngressBackend")
            .unwrap();
        assert!(s.field(beta, "serviceName").is_some());
    }
}
