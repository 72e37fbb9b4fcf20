//! Faults and bad input on the real control plane (docs/reliability.md lists them).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::operator::{
    count_events, create, deployment, drifted_manifest, dynamic_api, events, in_sync_deployment,
    leader_of, verdict_annotations, wait_drifted, with_spec_hash,
};
use crate::support::{self, APISERVER, Operator, control_plane, eventually};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn sigkilled_leader_is_replaced_and_drift_in_the_gap_is_reported() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "sigkill").await;
    let n = ns.name.clone();
    create(&client, &n, &in_sync_deployment("web")).await;
    let args = [
        "--namespace",
        n.as_str(),
        "--kinds",
        "Deployment",
        "--leader-elect",
        "--leader-election-namespace",
        n.as_str(),
        "--leader-election-lease-duration",
        "4s",
        "--leader-election-renew-deadline",
        "2s",
    ];
    let a = Operator::start(cp, "kill-a", &args);
    let b = Operator::start(cp, "kill-b", &args);
    let leader = eventually("a leader", WAIT, || async { leader_of(&[&a, &b]).await }).await;
    wait_drifted(&client, &n, "Deployment", "web", "false").await;
    let (mut killed, standby) = if leader == 0 { (a, b) } else { (b, a) };
    killed.signal(libc::SIGKILL);
    killed.wait_exit(Duration::from_secs(10)).await;
    // Drift while nobody leads: the lease still names the dead replica.
    cp.kubectl(&["set", "image", "deployment/web", "app=nginx:1.27", "-n", &n]);
    // Lease duration + renew deadline, with room for process scheduling.
    eventually(
        "standby takes over",
        Duration::from_secs(4 + 2 + 10),
        || async { (standby.metric("tfdrift_leader").await == Some(1.0)).then_some(()) },
    )
    .await;
    wait_drifted(&client, &n, "Deployment", "web", "true").await;
    eventually("DriftDetected from the new leader", WAIT, || async {
        (count_events(&client, &n, "web", "DriftDetected").await == 1).then_some(())
    })
    .await;
    ns.delete(&client).await;
}

#[tokio::test]
async fn sigterm_during_a_burst_then_restart_converges_without_duplicate_events() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "burst").await;
    let n = ns.name.clone();
    let count = 40;
    for i in 0..count {
        create(&client, &n, &drifted_manifest(&format!("d{i}"))).await;
    }
    let args = [
        "--namespace",
        n.as_str(),
        "--kinds",
        "Deployment",
        "--concurrency",
        "2",
    ];
    let mut first = Operator::start(cp, "burst-1", &args);
    // Mid-burst: some objects decided, not necessarily all.
    eventually("the burst under way", WAIT, || async {
        (first
            .metric(r#"tfdrift_reconcile_total{group="apps",kind="Deployment",result="drifted"}"#)
            .await
            .unwrap_or(0.0)
            >= 1.0)
            .then_some(())
    })
    .await;
    first.signal(libc::SIGTERM);
    assert_eq!(
        first.wait_exit(Duration::from_secs(30)).await,
        Some(0),
        "{}",
        first.logs()
    );
    let second = Operator::start(cp, "burst-2", &args);
    for i in 0..count {
        wait_drifted(&client, &n, "Deployment", &format!("d{i}"), "true").await;
    }
    second.wait_ready().await;
    for i in 0..count {
        let name = format!("d{i}");
        let c = eventually(&format!("an event for {name}"), WAIT, || async {
            let c = count_events(&client, &n, &name, "DriftDetected").await;
            (c > 0).then_some(c)
        })
        .await;
        assert_eq!(
            c, 1,
            "{name}: one DriftDetected across the restart, got {c}"
        );
    }
    ns.delete(&client).await;
}

/// YAML for a ServiceAccount `sa` in `ns`.
fn service_account(sa: &str, ns: &str) -> String {
    format!("apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {sa}, namespace: {ns}}}\n")
}

/// YAML for a ClusterRole `name` with `rules` (YAML list items, one per line).
fn cluster_role(name: &str, rules: &[&str]) -> String {
    let rules: String = rules.iter().map(|r| format!("- {r}\n")).collect();
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {name}}}\nrules:\n{rules}"
    )
}

/// YAML binding ClusterRole `name` (binding of the same name) to `sa` in `ns`.
fn cluster_role_binding(name: &str, sa: &str, ns: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {name}}}\n\
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}}}\n\
subjects: [{{kind: ServiceAccount, name: {sa}, namespace: {ns}}}]\n"
    )
}

const EVENTS_RULE: &str =
    r#"{apiGroups: ["", events.k8s.io], resources: [events], verbs: [create, patch]}"#;
const HPA_RULE: &str =
    "{apiGroups: [autoscaling], resources: [horizontalpodautoscalers], verbs: [list, watch]}";

#[tokio::test]
async fn revoked_patch_permission_is_counted_and_recovers_when_restored() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "revoke").await;
    let n = ns.name.clone();
    let sa = format!("revoke-{n}");
    let (read, patch) = (format!("{sa}-read"), format!("{sa}-patch"));
    let rbac = [
        service_account(&sa, &n),
        cluster_role(
            &read,
            &[
                "{apiGroups: [apps], resources: [deployments], verbs: [get, list, watch]}",
                HPA_RULE,
                EVENTS_RULE,
            ],
        ),
        cluster_role_binding(&read, &sa, &n),
        cluster_role(
            &patch,
            &["{apiGroups: [apps], resources: [deployments], verbs: [patch]}"],
        ),
    ]
    .join("---\n");
    let binding = cluster_role_binding(&patch, &sa, &n);
    cp.kubectl_stdin(&["apply", "-f", "-"], &rbac);
    cp.kubectl_stdin(&["apply", "-f", "-"], &binding);
    create(&client, &n, &in_sync_deployment("web")).await;
    let token = cp.service_account_token(&client, &n, &sa).await;
    let kubeconfig = cp.kubeconfig_for_token(&sa, &token);
    let mut op = Operator::start_with_kubeconfig(
        cp,
        &kubeconfig,
        "revoke",
        &["--namespace", &n, "--kinds", "Deployment"],
    );
    wait_drifted(&client, &n, "Deployment", "web", "false").await;

    cp.kubectl(&["delete", "clusterrolebinding", &format!("{sa}-patch")]);
    // RBAC changes reach the authorizer through an informer: wait until the 403 is real.
    let sa_client = support::client_from_kubeconfig(&kubeconfig).await.unwrap();
    eventually("patch forbidden", WAIT, || async {
        let api = dynamic_api(&sa_client, &n, "Deployment");
        let r = api
            .patch("web", &PatchParams::default(), &Patch::Merge(json!({})))
            .await;
        matches!(r, Err(kube::Error::Api(ref s)) if s.code == 403).then_some(())
    })
    .await;
    cp.kubectl(&["set", "image", "deployment/web", "app=nginx:1.27", "-n", &n]);
    let series = r#"tfdrift_api_errors_total{group="apps",kind="Deployment",verb="patch"}"#;
    eventually("403s counted", WAIT, || async {
        (op.metric(series).await.unwrap_or(0.0) >= 1.0).then_some(())
    })
    .await;
    assert!(op.running(), "{}", op.logs());
    let logs = op.logs();
    assert!(
        logs.contains(&format!("Deployment/{n}/web")),
        "the error names the object:\n{logs}"
    );
    assert_eq!(
        verdict_annotations(&client, &n, "Deployment", "web").await["tfdrift.jin.dev/drifted"],
        "false",
        "fail open"
    );

    cp.kubectl_stdin(&["apply", "-f", "-"], &binding);
    wait_drifted(&client, &n, "Deployment", "web", "true").await;
    assert!(op.running());
    cp.kubectl(&[
        "delete",
        "clusterrolebinding",
        &format!("{sa}-read"),
        &format!("{sa}-patch"),
    ]);
    cp.kubectl(&[
        "delete",
        "clusterrole",
        &format!("{sa}-read"),
        &format!("{sa}-patch"),
    ]);
    ns.delete(&client).await;
}

#[tokio::test]
async fn deleted_objects_and_a_terminating_namespace_cause_no_error_storm() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();

    // Objects deleted while their first reconciles run.
    let ns = support::namespace(&client, "gone").await;
    for i in 0..30 {
        create(&client, &ns.name, &drifted_manifest(&format!("g{i}"))).await;
    }
    let op = Operator::start(
        cp,
        "gone",
        &[
            "--namespace",
            &ns.name,
            "--kinds",
            "Deployment",
            "--resync-period",
            "1s",
        ],
    );
    cp.kubectl(&[
        "delete",
        "deployments",
        "--all",
        "-n",
        &ns.name,
        "--wait=false",
    ]);
    op.wait_ready().await;
    eventually("nothing watched", WAIT, || async {
        (op.metric(
            r#"tfdrift_resources_watched{group="apps",kind="Deployment",source="spec-hash"}"#,
        )
        .await
            == Some(0.0))
        .then_some(())
    })
    .await;
    assert_eq!(
        op.metric(r#"tfdrift_reconcile_total{group="apps",kind="Deployment",result="error"}"#)
            .await,
        None,
        "{}",
        op.logs()
    );

    // A terminating namespace: objects can still be patched, but no event can be created.
    let term = support::namespace(&client, "terminating").await;
    create(&client, &term.name, &in_sync_deployment("web")).await;
    let op2 = Operator::start(
        cp,
        "terminating",
        &[
            "--namespace",
            &term.name,
            "--kinds",
            "Deployment",
            "--resync-period",
            "1s",
        ],
    );
    wait_drifted(&client, &term.name, "Deployment", "web", "false").await;
    Api::<Namespace>::all(client.clone())
        .delete(&term.name, &DeleteParams::default())
        .await
        .unwrap();
    cp.kubectl(&[
        "set",
        "image",
        "deployment/web",
        "app=nginx:1.27",
        "-n",
        &term.name,
    ]);
    wait_drifted(&client, &term.name, "Deployment", "web", "true").await;
    let failed_events =
        r#"tfdrift_api_errors_total{group="apps",kind="Deployment",verb="create_event"}"#;
    eventually("the refused event counted", WAIT, || async {
        (op2.metric(failed_events).await == Some(1.0)).then_some(())
    })
    .await;
    // Several resyncs later: still one attempt, no errors, no retry storm.
    let before = op2.reconciles("Deployment").await;
    eventually("3 resyncs", WAIT, || async {
        (op2.reconciles("Deployment").await >= before + 3.0).then_some(())
    })
    .await;
    assert_eq!(op2.metric(failed_events).await, Some(1.0));
    assert_eq!(
        op2.metric(r#"tfdrift_reconcile_total{group="apps",kind="Deployment",result="error"}"#)
            .await,
        None
    );
    ns.delete(&client).await;
}

#[tokio::test]
async fn a_410_gone_on_rewatch_relists_and_misses_nothing() {
    let _exclusive = APISERVER.write().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "gone410").await;
    let n = ns.name.clone();
    create(&client, &n, &in_sync_deployment("leaves")).await;
    create(&client, &n, &in_sync_deployment("drifts")).await;
    // A long resync: only the watch (and its relist) can notice what follows.
    let op = Operator::start(
        cp,
        "relist",
        &[
            "--namespace",
            &n,
            "--kinds",
            "Deployment",
            "--resync-period",
            "1h",
        ],
    );
    wait_drifted(&client, &n, "Deployment", "leaves", "false").await;
    wait_drifted(&client, &n, "Deployment", "drifts", "false").await;

    // Move the resource version on past the operator's last event, then restart the API
    // server: its new watch cache starts there, so resuming the old watch is 410 Gone.
    let other = support::namespace(&client, "gone410-noise").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &other.name);
    for i in 0..5 {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    cp.stop_apiserver();
    cp.start_apiserver();
    let client = cp.client().await.unwrap();
    dynamic_api(&client, &n, "Deployment")
        .patch(
            "leaves",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tfdrift.jin.dev/enabled": null}}})),
        )
        .await
        .unwrap();
    cp.kubectl(&[
        "set",
        "image",
        "deployment/drifts",
        "app=nginx:1.27",
        "-n",
        &n,
    ]);

    wait_drifted(&client, &n, "Deployment", "drifts", "true").await;
    eventually("opt-out noticed", WAIT, || async {
        verdict_annotations(&client, &n, "Deployment", "leaves")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let logs = op.logs();
    assert!(
        // The message differs between the watch cache and etcd paths; the reason does not.
        logs.contains("too old resource version") || logs.contains("Expired"),
        "the scenario did not produce a 410 Gone:\n{logs}"
    );
    ns.delete(&client).await;
    other.delete(&client).await;
}

#[tokio::test]
async fn inputs_at_the_apis_limits() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "limits").await;
    let n = ns.name.clone();
    let op = Operator::start(
        cp,
        "limits",
        &["--namespace", &n, "--kinds", "Deployment,ConfigMap"],
    );

    // A 200 KB spec-hash: InvalidBaseline, quoted truncated.
    let mut huge = deployment("huge-baseline", "nginx:1.25");
    huge["metadata"]["annotations"] = json!({"tfdrift.jin.dev/spec-hash": "x".repeat(200_000)});
    create(&client, &n, &huge).await;
    wait_drifted(&client, &n, "Deployment", "huge-baseline", "unknown").await;
    let ev = eventually("InvalidBaseline", WAIT, || async {
        events(&client, &n, "huge-baseline")
            .await
            .into_iter()
            .find(|e| e.0 == "InvalidBaseline")
    })
    .await;
    assert!(
        ev.2.len() < 1024 && ev.2.contains("200000 bytes"),
        "{}",
        ev.2
    );

    // 100 containers.
    let mut many = deployment("many-containers", "nginx:1.25");
    many["spec"]["template"]["spec"]["containers"] = Value::Array(
        (0..100)
            .map(|i| json!({"name": format!("c{i}"), "image": format!("img:{i}")}))
            .collect(),
    );
    create(&client, &n, &with_spec_hash(many, None)).await;
    wait_drifted(&client, &n, "Deployment", "many-containers", "false").await;

    // A 253-character name: the verdict is written whatever happens to its event.
    let long = format!("{}{}", "a".repeat(252), "z");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": long, "labels": {"tfdrift.jin.dev/enabled": "true"}}, "data": {"k": "v"}});
    let cm = with_spec_hash(cm, None);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &n);
    cms.create(&PostParams::default(), &serde_json::from_value(cm).unwrap())
        .await
        .unwrap();
    eventually("verdict on a 253-character name", WAIT, || async {
        let c = cms.get(&long).await.ok()?;
        (c.metadata.annotations?.get("tfdrift.jin.dev/drifted")? == "false").then_some(())
    })
    .await;

    // Annotations so close to the 256 KiB limit that the verdict does not fit: the patch
    // is refused, counted and logged with the object named; nothing crashes.
    let mut full = in_sync_deployment("full-annotations");
    full["metadata"]["annotations"]["padding"] = json!("p".repeat(262_144 - 200));
    create(&client, &n, &full).await;
    let series = r#"tfdrift_api_errors_total{group="apps",kind="Deployment",verb="patch"}"#;
    eventually("the refused patch counted", WAIT, || async {
        (op.metric(series).await.unwrap_or(0.0) >= 1.0).then_some(())
    })
    .await;
    assert!(
        op.logs()
            .contains(&format!("Deployment/{n}/full-annotations"))
    );
    assert!(op.ready().await);
    ns.delete(&client).await;
}

/// An operator upgraded without the HPA rule in its RBAC: it must not judge `replicas`
/// blind. It stays unready, says what is missing, gives no verdict; granted the rule, it
/// carries on by itself.
#[tokio::test]
async fn without_hpa_permission_it_gives_no_verdict_and_says_why() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "nohpa").await;
    let n = ns.name.clone();
    let sa = format!("nohpa-{n}");
    let deployments =
        "{apiGroups: [apps], resources: [deployments], verbs: [get, list, watch, patch]}";
    let rbac = [
        service_account(&sa, &n),
        cluster_role(&sa, &[deployments, EVENTS_RULE]),
        cluster_role_binding(&sa, &sa, &n),
    ]
    .join("---\n");
    cp.kubectl_stdin(&["apply", "-f", "-"], &rbac);
    create(&client, &n, &drifted_manifest("web")).await;
    let token = cp.service_account_token(&client, &n, &sa).await;
    let kubeconfig = cp.kubeconfig_for_token(&sa, &token);
    let op = Operator::start_with_kubeconfig(
        cp,
        &kubeconfig,
        "nohpa",
        &["--namespace", &n, "--kinds", "Deployment"],
    );
    eventually("the missing permission named in the log", WAIT, || async {
        op.logs()
            .contains("needs list and watch on horizontalpodautoscalers.autoscaling")
            .then_some(())
    })
    .await;
    assert!(!op.ready().await, "ready without HPAs:\n{}", op.logs());
    assert!(
        !verdict_annotations(&client, &n, "Deployment", "web")
            .await
            .contains_key("tfdrift.jin.dev/drifted"),
        "a verdict without knowing the HPAs"
    );

    let grant = cluster_role(&sa, &[deployments, HPA_RULE, EVENTS_RULE]);
    cp.kubectl_stdin(&["apply", "-f", "-"], &grant);
    eventually(
        "a verdict once HPAs can be listed",
        Duration::from_secs(90),
        || async {
            (verdict_annotations(&client, &n, "Deployment", "web")
                .await
                .get("tfdrift.jin.dev/drifted")
                .map(String::as_str)
                == Some("true"))
            .then_some(())
        },
    )
    .await;
    op.wait_ready().await;
    cp.kubectl(&["delete", "clusterrolebinding", &sa]);
    cp.kubectl(&["delete", "clusterrole", &sa]);
    ns.delete(&client).await;
}
