//! What an IPAMClaim is: the Rust types the CRD is generated from, and the borrowed views of
//! an object under review that the rules read.

pub mod types;
pub mod view;
