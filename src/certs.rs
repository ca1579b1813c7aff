//! Development certificates: a throw-away CA and a serving certificate signed by it.
//!
//! The CA's private key is never written: the CA exists to be the `caBundle` of one serving
//! certificate, and a CA key left on a laptop could mint certificates the API server would
//! trust. Run `certs` again for a new pair (and a new CA).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};

/// File name of the CA certificate (the webhook configurations' `caBundle`).
pub const CA_FILE: &str = "ca.crt";
/// File name of the serving certificate.
pub const CERT_FILE: &str = "tls.crt";
/// File name of the serving certificate's private key.
pub const KEY_FILE: &str = "tls.key";

/// Common name of the development CA.
pub const CA_COMMON_NAME: &str = "ipamclaim-webhook development CA";

/// DNS names of the serving certificate when none is asked for: loopback, and the in-cluster
/// names of the Service `ipamclaim-webhook` in namespace `ipamclaim-webhook`.
pub const DEFAULT_DNS_NAMES: &[&str] = &[
    "localhost",
    "ipamclaim-webhook.ipamclaim-webhook.svc",
    "ipamclaim-webhook.ipamclaim-webhook.svc.cluster.local",
];
/// IP addresses of the serving certificate when none is asked for: both loopbacks, since the
/// server listens on both families by default.
pub const DEFAULT_IPS: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// How long the CA is valid: long enough that a development cluster never sees it expire.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// How long serving and client certificates are valid.
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// Certificates start an hour in the past so that a clock slightly behind still accepts them.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// What to put in the serving certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertsOptions {
    /// DNS subject alternative names.
    pub dns: Vec<String>,
    /// IP subject alternative names.
    pub ips: Vec<IpAddr>,
}

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// Key generation or signing failed.
    #[error("cannot generate the {what}")]
    Generate {
        /// Which certificate or key.
        what: &'static str,
        /// Why.
        #[source]
        source: rcgen::Error,
    },
    /// A DNS name cannot be put in a certificate.
    #[error("invalid DNS name {name:?}")]
    DnsName {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: rcgen::Error,
    },
    /// The output directory could not be created.
    #[error("cannot create directory {}", .path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A development CA with a serving certificate it signed, as PEM text.
pub struct DevCerts {
    /// The CA certificate.
    pub ca_pem: String,
    /// The serving certificate (leaf only; the CA is in `ca_pem`).
    pub cert_pem: String,
    /// The serving certificate's PKCS#8 private key.
    pub key_pem: String,
    /// Kept in memory so that client certificates can be signed by the same CA.
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A client certificate (EKU clientAuth) and its key, as PEM text.
pub struct ClientCert {
    /// The client certificate.
    pub cert_pem: String,
    /// Its PKCS#8 private key.
    pub key_pem: String,
}

/// A serving certificate and its key, as PEM text.
pub struct ServingPair {
    /// The serving certificate (leaf only).
    pub cert_pem: String,
    /// Its PKCS#8 private key.
    pub key_pem: String,
}

/// Makes a new development CA and a serving certificate signed by it, with ECDSA P-256 keys.
pub fn generate(opts: &CertsOptions) -> Result<DevCerts, CertsError> {
    let ca = new_ca()?;
    let (cert_pem, key_pem) = sign_leaf(
        &ca,
        serving_params(opts)?,
        ExtendedKeyUsagePurpose::ServerAuth,
        "serving certificate",
    )?;
    Ok(DevCerts {
        ca_pem: ca.pem(),
        cert_pem,
        key_pem,
        ca,
    })
}

// === impl DevCerts ===

impl DevCerts {
    /// Writes `ca.crt`, `tls.crt` and `tls.key` into `dir`, creating it if needed.
    ///
    /// Existing files are replaced. `tls.key` is created with mode 0600 from the start, so it
    /// is never readable by others, not even for an instant.
    pub fn write_to(&self, dir: &Path) -> Result<(), CertsError> {
        fs::create_dir_all(dir).map_err(|source| CertsError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        write_file(&dir.join(CA_FILE), &self.ca_pem, 0o644)?;
        write_file(&dir.join(CERT_FILE), &self.cert_pem, 0o644)?;
        write_file(&dir.join(KEY_FILE), &self.key_pem, 0o600)?;
        Ok(())
    }

    /// Signs a new serving certificate, with a new key, with this CA, as a renewal does:
    /// whatever trusts the CA (the webhook configurations' `caBundle`) trusts it too.
    pub fn renew(&self, opts: &CertsOptions) -> Result<ServingPair, CertsError> {
        let (cert_pem, key_pem) = sign_leaf(
            &self.ca,
            serving_params(opts)?,
            ExtendedKeyUsagePurpose::ServerAuth,
            "serving certificate",
        )?;
        Ok(ServingPair { cert_pem, key_pem })
    }

    /// Signs a client certificate (EKU clientAuth) for `common_name` with this CA, for
    /// servers started with `--client-ca`.
    pub fn client(&self, common_name: &str) -> Result<ClientCert, CertsError> {
        let mut params = leaf_params();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let (cert_pem, key_pem) = sign_leaf(
            &self.ca,
            params,
            ExtendedKeyUsagePurpose::ClientAuth,
            "client certificate",
        )?;
        Ok(ClientCert { cert_pem, key_pem })
    }
}

impl fmt::Debug for DevCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material, not even in a test failure.
        f.debug_struct("DevCerts")
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

// === impl ServingPair ===

impl fmt::Debug for ServingPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServingPair")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

// === impl ClientCert ===

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

fn new_key(what: &'static str) -> Result<KeyPair, CertsError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|source| CertsError::Generate { what, source })
}

fn new_ca() -> Result<CertifiedIssuer<'static, KeyPair>, CertsError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    // Path length 0: this CA signs leaves only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, CA_VALIDITY);
    let what = "development CA";
    CertifiedIssuer::self_signed(params, new_key(what)?)
        .map_err(|source| CertsError::Generate { what, source })
}

/// Parameters shared by serving and client certificates.
fn leaf_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.is_ca = IsCa::ExplicitNoCa;
    // ECDSA keys sign; keyEncipherment belongs to RSA key exchange.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, LEAF_VALIDITY);
    params
}

fn serving_params(opts: &CertsOptions) -> Result<CertificateParams, CertsError> {
    let (dns, ips): (Vec<String>, Vec<IpAddr>) = if opts.dns.is_empty() && opts.ips.is_empty() {
        (
            DEFAULT_DNS_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            DEFAULT_IPS.to_vec(),
        )
    } else {
        (opts.dns.clone(), opts.ips.clone())
    };
    let mut params = leaf_params();
    let common_name = dns
        .first()
        .cloned()
        .unwrap_or_else(|| "ipamclaim-webhook".to_owned());
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    for name in dns {
        let san = name
            .clone()
            .try_into()
            .map_err(|source| CertsError::DnsName {
                name: name.clone(),
                source,
            })?;
        params.subject_alt_names.push(SanType::DnsName(san));
    }
    params
        .subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    Ok(params)
}

fn sign_leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    mut params: CertificateParams,
    usage: ExtendedKeyUsagePurpose,
    what: &'static str,
) -> Result<(String, String), CertsError> {
    params.extended_key_usages = vec![usage];
    let key = new_key(what)?;
    let cert = params
        .signed_by(&key, ca)
        .map_err(|source| CertsError::Generate { what, source })?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    // rcgen takes `time` dates; the epoch plus the time elapsed since needs no extra crate.
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - BACKDATE;
    params.not_after = now + validity + DAY;
}

/// Writes `contents` to `path` through a temporary file created with `mode`, then renames it,
/// so that a reader sees the old file or the new one, and a key is never briefly world-readable
/// (a mode given at creation holds; a chmod afterwards leaves a window).
fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), CertsError> {
    let write_err = |source| CertsError::Write {
        path: path.to_owned(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    // A temporary file left by an interrupted run may have other permissions: never reuse it.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(e)),
    }
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(contents.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_three_files_with_private_key_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("nested/certs");
        let certs = generate(&CertsOptions::default()).expect("generate");
        certs.write_to(&out).expect("write");
        for name in [CA_FILE, CERT_FILE, KEY_FILE] {
            assert!(out.join(name).is_file(), "{name} missing");
        }
        let mode = fs::metadata(out.join(KEY_FILE))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            !out.join("ca.key").exists(),
            "the CA key must not be written"
        );
        let leftovers: Vec<_> = fs::read_dir(&out)
            .expect("read dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn replaces_a_world_readable_key_with_a_private_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join(KEY_FILE);
        fs::write(&key, "old").expect("write old key");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
        generate(&CertsOptions::default())
            .expect("generate")
            .write_to(dir.path())
            .expect("write");
        let mode = fs::metadata(&key).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(fs::read_to_string(&key)
            .expect("read")
            .contains("PRIVATE KEY"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let certs = generate(&CertsOptions::default()).expect("generate");
        let text = format!("{certs:?}");
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        let client = certs.client("tester").expect("client");
        assert!(!format!("{client:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn rejects_non_ascii_dns_name() {
        let opts = CertsOptions {
            dns: vec!["bücher.example".to_owned()],
            ips: vec![],
        };
        let err = generate(&opts).expect_err("must fail");
        assert!(err.to_string().contains("bücher.example"), "{err}");
    }

    /// Verifies `cert_pem` as a server certificate for `name` against `ca_pem`, as a TLS
    /// client would.
    fn verify_server(ca_pem: &str, cert_pem: &str, name: &str) -> Result<(), rustls::Error> {
        use rustls::client::danger::ServerCertVerifier as _;
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM"))
            .expect("CA is a trust anchor");
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            crate::serve::tls::provider(),
        )
        .build()
        .expect("verifier");
        let leaf = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("leaf PEM");
        let name = ServerName::try_from(name.to_owned()).expect("server name");
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn serving_certificate_is_valid_for_the_default_names() {
        let certs = generate(&CertsOptions::default()).expect("generate");
        for name in DEFAULT_DNS_NAMES
            .iter()
            .copied()
            .chain(["127.0.0.1", "::1"])
        {
            verify_server(&certs.ca_pem, &certs.cert_pem, name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(verify_server(&certs.ca_pem, &certs.cert_pem, "other.example").is_err());
    }

    #[test]
    fn serving_certificate_has_only_the_names_asked_for() {
        let opts = CertsOptions {
            dns: vec!["webhook.example.test".to_owned()],
            ips: vec!["10.96.0.10".parse().expect("ip")],
        };
        let certs = generate(&opts).expect("generate");
        verify_server(&certs.ca_pem, &certs.cert_pem, "webhook.example.test").expect("dns");
        verify_server(&certs.ca_pem, &certs.cert_pem, "10.96.0.10").expect("ip");
        assert!(verify_server(&certs.ca_pem, &certs.cert_pem, "localhost").is_err());
        assert!(verify_server(&certs.ca_pem, &certs.cert_pem, "::1").is_err());
    }

    #[test]
    fn client_certificate_cannot_serve() {
        // EKU clientAuth only: a stolen client certificate must not pass as the webhook.
        let certs = generate(&CertsOptions {
            dns: vec!["tester".to_owned()],
            ips: vec![],
        })
        .expect("generate");
        let client = certs.client("tester").expect("client");
        assert!(verify_server(&certs.ca_pem, &client.cert_pem, "tester").is_err());
    }

    #[test]
    fn certificate_of_another_ca_is_not_trusted() {
        let one = generate(&CertsOptions::default()).expect("generate");
        let other = generate(&CertsOptions::default()).expect("generate");
        assert!(verify_server(&one.ca_pem, &other.cert_pem, "localhost").is_err());
    }

    #[test]
    fn pem_blocks_are_what_they_say() {
        let certs = generate(&CertsOptions::default()).expect("generate");
        assert!(certs.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(certs.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(certs.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(certs.ca_pem, certs.cert_pem);
    }
}
