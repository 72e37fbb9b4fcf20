//! The fingerprint contract on objects real API servers stored (tests/fixtures/, see its
//! README): for every fixture of every server,
//! hash(manifest.yaml) == hash(live.json) == hash(same-*.json) != hash(drift-*.json).
//! A fixture folder dropped in is picked up without code changes.

use std::fs;
use std::path::{Path, PathBuf};

use tfdrift::cli::hash::hash_all;
use tfdrift::cli::manifest::Manifests;
use tfdrift::core::fingerprint::Quantity;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn servers() -> Vec<PathBuf> {
    let mut dirs: Vec<_> = fs::read_dir(root())
        .expect("tests/fixtures exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 2,
        "expected fixtures from at least two servers"
    );
    dirs
}

fn cases(server: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<_> = fs::read_dir(server)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn hash_file(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let manifests = Manifests::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let outcome = hash_all(&manifests, &tfdrift::cli::hash::Ignore::none())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        outcome.hashed.len(),
        1,
        "{}: expected one supported object",
        path.display()
    );
    outcome.hashed[0].hash.clone()
}

/// What the `.patch` beside a file says it expects: `drift` or `same` (third column).
fn expectation(json: &Path) -> Option<String> {
    let patch = json.with_extension("patch");
    let text = fs::read_to_string(patch).ok()?;
    text.trim_end().rsplit('\t').next().map(str::to_owned)
}

#[test]
fn every_fixture_holds_the_contract_on_every_server() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for server in servers() {
        let cases = cases(&server);
        assert!(!cases.is_empty(), "{} has no fixtures", server.display());
        for case in cases {
            let manifest = hash_file(&case.join("manifest.yaml"));
            let live = hash_file(&case.join("live.json"));
            if manifest != live {
                failures.push(format!(
                    "{}: manifest {manifest} != live {live}",
                    case.display()
                ));
            }
            let mut files: Vec<_> = fs::read_dir(&case)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for file in files {
                let name = file.file_name().unwrap().to_string_lossy().to_string();
                if !name.ends_with(".json") || name == "live.json" {
                    continue;
                }
                let h = hash_file(&file);
                let same = if name.starts_with("same-") {
                    true
                } else if name.starts_with("drift-") {
                    false
                } else {
                    panic!(
                        "{}: fixture files are same-*.json or drift-*.json",
                        file.display()
                    );
                };
                if let Some(exp) = expectation(&file) {
                    assert_eq!(
                        exp == "same",
                        same,
                        "{}: name and .patch disagree",
                        file.display()
                    );
                }
                if same && h != live {
                    failures.push(format!(
                        "{}: hash {h} != live {live} (should be the same)",
                        file.display()
                    ));
                }
                if !same && h == live {
                    failures.push(format!(
                        "{}: hash equals live (drift missed)",
                        file.display()
                    ));
                }
                checked += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "contract broken:\n{}",
        failures.join("\n")
    );
    assert!(checked >= 40, "only {checked} changed objects checked");
}

#[test]
fn hashing_the_spec_value_equals_hashing_the_object() {
    for server in servers() {
        for case in cases(&server) {
            let v: serde_json::Value =
                serde_json::from_slice(&fs::read(case.join("live.json")).unwrap()).unwrap();
            let (hash, spec) = tfdrift::core::fingerprint::fingerprint_value(&v)
                .unwrap()
                .unwrap();
            let kind = v["kind"].as_str().unwrap();
            assert_eq!(
                tfdrift::core::fingerprint::hash_spec(kind, &spec).unwrap(),
                hash,
                "{}",
                case.display()
            );
        }
    }
}

#[test]
fn one_manifest_hashes_the_same_on_every_server() {
    let servers = servers();
    for case in cases(&servers[0]) {
        let name = case.file_name().unwrap();
        let first = hash_file(&case.join("live.json"));
        for other in &servers[1..] {
            let path = other.join(name).join("live.json");
            if path.exists() {
                assert_eq!(first, hash_file(&path), "{name:?} differs between servers");
            }
        }
    }
}

#[test]
fn quantities_compare_by_value_as_the_server_stored_them() {
    let mut rows = 0;
    for server in servers() {
        let text = fs::read_to_string(server.join("quantities.tsv")).unwrap();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (input, stored) = line
                .split_once('\t')
                .unwrap_or_else(|| panic!("bad row {line:?}"));
            let a = Quantity::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let b = Quantity::parse(stored).unwrap_or_else(|e| panic!("{stored}: {e}"));
            assert_eq!(a, b, "{}: {input} and {stored} differ", server.display());
            rows += 1;
        }
    }
    assert!(rows > 50, "only {rows} quantity rows");
}
