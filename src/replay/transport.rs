//! How replay reaches a webhook: the admission pipeline in this process, or a running server
//! over HTTPS; both answer the same bytes with the same bytes.

use std::path::Path;

use crate::admission::{self, Options, Webhook};

/// Sends a review to a webhook and returns the AdmissionReview it answers with.
pub trait Transport {
    /// Posts `body` to `webhook`; an error is a review that got no answer.
    fn send(&mut self, webhook: Webhook, body: &[u8]) -> Result<Vec<u8>, String>;
}

/// The admission pipeline in this process.
#[derive(Debug, Clone, Default)]
pub struct InProcess {
    /// The pipeline's options (field validation, defaults).
    pub options: Options,
}

// === impl InProcess ===

impl Transport for InProcess {
    fn send(&mut self, webhook: Webhook, body: &[u8]) -> Result<Vec<u8>, String> {
        admission::review(body, webhook, &self.options)
            .map(|r| r.body)
            .map_err(|e| format!("the webhook refused the request (400): {e}"))
    }
}

/// A running webhook, reached over HTTPS (`--server URL --ca FILE`).
pub struct Remote {
    client: reqwest::Client,
    base: String,
    runtime: tokio::runtime::Runtime,
}

/// A `--server` connection that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS or HTTP client could not be built.
    #[error("cannot set up the HTTPS client: {0}")]
    Client(String),
}

// === impl Remote ===

impl Remote {
    /// A client for the webhook at `url` (e.g. `https://localhost:8443`), trusting only the CA
    /// in `ca`, optionally presenting a client certificate (`(cert, key)` PEM files).
    pub fn new(
        url: &str,
        ca: &Path,
        client_cert: Option<(&Path, &Path)>,
    ) -> Result<Self, RemoteError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};

        let pem_err = |path: &Path, reason: String| RemoteError::Pem {
            path: path.display().to_string(),
            reason,
        };
        let mut roots = rustls::RootCertStore::empty();
        let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .map_err(|e| pem_err(ca, e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| pem_err(ca, e.to_string()))?;
        if cas.is_empty() {
            return Err(pem_err(ca, "no certificate in file".to_owned()));
        }
        for cert in cas {
            roots
                .add(cert)
                .map_err(|e| pem_err(ca, format!("not a usable CA certificate: {e}")))?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RemoteError::Client(e.to_string()))?
            .with_root_certificates(roots);
        let mut tls = match client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| pem_err(cert, e.to_string()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| pem_err(cert, e.to_string()))?;
                let key =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| pem_err(cert, format!("unusable client certificate: {e}")))?
            }
        };
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| RemoteError::Client(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Client(e.to_string()))?;
        Ok(Remote {
            client,
            base: url.trim_end_matches('/').to_owned(),
            runtime,
        })
    }
}

impl Transport for Remote {
    fn send(&mut self, webhook: Webhook, body: &[u8]) -> Result<Vec<u8>, String> {
        let path = match webhook {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
        };
        let url = format!("{}/{path}", self.base);
        let request = self
            .client
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
            if status == reqwest::StatusCode::BAD_REQUEST {
                // The same words the in-process pipeline uses for a request it cannot answer.
                return Err(format!(
                    "the webhook refused the request (400): {}",
                    String::from_utf8_lossy(&bytes).trim()
                ));
            }
            if !status.is_success() {
                return Err(format!(
                    "{url}: HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                ));
            }
            Ok(bytes.to_vec())
        })
    }
}
