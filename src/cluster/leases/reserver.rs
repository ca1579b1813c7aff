//! The reservations across replicas at work: a thread of its own, with a small runtime, that
//! makes the Lease calls of the reviews sent to it and collects the Leases this replica knows
//! of, and the handle the admit path sends reviews through.
//!
//! A review's addresses are reserved each on its own, at once: create the address's Lease
//! (the common case: the address is new, one write); if it exists, read it and [`resolve`]
//! what it says; renew or take it over with an update conditioned on the resourceVersion read,
//! and read again when another writer won. A review that finds a conflict (under `Deny`), or
//! that stopped waiting, gets back the Leases it wrote: they are deleted at once.
//!
//! Every Lease this replica wrote or read is remembered, with what it says; a Lease of the
//! claim under review that is remembered and has more than half its time left admits without
//! a call (a claim's CREATE and its status updates give it the same address several times).
//! Every `ttl / 4` the remembered Leases are [`collect`]ed: deleted (conditioned on uid and
//! resourceVersion, so a Lease renewed or taken over meanwhile stays) once the index has shown
//! the holder holding the address for `ttl`, or `ttl` after it ran out with the holder not
//! holding it.
//! Any replica may delete a Lease it read: a 404 or 409 then only means another was first.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::admission::rules::conflicts::{Admitted, Holder};
use crate::cluster::client::{connect, Background, WatchError};
use crate::cluster::leases::client::{Changed, Created, LeaseClient};
use crate::cluster::leases::decide::{collect, resolve, Collect, Found, Known, Seen, Step};
use crate::cluster::leases::lease::{self, ClaimRef, Read};
use crate::cluster::shared::SharedIndex;
use crate::cluster::watch::Credentials;

/// Where the pod's service account says which namespace the pod runs in.
pub const POD_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Reviews waiting for the thread at most; past it a review is refused (fail closed) rather
/// than queued behind a stalled API server.
const QUEUE: usize = 1024;

/// API calls one address may take (creates, reads, updates) before it is given up: each
/// repeat means another writer changed the Lease in between.
const MAX_CALLS: usize = 8;

/// How long the calls for one address may take in all, long after the review stopped waiting:
/// an API server that never answers leaves no task behind for longer.
const CALLS_LIMIT: Duration = Duration::from_secs(60);

/// How the reservations reach the API server, and for how long they hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The credentials of the watch of claims.
    pub credentials: Credentials,
    /// `--reservation-namespace`; `None`: the pod's own ([`POD_NAMESPACE_FILE`]).
    pub namespace: Option<String>,
    /// `--reservation-ttl`: how long a Lease holds when its claim is never shown holding the
    /// address, and how long the index must show it before the Lease goes.
    pub ttl: Duration,
}

/// Why the reservations could not start; reported at start-up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No namespace was given and the process is not in a pod.
    #[error(
        "--unique-addresses keeps its reservations in Leases of the webhook's own namespace, and \
         none is known: set --reservation-namespace (IPAMCLAIM_WEBHOOK_RESERVATION_NAMESPACE; \
         in a pod, from the downward API), or run in a pod; --reservations Memory keeps them \
         in this replica alone, for a single replica"
    )]
    NoNamespace,
    /// The namespace is not a namespace name.
    #[error("--reservation-namespace {0:?} is not a namespace name (a DNS label: lowercase letters, digits and '-', at most 63)")]
    BadNamespace(String),
    /// The API client could not be built.
    #[error(transparent)]
    Connect(#[from] WatchError),
    /// The thread or its runtime could not be started.
    #[error("cannot start the reservations' thread")]
    Thread(#[source] std::io::Error),
}

/// What one review asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The claim under review.
    pub claim: ClaimRef,
    /// Its `spec.network`.
    pub network: String,
    /// The addresses the review newly gives it.
    pub addresses: Vec<IpAddr>,
    /// Whether the review is admitted even with a conflict (`--enforcement Warn|Audit`): then
    /// what it reserved stays reserved.
    pub keep_on_conflict: bool,
}

/// What the reservations came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every address is the claim's.
    Reserved,
    /// These addresses are held by these other claims, found through their Leases.
    Conflicts(Vec<(IpAddr, Holder)>),
}

/// Why a review's addresses could not be reserved: it must be refused (fail closed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// The API server did not answer in time.
    #[error("the API server did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The API server refused or failed a call.
    #[error("{0}")]
    Api(String),
    /// Too many reviews are waiting for the API server already.
    #[error("too many reservations are waiting for the API server")]
    Busy,
    /// The reservations have stopped (the server is shutting down).
    #[error("the reservations have stopped")]
    Stopped,
}

/// The counts of the reservations (DESIGN §9 metrics).
#[derive(Debug, Default)]
pub struct Stats {
    created: AtomicU64,
    renewed: AtomicU64,
    taken_over: AtomicU64,
    collected: AtomicU64,
    released: AtomicU64,
    conflicts: AtomicU64,
    timeouts: AtomicU64,
    api_errors: AtomicU64,
    collect_errors: AtomicU64,
}

/// A reading of [`Stats`], and how many Leases this replica knows of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Leases created: addresses newly reserved.
    pub created: u64,
    /// Leases of the claim under review renewed.
    pub renewed: u64,
    /// Run-out Leases of claims that never held their address, taken over.
    pub taken_over: u64,
    /// Leases deleted by collection.
    pub collected: u64,
    /// Leases deleted because the review that wrote them was refused after all.
    pub released: u64,
    /// Addresses found held by another claim through its Lease (the catches across replicas).
    pub conflicts: u64,
    /// Reviews refused because the API server did not answer in time.
    pub timeouts: u64,
    /// Reviews refused because the API server refused or failed a call (or too many waited).
    pub api_errors: u64,
    /// Calls of the collection that failed (retried at the next round).
    pub collect_errors: u64,
    /// Leases this replica knows of and will collect.
    pub known: usize,
}

/// What this replica knows of one Lease.
#[derive(Clone, Debug)]
struct Entry {
    /// Its name ([`lease::name`] of its network and address).
    name: String,
    read: Read,
    /// Since when the index has shown the holder holding the address, while it does.
    shown_since: Option<Instant>,
}

/// The Leases this replica wrote or read, by network and address: the admit path finds a
/// claim's remembered Leases without naming them (a SHA-256 each).
#[derive(Debug, Default)]
struct Remembered(Mutex<HashMap<Box<str>, HashMap<IpAddr, Entry>>>);

/// A remembered Lease due for a look by the collection: where it is and what it said.
struct Due {
    network: String,
    ip: IpAddr,
    entry: Entry,
    /// How long the index has shown its holder holding the address.
    shown_for: Option<Duration>,
}

// === impl Remembered ===

impl Remembered {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, HashMap<IpAddr, Entry>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers what the Lease `name` of `ip` on `network` says now; the grace period starts
    /// again when it changed.
    fn note(&self, name: &str, network: &str, ip: IpAddr, read: Read) {
        let mut known = self.lock();
        let by_ip = match known.get_mut(network) {
            Some(by_ip) => by_ip,
            None => known.entry(network.into()).or_default(),
        };
        match by_ip.get_mut(&ip) {
            Some(entry) if entry.read.resource_version == read.resource_version => {}
            Some(entry) => {
                entry.read = read;
                entry.shown_since = None;
            }
            None => {
                by_ip.insert(
                    ip,
                    Entry {
                        name: name.to_owned(),
                        read,
                        shown_since: None,
                    },
                );
            }
        }
    }

    /// Forgets the Lease of `ip` on `network`.
    fn forget(&self, network: &str, ip: IpAddr) {
        let mut known = self.lock();
        if let Some(by_ip) = known.get_mut(network) {
            by_ip.remove(&ip);
            if by_ip.is_empty() {
                known.remove(network);
            }
        }
    }

    /// Whether the Lease of every address of `addresses` on `network` is known to be the
    /// claim `namespace/name` of `uid`'s, with more than half of `ttl` left.
    fn fresh(
        &self,
        network: &str,
        mut addresses: impl Iterator<Item = IpAddr>,
        (namespace, name, uid): (&str, &str, &str),
        now: Timestamp,
        ttl: Duration,
    ) -> bool {
        let half = now.saturating_add(ttl / 2).unwrap_or(Timestamp::MAX);
        let known = self.lock();
        let Some(by_ip) = known.get(network) else {
            return false;
        };
        addresses.all(|ip| {
            by_ip.get(&ip).is_some_and(|e| {
                e.read.expires >= half
                    && e.read
                        .holder
                        .as_ref()
                        .is_some_and(|h| h.is_incarnation(namespace, name, uid))
            })
        })
    }

    /// How many Leases are remembered.
    fn len(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    /// Every remembered Lease, with how long the index has shown its holder holding its
    /// address (noted now, under the lock; the collection's calls are made without it).
    fn due(&self, index: &SharedIndex, now: Instant) -> Vec<Due> {
        let mut known = self.lock();
        let mut due = Vec::new();
        for (network, by_ip) in known.iter_mut() {
            for (&ip, entry) in by_ip.iter_mut() {
                let shown =
                    index_sees(index, entry.read.holder.as_ref(), network, ip) == Seen::Holding;
                entry.shown_since = if shown {
                    Some(entry.shown_since.unwrap_or(now))
                } else {
                    None
                };
                due.push(Due {
                    network: network.to_string(),
                    ip,
                    entry: entry.clone(),
                    shown_for: entry.shown_since.map(|since| now.duration_since(since)),
                });
            }
        }
        due
    }
}

/// The handle the admit path reserves through; cheap to share.
pub struct Reserver {
    jobs: mpsc::Sender<Job>,
    known: Arc<Remembered>,
    stats: Arc<Stats>,
    ttl: Duration,
    namespace: String,
}

impl fmt::Debug for Reserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reserver")
            .field("namespace", &self.namespace)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// One review's request and where its answer goes.
struct Job {
    request: Request,
    reply: oneshot::Sender<Result<Outcome, String>>,
}

/// The running thread; dropping it stops the thread and waits for it.
pub type Worker = Background;

/// The namespace of the Leases: `configured`, else the pod's own from `pod_file`.
pub fn namespace(configured: Option<&str>, pod_file: &Path) -> Result<String, StartError> {
    let namespace = match configured {
        Some(ns) => ns.to_owned(),
        None => std::fs::read_to_string(pod_file)
            .map(|ns| ns.trim().to_owned())
            .map_err(|_| StartError::NoNamespace)?,
    };
    let b = namespace.as_bytes();
    let label = !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    if label {
        Ok(namespace)
    } else {
        Err(StartError::BadNamespace(namespace))
    }
}

/// Starts the reservations: the thread, its API client (a broken kubeconfig fails here) and
/// the collection. The API server is reached only by reviews and the collection.
pub fn start(
    settings: Settings,
    index: Arc<SharedIndex>,
) -> Result<(Arc<Reserver>, Worker), StartError> {
    let namespace = namespace(settings.namespace.as_deref(), Path::new(POD_NAMESPACE_FILE))?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), StartError>>();
    let (stop_tx, stop_rx) = oneshot::channel();
    let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE);
    let known = Arc::new(Remembered::default());
    let stats = Arc::new(Stats::default());
    let reserver = Arc::new(Reserver {
        jobs: jobs_tx,
        known: known.clone(),
        stats: stats.clone(),
        ttl: settings.ttl,
        namespace: namespace.clone(),
    });
    let thread = std::thread::Builder::new()
        .name("ipamclaim-reservations".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(StartError::Thread(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let client = match connect(&settings.credentials).await {
                    Ok(client) => {
                        let _ = ready_tx.send(Ok(()));
                        client
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let ctx = Arc::new(Ctx {
                    client: LeaseClient::new(client, &namespace),
                    namespace,
                    index,
                    known,
                    stats,
                    ttl: settings.ttl,
                });
                tokio::select! {
                    () = serve(ctx, jobs_rx) => {}
                    _ = stop_rx => debug!("reservations stopped"),
                }
            });
        })
        .map_err(StartError::Thread)?;
    let worker = Background::new(stop_tx, thread);
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((reserver, worker)),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            // The thread panicked before it started; `worker` joins it as it is dropped.
            Err(StartError::Thread(std::io::Error::other(
                "the reservations' thread ended before it started",
            )))
        }
    }
}

// === impl Reserver ===

impl Reserver {
    /// Reserves the addresses `admitted` newly gives its claim (those its verdict judged),
    /// waiting at most `timeout` for the API server; `keep_on_conflict`: the review is admitted
    /// even with a conflict (`--enforcement Warn|Audit`), and what it reserved stays reserved.
    ///
    /// When every one has a remembered Lease of the claim with more than half its time left
    /// (a claim's CREATE and its status updates give it the same address several times), it
    /// is reserved without a call, and without building the request for the thread.
    pub async fn reserve(
        &self,
        admitted: &Admitted,
        keep_on_conflict: bool,
        timeout: Duration,
    ) -> Result<Outcome, ReserveError> {
        let judged = || admitted.addresses.iter().filter(|a| a.judged).map(|a| a.ip);
        let claim = (
            admitted.namespace.as_str(),
            admitted.name.as_str(),
            admitted.uid.as_str(),
        );
        if self.known.fresh(
            &admitted.network,
            judged(),
            claim,
            Timestamp::now(),
            self.ttl,
        ) {
            return Ok(Outcome::Reserved);
        }
        let request = Request {
            claim: ClaimRef {
                namespace: admitted.namespace.clone(),
                name: admitted.name.clone(),
                uid: admitted.uid.clone(),
            },
            network: admitted.network.clone(),
            addresses: judged().collect(),
            keep_on_conflict,
        };
        let (reply, answer) = oneshot::channel();
        if self.jobs.try_send(Job { request, reply }).is_err() {
            self.stats.api_errors.fetch_add(1, Ordering::Relaxed);
            return Err(ReserveError::Busy);
        }
        let outcome = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(Ok(outcome))) => Ok(outcome),
            Ok(Ok(Err(message))) => Err(ReserveError::Api(message)),
            Ok(Err(_)) => Err(ReserveError::Stopped),
            Err(_) => Err(ReserveError::Timeout(timeout)),
        };
        let count = |counter: &AtomicU64, n: usize| {
            counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
        };
        match &outcome {
            Ok(Outcome::Reserved) => {}
            Ok(Outcome::Conflicts(found)) => count(&self.stats.conflicts, found.len()),
            Err(ReserveError::Timeout(_)) => count(&self.stats.timeouts, 1),
            Err(_) => count(&self.stats.api_errors, 1),
        }
        outcome
    }

    /// The namespace of the Leases.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// What the reservations have done so far.
    pub fn counts(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let s = &self.stats;
        Counts {
            created: get(&s.created),
            renewed: get(&s.renewed),
            taken_over: get(&s.taken_over),
            collected: get(&s.collected),
            released: get(&s.released),
            conflicts: get(&s.conflicts),
            timeouts: get(&s.timeouts),
            api_errors: get(&s.api_errors),
            collect_errors: get(&s.collect_errors),
            known: self.known.len(),
        }
    }
}

/// What the thread's tasks share.
struct Ctx {
    client: LeaseClient,
    namespace: String,
    index: Arc<SharedIndex>,
    known: Arc<Remembered>,
    stats: Arc<Stats>,
    ttl: Duration,
}

/// Takes the reviews' requests until the server stops, and collects meanwhile.
async fn serve(ctx: Arc<Ctx>, mut jobs: mpsc::Receiver<Job>) {
    let collection = tokio::spawn(collect_forever(ctx.clone()));
    while let Some(job) = jobs.recv().await {
        tokio::spawn(handle(ctx.clone(), job));
    }
    collection.abort();
}

/// A Lease this review wrote: deleted again if the review is refused after all.
#[derive(Clone, Debug)]
struct Written {
    name: String,
    network: String,
    ip: IpAddr,
    uid: String,
    resource_version: String,
}

/// What reserving one address came to.
enum One {
    /// Already the claim's (nothing written, or renewed: an earlier review relies on it too).
    Ours,
    /// Created or taken over for this review.
    Written(Written),
    /// Held by another claim.
    Conflict(Holder),
}

/// One review: each address at once, then the answer, then what must be undone.
async fn handle(ctx: Arc<Ctx>, job: Job) {
    let Job { request, reply } = job;
    let mut tasks = JoinSet::new();
    for &ip in &request.addresses {
        let (ctx, claim, network) = (ctx.clone(), request.claim.clone(), request.network.clone());
        tasks.spawn(async move {
            let reserved =
                tokio::time::timeout(CALLS_LIMIT, reserve_one(&ctx, &claim, &network, ip));
            let reserved = reserved.await.unwrap_or_else(|_| {
                Err(format!(
                    "the API server did not answer within {} s",
                    CALLS_LIMIT.as_secs()
                ))
            });
            (ip, reserved)
        });
    }
    let (mut written, mut conflicts, mut failure) = (Vec::new(), Vec::new(), None);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((_, Ok(One::Ours))) => {}
            Ok((_, Ok(One::Written(w)))) => written.push(w),
            Ok((ip, Ok(One::Conflict(holder)))) => conflicts.push((ip, holder)),
            Ok((_, Err(e))) => failure = Some(e),
            Err(e) => failure = Some(format!("the reservation task failed: {e}")),
        }
    }
    conflicts.sort_by_key(|(ip, _)| *ip);
    let refused = failure.is_some() || (!conflicts.is_empty() && !request.keep_on_conflict);
    let outcome = match failure {
        Some(e) => Err(e),
        None if conflicts.is_empty() => Ok(Outcome::Reserved),
        None => Ok(Outcome::Conflicts(conflicts)),
    };
    // The answer first: what must be undone does not hold the review up.
    let waited = reply.send(outcome).is_ok();
    if refused || !waited {
        for w in written {
            release(&ctx, &w).await;
        }
    }
}

/// Deletes a Lease a refused review wrote (conditioned on what it wrote); what cannot be
/// deleted now is left to the collection.
async fn release(ctx: &Ctx, w: &Written) {
    match ctx
        .client
        .delete(&w.name, &w.uid, &w.resource_version)
        .await
    {
        Ok(Changed::Done(())) => {
            ctx.stats.released.fetch_add(1, Ordering::Relaxed);
            ctx.known.forget(&w.network, w.ip);
        }
        Ok(Changed::Gone) => ctx.known.forget(&w.network, w.ip),
        Ok(Changed::Stale) => {}
        Err(e) => {
            debug!(lease = %w.name, error = %e, "a refused review's Lease could not be deleted: left to the collection")
        }
    }
}

/// What the index says of `holder` and `ip` on `network`.
fn index_sees(index: &SharedIndex, holder: Option<&ClaimRef>, network: &str, ip: IpAddr) -> Seen {
    match holder {
        Some(h) if index.holds(&h.namespace, &h.name, network, ip) => Seen::Holding,
        _ => Seen::NotHolding,
    }
}

/// The next call for one address.
enum Next {
    Create,
    Read,
}

/// Reserves `ip` on `network` for `claim`.
async fn reserve_one(
    ctx: &Ctx,
    claim: &ClaimRef,
    network: &str,
    ip: IpAddr,
) -> Result<One, String> {
    let name = lease::name(network, ip);
    let failed = |verb: &str, e: kube::Error| {
        format!(
            "cannot {verb} the Lease {}/{name} of {ip} on network {network:?}: {e}",
            ctx.namespace
        )
    };
    let mut next = Next::Create;
    for _ in 0..MAX_CALLS {
        let now = Timestamp::now();
        match next {
            Next::Create => {
                let new = lease::new(&ctx.namespace, network, ip, claim, now, ctx.ttl);
                match ctx
                    .client
                    .create(&new)
                    .await
                    .map_err(|e| failed("create", e))?
                {
                    Created::Created(stored) => {
                        ctx.stats.created.fetch_add(1, Ordering::Relaxed);
                        return Ok(One::Written(ctx.remember(&name, network, ip, &stored)));
                    }
                    Created::Exists => next = Next::Read,
                }
            }
            Next::Read => {
                let Some(found) = ctx.client.get(&name).await.map_err(|e| failed("read", e))?
                else {
                    // Deleted since: create it again.
                    next = Next::Create;
                    continue;
                };
                let read = Read::of(&found, ctx.ttl, now);
                ctx.known.note(&name, network, ip, read.clone());
                let index = index_sees(&ctx.index, read.holder.as_ref(), network, ip);
                let mut api = None;
                next = loop {
                    let step = resolve(&Found {
                        claimant: claim,
                        lease: &read,
                        index,
                        api,
                        now,
                        ttl: ctx.ttl,
                    });
                    let take_over = match step {
                        Step::Ours => return Ok(One::Ours),
                        Step::Conflict(holder) => return Ok(One::Conflict(holder)),
                        Step::AskApi => {
                            let holder = read.holder.as_ref().ok_or("no holder to ask about")?;
                            let seen = ctx.client.holds(holder, network, ip).await;
                            api = Some(seen.map_err(|e| failed("read the holder of", e))?);
                            continue;
                        }
                        Step::Renew => false,
                        Step::TakeOver => true,
                    };
                    let held = lease::held_by(&found, (network, ip), claim, now, ctx.ttl);
                    match ctx
                        .client
                        .update(&held)
                        .await
                        .map_err(|e| failed("update", e))?
                    {
                        Changed::Done(stored) => {
                            let written = ctx.remember(&name, network, ip, &stored);
                            if !take_over {
                                ctx.stats.renewed.fetch_add(1, Ordering::Relaxed);
                                return Ok(One::Ours);
                            }
                            ctx.stats.taken_over.fetch_add(1, Ordering::Relaxed);
                            info!(
                                lease = %name,
                                namespace = %ctx.namespace,
                                network,
                                address = %ip,
                                previous_holder = %read.holder.as_ref().map_or_else(String::new, ToString::to_string),
                                ran_out = %read.expires,
                                holder = %claim,
                                "reservation taken over: its holder never held the address and its Lease ran out"
                            );
                            return Ok(One::Written(written));
                        }
                        // Another writer changed it since it was read: read it again.
                        Changed::Stale => break Next::Read,
                        Changed::Gone => break Next::Create,
                    }
                };
            }
        }
    }
    Err(format!(
        "the Lease {}/{name} of {ip} on network {network:?} kept changing under the webhook",
        ctx.namespace
    ))
}

// === impl Ctx ===

impl Ctx {
    /// Remembers a Lease as stored by this replica's write, and what undoes the write.
    fn remember(&self, name: &str, network: &str, ip: IpAddr, stored: &Lease) -> Written {
        let read = Read::of(stored, self.ttl, Timestamp::now());
        let written = Written {
            name: name.to_owned(),
            network: network.to_owned(),
            ip,
            uid: read.uid.clone(),
            resource_version: read.resource_version.clone(),
        };
        self.known.note(name, network, ip, read);
        written
    }
}

/// Collects the remembered Leases every `ttl / 4` (at least every 5 s, at most every 100 ms).
async fn collect_forever(ctx: Arc<Ctx>) {
    let every = (ctx.ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let failed = collect_round(&ctx).await;
        if failed > 0 && !failing {
            warn!(
                failed,
                "reservations: Leases could not be collected; retrying at the next round"
            );
        } else if failed == 0 && failing {
            info!("reservations: collection works again");
        }
        failing = failed > 0;
    }
}

/// One round of collection; the count of calls that failed.
async fn collect_round(ctx: &Ctx) -> usize {
    let (now, wall) = (Instant::now(), Timestamp::now());
    let mut failed = 0;
    for due in ctx.known.due(&ctx.index, now) {
        if let Err(e) = collect_one(ctx, &due, wall).await {
            ctx.stats.collect_errors.fetch_add(1, Ordering::Relaxed);
            debug!(lease = %due.entry.name, error = %e, "reservations: a Lease could not be collected");
            failed += 1;
        }
    }
    failed
}

/// Collects one Lease if it is due.
async fn collect_one(ctx: &Ctx, due: &Due, now: Timestamp) -> Result<(), kube::Error> {
    let Due {
        network,
        ip,
        entry,
        shown_for,
    } = due;
    let mut known = Known {
        shown_for: *shown_for,
        expires: entry.read.expires,
        api: None,
        now,
        grace: ctx.ttl,
    };
    loop {
        match collect(&known) {
            Collect::Keep => return Ok(()),
            Collect::AskApi => {
                known.api = Some(match &entry.read.holder {
                    Some(holder) => ctx.client.holds(holder, network, *ip).await?,
                    None => Seen::NotHolding,
                });
            }
            Collect::Delete => break,
        }
    }
    let read = &entry.read;
    match ctx
        .client
        .delete(&entry.name, &read.uid, &read.resource_version)
        .await?
    {
        Changed::Done(()) => {
            ctx.stats.collected.fetch_add(1, Ordering::Relaxed);
            ctx.known.forget(network, *ip);
        }
        Changed::Gone => ctx.known.forget(network, *ip),
        // Renewed or taken over since: what it says now is judged at the next round.
        Changed::Stale => match ctx.client.get(&entry.name).await? {
            Some(lease) => {
                let read = Read::of(&lease, ctx.ttl, now);
                ctx.known.note(&entry.name, network, *ip, read);
            }
            None => ctx.known.forget(network, *ip),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_is_the_flag_else_the_pods_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("namespace");
        assert_eq!(
            namespace(Some("webhooks"), &file).expect("flag"),
            "webhooks"
        );
        assert!(matches!(
            namespace(None, &file),
            Err(StartError::NoNamespace)
        ));
        std::fs::write(&file, "ipamclaim-webhook\n").expect("write");
        assert_eq!(namespace(None, &file).expect("pod"), "ipamclaim-webhook");
        for bad in ["", "Webhooks", "a/b", "-a", "a-", &"a".repeat(64)] {
            assert!(
                matches!(
                    namespace(Some(bad), &file),
                    Err(StartError::BadNamespace(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_remembered_lease_of_the_claim_admits_only_with_half_its_time_left() {
        let known = Remembered::default();
        let claim = ClaimRef {
            namespace: "ns1".to_owned(),
            name: "a".to_owned(),
            uid: "u1".to_owned(),
        };
        let me = ("ns1", "a", "u1");
        let t0 = Timestamp::from_second(1_800_000_000).expect("time");
        let ttl = Duration::from_secs(30);
        let ip: IpAddr = "10.0.0.5".parse().expect("ip");
        let other_ip: IpAddr = "10.0.0.6".parse().expect("ip");
        let held = lease::new("ns", "red", ip, &claim, t0, ttl);
        known.note("l", "red", ip, Read::of(&held, ttl, t0));
        let fresh = |network, ips: &[IpAddr], claim, now| {
            known.fresh(network, ips.iter().copied(), claim, now, ttl)
        };
        assert!(fresh("red", &[ip], me, t0));
        let later = t0.saturating_add(Duration::from_secs(16)).expect("time");
        assert!(!fresh("red", &[ip], me, later), "half run out");
        assert!(
            !fresh("red", &[ip], ("ns1", "a", "u2"), t0),
            "another incarnation"
        );
        assert!(fresh("red", &[ip], ("ns1", "a", ""), t0), "uid unknown");
        assert!(
            !fresh("red", &[ip], ("ns1", "b", "u1"), t0),
            "another claim"
        );
        assert!(
            !fresh("red", &[ip], ("ns2", "a", "u1"), t0),
            "another namespace"
        );
        assert!(!fresh("blue", &[ip], me, t0), "another network");
        assert!(
            !fresh("red", &[ip, other_ip], me, t0),
            "one address not remembered"
        );
        known.note("m", "red", other_ip, Read::of(&held, ttl, t0));
        assert!(fresh("red", &[ip, other_ip], me, t0), "both remembered");
        assert_eq!(known.len(), 2);
        known.forget("red", ip);
        assert!(!fresh("red", &[ip], me, t0), "forgotten");
        known.forget("red", other_ip);
        assert_eq!(known.len(), 0);
        assert!(known.lock().is_empty(), "no empty network left behind");
    }
}
