//! ipamclaim-webhook: Kubernetes admission (validation and defaulting) for `IPAMClaim`.
#![forbid(unsafe_code)]

pub mod admission;
pub mod certs;
pub mod defaulting;
pub mod field;
pub mod ip;
pub mod record;
pub mod replay;
pub mod server;
pub mod strict;
pub mod tls;
pub mod types;
pub mod validation;
