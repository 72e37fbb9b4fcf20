//! Where intent comes from — what did the applier intend for this object?
//!
//! - Terraform's state ([`terraform`]): every Kubernetes instance of it (typed `kubernetes_*`
//!   resources, `kubernetes_manifest`, `kubectl_manifest`, the patch-style resources), with no
//!   label and no annotation on the object, and how each is judged.
//! - Helm v3's release records ([`helm`]): every object of a release's latest deployed
//!   revision, and the release a `helm_release` instance of a state names.
//! - The spec-hash annotation and its baseline record on the object itself (the label
//!   opt-in) are not read here: the operator reads them as it caches an object
//!   (`operator/summary.rs`), `tfdrift hash --annotate` writes them (`cli/hash.rs`).

pub mod helm;
pub mod terraform;
