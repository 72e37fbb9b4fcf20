//! Build identity: the commit this binary was built from, for `tfdrift --version` and the
//! `tfdrift_build_info` metric. `TFDRIFT_GIT_COMMIT` wins (the image build has no `.git`);
//! otherwise git is asked; otherwise "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=TFDRIFT_GIT_COMMIT");
    let commit = std::env::var("TFDRIFT_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
                .filter(|c| !c.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    if std::path::Path::new(".git/HEAD").exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        println!("cargo:rerun-if-changed=.git/refs/heads");
    }
    println!("cargo:rustc-env=TFDRIFT_GIT_COMMIT={commit}");
}
