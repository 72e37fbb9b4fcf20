//! Bounded fuzzing of the two parsers that take untrusted input (proptest; failures are
//! kept in tests/fuzz.proptest-regressions and replayed on every run).

use proptest::prelude::*;
use tfdrift::cli::manifest::Manifests;
use tfdrift::core::fingerprint::Quantity;

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn quantity_parser_never_panics(s in "[-+0-9.eEkMGTPKimnu ]{0,24}") {
        let _ = Quantity::parse(&s);
    }

    #[test]
    fn quantity_round_trips_through_its_canonical_spelling(int in 0u64..10_000_000, frac in 0u32..1000, suffix in prop::sample::select(vec!["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "n", "u", "e3", "e-2"])) {
        let s = format!("{int}.{frac:03}{suffix}");
        if let Ok(q) = Quantity::parse(&s) {
            prop_assert_eq!(Quantity::parse(&q.to_string()).unwrap(), q);
        }
    }

    #[test]
    fn manifest_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(m) = Manifests::parse(&bytes) {
            let _ = m.objects();
            let _ = tfdrift::cli::hash::hash_all(&m, &tfdrift::cli::hash::Ignore::none());
        }
    }

    #[test]
    fn manifest_parser_never_panics_on_yamlish_text(s in "[-:{}\\[\\],&*!|>'\"#%@` \\nakv0-9]{0,256}") {
        if let Ok(m) = Manifests::parse(s.as_bytes()) {
            let _ = m.objects();
            let _ = tfdrift::cli::hash::hash_all(&m, &tfdrift::cli::hash::Ignore::none());
        }
    }

    #[test]
    fn manifests_with_arbitrary_specs_never_panic(replicas in any::<i64>(), image in ".{0,40}", cpu in ".{0,12}", port in any::<i64>()) {
        let doc = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"replicas": replicas, "selector": {}, "template": {"spec": {"containers": [
                {"name": "c", "image": image, "ports": [{"containerPort": port}], "resources": {"limits": {"cpu": cpu}}}
            ]}}}
        });
        let m = Manifests::parse(doc.to_string().as_bytes()).unwrap();
        let _ = tfdrift::cli::hash::hash_all(&m, &tfdrift::cli::hash::Ignore::none());
    }
}

/// Every JSON pointer of the state fixture, for mutations.
fn pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                pointers(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn state_fixture() -> serde_json::Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tfstate/fixtures.tfstate");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn any_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z0-9_ ./:-]{0,12}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!([{}])),
        Just(json!([""])),
        Just(json!({"a": [1]})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn state_reader_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = tfdrift::intent::terraform::read(bytes);
    }

    #[test]
    fn state_reader_never_panics_on_a_mutated_state(pick in any::<prop::sample::Index>(), value in any_json()) {
        let mut state = state_fixture();
        let mut all = Vec::new();
        pointers(&state, String::new(), &mut all);
        let at = pick.get(&all).clone();
        if let Some(slot) = state.pointer_mut(&at) {
            *slot = value;
        }
        let defaults = tfdrift::core::ignore::Defaults::new(&[], &[], true).unwrap();
        let _ = tfdrift::cli::tfstate::hash_state("fuzz", state.to_string().into_bytes(), defaults);
    }
}
