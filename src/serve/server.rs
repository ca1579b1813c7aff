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

use std::future::{poll_fn, Future};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix_http::ConnectionType;
use actix_http::{HttpServiceBuilder, KeepAlive, Protocol, Request, Response};
use actix_service::{map_config, Service, ServiceFactory, ServiceFactoryExt as _};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_tls::accept::TlsError as AcceptError;
use actix_web::body::{BodyStream, BoxBody, MessageBody as _};
use actix_web::dev::{AppConfig, Server, ServerHandle};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::rt::net::TcpStream;
use actix_web::web;
use actix_web::{guard, App, HttpRequest, HttpResponse};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::admission::{self, Webhook};
use crate::cluster::watch::{self as cluster_watch, Credentials, WatchError};
use crate::cluster::SharedIndex;
use crate::serve::budget::{self, Budget, BudgetError, Exhausted, MemoryPlan};
use crate::serve::conn;
use crate::serve::duration;
use crate::serve::gate::{Gate, Gated};
use crate::serve::head_timeout::{HeadTimed, Phase};
use crate::serve::metrics::{self, Metrics};
use crate::serve::record::{self, RecordError, Recorder};
use crate::serve::reload::{self, CertStore, Reloader, Watch};
use crate::serve::tls::{self, TlsError, TlsFiles};

/// Default address of the TLS admission listener: every address of both families, on one
/// socket (IPv4 only where the kernel has no IPv6).
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 8443);
/// Default address of the plain-HTTP probe listener, both families as [`DEFAULT_LISTEN`].
pub const DEFAULT_PROBE_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 8080);
/// Connections a listener keeps waiting to be accepted (the kernel's backlog), as std's
/// `TcpListener::bind`.
const BACKLOG: i32 = 128;
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
/// Time a client has to acknowledge the close of its connection.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time a client has to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle time before a kept-alive connection is closed. The API server reuses connections, so
/// reuse saves a handshake per review; idle connections are closed at once on shutdown.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

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
    /// claim (DESIGN §9). `None`: no API access at all.
    pub unique_addresses: Option<UniqueAddresses>,
}

/// How `--unique-addresses` reaches the cluster and holds what it admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniqueAddresses {
    /// In-cluster, `KUBECONFIG`, or `--kubeconfig FILE`.
    pub credentials: Credentials,
    /// How long an admitted address stays reserved if the watch does not show it.
    pub reservation_ttl: Duration,
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
    /// `--unique-addresses` could not start its watch of IPAMClaims.
    #[error(transparent)]
    Cluster(#[from] WatchError),
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

/// Whether `/readyz` reports ready; false once shutdown has begun.
#[derive(Clone, Debug)]
struct Readiness(Arc<AtomicBool>);

/// What every request handler shares.
struct State {
    options: admission::Options,
    recorder: Option<Recorder>,
    max_body_bytes: usize,
    budget: Budget,
    request_timeout: Duration,
    readiness: Readiness,
    certs: Arc<CertStore>,
    metrics: Arc<Metrics>,
    /// `--unique-addresses`: the index reviews are judged against and reserve in.
    index: Option<Arc<SharedIndex>>,
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
    let workers = cfg.workers.max(1);
    let plan = MemoryPlan::new(
        cfg.memory_budget,
        cfg.max_connections,
        cfg.max_body_bytes,
        cfg.enable_http2,
        cfg.record_denied.is_some(),
    )?;
    let mut metrics = Metrics::new();
    let mut options = cfg.admission.clone();
    let (index, cluster_watch) = match &cfg.unique_addresses {
        Some(unique) => {
            let index = Arc::new(SharedIndex::new(unique.reservation_ttl));
            let watch = cluster_watch::start(unique.credentials.clone(), index.clone())?;
            metrics.watch_index(index.clone());
            options.unique_addresses = Some(index.clone());
            (Some(index), Some(watch))
        }
        None => (None, None),
    };
    let metrics = Arc::new(metrics);
    let budget = Budget::new(plan, metrics.budget_gauges());
    let reloader = Reloader::load(cfg.tls.clone(), metrics.clone())?;
    let tls_config = reloader.server_config(cfg.enable_http2)?;
    let certs = reloader.cert_store();
    let (listener, addr, no_ipv6) = bind(cfg.listen, bind_socket)?;
    let (probe_listener, probe_addr, probe_no_ipv6) = bind(cfg.probe_listen, bind_socket)?;
    if let Some(e) = no_ipv6.or(probe_no_ipv6) {
        warn!(
            listen = %addr,
            probe_listen = %probe_addr,
            error = %e,
            "the kernel has no IPv6: listening on IPv4 only"
        );
    }

    let readiness = Readiness::new();
    let recorder = match &cfg.record_denied {
        Some(dir) => Some(Recorder::start(dir, cfg.record_denied_max)?),
        None => None,
    };
    let state = web::Data::new(State {
        options,
        recorder,
        max_body_bytes: cfg.max_body_bytes,
        budget,
        request_timeout: cfg.request_timeout,
        readiness: readiness.clone(),
        certs,
        metrics,
        index,
    });
    // actix limits connections per worker; the flag is the total, as an operator counts it.
    let per_worker = plan.connections.div_ceil(workers).max(1);
    log_plan(&plan, cfg.max_connections);
    let header_timeout = cfg.header_timeout;
    let http2 = cfg.enable_http2;

    let builder = Server::build()
        .workers(workers)
        .max_concurrent_connections(per_worker)
        .shutdown_timeout(cfg.shutdown_timeout.as_secs())
        .disable_signals();
    // Resolves when a graceful stop begins: connections then close once idle instead of
    // waiting out their keep-alive, so shutdown does not take longer than in-flight work.
    let graceful = builder.graceful_shutdown_signal();

    let https = {
        let state = state.clone();
        let graceful = graceful.clone();
        move || {
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
        }
    };
    let probes = move || {
        let graceful = graceful.clone();
        let app = App::new()
            .app_data(state.clone())
            .configure(probe_routes)
            .configure(metrics_routes)
            .default_service(web::to(not_found));
        http_builder(probe_addr, false, header_timeout, false, move || {
            let graceful = graceful.clone();
            async move { graceful.notified().await }
        })
        .finish(map_config(app, app_config))
        .tcp()
        .map_err(|e| debug!(error = %e, "probe connection ended with an error"))
    };

    let server = builder
        .listen("ipamclaim-webhook-https", listener, https)
        .map_err(|source| ServerError::Bind { addr, source })?
        .listen("ipamclaim-webhook-probes", probe_listener, probes)
        .map_err(|source| ServerError::Bind {
            addr: probe_addr,
            source,
        })?
        .run();
    let handle = Handle {
        server: server.handle(),
        readiness,
        shutdown_delay: cfg.shutdown_delay,
    };
    let reload_interval = cfg.tls_reload_interval.max(MIN_RELOAD_INTERVAL);
    let watch: Watch = reloader
        .watch(reload_interval)
        .map_err(ServerError::Watch)?;
    info!(
        listen = %addr,
        probe_listen = %probe_addr,
        http2 = cfg.enable_http2,
        cert = %cfg.tls.cert.display(),
        client_auth = cfg.tls.client_ca.is_some(),
        workers,
        max_connections = per_worker * workers,
        max_body_bytes = cfg.max_body_bytes,
        memory_budget = plan.budget,
        memory_base = plan.base,
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
            // The files and the claims are watched for as long as the server runs, and no
            // longer.
            drop(watch);
            drop(cluster_watch);
            result
        }),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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

/// Binds a listener with `binder` (the socket calls, or a stand-in in tests). An IPv6
/// wildcard (`[::]`, the default) that the kernel refuses because it has no IPv6 at all is
/// bound as the IPv4 wildcard instead, as Go's `:8443` is; the refusal is returned for the log.
fn bind(
    addr: SocketAddr,
    binder: fn(SocketAddr) -> io::Result<TcpListener>,
) -> Result<(TcpListener, SocketAddr, Option<io::Error>), ServerError> {
    let bound = |addr: SocketAddr, listener: io::Result<TcpListener>| {
        let bind_err = |source| ServerError::Bind { addr, source };
        let listener = listener.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        Ok::<_, ServerError>((listener, local))
    };
    match binder(addr) {
        Err(e)
            if addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                && e.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
        {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            let (listener, local) = bound(v4, binder(v4))?;
            Ok((listener, local, Some(e)))
        }
        listener => {
            let (listener, local) = bound(addr, listener)?;
            Ok((listener, local, None))
        }
    }
}

/// A listening TCP socket on `addr`. An IPv6 socket takes IPv4 connections too (as
/// IPv4-mapped addresses) whatever `net.ipv6.bindv6only` says, so that `[::]` is every address
/// of both families.
fn bind_socket(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    // As std's bind: a restarted server can listen again while old connections linger.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The actix-web app config. Only URL generation reads it, and nothing here generates URLs.
fn app_config(_: ()) -> AppConfig {
    AppConfig::default()
}

/// The HTTP settings both listeners share.
fn http_builder<T, S, F, Fut>(
    local_addr: SocketAddr,
    secure: bool,
    header_timeout: Duration,
    http2: bool,
    on_shutdown: F,
) -> HttpServiceBuilder<T, S>
where
    S: ServiceFactory<Request, Config = ()>,
    S::Error: Into<Response<BoxBody>> + 'static,
    S::InitError: std::fmt::Debug,
    <S::Service as Service<Request>>::Future: 'static,
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let builder = HttpServiceBuilder::default()
        .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
        // The first request's head; `HeadTimed` bounds the heads of the requests after it.
        .client_request_timeout(header_timeout)
        .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
        .local_addr(local_addr)
        .graceful_shutdown_signal(on_shutdown);
    // What an HTTP/2 connection may send before its handlers read: its share of the memory
    // budget. (actix-http's defaults, 2 MiB per connection and 1 MiB per stream, are not.)
    let builder = if http2 {
        builder
            .h2_initial_window_size(budget::H2_WINDOW_BYTES)
            .h2_initial_connection_window_size(budget::H2_WINDOW_BYTES)
    } else {
        builder
    };
    if secure {
        builder.secure()
    } else {
        builder
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

// === impl Readiness ===

impl Readiness {
    fn new() -> Self {
        Readiness(Arc::new(AtomicBool::new(true)))
    }

    fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn shutting_down(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// `/validate` and `/mutate`: POST only.
fn webhook_routes(cfg: &mut web::ServiceConfig) {
    for (path, webhook) in [
        ("/validate", Webhook::Validate),
        ("/mutate", Webhook::Mutate),
    ] {
        cfg.service(
            web::resource(path)
                .route(web::post().to(
                    move |req: HttpRequest, payload: web::Payload, state: web::Data<State>| {
                        admit(webhook, req, payload, state)
                    },
                ))
                .default_service(web::to(|| async { method_not_allowed("POST") })),
        );
    }
}

/// `/healthz` and `/readyz`: GET and HEAD.
fn probe_routes(cfg: &mut web::ServiceConfig) {
    let get_or_head = || guard::Any(guard::Get()).or(guard::Head());
    cfg.service(
        web::resource("/healthz")
            .route(web::route().guard(get_or_head()).to(healthz))
            .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
    )
    .service(
        web::resource("/readyz")
            .route(web::route().guard(get_or_head()).to(readyz))
            .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
    );
}

async fn healthz() -> HttpResponse {
    plain(StatusCode::OK, "ok")
}

async fn readyz(state: web::Data<State>) -> HttpResponse {
    if !state.readiness.is_ready() {
        plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if !state.certs.usable_at(SystemTime::now()) {
        // Handshakes would fail at every careful client: take this replica out of the Service
        // until a renewed certificate is reloaded.
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the serving certificate has expired",
        )
    } else if let Some(why) = state.index.as_ref().and_then(|i| i.not_ready()) {
        // Admitting without the cluster's claims would let conflicts in unseen.
        plain(StatusCode::SERVICE_UNAVAILABLE, &why)
    } else {
        plain(StatusCode::OK, "ok")
    }
}

/// `/metrics` (probe listener only): GET and HEAD.
fn metrics_routes(cfg: &mut web::ServiceConfig) {
    let get_or_head = || guard::Any(guard::Get()).or(guard::Head());
    cfg.service(
        web::resource("/metrics")
            .route(web::route().guard(get_or_head()).to(render_metrics))
            .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
    );
}

async fn render_metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .body(state.metrics.render())
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    debug!(method = %req.method(), path = req.path(), "no such route");
    plain(StatusCode::NOT_FOUND, "not found")
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .content_type(TEXT)
        .body("method not allowed\n")
}

fn plain(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(TEXT)
        .body(format!("{text}\n"))
}

/// Answers one AdmissionReview: the HTTP checks, then the pure pipeline.
async fn admit(
    webhook: Webhook,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
) -> HttpResponse {
    let started = Instant::now();
    let _in_flight = state.metrics.in_flight();
    let webhook_name = match webhook {
        Webhook::Validate => "validate",
        Webhook::Mutate => "mutate",
    };
    let refuse = |status: StatusCode, text: &str| {
        state
            .metrics
            .refused(webhook_name, status.as_u16(), started.elapsed());
        plain(status, text)
    };
    // The media type comes first: a body of the wrong type is not read at all.
    if !is_json(req.headers().get(header::CONTENT_TYPE)) {
        warn!(
            webhook = webhook_name,
            status = 415,
            content_type = ?req.headers().get(header::CONTENT_TYPE),
            "request refused: Content-Type is not application/json"
        );
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    let deadline = request_budget(req.query_string(), state.request_timeout);
    let declared = content_length(&req);
    if declared.is_some_and(|len| len > state.max_body_bytes as u64) {
        return too_large(&state, webhook_name, refuse);
    }
    // Room for the body first: until it has some, its connection is not read (the gate), and
    // it waits at most half the deadline, leaving the rest to receive and judge it.
    let gate = req.conn_data::<Gate>();
    let grant = match room(&state, &req, gate, declared, deadline / 2).await {
        Ok(grant) => grant,
        Err(Exhausted) => {
            let mut response = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "no room in the webhook's memory budget for this request body; try again",
            );
            // The body was never read: the connection cannot carry another request.
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    };
    if let Some(gate) = gate {
        gate.open();
    }
    let left = deadline.saturating_sub(started.elapsed());
    let read = tokio::time::timeout(left, read_body(payload, declared, state.max_body_bytes));
    let body = match read.await {
        Ok(Ok(body)) => body,
        Err(_) => {
            warn!(
                webhook = webhook_name,
                status = 408,
                budget_ms = millis(deadline),
                "request refused: body not received within the request deadline"
            );
            // The rest of the body may still be on its way: the connection cannot carry
            // another request.
            let mut response = refuse(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received within the request deadline",
            );
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            return response;
        }
        Ok(Err(BodyError::TooLarge)) => return too_large(&state, webhook_name, refuse),
        Ok(Err(BodyError::Read(e))) => {
            warn!(webhook = webhook_name, status = 400, error = %e, "request refused: body unreadable");
            return refuse(StatusCode::BAD_REQUEST, "request body could not be read");
        }
    };

    let reviewed = match &state.index {
        // Judged, then what it admits reserved against a concurrent review of the same address.
        Some(index) => index.review(&body, webhook, &state.options),
        None => admission::review(&body, webhook, &state.options),
    };
    match reviewed {
        Ok(reviewed) => {
            let s = &reviewed.summary;
            let elapsed = started.elapsed();
            info!(
                uid = %s.uid,
                namespace = %s.namespace,
                name = %s.name,
                operation = %s.operation,
                subresource = %s.sub_resource,
                webhook = webhook_name,
                allowed = s.allowed,
                would_deny = s.would_deny,
                code = s.code,
                causes = %cause_types(&s.causes),
                cause_count = s.causes.len(),
                warnings = s.warnings,
                duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                "review"
            );
            if let Some(recorder) = state.recorder.as_ref().filter(|_| !s.allowed) {
                recorder.record(&s.uid, &body);
            }
            if s.panicked {
                error!(uid = %s.uid, webhook = webhook_name, "judging panicked: denied with code 500");
            }
            if elapsed > deadline {
                // The caller stopped waiting; an answer now would be read as if it were on time
                // by a client that ignores its own deadline.
                warn!(
                    uid = %s.uid,
                    webhook = webhook_name,
                    status = 504,
                    budget_ms = millis(deadline),
                    "answer ready after the request deadline: not sent"
                );
                return refuse(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the review could not be answered within the request deadline",
                );
            }
            state.metrics.review(webhook_name, s, elapsed);
            schema_drift(&state.metrics, s);
            // The body and what judging it took are gone; the answer is small.
            drop(grant);
            HttpResponse::Ok().content_type(JSON).body(reviewed.body)
        }
        Err(e) => {
            warn!(webhook = webhook_name, status = 400, reason = %e, "request refused: malformed review");
            refuse(StatusCode::BAD_REQUEST, &e.to_string())
        }
    }
}

/// Counts the unknown fields of a reviewed object and logs each path the first time it is
/// seen. Through an API server (which has already applied the installed CRD's schema) an
/// unknown field means the CRD is newer than this webhook: the operator should upgrade it.
fn schema_drift(metrics: &Metrics, summary: &admission::Summary) {
    for path in &summary.unknown_fields {
        match metrics.schema_drift(path) {
            metrics::Drift::Known | metrics::Drift::Overflow(false) => {}
            metrics::Drift::New(field) => warn!(
                field = %field,
                uid = %summary.uid,
                "schema drift: the object has a field this webhook does not know; the installed IPAMClaim CRD is newer than the webhook, upgrade it"
            ),
            metrics::Drift::Overflow(true) => warn!(
                max = metrics::MAX_DRIFT_FIELDS,
                "schema drift: more distinct unknown fields than the drift metric labels; further ones are counted under field=\"(other)\" and not logged"
            ),
        }
    }
}

/// The distinct cause types of a denial, in order, joined by commas: at most a handful of
/// names, whatever the object holds.
fn cause_types(causes: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for cause in causes {
        if !seen.contains(&cause.as_str()) {
            seen.push(cause);
        }
    }
    seen.join(",")
}

/// How long reading the body and judging may take: the `timeout` query parameter the API
/// server appends (its own deadline for this call, as a Go duration such as `10s`), capped by
/// `max`. A missing, zero or unreadable parameter leaves `max`.
fn request_budget(query: &str, max: Duration) -> Duration {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("timeout="))
        .and_then(duration::parse_go)
        .filter(|t| !t.is_zero())
        .map_or(max, |t| t.min(max))
}

/// Whether a `Content-Type` is `application/json`, parameters such as `charset` allowed.
fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(JSON)
}

/// 413, logged and counted.
fn too_large(
    state: &State,
    webhook: &'static str,
    refuse: impl Fn(StatusCode, &str) -> HttpResponse,
) -> HttpResponse {
    warn!(
        webhook,
        status = 413,
        limit = state.max_body_bytes,
        "request refused: body too large"
    );
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "request body exceeds the limit of {} bytes",
            state.max_body_bytes
        ),
    )
}

/// The request's `Content-Length`, if it has a readable one.
fn content_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Room in the memory budget for the body, waiting at most `patience`. A small body of an
/// HTTP/1.1 request is covered by its connection's share and never waits; a body of unknown
/// length (chunked, or HTTP/2 without `Content-Length`) is charged the largest it may be.
async fn room(
    state: &State,
    req: &HttpRequest,
    gate: Option<&Gate>,
    declared: Option<u64>,
    patience: Duration,
) -> Result<budget::Grant, Exhausted> {
    let http1 = gate.is_some_and(Gate::holds);
    let chunked = req
        .headers()
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let len = match declared {
        Some(len) => usize::try_from(len).unwrap_or(usize::MAX),
        // HTTP/1.1 without either header has no body.
        None if http1 && !chunked => 0,
        None => state.max_body_bytes,
    };
    if http1 && len <= budget::SMALL_BODY_BYTES && !chunked {
        return Ok(state.budget.small());
    }
    state.budget.reserve(len, patience).await
}

enum BodyError {
    TooLarge,
    Read(actix_web::Error),
}

/// Reads the body into one buffer of the declared size (no growth, no copy), refusing it as
/// soon as it exceeds `max` (chunked and HTTP/2 bodies are checked while they stream).
async fn read_body(
    payload: web::Payload,
    declared: Option<u64>,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    let capacity = declared.map_or(0, |len| usize::try_from(len).unwrap_or(max).min(max));
    let mut body = Vec::with_capacity(capacity);
    let mut stream = pin!(BodyStream::new(payload));
    while let Some(chunk) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.into()))?;
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::{call_service, init_service, TestRequest};

    fn state_expiring_at(not_after: Option<i64>) -> web::Data<State> {
        let dev = crate::certs::generate(&Default::default()).expect("certs");
        let provider = tls::provider();
        let path = std::path::Path::new("test");
        let mut cert = tls::serving_cert(
            dev.cert_pem.as_bytes(),
            path,
            dev.key_pem.as_bytes(),
            path,
            &provider,
        )
        .expect("serving cert");
        cert.not_after = not_after;
        web::Data::new(State {
            options: admission::Options::default(),
            recorder: None,
            max_body_bytes: 64,
            budget: Budget::new(
                MemoryPlan::new(DEFAULT_MEMORY_BUDGET, 16, 64, false, false).expect("plan"),
                Default::default(),
            ),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            readiness: Readiness::new(),
            certs: Arc::new(CertStore::new(cert)),
            metrics: Arc::new(Metrics::new()),
            index: None,
        })
    }

    fn state() -> web::Data<State> {
        state_expiring_at(None)
    }

    #[test]
    fn json_content_type_allows_parameters_and_any_case() {
        let ok = |s: &'static str| is_json(Some(&HeaderValue::from_static(s)));
        assert!(ok("application/json"));
        assert!(ok("application/json; charset=utf-8"));
        assert!(ok("Application/JSON;charset=UTF-8"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/jsonx"));
        assert!(!ok("application/json-patch+json"));
        assert!(!is_json(None));
    }

    #[actix_web::test]
    async fn readyz_fails_once_shutdown_begins() {
        let state = state();
        let readiness = state.readiness.clone();
        let app = init_service(App::new().app_data(state).configure(probe_routes)).await;
        let ready = call_service(&app, TestRequest::get().uri("/readyz").to_request()).await;
        assert_eq!(ready.status(), StatusCode::OK);
        readiness.shutting_down();
        let draining = call_service(&app, TestRequest::get().uri("/readyz").to_request()).await;
        assert_eq!(draining.status(), StatusCode::SERVICE_UNAVAILABLE);
        // Liveness is unaffected: the process is healthy, only leaving.
        let live = call_service(&app, TestRequest::get().uri("/healthz").to_request()).await;
        assert_eq!(live.status(), StatusCode::OK);
    }

    #[actix_web::test]
    async fn readyz_fails_once_the_certificate_has_expired() {
        let app = init_service(
            App::new()
                .app_data(state_expiring_at(Some(1_000_000_000)))
                .configure(probe_routes),
        )
        .await;
        let resp = call_service(&app, TestRequest::get().uri("/readyz").to_request()).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let live = call_service(&app, TestRequest::get().uri("/healthz").to_request()).await;
        assert_eq!(live.status(), StatusCode::OK);
    }

    #[test]
    fn budget_follows_the_api_servers_timeout_capped_by_the_maximum() {
        let max = Duration::from_secs(30);
        assert_eq!(request_budget("timeout=10s", max), Duration::from_secs(10));
        assert_eq!(
            request_budget("dryRun=All&timeout=500ms", max),
            Duration::from_millis(500)
        );
        assert_eq!(request_budget("timeout=1m", max), max);
        assert_eq!(request_budget("timeout=0s", max), max);
        assert_eq!(request_budget("timeout=soon", max), max);
        assert_eq!(request_budget("", max), max);
    }

    #[test]
    fn cause_types_are_listed_once_in_order() {
        let causes = [
            "FieldValueInvalid",
            "FieldValueDuplicate",
            "FieldValueInvalid",
        ]
        .map(String::from);
        assert_eq!(
            cause_types(&causes),
            "FieldValueInvalid,FieldValueDuplicate"
        );
        assert_eq!(cause_types(&[]), "");
    }

    /// A kernel without IPv6: every IPv6 socket is refused as Linux refuses it then.
    fn without_ipv6(addr: SocketAddr) -> io::Result<TcpListener> {
        if addr.is_ipv6() {
            Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
        } else {
            bind_socket(addr)
        }
    }

    fn wildcard() -> SocketAddr {
        SocketAddr::new(DEFAULT_LISTEN.ip(), 0)
    }

    #[test]
    fn the_ipv6_wildcard_takes_both_families_on_one_socket() {
        let (listener, local, refused) = bind(wildcard(), bind_socket).expect("bound");
        assert!(refused.is_none());
        assert_eq!(local.ip(), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            std::net::TcpStream::connect((ip, local.port()))
                .unwrap_or_else(|e| panic!("connect over {ip}: {e}"));
        }
        drop(listener);
    }

    #[test]
    fn without_ipv6_the_wildcard_falls_back_to_ipv4() {
        let (listener, local, refused) = bind(wildcard(), without_ipv6).expect("bound");
        assert_eq!(local.ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(
            refused.and_then(|e| e.raw_os_error()),
            Some(libc::EAFNOSUPPORT)
        );
        std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, local.port())).expect("IPv4");
        drop(listener);
    }

    #[test]
    fn only_the_wildcard_falls_back_and_only_for_a_missing_family() {
        // A specific IPv6 address was asked for: refused, not replaced.
        let loopback = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0);
        assert!(matches!(
            bind(loopback, without_ipv6),
            Err(ServerError::Bind { addr, .. }) if addr == loopback
        ));
        // Any other failure of the wildcard (here: the port is taken) is an error too.
        let taken: fn(SocketAddr) -> io::Result<TcpListener> =
            |_| Err(io::Error::from(io::ErrorKind::AddrInUse));
        assert!(matches!(
            bind(wildcard(), taken),
            Err(ServerError::Bind { addr, .. }) if addr == wildcard()
        ));
    }

    #[actix_web::test]
    async fn wrong_method_names_the_allowed_one() {
        let app = init_service(App::new().app_data(state()).configure(webhook_routes)).await;
        let resp = call_service(&app, TestRequest::get().uri("/mutate").to_request()).await;
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            resp.headers().get(header::ALLOW).map(|v| v.as_bytes()),
            Some(&b"POST"[..])
        );
    }
}
