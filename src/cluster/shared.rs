//! The index shared by its writer (the watch, or replay) and its readers (the admission
//! workers), with the clock it reads reservations against and what it reports about itself.
//!
//! Readers take a read lock per lookup; a re-list is collected apart and swapped in under the
//! write lock in one move. [`SharedIndex::review`] is how `serve` judges with it: the review,
//! then the reservation of what it admitted, checked and made in one step, and the review
//! judged again when another worker reserved one of its addresses in between.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::debug;

use crate::admission::rules::conflicts::{Admitted, Claimant, Holder, Holders};
use crate::admission::{self, Enforcement, Options, RequestError, Reviewed, Webhook};
use crate::cluster::client::{WatchRecord, Watched};
use crate::cluster::index::{Claim, Claims, Index};

/// Default time a reservation holds an admitted address the watch has not shown yet.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(30);

/// How many times a review is judged again when its addresses were reserved meanwhile; past
/// it the review is refused (fail closed). A second verdict sees the reservation and denies,
/// so more than two rounds take reservations that vanish within microseconds.
const MAX_ROUNDS: usize = 4;

/// Where the time comes from: reservations expire against it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The monotonic clock of the system.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to, for tests that never sleep.
#[derive(Debug)]
pub struct ManualClock(Mutex<Instant>);

// === impl ManualClock ===

impl ManualClock {
    /// A clock standing at the current instant.
    pub fn new() -> Self {
        ManualClock(Mutex::new(Instant::now()))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the index reports about itself (the metrics of DESIGN §9).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Claims holding at least one address.
    pub claims: usize,
    /// (claim, network, address) entries.
    pub addresses: usize,
    /// Reservations running now.
    pub reservations: usize,
    /// Lookups that found an address held by another claim.
    pub conflicts: u64,
    /// Times the watch broke (and resumed or re-listed).
    pub watch_restarts: u64,
    /// Time since the watch last delivered an event or a full list, if it ever did.
    pub since_last_event: Option<Duration>,
    /// Whether the first full list is indexed.
    pub ready: bool,
}

/// The index of the cluster's claims, shared by the watch and the admission workers.
pub struct SharedIndex {
    index: RwLock<Index>,
    clock: Arc<dyn Clock>,
    /// When it was made: the time lookups pass when no reservation needs the clock.
    created: Instant,
    ttl: Duration,
    conflicts: AtomicU64,
    /// Times the write lock was taken: a verdict judged at one count whose reservation finds
    /// the same count saw the index as it is, and its lookups need not be made again.
    writes: AtomicU64,
    watch: WatchRecord,
}

// === impl SharedIndex ===

impl SharedIndex {
    /// An empty index on the system clock, holding reservations for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        SharedIndex::with_clock(ttl, Arc::new(SystemClock))
    }

    /// An empty index on `clock`.
    pub fn with_clock(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        SharedIndex {
            index: RwLock::new(Index::new()),
            created: clock.now(),
            clock,
            ttl,
            conflicts: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            watch: WatchRecord::default(),
        }
    }

    /// An index of `claims`, ready at once (replay's `--existing`, tests).
    pub fn of(claims: Claims) -> Self {
        let shared = SharedIndex::new(DEFAULT_RESERVATION_TTL);
        shared.reset(claims);
        shared.mark_ready();
        shared
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        // A panic under the lock leaves the index as the last complete step left it.
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.write_counted().0
    }

    /// The write lock, and how many times it had been taken before. Every change of the index
    /// is made under it, so an unchanged count means an unchanged index.
    fn write_counted(&self) -> (RwLockWriteGuard<'_, Index>, u64) {
        let index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        // Under the lock: counts and changes are ordered alike.
        let before = self.writes.fetch_add(1, Ordering::AcqRel);
        (index, before)
    }

    /// How many times the index has been written to: taken before a verdict, see
    /// [`SharedIndex::review`].
    fn writes(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    /// See [`Index::apply`].
    pub fn apply(&self, claim: Claim) {
        self.write().apply(claim);
    }

    /// See [`Index::delete`].
    pub fn delete(&self, namespace: &str, name: &str, uid: &str) -> bool {
        self.write().delete(namespace, name, uid)
    }

    /// See [`Index::reset`]: `claims` is built apart, so readers wait only for the swap. The
    /// index replaced is dropped after the lock is released.
    pub fn reset(&self, claims: Claims) {
        let old = self.write().reset(claims);
        drop(old);
    }

    /// Reserves what a review admitted (see [`Index::try_reserve`]).
    pub fn try_reserve(&self, admitted: &Admitted, check: bool) -> Result<(), Holder> {
        self.reserve_judged(admitted, check, None)
    }

    /// [`SharedIndex::try_reserve`] for a verdict judged when the index had been written
    /// `judged_at` times: when it has not been written since, what the verdict looked up is
    /// what the index holds, and the check is not made again.
    fn reserve_judged(
        &self,
        admitted: &Admitted,
        check: bool,
        judged_at: Option<u64>,
    ) -> Result<(), Holder> {
        let now = self.clock.now();
        let (mut index, writes) = self.write_counted();
        let check = check && judged_at != Some(writes);
        index.try_reserve(admitted, check, now, self.ttl)
    }

    /// Judges a review with this index and reserves what it admits: when another worker
    /// reserved one of its addresses between the verdict and the reservation, the review is
    /// judged again (and then denied naming that claim). A dry run reserves nothing.
    pub fn review(
        &self,
        body: &[u8],
        webhook: Webhook,
        opts: &Options,
    ) -> Result<Reviewed, RequestError> {
        // Under Warn and Audit a conflict is admitted anyway: reserve without checking.
        let check = opts.enforcement == Enforcement::Deny;
        // The verdict's lookups stand for the check only when it looked them up here.
        let judged_here = opts
            .unique_addresses
            .as_ref()
            .is_some_and(|view| std::ptr::addr_eq(Arc::as_ptr(view), self));
        let judged_at = || judged_here.then(|| self.writes());
        let mut seen = judged_at();
        let mut reviewed = admission::review(body, webhook, opts)?;
        for _ in 0..MAX_ROUNDS {
            // A dry run has no side effects: it reserves nothing.
            let Some(admitted) = reviewed.admitted.as_ref().filter(|a| !a.dry_run) else {
                return Ok(reviewed);
            };
            match self.reserve_judged(admitted, check, seen) {
                Ok(()) => return Ok(reviewed),
                Err(holder) => {
                    debug!(
                        uid = %reviewed.summary.uid,
                        holder = %holder,
                        "an address was reserved by another review meanwhile: judging again"
                    );
                    seen = judged_at();
                    reviewed = admission::review(body, webhook, opts)?;
                }
            }
        }
        Ok(fail_closed(reviewed))
    }

    /// Drops the in-memory reservations `admitted` made (see [`Index::release`]).
    pub fn release(&self, admitted: &Admitted) {
        self.write().release(admitted);
    }

    /// Whether the watch shows the claim `namespace/name` holding `ip` on `network`
    /// (reservations aside).
    pub fn holds(&self, namespace: &str, name: &str, network: &str, ip: IpAddr) -> bool {
        self.read().claims().holds(namespace, name, network, ip)
    }

    /// `replay`: what a document admitted becomes a claim of the index.
    pub fn record(&self, admitted: &Admitted) {
        self.apply(Claim::admitted(admitted));
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
        self.watch.not_ready("the IPAMClaim index")
    }

    /// What the index holds and how its watch goes.
    pub fn stats(&self) -> Stats {
        let now = self.clock.now();
        let (claims, addresses, reservations) = {
            let index = self.read();
            (
                index.claims().len(),
                index.claims().addresses(),
                index.reservations(now),
            )
        };
        Stats {
            claims,
            addresses,
            reservations,
            conflicts: self.conflicts.load(Ordering::Relaxed),
            watch_restarts: self.watch.restarts(),
            since_last_event: self.watch.since_last_event(now),
            ready: self.is_ready(),
        }
    }
}

impl Holders for SharedIndex {
    fn holder(&self, network: &str, ip: IpAddr, claimant: &Claimant<'_>) -> Option<Holder> {
        let index = self.read();
        // The clock is read only when a reservation may be compared with it.
        let now = if index.has_reservations() {
            self.clock.now()
        } else {
            self.created
        };
        let found = index.holder(network, ip, claimant, now);
        drop(index);
        if found.is_some() {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        found
    }
}

impl fmt::Debug for SharedIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the whole index: it may hold 100,000 claims.
        let stats = self.stats();
        f.debug_struct("SharedIndex")
            .field("claims", &stats.claims)
            .field("addresses", &stats.addresses)
            .field("reservations", &stats.reservations)
            .field("ready", &stats.ready)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The answer turned into a refusal with code 500: used only when a review could not reserve
/// its addresses after [`MAX_ROUNDS`] verdicts, which nothing but a bug should cause.
fn fail_closed(reviewed: Reviewed) -> Reviewed {
    refused(
        reviewed,
        "internal error: the claim's addresses could not be reserved; refused (fail closed)",
    )
}

/// The answer turned into a refusal with code 500 and reason `InternalError`, saying
/// `message`: the webhook fails closed, and the caller retries.
pub fn refused(mut reviewed: Reviewed, message: &str) -> Reviewed {
    if let Ok(mut answer) = serde_json::from_slice::<Value>(&reviewed.body) {
        if let Some(response) = answer.get_mut("response").and_then(Value::as_object_mut) {
            response.insert("allowed".to_owned(), Value::Bool(false));
            response.insert(
                "status".to_owned(),
                serde_json::json!({
                    "metadata": {},
                    "status": "Failure",
                    "message": message,
                    "reason": "InternalError",
                    "code": 500,
                }),
            );
            response.remove("auditAnnotations");
            if let Ok(body) = serde_json::to_vec(&answer) {
                reviewed.body = body;
            }
        }
    }
    reviewed.summary.allowed = false;
    reviewed.summary.would_deny = false;
    reviewed.summary.code = 500;
    reviewed.summary.causes = vec!["InternalError".to_owned()];
    reviewed.admitted = None;
    reviewed
}

impl Watched for SharedIndex {
    fn watch(&self) -> &WatchRecord {
        &self.watch
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    /// A CREATE of `ns/name` on network `red` requesting `ip`.
    fn create(uid: &str, ns: &str, name: &str, ip: &str, dry_run: bool) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "kind": "IPAMClaim"},
                "resource": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "resource": "ipamclaims"},
                "namespace": ns,
                "name": name,
                "operation": "CREATE",
                "dryRun": dry_run,
                "userInfo": {},
                "object": {
                    "apiVersion": "k8s.cni.cncf.io/v1alpha1",
                    "kind": "IPAMClaim",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"network": "red", "interface": "pod1", "ipRequests": [ip]},
                }
            }
        }))
        .expect("json")
    }

    fn options(index: &Arc<SharedIndex>) -> Options {
        Options {
            unique_addresses: Some(index.clone()),
            ..Options::default()
        }
    }

    fn answer(reviewed: &Reviewed) -> Value {
        serde_json::from_slice(&reviewed.body).expect("json")
    }

    #[test]
    fn an_admitted_review_reserves_and_a_dry_run_does_not() {
        let index = Arc::new(SharedIndex::new(DEFAULT_RESERVATION_TTL));
        let opts = options(&index);
        let dry = index
            .review(
                &create("u0", "ns1", "a", "10.0.0.5/24", true),
                Webhook::Validate,
                &opts,
            )
            .expect("answered");
        assert!(dry.summary.allowed);
        assert!(dry.admitted.expect("admitted").dry_run);
        assert_eq!(index.stats().reservations, 0);

        let a = index
            .review(
                &create("u1", "ns1", "a", "10.0.0.5/24", false),
                Webhook::Validate,
                &opts,
            )
            .expect("answered");
        assert!(a.summary.allowed);
        assert_eq!(index.stats().reservations, 1);
        let b = index
            .review(
                &create("u2", "ns1", "b", "10.0.0.5/16", false),
                Webhook::Validate,
                &opts,
            )
            .expect("answered");
        assert!(!b.summary.allowed);
        assert_eq!(
            answer(&b)["response"]["status"]["details"]["causes"][0]["message"],
            "Invalid value: \"10.0.0.5/16\": address 10.0.0.5 is already allocated to IPAMClaim \"a\" on network \"red\""
        );
        // The mutating webhook neither judges nor reserves.
        let m = index
            .review(
                &create("u3", "ns1", "c", "10.0.0.6/24", false),
                Webhook::Mutate,
                &opts,
            )
            .expect("answered");
        assert!(m.admitted.is_none());
        assert_eq!(index.stats().reservations, 1);
    }

    #[test]
    fn a_reservation_expires_on_the_clock() {
        let clock = Arc::new(ManualClock::new());
        let index = Arc::new(SharedIndex::with_clock(
            Duration::from_secs(30),
            clock.clone(),
        ));
        let opts = options(&index);
        let review = |uid: &str, name: &str| {
            index
                .review(
                    &create(uid, "ns1", name, "10.0.0.5", false),
                    Webhook::Validate,
                    &opts,
                )
                .expect("answered")
                .summary
                .allowed
        };
        assert!(review("u1", "a"));
        clock.advance(Duration::from_secs(29));
        assert!(!review("u2", "b"));
        clock.advance(Duration::from_secs(1));
        assert!(review("u3", "b"));
    }

    // Regression guard for check-then-reserve: both verdicts are taken before either reserves,
    // as two workers would; the second reservation must fail and its review be judged again.
    // The verdict's lookups stand for the reservation's check only while nothing was written
    // in between: a reservation made after the verdict is checked again.
    #[test]
    fn a_verdict_taken_before_another_reservation_is_checked_again() {
        let index = Arc::new(SharedIndex::new(DEFAULT_RESERVATION_TTL));
        let opts = options(&index);
        let judged_at = index.writes();
        let a = create("u1", "ns1", "a", "10.0.0.5/24", false);
        let b = create("u2", "ns1", "b", "10.0.0.5/24", false);
        let a = admission::review(&a, Webhook::Validate, &opts).expect("a");
        let b = admission::review(&b, Webhook::Validate, &opts).expect("b");
        let admitted = |r: &Reviewed| r.admitted.clone().expect("admits");
        assert_eq!(
            index.reserve_judged(&admitted(&a), true, Some(judged_at)),
            Ok(())
        );
        assert_eq!(
            index.reserve_judged(&admitted(&b), true, Some(judged_at)),
            Err(Holder {
                namespace: "ns1".to_owned(),
                name: "a".to_owned()
            })
        );
        // Judged after a's reservation, with nothing written since: the verdict stands.
        let judged_at = index.writes();
        let c = create("u3", "ns1", "c", "10.0.0.6/24", false);
        let c = admission::review(&c, Webhook::Validate, &opts).expect("c");
        assert_eq!(
            index.reserve_judged(&admitted(&c), true, Some(judged_at)),
            Ok(())
        );
    }

    #[test]
    fn of_two_reviews_judged_together_only_one_is_admitted() {
        let index = Arc::new(SharedIndex::new(DEFAULT_RESERVATION_TTL));
        let opts = options(&index);
        let a_body = create("u1", "ns1", "a", "10.0.0.5/24", false);
        let b_body = create("u2", "ns1", "b", "10.0.0.5/24", false);
        let a = admission::review(&a_body, Webhook::Validate, &opts).expect("a");
        let b = admission::review(&b_body, Webhook::Validate, &opts).expect("b");
        assert!(
            a.summary.allowed && b.summary.allowed,
            "both judged before either reserved"
        );
        assert_eq!(
            index.try_reserve(a.admitted.as_ref().expect("a admits"), true),
            Ok(())
        );
        let clash = index.try_reserve(b.admitted.as_ref().expect("b admits"), true);
        assert_eq!(
            clash,
            Err(Holder {
                namespace: "ns1".to_owned(),
                name: "a".to_owned()
            })
        );
        // What serve does on the clash: judge again, now denied.
        let again = index
            .review(&b_body, Webhook::Validate, &opts)
            .expect("b again");
        assert!(!again.summary.allowed);
    }

    #[test]
    fn of_many_concurrent_reviews_for_one_address_exactly_one_is_admitted() {
        const WORKERS: usize = 8;
        for round in 0..20 {
            let index = Arc::new(SharedIndex::new(DEFAULT_RESERVATION_TTL));
            let barrier = Arc::new(Barrier::new(WORKERS));
            let threads: Vec<_> = (0..WORKERS)
                .map(|i| {
                    let index = index.clone();
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        let opts = options(&index);
                        let body = create(
                            &format!("u{i}"),
                            "ns1",
                            &format!("c{i}"),
                            "fd00::5/64",
                            false,
                        );
                        barrier.wait();
                        index
                            .review(&body, Webhook::Validate, &opts)
                            .expect("answered")
                            .summary
                            .allowed
                    })
                })
                .collect();
            let admitted = threads
                .into_iter()
                .map(|t| t.join().expect("thread"))
                .filter(|allowed| *allowed)
                .count();
            assert_eq!(admitted, 1, "round {round}");
        }
    }

    #[test]
    fn warn_enforcement_admits_and_still_reserves() {
        let index = Arc::new(SharedIndex::new(DEFAULT_RESERVATION_TTL));
        let opts = Options {
            enforcement: Enforcement::Warn,
            ..options(&index)
        };
        for (uid, name) in [("u1", "a"), ("u2", "b")] {
            let r = index
                .review(
                    &create(uid, "ns1", name, "10.0.0.5", false),
                    Webhook::Validate,
                    &opts,
                )
                .expect("answered");
            assert!(r.summary.allowed);
        }
        assert_eq!(index.stats().reservations, 2);
    }

    #[test]
    fn failing_closed_refuses_with_500() {
        let index = Arc::new(SharedIndex::new(DEFAULT_RESERVATION_TTL));
        let opts = options(&index);
        let reviewed = admission::review(
            &create("u1", "ns1", "a", "10.0.0.5", false),
            Webhook::Validate,
            &opts,
        )
        .expect("answered");
        assert!(reviewed.summary.allowed);
        let refused = fail_closed(reviewed);
        let v = answer(&refused);
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["uid"], "u1");
        assert_eq!(v["response"]["status"]["code"], 500);
        assert!(!refused.summary.allowed);
        assert!(refused.admitted.is_none());
    }

    #[test]
    fn readiness_waits_for_the_first_list_and_names_a_refusal() {
        let index = SharedIndex::new(DEFAULT_RESERVATION_TTL);
        assert!(index.not_ready().expect("not ready").contains("first list"));
        Watched::watch(&index).blocked_because(Some("forbidden".to_owned()));
        assert!(index.not_ready().expect("not ready").contains("forbidden"));
        assert!(index.mark_ready());
        assert!(!index.mark_ready());
        assert_eq!(index.not_ready(), None);
    }
}
