//! State → object contract tests on the project's state fixtures.

use std::path::Path;

use serde_json::Value;

use super::*;

fn state(path: &str) -> Read {
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    read(bytes).unwrap()
}

fn fixture(case: &str) -> Value {
    crate::testing::object(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/kube-apiserver-v1.20.2")
            .join(case)
            .join("live.json"),
    )
}

/// The instances of `tests/tfstate/fixtures.tfstate` describe the objects of
/// `tests/fixtures/`: their fingerprints meet.
#[test]
fn typed_instances_fingerprint_as_the_objects_the_server_stored() {
    let read = state("tests/tfstate/fixtures.tfstate");
    for (address, case) in [
        ("kubernetes_deployment_v1.multi", "deploy-multi-container"),
        ("kubernetes_service_v1.nodeport", "svc-nodeport-named"),
        ("kubernetes_config_map_v1.cm", "cm-basic"),
        ("kubernetes_stateful_set_v1.db", "sts-basic"),
        ("kubernetes_daemon_set_v1.agent", "ds-basic"),
    ] {
        let instance = read
            .instances
            .iter()
            .find(|i| i.address == address)
            .unwrap_or_else(|| panic!("{address}"));
        let object = fingerprint_object(instance).unwrap();
        let (_, intent) = fingerprint::fingerprint_value(&object).unwrap().unwrap();
        let (_, live) = fingerprint::fingerprint_value(&fixture(case))
            .unwrap()
            .unwrap();
        let changes = crate::core::explain::diff::diff(&intent, &live);
        assert!(
            changes.is_empty(),
            "{address}: {:?}",
            changes.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
    }
}

/// Every instance of every state fixture of `tests/terraform/typed/` is read into an object,
/// with every attribute it holds either an API field or known to be the provider's own.
#[test]
fn every_fixture_instance_is_read_and_every_attribute_placed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/terraform/typed");
    let mut families = 0;
    let mut problems = Vec::new();
    for family in std::fs::read_dir(&root).unwrap() {
        let dir = family.unwrap().path();
        let Ok(bytes) = std::fs::read(dir.join("state.tfstate")) else {
            continue;
        };
        families += 1;
        let json = inflate(bytes).unwrap();
        for resource in state::resources(&json).unwrap() {
            for instance in &resource.instances {
                let address = resource.address(instance.index_key.as_ref());
                let attrs: Value =
                    serde_json::from_str(instance.attributes.unwrap().get()).unwrap();
                match typed::object(&resource.type_, &attrs) {
                    None => {}
                    Some(Err(e)) => problems.push(format!("{address}: {e}")),
                    Some(Ok(t)) if !t.unmapped.is_empty() => {
                        problems.push(format!("{address}: unmapped {:?}", t.unmapped))
                    }
                    Some(Ok(_)) => {}
                }
            }
        }
        let read = read(std::fs::read(dir.join("state.tfstate")).unwrap()).unwrap();
        for u in &read.unjudged {
            if let Why::Invalid(why) = &u.why {
                problems.push(format!("{}: {why}", u.address));
            }
        }
    }
    assert!(families >= 5, "{families}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn instance_of(path: &str, address: &str) -> Instance {
    state(path)
        .instances
        .into_iter()
        .find(|i| i.address == address)
        .unwrap_or_else(|| panic!("{address}"))
}

/// One `sources` block holding a config map and a secret is sent as two projections, the
/// secret first (`expandProjectedSources`), as a refreshed state's split form is.
#[test]
fn a_projected_volume_gets_one_projection_per_source_secrets_first() {
    let grouped = instance_of(
        "tests/terraform/typed/workloads/state.tfstate",
        "kubernetes_deployment.api",
    );
    let volumes = grouped.object["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    let site = volumes.iter().find(|v| v["name"] == "site").unwrap();
    let kinds: Vec<Vec<&str>> = site["projected"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_object().unwrap().keys().map(String::as_str).collect())
        .collect();
    assert_eq!(kinds, [["secret"], ["configMap"]], "{site}");
}

/// A ConfigMap key holding `""` is kept: the provider sends it and the server keeps it.
#[test]
fn a_config_map_key_holding_the_empty_string_is_intent() {
    let cm = instance_of(
        "tests/terraform/typed/core/state.tfstate",
        "kubernetes_config_map_v1.app_config",
    );
    assert_eq!(cm.object["data"]["EMPTY_FLAG"], "");
    let object = fingerprint_object(&cm).unwrap();
    let (_, spec) = fingerprint::fingerprint_value(&object).unwrap().unwrap();
    assert_eq!(spec["data"]["EMPTY_FLAG"], "");
}

/// HCL numbers and bools where the API wants strings are sent as strings; the state is read,
/// not refused.
#[test]
fn manifest_values_are_converted_as_the_provider_converts_them() {
    let cm = instance_of(
        "tests/terraform/typed/special/state.tfstate",
        "kubernetes_manifest.config",
    );
    assert_eq!(cm.object["data"]["max_items"], "100");
    assert_eq!(cm.object["data"]["enabled"], "true");
    assert_eq!(cm.object["data"]["max_bytes"], "1.073741824e+10");
    assert_eq!(cm.object["metadata"]["labels"]["version"], "2");
    assert!(fingerprint_object(&cm).is_some());
}

/// No value from the state is kept of a Secret: its data is digested.
#[test]
fn secret_data_from_state_is_kept_as_digests() {
    let s = instance_of(
        "tests/terraform/typed/core/state.tfstate",
        "kubernetes_secret_v1.app_creds",
    );
    let text = s.object.to_string();
    assert!(
        !text.contains("s3cr3t-Pa55-not-real") && !text.contains("5432"),
        "{text}"
    );
    for v in s.object["data"].as_object().unwrap().values() {
        assert!(crate::core::secret::is_digest(v.as_str().unwrap()), "{v}");
    }
}
