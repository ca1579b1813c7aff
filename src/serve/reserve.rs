//! The admit path's step after the verdict with `--unique-addresses` and `--reservations
//! Leases` (DESIGN §9, "Across replicas"): what an admitted review newly gives its claim is
//! reserved in the API server before the answer says allowed.
//!
//! The in-memory reservations of the index come first ([`SharedIndex::review`]): a review that
//! another worker of this replica beat is already denied, without a call. Then:
//! - nothing to reserve (a dry run, a review that adds no address): the answer as it is;
//! - reserved: the answer as it is;
//! - an address held by another claim through its Lease: the review is judged again with that
//!   holder added to the index's, so that the denial reads exactly as a conflict found in the
//!   index (and `--enforcement` applies to it as to any verdict);
//! - the API server refused, failed or did not answer in time: refused with code 500 (fail
//!   closed), and the caller retries.
//!
//! A review refused here gives back its in-memory reservations too.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;
use tracing::{info, warn};

use crate::admission::rules::conflicts::{Claimant, Holder, Holders};
use crate::admission::{self, Enforcement, Options, Reviewed, Webhook};
use crate::cluster::leases::{
    self, Outcome, ReservationStore, Reserver, Settings, StartError, Worker,
};
use crate::cluster::shared::{self, SharedIndex};
use crate::serve::logs::Clipped;
use crate::serve::metrics::Metrics;
use crate::serve::server::UniqueAddresses;

/// The longest a review waits for its reservations; less when its own deadline is nearer. The
/// webhook configurations give the API server's call 5 s.
pub const MAX_RESERVATION_WAIT: Duration = Duration::from_secs(3);

/// What answering takes after the reservations, out of the request's deadline.
const ANSWER_MARGIN: Duration = Duration::from_millis(100);

/// The reservations across replicas of one server: with `--reservations Leases`, the handle
/// reviews reserve through, its thread, and the histogram of their wait.
#[derive(Default)]
pub struct Reservations {
    running: Option<(Arc<Reserver>, Histogram)>,
    _worker: Option<Worker>,
}

impl std::fmt::Debug for Reservations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservations")
            .field("leases", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

// === impl Reservations ===

impl Reservations {
    /// Starts what `unique` asks for (nothing with `--reservations Memory`), its metrics in
    /// `metrics`.
    pub fn start(
        unique: &UniqueAddresses,
        index: &Arc<SharedIndex>,
        metrics: &mut Metrics,
    ) -> Result<Self, StartError> {
        let ReservationStore::Leases { namespace } = &unique.reservations else {
            return Ok(Reservations::default());
        };
        let settings = Settings {
            credentials: unique.credentials.clone(),
            namespace: namespace.clone(),
            ttl: unique.reservation_ttl,
        };
        let (reserver, worker) = leases::start(settings, index.clone())?;
        info!(
            namespace = reserver.namespace(),
            "reservations across replicas: a Lease per address newly given to a claim"
        );
        let duration = metrics.watch_reservations(reserver.clone());
        Ok(Reservations {
            running: Some((reserver, duration)),
            _worker: Some(worker),
        })
    }

    /// What the admit path reserves through, if anything.
    pub fn handle(&self) -> Option<ReservationHandle> {
        self.running
            .as_ref()
            .map(|(reserver, duration)| ReservationHandle {
                reserver: reserver.clone(),
                duration: duration.clone(),
            })
    }
}

/// What the admit path reserves through.
#[derive(Clone, Debug)]
pub struct ReservationHandle {
    reserver: Arc<Reserver>,
    duration: Histogram,
}

/// The holders of the index, and the holders found through Leases for one review: judged
/// against it, a review found in conflict through a Lease is denied in the index's words.
#[derive(Debug)]
struct WithLeases {
    index: Arc<SharedIndex>,
    network: String,
    found: Vec<(IpAddr, Holder)>,
}

impl Holders for WithLeases {
    fn holder(&self, network: &str, ip: IpAddr, claimant: &Claimant<'_>) -> Option<Holder> {
        self.index.holder(network, ip, claimant).or_else(|| {
            (network == self.network)
                .then(|| {
                    self.found.iter().find(|(held, holder)| {
                        *held == ip
                            && !(holder.namespace == claimant.namespace
                                && holder.name == claimant.name)
                    })
                })
                .flatten()
                .map(|(_, holder)| holder.clone())
        })
    }
}

/// Reserves what `reviewed` newly gives its claim, within `left` of the request's deadline;
/// the answer to send (see the module's text).
pub async fn hold(
    handle: &ReservationHandle,
    index: &Arc<SharedIndex>,
    options: &Options,
    (body, webhook): (&[u8], Webhook),
    reviewed: Reviewed,
    left: Duration,
) -> Reviewed {
    let Some(admitted) = reviewed.admitted.as_ref().filter(|a| !a.dry_run) else {
        return reviewed;
    };
    if !admitted.addresses.iter().any(|a| a.judged) {
        return reviewed;
    }
    let wait = left.saturating_sub(ANSWER_MARGIN).min(MAX_RESERVATION_WAIT);
    let started = Instant::now();
    let keep_on_conflict = options.enforcement != Enforcement::Deny;
    let outcome = handle
        .reserver
        .reserve(admitted, keep_on_conflict, wait)
        .await;
    handle.duration.observe(started.elapsed().as_secs_f64());
    let uid = Clipped(&reviewed.summary.uid);
    match outcome {
        Ok(Outcome::Reserved) => reviewed,
        Ok(Outcome::Conflicts(found)) => {
            info!(
                uid = %uid,
                namespace = %Clipped(&admitted.namespace),
                name = %Clipped(&admitted.name),
                conflicts = found.len(),
                "an address is held through another replica's reservation: judged again"
            );
            let with_leases = WithLeases {
                index: index.clone(),
                network: admitted.network.clone(),
                found,
            };
            let options = Options {
                unique_addresses: Some(Arc::new(with_leases)),
                ..options.clone()
            };
            let admitted = admitted.clone();
            match admission::review(body, webhook, &options) {
                Ok(again) => {
                    if !again.summary.allowed {
                        index.release(&admitted);
                    }
                    again
                }
                // The body was judged once already: it cannot fail to decode now.
                Err(e) => {
                    index.release(&admitted);
                    let message =
                        format!("internal error: the review could not be judged again: {e}");
                    shared::refused(reviewed, &message)
                }
            }
        }
        Err(e) => {
            warn!(
                uid = %uid,
                namespace = %Clipped(&admitted.namespace),
                name = %Clipped(&admitted.name),
                error = %e,
                "the claim's addresses could not be reserved in the API server: refused with code 500 (fail closed)"
            );
            index.release(admitted);
            let message = format!(
                "internal error: the reservation of the claim's addresses could not be written \
                 ({}); refused (fail closed): retry",
                Clipped(&e.to_string())
            );
            shared::refused(reviewed, &message)
        }
    }
}
