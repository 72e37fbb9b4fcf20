//! The operator runtime: one controller per kind over a label-selected watch, the HPA
//! index, reconcile, events, metrics, leader election and the HTTP probes.

pub mod config;
pub(crate) mod controller;
pub(crate) mod events;
pub(crate) mod hpa;
pub(crate) mod http;
pub(crate) mod intents;
pub(crate) mod leader;
pub(crate) mod metrics;
pub(crate) mod plan;
pub(crate) mod reconcile;
pub mod run;
pub(crate) mod summary;
pub(crate) mod tfstate;
pub(crate) mod watch_index;
