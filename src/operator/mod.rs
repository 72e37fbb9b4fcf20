//! The operator runtime: the spec-hash flow (one controller per fingerprinted kind over a
//! label-selected watch), the Terraform state and Helm release watches and the controllers of
//! the objects they name (one per kind they name), the HPA index, events, metrics, leader election and the HTTP
//! probes.

pub mod config;
pub(crate) mod controller;
pub(crate) mod events;
pub(crate) mod helm;
pub(crate) mod hpa;
pub(crate) mod http;
pub(crate) mod intents;
pub mod kinds;
pub(crate) mod leader;
pub(crate) mod metrics;
pub(crate) mod named;
pub(crate) mod plan;
pub(crate) mod reconcile;
pub mod run;
pub(crate) mod summary;
pub(crate) mod tfstate;
pub(crate) mod watch_index;
