//! Properties of fingerprints: permuting any unordered list never changes the hash;
//! changing any fingerprinted field always does.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{Value, json};
use tfdrift::core::fingerprint::hash_value;

fn fixture(case: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kube-apiserver-v1.36.2")
        .join(case)
        .join("live.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn hash(v: &Value) -> String {
    hash_value(v).expect("supported kind").expect("hashable")
}

fn array_at<'a>(v: &'a mut Value, pointer: &str) -> &'a mut Vec<Value> {
    v.pointer_mut(pointer)
        .and_then(Value::as_array_mut)
        .unwrap_or_else(|| panic!("no array at {pointer}"))
}

fn permute(items: &mut [Value], seed: &[usize]) {
    // Fisher-Yates driven by proptest's values so that shrinking works.
    for i in (1..items.len()).rev() {
        let j = seed[i % seed.len()] % (i + 1);
        items.swap(i, j);
    }
}

/// A Deployment with more than one element in every unordered list.
fn rich_deployment() -> Value {
    let mut d = fixture("deploy-multi-container");
    let c = "/spec/template/spec/containers/1";
    d.pointer_mut(c).unwrap()["ports"] = json!([
        {"containerPort": 443, "name": "https", "protocol": "TCP"},
        {"containerPort": 80, "name": "http"},
        {"containerPort": 53, "protocol": "UDP", "name": "dns-udp"},
        {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}
    ]);
    d.pointer_mut(c).unwrap()["volumeMounts"] = json!([
        {"name": "config", "mountPath": "/etc/app"},
        {"name": "data", "mountPath": "/data", "readOnly": true},
        {"name": "data", "mountPath": "/backup", "subPath": "b"}
    ]);
    d
}

const UNORDERED: [&str; 5] = [
    "/spec/template/spec/containers",
    "/spec/template/spec/containers/1/env",
    "/spec/template/spec/containers/1/ports",
    "/spec/template/spec/containers/1/volumeMounts",
    "/spec/template/spec/volumes",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn permuting_unordered_lists_keeps_the_hash(seeds in proptest::collection::vec(proptest::collection::vec(any::<usize>(), 1..8), UNORDERED.len())) {
        let original = rich_deployment();
        let mut shuffled = original.clone();
        // Deepest pointers first, so container indices still point where they did.
        for (pointer, seed) in UNORDERED.iter().rev().zip(seeds.iter().rev()) {
            permute(array_at(&mut shuffled, pointer), seed);
        }
        prop_assert_eq!(hash(&original), hash(&shuffled));
    }

    #[test]
    fn permuting_service_ports_and_ranges_keeps_the_hash(seed in proptest::collection::vec(any::<usize>(), 1..8)) {
        let mut svc = fixture("svc-nodeport-named");
        svc["spec"]["externalIPs"] = json!(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        let original = svc.clone();
        permute(array_at(&mut svc, "/spec/ports"), &seed);
        permute(array_at(&mut svc, "/spec/externalIPs"), &seed);
        prop_assert_eq!(hash(&original), hash(&svc));
    }

    #[test]
    fn changing_a_fingerprinted_field_changes_the_hash(field in 0usize..FIELDS.len(), salt in "[a-z0-9]{1,12}", n in 1i64..60000) {
        let original = rich_deployment();
        let mut changed = original.clone();
        let (pointer, make) = FIELDS[field];
        let target = changed.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}"));
        let new = make(target, &salt, n);
        prop_assume!(*target != new);
        *target = new;
        prop_assert_ne!(hash(&original), hash(&changed), "change at {} not seen", pointer);
    }
}

type Mutation = fn(&Value, &str, i64) -> Value;

fn other_string(v: &Value, salt: &str, _: i64) -> Value {
    json!(format!("{}-{salt}", v.as_str().unwrap_or("")))
}
fn other_number(v: &Value, _: &str, n: i64) -> Value {
    json!(v.as_i64().unwrap_or(0) + n)
}
fn other_quantity(_: &Value, _: &str, n: i64) -> Value {
    // The fixture's quantities are 250m, 64Mi, 1500m, 2Gi, 2: never n+1 milli-units of 7.
    json!(format!("{}m", 7000 + n + 1))
}
fn flip(v: &Value, _: &str, _: i64) -> Value {
    json!(!v.as_bool().unwrap_or(false))
}
fn add_entry(v: &Value, salt: &str, _: i64) -> Value {
    let mut m = v.clone();
    m[format!("k-{salt}")] = json!(salt);
    m
}

const FIELDS: [(&str, Mutation); 20] = [
    ("/spec/replicas", other_number),
    ("/spec/template/metadata/labels", add_entry),
    ("/spec/template/spec/serviceAccountName", other_string),
    ("/spec/template/spec/containers/0/image", other_string),
    ("/spec/template/spec/containers/0/args/1", other_string),
    (
        "/spec/template/spec/containers/0/resources/limits/cpu",
        other_quantity,
    ),
    (
        "/spec/template/spec/containers/0/resources/limits/memory",
        other_quantity,
    ),
    ("/spec/template/spec/containers/1/env/3/value", other_string),
    (
        "/spec/template/spec/containers/1/env/0/valueFrom/secretKeyRef/key",
        other_string,
    ),
    (
        "/spec/template/spec/containers/1/env/1/valueFrom/configMapKeyRef/name",
        other_string,
    ),
    (
        "/spec/template/spec/containers/1/env/2/valueFrom/fieldRef/fieldPath",
        other_string,
    ),
    (
        "/spec/template/spec/containers/1/envFrom/1/prefix",
        other_string,
    ),
    (
        "/spec/template/spec/containers/1/ports/0/containerPort",
        other_number,
    ),
    (
        "/spec/template/spec/containers/1/volumeMounts/0/mountPath",
        other_string,
    ),
    (
        "/spec/template/spec/containers/1/volumeMounts/1/readOnly",
        flip,
    ),
    (
        "/spec/template/spec/containers/1/resources/requests/cpu",
        other_quantity,
    ),
    (
        "/spec/template/spec/containers/1/imagePullPolicy",
        other_string,
    ),
    (
        "/spec/template/spec/initContainers/0/command/1",
        other_string,
    ),
    ("/spec/template/spec/volumes/0/configMap/name", other_string),
    (
        "/spec/template/spec/volumes/1/persistentVolumeClaim/claimName",
        other_string,
    ),
];

#[test]
fn init_container_order_is_intent() {
    let mut d = fixture("deploy-multi-container");
    let original = hash(&d);
    let inits = array_at(&mut d, "/spec/template/spec/initContainers");
    let mut second = inits[0].clone();
    second["name"] = json!("second");
    inits.insert(0, second);
    let one_order = hash(&d);
    array_at(&mut d, "/spec/template/spec/initContainers").swap(0, 1);
    assert_ne!(one_order, hash(&d));
    assert_ne!(original, one_order);
}

#[test]
fn template_annotations_and_server_allocated_fields_are_not_intent() {
    let mut svc = fixture("svc-nodeport-named");
    let before = hash(&svc);
    svc["spec"]["clusterIP"] = json!("10.1.2.3");
    svc["spec"]["clusterIPs"] = json!(["10.1.2.3"]);
    svc["spec"]["ports"][0]["nodePort"] = json!(30001);
    svc["spec"]["ipFamilyPolicy"] = json!("PreferDualStack");
    svc["status"] = json!({"loadBalancer": {}});
    assert_eq!(before, hash(&svc));

    let mut d = fixture("deploy-minimal");
    let before = hash(&d);
    d["spec"]["template"]["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/restartedAt": "now"});
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    d["metadata"]["annotations"] = json!({"anything": "x"});
    assert_eq!(before, hash(&d));
}

// The comparison of intent known in full: the same properties, on the object itself.

fn compared(intent: &Value, live: &Value) -> Vec<String> {
    use tfdrift::core::compare::{Options, compare};
    use tfdrift::core::schema::builtin;
    let kind = tfdrift::core::kind::builtin(
        intent["apiVersion"].as_str().unwrap(),
        intent["kind"].as_str().unwrap(),
    )
    .unwrap();
    let schema = builtin::schema();
    compare(
        intent,
        live,
        schema,
        schema.def(kind.def).unwrap(),
        &Options::default(),
    )
    .iter()
    .map(ToString::to_string)
    .collect()
}

/// A Role as `kubernetes_role_v1` in the access fixture states it, and judged as a typed
/// resource: its rules' verbs, resources and groups are the provider's sets.
fn typed_role() -> tfdrift::intent::terraform::Instance {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/terraform/typed/access/state.tfstate");
    let read = tfdrift::intent::terraform::read(std::fs::read(path).unwrap()).unwrap();
    read.instances
        .into_iter()
        .find(|i| i.address == "kubernetes_role_v1.config_editor")
        .unwrap()
}

fn judged(instance: &tfdrift::intent::terraform::Instance, live: &Value) -> Vec<String> {
    use tfdrift::core::schema::builtin;
    let schema = builtin::schema();
    let root = schema.def("io.k8s.api.rbac.v1.Role").unwrap();
    tfdrift::intent::terraform::judge::changes(instance, live, schema, root, &Default::default())
        .iter()
        .map(ToString::to_string)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn permuting_keyed_lists_is_never_drift(seeds in proptest::collection::vec(proptest::collection::vec(any::<usize>(), 1..8), UNORDERED.len())) {
        let intent = rich_deployment();
        let mut live = intent.clone();
        for (pointer, seed) in UNORDERED.iter().rev().zip(seeds.iter().rev()) {
            permute(array_at(&mut live, pointer), seed);
        }
        prop_assert_eq!(compared(&intent, &live), Vec::<String>::new());
    }

    #[test]
    fn any_change_to_a_field_the_intent_sets_is_drift(field in 0usize..FIELDS.len(), salt in "[a-z0-9]{1,12}", n in 1i64..60000) {
        let intent = rich_deployment();
        let mut live = intent.clone();
        let (pointer, make) = FIELDS[field];
        let target = live.pointer_mut(pointer).unwrap();
        let new = make(target, &salt, n);
        prop_assume!(*target != new);
        *target = new;
        prop_assert!(!compared(&intent, &live).is_empty(), "change at {} not seen", pointer);
    }

    #[test]
    fn permuting_a_providers_set_is_never_drift(seed in proptest::collection::vec(any::<usize>(), 1..8)) {
        let role = typed_role();
        let mut live = role.object.clone();
        for rule in live["rules"].as_array_mut().unwrap() {
            for set in ["verbs", "resources", "apiGroups"] {
                if let Some(items) = rule.get_mut(set).and_then(Value::as_array_mut) {
                    permute(items, &seed);
                }
            }
        }
        prop_assert_eq!(judged(&role, &live), Vec::<String>::new());
    }

    #[test]
    fn a_verb_granted_behind_terraforms_back_is_drift(verb in "[a-z]{3,10}") {
        let role = typed_role();
        let mut live = role.object.clone();
        let verbs = live["rules"][0]["verbs"].as_array_mut().unwrap();
        prop_assume!(!verbs.contains(&json!(verb)));
        verbs.push(json!(verb));
        let changes = judged(&role, &live);
        prop_assert_eq!(changes, vec![format!("rules[0].verbs: + {verb}")]);
    }
}
