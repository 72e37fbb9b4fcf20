//! What drifted and who did it: every drifting mutation of the fixtures, applied with
//! kubectl to a fresh copy on the real API server, is explained in the DriftDetected event
//! with the diff line the fixture pair implies, and attributed to kubectl's field manager.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tfdrift::cli::manifest::Manifests;
use tfdrift::core::explain::diff;

use crate::operator::{event_note, wait_drifted};
use crate::support::{self, APISERVER, Operator, control_plane};

struct Case {
    kind: String,
    name: String,
    patch_type: String,
    patch: String,
    expected: String,
}

fn spec(path: &Path) -> Value {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    tfdrift::core::fingerprint::fingerprint_value(&v)
        .unwrap()
        .unwrap()
        .1
}

#[tokio::test]
async fn every_fixture_drift_is_explained_and_attributed() {
    let _shared = APISERVER.read().await;
    let cp = control_plane();
    let client = cp.client().await.unwrap();
    let ns = support::namespace(&client, "explain").await;
    let n = ns.name.clone();
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kube-apiserver-v1.20.2");
    let mut cases = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut patches: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("drift-")
                    && p.extension().is_some_and(|e| e == "patch")
            })
            .collect();
        patches.sort();
        for (i, patch_file) in patches.iter().enumerate() {
            let text = std::fs::read_to_string(patch_file).unwrap();
            let mut cols = text.trim_end().split('\t');
            let (patch_type, patch) = (
                cols.next().unwrap().to_owned(),
                cols.next().unwrap().to_owned(),
            );
            let expected = diff::summary(
                &diff::diff(
                    &spec(&dir.join("live.json")),
                    &spec(&patch_file.with_extension("json")),
                ),
                900,
            );
            // A fresh copy per mutation, annotated as a user would: `tfdrift hash --annotate`.
            let manifest = std::fs::read(dir.join("manifest.yaml")).unwrap();
            let mut m = Manifests::parse(&manifest).unwrap();
            let name = format!("{}-{i}", dir.file_name().unwrap().to_string_lossy());
            m.documents[0]["metadata"]["name"] = Value::String(name.clone());
            tfdrift::cli::hash::annotate(&mut m, true, &tfdrift::cli::hash::Ignore::none())
                .unwrap();
            cp.kubectl_stdin(&["apply", "-n", &n, "-f", "-"], &m.render().unwrap());
            let kind = m.documents[0]["kind"].as_str().unwrap().to_owned();
            cases.push(Case {
                kind,
                name,
                patch_type,
                patch,
                expected,
            });
        }
    }
    assert!(cases.len() >= 20, "{} drifting mutations", cases.len());
    let op = Operator::start(cp, "explain", &["--namespace", &n]);
    op.wait_ready().await;
    for c in &cases {
        if c.kind == "Deployment" || c.kind == "Service" {
            wait_drifted(&client, &n, &c.kind, &c.name, "false").await;
        }
    }
    support::next_second().await;
    for c in &cases {
        let resource = format!("{}/{}", c.kind.to_lowercase(), c.name);
        cp.kubectl(&[
            "patch",
            &resource,
            "-n",
            &n,
            "--type",
            &c.patch_type,
            "-p",
            &c.patch,
        ]);
    }
    for c in &cases {
        let note = event_note(&client, &n, &c.name, "DriftDetected").await;
        assert!(
            note.contains(&c.expected),
            "{}: expected {:?} in {note:?}",
            c.name,
            c.expected
        );
        assert!(
            note.contains("changed by kubectl-patch"),
            "{}: not attributed: {note:?}",
            c.name
        );
    }
    // The summary annotation says the same.
    let d = &cases.iter().find(|c| c.kind == "Deployment").unwrap();
    let summary = crate::operator::get(&client, &n, "Deployment", &d.name)
        .await
        .metadata
        .annotations
        .unwrap()["tfdrift.jin.dev/drift-summary"]
        .clone();
    assert!(summary.starts_with(&d.expected), "{summary}");
    ns.delete(&client).await;
}
