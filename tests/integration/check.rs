//! `tfdrift check` on the state fixtures of `tests/terraform/typed/`, against the real API
//! server: every object is created as the Terraform provider creates it (`objects.json`: what
//! its expanders send), the state gets the uids the server gave, and every instance must be in
//! sync (or not judged, where this server does not serve its kind); then each change of
//! `edits.json` is made behind Terraform's back and must give the verdict it expects, on that
//! instance and on no other.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::{APISERVER, ControlPlane, control_plane};

pub(crate) fn family_dir(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/terraform/typed")
        .join(family)
}

pub(crate) fn json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// A fixture file with the family's names (`tf-<family>`, its namespace and the prefix of its
/// cluster-scoped names) replaced by `to`.
pub(crate) fn renamed(path: &Path, family: &str, to: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text.replace(&format!("tf-{family}"), to)).unwrap()
}

fn run_check(cp: &ControlPlane, state: &Value, args: &[&str]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tfdrift"))
        .args(["check", "--tfstate", "-", "--kubeconfig"])
        .arg(&cp.kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(state.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// check's JSON report, by address.
fn report(cp: &ControlPlane, state: &Value) -> HashMap<String, Value> {
    let out = run_check(cp, state, &["-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["address"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// `kind.version.group/name` (and `-n ns`) for kubectl, whatever version is preferred.
pub(crate) fn reference(obj: &Value) -> Vec<String> {
    let kind = obj["kind"].as_str().unwrap().to_lowercase();
    let api = obj["apiVersion"].as_str().unwrap();
    let resource = match api.split_once('/') {
        Some((group, version)) => format!("{kind}.{version}.{group}"),
        None => kind,
    };
    let mut args = vec![
        resource,
        obj["metadata"]["name"].as_str().unwrap().to_owned(),
    ];
    if let Some(ns) = obj["metadata"]["namespace"].as_str() {
        args.extend(["-n".to_owned(), ns.to_owned()]);
    }
    args
}

pub(crate) fn kubectl(cp: &ControlPlane, args: &[String], input: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .env("KUBECONFIG", &cp.kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl on PATH");
    let stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        let mut stdin = stdin;
        stdin.write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

pub(crate) fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn server_minor(cp: &ControlPlane) -> u32 {
    let out = kubectl(cp, &args(&["get", "--raw", "/version"]), None);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["minor"]
        .as_str()
        .unwrap()
        .trim_end_matches('+')
        .parse()
        .unwrap()
}

/// A family's objects created as the provider creates them.
pub(crate) struct Created {
    /// The object the server stored, by address.
    pub stored: HashMap<String, Value>,
    /// The state with the uids the server gave.
    pub state: Value,
    /// Addresses this server cannot hold as the state says (too old for the fields), or not
    /// judged whatever the server.
    pub skipped: Vec<String>,
    /// What the provider sends, by address (to create an object again).
    pub objects: Value,
}

fn create(cp: &ControlPlane, family: &str) -> Created {
    create_as(cp, family, &format!("tf-{family}"))
}

/// [`create`], with the family's namespace and name prefix `tf-<family>` replaced by `name`.
pub(crate) fn create_as(cp: &ControlPlane, family: &str, name: &str) -> Created {
    let dir = family_dir(family);
    let mut objects = renamed(&dir.join("objects.json"), family, name);
    if name != format!("tf-{family}") {
        // A copy beside the family's own objects: node ports are the cluster's, one each.
        for obj in objects.as_object_mut().unwrap().values_mut() {
            for port in obj
                .pointer_mut("/spec/ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(p) = port.as_object_mut() {
                    p.remove("nodePort");
                }
            }
        }
    }
    let namespace = name.to_owned();
    let own_namespace = objects
        .as_object()
        .unwrap()
        .values()
        .any(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == namespace.as_str());
    if !own_namespace {
        let out = kubectl(cp, &args(&["create", "namespace", &namespace]), None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if let Ok(text) = std::fs::read(dir.join("prerequisites.json")) {
        let pre: Value = serde_json::from_slice(&text).unwrap();
        let mut uids: HashMap<String, String> = HashMap::new();
        for obj in pre["objects"].as_array().unwrap() {
            let mut text = obj.to_string().replace(&format!("tf-{family}"), name);
            for (k, uid) in &uids {
                text = text.replace(&format!("${{uid:{k}}}"), uid);
            }
            let out = kubectl(cp, &args(&["create", "-o", "json", "-f", "-"]), Some(&text));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let created: Value = serde_json::from_slice(&out.stdout).unwrap();
            uids.insert(
                format!(
                    "{}/{}",
                    obj["kind"].as_str().unwrap(),
                    obj["metadata"]["name"].as_str().unwrap()
                ),
                created["metadata"]["uid"].as_str().unwrap().to_owned(),
            );
        }
        for p in pre["patches"].as_array().unwrap() {
            let target = p["target"].as_str().unwrap();
            let out = kubectl(
                cp,
                &args(&[
                    "patch",
                    "-n",
                    name,
                    target,
                    "--type",
                    "merge",
                    "-p",
                    &p["patch"].to_string(),
                ]),
                None,
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let patches = dir.join("patches.json");
    let patches = if patches.exists() {
        renamed(&patches, family, name)
    } else {
        Value::Null
    };
    let requires = dir.join("requires.json");
    let requires = if requires.exists() {
        json(&requires)
    } else {
        Value::Null
    };
    let minor = server_minor(cp);
    let mut stored = HashMap::new();
    let mut skipped = Vec::new();
    for (address, obj) in objects.as_object().unwrap() {
        if address.ends_with("#applied") {
            continue;
        }
        if requires[address]["minor"]
            .as_u64()
            .is_some_and(|m| u64::from(minor) < m)
        {
            skipped.push(address.clone());
        }
        let out = kubectl(
            cp,
            &args(&["create", "--validate=false", "-o", "json", "-f", "-"]),
            Some(&obj.to_string()),
        );
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            // A kind this server does not serve: check must say so.
            assert!(
                err.contains("no matches for kind")
                    || err.contains("the server could not find the requested resource"),
                "{family}: {address}: {err}"
            );
            continue;
        }
        let mut created: Value = serde_json::from_slice(&out.stdout).unwrap();
        if obj["kind"] == "CustomResourceDefinition" {
            let name = obj["metadata"]["name"].as_str().unwrap();
            let out = kubectl(
                cp,
                &args(&[
                    "wait",
                    "--for=condition=Established",
                    "--timeout=60s",
                    &format!("crd/{name}"),
                ]),
                None,
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if let Some(p) = patches.get(address) {
            let mut a = args(&[
                "apply",
                "--server-side",
                "--validate=false",
                "-o",
                "json",
                "-f",
                "-",
            ]);
            a.push(format!(
                "--field-manager={}",
                p["field_manager"].as_str().unwrap_or("Terraform")
            ));
            if p["force"].as_bool() == Some(true) {
                a.push("--force-conflicts".into());
            }
            let out = kubectl(cp, &a, Some(&p["body"].to_string()));
            assert!(
                out.status.success(),
                "{address}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            created = serde_json::from_slice(&out.stdout).unwrap();
        }
        stored.insert(address.clone(), created);
    }
    let mut state = renamed(&dir.join("state.tfstate"), family, name);
    set_uids(&mut state, &stored);
    // Not judged whatever the server: a tainted instance, a Helm release.
    for resource in state["resources"].as_array().unwrap() {
        for instance in resource["instances"].as_array().unwrap() {
            if instance["status"] == "tainted" || resource["type"] == "helm_release" {
                skipped.push(address(resource, instance));
            }
        }
    }
    Created {
        stored,
        state,
        skipped,
        objects,
    }
}

/// The address of a state instance, as Terraform prints it (the fixtures' keys are plain).
pub(crate) fn address(resource: &Value, instance: &Value) -> String {
    let mut a = String::new();
    if let Some(m) = resource["module"].as_str() {
        a.push_str(m);
        a.push('.');
    }
    a.push_str(&format!(
        "{}.{}",
        resource["type"].as_str().unwrap(),
        resource["name"].as_str().unwrap()
    ));
    match &instance["index_key"] {
        Value::Number(n) => a.push_str(&format!("[{n}]")),
        Value::String(s) => a.push_str(&format!("[{}]", Value::from(s.as_str()))),
        _ => {}
    }
    a
}

/// Terraform records the uid the server gave: the state gets the live uids.
pub(crate) fn set_uids(state: &mut Value, stored: &HashMap<String, Value>) {
    for resource in state["resources"].as_array_mut().unwrap() {
        let r = resource.clone();
        for instance in resource["instances"].as_array_mut().unwrap() {
            let a = address(&r, instance);
            let Some(live) = stored.get(&a) else { continue };
            if let Some(meta) = instance
                .pointer_mut("/attributes/metadata/0")
                .and_then(Value::as_object_mut)
                && meta.contains_key("uid")
            {
                meta.insert("uid".into(), live["metadata"]["uid"].clone());
            }
        }
    }
}

/// Puts the object back as it was stored, or creates it again (a field changed that cannot
/// be changed back).
fn restore(cp: &ControlPlane, address: &str, created: &mut Created) {
    let stored = created.stored[address].clone();
    let mut original = stored.clone();
    if let Some(meta) = original["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    let out = kubectl(
        cp,
        &args(&["replace", "-f", "-"]),
        Some(&original.to_string()),
    );
    if out.status.success() {
        return;
    }
    let mut r = reference(&stored);
    let mut patch = args(&[
        "patch",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    patch.append(&mut r.clone());
    let _ = kubectl(cp, &patch, None);
    let mut delete = args(&["delete", "--wait=true", "--timeout=60s"]);
    delete.append(&mut r);
    let out = kubectl(cp, &delete, None);
    assert!(
        out.status.success(),
        "{address}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(
        cp,
        &args(&["create", "--validate=false", "-o", "json", "-f", "-"]),
        Some(&created.objects[address].to_string()),
    );
    assert!(
        out.status.success(),
        "{address}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    created.stored.insert(address.to_owned(), again);
    let stored = created.stored.clone();
    set_uids(&mut created.state, &stored);
}

/// What a change's expected path may look like in check's lines: `data.x` is `data[x]`.
fn path_forms(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut forms = vec![path.to_owned()];
    for i in 1..parts.len() {
        forms.push(format!(
            "{}[{}]",
            parts[..i].join("."),
            parts[i..].join(".")
        ));
    }
    forms
}

async fn replay(family: &str) {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let mut created = create(cp, family);
    let unjudged = |r: &Value| matches!(r["status"].as_str(), Some("not-judged" | "unsupported"));
    let first = report(cp, &created.state);
    for (address, row) in &first {
        if created.skipped.contains(address) {
            continue;
        }
        if row["status"] == "not-judged"
            && row["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("tainted") || d.contains("Helm release"))
        {
            continue;
        }
        let judged = created.stored.contains_key(address);
        let status = row["status"].as_str().unwrap();
        if judged {
            assert_eq!(status, "in-sync", "{family}: {address} as created: {row}");
        } else {
            assert!(
                unjudged(row),
                "{family}: {address} is not on this server but {row}"
            );
        }
    }
    let edits = json(&family_dir(family).join("edits.json"));
    let mut failures = Vec::new();
    let mut replayed = 0;
    for edit in edits.as_array().unwrap() {
        let address = edit["address"].as_str().unwrap();
        let Some(stored) = created.stored.get(address).cloned() else {
            continue;
        };
        if created.skipped.iter().any(|s| s == address) {
            continue;
        }
        let mut patch = args(&[
            "patch",
            "--type",
            edit["patch_type"].as_str().unwrap(),
            "-p",
            &edit["patch"].to_string(),
        ]);
        patch.extend(reference(&stored));
        let out = kubectl(cp, &patch, None);
        assert!(
            out.status.success(),
            "{family}: {address}: {edit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows = report(cp, &created.state);
        let row = &rows[address];
        let expect = edit["expect"].as_str().unwrap();
        let status = row["status"].as_str().unwrap();
        let mut ok = status == expect;
        if ok
            && expect == "drifted"
            && let Some(path) = edit["path"].as_str()
        {
            let changes = row["changes"].as_array().cloned().unwrap_or_default();
            ok = changes.iter().any(|c| {
                let c = c.as_str().unwrap_or_default();
                path_forms(path).iter().any(|f| c.contains(f.as_str()))
            });
        }
        if !ok {
            failures.push(format!(
                "{address}: expected {expect} ({}), got {row} — {}",
                edit["path"], edit["why"]
            ));
        }
        for (other, r) in &rows {
            if other != address
                && created.stored.contains_key(other)
                && !created.skipped.contains(other)
                && r["status"] != "in-sync"
            {
                failures.push(format!("{address}'s edit changed {other}: {r}"));
            }
        }
        restore(cp, address, &mut created);
        replayed += 1;
    }
    assert!(replayed >= 20, "{family}: only {replayed} edits replayed");
    assert!(failures.is_empty(), "{family}:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn core_kinds_created_as_the_provider_creates_them() {
    replay("core").await;
}

#[tokio::test]
async fn workloads_created_as_the_provider_creates_them() {
    replay("workloads").await;
}

#[tokio::test]
async fn batch_kinds_created_as_the_provider_creates_them() {
    replay("batch").await;
}

#[tokio::test]
async fn rbac_networking_storage_admission_created_as_the_provider_creates_them() {
    replay("access").await;
}

#[tokio::test]
async fn manifests_kubectl_and_patch_style_resources_as_their_providers_apply_them() {
    replay("special").await;
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The row of `address` in check's table.
fn row<'a>(table: &'a str, address: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(address))
        .unwrap_or_else(|| panic!("{address} not in\n{table}"))
}

/// The verdicts a user sees, on objects changed, deleted and recreated behind Terraform's
/// back; exit codes; no Secret or ConfigMap value printed; an unreachable cluster is an error.
#[tokio::test]
async fn check_tells_in_sync_drifted_missing_and_recreated() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let name = format!("tfcheck-{}", std::process::id());
    let created = create_as(cp, "core", &name);
    let state = &created.state;
    let out = run_check(cp, state, &[]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}{}", text(&out.stderr));
    assert!(
        table.ends_with("27 instances: 27 in sync, 0 drifted, 0 missing, 0 recreated\n"),
        "{table}"
    );

    // Behind Terraform's back: a config value, a password, a Service selector, a deleted
    // claim, a ConfigMap deleted and created again, a label on a namespace.
    let kc = |a: &[&str]| cp.kubectl(a);
    kc(&[
        "patch",
        "-n",
        &name,
        "configmap/app-config",
        "--type=merge",
        "-p",
        r#"{"data":{"LOG_LEVEL":"debug-and-a-secretish-value"}}"#,
    ]);
    kc(&[
        "patch",
        "-n",
        &name,
        "secret/app-creds",
        "--type=merge",
        "-p",
        r#"{"stringData":{"password":"an-other-s3cr3t"}}"#,
    ]);
    kc(&[
        "patch",
        "-n",
        &name,
        "service/web",
        "--type=merge",
        "-p",
        r#"{"spec":{"selector":{"app":"other"}}}"#,
    ]);
    kc(&[
        "patch",
        "-n",
        &name,
        "pvc/legacy",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    kc(&["delete", "-n", &name, "pvc/legacy"]);
    let legacy = created.objects["kubernetes_config_map.legacy"].to_string();
    kc(&["delete", "-n", &name, "configmap/legacy-settings"]);
    cp.kubectl_stdin(&["create", "-f", "-"], &legacy);
    kc(&["label", "namespace", &name, "owner=someone"]);

    let out = run_check(cp, state, &[]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{table}{}", text(&out.stderr));
    let cm = row(&table, "kubernetes_config_map_v1.app_config");
    assert!(
        cm.starts_with("drifted")
            && cm.contains("data[LOG_LEVEL]: changed (changed by kubectl-patch at"),
        "{table}"
    );
    let secret = row(&table, "kubernetes_secret_v1.app_creds");
    assert!(
        secret.starts_with("drifted") && secret.contains("data[password]: changed"),
        "{table}"
    );
    let svc = row(&table, "kubernetes_service_v1.web");
    assert!(svc.contains("spec.selector[app]: web → other"), "{table}");
    assert!(
        row(&table, "kubernetes_persistent_volume_claim.legacy").starts_with("missing"),
        "{table}"
    );
    assert!(
        row(&table, "kubernetes_config_map.legacy").starts_with("recreated"),
        "{table}"
    );
    assert!(
        row(&table, "kubernetes_namespace_v1.core").contains("metadata.labels[owner]: added"),
        "{table}"
    );
    for value in ["secretish", "s3cr3t", "YW4tb3RoZXItczNjcjN0"] {
        assert!(!table.contains(value), "a value was printed:\n{table}");
    }
    assert!(
        table.ends_with("27 instances: 21 in sync, 4 drifted, 1 missing, 1 recreated\n"),
        "{table}"
    );

    let out = run_check(cp, state, &["-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["drifted"], 4);
    assert_eq!(report["summary"]["missing"], 1);
    let svc = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "kubernetes_service_v1.web")
        .unwrap();
    assert_eq!(
        svc["changes"],
        serde_json::json!(["spec.selector[app]: web → other"])
    );
    assert!(!out.stdout.windows(9).any(|w| w == b"secretish"));

    // An ignore rule by address and path silences exactly that.
    let out = run_check(
        cp,
        state,
        &["--ignore-field", "kubernetes_service_v1.web spec.selector"],
    );
    let table = text(&out.stdout);
    assert!(
        row(&table, "kubernetes_service_v1.web").starts_with("in-sync"),
        "{table}"
    );
    assert!(
        row(&table, "kubernetes_config_map_v1.app_config").starts_with("drifted"),
        "{table}"
    );

    // An unreachable cluster is an error, exit 1, not a verdict.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bad.path(),
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n\
         current-context: x\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tfdrift"))
        .args([
            "check",
            "--tfstate",
            "-",
            "--api-timeout",
            "2s",
            "--kubeconfig",
        ])
        .arg(bad.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(state.to_string().as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));

    // Without the permission to read Secrets, they are not judged, the permission named; the
    // rest is judged and the exit status is theirs, unless a full coverage is asked for.
    let client = cp.client().await.unwrap();
    let reader = "tfdrift-check-reader";
    cp.kubectl(&["create", "serviceaccount", "-n", &name, reader]);
    cp.kubectl(&[
        "create", "clusterrole", &format!("{name}-reader"), "--verb=get",
        "--resource=namespaces,serviceaccounts,configmaps,services,endpoints,limitranges,resourcequotas,persistentvolumeclaims,persistentvolumes",
    ]);
    cp.kubectl(&[
        "create",
        "clusterrolebinding",
        &format!("{name}-reader"),
        &format!("--clusterrole={name}-reader"),
        &format!("--serviceaccount={name}:{reader}"),
    ]);
    let token = cp.service_account_token(&client, &name, reader).await;
    let kubeconfig = cp.kubeconfig_for_token(reader, &token);
    let check_as = |extra: &[&str]| {
        let mut a = vec![
            "check",
            "--tfstate",
            "-",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_tfdrift"))
            .args(&a)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(state.to_string().as_bytes())?;
                c.wait_with_output()
            })
            .unwrap()
    };
    let out = check_as(&[]);
    let table = text(&out.stdout);
    let secret = row(&table, "kubernetes_secret.tls");
    assert!(
        secret.starts_with("not-judged")
            && secret.contains(&format!(
                "forbidden: needs get on secrets in namespace {name}"
            )),
        "{table}"
    );
    assert!(
        row(&table, "kubernetes_service_v1.web").starts_with("drifted"),
        "{table}"
    );
    assert_eq!(out.status.code(), Some(2), "{table}");
    // A state of an in-sync object and a Secret: not judged leaves the exit status alone…
    let mut two = state.clone();
    two["resources"].as_array_mut().unwrap().retain(|r| {
        r["type"] == "kubernetes_secret" || r["type"] == "kubernetes_service_account_v1"
    });
    let check_two = |extra: &[&str]| {
        let mut a = vec![
            "check",
            "--tfstate",
            "-",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_tfdrift"))
            .args(&a)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(two.to_string().as_bytes())?;
                c.wait_with_output()
            })
            .unwrap()
    };
    let out = check_two(&[]);
    let table = text(&out.stdout);
    assert!(
        table
            .ends_with("2 instances: 1 in sync, 0 drifted, 0 missing, 0 recreated, 1 not judged\n"),
        "{table}"
    );
    assert_eq!(out.status.code(), Some(0), "{table}");
    // …unless full coverage is asked for.
    assert_eq!(check_two(&["--fail-on-unjudged"]).status.code(), Some(2));
}

/// The real `terraform` CLI pushes a state through its `kubernetes` backend and pulls it back:
/// `terraform state pull | tfdrift check --tfstate -` judges every instance of it, and a Role
/// widened by hand (`kubectl edit` granting `delete`) is reported on its address.
#[tokio::test]
async fn terraform_state_pull_piped_into_check() {
    if !crate::terraform::has_terraform() {
        eprintln!("SKIPPED: the terraform CLI is not on PATH (it is needed for this test)");
        return;
    }
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let name = format!("tfpull-{}", std::process::id());
    let created = create_as(cp, "access", &name);
    let dir = crate::terraform::backend(cp, &name);
    crate::terraform::push(dir.path(), &created.state, true);
    let pull = || {
        let out = Command::new("terraform")
            .args(["state", "pull"])
            .current_dir(dir.path())
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let out = run_check(cp, &pull(), &[]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}{}", text(&out.stderr));
    assert!(
        table.ends_with("20 instances: 20 in sync, 0 drifted, 0 missing, 0 recreated\n"),
        "{table}"
    );

    let role = created.stored["kubernetes_role_v1.config_editor"].clone();
    let mut widened = role.clone();
    widened["rules"][0]["verbs"]
        .as_array_mut()
        .unwrap()
        .push(Value::from("delete"));
    widened["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    cp.kubectl_stdin(&["replace", "-f", "-"], &widened.to_string());
    let out = run_check(cp, &pull(), &[]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{table}");
    let row = row(&table, "kubernetes_role_v1.config_editor");
    assert!(
        row.starts_with("drifted") && row.contains("rules[0].verbs: + delete"),
        "{table}"
    );
}
