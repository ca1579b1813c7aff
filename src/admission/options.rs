//! The settings and results of the pipeline that the front ends share: which webhook, the
//! field-validation and enforcement modes, the options, and what a review yields (its answer, a
//! summary for logs and metrics, what it admits).

use std::borrow::Cow;

use crate::admission::rules::conflicts::{self, Admitted};
use crate::admission::rules::defaulting::Defaults;
use crate::admission::rules::networks;

/// `apiVersion` of `admission.k8s.io/v1` reviews.
pub const ADMISSION_V1: &str = "admission.k8s.io/v1";
/// `apiVersion` of `admission.k8s.io/v1beta1` reviews.
pub const ADMISSION_V1BETA1: &str = "admission.k8s.io/v1beta1";

/// Which webhook a review is addressed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    /// `POST /validate`: the verdict.
    Validate,
    /// `POST /mutate`: the defaults, as a JSON Patch.
    Mutate,
}

/// What to do with unknown and duplicate fields (the API server's `fieldValidation` directive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Deny with 400 BadRequest, before any other check.
    #[default]
    Strict,
    /// Judge as usual and add one warning per field.
    Warn,
    /// Neither.
    Ignore,
}

// === impl FieldValidation ===

impl std::str::FromStr for FieldValidation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Strict" => Ok(FieldValidation::Strict),
            "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(format!(
                "unknown field validation {other:?}: expected Strict, Warn or Ignore"
            )),
        }
    }
}

/// What `/validate` does with a review it would deny (rollout safety).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Enforcement {
    /// Deny it.
    #[default]
    Deny,
    /// Allow it, with the causes as warnings.
    Warn,
    /// Allow it, with the verdict and causes as audit annotations.
    Audit,
}

// === impl Enforcement ===

impl std::str::FromStr for Enforcement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Deny" => Ok(Enforcement::Deny),
            "Warn" => Ok(Enforcement::Warn),
            "Audit" => Ok(Enforcement::Audit),
            other => Err(format!(
                "unknown enforcement {other:?}: expected Deny, Warn or Audit"
            )),
        }
    }
}

/// Settings of the admission pipeline shared by `serve` and `replay`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The field-validation directive for unknown and duplicate fields.
    pub field_validation: FieldValidation,
    /// The opt-in defaults of the mutating webhook.
    pub defaults: Defaults,
    /// Deny what is invalid, or only report it (`Warn`, `Audit`).
    pub enforcement: Enforcement,
    /// `--unique-addresses`: the addresses other claims hold, or `None` not to look.
    pub unique_addresses: Option<conflicts::View>,
    /// `--check-networks`: the networks addresses must fit (and whose subnets complete a bare
    /// address in `/mutate`), or `None` not to look.
    pub check_networks: Option<networks::View>,
}

/// A request that cannot be judged at all: the front end answers it with a 400 and a short
/// plain-text error. Nothing is admitted.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body is not a decodable AdmissionReview.
    #[error("body is not a valid AdmissionReview: {0}")]
    NotAReview(String),
    /// The review carries no `request`.
    #[error("AdmissionReview has no request")]
    NoRequest,
    /// The request carries no `uid` to answer with.
    #[error("AdmissionReview request has no uid")]
    NoUid,
    /// The review is of an API version this webhook does not speak.
    #[error("AdmissionReview apiVersion {0:?} is not supported: expected admission.k8s.io/v1 or admission.k8s.io/v1beta1")]
    UnsupportedVersion(String),
    /// The review's kind is not `AdmissionReview`.
    #[error("kind {0:?} is not AdmissionReview")]
    WrongKind(String),
}

/// The answer to one review, and what the front ends log and count about it.
#[derive(Debug, Clone)]
pub struct Reviewed {
    /// The serialised AdmissionReview response.
    pub body: Vec<u8>,
    /// A summary of the request and verdict.
    pub summary: Summary,
    /// With `unique_addresses`: what an admitted CREATE or UPDATE adds to the holders, for the
    /// front end to reserve (never for a dry run) or index.
    pub admitted: Option<Admitted>,
}

/// What a log line or metric needs to know about one review; never the object itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// `request.uid`.
    pub uid: String,
    /// `request.namespace`.
    pub namespace: String,
    /// The object's name (or `request.name`).
    pub name: String,
    /// `request.operation` (one of four words, almost always: not copied then).
    pub operation: Cow<'static, str>,
    /// `request.subResource`, empty when none.
    pub sub_resource: String,
    /// Whether the review was allowed.
    pub allowed: bool,
    /// `status.code` of a denial (0 when allowed).
    pub code: u16,
    /// The cause types of a denial (`FieldValueInvalid`, ...), one per cause.
    pub causes: Vec<String>,
    /// How many warnings the response carries.
    pub warnings: usize,
    /// Whether judging panicked (answered as a 500 denial).
    pub panicked: bool,
    /// Whether the review was invalid but admitted under `--enforcement Warn|Audit`.
    pub would_deny: bool,
    /// Paths of fields of `request.object` that the schema does not declare (`spec.foo`), as
    /// the strict field check found them, at most [`MAX_SUMMARY_UNKNOWN_FIELDS`]. Through an
    /// API server they mean schema drift: the installed CRD is newer than this webhook.
    pub unknown_fields: Vec<String>,
}

/// How many unknown-field paths a [`Summary`] keeps: enough to name what a newer CRD added,
/// bounded whatever the object holds.
pub const MAX_SUMMARY_UNKNOWN_FIELDS: usize = 16;

/// Longest unknown-field path a [`Summary`] keeps (an unknown key can be megabytes long).
pub(crate) const MAX_UNKNOWN_FIELD_BYTES: usize = 256;
