//! The control plane behaves as the operator relies on: defaulting, label-selector
//! watches, merge patches, events.k8s.io/v1, Leases, TokenRequest and RBAC.

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use crate::support::{self, control_plane};

fn deployment(name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"tfdrift.jin.dev/enabled": "true"}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "web", "image": image}]}}
        }
    }))
    .unwrap()
}

/// The defaults the server gives `deployment("web", "nginx")`, as seen through `via`.
fn assert_server_defaults(d: &Deployment, via: &str) {
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1), "{via}: replicas defaulted");
    let c = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        c.image_pull_policy.as_deref(),
        Some("Always"),
        "{via}: an untagged image pulls Always"
    );
}

type Events = BoxStream<'static, kube::Result<WatchEvent<Deployment>>>;

/// A watch from `rv`, asked again while the server turns it away (one whose watch cache is
/// still starting answers 429); 410 Gone fails at once.
async fn watch_from(api: &Api<Deployment>, params: &WatchParams, rv: &str) -> Events {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match api.watch(params, rv).await {
            Ok(events) => return events.boxed(),
            Err(kube::Error::Api(s)) if s.code == 410 => {
                panic!("the changes since {rv} are gone: {s:?}")
            }
            Err(e) if Instant::now() > deadline => panic!("a watch from {rv}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The ADDED event of `name` on `events`, a watch that started at `rv`.
///
/// `rv` must be a resourceVersion the server returned (a list's): a watch from it replays
/// every change after it ("Exact" start) on every server version. resourceVersion "0"
/// ("Any" start) leaves it to the server where the watch starts, whether the current state
/// comes as synthetic ADDED events, and how it is served (watch cache, streaming lists).
/// A server may also end a watch, or turn one away while its cache catches up, at any
/// time: like every client, resume from the last resourceVersion seen. Only 410 Gone (the
/// changes since then are no longer kept) ends the wait early; a timeout names the last
/// thing the server said instead of hiding it.
async fn added(
    api: &Api<Deployment>,
    params: &WatchParams,
    mut rv: String,
    mut events: Events,
    name: &str,
) -> Deployment {
    let timeout = Duration::from_secs(30);
    let mut last = String::from("no event");
    let found = tokio::time::timeout(timeout, async {
        loop {
            while let Some(event) = events.next().await {
                match event {
                    Ok(WatchEvent::Added(d)) if d.metadata.name.as_deref() == Some(name) => {
                        return d;
                    }
                    Ok(WatchEvent::Added(d) | WatchEvent::Modified(d) | WatchEvent::Deleted(d)) => {
                        rv = d.metadata.resource_version.unwrap_or(rv);
                    }
                    Ok(WatchEvent::Bookmark(b)) => rv = b.metadata.resource_version,
                    Ok(WatchEvent::Error(s)) if s.code == 410 => {
                        panic!("the changes since {rv} are gone: {s:?}")
                    }
                    Ok(WatchEvent::Error(s)) => {
                        last = format!("the watch from {rv} ended with {s:?}");
                        break;
                    }
                    Err(e) => last = format!("the watch from {rv}: {e}"),
                }
            }
            // The server ended the watch: resume where it stopped.
            tokio::time::sleep(Duration::from_millis(200)).await;
            events = watch_from(api, params, &rv).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no ADDED event for {name} within {timeout:?}; last: {last}"))
}

#[tokio::test]
async fn deployment_create_list_watch_shows_server_defaults() {
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "smoke-deploy").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let selector = "tfdrift.jin.dev/enabled=true";

    // List, then watch from the list's resourceVersion, as informers do.
    let before = api
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    assert!(before.items.is_empty(), "a fresh namespace");
    let rv = before
        .metadata
        .resource_version
        .expect("a list carries its resourceVersion");
    let params = WatchParams::default().labels(selector);
    let events = watch_from(&api, &params, &rv).await;

    let created = api
        .create(&PostParams::default(), &deployment("web", "nginx"))
        .await
        .unwrap();
    assert_server_defaults(&created, "create");

    let listed = api
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_server_defaults(&listed.items[0], "list");

    let seen = added(&api, &params, rv, events, "web").await;
    assert_server_defaults(&seen, "watch");

    // The live object fingerprints like its manifest: the contract on this very server.
    let manifest = tfdrift::core::fingerprint::hash(&deployment("web", "nginx")).unwrap();
    for (via, live) in [
        ("create", &created),
        ("list", &listed.items[0]),
        ("watch", &seen),
    ] {
        assert_eq!(
            tfdrift::core::fingerprint::hash(live).unwrap(),
            manifest,
            "{via}"
        );
    }
    ns.delete(&client).await;
}

#[tokio::test]
async fn server_rejects_an_exponent_with_a_suffix() {
    // Our quantity parser rejects `1e3m`; so must the server, or we would refuse objects it stores.
    let client = control_plane().client().await.unwrap();
    let ns = support::namespace(&client, "smoke-qty").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let mut d = deployment("q", "nginx:1");
    let mut v = serde_json::to_value(&d).unwrap();
    v["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "1e3m"}});
    d = serde_json::from_value(v).unwrap();
    let err = api.create(&PostParams::default(), &d).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 || s.code == 400),
        "{err:?}"
    );
    ns.delete(&client).await;
}

#[tokio::test]
async fn merge_patch_of_annotations_only() {
    let client = control_plane().client().await.unwrap();
    let ns = support::namespace(&client, "smoke-patch").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let created = api
        .create(&PostParams::default(), &deployment("p", "nginx:1.27"))
        .await
        .unwrap();
    let patch = json!({"metadata": {"annotations": {"tfdrift.jin.dev/drifted": "false"}}});
    let params = PatchParams {
        field_manager: Some("tfdrift".into()),
        ..Default::default()
    };
    let patched = api
        .patch("p", &params, &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(
        patched
            .metadata
            .annotations
            .unwrap()
            .get("tfdrift.jin.dev/drifted")
            .map(String::as_str),
        Some("false")
    );
    // Deployments bump metadata.generation on annotation changes too (a legacy of the
    // rollback annotation), so compare the spec itself.
    assert_eq!(patched.spec, created.spec, "spec untouched");
    ns.delete(&client).await;
}

#[tokio::test]
async fn events_v1_and_leases() {
    let client = control_plane().client().await.unwrap();
    let ns = support::namespace(&client, "smoke-events").await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let ev: Event = serde_json::from_value(json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "smoke.1"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "tfdrift.jin.dev/operator", "reportingInstance": "smoke",
        "action": "Reconcile", "reason": "DriftDetected", "type": "Warning", "note": "hello",
        "regarding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "namespace": ns.name}
    }))
    .unwrap();
    events.create(&PostParams::default(), &ev).await.unwrap();
    // The core/v1 view shows it too: what `kubectl get events` reads.
    let out = control_plane().kubectl(&["get", "events", "-n", &ns.name, "-o", "json"]);
    assert!(out.contains("DriftDetected"), "{out}");

    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "l"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": "2026-01-01T00:00:00.000000Z"}
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut renewed = created.clone();
    renewed.spec.as_mut().unwrap().renew_time =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            "2026-01-01T00:00:10Z".parse().unwrap(),
        ));
    leases
        .replace("l", &PostParams::default(), &renewed)
        .await
        .unwrap();
    // A stale resourceVersion is a conflict: what makes lease takeover safe.
    let err = leases
        .replace("l", &PostParams::default(), &created)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );
    ns.delete(&client).await;
}

#[tokio::test]
async fn service_account_token_is_refused_what_rbac_does_not_grant() {
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "smoke-rbac").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns.name);
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "nobody"}})).unwrap();
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let tr: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
            .unwrap();
    let token = sas
        .create_subresource::<TokenRequest, TokenRequest>(
            "token",
            "nobody",
            &PostParams::default(),
            &tr,
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let kc = cp.kubeconfig_for_token("nobody", &token);
    let as_sa = support::client_from_kubeconfig(&kc).await.unwrap();
    let err = Api::<Secret>::namespaced(as_sa, &ns.name)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err:?}"
    );
    ns.delete(&client).await;
}
