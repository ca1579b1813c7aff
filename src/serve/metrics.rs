//! Prometheus metrics of one server: what was reviewed and how, how long it took, and the state
//! of the serving certificate, rendered in the Prometheus text format for `GET /metrics`.
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client, rather than the
//! `metrics` facade with its exporter: a [`Registry`] is an ordinary value held by the server,
//! so several servers in one process (the integration tests) never share or fight over a
//! global recorder; label sets are typed; and it links far fewer crates.

use std::fmt::Write as _;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::admission::Summary;

/// `Content-Type` of [`Metrics::render`]: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the latency histogram. A review is judged in tens of
/// microseconds, so the buckets start at 25 µs; the API server gives up at its `timeoutSeconds`
/// (at most 30 s), and anything past a second is an incident whatever its exact length.
const LATENCY_BUCKETS: [f64; 15] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0,
];

/// How a request ended, the `verdict` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Answered `allowed: true`, and nothing would have been denied.
    Allowed,
    /// Answered `allowed: false`.
    Denied,
    /// Invalid, but admitted under `--enforcement Warn|Audit`.
    WouldDeny,
    /// Not judged: malformed review, wrong media type, body too large or too slow (an HTTP
    /// error status, no AdmissionReview).
    Refused,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    webhook: &'static str,
    operation: &'static str,
    code: u16,
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    webhook: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The metrics of one server. Cheap to update from any thread; shared behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<WebhookLabels, Histogram, fn() -> Histogram>,
    denials: Family<CauseLabels, Counter>,
    would_deny: Family<CauseLabels, Counter>,
    in_flight: Gauge,
    cert_not_after: Gauge<i64, AtomicI64>,
    reloads: Family<ResultLabels, Counter>,
    panics: Counter,
    budget: BudgetGauges,
}

/// The gauges of the memory budget for request bodies (see `serve::budget`).
#[derive(Clone, Debug, Default)]
pub struct BudgetGauges {
    /// Bytes set aside for request bodies.
    pub size: Gauge,
    /// Bytes of it that admitted bodies hold now.
    pub in_use: Gauge,
    /// Requests whose body waits for room.
    pub waiting: Gauge,
}

/// Counts one request in flight until dropped, however its handler ends (answered, or
/// dropped because the client went away).
#[derive(Debug)]
pub struct InFlight(Gauge);

// === impl Verdict ===

impl Verdict {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::WouldDeny => "would_deny",
            Verdict::Refused => "refused",
        }
    }

    /// The verdict of an answered review.
    pub fn of(summary: &Summary) -> Verdict {
        if summary.would_deny {
            Verdict::WouldDeny
        } else if summary.allowed {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }
}

// === impl Metrics ===

impl Metrics {
    /// A registry with every metric of the webhook registered, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "ipamclaim_webhook_requests",
            "Admission requests by webhook, operation, code (the denial's status code, 200 when \
             allowed, the HTTP status when refused) and verdict",
            requests.clone(),
        );
        let duration: Family<WebhookLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "ipamclaim_webhook_request_duration_seconds",
            "Time from the request head to the answer, body read included",
            duration.clone(),
        );
        let denials = Family::<CauseLabels, Counter>::default();
        registry.register(
            "ipamclaim_webhook_denials",
            "Causes of denied reviews, by cause type (one review may count several)",
            denials.clone(),
        );
        let would_deny = Family::<CauseLabels, Counter>::default();
        registry.register(
            "ipamclaim_webhook_would_deny",
            "Causes of invalid reviews admitted under --enforcement Warn or Audit, by cause type",
            would_deny.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "ipamclaim_webhook_in_flight_requests",
            "Admission requests being read or judged",
            in_flight.clone(),
        );
        let cert_not_after = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "ipamclaim_webhook_certificate_not_after_seconds",
            "notAfter of the serving certificate, in seconds since the Unix epoch",
            cert_not_after.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "ipamclaim_webhook_certificate_reloads",
            "Reloads of changed certificate, key or client CA files, by result",
            reloads.clone(),
        );
        // Both results exist from the start, so that an alert on failures has a series to
        // watch before the first one happens.
        for result in ["success", "failure"] {
            drop(reloads.get_or_create(&ResultLabels { result }));
        }
        let panics = Counter::default();
        registry.register(
            "ipamclaim_webhook_panics",
            "Panics caught while judging a review (each answered as a code 500 denial)",
            panics.clone(),
        );
        let budget = BudgetGauges::default();
        registry.register(
            "ipamclaim_webhook_memory_budget_bodies_bytes",
            "Bytes of the memory budget set aside for request bodies (and judging them)",
            budget.size.clone(),
        );
        registry.register(
            "ipamclaim_webhook_memory_budget_in_use_bytes",
            "Bytes of the request-body budget that admitted bodies hold now",
            budget.in_use.clone(),
        );
        registry.register(
            "ipamclaim_webhook_memory_budget_waiting_requests",
            "Requests whose body waits for room in the memory budget (their sockets are not read)",
            budget.waiting.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            denials,
            would_deny,
            in_flight,
            cert_not_after,
            reloads,
            panics,
            budget,
        }
    }

    /// The gauges of the memory budget, for the budget to keep up to date.
    pub fn budget_gauges(&self) -> BudgetGauges {
        self.budget.clone()
    }

    /// Counts an answered review of `webhook` (`validate` or `mutate`) that took `elapsed`.
    pub fn review(&self, webhook: &'static str, summary: &Summary, elapsed: Duration) {
        let verdict = Verdict::of(summary);
        let code = match verdict {
            Verdict::Allowed => 200,
            _ => summary.code,
        };
        self.count(
            webhook,
            operation(&summary.operation),
            code,
            verdict,
            elapsed,
        );
        if summary.panicked {
            self.panics.inc();
        }
        let causes = match verdict {
            Verdict::Denied => &self.denials,
            Verdict::WouldDeny => &self.would_deny,
            _ => return,
        };
        for cause in &summary.causes {
            causes
                .get_or_create(&CauseLabels {
                    cause: cause.clone(),
                })
                .inc();
        }
    }

    /// Counts a request refused with HTTP `status` before or instead of judging.
    pub fn refused(&self, webhook: &'static str, status: u16, elapsed: Duration) {
        self.count(webhook, "unknown", status, Verdict::Refused, elapsed);
    }

    fn count(
        &self,
        webhook: &'static str,
        operation: &'static str,
        code: u16,
        verdict: Verdict,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                webhook,
                operation,
                code,
                verdict: verdict.as_str(),
            })
            .inc();
        self.duration
            .get_or_create(&WebhookLabels { webhook })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a request in flight until the returned guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Records the serving certificate's `notAfter` (seconds since the Unix epoch).
    pub fn set_cert_not_after(&self, not_after: i64) {
        self.cert_not_after.set(not_after);
    }

    /// Counts one reload of changed TLS files.
    pub fn reload(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_text::encode(&mut text, &self.registry).is_err() {
            // Writing into a String cannot fail; say so in the exposition if it ever does.
            text.clear();
            let _ = writeln!(text, "# metrics could not be encoded");
        }
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The `operation` label: the four the API server sends, anything else folded into `other`
/// so that a client cannot grow the label set without bound.
fn operation(op: &str) -> &'static str {
    match op {
        "CREATE" => "CREATE",
        "UPDATE" => "UPDATE",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}

// === impl InFlight ===

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(operation: &str, allowed: bool, code: u16, causes: &[&str]) -> Summary {
        Summary {
            operation: operation.to_owned(),
            allowed,
            code,
            causes: causes.iter().map(|c| (*c).to_owned()).collect(),
            ..Summary::default()
        }
    }

    #[test]
    fn counts_verdicts_with_their_labels() {
        let m = Metrics::new();
        let ms = Duration::from_millis(1);
        m.review("validate", &summary("CREATE", true, 0, &[]), ms);
        m.review(
            "validate",
            &summary(
                "UPDATE",
                false,
                422,
                &["FieldValueInvalid", "FieldValueInvalid"],
            ),
            ms,
        );
        let mut audit = summary("CREATE", true, 422, &["FieldValueRequired"]);
        audit.would_deny = true;
        m.review("validate", &audit, ms);
        m.refused("mutate", 400, ms);
        let text = m.render();
        for line in [
            r#"ipamclaim_webhook_requests_total{webhook="validate",operation="CREATE",code="200",verdict="allowed"} 1"#,
            r#"ipamclaim_webhook_requests_total{webhook="validate",operation="UPDATE",code="422",verdict="denied"} 1"#,
            r#"ipamclaim_webhook_requests_total{webhook="validate",operation="CREATE",code="422",verdict="would_deny"} 1"#,
            r#"ipamclaim_webhook_requests_total{webhook="mutate",operation="unknown",code="400",verdict="refused"} 1"#,
            r#"ipamclaim_webhook_denials_total{cause="FieldValueInvalid"} 2"#,
            r#"ipamclaim_webhook_would_deny_total{cause="FieldValueRequired"} 1"#,
            r#"ipamclaim_webhook_request_duration_seconds_bucket{webhook="validate",le="2.5e-05"} 0"#,
            r#"ipamclaim_webhook_request_duration_seconds_count{webhook="validate"} 3"#,
            r#"ipamclaim_webhook_certificate_reloads_total{result="failure"} 0"#,
            "ipamclaim_webhook_panics_total 0",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(
            !text.contains(r#"denials_total{cause="FieldValueRequired"}"#),
            "a would-deny counted as a denial:\n{text}"
        );
    }

    #[test]
    fn unknown_operations_share_one_label() {
        let m = Metrics::new();
        for op in ["PATCH", "x".repeat(300).as_str(), ""] {
            m.review(
                "validate",
                &summary(op, false, 400, &["BadRequest"]),
                Duration::ZERO,
            );
        }
        let text = m.render();
        assert!(
            text.contains(r#"operation="other",code="400",verdict="denied"} 3"#),
            "{text}"
        );
    }

    #[test]
    fn in_flight_guard_decrements_when_dropped() {
        let m = Metrics::new();
        let a = m.in_flight();
        let b = m.in_flight();
        assert!(m
            .render()
            .contains("ipamclaim_webhook_in_flight_requests 2\n"));
        drop(a);
        drop(b);
        assert!(m
            .render()
            .contains("ipamclaim_webhook_in_flight_requests 0\n"));
    }

    #[test]
    fn panics_and_reloads_are_counted() {
        let m = Metrics::new();
        let mut panicked = summary("CREATE", false, 500, &["InternalError"]);
        panicked.panicked = true;
        m.review("validate", &panicked, Duration::ZERO);
        m.reload(true);
        m.reload(false);
        m.reload(false);
        m.set_cert_not_after(1_900_000_000);
        let text = m.render();
        for line in [
            "ipamclaim_webhook_panics_total 1\n",
            "ipamclaim_webhook_certificate_reloads_total{result=\"success\"} 1\n",
            "ipamclaim_webhook_certificate_reloads_total{result=\"failure\"} 2\n",
            "ipamclaim_webhook_certificate_not_after_seconds 1900000000\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
