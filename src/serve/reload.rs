//! Certificate hot reload: the serving certificate, its key and the client CA are re-read when
//! their files change, and every new TLS handshake uses the last pair that loaded cleanly.
//!
//! The files are polled, comparing their contents, rather than watched with inotify: the
//! kubelet updates a Secret volume by writing a new timestamped directory and renaming a
//! `..data` symlink over the old one, so the watched files themselves never change (their
//! paths resolve somewhere else), and inotify on them misses the rotation. Reading two or
//! three small files every few seconds costs nothing, sees every kind of update (the kubelet's
//! swap, `cp`, an editor's rename) and needs no extra crate.
//!
//! A new pair that does not load (unparsable PEM, a key that is not the certificate's, a
//! half-written file, an expired certificate) is logged at error and counted, and the pair in
//! use stays; it is tried again once the files change again. Connections already open keep the
//! certificate they were set up with: nothing is dropped.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::mpsc;
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use tracing::{error, info, warn};

use crate::serve::metrics::Metrics;
use crate::serve::tls::{self, ServingCert, TlsError, TlsFiles};

/// Default time between two looks at the TLS files. The kubelet itself takes up to a minute
/// (its sync period plus the cache TTL) to update a Secret volume, so a few seconds more are
/// not noticed, while each look is only a few small reads.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// How many times one look reads the files again when a pair fails to load and the files
/// changed meanwhile: a rotation that happens between the read of the certificate and the read
/// of the key pairs an old file with a new one, which is not a broken pair.
const RACE_RETRIES: usize = 3;

/// The serving certificate of every new handshake; swapped when the files change.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<ServingCert>,
}

/// The client certificate verifier of every new handshake; swapped when the client CA file
/// changes.
///
/// rustls fixes the verifier of a `ServerConfig` when the config is built, and the listener's
/// acceptor holds one config for good; this verifier stays in the config and delegates each
/// call to the verifier built from the CA file last loaded.
#[derive(Debug)]
pub struct ClientCaStore {
    current: RwLock<Arc<dyn ClientCertVerifier>>,
}

/// Loads the TLS files, and reloads them when they change.
pub struct Reloader {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    certs: Arc<CertStore>,
    client_ca: Option<Arc<ClientCaStore>>,
    metrics: Arc<Metrics>,
    /// Fingerprints the contents last looked at, so that an unchanged file is not loaded again
    /// (nor an unchanged broken one reported again). Keyed per process, so that fingerprints
    /// cannot be predicted.
    hasher: RandomState,
    pair_seen: u64,
    ca_seen: u64,
}

/// Keeps the reload thread running; dropping it stops the thread.
#[derive(Debug)]
pub struct Watch {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

// === impl CertStore ===

impl CertStore {
    /// A store serving `cert` until it is replaced.
    pub fn new(cert: ServingCert) -> Self {
        CertStore {
            current: RwLock::new(cert),
        }
    }

    /// The certificate new handshakes get.
    pub fn current(&self) -> ServingCert {
        // A writer cannot panic half-way through replacing the value, so a poisoned lock
        // still holds a whole certificate.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, cert: ServingCert) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = cert;
    }

    /// Whether the certificate can still be served at `now`: false once its `notAfter` has
    /// passed. A certificate whose expiry cannot be read counts as usable.
    pub fn usable_at(&self, now: SystemTime) -> bool {
        match self.current().not_after {
            Some(not_after) => unix_seconds(now) <= not_after,
            None => true,
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key)
    }
}

// === impl ClientCaStore ===

impl ClientCaStore {
    fn new(verifier: Arc<dyn ClientCertVerifier>) -> Self {
        ClientCaStore {
            current: RwLock::new(verifier),
        }
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, verifier: Arc<dyn ClientCertVerifier>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = verifier;
    }
}

impl ClientCertVerifier for ClientCaStore {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The hints would have to outlive a swap of the verifier; see `tls::client_verifier`,
        // which builds every delegate with no hints either.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

// === impl Reloader ===

impl Reloader {
    /// Loads the files for the first time; a failure here is a start-up error.
    ///
    /// An expired certificate is loaded all the same (there is nothing better to serve), and
    /// logged; `/readyz` reports it.
    pub fn load(files: TlsFiles, metrics: Arc<Metrics>) -> Result<Self, TlsError> {
        let provider = tls::provider();
        let hasher = RandomState::new();
        let cert_pem = tls::read_file(&files.cert)?;
        let key_pem = tls::read_file(&files.key)?;
        let pair_seen = hasher.hash_one((&cert_pem, &key_pem));
        let cert = tls::serving_cert(&cert_pem, &files.cert, &key_pem, &files.key, &provider)?;
        if let Some(not_after) = cert.not_after {
            metrics.set_cert_not_after(not_after);
            if unix_seconds(SystemTime::now()) > not_after {
                error!(
                    cert = %files.cert.display(),
                    not_after,
                    "the serving certificate has expired: not ready until it is renewed"
                );
            }
        } else {
            warn!(cert = %files.cert.display(), "cannot read the serving certificate's expiry");
        }
        let (client_ca, ca_seen) = match &files.client_ca {
            Some(path) => {
                let pem = tls::read_file(path)?;
                let verifier = tls::client_verifier(&pem, path, provider.clone())?;
                (
                    Some(Arc::new(ClientCaStore::new(verifier))),
                    hasher.hash_one(&pem),
                )
            }
            None => (None, 0),
        };
        Ok(Reloader {
            certs: Arc::new(CertStore::new(cert)),
            client_ca,
            files,
            provider,
            metrics,
            hasher,
            pair_seen,
            ca_seen,
        })
    }

    /// The store new handshakes take their certificate from.
    pub fn cert_store(&self) -> Arc<CertStore> {
        self.certs.clone()
    }

    /// The listener's rustls config: its certificate and client verifier follow the reloads.
    pub fn server_config(&self, enable_http2: bool) -> Result<ServerConfig, TlsError> {
        let verifier = self
            .client_ca
            .clone()
            .map(|store| store as Arc<dyn ClientCertVerifier>);
        tls::server_config_with_resolver(
            self.certs.clone(),
            verifier,
            enable_http2,
            self.provider.clone(),
        )
    }

    /// Looks at the files once and reloads whatever changed since the last look.
    pub fn check(&mut self) {
        self.check_pair();
        self.check_client_ca();
    }

    /// Runs [`Reloader::check`] every `interval` on a thread of its own (file reads block)
    /// until the returned [`Watch`] is dropped.
    pub fn watch(mut self, interval: Duration) -> std::io::Result<Watch> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tls-reload".to_owned())
            .spawn(move || {
                // The channel doubles as the ticker: it times out every interval, and
                // disconnects when the Watch is dropped.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    self.check();
                }
            })?;
        Ok(Watch {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn check_pair(&mut self) {
        let (cert_path, key_path) = (&self.files.cert, &self.files.key);
        for attempt in 1..=RACE_RETRIES {
            let read =
                tls::read_file(cert_path).and_then(|cert| Ok((cert, tls::read_file(key_path)?)));
            let seen = match &read {
                Ok((cert, key)) => self.hasher.hash_one((cert, key)),
                Err(e) => self.hasher.hash_one(e.to_string()),
            };
            if seen == self.pair_seen {
                return;
            }
            let loaded = read.and_then(|(cert, key)| {
                let loaded = tls::serving_cert(&cert, cert_path, &key, key_path, &self.provider)?;
                match loaded.not_after {
                    Some(not_after) if unix_seconds(SystemTime::now()) > not_after => {
                        Err(TlsError::Expired {
                            path: cert_path.clone(),
                            not_after,
                        })
                    }
                    _ => Ok(loaded),
                }
            });
            match loaded {
                Ok(cert) => {
                    if let Some(not_after) = cert.not_after {
                        self.metrics.set_cert_not_after(not_after);
                    }
                    info!(
                        cert = %cert_path.display(),
                        key = %key_path.display(),
                        not_after = cert.not_after,
                        "serving certificate reloaded"
                    );
                    self.certs.replace(cert);
                    self.pair_seen = seen;
                    self.metrics.reload(true);
                    return;
                }
                Err(_) if attempt < RACE_RETRIES && self.pair_fingerprint() != seen => {
                    // The files changed while being read: look again before calling it broken.
                    continue;
                }
                Err(e) => {
                    error!(
                        cert = %cert_path.display(),
                        key = %key_path.display(),
                        error = %error_chain(&e),
                        "serving certificate not reloaded: keeping the one in use"
                    );
                    self.pair_seen = seen;
                    self.metrics.reload(false);
                    return;
                }
            }
        }
    }

    fn pair_fingerprint(&self) -> u64 {
        match (
            tls::read_file(&self.files.cert),
            tls::read_file(&self.files.key),
        ) {
            (Ok(cert), Ok(key)) => self.hasher.hash_one((&cert, &key)),
            _ => 0,
        }
    }

    fn check_client_ca(&mut self) {
        let (Some(store), Some(path)) = (&self.client_ca, &self.files.client_ca) else {
            return;
        };
        let read = tls::read_file(path);
        let seen = match &read {
            Ok(pem) => self.hasher.hash_one(pem),
            Err(e) => self.hasher.hash_one(e.to_string()),
        };
        if seen == self.ca_seen {
            return;
        }
        self.ca_seen = seen;
        // One file cannot be torn between two versions the way a pair can; a half-written
        // one is reported, and loaded once it is whole (its contents change again).
        match read.and_then(|pem| tls::client_verifier(&pem, path, self.provider.clone())) {
            Ok(verifier) => {
                store.replace(verifier);
                info!(client_ca = %path.display(), "client CA reloaded");
                self.metrics.reload(true);
            }
            Err(e) => {
                error!(
                    client_ca = %path.display(),
                    error = %error_chain(&e),
                    "client CA not reloaded: keeping the one in use"
                );
                self.metrics.reload(false);
            }
        }
    }
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

// === impl Watch ===

impl Drop for Watch {
    fn drop(&mut self) {
        // Disconnecting the channel wakes the thread at once; it ends after the look it may be
        // in the middle of (a few small reads).
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An error and its sources, as one line: `cannot parse PEM in /tls/tls.crt: ...`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{self, CertsOptions};
    use std::path::Path;

    fn files(dir: &Path, client_ca: bool) -> (certs::DevCerts, TlsFiles) {
        let dev = certs::generate(&CertsOptions::default()).expect("generate");
        dev.write_to(dir).expect("write certs");
        let files = TlsFiles {
            cert: dir.join(certs::CERT_FILE),
            key: dir.join(certs::KEY_FILE),
            client_ca: client_ca.then(|| dir.join(certs::CA_FILE)),
        };
        (dev, files)
    }

    fn leaf(store: &CertStore) -> Vec<u8> {
        store.current().key.cert[0].as_ref().to_vec()
    }

    fn der(pem: &str) -> Vec<u8> {
        use rustls_pki_types::pem::PemObject as _;
        CertificateDer::from_pem_slice(pem.as_bytes())
            .expect("PEM")
            .as_ref()
            .to_vec()
    }

    fn reloads(metrics: &Metrics, result: &str) -> bool {
        metrics.render().contains(&format!(
            "ipamclaim_webhook_certificate_reloads_total{{result=\"{result}\"}} 1\n"
        ))
    }

    #[test]
    fn unchanged_files_are_not_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, files) = files(dir.path(), true);
        let metrics = Arc::new(Metrics::new());
        let mut reloader = Reloader::load(files, metrics.clone()).expect("load");
        reloader.check();
        reloader.check();
        assert!(!reloads(&metrics, "success") && !reloads(&metrics, "failure"));
    }

    #[test]
    fn renewed_pair_is_served_and_its_expiry_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (dev, files) = files(dir.path(), false);
        let metrics = Arc::new(Metrics::new());
        let mut reloader = Reloader::load(files, metrics.clone()).expect("load");
        let store = reloader.cert_store();
        assert_eq!(leaf(&store), der(&dev.cert_pem));

        let renewed = dev.renew(&CertsOptions::default()).expect("renew");
        std::fs::write(dir.path().join(certs::CERT_FILE), &renewed.cert_pem).expect("cert");
        std::fs::write(dir.path().join(certs::KEY_FILE), &renewed.key_pem).expect("key");
        reloader.check();
        assert_eq!(leaf(&store), der(&renewed.cert_pem));
        assert!(reloads(&metrics, "success"), "{}", metrics.render());
        let not_after = store.current().not_after.expect("expiry");
        assert!(metrics.render().contains(&format!(
            "ipamclaim_webhook_certificate_not_after_seconds {not_after}\n"
        )));
        assert!(store.usable_at(SystemTime::now()));
        assert!(!store.usable_at(UNIX_EPOCH + Duration::from_secs(not_after as u64 + 1)));
    }

    #[test]
    fn mismatched_pair_keeps_the_old_one_and_is_reported_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (dev, files) = files(dir.path(), false);
        let metrics = Arc::new(Metrics::new());
        let mut reloader = Reloader::load(files, metrics.clone()).expect("load");
        let store = reloader.cert_store();
        let other = dev.renew(&CertsOptions::default()).expect("renew");
        // The key of another certificate.
        std::fs::write(dir.path().join(certs::KEY_FILE), &other.key_pem).expect("key");
        reloader.check();
        reloader.check();
        assert_eq!(leaf(&store), der(&dev.cert_pem));
        assert!(reloads(&metrics, "failure"), "{}", metrics.render());
        // Fixed: loaded on the next look.
        std::fs::write(dir.path().join(certs::CERT_FILE), &other.cert_pem).expect("cert");
        reloader.check();
        assert_eq!(leaf(&store), der(&other.cert_pem));
        assert!(reloads(&metrics, "success"), "{}", metrics.render());
    }

    #[test]
    fn garbage_and_missing_files_keep_the_old_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (dev, files) = files(dir.path(), false);
        let metrics = Arc::new(Metrics::new());
        let mut reloader = Reloader::load(files, metrics.clone()).expect("load");
        let store = reloader.cert_store();
        std::fs::write(
            dir.path().join(certs::KEY_FILE),
            "-----BEGIN PRIVATE KEY-----\n",
        )
        .expect("garbage");
        reloader.check();
        std::fs::remove_file(dir.path().join(certs::CERT_FILE)).expect("remove");
        reloader.check();
        assert_eq!(leaf(&store), der(&dev.cert_pem));
        assert!(
            metrics
                .render()
                .contains("ipamclaim_webhook_certificate_reloads_total{result=\"failure\"} 2\n"),
            "{}",
            metrics.render()
        );
    }

    #[test]
    fn broken_client_ca_keeps_the_old_verifier() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, files) = files(dir.path(), true);
        let ca_path = files.client_ca.clone().expect("client CA");
        let metrics = Arc::new(Metrics::new());
        let mut reloader = Reloader::load(files, metrics.clone()).expect("load");
        let store = reloader.client_ca.clone().expect("client CA store");
        let before = store.current();
        std::fs::write(&ca_path, "").expect("empty CA");
        reloader.check();
        assert!(Arc::ptr_eq(&before, &store.current()), "verifier replaced");
        assert!(reloads(&metrics, "failure"), "{}", metrics.render());
    }

    #[test]
    fn error_chain_joins_the_sources() {
        let e = TlsError::Read {
            path: "/tls/tls.crt".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(error_chain(&e), "cannot read /tls/tls.crt: gone");
    }
}
