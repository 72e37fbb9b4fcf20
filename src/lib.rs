//! tfdrift: detects drift between what an applier (Terraform, kubectl, a GitOps tool)
//! intended for a Kubernetes object and what is live in the cluster.
//!
//! The layers, each depending only on those above it:
//! - [`core`]: pure logic — the comparison of intent known in full, schemas and the kind
//!   table, fingerprints, ignore rules, the drift explanation, the verdict table and the
//!   label/annotation contract. No kube client, no tokio.
//! - [`intent`]: where intent comes from — Terraform's state (every Kubernetes instance of it,
//!   and the `kubernetes` backend's Secrets). The spec-hash annotation and its baseline record
//!   are read where the operator caches an object (`operator/summary.rs`).
//! - [`cluster`]: what an API server serves — the client, discovery, its OpenAPI.
//! - [`operator`]: the runtime — watches, reconcile, events, metrics, leader election, probes.
//! - [`cli`]: the command line — arguments, `tfdrift hash`, `tfdrift check`, manifest reading.

#![deny(unsafe_code)]
#![warn(
    rust_2018_idioms,
    unused_qualifications,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::dbg_macro,
    clippy::todo
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod cluster;
pub mod core;
pub mod intent;
pub mod operator;
#[cfg(test)]
mod testing;
