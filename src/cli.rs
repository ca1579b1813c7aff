//! The command line: subcommands and flags, and how `serve` flags become the server's config.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipamclaim_webhook::admission::rules::defaulting::{Defaults, DefaultsError};
use ipamclaim_webhook::admission::{Enforcement, FieldValidation};
use ipamclaim_webhook::certs::CertsOptions;
use ipamclaim_webhook::cluster::leases::ReservationStore;
use ipamclaim_webhook::cluster::watch::Credentials;
use ipamclaim_webhook::serve::duration;
use ipamclaim_webhook::serve::logs::{self, Logs, Sink};
use ipamclaim_webhook::serve::tls::TlsFiles;
use ipamclaim_webhook::serve::{self, CheckNetworks, ServeConfig, UniqueAddresses};
use tracing_subscriber::EnvFilter;

/// Log filter when `RUST_LOG` is unset: rustls is noisy at WARN under load (every client that
/// drops a handshake), so only its errors are kept; kube-rs's watcher warns at every retry of
/// a refused list, which `--unique-addresses` reports once in its own words.
const DEFAULT_LOG_FILTER: &str = "info,rustls=error,kube_runtime::watcher=error";

/// Kubernetes admission webhook (validating and mutating) for IPAMClaim (k8s.cni.cncf.io/v1alpha1).
#[derive(Debug, Parser)]
#[command(name = "ipamclaim-webhook", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTPS admission server.
    Serve(ServeArgs),
    /// Write a development CA and serving certificate (ca.crt, tls.crt, tls.key).
    Certs(CertsArgs),
    /// Print the IPAMClaim CustomResourceDefinition generated from the Rust types, as YAML.
    Crd,
    /// Run admission over payload files (or stdin) without a cluster: exit 0 when every review
    /// is allowed, 1 when one is denied, 2 when an input cannot be read, parsed or sent.
    Replay(ReplayArgs),
}

/// The opt-in defaults of the mutating webhook, shared by `serve` and `replay`.
#[derive(Debug, Args, Clone)]
pub struct DefaultsArgs {
    /// Fill a missing spec.interface with NAME on CREATE.
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_DEFAULT_INTERFACE", value_name = "NAME")]
    pub default_interface: Option<String>,

    /// Set label KEY to spec.network when that is a valid label value.
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_NETWORK_LABEL", value_name = "KEY")]
    pub network_label: Option<String>,
}

// === impl DefaultsArgs ===

impl DefaultsArgs {
    /// The defaults these flags describe, refused when a flag's value is unusable.
    pub fn defaults(&self) -> Result<Defaults, DefaultsError> {
        let defaults = Defaults {
            default_interface: self.default_interface.clone(),
            network_label: self.network_label.clone(),
        };
        defaults.check()?;
        Ok(defaults)
    }
}

/// Which webhook(s) `replay` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReplayWebhook {
    /// The validating webhook only.
    Validate,
    /// The mutating webhook only.
    Mutate,
    /// Mutate, then validate the patched object, as the API server does.
    Chain,
}

/// How `replay` prints its results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReplayOutput {
    /// One AdmissionReview response per input document, one per line.
    Json,
    /// One line per document with its verdict, causes and warnings indented below.
    Text,
}

/// Flags of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Files or directories (recursively: .json, .ndjson, .yaml, .yml); stdin when none or `-`.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Which webhook(s) to run.
    #[arg(long, value_enum, default_value_t = ReplayWebhook::Chain)]
    pub webhook: ReplayWebhook,

    /// Output format [default: text on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub output: Option<ReplayOutput>,

    /// Send each review to a running webhook at this URL (e.g. https://localhost:8443)
    /// instead of judging it in process.
    #[arg(long, value_name = "URL", requires = "ca")]
    pub server: Option<String>,

    /// CA certificate (PEM) to trust for --server.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// Client certificate (PEM) to present to --server.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of --client-cert.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// What to do with unknown and duplicate fields of the object. Strict by default: no API
    /// server has checked these files against a schema. (With --server, the server's own
    /// --field-validation applies: `serve` defaults to Warn.)
    #[arg(long, value_enum, default_value_t = FieldValidationArg::Strict, conflicts_with = "server")]
    pub field_validation: FieldValidationArg,

    /// Deny what is invalid, or only report it. (With --server, the server's own.)
    #[arg(long, value_enum, default_value_t = EnforcementArg::Deny, conflicts_with = "server")]
    pub enforcement: EnforcementArg,

    /// Deny an address that another claim on the same network holds: each document is judged
    /// against the claims of the documents admitted before it and of --existing.
    #[arg(long, conflicts_with = "server")]
    pub unique_addresses: bool,

    /// Claims already in the cluster (e.g. `kubectl get ipamclaims -A -o yaml > FILE`), indexed
    /// for --unique-addresses and not judged; a file or directory, repeatable.
    #[arg(long, value_name = "PATH", requires = "unique_addresses")]
    pub existing: Vec<PathBuf>,

    /// Deny an address that does not fit its network, as `serve --check-networks` does, with
    /// the networks of --networks; the mutating webhook completes a bare address of a known
    /// network with its subnet's prefix length.
    #[arg(long, conflicts_with = "server", requires = "networks")]
    pub check_networks: bool,

    /// The cluster's NetworkAttachmentDefinitions (e.g. `kubectl get
    /// network-attachment-definitions -A -o yaml > FILE`) for --check-networks: a List, NADs,
    /// YAML or JSON, a file or directory, repeatable.
    #[arg(long, value_name = "PATH", requires = "check_networks")]
    pub networks: Vec<PathBuf>,

    /// The mutating webhook's defaults.
    #[command(flatten)]
    pub defaults: DefaultsArgs,
}

/// `--enforcement`: what `/validate` does with a review it would deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EnforcementArg {
    /// Deny it.
    #[value(name = "Deny")]
    Deny,
    /// Allow it, returning the causes as warnings.
    #[value(name = "Warn")]
    Warn,
    /// Allow it, recording verdict and causes in auditAnnotations.
    #[value(name = "Audit")]
    Audit,
}

// === impl EnforcementArg ===

impl From<EnforcementArg> for Enforcement {
    fn from(arg: EnforcementArg) -> Self {
        match arg {
            EnforcementArg::Deny => Enforcement::Deny,
            EnforcementArg::Warn => Enforcement::Warn,
            EnforcementArg::Audit => Enforcement::Audit,
        }
    }
}

/// Flags of `serve`; each can also be set by the environment variable shown.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("cluster_views")
        .args(["unique_addresses", "check_networks"])
        .multiple(true)
))]
pub struct ServeArgs {
    /// Address of the TLS admission listener. The default takes IPv6 and IPv4 on one socket,
    /// or IPv4 alone where the kernel has no IPv6.
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_LISTEN", default_value_t = serve::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// PEM certificate chain of the serving certificate, leaf first.
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_TLS_CERT",
        default_value = "certs/tls.crt"
    )]
    pub tls_cert: PathBuf,

    /// PEM private key of the serving certificate.
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_TLS_KEY",
        default_value = "certs/tls.key"
    )]
    pub tls_key: PathBuf,

    /// PEM CA certificate(s): require client certificates signed by them.
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,

    /// Address of the plain-HTTP listener for /healthz, /readyz and /metrics (both families by
    /// default, as --listen).
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_PROBE_LISTEN", default_value_t = serve::DEFAULT_PROBE_LISTEN)]
    pub probe_listen: SocketAddr,

    /// What to do with unknown and duplicate fields of the object. Warn by default: through
    /// an API server an unknown field means the installed CRD is newer than this webhook
    /// (schema drift), which is reported (a warning, a metric, a log line), never denied.
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_FIELD_VALIDATION",
        value_enum,
        default_value_t = FieldValidationArg::Warn
    )]
    pub field_validation: FieldValidationArg,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_MAX_BODY_BYTES", default_value_t = serve::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Seconds in-flight requests get to finish once the listeners close after SIGTERM.
    /// Keep --shutdown-delay plus this below the pod's terminationGracePeriodSeconds.
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_SHUTDOWN_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = serve::DEFAULT_SHUTDOWN_TIMEOUT.as_secs()
    )]
    pub shutdown_timeout: u64,

    /// After SIGTERM, keep accepting connections this long while /readyz already fails, until
    /// the endpoint's removal has reached every API server (a second signal cuts it short).
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_SHUTDOWN_DELAY",
        value_name = "DURATION",
        value_parser = duration::parse_flag,
        default_value = "5s"
    )]
    pub shutdown_delay: Duration,

    /// Time a client has to send each request head; slower connections are closed.
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_HEADER_TIMEOUT",
        value_name = "DURATION",
        value_parser = positive_duration,
        default_value = "5s"
    )]
    pub header_timeout: Duration,

    /// Longest time to read a request body and judge it (408 when the body is late); the API
    /// server's ?timeout= shortens it for each call.
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_REQUEST_TIMEOUT",
        value_name = "DURATION",
        value_parser = positive_duration,
        default_value = "30s"
    )]
    pub request_timeout: Duration,

    /// Connections open at once, over all workers; beyond it new ones wait in the listen
    /// backlog until one closes. Fewer if --memory-budget cannot hold that many (a warning says
    /// so).
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_MAX_CONNECTIONS",
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..),
        default_value_t = 1024
    )]
    pub max_connections: u32,

    /// Memory the server plans to hold at most, in bytes or with a unit (96Mi, 1Gi): the
    /// process, its connections' buffers and the request bodies it reads and judges. A body
    /// larger than a small review is read only when it has room (it waits, then gets 503);
    /// fewer connections are accepted if the budget cannot hold --max-connections. Keep it
    /// about three quarters of the container's memory limit.
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_MEMORY_BUDGET",
        value_name = "BYTES",
        value_parser = byte_size,
        default_value = "112Mi"
    )]
    pub memory_budget: usize,

    /// How often the certificate, key and client CA files are checked for changes (a changed
    /// pair is loaded without a restart; a broken one is logged and the old one kept).
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_TLS_RELOAD_INTERVAL",
        value_name = "DURATION",
        value_parser = positive_duration,
        default_value = "10s"
    )]
    pub tls_reload_interval: Duration,

    /// Log line format.
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Lines a second that requests may write at most (a denial's, a refusal's, an error's);
    /// past it they are counted (metric ipamclaim_webhook_log_lines_suppressed_total, and a
    /// line every 10 s), so that a flood of denied or malformed requests does not spend the
    /// server's CPU on its log. 0: every line.
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_REQUEST_LOG_LIMIT", value_name = "LINES", default_value_t = ipamclaim_webhook::serve::logs::DEFAULT_REQUEST_LOG_LIMIT)]
    pub request_log_limit: u32,

    /// Offer HTTP/2 (ALPN h2) besides HTTP/1.1. Off by default: the API server calls webhooks
    /// over HTTP/1.1, and HTTP/2 adds the rapid-reset attack surface.
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_ENABLE_HTTP2",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub enable_http2: bool,

    /// Deny what is invalid (Deny), or admit it and report the causes as warnings (Warn) or
    /// audit annotations (Audit): roll out in Warn or Audit, watch, then enforce.
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_ENFORCEMENT", value_enum, default_value_t = EnforcementArg::Deny)]
    pub enforcement: EnforcementArg,

    /// The mutating webhook's defaults.
    #[command(flatten)]
    pub defaults: DefaultsArgs,

    /// Write each denied AdmissionReview into DIR, for `replay` to reproduce later.
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_RECORD_DENIED", value_name = "DIR")]
    pub record_denied: Option<PathBuf>,

    /// How many recorded reviews DIR keeps; the oldest are removed first.
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_RECORD_DENIED_MAX", value_name = "N", default_value_t = ipamclaim_webhook::serve::record::DEFAULT_MAX_FILES)]
    pub record_denied_max: usize,

    /// Worker threads [default: number of CPUs].
    #[arg(long, env = "IPAMCLAIM_WEBHOOK_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Deny an address that another IPAMClaim on the same network holds: watches every
    /// IPAMClaim of the cluster (needs get, list and watch on ipamclaims.k8s.cni.cncf.io);
    /// /readyz fails until the first list is indexed.
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_UNIQUE_ADDRESSES",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub unique_addresses: bool,

    /// Deny an address that does not fit its network (outside its subnets, excluded, its
    /// gateway, another prefix length): watches every NetworkAttachmentDefinition of the
    /// cluster (needs get, list and watch on network-attachment-definitions.k8s.cni.cncf.io);
    /// /mutate completes a bare address with its subnet's prefix length; /readyz fails until
    /// the first list is indexed.
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_CHECK_NETWORKS",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub check_networks: bool,

    /// Kubeconfig for --unique-addresses and --check-networks (one client serves both)
    /// [default: KUBECONFIG, ~/.kube/config, or the pod's service account].
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_KUBECONFIG",
        value_name = "FILE",
        requires = "cluster_views"
    )]
    pub kubeconfig: Option<PathBuf>,

    /// With --unique-addresses, how long an admitted address stays reserved for its claim
    /// when the watch does not show the claim sooner.
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_RESERVATION_TTL",
        value_name = "DURATION",
        value_parser = positive_duration,
        default_value = "30s"
    )]
    pub reservation_ttl: Duration,

    /// With --unique-addresses, where what a replica admits is reserved: Leases (in the API
    /// server, so that it holds across replicas: one Lease per address newly given to a claim,
    /// in --reservation-namespace; needs get, create, update and delete on leases there) or
    /// Memory (in this replica alone: only for a single replica).
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_RESERVATIONS",
        value_enum,
        default_value_t = ReservationsArg::Leases
    )]
    pub reservations: ReservationsArg,

    /// With --reservations Leases, the namespace of the Leases [default: the pod's own, from
    /// its service account; outside a pod it must be given].
    #[arg(
        long,
        env = "IPAMCLAIM_WEBHOOK_RESERVATION_NAMESPACE",
        value_name = "NAMESPACE",
        requires = "unique_addresses"
    )]
    pub reservation_namespace: Option<String>,
}

/// Where `--unique-addresses` keeps its reservations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReservationsArg {
    /// Leases in the API server: they hold across replicas.
    #[value(name = "Leases")]
    Leases,
    /// This replica's memory: a single replica only.
    #[value(name = "Memory")]
    Memory,
}

/// The `--field-validation` directive, spelled as the API server spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FieldValidationArg {
    /// Deny unknown and duplicate fields (400 BadRequest).
    #[value(name = "Strict")]
    Strict,
    /// Admit, with one warning per unknown or duplicate field.
    #[value(name = "Warn")]
    Warn,
    /// Ignore unknown and duplicate fields.
    #[value(name = "Ignore")]
    Ignore,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Flags of `certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, tls.crt and tls.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// DNS name of the serving certificate (repeatable). Without --dns and --ip: localhost and
    /// the in-cluster names of service ipamclaim-webhook in namespace ipamclaim-webhook.
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,

    /// IP address of the serving certificate (repeatable). Without --dns and --ip: 127.0.0.1
    /// and ::1.
    #[arg(long = "ip", value_name = "ADDR")]
    pub ip: Vec<IpAddr>,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `RUST_LOG` is not a valid filter.
    #[error("invalid RUST_LOG filter")]
    Filter(#[source] tracing_subscriber::filter::ParseError),
    /// The subscriber could not be installed.
    #[error(transparent)]
    Init(logs::LogsError),
}

// === impl ServeArgs ===

impl ServeArgs {
    /// The server config these flags describe; an unusable default is refused.
    pub fn config(&self) -> Result<ServeConfig, DefaultsError> {
        // Starting from the library's defaults keeps settings that have no flag yet (and the
        // pipeline options that later issues add) at their defaults.
        let mut cfg = ServeConfig::new(TlsFiles {
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            client_ca: self.client_ca.clone(),
        });
        cfg.listen = self.listen;
        cfg.probe_listen = self.probe_listen;
        cfg.enable_http2 = self.enable_http2;
        cfg.admission.field_validation = self.field_validation.into();
        cfg.admission.defaults = self.defaults.defaults()?;
        cfg.admission.enforcement = self.enforcement.into();
        cfg.record_denied = self.record_denied.clone();
        cfg.record_denied_max = self.record_denied_max;
        cfg.request_log_limit = self.request_log_limit;
        cfg.max_body_bytes = self.max_body_bytes;
        cfg.shutdown_timeout = Duration::from_secs(self.shutdown_timeout);
        cfg.shutdown_delay = self.shutdown_delay;
        cfg.header_timeout = self.header_timeout;
        cfg.request_timeout = self.request_timeout;
        cfg.max_connections = self.max_connections as usize;
        cfg.memory_budget = self.memory_budget;
        cfg.tls_reload_interval = self.tls_reload_interval;
        if let Some(workers) = self.workers {
            cfg.workers = workers.into();
        }
        let credentials = match &self.kubeconfig {
            Some(path) => Credentials::Kubeconfig(path.clone()),
            None => Credentials::Infer,
        };
        cfg.unique_addresses = self.unique_addresses.then(|| UniqueAddresses {
            credentials: credentials.clone(),
            reservation_ttl: self.reservation_ttl,
            reservations: match self.reservations {
                ReservationsArg::Leases => ReservationStore::Leases {
                    namespace: self.reservation_namespace.clone(),
                },
                ReservationsArg::Memory => ReservationStore::Memory,
            },
        });
        cfg.check_networks = self.check_networks.then_some(CheckNetworks { credentials });
        Ok(cfg)
    }
}

// === impl FieldValidationArg ===

impl From<FieldValidationArg> for FieldValidation {
    fn from(arg: FieldValidationArg) -> Self {
        match arg {
            FieldValidationArg::Strict => FieldValidation::Strict,
            FieldValidationArg::Warn => FieldValidation::Warn,
            FieldValidationArg::Ignore => FieldValidation::Ignore,
        }
    }
}

// === impl CertsArgs ===

impl CertsArgs {
    /// What to put in the serving certificate.
    pub fn options(&self) -> CertsOptions {
        CertsOptions {
            dns: self.dns.clone(),
            ips: self.ip.clone(),
        }
    }
}

/// A duration flag that must not be zero (a zero timeout or interval would refuse or spin).
fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration::parse_flag(text)? {
        d if d.is_zero() => Err("must be longer than zero".to_owned()),
        d => Ok(d),
    }
}

/// A size in bytes, plain or with a Kubernetes quantity suffix: `Ki`, `Mi`, `Gi` (powers of
/// 1024) or `k`, `M`, `G` (powers of 1000).
fn byte_size(text: &str) -> Result<usize, String> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let scale: usize = match &text[digits.len()..] {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        unit => return Err(format!("unknown unit {unit:?}: use Ki, Mi, Gi, k, M or G")),
    };
    digits
        .parse::<usize>()
        .map_err(|e| format!("not a size: {e}"))?
        .checked_mul(scale)
        .ok_or_else(|| "too large".to_owned())
}

/// Installs the log of `serve`: `RUST_LOG` or [`DEFAULT_LOG_FILTER`], in `format`, on stderr
/// through the bounded, non-blocking writer of [`logs`]. Keep what it returns until exit.
pub fn init_logging(format: LogFormat) -> Result<Logs, LoggingError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(spec).map_err(LoggingError::Filter)?
        }
        _ => EnvFilter::new(DEFAULT_LOG_FILTER),
    };
    let format = match format {
        LogFormat::Json => logs::Format::Json,
        LogFormat::Text => logs::Format::Text,
    };
    Logs::install(filter, format, Sink::stderr()).map_err(LoggingError::Init)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults_match_the_design() {
        let cli = Cli::try_parse_from(["ipamclaim-webhook", "serve"]).expect("parse");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        let cfg = args.config().expect("valid config");
        assert_eq!(cfg.listen.to_string(), "[::]:8443");
        assert_eq!(cfg.probe_listen.to_string(), "[::]:8080");
        assert_eq!(cfg.max_body_bytes, 7_340_032);
        // Schema drift is reported, not denied (DESIGN §1); replay stays strict.
        assert_eq!(cfg.admission.field_validation, FieldValidation::Warn);
        assert!(!cfg.enable_http2);
        assert!(cfg.tls.client_ca.is_none());
        assert!(cfg.workers >= 1);
        assert_eq!(args.log_format, LogFormat::Text);
        assert_eq!(cfg.shutdown_timeout, Duration::from_secs(20));
        assert_eq!(cfg.shutdown_delay, Duration::from_secs(5));
        assert_eq!(cfg.header_timeout, Duration::from_secs(5));
        assert_eq!(cfg.request_timeout, Duration::from_secs(30));
        assert_eq!(cfg.max_connections, 1024);
        assert_eq!(cfg.memory_budget, serve::DEFAULT_MEMORY_BUDGET);
        assert_eq!(cfg.tls_reload_interval, Duration::from_secs(10));
        assert_eq!(cfg.unique_addresses, None, "no API access unless asked");
        assert_eq!(cfg.check_networks, None, "no API access unless asked");
    }

    #[test]
    fn check_networks_shares_the_kubeconfig_with_unique_addresses() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["ipamclaim-webhook", "serve"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|cli| match cli.command {
                Command::Serve(args) => args.config().expect("config"),
                _ => panic!("not serve"),
            })
        };
        let cfg = parse(&["--check-networks"]).expect("parse");
        assert_eq!(
            cfg.check_networks,
            Some(CheckNetworks {
                credentials: Credentials::Infer
            })
        );
        assert_eq!(cfg.unique_addresses, None);
        let kubeconfig = Credentials::Kubeconfig(PathBuf::from("/etc/kube/config"));
        let cfg = parse(&["--check-networks", "--kubeconfig", "/etc/kube/config"]).expect("parse");
        assert_eq!(cfg.check_networks.expect("on").credentials, kubeconfig);
        let cfg = parse(&[
            "--check-networks",
            "--unique-addresses",
            "--kubeconfig",
            "/etc/kube/config",
        ])
        .expect("parse");
        assert_eq!(cfg.check_networks.expect("on").credentials, kubeconfig);
        assert_eq!(cfg.unique_addresses.expect("on").credentials, kubeconfig);
        assert!(
            parse(&["--kubeconfig", "k"]).is_err(),
            "needs a flag that reads the cluster"
        );
    }

    #[test]
    fn unique_addresses_takes_a_kubeconfig_and_a_reservation_ttl() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["ipamclaim-webhook", "serve"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|cli| match cli.command {
                Command::Serve(args) => args.config().expect("config"),
                _ => panic!("not serve"),
            })
        };
        let cfg = parse(&["--unique-addresses"]).expect("parse");
        assert_eq!(
            cfg.unique_addresses,
            Some(UniqueAddresses {
                credentials: Credentials::Infer,
                reservation_ttl: Duration::from_secs(30),
                reservations: ReservationStore::Leases { namespace: None },
            })
        );
        let cfg = parse(&[
            "--unique-addresses",
            "--kubeconfig",
            "/etc/kube/config",
            "--reservation-ttl",
            "1m",
        ])
        .expect("parse");
        assert_eq!(
            cfg.unique_addresses,
            Some(UniqueAddresses {
                credentials: Credentials::Kubeconfig(PathBuf::from("/etc/kube/config")),
                reservation_ttl: Duration::from_secs(60),
                reservations: ReservationStore::Leases { namespace: None },
            })
        );
        assert!(
            parse(&["--kubeconfig", "k"]).is_err(),
            "needs --unique-addresses"
        );
        assert!(parse(&["--unique-addresses", "--reservation-ttl", "0"]).is_err());
    }

    #[test]
    fn reservations_are_leases_in_a_namespace_or_this_replicas_memory() {
        let unique = |extra: &[&str]| {
            let mut argv = vec!["ipamclaim-webhook", "serve"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|cli| match cli.command {
                Command::Serve(args) => args.config().expect("config").unique_addresses,
                _ => panic!("not serve"),
            })
        };
        let store = |extra: &[&str]| unique(extra).expect("parse").expect("unique").reservations;
        assert_eq!(
            store(&["--unique-addresses", "--reservation-namespace", "hooks"]),
            ReservationStore::Leases {
                namespace: Some("hooks".to_owned())
            }
        );
        assert_eq!(
            store(&["--unique-addresses", "--reservations", "Memory"]),
            ReservationStore::Memory
        );
        assert!(
            unique(&["--reservation-namespace", "hooks"]).is_err(),
            "needs --unique-addresses"
        );
        assert!(unique(&["--unique-addresses", "--reservations", "etcd"]).is_err());
    }

    #[test]
    fn memory_budget_takes_bytes_or_quantities() {
        let budget = |value: &str| {
            let argv = ["ipamclaim-webhook", "serve", "--memory-budget", value];
            let Command::Serve(args) = Cli::try_parse_from(argv)
                .map_err(|e| e.to_string())?
                .command
            else {
                panic!("not serve");
            };
            Ok::<_, String>(args.config().expect("valid config").memory_budget)
        };
        assert_eq!(budget("96Mi"), Ok(96 << 20));
        assert_eq!(budget("1Gi"), Ok(1 << 30));
        assert_eq!(budget("100M"), Ok(100_000_000));
        assert_eq!(budget("123456"), Ok(123_456));
        for bad in ["96MB", "Mi", "-1Mi", "1.5Gi", "99999999999999999999Gi"] {
            assert!(budget(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn hardening_flags_take_seconds_or_durations() {
        let cli = Cli::try_parse_from([
            "ipamclaim-webhook",
            "serve",
            "--shutdown-delay",
            "0",
            "--header-timeout",
            "2",
            "--request-timeout",
            "1500ms",
            "--max-connections",
            "64",
            "--tls-reload-interval",
            "1m",
        ])
        .expect("parse");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        let cfg = args.config().expect("valid config");
        assert_eq!(cfg.shutdown_delay, Duration::ZERO);
        assert_eq!(cfg.header_timeout, Duration::from_secs(2));
        assert_eq!(cfg.request_timeout, Duration::from_millis(1500));
        assert_eq!(cfg.max_connections, 64);
        assert_eq!(cfg.tls_reload_interval, Duration::from_secs(60));
        for (flag, value) in [
            ("--tls-reload-interval", "0"),
            ("--header-timeout", "0s"),
            ("--request-timeout", "soon"),
            ("--max-connections", "0"),
        ] {
            assert!(
                Cli::try_parse_from(["ipamclaim-webhook", "serve", flag, value]).is_err(),
                "{flag} {value} accepted"
            );
        }
    }

    /// With --server the server judges with its own flags: replay refuses flags that would
    /// look as if they applied.
    #[test]
    fn replay_refuses_judging_flags_with_server() {
        for flag in [["--field-validation", "Warn"], ["--enforcement", "Warn"]] {
            let mut argv = vec![
                "ipamclaim-webhook",
                "replay",
                "--server",
                "https://localhost:8443",
                "--ca",
                "ca.crt",
            ];
            argv.extend(flag);
            let err = Cli::try_parse_from(argv).expect_err("conflict");
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{flag:?}"
            );
        }
        Cli::try_parse_from([
            "ipamclaim-webhook",
            "replay",
            "--server",
            "https://localhost:8443",
            "--ca",
            "ca.crt",
        ])
        .expect("the defaults do not conflict");
    }

    #[test]
    fn replay_check_networks_needs_networks_and_no_server() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["ipamclaim-webhook", "replay"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|cli| match cli.command {
                Command::Replay(args) => args,
                _ => panic!("not replay"),
            })
        };
        let args = parse(&[
            "--check-networks",
            "--networks",
            "nads.yaml",
            "--networks",
            "more/",
        ])
        .expect("parse");
        assert!(args.check_networks);
        assert_eq!(
            args.networks,
            [PathBuf::from("nads.yaml"), PathBuf::from("more/")]
        );
        for bad in [
            &["--check-networks"][..],
            &["--networks", "nads.yaml"],
            &[
                "--check-networks",
                "--networks",
                "nads.yaml",
                "--server",
                "https://localhost:8443",
                "--ca",
                "ca.crt",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replay_checks_fields_strictly_by_default_unlike_serve() {
        let cli = Cli::try_parse_from(["ipamclaim-webhook", "replay"]).expect("parse");
        let Command::Replay(args) = cli.command else {
            panic!("not replay");
        };
        assert_eq!(
            FieldValidation::from(args.field_validation),
            FieldValidation::Strict
        );
    }

    #[test]
    fn serve_flags_are_parsed() {
        let cli = Cli::try_parse_from([
            "ipamclaim-webhook",
            "serve",
            "--listen",
            "127.0.0.1:9443",
            "--field-validation",
            "Strict",
            "--enable-http2",
            "--workers",
            "3",
            "--client-ca",
            "ca.crt",
            "--log-format",
            "json",
        ])
        .expect("parse");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        let cfg = args.config().expect("valid config");
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:9443");
        assert_eq!(cfg.admission.field_validation, FieldValidation::Strict);
        assert!(cfg.enable_http2);
        assert_eq!(cfg.workers, 3);
        assert_eq!(cfg.tls.client_ca, Some(PathBuf::from("ca.crt")));
        assert_eq!(args.log_format, LogFormat::Json);
    }

    #[test]
    fn mutate_defaults_are_parsed_and_checked() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["ipamclaim-webhook", "serve"];
            argv.extend_from_slice(extra);
            let Command::Serve(args) = Cli::try_parse_from(argv).expect("parse").command else {
                panic!("not serve");
            };
            args.config()
        };
        let cfg = parse(&[
            "--default-interface",
            "net1",
            "--network-label",
            "k8s.cni.cncf.io/network",
        ])
        .expect("valid defaults");
        assert_eq!(
            cfg.admission.defaults.default_interface.as_deref(),
            Some("net1")
        );
        assert_eq!(
            cfg.admission.defaults.network_label.as_deref(),
            Some("k8s.cni.cncf.io/network")
        );
        assert!(parse(&["--network-label", "not a key"]).is_err());
        assert!(parse(&["--default-interface", "eth0:1"]).is_err());
        assert_eq!(
            parse(&[]).expect("defaults").admission.defaults,
            Defaults::default()
        );
    }

    #[test]
    fn zero_workers_is_refused() {
        assert!(Cli::try_parse_from(["ipamclaim-webhook", "serve", "--workers", "0"]).is_err());
    }

    #[test]
    fn field_validation_is_spelled_as_kubernetes_does() {
        assert!(Cli::try_parse_from([
            "ipamclaim-webhook",
            "serve",
            "--field-validation",
            "strict"
        ])
        .is_err());
    }
}
