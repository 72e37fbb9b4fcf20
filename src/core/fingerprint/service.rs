use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::canonical::{list, non_empty, sort_canonical, trimmed_map};
use super::{Fingerprint, FingerprintError};

/// The server's `sessionAffinityConfig.clientIP.timeoutSeconds` for `ClientIP` affinity.
const DEFAULT_CLIENT_IP_TIMEOUT: i32 = 10800;

/// Server-allocated fields (`clusterIP(s)`, `nodePort`, `healthCheckNodePort`) and fields
/// only newer servers default (`ipFamilies`, `ipFamilyPolicy`, `internalTrafficPolicy`,
/// `allocateLoadBalancerNodePorts`) are left out: one manifest hashes the same on every
/// server version.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceFingerprint {
    #[serde(rename = "type")]
    type_: String,
    selector: BTreeMap<String, String>,
    ports: Vec<PortFingerprint>,
    headless: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_name: Option<String>,
    session_affinity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_affinity_timeout_seconds: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_traffic_policy: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    load_balancer_source_ranges: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_ips: Vec<String>,
}

#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct PortFingerprint {
    port: i32,
    protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    target_port: IntOrString,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_protocol: Option<String>,
}

impl PortFingerprint {
    fn new(p: &ServicePort) -> Self {
        PortFingerprint {
            port: p.port,
            protocol: non_empty(&p.protocol).unwrap_or_else(|| "TCP".into()),
            name: non_empty(&p.name),
            target_port: match &p.target_port {
                None | Some(IntOrString::Int(0)) => IntOrString::Int(p.port),
                Some(IntOrString::String(s)) if s.is_empty() => IntOrString::Int(p.port),
                Some(t) => t.clone(),
            },
            app_protocol: non_empty(&p.app_protocol),
        }
    }
}

impl Fingerprint for Service {
    type Canonical = ServiceFingerprint;

    fn canonical(&self) -> Result<ServiceFingerprint, FingerprintError> {
        let spec = self
            .spec
            .as_ref()
            .ok_or(FingerprintError::MissingSpec { kind: "Service" })?;
        let type_ = non_empty(&spec.type_).unwrap_or_else(|| "ClusterIP".into());
        let mut ports: Vec<_> = spec
            .ports
            .iter()
            .flatten()
            .map(PortFingerprint::new)
            .collect();
        sort_canonical(&mut ports, |a, b| {
            (a.port, &a.protocol, &a.name).cmp(&(b.port, &b.protocol, &b.name))
        });
        let session_affinity = non_empty(&spec.session_affinity).unwrap_or_else(|| "None".into());
        let session_affinity_timeout_seconds = (session_affinity == "ClientIP").then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .unwrap_or(DEFAULT_CLIENT_IP_TIMEOUT)
        });
        // Only NodePort and LoadBalancer Services have (and default) a traffic policy.
        let external_traffic_policy = matches!(type_.as_str(), "NodePort" | "LoadBalancer")
            .then(|| non_empty(&spec.external_traffic_policy).unwrap_or_else(|| "Cluster".into()));
        let mut load_balancer_source_ranges = list(&spec.load_balancer_source_ranges);
        load_balancer_source_ranges.sort();
        let mut external_ips = list(&spec.external_ips);
        external_ips.sort();
        Ok(ServiceFingerprint {
            headless: spec.cluster_ip.as_deref() == Some("None"),
            external_name: non_empty(&spec.external_name),
            selector: trimmed_map(&spec.selector),
            type_,
            ports,
            session_affinity,
            session_affinity_timeout_seconds,
            external_traffic_policy,
            load_balancer_source_ranges,
            external_ips,
        })
    }
}
