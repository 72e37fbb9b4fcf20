//! `tfdrift hash --tfstate` as a user runs it, on the project's own state fixture
//! (`tests/tfstate/fixtures.tfstate`: typed resources laid out as the Terraform Kubernetes
//! provider writes them, describing the objects of `tests/fixtures/`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tfdrift"))
}

fn state() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tfstate/fixtures.tfstate")
}

fn fixture(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kube-apiserver-v1.20.2")
        .join(case)
        .join(file)
}

fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The hash `tfdrift hash -f` gives a file.
fn hash_of(path: &Path) -> String {
    let out = run(&["hash", "-f", path.to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Every instance hashes as the fixture's manifest and the object the API server stored
/// for it: `(address, fixture case)`.
const CONTRACT: [(&str, &str); 8] = [
    (
        r#"module.app.kubernetes_deployment_v1.api["blue"]"#,
        "deploy-quantities-env",
    ),
    ("kubernetes_deployment.legacy[0]", "deploy-quantities-env"),
    ("kubernetes_deployment_v1.multi", "deploy-multi-container"),
    ("kubernetes_service_v1.nodeport", "svc-nodeport-named"),
    ("kubernetes_config_map_v1.cm", "cm-basic"),
    ("kubernetes_stateful_set_v1.db", "sts-basic"),
    ("kubernetes_daemon_set_v1.agent", "ds-basic"),
    ("kubernetes_manifest.headless", "svc-headless"),
];

#[test]
fn state_manifest_and_live_object_hash_the_same() {
    let out = run(&["hash", "--tfstate", state().to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split("  ").collect()).collect();
    assert_eq!(lines.len(), CONTRACT.len(), "{stdout}");
    for (address, case) in CONTRACT {
        let line = lines
            .iter()
            .find(|l| l[2] == address)
            .unwrap_or_else(|| panic!("{address} not in\n{stdout}"));
        let manifest = hash_of(&fixture(case, "manifest.yaml"));
        let live = hash_of(&fixture(case, "live.json"));
        assert_eq!(
            line[0], manifest,
            "{address}: state vs {case}/manifest.yaml"
        );
        assert_eq!(line[0], live, "{address}: state vs {case}/live.json");
        assert!(line[1].ends_with(&format!("/fixtures/{case}")), "{line:?}");
        // Every drifting edit of the live object hashes differently from the state.
        for entry in std::fs::read_dir(fixture(case, "")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("drift-") && name.ends_with(".json") {
                assert_ne!(hash_of(&path), line[0], "{address}: {case}/{name}");
            }
        }
    }
}

#[test]
fn skips_are_named_by_address_and_no_value_from_state_is_printed() {
    let out = run(
        &["hash", "--tfstate", "-"],
        &std::fs::read(state()).unwrap(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    for note in [
        "note: skipped kubernetes_secret_v1.creds: Secret/fixtures/creds is not a kind tfdrift hashes",
        "note: skipped data.kubernetes_namespace.fixtures: a data source",
        "note: skipped kubernetes_config_map_v1.tainted: tainted",
        "note: skipped kubernetes_config_map_v1.old: deposed object 0f1e2d3c",
    ] {
        assert!(stderr.contains(note), "{note} not in\n{stderr}");
    }
    let all = format!("{stderr}{}", text(&out.stdout));
    for secret in ["s3cr3t-in-state", "padded", "a=1"] {
        assert!(!all.contains(secret), "{secret} printed:\n{all}");
    }
}

#[test]
fn json_output_adds_the_address_and_gzip_is_read_as_is() {
    let plain = std::fs::read(state()).unwrap();
    let json = run(&["hash", "--tfstate", "-", "-o", "json"], &plain);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let entries: Vec<Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(entries.len(), CONTRACT.len());
    let first = &entries[0];
    assert_eq!(
        first["address"],
        r#"module.app.kubernetes_deployment_v1.api["blue"]"#
    );
    assert_eq!(first["kind"], "Deployment");
    assert_eq!(first["namespace"], "fixtures");
    assert_eq!(first["name"], "deploy-quantities-env");
    assert_eq!(first["hash"].as_str().unwrap().len(), 64);

    let text_plain = run(&["hash", "--tfstate", "-"], &plain);
    let text_gzip = run(&["hash", "--tfstate", "-"], &gzip(&plain));
    assert!(text_gzip.status.success(), "{}", text(&text_gzip.stderr));
    assert_eq!(text_plain.stdout, text_gzip.stdout);
}

#[test]
fn bad_states_are_refused_naming_the_file_and_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let plain = std::fs::read(state()).unwrap();
    let gz = gzip(&plain);
    let mut unnamed: Value = serde_json::from_slice(&plain).unwrap();
    unnamed["resources"][4]["instances"][0]["attributes"]["metadata"][0]["name"] = Value::from("");
    let cases: Vec<(PathBuf, &str)> = vec![
        (write("notjson.tfstate", b"<html>"), "not JSON"),
        (write("empty.json", b"{}"), "not a Terraform state"),
        (
            write("v3.tfstate", br#"{"version": 3, "modules": []}"#),
            "version 3 is not supported; tfdrift reads version 4",
        ),
        (
            write("cut.tfstate.gz", &gz[..gz.len() / 2]),
            "not a complete gzip stream",
        ),
        (
            write("unnamed.tfstate", unnamed.to_string().as_bytes()),
            "kubernetes_config_map_v1.cm: has no metadata.name",
        ),
        (dir.path().join("absent.tfstate"), "cannot read"),
    ];
    for (path, why) in cases {
        let out = run(&["hash", "--tfstate", path.to_str().unwrap()], b"");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", path.display());
        assert!(
            stderr.contains(&path.display().to_string()) && stderr.contains(why),
            "{}: want {why:?} in {stderr}",
            path.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_gzip_bomb_is_refused() {
    // 300 MiB of zeros inflate beyond the 256 MiB cap; compressed, about 300 KiB.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..300 {
        enc.write_all(&chunk).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let out = run(&["hash", "--tfstate", "-"], &bomb);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("larger than 256 MiB uncompressed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn ignore_rules_and_hpas_in_state_apply_as_for_manifests() {
    let mut state: Value = serde_json::from_slice(&std::fs::read(state()).unwrap()).unwrap();
    let hpa = serde_json::json!({
        "mode": "managed", "type": "kubernetes_horizontal_pod_autoscaler_v2", "name": "api",
        "provider": "provider[\"registry.terraform.io/hashicorp/kubernetes\"]",
        "instances": [{"schema_version": 0, "attributes": {
            "id": "fixtures/api",
            "metadata": [{"name": "api", "namespace": "fixtures"}],
            "spec": [{"max_replicas": 10, "min_replicas": 1, "scale_target_ref": [
                {"api_version": "apps/v1", "kind": "Deployment", "name": "deploy-multi-container"}]}]
        }}]
    });
    state["resources"].as_array_mut().unwrap().push(hpa);
    let input = state.to_string();
    let hashes = |args: &[&str]| {
        let mut all = vec!["hash", "--tfstate", "-"];
        all.extend_from_slice(args);
        let out = run(&all, input.as_bytes());
        assert!(out.status.success(), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    let (scaled, notes) = hashes(&[]);
    assert!(
        notes.contains("kubernetes_deployment_v1.multi: left out by ignore rules: replicas"),
        "{notes}"
    );
    let (unscaled, _) = hashes(&["--ignore-hpa-replicas=false"]);
    let line = |out: &str| {
        out.lines()
            .find(|l| l.ends_with("kubernetes_deployment_v1.multi"))
            .unwrap()
            .to_owned()
    };
    assert_ne!(line(&scaled), line(&unscaled));
    assert!(line(&unscaled).starts_with(&hash_of(&fixture("deploy-multi-container", "live.json"))));
}

/// Addresses are what `terraform state list` prints, whatever a `for_each` key holds: the real
/// `terraform` CLI lists the same state (skipped with a message where it is not on PATH).
#[test]
fn addresses_are_printed_as_terraform_state_list_prints_them() {
    let keys = [
        "plain",
        "a${b}",
        "p%{x}",
        "tab\there",
        "nbsp\u{a0}x",
        "zwj\u{200d}x",
        "q\"q",
        "b\\s",
        "emoji😀",
        "ctl\u{7}",
    ];
    let instances: Vec<Value> = keys
        .iter()
        .map(|k| {
            serde_json::json!({"index_key": k, "schema_version": 0, "attributes": {
                "metadata": [{"name": "c", "namespace": "default"}], "data": {"k": "v"}}})
        })
        .collect();
    let state = serde_json::json!({"version": 4, "terraform_version": "1.11.0", "serial": 1,
        "lineage": "l", "outputs": {}, "resources": [{"mode": "managed",
        "type": "kubernetes_config_map_v1", "name": "c",
        "provider": "provider[\"registry.terraform.io/hashicorp/kubernetes\"]",
        "instances": instances}]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("terraform.tfstate");
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    let out = run(
        &["hash", "--tfstate", path.to_str().unwrap(), "-o", "json"],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let entries: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut ours: Vec<String> = entries
        .iter()
        .map(|e| e["address"].as_str().unwrap().to_owned())
        .collect();
    ours.sort();
    let listed = match Command::new("terraform")
        .args(["state", "list", &format!("-state={}", path.display())])
        .current_dir(dir.path())
        .output()
    {
        Ok(out) if out.status.success() => text(&out.stdout),
        other => {
            eprintln!("skipped: terraform state list is not available here ({other:?})");
            return;
        }
    };
    let mut theirs: Vec<String> = listed.lines().map(str::to_owned).collect();
    theirs.sort();
    assert_eq!(ours, theirs);
}
