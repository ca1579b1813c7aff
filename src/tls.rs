//! TLS for the admission listener: PEM certificate and key loading, and the rustls server config.
//!
//! Everything here uses the `ring` provider explicitly: `ServerConfig::builder()` would pick a
//! process-wide default and panic when more than one provider is linked in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
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
    /// rustls refused the protocol versions (a bug: both are compiled in).
    #[error("TLS protocol configuration rejected")]
    Protocol(#[source] rustls::Error),
}

/// Resolves the serving certificate for each handshake.
///
/// It is a trait object so that a resolver that re-reads the files when they change can take
/// the place of the fixed one without touching the listener.
pub type CertResolver = Arc<dyn ResolvesServerCert>;

/// The `ring` crypto provider, shared by every config built here.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls server config of the admission listener from `files`.
///
/// TLS 1.2 and 1.3 only; ALPN `http/1.1`, and `h2` first when `enable_http2`. With a client
/// CA, every client must present a certificate signed by it; without one, none is requested.
pub fn server_config(files: &TlsFiles, enable_http2: bool) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let key = load_certified_key(&files.cert, &files.key, &provider)?;
    let resolver: CertResolver = Arc::new(SingleCertAndKey::from(key));
    server_config_with_resolver(resolver, files.client_ca.as_deref(), enable_http2, provider)
}

/// Builds the server config around any certificate resolver.
pub fn server_config_with_resolver(
    resolver: CertResolver,
    client_ca: Option<&Path>,
    enable_http2: bool,
    provider: Arc<CryptoProvider>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&TLS12, &TLS13])
        .map_err(TlsError::Protocol)?;
    let builder = match client_ca {
        Some(path) => {
            let roots = load_roots(path)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|source| TlsError::ClientVerifier {
                    path: path.to_owned(),
                    source,
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = alpn_protocols(enable_http2);
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
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
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

/// Reads every `CERTIFICATE` block of a PEM file; at least one is required.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key block of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        e => pem_error(path, e),
    })
}

/// Reads the trust anchors for client certificates.
fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|source| TlsError::BadClientCa {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
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
