//! The admission core: an AdmissionReview's bytes in, the answer's bytes out, with no I/O.
//!
//! [`pipeline`] decodes a review and answers it; the rest are its parts: reading the review
//! (`request`, over the [`json`] reader), the [`strict`] field check that walks each object into
//! a typed [`view`], the IPAMClaim [`types`], [`field`] paths and errors worded like
//! apimachinery's, [`ip`] address parsing, [`validation`] (the `/validate` rules),
//! [`defaulting`] (the `/mutate` patch), the address [`conflicts`] check, the [`caps`] on what
//! one answer lists, and writing the answer (`answer`). Nothing here reaches the front ends
//! (`serve`, `replay`, the CLI).

mod answer;
pub mod caps;
pub mod conflicts;
pub mod defaulting;
pub mod field;
pub mod ip;
pub mod json;
pub mod networks;
pub mod pipeline;
mod request;
pub mod strict;
pub mod types;
pub mod validation;
pub mod view;

pub use pipeline::{
    review, Enforcement, FieldValidation, Options, RequestError, Response, Reviewed, Summary,
    Webhook, ADMISSION_V1, ADMISSION_V1BETA1, MAX_SUMMARY_UNKNOWN_FIELDS,
};
