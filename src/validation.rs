//! Validation of IPAMClaim objects (placeholder while being written).
use serde_json::Value;

use crate::field::ErrorList;

/// The verdict on one object.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Errors that deny.
    pub errors: ErrorList,
    /// Errors on values unchanged since `oldObject`: reported as warnings only.
    pub ratcheted: ErrorList,
}

/// Validates `object` (and, on UPDATE, against `old`).
pub fn validate(_object: &Value, _old: Option<&Value>) -> Verdict {
    Verdict::default()
}
