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
        let docs = tfdrift::cli::manifest::Manifests::parse(annotated.as_bytes()).unwrap();
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

/// Runs `tfdrift hash -f FILE` under a 2 GiB address-space limit and a 60 s deadline:
/// hostile input must give a clear error or a bounded answer, never a hang or an OOM.
fn hash_bounded(input: &[u8]) -> Output {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    std::fs::write(&path, input).unwrap();
    let mut cmd = bin();
    cmd.args(["hash", "-f"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit only affects the child about to exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    // Kills the child only if it is still running at the deadline: once it has been reaped
    // its pid may belong to another process.
    let (done, deadline) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if deadline
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_err()
        {
            // SAFETY: signalling our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    watchdog.join().unwrap();
    assert!(
        out.status.code().is_some(),
        "killed (hang or OOM): {:?}",
        out.status
    );
    out
}

#[test]
fn hostile_yaml_is_refused_clearly() {
    // Billion laughs: aliases expanding exponentially.
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (i, prev) in ('b'..='j').zip('a'..='i') {
        bomb.push_str(&format!(
            "{i}: &{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    let flow_deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let block_deep: String = (0..20_000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    let garbage: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for (name, input) in [
        ("alias bomb", bomb.into_bytes()),
        ("deep flow nesting", flow_deep.into_bytes()),
        ("deep block nesting", block_deep.into_bytes()),
        ("binary garbage", garbage),
    ] {
        let out = hash_bounded(&input);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("error: "),
            "{name}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn large_inputs_are_bounded() {
    // 50 MB of valid manifests: an answer or a clear error, within the limits above.
    let doc = std::fs::read_to_string(fixture("deploy-multi-container", "manifest.yaml")).unwrap();
    let mut big = String::new();
    while big.len() < 50_000_000 {
        big.push_str(&doc);
        big.push_str("\n---\n");
    }
    let out = hash_bounded(big.as_bytes());
    match out.status.code() {
        Some(0) => assert!(stdout(&out).lines().count() > 1000),
        Some(1) => assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out)),
        other => panic!("{other:?}: {}", stderr(&out)),
    }
    // Over the 64 MiB cap: refused before parsing.
    let out = hash_bounded(&vec![b' '; 70 * 1024 * 1024]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("limit"), "{}", stderr(&out));
}

const WEB: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1.25
        env: [{name: BUILD_ID, value: "7"}]
"#;

const WEB_HPA: &str = r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 5
"#;

fn first_hash(args: &[&str], input: &str) -> String {
    let out = hash_stdin(args, input.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).split_whitespace().next().unwrap().to_owned()
}

fn with_replicas(n: u32) -> String {
    WEB.replace("replicas: 3", &format!("replicas: {n}"))
}

#[test]
fn an_hpa_in_the_input_takes_replicas_out_of_its_target() {
    let alone = first_hash(&[], WEB);
    assert_ne!(
        alone,
        first_hash(&[], &with_replicas(4)),
        "replicas is intent"
    );
    let scaled = first_hash(&[], &format!("{WEB}---\n{WEB_HPA}"));
    let out = hash_stdin(&[], format!("{WEB}---\n{WEB_HPA}").as_bytes());
    assert!(
        stderr(&out)
            .contains("note: document 1: Deployment/web: left out by ignore rules: replicas"),
        "{}",
        stderr(&out)
    );
    assert_ne!(scaled, alone);
    assert_eq!(
        scaled,
        first_hash(&[], &format!("{}---\n{WEB_HPA}", with_replicas(4))),
        "under an HPA, replicas is not"
    );
    assert_eq!(
        first_hash(
            &["--ignore-hpa-replicas=false"],
            &format!("{WEB}---\n{WEB_HPA}")
        ),
        alone
    );
    // A side without a namespace (left to `kubectl apply -n`) matches any; two different
    // namespaces do not.
    let in_prod = |doc: &str| doc.replacen("  name: web\n", "  name: web\n  namespace: prod\n", 1);
    assert_eq!(
        first_hash(&[], &format!("{WEB}---\n{}", in_prod(WEB_HPA))),
        scaled
    );
    let in_dev = WEB.replacen("  name: web\n", "  name: web\n  namespace: dev\n", 1);
    assert_eq!(
        first_hash(&[], &format!("{in_dev}---\n{}", in_prod(WEB_HPA))),
        first_hash(&[], &in_dev)
    );
    // The same as the annotation would give.
    let annotated = WEB.replace(
        "  name: web\n",
        "  name: web\n  annotations: {tfdrift.jin.dev/ignore: replicas}\n",
    );
    assert_eq!(first_hash(&[], &annotated), scaled);
}

#[test]
fn flags_and_the_annotation_apply_the_same_rules() {
    let plain = first_hash(&[], WEB);
    let by_flag = first_hash(&["--ignore-paths", "env[BUILD_ID]"], WEB);
    assert_ne!(by_flag, plain);
    let other_build = WEB.replace("value: \"7\"", "value: \"8\"");
    assert_eq!(
        first_hash(&["--ignore-paths", "env[BUILD_ID]"], &other_build),
        by_flag
    );
    let annotated = WEB.replace(
        "  name: web\n",
        "  name: web\n  annotations: {tfdrift.jin.dev/ignore: \"env[BUILD_ID]\"}\n",
    );
    assert_eq!(first_hash(&[], &annotated), by_flag);
    // A live object hashes to its live-hash: the `ignored` annotation the operator wrote
    // is applied too.
    let live = WEB.replace(
        "  name: web\n",
        "  name: web\n  annotations: {tfdrift.jin.dev/ignored: \"env[BUILD_ID]\"}\n",
    );
    assert_eq!(first_hash(&[], &live), by_flag);
    // The default sidecar rules: an injected istio-proxy changes nothing, unless disabled.
    let meshed = format!("{WEB}      - name: istio-proxy\n        image: istio/proxyv2\n");
    assert_eq!(first_hash(&[], &meshed), plain);
    assert_ne!(first_hash(&["--ignore-containers="], &meshed), plain);
    assert_eq!(
        first_hash(
            &["--ignore-containers=sidecar"],
            &meshed.replace("istio-proxy", "sidecar")
        ),
        plain
    );
}

#[test]
fn invalid_rules_are_refused_with_the_reason() {
    let annotated = WEB.replace(
        "  name: web\n",
        "  name: web\n  annotations: {tfdrift.jin.dev/ignore: \"replicas, containers[app\"}\n",
    );
    let out = hash_stdin(&[], annotated.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("tfdrift.jin.dev/ignore"), "{err}");
    assert!(err.contains("`containers[app` is not a path"), "{err}");
    assert!(err.contains("Deployment/web"), "{err}");

    let out = hash_stdin(&["--ignore-paths", "replicaz"], WEB.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--ignore-paths: `replicaz` names nothing"),
        "{}",
        stderr(&out)
    );
    let out = hash_stdin(&["--ignore-containers", "a[0]"], WEB.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a container name"),
        "{}",
        stderr(&out)
    );
}

/// Whether no part of an error line (segments between `: `) is said twice.
fn said_once(line: &str) -> bool {
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let segments: Vec<&str> = line
        .split(": ")
        .map(str::trim)
        .filter(|s| s.len() > 3)
        .collect();
    segments.iter().enumerate().all(|(i, s)| {
        segments
            .iter()
            .enumerate()
            .all(|(j, t)| i == j || !(t.contains(s) || s.contains(t)))
    })
}

/// Each cause of an error is said once, whatever wraps it (issue: errors that repeated their
/// cause).
#[test]
fn errors_say_each_thing_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"version":4,"resources":[]}"#).unwrap();
    let gz = gz.finish().unwrap();
    let bad = dir.path().join("bad.gz");
    std::fs::write(&bad, &gz[..gz.len() / 2]).unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, br#"{"version":4,"resources":[]}"#).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "check".into(),
                "--tfstate".into(),
                state.display().to_string(),
                "--kubeconfig".into(),
                "/nonexistent".into(),
            ],
            "cannot read kubeconfig /nonexistent",
        ),
        (
            vec!["hash".into(), "--tfstate".into(), bad.display().to_string()],
            "not a complete gzip stream",
        ),
        (
            vec!["hash".into(), "-f".into(), "/nonexistent.yaml".into()],
            "cannot read /nonexistent.yaml",
        ),
        (
            vec!["run".into(), "--ignore-paths".into(), "containers[".into()],
            "--ignore-paths",
        ),
    ];
    for (args, expect) in cases {
        let out = bin().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = err
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{args:?}: no error line in {err}"));
        assert!(line.contains(expect), "{args:?}: {line}");
        assert!(said_once(line), "{args:?} repeats itself: {line}");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
}
