//! ipamclaim-webhook: Kubernetes admission (validation and defaulting) for `IPAMClaim`.
#![forbid(unsafe_code)]

pub mod admission;
pub mod certs;
pub mod defaulting;
pub mod duration;
pub mod field;
pub mod head_timeout;
pub mod ip;
pub mod metrics;
pub mod record;
pub mod reload;
pub mod replay;
pub mod server;
pub mod strict;
pub mod tls;
pub mod types;
pub mod validation;
