//! Where intent comes from — what did the applier intend for this object?
//!
//! - Terraform's state ([`terraform`]): every Kubernetes instance of it (typed `kubernetes_*`
//!   resources, `kubernetes_manifest`, `kubectl_manifest`, the patch-style resources), with no
//!   label and no annotation on the object, and how each is judged.
//! - The spec-hash annotation and its baseline record on the object itself (the label
//!   opt-in) are not read here: the operator reads them as it caches an object
//!   (`operator/summary.rs`), `tfdrift hash --annotate` writes them (`cli/hash.rs`).

pub mod terraform;
