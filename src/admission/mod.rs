//! The admission core: an AdmissionReview's bytes in, the answer's bytes out, with no I/O.
//!
//! [`pipeline`] decodes a review and answers it; the rest are its parts: the IPAMClaim
//! [`types`], [`field`] paths and errors worded like apimachinery's, [`ip`] address parsing,
//! the [`strict`] field check, [`validation`] (the `/validate` rules), [`defaulting`] (the
//! `/mutate` patch) and the [`caps`] on what one answer lists. Nothing here reaches the front
//! ends (`serve`, `replay`, the CLI).

pub mod caps;
pub mod conflicts;
pub mod defaulting;
pub mod field;
pub mod ip;
pub mod pipeline;
pub mod strict;
pub mod types;
pub mod validation;

pub use pipeline::{
    review, Enforcement, FieldValidation, Options, RequestError, Response, Reviewed, Summary,
    Webhook, ADMISSION_V1, ADMISSION_V1BETA1, MAX_SUMMARY_UNKNOWN_FIELDS,
};
