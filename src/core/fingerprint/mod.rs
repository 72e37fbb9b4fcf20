//! Canonical fingerprints: the fields of an object that express intent, normalised so
//! that a manifest and the object the API server stored for it (after defaulting) give
//! the same value, serialised as compact JSON and hashed with SHA-256.
//!
//! The rules are in docs/fingerprint.md. A fingerprint is pure: no I/O, no clock. This is
//! the spec-hash contract of five kinds; any kind is compared on its whole intent by
//! [`crate::core::compare`]. A kind of this contract is a file implementing [`Fingerprint`],
//! a line in [`for_each_kind!`](crate::for_each_kind) (from which `tfdrift hash`, `--kinds` and
//! the controllers are generated), its shape in `core/ignore/schema.rs`, where its fields live
//! in `core/explain/attribution.rs`, and, for a kind an HPA scales, `core/ignore/scaled.rs`.

mod canonical;
mod configmap;
mod daemonset;
mod deployment;
mod pod;
pub mod quantity;
mod service;
mod statefulset;
mod value;

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub use quantity::{Quantity, QuantityError};
pub use value::{ValueError, fingerprint_value, hash_value, is_supported, spec_of};

/// Calls `$m!` with every supported kind as `Variant: Type => "Kind", "apiVersion"`.
/// The one registry of kinds: `tfdrift hash`'s dispatch, `--kinds` and the operator's
/// controllers are all generated from it.
#[macro_export]
macro_rules! for_each_kind {
    ($m:ident) => {
        $m! {
            Deployment: k8s_openapi::api::apps::v1::Deployment => "Deployment", "apps/v1";
            StatefulSet: k8s_openapi::api::apps::v1::StatefulSet => "StatefulSet", "apps/v1";
            DaemonSet: k8s_openapi::api::apps::v1::DaemonSet => "DaemonSet", "apps/v1";
            Service: k8s_openapi::api::core::v1::Service => "Service", "v1";
            ConfigMap: k8s_openapi::api::core::v1::ConfigMap => "ConfigMap", "v1";
        }
    };
}

macro_rules! kind_names {
    ($($variant:ident: $ty:ty => $kind:literal, $api:literal;)*) => {
        /// Every supported kind's name.
        pub const KINDS: &[&str] = &[$($kind,)*];
    };
}
crate::for_each_kind!(kind_names);

/// Why an object has no fingerprint.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error("invalid quantity at {path}")]
    Quantity {
        path: String,
        #[source]
        source: QuantityError,
    },
    #[error("{kind} has no spec")]
    MissingSpec { kind: &'static str },
    #[error("cannot serialise the {kind} fingerprint")]
    Serialize {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// A kind whose intent can be fingerprinted.
pub trait Fingerprint:
    k8s_openapi::Resource
    + kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The kind's canonical fingerprint: fixed field order, sorted maps.
    type Canonical: Serialize + Debug + PartialEq;

    /// The intent of `self`, with server defaults applied and server-allocated fields out.
    fn canonical(&self) -> Result<Self::Canonical, FingerprintError>;
}

#[derive(Serialize)]
struct Envelope<'a, C> {
    kind: &'a str,
    spec: &'a C,
}

/// The compact JSON that is hashed: `{"kind":…,"spec":…}`.
pub fn canonical_json<K: Fingerprint>(obj: &K) -> Result<Vec<u8>, FingerprintError> {
    let spec = obj.canonical()?;
    let kind = <K as k8s_openapi::Resource>::KIND;
    serde_json::to_vec(&Envelope { kind, spec: &spec })
        .map_err(|source| FingerprintError::Serialize { kind, source })
}

/// The canonical fingerprint as a JSON value (what the baseline record keeps and the
/// drift diff compares).
pub fn spec_value<K: Fingerprint>(obj: &K) -> Result<serde_json::Value, FingerprintError> {
    let kind = <K as k8s_openapi::Resource>::KIND;
    serde_json::to_value(obj.canonical()?)
        .map_err(|source| FingerprintError::Serialize { kind, source })
}

/// The hash of a fingerprint already turned into a JSON value by [`spec_value`]: the same
/// bytes are hashed (serde_json keeps struct field order), without canonicalising twice.
pub fn hash_spec(kind: &str, spec: &serde_json::Value) -> Result<String, FingerprintError> {
    let json = serde_json::to_vec(&Envelope { kind, spec }).map_err(|source| {
        FingerprintError::Serialize {
            kind: "spec",
            source,
        }
    })?;
    Ok(hex::encode(Sha256::digest(json)))
}

/// SHA-256 of the canonical fingerprint, 64 lowercase hex characters.
pub fn hash<K: Fingerprint>(obj: &K) -> Result<String, FingerprintError> {
    Ok(hex::encode(Sha256::digest(canonical_json(obj)?)))
}

/// Whether `s` has the form of a hash: 64 lowercase hex characters.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
