//! The routes of both listeners: the two webhooks, the probes, `/metrics`, and the small
//! plain answers around them.

use std::time::SystemTime;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{guard, HttpRequest, HttpResponse};
use tracing::debug;

use crate::admission::Webhook;
use crate::serve::admit::admit;
use crate::serve::metrics;
use crate::serve::state::State;

/// The media type of reviews and their answers.
pub(super) const JSON: &str = "application/json";
/// The media type of the plain answers.
const TEXT: &str = "text/plain; charset=utf-8";

/// `/validate` and `/mutate`: POST only.
pub(super) fn webhook_routes(cfg: &mut web::ServiceConfig) {
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
pub(super) fn probe_routes(cfg: &mut web::ServiceConfig) {
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
    } else if let Some(why) = views_not_ready(&state) {
        plain(StatusCode::SERVICE_UNAVAILABLE, &why)
    } else {
        plain(StatusCode::OK, "ok")
    }
}

/// Why an enabled view of the cluster cannot serve yet (each one's reason, joined), or `None`
/// once every enabled view has its first list: admitting without the cluster's claims would let
/// conflicts in unseen, and without its networks, misfits.
fn views_not_ready(state: &State) -> Option<String> {
    let claims = state.index.as_ref().and_then(|i| i.not_ready());
    let networks = state.networks.as_ref().and_then(|n| n.not_ready());
    match (claims, networks) {
        (Some(claims), Some(networks)) => Some(format!("{claims}; {networks}")),
        (claims, networks) => claims.or(networks),
    }
}

/// `/metrics` (probe listener only): GET and HEAD.
pub(super) fn metrics_routes(cfg: &mut web::ServiceConfig) {
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

pub(super) async fn not_found(req: HttpRequest) -> HttpResponse {
    debug!(method = %req.method(), path = req.path(), "no such route");
    plain(StatusCode::NOT_FOUND, "not found")
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .content_type(TEXT)
        .body("method not allowed\n")
}

/// A plain-text answer of one line.
pub(super) fn plain(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(TEXT)
        .body(format!("{text}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::App;

    use crate::admission;
    use crate::cluster::networks::SharedNetworks;
    use crate::cluster::{SharedIndex, DEFAULT_RESERVATION_TTL};
    use crate::serve::budget::{Budget, MemoryPlan, DEFAULT_MEMORY_BUDGET};
    use crate::serve::metrics::Metrics;
    use crate::serve::reload::CertStore;
    use crate::serve::server::DEFAULT_REQUEST_TIMEOUT;
    use crate::serve::state::Readiness;
    use crate::serve::tls;

    fn state_expiring_at(not_after: Option<i64>) -> web::Data<State> {
        web::Data::new(plain_state(not_after))
    }

    fn plain_state(not_after: Option<i64>) -> State {
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
        State {
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
            reservations: None,
            networks: None,
            lines: Default::default(),
        }
    }

    fn state() -> web::Data<State> {
        state_expiring_at(None)
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

    /// `/readyz` with the views given: status and body.
    async fn readyz_with(
        index: Option<Arc<SharedIndex>>,
        networks: Option<Arc<SharedNetworks>>,
    ) -> (StatusCode, String) {
        let mut state = plain_state(None);
        state.index = index;
        state.networks = networks;
        let state = web::Data::new(state);
        let app = init_service(App::new().app_data(state).configure(probe_routes)).await;
        let resp = call_service(&app, TestRequest::get().uri("/readyz").to_request()).await;
        let status = resp.status();
        let body = actix_web::body::to_bytes(resp.into_body())
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[actix_web::test]
    async fn readyz_fails_until_every_enabled_view_has_its_first_list() {
        let claims = Arc::new(SharedIndex::new(DEFAULT_RESERVATION_TTL));
        let networks = Arc::new(SharedNetworks::new());
        let (status, body) = readyz_with(Some(claims.clone()), Some(networks.clone())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("IPAMClaim index is not ready")
                && body.contains("network index is not ready"),
            "{body}"
        );
        networks.mark_ready();
        let (status, body) = readyz_with(Some(claims.clone()), Some(networks.clone())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body.contains("network"), "{body}");
        // The networks alone: ready once their first list is in.
        let unready = Arc::new(SharedNetworks::new());
        crate::cluster::client::Watched::watch(&*unready)
            .blocked_because(Some("forbidden to list x".to_owned()));
        let (status, body) = readyz_with(None, Some(unready)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("the network index cannot be built: forbidden to list x"),
            "{body}"
        );
        claims.mark_ready();
        assert_eq!(
            readyz_with(Some(claims), Some(networks)).await.0,
            StatusCode::OK
        );
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
