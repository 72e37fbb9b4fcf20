//! The typed `kubernetes_*` resources of the Terraform Kubernetes provider, turned back
//! into the Kubernetes objects they describe — only the fields a fingerprint reads, so
//! that nothing else from state (probes, security contexts, other annotations) is kept.
//!
//! The provider's layout (docs/terraform.md): snake_case names; nested blocks stored as
//! one-element lists; unused blocks `[]`; unset strings `""`, unset maps `null` or `{}`;
//! `replicas` and `target_port` strings; `default_mode`/`mode` octal strings; every volume
//! element carrying all source keys. Schema version 0 (provider < 2.0) stored resource
//! limits and requests as blocks where version 1 has maps.

use serde_json::{Map, Value, json};

use crate::core::contract;

/// Why an instance's attributes do not describe an object.
#[derive(Debug, thiserror::Error)]
pub enum TypedError {
    #[error("has no metadata.name")]
    NoName,
    #[error("attribute {0} is not what the provider writes")]
    Attribute(String),
}

/// What a supported resource type describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Service,
    ConfigMap,
}

impl TypedKind {
    /// The kind a typed resource type describes; `None` for every other type.
    pub fn of(resource_type: &str) -> Option<TypedKind> {
        Some(match resource_type {
            "kubernetes_deployment" | "kubernetes_deployment_v1" => TypedKind::Deployment,
            "kubernetes_stateful_set" | "kubernetes_stateful_set_v1" => TypedKind::StatefulSet,
            "kubernetes_daemonset" | "kubernetes_daemon_set_v1" => TypedKind::DaemonSet,
            "kubernetes_service" | "kubernetes_service_v1" => TypedKind::Service,
            "kubernetes_config_map" | "kubernetes_config_map_v1" => TypedKind::ConfigMap,
            _ => return None,
        })
    }

    pub fn kind(self) -> &'static str {
        match self {
            TypedKind::Deployment => "Deployment",
            TypedKind::StatefulSet => "StatefulSet",
            TypedKind::DaemonSet => "DaemonSet",
            TypedKind::Service => "Service",
            TypedKind::ConfigMap => "ConfigMap",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            TypedKind::Deployment | TypedKind::StatefulSet | TypedKind::DaemonSet => "apps/v1",
            TypedKind::Service | TypedKind::ConfigMap => "v1",
        }
    }
}

/// The object `attrs` (an instance's attributes) describes, as a manifest holding the
/// fields the fingerprint reads, the `tfdrift.jin.dev/ignore` annotation, and the uid.
pub fn object(kind: TypedKind, attrs: &Value) -> Result<Value, TypedError> {
    let meta = block(attrs, "metadata").ok_or(TypedError::NoName)?;
    let name = string(meta, "name").ok_or(TypedError::NoName)?;
    let namespace = string(meta, "namespace").unwrap_or_else(|| "default".to_owned());
    let mut metadata = json!({"name": name, "namespace": namespace});
    if let Some(uid) = string(meta, "uid") {
        metadata["uid"] = Value::from(uid);
    }
    if let Some(rules) = meta
        .get("annotations")
        .and_then(|a| a.get(contract::IGNORE))
        .and_then(Value::as_str)
    {
        metadata["annotations"] = json!({ contract::IGNORE: rules });
    }
    let mut obj = json!({
        "apiVersion": kind.api_version(),
        "kind": kind.kind(),
        "metadata": metadata,
    });
    match kind {
        TypedKind::ConfigMap => {
            put(&mut obj, "data", map(attrs, "data"));
            put(&mut obj, "binaryData", map(attrs, "binary_data"));
        }
        TypedKind::Service => {
            let spec = block(attrs, "spec").ok_or_else(|| missing("spec"))?;
            obj["spec"] = service_spec(spec)?;
        }
        TypedKind::Deployment | TypedKind::StatefulSet | TypedKind::DaemonSet => {
            let spec = block(attrs, "spec").ok_or_else(|| missing("spec"))?;
            let template = block(spec, "template").ok_or_else(|| missing("spec.template"))?;
            let mut out = Map::new();
            if kind != TypedKind::DaemonSet {
                out_put(
                    &mut out,
                    "replicas",
                    int(spec, "replicas", "spec.replicas")?,
                );
            }
            if kind == TypedKind::StatefulSet {
                out_put(
                    &mut out,
                    "serviceName",
                    string(spec, "service_name").map(Value::from),
                );
            }
            out.insert("template".into(), pod_template(template)?);
            obj["spec"] = Value::Object(out);
        }
    }
    Ok(obj)
}

/// The HPA target a typed `kubernetes_horizontal_pod_autoscaler*` instance names, as the
/// manifest an HPA would be (what [`crate::core::ignore::scaled`] reads).
pub fn hpa_manifest(attrs: &Value) -> Option<Value> {
    let meta = block(attrs, "metadata")?;
    let reference = block(block(attrs, "spec")?, "scale_target_ref")?;
    Some(json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": string(meta, "name")?,
            "namespace": string(meta, "namespace").unwrap_or_else(|| "default".to_owned()),
        },
        "spec": {"scaleTargetRef": {
            "apiVersion": string(reference, "api_version"),
            "kind": string(reference, "kind")?,
            "name": string(reference, "name")?,
        }},
    }))
}

fn missing(path: &str) -> TypedError {
    TypedError::Attribute(path.to_owned())
}

fn put(obj: &mut Value, key: &str, value: Option<Value>) {
    if let (Some(v), Some(map)) = (value, obj.as_object_mut()) {
        map.insert(key.to_owned(), v);
    }
}

fn out_put(out: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        out.insert(key.to_owned(), v);
    }
}

/// The one element of a block (a one-element list), or the value itself where an older
/// schema stored a map.
fn block<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v.get(key)? {
        Value::Array(items) => items.first().filter(|b| b.is_object()),
        obj @ Value::Object(_) => Some(obj),
        _ => None,
    }
}

/// The elements of a repeated block.
fn blocks<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|b| b.is_object())
}

/// A non-empty string attribute.
fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn boolean(v: &Value, key: &str) -> Option<Value> {
    v.get(key).and_then(Value::as_bool).map(Value::from)
}

/// A non-empty list of strings.
fn strings(v: &Value, key: &str) -> Option<Value> {
    let items: Vec<Value> = v
        .get(key)?
        .as_array()?
        .iter()
        .filter(|s| s.is_string())
        .cloned()
        .collect();
    (!items.is_empty()).then(|| Value::Array(items))
}

/// A non-empty string map; a schema-0 block `[{cpu, memory}]` is read as the map it was.
fn map(v: &Value, key: &str) -> Option<Value> {
    let m = match v.get(key)? {
        Value::Object(m) => m,
        Value::Array(items) => items.first()?.as_object()?,
        _ => return None,
    };
    let out: Map<String, Value> = m
        .iter()
        .filter(|(_, v)| v.as_str().is_some_and(|s| !s.is_empty()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!out.is_empty()).then_some(Value::Object(out))
}

/// An integer stored as a number (schema 0) or a decimal string (schema 1); `path` names
/// the attribute in an error.
fn int(v: &Value, key: &str, path: &str) -> Result<Option<Value>, TypedError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .map(|n| Some(Value::from(n)))
            .map_err(|_| missing(path)),
        Some(Value::Number(n)) if n.is_i64() => Ok(Some(Value::Number(n.clone()))),
        Some(_) => Err(missing(path)),
    }
}

/// A number the provider stores as an octal string (`"0644"`); 0 and `""` are unset.
fn octal(s: &str) -> Option<i64> {
    i64::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|&n| n != 0)
}

fn pod_template(t: &Value) -> Result<Value, TypedError> {
    let mut out = Map::new();
    if let Some(labels) = block(t, "metadata").and_then(|m| map(m, "labels")) {
        out.insert("metadata".into(), json!({ "labels": labels }));
    }
    let mut spec = Map::new();
    if let Some(s) = block(t, "spec") {
        out_put(
            &mut spec,
            "serviceAccountName",
            string(s, "service_account_name").map(Value::from),
        );
        out_put(&mut spec, "nodeSelector", map(s, "node_selector"));
        out_put(&mut spec, "hostNetwork", boolean(s, "host_network"));
        for (from, to) in [
            ("init_container", "initContainers"),
            ("container", "containers"),
        ] {
            let list = blocks(s, from)
                .enumerate()
                .map(|(i, c)| container(c, &format!("spec.template.spec.{from}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            if !list.is_empty() || to == "containers" {
                spec.insert(to.into(), Value::Array(list));
            }
        }
        let volumes = blocks(s, "volume")
            .enumerate()
            .map(|(i, v)| volume(v, &format!("spec.template.spec.volume[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        if !volumes.is_empty() {
            spec.insert("volumes".into(), Value::Array(volumes));
        }
    } else {
        spec.insert("containers".into(), json!([]));
    }
    out.insert("spec".into(), Value::Object(spec));
    Ok(Value::Object(out))
}

fn container(c: &Value, path: &str) -> Result<Value, TypedError> {
    let mut out = Map::new();
    out_put(
        &mut out,
        "name",
        Some(Value::from(string(c, "name").unwrap_or_default())),
    );
    out_put(&mut out, "image", string(c, "image").map(Value::from));
    out_put(
        &mut out,
        "imagePullPolicy",
        string(c, "image_pull_policy").map(Value::from),
    );
    out_put(&mut out, "command", strings(c, "command"));
    out_put(&mut out, "args", strings(c, "args"));
    let env: Vec<Value> = blocks(c, "env").map(env_var).collect();
    if !env.is_empty() {
        out.insert("env".into(), Value::Array(env));
    }
    let env_from: Vec<Value> = blocks(c, "env_from")
        .map(|e| {
            let mut m = Map::new();
            out_put(&mut m, "prefix", string(e, "prefix").map(Value::from));
            for (from, to) in [
                ("config_map_ref", "configMapRef"),
                ("secret_ref", "secretRef"),
            ] {
                if let Some(r) = block(e, from) {
                    m.insert(to.into(), reference(r, &["name", "optional"]));
                }
            }
            Value::Object(m)
        })
        .collect();
    if !env_from.is_empty() {
        out.insert("envFrom".into(), Value::Array(env_from));
    }
    let mut ports = Vec::new();
    for (i, p) in blocks(c, "port").enumerate() {
        let mut m = Map::new();
        let port_path = format!("{path}.port[{i}]");
        let container_port = int(p, "container_port", &format!("{port_path}.container_port"))?;
        out_put(&mut m, "containerPort", container_port);
        out_put(&mut m, "protocol", string(p, "protocol").map(Value::from));
        out_put(&mut m, "name", string(p, "name").map(Value::from));
        out_put(
            &mut m,
            "hostPort",
            int(p, "host_port", &format!("{port_path}.host_port"))?,
        );
        out_put(&mut m, "hostIP", string(p, "host_ip").map(Value::from));
        ports.push(Value::Object(m));
    }
    if !ports.is_empty() {
        out.insert("ports".into(), Value::Array(ports));
    }
    if let Some(r) = block(c, "resources") {
        let mut m = Map::new();
        out_put(&mut m, "limits", map(r, "limits"));
        out_put(&mut m, "requests", map(r, "requests"));
        if !m.is_empty() {
            out.insert("resources".into(), Value::Object(m));
        }
    }
    let mounts: Vec<Value> = blocks(c, "volume_mount")
        .map(|m| {
            let mut o = Map::new();
            out_put(
                &mut o,
                "name",
                Some(Value::from(string(m, "name").unwrap_or_default())),
            );
            out_put(
                &mut o,
                "mountPath",
                Some(Value::from(string(m, "mount_path").unwrap_or_default())),
            );
            out_put(&mut o, "readOnly", boolean(m, "read_only"));
            out_put(&mut o, "subPath", string(m, "sub_path").map(Value::from));
            out_put(
                &mut o,
                "subPathExpr",
                string(m, "sub_path_expr").map(Value::from),
            );
            out_put(
                &mut o,
                "mountPropagation",
                string(m, "mount_propagation").map(Value::from),
            );
            Value::Object(o)
        })
        .collect();
    if !mounts.is_empty() {
        out.insert("volumeMounts".into(), Value::Array(mounts));
    }
    Ok(Value::Object(out))
}

/// A `{name, key, optional}`-style reference with the given fields.
fn reference(r: &Value, fields: &[&str]) -> Value {
    let mut m = Map::new();
    for f in fields {
        let value = match *f {
            "optional" => boolean(r, f),
            _ => Some(Value::from(string(r, f).unwrap_or_default())),
        };
        out_put(&mut m, &camel(f), value);
    }
    Value::Object(m)
}

fn env_var(e: &Value) -> Value {
    let mut m = Map::new();
    m.insert(
        "name".into(),
        Value::from(string(e, "name").unwrap_or_default()),
    );
    out_put(&mut m, "value", string(e, "value").map(Value::from));
    if let Some(src) = block(e, "value_from") {
        let mut from = Map::new();
        if let Some(r) = block(src, "config_map_key_ref") {
            from.insert(
                "configMapKeyRef".into(),
                reference(r, &["name", "key", "optional"]),
            );
        } else if let Some(r) = block(src, "secret_key_ref") {
            from.insert(
                "secretKeyRef".into(),
                reference(r, &["name", "key", "optional"]),
            );
        } else if let Some(r) = block(src, "field_ref") {
            let mut f = Map::new();
            out_put(
                &mut f,
                "apiVersion",
                string(r, "api_version").map(Value::from),
            );
            f.insert(
                "fieldPath".into(),
                Value::from(string(r, "field_path").unwrap_or_default()),
            );
            from.insert("fieldRef".into(), Value::Object(f));
        } else if let Some(r) = block(src, "resource_field_ref") {
            let mut f = Map::new();
            out_put(
                &mut f,
                "containerName",
                string(r, "container_name").map(Value::from),
            );
            f.insert(
                "resource".into(),
                Value::from(string(r, "resource").unwrap_or_default()),
            );
            out_put(&mut f, "divisor", string(r, "divisor").map(Value::from));
            from.insert("resourceFieldRef".into(), Value::Object(f));
        }
        m.insert("valueFrom".into(), Value::Object(from));
    }
    Value::Object(m)
}

fn volume(v: &Value, path: &str) -> Result<Value, TypedError> {
    let mut out = Map::new();
    out.insert(
        "name".into(),
        Value::from(string(v, "name").unwrap_or_default()),
    );
    let Some(fields) = v.as_object() else {
        return Ok(Value::Object(out));
    };
    // Every source key is present; the one in use is the non-empty block.
    for (key, value) in fields {
        if key == "name" {
            continue;
        }
        let Some(Value::Object(source)) = value.as_array().and_then(|a| a.first()) else {
            continue;
        };
        let converted = source_block(key, source, &format!("{path}.{key}"))?;
        out.insert(camel(key), Value::Object(converted));
    }
    Ok(Value::Object(out))
}

/// Bool fields the API stores as plain `bool` with omitempty: `false` is not stored.
fn drops_false(source: &str, field: &str) -> bool {
    field == "read_only" && !matches!(source, "csi" | "azure_disk")
}

/// Fields that are lists of blocks, not one-element blocks.
const LIST_BLOCKS: [&str; 4] = ["items", "sources", "monitors", "target_portals"];

/// A volume source block, generically: camelCase keys, blocks unwrapped, octal modes as
/// numbers, unset values out.
fn source_block(
    source: &str,
    fields: &Map<String, Value>,
    path: &str,
) -> Result<Map<String, Value>, TypedError> {
    let mut out = Map::new();
    for (key, value) in fields {
        let converted = match value {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) if key == "default_mode" || key == "mode" => Some(Value::from(
                octal(s).ok_or_else(|| missing(&format!("{path}.{key}")))?,
            )),
            Value::Bool(false) if drops_false(source, key) => None,
            Value::Number(n) if n.as_f64() == Some(0.0) => None,
            Value::Array(items) if items.is_empty() => None,
            Value::Array(items) if LIST_BLOCKS.contains(&key.as_str()) => {
                let mut list = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if let Value::Object(m) = item {
                        list.push(Value::Object(source_block(
                            key,
                            m,
                            &format!("{path}.{key}[{i}]"),
                        )?));
                    }
                }
                Some(Value::Array(list))
            }
            Value::Array(items) => match items.first() {
                Some(Value::Object(m)) => Some(Value::Object(source_block(
                    key,
                    m,
                    &format!("{path}.{key}"),
                )?)),
                _ => Some(value.clone()),
            },
            Value::Object(m) if m.is_empty() => None,
            other => Some(other.clone()),
        };
        if let Some(v) = converted {
            out.insert(camel(key), v);
        }
    }
    Ok(out)
}

fn service_spec(s: &Value) -> Result<Value, TypedError> {
    let mut out = Map::new();
    out_put(&mut out, "type", string(s, "type").map(Value::from));
    out_put(&mut out, "selector", map(s, "selector"));
    let mut ports = Vec::new();
    for (i, p) in blocks(s, "port").enumerate() {
        let mut m = Map::new();
        out_put(
            &mut m,
            "port",
            int(p, "port", &format!("spec.port[{i}].port"))?,
        );
        out_put(&mut m, "protocol", string(p, "protocol").map(Value::from));
        out_put(&mut m, "name", string(p, "name").map(Value::from));
        // IntOrString, stored as its string form: a number is a port, anything else a name.
        let target = match p.get("target_port") {
            Some(Value::String(t)) if !t.is_empty() => Some(match t.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::from(t.as_str()),
            }),
            Some(Value::Number(n)) => Some(Value::Number(n.clone())),
            _ => None,
        };
        out_put(&mut m, "targetPort", target);
        out_put(
            &mut m,
            "appProtocol",
            string(p, "app_protocol").map(Value::from),
        );
        ports.push(Value::Object(m));
    }
    if !ports.is_empty() {
        out.insert("ports".into(), Value::Array(ports));
    }
    // Only "None" (headless) is intent; an allocated address is the server's.
    if string(s, "cluster_ip").as_deref() == Some("None") {
        out.insert("clusterIP".into(), Value::from("None"));
    }
    out_put(
        &mut out,
        "externalName",
        string(s, "external_name").map(Value::from),
    );
    out_put(
        &mut out,
        "sessionAffinity",
        string(s, "session_affinity").map(Value::from),
    );
    if let Some(timeout) = block(s, "session_affinity_config")
        .and_then(|c| block(c, "client_ip"))
        .map(|c| {
            int(
                c,
                "timeout_seconds",
                "spec.session_affinity_config.client_ip.timeout_seconds",
            )
        })
        .transpose()?
        .flatten()
    {
        out.insert(
            "sessionAffinityConfig".into(),
            json!({"clientIP": {"timeoutSeconds": timeout}}),
        );
    }
    out_put(
        &mut out,
        "externalTrafficPolicy",
        string(s, "external_traffic_policy").map(Value::from),
    );
    out_put(
        &mut out,
        "loadBalancerSourceRanges",
        strings(s, "load_balancer_source_ranges"),
    );
    out_put(&mut out, "externalIPs", strings(s, "external_ips"));
    Ok(Value::Object(out))
}

/// The Kubernetes name of a provider attribute: camelCase, with the API's own spellings
/// where they are not plain camelCase.
fn camel(snake: &str) -> String {
    match snake {
        "downward_api" => return "downwardAPI".into(),
        "ceph_fs" => return "cephfs".into(),
        "scale_io" => return "scaleIO".into(),
        "host_ip" => return "hostIP".into(),
        "target_portals" => return "targetPortals".into(),
        _ => {}
    }
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_api() {
        assert_eq!(camel("image_pull_policy"), "imagePullPolicy");
        assert_eq!(camel("downward_api"), "downwardAPI");
        assert_eq!(camel("name"), "name");
    }

    #[test]
    fn octal_modes_and_unset_values() {
        assert_eq!(octal("0644"), Some(420));
        assert_eq!(octal("0400"), Some(256));
        assert_eq!(octal("0"), None);
        assert_eq!(octal("x"), None);
    }

    #[test]
    fn a_resource_without_a_name_is_refused() {
        let attrs = json!({"metadata": [{"name": "", "namespace": "x"}], "data": {}});
        assert!(matches!(
            object(TypedKind::ConfigMap, &attrs),
            Err(TypedError::NoName)
        ));
        assert!(matches!(
            object(TypedKind::ConfigMap, &json!({})),
            Err(TypedError::NoName)
        ));
    }

    #[test]
    fn only_the_ignore_annotation_is_kept() {
        let attrs = json!({"metadata": [{"name": "c", "namespace": "", "annotations":
            {"tfdrift.jin.dev/ignore": "data[x]", "secret-ish": "s3cr3t"}}], "data": {"a": "1"}});
        let obj = object(TypedKind::ConfigMap, &attrs).unwrap();
        assert_eq!(obj["metadata"]["namespace"], "default");
        assert_eq!(
            obj["metadata"]["annotations"],
            json!({"tfdrift.jin.dev/ignore": "data[x]"})
        );
    }
}
