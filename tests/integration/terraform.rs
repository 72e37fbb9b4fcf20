//! The operator's Terraform-state flow against the real API server and the real `terraform`
//! CLI: states pushed through the `kubernetes` backend, locks, missing objects, least
//! privilege. (`tfdrift check` on every kind is in `check.rs`.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use serde_json::Value;

use crate::support::{self, APISERVER, control_plane};

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kube-apiserver-v1.20.2")
        .join(case)
        .join("manifest.yaml")
}

/// The state fixture with its objects moved to `ns`.
fn state_in(ns: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tfstate/fixtures.tfstate");
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.replace("\"fixtures\"", &format!("\"{ns}\""));
    serde_json::from_str(&text).unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the real `terraform` CLI in `dir`; panics with its output on failure.
pub(crate) fn terraform(dir: &Path, args: &[&str]) {
    let out = Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .output()
        .expect("terraform on PATH");
    assert!(
        out.status.success(),
        "terraform {args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

pub(crate) fn has_terraform() -> bool {
    Command::new("terraform")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The operator takes intent from a state that `terraform state push` wrote through the
/// real `kubernetes` backend (gzip'd Secret, labels, lock Lease): an object with no label
/// and no annotation is judged, named by its address, and a hot-fix is reported.
#[tokio::test]
async fn the_operator_reads_the_state_terraform_pushed() {
    if !has_terraform() {
        eprintln!("SKIPPED: the terraform CLI is not on PATH (it is needed for this test)");
        return;
    }
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "tfop").await;
    let n = ns.name.as_str();
    let (mut state, dir) = pushed(cp, n).await;

    let op = support::Operator::start(
        cp,
        "tfstate",
        &[
            "--namespace",
            n,
            "--terraform-state-namespace",
            n,
            "--resync-period",
            "1h",
        ],
    );
    op.wait_ready().await;
    let address = r#"module.app.kubernetes_deployment_v1.api["blue"]"#;
    let annotations = annotations_when(&client, n, "the state's annotations", |a| {
        a.get("tfdrift.jin.dev/drifted").map(String::as_str) == Some("false")
    })
    .await;
    assert_eq!(annotations["tfdrift.jin.dev/terraform-address"], address);
    assert_eq!(
        annotations["tfdrift.jin.dev/terraform-workspace"],
        format!("{n}/default/app")
    );
    assert_eq!(
        annotations["tfdrift.jin.dev/intent-source"],
        "terraform-state"
    );

    // managedFields times have one-second resolution: change it after tfdrift's write.
    support::next_second().await;
    cp.kubectl(&[
        "set",
        "image",
        "-n",
        n,
        "deployment/deploy-quantities-env",
        "api=ghcr.io/example/api:2.5.0",
    ]);
    let note =
        crate::operator::event_note(&client, n, "deploy-quantities-env", "DriftDetected").await;
    assert!(note.contains(address), "{note}");
    assert!(
        note.contains("containers[api].image: ghcr.io/example/api:2.4.1 → ghcr.io/example/api:2.5.0 (changed by kubectl-set at"),
        "{note}"
    );
    let logs = op.logs();
    for secret in ["s3cr3t-in-state", "  padded  "] {
        assert!(!logs.contains(secret), "a value from state reached the log");
    }

    // A state that cannot be read: a Warning on its Secret; the object keeps its verdict.
    cp.kubectl_stdin(
        &["apply", "-f", "-"],
        &serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "tfstate-broken-app", "namespace": n,
                         "labels": {"tfstate": "true", "tfstateSecretSuffix": "app", "tfstateWorkspace": "broken"}},
            "data": {"tfstate": "bm90IGd6aXA="}
        })
        .to_string(),
    );
    let note =
        crate::operator::event_note(&client, n, "tfstate-broken-app", "InvalidTerraformState")
            .await;
    assert!(note.contains("keep their last verdict"), "{note}");
    let kept =
        crate::operator::verdict_annotations(&client, n, "Deployment", "deploy-quantities-env")
            .await;
    assert_eq!(kept["tfdrift.jin.dev/drifted"], "true");

    // The state deleted: the object, which has no label, loses the operator's annotations.
    cp.kubectl(&["delete", "secret", "-n", n, "tfstate-default-app"]);
    annotations_when(&client, n, "the operator's annotations removed", |a| {
        !a.keys().any(|k| k.starts_with("tfdrift.jin.dev/"))
    })
    .await;

    // Named again, by a state pushed while the operator runs: judged again (its kind's watch
    // starts again, or the object is fetched if the watch had not ended), still drifted: its
    // image is not the state's.
    state["serial"] = Value::from(state["serial"].as_u64().unwrap_or(1) + 10);
    push(dir.path(), &state, true);
    let back = annotations_when(&client, n, "the state's annotations back", |a| {
        a.get("tfdrift.jin.dev/drifted").map(String::as_str) == Some("true")
    })
    .await;
    assert_eq!(back["tfdrift.jin.dev/terraform-address"], address);

    // An ignore rule written in HCL reaches the state with the next apply: the object is
    // judged under it (fetched again, its intent changed), and the ignored container no
    // longer drifts.
    state["resources"][0]["instances"][0]["attributes"]["metadata"][0]["annotations"] =
        serde_json::json!({"tfdrift.jin.dev/ignore": "containers[api]"});
    // (Terraform bumped the serial of the push before: above it.)
    state["serial"] = Value::from(state["serial"].as_u64().unwrap_or(1) + 10);
    push(dir.path(), &state, true);
    annotations_when(&client, n, "in sync under the state's ignore rule", |a| {
        a.get("tfdrift.jin.dev/drifted").map(String::as_str) == Some("false")
    })
    .await;
    drop(op);
    ns.delete(&client).await;
}

/// The annotations of Deployment `deploy-quantities-env` in `n` once `ready` holds for
/// them (a minute at most).
async fn annotations_when(
    client: &kube::Client,
    n: &str,
    what: &str,
    ready: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    support::eventually(what, Duration::from_secs(60), || async {
        let a = Api::<Deployment>::namespaced(client.clone(), n)
            .get("deploy-quantities-env")
            .await
            .ok()?
            .metadata
            .annotations
            .unwrap_or_default();
        ready(&a).then_some(a)
    })
    .await
}

/// Creates the fixture `case` in `n` as the provider would from the state fixture (without
/// tfdrift's label or any annotation, with the provider's defaults); returns its uid.
async fn create_unlabelled(cp: &support::ControlPlane, n: &str, case: &str) -> String {
    let mut manifest: Value = serde_json::to_value(
        tfdrift::cli::manifest::Manifests::parse(&std::fs::read(fixture(case)).unwrap())
            .unwrap()
            .documents[0]
            .clone(),
    )
    .unwrap();
    manifest["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    if manifest["kind"] == "Deployment" {
        // What the provider sends besides the manifest's fields: its defaults for these.
        let pod = &mut manifest["spec"]["template"]["spec"];
        pod["automountServiceAccountToken"] = Value::Bool(true);
        pod["enableServiceLinks"] = Value::Bool(true);
    }
    cp.kubectl_stdin(&["create", "-n", n, "-f", "-"], &manifest.to_string());
    let kind = manifest["kind"].as_str().unwrap().to_lowercase();
    let json = cp.kubectl(&["get", "-n", n, &kind, case, "-o", "json"]);
    let live: Value = serde_json::from_str(&json).unwrap();
    live["metadata"]["uid"].as_str().unwrap().to_owned()
}

/// A Terraform working directory whose `kubernetes` backend keeps state in `n` (secret
/// suffix `app`), initialised.
pub(crate) fn backend(cp: &support::ControlPlane, n: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.tf"),
        format!(
            concat!(
                "terraform {{\n  backend \"kubernetes\" {{\n    secret_suffix = \"app\"\n",
                "    namespace = \"{}\"\n    config_path = \"{}\"\n",
                // The test API server's certificate is self-signed.
                "    insecure = true\n  }}\n}}\n"
            ),
            n,
            cp.kubeconfig.display()
        ),
    )
    .unwrap();
    terraform(dir.path(), &["init", "-input=false", "-no-color"]);
    dir
}

/// The unlabelled Deployment of the fixture created in `n`, and the state fixture naming it
/// (with its uid) pushed through the backend: the state and the Terraform directory.
async fn pushed(cp: &support::ControlPlane, n: &str) -> (Value, tempfile::TempDir) {
    let mut state = state_in(n);
    state["terraform_version"] = Value::from("1.5.0");
    // The fixture's second instance naming this Deployment (a case of `hash --tfstate`'s): one
    // address per object here.
    state["resources"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["name"] != "legacy");
    let uid = create_unlabelled(cp, n, "deploy-quantities-env").await;
    state["resources"][0]["instances"][0]["attributes"]["metadata"][0]["uid"] = Value::from(uid);
    let dir = backend(cp, n);
    push(dir.path(), &state, true);
    (state, dir)
}

/// `terraform state push` of `state` (with or without taking the lock).
pub(crate) fn push(dir: &Path, state: &Value, lock: bool) {
    std::fs::write(dir.join("state.json"), state.to_string()).unwrap();
    let lock = if lock { "-lock=true" } else { "-lock=false" };
    terraform(dir, &["state", "push", "-no-color", lock, "state.json"]);
}

/// Reconciles of Deployments begun so far (decided or not).
async fn reconciles_begun(op: &support::Operator) -> f64 {
    let text = op.metrics_text().await;
    text.lines()
        .find(|l| {
            l.starts_with(
                "tfdrift_reconcile_duration_seconds_count{group=\"apps\",kind=\"Deployment\"}",
            )
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn wait_begun(op: &support::Operator, since: f64) {
    support::eventually(
        "another Deployment reconcile",
        Duration::from_secs(60),
        || async { (reconciles_begun(op).await > since).then_some(()) },
    )
    .await;
}

fn lease_holder(cp: &support::ControlPlane, n: &str) -> String {
    cp.kubectl(&[
        "get",
        "lease",
        "-n",
        n,
        "lock-tfstate-default-app",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
}

/// An apply as the cluster sees it: Terraform holds the lock, changes the object, writes the
/// new state, releases the lock — in whatever order the watches deliver it, no
/// DriftDetected. Objects the state names that the cluster lacks are reported missing.
#[tokio::test]
async fn no_false_drift_around_an_apply_and_missing_objects_are_reported() {
    if !has_terraform() {
        eprintln!("SKIPPED: the terraform CLI is not on PATH (it is needed for this test)");
        return;
    }
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "tflock").await;
    let n = ns.name.as_str();
    let (mut state, dir) = pushed(cp, n).await;
    let op = support::Operator::start(
        cp,
        "tflock",
        &[
            "--namespace",
            n,
            "--terraform-state-namespace",
            n,
            "--resync-period",
            "1h",
        ],
    );
    op.wait_ready().await;
    crate::operator::wait_drifted(&client, n, "Deployment", "deploy-quantities-env", "false").await;

    // The state names a ConfigMap the cluster lacks: a Warning on the state Secret.
    support::eventually(
        "the ConfigMap reported missing",
        Duration::from_secs(60),
        || async {
            crate::operator::events(&client, n, "tfstate-default-app")
                .await
                .into_iter()
                .find(|e| {
                    e.0 == "TerraformResourceMissing" && e.2.contains("kubernetes_config_map_v1.cm")
                })
        },
    )
    .await;
    let series = format!(
        "tfdrift_resource_missing{{address=\"kubernetes_config_map_v1.cm\",group=\"\",kind=\"ConfigMap\",name=\"cm-basic\",namespace=\"{n}\"}}"
    );
    assert_eq!(op.metric(&series).await, Some(1.0));
    create_unlabelled(cp, n, "cm-basic").await;
    support::eventually(
        "the missing series gone",
        Duration::from_secs(60),
        || async { op.metric(&series).await.is_none().then_some(()) },
    )
    .await;

    // terraform console holds the state lock while its stdin is open.
    let mut console = Command::new("terraform")
        .args(["console", "-no-color"])
        .current_dir(dir.path())
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    support::eventually(
        "terraform holds the lock",
        Duration::from_secs(60),
        || async { (!lease_holder(cp, n).is_empty()).then_some(()) },
    )
    .await;
    // The apply changes the object...
    let begun = reconciles_begun(&op).await;
    cp.kubectl(&[
        "set",
        "image",
        "-n",
        n,
        "deployment/deploy-quantities-env",
        "api=ghcr.io/example/api:2.5.0",
    ]);
    wait_begun(&op, begun).await;
    // ...then writes the new state, with the lock still held (read on unlock: its parts
    // may be half written while Terraform holds the lock).
    state["serial"] = Value::from(20);
    state["resources"][0]["instances"][0]["attributes"]["spec"][0]["template"][0]["spec"][0]["container"]
        [0]["image"] = Value::from("ghcr.io/example/api:2.5.0");
    push(dir.path(), &state, false);
    // ...and releases the lock.
    let begun = reconciles_begun(&op).await;
    drop(console.stdin.take());
    console.wait().unwrap();
    support::eventually("the lock released", Duration::from_secs(60), || async {
        lease_holder(cp, n).is_empty().then_some(())
    })
    .await;
    wait_begun(&op, begun).await;
    let annotations =
        crate::operator::wait_drifted(&client, n, "Deployment", "deploy-quantities-env", "false")
            .await;
    assert_eq!(annotations["tfdrift.jin.dev/drifted"], "false");
    assert_eq!(
        crate::operator::count_events(&client, n, "deploy-quantities-env", "DriftDetected").await,
        0,
        "a drift reported around an apply"
    );

    // Control: a change with no lock held is drift, so the test above could fail.
    cp.kubectl(&[
        "set",
        "image",
        "-n",
        n,
        "deployment/deploy-quantities-env",
        "api=ghcr.io/example/api:2.6.0",
    ]);
    let note =
        crate::operator::event_note(&client, n, "deploy-quantities-env", "DriftDetected").await;
    assert!(note.contains("2.5.0 → ghcr.io/example/api:2.6.0"), "{note}");
    drop(op);
    ns.delete(&client).await;
}

/// The operator's own identity (config/default's ServiceAccount) reads the states only
/// once config/terraform-state grants it, in that namespace only: without the grant it is
/// not ready and says which permission it lacks; with it, it reads no other Secret.
#[tokio::test]
async fn state_secrets_are_read_with_least_privilege() {
    if !has_terraform() {
        eprintln!("SKIPPED: the terraform CLI is not on PATH (it is needed for this test)");
        return;
    }
    // Exclusive: it grants config/default's ServiceAccount more for a while, which
    // deploy.rs proves it does not have.
    let _exclusive = APISERVER.write().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    cp.kubectl(&[
        "apply",
        "-f",
        root.join("config/manager/namespace.yaml").to_str().unwrap(),
    ]);
    let rendered = cp.kubectl(&["kustomize", root.join("config/default").to_str().unwrap()]);
    cp.kubectl_stdin(&["apply", "-f", "-"], &rendered);

    let ns = support::namespace(&client, "tfrbac").await;
    let n = ns.name.as_str();
    let other = support::namespace(&client, "tfrbac-other").await;
    cp.kubectl(&[
        "create",
        "secret",
        "generic",
        "unrelated",
        "-n",
        &other.name,
        "--from-literal=k=v",
    ]);
    let (mut state, dir) = pushed(cp, n).await;

    let token = cp
        .service_account_token(&client, "tfdrift-system", "tfdrift-operator")
        .await;
    let kubeconfig = cp.kubeconfig_for_token("tfdrift-operator", &token);
    let op = support::Operator::start_with_kubeconfig(
        cp,
        &kubeconfig,
        "tfrbac",
        &["--namespace", n, "--terraform-state-namespace", n],
    );
    support::eventually(
        "the missing permission named",
        Duration::from_secs(60),
        || async {
            op.logs()
                .contains("needs get, list and watch on secrets and leases in this namespace")
                .then_some(())
        },
    )
    .await;
    assert!(!op.ready().await, "ready without reading the states");

    // The grant, for the state namespace only.
    let grant = cp
        .kubectl(&[
            "kustomize",
            root.join("config/terraform-state").to_str().unwrap(),
        ])
        .replace("namespace: terraform", &format!("namespace: {n}"));
    cp.kubectl_stdin(&["apply", "-f", "-"], &grant);
    op.wait_ready().await;
    let annotations =
        crate::operator::wait_drifted(&client, n, "Deployment", "deploy-quantities-env", "false")
            .await;
    assert_eq!(annotations["tfdrift.jin.dev/drifted"], "false");

    let own = support::client_from_kubeconfig(&kubeconfig).await.unwrap();
    let secrets = |namespace: &str| {
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(own.clone(), namespace)
    };
    assert!(secrets(n).get("tfstate-default-app").await.is_ok());
    for (what, result) in [
        (
            "get a Secret elsewhere",
            secrets(&other.name).get("unrelated").await.map(|_| ()),
        ),
        (
            "list Secrets elsewhere",
            secrets(&other.name)
                .list(&Default::default())
                .await
                .map(|_| ()),
        ),
        (
            "list Secrets cluster-wide",
            Api::<k8s_openapi::api::core::v1::Secret>::all(own.clone())
                .list(&Default::default())
                .await
                .map(|_| ()),
        ),
        (
            "delete the state",
            secrets(n)
                .delete("tfstate-default-app", &Default::default())
                .await
                .map(|_| ()),
        ),
    ] {
        match result {
            Err(kube::Error::Api(s)) if s.code == 403 => {}
            other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
        }
    }

    // A kind config/default does not grant: a Role the state names is reported not judged,
    // with the permission; the rest stays ready.
    let family = crate::check::family_dir("access");
    let objects = crate::check::renamed(&family.join("objects.json"), "access", n);
    let role = cp.kubectl_stdin(
        &["create", "-o", "json", "-f", "-"],
        &objects["kubernetes_role_v1.config_editor"].to_string(),
    );
    let role: Value = serde_json::from_str(&role).unwrap();
    let mut resource =
        crate::check::renamed(&family.join("state.tfstate"), "access", n)["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "kubernetes_role_v1" && r["name"] == "config_editor")
            .unwrap()
            .clone();
    resource["instances"][0]["attributes"]["metadata"][0]["uid"] = role["metadata"]["uid"].clone();
    state["resources"].as_array_mut().unwrap().push(resource);
    state["serial"] = Value::from(state["serial"].as_u64().unwrap_or(1) + 10);
    push(dir.path(), &state, true);
    let note = support::eventually(
        "NotJudged naming the Role",
        Duration::from_secs(60),
        || async {
            crate::operator::events(&client, n, "tfstate-default-app")
                .await
                .into_iter()
                .find(|e| e.0 == "NotJudged" && e.2.contains("kubernetes_role_v1.config_editor"))
                .map(|e| e.2)
        },
    )
    .await;
    assert!(
        note.contains("kubernetes_role_v1.config_editor") && note.contains("roles"),
        "{note}"
    );
    let forbidden = format!(
        "tfdrift_terraform_state_not_judged{{namespace=\"{n}\",reason=\"forbidden\",suffix=\"app\",workspace=\"default\"}}"
    );
    support::eventually(
        "the forbidden kind counted",
        Duration::from_secs(60),
        || async { (op.metric(&forbidden).await == Some(1.0)).then_some(()) },
    )
    .await;
    assert!(
        op.ready().await,
        "not ready because of one kind it may not read"
    );

    // The read-only grant of the provider's kinds (config/terraform-kinds) and the records
    // Role (config/terraform-state/operator): the Role is judged, without a restart.
    let kinds = root.join("config/terraform-kinds/role.yaml");
    cp.kubectl(&["apply", "-f", kinds.to_str().unwrap()]);
    let records = root.join("config/terraform-state/operator/records_role.yaml");
    cp.kubectl(&[
        "apply",
        "-n",
        "tfdrift-system",
        "-f",
        records.to_str().unwrap(),
    ]);
    let series = "tfdrift_reconcile_total{group=\"rbac.authorization.k8s.io\",kind=\"Role\",result=\"in_sync\"}";
    support::eventually(
        "the Role judged in sync",
        Duration::from_secs(60),
        || async { (op.metric(series).await >= Some(1.0)).then_some(()) },
    )
    .await;
    support::eventually(
        "the forbidden kind no longer counted",
        Duration::from_secs(60),
        || async { (op.metric(&forbidden).await.unwrap_or(0.0) == 0.0).then_some(()) },
    )
    .await;
    // It reads Roles and may not change one (nor any other RBAC object), nor write
    // ConfigMaps outside its own namespace.
    let roles = Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(own.clone(), n);
    assert!(roles.get("config-editor").await.is_ok());
    let label = kube::api::Patch::Merge(serde_json::json!({"metadata": {"labels": {"x": "y"}}}));
    for (what, result) in [
        (
            "patch a Role",
            roles
                .patch("config-editor", &Default::default(), &label)
                .await
                .map(|_| ()),
        ),
        (
            "create a ConfigMap outside its namespace",
            Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(own.clone(), n)
                .create(
                    &Default::default(),
                    &serde_json::from_value(serde_json::json!({
                        "metadata": {"name": "tfdrift-probe"}
                    }))
                    .unwrap(),
                )
                .await
                .map(|_| ()),
        ),
    ] {
        match result {
            Err(kube::Error::Api(s)) if s.code == 403 => {}
            other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
        }
    }

    drop(op);
    cp.kubectl(&[
        "delete",
        "--ignore-not-found",
        "-f",
        kinds.to_str().unwrap(),
    ]);
    cp.kubectl(&[
        "delete",
        "--ignore-not-found",
        "-n",
        "tfdrift-system",
        "-f",
        records.to_str().unwrap(),
    ]);
    cp.kubectl_stdin(&["delete", "--ignore-not-found", "-f", "-"], &grant);
    ns.delete(&client).await;
    other.delete(&client).await;
}
