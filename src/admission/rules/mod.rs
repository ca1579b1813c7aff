//! Judging a claim: the object rules, immutability and ratcheting on UPDATE, IP address
//! parsing, conflicts with other claims, and the defaults of `/mutate`.

pub mod conflicts;
pub mod defaulting;
pub mod ip;
pub mod validation;
