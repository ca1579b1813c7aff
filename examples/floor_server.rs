//! Bench-only floor for `make bench-load`: the webhook's HTTPS stack answering `POST /validate`
//! with a constant AdmissionReview, without judging anything.
//!
//! The load harness runs it beside the real server in the same run, so that the ratio
//! product / floor shows what the admission pipeline (and its bookkeeping: metrics, the review
//! log line) costs on top of TLS and HTTP. It is an example, never a route of the product.
//!
//! The listener is assembled the way `src/server.rs` assembles it: actix-server with the same
//! connection limit, actix-tls's rustls acceptor with the config of the library's
//! [`Reloader`] (the resolver that follows certificate reloads), the protocol that ALPN chose,
//! the same [`HeadTimed`] and [`Gated`] streams with their [`conn::track`]
//! middleware (the gate opened at once: the floor keeps no memory budget), the
//! same actix-http timeouts and HTTP/2 windows, and the body read into one buffer of its
//! declared size under the same limit and deadline. Keep the two in step when
//! the server's stack changes.
//!
//! With `--skim` it also reads the review once with serde_json, keeping nothing, before it
//! answers: the least that any webhook decoding the review with serde_json pays, so that the
//! harness can show how close to the floor such a webhook could come at all.

#![forbid(unsafe_code)]

use std::future::poll_fn;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use actix_http::{HttpServiceBuilder, KeepAlive, Protocol, Request, Response};
use actix_service::{map_config, Service, ServiceFactory, ServiceFactoryExt as _};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_tls::accept::TlsError as AcceptError;
use actix_web::body::{BodyStream, BoxBody, MessageBody as _};
use actix_web::dev::{AppConfig, Server};
use actix_web::http::header;
use actix_web::rt::net::TcpStream;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse};
use anyhow::Context as _;
use clap::Parser;
use ipamclaim_webhook::serve::budget::H2_WINDOW_BYTES;
use ipamclaim_webhook::serve::conn;
use ipamclaim_webhook::serve::gate::{Gate, Gated};
use ipamclaim_webhook::serve::head_timeout::{HeadTimed, Phase};
use ipamclaim_webhook::serve::metrics::Metrics;
use ipamclaim_webhook::serve::reload::Reloader;
use ipamclaim_webhook::serve::tls::{self, TlsFiles};
use ipamclaim_webhook::serve::{
    default_workers, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REQUEST_TIMEOUT,
};
use serde::de::IgnoredAny;
use tracing_subscriber::EnvFilter;

// The same values as the private constants of `src/server.rs`.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// What the product answers to the review the load run sends
/// (`tests/fixtures/validate/captured-04-validate-update-status.request.json`), byte for byte.
const ANSWER: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"9c442e93-e4fa-471a-90f7-e6fdc939aa61","allowed":true}}"#;

/// The webhook's HTTPS stack with a constant answer (bench-only).
#[derive(Debug, Parser)]
struct Args {
    /// Address of the TLS listener.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Address of the plain-HTTP listener for /healthz.
    #[arg(long, default_value = "127.0.0.1:8080")]
    probe_listen: SocketAddr,
    /// PEM certificate chain.
    #[arg(long)]
    tls_cert: PathBuf,
    /// PEM private key.
    #[arg(long)]
    tls_key: PathBuf,
    /// Offer HTTP/2 by ALPN.
    #[arg(long)]
    enable_http2: bool,
    /// Worker threads [default: number of CPUs].
    #[arg(long)]
    workers: Option<usize>,
    /// Read each review once with serde_json (keeping nothing) before answering.
    #[arg(long)]
    skim: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // A subscriber as the product has, so that filtered-out events cost the same in both.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    actix_web::rt::System::new().block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let files = TlsFiles {
        cert: args.tls_cert,
        key: args.tls_key,
        client_ca: None,
    };
    let reloader = Reloader::load(files, Arc::new(Metrics::new()))?;
    let tls_config = reloader.server_config(args.enable_http2)?;
    let listener = TcpListener::bind(args.listen).context("bind the TLS listener")?;
    let addr = listener.local_addr()?;
    let probe_listener = TcpListener::bind(args.probe_listen).context("bind the probe listener")?;
    let probe_addr = probe_listener.local_addr()?;
    let workers = args.workers.unwrap_or_else(default_workers).max(1);
    let skim = args.skim;

    let https = move || {
        let app = App::new()
            .app_data(web::Data::new(Skim(skim)))
            .wrap_fn(conn::track::<Gate, _, _>)
            .wrap_fn(conn::track::<Phase, _, _>)
            .service(web::resource("/validate").route(web::post().to(answer)))
            .default_service(web::to(HttpResponse::NotFound));
        let http = http_builder(addr)
            .secure()
            .on_connect_ext(|io: &HeadTimed<Gated<TlsStream<TcpStream>>>, data| {
                data.insert(io.phase());
                data.insert(io.get_ref().gate());
            })
            .finish(map_config(app, |_: ()| AppConfig::default()));
        let mut acceptor = Acceptor::new(tls_config.clone());
        acceptor.set_handshake_timeout(TLS_HANDSHAKE_TIMEOUT);
        acceptor
            .map_err(AcceptError::into_service_error)
            .map(|io: TlsStream<TcpStream>| {
                let (protocol, phase, gate) = match io.get_ref().1.alpn_protocol() {
                    Some(tls::ALPN_H2) => (Protocol::Http2, Phase::off(), Gate::off()),
                    _ => (Protocol::Http1, Phase::default(), Gate::default()),
                };
                // Same as the product: TCP_NODELAY on every accepted socket.
                let _ = io.get_ref().0.set_nodelay(true);
                let peer = io.get_ref().0.peer_addr().ok();
                (
                    HeadTimed::new(Gated::new(io, gate), DEFAULT_HEADER_TIMEOUT, phase),
                    protocol,
                    peer,
                )
            })
            .and_then(http.map_err(AcceptError::Service))
            .map_err(|_| ())
    };
    let probes = move || {
        let app = App::new()
            .route("/healthz", web::get().to(|| async { "ok\n" }))
            .default_service(web::to(HttpResponse::NotFound));
        http_builder(probe_addr)
            .finish(map_config(app, |_: ()| AppConfig::default()))
            .tcp()
            .map_err(|_| ())
    };
    Server::build()
        .workers(workers)
        .max_concurrent_connections(DEFAULT_MAX_CONNECTIONS.div_ceil(workers).max(1))
        // Stopped by the harness between runs: idle HTTP/2 connections need not hold it.
        .shutdown_timeout(1)
        .listen("floor-https", listener, https)?
        .listen("floor-probes", probe_listener, probes)?
        .run()
        .await
        .context("floor server")
}

fn http_builder<T, S>(local_addr: SocketAddr) -> HttpServiceBuilder<T, S>
where
    S: ServiceFactory<Request, Config = ()>,
    S::Error: Into<Response<BoxBody>> + 'static,
    S::InitError: std::fmt::Debug,
    <S::Service as Service<Request>>::Future: 'static,
{
    HttpServiceBuilder::default()
        .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
        .client_request_timeout(DEFAULT_HEADER_TIMEOUT)
        .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
        .local_addr(local_addr)
        .h2_initial_window_size(H2_WINDOW_BYTES)
        .h2_initial_connection_window_size(H2_WINDOW_BYTES)
}

/// Whether to read each review with serde_json before answering (`--skim`).
struct Skim(bool);

/// Opens the gate and reads the body under the product's limit and deadline, into one buffer
/// of the declared size as the product does, then answers the constant.
async fn answer(req: HttpRequest, payload: web::Payload, skim: web::Data<Skim>) -> HttpResponse {
    if let Some(gate) = req.conn_data::<Gate>() {
        gate.open();
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > DEFAULT_MAX_BODY_BYTES) {
        return HttpResponse::PayloadTooLarge().finish();
    }
    let read = tokio::time::timeout(DEFAULT_REQUEST_TIMEOUT, async move {
        let mut body = Vec::with_capacity(declared.unwrap_or(0));
        let mut stream = pin!(BodyStream::new(payload));
        while let Some(chunk) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            let chunk = chunk.map_err(|_| HttpResponse::BadRequest().finish())?;
            if body.len() + chunk.len() > DEFAULT_MAX_BODY_BYTES {
                return Err(HttpResponse::PayloadTooLarge().finish());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    });
    match read.await {
        Ok(Ok(body)) => {
            if skim.0 && serde_json::from_slice::<IgnoredAny>(&body).is_err() {
                return HttpResponse::BadRequest().finish();
            }
            HttpResponse::Ok()
                .content_type("application/json")
                .body(Bytes::from_static(ANSWER.as_bytes()))
        }
        Ok(Err(refused)) => refused,
        Err(_) => HttpResponse::RequestTimeout().finish(),
    }
}
