//! Where intent comes from — what did the applier intend for this object?
//!
//! - The spec-hash annotation and its baseline record on the object itself (the label
//!   opt-in): read by the operator's summaries and `tfdrift hash --annotate`.
//! - Terraform's state ([`terraform`]): typed `kubernetes_*` resources and
//!   `kubernetes_manifest`, with no label and no annotation on the object.

pub mod terraform;
