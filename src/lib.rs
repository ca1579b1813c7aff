//! ipamclaim-webhook: Kubernetes admission (validation and defaulting) for `IPAMClaim`.
#![forbid(unsafe_code)]

pub mod admission;
pub mod defaulting;
pub mod field;
pub mod ip;
pub mod replay;
pub mod strict;
pub mod types;
pub mod validation;
