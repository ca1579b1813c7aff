//! Reservations that hold across replicas (DESIGN §9, "Across replicas"): for each address a
//! review newly gives a claim, a `coordination.k8s.io/v1` Lease named after the network and the
//! address, created in the API server before the review is answered allowed. etcd lets one
//! writer create a name, once, whichever replica it talks to.
//!
//! [`lease`] is the Lease itself (its name, what it says, as written and as read) and
//! [`decide`] the decisions about one, both pure; [`client`] makes the API calls and
//! [`reserver`] runs them for the admit path, on a thread of its own, and collects the Leases
//! once the index guards their addresses. The in-memory reservations of
//! [`SharedIndex`](crate::cluster::SharedIndex) stay the fast path in front of them.

pub mod client;
pub mod decide;
pub mod lease;
pub mod reserver;

pub use lease::ClaimRef;
pub use reserver::{
    start, Counts, Outcome, Request, ReserveError, Reserver, Settings, StartError, Worker,
};

/// Where `--unique-addresses` keeps the reservations of what it admits (`--reservations`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReservationStore {
    /// In Leases of the API server, in `namespace` (`--reservation-namespace`; the pod's own
    /// when `None`): they hold across replicas.
    Leases {
        /// The namespace of the Leases.
        namespace: Option<String>,
    },
    /// In this replica's memory alone: enough for a single replica, not for two.
    Memory,
}

impl Default for ReservationStore {
    /// Leases, in the pod's own namespace.
    fn default() -> Self {
        ReservationStore::Leases { namespace: None }
    }
}
