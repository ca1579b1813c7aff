//! `GET /metrics` on the probe listener after real reviews over TLS.

mod common;

use common::*;
use ipamclaim_webhook::admission::Enforcement;
use serde_json::Value;

/// The captured CREATE review with an interface name the kernel refuses.
fn invalid_review(uid: &str) -> Vec<u8> {
    let mut review: Value =
        serde_json::from_slice(&review(uid, "admission.k8s.io/v1")).expect("review is JSON");
    review["request"]["object"]["spec"]["interface"] = Value::from("eth0:bad");
    serde_json::to_vec(&review).expect("serialise")
}

fn not_after_of(cert_pem: &str) -> f64 {
    let der = der_of(cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("X.509");
    cert.validity().not_after.timestamp() as f64
}

#[tokio::test]
async fn reviews_are_counted_by_verdict_cause_and_latency() {
    let server = TestServer::start(|_| {});
    let client = server.client();
    let validate = server.url("/validate?timeout=10s");

    let ok = review("metrics-allowed", "admission.k8s.io/v1");
    assert_eq!(post_json(&client, &validate, ok.clone()).await.status, 200);
    let bad = invalid_review("metrics-denied");
    let reply = post_json(&client, &validate, bad.clone()).await;
    assert_eq!(assert_answers(&reply, &bad)["response"]["allowed"], false);
    let reply = post_json(&client, &validate, b"{not json".to_vec()).await;
    assert_eq!(reply.status, 400);
    let reply = post_json(&client, &server.url("/mutate"), ok.clone()).await;
    assert_answers(&reply, &ok);

    let resp = plain_client()
        .get(server.probe_url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = resp.text().await.expect("text");
    let expect = |series: &str, value: f64| {
        assert_eq!(metric(&text, series), Some(value), "{series} in:\n{text}");
    };
    expect(
        r#"ipamclaim_webhook_requests_total{webhook="validate",operation="CREATE",code="200",verdict="allowed"}"#,
        1.0,
    );
    expect(
        r#"ipamclaim_webhook_requests_total{webhook="validate",operation="CREATE",code="422",verdict="denied"}"#,
        1.0,
    );
    expect(
        r#"ipamclaim_webhook_requests_total{webhook="validate",operation="unknown",code="400",verdict="refused"}"#,
        1.0,
    );
    expect(
        r#"ipamclaim_webhook_requests_total{webhook="mutate",operation="CREATE",code="200",verdict="allowed"}"#,
        1.0,
    );
    expect(
        r#"ipamclaim_webhook_denials_total{cause="FieldValueInvalid"}"#,
        1.0,
    );
    // Every validate request is in the histogram, refused ones too; the buckets start below a
    // millisecond and include 2.5 s, the latency alert's threshold (half of timeoutSeconds).
    expect(
        r#"ipamclaim_webhook_request_duration_seconds_count{webhook="validate"}"#,
        3.0,
    );
    expect(
        r#"ipamclaim_webhook_request_duration_seconds_bucket{webhook="validate",le="+Inf"}"#,
        3.0,
    );
    for le in [
        "2.5e-05", "0.0001", "0.001", "0.01", "0.1", "1", "2.5", "5", "10",
    ] {
        let series = format!(
            r#"ipamclaim_webhook_request_duration_seconds_bucket{{webhook="validate",le="{le}"}}"#
        );
        assert!(metric(&text, &series).is_some(), "{series} in:\n{text}");
    }
    expect("ipamclaim_webhook_in_flight_requests", 0.0);
    expect("ipamclaim_webhook_panics_total", 0.0);
    expect(
        r#"ipamclaim_webhook_certificate_reloads_total{result="failure"}"#,
        0.0,
    );
    expect(
        "ipamclaim_webhook_certificate_not_after_seconds",
        not_after_of(&server.certs.cert_pem),
    );
    assert!(
        !text.contains("would_deny"),
        "nothing would be denied under Deny:\n{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn audit_counts_would_deny_apart_from_denials() {
    let server = TestServer::start(|cfg| cfg.admission.enforcement = Enforcement::Audit);
    let client = server.client();
    let bad = invalid_review("metrics-audit");
    let reply = post_json(&client, &server.url("/validate"), bad.clone()).await;
    let answer = assert_answers(&reply, &bad);
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(
        answer["response"]["auditAnnotations"]["verdict"],
        "would-deny"
    );

    let text = server.metrics().await;
    assert_eq!(
        metric(
            &text,
            r#"ipamclaim_webhook_requests_total{webhook="validate",operation="CREATE",code="422",verdict="would_deny"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"ipamclaim_webhook_would_deny_total{cause="FieldValueInvalid"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("ipamclaim_webhook_denials_total{"),
        "an admitted review counted as a denial:\n{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_served_on_the_probe_port_only() {
    let server = TestServer::start(|_| {});
    let resp = server
        .client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics over TLS");
    assert_eq!(resp.status().as_u16(), 404);
    let resp = plain_client()
        .post(server.probe_url("/metrics"))
        .send()
        .await
        .expect("POST /metrics");
    assert_eq!(resp.status().as_u16(), 405);
    server.stop().await;
}
