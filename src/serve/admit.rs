//! The admit handler: the HTTP checks of one AdmissionReview (media type, size, memory
//! budget, deadline), then the pure pipeline (and, with `--unique-addresses`, the reservations
//! of what it admits), then the answer, its log line and its metrics.
//!
//! Every line a request writes goes through [`request_line!`]: written while the second's
//! [`LineBudget`](crate::serve::logs::LineBudget) lasts, counted past it.

use std::future::poll_fn;
use std::pin::pin;
use std::time::{Duration, Instant};

use actix_http::ConnectionType;
use actix_web::body::{BodyStream, MessageBody as _};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use tracing::Level;

use crate::admission::{self, Webhook};
use crate::serve::budget::{self, Exhausted};
use crate::serve::duration::{self, millis};
use crate::serve::gate::Gate;
use crate::serve::logs::{Clipped, LineBudget};
use crate::serve::metrics::{self, Metrics, Verdict};
use crate::serve::reserve;
use crate::serve::routes::{plain, JSON};
use crate::serve::state::State;

/// A line of one request at `$level`, within the requests' line budget `$lines`: nothing is
/// computed below the filter's level, and a line the filter lets through past the budget is
/// counted, not formatted.
macro_rules! request_line {
    ($lines:expr, $level:expr, $($line:tt)+) => {
        if tracing::enabled!($level) && $lines.take() {
            tracing::event!($level, $($line)+);
        }
    };
}

/// Answers one AdmissionReview: the HTTP checks, then the pure pipeline.
pub(super) async fn admit(
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
        request_line!(
            state.lines,
            Level::WARN,
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
            request_line!(
                state.lines,
                Level::WARN,
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
            request_line!(state.lines, Level::WARN, webhook = webhook_name, status = 400, error = %e, "request refused: body unreadable");
            return refuse(StatusCode::BAD_REQUEST, "request body could not be read");
        }
    };

    let reviewed = match &state.index {
        // Judged, then what it admits reserved against a concurrent review of the same address.
        Some(index) => index.review(&body, webhook, &state.options),
        None => admission::review(&body, webhook, &state.options),
    };
    // And reserved across replicas, in the API server, before it is answered allowed.
    let reviewed = match (reviewed, &state.reservations, &state.index) {
        (Ok(reviewed), Some(handle), Some(index)) => {
            let left = deadline.saturating_sub(started.elapsed());
            let review = (&body[..], webhook);
            Ok(reserve::hold(handle, index, &state.options, review, reviewed, left).await)
        }
        (reviewed, _, _) => reviewed,
    };
    match reviewed {
        Ok(reviewed) => {
            let s = &reviewed.summary;
            let elapsed = started.elapsed();
            log_review(&state.lines, s, webhook_name, elapsed);
            if let Some(recorder) = state.recorder.as_ref().filter(|_| !s.allowed) {
                recorder.record(&s.uid, &body);
            }
            if s.panicked {
                request_line!(state.lines, Level::ERROR, uid = %Clipped(&s.uid), webhook = webhook_name, "judging panicked: denied with code 500");
            }
            if elapsed > deadline {
                // The caller stopped waiting; an answer now would be read as if it were on time
                // by a client that ignores its own deadline.
                request_line!(
                    state.lines,
                    Level::WARN,
                    uid = %Clipped(&s.uid),
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
            request_line!(state.lines, Level::WARN, webhook = webhook_name, status = 400, reason = %Clipped(&e.to_string()), "request refused: malformed review");
            refuse(StatusCode::BAD_REQUEST, &e.to_string())
        }
    }
}

/// The review's line: at INFO for a denial and for what would have been denied (Warn, Audit),
/// at DEBUG for an allowed review, which the API server's audit log and the request counter
/// already record (a line per review cost a third of the server's CPU per review). Below the
/// filter's level nothing here is computed, and past the budget nothing is formatted.
fn log_review(
    lines: &LineBudget,
    s: &admission::Summary,
    webhook: &'static str,
    elapsed: Duration,
) {
    macro_rules! line {
        ($level:expr) => {
            request_line!(
                lines,
                $level,
                uid = %Clipped(&s.uid),
                namespace = %Clipped(&s.namespace),
                name = %Clipped(&s.name),
                operation = %Clipped(&s.operation),
                subresource = %Clipped(&s.sub_resource),
                webhook,
                verdict = Verdict::of(s).as_str(),
                allowed = s.allowed,
                would_deny = s.would_deny,
                code = s.code,
                causes = %cause_types(&s.causes),
                cause_count = s.causes.len(),
                warnings = s.warnings,
                duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                "review"
            )
        };
    }
    match Verdict::of(s) {
        Verdict::Allowed => line!(Level::DEBUG),
        Verdict::Denied | Verdict::WouldDeny | Verdict::Refused => line!(Level::INFO),
    }
}

/// Counts the unknown fields of a reviewed object and logs each path the first time it is
/// seen. Through an API server (which has already applied the installed CRD's schema) an
/// unknown field means the CRD is newer than this webhook: the operator should upgrade it.
/// These lines bound themselves (once per path, at most [`metrics::MAX_DRIFT_FIELDS`] and one
/// more), outside the requests' line budget.
fn schema_drift(metrics: &Metrics, summary: &admission::Summary) {
    for path in &summary.unknown_fields {
        match metrics.schema_drift(path) {
            metrics::Drift::Known | metrics::Drift::Overflow(false) => {}
            metrics::Drift::New(field) => tracing::warn!(
                field = %field,
                uid = %Clipped(&summary.uid),
                "schema drift: the object has a field this webhook does not know; the installed IPAMClaim CRD is newer than the webhook, upgrade it"
            ),
            metrics::Drift::Overflow(true) => tracing::warn!(
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
    request_line!(
        state.lines,
        Level::WARN,
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
    use actix_web::http::header::HeaderValue;

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
}
