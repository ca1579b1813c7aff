//! The HTTPS front end: `ipamclaim-webhook serve` on the admission core.
//!
//! [`server`] is the actix-web service (routes, limits, shutdown); around it: [`tls`] loading,
//! certificate [`reload`], the per-request [`head_timeout`], the memory [`budget`] and the
//! connection [`gate`] that keeps it (the two [`conn`]ection wrappers), [`metrics`], the
//! [`record`]ing of denied reviews and the Go [`duration`]s of `?timeout=` and the flags.

pub mod budget;
pub mod conn;
pub mod duration;
pub mod gate;
pub mod head_timeout;
pub mod metrics;
pub mod record;
pub mod reload;
pub mod server;
pub mod tls;

pub use server::{
    default_workers, run, start, Handle, Running, ServeConfig, ServerError, UniqueAddresses,
    DEFAULT_HEADER_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MEMORY_BUDGET, DEFAULT_PROBE_LISTEN, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SHUTDOWN_DELAY,
    DEFAULT_SHUTDOWN_TIMEOUT,
};
