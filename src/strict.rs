//! Strict field checking: unknown and duplicate keys found in the raw bytes of an object.
//! (Placeholder API; the real walker replaces this file.)

use std::fmt;

/// What is wrong with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueKind {
    /// The schema does not declare the field.
    Unknown,
    /// The key appears twice in one object.
    Duplicate,
}

/// One field-validation error, named like the API server names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Unknown or duplicate.
    pub kind: IssueKind,
    /// The field path, e.g. `spec.foo` or `status.conditions[0].colour`.
    pub path: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            IssueKind::Unknown => write!(f, "unknown field \"{}\"", self.path),
            IssueKind::Duplicate => write!(f, "duplicate field \"{}\"", self.path),
        }
    }
}

/// The object could not be walked.
#[derive(Debug, thiserror::Error)]
pub enum StrictError {
    /// Not well-formed JSON.
    #[error("malformed JSON at byte {offset}")]
    Malformed {
        /// Byte offset of the problem.
        offset: usize,
    },
    /// Nested deeper than allowed.
    #[error("JSON nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
}

/// Finds unknown and duplicate fields in the raw JSON of an IPAMClaim, in document order.
pub fn check(_object: &[u8]) -> Result<Vec<Issue>, StrictError> {
    Ok(Vec::new())
}
