//! The `response` of an AdmissionReview as the pipeline builds it: allowed or denied (with the
//! Kubernetes `Status`), the patch, warnings and audit annotations, and what `--enforcement`
//! makes of a denial.

use kube::core::response::StatusSummary;
use kube::core::Status;

use crate::admission::answer::caps::{self, Warnings};
use crate::admission::options::Enforcement;
use crate::admission::rules::conflicts::Admitted;
use crate::admission::rules::defaulting::Operation;

/// The `response` of an AdmissionReview, borrowed from the review where it can be: the uid,
/// and the defaults of a patch (written from the review's text when the answer is).
///
/// kube-core's `AdmissionResponse` serialises `patch` as an array of numbers, while the API
/// server expects base64 text; this type is written as Kubernetes documents it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response<'a> {
    /// Copied from `request.uid`.
    pub uid: &'a str,
    /// The verdict.
    pub allowed: bool,
    /// Why a review was denied.
    pub status: Option<Status>,
    /// An RFC 6902 JSON Patch (mutating webhook only), written base64-encoded with
    /// `patchType: JSONPatch`.
    pub patch: Option<Vec<Operation<'a>>>,
    /// Annotations for the audit log.
    pub audit_annotations: Option<std::collections::BTreeMap<String, String>>,
    /// Warnings for the requesting client, within the caps of [`caps::Warnings`].
    pub warnings: Warnings,
    /// Whether a denial is a verdict on the object's content (which `--enforcement` may
    /// soften) rather than a refusal of a request that cannot be judged (which it never does).
    pub(crate) verdict: bool,
    /// With `unique_addresses`: what the claim holds once written (see [`Reviewed::admitted`]).
    pub(crate) admitted: Option<Admitted>,
    /// How many errors of a 422 denial its causes leave out (see [`caps`]).
    pub(crate) unlisted: usize,
}

// === impl Response ===

impl<'a> Response<'a> {
    pub(crate) fn allow(uid: &'a str) -> Self {
        Response {
            uid,
            allowed: true,
            status: None,
            patch: None,
            audit_annotations: None,
            warnings: Warnings::new(),
            verdict: false,
            admitted: None,
            unlisted: 0,
        }
    }

    pub(crate) fn deny(uid: &'a str, status: Status) -> Self {
        Response {
            allowed: false,
            status: Some(status),
            ..Response::allow(uid)
        }
    }

    /// A denial because of what the object holds (invalid values, unknown or duplicate fields).
    pub(crate) fn deny_verdict(uid: &'a str, status: Status) -> Self {
        Response {
            verdict: true,
            ..Response::deny(uid, status)
        }
    }

    /// Under `Warn` or `Audit`, admits a verdict denial and reports its causes instead.
    /// Returns whether it did.
    pub(crate) fn enforce(&mut self, enforcement: Enforcement) -> bool {
        if self.allowed || !self.verdict || enforcement == Enforcement::Deny {
            return false;
        }
        let Some(status) = self.status.take() else {
            return false;
        };
        // The causes as listed (the last one, counting the errors left out, is not an error of
        // its own: it becomes the count of what the warnings or the annotation leave out).
        let causes: Vec<String> = match &status.details {
            Some(d) if !d.causes.is_empty() => d
                .causes
                .iter()
                .filter(|c| !c.reason.is_empty())
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect(),
            _ => vec![status.message.clone()],
        };
        self.allowed = true;
        match enforcement {
            Enforcement::Deny => {}
            Enforcement::Warn => {
                let mut warnings = Warnings::new();
                for cause in causes {
                    warnings.push_with(|| cause);
                }
                warnings.leave_out(self.unlisted);
                warnings.append(std::mem::take(&mut self.warnings));
                self.warnings = warnings;
            }
            Enforcement::Audit => {
                let mut listed = causes.join("; ");
                if self.unlisted > 0 {
                    listed.push_str("; ");
                    listed.push_str(&caps::and_more(self.unlisted, "error"));
                }
                let mut annotations = std::collections::BTreeMap::new();
                annotations.insert("verdict".to_owned(), "would-deny".to_owned());
                annotations.insert("code".to_owned(), status.code.to_string());
                annotations.insert("causes".to_owned(), listed);
                self.audit_annotations = Some(annotations);
            }
        }
        true
    }
}

/// A denial that is not about the object's fields: wrong resource, bad request shape,
/// internal failure.
pub(crate) fn failure(code: u16, reason: &str, message: String) -> Status {
    Status {
        status: Some(StatusSummary::Failure),
        code,
        message,
        metadata: None,
        reason: reason.to_owned(),
        details: None,
    }
}
