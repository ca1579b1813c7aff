//! Bounded everything (DESIGN §6), over real TLS on loopback: slow clients, the API server's
//! `?timeout=`, deep JSON nesting, the connection limit and the shutdown delay.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls::pki_types::ServerName;
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConnection, StreamOwned};
use serde_json::Value;

/// How often a slow client sends its next byte.
const PACE: Duration = Duration::from_millis(500);

/// A raw TLS connection whose reads give up after `PACE`, so that a loop can send a byte, look
/// for an answer, and send the next.
fn slow_tls(addr: SocketAddr, ca_pem: &str) -> StreamOwned<ClientConnection, TcpStream> {
    let config = tls_client(ca_pem, &[b"http/1.1"], &[&TLS13, &TLS12], None);
    let conn = ClientConnection::new(Arc::new(config), ServerName::from(addr.ip()))
        .expect("client connection");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(PACE)).expect("read timeout");
    tcp.set_write_timeout(Some(PATIENCE))
        .expect("write timeout");
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("handshake");
    }
    stream
}

/// What a slow client saw: how long until the server ended the exchange, and what it sent.
#[derive(Debug)]
struct Ended {
    after: Duration,
    received: String,
}

/// Sends `bytes` one at a time, `PACE` apart, until the server answers or closes; `None` when
/// every byte was sent and the server still waited.
fn trickle(stream: &mut StreamOwned<ClientConnection, TcpStream>, bytes: &[u8]) -> Option<Ended> {
    let started = Instant::now();
    let mut received = Vec::new();
    for byte in bytes {
        if stream
            .write_all(&[*byte])
            .and_then(|()| stream.flush())
            .is_err()
        {
            return Some(ended(started, &received));
        }
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => return Some(ended(started, &received)),
            Ok(n) => {
                received.extend_from_slice(&buf[..n]);
                // Read the rest of the answer, up to the close.
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => received.extend_from_slice(&buf[..n]),
                        Err(e) if is_timeout(&e) => break,
                        Err(_) => break,
                    }
                }
                return Some(ended(started, &received));
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => return Some(ended(started, &received)),
        }
    }
    None
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn ended(started: Instant, received: &[u8]) -> Ended {
    Ended {
        after: started.elapsed(),
        received: String::from_utf8_lossy(received).into_owned(),
    }
}

fn post_head(path: &str, content_length: usize) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {content_length}\r\n\r\n"
    )
    .into_bytes()
}

/// Meanwhile, a normal client is answered at once.
async fn normal_review_is_answered(server: &TestServer) {
    let body = review("meanwhile-uid", "admission.k8s.io/v1");
    let started = Instant::now();
    let reply = post_json(&server.client(), &server.url("/validate"), body.clone()).await;
    assert_answers(&reply, &body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a normal review waited {:?} behind a slow client",
        started.elapsed()
    );
}

/// While the slow client trickles, a normal review is answered at once; then the server must
/// have ended the slow exchange within a few seconds.
async fn ended_in_time(server: &TestServer, slow: tokio::task::JoinHandle<Option<Ended>>) -> Ended {
    tokio::time::sleep(Duration::from_millis(700)).await;
    normal_review_is_answered(server).await;
    let ended = slow
        .await
        .expect("slow client")
        .expect("the server waited for everything the slow client sent");
    assert!(
        ended.after < Duration::from_secs(8),
        "ended only after {:?}",
        ended.after
    );
    ended
}

#[tokio::test]
async fn headers_trickled_a_byte_at_a_time_are_cut_off() {
    let server = TestServer::start(|cfg| cfg.header_timeout = Duration::from_secs(2));
    let (addr, ca) = (server.addr, server.certs.ca_pem.clone());
    let slow = tokio::task::spawn_blocking(move || {
        let mut stream = slow_tls(addr, &ca);
        // 60 bytes at 500 ms would take 30 s.
        trickle(&mut stream, &post_head("/validate", 2)[..60])
    });
    // One worker only: the slow client must not hold it.
    let ended = ended_in_time(&server, slow).await;
    assert!(!ended.received.contains("200 OK"), "{}", ended.received);
    server.stop().await;
}

#[tokio::test]
async fn second_request_head_trickled_on_a_kept_alive_connection_is_cut_off() {
    // actix-http bounds only the first head of a connection; HeadTimed bounds the others.
    let server = TestServer::start(|cfg| cfg.header_timeout = Duration::from_secs(2));
    let (addr, ca) = (server.addr, server.certs.ca_pem.clone());
    let slow = tokio::task::spawn_blocking(move || {
        let mut stream = slow_tls(addr, &ca);
        let mut request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec();
        stream.write_all(&request).expect("first request");
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&answer).ends_with("ok\n") {
            match stream.read(&mut buf) {
                Ok(0) => panic!("closed after the first request"),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("first answer: {e}"),
            }
        }
        // Then the next head, slowly.
        request.truncate(0);
        request.extend_from_slice(&post_head("/validate", 2)[..60]);
        trickle(&mut stream, &request)
    });
    ended_in_time(&server, slow).await;
    server.stop().await;
}

#[tokio::test]
async fn body_trickled_a_byte_at_a_time_gets_408() {
    let server = TestServer::start(|cfg| cfg.request_timeout = Duration::from_secs(2));
    let (addr, ca) = (server.addr, server.certs.ca_pem.clone());
    let slow = tokio::task::spawn_blocking(move || {
        let mut stream = slow_tls(addr, &ca);
        let body = review("slow-body-uid", "admission.k8s.io/v1");
        stream
            .write_all(&post_head("/validate", body.len()))
            .expect("head");
        trickle(&mut stream, &body[..60])
    });
    let ended = ended_in_time(&server, slow).await;
    assert!(
        ended.received.starts_with("HTTP/1.1 408"),
        "{}",
        ended.received
    );
    let text = server.metrics().await;
    assert_eq!(
        metric(
            &text,
            r#"ipamclaim_webhook_requests_total{webhook="validate",operation="unknown",code="408",verdict="refused"}"#
        ),
        Some(1.0),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn timeout_query_parameter_bounds_a_body_that_never_completes() {
    // The server's own bound is long; the API server's `?timeout=1s` is what cuts it short.
    let server = TestServer::start(|_| {});
    let (addr, ca) = (server.addr, server.certs.ca_pem.clone());
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = raw_tls(addr, &ca);
        let body = review("never-complete-uid", "admission.k8s.io/v1");
        stream
            .write_all(&post_head("/validate?timeout=1s", body.len()))
            .expect("head");
        stream.write_all(&body[..body.len() / 2]).expect("half");
        stream.flush().expect("flush");
        let started = Instant::now();
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
        (
            started.elapsed(),
            String::from_utf8_lossy(&received).into_owned(),
        )
    });
    let (after, received) = answer.await.expect("raw client");
    assert!(received.starts_with("HTTP/1.1 408"), "{received}");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(6),
        "answered after {after:?}"
    );
    // The same server still answers within the deadline.
    let body = review("in-time-uid", "admission.k8s.io/v1");
    let reply = post_json(
        &server.client(),
        &server.url("/validate?timeout=1s"),
        body.clone(),
    )
    .await;
    assert_answers(&reply, &body);
    server.stop().await;
}

/// The captured review with `spec.nested` nesting `depth` levels of arrays and objects.
fn deeply_nested_review(uid: &str, depth: usize) -> Vec<u8> {
    let mut review: Value =
        serde_json::from_slice(&review(uid, "admission.k8s.io/v1")).expect("review is JSON");
    review["request"]["object"]["spec"]["nested"] = Value::from("NESTED");
    let text = serde_json::to_string(&review).expect("serialise");
    let mut nested = String::with_capacity(depth * 8);
    for i in 0..depth {
        nested.push_str(if i % 2 == 0 { "[" } else { "{\"a\":" });
    }
    nested.push('1');
    for i in (0..depth).rev() {
        nested.push(if i % 2 == 0 { ']' } else { '}' });
    }
    text.replace("\"NESTED\"", &nested).into_bytes()
}

#[tokio::test]
async fn deep_nesting_is_refused_with_400_and_the_server_keeps_serving() {
    use ipamclaim_webhook::admission::FieldValidation;
    for field_validation in [FieldValidation::Strict, FieldValidation::Ignore] {
        let server = TestServer::start(|cfg| cfg.admission.field_validation = field_validation);
        let client = server.client();
        let body = deeply_nested_review("deep-uid", 100_000);
        let reply = post_json(&client, &server.url("/validate"), body.clone()).await;
        match reply.status {
            // The envelope itself refused: a plain 400.
            400 => {}
            // Or the object judged unreadable: a denial with code 400.
            200 => {
                // (The request is too deep for serde_json to read back: check the answer only.)
                let answer = reply.json();
                assert_eq!(answer["response"]["uid"], "deep-uid", "{answer}");
                assert_eq!(answer["response"]["allowed"], false, "{answer}");
                assert_eq!(answer["response"]["status"]["code"], 400, "{answer}");
            }
            other => panic!("{field_validation:?}: status {other}: {}", reply.text()),
        }
        // The mutating webhook never denies: it leaves what it cannot read to validation.
        let reply = post_json(&client, &server.url("/mutate"), body.clone()).await;
        assert!(
            reply.status == 400
                || (reply.status == 200
                    && reply.json()["response"]["allowed"] == true
                    && reply.json()["response"]["patch"].is_null()),
            "{}",
            reply.text()
        );
        let fine = review("after-deep-uid", "admission.k8s.io/v1");
        let reply = post_json(&client, &server.url("/validate"), fine.clone()).await;
        assert_answers(&reply, &fine);
        server.stop().await;
    }
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let server = TestServer::start(|cfg| cfg.max_connections = 2);
    let (addr, ca) = (server.addr, server.certs.ca_pem.clone());
    let connect = |addr, ca: &str| {
        let mut stream = raw_tls(addr, ca);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .expect("handshake");
        }
        stream
    };
    tokio::task::spawn_blocking(move || {
        let first = connect(addr, &ca);
        let second = connect(addr, &ca);
        // The third is accepted by the kernel but not served: its handshake stalls.
        let third = std::thread::spawn(move || {
            let started = Instant::now();
            let stream = connect(addr, &ca);
            (started.elapsed(), stream)
        });
        std::thread::sleep(Duration::from_millis(800));
        assert!(!third.is_finished(), "a third connection was served");
        drop(first);
        let (waited, _stream) = third.join().expect("third connection");
        assert!(waited >= Duration::from_millis(700), "waited {waited:?}");
        drop(second);
    })
    .await
    .expect("connections");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_delay_keeps_accepting_while_not_ready() {
    let server = TestServer::start(|cfg| cfg.shutdown_delay = Duration::from_secs(2));
    let handle = server.handle();
    let started = Instant::now();
    let stopping = tokio::spawn(async move { handle.shutdown().await });
    // Not ready at once...
    let plain = plain_client();
    let resp = plain
        .get(server.probe_url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(resp.status().as_u16(), 503);
    // ...while a new connection is still served during the delay.
    let body = review("during-delay-uid", "admission.k8s.io/v1");
    let reply = post_json(&server.client(), &server.url("/validate"), body.clone()).await;
    assert_answers(&reply, &body);
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("shutdown ends")
        .expect("shutdown task");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "stopped after {:?}, before the delay ended",
        started.elapsed()
    );
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "still accepting after the delay"
    );
    server.stop().await;
}

/// A server whose memory budget holds exactly one body of `max_body` bytes (and its judging)
/// besides the small ones.
fn one_large_body_at_a_time(max_body: usize) -> TestServer {
    use ipamclaim_webhook::serve::budget;
    TestServer::start(|cfg| {
        cfg.max_body_bytes = max_body;
        cfg.max_connections = 16;
        cfg.memory_budget = budget::BASE_BYTES
            + 16 * budget::CONNECTION_BYTES
            + budget::MAX_WAITING * budget::WAITING_BYTES
            + budget::charge(max_body);
    })
}

/// A client that declares a body of `declared` bytes and sends only the first 100 KB of it,
/// taking the budget's room; the connection closes when the stream is dropped.
async fn hold_room(
    server: &TestServer,
    declared: usize,
) -> StreamOwned<ClientConnection, TcpStream> {
    let (addr, ca) = (server.addr, server.certs.ca_pem.clone());
    let holder = tokio::task::spawn_blocking(move || {
        let mut stream = raw_tls(addr, &ca);
        stream
            .write_all(&post_head("/validate", declared))
            .expect("head");
        stream
            .write_all(&vec![b' '; 100_000])
            .expect("part of the body");
        stream.flush().expect("flush");
        stream
    })
    .await
    .expect("holder");
    wait_for_metric(
        server,
        "ipamclaim_webhook_memory_budget_in_use_bytes",
        |v| v > 0.0,
    )
    .await;
    holder
}

/// Polls the metrics until `series` satisfies `ok`.
async fn wait_for_metric(server: &TestServer, series: &str, ok: impl Fn(f64) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = server.metrics().await;
        if metric(&text, series).is_some_and(&ok) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never as expected:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_large_body_waits_for_room_and_is_answered_once_there_is_some() {
    const MIB: usize = 1 << 20;
    let server = one_large_body_at_a_time(MIB);
    let holder = hold_room(&server, MIB).await;
    // A large review now waits for room, its connection not read...
    let big = padded_review(MIB);
    let waiting = {
        let (client, url) = (server.client(), server.url("/validate?timeout=20s"));
        let big = big.clone();
        tokio::spawn(async move { post_json(&client, &url, big).await })
    };
    wait_for_metric(
        &server,
        "ipamclaim_webhook_memory_budget_waiting_requests",
        |v| v == 1.0,
    )
    .await;
    // ...while a small review is answered at once: small bodies never wait.
    normal_review_is_answered(&server).await;
    assert!(!waiting.is_finished(), "the large review did not wait");
    // The holder goes away, and the waiting review gets the room and its answer.
    drop(holder);
    let reply = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("answered once there is room")
        .expect("waiting task");
    assert_answers(&reply, &big);
    wait_for_metric(
        &server,
        "ipamclaim_webhook_memory_budget_in_use_bytes",
        |v| v == 0.0,
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_finds_no_room_in_time_gets_503_with_retry_after() {
    const MIB: usize = 1 << 20;
    let server = one_large_body_at_a_time(MIB);
    let _holder = hold_room(&server, MIB).await;
    // It waits half of the API server's deadline, then gives up.
    let started = Instant::now();
    let resp = server
        .client()
        .post(server.url("/validate?timeout=2s"))
        .header("Content-Type", "application/json")
        .body(padded_review(MIB))
        .send()
        .await
        .expect("an answer");
    let waited = started.elapsed();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(
        resp.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );
    let text = server.metrics().await;
    assert_eq!(
        metric(
            &text,
            r#"ipamclaim_webhook_requests_total{webhook="validate",operation="unknown",code="503",verdict="refused"}"#
        ),
        Some(1.0),
        "{text}"
    );
    server.stop().await;
}
