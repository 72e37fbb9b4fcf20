//! `tfdrift hash` as a user runs it: the built binary, real files and stdin.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tfdrift"))
}

fn fixture(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kube-apiserver-v1.20.2")
        .join(case)
        .join(file)
}

fn hash_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(["hash", "-f", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Write from a thread: a large input must not deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}
fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn file_hash(path: &Path) -> String {
    let out = bin().args(["hash", "-f"]).arg(path).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).split_whitespace().next().unwrap().to_owned()
}

#[test]
fn single_yaml_object_prints_hash_and_identity() {
    let out = bin()
        .args(["hash", "-f"])
        .arg(fixture("deploy-minimal", "manifest.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (hash, id) = text.trim_end().split_once("  ").unwrap();
    assert_eq!(hash.len(), 64);
    assert!(
        hash.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    // The manifest names no namespace.
    assert_eq!(id, "Deployment/deploy-minimal");
}

#[test]
fn live_json_names_its_namespace_and_matches_the_manifest() {
    let live = fixture("deploy-minimal", "live.json");
    let out = bin().args(["hash", "-f"]).arg(&live).output().unwrap();
    assert!(
        stdout(&out)
            .trim_end()
            .ends_with("  Deployment/fixtures/deploy-minimal")
    );
    assert_eq!(
        file_hash(&live),
        file_hash(&fixture("deploy-minimal", "manifest.yaml"))
    );
}

#[test]
fn multi_document_yaml_and_list_and_json_output() {
    let a = std::fs::read_to_string(fixture("deploy-minimal", "manifest.yaml")).unwrap();
    let b = std::fs::read_to_string(fixture("svc-clusterip", "manifest.yaml")).unwrap();
    let multi = format!("{a}\n---\n{b}\n---\n");
    let out = hash_stdin(&["-o", "json"], multi.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["kind"], "Deployment");
    assert_eq!(rows[0]["namespace"], Value::Null);
    assert_eq!(rows[1]["name"], "svc-clusterip");
    assert_eq!(
        rows[1]["hash"],
        file_hash(&fixture("svc-clusterip", "live.json"))
    );

    // A List as `kubectl get -o json` prints it.
    let items: Vec<Value> = ["deploy-minimal", "cm-basic"]
        .iter()
        .map(|c| serde_json::from_slice(&std::fs::read(fixture(c, "live.json")).unwrap()).unwrap())
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let out = hash_stdin(&[], list.to_string().as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<_> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].ends_with("Deployment/fixtures/deploy-minimal"));
    assert!(lines[1].ends_with("ConfigMap/fixtures/cm-basic"));
}

#[test]
fn annotate_round_trips() {
    for input in [
        std::fs::read(fixture("deploy-multi-container", "manifest.yaml")).unwrap(),
        std::fs::read(fixture("svc-nodeport-named", "live.json")).unwrap(),
    ] {
        let out = hash_stdin(&["--annotate"], &input);
        assert!(out.status.success(), "{}", stderr(&out));
        let annotated = stdout(&out);
        // Its output hashes to the annotation it carries...
        let again = hash_stdin(&["-o", "json"], annotated.as_bytes());
        assert!(again.status.success(), "{}", stderr(&again));
        let rows: Vec<Value> = serde_json::from_str(&stdout(&again)).unwrap();
        let docs = tfdrift::manifest::Manifests::parse(annotated.as_bytes()).unwrap();
        let obj = &docs.objects().unwrap()[0].value;
        assert_eq!(
            obj["metadata"]["annotations"]["tfdrift.jin.dev/spec-hash"],
            rows[0]["hash"]
        );
        // ...carries the opt-in label as the string "true"...
        assert_eq!(obj["metadata"]["labels"]["tfdrift.jin.dev/enabled"], "true");
        // ...and still describes the same object.
        let original = hash_stdin(&["-o", "json"], &input);
        let original: Vec<Value> = serde_json::from_str(&stdout(&original)).unwrap();
        assert_eq!(original[0]["hash"], rows[0]["hash"]);
    }
}

#[test]
fn unsupported_kinds_are_skipped_with_a_note() {
    let input = b"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n";
    let out = hash_stdin(&[], input);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1);
    assert!(
        stderr(&out).contains("skipped Secret/s"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn malformed_input_is_a_clear_error() {
    for (input, needle) in [
        (&b"apiVersion: v1\nkind: [unclosed\n"[..], "not valid YAML"),
        (b"{\"kind\": ", "not valid JSON"),
        (b"", "no documents"),
        (b"- just\n- a list\n", "document 1"),
        (b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: many}\n", "document 1 (Deployment/d)"),
        (b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers:\n      - name: c\n        resources: {limits: {cpu: lots}}\n", "containers[c].resources.limits.cpu"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ] {
        let out = hash_stdin(&[], input);
        assert_eq!(out.status.code(), Some(1), "input {:?}", String::from_utf8_lossy(input));
        assert!(stderr(&out).contains(needle), "{needle:?} not in {:?}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
}

#[test]
fn missing_file_names_the_file() {
    let out = bin()
        .args(["hash", "-f", "/nonexistent/x.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/x.yaml"));
}
