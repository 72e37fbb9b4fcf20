//! The pod template fingerprint shared by Deployment, StatefulSet and DaemonSet.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, PodTemplateSpec, ResourceRequirements, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use serde::Serialize;
use serde_json::Value;

use super::canonical::{list, non_empty, sort_canonical, sorted, trimmed_map};
use super::{FingerprintError, Quantity};

/// Volume sources whose `defaultMode` the server sets to 0644 (420) when absent.
const DEFAULT_MODE_SOURCES: [&str; 4] = ["configMap", "secret", "projected", "downwardAPI"];
const DEFAULT_MODE: i64 = 0o644;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateFingerprint {
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_account_name: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    node_selector: BTreeMap<String, String>,
    /// Run in sequence: order is intent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    init_containers: Vec<ContainerFingerprint>,
    containers: Vec<ContainerFingerprint>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<VolumeFingerprint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerFingerprint {
    name: String,
    image: String,
    image_pull_policy: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    command: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<EnvFingerprint>,
    /// Later sources override earlier ones: order is intent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env_from: Vec<EnvFromFingerprint>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<PortFingerprint>,
    #[serde(skip_serializing_if = "ResourcesFingerprint::is_empty")]
    resources: ResourcesFingerprint,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volume_mounts: Vec<MountFingerprint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvFingerprint {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_from: Option<EnvSourceFingerprint>,
}

/// Which ConfigMap/Secret key or field an env var comes from; never the value itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
enum EnvSourceFingerprint {
    ConfigMapKeyRef {
        name: String,
        key: String,
        optional: bool,
    },
    SecretKeyRef {
        name: String,
        key: String,
        optional: bool,
    },
    FieldRef {
        api_version: String,
        field_path: String,
    },
    ResourceFieldRef {
        container_name: Option<String>,
        resource: String,
        divisor: Quantity,
    },
    /// `valueFrom` naming no source this version knows.
    Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvFromFingerprint {
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config_map_ref: Option<RefFingerprint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_ref: Option<RefFingerprint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct RefFingerprint {
    name: String,
    optional: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct PortFingerprint {
    container_port: i32,
    protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
struct ResourcesFingerprint {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    limits: BTreeMap<String, Quantity>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    requests: BTreeMap<String, Quantity>,
}

impl ResourcesFingerprint {
    fn is_empty(&self) -> bool {
        self.limits.is_empty() && self.requests.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct MountFingerprint {
    name: String,
    mount_path: String,
    read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_path_expr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mount_propagation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct VolumeFingerprint {
    name: String,
    /// The source as the server stores it (defaults applied), keys sorted.
    source: Value,
}

impl PodTemplateFingerprint {
    pub fn new(template: &PodTemplateSpec) -> Result<Self, FingerprintError> {
        let labels = trimmed_map(&template.metadata.as_ref().and_then(|m| m.labels.clone()));
        let Some(spec) = template.spec.as_ref() else {
            return Ok(PodTemplateFingerprint {
                labels,
                service_account_name: None,
                node_selector: BTreeMap::new(),
                init_containers: Vec::new(),
                containers: Vec::new(),
                volumes: Vec::new(),
            });
        };
        let host_network = spec.host_network.unwrap_or(false);
        let convert = |field: &str, cs: &[Container]| {
            cs.iter()
                .map(|c| {
                    ContainerFingerprint::new(c, &format!("{field}[{}]", c.name), host_network)
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let init_containers = convert(
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        )?;
        let mut containers = convert("containers", &spec.containers)?;
        sort_canonical(&mut containers, |a, b| a.name.cmp(&b.name));
        let mut volumes: Vec<_> = spec
            .volumes
            .iter()
            .flatten()
            .map(VolumeFingerprint::new)
            .collect::<Result<_, _>>()?;
        sort_canonical(&mut volumes, |a, b| a.name.cmp(&b.name));
        Ok(PodTemplateFingerprint {
            labels,
            // The server copies the deprecated `serviceAccount` into the name when only it is set.
            service_account_name: non_empty(&spec.service_account_name)
                .or_else(|| non_empty(&spec.service_account)),
            node_selector: trimmed_map(&spec.node_selector),
            init_containers,
            containers,
            volumes,
        })
    }
}

impl ContainerFingerprint {
    fn new(c: &Container, path: &str, host_network: bool) -> Result<Self, FingerprintError> {
        let image = c.image.clone().unwrap_or_default();
        let image_pull_policy =
            non_empty(&c.image_pull_policy).unwrap_or_else(|| default_pull_policy(&image).into());
        let mut env: Vec<_> = c
            .env
            .iter()
            .flatten()
            .map(|e| EnvFingerprint::new(e, &format!("{path}.env[{}]", e.name)))
            .collect::<Result<_, _>>()?;
        sort_canonical(&mut env, |a, b| a.name.cmp(&b.name));
        let mut ports: Vec<_> = c
            .ports
            .iter()
            .flatten()
            .map(|p| PortFingerprint::new(p, host_network))
            .collect();
        sort_canonical(&mut ports, |a, b| {
            (a.container_port, &a.protocol, &a.name).cmp(&(b.container_port, &b.protocol, &b.name))
        });
        let mut volume_mounts: Vec<_> = c
            .volume_mounts
            .iter()
            .flatten()
            .map(MountFingerprint::new)
            .collect();
        sort_canonical(&mut volume_mounts, |a, b| {
            (&a.name, &a.mount_path).cmp(&(&b.name, &b.mount_path))
        });
        Ok(ContainerFingerprint {
            name: c.name.clone(),
            image,
            image_pull_policy,
            command: list(&c.command),
            args: list(&c.args),
            env,
            env_from: c
                .env_from
                .iter()
                .flatten()
                .map(EnvFromFingerprint::new)
                .collect(),
            ports,
            resources: ResourcesFingerprint::new(
                c.resources.as_ref(),
                &format!("{path}.resources"),
            )?,
            volume_mounts,
        })
    }
}

/// The server's default: `Always` when the image has no tag or the tag `latest`,
/// `IfNotPresent` otherwise. A digest without a tag is `IfNotPresent`; a `:` before the
/// last `/` is a registry port, not a tag.
pub fn default_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    let tag = last_segment.rsplit_once(':').map(|(_, tag)| tag);
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

impl EnvFingerprint {
    fn new(e: &EnvVar, path: &str) -> Result<Self, FingerprintError> {
        let value_from = match &e.value_from {
            None => None,
            Some(src) => Some(if let Some(r) = &src.config_map_key_ref {
                EnvSourceFingerprint::ConfigMapKeyRef {
                    name: r.name.clone(),
                    key: r.key.clone(),
                    optional: r.optional.unwrap_or(false),
                }
            } else if let Some(r) = &src.secret_key_ref {
                EnvSourceFingerprint::SecretKeyRef {
                    name: r.name.clone(),
                    key: r.key.clone(),
                    optional: r.optional.unwrap_or(false),
                }
            } else if let Some(r) = &src.field_ref {
                EnvSourceFingerprint::FieldRef {
                    api_version: non_empty(&r.api_version).unwrap_or_else(|| "v1".into()),
                    field_path: r.field_path.clone(),
                }
            } else if let Some(r) = &src.resource_field_ref {
                EnvSourceFingerprint::ResourceFieldRef {
                    container_name: non_empty(&r.container_name),
                    resource: r.resource.clone(),
                    divisor: quantity(r.divisor.as_ref(), &format!("{path}.divisor"))?
                        .unwrap_or(Quantity::ZERO),
                }
            } else {
                EnvSourceFingerprint::Empty
            }),
        };
        Ok(EnvFingerprint {
            name: e.name.clone(),
            value: non_empty(&e.value),
            value_from,
        })
    }
}

impl EnvFromFingerprint {
    fn new(e: &EnvFromSource) -> Self {
        EnvFromFingerprint {
            prefix: non_empty(&e.prefix),
            config_map_ref: e.config_map_ref.as_ref().map(|r| RefFingerprint {
                name: r.name.clone(),
                optional: r.optional.unwrap_or(false),
            }),
            secret_ref: e.secret_ref.as_ref().map(|r| RefFingerprint {
                name: r.name.clone(),
                optional: r.optional.unwrap_or(false),
            }),
        }
    }
}

impl PortFingerprint {
    fn new(p: &ContainerPort, host_network: bool) -> Self {
        let host_port = p.host_port.filter(|&h| h != 0);
        PortFingerprint {
            container_port: p.container_port,
            protocol: non_empty(&p.protocol).unwrap_or_else(|| "TCP".into()),
            name: non_empty(&p.name),
            // With hostNetwork the server sets hostPort to containerPort.
            host_port: if host_network {
                host_port.or(Some(p.container_port))
            } else {
                host_port
            },
            host_ip: non_empty(&p.host_ip),
        }
    }
}

impl ResourcesFingerprint {
    fn new(r: Option<&ResourceRequirements>, path: &str) -> Result<Self, FingerprintError> {
        let convert = |m: &Option<BTreeMap<String, K8sQuantity>>, field: &str| {
            m.iter()
                .flatten()
                .map(|(name, q)| {
                    let value =
                        Quantity::parse(&q.0).map_err(|source| FingerprintError::Quantity {
                            path: format!("{path}.{field}.{name}"),
                            source,
                        })?;
                    Ok((name.clone(), value))
                })
                .collect::<Result<BTreeMap<_, _>, FingerprintError>>()
        };
        Ok(match r {
            None => ResourcesFingerprint::default(),
            Some(r) => ResourcesFingerprint {
                limits: convert(&r.limits, "limits")?,
                requests: convert(&r.requests, "requests")?,
            },
        })
    }
}

impl MountFingerprint {
    fn new(m: &VolumeMount) -> Self {
        MountFingerprint {
            name: m.name.clone(),
            mount_path: m.mount_path.clone(),
            read_only: m.read_only.unwrap_or(false),
            sub_path: non_empty(&m.sub_path),
            sub_path_expr: non_empty(&m.sub_path_expr),
            // `None` is what an unset propagation means; the Terraform provider sends it.
            mount_propagation: non_empty(&m.mount_propagation).filter(|p| p != "None"),
        }
    }
}

impl VolumeFingerprint {
    fn new(v: &Volume) -> Result<Self, FingerprintError> {
        let mut source = serde_json::to_value(v).map_err(|source| FingerprintError::Serialize {
            kind: "Volume",
            source,
        })?;
        if let Value::Object(map) = &mut source {
            map.remove("name");
            for key in DEFAULT_MODE_SOURCES {
                if let Some(Value::Object(src)) = map.get_mut(key) {
                    src.entry("defaultMode")
                        .or_insert(Value::from(DEFAULT_MODE));
                }
            }
            default_field_ref_api_version(map);
            drop_optional_false(map);
            if let Some(Value::Object(empty_dir)) = map.get_mut("emptyDir")
                && let Some(Value::String(limit)) = empty_dir.get("sizeLimit")
            {
                let q = Quantity::parse(limit).map_err(|source| FingerprintError::Quantity {
                    path: format!("volumes[{}].emptyDir.sizeLimit", v.name),
                    source,
                })?;
                empty_dir.insert("sizeLimit".into(), Value::String(q.to_string()));
            }
        }
        Ok(VolumeFingerprint {
            name: v.name.clone(),
            source: sorted(source),
        })
    }
}

/// `optional: false` is what an unset `optional` means; the Terraform provider sends it,
/// a manifest seldom does.
fn drop_optional_false(map: &mut serde_json::Map<String, Value>) {
    if map.get("optional") == Some(&Value::Bool(false)) {
        map.remove("optional");
    }
    for value in map.values_mut() {
        match value {
            Value::Object(inner) => drop_optional_false(inner),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        drop_optional_false(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Downward API items (plain or projected) get `fieldRef.apiVersion: v1` from the server.
fn default_field_ref_api_version(map: &mut serde_json::Map<String, Value>) {
    for (key, value) in map.iter_mut() {
        match value {
            Value::Object(inner) => {
                if key == "fieldRef" {
                    inner.entry("apiVersion").or_insert(Value::from("v1"));
                }
                default_field_ref_api_version(inner);
            }
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        default_field_ref_api_version(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

fn quantity(q: Option<&K8sQuantity>, path: &str) -> Result<Option<Quantity>, FingerprintError> {
    q.map(|q| {
        Quantity::parse(&q.0).map_err(|source| FingerprintError::Quantity {
            path: path.to_owned(),
            source,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::default_pull_policy;

    #[test]
    fn pull_policy_defaults_follow_the_server() {
        for (image, policy) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("host:5000/img", "Always"),
            ("host:5000/img:1", "IfNotPresent"),
            ("host:5000/img:latest", "Always"),
            ("img@sha256:abcd", "IfNotPresent"),
            ("img:latest@sha256:abcd", "Always"),
            ("img:1@sha256:abcd", "IfNotPresent"),
            ("", "Always"),
        ] {
            assert_eq!(default_pull_policy(image), policy, "{image}");
        }
    }
}
