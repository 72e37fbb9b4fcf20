//! What `make deploy` installs, proven on the real API server: config/default applies,
//! its ServiceAccount can do the operator's whole job, and nothing more.

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::operator::{count_events, wait_drifted};
use crate::support::{
    self, APISERVER, Operator, client_from_kubeconfig, control_plane, eventually,
};

fn forbidden<T: std::fmt::Debug>(what: &str, r: Result<T, kube::Error>) {
    match r {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn config_default_applies_and_its_identity_does_the_job_and_no_more() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    let rendered = cp.kubectl(&["kustomize", root.join("config/default").to_str().unwrap()]);
    // A server-side dry run cannot create the namespace its other objects go into.
    cp.kubectl(&[
        "apply",
        "--dry-run=server",
        "-f",
        root.join("config/manager/namespace.yaml").to_str().unwrap(),
    ]);
    cp.kubectl(&[
        "apply",
        "-f",
        root.join("config/manager/namespace.yaml").to_str().unwrap(),
    ]);
    cp.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &rendered);
    cp.kubectl_stdin(&["apply", "-f", "-"], &rendered);

    let ns = support::namespace(&client, "deploy").await;
    let n = ns.name.clone();
    cp.kubectl(&[
        "apply",
        "-k",
        root.join("config/samples").to_str().unwrap(),
        "-n",
        &n,
    ]);

    let token = cp
        .service_account_token(&client, "tfdrift-system", "tfdrift-operator")
        .await;
    let kubeconfig = cp.kubeconfig_for_token("tfdrift-operator", &token);
    let op = Operator::start_with_kubeconfig(
        cp,
        &kubeconfig,
        "rbac",
        &[
            "--namespace",
            &n,
            "--leader-elect",
            "--leader-election-namespace",
            "tfdrift-system",
            "--leader-election-id",
            "tfdrift-rbac-test",
        ],
    );
    op.wait_ready().await;

    // The samples carry correct hashes; drift is seen, reported and attributed.
    wait_drifted(&client, &n, "Deployment", "web", "false").await;
    wait_drifted(&client, &n, "Service", "web", "false").await;
    wait_drifted(&client, &n, "Deployment", "api", "false").await;
    // `api`'s HPA (read through the ServiceAccount's HPA watch) owns its replicas; `web`
    // has none, and is scaled after it, so its drift orders the two verdicts.
    cp.kubectl(&["scale", "deployment/api", "--replicas=5", "-n", &n]);
    cp.kubectl(&["scale", "deployment/web", "--replicas=5", "-n", &n]);
    wait_drifted(&client, &n, "Deployment", "web", "true").await;
    let api = Api::<Deployment>::namespaced(client.clone(), &n)
        .get("api")
        .await
        .unwrap();
    let annotations = api.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations["tfdrift.jin.dev/drifted"], "false");
    assert_eq!(
        annotations["tfdrift.jin.dev/ignored"],
        "env[BUILD_ID],replicas"
    );
    eventually(
        "DriftDetected as the ServiceAccount",
        std::time::Duration::from_secs(30),
        || async { (count_events(&client, &n, "web", "DriftDetected").await == 1).then_some(()) },
    )
    .await;
    let lease = Api::<Lease>::namespaced(client.clone(), "tfdrift-system")
        .get("tfdrift-rbac-test")
        .await
        .unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("rbac"));
    // Not a single API call refused (or failed) while doing the job.
    let metrics = op.metrics_text().await;
    assert!(
        !metrics.contains("tfdrift_api_errors_total{"),
        "API errors counted:\n{metrics}"
    );
    assert!(
        !op.logs().to_lowercase().contains("forbidden"),
        "the operator hit a Forbidden doing its job:\n{}",
        op.logs()
    );

    // And nothing more.
    let sa = client_from_kubeconfig(&kubeconfig).await.unwrap();
    forbidden(
        "list Secrets",
        Api::<Secret>::namespaced(sa.clone(), &n)
            .list(&ListParams::default())
            .await,
    );
    forbidden(
        "list Secrets in its own namespace",
        Api::<Secret>::namespaced(sa.clone(), "tfdrift-system")
            .list(&ListParams::default())
            .await,
    );
    let deployments = Api::<Deployment>::namespaced(sa.clone(), &n);
    forbidden(
        "delete a Deployment",
        deployments.delete("web", &DeleteParams::default()).await,
    );
    let current = Api::<Deployment>::namespaced(client.clone(), &n)
        .get("web")
        .await
        .unwrap();
    forbidden(
        "update a Deployment",
        deployments
            .replace("web", &PostParams::default(), &current)
            .await,
    );
    forbidden(
        "create a Deployment",
        deployments.create(&PostParams::default(), &current).await,
    );
    let hpas = Api::<HorizontalPodAutoscaler>::namespaced(sa.clone(), &n);
    forbidden("read an HPA", hpas.get("api").await);
    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), &n)
        .get("api")
        .await
        .unwrap();
    forbidden(
        "update an HPA",
        hpas.replace("api", &PostParams::default(), &hpa).await,
    );
    let lease: Lease =
        serde_json::from_value(json!({"metadata": {"name": "elsewhere"}, "spec": {}})).unwrap();
    forbidden(
        "create a Lease outside tfdrift-system",
        Api::<Lease>::namespaced(sa.clone(), &n)
            .create(&PostParams::default(), &lease)
            .await,
    );
    forbidden(
        "read a Lease outside tfdrift-system",
        Api::<Lease>::namespaced(sa.clone(), "kube-system")
            .list(&ListParams::default())
            .await,
    );
    ns.delete(&client).await;
}
