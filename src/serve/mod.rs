//! The HTTPS front end: `ipamclaim-webhook serve` on the admission core.
//!
//! [`server`] starts the actix-web service and stops it; [`listen`] binds its sockets, [`routes`]
//! maps paths to handlers, [`admit`] answers a review, all sharing a [`state`]; around them: [`tls`] loading,
//! certificate [`reload`], the [`reserve`]ations across replicas, the per-request [`head_timeout`], the memory [`budget`] and the
//! connection [`gate`] that keeps it (the two [`conn`]ection wrappers), [`metrics`], the
//! [`record`]ing of denied reviews, the Go [`duration`]s of `?timeout=` and the flags, and the
//! [`logs`]' bounded, non-blocking writer.

pub mod admit;
pub mod budget;
pub mod conn;
pub mod duration;
pub mod gate;
pub mod head_timeout;
pub mod listen;
pub mod logs;
pub mod metrics;
pub mod record;
pub mod reload;
pub mod reserve;
pub mod routes;
pub mod server;
pub mod state;
pub mod tls;

pub use server::{
    default_workers, run, start, CheckNetworks, Handle, Running, ServeConfig, ServerError,
    UniqueAddresses, DEFAULT_HEADER_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MEMORY_BUDGET, DEFAULT_PROBE_LISTEN, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SHUTDOWN_DELAY, DEFAULT_SHUTDOWN_TIMEOUT,
};
