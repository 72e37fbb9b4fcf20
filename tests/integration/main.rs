//! Integration tests on a real kube-apiserver + etcd (see support.rs). One control plane
//! for this whole binary; a fresh namespace per test.

mod check;
mod deploy;
mod explain;
mod faults;
mod helm;
mod ignore;
mod named;
mod operator;
mod smoke;
mod support;
mod terraform;
