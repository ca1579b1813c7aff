//! The memory budget (issue 18), against the real binary with its default flags: floods of
//! connections holding unfinished bodies keep the peak RSS under the Deployment's memory limit,
//! a normal review on a fresh connection is answered meanwhile, and the server lives on.
//!
//! The binary is the debug build of `cargo test`; set `IPAMCLAIM_WEBHOOK_BIN` to measure another
//! one: `cargo build --release && IPAMCLAIM_WEBHOOK_BIN=target/release/ipamclaim-webhook cargo
//! test --test memory -- --nocapture` prints each flood's peak RSS (`VmHWM`).

mod common;

use std::fs;
use std::io::{ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{Launch, Serving};
use common::*;
use ipamclaim_webhook::certs::{self, CertsOptions, DevCerts};
use rustls::pki_types::ServerName;
use rustls::version::{TLS12, TLS13};
use rustls::ClientConnection;

/// One flood at a time: each is a thousand threads and a server process of its own, and the
/// peak RSS of one must not be measured while another one competes for the CPUs.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The share of the Deployment's memory limit the peak RSS must stay under (issue 18).
const SHARE_OF_LIMIT: f64 = 0.85;
/// A normal review during a flood must be answered within this. The issue asks for 2 s on an
/// idle machine; the tests allow more because the machine is shared.
const PROMPT: Duration = Duration::from_secs(5);

/// `resources.limits.memory` of the webhook container in `manifests/base/deployment.yaml`, in
/// bytes.
fn deployment_memory_limit() -> u64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/base/deployment.yaml");
    let text = fs::read_to_string(&path).expect("read deployment.yaml");
    let doc: serde_json::Value = yaml_serde::from_str(&text).expect("deployment.yaml is YAML");
    let limit = doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
        .as_str()
        .expect("the container has a memory limit")
        .to_owned();
    quantity(&limit).unwrap_or_else(|| panic!("cannot read memory limit {limit:?}"))
}

/// A Kubernetes memory quantity in binary units (`64Mi`, `1Gi`), in bytes.
fn quantity(text: &str) -> Option<u64> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let scale = match unit {
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return None,
    };
    number.parse::<u64>().ok().map(|n| n * scale)
}

/// The server process (killed if a test fails half-way) and the certificates it serves.
struct Server {
    process: Serving,
    certs: DevCerts,
    _dir: tempfile::TempDir,
}

/// A `kB` field of `/proc/PID/status` (`VmHWM`, `VmRSS`), in bytes.
fn proc_status(pid: u32, field: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        * 1024
}

impl Server {
    /// Starts the binary with its default flags (only the addresses and the certificate files
    /// given) and `extra`, and waits until `/healthz` answers.
    async fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = certs::generate(&CertsOptions::default()).expect("certs");
        let process = Launch::serving(dir.path(), &certs)
            .args(&["--shutdown-delay", "0", "--shutdown-timeout", "2"])
            .args(extra)
            .start()
            .await;
        Server {
            process,
            certs,
            _dir: dir,
        }
    }

    /// A normal review on a fresh connection: asserts it is answered, returns how long it took.
    async fn normal_review(&self, uid: &str) -> Duration {
        let client = client(tls_client(
            &self.certs.ca_pem,
            &[b"http/1.1"],
            &[&TLS13, &TLS12],
            None,
        ));
        let body = review(uid, "admission.k8s.io/v1");
        let url = format!("https://{}/validate?timeout=10s", self.process.addr());
        let started = Instant::now();
        let reply = post_json(&client, &url, body.clone()).await;
        let took = started.elapsed();
        assert_answers(&reply, &body);
        took
    }
}

/// Connections that each send a request head declaring `declared` bytes of body, then `sent`
/// bytes of it, and hold the connection open without sending the rest.
struct Flood {
    stop: Arc<AtomicBool>,
    /// Body bytes the server has taken (written to the kernel) over all connections.
    taken: Arc<AtomicUsize>,
    /// Connections whose handshake finished.
    connected: Arc<AtomicUsize>,
    /// Connections the server answered with 503 (no room in the memory budget).
    refused: Arc<AtomicUsize>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    target: usize,
}

impl Flood {
    fn start(
        addr: SocketAddr,
        ca_pem: &str,
        connections: usize,
        declared: usize,
        sent: usize,
    ) -> Flood {
        let config = Arc::new(tls_client(ca_pem, &[b"http/1.1"], &[&TLS13, &TLS12], None));
        let mut body = padded_review(declared);
        body.truncate(sent);
        let request: Arc<Vec<u8>> = Arc::new(
            [
                format!(
                    "POST /validate HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                     Content-Length: {declared}\r\n\r\n"
                )
                .as_bytes(),
                &body,
            ]
            .concat(),
        );
        let head_len = request.len() - sent;
        let stop = Arc::new(AtomicBool::new(false));
        let taken = Arc::new(AtomicUsize::new(0));
        let connected = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..connections)
            .map(|_| {
                let (config, request) = (config.clone(), request.clone());
                let (stop, taken) = (stop.clone(), taken.clone());
                let (connected, refused) = (connected.clone(), refused.clone());
                let sockets = sockets.clone();
                std::thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn(move || {
                        let Ok(tcp) = TcpStream::connect(addr) else {
                            return;
                        };
                        if let Ok(clone) = tcp.try_clone() {
                            sockets.lock().expect("sockets").push(clone);
                        }
                        let counts = Counts {
                            taken: &taken,
                            connected: &connected,
                            refused: &refused,
                        };
                        hold(tcp, config, &request, head_len, &stop, counts);
                    })
                    .expect("spawn a flood thread")
            })
            .collect();
        Flood {
            stop,
            taken,
            connected,
            refused,
            sockets,
            threads,
            target: connections * sent,
        }
    }

    /// Waits until every connection is up and the server has taken all it will take (the count
    /// stays the same for two seconds, or everything was taken).
    fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = (usize::MAX, Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = self.taken.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
            } else if now >= self.target || last.1.elapsed() >= Duration::from_secs(2) {
                return;
            }
            assert!(Instant::now() < deadline, "the flood never settled");
        }
    }

    /// Closes every connection and joins the threads.
    fn end(self) {
        self.stop.store(true, Ordering::Relaxed);
        for socket in self.sockets.lock().expect("sockets").iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// What the flood connections count together.
struct Counts<'a> {
    taken: &'a AtomicUsize,
    connected: &'a AtomicUsize,
    refused: &'a AtomicUsize,
}

/// One flood connection: handshake, send `request` as far as the server takes it, then hold
/// the connection until `stop` or until the server answers and closes it.
fn hold(
    mut tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    request: &[u8],
    head_len: usize,
    stop: &AtomicBool,
    counts: Counts<'_>,
) {
    let tick = Duration::from_millis(200);
    let _ = tcp.set_read_timeout(Some(tick));
    let _ = tcp.set_write_timeout(Some(tick));
    let addr = tcp.peer_addr().expect("peer addr");
    let Ok(mut conn) = ClientConnection::new(config, ServerName::from(addr.ip())) else {
        return;
    };
    let blocked =
        |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    while conn.is_handshaking() {
        match conn.complete_io(&mut tcp) {
            Ok(_) => {}
            Err(e) if blocked(&e) && !stop.load(Ordering::Relaxed) => {}
            Err(_) => return,
        }
    }
    counts.connected.fetch_add(1, Ordering::Relaxed);
    let (mut written, mut counted) = (0, 0);
    let mut answer = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if written < request.len() {
            let end = request.len().min(written + 16 * 1024);
            match conn.writer().write(&request[written..end]) {
                Ok(n) => written += n,
                Err(_) => return,
            }
        }
        // Send what is buffered, as far as the server reads it now.
        while conn.wants_write() {
            match conn.write_tls(&mut tcp) {
                Ok(_) => {}
                Err(e) if blocked(&e) => break,
                Err(_) => return,
            }
        }
        if !conn.wants_write() {
            let body = written.saturating_sub(head_len);
            counts.taken.fetch_add(body - counted, Ordering::Relaxed);
            counted = body;
            if written < request.len() {
                continue;
            }
        }
        // Whatever the server says (an answer, then its close) ends the connection.
        match conn.read_tls(&mut tcp) {
            Ok(0) => return,
            Ok(_) => {
                if conn.process_new_packets().is_err() {
                    return;
                }
                let mut buf = [0u8; 4096];
                while let Ok(n) = std::io::Read::read(&mut conn.reader(), &mut buf) {
                    if n == 0 {
                        break;
                    }
                    let first = answer.is_empty();
                    answer.extend_from_slice(&buf[..n]);
                    if first && answer.starts_with(b"HTTP/1.1 503") {
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Err(e) if blocked(&e) => {}
            Err(_) => return,
        }
    }
}

/// What one flood did to the server.
#[derive(Debug)]
struct Measured {
    /// Flood connections whose handshake finished.
    connected: usize,
    /// Flood connections refused with 503 (no room in the memory budget).
    refused: usize,
    /// Body bytes the server took over all flood connections.
    taken: usize,
    /// `VmHWM` of the server, in bytes.
    peak_rss: u64,
    /// How long the normal review took during the flood.
    review_took: Duration,
}

/// Starts the server with default flags, floods it with `connections` that each send `sent`
/// bytes of a `declared`-byte body, measures, and checks the bounds.
async fn flood_within_budget(
    connections: usize,
    declared: usize,
    sent: usize,
    waits_for_room: bool,
) -> Measured {
    let _one = ONE_AT_A_TIME.lock().await;
    let limit = deployment_memory_limit();
    let mut server = Server::start(&[]).await;
    let idle_rss = proc_status(server.process.pid(), "VmRSS");
    let (addr, ca) = (server.process.addr(), server.certs.ca_pem.clone());
    let flood = tokio::task::spawn_blocking(move || {
        let flood = Flood::start(addr, &ca, connections, declared, sent);
        flood.settle();
        flood
    })
    .await
    .expect("flood");
    let review_took = server.normal_review("during-the-flood").await;
    assert!(
        server.process.healthy().await,
        "not healthy during the flood"
    );
    let measured = Measured {
        connected: flood.connected.load(Ordering::Relaxed),
        refused: flood.refused.load(Ordering::Relaxed),
        taken: flood.taken.load(Ordering::Relaxed),
        peak_rss: proc_status(server.process.pid(), "VmHWM"),
        review_took,
    };
    let metrics = server.process.metrics().await;
    tokio::task::spawn_blocking(move || flood.end())
        .await
        .expect("end the flood");
    eprintln!(
        "{connections} connections x {sent} of {declared} bytes: idle RSS {} KiB, peak RSS \
         {} KiB = {:.1} % of the Deployment's limit of {} MiB; {measured:?}",
        idle_rss / 1024,
        measured.peak_rss / 1024,
        measured.peak_rss as f64 * 100.0 / limit as f64,
        limit >> 20,
    );
    // Still serving once the flood is gone, and the budget is all given back.
    server.normal_review("after-the-flood").await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = server.process.metrics().await;
        if metric(&text, "ipamclaim_webhook_memory_budget_in_use_bytes") == Some(0.0)
            && metric(&text, "ipamclaim_webhook_memory_budget_waiting_requests") == Some(0.0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "budget never given back:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = server.process.log();
    server.process.stop().await;

    assert_eq!(
        measured.connected, connections,
        "not every flood connection was served"
    );
    assert!(
        measured.peak_rss as f64 <= limit as f64 * SHARE_OF_LIMIT,
        "peak RSS {} KiB is over {SHARE_OF_LIMIT} of the limit {} KiB:\n{metrics}",
        measured.peak_rss / 1024,
        limit / 1024
    );
    assert!(
        measured.review_took < PROMPT,
        "a normal review took {:?} during the flood",
        measured.review_took
    );
    if waits_for_room {
        assert!(
            metric(&metrics, "ipamclaim_webhook_memory_budget_waiting_requests") > Some(0.0),
            "no body waited for room during the flood:\n{metrics}"
        );
        assert!(
            log.contains("request body waits for room in the memory budget"),
            "no log line about bodies waiting for the budget:\n{log}"
        );
        let lines = log.matches("waits for room in the memory budget").count();
        assert!(
            lines <= 3,
            "{lines} log lines about waiting: not rate-limited"
        );
    }
    measured
}

#[tokio::test]
async fn forty_connections_holding_six_mib_bodies_stay_under_the_limit() {
    const MIB: usize = 1 << 20;
    let measured = flood_within_budget(40, 6 * MIB, 6 * MIB - 1024, true).await;
    // Most never got room: refused rather than read.
    assert!(measured.refused > 0, "{measured:?}");
}

#[tokio::test]
async fn a_thousand_connections_holding_60_kb_each_stay_under_the_limit() {
    flood_within_budget(1000, 61_000, 60_000, true).await;
}

#[tokio::test]
async fn a_thousand_connections_holding_small_bodies_stay_under_the_limit() {
    // Small bodies never wait (each connection's share covers one): the most a connection
    // holds without the pool's say.
    let measured = flood_within_budget(1000, 8 * 1024, 8_000, false).await;
    assert_eq!(measured.refused, 0, "{measured:?}");
    assert_eq!(measured.taken, 1000 * 8_000, "small bodies were held back");
}
