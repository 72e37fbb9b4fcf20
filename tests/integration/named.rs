//! The operator on every kind a Terraform state names, on the real API server with the real
//! `terraform` CLI: the typed state families of `tests/terraform/typed/` created as the
//! provider creates them and pushed through the `kubernetes` backend; every object judged in
//! sync; changes behind Terraform's back on kinds the operator does not annotate (a Role, a
//! Secret, a Namespace, an Ingress) each one DriftDetected naming the address; a custom
//! resource whose CRD comes later reported not judged, then judged; a restart neither repeats
//! an event nor misses the DriftResolved of an object fixed while it was down.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::check::{self, Created};
use crate::operator::{count_events, events};
use crate::support::{self, APISERVER, ControlPlane, Operator, control_plane};
use crate::terraform::{backend, has_terraform, push};

const WAIT: Duration = Duration::from_secs(90);

/// `group` and `kind` of an object as the metrics label them.
fn group_kind(obj: &Value) -> (String, String) {
    let api = obj["apiVersion"].as_str().unwrap_or_default();
    let group = api.split_once('/').map(|(g, _)| g).unwrap_or_default();
    (group.to_owned(), obj["kind"].as_str().unwrap().to_owned())
}

/// The family's state without what this server cannot hold as the state says.
fn judged_part(created: &Created) -> Vec<Value> {
    let mut resources = Vec::new();
    for resource in created.state["resources"].as_array().unwrap() {
        let mut r = resource.clone();
        let instances: Vec<Value> = resource["instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| {
                let a = check::address(resource, i);
                created.stored.contains_key(&a) && !created.skipped.contains(&a)
            })
            .cloned()
            .collect();
        if instances.is_empty() {
            continue;
        }
        r["instances"] = Value::from(instances);
        resources.push(r);
    }
    resources
}

fn patch(cp: &ControlPlane, obj: &Value, kind: &str, body: &Value) {
    let mut a = check::args(&["patch", "--type", kind, "-p", &body.to_string()]);
    a.extend(check::reference(obj));
    let out = check::kubectl(cp, &a, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Completed in-sync reconciles of each (group, kind).
async fn in_sync_counts(op: &Operator) -> BTreeMap<(String, String), f64> {
    let mut counts = BTreeMap::new();
    for line in op.metrics_text().await.lines() {
        let Some(rest) = line.strip_prefix("tfdrift_reconcile_total{group=\"") else {
            continue;
        };
        let Some((group, rest)) = rest.split_once("\",kind=\"") else {
            continue;
        };
        let Some((kind, rest)) = rest.split_once("\",result=\"in_sync\"} ") else {
            continue;
        };
        if let Ok(n) = rest.trim().parse::<f64>() {
            counts.insert((group.to_owned(), kind.to_owned()), n);
        }
    }
    counts
}

/// Waits until every object of `expected` has been judged in sync at least once.
async fn wait_all_in_sync(op: &Operator, expected: &BTreeMap<(String, String), f64>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let counts = in_sync_counts(op).await;
        let short: Vec<_> = expected
            .iter()
            .filter(|(k, n)| counts.get(*k).copied().unwrap_or(0.0) < **n)
            .collect();
        if short.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let drifted: Vec<String> = op
                .metrics_text()
                .await
                .lines()
                .filter(|l| l.starts_with("tfdrift_re") && !l.contains("in_sync"))
                .map(str::to_owned)
                .collect();
            panic!(
                "not all judged in sync: short of {short:?}, counts {counts:?}\n{}",
                drifted.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where the events about an object in `ns` are: a cluster-scoped object's (`ns` "default")
/// in `default`, or in `kube-system` on servers before 1.21.
fn event_namespaces(ns: &str) -> Vec<&str> {
    if ns == "default" {
        vec!["default", "kube-system"]
    } else {
        vec![ns]
    }
}

/// Waits for a `reason` event about `name` whose note names `address`; its note.
async fn wait_event(
    client: &kube::Client,
    ns: &str,
    name: &str,
    reason: &str,
    address: &str,
) -> String {
    support::eventually(
        &format!("{reason} on {ns}/{name} naming {address}"),
        WAIT,
        || async {
            for ns in event_namespaces(ns) {
                if let Some(e) = events(client, ns, name)
                    .await
                    .into_iter()
                    .find(|e| e.0 == reason && e.2.contains(address))
                {
                    return Some(e.2);
                }
            }
            None
        },
    )
    .await
}

/// `reason` events about `name`, wherever its events are.
async fn count(client: &kube::Client, ns: &str, name: &str, reason: &str) -> i32 {
    let mut n = 0;
    for ns in event_namespaces(ns) {
        n += count_events(client, ns, name, reason).await;
    }
    n
}

#[tokio::test]
async fn the_operator_judges_every_kind_a_state_names() {
    if !has_terraform() {
        eprintln!("SKIPPED: the terraform CLI is not on PATH (it is needed for this test)");
        return;
    }
    // Cluster-wide: no other test's operator may see these objects, nor this one theirs.
    let _exclusive = APISERVER.write().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let core = check::create_as(cp, "core", "tfn-core");
    let mut access = check::create_as(cp, "access", "tfn-access");

    // One state naming both families: namespaced and cluster-scoped kinds, Secrets, RBAC.
    let mut state = core.state.clone();
    state["terraform_version"] = Value::from("1.5.0");
    let mut resources = judged_part(&core);
    resources.extend(judged_part(&access));
    let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
    for resource in &resources {
        for instance in resource["instances"].as_array().unwrap() {
            let a = check::address(resource, instance);
            let obj = core
                .stored
                .get(&a)
                .or_else(|| access.stored.get(&a))
                .unwrap();
            *expected.entry(group_kind(obj)).or_default() += 1.0;
        }
    }
    assert!(expected.len() >= 8, "too few kinds: {expected:?}");

    // A custom resource whose CRD is not installed yet (its own group: no other test's).
    let special = check::family_dir("special");
    let text = std::fs::read_to_string(special.join("state.tfstate"))
        .unwrap()
        .replace("tfdrift-fixture.example.com", "tfn.example.com")
        .replace("tf-special", "tfn-core");
    let special_state: Value = serde_json::from_str(&text).unwrap();
    let widget_resource = special_state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "widget")
        .unwrap()
        .clone();
    resources.push(widget_resource);
    state["resources"] = Value::from(resources.clone());

    let st = support::namespace(&client, "tfn-state").await;
    let dir = backend(cp, &st.name);
    push(dir.path(), &state, true);
    let args = [
        "--terraform-state-namespace",
        st.name.as_str(),
        "--secret-namespaces",
        "tfn-core",
        "--rediscover-period",
        "2s",
        // Verdict records go to the lease's namespace: this test's own.
        "--leader-election-namespace",
        st.name.as_str(),
    ];
    let mut op = Operator::start(cp, "tfnamed", &args);
    op.wait_ready().await;
    wait_all_in_sync(&op, &expected).await;

    // The Widget: not served yet, said on the state Secret with its address and kind.
    let note = wait_event(
        &client,
        &st.name,
        "tfstate-default-app",
        "NotJudged",
        "kubernetes_manifest.widget",
    )
    .await;
    assert!(note.contains("tfn.example.com"), "{note}");
    assert_eq!(
        op.metric(&format!(
            "tfdrift_terraform_state_not_judged{{namespace=\"{}\",reason=\"not_served\",suffix=\"app\",workspace=\"default\"}}",
            st.name
        ))
        .await,
        Some(1.0)
    );

    // The CRD appears, then the Widget: judged without a restart.
    let objects: Value = serde_json::from_str(
        &std::fs::read_to_string(special.join("objects.json"))
            .unwrap()
            .replace("tfdrift-fixture.example.com", "tfn.example.com")
            .replace("tf-special", "tfn-core"),
    )
    .unwrap();
    for key in ["kubernetes_manifest.crd", "kubernetes_manifest.widget"] {
        let out = check::kubectl(
            cp,
            &check::args(&["create", "-f", "-"]),
            Some(&objects[key].to_string()),
        );
        assert!(
            out.status.success(),
            "{key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if key.ends_with("crd") {
            cp.kubectl(&[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/widgets.tfn.example.com",
            ]);
        }
    }
    expected.insert(("tfn.example.com".into(), "Widget".into()), 1.0);
    wait_all_in_sync(&op, &expected).await;

    // Nothing was drifted: no DriftDetected on any object of the state.
    for (a, obj) in core.stored.iter().chain(access.stored.iter()) {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = obj["metadata"]["name"].as_str().unwrap();
        assert_eq!(
            count(&client, ns, name, "DriftDetected").await,
            0,
            "{a}: false drift"
        );
    }

    // Behind Terraform's back, on kinds that get no annotation.
    let role = access.stored["kubernetes_role.pod_reader"].clone();
    let secret = core.stored["kubernetes_secret_v1.app_creds"].clone();
    let namespace = core.stored["kubernetes_namespace_v1.core"].clone();
    let ingress = access.stored["kubernetes_ingress_v1.web"].clone();
    patch(
        cp,
        &role,
        "json",
        &serde_json::json!([{"op": "add", "path": "/rules/0/verbs/-", "value": "delete"}]),
    );
    patch(
        cp,
        &secret,
        "merge",
        &serde_json::json!({"data": {"password": "czNjcjN0LWludHJ1ZGVy"}}),
    );
    patch(
        cp,
        &namespace,
        "merge",
        &serde_json::json!({"metadata": {"labels": {"team": "someone-else"}}}),
    );
    patch(
        cp,
        &ingress,
        "json",
        &serde_json::json!([{"op": "replace", "path": "/spec/rules/0/host", "value": "evil.example.com"}]),
    );
    let drifted = [
        ("tfn-access", "kubernetes_role.pod_reader", "rules[0].verbs"),
        (
            "tfn-core",
            "kubernetes_secret_v1.app_creds",
            "data[password]",
        ),
        (
            "default",
            "kubernetes_namespace_v1.core",
            "metadata.labels[team]",
        ),
        (
            "tfn-access",
            "kubernetes_ingress_v1.web",
            "spec.rules[0].host",
        ),
    ];
    for ((ns, address, path), obj) in drifted.iter().zip([&role, &secret, &namespace, &ingress]) {
        let name = obj["metadata"]["name"].as_str().unwrap();
        let note = wait_event(&client, ns, name, "DriftDetected", address).await;
        assert!(note.contains(path), "{address}: {note}");
        // A Secret's value is never printed.
        assert!(
            !note.contains("s3cr3t") && !note.contains("czNjcjN0"),
            "{note}"
        );
    }
    assert!(
        !op.logs().contains("czNjcjN0") && !op.logs().contains("s3cr3t"),
        "a Secret value in the operator's log"
    );
    // No write on a kind outside --annotate-kinds.
    let live = check::kubectl(
        cp,
        &[check::args(&["get", "-o", "json"]), check::reference(&role)].concat(),
        None,
    );
    let live: Value = serde_json::from_slice(&live.stdout).unwrap();
    assert!(
        live["metadata"]["annotations"]
            .as_object()
            .is_none_or(|a| !a.keys().any(|k| k.starts_with("tfdrift.jin.dev/"))),
        "the Role was annotated: {live}"
    );

    // A restart, with the Role put back while the operator was down.
    drop(op);
    patch(
        cp,
        &role,
        "json",
        &serde_json::json!([{"op": "remove", "path": "/rules/0/verbs/3"}]),
    );
    op = Operator::start(cp, "tfnamed-again", &args);
    op.wait_ready().await;
    let role_name = role["metadata"]["name"].as_str().unwrap();
    wait_event(
        &client,
        "tfn-access",
        role_name,
        "DriftResolved",
        "kubernetes_role.pod_reader",
    )
    .await;
    for ((ns, address, _), obj) in drifted.iter().zip([&role, &secret, &namespace, &ingress]) {
        let name = obj["metadata"]["name"].as_str().unwrap();
        assert_eq!(
            count(&client, ns, name, "DriftDetected").await,
            1,
            "{address}: DriftDetected repeated after the restart"
        );
    }
    // The Secret's verdict is kept in a record in the operator's namespace (none for the Role
    // any more, in sync again).
    let records = cp.kubectl(&[
        "get",
        "configmaps",
        "-n",
        &st.name,
        "-l",
        "tfdrift.jin.dev/verdict-record=true",
        "-o",
        "jsonpath={range .items[*]}{.data.kind}/{.data.name} {end}",
    ]);
    assert!(records.contains("Secret/app-creds"), "{records}");
    assert!(!records.contains(&format!("Role/{role_name}")), "{records}");

    drop(op);
    for obj in access
        .stored
        .values_mut()
        .chain(core.stored.clone().values_mut())
    {
        if obj["metadata"]["namespace"].is_null() {
            let mut a = check::args(&["delete", "--ignore-not-found", "--wait=false"]);
            a.extend(check::reference(obj));
            let _ = check::kubectl(cp, &a, None);
        }
    }
    let _ = check::kubectl(
        cp,
        &check::args(&[
            "delete",
            "--ignore-not-found",
            // No namespace controller here: a namespace stays Terminating.
            "--wait=false",
            "crd/widgets.tfn.example.com",
            "namespace/tfn-access",
            "namespace/tfn-core",
        ]),
        None,
    );
    st.delete(&client).await;
}
