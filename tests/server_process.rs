//! The real binary: graceful SIGTERM under load, start-up errors, `certs` and `crd`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{bin, Launch};
use common::*;
use ipamclaim_webhook::certs::{self, CertsOptions};

const SHUTDOWN_TIMEOUT_SECS: u64 = 10;
const BURST: usize = 48;

#[tokio::test]
async fn sigterm_lets_in_flight_reviews_finish_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = certs::generate(&CertsOptions::default()).expect("certs");
    let shutdown_timeout = SHUTDOWN_TIMEOUT_SECS.to_string();
    let mut server = Launch::serving(dir.path(), &certs)
        .args(&["--shutdown-timeout", &shutdown_timeout])
        // The delay has its own test below; here the drain is what is tested.
        .args(&["--shutdown-delay", "0"])
        .args(&["--workers", "2", "--log-format", "json"])
        // Allowed reviews are logged at DEBUG: this test reads their lines.
        .env("RUST_LOG", "info,ipamclaim_webhook=debug")
        .start()
        .await;
    let port = server.port;

    let url = format!("https://127.0.0.1:{port}/validate?timeout=5s");
    let client = client(tls_client(
        &certs.ca_pem,
        &[b"http/1.1"],
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        None,
    ));
    let first = review("before-sigterm", "admission.k8s.io/v1");
    assert_answers(&post_json(&client, &url, first.clone()).await, &first);

    // A burst of concurrent reviews; SIGTERM goes out as soon as the first is answered, while
    // the others are still in flight.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let tasks: Vec<_> = (0..BURST)
        .map(|i| {
            let client = client.clone();
            let url = url.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                let body = review(&format!("burst-{i}"), "admission.k8s.io/v1");
                let sent = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let reply = match sent {
                    Ok(resp) => Some(Reply::read(resp).await),
                    // Refused or reset once the listener has closed: never answered, never wrong.
                    Err(_) => None,
                };
                let _ = done.send(());
                (body, reply)
            })
        })
        .collect();
    drop(done_tx);
    tokio::time::timeout(PATIENCE, done_rx.recv())
        .await
        .expect("a burst review finishes");
    server.sigterm();

    let mut answered = 0;
    for task in tasks {
        let (body, reply) = tokio::time::timeout(PATIENCE, task)
            .await
            .expect("burst request ends")
            .expect("burst task");
        if let Some(reply) = reply {
            assert_answers(&reply, &body);
            answered += 1;
        }
    }
    assert!(answered >= 1, "no review of the burst was answered");

    let limit = Duration::from_secs(SHUTDOWN_TIMEOUT_SECS) + PATIENCE;
    let status = server
        .wait_exit(limit)
        .await
        .unwrap_or_else(|| panic!("server still running after SIGTERM:\n{}", server.log()));
    let log_text = server.log();
    assert!(status.success(), "exit status {status}:\n{log_text}");
    assert!(
        log_text.contains("SIGTERM"),
        "no shutdown line:\n{log_text}"
    );
    assert!(
        log_text.contains(r#""message":"review""#),
        "no review log line:\n{log_text}"
    );
    // Logs never carry key material or whole objects.
    assert!(!log_text.contains("PRIVATE KEY"));
    assert!(
        !log_text.contains("managedFields"),
        "object logged:\n{log_text}"
    );
}

#[tokio::test]
async fn sigterm_fails_readiness_but_keeps_serving_for_the_shutdown_delay() {
    const DELAY: Duration = Duration::from_secs(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let tls_dir = dir.path().join("tls");
    fs::create_dir(&tls_dir).expect("tls dir");
    let certs = certs::generate(&CertsOptions::default()).expect("certs");
    let mut volume = SecretVolume::create(
        &tls_dir,
        &[
            (certs::CERT_FILE, certs.cert_pem.as_bytes()),
            (certs::KEY_FILE, certs.key_pem.as_bytes()),
        ],
    );
    let mut launch = Launch::bare(dir.path());
    let (port, probe_port) = (launch.port, launch.probe_port);
    launch
        .cmd
        .env("IPAMCLAIM_WEBHOOK_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "IPAMCLAIM_WEBHOOK_PROBE_LISTEN",
            format!("127.0.0.1:{probe_port}"),
        )
        .env("IPAMCLAIM_WEBHOOK_TLS_CERT", tls_dir.join(certs::CERT_FILE))
        .env("IPAMCLAIM_WEBHOOK_TLS_KEY", tls_dir.join(certs::KEY_FILE))
        .env("IPAMCLAIM_WEBHOOK_SHUTDOWN_DELAY", "2s")
        .env("IPAMCLAIM_WEBHOOK_SHUTDOWN_TIMEOUT", "5")
        .env("IPAMCLAIM_WEBHOOK_TLS_RELOAD_INTERVAL", "100ms");
    let mut server = launch
        .args(&["--workers", "1", "--log-format", "json"])
        .start()
        .await;

    let url = format!("https://127.0.0.1:{port}/validate?timeout=5s");
    let fresh_client = || {
        client(tls_client(
            &certs.ca_pem,
            &[b"http/1.1"],
            &[&rustls::version::TLS13, &rustls::version::TLS12],
            None,
        ))
    };
    // A denial, for the log line's causes.
    let mut invalid: serde_json::Value =
        serde_json::from_slice(&review("denied-uid", "admission.k8s.io/v1")).expect("JSON");
    invalid["request"]["object"]["spec"]["interface"] = "eth0:bad".into();
    let invalid = serde_json::to_vec(&invalid).expect("serialise");
    let reply = post_json(&fresh_client(), &url, invalid.clone()).await;
    assert_eq!(
        assert_answers(&reply, &invalid)["response"]["allowed"],
        false
    );

    // A renewal, for the reload log line.
    let renewed = certs.renew(&CertsOptions::default()).expect("renew");
    volume.update(&[
        (certs::CERT_FILE, renewed.cert_pem.as_bytes()),
        (certs::KEY_FILE, renewed.key_pem.as_bytes()),
    ]);
    let deadline = Instant::now() + PATIENCE;
    while !server.log().contains("serving certificate reloaded") {
        assert!(Instant::now() < deadline, "no reload:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Taken before the signal is sent, so that the delay measured here is never shorter than
    // the one the server waits (it was, by the time the kill took, on a busy machine).
    let signalled = Instant::now();
    server.sigterm();
    let plain = plain_client();
    let readyz = format!("http://127.0.0.1:{probe_port}/readyz");
    loop {
        let status = plain.get(&readyz).send().await.expect("readyz").status();
        if status == 503 {
            break;
        }
        assert!(
            signalled.elapsed() < DELAY / 2,
            "still ready {:?} after SIGTERM",
            signalled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Endpoints are not yet updated everywhere: new connections are still served.
    let late = review("after-sigterm-uid", "admission.k8s.io/v1");
    let reply = post_json(&fresh_client(), &url, late.clone()).await;
    assert_answers(&reply, &late);
    assert!(
        signalled.elapsed() < DELAY,
        "the delay was over before the check"
    );

    let status = server
        .wait_exit(DELAY + PATIENCE)
        .await
        .unwrap_or_else(|| panic!("server still running after SIGTERM:\n{}", server.log()));
    let exited = signalled.elapsed();
    let log_text = server.log();
    assert!(status.success(), "exit status {status}:\n{log_text}");
    assert!(exited >= DELAY, "exited after {exited:?}, before the delay");
    for needle in [
        r#""causes":"FieldValueInvalid""#,
        r#""would_deny":false"#,
        r#""message":"serving certificate reloaded""#,
        "tls.key",
    ] {
        assert!(log_text.contains(needle), "{needle} missing:\n{log_text}");
    }
    assert!(!log_text.contains("PRIVATE KEY"), "key material logged");
    assert!(
        !log_text.contains(renewed.key_pem.lines().nth(1).unwrap_or("-")),
        "key material logged"
    );
}

#[test]
fn serve_with_a_missing_certificate_fails_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.crt");
    let output = Command::new(bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--probe-listen",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(&missing)
        .arg("--tls-key")
        .arg(dir.path().join("missing.key"))
        .output()
        .expect("run serve");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&missing.display().to_string()),
        "stderr: {stderr}"
    );
}

#[test]
fn certs_writes_ca_cert_and_private_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("certs");
    let output = Command::new(bin())
        .args(["certs", "--out"])
        .arg(&out)
        .args(["--dns", "webhook.example.test", "--ip", "127.0.0.1"])
        .output()
        .expect("run certs");
    assert!(output.status.success(), "{output:?}");
    for name in [certs::CA_FILE, certs::CERT_FILE, certs::KEY_FILE] {
        assert!(out.join(name).is_file(), "{name} missing");
    }
    let mode = fs::metadata(out.join(certs::KEY_FILE))
        .expect("stat key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "tls.key mode {mode:o}");
    let printed = [output.stdout, output.stderr].concat();
    assert!(
        !String::from_utf8_lossy(&printed).contains("PRIVATE KEY"),
        "key material printed"
    );
    let key = fs::read_to_string(out.join(certs::KEY_FILE)).expect("read key");
    assert!(key.contains("BEGIN PRIVATE KEY"));
}

#[test]
fn certs_into_an_unusable_directory_fails_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    fs::write(&file, "").expect("write");
    let output = Command::new(bin())
        .args(["certs", "--out"])
        .arg(&file)
        .output()
        .expect("run certs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("a-file"), "stderr: {stderr}");
}

#[test]
fn crd_prints_the_custom_resource_definition() {
    let output = Command::new(bin()).arg("crd").output().expect("run crd");
    assert!(output.status.success(), "{output:?}");
    let yaml = String::from_utf8(output.stdout).expect("UTF-8");
    for needle in [
        "kind: CustomResourceDefinition",
        "plural: ipamclaims",
        "status: {}",
    ] {
        assert!(yaml.contains(needle), "{needle:?} missing from:\n{yaml}");
    }
}

/// A CREATE review whose claim carries `spec.macRequest`: a field a newer IPAMClaim CRD might
/// add, which an API server running that CRD would pass on to the webhook.
fn review_from_a_newer_crd(uid: &str) -> Vec<u8> {
    let mut review: serde_json::Value =
        serde_json::from_slice(&review(uid, "admission.k8s.io/v1")).expect("JSON");
    review["request"]["object"]["spec"]["macRequest"] = "02:00:00:00:00:01".into();
    serde_json::to_vec(&review).expect("JSON")
}

// DESIGN §1: through an API server an unknown field means the installed CRD is newer than the
// webhook. With default flags it is reported (warning, metric, one log line), never denied;
// `--field-validation Strict` denies it as before; replay stays strict by default.
#[tokio::test]
async fn schema_drift_is_reported_not_denied_under_default_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = certs::generate(&CertsOptions::default()).expect("certs");
    let server = Launch::serving(dir.path(), &certs).start().await;
    let port = server.port;
    let client = client(tls_client(
        &certs.ca_pem,
        &[b"http/1.1"],
        &[&rustls::version::TLS13],
        None,
    ));
    let url = format!("https://127.0.0.1:{port}/validate?timeout=5s");
    for uid in ["drift-1", "drift-2"] {
        let body = review_from_a_newer_crd(uid);
        let answer = assert_answers(&post_json(&client, &url, body.clone()).await, &body);
        assert_eq!(answer["response"]["allowed"], true, "{answer}");
        assert_eq!(
            answer["response"]["warnings"],
            serde_json::json!(["unknown field \"spec.macRequest\""]),
            "{answer}"
        );
    }
    let metrics = server.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"ipamclaim_webhook_schema_drift_total{field="spec.macRequest"}"#
        ),
        Some(2.0),
        "{metrics}"
    );
    let log = server.log();
    drop(server);
    assert_eq!(
        log.matches("schema drift").count(),
        1,
        "one log line for the new path, not one per review:\n{log}"
    );
    assert!(log.contains("spec.macRequest"), "{log}");

    // Strict on request: denied as before.
    let strict_dir = tempfile::tempdir().expect("tempdir");
    let strict = Launch::serving(strict_dir.path(), &certs)
        .args(&["--field-validation", "Strict"])
        .start()
        .await;
    let port = strict.port;
    let url = format!("https://127.0.0.1:{port}/validate?timeout=5s");
    let body = review_from_a_newer_crd("strict-1");
    let answer = assert_answers(&post_json(&client, &url, body.clone()).await, &body);
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert_eq!(answer["response"]["status"]["code"], 400, "{answer}");

    // Replay judges files no API server has seen: strict by default.
    let file = dir.path().join("newer-crd.json");
    fs::write(&file, review_from_a_newer_crd("replay-1")).expect("write review");
    let replay = Command::new(bin())
        .args(["replay", "--output", "json", "--webhook", "validate"])
        .arg(&file)
        .env_remove("IPAMCLAIM_WEBHOOK_FIELD_VALIDATION")
        .output()
        .expect("run replay");
    assert_eq!(replay.status.code(), Some(1), "{replay:?}");
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert!(
        stdout.contains(r#"strict decoding error: unknown field \"spec.macRequest\""#),
        "{stdout}"
    );
}
