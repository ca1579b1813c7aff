//! The bad-input catalogue: malformed and hostile traffic sent to the real server over TLS on
//! loopback, each case with the answer DESIGN §3 documents, and after every case a valid review
//! that must still be served.
//!
//! A case is one row of [`catalogue`]: a name, how it reaches the server ([`Via`]) and the
//! documented answer ([`Expect`]). Running a case gives an [`Outcome`]; a failure names the case.
//! `BAD_INPUT_DEBUG=1 cargo test --test bad_input -- --nocapture` prints every outcome.
//!
//! Where the server contradicts DESIGN, the catalogue asserts only what holds and an `#[ignore]`d
//! finding test at the end asserts what should: `cargo test --test bad_input -- --ignored`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use ipamclaim_webhook::admission::answer::caps::{MAX_CAUSES, MAX_WARNINGS};
use ipamclaim_webhook::admission::{self, FieldValidation, Webhook};
use rustls::pki_types::ServerName;
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConnection, StreamOwned};
use serde_json::{json, Value};

/// The uid of every review in the catalogue.
const CASE_UID: &str = "bad-input-case-uid";
/// `--max-body-bytes` of the server under test: the default, 7 MiB.
const LIMIT: usize = 7 * 1024 * 1024;
/// A huge string that still fits in a body under [`LIMIT`].
const HUGE: usize = 5 * 1024 * 1024;
/// Nesting depth of the deep-nesting cases.
const DEEP: usize = 10_000;
/// Kubernetes cuts a webhook's message anyway: an answer larger than this echoes too much.
const SMALL_ANSWER: usize = 64 * 1024;
/// Connections opened by the many-connections cases.
const MANY: usize = 200;
/// Longest a slow or silent client may hold a connection. The server's header and handshake
/// timeouts are 5 s; the bound is generous because the machine is shared.
const SLOW_CLIENT_BOUND: Duration = Duration::from_secs(15);
/// When a slow client gives up waiting to be closed.
const SLOW_CLIENT_GIVE_UP: Duration = Duration::from_secs(30);
/// The pace of the slowloris client: one byte of headers per tick.
const SLOW_TICK: Duration = Duration::from_millis(500);
/// Items of the long-list cases: judging them one by one against each other (quadratic)
/// would take minutes, far past the deadline they are sent with.
const LONG: usize = 100_000;
/// The deadline the long-list cases are sent with, as the API server appends it.
const HOSTILE_PATH: &str = "/validate?timeout=10s";

/// One row of the catalogue.
struct Case {
    name: &'static str,
    via: Via,
    expect: Expect,
    /// Set when the server is known to contradict DESIGN in a way the expectation does not
    /// assert (the `#[ignore]`d finding tests below assert it); says what is wrong.
    known_finding: Option<&'static str>,
}

/// How a case reaches the server.
enum Via {
    /// An HTTPS request through an ordinary HTTP/1.1 client.
    Http {
        method: reqwest::Method,
        path: &'static str,
        content_type: Option<&'static str>,
        body: Vec<u8>,
    },
    /// Raw bytes of an HTTP/1.1 request over TLS (chunked bodies, lying lengths, garbage).
    RawTls(Vec<u8>),
    /// Raw bytes over plain TCP to the TLS port.
    RawTcp(Vec<u8>),
    /// A connection-level behaviour.
    Conn(Conn),
}

/// Clients that misbehave at the connection level.
#[derive(Clone, Copy)]
enum Conn {
    /// `openssl s_client -tls1_1`: a real TLS 1.1-only client.
    OpenSslTls11,
    /// A hand-made TLS 1.1 ClientHello record over TCP.
    Tls11Hello,
    /// A TLS client offering only this ALPN protocol.
    AlpnOnly(&'static [u8]),
    /// Headers sent one byte per [`SLOW_TICK`].
    Slowloris,
    /// A TCP connection that sends nothing, not even a ClientHello.
    SilentTcp,
    /// A TLS connection that sends no request.
    SilentTls,
    /// [`MANY`] idle TLS connections held open while a review is sent.
    ManyIdle,
    /// [`MANY`] reviews sent at once, each on its own connection.
    ManyConcurrent,
}

/// The documented answer.
#[derive(Debug)]
enum Expect {
    /// A short plain-text refusal with this status: nothing is judged or admitted.
    Plain(u16),
    /// An HTTP refusal with this status from the HTTP layer (no route reached).
    Status(u16),
    /// That refusal, or a connection reset: the server answers and closes while the client is
    /// still sending, and the reset of the unread rest can overtake the answer on its way.
    StatusOrReset(u16),
    /// 200 with an AdmissionReview answering [`CASE_UID`]: allowed, or denied with
    /// `status.code`, and with `cause` one of `status.details.causes` of that reason.
    Review {
        allowed: bool,
        code: Option<u16>,
        cause: Option<&'static str>,
    },
    /// No HTTP at all: the TLS handshake or the connection is refused.
    NoHttp,
    /// The server itself closes the connection within [`SLOW_CLIENT_BOUND`], without a
    /// successful answer.
    ClosedByServer,
    /// All of [`MANY`] connections are accepted and the reviews sent alongside are answered.
    Served,
}

/// What happened.
#[derive(Debug)]
enum Outcome {
    /// An HTTP response.
    Http {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// No HTTP response: why (handshake refused, alert, connection closed).
    NoHttp(String),
    /// A TLS session was established that should not have been: the protocol and ALPN.
    TlsEstablished(String),
    /// The server closed the connection after this long, having sent this status if any.
    Closed {
        after: Duration,
        status: Option<u16>,
    },
    /// This many connections or reviews were served.
    Served(usize),
}

/// Where the server under test listens and whom to trust; cheap to move into tasks.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    ca_pem: String,
}

// === the catalogue ===

/// Every case, in the order they run.
fn catalogue() -> Vec<Case> {
    let valid = review_with(|_| {});
    let real = payload("02-validate-create.json");
    let real_trimmed = real.trim_ascii_end();
    let inside_string = find(&real, b"\"pod16367aacb67\"") + 5;
    vec![
        // --- not JSON, or not whole JSON ---
        post(
            "truncated review: first byte only",
            real[..1].to_vec(),
            plain(400),
        ),
        post(
            "truncated review: a quarter",
            real[..real.len() / 4].to_vec(),
            plain(400),
        ),
        post(
            "truncated review: half",
            real[..real.len() / 2].to_vec(),
            plain(400),
        ),
        post(
            "truncated review: inside a string",
            real[..inside_string].to_vec(),
            plain(400),
        ),
        post(
            "truncated review: last brace missing",
            real_trimmed[..real_trimmed.len() - 1].to_vec(),
            plain(400),
        ),
        post(
            "invalid JSON: trailing comma",
            [&real_trimmed[..real_trimmed.len() - 1], b",}"].concat(),
            plain(400),
        ),
        post(
            "invalid JSON: single quotes",
            b"{'apiVersion': 'admission.k8s.io/v1', 'kind': 'AdmissionReview'}".to_vec(),
            plain(400),
        ),
        post(
            "invalid JSON: NaN",
            splice(
                &object_with(|o| o["metadata"]["generation"] = marker()),
                b"NaN",
            ),
            plain(400),
        ),
        post("invalid JSON: bare word", b"admit-me".to_vec(), plain(400)),
        post(
            "non-UTF-8 body",
            b"\xff\xfe\x00{\x00\"\x00a\x00\"\x00}".to_vec(),
            plain(400),
        ),
        post(
            "non-UTF-8 bytes inside a JSON string",
            splice(
                &object_with(|o| o["spec"]["interface"] = marker()),
                b"\"eth\xff\xfe0\"",
            ),
            plain(400),
        ),
        post(
            "UTF-8 byte order mark before the review",
            [b"\xef\xbb\xbf".as_slice(), &valid].concat(),
            plain(400),
        ),
        post("empty body", Vec::new(), plain(400)),
        post("empty object {}", b"{}".to_vec(), plain(400)),
        post("empty array []", b"[]".to_vec(), plain(400)),
        post("null", b"null".to_vec(), plain(400)),
        post("a number as body", b"42".to_vec(), plain(400)),
        post(
            "a string as body",
            b"\"AdmissionReview\"".to_vec(),
            plain(400),
        ),
        post(
            "deep nesting: the whole body 10,000 levels",
            deep(DEEP),
            plain(400),
        ),
        // --- JSON, but not an AdmissionReview that can be answered ---
        post(
            "review with request: null",
            review_with(|r| r["request"] = Value::Null),
            plain(400),
        ),
        post(
            "review without request",
            review_with(|r| remove(r, "request")),
            plain(400),
        ),
        post(
            "request without uid",
            review_with(|r| remove(&mut r["request"], "uid")),
            plain(400),
        ),
        post(
            "request with an empty uid",
            review_with(|r| r["request"]["uid"] = Value::from("")),
            plain(400),
        ),
        post(
            "uid of the wrong type (number)",
            review_with(|r| r["request"]["uid"] = Value::from(42)),
            plain(400),
        ),
        post(
            "wrong apiVersion admission.k8s.io/v2",
            review_with(|r| r["apiVersion"] = Value::from("admission.k8s.io/v2")),
            plain(400),
        ),
        post(
            "wrong kind Pod",
            review_with(|r| r["kind"] = Value::from("Pod")),
            plain(400),
        ),
        // --- answerable reviews that must be refused or judged ---
        post(
            "deep nesting: 10,000 levels inside request.object",
            splice(
                &object_with(|o| o["metadata"]["labels"]["deep"] = marker()),
                &deep(DEEP),
            ),
            denied(400),
        ),
        post_to(
            "/mutate",
            "deep nesting: 10,000 levels inside request.object, /mutate",
            splice(
                &object_with(|o| o["metadata"]["labels"]["deep"] = marker()),
                &deep(DEEP),
            ),
            // The mutating webhook never denies a decodable review; it leaves the object to
            // validation and sends no patch.
            allowed(),
        ),
        post(
            "deep nesting: 10,000 levels inside the envelope (request.userInfo.extra)",
            splice(
                &review_with(|r| r["request"]["userInfo"]["extra"] = marker()),
                &deep(DEEP),
            ),
            // A field the webhook never decodes is skipped without recursion: judged as usual.
            allowed(),
        ),
        post(
            "huge string: 5 MiB interface name",
            object_with(|o| o["spec"]["interface"] = "x".repeat(HUGE).into()),
            invalid("FieldValueTooLong"),
        ),
        post(
            "huge string: 5 MiB invalid network name",
            object_with(|o| o["spec"]["network"] = format!("-{}", "x".repeat(HUGE)).into()),
            invalid("FieldValueInvalid"),
        ),
        // --- long lists and many keys: judged in linear time, answered small ---
        post_to(
            HOSTILE_PATH,
            "long list: 100,000 distinct valid addresses",
            object_with(|o| o["status"] = json!({ "ips": addresses(LONG) })),
            allowed(),
        ),
        post_to(
            HOSTILE_PATH,
            "long list: 100,000 distinct invalid addresses",
            object_with(|o| o["status"] = json!({ "ips": numbered("x", LONG) })),
            invalid("FieldValueInvalid"),
        ),
        post_to(
            HOSTILE_PATH,
            "long list: 100,000 times one invalid value",
            object_with(|o| o["status"] = json!({ "ips": vec!["x"; LONG] })),
            invalid("FieldValueDuplicate"),
        ),
        post_to(
            HOSTILE_PATH,
            "long list: 100,000 invalid addresses unchanged since oldObject (ratcheted)",
            status_update(json!({ "ips": numbered("x", LONG) })),
            allowed(),
        ),
        post_to(
            HOSTILE_PATH,
            "long list: 25,000 invalid conditions, unchanged since oldObject in reverse order",
            status_update(json!({ "ips": [], "conditions": conditions(25_000, "bad reason") })),
            allowed(),
        ),
        post_to(
            HOSTILE_PATH,
            "many conditions: 30,000 valid ones of distinct types",
            object_with(|o| {
                o["status"] = json!({ "ips": [], "conditions": conditions(30_000, "Allocated") })
            }),
            allowed(),
        ),
        post_to(
            HOSTILE_PATH,
            "many conditions: 100,000 empty ones",
            object_with(|o| {
                o["status"] = json!({ "ips": [], "conditions": vec![json!({}); LONG] })
            }),
            invalid("FieldValueRequired"),
        ),
        post_to(
            HOSTILE_PATH,
            "many unknown keys: 100,000 in spec",
            object_with(|o| {
                for key in numbered("k", LONG) {
                    o["spec"][key] = Value::from(0);
                }
            }),
            denied(400),
        ),
        post_to(
            HOSTILE_PATH,
            "many labels: 100,000",
            object_with(|o| {
                for key in numbered("l", LONG) {
                    o["metadata"]["labels"][key] = Value::from("v");
                }
            }),
            allowed(),
        ),
        post_to(
            HOSTILE_PATH,
            "long managedFields: 30,000 entries",
            object_with(|o| o["metadata"]["managedFields"] = managed_fields(30_000)),
            allowed(),
        ),
        post_to(
            HOSTILE_PATH,
            "many duplicate keys below a 1 MiB key of managedFields",
            splice(
                &object_with(|o| {
                    o["metadata"]["managedFields"] = json!([{ "fieldsV1": marker() }])
                }),
                &duplicates_below_long_key(1 << 20, LONG),
            ),
            denied(400),
        ),
        post_to(
            HOSTILE_PATH,
            "many distinct duplicate keys below a 1 MiB key of managedFields",
            splice(
                &object_with(|o| {
                    o["metadata"]["managedFields"] = json!([{ "fieldsV1": marker() }])
                }),
                &distinct_duplicates_below_long_key(1 << 20, LONG),
            ),
            denied(400),
        ),
        post(
            "number where a string belongs: spec.network: 5",
            object_with(|o| o["spec"]["network"] = Value::from(5)),
            invalid("FieldValueTypeInvalid"),
        ),
        post(
            "null where a string belongs: spec.interface: null",
            object_with(|o| o["spec"]["interface"] = Value::Null),
            invalid("FieldValueRequired"),
        ),
        post(
            "array where an object belongs: spec: []",
            object_with(|o| o["spec"] = Value::Array(Vec::new())),
            invalid("FieldValueTypeInvalid"),
        ),
        post(
            "status.ips as a string",
            object_with(|o| o["status"] = json!({"ips": "10.1.2.3/24"})),
            invalid("FieldValueTypeInvalid"),
        ),
        post(
            "request.object a string",
            object_with(|o| *o = Value::from("an IPAMClaim")),
            denied(400),
        ),
        post(
            "review for another resource (core/v1 Pod)",
            review_with(|r| {
                r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
                r["request"]["resource"] =
                    json!({"group": "", "version": "v1", "resource": "pods"});
            }),
            denied(400),
        ),
        post(
            "DELETE with a null object",
            review_with(|r| {
                r["request"]["operation"] = Value::from("DELETE");
                r["request"]["oldObject"] = r["request"]["object"].take();
            }),
            allowed(),
        ),
        post(
            "CONNECT, allowed untouched",
            review_with(|r| r["request"]["operation"] = Value::from("CONNECT")),
            allowed(),
        ),
        post(
            "UPDATE without oldObject",
            review_with(|r| r["request"]["operation"] = Value::from("UPDATE")),
            denied(400),
        ),
        post(
            "unknown operation PATCH",
            review_with(|r| r["request"]["operation"] = Value::from("PATCH")),
            denied(400),
        ),
        // --- HTTP: media type, size, method, path ---
        http(
            "wrong content type text/plain",
            reqwest::Method::POST,
            "/validate",
            Some("text/plain"),
            valid.clone(),
            plain(415),
        ),
        http(
            "wrong content type application/x-www-form-urlencoded",
            reqwest::Method::POST,
            "/validate",
            Some("application/x-www-form-urlencoded"),
            valid.clone(),
            plain(415),
        ),
        http(
            "missing content type",
            reqwest::Method::POST,
            "/validate",
            None,
            valid.clone(),
            plain(415),
        ),
        http(
            "content type with charset",
            reqwest::Method::POST,
            "/validate",
            Some("application/json; charset=utf-8"),
            valid.clone(),
            allowed(),
        ),
        raw_tls(
            "over-limit body by Content-Length (refused before it is sent)",
            format!(
                "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                LIMIT + 1
            )
            .into_bytes(),
            plain(413),
        ),
        post(
            "over-limit body sent whole with Content-Length",
            padded(LIMIT + 1),
            plain(413),
        ),
        raw_tls(
            "over-limit body by chunked encoding",
            chunked_post("/validate", &padded(LIMIT + 1), 64 * 1024),
            plain(413),
        ),
        http(
            "wrong method GET /validate",
            reqwest::Method::GET,
            "/validate",
            None,
            Vec::new(),
            plain(405),
        ),
        http(
            "wrong method PUT /validate",
            reqwest::Method::PUT,
            "/validate",
            Some("application/json"),
            valid.clone(),
            plain(405),
        ),
        http(
            "wrong method DELETE /validate",
            reqwest::Method::DELETE,
            "/validate",
            None,
            Vec::new(),
            plain(405),
        ),
        post_to("/admit", "unknown path /admit", valid.clone(), plain(404)),
        // Routes match the exact path: a trailing slash is another path.
        post_to(
            "/validate/",
            "path with a trailing slash /validate/",
            valid.clone(),
            plain(404),
        ),
        post_to(
            "/validate?timeout=10s",
            "?timeout=10s query accepted",
            valid.clone(),
            allowed(),
        ),
        raw_tls(
            "garbage instead of a request line",
            b"\x16\x03\x01 this is not HTTP\r\n\r\n".to_vec(),
            Expect::Status(400),
        ),
        raw_tls(
            "request head of 256 KiB",
            format!(
                "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\
                 Content-Type: application/json\r\nContent-Length: 2\r\n\
                 Connection: close\r\n\r\n{{}}",
                "a".repeat(256 * 1024)
            )
            .into_bytes(),
            Expect::StatusOrReset(431),
        ),
        // --- transport ---
        Case {
            name: "plaintext HTTP on the TLS port",
            via: Via::RawTcp(
                [
                    b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                      Content-Type: application/json\r\nConnection: close\r\n"
                        .as_slice(),
                    format!("Content-Length: {}\r\n\r\n", valid.len()).as_bytes(),
                    &valid,
                ]
                .concat(),
            ),
            expect: Expect::NoHttp,
            known_finding: None,
        },
        conn(
            "TLS 1.1-only client (openssl s_client -tls1_1)",
            Conn::OpenSslTls11,
            Expect::NoHttp,
        ),
        conn(
            "hand-made TLS 1.1 ClientHello",
            Conn::Tls11Hello,
            Expect::NoHttp,
        ),
        conn(
            "TLS client offering only ALPN spdy/3.1",
            Conn::AlpnOnly(b"spdy/3.1"),
            Expect::NoHttp,
        ),
        conn(
            "TLS client offering only ALPN h2 (HTTP/2 off)",
            Conn::AlpnOnly(b"h2"),
            Expect::NoHttp,
        ),
        conn(
            "slowloris: headers one byte per 500 ms",
            Conn::Slowloris,
            Expect::ClosedByServer,
        ),
        conn(
            "TCP connection that sends nothing",
            Conn::SilentTcp,
            Expect::ClosedByServer,
        ),
        conn(
            "TLS connection that sends no request",
            Conn::SilentTls,
            Expect::ClosedByServer,
        ),
        conn(
            "200 idle TLS connections, then a review",
            Conn::ManyIdle,
            Expect::Served,
        ),
        conn(
            "200 concurrent reviews on 200 connections",
            Conn::ManyConcurrent,
            Expect::Served,
        ),
    ]
}

fn post(name: &'static str, body: Vec<u8>, expect: Expect) -> Case {
    post_to("/validate", name, body, expect)
}

fn post_to(path: &'static str, name: &'static str, body: Vec<u8>, expect: Expect) -> Case {
    http(
        name,
        reqwest::Method::POST,
        path,
        Some("application/json"),
        body,
        expect,
    )
}

fn http(
    name: &'static str,
    method: reqwest::Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    expect: Expect,
) -> Case {
    Case {
        name,
        via: Via::Http {
            method,
            path,
            content_type,
            body,
        },
        expect,
        known_finding: None,
    }
}

fn raw_tls(name: &'static str, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        via: Via::RawTls(bytes),
        expect,
        known_finding: None,
    }
}

fn conn(name: &'static str, conn: Conn, expect: Expect) -> Case {
    Case {
        name,
        via: Via::Conn(conn),
        expect,
        known_finding: None,
    }
}

fn plain(status: u16) -> Expect {
    Expect::Plain(status)
}

fn allowed() -> Expect {
    Expect::Review {
        allowed: true,
        code: None,
        cause: None,
    }
}

fn denied(code: u16) -> Expect {
    Expect::Review {
        allowed: false,
        code: Some(code),
        cause: None,
    }
}

/// Denied as invalid (422) with a cause of this reason.
fn invalid(cause: &'static str) -> Expect {
    Expect::Review {
        allowed: false,
        code: Some(422),
        cause: Some(cause),
    }
}

// === bodies ===

/// The captured CREATE review with [`CASE_UID`], changed by `edit`.
fn review_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&review(CASE_UID, "admission.k8s.io/v1"))
        .expect("the captured review is JSON");
    edit(&mut review);
    serde_json::to_vec(&review).expect("serialise")
}

/// The captured CREATE review with [`CASE_UID`], its `request.object` changed by `edit`.
fn object_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    review_with(|r| edit(&mut r["request"]["object"]))
}

/// Stands in for bytes that a `Value` cannot hold; [`splice`] replaces it.
fn marker() -> Value {
    Value::from("@@SPLICE@@")
}

/// Replaces the one [`marker`] in `body` with `bytes`.
fn splice(body: &[u8], bytes: &[u8]) -> Vec<u8> {
    let at = find(body, b"\"@@SPLICE@@\"");
    [&body[..at], bytes, &body[at + b"\"@@SPLICE@@\"".len()..]].concat()
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

fn remove(object: &mut Value, key: &str) {
    object.as_object_mut().expect("an object").remove(key);
}

/// `n` distinct valid interface addresses.
fn addresses(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.{}/24", (i >> 16) & 255, (i >> 8) & 255, i & 255))
        .collect()
}

/// `prefix0`, `prefix1`, ...: `n` distinct strings.
fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// `n` conditions of distinct types, with this `reason`.
fn conditions(n: usize, reason: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"type": format!("T{i}"), "status": "True", "reason": reason,
                   "lastTransitionTime": "2026-11-26T23:00:00Z"})
        })
        .collect()
}

/// `n` entries of `metadata.managedFields`.
fn managed_fields(n: usize) -> Value {
    let entry = json!({"manager": "m", "operation": "Update", "apiVersion": "v1",
                       "time": "2026-11-26T23:44:31Z", "fieldsType": "FieldsV1",
                       "fieldsV1": {"f:spec": {}}});
    Value::Array(vec![entry; n])
}

/// A status UPDATE of the captured claim whose `status` is `status` in both the object and
/// `oldObject`, a conditions list in reverse order in the old one.
fn status_update(status: Value) -> Vec<u8> {
    review_with(|r| {
        let request = &mut r["request"];
        request["operation"] = Value::from("UPDATE");
        request["subResource"] = Value::from("status");
        request["object"]["status"] = status.clone();
        let mut old = request["object"].clone();
        if let Some(list) = old["status"]["conditions"].as_array_mut() {
            list.reverse();
        }
        request["oldObject"] = old;
    })
}

/// An object with one key of `key_len` bytes holding the key `a` `n` times.
fn duplicates_below_long_key(key_len: usize, n: usize) -> Vec<u8> {
    let mut out = format!("{{\"{}\":{{", "k".repeat(key_len)).into_bytes();
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"\"a\":0");
    }
    out.extend_from_slice(b"}}");
    out
}

/// Free-form content of one key `key_len` bytes long holding `n` distinct keys, each twice: `n`
/// duplicate fields, each named below the long key.
fn distinct_duplicates_below_long_key(key_len: usize, n: usize) -> Vec<u8> {
    let mut out = format!("{{\"{}\":{{", "k".repeat(key_len)).into_bytes();
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"a{i}\":0,\"a{i}\":0").as_bytes());
    }
    out.extend_from_slice(b"}}");
    out
}

/// `depth` nested arrays: `[[[...]]]`.
fn deep(depth: usize) -> Vec<u8> {
    [vec![b'['; depth], vec![b']'; depth]].concat()
}

/// A valid review of exactly `len` bytes (trailing whitespace), with [`CASE_UID`].
fn padded(len: usize) -> Vec<u8> {
    let mut body = review_with(|_| {});
    body.resize(len, b' ');
    body
}

// === running a case ===

/// Runs `case` and checks its outcome; the error says what differed.
async fn run(target: &Target, case: &Case) -> Result<(), String> {
    let outcome = send(target, &case.via).await?;
    // Opt-in, for reading what each case got; silent by default.
    if std::env::var_os("BAD_INPUT_DEBUG").is_some() {
        eprintln!("{}: {}", case.name, describe(&outcome));
    }
    check(&case.expect, &outcome, case.known_finding.is_some())
}

async fn send(target: &Target, via: &Via) -> Result<Outcome, String> {
    match via {
        Via::Http {
            method,
            path,
            content_type,
            body,
        } => {
            let client = https_client(target, &[b"http/1.1"]);
            let mut request = client
                .request(method.clone(), format!("https://{}{path}", target.addr))
                .body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("Content-Type", *content_type);
            }
            match request.send().await {
                Ok(resp) => {
                    let reply = Reply::read(resp).await;
                    Ok(Outcome::Http {
                        status: reply.status,
                        content_type: reply.content_type,
                        body: reply.body,
                    })
                }
                Err(e) => Ok(Outcome::NoHttp(format!("{e:?}"))),
            }
        }
        Via::RawTls(bytes) => {
            let (target, bytes) = (target.clone(), bytes.clone());
            blocking(move || {
                let mut stream = tls_connect(&target, &[b"http/1.1"])?;
                // The server may answer and close before all is written (413): read anyway.
                let _ = stream.write_all(&bytes).and_then(|()| stream.flush());
                Ok(read_http(&mut stream))
            })
            .await
        }
        Via::RawTcp(bytes) => {
            let (target, bytes) = (target.clone(), bytes.clone());
            blocking(move || {
                let mut tcp = tcp_connect(&target)?;
                let _ = tcp.write_all(&bytes);
                Ok(read_http(&mut tcp))
            })
            .await
        }
        Via::Conn(conn) => send_conn(target, *conn).await,
    }
}

async fn send_conn(target: &Target, conn: Conn) -> Result<Outcome, String> {
    let t = target.clone();
    match conn {
        Conn::OpenSslTls11 => blocking(move || openssl_tls11(&t)).await,
        Conn::Tls11Hello => blocking(move || tls11_hello(&t)).await,
        Conn::AlpnOnly(alpn) => {
            blocking(move || {
                Ok(match tls_connect(&t, &[alpn]) {
                    Ok(stream) => Outcome::TlsEstablished(format!(
                        "{:?}, ALPN {:?}",
                        stream.conn.protocol_version(),
                        stream.conn.alpn_protocol().map(String::from_utf8_lossy)
                    )),
                    Err(e) => Outcome::NoHttp(e),
                })
            })
            .await
        }
        Conn::Slowloris => {
            let slow = tokio::task::spawn_blocking(move || slowloris(&t));
            // The slow client holds its connection; others are served meanwhile.
            tokio::time::sleep(SLOW_TICK * 3).await;
            still_serving(target, "served-during-slowloris")
                .await
                .map_err(|e| format!("while a slowloris client was connected: {e}"))?;
            slow.await.map_err(|e| format!("slowloris client: {e}"))?
        }
        Conn::SilentTcp => {
            let silent = tokio::task::spawn_blocking(move || {
                let tcp = tcp_connect(&t)?;
                Ok(wait_for_close(tcp, Instant::now()))
            });
            tokio::time::sleep(Duration::from_secs(1)).await;
            still_serving(target, "served-during-silent-tcp").await?;
            silent.await.map_err(|e| format!("silent client: {e}"))?
        }
        Conn::SilentTls => {
            let silent = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let stream = tls_connect(&t, &[b"http/1.1"])?;
                Ok(wait_for_close(stream, started))
            });
            tokio::time::sleep(Duration::from_secs(1)).await;
            still_serving(target, "served-during-silent-tls").await?;
            silent.await.map_err(|e| format!("silent client: {e}"))?
        }
        Conn::ManyIdle => {
            let held = blocking(move || {
                (0..MANY)
                    .map(|i| {
                        tls_connect(&t, &[b"http/1.1"]).map_err(|e| format!("connection {i}: {e}"))
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .await?;
            still_serving(target, "served-with-200-idle-connections").await?;
            let opened = held.len();
            drop(held);
            Ok(Outcome::Served(opened))
        }
        Conn::ManyConcurrent => {
            let client = https_client(target, &[b"http/1.1"]);
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..MANY {
                let client = client.clone();
                let target = target.clone();
                tasks.spawn(
                    async move { answer(&client, &target, &format!("concurrent-{i}")).await },
                );
            }
            let mut served = 0;
            let mut first_error = None;
            while let Some(joined) = tasks.join_next().await {
                match joined.map_err(|e| e.to_string()).and_then(|r| r) {
                    Ok(()) => served += 1,
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            match first_error {
                Some(e) if served < MANY => {
                    Err(format!("{served}/{MANY} served; first error: {e}"))
                }
                _ => Ok(Outcome::Served(served)),
            }
        }
    }
}

/// Compares an outcome with the documented answer.
fn check(expect: &Expect, outcome: &Outcome, known_finding: bool) -> Result<(), String> {
    let mismatch = || Err(format!("expected {expect:?}, got {}", describe(outcome)));
    match (expect, outcome) {
        (
            Expect::Plain(want),
            Outcome::Http {
                status,
                content_type,
                body,
            },
        ) => {
            let text = String::from_utf8_lossy(body);
            if status != want {
                return mismatch();
            }
            if !content_type.starts_with("text/plain") {
                return Err(format!(
                    "{status} with content type {content_type:?}: {text:.200}"
                ));
            }
            // A short plain error that admits nothing.
            if body.len() > 1024 || looks_like_review(body) {
                return Err(format!(
                    "{status} body is not a short plain error: {text:.200}"
                ));
            }
            Ok(())
        }
        (Expect::StatusOrReset(_), Outcome::NoHttp(why))
            if why.contains("reset") || why.contains("Broken pipe") =>
        {
            Ok(())
        }
        (
            Expect::Status(want) | Expect::StatusOrReset(want),
            Outcome::Http { status, body, .. },
        ) => {
            if status != want || looks_like_review(body) {
                return mismatch();
            }
            Ok(())
        }
        (
            Expect::Review {
                allowed,
                code,
                cause,
            },
            Outcome::Http {
                status,
                content_type,
                body,
            },
        ) => {
            if *status != 200 || !content_type.starts_with("application/json") {
                return mismatch();
            }
            let review: Value =
                serde_json::from_slice(body).map_err(|e| format!("200 answer is not JSON: {e}"))?;
            let response = &review["response"];
            let ok = review["kind"] == "AdmissionReview"
                && review["apiVersion"] == "admission.k8s.io/v1"
                && response["uid"] == CASE_UID
                && response["allowed"] == *allowed
                && response["status"]["code"].as_u64() == code.map(u64::from)
                && cause.is_none_or(|cause| {
                    response["status"]["details"]["causes"]
                        .as_array()
                        .is_some_and(|causes| causes.iter().any(|c| c["reason"] == cause))
                });
            if !ok {
                return Err(format!(
                    "expected {expect:?}, got {:.600}",
                    String::from_utf8_lossy(body)
                ));
            }
            // However many errors, an answer lists at most so many, and one more counting the
            // rest.
            let causes = response["status"]["details"]["causes"]
                .as_array()
                .map_or(0, Vec::len);
            let warnings = response["warnings"].as_array().map_or(0, Vec::len);
            if causes > MAX_CAUSES + 1 || warnings > MAX_WARNINGS + 1 {
                return Err(format!(
                    "answer lists {causes} causes and {warnings} warnings (caps {MAX_CAUSES} and {MAX_WARNINGS}, and one more line each)"
                ));
            }
            // Kubernetes cuts a webhook's message anyway; the answer must not echo a huge
            // value back. Where the server is known to, the finding tests assert it.
            if body.len() > SMALL_ANSWER && !known_finding {
                return Err(format!(
                    "answer of {} bytes echoes the input (limit {SMALL_ANSWER})",
                    body.len()
                ));
            }
            Ok(())
        }
        (Expect::NoHttp, Outcome::NoHttp(_)) => Ok(()),
        (Expect::ClosedByServer, Outcome::Closed { after, status }) => {
            let closed_in_time = *after <= SLOW_CLIENT_BOUND;
            let refused = status.is_none_or(|s| s >= 400);
            if closed_in_time && refused {
                Ok(())
            } else {
                mismatch()
            }
        }
        (Expect::Served, Outcome::Served(n)) if *n == MANY => Ok(()),
        _ => mismatch(),
    }
}

/// Whether `body` is an AdmissionReview answer (which a refusal must never be).
fn looks_like_review(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("response").is_some())
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Http {
            status,
            content_type,
            body,
        } => format!(
            "HTTP {status} ({content_type:?}, {} bytes): {:.300}",
            body.len(),
            String::from_utf8_lossy(body)
        ),
        Outcome::NoHttp(why) => format!("no HTTP answer: {why}"),
        Outcome::TlsEstablished(what) => format!("TLS session established: {what}"),
        other => format!("{other:?}"),
    }
}

/// POSTs a valid review on a new connection: it must be answered 200, allowed.
async fn still_serving(target: &Target, uid: &str) -> Result<(), String> {
    answer(&https_client(target, &[b"http/1.1"]), target, uid).await
}

async fn answer(client: &reqwest::Client, target: &Target, uid: &str) -> Result<(), String> {
    let body = review(uid, "admission.k8s.io/v1");
    let resp = client
        .post(format!("https://{}/validate", target.addr))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("valid review {uid} not sent: {e:?}"))?;
    let reply = Reply::read(resp).await;
    let json: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    if reply.status == 200 && json["response"]["uid"] == uid && json["response"]["allowed"] == true
    {
        Ok(())
    } else {
        Err(format!(
            "valid review {uid} answered {}: {:.300}",
            reply.status,
            reply.text()
        ))
    }
}

/// Runs blocking socket work off the runtime (the server runs on it too); a panic there is
/// reported as the case's failure.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("client thread: {e}"))?
}

// === clients ===

fn https_client(target: &Target, alpn: &[&[u8]]) -> reqwest::Client {
    client(tls_client(&target.ca_pem, alpn, &[&TLS13, &TLS12], None))
}

fn tcp_connect(target: &Target) -> Result<TcpStream, String> {
    let tcp = TcpStream::connect(target.addr).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(PATIENCE))
        .and_then(|()| tcp.set_write_timeout(Some(PATIENCE)))
        .map_err(|e| format!("socket timeouts: {e}"))?;
    Ok(tcp)
}

/// A TLS connection with the handshake finished, so that a refused handshake is an error here
/// and not on the first read.
fn tls_connect(
    target: &Target,
    alpn: &[&[u8]],
) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
    let config = tls_client(&target.ca_pem, alpn, &[&TLS13, &TLS12], None);
    let conn = ClientConnection::new(Arc::new(config), ServerName::from(target.addr.ip()))
        .map_err(|e| format!("client connection: {e}"))?;
    let mut stream = StreamOwned::new(conn, tcp_connect(target)?);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| format!("TLS handshake: {e}"))?;
    }
    Ok(stream)
}

/// Reads one HTTP/1.1 response: until its declared length is in, or the connection ends.
fn read_http(stream: &mut impl Read) -> Outcome {
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let ended = loop {
        if let Some(outcome) = parse_response(&data, false) {
            return outcome;
        }
        match stream.read(&mut buf) {
            Ok(0) => break "closed".to_owned(),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) => break e.to_string(),
        }
    };
    parse_response(&data, true).unwrap_or_else(|| {
        Outcome::NoHttp(format!(
            "{ended} after {} bytes: {:?}",
            data.len(),
            String::from_utf8_lossy(&data[..data.len().min(80)])
        ))
    })
}

/// An HTTP response in `data` if it is complete (or the connection ended, `eof`).
fn parse_response(data: &[u8], eof: bool) -> Option<Outcome> {
    if !data.starts_with(b"HTTP/") {
        return None;
    }
    let head_end = data.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&data[..head_end]);
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let body = &data[head_end..];
    let complete = match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) => body.len() >= len,
        None => eof,
    };
    complete.then(|| Outcome::Http {
        status,
        content_type: header("content-type").unwrap_or_default(),
        body: body.to_vec(),
    })
}

/// Waits for the server to end a connection the client keeps silent on.
fn wait_for_close(mut stream: impl Read, started: Instant) -> Outcome {
    let mut buf = [0u8; 4096];
    let mut data = Vec::new();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                return Outcome::NoHttp(format!("still open after {:?}", started.elapsed()));
            }
            Err(_) => break,
        }
    }
    Outcome::Closed {
        after: started.elapsed(),
        status: status_of(&data),
    }
}

fn status_of(data: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(data);
    text.strip_prefix("HTTP/")?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Sends a request head one byte per [`SLOW_TICK`] until the server closes the connection.
fn slowloris(target: &Target) -> Result<Outcome, String> {
    let mut stream = tls_connect(target, &[b"http/1.1"])?;
    stream
        .sock
        .set_read_timeout(Some(SLOW_TICK))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         X-Slow: {}",
        "a".repeat(1024)
    );
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for byte in head.as_bytes() {
        if started.elapsed() > SLOW_CLIENT_GIVE_UP {
            break;
        }
        if stream
            .write_all(&[*byte])
            .and_then(|()| stream.flush())
            .is_err()
        {
            return Ok(Outcome::Closed {
                after: started.elapsed(),
                status: status_of(&answer),
            });
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                return Ok(Outcome::Closed {
                    after: started.elapsed(),
                    status: status_of(&answer),
                })
            }
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(_) => {
                return Ok(Outcome::Closed {
                    after: started.elapsed(),
                    status: status_of(&answer),
                })
            }
        }
    }
    Ok(Outcome::NoHttp(format!(
        "the server kept a slowloris connection open for {:?}",
        started.elapsed()
    )))
}

/// `openssl s_client -tls1_1`, after checking with `-tls1_2` that the tool works at all; falls
/// back to the hand-made ClientHello when there is no usable openssl or it refuses TLS 1.1
/// itself.
fn openssl_tls11(target: &Target) -> Result<Outcome, String> {
    let ca = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(ca.path(), &target.ca_pem).map_err(|e| e.to_string())?;
    let s_client = |version: &str| -> Option<(bool, String)> {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &target.addr.to_string(),
                version,
                "-CAfile",
            ])
            .arg(ca.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + PATIENCE;
        while child.try_wait().ok()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().ok()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let established = text.contains("Cipher is ") && !text.contains("Cipher is (NONE)");
        Some((established, text))
    };
    match s_client("-tls1_2") {
        Some((true, _)) => {}
        // No openssl, or one that cannot reach the server at all: the hand-made hello decides.
        _ => return tls11_hello(target),
    }
    let Some((established, text)) = s_client("-tls1_1") else {
        return tls11_hello(target);
    };
    if established {
        return Ok(Outcome::TlsEstablished(format!(
            "openssl -tls1_1: {text:.400}"
        )));
    }
    if text.contains("no protocols available") || !text.contains("alert") {
        // This openssl will not send a TLS 1.1 hello: ask in TLS 1.1 by hand instead.
        return tls11_hello(target);
    }
    let alert = text
        .lines()
        .find(|l| l.contains("alert"))
        .unwrap_or_default()
        .to_owned();
    Ok(Outcome::NoHttp(format!("openssl -tls1_1: {alert}")))
}

/// Sends a TLS 1.1 ClientHello (no `supported_versions`, ECDHE CBC suites) and reads what the
/// server answers: an alert or a close refuses it, a ServerHello accepts it.
fn tls11_hello(target: &Target) -> Result<Outcome, String> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(0); // no session id
    let suites: [u16; 4] = [0xc009, 0xc013, 0x002f, 0x0035];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for suite in suites {
        body.extend_from_slice(&suite.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // null compression only
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, // supported_groups: secp256r1
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
    ];
    body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    body.extend_from_slice(extensions);
    let mut handshake = vec![0x01]; // ClientHello
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x02]; // handshake record, TLS 1.1
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);

    let mut tcp = tcp_connect(target)?;
    tcp.write_all(&record)
        .map_err(|e| format!("send hello: {e}"))?;
    let mut answer = [0u8; 7];
    let mut got = 0;
    while got < answer.len() {
        match tcp.read(&mut answer[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    Ok(match answer[..got] {
        [] => Outcome::NoHttp("closed without a word".to_owned()),
        [0x15, _, _, _, _, level, description] => {
            Outcome::NoHttp(format!("alert level {level} description {description}"))
        }
        [0x16, ..] => Outcome::TlsEstablished("a ServerHello to a TLS 1.1 hello".to_owned()),
        ref other => Outcome::NoHttp(format!("unexpected bytes {other:02x?}")),
    })
}

// === the tests ===

fn is_slow(case: &Case) -> bool {
    matches!(
        case.via,
        Via::Conn(Conn::Slowloris | Conn::SilentTcp | Conn::SilentTls)
    )
}

fn target_of(server: &TestServer) -> Target {
    Target {
        addr: server.addr,
        ca_pem: server.certs.ca_pem.clone(),
    }
}

#[test]
fn catalogue_has_at_least_40_distinct_cases() {
    let cases = catalogue();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
}

/// Every case but the slow clients, one after the other, each followed by a valid review.
#[tokio::test]
async fn bad_input_catalogue_gets_documented_answers() {
    let server = TestServer::start(|cfg| {
        cfg.max_body_bytes = LIMIT;
        // The unknown-key cases expect the strict denial, whatever `serve`'s default.
        cfg.admission.field_validation = FieldValidation::Strict;
    });
    let target = target_of(&server);
    let mut failures = Vec::new();
    for case in catalogue().iter().filter(|c| !is_slow(c)) {
        if let Err(e) = run(&target, case).await {
            failures.push(format!("case {:?}: {e}", case.name));
        }
        if let Err(e) = still_serving(&target, "still-serving").await {
            failures.push(format!("after case {:?}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.stop().await;
}

/// The slow and silent clients, at the same time (each waits out a server timeout), each
/// followed by a valid review.
#[tokio::test]
async fn slow_and_silent_clients_are_closed_by_the_server() {
    let server = TestServer::start(|cfg| cfg.max_body_bytes = LIMIT);
    let target = target_of(&server);
    let mut runs = tokio::task::JoinSet::new();
    for case in catalogue().into_iter().filter(is_slow) {
        let target = target.clone();
        runs.spawn(async move {
            let mut failures = Vec::new();
            if let Err(e) = run(&target, &case).await {
                failures.push(format!("case {:?}: {e}", case.name));
            }
            if let Err(e) = still_serving(&target, "still-serving").await {
                failures.push(format!("after case {:?}: {e}", case.name));
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = runs.join_next().await {
        match joined {
            Ok(mut f) => failures.append(&mut f),
            Err(e) => failures.push(format!("a slow-client case panicked: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.stop().await;
}

/// The hostile shapes under `--field-validation Warn`: admitted with the unknown and duplicate
/// fields as warnings, at most [`MAX_WARNINGS`] and one counting the rest; the server serves on.
#[tokio::test]
async fn hostile_shapes_under_field_validation_warn_get_bounded_warnings() {
    let server = TestServer::start(|cfg| {
        cfg.max_body_bytes = LIMIT;
        cfg.admission.field_validation = FieldValidation::Warn;
    });
    let target = target_of(&server);
    let cases = [
        (
            "many unknown keys: 100,000 in spec",
            object_with(|o| {
                for key in numbered("k", LONG) {
                    o["spec"][key] = Value::from(0);
                }
            }),
            LONG,
        ),
        (
            // One path, named once however often its key repeats (issue 16).
            "many duplicate keys below a 1 MiB key of managedFields",
            splice(
                &object_with(|o| {
                    o["metadata"]["managedFields"] = json!([{ "fieldsV1": marker() }])
                }),
                &duplicates_below_long_key(1 << 20, LONG),
            ),
            1,
        ),
        (
            "many distinct duplicate keys below a 1 MiB key of managedFields",
            splice(
                &object_with(|o| {
                    o["metadata"]["managedFields"] = json!([{ "fieldsV1": marker() }])
                }),
                &distinct_duplicates_below_long_key(1 << 20, LONG),
            ),
            LONG,
        ),
    ];
    let client = https_client(&target, &[b"http/1.1"]);
    let mut failures = Vec::new();
    for (name, body, issues) in cases {
        let resp = client
            .post(format!("https://{}{HOSTILE_PATH}", target.addr))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await;
        let reply = match resp {
            Ok(resp) => Reply::read(resp).await,
            Err(e) => {
                failures.push(format!("{name}: not answered: {e:?}"));
                continue;
            }
        };
        let json = reply.json();
        let warnings: Vec<&str> = json["response"]["warnings"]
            .as_array()
            .map(|w| w.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Every issue listed, or the first ones and one warning counting the rest.
        let counted = warnings.len() == issues
            || warnings.last().is_some_and(|last| {
                let listed = warnings.len() - 1;
                (1..=MAX_WARNINGS).contains(&listed)
                    && *last == format!("and {} more warnings", issues - listed)
            });
        let ok = reply.status == 200
            && json["response"]["allowed"] == true
            && counted
            && reply.body.len() <= SMALL_ANSWER;
        if !ok {
            failures.push(format!(
                "{name}: {} with {} warnings (last {:?}), {} bytes",
                reply.status,
                warnings.len(),
                warnings.last(),
                reply.body.len()
            ));
        }
        if let Err(e) = still_serving(&target, "still-serving").await {
            failures.push(format!("after {name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.stop().await;
}

// === findings: DESIGN says otherwise; these fail until the pipeline is fixed ===

/// Regression (was a finding): an invalid value was echoed whole in `status.message` and again in each cause, so a
/// 5 MiB value gives an answer of 10 MiB or more (30 MiB for `metadata.name`, which is echoed
/// in the `"<name>" is invalid` prefix too). Kubernetes cuts webhook messages anyway; the answer
/// should stay small, e.g. by truncating echoed values as apimachinery does for long values.
#[test]
fn huge_invalid_values_are_not_echoed_whole() {
    let huge = "x".repeat(HUGE);
    let cases = [
        (
            "spec.network",
            object_with(|o| o["spec"]["network"] = format!("-{huge}").into()),
        ),
        (
            "metadata.name",
            object_with(|o| o["metadata"]["name"] = huge.to_uppercase().into()),
        ),
        (
            "status.ips[0]",
            object_with(|o| o["status"] = json!({ "ips": [huge.clone()] })),
        ),
        (
            "an unknown field's name",
            object_with(|o| o["spec"][huge.as_str()] = Value::from(1)),
        ),
    ];
    let mut failures = Vec::new();
    for (what, body) in cases {
        let answer = admission::review(&body, Webhook::Validate, &Default::default())
            .expect("an answerable review");
        if answer.body.len() > SMALL_ANSWER {
            failures.push(format!(
                "huge {what}: answer of {} bytes",
                answer.body.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Regression (was a finding): the envelope decoder (serde's derived `Deserialize`) also accepts a JSON array of
/// the fields in declaration order, so `["admission.k8s.io/v1", "AdmissionReview", {...}]` is
/// judged and answered 200 instead of refused with 400 as a body that is not an AdmissionReview.
#[test]
fn positional_array_is_not_an_admission_review() {
    let real: Value =
        serde_json::from_slice(&review(CASE_UID, "admission.k8s.io/v1")).expect("JSON");
    let positional = serde_json::to_vec(&json!([
        "admission.k8s.io/v1",
        "AdmissionReview",
        real["request"]
    ]))
    .expect("serialise");
    let answer = admission::review(&positional, Webhook::Validate, &Default::default());
    assert!(
        answer.is_err(),
        "answered: {}",
        answer
            .map(|a| String::from_utf8_lossy(&a.body).into_owned())
            .unwrap_or_default()
    );
}
