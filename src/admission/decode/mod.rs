//! Reading a review: the AdmissionReview envelope, and the strict walk that checks each
//! object's keys while it reads the object into the typed views the rules judge.

pub mod envelope;
pub mod strict;
