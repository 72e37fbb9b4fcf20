//! `make bench-operator`: the release `tfdrift run` against the local real control plane.
//!
//! 1. creates N opted-in Deployments with correct spec-hashes (BENCH_N, default 1000);
//! 2. starts the operator, times the initial sync and counts the API writes it took
//!    (kube-apiserver's own `apiserver_request_total`);
//! 3. idles through at least 3 resyncs and counts writes again;
//! 4. drifts objects one at a time (BENCH_DRIFTS, default 200) and measures, from each
//!    patch's response, when a watch sees `drifted=true`, when a watch on Events sees the
//!    DriftDetected Warning — and, as the floor, when the first watch sees the drifting
//!    patch itself;
//! 5. samples the operator's RSS and CPU, and kube-apiserver's CPU, from /proc.
//!
//! `BENCH_SCENARIO=terraform`: N objects across eight kinds (Deployments, Services,
//! ConfigMaps, Secrets, ServiceAccounts, Roles, RoleBindings, Namespaces; N/8 each, made
//! from the typed state fixtures of `tests/terraform/typed/`) carry no label and no
//! annotation; a Terraform state naming them is pushed through the real `kubernetes`
//! backend (`terraform state push`: gzip, part Secrets), as many unrelated objects of those
//! kinds sit beside them, and the operator runs cluster-wide with
//! `--terraform-state-namespace` (and `--secret-namespaces` for the Secrets). Drifts are
//! made on the Deployments, whose verdict is an annotation.
//!
//! `BENCH_SCENARIO=helm`: BENCH_RELEASES Helm releases (default 100) of 50 objects each
//! (8 Deployments, and 7 each of ConfigMaps, Secrets, ServiceAccounts, Services, Roles and
//! RoleBindings made from the same typed fixtures) as Helm leaves them — its label and
//! annotations on each, one deployed release record per release (Helm's format: gzip'd
//! JSON, base64'd) — beside as many unrelated objects, the operator cluster-wide with
//! `--helm-namespace`. Drifts are made on the Deployments.
//!
//! Writes `target/bench/results.json` (`results-terraform.json`, `results-helm.json`); with N ≥ 1000 in the
//! label scenario also `docs/benchmarks.md`.
//! A program that reports figures, not a test: it asserts no timings.

#[path = "../tests/integration/support.rs"]
#[allow(unused_imports)]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use support::{Operator, control_plane, eventually};

const RESYNC_SECS: u64 = 10;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn manifest(name: &str, image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"tfdrift.jin.dev/enabled": "true", "app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "web", "image": image, "ports": [{"containerPort": 8080, "name": "http"}],
                 "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "REGION", "value": "eu-west-1"}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}},
                {"name": "sidecar", "image": "envoyproxy/envoy:v1.31.0", "args": ["--config", "/etc/envoy.yaml"]}
            ]}}
        }
    })
}

/// Writes (POST, PUT, PATCH, DELETE) kube-apiserver has served since it started.
async fn apiserver_writes(client: &kube::Client) -> f64 {
    apiserver_writes_by_resource(client).await.values().sum()
}

/// [`apiserver_writes`] by `verb resource`.
async fn apiserver_writes_by_resource(client: &kube::Client) -> HashMap<String, f64> {
    let req = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    let text = client
        .request_text(req)
        .await
        .expect("kube-apiserver /metrics");
    let label = |l: &str, k: &str| -> String {
        l.split_once(&format!("{k}=\""))
            .and_then(|(_, r)| r.split_once('"'))
            .map(|(v, _)| v.to_owned())
            .unwrap_or_default()
    };
    let mut by = HashMap::new();
    for l in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let verb = label(l, "verb");
        if !["POST", "PUT", "PATCH", "DELETE", "APPLY"].contains(&verb.as_str()) {
            continue;
        }
        if let Some(v) = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *by.entry(format!("{verb} {}", label(l, "resource")))
                .or_insert(0.0) += v;
        }
    }
    by
}

/// Creates `<prefix>-00000`… `n` Deployments, 16 at a time: opted in with their spec-hash
/// when `opted_in`, else with no tfdrift label or annotation at all.
async fn create(api: &Api<Deployment>, prefix: &str, n: usize, opted_in: bool) {
    futures::stream::iter(0..n)
        .map(|i| async move {
            let mut m = manifest(
                &format!("{prefix}-{i:05}"),
                "registry.example.com/web:1.0.0",
            );
            if opted_in {
                let hash = tfdrift::core::fingerprint::hash_value(&m)
                    .expect("supported")
                    .expect("hash");
                m["metadata"]["annotations"] = json!({"tfdrift.jin.dev/spec-hash": hash});
            } else {
                m["metadata"]["labels"]
                    .as_object_mut()
                    .expect("labels")
                    .remove("tfdrift.jin.dev/enabled");
                m["metadata"]["annotations"] = json!({"example.com/build": noise(i)});
                // What the provider's expander sends besides (its schema defaults).
                m["spec"]["template"]["spec"]["automountServiceAccountToken"] = json!(true);
                m["spec"]["template"]["spec"]["enableServiceLinks"] = json!(true);
            }
            let d: Deployment = serde_json::from_value(m).expect("deployment");
            api.create(&PostParams::default(), &d)
                .await
                .expect("create");
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

/// (RSS in MiB, CPU seconds) of a process, from /proc.
fn proc_usage(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (rss_kib / 1024.0, (ticks(11) + ticks(12)) / hz.max(1.0))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Reconciles completed, over every kind and result.
async fn reconciled(op: &Operator) -> f64 {
    op.metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with("tfdrift_reconcile_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[derive(Default)]
struct Seen {
    /// When the watch first showed each object with the drifted image / with drifted=true.
    image: HashMap<String, Instant>,
    drifted: HashMap<String, Instant>,
    /// When a watch on Events first showed a DriftDetected Warning about each object.
    event: HashMap<String, Instant>,
    verdicts: usize,
    with_verdict: std::collections::HashSet<String>,
}

/// The state instance the Terraform provider would record for [`manifest`] without the
/// label, in its typed layout; `noise` is an annotation value that makes the state as
/// incompressible as real ones (so that gzip'd it spans several part Secrets).
fn typed_instance(ns: &str, name: &str, noise: &str) -> serde_json::Value {
    let container = |name: &str,
                     image: &str,
                     args: serde_json::Value,
                     port: serde_json::Value,
                     env: serde_json::Value,
                     resources: serde_json::Value| {
        json!({"name": name, "image": image, "image_pull_policy": "IfNotPresent", "args": args,
               "command": null, "port": port, "env": env, "env_from": [], "resources": [resources],
               "volume_mount": [], "liveness_probe": [], "readiness_probe": [], "startup_probe": [],
               "security_context": [], "lifecycle": [], "stdin": false, "tty": false,
               "termination_message_path": "/dev/termination-log",
               "termination_message_policy": "File", "working_dir": ""})
    };
    let env = |k: &str, v: &str| json!({"name": k, "value": v, "value_from": []});
    json!({
        "schema_version": 1,
        "attributes": {
            "id": format!("{ns}/{name}"),
            "metadata": [{"annotations": {"example.com/build": noise}, "generate_name": "",
                          "generation": 1, "labels": {"app": name}, "name": name,
                          "namespace": ns, "resource_version": "1", "uid": ""}],
            "spec": [{"replicas": "2", "min_ready_seconds": 0, "paused": false,
                      "progress_deadline_seconds": 600, "revision_history_limit": 10,
                      "selector": [{"match_expressions": [], "match_labels": {"app": name}}],
                      "strategy": [{"type": "RollingUpdate", "rolling_update": [{"max_surge": "25%", "max_unavailable": "25%"}]}],
                      "template": [{"metadata": [{"labels": {"app": name}, "annotations": null}],
                                    "spec": [{"container": [
                                        container("web", "registry.example.com/web:1.0.0", json!([]),
                                            json!([{"container_port": 8080, "name": "http", "protocol": "TCP", "host_port": 0, "host_ip": ""}]),
                                            json!([env("LOG_LEVEL", "info"), env("REGION", "eu-west-1")]),
                                            json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}})),
                                        container("sidecar", "envoyproxy/envoy:v1.31.0",
                                            json!(["--config", "/etc/envoy.yaml"]), json!([]), json!([]),
                                            json!({"limits": {}, "requests": {}})),
                                    ], "init_container": [], "volume": [], "service_account_name": "",
                                    "node_selector": null, "dns_policy": "ClusterFirst",
                                    "restart_policy": "Always", "scheduler_name": "default-scheduler"}]}]}],
            "timeouts": null,
            "wait_for_rollout": true
        },
        "sensitive_attributes": []
    })
}

/// One kind of the mixed scenario: an object as the provider creates it and the state
/// instance it records, from the typed fixtures (their namespace replaced by the bench's).
struct Template {
    resource: ApiResource,
    namespaced: bool,
    object: serde_json::Value,
    resource_type: String,
    instance: serde_json::Value,
}

impl Template {
    /// The object and the state instance named `name`.
    fn named(&self, ns: &str, name: &str) -> (serde_json::Value, serde_json::Value) {
        let mut object = self.object.clone();
        object["metadata"]["name"] = json!(name);
        let mut instance = self.instance.clone();
        let attrs = &mut instance["attributes"];
        attrs["metadata"][0]["name"] = json!(name);
        // As a state the provider wrote before the object's uid was recorded: not compared.
        attrs["metadata"][0]["uid"] = json!("");
        attrs["id"] = json!(if self.namespaced {
            format!("{ns}/{name}")
        } else {
            name.to_owned()
        });
        (object, instance)
    }
}

fn templates(ns: &str) -> Vec<Template> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/terraform/typed");
    let read = |family: &str, file: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(root.join(family).join(file)).expect("typed fixture");
        serde_json::from_str(&text.replace(&format!("tf-{family}"), ns)).expect("fixture JSON")
    };
    let mut out = Vec::new();
    for (family, address, group, version, kind, plural, namespaced) in [
        (
            "core",
            "kubernetes_config_map_v1.app_config",
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
        ),
        (
            "core",
            "kubernetes_secret_v1.app_creds",
            "",
            "v1",
            "Secret",
            "secrets",
            true,
        ),
        (
            "core",
            "kubernetes_service_account_v1.builder",
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
        ),
        (
            "core",
            "kubernetes_service_v1.web_headless",
            "",
            "v1",
            "Service",
            "services",
            true,
        ),
        (
            "core",
            "kubernetes_namespace_v1.core",
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
        ),
        (
            "access",
            "kubernetes_role_v1.config_editor",
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
        ),
        (
            "access",
            "kubernetes_role_binding_v1.config_editor",
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
        ),
    ] {
        let objects = read(family, "objects.json");
        let state = read(family, "state.tfstate");
        let (resource_type, name) = address.split_once('.').expect("address");
        let resource = state["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["type"] == resource_type && r["name"] == name)
            .expect("the fixture's instance");
        out.push(Template {
            resource: ApiResource::from_gvk_with_plural(
                &kube::api::GroupVersionKind::gvk(group, version, kind),
                plural,
            ),
            namespaced,
            object: objects[address].clone(),
            resource_type: resource_type.to_owned(),
            instance: resource["instances"][0].clone(),
        });
    }
    out
}

/// Creates `k` objects of each template, `<kind>-<prefix>-00000`…, 16 at a time; returns
/// the state resources naming them.
async fn create_kinds(
    client: &kube::Client,
    ns: &str,
    templates: &[Template],
    prefix: &str,
    k: usize,
) -> Vec<serde_json::Value> {
    let mut resources = Vec::new();
    for t in templates {
        let api: Api<DynamicObject> = if t.namespaced {
            Api::namespaced_with(client.clone(), ns, &t.resource)
        } else {
            Api::all_with(client.clone(), &t.resource)
        };
        let kind = t.resource.kind.to_lowercase();
        let named: Vec<(serde_json::Value, serde_json::Value)> = (0..k)
            .map(|i| {
                let name = if t.namespaced {
                    format!("{kind}-{prefix}-{i:05}")
                } else {
                    format!("{ns}-{prefix}-{i:05}")
                };
                t.named(ns, &name)
            })
            .collect();
        futures::stream::iter(named.iter().map(|(o, _)| o.clone()))
            .map(|o| {
                let api = api.clone();
                async move {
                    let obj: DynamicObject = serde_json::from_value(o).expect("object");
                    api.create(&PostParams::default(), &obj)
                        .await
                        .expect("create");
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        for (i, (_, instance)) in named.into_iter().enumerate() {
            resources.push(json!({"mode": "managed", "type": t.resource_type,
                "name": format!("{kind}_{i:05}"),
                "provider": "provider[\"registry.terraform.io/hashicorp/kubernetes\"]",
                "instances": [instance]}));
        }
    }
    resources
}

/// Helm's label and annotations on every object of release `release` in `ns`.
fn helm_owned(object: &mut serde_json::Value, ns: &str, release: &str) {
    let meta = object["metadata"].as_object_mut().expect("metadata");
    meta.entry("labels")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("labels")
        .insert("app.kubernetes.io/managed-by".into(), json!("Helm"));
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("annotations");
    annotations.insert("meta.helm.sh/release-name".into(), json!(release));
    annotations.insert("meta.helm.sh/release-namespace".into(), json!(ns));
}

/// Creates `releases` Helm releases of 50 objects each in `ns` as Helm leaves them: the
/// objects with Helm's metadata, and one deployed release record per release whose manifest
/// renders them. Deployments are `tf-00000`…; returns how many objects were created.
async fn create_releases(
    client: &kube::Client,
    ns: &str,
    templates: &[Template],
    releases: usize,
) -> usize {
    use base64::Engine as _;
    use std::io::Write as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut total = 0;
    for r in 0..releases {
        let release = format!("rel-{r:03}");
        let mut docs: Vec<(ApiResource, serde_json::Value)> = Vec::new();
        let deployment = ApiResource::erase::<Deployment>(&());
        for j in 0..8 {
            let mut m = manifest(
                &format!("tf-{:05}", r * 8 + j),
                "registry.example.com/web:1.0.0",
            );
            m["metadata"]["labels"]
                .as_object_mut()
                .expect("labels")
                .remove("tfdrift.jin.dev/enabled");
            m["metadata"]["namespace"] = json!(ns);
            docs.push((deployment.clone(), m));
        }
        for t in templates.iter().filter(|t| t.namespaced) {
            let kind = t.resource.kind.to_lowercase();
            for i in 0..7 {
                let (mut object, _) = t.named(ns, &format!("{kind}-{release}-{i}"));
                object["metadata"]["namespace"] = json!(ns);
                docs.push((t.resource.clone(), object));
            }
        }
        let manifest_text: String = docs.iter().map(|(_, d)| format!("---\n{d}\n")).collect();
        futures::stream::iter(docs.into_iter().map(|(resource, mut object)| {
            helm_owned(&mut object, ns, &release);
            (resource, object)
        }))
        .map(|(resource, object)| async move {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
            let obj: DynamicObject = serde_json::from_value(object).expect("object");
            api.create(&PostParams::default(), &obj)
                .await
                .expect("create");
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
        total += 50;
        let json = json!({"name": release, "namespace": ns, "version": 1,
            "info": {"status": "deployed"}, "config": {}, "manifest": manifest_text});
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json.to_string().as_bytes()).expect("gzip");
        let record = b64.encode(gz.finish().expect("gzip"));
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": format!("sh.helm.release.v1.{release}.v1"), "namespace": ns,
                "labels": {"owner": "helm", "name": release, "status": "deployed", "version": "1"}},
            "data": {"release": b64.encode(record)}});
        let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(secret).expect("secret"),
        )
        .await
        .expect("create the release record");
    }
    total
}

/// The value of object `i`'s `example.com/build` annotation: as incompressible as real
/// states are (so that gzip'd the state spans several part Secrets).
fn noise(i: usize) -> String {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
    (0..25)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            format!("{:016x}", seed)
        })
        .collect()
}

/// Pushes a state naming `tf-00000`… (and `extra`) through Terraform's `kubernetes` backend
/// into `ns`.
fn push_state(cp: &support::ControlPlane, ns: &str, n: usize, extra: Vec<serde_json::Value>) {
    let resources: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({"mode": "managed", "type": "kubernetes_deployment_v1", "name": format!("app_{i:05}"),
                   "provider": "provider[\"registry.terraform.io/hashicorp/kubernetes\"]",
                   "instances": [typed_instance(ns, &format!("tf-{i:05}"), &noise(i))]})
        })
        .chain(extra)
        .collect();
    let state = json!({"version": 4, "terraform_version": "1.5.0", "serial": 1,
                       "lineage": "bench-lineage", "outputs": {}, "resources": resources});
    let dir = std::env::temp_dir().join(format!("tfdrift-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(dir.join("state.json"), state.to_string()).expect("state.json");
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "terraform {{\n  backend \"kubernetes\" {{\n    secret_suffix = \"bench\"\n    namespace = \"{ns}\"\n    config_path = \"{}\"\n    insecure = true\n  }}\n}}\n",
            cp.kubeconfig.display()
        ),
    )
    .expect("main.tf");
    for args in [
        &["init", "-input=false", "-no-color"][..],
        &["state", "push", "-no-color", "state.json"][..],
    ] {
        let out = std::process::Command::new("terraform")
            .args(args)
            .current_dir(&dir)
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .output()
            .expect("terraform on PATH");
        assert!(
            out.status.success(),
            "terraform {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` (make test) runs bench
    // binaries too, without it. A debug-build run would take minutes and overwrite
    // docs/benchmarks.md with meaningless figures.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("bench: not run under cargo test; use `make bench-operator`");
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    let scenario = std::env::var("BENCH_SCENARIO").unwrap_or_default();
    let helm = scenario == "helm";
    let terraform = scenario == "terraform";
    let releases = env_usize("BENCH_RELEASES", 100);
    if terraform
        && !std::process::Command::new("terraform")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        eprintln!("bench: the terraform scenario needs the terraform CLI on PATH; skipped");
        return;
    }
    let n = env_usize("BENCH_N", 1000);
    // Deployments: all N objects of the label flow, an eighth of them in the mixed one.
    let k = if terraform {
        n.div_ceil(8)
    } else if helm {
        releases * 8
    } else {
        n
    };
    let drifts = env_usize("BENCH_DRIFTS", 200).min(k);
    let cp = control_plane();
    let client = cp.client().await.expect("client");
    let ns = support::namespace(&client, "bench").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    if !helm {
        eprintln!("bench: creating {n} objects in {}", ns.name);
    }
    let created = Instant::now();
    let mut named_total = n;
    if terraform {
        // Managed by Terraform: no label, no annotation; seven more kinds beside Deployments.
        create(&api, "tf", k, false).await;
        let templates = templates(&ns.name);
        let extra = create_kinds(&client, &ns.name, &templates, "tf", k).await;
        named_total = k + extra.len();
        eprintln!(
            "bench: {named_total} named objects of {} kinds created in {:.1}s",
            templates.len() + 1,
            created.elapsed().as_secs_f64()
        );
        // As many objects again that nothing names: the operator is told of them all.
        create(&api, "other", k, false).await;
        create_kinds(&client, &ns.name, &templates, "other", k).await;
        let pushed = Instant::now();
        push_state(cp, &ns.name, k, extra);
        let parts = cp.kubectl(&[
            "get",
            "secrets",
            "-n",
            &ns.name,
            "-l",
            "tfstate=true",
            "-o",
            "name",
        ]);
        eprintln!(
            "bench: {named_total} unrelated objects created; state pushed in {:.1}s as {} Secret(s)",
            pushed.elapsed().as_secs_f64(),
            parts.lines().count()
        );
    } else if helm {
        let templates = templates(&ns.name);
        named_total = create_releases(&client, &ns.name, &templates, releases).await;
        eprintln!(
            "bench: {releases} Helm releases of {named_total} objects created in {:.1}s",
            created.elapsed().as_secs_f64()
        );
        create(&api, "other", k, false).await;
        create_kinds(
            &client,
            &ns.name,
            &templates,
            "other",
            named_total.div_ceil(8),
        )
        .await;
    } else {
        create(&api, "app", n, true).await;
        eprintln!("bench: created in {:.1}s", created.elapsed().as_secs_f64());
    }

    // One watch sees everything the benchmark measures.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let watch_seen = seen.clone();
    let watch_api = api.clone();
    tokio::spawn(async move {
        let stream = watcher(watch_api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        while let Ok(Some(event)) = stream.try_next().await {
            let now = Instant::now();
            let objs: Vec<Deployment> = match event {
                watcher::Event::Apply(d) | watcher::Event::InitApply(d) => vec![d],
                _ => continue,
            };
            let mut s = watch_seen.lock().unwrap();
            for d in objs {
                let name = d.metadata.name.clone().unwrap_or_default();
                let ann = d.metadata.annotations.clone().unwrap_or_default();
                if ann.contains_key("tfdrift.jin.dev/drifted")
                    && s.with_verdict.insert(name.clone())
                {
                    s.verdicts += 1;
                }
                let image = d
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref())
                    .map(|p| p.containers[0].image.clone().unwrap_or_default());
                if image.as_deref() == Some("registry.example.com/web:2.0.0") {
                    s.image.entry(name.clone()).or_insert(now);
                }
                if ann.get("tfdrift.jin.dev/drifted").map(String::as_str) == Some("true") {
                    s.drifted.entry(name).or_insert(now);
                }
            }
        }
    });

    // The Warning users watch (`kubectl get events`) is sent before the PATCH that records
    // the verdict: it is timed too.
    let event_seen = seen.clone();
    // (Through core/v1, where every event reads: the controllers' own events have no
    // eventTime, which events.k8s.io/v1 types require.)
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &ns.name);
    tokio::spawn(async move {
        let stream = watcher(events, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            let now = Instant::now();
            let Ok(watcher::Event::Apply(e) | watcher::Event::InitApply(e)) = event else {
                continue;
            };
            if e.reason.as_deref() == Some("DriftDetected")
                && let Some(name) = e.involved_object.name
            {
                event_seen.lock().unwrap().event.entry(name).or_insert(now);
            }
        }
    });

    let writes_before = apiserver_writes(&client).await;
    let apiserver_pid = cp.apiserver_pid();
    let (_, api_cpu_before) = proc_usage(apiserver_pid);
    let resync = format!("{RESYNC_SECS}s");
    let mut args = vec!["--kinds", "Deployment", "--resync-period", &resync];
    if terraform {
        // Cluster-wide: Namespaces are among the kinds.
        args.extend([
            "--terraform-state-namespace",
            ns.name.as_str(),
            "--secret-namespaces",
            ns.name.as_str(),
        ]);
    } else if helm {
        args.extend([
            "--helm-namespace",
            ns.name.as_str(),
            "--secret-namespaces",
            ns.name.as_str(),
        ]);
    } else {
        args.extend(["--namespace", ns.name.as_str()]);
    }
    let op = Operator::start(cp, "bench", &args);
    let pid = op.pid() as u32;
    let peak = Arc::new(Mutex::new(0.0f64));
    let sampler_peak = peak.clone();
    tokio::spawn(async move {
        loop {
            let (rss, _) = proc_usage(pid);
            {
                let mut p = sampler_peak.lock().unwrap();
                *p = p.max(rss);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let start = Instant::now();
    eventually(
        "every object has a verdict",
        Duration::from_secs(1800),
        || async {
            let deployments = seen.lock().unwrap().verdicts >= k;
            // The other annotated kinds (Services, ConfigMaps): their verdict patches, the
            // only writes of an in-sync start; the kinds without annotations: their
            // reconciles, every one of which decided.
            // Helm: Deployments, Services and ConfigMaps (8 + 7 + 7 a release) are annotated.
            let annotated = if helm { 22 * releases } else { 3 * k } as f64;
            (deployments
                && (!(terraform || helm)
                    || (reconciled(&op).await >= named_total as f64
                        && apiserver_writes(&client).await - writes_before >= annotated)))
                .then_some(())
        },
    )
    .await;
    let initial_sync_s = start.elapsed().as_secs_f64();
    let (_, cpu_initial) = proc_usage(pid);
    let (_, api_cpu_after) = proc_usage(apiserver_pid);
    let apiserver_cpu_s = api_cpu_after - api_cpu_before;
    let initial_writes = apiserver_writes(&client).await - writes_before;
    eprintln!("bench: initial sync {initial_sync_s:.2}s, {initial_writes} writes");
    // Nothing should be drifted yet: say what is, if anything.
    for line in op.metrics_text().await.lines() {
        if line.starts_with("tfdrift_resources_drifted{") && !line.ends_with(" 0") {
            eprintln!("bench: drifted before any drift was made: {line}");
            if line.contains("kind=\"Deployment\"")
                && let Ok(d) = api.get(&format!("tf-{:05}", 0)).await
            {
                eprintln!(
                    "bench: e.g. tf-00000: {:?}",
                    d.metadata
                        .annotations
                        .unwrap_or_default()
                        .get("tfdrift.jin.dev/drift-summary")
                );
            }
        }
    }

    let idle_from = reconciled(&op).await;
    let writes_idle_by = apiserver_writes_by_resource(&client).await;
    let writes_idle: f64 = writes_idle_by.values().sum();
    // Every watched object is reconciled at each resync; decided ones are counted.
    eventually(
        "3 resyncs",
        Duration::from_secs(RESYNC_SECS * 3 + 600),
        || async { (reconciled(&op).await >= idle_from + 3.0 * named_total as f64).then_some(()) },
    )
    .await;
    let steady_by = apiserver_writes_by_resource(&client).await;
    let steady_writes = steady_by.values().sum::<f64>() - writes_idle;
    for (what, v) in &steady_by {
        let d = v - writes_idle_by.get(what).copied().unwrap_or(0.0);
        if d > 0.0 {
            eprintln!("bench: written at steady state: {d} × {what}");
        }
    }
    let (rss_steady_mib, _) = proc_usage(pid);
    eprintln!("bench: {steady_writes} writes over 3 resyncs, steady RSS {rss_steady_mib:.1} MiB");

    let mut detect = Vec::new();
    let mut floor = Vec::new();
    let mut warning = Vec::new();
    // A strategic-merge patch of one container by name, as `kubectl set image` sends.
    let patch = Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "registry.example.com/web:2.0.0"}]}}}}));
    for i in 0..drifts {
        let name = format!("{}-{i:05}", if terraform || helm { "tf" } else { "app" });
        api.patch(&name, &PatchParams::default(), &patch)
            .await
            .expect("drift patch");
        let responded = Instant::now();
        let (img, drifted, warned) = eventually(
            &format!("{name} drifted"),
            Duration::from_secs(60),
            || async {
                let s = seen.lock().unwrap();
                Some((
                    *s.image.get(&name)?,
                    *s.drifted.get(&name)?,
                    *s.event.get(&name)?,
                ))
            },
        )
        .await;
        let ms = |t: Instant| t.saturating_duration_since(responded).as_secs_f64() * 1000.0;
        floor.push(ms(img));
        detect.push(ms(drifted));
        warning.push(ms(warned));
    }
    detect.sort_by(f64::total_cmp);
    warning.sort_by(f64::total_cmp);
    floor.sort_by(f64::total_cmp);
    let (_, cpu_s) = proc_usage(pid);
    let rss_peak_mib = *peak.lock().unwrap();

    let results = json!({
        "scenario": if terraform { "terraform" } else if helm { "helm" } else { "label" },
        "n": named_total,
        "kinds": if terraform { 8 } else if helm { 7 } else { 1 },
        "releases": if helm { releases } else { 0 },
        "initial_sync_s": initial_sync_s,
        "initial_writes": initial_writes,
        "steady_writes": steady_writes,
        "detect_p50_ms": percentile(&detect, 50.0),
        "detect_p99_ms": percentile(&detect, 99.0),
        "detect_max_ms": detect.last().copied().unwrap_or(f64::NAN),
        "warning_p50_ms": percentile(&warning, 50.0),
        "warning_p99_ms": percentile(&warning, 99.0),
        "floor_p50_ms": percentile(&floor, 50.0),
        "floor_p99_ms": percentile(&floor, 99.0),
        "rss_peak_mib": rss_peak_mib,
        "rss_steady_mib": rss_steady_mib,
        "cpu_s": cpu_s,
        "cpu_initial_sync_s": cpu_initial,
        "apiserver_cpu_initial_sync_s": apiserver_cpu_s,
        "drifts": drifts,
        "resync_period_s": RESYNC_SECS,
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    std::fs::write(
        out.join(if terraform {
            "results-terraform.json"
        } else if helm {
            "results-helm.json"
        } else {
            "results.json"
        }),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .expect("results.json");
    println!("{}", serde_json::to_string_pretty(&results).unwrap());
    if n >= 1000 && !terraform && !helm {
        write_markdown(&results);
    }
    ns.delete(&client).await;
}

fn write_markdown(r: &serde_json::Value) {
    let machine = format!(
        "{} cores, {}, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned())
            )
            .unwrap_or_default(),
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().map(|l| l
                .split_whitespace()
                .nth(1)
                .unwrap_or("0")
                .parse::<f64>()
                .unwrap_or(0.0)))
            .map(|kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0))
            .unwrap_or_default()
    );
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let md = format!(
        "# Benchmarks\n\n`make bench-operator` (`benches/operator.rs`): the release `tfdrift run` against a local \
kube-apiserver v1.20.2 + etcd on loopback, on the same machine.\n\nMachine: {machine}.\n\n\
| figure | value |\n| --- | --- |\n\
| objects (N) | {n} |\n\
| initial sync (every object has a verdict) | {:.2} s |\n\
| API writes during initial sync | {:.0} |\n\
| API writes over 3 idle resyncs ({}s period) | {:.0} |\n\
| drift detection p50 / p99 / max (from the patch's response to `drifted=true` seen by a watch, {} drifts) | {:.1} / {:.1} / {:.1} ms |\n\
| DriftDetected Warning p50 / p99 (from the patch's response to the event seen by a watch; it is sent before the PATCH) | {:.1} / {:.1} ms |\n\
| floor p50 / p99 (the same watch seeing the patch itself) | {:.1} / {:.1} ms |\n\
| operator RSS peak / steady | {:.1} / {:.1} MiB |\n\
| operator CPU, initial sync / whole run | {:.2} / {:.2} s |\n\
| kube-apiserver CPU during the initial sync | {:.2} s |\n",
        f("initial_sync_s"),
        f("initial_writes"),
        r["resync_period_s"],
        f("steady_writes"),
        r["drifts"],
        f("detect_p50_ms"),
        f("detect_p99_ms"),
        f("detect_max_ms"),
        f("warning_p50_ms"),
        f("warning_p99_ms"),
        f("floor_p50_ms"),
        f("floor_p99_ms"),
        f("rss_peak_mib"),
        f("rss_steady_mib"),
        f("cpu_initial_sync_s"),
        f("cpu_s"),
        f("apiserver_cpu_initial_sync_s"),
        n = r["n"],
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md");
    // Keep the hand-written history below the figures.
    let history = std::fs::read_to_string(&path)
        .ok()
        .and_then(|old| old.find("\n## History").map(|i| old[i..].to_owned()))
        .unwrap_or_default();
    std::fs::write(path, format!("{md}{history}")).expect("docs/benchmarks.md");
}
