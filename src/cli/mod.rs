//! The command line: arguments (`tfdrift run`, `tfdrift hash`), the `hash` command, and
//! reading manifests.

pub mod args;
pub mod hash;
pub mod manifest;
