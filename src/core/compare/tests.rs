use serde_json::{Value, json};

use super::*;
use crate::core::explain::diff::Segment;
use crate::core::kind;

fn root(api_version: &str, kind: &str) -> NodeId {
    let k = kind::builtin(api_version, kind).unwrap();
    builtin::schema().def(k.def).unwrap()
}

fn diff(intent: &Value, live: &Value, options: &Options<'_>) -> Vec<String> {
    let api = intent["apiVersion"].as_str().unwrap();
    let k = intent["kind"].as_str().unwrap();
    compare(intent, live, builtin::schema(), root(api, k), options)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn metadata_maps(path: &[Segment]) -> bool {
    matches!(path, [Segment::Field(m), Segment::Field(f), ..]
        if m == "metadata" && (f == "labels" || f == "annotations"))
}

/// Every fixture: the manifest against what the server stored is in sync, against each
/// `same-*` edit too (labels and annotations of the object left out, as kubernetes_manifest
/// does); each `drift-*` edit is drift, but those of a field the manifest leaves to the
/// server's default (`replicas`, `imagePullPolicy`, a mount's `readOnly`, …).
#[test]
fn manifests_against_what_real_servers_stored() {
    let options = Options {
        ignored: &metadata_maps,
        ..Options::default()
    };
    // Fields these manifests leave out, which the edits change.
    let unset = [
        "deploy-latest-image/drift-pull-policy.json",
        "deploy-minimal/drift-add-env.json",
        "deploy-minimal/drift-drift.json",
        "deploy-multi-container/drift-mount-readonly.json",
        "sts-basic/drift-replicas.json",
        "svc-nodeport-named/drift-traffic-policy.json",
    ];
    let mut drifts = 0;
    for case in crate::testing::fixture_cases() {
        let text = std::fs::read_to_string(case.join("manifest.yaml")).unwrap();
        let manifest: Value = serde_saphyr::from_str(&text).unwrap();
        let live = crate::testing::object(&case.join("live.json"));
        assert_eq!(
            diff(&manifest, &live, &options),
            Vec::<String>::new(),
            "{}",
            case.display()
        );
        for (name, path) in crate::testing::edits(&case) {
            let edited = crate::testing::object(&path);
            let changes = diff(&manifest, &edited, &options);
            if name.starts_with("same-") {
                assert!(changes.is_empty(), "{}: {changes:?}", path.display());
            } else {
                let leaves_it_out = unset.iter().any(|u| path.ends_with(u));
                assert_eq!(
                    changes.is_empty(),
                    leaves_it_out,
                    "{}: {changes:?}",
                    path.display()
                );
                drifts += usize::from(!changes.is_empty());
            }
        }
    }
    assert!(drifts >= 30, "{drifts}");
}

#[test]
fn only_what_the_intent_sets_is_compared_and_zeros_are_absence() {
    let intent = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
        "spec": {"template": {"spec": {"hostNetwork": false, "containers": [
            {"name": "web", "image": "nginx", "workingDir": "",
             "securityContext": {"allowPrivilegeEscalation": false}}]}}}});
    let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "w", "uid": "u", "labels": {"a": "b"}},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx", "imagePullPolicy": "Always",
             "securityContext": {"allowPrivilegeEscalation": false}}]}}}});
    assert!(diff(&intent, &live, &Options::default()).is_empty());
    // A pointer's false removed is drift; a non-pointer's false is absence.
    let mut removed = live.clone();
    removed["spec"]["template"]["spec"]["containers"][0]["securityContext"] = json!({});
    assert_eq!(
        diff(&intent, &removed, &Options::default()),
        ["spec.template.spec.containers[web].securityContext.allowPrivilegeEscalation: removed"]
    );
    let mut host = live.clone();
    host["spec"]["template"]["spec"]["hostNetwork"] = json!(true);
    assert_eq!(
        diff(&intent, &host, &Options::default()),
        ["spec.template.spec.hostNetwork: false → true"]
    );
}

#[test]
fn keyed_lists_and_sets_ignore_order_and_see_additions() {
    let intent = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": ""}]},
            {"name": "b", "image": "y"}]}});
    let live = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [
            {"name": "b", "image": "y"},
            {"name": "a", "image": "x", "ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 80, "protocol": "TCP"}],
             "env": [{"name": "B"}, {"name": "A", "value": "1"}]}]}});
    assert!(diff(&intent, &live, &Options::default()).is_empty());
    let mut added = live.clone();
    added["spec"]["containers"][1]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "DEBUG", "value": "1"}));
    added["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "z"}));
    assert_eq!(
        diff(&intent, &added, &Options::default()),
        [
            "spec.containers[a].env[DEBUG]: added",
            "spec.containers[sidecar]: added"
        ]
    );
    let kubectl = Options {
        additions: Additions::NONE,
        ..Options::default()
    };
    assert!(diff(&intent, &added, &kubectl).is_empty());
}

#[test]
fn maps_own_their_keys_and_an_empty_value_is_a_value() {
    let intent = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"a": "1", "b": ""}});
    let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"a": "1", "b": ""}});
    assert!(diff(&intent, &live, &Options::default()).is_empty());
    let gone = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"a": "1", "c": "x"}});
    assert_eq!(
        diff(&intent, &gone, &Options::default()),
        ["data[b]: removed", "data[c]: added"]
    );
}

#[test]
fn an_empty_block_owned_by_the_intent_sees_what_is_added() {
    let intent = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"tolerations": [], "affinity": {}, "containers": [{"name": "a", "image": "x"}]}});
    let live = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "x"}]}});
    assert!(diff(&intent, &live, &Options::default()).is_empty());
    let mut more = live.clone();
    more["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
    more["spec"]["affinity"] = json!({"nodeAffinity": {}});
    more["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let changes = diff(&intent, &more, &Options::default());
    assert_eq!(
        changes,
        ["spec.tolerations[0]: added"],
        "an empty affinity added is nothing"
    );
}
