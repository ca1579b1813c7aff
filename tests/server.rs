//! The HTTPS server over real TLS on loopback: DESIGN §3, row by row.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use ipamclaim_webhook::serve::tls::TlsError;
use ipamclaim_webhook::serve::{self, ServerError};
use rustls::pki_types::ServerName;
use rustls::version::{TLS12, TLS13};
use serde_json::Value;

const SMALL_LIMIT: usize = 4096;

/// Every `<name>.request.json` with a sibling `<name>.response.json` under `dir`.
fn fixture_pairs(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut pairs: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let stem = name.strip_suffix(".request.json")?;
            let response = path.with_file_name(format!("{stem}.response.json"));
            response.is_file().then_some((path, response))
        })
        .collect();
    pairs.sort();
    pairs
}

fn read_json(path: &Path) -> (Vec<u8>, Value) {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    (bytes, value)
}

#[tokio::test]
async fn golden_fixtures_over_http1_and_http2() {
    let server = TestServer::start(|cfg| cfg.enable_http2 = true);
    let http1 = client(tls_client(
        &server.certs.ca_pem,
        &[b"http/1.1"],
        &[&TLS13, &TLS12],
        None,
    ));
    let http2 = client(tls_client(
        &server.certs.ca_pem,
        &[b"h2"],
        &[&TLS13, &TLS12],
        None,
    ));
    let validate = fixture_pairs(&fixtures_dir().join("validate"));
    // Never pass on an empty directory.
    assert!(
        !validate.is_empty(),
        "no request/response pairs under {}",
        fixtures_dir().join("validate").display()
    );
    let mutate = fixture_pairs(&fixtures_dir().join("mutate"));
    let cases = validate
        .iter()
        .map(|pair| ("/validate", pair))
        .chain(mutate.iter().map(|pair| ("/mutate", pair)));
    for (path, (request_file, response_file)) in cases {
        let (request, _) = read_json(request_file);
        let (_, expected) = read_json(response_file);
        for (client, version) in [
            (&http1, reqwest::Version::HTTP_11),
            (&http2, reqwest::Version::HTTP_2),
        ] {
            let reply = post_json(client, &server.url(path), request.clone()).await;
            assert_eq!(reply.version, version, "{}", request_file.display());
            let got = assert_answers(&reply, &request);
            assert_eq!(got, expected, "{} over {version:?}", request_file.display());
        }
    }
    // Idle HTTP/2 connections do not end on graceful shutdown (actix-http's h2 dispatcher
    // ignores the signal): close them rather than wait out the shutdown timeout.
    drop((http1, http2));
    server.stop().await;
}

#[tokio::test]
async fn captured_payloads_with_apiserver_headers_are_answered() {
    let headers: Value = serde_json::from_slice(&payload("request-headers.json"))
        .expect("request-headers.json is JSON");
    let headers = headers["headers"]
        .as_object()
        .expect("headers object")
        .clone();
    let files = captured_payloads();

    let server = TestServer::start(|_| {});
    let client = server.client();
    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let path = if name.contains("-mutate-") {
            "/mutate?timeout=5s"
        } else {
            "/validate?timeout=5s"
        };
        let body = std::fs::read(file).expect("read payload");
        let mut request = client.post(server.url(path)).body(body.clone());
        for (key, value) in &headers {
            // The captured length is that of one payload; reqwest sets each body's own.
            if key.eq_ignore_ascii_case("content-length") {
                continue;
            }
            request = request.header(key.as_str(), value.as_str().expect("header value"));
        }
        let reply = Reply::read(request.send().await.expect("send")).await;
        assert_eq!(reply.version, reqwest::Version::HTTP_11);
        assert_answers(&reply, &body);
    }
    server.stop().await;
}

#[tokio::test]
async fn malformed_reviews_get_400_in_plain_text() {
    let server = TestServer::start(|_| {});
    let client = server.client();
    let no_uid = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#;
    let no_request = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
    let cases: [(&str, &[u8]); 5] = [
        ("not JSON", b"this is not json"),
        ("empty object", b"{}"),
        ("no uid", no_uid),
        ("no request", no_request),
        ("empty body", b""),
    ];
    for (what, body) in cases {
        for path in ["/validate", "/mutate"] {
            let reply = post_json(&client, &server.url(path), body.to_vec()).await;
            assert_eq!(reply.status, 400, "{what} on {path}: {}", reply.text());
            assert_eq!(reply.content_type, "text/plain; charset=utf-8", "{what}");
            assert!(
                !reply.text().contains("allowed"),
                "{what}: {}",
                reply.text()
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn content_type_must_be_json() {
    let server = TestServer::start(|_| {});
    let client = server.client();
    let body = review("content-type-uid", "admission.k8s.io/v1");
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
    ] {
        let resp = client
            .post(server.url("/validate"))
            .header("Content-Type", content_type)
            .body(body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 415, "{content_type}");
    }
    // reqwest sets no Content-Type for a plain byte body.
    let resp = client
        .post(server.url("/mutate"))
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 415, "missing content type");
    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        let resp = client
            .post(server.url("/validate"))
            .header("Content-Type", content_type)
            .body(body.clone())
            .send()
            .await
            .expect("send");
        let reply = Reply::read(resp).await;
        assert_answers(&reply, &body);
    }
    server.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_gets_413_with_content_length() {
    let server = TestServer::start(|cfg| cfg.max_body_bytes = SMALL_LIMIT);
    let client = server.client();
    // Exactly at the limit is fine: the bound is inclusive.
    let at_limit = padded_review(SMALL_LIMIT);
    let reply = post_json(&client, &server.url("/validate"), at_limit.clone()).await;
    assert_answers(&reply, &at_limit);
    let over = padded_review(SMALL_LIMIT + 1);
    let reply = post_json(&client, &server.url("/validate"), over).await;
    assert_eq!(reply.status, 413, "{}", reply.text());
    server.stop().await;
}

#[tokio::test]
async fn chunked_body_over_the_limit_gets_413() {
    let server = TestServer::start(|cfg| cfg.max_body_bytes = SMALL_LIMIT);
    let addr = server.addr;
    let ca = server.certs.ca_pem.clone();
    let (over, at_limit) = tokio::task::spawn_blocking(move || {
        let over = raw_exchange(
            addr,
            &ca,
            &chunked_post("/validate", &padded_review(SMALL_LIMIT + 1), 1000),
        );
        let at_limit = raw_exchange(
            addr,
            &ca,
            &chunked_post("/validate?timeout=10s", &padded_review(SMALL_LIMIT), 1000),
        );
        (over, at_limit)
    })
    .await
    .expect("raw exchanges");
    assert_eq!(over.0, 413, "{}", over.1);
    assert_eq!(at_limit.0, 200, "{}", at_limit.1);
    assert!(at_limit.1.contains("padded-review-uid"), "{}", at_limit.1);
    server.stop().await;
}

#[tokio::test]
async fn other_methods_get_405_and_other_paths_404() {
    let server = TestServer::start(|_| {});
    let client = server.client();
    for (method, path) in [
        (reqwest::Method::GET, "/validate"),
        (reqwest::Method::PUT, "/validate"),
        (reqwest::Method::GET, "/mutate?timeout=10s"),
        (reqwest::Method::DELETE, "/mutate"),
    ] {
        let resp = client
            .request(method.clone(), server.url(path))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        assert_eq!(
            resp.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some("POST"),
            "{method} {path}"
        );
    }
    let resp = client
        .post(server.url("/healthz"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 405, "POST /healthz");
    for path in ["/nope", "/", "/validate/extra", "/metrics"] {
        let resp = client.get(server.url(path)).send().await.expect("send");
        assert_eq!(resp.status().as_u16(), 404, "GET {path}");
    }
    let body = review("not-found-uid", "admission.k8s.io/v1");
    let reply = post_json(&client, &server.url("/nope"), body).await;
    assert_eq!(reply.status, 404, "POST /nope");
    server.stop().await;
}

#[tokio::test]
async fn probes_answer_on_both_listeners() {
    let server = TestServer::start(|_| {});
    let tls = server.client();
    let plain = plain_client();
    for path in ["/healthz", "/readyz"] {
        for (client, url) in [(&tls, server.url(path)), (&plain, server.probe_url(path))] {
            let reply = Reply::read(client.get(&url).send().await.expect("send")).await;
            assert_eq!(reply.status, 200, "{url}");
            assert_eq!(reply.text().trim(), "ok", "{url}");
        }
    }
    // The probe port serves probes only, never reviews.
    let body = review("probe-port-uid", "admission.k8s.io/v1");
    let reply = post_json(&plain, &server.probe_url("/validate"), body).await;
    assert_eq!(reply.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn default_listeners_answer_over_ipv4_and_ipv6() {
    // The default addresses (`[::]`), on free ports: one socket per listener takes both
    // families, and the development certificate names both loopbacks.
    let server = TestServer::start(|cfg| {
        cfg.listen = SocketAddr::new(serve::DEFAULT_LISTEN.ip(), 0);
        cfg.probe_listen = SocketAddr::new(serve::DEFAULT_PROBE_LISTEN.ip(), 0);
    });
    let (tls, plain) = (server.client(), plain_client());
    for host in ["127.0.0.1", "[::1]"] {
        let https = |path: &str| format!("https://{host}:{}{path}", server.addr.port());
        let http = |path: &str| format!("http://{host}:{}{path}", server.probe_addr.port());
        for path in ["/healthz", "/readyz"] {
            for (client, url) in [(&tls, https(path)), (&plain, http(path))] {
                let sent = client.get(&url).send().await;
                let reply = Reply::read(sent.unwrap_or_else(|e| panic!("{url}: {e:?}"))).await;
                assert_eq!((reply.status, reply.text().trim()), (200, "ok"), "{url}");
            }
        }
        let body = review(&format!("over-{host}"), "admission.k8s.io/v1");
        let reply = post_json(&tls, &https("/validate"), body.clone()).await;
        assert_answers(&reply, &body);
    }
    server.stop().await;
}

#[tokio::test]
async fn query_string_is_ignored_by_routing() {
    let server = TestServer::start(|_| {});
    let client = server.client();
    for path in ["/validate?timeout=10s", "/mutate?timeout=10s", "/validate?"] {
        let body = review("query-uid", "admission.k8s.io/v1");
        let reply = post_json(&client, &server.url(path), body.clone()).await;
        assert_answers(&reply, &body);
    }
    server.stop().await;
}

#[tokio::test]
async fn v1beta1_review_is_answered_in_v1beta1() {
    let server = TestServer::start(|_| {});
    let client = server.client();
    for path in ["/validate", "/mutate"] {
        let body = review("beta-uid", "admission.k8s.io/v1beta1");
        let reply = post_json(&client, &server.url(path), body.clone()).await;
        let response = assert_answers(&reply, &body);
        assert_eq!(response["apiVersion"], "admission.k8s.io/v1beta1");
    }
    server.stop().await;
}

#[tokio::test]
async fn still_serves_after_malformed_traffic() {
    let server = TestServer::start(|cfg| cfg.max_body_bytes = SMALL_LIMIT);
    let client = server.client();
    let url = server.url("/validate");

    let reply = post_json(&client, &url, b"not json".to_vec()).await;
    assert_eq!(reply.status, 400);
    let reply = post_json(
        &client,
        &url,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}"#.to_vec(),
    )
    .await;
    assert_eq!(reply.status, 400);
    let resp = client
        .post(&url)
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 415);
    let reply = post_json(&client, &url, padded_review(SMALL_LIMIT + 1)).await;
    assert_eq!(reply.status, 413);
    let resp = client.get(server.url("/nope")).send().await.expect("send");
    assert_eq!(resp.status().as_u16(), 404);

    let addr = server.addr;
    let ca = server.certs.ca_pem.clone();
    tokio::task::spawn_blocking(move || {
        // A TLS handshake abandoned half-way through the ClientHello.
        let config = tls_client(&ca, &[b"http/1.1"], &[&TLS13, &TLS12], None);
        let mut conn = rustls::ClientConnection::new(Arc::new(config), ServerName::from(addr.ip()))
            .expect("client connection");
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).expect("client hello");
        let mut tcp = TcpStream::connect(addr).expect("connect");
        tcp.write_all(&hello[..hello.len() / 2])
            .expect("half a hello");
        drop(tcp);

        // Plain HTTP sent to the TLS port: refused, and the connection is closed.
        let mut tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(PATIENCE)).expect("timeout");
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("plaintext request");
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer);
        assert!(
            !String::from_utf8_lossy(&answer).contains("200 OK"),
            "plaintext HTTP was served"
        );

        // A connection that sends nothing at all.
        drop(TcpStream::connect(addr).expect("connect"));
    })
    .await
    .expect("raw connections");

    // A fresh client (new connections) and the old one both still get answers.
    let body = review("after-abuse-uid", "admission.k8s.io/v1");
    let reply = post_json(&client, &url, body.clone()).await;
    assert_answers(&reply, &body);
    let reply = post_json(&server.client(), &url, body.clone()).await;
    assert_answers(&reply, &body);
    server.stop().await;
}

#[tokio::test]
async fn http2_is_off_by_default() {
    let server = TestServer::start(|_| {});
    let body = review("h2-off-uid", "admission.k8s.io/v1");
    let ca = &server.certs.ca_pem;
    // Offering only h2: no protocol in common, so the handshake fails.
    let h2_only = client(tls_client(ca, &[b"h2"], &[&TLS13, &TLS12], None));
    let result = h2_only
        .post(server.url("/validate"))
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .await;
    assert!(result.is_err(), "h2 was negotiated: {result:?}");
    // Offering both, as Go clients do: HTTP/1.1 is chosen.
    let both = client(tls_client(
        ca,
        &[b"h2", b"http/1.1"],
        &[&TLS13, &TLS12],
        None,
    ));
    let reply = post_json(&both, &server.url("/validate"), body.clone()).await;
    assert_eq!(reply.version, reqwest::Version::HTTP_11);
    assert_answers(&reply, &body);
    server.stop().await;
}

#[tokio::test]
async fn http2_when_enabled() {
    let server = TestServer::start(|cfg| cfg.enable_http2 = true);
    let body = review("h2-on-uid", "admission.k8s.io/v1");
    let ca = &server.certs.ca_pem;
    let both = client(tls_client(
        ca,
        &[b"h2", b"http/1.1"],
        &[&TLS13, &TLS12],
        None,
    ));
    let reply = post_json(&both, &server.url("/validate"), body.clone()).await;
    assert_eq!(reply.version, reqwest::Version::HTTP_2);
    assert_answers(&reply, &body);
    // HTTP/1.1 clients are still served.
    let reply = post_json(&server.client(), &server.url("/validate"), body.clone()).await;
    assert_eq!(reply.version, reqwest::Version::HTTP_11);
    assert_answers(&reply, &body);
    // See golden_fixtures_over_http1_and_http2: idle h2 connections outlive a graceful stop.
    drop(both);
    server.stop().await;
}

#[tokio::test]
async fn tls12_and_tls13_both_work() {
    let server = TestServer::start(|_| {});
    for version in [&TLS12, &TLS13] {
        let client = client(tls_client(
            &server.certs.ca_pem,
            &[b"http/1.1"],
            &[version],
            None,
        ));
        let body = review("tls-version-uid", "admission.k8s.io/v1");
        let reply = post_json(&client, &server.url("/validate"), body.clone()).await;
        assert_answers(&reply, &body);
    }
    server.stop().await;
}

#[tokio::test]
async fn client_ca_requires_a_certificate_from_that_ca() {
    let server = TestServer::start(|cfg| {
        cfg.tls.client_ca = Some(cfg.tls.cert.with_file_name("ca.crt"));
    });
    let ca = &server.certs.ca_pem;
    let body = review("mtls-uid", "admission.k8s.io/v1");
    let send = |client: reqwest::Client| {
        let body = body.clone();
        let url = server.url("/validate");
        async move {
            client
                .post(url)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
        }
    };

    let anonymous = client(tls_client(ca, &[b"http/1.1"], &[&TLS13, &TLS12], None));
    let result = send(anonymous).await;
    assert!(
        result.is_err(),
        "client without certificate served: {result:?}"
    );

    let stranger_ca = ipamclaim_webhook::certs::generate(&Default::default()).expect("other CA");
    let stranger = stranger_ca.client("stranger").expect("client cert");
    let foreign = client(tls_client(
        ca,
        &[b"http/1.1"],
        &[&TLS13, &TLS12],
        Some(&stranger),
    ));
    let result = send(foreign).await;
    assert!(result.is_err(), "client of another CA served: {result:?}");

    // TLS 1.2 too: there the refusal happens inside the handshake itself.
    let foreign12 = client(tls_client(ca, &[b"http/1.1"], &[&TLS12], Some(&stranger)));
    assert!(
        send(foreign12).await.is_err(),
        "TLS 1.2 client of another CA served"
    );

    let friend = server.certs.client("kube-apiserver").expect("client cert");
    let trusted = client(tls_client(
        ca,
        &[b"http/1.1"],
        &[&TLS13, &TLS12],
        Some(&friend),
    ));
    let reply = Reply::read(send(trusted).await.expect("trusted client served")).await;
    assert_answers(&reply, &body);
    server.stop().await;
}

#[tokio::test]
async fn startup_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = ipamclaim_webhook::certs::generate(&Default::default()).expect("certs");
    certs.write_to(dir.path()).expect("write");

    let mut cfg = test_config(dir.path());
    cfg.tls.cert = dir.path().join("does-not-exist.crt");
    let err = serve::start(cfg).expect_err("missing certificate");
    assert!(
        matches!(err, ServerError::Tls(TlsError::Read { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("does-not-exist.crt"), "{err}");

    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "not a key at all\n").expect("write garbage");
    let mut cfg = test_config(dir.path());
    cfg.tls.key = garbage;
    let err = serve::start(cfg).expect_err("garbage key");
    assert!(err.to_string().contains("garbage.key"), "{err}");

    let mut cfg = test_config(dir.path());
    cfg.tls.client_ca = Some(dir.path().join("no-such-ca.crt"));
    let err = serve::start(cfg).expect_err("missing client CA");
    assert!(err.to_string().contains("no-such-ca.crt"), "{err}");
}

#[tokio::test]
async fn address_in_use_is_a_startup_error() {
    let server = TestServer::start(|_| {});
    let mut cfg = test_config(server.dir.path());
    cfg.listen = server.addr;
    let err = serve::start(cfg).expect_err("address in use");
    assert!(
        matches!(err, ServerError::Bind { addr, .. } if addr == server.addr),
        "{err:?}"
    );
    assert!(err.to_string().contains(&server.addr.to_string()), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_fails_readiness_and_closes_both_listeners() {
    let server = TestServer::start(|_| {});
    let addr = server.addr;
    let probe_addr = server.probe_addr;
    let client = server.client();
    let body = review("before-stop-uid", "admission.k8s.io/v1");
    let reply = post_json(&client, &server.url("/validate"), body.clone()).await;
    assert_answers(&reply, &body);
    server.stop().await;
    for addr in [addr, probe_addr] {
        assert!(
            TcpStream::connect(addr).is_err(),
            "{addr} still accepts after shutdown"
        );
    }
}
