//! Reading a review: the AdmissionReview [`envelope`], and the strict [`walk`] of each object,
//! which checks its keys against the [`schema`] while it reads the object into the typed views
//! the rules judge, remembers each object's [`keys`] to find duplicates, and [`report`]s what
//! it found in the API server's order. Where the one pass cannot read a body, the serde_json
//! [`fallback`] reads it the same way and words the refusal.

pub mod envelope;
pub mod fallback;
pub mod keys;
pub mod report;
pub mod schema;
pub mod walk;

#[cfg(test)]
mod tests;

pub use report::{Issue, IssueKind, Issues, StrictError, KEPT, MAX_PATH_BYTES};
pub use walk::{check, walk, Walked, MAX_DEPTH};
