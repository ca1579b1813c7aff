//! The admission core: an AdmissionReview's bytes in, the answer's bytes out, with no I/O.
//!
//! [`pipeline`] decodes a review and answers it; the rest are its parts: reading the review
//! (`request`, over the [`json`] reader), the [`strict`] field check that walks each object into
//! a typed [`view`], the IPAMClaim [`types`], [`field`] paths and errors worded like
//! apimachinery's, [`ip`] address parsing, [`validation`] (the `/validate` rules),
//! [`defaulting`] (the `/mutate` patch), the address [`conflicts`] check, the [`caps`] on what
//! one answer lists, and writing the answer (`answer`). Nothing here reaches the front ends
//! (`serve`, `replay`, the CLI).

pub mod answer;
pub mod decode;
pub mod json;
pub mod model;
pub mod pipeline;
pub mod rules;

pub use pipeline::{
    review, Enforcement, FieldValidation, Options, RequestError, Response, Reviewed, Summary,
    Webhook, ADMISSION_V1, ADMISSION_V1BETA1, MAX_SUMMARY_UNKNOWN_FIELDS,
};
