//! The admission core: an AdmissionReview's bytes in, the answer's bytes out, with no I/O.
//!
//! One folder per stage of a review's trip, and the flow that runs them:
//! - [`pipeline`]: one review from bytes to answer, for every front end ([`review`]), with
//!   the [`options`] and results the front ends share;
//! - [`json`]: the reader, and the text values it hands out;
//! - [`decode`]: the AdmissionReview envelope and the strict walk of each object (schema,
//!   keys, report, and the serde_json fallback that words a malformed body);
//! - [`model`]: the IPAMClaim types (the CRD is generated from them) and the borrowed views the
//!   walk fills;
//! - [`rules`]: the object rules, immutability and ratcheting, IP parsing, conflicts with
//!   other claims, defaulting;
//! - [`answer`]: field errors worded as apimachinery words them, caps, the response.
//!
//! Nothing here reaches the front ends (`serve`, `replay`, the CLI) or the cluster view
//! (`tests/layering.rs` checks it): they hand the core read-only lookups.

pub mod answer;
pub mod decode;
pub mod json;
pub mod model;
pub mod options;
pub mod pipeline;
pub mod rules;

pub use answer::response::Response;
pub use options::{
    Enforcement, FieldValidation, Options, RequestError, Reviewed, Summary, Webhook, ADMISSION_V1,
    ADMISSION_V1BETA1, MAX_SUMMARY_UNKNOWN_FIELDS,
};
pub use pipeline::review;
