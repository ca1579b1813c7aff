//! A view of the cluster's networks for `--check-networks` (DESIGN §10): what each
//! NetworkAttachmentDefinition says about the addresses of the network it defines.
//!
//! [`config`] reads one NAD's CNI config into the core's judge-ready rules (OVN-Kubernetes,
//! whereabouts, host-local); [`index`] is the plain index fed by events (apply, delete, a
//! whole re-list), keyed by the CNI network name; [`shared`] shares it between its writer and
//! the admission workers, and is what the core's
//! [`Networks`](crate::admission::rules::networks::Networks) lookup reads; [`watch`] turns the API
//! server's list-and-watch of NADs into index events.

pub mod config;
pub mod index;
pub mod shared;
pub mod watch;

pub use config::Nad;
pub use index::{Counts, Nads};
pub use shared::{SharedNetworks, Stats};
