//! The HTTPS admission server: routes, body and time limits, probes, metrics and graceful
//! shutdown around [`admission::review`].
//!
//! The TLS listener is assembled from actix-server, actix-tls and actix-http rather than with
//! `HttpServer::bind_rustls_0_23`, because that one always puts `h2` first in the ALPN list
//! whatever the rustls config says, and HTTP/2 must stay off unless `--enable-http2` is given.
//!
//! Memory is planned from `--memory-budget` (see [`budget`]): each connection is read through
//! a [`Gated`] stream, so that a request body larger than a small review is read only once the
//! budget has room for it; until then its socket is not read and TCP pushes back.
//!
//! Known limit: on a graceful stop, idle HTTP/1.1 connections close at once, but actix-http's
//! HTTP/2 dispatcher ignores the signal, so an idle h2 connection (only with `--enable-http2`)
//! holds the stop until `shutdown_timeout`. The probe listener shares the workers' connection
//! limit: a flood that fills every slot of the TLS listener also delays probes.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_http::Protocol;
use actix_server::{GracefulShutdownSignal, ServerBuilder};
use actix_service::{map_config, ServiceFactoryExt as _};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_tls::accept::TlsError as AcceptError;
use actix_web::dev::{Server, ServerHandle};
use actix_web::rt::net::TcpStream;
use actix_web::web;
use actix_web::App;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::admission;
use crate::cluster::client::{self, Credentials, Views, WatchError};
use crate::cluster::leases::{ReservationStore, StartError};
use crate::cluster::networks::SharedNetworks;
use crate::cluster::SharedIndex;
use crate::serve::budget::{self, Budget, BudgetError, MemoryPlan};
use crate::serve::conn;
use crate::serve::duration::millis;
use crate::serve::gate::{Gate, Gated};
use crate::serve::head_timeout::{HeadTimed, Phase};
use crate::serve::listen::{app_config, bind, bind_socket, http_builder, TLS_HANDSHAKE_TIMEOUT};
use crate::serve::logs::{self, DroppedLines, LineBudget};
use crate::serve::metrics::Metrics;
use crate::serve::record::{self, RecordError, Recorder};
use crate::serve::reload::{self, Reloader, Watch};
use crate::serve::reserve::Reservations;
use crate::serve::routes::{metrics_routes, not_found, probe_routes, webhook_routes};
use crate::serve::state::{Readiness, State};
use crate::serve::tls::{self, TlsError, TlsFiles};

/// Default address of the TLS admission listener: every address of both families, on one
/// socket (IPv4 only where the kernel has no IPv6).
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 8443);
/// Default address of the plain-HTTP probe listener, both families as [`DEFAULT_LISTEN`].
pub const DEFAULT_PROBE_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 8080);
/// Default body limit: 7 MiB, as controller-runtime's webhook server.
pub const DEFAULT_MAX_BODY_BYTES: usize = 7 * 1024 * 1024;
/// Default time in-flight requests get to finish after SIGTERM (once the shutdown delay has
/// passed); with [`DEFAULT_SHUTDOWN_DELAY`], below the 30 s of a pod's default
/// `terminationGracePeriodSeconds`.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// Default time the server keeps accepting connections after SIGTERM while `/readyz` already
/// fails: the endpoint's removal takes a moment to reach every API server and kube-proxy, and
/// until then new reviews still arrive.
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::from_secs(5);
/// Default time a client has to send each request head (a slow client cannot hold a
/// connection by trickling it).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default longest time to read a request body and judge it; the API server's `?timeout=`
/// shortens it. 30 s is the longest `timeoutSeconds` a webhook configuration may have, so the
/// server never gives up before the API server does.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit of connections open at once over all workers; beyond it the listeners stop
/// accepting until one closes.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default `--memory-budget`.
pub const DEFAULT_MEMORY_BUDGET: usize = budget::DEFAULT_MEMORY_BUDGET;

/// The reload interval is never shorter than this, whatever the config says: a zero would spin.
const MIN_RELOAD_INTERVAL: Duration = Duration::from_millis(10);

/// Everything `serve` needs to run.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address of the TLS admission listener (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Address of the plain-HTTP probe listener (port 0 picks a free port).
    pub probe_listen: SocketAddr,
    /// Certificate, key and optional client CA.
    pub tls: TlsFiles,
    /// Offer `h2` by ALPN on the TLS listener.
    pub enable_http2: bool,
    /// Settings of the admission pipeline.
    pub admission: admission::Options,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Time in-flight requests get to finish once the listeners close (whole seconds).
    pub shutdown_timeout: Duration,
    /// Time between the start of a shutdown (readiness fails) and the listeners closing.
    pub shutdown_delay: Duration,
    /// Time a client has to send each request head.
    pub header_timeout: Duration,
    /// Longest time to read a body and judge it; `?timeout=` may shorten it per request.
    pub request_timeout: Duration,
    /// Connections open at once, over all workers (fewer if the memory budget cannot hold
    /// that many).
    pub max_connections: usize,
    /// Memory the server plans to hold at most: the process, its connections and the request
    /// bodies it reads and judges.
    pub memory_budget: usize,
    /// Time between two looks at the certificate, key and client CA files.
    pub tls_reload_interval: Duration,
    /// Worker threads (at least 1).
    pub workers: usize,
    /// `--record-denied`: where to write denied reviews, if anywhere.
    pub record_denied: Option<PathBuf>,
    /// `--record-denied-max`: how many recorded reviews to keep.
    pub record_denied_max: usize,
    /// `--unique-addresses`: watch the cluster's IPAMClaims and deny addresses held by another
    /// claim (DESIGN §9). `None`: no API access for it.
    pub unique_addresses: Option<UniqueAddresses>,
    /// The count of log lines the log's writer dropped (`serve::logs`), for `/metrics` and a
    /// line every [`logs::REPORT_EVERY`] when it grew; nothing is ever dropped without one.
    pub log_dropped: DroppedLines,
    /// `--request-log-limit`: lines a second the requests may write at most (denials,
    /// refusals, errors); the rest are counted (`serve::logs::LineBudget`). 0: no limit.
    pub request_log_limit: u32,
    /// `--check-networks`: watch the cluster's NetworkAttachmentDefinitions and deny addresses
    /// that do not fit their network (DESIGN §10). `None`: no API access for it. With both,
    /// one API client serves the two watches.
    pub check_networks: Option<CheckNetworks>,
}

/// How `--unique-addresses` reaches the cluster and holds what it admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniqueAddresses {
    /// In-cluster, `KUBECONFIG`, or `--kubeconfig FILE`.
    pub credentials: Credentials,
    /// How long an admitted address stays reserved if the watch does not show it.
    pub reservation_ttl: Duration,
    /// Where the reservations are kept: Leases (across replicas) or this replica's memory.
    pub reservations: ReservationStore,
}

/// How `--check-networks` reaches the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckNetworks {
    /// In-cluster, `KUBECONFIG`, or `--kubeconfig FILE`: the same as
    /// [`UniqueAddresses::credentials`] when both are on (one client serves both watches).
    pub credentials: Credentials,
}

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The certificate, key or client CA could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("cannot install the SIGTERM/SIGINT handlers")]
    Signal(#[source] io::Error),
    /// `start` was called outside a Tokio runtime.
    #[error("the server must be started from within a Tokio runtime")]
    NoRuntime,
    /// The server failed while running.
    #[error("server failed")]
    Run(#[source] io::Error),
    /// `--memory-budget` cannot hold the other limits.
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// The `--record-denied` directory cannot be used.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The server task panicked or was cancelled.
    #[error("server task ended abnormally")]
    Task(#[source] tokio::task::JoinError),
    /// The thread that reloads the TLS files could not be started.
    #[error("cannot start the TLS reload thread")]
    Watch(#[source] io::Error),
    /// `--unique-addresses` or `--check-networks` could not start its watch.
    #[error(transparent)]
    Cluster(#[from] WatchError),
    /// `--unique-addresses` could not start its reservations across replicas.
    #[error(transparent)]
    Reservations(#[from] StartError),
    /// `--unique-addresses` and `--check-networks` were given different credentials: the two
    /// watches share one API client.
    #[error("--unique-addresses and --check-networks must reach the cluster with the same credentials (one API client serves both)")]
    TwoClusters,
}

/// A started server: its bound addresses, a handle to stop it, and its task.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    probe_addr: SocketAddr,
    handle: Handle,
    task: JoinHandle<io::Result<()>>,
}

/// Stops a running server, and tells whether it still reports ready.
#[derive(Clone)]
pub struct Handle {
    server: ServerHandle,
    readiness: Readiness,
    shutdown_delay: Duration,
}

/// Runs the server until SIGTERM or SIGINT, then shuts it down gracefully.
///
/// On the signal `/readyz` fails at once; the listeners keep accepting for `shutdown_delay`
/// (a second signal cuts it short), then stop, and in-flight requests get `shutdown_timeout`
/// to finish.
pub async fn run(cfg: ServeConfig) -> Result<(), ServerError> {
    // Installed before the listeners open, so that an early SIGTERM is a graceful stop and
    // never the default action (immediate death).
    let mut sigterm = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = signal(tokio::signal::unix::SignalKind::interrupt())?;

    let running = start(cfg)?;
    let handle = running.handle();
    let on_signal = tokio::spawn(async move {
        let name = tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
        };
        let delay = handle.shutdown_delay;
        info!(
            signal = name,
            delay_ms = millis(delay),
            "shutting down: not ready, still accepting during the shutdown delay"
        );
        handle.readiness.shutting_down();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = sigterm.recv() => info!(signal = "SIGTERM", "shutdown delay cut short"),
            _ = sigint.recv() => info!(signal = "SIGINT", "shutdown delay cut short"),
        }
        info!("no longer accepting connections; draining in-flight requests");
        handle.server.stop(true).await;
    });
    let result = running.wait().await;
    on_signal.abort();
    if result.is_ok() {
        info!("stopped");
    }
    result
}

fn signal(
    kind: tokio::signal::unix::SignalKind,
) -> Result<tokio::signal::unix::Signal, ServerError> {
    tokio::signal::unix::signal(kind).map_err(ServerError::Signal)
}

/// Loads TLS, binds both listeners and starts serving in the background.
///
/// Must be called from within a Tokio runtime (an actix `System` is one). Installs no signal
/// handler: stop it with [`Handle::shutdown`].
pub fn start(cfg: ServeConfig) -> Result<Running, ServerError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(ServerError::NoRuntime);
    }
    let plan = MemoryPlan::with_indexes(
        cfg.memory_budget,
        cfg.max_connections,
        cfg.max_body_bytes,
        cfg.enable_http2,
        cfg.record_denied.is_some(),
        if cfg.check_networks.is_some() {
            budget::NETWORK_INDEX_BYTES
        } else {
            0
        },
    )?;
    let mut metrics = Metrics::new();
    metrics.log_lines_dropped(cfg.log_dropped.clone());
    let lines = Arc::new(LineBudget::new(cfg.request_log_limit));
    metrics.log_lines_suppressed(lines.clone());
    let cluster = ClusterView::start(&cfg, &mut metrics)?;
    let metrics = Arc::new(metrics);
    let reloader = Reloader::load(cfg.tls.clone(), metrics.clone())?;
    let tls_config = reloader.server_config(cfg.enable_http2)?;
    let listeners = Listeners::bind(&cfg)?;
    let readiness = Readiness::new();
    let state = web::Data::new(State {
        options: cluster.options.clone(),
        recorder: match &cfg.record_denied {
            Some(dir) => Some(Recorder::start(dir, cfg.record_denied_max)?),
            None => None,
        },
        max_body_bytes: cfg.max_body_bytes,
        budget: Budget::new(plan, metrics.budget_gauges()),
        request_timeout: cfg.request_timeout,
        readiness: readiness.clone(),
        certs: reloader.cert_store(),
        metrics,
        index: cluster.index.clone(),
        reservations: cluster.reservations.handle(),
        networks: cluster.networks.clone(),
        lines: lines.clone(),
    });
    log_plan(&plan, cfg.max_connections);
    let (addr, probe_addr) = (listeners.addr, listeners.probe_addr);
    let (server, max_connections) = serve(&cfg, plan, listeners, state, tls_config)?;
    let handle = Handle {
        server: server.handle(),
        readiness,
        shutdown_delay: cfg.shutdown_delay,
    };
    let reload_interval = cfg.tls_reload_interval.max(MIN_RELOAD_INTERVAL);
    let cert_watch: Watch = reloader
        .watch(reload_interval)
        .map_err(ServerError::Watch)?;
    let log_report = tokio::spawn(logs::report_unwritten(
        cfg.log_dropped.clone(),
        lines,
        logs::REPORT_EVERY,
    ));
    info!(
        listen = %addr,
        probe_listen = %probe_addr,
        http2 = cfg.enable_http2,
        cert = %cfg.tls.cert.display(),
        client_auth = cfg.tls.client_ca.is_some(),
        workers = cfg.workers.max(1),
        max_connections,
        max_body_bytes = cfg.max_body_bytes,
        memory_budget = plan.budget,
        memory_base = plan.base,
        memory_indexes = plan.indexes,
        memory_per_connection = plan.per_connection,
        memory_bodies = plan.bodies,
        header_timeout_ms = millis(cfg.header_timeout),
        request_timeout_ms = millis(cfg.request_timeout),
        tls_reload_interval_ms = millis(reload_interval),
        "serving"
    );
    Ok(Running {
        addr,
        probe_addr,
        handle,
        task: tokio::spawn(async move {
            let result = server.await;
            // The files, the claims and the networks are watched for as long as the server
            // runs, and no longer.
            drop(cert_watch);
            drop(cluster);
            log_report.abort();
            result
        }),
    })
}

/// What the server knows of the cluster: with `--unique-addresses`, the index of every
/// claim; with `--check-networks`, the index of every network; the watches that feed them (on
/// one API client); and the pipeline's options, given the indexes to judge with.
struct ClusterView {
    options: admission::Options,
    index: Option<Arc<SharedIndex>>,
    networks: Option<Arc<SharedNetworks>>,
    _watch: Option<client::Watch>,
    reservations: Reservations,
}

// === impl ClusterView ===

impl ClusterView {
    /// Starts the watches the flags ask for (none by default: then no API access at all), and
    /// with `--unique-addresses` its reservations across replicas.
    fn start(cfg: &ServeConfig, metrics: &mut Metrics) -> Result<Self, ServerError> {
        let mut options = cfg.admission.clone();
        let credentials = match (&cfg.unique_addresses, &cfg.check_networks) {
            (None, None) => {
                return Ok(ClusterView {
                    options,
                    index: None,
                    networks: None,
                    _watch: None,
                    reservations: Reservations::default(),
                })
            }
            (Some(unique), Some(networks)) if unique.credentials != networks.credentials => {
                return Err(ServerError::TwoClusters)
            }
            (Some(unique), _) => unique.credentials.clone(),
            (None, Some(networks)) => networks.credentials.clone(),
        };
        let index = cfg
            .unique_addresses
            .as_ref()
            .map(|unique| Arc::new(SharedIndex::new(unique.reservation_ttl)));
        let networks = cfg
            .check_networks
            .as_ref()
            .map(|_| Arc::new(SharedNetworks::new()));
        let views = Views {
            claims: index.clone(),
            networks: networks.clone(),
        };
        let watch = client::start(credentials, views)?;
        let mut reservations = Reservations::default();
        if let (Some(index), Some(unique)) = (&index, &cfg.unique_addresses) {
            metrics.watch_index(index.clone());
            reservations = Reservations::start(unique, index, metrics)?;
            options.unique_addresses = Some(index.clone());
        }
        if let Some(networks) = &networks {
            metrics.watch_networks(networks.clone());
            options.check_networks = Some(networks.clone());
        }
        Ok(ClusterView {
            options,
            index,
            networks,
            _watch: Some(watch),
            reservations,
        })
    }
}

/// The two bound listeners: TLS for the webhooks, plain HTTP for probes and metrics.
struct Listeners {
    https: std::net::TcpListener,
    addr: SocketAddr,
    probes: std::net::TcpListener,
    probe_addr: SocketAddr,
}

// === impl Listeners ===

impl Listeners {
    /// Binds both, IPv4 alone (with a warning) where the kernel has no IPv6.
    fn bind(cfg: &ServeConfig) -> Result<Self, ServerError> {
        let (https, addr, no_ipv6) = bind(cfg.listen, bind_socket)?;
        let (probes, probe_addr, probe_no_ipv6) = bind(cfg.probe_listen, bind_socket)?;
        if let Some(e) = no_ipv6.or(probe_no_ipv6) {
            warn!(
                listen = %addr,
                probe_listen = %probe_addr,
                error = %e,
                "the kernel has no IPv6: listening on IPv4 only"
            );
        }
        Ok(Listeners {
            https,
            addr,
            probes,
            probe_addr,
        })
    }
}

/// Starts the actix server on both listeners; returns it with the connection limit it runs
/// with (over all workers).
fn serve(
    cfg: &ServeConfig,
    plan: MemoryPlan,
    listeners: Listeners,
    state: web::Data<State>,
    tls_config: rustls::ServerConfig,
) -> Result<(Server, usize), ServerError> {
    let workers = cfg.workers.max(1);
    // actix limits connections per worker; the flag is the total, as an operator counts it.
    let per_worker = plan.connections.div_ceil(workers).max(1);
    let builder = Server::build()
        .workers(workers)
        .max_concurrent_connections(per_worker)
        .shutdown_timeout(cfg.shutdown_timeout.as_secs())
        .disable_signals();
    // Resolves when a graceful stop begins: connections then close once idle instead of
    // waiting out their keep-alive, so shutdown does not take longer than in-flight work.
    let graceful = builder.graceful_shutdown_signal();
    let Listeners {
        https,
        addr,
        probes,
        probe_addr,
    } = listeners;
    let builder = serve_webhooks(builder, cfg, (https, addr), &state, tls_config, &graceful)?;
    let builder = serve_probes(builder, cfg, (probes, probe_addr), &state, &graceful)?;
    Ok((builder.run(), per_worker * workers))
}

/// Adds the TLS listener: `/validate`, `/mutate` and the probes, each connection gated by the
/// memory budget and its request heads timed.
fn serve_webhooks(
    builder: ServerBuilder,
    cfg: &ServeConfig,
    (listener, addr): (std::net::TcpListener, SocketAddr),
    state: &web::Data<State>,
    tls_config: rustls::ServerConfig,
    graceful: &GracefulShutdownSignal,
) -> Result<ServerBuilder, ServerError> {
    let (header_timeout, http2) = (cfg.header_timeout, cfg.enable_http2);
    let state = state.clone();
    let graceful = graceful.clone();
    let factory = move || {
        let graceful = graceful.clone();
        let app = App::new()
            .app_data(state.clone())
            .wrap_fn(conn::track::<Gate, _, _>)
            .wrap_fn(conn::track::<Phase, _, _>)
            .configure(webhook_routes)
            .configure(probe_routes)
            .default_service(web::to(not_found));
        let http = http_builder(addr, true, header_timeout, http2, move || {
            let graceful = graceful.clone();
            async move { graceful.notified().await }
        })
        .on_connect_ext(|io: &HeadTimed<Gated<TlsStream<TcpStream>>>, data| {
            data.insert(io.phase());
            data.insert(io.get_ref().gate());
        })
        .finish(map_config(app, app_config));
        let mut acceptor = Acceptor::new(tls_config.clone());
        acceptor.set_handshake_timeout(TLS_HANDSHAKE_TIMEOUT);
        acceptor
            .map_err(AcceptError::into_service_error)
            .map(move |io: TlsStream<TcpStream>| {
                // The protocol is what ALPN settled on; `h2` can only have been chosen if
                // the config offered it.
                let (protocol, phase, gate) = match io.get_ref().1.alpn_protocol() {
                    Some(tls::ALPN_H2) => (Protocol::Http2, Phase::off(), Gate::off()),
                    _ => (Protocol::Http1, Phase::default(), Gate::default()),
                };
                // Answers are small and written at once: without TCP_NODELAY, Nagle and
                // delayed ACKs add a ~40 ms tail (seen on HTTP/2 in benches/load runs).
                let _ = io.get_ref().0.set_nodelay(true);
                let peer = io.get_ref().0.peer_addr().ok();
                let io = Gated::new(io, gate);
                (HeadTimed::new(io, header_timeout, phase), protocol, peer)
            })
            .and_then(http.map_err(AcceptError::Service))
            .map_err(|e| debug!(error = %e, "TLS connection ended with an error"))
    };
    builder
        .listen("ipamclaim-webhook-https", listener, factory)
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Adds the plain-HTTP listener: `/healthz`, `/readyz` and `/metrics`.
fn serve_probes(
    builder: ServerBuilder,
    cfg: &ServeConfig,
    (listener, addr): (std::net::TcpListener, SocketAddr),
    state: &web::Data<State>,
    graceful: &GracefulShutdownSignal,
) -> Result<ServerBuilder, ServerError> {
    let header_timeout = cfg.header_timeout;
    let state = state.clone();
    let graceful = graceful.clone();
    let factory = move || {
        let graceful = graceful.clone();
        let app = App::new()
            .app_data(state.clone())
            .configure(probe_routes)
            .configure(metrics_routes)
            .default_service(web::to(not_found));
        http_builder(addr, false, header_timeout, false, move || {
            let graceful = graceful.clone();
            async move { graceful.notified().await }
        })
        .finish(map_config(app, app_config))
        .tcp()
        .map_err(|e| debug!(error = %e, "probe connection ended with an error"))
    };
    builder
        .listen("ipamclaim-webhook-probes", listener, factory)
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Logs a connection limit lowered to fit the memory budget.
fn log_plan(plan: &MemoryPlan, asked: usize) {
    if plan.connections < asked {
        warn!(
            max_connections = asked,
            fit = plan.connections,
            memory_budget = plan.budget,
            per_connection = plan.per_connection,
            "--max-connections lowered to what --memory-budget holds"
        );
    }
}

// === impl ServeConfig ===

impl ServeConfig {
    /// The defaults of `serve`, with the given TLS files.
    pub fn new(tls: TlsFiles) -> Self {
        ServeConfig {
            listen: DEFAULT_LISTEN,
            probe_listen: DEFAULT_PROBE_LISTEN,
            tls,
            enable_http2: false,
            admission: admission::Options::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            shutdown_delay: DEFAULT_SHUTDOWN_DELAY,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            tls_reload_interval: reload::DEFAULT_RELOAD_INTERVAL,
            workers: default_workers(),
            record_denied: None,
            record_denied_max: record::DEFAULT_MAX_FILES,
            unique_addresses: None,
            log_dropped: DroppedLines::default(),
            request_log_limit: logs::DEFAULT_REQUEST_LOG_LIMIT,
            check_networks: None,
        }
    }
}

/// One worker per CPU the process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

// === impl Running ===

impl Running {
    /// The bound address of the TLS listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound address of the plain-HTTP probe listener.
    pub fn probe_addr(&self) -> SocketAddr {
        self.probe_addr
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) -> Result<(), ServerError> {
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServerError::Run(e)),
            Err(e) => Err(ServerError::Task(e)),
        }
    }
}

// === impl Handle ===

impl Handle {
    /// Fails `/readyz` at once, keeps accepting for the shutdown delay, then stops accepting
    /// connections on both listeners, and resolves once in-flight requests have finished or
    /// the shutdown timeout has passed.
    pub async fn shutdown(&self) {
        self.readiness.shutting_down();
        if !self.shutdown_delay.is_zero() {
            tokio::time::sleep(self.shutdown_delay).await;
        }
        self.server.stop(true).await;
    }

    /// Whether `/readyz` reports ready.
    pub fn is_ready(&self) -> bool {
        self.readiness.is_ready()
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}
