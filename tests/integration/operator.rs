//! `tfdrift run` as a user runs it (the built binary, a kubeconfig) against the real
//! control plane: every row of the verdict table, events only on transitions, zero
//! writes at steady state, kubectl mutations, opt-out, leader election, API restarts.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use crate::support::{self, APISERVER, Operator, control_plane, eventually};

const WAIT: Duration = Duration::from_secs(30);
const ENABLED: &str = "tfdrift.jin.dev/enabled";
const SPEC_HASH: &str = "tfdrift.jin.dev/spec-hash";
const DRIFTED: &str = "tfdrift.jin.dev/drifted";
const DRIFTED_AT: &str = "tfdrift.jin.dev/drifted-at";
const LIVE_HASH: &str = "tfdrift.jin.dev/live-hash";

pub fn deployment(name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {ENABLED: "true"}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": image,
                                                  "env": [{"name": "LOG_LEVEL", "value": "info"}]}]}}
        }
    })
}

pub fn service(name: &str, port: i32) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {ENABLED: "true"}},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port}]}
    })
}

pub fn hash_of(manifest: &Value) -> String {
    tfdrift::core::fingerprint::hash_value(manifest)
        .expect("supported")
        .expect("hashable")
}

/// `manifest` with `spec-hash` set to `hash` (or to its own hash).
pub fn with_spec_hash(mut manifest: Value, hash: Option<&str>) -> Value {
    let h = hash
        .map(str::to_owned)
        .unwrap_or_else(|| hash_of(&manifest));
    manifest["metadata"]["annotations"] = json!({ SPEC_HASH: h });
    manifest
}

/// A Deployment (nginx:1.25) carrying its own spec-hash: in sync from the start.
pub fn in_sync_deployment(name: &str) -> Value {
    with_spec_hash(deployment(name, "nginx:1.25"), None)
}

/// A Deployment whose spec-hash is that of another image: drifted from the start.
pub fn drifted_manifest(name: &str) -> Value {
    with_spec_hash(
        deployment(name, "nginx:1.25"),
        Some(&hash_of(&deployment(name, "nginx:1.24"))),
    )
}

pub fn dynamic_api(client: &Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    let ar = match kind {
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        other => panic!("no test api for {other}"),
    };
    Api::namespaced_with(client.clone(), ns, &ar)
}

pub async fn create(client: &Client, ns: &str, manifest: &Value) {
    let kind = manifest["kind"].as_str().unwrap();
    let obj: DynamicObject = serde_json::from_value(manifest.clone()).unwrap();
    dynamic_api(client, ns, kind)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {kind}: {e}"));
}

pub async fn get(client: &Client, ns: &str, kind: &str, name: &str) -> DynamicObject {
    dynamic_api(client, ns, kind).get(name).await.unwrap()
}

/// The tfdrift annotations the operator owns, as now on the server.
pub async fn verdict_annotations(
    client: &Client,
    ns: &str,
    kind: &str,
    name: &str,
) -> BTreeMap<String, String> {
    get(client, ns, kind, name)
        .await
        .metadata
        .annotations
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| [DRIFTED, DRIFTED_AT, LIVE_HASH].contains(&k.as_str()))
        .collect()
}

pub async fn wait_drifted(
    client: &Client,
    ns: &str,
    kind: &str,
    name: &str,
    value: &str,
) -> BTreeMap<String, String> {
    eventually(&format!("{kind}/{name} drifted={value}"), WAIT, || async {
        let a = verdict_annotations(client, ns, kind, name).await;
        (a.get(DRIFTED).map(String::as_str) == Some(value)).then_some(a)
    })
    .await
}

/// Events about `name`, as (reason, type, note, count) where count sums an event series.
pub async fn events(client: &Client, ns: &str, name: &str) -> Vec<(String, String, String, i32)> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            let count = e.series.as_ref().map(|s| s.count).unwrap_or(1);
            (
                e.reason.unwrap_or_default(),
                e.type_.unwrap_or_default(),
                e.note.unwrap_or_default(),
                count,
            )
        })
        .collect()
}

/// The note of the first `reason` event about `name`, waiting for it to be published.
pub async fn event_note(client: &Client, ns: &str, name: &str, reason: &str) -> String {
    eventually(&format!("{reason} for {name}"), WAIT, || async {
        events(client, ns, name)
            .await
            .into_iter()
            .find(|e| e.0 == reason)
            .map(|e| e.2)
    })
    .await
}

pub async fn count_events(client: &Client, ns: &str, name: &str, reason: &str) -> i32 {
    events(client, ns, name)
        .await
        .iter()
        .filter(|e| e.0 == reason)
        .map(|e| e.3)
        .sum()
}

/// Waits until the operator has completed `n` more reconciles of `kind` than `since`.
pub async fn wait_reconciles(op: &Operator, kind: &str, since: f64, n: f64) {
    eventually(
        &format!("{n} more {kind} reconciles"),
        Duration::from_secs(60),
        || async { (op.reconciles(kind).await >= since + n).then_some(()) },
    )
    .await;
}

fn merge(value: Value) -> Patch<Value> {
    Patch::Merge(value)
}

#[tokio::test]
async fn verdict_table_events_and_steady_state() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "verdicts").await;

    for (kind, make) in [
        (
            "Deployment",
            (|n: &str| deployment(n, "nginx:1.25")) as fn(&str) -> Value,
        ),
        ("Service", |n: &str| service(n, 80)),
    ] {
        let k = kind.to_lowercase();
        let (sync, drift, missing, invalid) = (
            format!("{k}-sync"),
            format!("{k}-drift"),
            format!("{k}-missing"),
            format!("{k}-invalid"),
        );
        create(&client, &ns.name, &with_spec_hash(make(&sync), None)).await;
        // The baseline of another version of the object: a valid hash that does not match.
        let stale = if kind == "Deployment" {
            deployment(&drift, "nginx:1.24")
        } else {
            service(&drift, 81)
        };
        create(
            &client,
            &ns.name,
            &with_spec_hash(make(&drift), Some(&hash_of(&stale))),
        )
        .await;
        create(&client, &ns.name, &make(&missing)).await;
        create(
            &client,
            &ns.name,
            &with_spec_hash(make(&invalid), Some("NOT-A-HASH")),
        )
        .await;
    }

    let op = Operator::start(
        cp,
        "verdicts",
        &["--namespace", &ns.name, "--resync-period", "1s"],
    );
    op.wait_ready().await;

    for kind in ["Deployment", "Service"] {
        let k = kind.to_lowercase();
        let live = |name: &str| {
            let m = if kind == "Deployment" {
                deployment(name, "nginx:1.25")
            } else {
                service(name, 80)
            };
            hash_of(&m)
        };
        let sync = wait_drifted(&client, &ns.name, kind, &format!("{k}-sync"), "false").await;
        assert_eq!(
            sync.len(),
            2,
            "{kind} in sync: drifted and live-hash only: {sync:?}"
        );
        assert_eq!(sync[LIVE_HASH], live(&format!("{k}-sync")));

        let drift = wait_drifted(&client, &ns.name, kind, &format!("{k}-drift"), "true").await;
        assert_eq!(drift[LIVE_HASH], live(&format!("{k}-drift")));
        let at: jiff::Timestamp = drift[DRIFTED_AT].parse().expect("drifted-at is RFC 3339");
        assert!(
            drift[DRIFTED_AT].ends_with('Z'),
            "UTC: {}",
            drift[DRIFTED_AT]
        );
        assert!(at <= jiff::Timestamp::now());

        for name in [format!("{k}-missing"), format!("{k}-invalid")] {
            let a = wait_drifted(&client, &ns.name, kind, &name, "unknown").await;
            assert_eq!(a.len(), 2, "{name}: {a:?}");
            assert_eq!(a[LIVE_HASH], live(&name));
        }
    }

    // Several resyncs later: still one event per object, and not one write.
    let versions: Vec<(String, String, String)> = {
        let mut v = Vec::new();
        for kind in ["Deployment", "Service"] {
            for suffix in ["sync", "drift", "missing", "invalid"] {
                let name = format!("{}-{suffix}", kind.to_lowercase());
                let rv = get(&client, &ns.name, kind, &name)
                    .await
                    .metadata
                    .resource_version
                    .unwrap();
                v.push((kind.to_owned(), name, rv));
            }
        }
        v
    };
    let before = op.reconciles("Deployment").await;
    wait_reconciles(&op, "Deployment", before, 4.0 * 3.0).await;
    for (kind, name, rv) in &versions {
        let now = get(&client, &ns.name, kind, name)
            .await
            .metadata
            .resource_version
            .unwrap();
        assert_eq!(&now, rv, "{kind}/{name} was written at steady state");
    }
    for kind in ["deployment", "service"] {
        let sync = events(&client, &ns.name, &format!("{kind}-sync")).await;
        assert!(
            sync.is_empty(),
            "in sync from the start: no event, got {sync:?}"
        );
        let drift = events(&client, &ns.name, &format!("{kind}-drift")).await;
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(
            (drift[0].0.as_str(), drift[0].1.as_str(), drift[0].3),
            ("DriftDetected", "Warning", 1)
        );
        let missing = events(&client, &ns.name, &format!("{kind}-missing")).await;
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(
            (missing[0].0.as_str(), missing[0].1.as_str(), missing[0].3),
            ("BaselineMissing", "Warning", 1)
        );
        let invalid = events(&client, &ns.name, &format!("{kind}-invalid")).await;
        assert_eq!(invalid.len(), 1, "{invalid:?}");
        assert_eq!(
            (invalid[0].0.as_str(), invalid[0].1.as_str()),
            ("InvalidBaseline", "Warning")
        );
        assert!(
            invalid[0].2.contains("\"NOT-A-HASH\""),
            "message quotes the bad value: {}",
            invalid[0].2
        );
    }
    // The text format lists labels sorted by name.
    let series = format!(
        r#"tfdrift_resource_drifted{{group="apps",kind="Deployment",name="deployment-drift",namespace="{}"}}"#,
        ns.name
    );
    assert_eq!(op.metric(&series).await, Some(1.0));
    assert_eq!(
        op.metric(r#"tfdrift_resources_drifted{group="apps",kind="Deployment"}"#)
            .await,
        Some(1.0)
    );

    // Drift resolved (the baseline now matches): drifted=false, drifted-at gone, one DriftResolved.
    let deploys = dynamic_api(&client, &ns.name, "Deployment");
    let good = hash_of(&deployment("deployment-drift", "nginx:1.25"));
    deploys
        .patch(
            "deployment-drift",
            &PatchParams::default(),
            &merge(json!({"metadata": {"annotations": {SPEC_HASH: good}}})),
        )
        .await
        .unwrap();
    let resolved = wait_drifted(&client, &ns.name, "Deployment", "deployment-drift", "false").await;
    assert!(!resolved.contains_key(DRIFTED_AT), "{resolved:?}");
    eventually("DriftResolved event", WAIT, || async {
        (count_events(&client, &ns.name, "deployment-drift", "DriftResolved").await == 1)
            .then_some(())
    })
    .await;
    let resolved_events = events(&client, &ns.name, "deployment-drift").await;
    assert!(
        resolved_events
            .iter()
            .any(|e| e.0 == "DriftResolved" && e.1 == "Normal")
    );
    assert_eq!(
        op.metric(&series).await,
        None,
        "series dropped once not drifted"
    );

    // Opt-out: the label goes, our annotations go, the user's spec-hash stays.
    deploys
        .patch(
            "deployment-sync",
            &PatchParams::default(),
            &merge(json!({"metadata": {"labels": {ENABLED: null}}})),
        )
        .await
        .unwrap();
    eventually("annotations removed on opt-out", WAIT, || async {
        verdict_annotations(&client, &ns.name, "Deployment", "deployment-sync")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let after = get(&client, &ns.name, "Deployment", "deployment-sync").await;
    assert!(
        after
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(SPEC_HASH)
    );

    // A label value other than "true" is not opted in either.
    deploys
        .patch(
            "deployment-missing",
            &PatchParams::default(),
            &merge(json!({"metadata": {"labels": {ENABLED: "yes"}}})),
        )
        .await
        .unwrap();
    eventually(
        "annotations removed for label value 'yes'",
        WAIT,
        || async {
            verdict_annotations(&client, &ns.name, "Deployment", "deployment-missing")
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;

    // Deletion of a drifted object drops its series.
    let svc_series = format!(
        r#"tfdrift_resource_drifted{{group="",kind="Service",name="service-drift",namespace="{}"}}"#,
        ns.name
    );
    assert_eq!(op.metric(&svc_series).await, Some(1.0));
    dynamic_api(&client, &ns.name, "Service")
        .delete("service-drift", &DeleteParams::default())
        .await
        .unwrap();
    eventually("series of a deleted object dropped", WAIT, || async {
        op.metric(&svc_series).await.is_none().then_some(())
    })
    .await;
    ns.delete(&client).await;
}

#[tokio::test]
async fn kubectl_mutations_are_drift_and_unrelated_changes_are_not() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "kubectl").await;
    create(&client, &ns.name, &in_sync_deployment("web")).await;
    let op = Operator::start(
        cp,
        "kubectl",
        &["--namespace", &ns.name, "--kinds", "Deployment"],
    );
    op.wait_ready().await;
    wait_drifted(&client, &ns.name, "Deployment", "web", "false").await;
    let n = &ns.name;

    // Not drift: an unrelated annotation, a label on the object, a rollout restart.
    for args in [
        vec!["annotate", "deployment/web", "team=payments", "-n", n],
        vec!["label", "deployment/web", "owner=alice", "-n", n],
        vec!["rollout", "restart", "deployment/web", "-n", n],
    ] {
        let before = op.reconciles("Deployment").await;
        cp.kubectl(&args);
        wait_reconciles(&op, "Deployment", before, 1.0).await;
        let a = verdict_annotations(&client, n, "Deployment", "web").await;
        assert_eq!(a[DRIFTED], "false", "kubectl {args:?} is not drift");
    }

    // Drift: scale, set image, an edit-style patch; each detected, then put back.
    // Drift: scale, set image, edit, an edit-style patch; each detected, explained,
    // attributed, then put back. (kubectl edit runs with a non-interactive EDITOR.)
    let edit_to = |from: &str, to: &str| format!("sed -i s/{from}/{to}/");
    struct Mutation<'a> {
        drift: Vec<&'a str>,
        editor: Option<String>,
        restore: Vec<&'a str>,
        line: &'a str,
        manager: Option<&'a str>,
    }
    let m = |drift, editor, restore, line, manager| Mutation {
        drift,
        editor,
        restore,
        line,
        manager,
    };
    let mutations: Vec<Mutation> = vec![
        m(
            vec!["scale", "deployment/web", "--replicas=3", "-n", n],
            None,
            vec!["scale", "deployment/web", "--replicas=1", "-n", n],
            "replicas: 1 → 3",
            None,
        ),
        m(
            vec!["set", "image", "deployment/web", "app=nginx:1.27", "-n", n],
            None,
            vec!["set", "image", "deployment/web", "app=nginx:1.25", "-n", n],
            "containers[app].image: nginx:1.25 → nginx:1.27",
            Some("kubectl-set"),
        ),
        m(
            vec!["edit", "deployment/web", "-n", n],
            Some(edit_to("nginx:1.25", "nginx:1.26")),
            vec!["set", "image", "deployment/web", "app=nginx:1.25", "-n", n],
            "containers[app].image: nginx:1.25 → nginx:1.26",
            Some("kubectl-edit"),
        ),
        m(
            vec![
                "patch",
                "deployment/web",
                "-n",
                n,
                "--type=json",
                "-p",
                r#"[{"op":"replace","path":"/spec/template/spec/containers/0/env/0/value","value":"debug"}]"#,
            ],
            None,
            vec![
                "patch",
                "deployment/web",
                "-n",
                n,
                "--type=json",
                "-p",
                r#"[{"op":"replace","path":"/spec/template/spec/containers/0/env/0/value","value":"info"}]"#,
            ],
            "containers[app].env[LOG_LEVEL].value: info → debug",
            Some("kubectl-patch"),
        ),
    ];
    for (
        i,
        Mutation {
            drift,
            editor,
            restore,
            line,
            manager,
        },
    ) in mutations.iter().enumerate()
    {
        support::next_second().await;
        let out = std::process::Command::new("kubectl")
            .env("KUBECONFIG", &cp.kubeconfig)
            .env("EDITOR", editor.as_deref().unwrap_or("true"))
            .args(drift)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl {drift:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_drifted(&client, n, "Deployment", "web", "true").await;
        let notes = eventually("DriftDetected", WAIT, || async {
            let notes: Vec<String> = events(&client, n, "web")
                .await
                .into_iter()
                .filter(|e| e.0 == "DriftDetected")
                .map(|e| e.2)
                .collect();
            (notes.len() == i + 1).then_some(notes)
        })
        .await;
        // One event per transition, each with its own explanation.
        let note = notes
            .iter()
            .find(|note| note.contains(line))
            .unwrap_or_else(|| panic!("no {line:?} in {notes:?}"));
        match manager {
            Some(m) => assert!(note.contains(&format!("changed by {m} at ")), "{note}"),
            // Servers before 1.22 record no owner for the scale subresource: say so,
            // never blame the object's creator.
            None => assert!(
                note.contains("changed by kubectl") || note.contains("no writer recorded"),
                "{note}"
            ),
        }
        cp.kubectl(restore);
        wait_drifted(&client, n, "Deployment", "web", "false").await;
        eventually("DriftResolved", WAIT, || async {
            (count_events(&client, n, "web", "DriftResolved").await == i as i32 + 1).then_some(())
        })
        .await;
    }
    assert_eq!(
        op.metric(r#"tfdrift_drift_detected_total{group="apps",kind="Deployment"}"#)
            .await,
        Some(4.0)
    );
    ns.delete(&client).await;
}

pub async fn leader_of(ops: &[&Operator]) -> Option<usize> {
    let mut leaders = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if op.metric("tfdrift_leader").await == Some(1.0) {
            leaders.push(i);
        }
    }
    match leaders.as_slice() {
        [one] => Some(*one),
        [] => None,
        many => panic!("more than one leader: {many:?}"),
    }
}

async fn reporters(client: &Client, ns: &str, name: &str) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reporting_instance)
        .collect()
}

#[tokio::test]
async fn leader_election_only_the_leader_writes_and_hands_over() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "leader").await;
    let n = ns.name.clone();
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
    let a = Operator::start(cp, "replica-a", &args);
    let b = Operator::start(cp, "replica-b", &args);
    a.wait_ready().await;
    b.wait_ready().await;
    let first = eventually("a leader", WAIT, || async { leader_of(&[&a, &b]).await }).await;
    let (mut leader, standby) = if first == 0 { (a, b) } else { (b, a) };
    let lease = Api::<Lease>::namespaced(client.clone(), &n)
        .get("tfdrift-operator")
        .await
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(leader.identity.as_str())
    );

    create(&client, &n, &drifted_manifest("one")).await;
    wait_drifted(&client, &n, "Deployment", "one", "true").await;
    eventually("event for one", WAIT, || async {
        (!reporters(&client, &n, "one").await.is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        reporters(&client, &n, "one").await,
        vec![leader.identity.clone()],
        "only the leader reports"
    );
    assert_eq!(
        standby
            .metric(r#"tfdrift_reconcile_total{group="apps",kind="Deployment",result="drifted"}"#)
            .await,
        None
    );
    assert!(standby.ready().await, "a standby is ready");

    // SIGTERM: the leader exits cleanly and releases the lease; the standby takes over.
    leader.signal(libc::SIGTERM);
    assert_eq!(
        leader.wait_exit(Duration::from_secs(20)).await,
        Some(0),
        "{}",
        leader.logs()
    );
    // Lease duration + renew deadline, with room for process scheduling.
    eventually(
        "standby takes over",
        Duration::from_secs(4 + 2 + 10),
        || async { (standby.metric("tfdrift_leader").await == Some(1.0)).then_some(()) },
    )
    .await;
    create(&client, &n, &drifted_manifest("two")).await;
    wait_drifted(&client, &n, "Deployment", "two", "true").await;
    eventually("event for two", WAIT, || async {
        (!reporters(&client, &n, "two").await.is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        reporters(&client, &n, "two").await,
        vec![standby.identity.clone()]
    );
    // The new leader does not repeat what the old one reported.
    assert_eq!(count_events(&client, &n, "one", "DriftDetected").await, 1);
    ns.delete(&client).await;
}

#[tokio::test]
async fn apiserver_restart_no_false_drift_then_convergence() {
    let _exclusive = APISERVER.write().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "restart").await;
    let n = ns.name.clone();
    create(&client, &n, &in_sync_deployment("steady")).await;
    create(&client, &n, &in_sync_deployment("later")).await;
    let mut op = Operator::start(
        cp,
        "restart",
        &[
            "--namespace",
            &n,
            "--kinds",
            "Deployment",
            "--resync-period",
            "2s",
        ],
    );
    op.wait_ready().await;
    wait_drifted(&client, &n, "Deployment", "steady", "false").await;
    wait_drifted(&client, &n, "Deployment", "later", "false").await;

    cp.stop_apiserver();
    let down = std::time::Instant::now();
    eventually(
        "/readyz reports the outage",
        Duration::from_secs(30),
        || async { (!op.ready().await).then_some(()) },
    )
    .await;
    // The rest of a 30 s outage: the operator must ride it out, not crash.
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down.elapsed())).await;
    assert!(
        op.running(),
        "operator died during the outage:\n{}",
        op.logs()
    );
    assert!(
        !op.ready().await,
        "/readyz must not claim ready while the API is down"
    );
    cp.start_apiserver();
    eventually("/readyz recovers", Duration::from_secs(90), || async {
        op.ready().await.then_some(())
    })
    .await;

    let client = cp.client().await.unwrap();
    cp.kubectl(&[
        "set",
        "image",
        "deployment/later",
        "app=nginx:1.27",
        "-n",
        &n,
    ]);
    wait_drifted(&client, &n, "Deployment", "later", "true").await;
    assert_eq!(
        verdict_annotations(&client, &n, "Deployment", "steady").await[DRIFTED],
        "false",
        "no false drift"
    );
    assert_eq!(
        count_events(&client, &n, "steady", "DriftDetected").await,
        0
    );
    assert!(op.running());
    ns.delete(&client).await;
}

#[tokio::test]
async fn sigterm_and_sigint_stop_the_operator_cleanly() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "signals").await;
    for (signal, extra) in [
        (libc::SIGTERM, vec![]),
        (libc::SIGINT, vec![]),
        (
            libc::SIGTERM,
            vec![
                "--leader-elect",
                "--leader-election-namespace",
                ns.name.as_str(),
            ],
        ),
    ] {
        let mut args = vec!["--namespace", ns.name.as_str()];
        args.extend(extra.iter().copied());
        let mut op = Operator::start(cp, &format!("signal-{signal}-{}", extra.len()), &args);
        op.wait_ready().await;
        op.signal(signal);
        assert_eq!(
            op.wait_exit(Duration::from_secs(20)).await,
            Some(0),
            "signal {signal} {extra:?}:\n{}",
            op.logs()
        );
    }
    ns.delete(&client).await;
}
