//! Ignore rules on the real API server: an HPA-scaled Deployment stays in sync, an
//! injected sidecar under the default rules stays in sync, an invalid rule is reported
//! once while the verdict goes on, and drift outside the ignored paths is still caught.
//!
//! The test control plane runs no controller-manager, so no HPA controller: the tests
//! scale through the scale subresource (`kubectl scale`), exactly the write an HPA makes,
//! and inject sidecars with the JSON patch a mutating webhook would send.

use std::time::Duration;

use serde_json::{Value, json};
use tfdrift::cli::hash::Ignore;
use tfdrift::cli::manifest::Manifests;
use tfdrift::core::ignore::Defaults;

use crate::operator::{count_events, create, event_note, events, get, wait_drifted};
use crate::support::{self, APISERVER, Operator, control_plane, eventually};

const IGNORED: &str = "tfdrift.jin.dev/ignored";
const IGNORE_INVALID: &str = "tfdrift.jin.dev/ignore-invalid";
const WAIT: Duration = Duration::from_secs(30);

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}}
        }
    })
}

fn hpa(name: &str, target: &str) -> Value {
    json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                 "minReplicas": 2, "maxReplicas": 10, "targetCPUUtilizationPercentage": 80}
    })
}

/// `docs` annotated as `tfdrift hash --annotate` would with the default flags.
fn annotated(docs: &[Value], baseline: bool) -> Vec<Value> {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": docs});
    let mut m = Manifests::parse(list.to_string().as_bytes()).unwrap();
    let defaults = Defaults::new(&["istio-proxy".into(), "istio-init".into()], &[], true).unwrap();
    let rules = Ignore::new(defaults, &m).unwrap();
    tfdrift::cli::hash::annotate(&mut m, baseline, &rules).unwrap();
    m.documents[0]["items"].as_array().unwrap().clone()
}

async fn annotation(client: &kube::Client, ns: &str, name: &str, key: &str) -> Option<String> {
    get(client, ns, "Deployment", name)
        .await
        .metadata
        .annotations
        .unwrap_or_default()
        .remove(key)
}

async fn wait_annotation(
    client: &kube::Client,
    ns: &str,
    name: &str,
    key: &str,
    value: Option<&str>,
) {
    eventually(&format!("{name} {key}={value:?}"), WAIT, || async {
        (annotation(client, ns, name, key).await.as_deref() == value).then_some(())
    })
    .await
}

#[tokio::test]
async fn hpa_scaled_deployments_stay_in_sync() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "hpa").await;
    let n = ns.name.clone();

    // `outside`: hashed without its HPA (another tool made it, as KEDA does); its baseline
    // record bridges the gap. `together`: hashed in one input with its HPA, no record.
    // `manual`: no HPA, so replicas is intent.
    let outside = annotated(&[deployment("outside")], true).remove(0);
    let together = annotated(
        &[deployment("together"), hpa("together", "together")],
        false,
    );
    let manual = annotated(&[deployment("manual")], true).remove(0);
    assert!(
        together[0]["metadata"]["annotations"]
            .get("tfdrift.jin.dev/baseline")
            .is_none()
    );
    for m in [&outside, &together[0], &manual] {
        create(&client, &n, m).await;
    }
    cp.kubectl_stdin(&["apply", "-n", &n, "-f", "-"], &together[1].to_string());
    cp.kubectl_stdin(
        &["apply", "-n", &n, "-f", "-"],
        &hpa("outside", "outside").to_string(),
    );

    let op = Operator::start(cp, "hpa", &["--namespace", &n]);
    op.wait_ready().await;
    for name in ["outside", "together", "manual"] {
        wait_drifted(&client, &n, "Deployment", name, "false").await;
    }
    assert_eq!(
        annotation(&client, &n, "outside", IGNORED).await.as_deref(),
        Some("replicas")
    );
    assert_eq!(annotation(&client, &n, "manual", IGNORED).await, None);

    // The HPAs scale up; someone scales `manual` by hand, after them (the same watch
    // stream orders the events, so `manual`'s verdict comes after theirs).
    for name in ["outside", "together", "manual"] {
        cp.kubectl(&[
            "scale",
            "-n",
            &n,
            &format!("deployment/{name}"),
            "--replicas=5",
        ]);
    }
    wait_drifted(&client, &n, "Deployment", "manual", "true").await;
    let note = event_note(&client, &n, "manual", "DriftDetected").await;
    assert!(note.contains("replicas: 2 → 5"), "{note}");
    for name in ["outside", "together"] {
        assert_eq!(
            annotation(&client, &n, name, "tfdrift.jin.dev/drifted")
                .await
                .as_deref(),
            Some("false"),
            "{name} scaled by its HPA:\n{}",
            op.logs()
        );
        assert_eq!(
            count_events(&client, &n, name, "DriftDetected").await,
            0,
            "{name}"
        );
    }

    // Drift outside the ignored path is still drift, and its explanation leaves out the
    // HPA's replicas.
    support::next_second().await;
    cp.kubectl(&[
        "set",
        "image",
        "-n",
        &n,
        "deployment/outside",
        "app=nginx:1.27",
    ]);
    wait_drifted(&client, &n, "Deployment", "outside", "true").await;
    let note = event_note(&client, &n, "outside", "DriftDetected").await;
    assert!(
        note.contains("containers[app].image: nginx:1.25 → nginx:1.27"),
        "{note}"
    );
    assert!(!note.contains("replicas"), "{note}");

    // The HPA goes: replicas is intent again, and 5 is not what was applied.
    cp.kubectl(&["delete", "hpa", "-n", &n, "together"]);
    wait_drifted(&client, &n, "Deployment", "together", "true").await;
    wait_annotation(&client, &n, "together", IGNORED, None).await;
    ns.delete(&client).await;
}

#[tokio::test]
async fn injected_sidecars_and_chosen_paths_are_ignored() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "ignore").await;
    let n = ns.name.clone();

    for name in ["meshed", "chosen"] {
        create(&client, &n, &annotated(&[deployment(name)], true).remove(0)).await;
    }
    let op = Operator::start(cp, "ignore", &["--namespace", &n]);
    op.wait_ready().await;
    for name in ["meshed", "chosen"] {
        wait_drifted(&client, &n, "Deployment", name, "false").await;
    }

    // A mesh's webhook injects its sidecar and init container: the default rules leave
    // them out, and say so.
    let inject = json!([
        {"op": "add", "path": "/spec/template/spec/containers/-",
         "value": {"name": "istio-proxy", "image": "istio/proxyv2:1.22", "args": ["proxy", "sidecar"]}},
        {"op": "add", "path": "/spec/template/spec/initContainers",
         "value": [{"name": "istio-init", "image": "istio/proxyv2:1.22"}]}
    ]);
    cp.kubectl(&[
        "patch",
        "-n",
        &n,
        "deployment/meshed",
        "--type",
        "json",
        "-p",
        &inject.to_string(),
    ]);
    wait_annotation(
        &client,
        &n,
        "meshed",
        IGNORED,
        Some("containers[istio-proxy],initContainers[istio-init]"),
    )
    .await;
    assert_eq!(
        annotation(&client, &n, "meshed", "tfdrift.jin.dev/drifted")
            .await
            .as_deref(),
        Some("false"),
        "{}",
        op.logs()
    );
    assert_eq!(
        count_events(&client, &n, "meshed", "DriftDetected").await,
        0
    );

    // Drift in the app container is still caught.
    support::next_second().await;
    cp.kubectl(&[
        "set",
        "env",
        "-n",
        &n,
        "deployment/meshed",
        "-c",
        "app",
        "DEBUG=1",
    ]);
    wait_drifted(&client, &n, "Deployment", "meshed", "true").await;
    let summary = annotation(&client, &n, "meshed", "tfdrift.jin.dev/drift-summary")
        .await
        .unwrap_or_default();
    assert!(
        summary.contains("containers[app].env[DEBUG]: added"),
        "{summary}"
    );
    assert!(!summary.contains("istio"), "{summary}");

    // A user's own rules, one of them malformed: one InvalidIgnoreRule event naming it,
    // the annotation saying the same, and the valid rule and the verdict still applied.
    cp.kubectl(&[
        "annotate",
        "-n",
        &n,
        "deployment/chosen",
        "tfdrift.jin.dev/ignore=env[BUILD_ID], containers[app.image",
    ]);
    let invalid = eventually("ignore-invalid on chosen", WAIT, || async {
        annotation(&client, &n, "chosen", IGNORE_INVALID).await
    })
    .await;
    assert!(
        invalid.contains("`containers[app.image` is not a path"),
        "{invalid}"
    );
    let warning = event_note(&client, &n, "chosen", "InvalidIgnoreRule").await;
    assert!(warning.contains("containers[app.image"), "{warning}");
    let types: Vec<String> = events(&client, &n, "chosen")
        .await
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(types, ["Warning"]);
    cp.kubectl(&["set", "env", "-n", &n, "deployment/chosen", "BUILD_ID=42"]);
    wait_annotation(&client, &n, "chosen", IGNORED, Some("env[BUILD_ID]")).await;
    assert_eq!(
        annotation(&client, &n, "chosen", "tfdrift.jin.dev/drifted")
            .await
            .as_deref(),
        Some("false")
    );
    // Resyncs and further edits do not repeat the warning; fixing the rule clears it.
    cp.kubectl(&[
        "annotate",
        "--overwrite",
        "-n",
        &n,
        "deployment/chosen",
        "tfdrift.jin.dev/ignore=env[BUILD_ID]",
    ]);
    wait_annotation(&client, &n, "chosen", IGNORE_INVALID, None).await;
    assert_eq!(
        count_events(&client, &n, "chosen", "InvalidIgnoreRule").await,
        1
    );
    support::next_second().await;
    cp.kubectl(&["scale", "-n", &n, "deployment/chosen", "--replicas=4"]);
    wait_drifted(&client, &n, "Deployment", "chosen", "true").await;
    ns.delete(&client).await;
}
