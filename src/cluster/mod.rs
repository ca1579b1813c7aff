//! The watched view of the cluster: for `--unique-addresses` (DESIGN §9), which claim holds
//! which address on which network; for `--check-networks` (DESIGN §10), what each network
//! says about its addresses ([`networks`]).
//!
//! [`index`] is a plain index fed by events (apply, delete, a reset that swaps in a whole
//! re-list) with reservations against races; it knows no HTTP. [`shared`] shares it between
//! its writer and the admission workers, and is what the core's
//! [`Holders`](crate::admission::rules::conflicts::Holders) lookup reads. [`watch`] turns the API
//! server's list-and-watch of IPAMClaims into index events; [`client`] runs it, and the watch
//! of networks, on one API client. [`leases`] makes what one replica admits hold across
//! replicas, with reservations in the API server.

pub mod client;
pub mod index;
pub mod leases;
pub mod networks;
pub mod shared;
pub mod watch;

pub use client::Views;
pub use index::{Claim, Claims, Index};
pub use shared::{Clock, ManualClock, SharedIndex, Stats, SystemClock, DEFAULT_RESERVATION_TTL};
