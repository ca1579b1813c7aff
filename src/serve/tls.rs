//! TLS for the admission listener: PEM certificate, key and client CA loading (from files or
//! from bytes already read), certificate expiry, and the rustls server config.
//!
//! Everything here uses the `ring` provider explicitly: `ServerConfig::builder()` would pick a
//! process-wide default and panic when more than one provider is linked in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoServerSessionStorage, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::version::{TLS12, TLS13};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// ALPN name of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";
/// ALPN name of HTTP/2 over TLS.
pub const ALPN_H2: &[u8] = b"h2";

/// The files the admission listener's TLS is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate.
    pub key: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate signed by one of them.
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS configuration could not be built. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be opened or read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not well-formed PEM.
    #[error("cannot parse PEM in {}", .path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: pem::Error,
    },
    /// A certificate file holds no `CERTIFICATE` block.
    #[error("no certificate found in {}", .path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no private key block.
    #[error("no private key found in {}", .path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The private key is of a type or format the `ring` provider cannot sign with.
    #[error("unsupported private key in {}", .path.display())]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The private key is not the key of the certificate's public key.
    #[error(
        "private key in {} does not match the certificate in {}",
        .key.display(),
        .cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// A client CA file holds a certificate that cannot be a trust anchor.
    #[error("invalid client CA certificate in {}", .path.display())]
    BadClientCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built from the client CA file.
    #[error("cannot verify client certificates with the CA in {}", .path.display())]
    ClientVerifier {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// A new certificate is already past its `notAfter` (refused on reload, where the
    /// certificate in use is better than an expired one).
    #[error("certificate in {} expired at {not_after} (seconds since the Unix epoch)", .path.display())]
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// Its `notAfter`.
        not_after: i64,
    },
    /// rustls refused the protocol versions (a bug: both are compiled in).
    #[error("TLS protocol configuration rejected")]
    Protocol(#[source] rustls::Error),
}

/// Resolves the serving certificate for each handshake.
///
/// It is a trait object so that a resolver that re-reads the files when they change (see
/// [`crate::serve::reload`]) can take the place of the fixed one without touching the listener.
pub type CertResolver = Arc<dyn ResolvesServerCert>;

/// A serving certificate with its key, checked to belong together, and when it expires.
#[derive(Debug, Clone)]
pub struct ServingCert {
    /// The chain and signing key rustls serves.
    pub key: Arc<CertifiedKey>,
    /// The leaf's `notAfter`, in seconds since the Unix epoch; `None` when the leaf cannot be
    /// parsed as X.509 (rustls serves it all the same; clients will judge it).
    pub not_after: Option<i64>,
}

/// The `ring` crypto provider, shared by every config built here.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls server config of the admission listener from `files`, with a fixed
/// certificate (the server itself uses [`crate::serve::reload`] instead, which swaps it on renewal).
///
/// TLS 1.2 and 1.3 only; ALPN `http/1.1`, and `h2` first when `enable_http2`. With a client
/// CA, every client must present a certificate signed by it; without one, none is requested.
pub fn server_config(files: &TlsFiles, enable_http2: bool) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let key = load_certified_key(&files.cert, &files.key, &provider)?;
    let resolver: CertResolver = Arc::new(SingleCertAndKey::from(key));
    let verifier = match &files.client_ca {
        Some(path) => Some(client_verifier(&read_file(path)?, path, provider.clone())?),
        None => None,
    };
    server_config_with_resolver(resolver, verifier, enable_http2, provider)
}

/// Builds the server config around any certificate resolver and, for mutual TLS, any client
/// certificate verifier.
pub fn server_config_with_resolver(
    resolver: CertResolver,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    enable_http2: bool,
    provider: Arc<CryptoProvider>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&TLS12, &TLS13])
        .map_err(TlsError::Protocol)?;
    let mutual = client_verifier.is_some();
    let builder = match client_verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = alpn_protocols(enable_http2);
    if mutual {
        // A resumed session carries the client identity verified when it began, without
        // verifying it again: after the client CA is rotated (a compromised CA removed), a
        // resumption would still let its certificates in. The API server keeps its connections
        // alive, so full handshakes are rare and resumption saves little.
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(config)
}

/// The ALPN protocols offered, in the server's order of preference.
pub fn alpn_protocols(enable_http2: bool) -> Vec<Vec<u8>> {
    if enable_http2 {
        vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()]
    } else {
        vec![ALPN_HTTP1.to_vec()]
    }
}

/// Loads a certificate chain and its private key, and checks that they belong together.
pub fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read_file(cert)?;
    let key_pem = read_file(key)?;
    certified_key(&cert_pem, cert, &key_pem, key, provider)
}

/// Parses a certificate chain and its private key from PEM bytes read from `cert` and `key`
/// (named in errors), and checks that they belong together.
pub fn certified_key(
    cert_pem: &[u8],
    cert: &Path,
    key_pem: &[u8],
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = parse_certs(cert_pem, cert)?;
    let key_der = parse_key(key_pem, key)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|source| TlsError::UnsupportedKey {
            path: key.to_owned(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // `Unknown` means the key type cannot report its public key; the handshake will tell.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(source) => Err(TlsError::KeyMismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        }),
    }
}

/// [`certified_key`] with the leaf's expiry.
pub fn serving_cert(
    cert_pem: &[u8],
    cert: &Path,
    key_pem: &[u8],
    key: &Path,
    provider: &CryptoProvider,
) -> Result<ServingCert, TlsError> {
    let certified = certified_key(cert_pem, cert, key_pem, key, provider)?;
    let not_after = certified.end_entity_cert().ok().and_then(not_after);
    Ok(ServingCert {
        key: Arc::new(certified),
        not_after,
    })
}

/// The `notAfter` of a DER certificate, in seconds since the Unix epoch.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// Reads every `CERTIFICATE` block of a PEM file; at least one is required.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    parse_certs(&read_file(path)?, path)
}

/// Reads the first private key block of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    parse_key(&read_file(path)?, path)
}

/// Builds the verifier of client certificates from the PEM CA certificates read from `path`.
///
/// No CA names are hinted to clients (an empty `certificate_authorities` list): the verifier
/// may be swapped on a CA rotation while the hints are borrowed for a whole handshake, and an
/// empty list tells a client to present the certificate it has, which Go's crypto/tls (the API
/// server) and rustls both do.
pub fn client_verifier(
    ca_pem: &[u8],
    path: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(ca_pem, path)? {
        roots.add(cert).map_err(|source| TlsError::BadClientCa {
            path: path.to_owned(),
            source,
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .clear_root_hint_subjects()
        .build()
        .map_err(|source| TlsError::ClientVerifier {
            path: path.to_owned(),
            source,
        })
}

/// Reads a whole file, naming it on failure.
pub fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every `CERTIFICATE` block of PEM bytes read from `path`; at least one is required.
fn parse_certs(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key block of PEM bytes read from `path`.
fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        e => pem_error(path, e),
    })
}

fn pem_error(path: &Path, e: pem::Error) -> TlsError {
    match e {
        pem::Error::Io(source) => TlsError::Read {
            path: path.to_owned(),
            source,
        },
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{self, CertsOptions};

    fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write test file");
        path
    }

    fn files(dir: &Path) -> TlsFiles {
        let certs = certs::generate(&CertsOptions::default()).expect("generate");
        certs.write_to(dir).expect("write certs");
        TlsFiles {
            cert: dir.join(certs::CERT_FILE),
            key: dir.join(certs::KEY_FILE),
            client_ca: None,
        }
    }

    #[test]
    fn loads_generated_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = server_config(&files(dir.path()), false).expect("config");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn offers_h2_first_only_when_enabled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = server_config(&files(dir.path()), true).expect("config");
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn missing_cert_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = files(dir.path());
        files.cert = dir.path().join("absent.crt");
        let err = server_config(&files, false).expect_err("must fail");
        assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("absent.crt"), "{err}");
    }

    #[test]
    fn cert_file_without_certificate_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = files(dir.path());
        // A key where the certificate should be: PEM, but no CERTIFICATE block.
        files.cert = files.key.clone();
        let err = server_config(&files, false).expect_err("must fail");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
        assert!(err.to_string().contains("tls.key"), "{err}");
    }

    #[test]
    fn garbage_key_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = files(dir.path());
        files.key = write(dir.path(), "garbage.key", "this is not a key\n");
        let err = server_config(&files, false).expect_err("must fail");
        assert!(matches!(err, TlsError::NoKey { .. }), "{err:?}");
        assert!(err.to_string().contains("garbage.key"), "{err}");
    }

    #[test]
    fn broken_pem_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = files(dir.path());
        files.cert = write(
            dir.path(),
            "broken.crt",
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n",
        );
        let err = server_config(&files, false).expect_err("must fail");
        assert!(matches!(err, TlsError::Pem { .. }), "{err:?}");
        assert!(err.to_string().contains("broken.crt"), "{err}");
    }

    #[test]
    fn key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = files(dir.path());
        let other = certs::generate(&CertsOptions::default()).expect("generate");
        files.key = write(dir.path(), "other.key", &other.key_pem);
        let err = server_config(&files, false).expect_err("must fail");
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("other.key") && text.contains("tls.crt"),
            "{text}"
        );
    }

    #[test]
    fn client_ca_without_certificate_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = files(dir.path());
        files.client_ca = Some(write(dir.path(), "empty-ca.crt", ""));
        let err = server_config(&files, false).expect_err("must fail");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
        assert!(err.to_string().contains("empty-ca.crt"), "{err}");
    }

    #[test]
    fn client_ca_is_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = files(dir.path());
        files.client_ca = Some(dir.path().join(certs::CA_FILE));
        server_config(&files, false).expect("config with client CA");
    }
}
