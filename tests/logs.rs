//! The log of the real binary (DESIGN §6, issue 31): one INFO line per denial, none for an
//! allowed review unless DEBUG is asked for, and the last lines before a SIGTERM written out
//! before the process exits.

mod common;

use common::process::{Launch, Serving};
use common::*;
use ipamclaim_webhook::certs::{self, CertsOptions};
use serde_json::Value;

/// The captured CREATE with an interface name the kernel refuses: denied, one cause.
fn denied_review(uid: &str) -> Vec<u8> {
    let mut review: Value =
        serde_json::from_slice(&review(uid, "admission.k8s.io/v1")).expect("JSON");
    review["request"]["object"]["spec"]["interface"] = "eth0:1".into();
    serde_json::to_vec(&review).expect("JSON")
}

/// `serve --log-format json` (as the Deployment runs it) with `RUST_LOG` set or not.
async fn start(dir: &std::path::Path, rust_log: Option<&str>) -> Serving {
    start_with(dir, rust_log, &[]).await
}

/// [`start`] with more arguments.
async fn start_with(dir: &std::path::Path, rust_log: Option<&str>, more: &[&str]) -> Serving {
    let certs = certs::generate(&CertsOptions::default()).expect("certs");
    let mut launch = Launch::serving(dir, &certs)
        .args(&["--log-format", "json", "--shutdown-delay", "0"])
        .args(more);
    if let Some(filter) = rust_log {
        launch = launch.env("RUST_LOG", filter);
    }
    launch.start().await
}

/// POSTs each review to `/validate`, `concurrency` at a time, and checks each is answered.
async fn send(server: &Serving, ca_pem: &str, bodies: Vec<Vec<u8>>) {
    let client = client(tls_client(
        ca_pem,
        &[b"http/1.1"],
        &[&rustls::version::TLS13],
        None,
    ));
    let url = format!("https://127.0.0.1:{}/validate?timeout=5s", server.port);
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                assert_answers(&post_json(&client, &url, body.clone()).await, &body);
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("review answered");
    }
}

/// Stops the server with SIGTERM, waits for its exit, and returns its log as JSON lines.
async fn stop_and_read(mut server: Serving) -> Vec<Value> {
    server.sigterm();
    let status = server
        .wait_exit(PATIENCE)
        .await
        .unwrap_or_else(|| panic!("still running after SIGTERM:\n{}", server.log()));
    let log = server.log();
    assert!(status.success(), "exit status {status}:\n{log}");
    log.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn review_lines(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["message"] == "review").collect()
}

/// The CA of the certificates `Launch::serving` wrote into `dir`.
fn ca_of(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join(certs::CA_FILE)).expect("ca.crt")
}

#[tokio::test]
async fn a_denied_review_logs_one_info_line_with_its_fields_an_allowed_one_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), None).await;
    let ca = ca_of(dir.path());
    send(
        &server,
        &ca,
        vec![review("allowed-1", "admission.k8s.io/v1")],
    )
    .await;
    send(&server, &ca, vec![denied_review("denied-1")]).await;
    let lines = stop_and_read(server).await;

    let reviews = review_lines(&lines);
    assert_eq!(reviews.len(), 1, "one line, the denial's: {reviews:#?}");
    let line = reviews[0];
    assert_eq!(line["level"], "INFO", "{line}");
    for (field, value) in [
        ("uid", Value::from("denied-1")),
        ("operation", "CREATE".into()),
        ("webhook", "validate".into()),
        ("verdict", "denied".into()),
        ("allowed", false.into()),
        ("would_deny", false.into()),
        ("code", 422.into()),
        ("causes", "FieldValueInvalid".into()),
        ("cause_count", 1.into()),
    ] {
        assert_eq!(line[field], value, "{field} in {line}");
    }
    for field in [
        "namespace",
        "name",
        "subresource",
        "warnings",
        "duration_us",
    ] {
        assert!(!line[field].is_null(), "{field} missing from {line}");
    }
    assert!(
        !lines.iter().any(|l| l.to_string().contains("allowed-1")),
        "the allowed review was logged: {lines:#?}"
    );
}

#[tokio::test]
async fn a_review_admitted_under_warn_that_would_be_denied_logs_one_info_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = certs::generate(&CertsOptions::default()).expect("certs");
    let server = Launch::serving(dir.path(), &certs)
        .args(&["--log-format", "json", "--shutdown-delay", "0"])
        .args(&["--enforcement", "Warn"])
        .start()
        .await;
    let ca = ca_of(dir.path());
    send(
        &server,
        &ca,
        vec![review("allowed-3", "admission.k8s.io/v1")],
    )
    .await;
    send(&server, &ca, vec![denied_review("would-deny-1")]).await;
    let lines = stop_and_read(server).await;

    let reviews = review_lines(&lines);
    assert_eq!(
        reviews.len(),
        1,
        "one line, the would-be denial's: {reviews:#?}"
    );
    let line = reviews[0];
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["uid"], "would-deny-1", "{line}");
    assert_eq!(line["verdict"], "would_deny", "{line}");
    assert_eq!(line["allowed"], true, "{line}");
    assert_eq!(line["causes"], "FieldValueInvalid", "{line}");
}

#[tokio::test]
async fn an_allowed_review_logs_one_debug_line_when_debug_is_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), Some("ipamclaim_webhook=debug")).await;
    let ca = ca_of(dir.path());
    send(
        &server,
        &ca,
        vec![review("allowed-2", "admission.k8s.io/v1")],
    )
    .await;
    let lines = stop_and_read(server).await;

    let reviews = review_lines(&lines);
    assert_eq!(reviews.len(), 1, "{reviews:#?}");
    let line = reviews[0];
    assert_eq!(line["level"], "DEBUG", "{line}");
    assert_eq!(line["uid"], "allowed-2", "{line}");
    assert_eq!(line["verdict"], "allowed", "{line}");
    assert_eq!(line["code"], 0, "{line}");
}

#[tokio::test]
async fn the_last_lines_before_a_sigterm_reach_the_log() {
    const DENIALS: usize = 64;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), None).await;
    let ca = ca_of(dir.path());
    let bodies = (0..DENIALS)
        .map(|i| denied_review(&format!("last-{i}")))
        .collect();
    send(&server, &ca, bodies).await;
    // SIGTERM at once: the denials' lines and the shutdown's are still queued for the writer.
    let lines = stop_and_read(server).await;

    assert_eq!(review_lines(&lines).len(), DENIALS, "{lines:#?}");
    let last = lines.last().expect("a log");
    assert_eq!(
        last["message"], "stopped",
        "the last line is the exit's: {last}"
    );
    // Nothing of the review but its identity: never the object, never key material.
    let text: String = lines.iter().map(|l| l.to_string()).collect();
    assert!(!text.contains("managedFields") && !text.contains("PRIVATE KEY"));
}

// Issue 31: a flood of denials at saturation cost a fifth of the server's CPU in lines; past
// `--request-log-limit` a second they are counted instead.
#[tokio::test]
async fn a_flood_of_denials_writes_the_limits_lines_and_counts_the_rest() {
    const DENIALS: usize = 120;
    const LIMIT: usize = 5;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(dir.path(), None, &["--request-log-limit", "5"]).await;
    let ca = ca_of(dir.path());
    let bodies = (0..DENIALS)
        .map(|i| denied_review(&format!("flood-{i}")))
        .collect();
    let started = std::time::Instant::now();
    send(&server, &ca, bodies).await;
    // Each second the flood touched may have had its own LIMIT lines.
    let seconds = usize::try_from(started.elapsed().as_secs()).expect("seconds") + 2;
    let metrics = server.metrics().await;
    let suppressed = metric(&metrics, "ipamclaim_webhook_log_lines_suppressed_total")
        .expect("the suppressed lines' metric");
    let lines = stop_and_read(server).await;

    let written = review_lines(&lines).len();
    assert!(
        (LIMIT..=LIMIT * seconds).contains(&written),
        "{written} lines in {seconds} s at {LIMIT} a second"
    );
    assert_eq!(
        written + suppressed as usize,
        DENIALS,
        "every denial written or counted"
    );
    for line in review_lines(&lines) {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["allowed"], false, "{line}");
    }
}

#[tokio::test]
async fn no_limit_writes_a_line_for_every_denial() {
    const DENIALS: usize = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(dir.path(), None, &["--request-log-limit", "0"]).await;
    let ca = ca_of(dir.path());
    let bodies = (0..DENIALS)
        .map(|i| denied_review(&format!("all-{i}")))
        .collect();
    send(&server, &ca, bodies).await;
    let lines = stop_and_read(server).await;
    assert_eq!(review_lines(&lines).len(), DENIALS);
}
