//! One state instance against its live object: the comparison of intent known in full
//! ([`crate::core::compare`]) set up as the instance's source reads it — typed resources own
//! every attribute (but the keys the provider itself leaves out of state), `kubernetes_manifest`
//! the paths of its manifest (but `computed_fields`), `kubectl_manifest` the fields of its body
//! (additions not drift, but `ignore_fields`), patch-style resources only their keys.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use serde_json::Value;

use super::{Instance, Source, typed};
use crate::core::compare::{self, Additions, Options, Site};
use crate::core::explain::attribution::Paths;
use crate::core::explain::diff::{Change, Segment};
use crate::core::explain::{self, Values};
use crate::core::ignore::api::{AddressRule, ApiRule};
use crate::core::schema::{NodeId, Schema};

/// What an instance is judged with beyond itself: the ignore rules that apply to it (flags,
/// address rules, its own ignore annotation, an HPA's `spec.replicas`) and the paths other
/// addresses manage on the same object (a `kubernetes_labels` key).
#[derive(Debug, Default, Clone)]
pub struct Context {
    pub rules: Vec<ApiRule>,
    pub others: Vec<ApiRule>,
}

/// What one instance says of its live object: the verdict `tfdrift check` and the operator
/// share.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgment {
    /// Every field the intent sets holds; `note` says what could not be judged of it.
    InSync {
        note: Option<&'static str>,
    },
    Drifted {
        changes: Vec<Change>,
    },
    /// Deleted and created again outside Terraform: the live uid is not the state's.
    Recreated {
        live: String,
        state: String,
    },
}

/// Said of a Secret whose data is write-only (`data_wo`) when the rest of it is in sync.
pub const WRITE_ONLY_NOTE: &str = "data is write-only (data_wo): not in state, not judged";

/// Said when managedFields names nobody for a change.
const NO_WRITER: &str = "no writer recorded in managedFields";

/// `instance` against `live` (the object as the API returns it, `managedFields` included).
pub fn judge(
    instance: &Instance,
    live: &Value,
    schema: &Schema,
    root: NodeId,
    context: &Context,
) -> Judgment {
    let live_uid = live.pointer("/metadata/uid").and_then(Value::as_str);
    if let (Some(state), Some(live)) = (instance.uid.as_deref(), live_uid)
        && state != live
    {
        return Judgment::Recreated {
            live: live.to_owned(),
            state: state.to_owned(),
        };
    }
    let changes = changes(instance, live, schema, root, context);
    if !changes.is_empty() {
        return Judgment::Drifted { changes };
    }
    let write_only = matches!(
        instance.source,
        Source::Typed {
            write_only_data: true,
            ..
        }
    );
    Judgment::InSync {
        note: write_only.then_some(WRITE_ONLY_NOTE),
    }
}

/// What drifted and who changed it, at most `limit` bytes: each change by its API path (no
/// value of a Secret, env var, ConfigMap or command line) and the writers `managed` names.
pub fn explain(changes: &[Change], managed: &[ManagedFieldsEntry], limit: usize) -> String {
    let why = explain::describe_changes(
        changes,
        Paths::Object,
        managed,
        Values::Redacted,
        limit,
        NO_WRITER,
    );
    crate::core::text::bounded(&why, limit)
}

/// The differences from `instance`'s intent to `live` (the object as the API returns it), as
/// API paths, with no Secret value in them.
pub fn changes(
    instance: &Instance,
    live: &Value,
    schema: &Schema,
    root: NodeId,
    context: &Context,
) -> Vec<Change> {
    let mut intent = instance.object.clone();
    let mut live = live.clone();
    if live.get("kind").and_then(Value::as_str) == Some("Secret") {
        crate::core::secret::digest_object(&mut live);
    }
    if let Source::Typed {
        resource,
        write_only_data,
    } = &instance.source
    {
        if resource.kind == "Pod" {
            for side in [&mut intent, &mut live] {
                if let Some(spec) = side.get_mut("spec") {
                    drop_builtin_tolerations(spec);
                }
            }
        }
        for spec in pod_specs(&mut live) {
            drop_token_volume(spec);
        }
        if resource.kind == "ServiceAccount" {
            drop_token_secret(&mut live);
        }
        if *write_only_data && let Some(map) = intent.as_object_mut() {
            map.remove("data");
        }
    }
    let own_labels = keys(&intent, "/metadata/labels");
    let own_annotations = keys(&intent, "/metadata/annotations");
    let ignored = |path: &[Segment]| -> bool {
        if context
            .rules
            .iter()
            .chain(&context.others)
            .any(|r| r.matches(path))
        {
            return true;
        }
        if let [Segment::Field(m), Segment::Field(f), Segment::MapKey(k), ..] = path
            && m == "metadata"
        {
            if f == "annotations" && k.starts_with("tfdrift.jin.dev/") {
                return true;
            }
            // Keys the cluster's own components put on objects (a Deployment's
            // `deployment.kubernetes.io/revision`), unless the intent sets them.
            if matches!(instance.source, Source::Typed { .. } | Source::Helm { .. }) {
                let own = if f == "labels" {
                    &own_labels
                } else {
                    &own_annotations
                };
                if (f == "labels" || f == "annotations") && is_internal_key(k) && !own.contains(k) {
                    return true;
                }
                if instance.id.kind == "Job"
                    && f == "labels"
                    && typed::resources::is_job_controller_label(k)
                {
                    return true;
                }
            }
        }
        if is_restarted_at(path) {
            return true;
        }
        // A batch/v1beta1 CronJob's job template metadata is read back as top-level metadata
        // is, internal keys left out.
        if let (
            Source::Typed { resource, .. },
            [
                Segment::Field(s),
                Segment::Field(j),
                Segment::Field(m),
                Segment::Field(f),
                Segment::MapKey(k),
                ..,
            ],
        ) = (&instance.source, path)
            && resource.api_version == "batch/v1beta1"
            && (s, j, m)
                == (
                    &"spec".to_owned(),
                    &"jobTemplate".to_owned(),
                    &"metadata".to_owned(),
                )
            && (f == "labels" || f == "annotations")
            && is_internal_key(k)
            && instance
                .object
                .pointer(&format!("/spec/jobTemplate/metadata/{f}"))
                .and_then(|m| m.get(k))
                .is_none()
        {
            return true;
        }
        match &instance.source {
            Source::Manifest { computed } => computed
                .iter()
                .any(|p| ApiRule::from_path(p.clone()).matches(path)),
            Source::Kubectl { ignored } => ignored
                .iter()
                .any(|p| ApiRule::from_path(p.clone()).matches(path)),
            Source::Typed { .. } | Source::Helm { .. } if instance.id.kind == "Job" => {
                job_label(path)
            }
            _ => false,
        }
    };
    let sets = |site: &Site<'_>| -> bool {
        match &instance.source {
            Source::Typed { resource, .. } => {
                typed::is_set(resource, site.def, site.field, &field_path(site.path))
            }
            // A node's taints, as `kubernetes_node_taint` sets them.
            Source::Patch => field_path(site.path) == "spec.taints",
            _ => false,
        }
    };
    let (additions, null_is_absent) = match instance.source {
        Source::Typed { .. } => (Additions::ALL, true),
        Source::Manifest { .. } => (Additions::ALL, false),
        // Helm sends what the chart renders and leaves the rest to the server: what the
        // server puts in a block the chart renders empty (`strategy: {}`) is its default, not
        // a change; a key or an item added to what the chart sets is.
        Source::Helm { .. } => (
            Additions {
                blocks: false,
                ..Additions::ALL
            },
            false,
        ),
        // The kubectl provider fingerprints the body's keys and each list's length.
        Source::Kubectl { .. } => (
            Additions {
                keys: false,
                items: true,
                blocks: false,
            },
            false,
        ),
        Source::Patch => (Additions::NONE, false),
    };
    let lenient = |def: Option<&str>, field: &str| {
        matches!(instance.source, Source::Typed { .. }) && typed::is_lenient(def, field)
    };
    let options = Options {
        additions,
        null_is_absent,
        sets: &sets,
        lenient: &lenient,
        ignored: &ignored,
    };
    compare::compare(&intent, &live, schema, root, &options)
}

/// The ignore rules `instance` is judged under: `defaults` (the `--ignore-*` flags), the
/// address rules that match it (`--ignore-field`, `--ignore-file`), and the paths of the
/// `tfdrift.jin.dev/ignore` annotation its intent holds.
pub fn rules_for(
    instance: &Instance,
    defaults: &[ApiRule],
    address_rules: &[AddressRule],
) -> Vec<ApiRule> {
    let mut rules = defaults.to_vec();
    rules.extend(
        address_rules
            .iter()
            .filter(|r| r.applies_to(&instance.address))
            .map(|r| r.rule.clone()),
    );
    if let Some(own) = instance
        .object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(crate::core::contract::IGNORE))
        .and_then(Value::as_str)
    {
        rules.extend(own.split(',').filter_map(|p| ApiRule::parse(p).ok()));
    }
    rules
}

/// The paths a patch-style instance's partial object sets: each label, annotation, data key,
/// env var; a node's taints.
pub fn owned_paths(object: &Value) -> Vec<ApiRule> {
    let mut out = Vec::new();
    let keys = |pointer: &str| -> Vec<String> {
        object
            .pointer(pointer)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut push = |text: String| {
        if let Ok(rule) = ApiRule::parse(&text) {
            out.push(rule);
        }
    };
    for k in keys("/metadata/labels") {
        push(format!("metadata.labels[{k}]"));
    }
    for k in keys("/metadata/annotations") {
        push(format!("metadata.annotations[{k}]"));
    }
    for k in keys("/data") {
        push(format!("data[{k}]"));
    }
    if object.pointer("/spec/taints").is_some() {
        push("spec.taints".into());
    }
    for (template, prefix) in [
        ("/spec/template", "spec.template"),
        (
            "/spec/jobTemplate/spec/template",
            "spec.jobTemplate.spec.template",
        ),
        ("/spec", "spec"),
    ] {
        for k in keys(&format!("{template}/metadata/annotations")) {
            push(format!("{prefix}.metadata.annotations[{k}]"));
        }
        for list in ["containers", "initContainers"] {
            let pointer = if template == "/spec" {
                format!("/spec/{list}")
            } else {
                format!("{template}/spec/{list}")
            };
            let spec = if template == "/spec" { "" } else { ".spec" };
            for c in object
                .pointer(&pointer)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
                for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(env) = e.get("name").and_then(Value::as_str) {
                        push(format!("{prefix}{spec}.{list}[{name}].env[{env}]"));
                    }
                }
            }
        }
    }
    out
}

/// `a.b.c` of the fields of a path (no keys or indices).
fn field_path(path: &[Segment]) -> String {
    let fields: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Segment::Field(f) => Some(f.as_str()),
            _ => None,
        })
        .collect();
    fields.join(".")
}

fn keys(object: &Value, pointer: &str) -> Vec<String> {
    object
        .pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// A label or annotation key the provider leaves out of state unless configured: its prefix's
/// host ends in `kubernetes.io` (but `app.kubernetes.io` and `service.beta.kubernetes.io`), or
/// it names `deprecated.daemonset.template.generation`.
pub fn is_internal_key(key: &str) -> bool {
    if key.contains("deprecated.daemonset.template.generation") {
        return true;
    }
    let Some((prefix, _)) = key.split_once('/') else {
        return false;
    };
    prefix.ends_with("kubernetes.io")
        && prefix != "app.kubernetes.io"
        && prefix != "service.beta.kubernetes.io"
}

/// `kubectl rollout restart`'s annotation on a pod template: an operation, not a change of
/// intent.
fn is_restarted_at(path: &[Segment]) -> bool {
    path.iter()
        .any(|s| matches!(s, Segment::MapKey(k) if k == "kubectl.kubernetes.io/restartedAt"))
        && path
            .iter()
            .any(|s| matches!(s, Segment::Field(f) if f == "template"))
}

/// The Job controller's selector and template labels.
fn job_label(path: &[Segment]) -> bool {
    matches!(path.last(), Some(Segment::MapKey(k)) if typed::resources::is_job_controller_label(k))
}

/// The pod specs of an object: its own (a Pod), its template's, its job template's.
fn pod_specs(object: &mut Value) -> Vec<&mut Value> {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let pointer = match kind.as_str() {
        "Pod" => "/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    };
    object.pointer_mut(pointer).into_iter().collect()
}

/// Whether `name` is a token controller's name for a token of `sa`: `<sa>-token-xxxxx`.
fn is_token_name(sa: &str, name: &str) -> bool {
    name.strip_prefix(sa)
        .and_then(|rest| rest.strip_prefix("-token-"))
        .is_some_and(|rest| {
            rest.len() == 5
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// The token Secret the token controller (before 1.24) lists on a ServiceAccount, which the
/// provider leaves out of state.
fn drop_token_secret(sa: &mut Value) {
    let name = sa
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(secrets) = sa.get_mut("secrets").and_then(Value::as_array_mut)
        && let Some(i) = secrets.iter().position(|s| {
            s.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| is_token_name(&name, n))
        })
    {
        secrets.remove(i);
    }
}

/// The tolerations the DefaultTolerationSeconds admission adds to every pod, which the
/// provider leaves out of a pod's state.
fn drop_builtin_tolerations(spec: &mut Value) {
    if let Some(tolerations) = spec.get_mut("tolerations").and_then(Value::as_array_mut) {
        tolerations.retain(|t| {
            !t.get("key")
                .and_then(Value::as_str)
                .is_some_and(|k| k.starts_with("node.kubernetes.io/"))
        });
    }
}

/// The service-account token volume the server injects (`<sa>-token-xxxxx` before 1.22,
/// `kube-api-access-xxxxx` after) and its mounts, which the provider leaves out of state.
fn drop_token_volume(spec: &mut Value) {
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned();
    let is_token = |name: &str| name.starts_with("kube-api-access") || is_token_name(&sa, name);
    let mut removed = None;
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut)
        && let Some(i) = volumes
            .iter()
            .position(|v| v.get("name").and_then(Value::as_str).is_some_and(is_token))
    {
        removed = volumes
            .remove(i)
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    let Some(name) = removed else { return };
    for list in ["containers", "initContainers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(mounts) = c.get_mut("volumeMounts").and_then(Value::as_array_mut)
                && let Some(i) = mounts
                    .iter()
                    .position(|m| m.get("name").and_then(Value::as_str) == Some(&name))
            {
                mounts.remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_providers_internal_keys() {
        for internal in [
            "kubernetes.io/metadata.name",
            "deployment.kubernetes.io/revision",
            "kubectl.kubernetes.io/last-applied-configuration",
            "pv.kubernetes.io/bound-by-controller",
            "deprecated.daemonset.template.generation",
        ] {
            assert!(is_internal_key(internal), "{internal}");
        }
        for kept in [
            "app.kubernetes.io/name",
            "service.beta.kubernetes.io/aws-load-balancer-type",
            "k8s.io/x",
            "cloud.google.com/neg",
            "kubernetes.io",
            "team",
        ] {
            assert!(!is_internal_key(kept), "{kept}");
        }
    }
}
