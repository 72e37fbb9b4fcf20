//! tfdrift: detects drift between the intent recorded in a resource's
//! `tfdrift.jin.dev/spec-hash` annotation and what is live in the cluster.

pub mod attribution;
pub mod cache;
pub mod cli;
pub mod controller;
pub mod diff;
pub mod events;
pub mod fingerprint;
pub mod hash;
pub mod hpa;
pub mod ignore;
pub mod keys;
pub mod leader;
pub mod manifest;
pub mod metrics;
pub mod reconcile;
pub mod run;
pub mod server;
#[cfg(test)]
mod testing;
pub mod verdict;
