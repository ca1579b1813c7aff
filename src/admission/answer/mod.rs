//! Writing the answer: [`field`] errors worded as apimachinery words them, values printed as Go
//! prints them ([`gotext`]), the [`caps`] on what one answer lists, and the AdmissionReview
//! response itself.

pub mod caps;
pub mod field;
pub mod gotext;
pub mod response;
mod write;

pub use write::write;
