//! Certificate hot reload over real TLS: the serving pair and the client CA rotated through a
//! kubelet-style `..data` symlink swap while reviews keep flowing.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use ipamclaim_webhook::certs::{self, CertsOptions, ClientCert};
use rustls::version::{TLS12, TLS13};

const RELOAD_INTERVAL: Duration = Duration::from_millis(100);

/// The `tls.crt`/`tls.key` pair of a Secret volume.
fn pair<'a>(cert_pem: &'a str, key_pem: &'a str) -> [(&'static str, &'a [u8]); 2] {
    [
        (certs::CERT_FILE, cert_pem.as_bytes()),
        (certs::KEY_FILE, key_pem.as_bytes()),
    ]
}

/// Polls `check` until it holds, for at most `PATIENCE`; returns how long it took.
async fn eventually<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < PATIENCE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Waits until `certificate_reloads_total{result="failure"}` is `count`.
async fn failed_reloads_reach(server: &TestServer, count: f64, what: &str) {
    eventually(what, || async move {
        let text = server.metrics().await;
        metric(
            &text,
            r#"ipamclaim_webhook_certificate_reloads_total{result="failure"}"#,
        ) == Some(count)
    })
    .await;
}

async fn served_certificate(server: &TestServer, ca_pem: &str) -> Vec<u8> {
    let (addr, ca) = (server.addr, ca_pem.to_owned());
    tokio::task::spawn_blocking(move || peer_certificate(addr, &ca))
        .await
        .expect("handshake task")
        .expect("handshake")
}

/// Sends reviews until told to stop, half over one kept-alive client, half over a new client
/// (a new connection) each time; counts answers and failures.
struct Traffic {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(server: &TestServer) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let url = server.url("/validate?timeout=10s");
        let ca = server.certs.ca_pem.clone();
        let kept_alive = server.client();
        let task = tokio::spawn({
            let (stop, answered, failures) = (stop.clone(), answered.clone(), failures.clone());
            async move {
                let mut i = 0usize;
                while !stop.load(Ordering::Acquire) {
                    let client = if i.is_multiple_of(2) {
                        kept_alive.clone()
                    } else {
                        client(tls_client(&ca, &[b"http/1.1"], &[&TLS13, &TLS12], None))
                    };
                    let body = review(&format!("rotation-{i}"), "admission.k8s.io/v1");
                    let sent = client
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(resp) => {
                            let reply = Reply::read(resp).await;
                            if reply.status == 200
                                && reply.text().contains(&format!("rotation-{i}"))
                            {
                                answered.fetch_add(1, Ordering::AcqRel);
                            } else {
                                failures.lock().expect("lock").push(format!(
                                    "review {i}: {} {}",
                                    reply.status,
                                    reply.text()
                                ));
                            }
                        }
                        Err(e) => failures
                            .lock()
                            .expect("lock")
                            .push(format!("review {i}: {e:?}")),
                    }
                    i += 1;
                }
            }
        });
        Traffic {
            stop,
            answered,
            failures,
            task,
        }
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::Acquire)
    }

    /// Waits for `n` more answers than now.
    async fn wait_for_more(&self, n: usize) {
        let target = self.answered() + n;
        eventually(
            "reviews answered",
            || async move { self.answered() >= target },
        )
        .await;
    }

    async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Release);
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("traffic stops")
            .expect("traffic task");
        let failures = self.failures.lock().expect("lock").clone();
        (self.answered.load(Ordering::Acquire), failures)
    }
}

#[tokio::test]
async fn rotated_pair_is_served_without_dropping_a_review_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = certs::generate(&CertsOptions::default()).expect("certs");
    let mut volume = SecretVolume::create(dir.path(), &pair(&first.cert_pem, &first.key_pem));
    let mut cfg = test_config(dir.path());
    cfg.tls_reload_interval = RELOAD_INTERVAL;
    let ca = first.ca_pem.clone();
    let first_der = der_of(&first.cert_pem);
    let renewed = first.renew(&CertsOptions::default()).expect("renew");
    let server = TestServer::start_with(first, dir, cfg);
    assert_eq!(served_certificate(&server, &ca).await, first_der);

    let traffic = Traffic::start(&server);
    traffic.wait_for_more(10).await;

    // The kubelet swaps in the renewed pair.
    volume.update(&pair(&renewed.cert_pem, &renewed.key_pem));
    let renewed_der = der_of(&renewed.cert_pem);
    let (s, ca_ref, want) = (&server, &ca, &renewed_der);
    let took = eventually(
        "a new connection gets the renewed certificate",
        || async move { served_certificate(s, ca_ref).await == *want },
    )
    .await;
    // A few reload intervals, with room for a loaded machine.
    assert!(took < Duration::from_secs(10), "renewal took {took:?}");
    traffic.wait_for_more(10).await;
    let metrics = server.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"ipamclaim_webhook_certificate_reloads_total{result="success"}"#
        ),
        Some(1.0),
        "{metrics}"
    );

    // A broken pair: the renewed certificate with the key of another one, then garbage.
    let stranger = certs::generate(&CertsOptions::default()).expect("other certs");
    volume.update(&pair(&renewed.cert_pem, &stranger.key_pem));
    failed_reloads_reach(
        &server,
        1.0,
        "the mismatched pair is counted as a failed reload",
    )
    .await;
    volume.update(&pair(
        &renewed.cert_pem,
        "-----BEGIN PRIVATE KEY-----\ngarbage\n",
    ));
    failed_reloads_reach(
        &server,
        2.0,
        "the garbage key is counted as a failed reload",
    )
    .await;
    traffic.wait_for_more(10).await;
    // Still the last good pair, on new connections.
    assert_eq!(served_certificate(&server, &ca).await, renewed_der);

    let (answered, failures) = traffic.finish().await;
    assert!(failures.is_empty(), "failed reviews: {failures:#?}");
    assert!(answered >= 30, "only {answered} reviews");
    let probe = plain_client()
        .get(server.probe_url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(probe.status().as_u16(), 200, "still ready");
    server.stop().await;
}

#[tokio::test]
async fn rotated_client_ca_takes_effect_for_new_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serving = certs::generate(&CertsOptions::default()).expect("serving certs");
    let old_ca = certs::generate(&CertsOptions::default()).expect("old client CA");
    let new_ca = certs::generate(&CertsOptions::default()).expect("new client CA");
    let old_client = old_ca.client("kube-apiserver").expect("old client cert");
    let new_client = new_ca.client("kube-apiserver").expect("new client cert");
    let mut volume = SecretVolume::create(
        dir.path(),
        &[
            (certs::CERT_FILE, serving.cert_pem.as_bytes()),
            (certs::KEY_FILE, serving.key_pem.as_bytes()),
            ("client-ca.crt", old_ca.ca_pem.as_bytes()),
        ],
    );
    let mut cfg = test_config(dir.path());
    cfg.tls_reload_interval = RELOAD_INTERVAL;
    cfg.tls.client_ca = Some(dir.path().join("client-ca.crt"));
    let server = TestServer::start_with(serving, dir, cfg);
    let ca = server.certs.ca_pem.clone();
    let body = review("client-ca-uid", "admission.k8s.io/v1");
    let attempt = |identity: &ClientCert| {
        // A new client each time: a new connection, a full handshake.
        let client = client(tls_client(
            &ca,
            &[b"http/1.1"],
            &[&TLS13, &TLS12],
            Some(identity),
        ));
        let (url, body) = (server.url("/validate"), body.clone());
        async move {
            match client
                .post(url)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(resp) => resp.status().as_u16() == 200,
                Err(_) => false,
            }
        }
    };
    assert!(attempt(&old_client).await, "old CA's client refused");
    assert!(!attempt(&new_client).await, "new CA's client served early");

    volume.update(&[
        (certs::CERT_FILE, server.certs.cert_pem.as_bytes()),
        (certs::KEY_FILE, server.certs.key_pem.as_bytes()),
        ("client-ca.crt", new_ca.ca_pem.as_bytes()),
    ]);
    eventually("the new CA's client is served", || attempt(&new_client)).await;
    assert!(!attempt(&old_client).await, "old CA's client still served");

    // A broken CA file keeps the CA in use.
    volume.update(&[
        (certs::CERT_FILE, server.certs.cert_pem.as_bytes()),
        (certs::KEY_FILE, server.certs.key_pem.as_bytes()),
        ("client-ca.crt", b"not a certificate\n"),
    ]);
    failed_reloads_reach(&server, 1.0, "the broken CA is counted as a failed reload").await;
    assert!(attempt(&new_client).await, "new CA's client refused");
    assert!(!attempt(&old_client).await, "old CA's client served");
    server.stop().await;
}
