//! The command line: arguments (`tfdrift run`, `hash`, `check`), the `hash` command (of
//! manifests and of Terraform state), the `check` command, and reading manifests.

pub mod args;
pub mod check;
pub mod hash;
pub mod helm;
pub mod manifest;
pub mod tfstate;
