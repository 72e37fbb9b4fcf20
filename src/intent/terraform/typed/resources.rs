//! The typed resources of the Terraform Kubernetes provider tfdrift reads, and what each
//! does beyond the generic rules of [`super::expand`]: attributes compared as sets (the
//! provider's `TypeSet`), fields the server or a controller assigns, attributes with another
//! name or shape in the API, zeros the provider sends. Read from the provider's schemas,
//! expanders and flatteners (`kubernetes/schema_*.go`, `structure*_*.go`).

use serde_json::Value;

use super::TypedError;
use super::expand::Expander;

/// One provider resource type (both names of a deprecated alias share it).
pub struct Resource {
    /// The provider's type names.
    pub types: &'static [&'static str],
    pub api_version: &'static str,
    pub kind: &'static str,
    /// API paths (field names from the object's root, `.`-joined) compared as sets.
    pub sets: &'static [&'static str],
    /// API paths that are not intent: assigned by the server or a controller, or not read
    /// back by the provider.
    pub skip: &'static [&'static str],
    /// API paths the provider writes into state only when the user set them: left out when
    /// the state holds them empty.
    pub only_if_set: &'static [&'static str],
    /// State paths (attribute names, `.`-joined, without indices) → the API field they are.
    pub renames: &'static [(&'static str, &'static str)],
    /// State paths of wrapper blocks whose fields the API has in the enclosing object.
    pub inline: &'static [&'static str],
    /// State paths that are the provider's own settings, beyond those every type has.
    pub not_api: &'static [&'static str],
    /// What the provider does to the whole object on the way (Secret data, webhook CA bundles).
    pub finish: Option<Finish>,
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resource({})", self.types.join(", "))
    }
}

/// A last step over the whole object, given the instance's attributes.
pub type Finish = fn(&mut Value, &Value) -> Result<(), TypedError>;

/// The provider's own settings every type may have: no API field.
const NOT_API: &[&str] = &[
    "id",
    "timeouts",
    "wait_for_rollout",
    "wait_for_load_balancer",
    "wait_for_default_service_account",
    "wait_for_service_account_token",
    "wait_until_bound",
    "wait_for_completion",
    "default_secret_name",
    "status",
];

impl Resource {
    pub fn is_set(&self, api_path: &str) -> bool {
        self.sets.contains(&api_path)
    }

    pub fn is_skipped(&self, api_path: &str) -> bool {
        self.skip.contains(&api_path)
    }

    pub fn is_kept_only_if_set(&self, api_path: &str) -> bool {
        self.only_if_set.contains(&api_path)
    }

    pub fn rename(&self, state_path: &str) -> Option<&'static str> {
        self.renames
            .iter()
            .find(|(from, _)| *from == strip_indices(state_path))
            .map(|(_, to)| *to)
    }

    pub fn is_inline(&self, state_path: &str) -> bool {
        self.inline.contains(&strip_indices(state_path).as_str())
    }

    pub fn is_not_api(&self, state_path: &str) -> bool {
        let path = strip_indices(state_path);
        NOT_API.contains(&path.as_str()) || self.not_api.contains(&path.as_str())
    }
}

/// `spec.0.template.0.spec` → `spec.template.spec`.
fn strip_indices(state_path: &str) -> String {
    state_path
        .split('.')
        .filter(|s| !s.bytes().all(|b| b.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(".")
}

/// What the provider does with a field wherever its API type appears.
#[derive(Clone, Copy)]
pub(crate) enum DefRule {
    /// Not intent (read-only metadata).
    Skip,
    /// Written into state only when set: left out when empty.
    OnlyIfSet,
    /// Compared as a set (a `TypeSet` shared by every resource using the type).
    Set,
    /// The provider sends this pointer's zero: it is a value (`privileged: false`).
    SendsZero,
    /// A pointer whose zero in state means "zero or absent": the provider sends it in some
    /// cases only, and reads absence back as zero.
    Lenient,
    /// Converted by an expander of its own.
    Special(fn(&mut Expander<'_>, &Value) -> Result<Value, TypedError>),
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const CORE: &str = "io.k8s.api.core.v1";

/// Volume sources: a volume has one, the state holds all of them, empty but one.
const VOLUME_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "local",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
];

/// The rule for field `field` of definition `def`, wherever the provider uses that type.
pub(crate) fn def_rule(def: &str, field: &str) -> Option<DefRule> {
    let (package, ty) = def.rsplit_once('.')?;
    Some(match (package, ty, field) {
        (_, _, _) if def == META => match field {
            "uid"
            | "resourceVersion"
            | "generation"
            | "selfLink"
            | "creationTimestamp"
            | "managedFields"
            | "deletionTimestamp"
            | "deletionGracePeriodSeconds" => DefRule::Skip,
            _ => return None,
        },
        // A pod volume's `ceph_fs` is never sent nor read back.
        (CORE, "Volume", "cephfs") => DefRule::Skip,
        (CORE, "Volume" | "PersistentVolumeSpec", f) if VOLUME_SOURCES.contains(&f) => {
            DefRule::OnlyIfSet
        }
        (CORE, "ProjectedVolumeSource", "sources") => {
            DefRule::Special(super::volumes::projected_sources)
        }
        // Sets in the provider's schemas of shared types.
        ("io.k8s.apimachinery.pkg.apis.meta.v1", "LabelSelectorRequirement", "values")
        | (CORE, "NodeSelectorRequirement", "values")
        | (CORE, "PodAffinityTerm", "namespaces")
        | (CORE, "TopologySpreadConstraint", "matchLabelKeys")
        | (CORE, "PodSecurityContext", "supplementalGroups")
        | (CORE, "CephFSVolumeSource" | "CephFSPersistentVolumeSource", "monitors")
        | (CORE, "RBDVolumeSource" | "RBDPersistentVolumeSource", "monitors")
        | (CORE, "FCVolumeSource", "targetWWNs")
        | (CORE, "TopologySelectorLabelRequirement", "values")
        | (CORE, "ScopedResourceSelectorRequirement", "values")
        | (CORE, "PersistentVolumeClaimSpec", "accessModes") => DefRule::Set,
        // Never sent or never read back: state and live differ with nobody changing a thing.
        (CORE, "ConfigMapProjection", "optional") => DefRule::Skip,
        // `if v, ok := in["privileged"]; ok { obj.Privileged = ptr.To(v.(bool)) }`: a pointer
        // sent whenever its block is there, zero included (the SDK hands the expander every
        // key of the schema). Where the API reads absence as something else than the zero
        // (escalation allowed, the token mounted, 30 s of grace), the zero is a value: its
        // removal is drift.
        (CORE, "SecurityContext", "allowPrivilegeEscalation" | "readOnlyRootFilesystem")
        | (
            CORE,
            "PodSpec",
            "automountServiceAccountToken" | "enableServiceLinks" | "terminationGracePeriodSeconds",
        )
        | (CORE, "ConfigMapVolumeSource" | "SecretVolumeSource", "defaultMode")
        | (CORE, "DownwardAPIVolumeSource" | "ProjectedVolumeSource", "defaultMode")
        | (CORE, "ServiceAccountTokenProjection", "expirationSeconds")
        | (CORE, "VolumeMount", "mountPropagation")
        | (CORE, "FCVolumeSource", "lun")
        | (CORE, "ServiceAccount", "automountServiceAccountToken")
        | (CORE, "PersistentVolumeSpec", "volumeMode")
        | (CORE, "ClientIPConfig", "timeoutSeconds")
        | (
            "io.k8s.api.apps.v1",
            "DeploymentSpec",
            "progressDeadlineSeconds" | "revisionHistoryLimit",
        )
        | ("io.k8s.api.apps.v1", "DaemonSetSpec" | "StatefulSetSpec", "revisionHistoryLimit")
        | ("io.k8s.api.apps.v1", "RollingUpdateDaemonSet", "maxSurge")
        | ("io.k8s.api.apps.v1", "RollingUpdateStatefulSetStrategy", "partition")
        | (
            "io.k8s.api.batch.v1",
            "JobSpec",
            "backoffLimit" | "parallelism" | "backoffLimitPerIndex" | "maxFailedIndexes",
        )
        | ("io.k8s.api.storage.v1", "StorageClass", "reclaimPolicy" | "volumeBindingMode")
        | ("io.k8s.api.scheduling.v1", "PriorityClass", "preemptionPolicy")
        | (
            "io.k8s.api.admissionregistration.v1",
            "ValidatingWebhook" | "MutatingWebhook",
            "failurePolicy" | "matchPolicy" | "timeoutSeconds" | "sideEffects"
            | "reinvocationPolicy",
        )
        | ("io.k8s.api.admissionregistration.v1", "ServiceReference", "port")
        | ("io.k8s.api.admissionregistration.v1", "RuleWithOperations", "scope") => {
            DefRule::SendsZero
        }
        // Sent whenever the block is there too, but absence means the zero: a server that drops
        // the field (an older one) or a removal changes nothing.
        (CORE, "SecurityContext", "privileged" | "runAsNonRoot")
        | (CORE, "PodSecurityContext", "runAsNonRoot")
        | (CORE, "WindowsSecurityContextOptions", _)
        | (CORE, "PodSpec", "shareProcessNamespace")
        | (CORE, "PodDNSConfigOption", "value")
        | (CORE, "GRPCAction", "service")
        | (
            CORE,
            "ConfigMapKeySelector" | "SecretKeySelector" | "ConfigMapEnvSource" | "SecretEnvSource",
            "optional",
        )
        | (CORE, "ConfigMapVolumeSource" | "SecretVolumeSource" | "SecretProjection", "optional")
        | (CORE, "HostPathVolumeSource", "type")
        | (CORE, "CSIVolumeSource", "readOnly" | "fsType")
        | (CORE, "AzureDiskVolumeSource", "fsType" | "readOnly" | "cachingMode")
        | (CORE, "ConfigMap", "immutable")
        | ("io.k8s.api.batch.v1", "JobSpec", "manualSelector")
        | ("io.k8s.api.batch.v1", "CronJobSpec", "suspend")
        | ("io.k8s.api.storage.v1", "StorageClass", "allowVolumeExpansion") => DefRule::Lenient,
        // Sent as 0 for a configured side of `behavior`, left to the server for the other.
        ("io.k8s.api.autoscaling.v2", "HPAScalingRules", "stabilizationWindowSeconds") => {
            DefRule::Lenient
        }
        _ => return None,
    })
}

/// Every typed resource tfdrift reads.
pub static RESOURCES: &[Resource] = &[
    Resource {
        types: &["kubernetes_namespace", "kubernetes_namespace_v1"],
        api_version: "v1",
        kind: "Namespace",
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_config_map", "kubernetes_config_map_v1"],
        api_version: "v1",
        kind: "ConfigMap",
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_secret", "kubernetes_secret_v1"],
        api_version: "v1",
        kind: "Secret",
        // `data` and `binary_data` both become the API's `data`, digested (secret::finish).
        skip: &["data"],
        not_api: &[
            "data",
            "binary_data",
            "data_wo",
            "binary_data_wo",
            "data_wo_revision",
            "binary_data_wo_revision",
        ],
        finish: Some(super::secret::finish),
        ..Resource::EMPTY
    },
    Resource {
        types: &[
            "kubernetes_service_account",
            "kubernetes_service_account_v1",
        ],
        api_version: "v1",
        kind: "ServiceAccount",
        sets: &["imagePullSecrets", "secrets"],
        ..Resource::EMPTY
    },
    Resource {
        types: &[
            "kubernetes_default_service_account",
            "kubernetes_default_service_account_v1",
        ],
        api_version: "v1",
        kind: "ServiceAccount",
        sets: &["imagePullSecrets", "secrets"],
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_service", "kubernetes_service_v1"],
        api_version: "v1",
        kind: "Service",
        sets: &["spec.externalIPs", "spec.loadBalancerSourceRanges"],
        // Allocated by the server: a pinned node port or cluster IP cannot be told from an
        // allocated one in state. `allocate_load_balancer_node_ports` is written `true` for
        // every type, the server keeps it for LoadBalancers only.
        skip: &[
            "spec.clusterIPs",
            "spec.ports.nodePort",
            "spec.healthCheckNodePort",
            "spec.allocateLoadBalancerNodePorts",
        ],
        finish: Some(finish_service),
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_endpoints", "kubernetes_endpoints_v1"],
        api_version: "v1",
        kind: "Endpoints",
        sets: &[
            "subsets",
            "subsets.addresses",
            "subsets.notReadyAddresses",
            "subsets.ports",
        ],
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_limit_range", "kubernetes_limit_range_v1"],
        api_version: "v1",
        kind: "LimitRange",
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_resource_quota", "kubernetes_resource_quota_v1"],
        api_version: "v1",
        kind: "ResourceQuota",
        sets: &["spec.scopes"],
        ..Resource::EMPTY
    },
    Resource {
        types: &[
            "kubernetes_persistent_volume_claim",
            "kubernetes_persistent_volume_claim_v1",
        ],
        api_version: "v1",
        kind: "PersistentVolumeClaim",
        sets: &["spec.accessModes"],
        // Set by the PV binder.
        skip: &["spec.volumeName"],
        ..Resource::EMPTY
    },
    Resource {
        types: &[
            "kubernetes_persistent_volume",
            "kubernetes_persistent_volume_v1",
        ],
        api_version: "v1",
        kind: "PersistentVolume",
        sets: &["spec.accessModes", "spec.mountOptions"],
        inline: &["spec.persistent_volume_source"],
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_pod", "kubernetes_pod_v1"],
        api_version: "v1",
        kind: "Pod",
        not_api: &["target_state"],
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_deployment", "kubernetes_deployment_v1"],
        api_version: "apps/v1",
        kind: "Deployment",
        // Never read back: the state says `false` whatever is live.
        skip: &["spec.paused"],
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_stateful_set", "kubernetes_stateful_set_v1"],
        api_version: "apps/v1",
        kind: "StatefulSet",
        // "otherwise we get a perpetual diff": read back only when configured.
        only_if_set: &["spec.updateStrategy"],
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_daemonset", "kubernetes_daemon_set_v1"],
        api_version: "apps/v1",
        kind: "DaemonSet",
        renames: &[("spec.strategy", "updateStrategy")],
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_job", "kubernetes_job_v1"],
        api_version: "batch/v1",
        kind: "Job",
        finish: Some(finish_job),
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_cron_job"],
        api_version: "batch/v1beta1",
        kind: "CronJob",
        finish: Some(finish_cron_job),
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_cron_job_v1"],
        api_version: "batch/v1",
        kind: "CronJob",
        finish: Some(finish_cron_job),
        ..Resource::EMPTY
    },
    Resource {
        types: &[
            "kubernetes_horizontal_pod_autoscaler",
            "kubernetes_horizontal_pod_autoscaler_v1",
        ],
        api_version: "autoscaling/v1",
        kind: "HorizontalPodAutoscaler",
        // The unversioned type's schema has them; empty, it speaks autoscaling/v1.
        not_api: &["spec.metric", "spec.behavior"],
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_horizontal_pod_autoscaler_v2beta2"],
        api_version: "autoscaling/v2beta2",
        kind: "HorizontalPodAutoscaler",
        // In the schema, ignored by the v2 expander and flattener.
        not_api: &["spec.target_cpu_utilization_percentage"],
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_horizontal_pod_autoscaler_v2"],
        api_version: "autoscaling/v2",
        kind: "HorizontalPodAutoscaler",
        not_api: &["spec.target_cpu_utilization_percentage"],
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_pod_disruption_budget"],
        api_version: "policy/v1beta1",
        kind: "PodDisruptionBudget",
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_pod_disruption_budget_v1"],
        api_version: "policy/v1",
        kind: "PodDisruptionBudget",
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_priority_class", "kubernetes_priority_class_v1"],
        api_version: "scheduling.k8s.io/v1",
        kind: "PriorityClass",
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_role", "kubernetes_role_v1"],
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        sets: &[
            "rules.apiGroups",
            "rules.resources",
            "rules.resourceNames",
            "rules.verbs",
        ],
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_cluster_role", "kubernetes_cluster_role_v1"],
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        finish: Some(finish_cluster_role),
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_role_binding", "kubernetes_role_binding_v1"],
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        ..Resource::EMPTY
    },
    Resource {
        types: &[
            "kubernetes_cluster_role_binding",
            "kubernetes_cluster_role_binding_v1",
        ],
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_ingress"],
        api_version: "extensions/v1beta1",
        kind: "Ingress",
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_ingress_v1"],
        api_version: "networking.k8s.io/v1",
        kind: "Ingress",
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_ingress_class", "kubernetes_ingress_class_v1"],
        api_version: "networking.k8s.io/v1",
        kind: "IngressClass",
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_network_policy", "kubernetes_network_policy_v1"],
        api_version: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        ..Resource::EMPTY
    },
    Resource {
        types: &["kubernetes_storage_class", "kubernetes_storage_class_v1"],
        api_version: "storage.k8s.io/v1",
        kind: "StorageClass",
        sets: &["mountOptions"],
        renames: &[("storage_provisioner", "provisioner")],
        ..Resource::EMPTY
    },
    Resource {
        types: &[
            "kubernetes_validating_webhook_configuration",
            "kubernetes_validating_webhook_configuration_v1",
        ],
        api_version: "admissionregistration.k8s.io/v1",
        kind: "ValidatingWebhookConfiguration",
        finish: Some(finish_webhooks),
        ..Resource::EMPTY
    },
    Resource {
        types: &[
            "kubernetes_mutating_webhook_configuration",
            "kubernetes_mutating_webhook_configuration_v1",
        ],
        api_version: "admissionregistration.k8s.io/v1",
        kind: "MutatingWebhookConfiguration",
        finish: Some(finish_webhooks),
        ..Resource::EMPTY
    },
];

/// No resource's own rules: the generic ones and those of the shared types.
pub static GENERIC: Resource = Resource::EMPTY;

impl Resource {
    const EMPTY: Resource = Resource {
        types: &[],
        api_version: "",
        kind: "",
        sets: &[],
        skip: &[],
        only_if_set: &[],
        renames: &[],
        inline: &[],
        not_api: &[],
        finish: None,
    };
}

/// The typed resource of a provider type name, for an instance with attributes `attrs`.
pub fn of(resource_type: &str, attrs: &Value) -> Option<&'static Resource> {
    // The unversioned HPA speaks autoscaling/v2beta2 as soon as it has metrics or a behavior.
    let resource_type = match resource_type {
        "kubernetes_horizontal_pod_autoscaler" => {
            let set = |k: &str| {
                attrs
                    .pointer(&format!("/spec/0/{k}"))
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            };
            if set("metric") || set("behavior") {
                "kubernetes_horizontal_pod_autoscaler_v2beta2"
            } else {
                resource_type
            }
        }
        other => other,
    };
    RESOURCES.iter().find(|r| r.types.contains(&resource_type))
}

/// A Service's `clusterIP` is intent only as `None` (headless); an address is allocated.
fn finish_service(object: &mut Value, _: &Value) -> Result<(), TypedError> {
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut)
        && spec.get("clusterIP").and_then(Value::as_str) != Some("None")
    {
        spec.remove("clusterIP");
    }
    Ok(())
}

/// Unless its selector is manual, the Job controller generates the selector and labels the
/// Job and its pod template (`controller-uid`, `job-name`, and their `batch.kubernetes.io/`
/// forms): not intent. The provider strips those labels from the template always.
fn finish_job(object: &mut Value, _: &Value) -> Result<(), TypedError> {
    if let Some(spec) = object.get_mut("spec") {
        finish_job_spec(spec);
    }
    let manual = object
        .pointer("/spec/manualSelector")
        .and_then(Value::as_bool)
        == Some(true);
    if !manual && let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("selector");
    }
    for pointer in ["/spec/template/metadata/labels", "/metadata/labels"] {
        if (pointer.starts_with("/spec") || !manual)
            && let Some(labels) = object.pointer_mut(pointer).and_then(Value::as_object_mut)
        {
            labels.retain(|k, _| !is_job_controller_label(k));
        }
    }
    Ok(())
}

/// Attributes of a shared type whose API field has another name.
pub fn def_rename(def: &str, attr: &str) -> Option<&'static str> {
    let ty = def.rsplit_once('.').map(|(_, t)| t).unwrap_or(def);
    Some(match (ty, attr) {
        ("RBDVolumeSource" | "RBDPersistentVolumeSource", "ceph_monitors") => "monitors",
        ("RBDVolumeSource" | "RBDPersistentVolumeSource", "rbd_image") => "image",
        ("RBDVolumeSource" | "RBDPersistentVolumeSource", "rbd_pool") => "pool",
        ("RBDVolumeSource" | "RBDPersistentVolumeSource", "rados_user") => "user",
        ("GlusterfsVolumeSource" | "GlusterfsPersistentVolumeSource", "endpoints_name") => {
            "endpoints"
        }
        ("AzureDiskVolumeSource", "data_disk_uri") => "diskURI",
        _ => return None,
    })
}

/// State attributes of a shared type with no API field: what the provider keeps but never
/// sends (`azure_file.secret_namespace`, a pod volume's `local`, the namespace of a pod
/// volume's `secret_ref`).
pub fn def_not_api(def: &str, attr: &str) -> bool {
    matches!(
        (def.rsplit_once('.').map(|(_, t)| t).unwrap_or(def), attr),
        ("AzureFileVolumeSource", "secret_namespace")
            | ("Volume", "local")
            | ("LocalObjectReference", "namespace")
    )
}

/// A CronJob's job template is a Job spec too.
fn finish_cron_job(object: &mut Value, _: &Value) -> Result<(), TypedError> {
    if let Some(spec) = object.pointer_mut("/spec/jobTemplate/spec") {
        finish_job_spec(spec);
    }
    Ok(())
}

/// `backoffLimitPerIndex` and `maxFailedIndexes` are sent (as 0 when unset) for an indexed
/// Job only: elsewhere their zero is absence.
fn finish_job_spec(spec: &mut Value) {
    let indexed = spec.get("completionMode").and_then(Value::as_str) == Some("Indexed");
    if let Some(spec) = spec.as_object_mut()
        && !indexed
    {
        for field in ["backoffLimitPerIndex", "maxFailedIndexes"] {
            if spec.get(field).and_then(Value::as_i64) == Some(0) {
                spec.insert(field.into(), Value::Null);
            }
        }
    }
}

/// A label the Job controller sets on the pods of its Jobs.
pub fn is_job_controller_label(key: &str) -> bool {
    matches!(
        key,
        "controller-uid"
            | "job-name"
            | "batch.kubernetes.io/controller-uid"
            | "batch.kubernetes.io/job-name"
    )
}

/// An aggregated ClusterRole's rules are the aggregation controller's.
fn finish_cluster_role(object: &mut Value, _: &Value) -> Result<(), TypedError> {
    let aggregated = object
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    if aggregated && let Some(map) = object.as_object_mut() {
        map.remove("rules");
    }
    Ok(())
}

/// A webhook's `ca_bundle` is the PEM text in state; the API holds its bytes as base64.
fn finish_webhooks(object: &mut Value, _: &Value) -> Result<(), TypedError> {
    use base64::Engine as _;
    let Some(webhooks) = object.get_mut("webhooks").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for webhook in webhooks {
        if let Some(bundle) = webhook.pointer_mut("/clientConfig/caBundle")
            && let Some(text) = bundle.as_str()
        {
            *bundle = if text.is_empty() {
                Value::Null
            } else {
                Value::from(base64::engine::general_purpose::STANDARD.encode(text))
            };
        }
    }
    Ok(())
}
