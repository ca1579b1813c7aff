//! The memory budget: how `--memory-budget` is shared between the process, its connections and
//! the request bodies it holds, and the pool that admits a body only when it has room.
//!
//! The plan is plain arithmetic over measured sizes (README, "Memory"): a fixed part for the
//! process, a share per connection (TLS and HTTP buffers, and a small body, which every
//! connection may hold at once), a few connections waiting for room, and what is left for
//! larger bodies. A body larger than [`SMALL_BODY_BYTES`] is admitted by [`Budget::reserve`]
//! only when the pool has room for it and for judging it. Until then its connection is not
//! read (see `serve::gate`): at most [`MAX_WAITING`] bodies wait so, each for at most its
//! share of the request deadline, and the others are refused at once with 503 (a waiting
//! connection holds more than its share: the TLS record its head came in). Small bodies never
//! wait: the API server's reviews (a few KiB) keep flowing whatever large bodies do.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tracing::warn;

use crate::serve::metrics::BudgetGauges;
use crate::serve::record;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Default `--memory-budget`: 112 MiB, seven eighths of the Deployment's 128 MiB limit (the
/// rest is headroom for the allocator's fragmentation and what the plan does not count).
pub const DEFAULT_MEMORY_BUDGET: usize = 112 * MIB;
/// What the process holds with no connection at all (code, runtime, worker threads, TLS
/// config, metrics): about 9.5 MiB measured (release build), with room to spare, which also
/// holds the log's queue when it is full (at most about 2 MiB: `serve::logs::QUEUE_LINES`).
pub const BASE_BYTES: usize = 12 * MIB;
/// What an HTTP/1.1 connection holds at most, a small body included: rustls decrypts whole
/// TLS records (up to 16 KiB, chosen by the client) before handing up any of them, so a
/// connection that sent a request head in a large record holds about 37 KiB in rustls' buffers,
/// plus actix-http's 8 KiB read and 8 KiB write buffers and its state. Measured (release
/// build, 1,000 connections each): about 60 KiB waiting for room with 16 KiB records, 56 KiB
/// holding an 8 KB body.
pub const CONNECTION_BYTES: usize = 64 * KIB;
/// Bodies up to this size are never held back: every connection may hold one (it is part of
/// each connection's share), so the API server's usual reviews (2 to 6 KiB) never wait behind
/// large ones.
pub const SMALL_BODY_BYTES: usize = 8 * KIB;
/// HTTP/2 flow-control windows (per connection and per stream) with `--enable-http2`: what a
/// connection may have sent before its handlers read, added to its share (HTTP/2 bodies are all
/// charged to the pool, small or not: one connection carries many).
pub const H2_WINDOW_BYTES: u32 = 64 * 1024;
/// Judging a review takes memory beyond its body: up to about 4 times its size for reviews of
/// real shape (many labels: 3.8, many addresses: 4.2; a counting allocator over 4 to 7 MiB
/// reviews).
pub const JUDGE_FACTOR: usize = 4;
/// What a connection buffers while an admitted body streams in, beyond its own share: rustls
/// decrypts whole TLS records (up to 16 KiB each) ahead of what is read.
pub const STREAM_BYTES: usize = 32 * KIB;
/// A budget must hold at least this many connections (or `--max-connections`, if fewer).
pub const MIN_CONNECTIONS: usize = 16;
/// Bodies waiting for room at once; beyond them a body that finds no room is refused at once.
pub const MAX_WAITING: usize = 32;
/// What a connection waiting for room holds beyond its share: rustls decrypted the whole TLS
/// record its request head came in, so up to 16 KiB of body sit unread (about 73 KiB per
/// waiting connection measured against a 64 KiB share).
pub const WAITING_BYTES: usize = 16 * KIB;
/// What `--check-networks` plans for the network index within the budget. Measured (release
/// build, `CLAIMS=0 NADS=10000 RELISTS=8 cargo bench --bench unique_list`): 10,000
/// NetworkAttachmentDefinitions indexed add 13 MiB of RSS, and re-lists (each built beside the
/// index it replaces) settle 32 MiB above the idle server; 20 MiB covers that for about 6,000
/// NADs, and at 10,000 the rest comes out of the limit's 16 MiB of headroom. Beside the
/// `unique-addresses` component (budget 72 MiB) it leaves room for 71 connections; a larger
/// share would leave none. The index of IPAMClaims lives outside the budget (that component
/// lowers `--memory-budget` for it); this one is planned inside, so that the two components
/// compose without arithmetic on one flag.
pub const NETWORK_INDEX_BYTES: usize = 20 * MIB;
/// At most one log line per this long about bodies waiting or refused for the budget.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// How `--memory-budget` is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// `--memory-budget`.
    pub budget: usize,
    /// The process itself ([`BASE_BYTES`]).
    pub base: usize,
    /// One connection's share.
    pub per_connection: usize,
    /// Connections open at once: `--max-connections`, or fewer when the budget cannot hold
    /// that many.
    pub connections: usize,
    /// Denied reviews waiting to be written by `--record-denied` (0 without it).
    pub recording: usize,
    /// The cluster views planned within the budget: the network index of
    /// `--check-networks` ([`NETWORK_INDEX_BYTES`]; 0 without it).
    pub indexes: usize,
    /// Connections waiting for room, beyond their share ([`MAX_WAITING`] ×
    /// [`WAITING_BYTES`]).
    pub waiting: usize,
    /// What is left for bodies larger than [`SMALL_BODY_BYTES`] and for judging them: at
    /// least what the largest body is charged.
    pub bodies: usize,
}

/// Why a budget cannot work with the other limits.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The budget leaves room for too few connections once the largest body fits.
    #[error(
        "--memory-budget {budget} bytes is too small: the process ({base}), the --record-denied \
         queue ({recording}), the network index ({indexes}), the waiting requests ({waiting}) and one body of --max-body-bytes with its judging ({body}) leave \
         room for {fit} connections of {per_connection} bytes, fewer than {needed}; raise \
         --memory-budget or lower --max-body-bytes"
    )]
    TooSmall {
        /// `--memory-budget`.
        budget: usize,
        /// The process's share.
        base: usize,
        /// The `--record-denied` queue's share.
        recording: usize,
        /// The network index's share.
        indexes: usize,
        /// The waiting requests' share.
        waiting: usize,
        /// What the largest body is charged.
        body: usize,
        /// One connection's share.
        per_connection: usize,
        /// Connections that fit.
        fit: usize,
        /// Connections needed at least.
        needed: usize,
    },
}

/// The pool of room for request bodies, shared by every worker.
#[derive(Clone, Debug)]
pub struct Budget(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    plan: MemoryPlan,
    /// Bodies waiting for room now (at most [`MAX_WAITING`]).
    waiting: AtomicUsize,
    /// One permit per KiB of [`MemoryPlan::bodies`]; fair, so a large body waiting first is
    /// not starved by smaller ones arriving after it.
    pool: Arc<Semaphore>,
    gauges: BudgetGauges,
    waits: Every,
    refusals: Every,
}

/// Room held for one body until dropped (after its answer is built).
#[derive(Debug)]
#[must_use = "the room is given back when the grant is dropped"]
pub struct Grant {
    permit: Option<OwnedSemaphorePermit>,
    charged: usize,
    in_use: prometheus_client::metrics::gauge::Gauge,
}

/// No room for the body: the pool stayed full while it waited, or too many bodies wait already.
#[derive(Debug)]
pub struct Exhausted;

/// A log line at most once per period, counting the ones left out.
#[derive(Debug)]
struct Every {
    period: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

// === impl MemoryPlan ===

impl MemoryPlan {
    /// Shares `budget` between the process, at most `max_connections` connections (HTTP/2
    /// among them when `http2`), the `--record-denied` queue when `recording`, and bodies of
    /// at most `max_body` bytes. The largest body must fit; the connections get what is left,
    /// up to `max_connections`, and the bodies the rest. Refused when fewer than
    /// [`MIN_CONNECTIONS`] would fit.
    pub fn new(
        budget: usize,
        max_connections: usize,
        max_body: usize,
        http2: bool,
        recording: bool,
    ) -> Result<Self, BudgetError> {
        MemoryPlan::with_indexes(budget, max_connections, max_body, http2, recording, 0)
    }

    /// As [`MemoryPlan::new`], with `indexes` bytes of cluster views planned within the budget
    /// too (the network index of `--check-networks`).
    pub fn with_indexes(
        budget: usize,
        max_connections: usize,
        max_body: usize,
        http2: bool,
        recording: bool,
        indexes: usize,
    ) -> Result<Self, BudgetError> {
        let per_connection = CONNECTION_BYTES + if http2 { H2_WINDOW_BYTES as usize } else { 0 };
        let recording = if recording { record::QUEUE_BYTES } else { 0 };
        let waiting = MAX_WAITING * WAITING_BYTES;
        let body = charge(max_body);
        let fixed = BASE_BYTES
            .saturating_add(recording)
            .saturating_add(indexes)
            .saturating_add(waiting)
            .saturating_add(body);
        let fit = budget.saturating_sub(fixed) / per_connection;
        let needed = MIN_CONNECTIONS.min(max_connections);
        if fit < needed {
            return Err(BudgetError::TooSmall {
                budget,
                base: BASE_BYTES,
                recording,
                indexes,
                waiting,
                body,
                per_connection,
                fit,
                needed,
            });
        }
        let connections = max_connections.min(fit);
        Ok(MemoryPlan {
            budget,
            base: BASE_BYTES,
            per_connection,
            connections,
            recording,
            indexes,
            waiting,
            bodies: budget
                - BASE_BYTES
                - recording
                - indexes
                - waiting
                - connections * per_connection,
        })
    }
}

/// What a body of `len` bytes holds of the pool: itself, judging it, and the buffers it
/// streams through.
pub fn charge(len: usize) -> usize {
    len.saturating_mul(1 + JUDGE_FACTOR)
        .saturating_add(STREAM_BYTES)
}

// === impl Budget ===

impl Budget {
    /// A pool of `plan.bodies` bytes, reported through `gauges`.
    pub fn new(plan: MemoryPlan, gauges: BudgetGauges) -> Self {
        let permits = plan.bodies / KIB;
        gauges.size.set(to_i64(permits * KIB));
        gauges.in_use.set(0);
        Budget(Arc::new(Shared {
            plan,
            waiting: AtomicUsize::new(0),
            pool: Arc::new(Semaphore::new(permits.min(Semaphore::MAX_PERMITS))),
            gauges,
            waits: Every::new(LOG_EVERY),
            refusals: Every::new(LOG_EVERY),
        }))
    }

    /// The plan this pool was made from.
    pub fn plan(&self) -> MemoryPlan {
        self.0.plan
    }

    /// Room for a small body: covered by its connection's share, never waited for.
    pub fn small(&self) -> Grant {
        Grant {
            permit: None,
            charged: 0,
            in_use: self.0.gauges.in_use.clone(),
        }
    }

    /// Room for a body of `len` bytes (and for judging it), waiting at most `patience` for it
    /// (while it waits, the caller does not read the body), or refused at once when
    /// [`MAX_WAITING`] bodies wait already.
    pub async fn reserve(&self, len: usize, patience: Duration) -> Result<Grant, Exhausted> {
        let charged = charge(len);
        // Within u32 since `MemoryPlan::new` checked that the largest body fits the pool.
        let kib = u32::try_from(charged.div_ceil(KIB)).map_err(|_| Exhausted)?;
        let shared = &*self.0;
        let permit = match shared.pool.clone().try_acquire_many_owned(kib) {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(Exhausted),
            Err(TryAcquireError::NoPermits) => {
                let Some(waiting) = Waiting::enter(shared) else {
                    self.refused(len, Duration::ZERO);
                    return Err(Exhausted);
                };
                if let Some(suppressed) = shared.waits.ready() {
                    warn!(
                        body_bytes = len,
                        charged_bytes = charged,
                        in_use_bytes = shared.gauges.in_use.get(),
                        bodies_bytes = shared.plan.bodies,
                        waiting = waiting.count,
                        suppressed,
                        "request body waits for room in the memory budget; its connection is not read meanwhile"
                    );
                }
                let acquire = shared.pool.clone().acquire_many_owned(kib);
                match tokio::time::timeout(patience, acquire).await {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        drop(waiting);
                        self.refused(len, patience);
                        return Err(Exhausted);
                    }
                }
            }
        };
        let charged = kib as usize * KIB;
        shared.gauges.in_use.inc_by(to_i64(charged));
        Ok(Grant {
            permit: Some(permit),
            charged,
            in_use: shared.gauges.in_use.clone(),
        })
    }

    fn refused(&self, len: usize, waited: Duration) {
        let shared = &*self.0;
        if let Some(suppressed) = shared.refusals.ready() {
            warn!(
                body_bytes = len,
                status = 503,
                waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                waiting = shared.waiting.load(Ordering::Relaxed),
                in_use_bytes = shared.gauges.in_use.get(),
                bodies_bytes = shared.plan.bodies,
                suppressed,
                "request refused: no room in the memory budget for its body"
            );
        }
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One of the [`MAX_WAITING`] places in the queue for room, given back when dropped.
struct Waiting<'a> {
    shared: &'a Shared,
    /// Bodies waiting, this one included, when it entered.
    count: usize,
}

impl<'a> Waiting<'a> {
    fn enter(shared: &'a Shared) -> Option<Self> {
        let before = shared
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_WAITING).then_some(n + 1)
            })
            .ok()?;
        shared.gauges.waiting.inc();
        Some(Waiting {
            shared,
            count: before + 1,
        })
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
        self.shared.gauges.waiting.dec();
    }
}

// === impl Grant ===

impl Grant {
    /// Bytes of the pool this grant holds (0 for a small body).
    pub fn charged(&self) -> usize {
        self.charged
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            self.in_use.dec_by(to_i64(self.charged));
        }
    }
}

// === impl Every ===

impl Every {
    fn new(period: Duration) -> Self {
        Every {
            period,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last one)` when a line may be logged now.
    fn ready(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < self.period) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(bodies: usize) -> Budget {
        Budget::new(
            MemoryPlan {
                budget: bodies,
                base: 0,
                per_connection: 0,
                connections: 0,
                recording: 0,
                indexes: 0,
                waiting: 0,
                bodies,
            },
            BudgetGauges::default(),
        )
    }

    #[test]
    fn the_default_budget_fits_the_default_limits() {
        let plan = |http2, recording| {
            MemoryPlan::new(
                DEFAULT_MEMORY_BUDGET,
                crate::serve::DEFAULT_MAX_CONNECTIONS,
                crate::serve::DEFAULT_MAX_BODY_BYTES,
                http2,
                recording,
            )
            .expect("the defaults fit together")
        };
        let default = plan(false, false);
        assert_eq!(default.connections, crate::serve::DEFAULT_MAX_CONNECTIONS);
        assert!(default.bodies >= charge(crate::serve::DEFAULT_MAX_BODY_BYTES));
        for (http2, recording) in [(false, false), (true, false), (false, true), (true, true)] {
            let p = plan(http2, recording);
            assert_eq!(
                p.base
                    + p.connections * p.per_connection
                    + p.recording
                    + p.indexes
                    + p.waiting
                    + p.bodies,
                p.budget,
                "{p:?}"
            );
            assert!(
                p.bodies >= charge(crate::serve::DEFAULT_MAX_BODY_BYTES),
                "{p:?}"
            );
        }
    }

    #[test]
    fn the_network_index_is_planned_within_the_budget_at_the_connections_expense() {
        let without = MemoryPlan::new(72 * MIB, 1024, 7 * MIB, false, false).expect("fits");
        let with =
            MemoryPlan::with_indexes(72 * MIB, 1024, 7 * MIB, false, false, NETWORK_INDEX_BYTES)
                .expect("fits");
        assert_eq!(with.indexes, NETWORK_INDEX_BYTES);
        assert_eq!(
            without.connections - with.connections,
            NETWORK_INDEX_BYTES / CONNECTION_BYTES
        );
        assert!(with.bodies >= charge(7 * MIB));
        assert_eq!(
            with.base
                + with.connections * with.per_connection
                + with.indexes
                + with.waiting
                + with.bodies,
            with.budget
        );
        // Both components together (the unique-addresses one sets 72Mi) still hold dozens of
        // connections; a budget with no room left for the index is refused.
        assert_eq!(with.connections, 71, "{with:?}");
        assert!(MemoryPlan::with_indexes(
            56 * MIB,
            1024,
            7 * MIB,
            false,
            false,
            NETWORK_INDEX_BYTES
        )
        .is_err());
        assert!(MemoryPlan::new(56 * MIB, 1024, 7 * MIB, false, false).is_ok());
    }

    #[test]
    fn connections_get_what_the_largest_body_leaves() {
        // HTTP/2 connections take a larger share: fewer of them fit the same budget.
        let h1 = MemoryPlan::new(64 * MIB, 100_000, 7 * MIB, false, false).expect("fits");
        let h2 = MemoryPlan::new(64 * MIB, 100_000, 7 * MIB, true, false).expect("fits");
        assert!(h2.connections < h1.connections, "{h1:?} {h2:?}");
        assert!(h1.bodies >= charge(7 * MIB) && h1.bodies < charge(7 * MIB) + h1.per_connection);
        // Never more than asked for: the rest goes to bodies.
        let few = MemoryPlan::new(64 * MIB, 10, 7 * MIB, false, false).expect("fits");
        assert_eq!(few.connections, 10);
        assert_eq!(
            few.bodies,
            64 * MIB - BASE_BYTES - few.waiting - 10 * few.per_connection
        );
    }

    #[test]
    fn a_budget_without_room_for_the_largest_body_is_refused() {
        let err = MemoryPlan::new(32 * MIB, 1024, 7 * MIB, false, false).expect_err("too small");
        let text = err.to_string();
        assert!(
            text.contains("--memory-budget 33554432 bytes is too small"),
            "{text}"
        );
        assert!(text.contains("room for 0 connections"), "{text}");
        // Smaller bodies make it fit.
        assert!(MemoryPlan::new(32 * MIB, 1024, MIB, false, false).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_waits_for_room_and_gets_it_when_another_is_done() {
        let pool = budget(charge(MIB) + charge(MIB) / 2);
        let first = pool
            .reserve(MIB, Duration::from_secs(5))
            .await
            .expect("room");
        assert_eq!(
            pool.0.gauges.in_use.get(),
            to_i64(charge(MIB).div_ceil(KIB) * KIB)
        );
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.reserve(MIB, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiter.is_finished(), "admitted without room");
        assert_eq!(pool.0.gauges.waiting.get(), 1);
        drop(first);
        let second = waiter
            .await
            .expect("task")
            .expect("room once the first is done");
        assert_eq!(pool.0.gauges.waiting.get(), 0);
        drop(second);
        assert_eq!(pool.0.gauges.in_use.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_gets_room_is_refused_after_its_patience() {
        let pool = budget(charge(MIB));
        let _held = pool
            .reserve(MIB, Duration::from_secs(5))
            .await
            .expect("room");
        let started = tokio::time::Instant::now();
        assert!(pool.reserve(1, Duration::from_secs(3)).await.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert_eq!(pool.0.gauges.waiting.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_waiting_places_a_body_is_refused_at_once() {
        let pool = budget(charge(MIB));
        let _held = pool
            .reserve(MIB, Duration::from_secs(5))
            .await
            .expect("room");
        let waiters: Vec<_> = (0..MAX_WAITING)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.reserve(MIB, Duration::from_secs(60)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(pool.0.gauges.waiting.get(), MAX_WAITING as i64);
        let started = tokio::time::Instant::now();
        assert!(pool.reserve(1, Duration::from_secs(60)).await.is_err());
        assert_eq!(started.elapsed(), Duration::ZERO, "waited without a place");
        for waiter in waiters {
            waiter.abort();
            let _ = waiter.await;
        }
        assert_eq!(pool.0.gauges.waiting.get(), 0);
        assert_eq!(pool.0.waiting.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn small_bodies_hold_nothing_of_the_pool() {
        let pool = budget(charge(MIB));
        let _held = pool
            .reserve(MIB, Duration::from_secs(5))
            .await
            .expect("room");
        let small = pool.small();
        assert_eq!(small.charged(), 0);
        drop(small);
        assert_eq!(
            pool.0.gauges.in_use.get(),
            to_i64(charge(MIB).div_ceil(KIB) * KIB)
        );
    }

    #[test]
    fn log_lines_are_rate_limited_and_count_what_they_leave_out() {
        let every = Every::new(Duration::from_secs(3600));
        assert_eq!(every.ready(), Some(0));
        assert_eq!(every.ready(), None);
        assert_eq!(every.ready(), None);
        *every.last.lock().expect("lock") = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(every.ready(), Some(2));
    }
}
