//! Prometheus metrics of one server: what was reviewed and how, how long it took, and the state
//! of the serving certificate, rendered in the Prometheus text format for `GET /metrics`.
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client, rather than the
//! `metrics` facade with its exporter: a [`Registry`] is an ordinary value held by the server,
//! so several servers in one process (the integration tests) never share or fight over a
//! global recorder; label sets are typed; and it links far fewer crates.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::AtomicI64;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    prometheus_text, DescriptorEncoder, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::admission::rules::networks::MisfitReason;
use crate::admission::Summary;
use crate::cluster::leases::Reserver;
use crate::cluster::networks::SharedNetworks;
use crate::cluster::SharedIndex;
use crate::serve::logs::{DroppedLines, LineBudget};

/// `Content-Type` of [`Metrics::render`]: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the latency histogram. A review is judged in tens of
/// microseconds, so the buckets start at 25 µs. The top ones follow the API server's
/// `timeoutSeconds` (5 s in manifests/, at most 30 s): `histogram_quantile` cannot estimate past
/// the highest finite bound, so the latency alert's threshold, half of `timeoutSeconds` (2.5 s),
/// must be a bound, and 5 s and 10 s keep it meaningful for longer timeouts
/// (tests/manifests/test_monitoring.py checks the alert against the bounds served).
const LATENCY_BUCKETS: [f64; 18] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
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
struct FieldLabels {
    field: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MisfitLabels {
    reason: &'static str,
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
    schema_drift: Family<FieldLabels, Counter>,
    drift_fields: Mutex<DriftFields>,
    budget: BudgetGauges,
}

/// The field paths [`Metrics::schema_drift`] has labelled.
#[derive(Debug, Default)]
struct DriftFields {
    /// At most [`MAX_DRIFT_FIELDS`].
    labelled: HashSet<String>,
    /// Whether a path past the bound has been counted under [`OTHER_DRIFT_FIELD`].
    overflowed: bool,
}

/// How many distinct field paths the schema-drift counter labels; later ones count under
/// [`OTHER_DRIFT_FIELD`], so that a client cannot grow the label set without bound.
pub const MAX_DRIFT_FIELDS: usize = 64;

/// The `field` label of schema drift past [`MAX_DRIFT_FIELDS`] distinct paths.
pub const OTHER_DRIFT_FIELD: &str = "(other)";

/// What [`Metrics::schema_drift`] made of one unknown field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    /// A path counted before.
    Known,
    /// A path counted for the first time, under this label.
    New(String),
    /// A new path past the label bound, counted under [`OTHER_DRIFT_FIELD`]; `true` the first
    /// time that happens.
    Overflow(bool),
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
        let schema_drift = Family::<FieldLabels, Counter>::default();
        registry.register(
            "ipamclaim_webhook_schema_drift",
            "Unknown fields in reviewed objects, by field path (list indices as [*]): through an \
             API server, the installed IPAMClaim CRD declares fields this webhook does not know",
            schema_drift.clone(),
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
            schema_drift,
            drift_fields: Mutex::default(),
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

    /// Counts one unknown field found in a reviewed object, by its path with list indices
    /// folded (`status.conditions[*].colour`), and says whether the path is new.
    pub fn schema_drift(&self, path: &str) -> Drift {
        let field = fold_indices(path);
        let mut fields = self
            .drift_fields
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let drift = if fields.labelled.contains(&field) {
            Drift::Known
        } else if fields.labelled.len() < MAX_DRIFT_FIELDS {
            fields.labelled.insert(field.clone());
            Drift::New(field.clone())
        } else {
            Drift::Overflow(!std::mem::replace(&mut fields.overflowed, true))
        };
        drop(fields);
        let label = match &drift {
            Drift::Overflow(_) => OTHER_DRIFT_FIELD.to_owned(),
            _ => field,
        };
        self.schema_drift
            .get_or_create(&FieldLabels { field: label })
            .inc();
        drift
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

    /// Adds the metrics of the `--unique-addresses` index (DESIGN §9), read from it at each
    /// scrape: claims and addresses indexed, reservations, conflicts found, watch restarts,
    /// the time since the last watch event and whether the first list is indexed.
    pub fn watch_index(&mut self, index: std::sync::Arc<SharedIndex>) {
        self.registry
            .register_collector(Box::new(IndexCollector(index)));
    }

    /// Adds the metrics of the reservations across replicas (`--unique-addresses` with
    /// `--reservations Leases`, DESIGN §9), read from them at each scrape, and returns the
    /// histogram of the time a review waits for its reservations, for the admit path to fill.
    pub fn watch_reservations(&mut self, reserver: std::sync::Arc<Reserver>) -> Histogram {
        let duration = Histogram::new(LATENCY_BUCKETS);
        self.registry.register(
            "ipamclaim_webhook_reservation_duration_seconds",
            "Time a review waited for the Leases that reserve the addresses it newly gives its \
             claim (reviews that add no address never wait)",
            duration.clone(),
        );
        self.registry
            .register_collector(Box::new(ReservationCollector(reserver)));
        duration
    }

    /// Adds the count of log lines the log's writer dropped (its queue full), read at each
    /// scrape; zero for a server started without the writer.
    pub fn log_lines_dropped(&mut self, dropped: DroppedLines) {
        self.registry
            .register_collector(Box::new(DroppedCollector(dropped)));
    }

    /// Adds the count of the requests' log lines not written because more came in a second
    /// than `--request-log-limit` allows, read at each scrape.
    pub fn log_lines_suppressed(&mut self, budget: std::sync::Arc<LineBudget>) {
        self.registry
            .register_collector(Box::new(SuppressedCollector(budget)));
    }

    /// Adds the metrics of the `--check-networks` index (DESIGN §10), read from it at each
    /// scrape: NADs and networks indexed, configs that do not parse, networks without rules or
    /// whose NADs disagree, watch restarts, the time since the last watch event, whether the
    /// first list is indexed, and the addresses found not to fit their network, by rule.
    pub fn watch_networks(&mut self, networks: std::sync::Arc<SharedNetworks>) {
        self.registry
            .register_collector(Box::new(NetworksCollector(networks)));
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

/// A field path with every list index written `[*]`, so that one drifted field of a list's
/// items is one label, not one per item.
fn fold_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        match rest.find(']') {
            Some(close) if close > 0 && rest[..close].bytes().all(|b| b.is_ascii_digit()) => {
                out.push('*');
                rest = &rest[close..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

/// The `--unique-addresses` metrics, read from the index at each scrape.
#[derive(Debug)]
struct IndexCollector(std::sync::Arc<SharedIndex>);

impl Collector for IndexCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.stats();
        let gauges: [(&str, &str, i64); 4] = [
            (
                "ipamclaim_webhook_index_claims",
                "IPAMClaims holding at least one address in the --unique-addresses index",
                saturating(stats.claims),
            ),
            (
                "ipamclaim_webhook_index_addresses",
                "Addresses (claim, network, IP) held in the --unique-addresses index",
                saturating(stats.addresses),
            ),
            (
                "ipamclaim_webhook_index_reservations",
                "Addresses this replica admitted that the watch does not show yet",
                saturating(stats.reservations),
            ),
            (
                "ipamclaim_webhook_index_ready",
                "1 once the first full list of IPAMClaims is indexed, else 0",
                i64::from(stats.ready),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let counters = [
            (
                "ipamclaim_webhook_address_conflicts",
                "Addresses of reviewed claims found held by another claim (denied, or ratcheted \
                 into warnings)",
                stats.conflicts,
            ),
            (
                "ipamclaim_webhook_watch_restarts",
                "Times the watch of IPAMClaims broke and was resumed or re-listed",
                stats.watch_restarts,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        if let Some(since) = stats.since_last_event {
            let gauge = ConstGauge::new(since.as_secs_f64());
            gauge.encode(encoder.encode_descriptor(
                "ipamclaim_webhook_watch_last_event_age_seconds",
                "Seconds since the watch of IPAMClaims last delivered a change or a full list \
                 (a quiet cluster has few changes; watch restarts tell a broken watch)",
                None,
                gauge.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    write: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The metrics of the reservations across replicas, read from them at each scrape.
#[derive(Debug)]
struct ReservationCollector(std::sync::Arc<Reserver>);

impl Collector for ReservationCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = self.0.counts();
        let counter = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "ipamclaim_webhook_reservation_writes",
            "Writes of reservation Leases that succeeded, by write: created (an address newly \
             reserved), renewed, taken_over (a run-out Lease of a claim that never held its \
             address), collected (deleted once the index guards the address), released (deleted \
             because the review that wrote it was refused)",
            None,
            counter.metric_type(),
        )?;
        for (write, value) in [
            ("created", c.created),
            ("renewed", c.renewed),
            ("taken_over", c.taken_over),
            ("collected", c.collected),
            ("released", c.released),
        ] {
            ConstCounter::new(value).encode(family.encode_family(&WriteLabels { write })?)?;
        }
        let mut family = encoder.encode_descriptor(
            "ipamclaim_webhook_reservation_errors",
            "Reservations that failed, by reason: timeout and api refuse the review with code \
             500 (fail closed), collect is a round of collection retried later",
            None,
            counter.metric_type(),
        )?;
        for (reason, value) in [
            ("timeout", c.timeouts),
            ("api", c.api_errors),
            ("collect", c.collect_errors),
        ] {
            ConstCounter::new(value).encode(family.encode_family(&ReasonLabels { reason })?)?;
        }
        let conflicts = ConstCounter::new(c.conflicts);
        conflicts.encode(encoder.encode_descriptor(
            "ipamclaim_webhook_reservation_conflicts",
            "Addresses found held by another claim through its reservation Lease (admitted by \
             another replica, not yet in this one's index): denied, or warnings under \
             --enforcement Warn|Audit",
            None,
            conflicts.metric_type(),
        )?)?;
        let known = ConstGauge::new(saturating(c.known));
        known.encode(encoder.encode_descriptor(
            "ipamclaim_webhook_reservation_leases",
            "Reservation Leases this replica wrote or read and has not collected yet",
            None,
            known.metric_type(),
        )?)?;
        Ok(())
    }
}

/// The `--check-networks` metrics, read from the index at each scrape.
#[derive(Debug)]
struct NetworksCollector(std::sync::Arc<SharedNetworks>);

impl Collector for NetworksCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.stats();
        let counts = stats.counts;
        let gauges: [(&str, &str, i64); 6] = [
            (
                "ipamclaim_webhook_network_index_nads",
                "NetworkAttachmentDefinitions in the --check-networks index",
                saturating(counts.nads),
            ),
            (
                "ipamclaim_webhook_network_index_networks",
                "Networks (CNI config names) the indexed NetworkAttachmentDefinitions define",
                saturating(counts.networks),
            ),
            (
                "ipamclaim_webhook_network_index_invalid_configs",
                "NetworkAttachmentDefinitions whose config does not parse as its plugin reads it \
                 (their network is known without address rules)",
                saturating(counts.invalid),
            ),
            (
                "ipamclaim_webhook_network_index_unruled_networks",
                "Networks known without address rules (another plugin or IPAM, no subnets, a \
                 config that does not parse): their claims get a warning, never a denial",
                saturating(counts.unruled),
            ),
            (
                "ipamclaim_webhook_network_index_disagreeing_networks",
                "Networks whose NetworkAttachmentDefinitions disagree about their addresses: \
                 their addresses are not checked",
                saturating(counts.disagreeing),
            ),
            (
                "ipamclaim_webhook_network_index_ready",
                "1 once the first full list of NetworkAttachmentDefinitions is indexed, else 0",
                i64::from(stats.ready),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        // Every reason from the start, so that an alert on a rate has a series to watch.
        let mut misfits = encoder.encode_descriptor(
            "ipamclaim_webhook_network_misfits",
            "Addresses of reviewed claims found not to fit their network, by the rule they break \
             (denied, or admitted under --enforcement Warn or Audit; not those ratcheted into \
             warnings)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (reason, n) in MisfitReason::ALL.iter().zip(stats.misfits) {
            let labels = MisfitLabels {
                reason: reason.as_str(),
            };
            ConstCounter::new(n).encode(misfits.encode_family(&labels)?)?;
        }
        let restarts = ConstCounter::new(stats.watch_restarts);
        restarts.encode(encoder.encode_descriptor(
            "ipamclaim_webhook_network_watch_restarts",
            "Times the watch of NetworkAttachmentDefinitions broke and was resumed or re-listed",
            None,
            restarts.metric_type(),
        )?)?;
        if let Some(since) = stats.since_last_event {
            let gauge = ConstGauge::new(since.as_secs_f64());
            gauge.encode(encoder.encode_descriptor(
                "ipamclaim_webhook_network_watch_last_event_age_seconds",
                "Seconds since the watch of NetworkAttachmentDefinitions last delivered a change \
                 or a full list (NADs change rarely; watch restarts tell a broken watch)",
                None,
                gauge.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// The count of dropped log lines, read at each scrape.
#[derive(Debug)]
struct DroppedCollector(DroppedLines);

impl Collector for DroppedCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(self.0.count());
        counter.encode(encoder.encode_descriptor(
            "ipamclaim_webhook_log_lines_dropped",
            "Log lines dropped because the log's writer fell behind (its queue full) rather \
             than holding a review back",
            None,
            counter.metric_type(),
        )?)
    }
}

/// The count of suppressed log lines, read at each scrape.
#[derive(Debug)]
struct SuppressedCollector(std::sync::Arc<LineBudget>);

impl Collector for SuppressedCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(self.0.suppressed());
        counter.encode(encoder.encode_descriptor(
            "ipamclaim_webhook_log_lines_suppressed",
            "Log lines of requests (denials, refusals, errors) not written because more came \
             in a second than --request-log-limit allows; the requests are counted all the same",
            None,
            counter.metric_type(),
        )?)
    }
}

fn saturating(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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
            operation: operation.to_owned().into(),
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
    fn network_metrics_are_exported_only_with_check_networks() {
        let plain = Metrics::new();
        assert!(!plain.render().contains("network"), "{}", plain.render());

        let networks = std::sync::Arc::new(SharedNetworks::new());
        let mut m = Metrics::new();
        m.watch_networks(networks.clone());
        use crate::admission::rules::networks::Networks as _;
        networks.misfit(MisfitReason::NotInSubnets);
        networks.misfit(MisfitReason::NotInSubnets);
        networks.misfit(MisfitReason::Gateway);
        let text = m.render();
        for line in [
            r#"ipamclaim_webhook_network_misfits_total{reason="not_in_subnets"} 2"#,
            r#"ipamclaim_webhook_network_misfits_total{reason="gateway"} 1"#,
            r#"ipamclaim_webhook_network_misfits_total{reason="broadcast"} 0"#,
            "ipamclaim_webhook_network_index_ready 0",
            "ipamclaim_webhook_network_index_nads 0",
            "ipamclaim_webhook_network_index_invalid_configs 0",
            "ipamclaim_webhook_network_watch_restarts_total 0",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert_eq!(
            text.matches("ipamclaim_webhook_network_misfits_total{")
                .count(),
            MisfitReason::ALL.len()
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

    #[test]
    fn schema_drift_folds_list_indices_and_says_when_a_path_is_new() {
        let m = Metrics::new();
        assert_eq!(
            m.schema_drift("spec.macRequest"),
            Drift::New("spec.macRequest".to_owned())
        );
        assert_eq!(m.schema_drift("spec.macRequest"), Drift::Known);
        assert_eq!(
            m.schema_drift("status.conditions[0].colour"),
            Drift::New("status.conditions[*].colour".to_owned())
        );
        assert_eq!(m.schema_drift("status.conditions[12].colour"), Drift::Known);
        // Brackets that are not an index stay as they are.
        assert_eq!(fold_indices("spec.a[b]"), "spec.a[b]");
        assert_eq!(fold_indices("spec.[]x[3"), "spec.[]x[3");
        let text = m.render();
        for line in [
            r#"ipamclaim_webhook_schema_drift_total{field="spec.macRequest"} 2"#,
            r#"ipamclaim_webhook_schema_drift_total{field="status.conditions[*].colour"} 2"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn schema_drift_labels_at_most_a_bounded_number_of_paths() {
        let m = Metrics::new();
        for i in 0..MAX_DRIFT_FIELDS {
            assert!(matches!(
                m.schema_drift(&format!("spec.f{i}")),
                Drift::New(_)
            ));
        }
        assert_eq!(m.schema_drift("spec.one_too_many"), Drift::Overflow(true));
        assert_eq!(m.schema_drift("spec.and_another"), Drift::Overflow(false));
        // A path labelled before the bound was reached keeps its own label.
        assert_eq!(m.schema_drift("spec.f0"), Drift::Known);
        let text = m.render();
        let labels = text
            .lines()
            .filter(|l| l.starts_with("ipamclaim_webhook_schema_drift_total{"))
            .count();
        assert_eq!(labels, MAX_DRIFT_FIELDS + 1, "{text}");
        assert!(text.contains(r#"ipamclaim_webhook_schema_drift_total{field="(other)"} 2"#));
    }
}
