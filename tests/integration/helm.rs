//! Helm releases as intent, with the real Helm v3 (`hack/helm.sh`: the upstream static
//! binary, digest-checked) installing, upgrading and rolling back a chart on the test API
//! server: `tfdrift check --helm-release` and the `helm_release` instances of a state.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, ControlPlane, control_plane};

/// The real Helm, or `None` (the test is skipped, saying so).
pub(crate) fn helm_binary() -> Option<PathBuf> {
    let path = std::env::var_os("TFDRIFT_HELM")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("helm"), PathBuf::from);
    let ok = Command::new(&path)
        .args(["version", "--short"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "SKIPPED: no Helm binary ({}); `make test` provisions one with hack/helm.sh",
            path.display()
        );
    }
    ok.then_some(path)
}

/// The real Helm against the test API server, its caches in `home`.
pub(crate) struct Helm {
    pub binary: PathBuf,
    pub kubeconfig: PathBuf,
    pub home: tempfile::TempDir,
}

impl Helm {
    pub(crate) fn new(cp: &ControlPlane) -> Option<Helm> {
        Some(Helm {
            binary: helm_binary()?,
            kubeconfig: cp.kubeconfig.clone(),
            home: tempfile::tempdir().unwrap(),
        })
    }

    pub(crate) fn output(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let home = self.home.path();
        Command::new(&self.binary)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .envs(env.iter().copied())
            .output()
            .expect("run helm")
    }

    /// Runs helm; panics with its output on failure.
    pub(crate) fn run(&self, args: &[&str]) -> String {
        self.run_with(args, &[])
    }

    pub(crate) fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.output(args, env);
        assert!(
            out.status.success(),
            "helm {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The test chart.
pub(crate) fn chart() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/helm/web")
        .display()
        .to_string()
}

/// The value every test installs in the chart's Secret: no output may show it.
pub(crate) const PASSWORD: &str = "hunter2-never-shown";

fn check(cp: &ControlPlane, args: &[&str], state: Option<&Value>) -> (Output, Value) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tfdrift"))
        .args(["check", "-o", "json", "--kubeconfig"])
        .arg(&cp.kubeconfig)
        .args(args)
        .args(state.map(|_| ["--tfstate", "-"]).into_iter().flatten())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(state) = state {
        stdin.write_all(state.to_string().as_bytes()).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains(PASSWORD),
        "a value of the release was printed:\n{all}"
    );
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("not JSON: {all}"));
    (out, report)
}

/// `kind/name` → (status, changes) of every row of a report.
fn rows(report: &Value) -> Vec<(String, String, Vec<String>, String)> {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!(
                    "{}/{}",
                    r["kind"].as_str().unwrap(),
                    r["name"].as_str().unwrap()
                ),
                r["status"].as_str().unwrap().to_owned(),
                r["changes"]
                    .as_array()
                    .map(|c| c.iter().map(|c| c.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default(),
                r["address"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn status_of<'a>(rows: &'a [(String, String, Vec<String>, String)], object: &str) -> &'a str {
    rows.iter()
        .find(|r| r.0 == object)
        .map(|r| r.1.as_str())
        .unwrap_or_else(|| panic!("no row for {object}: {rows:?}"))
}

fn drifted(rows: &[(String, String, Vec<String>, String)]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.1 != "in-sync")
        .map(|r| format!("{} {} {:?}", r.0, r.1, r.2))
        .collect()
}

const OBJECTS: [&str; 7] = [
    "ServiceAccount/web",
    "Secret/web",
    "ConfigMap/web",
    "Role/web",
    "Service/web",
    "Deployment/web",
    "Ingress/web",
];

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_judges_every_object_of_a_release_installed_by_helm() {
    let cp = control_plane();
    let Some(helm) = Helm::new(cp) else { return };
    let _shared = support::APISERVER.read().await;
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "helm").await;
    let n = ns.name.as_str();
    let password = format!("password={PASSWORD}");
    helm.run(&["install", "web", &chart(), "-n", n, "--set", &password]);
    let release = format!("{n}/web");

    let (out, report) = check(cp, &["--helm-release", &release], None);
    let now = rows(&report);
    assert_eq!(
        code(&out),
        0,
        "{:?}\n{}",
        drifted(&now),
        String::from_utf8_lossy(&out.stderr)
    );
    for object in OBJECTS {
        assert_eq!(status_of(&now, object), "in-sync", "{now:?}");
    }
    // The hook is no object of the release; every row names the release.
    assert_eq!(now.len(), OBJECTS.len(), "{now:?}");
    assert!(
        now.iter().all(|r| r.3 == format!("helm:{n}/web")),
        "{now:?}"
    );

    // Behind Helm's back: an image, a ConfigMap value, a Role verb.
    cp.kubectl(&["-n", n, "set", "image", "deployment/web", "web=nginx:1.26"]);
    cp.kubectl(&[
        "-n",
        n,
        "patch",
        "configmap",
        "web",
        "-p",
        r#"{"data":{"greeting":"bye"}}"#,
    ]);
    cp.kubectl(&[
        "-n",
        n,
        "patch",
        "role",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/rules/0/verbs/-","value":"delete"}]"#,
    ]);
    let (out, report) = check(cp, &["--helm-release", &release], None);
    let now = rows(&report);
    assert_eq!(code(&out), 2, "{now:?}");
    let changes = |object: &str| {
        now.iter()
            .find(|r| r.0 == object)
            .map(|r| r.2.join("; "))
            .unwrap_or_default()
    };
    assert_eq!(status_of(&now, "Deployment/web"), "drifted");
    assert!(
        changes("Deployment/web").contains("spec.template.spec.containers[web].image"),
        "{now:?}"
    );
    assert_eq!(status_of(&now, "ConfigMap/web"), "drifted");
    assert!(
        changes("ConfigMap/web").contains("data[greeting]"),
        "{now:?}"
    );
    assert!(
        !changes("ConfigMap/web").contains("bye"),
        "a ConfigMap value was printed: {now:?}"
    );
    assert_eq!(status_of(&now, "Role/web"), "drifted");
    assert!(changes("Role/web").contains("verbs"), "{now:?}");
    for object in [
        "ServiceAccount/web",
        "Secret/web",
        "Service/web",
        "Ingress/web",
    ] {
        assert_eq!(status_of(&now, object), "in-sync", "{now:?}");
    }

    // `helm upgrade` moves the intent (and puts back what it sets).
    helm.run(&[
        "upgrade",
        "web",
        &chart(),
        "-n",
        n,
        "--set",
        &password,
        "--set",
        "replicas=2",
    ]);
    let (out, report) = check(cp, &["--helm-release", &format!("{n}/*")], None);
    let now = rows(&report);
    assert_eq!(code(&out), 0, "{:?}", drifted(&now));
    cp.kubectl(&["-n", n, "scale", "deployment/web", "--replicas=1"]);
    let (out, report) = check(cp, &["--helm-release", &release], None);
    let now = rows(&report);
    assert_eq!(code(&out), 2);
    assert_eq!(
        drifted(&now),
        [r#"Deployment/web drifted ["spec.replicas: 2 → 1"]"#]
    );
    cp.kubectl(&["-n", n, "scale", "deployment/web", "--replicas=2"]);

    // A release Helm is changing is not judged until it settles: Helm's first write of an
    // upgrade is the pending record.
    let pending = pending_record(cp, n, 3);
    cp.kubectl(&["-n", n, "scale", "deployment/web", "--replicas=5"]);
    let (out, report) = check(cp, &["--helm-release", &release], None);
    let now = rows(&report);
    assert_eq!(code(&out), 0, "{now:?}");
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0].1, "not-judged");
    assert!(
        report.to_string().contains("pending-upgrade at revision 3"),
        "{report}"
    );
    cp.kubectl(&["-n", n, "delete", "secret", &pending]);
    cp.kubectl(&["-n", n, "scale", "deployment/web", "--replicas=2"]);

    // A corrupt record is an error naming the record, never its bytes.
    let corrupt = "sh.helm.release.v1.web.v3";
    apply(
        cp,
        &json!({
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": corrupt, "namespace": n,
                "labels": {"owner": "helm", "name": "web", "status": "deployed", "version": "3"}},
            "stringData": {"release": format!("H4sI{PASSWORD}")},
        }),
    );
    let (out, report) = check(cp, &["--helm-release", &release], None);
    assert_eq!(code(&out), 1, "{report}");
    assert!(
        report
            .to_string()
            .contains(&format!("release record Secret {n}/{corrupt}")),
        "{report}"
    );
    cp.kubectl(&["-n", n, "delete", "secret", corrupt]);

    // The chart `helm create` writes (with its Ingress and HPA on): in sync as installed.
    let created = tempfile::tempdir().unwrap();
    let starter = created.path().join("starter");
    helm.run(&["create", starter.to_str().unwrap()]);
    helm.run(&[
        "install",
        "starter",
        starter.to_str().unwrap(),
        "-n",
        n,
        "--set",
        "ingress.enabled=true",
        "--set",
        "autoscaling.enabled=true",
    ]);
    let (out, report) = check(cp, &["--helm-release", &format!("{n}/starter")], None);
    let now = rows(&report);
    assert_eq!(code(&out), 0, "{:?}", drifted(&now));
    assert_eq!(now.len(), 5, "{now:?}");

    // The ConfigMap driver; a release that is not installed is missing.
    helm.run_with(
        &["install", "cm", &chart(), "-n", n],
        &[("HELM_DRIVER", "configmap")],
    );
    let (out, report) = check(
        cp,
        &[
            "--helm-release",
            &format!("{n}/cm"),
            "--helm-release",
            &format!("{n}/nope"),
        ],
        None,
    );
    let now = rows(&report);
    assert_eq!(code(&out), 2, "{now:?}");
    assert_eq!(status_of(&now, "Deployment/cm"), "in-sync", "{now:?}");
    assert_eq!(
        status_of(&now, "Release.helm.sh/nope"),
        "missing",
        "{now:?}"
    );
    ns.delete(&client).await;
}

/// The operator on release namespace `n` alone (its records kept there too), ready.
async fn operator(cp: &ControlPlane, identity: &str, n: &str, extra: &[&str]) -> support::Operator {
    let mut args = vec![
        "--helm-namespace",
        n,
        "--namespace",
        n,
        "--secret-namespaces",
        n,
        "--leader-election-namespace",
        n,
    ];
    args.extend(extra);
    let op = support::Operator::start(cp, identity, &args);
    op.wait_ready().await;
    op
}

/// The annotations of the `kind` named web in `n`.
fn annotations_of(cp: &ControlPlane, n: &str, kind: &str) -> Value {
    let out = cp.kubectl(&["-n", n, "get", kind, "web", "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["metadata"]["annotations"].clone()
}

fn apply(cp: &ControlPlane, object: &Value) {
    cp.kubectl_stdin(&["apply", "-f", "-"], &object.to_string());
}

/// A `pending-upgrade` record of `revision`, as Helm writes it first when it upgrades.
fn pending_record(cp: &ControlPlane, n: &str, revision: u32) -> String {
    let name = format!("sh.helm.release.v1.web.v{revision}");
    let previous = format!("sh.helm.release.v1.web.v{}", revision - 1);
    let data = cp.kubectl(&[
        "-n",
        n,
        "get",
        "secret",
        &previous,
        "-o",
        "jsonpath={.data.release}",
    ]);
    apply(
        cp,
        &json!({
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": name, "namespace": n, "labels": {"owner": "helm", "name": "web",
                "status": "pending-upgrade", "version": revision.to_string()}},
            "data": {"release": data},
        }),
    );
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_behind_terraforms_back_is_drift_of_its_helm_release() {
    let cp = control_plane();
    let Some(helm) = Helm::new(cp) else { return };
    let _shared = support::APISERVER.read().await;
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "helmtf").await;
    let n = ns.name.as_str();
    let password = format!("password={PASSWORD}");
    helm.run(&["install", "web", &chart(), "-n", n, "--set", &password]);
    helm.run(&[
        "upgrade",
        "web",
        &chart(),
        "-n",
        n,
        "--set",
        &password,
        "--set",
        "greeting=hi",
    ]);
    // What the Helm provider records of the release it applied (revision 2).
    let values = helm.run(&["get", "values", "web", "-n", n, "-o", "json"]);
    let state = |revision: u64, values: &str| {
        json!({
            "version": 4, "terraform_version": "1.11.0", "serial": 1, "lineage": "helm-test",
            "outputs": {},
            "resources": [{
                "mode": "managed", "type": "helm_release", "name": "web",
                "provider": "provider[\"registry.terraform.io/hashicorp/helm\"]",
                "instances": [{"schema_version": 1, "attributes": {
                    "name": "web", "namespace": n, "chart": "web", "status": "deployed",
                    "metadata": [{"name": "web", "namespace": n, "revision": revision,
                        "values": values, "chart": "web", "version": "0.1.0"}],
                }}],
            }],
        })
    };
    let (out, report) = check(cp, &[], Some(&state(2, values.trim())));
    let now = rows(&report);
    assert_eq!(code(&out), 0, "{:?}", drifted(&now));
    assert_eq!(now.len(), OBJECTS.len());
    assert!(now.iter().all(|r| r.3 == "helm_release.web"), "{now:?}");

    helm.run(&["rollback", "web", "1", "-n", n]);
    let (out, report) = check(cp, &[], Some(&state(2, values.trim())));
    let now = rows(&report);
    assert_eq!(code(&out), 2, "{now:?}");
    let release = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "Release.helm.sh")
        .unwrap_or_else(|| panic!("no row for the release: {report}"));
    assert_eq!(release["status"], "drifted");
    assert_eq!(release["address"], "helm_release.web");
    assert_eq!(
        release["detail"],
        "release upgraded or rolled back outside Terraform: revision 3, Terraform state has 2; values changed outside Terraform"
    );
    // The objects are judged by the deployed revision (the rollback's): in sync.
    assert_eq!(
        now.iter().filter(|r| r.1 == "in-sync").count(),
        OBJECTS.len(),
        "{now:?}"
    );
    ns.delete(&client).await;
}

/// The operator with `--helm-namespace`: every object of a release judged without a label,
/// drift reported naming the release, nothing new while Helm is changing the release, a
/// corrupt record a Warning on the record, an upgrade moving the intent; a Terraform state
/// naming the release through `helm_release` names its address, and a state's own instance
/// of an object wins over the release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_reports_drift_behind_helms_back_naming_the_release() {
    use crate::operator::{count_events, event_note};
    let cp = control_plane();
    let Some(helm) = Helm::new(cp) else { return };
    let _shared = support::APISERVER.read().await;
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "helmop").await;
    let n = ns.name.as_str();
    let password = format!("password={PASSWORD}");
    helm.run(&["install", "web", &chart(), "-n", n, "--set", &password]);
    helm.run(&["install", "other", &chart(), "-n", n, "--set", &password]);
    let op = operator(cp, "helmop", n, &[]).await;
    let annotations = |kind: &str| annotations_of(cp, n, kind);
    support::eventually(
        "Deployment web judged in sync",
        Duration::from_secs(90),
        || async {
            (annotations("deployment")["tfdrift.jin.dev/drifted"] == "false").then_some(())
        },
    )
    .await;
    let a = annotations("deployment");
    assert_eq!(a["tfdrift.jin.dev/intent-source"], "helm", "{a}");
    assert_eq!(a["tfdrift.jin.dev/helm-release"], format!("{n}/web"), "{a}");
    assert_eq!(a["tfdrift.jin.dev/helm-revision"], "1", "{a}");
    assert!(a.get("tfdrift.jin.dev/terraform-address").is_none(), "{a}");

    // Behind Helm's back: an image, and a Role verb (a kind kept in records, not annotated).
    cp.kubectl(&["-n", n, "set", "image", "deployment/web", "web=nginx:1.26"]);
    let note = event_note(&client, n, "web", "DriftDetected").await;
    assert!(
        note.starts_with(&format!(
            "live state no longer matches Helm release {n}/web (revision 1): "
        )),
        "{note}"
    );
    assert!(note.contains("image"), "{note}");
    cp.kubectl(&[
        "-n",
        n,
        "patch",
        "role",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/rules/0/verbs/-","value":"delete"}]"#,
    ]);
    support::eventually(
        "the Role's DriftDetected",
        Duration::from_secs(90),
        || async {
            let all = crate::operator::events(&client, n, "web").await;
            all.iter()
                .filter(|e| e.0 == "DriftDetected")
                .find(|e| e.2.contains("rules[0].verbs"))
                .map(|_| ())
        },
    )
    .await;

    // Helm is upgrading (its pending record written first): a change now raises nothing.
    let pending = pending_record(cp, n, 2);
    let drifted_before = count_events(&client, n, "web", "DriftDetected").await;
    let patch = |name: &str| {
        cp.kubectl(&[
            "-n",
            n,
            "patch",
            "configmap",
            name,
            "-p",
            r#"{"data":{"greeting":"bye"}}"#,
        ])
    };
    patch("web");
    // The same change to another release's ConfigMap, after it on the same watch: once that
    // one is reported, web's has been decided.
    patch("other");
    event_note(&client, n, "other", "DriftDetected").await;
    assert_eq!(
        count_events(&client, n, "web", "DriftDetected").await,
        drifted_before
    );
    assert_eq!(annotations("configmap")["tfdrift.jin.dev/drifted"], "false");
    // Settled (here: the pending record withdrawn), the change is reported.
    cp.kubectl(&["-n", n, "delete", "secret", &pending]);
    support::eventually("the ConfigMap drifted", Duration::from_secs(90), || async {
        (annotations("configmap")["tfdrift.jin.dev/drifted"] == "true").then_some(())
    })
    .await;

    // A corrupt newest record: a Warning on it, the objects keep their verdict.
    let corrupt = "sh.helm.release.v1.web.v2";
    apply(
        cp,
        &json!({
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": corrupt, "namespace": n,
                "labels": {"owner": "helm", "name": "web", "status": "deployed", "version": "2"}},
            "stringData": {"release": format!("H4sI{PASSWORD}")},
        }),
    );
    let note = event_note(&client, n, corrupt, "InvalidHelmRelease").await;
    assert!(
        note.contains("keep their last verdict") && !note.contains(PASSWORD),
        "{note}"
    );
    assert_eq!(annotations("deployment")["tfdrift.jin.dev/drifted"], "true");
    cp.kubectl(&["-n", n, "delete", "secret", corrupt]);

    // `helm upgrade` moves the intent: the new image is the intent now, and put back.
    helm.run(&[
        "upgrade",
        "web",
        &chart(),
        "-n",
        n,
        "--set",
        &password,
        "--set",
        "image=nginx:1.26",
    ]);
    // (What Helm's upgrade put back may resolve against revision 1 first, while Helm holds
    // the release; the Deployment, drifted from revision 1, resolves against revision 2.)
    let resolved = format!("live state matches Helm release {n}/web (revision 2) again");
    support::eventually(
        "a DriftResolved naming revision 2",
        Duration::from_secs(90),
        || async {
            let all = crate::operator::events(&client, n, "web").await;
            all.iter()
                .any(|e| e.0 == "DriftResolved" && e.2 == resolved)
                .then_some(())
        },
    )
    .await;
    support::eventually(
        "the Deployment judged against revision 2",
        Duration::from_secs(90),
        || async {
            let a = annotations("deployment");
            (a["tfdrift.jin.dev/helm-revision"] == "2" && a["tfdrift.jin.dev/drifted"] == "false")
                .then_some(())
        },
    )
    .await;
    let logs = op.logs();
    assert!(
        !logs.contains(PASSWORD),
        "a value of the release was logged"
    );
    ns.delete(&client).await;
}

/// A Terraform state naming the release through `helm_release`: its objects go by the
/// address, an upgrade behind Terraform's back is a Warning on the release's record, and
/// where the state itself names one of the release's objects, the state decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_names_the_helm_release_address_and_the_state_wins() {
    use crate::operator::event_note;
    let cp = control_plane();
    if !crate::terraform::has_terraform() {
        eprintln!("SKIPPED: no terraform on PATH");
        return;
    }
    let Some(helm) = Helm::new(cp) else { return };
    let _shared = support::APISERVER.read().await;
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "helmtfop").await;
    let st = support::namespace(&client, "helmtfop-state").await;
    let n = ns.name.as_str();
    let password = format!("password={PASSWORD}");
    helm.run(&["install", "web", &chart(), "-n", n, "--set", &password]);
    let values = helm.run(&["get", "values", "web", "-n", n, "-o", "json"]);
    let state = json!({
        "version": 4, "terraform_version": "1.11.0", "serial": 1, "lineage": "helm-operator",
        "outputs": {},
        "resources": [
            {
                "mode": "managed", "type": "helm_release", "name": "web",
                "provider": "provider[\"registry.terraform.io/hashicorp/helm\"]",
                "instances": [{"schema_version": 1, "attributes": {
                    "name": "web", "namespace": n, "chart": "web", "status": "deployed",
                    "metadata": [{"name": "web", "namespace": n, "revision": 1,
                        "values": values.trim(), "chart": "web", "version": "0.1.0"}],
                }}],
            },
            {
                "mode": "managed", "type": "kubernetes_manifest", "name": "greeting",
                "provider": "provider[\"registry.terraform.io/hashicorp/kubernetes\"]",
                "instances": [{"schema_version": 1, "attributes": {
                    "manifest": {"value": {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "web", "namespace": n},
                        "data": {"greeting": "from-terraform"}}},
                }}],
            },
        ],
    });
    let dir = crate::terraform::backend(cp, &st.name);
    crate::terraform::push(dir.path(), &state, true);
    let op = operator(
        cp,
        "helmtfop",
        n,
        &["--terraform-state-namespace", st.name.as_str()],
    )
    .await;
    let annotations = |kind: &str| annotations_of(cp, n, kind);
    support::eventually(
        "the Deployment named by helm_release.web",
        Duration::from_secs(90),
        || async {
            let a = annotations("deployment");
            (a["tfdrift.jin.dev/terraform-address"] == "helm_release.web"
                && a["tfdrift.jin.dev/drifted"] == "false")
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        annotations("deployment")["tfdrift.jin.dev/helm-release"],
        format!("{n}/web")
    );
    // The state's own instance of the ConfigMap decides, not the release.
    let note = event_note(&client, n, "web", "DriftDetected").await;
    assert!(
        note.starts_with("live state no longer matches Terraform state (kubernetes_manifest.greeting): data[greeting]"),
        "{note}"
    );
    assert_eq!(
        annotations("configmap")["tfdrift.jin.dev/terraform-address"],
        "kubernetes_manifest.greeting"
    );

    // An upgrade behind Terraform's back: said on the release's record.
    helm.run(&["upgrade", "web", &chart(), "-n", n, "--set", &password]);
    let note = event_note(
        &client,
        n,
        "sh.helm.release.v1.web.v2",
        "HelmReleaseChanged",
    )
    .await;
    assert_eq!(
        note,
        format!(
            "Helm release {n}/web (helm_release.web): release upgraded or rolled back outside Terraform: revision 2, Terraform state has 1"
        )
    );
    let series = format!(
        "tfdrift_helm_release_changed{{address=\"helm_release.web\",namespace=\"{n}\",release=\"web\"}}"
    );
    assert_eq!(
        op.metric(&series).await,
        Some(1.0),
        "{}",
        op.metrics_text().await
    );
    cp.kubectl(&["-n", n, "set", "image", "deployment/web", "web=nginx:1.27"]);
    support::eventually("the Deployment's DriftDetected", Duration::from_secs(90), || async {
        let all = crate::operator::events(&client, n, "web").await;
        all.into_iter()
            .find(|e| {
                e.0 == "DriftDetected"
                    && e.2.starts_with(&format!(
                        "live state no longer matches Helm release {n}/web (revision 2, helm_release.web): "
                    ))
            })
            .map(|_| ())
    })
    .await;
    assert!(
        !op.logs().contains(PASSWORD),
        "a value of the release was logged"
    );
    ns.delete(&client).await;
    st.delete(&client).await;
}
