//! Judging a claim: the [`object`] rules (with its [`addresses`] lists and the [`repeats`] in
//! lists), immutability and ratcheting on [`update`] (where [`validate`] starts), [`ip`]
//! address parsing, [`conflicts`] with other claims, the fit of addresses to their
//! [`networks`], and the [`defaulting`] of `/mutate`.

pub mod addresses;
pub mod conflicts;
pub mod defaulting;
pub mod ip;
pub mod networks;
pub mod object;
pub mod repeats;
pub mod update;

#[cfg(test)]
pub(crate) mod testing;

pub use object::validate_object;
pub use update::{validate, Verdict};
