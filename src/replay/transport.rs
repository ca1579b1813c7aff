//! How replay reaches a webhook: the admission pipeline in this process, or a running server
//! over HTTPS; both answer the same bytes with the same bytes.

use std::path::Path;
use std::sync::Arc;

use crate::admission::rules::conflicts::Admitted;
use crate::admission::{self, Options, Webhook};
use crate::cluster::SharedIndex;

/// Sends a review to a webhook and returns the AdmissionReview it answers with.
pub trait Transport {
    /// Posts `body` to `webhook`; an error is a review that got no answer.
    fn send(&mut self, webhook: Webhook, body: &[u8]) -> Result<Vec<u8>, String>;

    /// Called once a document's final answer is known (`allowed` or not): a transport that
    /// keeps the run's claims records what the document wrote.
    fn settle(&mut self, _allowed: bool) {}
}

/// The admission pipeline in this process.
#[derive(Debug, Clone, Default)]
pub struct InProcess {
    /// The pipeline's options (field validation, defaults).
    pub options: Options,
    /// `--unique-addresses`: the claims of `--existing` and of the documents admitted so far.
    claims: Option<Arc<SharedIndex>>,
    /// What the last `/validate` answer of the current document would write.
    pending: Option<Written>,
}

/// What a document writes to the run's claims once it is admitted.
#[derive(Debug, Clone)]
enum Written {
    Claim(Admitted),
    Delete { namespace: String, name: String },
}

// === impl InProcess ===

impl InProcess {
    /// The pipeline with `options`.
    pub fn new(options: Options) -> Self {
        InProcess {
            options,
            claims: None,
            pending: None,
        }
    }

    /// The pipeline with `options`, judging each document against `claims` (for
    /// `--unique-addresses`) and adding to them what each admitted document writes.
    pub fn with_claims(mut options: Options, claims: Arc<SharedIndex>) -> Self {
        options.unique_addresses = Some(claims.clone());
        InProcess {
            options,
            claims: Some(claims),
            pending: None,
        }
    }
}

impl Transport for InProcess {
    fn send(&mut self, webhook: Webhook, body: &[u8]) -> Result<Vec<u8>, String> {
        let reviewed = admission::review(body, webhook, &self.options)
            .map_err(|e| format!("the webhook refused the request (400): {e}"))?;
        if webhook == Webhook::Validate && self.claims.is_some() {
            // The last verdict of a document is the one its answer carries (`chain` judges
            // twice); a dry run too, for every document of a replay is hypothetical.
            let s = &reviewed.summary;
            self.pending = match reviewed.admitted {
                Some(admitted) => Some(Written::Claim(admitted)),
                None if s.operation == "DELETE" => Some(Written::Delete {
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                }),
                None => None,
            };
        }
        Ok(reviewed.body)
    }

    fn settle(&mut self, allowed: bool) {
        let (Some(claims), Some(written)) = (&self.claims, self.pending.take()) else {
            return;
        };
        if !allowed {
            return;
        }
        match written {
            Written::Claim(admitted) => claims.record(&admitted),
            Written::Delete { namespace, name } => {
                claims.delete(&namespace, &name, "");
            }
        }
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
