//! Shared helpers of the server integration tests: certificates made in the test, the real
//! server on loopback, and TLS clients that trust only the test CA.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipamclaim_webhook::certs::{self, CertsOptions, ClientCert, DevCerts};
use ipamclaim_webhook::serve::tls::TlsFiles;
use ipamclaim_webhook::serve::{self, Handle, ServeConfig, ServerError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::version::{TLS12, TLS13};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion,
};
use serde_json::Value;
use tempfile::TempDir;

pub mod process;

/// Generous bound for anything that should take milliseconds; the machine is shared.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The captured kube-apiserver payloads (`tests/fixtures/captured/`, see its README).
pub fn payloads_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captured")
}

/// The captured kube-apiserver reviews (every `*.json` but the headers file), sorted; fails
/// loudly when fewer than the 17 captures are there, so no test passes on an empty directory.
pub fn captured_payloads() -> Vec<PathBuf> {
    let dir = payloads_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list the captured payloads {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name().is_some_and(|n| n != "request-headers.json")
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 17,
        "expected the 17 captured reviews in {}, found {files:?}",
        dir.display()
    );
    files
}

/// The golden fixtures of this repository.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A captured payload, by file name; fails loudly when it is missing.
pub fn payload(name: &str) -> Vec<u8> {
    let path = payloads_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The captured CREATE review for `/validate`, with its uid and apiVersion replaced.
pub fn review(uid: &str, api_version: &str) -> Vec<u8> {
    let mut review: Value =
        serde_json::from_slice(&payload("02-validate-create.json")).expect("payload is JSON");
    review["request"]["uid"] = Value::from(uid);
    review["apiVersion"] = Value::from(api_version);
    serde_json::to_vec(&review).expect("serialise")
}

/// The real server, started in-process on loopback with certificates made for the test.
pub struct TestServer {
    /// TLS listener.
    pub addr: SocketAddr,
    /// Plain-HTTP probe listener.
    pub probe_addr: SocketAddr,
    /// The CA and serving certificate the server uses.
    pub certs: DevCerts,
    /// Where the certificate files are.
    pub dir: TempDir,
    handle: Handle,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

/// A config for `dir` (holding the files of [`DevCerts::write_to`]) on loopback port 0.
pub fn test_config(dir: &Path) -> ServeConfig {
    let mut cfg = ServeConfig::new(TlsFiles {
        cert: dir.join(certs::CERT_FILE),
        key: dir.join(certs::KEY_FILE),
        client_ca: None,
    });
    cfg.listen = "127.0.0.1:0".parse().expect("addr");
    cfg.probe_listen = "127.0.0.1:0".parse().expect("addr");
    cfg.workers = 1;
    cfg.shutdown_timeout = Duration::from_secs(5);
    // Tests stop servers often: no waiting for endpoint removal that no one propagates.
    cfg.shutdown_delay = Duration::ZERO;
    cfg
}

impl TestServer {
    /// Starts a server with the test defaults, changed by `tweak`.
    pub fn start(tweak: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = certs::generate(&CertsOptions::default()).expect("generate certs");
        certs.write_to(dir.path()).expect("write certs");
        let mut cfg = test_config(dir.path());
        tweak(&mut cfg);
        TestServer::start_with(certs, dir, cfg)
    }

    /// Starts a server with `cfg`, whose files are in `dir` and were made from `certs`.
    pub fn start_with(certs: DevCerts, dir: TempDir, cfg: ServeConfig) -> TestServer {
        let running = serve::start(cfg).expect("server starts");
        TestServer {
            addr: running.addr(),
            probe_addr: running.probe_addr(),
            certs,
            dir,
            handle: running.handle(),
            task: tokio::spawn(running.wait()),
        }
    }

    /// `https://127.0.0.1:PORT{path}` of the TLS listener.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// `http://127.0.0.1:PORT{path}` of the probe listener.
    pub fn probe_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.probe_addr)
    }

    /// An HTTP/1.1 client trusting this server's CA.
    pub fn client(&self) -> reqwest::Client {
        client(tls_client(
            &self.certs.ca_pem,
            &[b"http/1.1"],
            &[&TLS13, &TLS12],
            None,
        ))
    }

    /// A handle on the running server.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// `GET /metrics` on the probe listener: the Prometheus text.
    pub async fn metrics(&self) -> String {
        get_metrics(&self.probe_url("/metrics")).await
    }

    /// Stops the server gracefully and checks that it stopped cleanly.
    pub async fn stop(self) {
        self.handle.shutdown().await;
        let result = tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("server stops in time")
            .expect("server task joins");
        result.expect("server stopped cleanly");
    }
}

/// A rustls client config with the ring provider, trusting only `ca_pem`.
pub fn tls_client(
    ca_pem: &str,
    alpn: &[&[u8]],
    versions: &[&'static SupportedProtocolVersion],
    identity: Option<&ClientCert>,
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("CA PEM"))
            .expect("CA is a trust anchor");
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => {
            let chain = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("client cert PEM");
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth cert")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A reqwest client over `tls`; no proxy, so that loopback is always reached directly.
pub fn client(tls: ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .expect("reqwest client")
}

/// A plain-HTTP client for the probe listener.
pub fn plain_client() -> reqwest::Client {
    // reqwest wants a TLS backend even for http:// (no process-wide provider is installed);
    // this one trusts nothing.
    let tls =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth();
    client(tls)
}

/// POSTs `body` as JSON and returns status, content type and body.
pub async fn post_json(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Reply {
    let resp = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
    Reply::read(resp).await
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, empty when absent.
    pub content_type: String,
    /// HTTP version the response came over.
    pub version: reqwest::Version,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// Reads a reqwest response whole.
    pub async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let version = resp.version();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = resp.bytes().await.expect("response body").to_vec();
        Reply {
            status,
            content_type,
            version,
            body,
        }
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Asserts that `reply` is a 200 AdmissionReview answering `request` (same apiVersion, same
/// uid), and returns it.
pub fn assert_answers(reply: &Reply, request: &[u8]) -> Value {
    let request: Value = serde_json::from_slice(request).expect("request is JSON");
    assert_eq!(reply.status, 200, "body: {}", reply.text());
    assert!(
        reply.content_type.starts_with("application/json"),
        "content type {:?}",
        reply.content_type
    );
    let response = reply.json();
    assert_eq!(response["kind"], "AdmissionReview");
    assert_eq!(
        response["apiVersion"], request["apiVersion"],
        "apiVersion echoed"
    );
    assert_eq!(
        response["response"]["uid"], request["request"]["uid"],
        "uid echoed"
    );
    assert!(response["response"]["allowed"].is_boolean());
    response
}

/// A blocking TLS connection to `addr` that trusts `ca_pem`, offering HTTP/1.1.
pub fn raw_tls(addr: SocketAddr, ca_pem: &str) -> StreamOwned<ClientConnection, TcpStream> {
    let config = tls_client(ca_pem, &[b"http/1.1"], &[&TLS13, &TLS12], None);
    let name = ServerName::from(addr.ip());
    let conn = ClientConnection::new(Arc::new(config), name).expect("client connection");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    tcp.set_write_timeout(Some(PATIENCE))
        .expect("write timeout");
    StreamOwned::new(conn, tcp)
}

/// Sends raw HTTP/1.1 `request` bytes over TLS and returns the status code and the raw
/// response; the request should carry `Connection: close`.
pub fn raw_exchange(addr: SocketAddr, ca_pem: &str, request: &[u8]) -> (u16, String) {
    let mut stream = raw_tls(addr, ca_pem);
    stream.write_all(request).expect("send request");
    stream.flush().expect("flush");
    let mut response = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    // Read until the server closes; an abrupt close after the response is fine.
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(_) if !response.is_empty() => break,
            Err(e) => panic!("reading the response: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

/// A chunked HTTP/1.1 POST of `body` (in chunks of `chunk` bytes) to `path`.
pub fn chunked_post(path: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for piece in body.chunks(chunk) {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

/// A review of exactly `len` bytes: `review` padded with trailing whitespace.
pub fn padded_review(len: usize) -> Vec<u8> {
    let mut body = review("padded-review-uid", "admission.k8s.io/v1");
    assert!(body.len() <= len, "review alone is {} bytes", body.len());
    body.resize(len, b' ');
    body
}

/// `GET url` (a probe listener's `/metrics`): asserts 200 and returns the Prometheus text.
pub async fn get_metrics(url: &str) -> String {
    let resp = plain_client().get(url).send().await.expect("GET /metrics");
    assert_eq!(resp.status().as_u16(), 200, "GET {url}");
    resp.text().await.expect("metrics text")
}

/// The value of one series (`name{labels}` exactly as rendered) in Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// The DER of the certificate a fresh TLS connection to `addr` is served (no session cache, so
/// never a resumption), trusting `ca_pem`. Blocking.
pub fn peer_certificate(addr: SocketAddr, ca_pem: &str) -> Result<Vec<u8>, String> {
    let config = tls_client(ca_pem, &[b"http/1.1"], &[&TLS13, &TLS12], None);
    let mut conn = ClientConnection::new(Arc::new(config), ServerName::from(addr.ip()))
        .map_err(|e| e.to_string())?;
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(PATIENCE))
        .map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    conn.peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.as_ref().to_vec())
        .ok_or_else(|| "no peer certificate".to_owned())
}

/// The DER of the first certificate in PEM text.
pub fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("certificate PEM")
        .as_ref()
        .to_vec()
}

/// A directory laid out as the kubelet lays out a Secret volume: the files are symlinks
/// `NAME -> ..data/NAME`, `..data` is a symlink to a timestamped directory, and an update
/// writes a new timestamped directory and renames a `..data_tmp` symlink over `..data`, then
/// removes the old directory (the kubelet's AtomicWriter).
pub struct SecretVolume {
    root: PathBuf,
    generation: u32,
}

impl SecretVolume {
    /// Lays out `files` (name, contents) under `root`, which must exist.
    pub fn create(root: &Path, files: &[(&str, &[u8])]) -> SecretVolume {
        let mut volume = SecretVolume {
            root: root.to_owned(),
            generation: 0,
        };
        volume.update(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(Path::new("..data").join(name), root.join(name))
                .expect("file symlink");
        }
        volume
    }

    /// Replaces every file at once, as a Secret update does.
    pub fn update(&mut self, files: &[(&str, &[u8])]) {
        self.generation += 1;
        let dir_name = format!(
            "..2026_11_27_00_00_{:02}.{}",
            self.generation,
            std::process::id()
        );
        let dir = self.root.join(&dir_name);
        std::fs::create_dir(&dir).expect("timestamped dir");
        for (name, contents) in files {
            std::fs::write(dir.join(name), contents).expect("write secret file");
        }
        let old = std::fs::read_link(self.root.join("..data")).ok();
        let tmp = self.root.join("..data_tmp");
        std::os::unix::fs::symlink(&dir_name, &tmp).expect("..data_tmp symlink");
        std::fs::rename(&tmp, self.root.join("..data")).expect("swap ..data");
        if let Some(old) = old {
            std::fs::remove_dir_all(self.root.join(old)).expect("remove old dir");
        }
    }
}
