//! What every request handler shares: the pipeline's options, the limits, the budget, the
//! certificate, the metrics, the cluster views, and whether the server still reports ready.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::admission;
use crate::cluster::networks::SharedNetworks;
use crate::cluster::SharedIndex;
use crate::serve::budget::Budget;
use crate::serve::logs::LineBudget;
use crate::serve::metrics::Metrics;
use crate::serve::record::Recorder;
use crate::serve::reload::CertStore;
use crate::serve::reserve::ReservationHandle;

/// Whether `/readyz` reports ready; false once shutdown has begun.
#[derive(Clone, Debug)]
pub struct Readiness(Arc<AtomicBool>);

/// What every request handler shares.
pub struct State {
    /// The admission pipeline's settings.
    pub options: admission::Options,
    /// `--record-denied`: where denied reviews are written.
    pub recorder: Option<Recorder>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// The memory budget request bodies are read within.
    pub budget: Budget,
    /// Longest time to read a body and judge it.
    pub request_timeout: Duration,
    /// Whether `/readyz` reports ready.
    pub readiness: Readiness,
    /// The serving certificate, for `/readyz`.
    pub certs: Arc<CertStore>,
    /// The Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// `--unique-addresses`: the index reviews are judged against and reserve in.
    pub index: Option<Arc<SharedIndex>>,
    /// `--unique-addresses` with `--reservations Leases`: the reservations across replicas.
    pub reservations: Option<ReservationHandle>,
    /// `--check-networks`: the networks reviews are judged against (for `/readyz`; the
    /// pipeline reads them through its options).
    pub networks: Option<Arc<SharedNetworks>>,
    /// The lines requests may still write this second (`--request-log-limit`).
    pub lines: Arc<LineBudget>,
}

// === impl Readiness ===

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// Ready, until [`Readiness::shutting_down`].
    pub fn new() -> Self {
        Readiness(Arc::new(AtomicBool::new(true)))
    }

    /// Whether `/readyz` reports ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// From now on `/readyz` fails.
    pub fn shutting_down(&self) {
        self.0.store(false, Ordering::Release);
    }
}
