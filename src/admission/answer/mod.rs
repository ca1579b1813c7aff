//! Writing the answer: field errors worded as apimachinery words them, the caps on what one
//! answer lists, and the AdmissionReview response itself.

pub mod caps;
pub mod field;
mod write;

pub use write::write;
