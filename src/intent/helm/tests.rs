use base64::Engine as _;
use serde_json::{Value, json};

use super::*;

fn release(manifest: &str, revision: u64, config: Value) -> Release {
    let json = json!({
        "name": "web", "namespace": "shop", "version": revision,
        "info": {"status": "deployed"}, "config": config, "manifest": manifest,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(json.to_string());
    Release::decode(encoded.as_bytes()).unwrap()
}

fn meta(revision: u64, status: &str) -> Meta {
    Meta {
        object: format!("sh.helm.release.v1.web.v{revision}"),
        release: "web".into(),
        revision,
        status: Status::parse(status),
    }
}

const MANIFEST: &str = "---
# Source: web/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
  labels:
    app: web
---
# Source: web/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: web
stringData:
  password: hunter2
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: web-reader
rules: []
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: other
  namespace: elsewhere
data: {a: b}
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: gizmo
---
kind: Nothing
";

#[test]
fn every_document_is_an_object_in_the_release_namespace_with_helms_metadata() {
    let r = release(MANIFEST, 2, json!({}));
    let (instances, unjudged) = objects(&r, "helm:shop/web");
    let ids: Vec<String> = instances.iter().map(|i| i.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "ServiceAccount/shop/web",
            "Secret/shop/web",
            "ClusterRole/web-reader",
            "ConfigMap/elsewhere/other",
            "Widget.example.com/shop/gizmo",
        ]
    );
    // A custom resource: named in the release namespace, its scope left to discovery.
    assert!(instances[4].object.pointer("/metadata/namespace").is_none());
    let sa = &instances[0].object;
    assert_eq!(sa["metadata"]["labels"]["app"], "web");
    assert_eq!(sa["metadata"]["labels"][MANAGED_BY], "Helm");
    assert_eq!(sa["metadata"]["annotations"][RELEASE_NAME], "web");
    assert_eq!(sa["metadata"]["annotations"][RELEASE_NAMESPACE], "shop");
    assert!(matches!(
        &instances[0].source,
        Source::Helm { release, revision: 2 } if &**release == "shop/web"
    ));
    let secret = instances[1].object.to_string();
    assert!(!secret.contains("hunter2"), "{secret}");
    assert!(instances[1].object.pointer("/data/password").is_some());
    assert_eq!(unjudged.len(), 1);
    assert!(
        unjudged[0].why.to_string().contains("document 6"),
        "{:?}",
        unjudged[0]
    );
}

#[test]
fn a_manifest_that_is_no_yaml_is_named_not_shown() {
    let r = release("a: [b\nkey: hunter2", 1, json!({}));
    let (instances, unjudged) = objects(&r, "helm:shop/web");
    assert!(instances.is_empty());
    let why = unjudged[0].why.to_string();
    assert!(
        why.contains("not YAML") && !why.contains("hunter2"),
        "{why}"
    );
}

#[test]
fn the_latest_deployed_revision_decides_unless_helm_is_busy() {
    let history = [
        meta(1, "superseded"),
        meta(3, "deployed"),
        meta(2, "superseded"),
    ];
    assert_eq!(choose(&history), Some(Choice::Deployed(&history[1])));
    let failed = [meta(1, "deployed"), meta(2, "failed")];
    assert_eq!(choose(&failed), Some(Choice::Deployed(&failed[0])));
    let busy = [meta(1, "deployed"), meta(2, "pending-upgrade")];
    assert_eq!(choose(&busy), Some(Choice::Pending(&busy[1])));
    let gone = [meta(1, "superseded"), meta(2, "uninstalled")];
    assert_eq!(choose(&gone), Some(Choice::Gone(&gone[1])));
    let never = [meta(1, "failed")];
    assert_eq!(choose(&never), Some(Choice::NoneDeployed(&never[0])));
    assert_eq!(choose(&[]), None);
}

#[test]
fn a_helm_release_instance_names_its_release_revision_and_values() {
    for metadata in [
        json!([{"revision": 3, "values": "{\"replicas\":2,\"token\":\"(sensitive value)\"}"}]),
        json!({"revision": 3, "values": "{\"replicas\":2,\"token\":\"(sensitive value)\"}"}),
    ] {
        let attrs = json!({"name": "web", "namespace": "shop", "metadata": metadata});
        let named = Named::of("helm_release.web", &attrs).unwrap();
        assert_eq!(
            (named.namespace.as_str(), named.name.as_str()),
            ("shop", "web")
        );
        assert_eq!(named.revision, Some(3));
        let same = release("", 3, json!({"token": "s3cret", "replicas": 2}));
        assert!(named.differences(&same).is_empty());
        let moved = release("", 4, json!({"token": "other", "replicas": 2}));
        assert_eq!(
            named.differences(&moved),
            [
                "release upgraded or rolled back outside Terraform: revision 4, Terraform state has 3"
            ]
        );
        let changed = release("", 3, json!({"token": "s3cret", "replicas": 5}));
        assert_eq!(
            named.differences(&changed),
            ["values changed outside Terraform"]
        );
    }
    assert!(Named::of("helm_release.x", &json!({})).is_none());
}

/// What the server and the cluster's controllers add to a chart's object is not drift; what
/// someone adds to what the chart sets is.
#[test]
fn server_defaults_and_controller_keys_are_not_drift_but_additions_are() {
    use crate::intent::terraform::judge::{self, Judgment};
    let manifest = "---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {matchLabels: {app: web}}
  strategy: {}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.25
          resources: {}
";
    let r = release(manifest, 1, json!({}));
    let (instances, _) = objects(&r, "helm:shop/web");
    let schema = crate::core::schema::builtin::schema();
    let root = crate::core::kind::builtin("apps/v1", "Deployment")
        .and_then(|k| schema.def(k.def))
        .unwrap();
    let mut live = instances[0].object.clone();
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("3");
    live["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    live["spec"]["replicas"] = json!(1);
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
        json!("/dev/termination-log");
    let judged =
        |live: &Value| judge::judge(&instances[0], live, schema, root, &Default::default());
    assert!(
        matches!(judged(&live), Judgment::InSync { .. }),
        "{:?}",
        judged(&live)
    );
    let mut labelled = live.clone();
    labelled["metadata"]["labels"]["team"] = json!("x");
    let Judgment::Drifted { changes } = judged(&labelled) else {
        panic!("a label added live is drift")
    };
    assert_eq!(changes[0].redacted(), "metadata.labels[team]: added");
    let mut taken = live.clone();
    taken["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(MANAGED_BY);
    assert!(
        matches!(judged(&taken), Judgment::Drifted { .. }),
        "Helm's label is intent"
    );
}
