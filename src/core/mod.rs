//! The pure core: what an object's intent is, what may be left out of it, how two
//! fingerprints differ and who changed them, and what verdict follows. No I/O, no clock
//! reads beyond values passed in, no kube client, no tokio.

pub mod compare;
pub mod contract;
pub mod explain;
pub mod fingerprint;
pub mod ignore;
pub mod kind;
pub mod object;
pub mod schema;
pub mod secret;
pub mod text;
pub mod verdict;
