//! Test helpers shared by unit tests: the fixtures of `tests/fixtures/`.

use std::path::{Path, PathBuf};

fn dirs(parent: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// Every fixture case (`tests/fixtures/<server>/<case>`) of every server.
pub fn fixture_cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    dirs(&root).iter().flat_map(|server| dirs(server)).collect()
}

/// A case's edited objects: the file name and path of every JSON file but `live.json`.
pub fn edits(case: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(case)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), p))
        .filter(|(name, _)| name.ends_with(".json") && name != "live.json")
        .collect();
    out.sort();
    out
}

/// The kind and raw JSON of a fixture file.
pub fn object(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}
