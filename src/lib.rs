//! ipamclaim-webhook: Kubernetes admission (validation and defaulting) for `IPAMClaim`.
//!
//! The tree says the architecture:
//! - [`admission`]: the pure core. Review bytes in, review bytes out; no sockets, files or
//!   clocks. It never reaches the front ends below.
//! - [`serve`]: the HTTPS front end (`ipamclaim-webhook serve`) on the core.
//! - [`replay`]: the offline front end (`ipamclaim-webhook replay`) on the same core; it never
//!   reaches [`serve`].
//! - [`certs`]: development certificates (`ipamclaim-webhook certs`).
//!
//! The command line itself (`main.rs`, `cli.rs`) is the binary's, not the library's.
#![forbid(unsafe_code)]

pub mod admission;
pub mod certs;
pub mod cluster;
pub mod replay;
pub mod serve;
