//! The network index shared by its writer (the watch, or replay) and its readers (the
//! admission workers), with what it reports about itself; it is the core's
//! [`Networks`] lookup.
//!
//! Readers take a read lock for one hash lookup and an `Arc` clone; a re-list is collected apart
//! and swapped in under the write lock in one move.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::admission::rules::networks::{MisfitReason, Network, Networks};
use crate::cluster::client::{WatchRecord, Watched};
use crate::cluster::networks::config::Nad;
use crate::cluster::networks::index::{Counts, Nads};

/// What the network index reports about itself (for metrics and `/readyz`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// What the index holds.
    pub counts: Counts,
    /// Times the watch broke (and resumed or re-listed).
    pub watch_restarts: u64,
    /// Time since the watch last delivered an event or a full list, if it ever did.
    pub since_last_event: Option<Duration>,
    /// Whether the first full list is indexed.
    pub ready: bool,
    /// Addresses of reviewed claims found not to fit their network, by the rule they broke
    /// (in the order of [`MisfitReason::ALL`]).
    pub misfits: [u64; MisfitReason::ALL.len()],
}

/// The index of the cluster's networks, shared by the watch and the admission workers.
pub struct SharedNetworks {
    index: RwLock<Nads>,
    watch: WatchRecord,
    /// See [`Stats::misfits`].
    misfits: [AtomicU64; MisfitReason::ALL.len()],
}

// === impl SharedNetworks ===

impl SharedNetworks {
    /// An empty index, not ready until [`mark_ready`](Self::mark_ready).
    pub fn new() -> Self {
        SharedNetworks {
            index: RwLock::new(Nads::new()),
            watch: WatchRecord::default(),
            misfits: Default::default(),
        }
    }

    /// An index of `nads`, ready at once (replay's `--networks`, tests).
    pub fn of(nads: Nads) -> Self {
        let shared = SharedNetworks::new();
        shared.reset(nads);
        shared.mark_ready();
        shared
    }

    fn read(&self) -> RwLockReadGuard<'_, Nads> {
        // A panic under the lock leaves the index as the last complete step left it.
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Nads> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// See [`Nads::apply`]. The NAD was parsed before the lock is taken.
    pub fn apply(&self, nad: Nad) {
        self.write().apply(nad);
    }

    /// See [`Nads::delete`].
    pub fn delete(&self, namespace: &str, name: &str) -> bool {
        self.write().delete(namespace, name)
    }

    /// Swaps in `nads`, built apart, so readers wait only for the swap. The index replaced is
    /// dropped after the lock is released.
    pub fn reset(&self, nads: Nads) {
        let old = std::mem::replace(&mut *self.write(), nads);
        drop(old);
    }

    /// Marks the first full list indexed; true the first time.
    pub fn mark_ready(&self) -> bool {
        self.watch.mark_ready()
    }

    /// Whether the first full list is indexed.
    pub fn is_ready(&self) -> bool {
        self.watch.is_ready()
    }

    /// Why `/readyz` must fail, or `None` when the index is ready.
    pub fn not_ready(&self) -> Option<String> {
        self.watch.not_ready("the network index")
    }

    /// What the index holds and how its watch goes.
    pub fn stats(&self) -> Stats {
        let counts = self.read().counts();
        Stats {
            counts,
            watch_restarts: self.watch.restarts(),
            since_last_event: self.watch.since_last_event(Instant::now()),
            ready: self.is_ready(),
            misfits: std::array::from_fn(|i| self.misfits[i].load(Ordering::Relaxed)),
        }
    }
}

impl Default for SharedNetworks {
    fn default() -> Self {
        SharedNetworks::new()
    }
}

impl Networks for SharedNetworks {
    fn network(&self, name: &str) -> Option<Arc<Network>> {
        self.read().network(name)
    }

    fn misfit(&self, reason: MisfitReason) {
        if let Some(at) = MisfitReason::ALL.iter().position(|r| *r == reason) {
            self.misfits[at].fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for SharedNetworks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the whole index: it may hold 10,000 networks.
        let counts = self.read().counts();
        f.debug_struct("SharedNetworks")
            .field("networks", &counts.networks)
            .field("nads", &counts.nads)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl Watched for SharedNetworks {
    fn watch(&self) -> &WatchRecord {
        &self.watch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nad(namespace: &str, name: &str, subnet: &str) -> Nad {
        let config = format!(
            r#"{{"name":"red","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"{subnet}","allowPersistentIPs":true}}"#
        );
        Nad::parse(namespace, name, Some(&config))
    }

    #[test]
    fn the_core_sees_what_the_writer_applied() {
        let shared = SharedNetworks::new();
        assert!(shared.not_ready().is_some());
        shared.apply(nad("ns1", "a", "10.0.0.0/24"));
        let red = shared.network("red").expect("red");
        assert_eq!(red.subnet_prefix("10.0.0.9".parse().unwrap()), Some(24));
        assert!(shared.delete("ns1", "a"));
        assert!(shared.network("red").is_none());
        // A view handed out before a change stays whole.
        assert_eq!(red.name(), "red");
    }

    #[test]
    fn a_reset_swaps_the_whole_index_and_readiness_is_marked_once() {
        let shared = SharedNetworks::new();
        shared.apply(nad("ns1", "a", "10.0.0.0/24"));
        shared.reset([nad("ns2", "b", "10.1.0.0/24")].into_iter().collect());
        let red = shared.network("red").expect("red");
        assert_eq!(red.namespaces().len(), 1);
        assert_eq!(&*red.namespaces()[0], "ns2");
        assert!(shared.mark_ready());
        assert!(!shared.mark_ready());
        assert_eq!(shared.not_ready(), None);
        assert_eq!(shared.stats().counts.networks, 1);
    }

    #[test]
    fn counts_misfits_by_reason() {
        let shared = SharedNetworks::new();
        shared.misfit(MisfitReason::Gateway);
        shared.misfit(MisfitReason::Gateway);
        shared.misfit(MisfitReason::NotInSubnets);
        let misfits = shared.stats().misfits;
        let at = |r| MisfitReason::ALL.iter().position(|x| *x == r).unwrap();
        assert_eq!(misfits[at(MisfitReason::Gateway)], 2);
        assert_eq!(misfits[at(MisfitReason::NotInSubnets)], 1);
        assert_eq!(misfits.iter().sum::<u64>(), 3);
    }

    #[test]
    fn readiness_says_why_the_watch_is_blocked() {
        let shared = SharedNetworks::new();
        Watched::watch(&shared).blocked_because(Some("forbidden to list x".to_owned()));
        assert_eq!(
            shared.not_ready().unwrap(),
            "the network index cannot be built: forbidden to list x"
        );
        Watched::watch(&shared).blocked_because(None);
        assert!(shared.not_ready().unwrap().contains("not complete"));
    }
}
