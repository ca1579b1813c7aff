//! The admission pipeline: AdmissionReview bytes in, AdmissionReview bytes out, no I/O.
//!
//! The HTTPS server and `replay` are two thin front ends on [`review`]: the same bytes in give
//! the same bytes out, whichever front end carried them.
//!
//! A review is read once ([`decode`]), into typed views borrowed from its bytes; the
//! [`rules`] read those views, and the answer is written into one buffer sized before it is
//! written ([`answer`]). What judging holds beyond the body is bounded by the body (README,
//! "Memory").

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

use kube::core::Status;

use crate::admission::answer;
use crate::admission::answer::caps::{self, Listing, Warnings};
use crate::admission::answer::gotext;
use crate::admission::answer::response::{failure, Response};
use crate::admission::decode::envelope::{self, GroupVersion, Request};
use crate::admission::decode::{self, Walked};
use crate::admission::model::types::{GROUP, KIND, PLURAL, VERSION};
use crate::admission::model::view::Claim;
use crate::admission::options::{
    FieldValidation, Options, RequestError, Reviewed, Summary, Webhook, ADMISSION_V1,
    ADMISSION_V1BETA1, MAX_SUMMARY_UNKNOWN_FIELDS, MAX_UNKNOWN_FIELD_BYTES,
};
use crate::admission::rules;
use crate::admission::rules::conflicts::{self, Admitted, Claimant};
use crate::admission::rules::defaulting::{self};
use crate::admission::rules::networks;

/// Judges one AdmissionReview for `webhook` and returns the AdmissionReview to answer with.
///
/// A body that cannot be answered at all (not a review, no request, no uid) is an error, which
/// front ends report as HTTP 400. Everything else, including an internal failure while judging,
/// is an answer: the webhook fails closed with `allowed: false` and code 500, never open.
pub fn review(body: &[u8], webhook: Webhook, opts: &Options) -> Result<Reviewed, RequestError> {
    review_with(body, webhook, opts, judge)
}

/// The judging step, as a parameter so that tests can prove a failing judge fails closed.
type Judge = for<'a> fn(Request<'a>, &'a str, Webhook, &'a Options) -> Response<'a>;

fn review_with(
    body: &[u8],
    webhook: Webhook,
    opts: &Options,
    judge: Judge,
) -> Result<Reviewed, RequestError> {
    // Invalid UTF-8 anywhere refuses the body, even in members that are skipped unread.
    let text = std::str::from_utf8(body)
        .map_err(|e| RequestError::NotAReview(format!("not UTF-8: {e}")))?;
    let strict = webhook == Webhook::Validate && opts.field_validation != FieldValidation::Ignore;
    let envelope = envelope::decode(text, strict).map_err(RequestError::NotAReview)?;
    let api_version = envelope.api_version.unwrap_or_default();
    if api_version != ADMISSION_V1 && api_version != ADMISSION_V1BETA1 {
        return Err(RequestError::UnsupportedVersion(api_version.into_owned()));
    }
    match envelope.kind.as_deref() {
        Some("AdmissionReview") => {}
        other => {
            return Err(RequestError::WrongKind(
                other.unwrap_or_default().to_owned(),
            ))
        }
    }
    let mut request = envelope.request.ok_or(RequestError::NoRequest)?;
    let uid = match request.uid.take() {
        Some(uid) if !uid.is_empty() => uid,
        _ => return Err(RequestError::NoUid),
    };

    let mut summary = Summary {
        uid: uid.clone().into_owned(),
        namespace: request.namespace.as_deref().unwrap_or_default().to_owned(),
        name: request.name.as_deref().unwrap_or_default().to_owned(),
        operation: match request.operation.as_deref().unwrap_or_default() {
            "CREATE" => Cow::Borrowed("CREATE"),
            "UPDATE" => Cow::Borrowed("UPDATE"),
            "DELETE" => Cow::Borrowed("DELETE"),
            "CONNECT" => Cow::Borrowed("CONNECT"),
            other => Cow::Owned(other.to_owned()),
        },
        sub_resource: request
            .sub_resource
            .as_deref()
            .unwrap_or_default()
            .to_owned(),
        ..Summary::default()
    };
    if let Some(object) = &request.object {
        summary.unknown_fields = object
            .issues
            .unknown_fields()
            .iter()
            .take(MAX_SUMMARY_UNKNOWN_FIELDS)
            .map(|issue| {
                crate::admission::answer::gotext::clip(&issue.path, MAX_UNKNOWN_FIELD_BYTES)
                    .0
                    .to_owned()
            })
            .collect();
    }
    if summary.name.is_empty() {
        summary.name = object_name(request.object.as_deref().or(request.old_object.as_deref()))
            .map(Cow::into_owned)
            .unwrap_or_default();
    }

    let dry_run = request.dry_run == Some(true);
    // The request is judged by value: the mutating webhook patches from the object's text.
    let judged = catch_unwind(AssertUnwindSafe(|| judge(request, &uid, webhook, opts)));
    let mut response = match judged {
        Ok(response) => response,
        Err(_) => {
            summary.panicked = true;
            Response::deny(
                &uid,
                failure(
                    500,
                    "InternalError",
                    "internal error while judging the review: the webhook refuses it (fail closed)"
                        .to_owned(),
                ),
            )
        }
    };

    if let Some(status) = response.status.as_ref().filter(|_| !response.allowed) {
        summary.code = status.code;
        // The last cause of a cut list counts the rest; it has no reason of its own.
        summary.causes = match &status.details {
            Some(d) if !d.causes.is_empty() => d
                .causes
                .iter()
                .filter(|c| !c.reason.is_empty())
                .map(|c| c.reason.clone())
                .collect(),
            _ => vec![status.reason.clone()],
        };
    }
    summary.would_deny = response.enforce(opts.enforcement);
    summary.allowed = response.allowed;
    summary.warnings = response.warnings.len();

    let body = answer::write(&api_version, &response);
    let admitted = response
        .admitted
        .take()
        .filter(|_| response.allowed && !summary.panicked)
        .map(|admitted| Admitted {
            dry_run,
            ..admitted
        });
    Ok(Reviewed {
        body,
        summary,
        admitted,
    })
}

/// The object's `metadata.name`, when it is a string.
fn claim_name<'a>(object: &Claim<'a>) -> Option<Cow<'a, str>> {
    Some(object.metadata.value()?.name.str()?.decode())
}

/// The object's `metadata.name`, or nothing.
fn object_name<'a>(object: Option<&Walked<'a>>) -> Option<Cow<'a, str>> {
    claim_name(&object?.claim)
}

/// Judges a well-formed request; pure, and panics only on a bug (caught by the caller).
fn judge<'a>(
    request: Request<'a>,
    uid: &'a str,
    webhook: Webhook,
    opts: &'a Options,
) -> Response<'a> {
    if let Some(status) = wrong_resource(&request) {
        return Response::deny(uid, status);
    }
    let operation = request.operation.as_deref().unwrap_or_default();
    match operation {
        "CREATE" | "UPDATE" => {}
        "DELETE" | "CONNECT" => return Response::allow(uid),
        other => {
            let msg = format!(
                "operation {other:?} is not supported: expected CREATE, UPDATE, DELETE or CONNECT"
            );
            return Response::deny(uid, failure(400, "BadRequest", msg));
        }
    }
    let Some(object) = request.object else {
        let msg = format!("request.object is required for {operation}");
        return Response::deny(uid, failure(400, "BadRequest", msg));
    };
    let old = request
        .old_object
        .as_deref()
        .filter(|_| operation == "UPDATE");
    if operation == "UPDATE" && old.is_none() {
        let msg = "request.oldObject is required for UPDATE".to_owned();
        return Response::deny(uid, failure(400, "BadRequest", msg));
    }

    match webhook {
        Webhook::Validate => {
            // The claim under review, never in conflict with itself.
            let name = match request.name.as_deref() {
                Some(name) if !name.is_empty() => Cow::Borrowed(name),
                _ => claim_name(&object.claim).unwrap_or_default(),
            };
            let claimant = Claimant {
                namespace: request.namespace.as_deref().unwrap_or_default(),
                name: &name,
            };
            validate(uid, &object, old, opts, &claimant)
        }
        Webhook::Mutate => mutate(uid, *object, operation == "CREATE", opts),
    }
}

/// The `/mutate` answer: allowed, with the defaults as a JSON Patch when anything changes.
/// It never denies a decodable review; an object it cannot read is left to validation.
fn mutate<'a>(uid: &'a str, object: Walked<'a>, create: bool, opts: &'a Options) -> Response<'a> {
    let mut response = Response::allow(uid);
    if object.too_deep {
        return response;
    }
    let networks = opts.check_networks.as_deref();
    let ops = defaulting::patch(&object.claim, create, &opts.defaults, networks);
    if ops.is_empty() {
        return response;
    }
    // A patch that does not apply to its own object is a bug: refuse rather than send it.
    if !defaulting::applies(&ops, &object.claim) {
        let msg = "internal error: the defaults do not apply to the object; refused (fail closed)";
        return Response::deny(uid, failure(500, "InternalError", msg.to_owned()));
    }
    response.patch = Some(ops);
    response
}

/// Denies with 400 a review for any resource other than IPAMClaim `k8s.cni.cncf.io/v1alpha1`.
fn wrong_resource(request: &Request<'_>) -> Option<Status> {
    let kind_ok = request
        .kind
        .as_ref()
        .is_some_and(|k| k.group == GROUP && k.version == VERSION && k.kind == KIND);
    let resource_ok = request
        .resource
        .as_ref()
        .is_none_or(|r| r.group == GROUP && r.version == VERSION && r.kind == PLURAL);
    if kind_ok && resource_ok {
        return None;
    }
    let got = match (&request.kind, &request.resource) {
        (Some(k), _) if !kind_ok => format!("kind {}", gvk_text(k)),
        (_, Some(r)) => format!("resource {}", gvk_text(r)),
        _ => "a request without kind".to_owned(),
    };
    let msg =
        format!("this webhook admits only {KIND} {GROUP}/{VERSION} (resource {PLURAL}), not {got}");
    Some(failure(400, "BadRequest", msg))
}

fn gvk_text(gvk: &GroupVersion<'_>) -> String {
    let GroupVersion {
        group,
        version,
        kind,
    } = gvk;
    if group.is_empty() {
        format!("{version} {kind}")
    } else {
        format!("{group}/{version} {kind}")
    }
}

/// The `/validate` verdict on CREATE and UPDATE.
fn validate<'a>(
    uid: &'a str,
    object: &Walked<'a>,
    old: Option<&Walked<'a>>,
    opts: &Options,
    claimant: &Claimant<'_>,
) -> Response<'a> {
    for (walked, name) in [(Some(object), "object"), (old, "oldObject")] {
        if walked.is_some_and(|w| w.too_deep) {
            let e = decode::StrictError::TooDeep {
                max: decode::MAX_DEPTH,
            };
            let msg = format!("request.{name} cannot be decoded: {e}");
            return Response::deny(uid, failure(400, "BadRequest", msg));
        }
    }
    let warnings = match strict_fields(uid, object, opts) {
        Ok(warnings) => warnings,
        Err(denied) => return *denied,
    };
    let lookups = Lookups {
        claimant,
        holders: opts.unique_addresses.as_deref(),
        networks: opts.check_networks.as_deref(),
    };
    judge_object(
        uid,
        &object.claim,
        old.map(|o| &o.claim),
        warnings,
        &lookups,
    )
}

/// What the cluster-aware rules look up, each `None` when its flag is off: then nothing of it
/// runs.
struct Lookups<'l> {
    /// The claim under review.
    claimant: &'l Claimant<'l>,
    /// `--unique-addresses` (DESIGN §9).
    holders: Option<&'l dyn conflicts::Holders>,
    /// `--check-networks` (DESIGN §10).
    networks: Option<&'l dyn networks::Networks>,
}

/// The rules of DESIGN §4 on a decoded object, then those of §9 and §10 that are on, with the
/// warnings gathered so far: every cause joins one verdict, capped as one.
fn judge_object<'a>(
    uid: &'a str,
    object: &Claim<'a>,
    old: Option<&Claim<'a>>,
    mut warnings: Warnings,
    lookups: &Lookups<'_>,
) -> Response<'a> {
    if !object.is_object() {
        let msg = "request.object must be a JSON object".to_owned();
        return Response::deny(uid, failure(400, "BadRequest", msg));
    }

    let mut verdict = rules::validate(object, old);
    let admitted = lookups
        .holders
        .and_then(|holders| conflicts::check(holders, lookups.claimant, object, old, &mut verdict));
    if let Some(networks) = lookups.networks {
        let namespace = lookups.claimant.namespace;
        networks::check(
            networks,
            namespace,
            object,
            old,
            &mut verdict,
            &mut warnings,
        );
    }
    for e in verdict.ratcheted.iter() {
        warnings.push_with(|| e.to_string());
    }
    warnings.leave_out(verdict.ratcheted.more);
    if verdict.errors.is_empty() {
        let mut response = Response::allow(uid);
        response.warnings = warnings;
        response.admitted = admitted;
        return response;
    }
    let name = claim_name(object).unwrap_or_default();
    let (status, unlisted) = verdict.errors.to_invalid_status_listed(GROUP, KIND, &name);
    let mut response = Response::deny_verdict(uid, status);
    response.unlisted = unlisted;
    response.warnings = warnings;
    // `--enforcement Warn|Audit` may admit it yet.
    response.admitted = admitted;
    response
}

/// Strict field validation of the object: under `Strict` a denial, under `Warn` the warnings
/// to add, under `Ignore` nothing (the walk looked for no issues). Either lists the first
/// errors, in the API server's order, up to the caps of [`caps`] and counts the rest.
fn strict_fields<'a>(
    uid: &'a str,
    object: &Walked<'_>,
    opts: &Options,
) -> Result<Warnings, Box<Response<'a>>> {
    let issues = &object.issues;
    let mut warnings = Warnings::new();
    if opts.field_validation == FieldValidation::Ignore || issues.is_empty() {
        return Ok(warnings);
    }
    // The walk kept the first errors in full; the others it only counted.
    let mut kept = 0;
    if opts.field_validation == FieldValidation::Warn {
        for issue in issues.first() {
            kept += 1;
            warnings.push_with(|| issue_text(issue));
        }
        warnings.leave_out(issues.len() - kept);
        return Ok(warnings);
    }
    let mut room = Listing::causes();
    let mut texts = Vec::new();
    for issue in issues.first() {
        kept += 1;
        if room.is_full() {
            room.leave_out(1);
            continue;
        }
        let text = issue_text(issue);
        if room.admit(caps::json_len(&text)) {
            texts.push(text);
        }
    }
    room.leave_out(issues.len() - kept);
    if room.left_out() > 0 {
        texts.push(caps::and_more(room.left_out(), "error"));
    }
    let msg = format!(
        "{KIND} in version \"{VERSION}\" cannot be handled as a {KIND}: strict decoding error: {}",
        texts.join(", ")
    );
    Err(Box::new(Response::deny_verdict(
        uid,
        failure(400, "BadRequest", msg),
    )))
}

/// One field-validation error as the API server words it; an unknown key can be megabytes
/// long: it is named, but not whole.
fn issue_text(issue: &decode::Issue) -> String {
    let text = issue.to_string();
    match gotext::clip(&text, 2 * gotext::MAX_ECHOED_BYTES) {
        (whole, false) => whole.to_owned(),
        (head, true) => {
            // The walk keeps at most the start of a long path; the length is the whole one's.
            let whole = text.len() - issue.path.len() + issue.path_len;
            format!("{head}... ({whole} bytes, truncated)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::options::Enforcement;
    use serde_json::Value;

    const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"k8s.cni.cncf.io","version":"v1alpha1","kind":"IPAMClaim"},"resource":{"group":"k8s.cni.cncf.io","version":"v1alpha1","resource":"ipamclaims"},"operation":"CREATE","userInfo":{},"object":{"metadata":{"name":"a"},"spec":{"network":"n","interface":"eth0"}}}}"#;

    fn panicking_judge<'a>(_: Request<'a>, _: &'a str, _: Webhook, _: &'a Options) -> Response<'a> {
        panic!("a bug while judging");
    }

    #[test]
    fn a_panic_while_judging_is_denied_with_500_not_admitted() {
        let reviewed = review_with(
            REVIEW.as_bytes(),
            Webhook::Validate,
            &Options::default(),
            panicking_judge,
        )
        .expect("still answered");
        assert!(reviewed.summary.panicked);
        let v: Value = serde_json::from_slice(&reviewed.body).unwrap();
        assert_eq!(v["response"]["uid"], "u1");
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 500);
    }

    #[test]
    fn enforcement_never_softens_an_internal_failure() {
        let opts = Options {
            enforcement: Enforcement::Warn,
            ..Options::default()
        };
        let reviewed = review_with(REVIEW.as_bytes(), Webhook::Validate, &opts, panicking_judge)
            .expect("still answered");
        assert!(!reviewed.summary.allowed);
    }

    #[test]
    fn refuses_bodies_that_cannot_be_answered() {
        let opts = Options::default();
        let cases = [
            ("not json", "not a valid AdmissionReview"),
            ("{}", "apiVersion"),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
                "no request",
            ),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#,
                "no uid",
            ),
            (
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"x"}}"#,
                "not AdmissionReview",
            ),
        ];
        for (body, expected) in cases {
            let err = review(body.as_bytes(), Webhook::Validate, &opts).unwrap_err();
            assert!(err.to_string().contains(expected), "{body}: {err}");
        }
    }

    // Regression: members no rule reads are skipped without decoding their strings, so the body
    // is checked as UTF-8 as a whole; invalid bytes anywhere refuse it.
    #[test]
    fn refuses_invalid_utf8_even_in_a_member_that_is_skipped() {
        // `BAD` in `body` replaced by bytes that are not UTF-8.
        let spoiled = |body: String| {
            let mut bytes = body.into_bytes();
            let at = bytes.windows(3).position(|w| w == b"BAD").expect("marker");
            bytes[at..at + 3].copy_from_slice(b"\xff\xfe\xfd");
            bytes
        };
        let in_managed_fields = spoiled(REVIEW.replace(
            r#""metadata":{"name":"a"}"#,
            r#""metadata":{"name":"a","managedFields":[{"manager":"BAD"}]}"#,
        ));
        // The user info is never decoded at all.
        let in_user_info =
            spoiled(REVIEW.replace(r#""userInfo":{}"#, r#""userInfo":{"username":"BAD"}"#));
        for body in [in_managed_fields, in_user_info] {
            for webhook in [Webhook::Validate, Webhook::Mutate] {
                let err = review(&body, webhook, &Options::default()).unwrap_err();
                assert!(matches!(err, RequestError::NotAReview(_)), "{err}");
            }
        }
    }

    #[test]
    fn validating_answers_never_carry_a_patch_even_when_defaults_apply() {
        let opts = Options {
            defaults: defaulting::Defaults {
                network_label: Some("k8s.cni.cncf.io/network".to_owned()),
                ..defaulting::Defaults::default()
            },
            ..Options::default()
        };
        let body = REVIEW;
        let reviewed = review(body.as_bytes(), Webhook::Validate, &opts).unwrap();
        let v: Value = serde_json::from_slice(&reviewed.body).unwrap();
        assert!(v["response"].get("patch").is_none());
        assert!(v["response"].get("patchType").is_none());
        let mutated = review(body.as_bytes(), Webhook::Mutate, &opts).unwrap();
        let m: Value = serde_json::from_slice(&mutated.body).unwrap();
        assert_eq!(m["response"]["patchType"], "JSONPatch");
    }

    // --- caps on what an answer lists ---

    /// A CREATE review of a claim whose `status.ips` is `ips`, and whose `spec` has `extra`
    /// keys besides its own.
    fn review_of(ips: Vec<String>, extra: &[(String, Value)]) -> Vec<u8> {
        let mut review: Value = serde_json::from_str(REVIEW).unwrap();
        review["request"]["object"]["status"] = serde_json::json!({ "ips": ips });
        for (k, v) in extra {
            review["request"]["object"]["spec"][k] = v.clone();
        }
        serde_json::to_vec(&review).unwrap()
    }

    fn invalid_ips(n: usize) -> Vec<u8> {
        review_of((0..n).map(|i| format!("x{i}")).collect(), &[])
    }

    fn unknown_keys(n: usize) -> Vec<u8> {
        let keys: Vec<(String, Value)> =
            (0..n).map(|i| (format!("k{i}"), Value::from(i))).collect();
        review_of(Vec::new(), &keys)
    }

    fn answer(body: &[u8], opts: &Options) -> (Value, Summary) {
        let reviewed = review(body, Webhook::Validate, opts).expect("answered");
        assert!(
            reviewed.body.len() <= 64 * 1024,
            "answer of {} bytes",
            reviewed.body.len()
        );
        (
            serde_json::from_slice(&reviewed.body).unwrap(),
            reviewed.summary,
        )
    }

    fn with(field_validation: FieldValidation, enforcement: Enforcement) -> Options {
        Options {
            field_validation,
            enforcement,
            ..Options::default()
        }
    }

    /// The parts of an answer that make its verdict.
    fn verdict(answer: &Value) -> (Value, Value, Value) {
        let r = &answer["response"];
        (
            r["allowed"].clone(),
            r["status"]["code"].clone(),
            r["status"]["reason"].clone(),
        )
    }

    #[test]
    fn lists_exactly_100_causes_and_counts_the_rest() {
        let (a, summary) = answer(&invalid_ips(10_000), &Options::default());
        let status = &a["response"]["status"];
        let causes = status["details"]["causes"].as_array().unwrap();
        assert_eq!(causes.len(), caps::MAX_CAUSES + 1);
        assert_eq!(causes[0]["field"], "status.ips[0]");
        assert_eq!(causes[99]["field"], "status.ips[99]");
        assert_eq!(
            causes[100],
            serde_json::json!({"message": "and 9900 more errors"}),
            "the last cause counts the rest, with no reason and no field"
        );
        let message = status["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "IPAMClaim.k8s.cni.cncf.io \"a\" is invalid: [status.ips[0]: Invalid value: \"x0\""
            ),
            "{message}"
        );
        assert!(
            message.contains("status.ips[99]: Invalid value: \"x99\""),
            "{message}"
        );
        assert!(!message.contains("status.ips[100]"), "{message}");
        assert!(message.ends_with(", and 9900 more errors]"), "{message}");
        // Metrics and logs count the causes listed, not the line counting the rest.
        assert_eq!(summary.causes.len(), caps::MAX_CAUSES);
        assert!(summary.causes.iter().all(|c| c == "FieldValueInvalid"));
    }

    #[test]
    fn lists_100_errors_whole_and_words_one_more_in_the_singular() {
        let (a, _) = answer(&invalid_ips(100), &Options::default());
        let causes = a["response"]["status"]["details"]["causes"]
            .as_array()
            .unwrap();
        assert_eq!(causes.len(), 100);
        assert!(causes.iter().all(|c| c["reason"] == "FieldValueInvalid"));
        assert!(a["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .ends_with("(e.g. 10.9.8.7/24 or 2001:db8::1/64)]"));
        let (a, _) = answer(&invalid_ips(101), &Options::default());
        let status = &a["response"]["status"];
        assert_eq!(
            status["details"]["causes"][100]["message"],
            "and 1 more error"
        );
        assert!(status["message"]
            .as_str()
            .unwrap()
            .ends_with(", and 1 more error]"));
    }

    #[test]
    fn a_review_with_10000_errors_is_judged_exactly_like_one_with_1() {
        let modes = [
            with(FieldValidation::Strict, Enforcement::Deny),
            with(FieldValidation::Strict, Enforcement::Warn),
            with(FieldValidation::Strict, Enforcement::Audit),
            with(FieldValidation::Warn, Enforcement::Deny),
            with(FieldValidation::Ignore, Enforcement::Deny),
        ];
        for opts in &modes {
            for (one, many) in [
                (invalid_ips(1), invalid_ips(10_000)),
                (unknown_keys(1), unknown_keys(10_000)),
            ] {
                let (a1, s1) = answer(&one, opts);
                let (a2, s2) = answer(&many, opts);
                assert_eq!(verdict(&a1), verdict(&a2), "{opts:?}");
                assert_eq!(
                    (s1.allowed, s1.code, s1.would_deny),
                    (s2.allowed, s2.code, s2.would_deny),
                    "{opts:?}"
                );
            }
        }
        // And the verdicts are the ones each mode gives.
        let (a, _) = answer(&invalid_ips(10_000), &modes[0]);
        assert_eq!(
            verdict(&a),
            (Value::from(false), Value::from(422), Value::from("Invalid"))
        );
        let (a, _) = answer(&unknown_keys(10_000), &modes[0]);
        assert_eq!(
            verdict(&a),
            (
                Value::from(false),
                Value::from(400),
                Value::from("BadRequest")
            )
        );
        let (a, _) = answer(&unknown_keys(10_000), &modes[3]);
        assert_eq!(a["response"]["allowed"], true);
    }

    #[test]
    fn strict_denial_lists_100_field_errors_and_counts_the_rest() {
        let strict = with(FieldValidation::Strict, Enforcement::Deny);
        let (a, _) = answer(&unknown_keys(10_000), &strict);
        let message = a["response"]["status"]["message"].as_str().unwrap();
        let listed = message.matches("unknown field \"spec.").count();
        assert_eq!(listed, caps::MAX_CAUSES, "{message}");
        assert!(
            message.contains("strict decoding error: unknown field \"spec."),
            "{message}"
        );
        assert!(message.ends_with(", and 9900 more errors"), "{message}");
    }

    /// A CREATE review whose `spec` holds `unknown` keys (`u0`, `u1`, ...) and whose
    /// annotations repeat `duplicated` keys (`d0`, `d1`, ...) three times each, written as text.
    fn unknown_and_duplicate_keys(unknown: usize, duplicated: usize) -> Vec<u8> {
        let unknowns: String = (0..unknown).map(|i| format!(r#","u{i}":1"#)).collect();
        let duplicates: Vec<String> = (0..duplicated)
            .flat_map(|i| std::iter::repeat_n(format!(r#""d{i}":"x""#), 3))
            .collect();
        REVIEW
            .replace(
                r#""interface":"eth0"}"#,
                &format!(r#""interface":"eth0"{unknowns}}}"#),
            )
            .replace(
                r#""metadata":{"name":"a"}"#,
                &format!(
                    r#""metadata":{{"name":"a","annotations":{{{}}}}}"#,
                    duplicates.join(",")
                ),
            )
            .into_bytes()
    }

    // Issue 16: the API server's order decides which errors the cap keeps: duplicates first,
    // each path once, then the unknown fields sorted.
    #[test]
    fn strict_denial_lists_the_first_errors_in_the_api_servers_order() {
        let strict = with(FieldValidation::Strict, Enforcement::Deny);
        let (a, summary) = answer(&unknown_and_duplicate_keys(500, 60), &strict);
        let message = a["response"]["status"]["message"].as_str().unwrap();
        let (_, errors) = message.split_once("strict decoding error: ").unwrap();
        let errors: Vec<&str> = errors.split(", ").collect();
        assert_eq!(errors.len(), caps::MAX_CAUSES + 1, "{message}");
        for (i, e) in errors[..60].iter().enumerate() {
            assert_eq!(*e, format!("duplicate field \"metadata.annotations.d{i}\""));
        }
        let mut sorted: Vec<String> = (0..500).map(|i| format!("u{i}")).collect();
        sorted.sort();
        for (e, key) in errors[60..100].iter().zip(&sorted) {
            assert_eq!(*e, format!("unknown field \"spec.{key}\""));
        }
        assert_eq!(errors[100], format!("and {} more errors", 60 + 500 - 100));
        // The drift summary names the first unknown fields, whatever comes before them.
        let first: Vec<String> = sorted[..MAX_SUMMARY_UNKNOWN_FIELDS]
            .iter()
            .map(|k| format!("spec.{k}"))
            .collect();
        assert_eq!(summary.unknown_fields, first);
        let (_, summary) = answer(&unknown_and_duplicate_keys(20, 300), &strict);
        assert_eq!(summary.unknown_fields.len(), MAX_SUMMARY_UNKNOWN_FIELDS);
    }

    #[test]
    fn warn_lists_the_first_errors_in_the_api_servers_order() {
        let opts = with(FieldValidation::Warn, Enforcement::Deny);
        let (a, _) = answer(&unknown_and_duplicate_keys(3, 150), &opts);
        let warnings = a["response"]["warnings"].as_array().unwrap();
        let last = warnings.last().unwrap().as_str().unwrap();
        let listed = warnings.len() - 1;
        assert_eq!(last, format!("and {} more warnings", 150 + 3 - listed));
        for (i, w) in warnings[..listed].iter().enumerate() {
            assert_eq!(w, &format!("duplicate field \"metadata.annotations.d{i}\""));
        }
        let (a, _) = answer(&unknown_and_duplicate_keys(3, 2), &opts);
        assert_eq!(
            a["response"]["warnings"],
            serde_json::json!([
                "duplicate field \"metadata.annotations.d0\"",
                "duplicate field \"metadata.annotations.d1\"",
                "unknown field \"spec.u0\"",
                "unknown field \"spec.u1\"",
                "unknown field \"spec.u2\""
            ])
        );
    }

    #[test]
    fn warn_lists_at_most_100_warnings_and_counts_the_rest() {
        let opts = with(FieldValidation::Warn, Enforcement::Deny);
        let (a, summary) = answer(&unknown_keys(10_000), &opts);
        let warnings = a["response"]["warnings"].as_array().unwrap();
        assert_eq!(warnings.len(), caps::MAX_WARNINGS + 1);
        assert_eq!(warnings[100], "and 9900 more warnings");
        assert_eq!(summary.warnings, warnings.len());
        // Long warnings stop at the bytes first.
        let long: Vec<(String, Value)> = (0..1000)
            .map(|i| (format!("{i:0>100}"), Value::from(1)))
            .collect();
        let (a, _) = answer(&review_of(Vec::new(), &long), &opts);
        let warnings = a["response"]["warnings"].as_array().unwrap();
        let bytes: usize = warnings.iter().map(|w| w.as_str().unwrap().len()).sum();
        assert!(bytes <= caps::MAX_WARNING_BYTES + 64, "{bytes}");
        let last = warnings.last().unwrap().as_str().unwrap();
        assert_eq!(
            last,
            format!("and {} more warnings", 1000 - (warnings.len() - 1))
        );
    }

    #[test]
    fn enforcement_warn_and_audit_count_the_errors_left_out() {
        let (a, summary) = answer(
            &invalid_ips(10_000),
            &with(FieldValidation::Strict, Enforcement::Warn),
        );
        assert!(summary.would_deny);
        let warnings = a["response"]["warnings"].as_array().unwrap();
        assert!(warnings.len() <= caps::MAX_WARNINGS + 1);
        assert_eq!(warnings[0], "status.ips[0]: Invalid value: \"x0\": must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)");
        let listed = warnings.len() - 1;
        assert_eq!(
            warnings[listed],
            format!("and {} more warnings", 10_000 - listed)
        );

        let (a, _) = answer(
            &invalid_ips(10_000),
            &with(FieldValidation::Strict, Enforcement::Audit),
        );
        let causes = a["response"]["auditAnnotations"]["causes"]
            .as_str()
            .unwrap();
        assert!(
            causes.starts_with("status.ips[0]: Invalid value: \"x0\""),
            "{causes}"
        );
        assert!(causes.ends_with("; and 9900 more errors"), "{causes}");
    }

    #[test]
    fn long_echoed_values_keep_the_answer_small() {
        // Values that escape badly (quotes and control characters) and are long enough to be
        // cut: 100 of them would pass 64 KiB; the bytes cap lists fewer.
        let nasty = |i: usize| format!("{i}{}", "\"\u{1}".repeat(300));
        let (a, _) = answer(
            &review_of((0..1000).map(nasty).collect(), &[]),
            &Options::default(),
        );
        let causes = a["response"]["status"]["details"]["causes"]
            .as_array()
            .unwrap();
        assert!(causes.len() < caps::MAX_CAUSES, "{}", causes.len());
        assert_eq!(a["response"]["allowed"], false);
        assert!(causes.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with("and "));
    }

    // --- --check-networks (DESIGN §10) ---

    /// A CREATE review in `ns1` of a claim on `tenantred` with `interface`, requesting
    /// `requests` and holding `ips`.
    fn on_tenantred(interface: &str, requests: &[&str], ips: &[String]) -> Vec<u8> {
        let mut review: Value = serde_json::from_str(REVIEW).unwrap();
        review["request"]["namespace"] = "ns1".into();
        let object = &mut review["request"]["object"];
        object["spec"] = serde_json::json!({
            "network": "tenantred", "interface": interface, "ipRequests": requests,
        });
        object["status"] = serde_json::json!({ "ips": ips });
        serde_json::to_vec(&review).unwrap()
    }

    /// tenantred (10.128.20.0/24, fd10:128:20::/64) in ns1, counting the misfits it is told of.
    #[derive(Debug)]
    struct Counting(
        crate::admission::rules::testing::FixedNetworks,
        std::sync::Mutex<Vec<networks::MisfitReason>>,
    );

    impl networks::Networks for Counting {
        fn network(&self, name: &str) -> Option<std::sync::Arc<networks::Network>> {
            self.0.network(name)
        }

        fn misfit(&self, reason: networks::MisfitReason) {
            self.1.lock().unwrap().push(reason);
        }
    }

    /// `--check-networks` knowing tenantred, and the view, to read what it counted.
    fn checking_with(enforcement: Enforcement) -> (Options, std::sync::Arc<Counting>) {
        let networks = std::sync::Arc::new(Counting(
            crate::admission::rules::testing::FixedNetworks(vec![
                crate::admission::rules::testing::layer2(
                    "tenantred",
                    &["ns1"],
                    &["10.128.20.0/24", "fd10:128:20::/64"],
                    &["10.128.20.0/29"],
                ),
            ]),
            std::sync::Mutex::default(),
        ));
        let opts = Options {
            check_networks: Some(networks.clone()),
            ..with(FieldValidation::Strict, enforcement)
        };
        (opts, networks)
    }

    fn checking(enforcement: Enforcement) -> Options {
        checking_with(enforcement).0
    }

    fn causes(answer: &Value) -> Vec<String> {
        answer["response"]["status"]["details"]["causes"]
            .as_array()
            .map(|causes| {
                causes
                    .iter()
                    .map(|c| format!("{}: {}", c["field"].as_str().unwrap_or(""), c["message"]))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn without_check_networks_an_address_is_judged_as_text_only() {
        let misfit = on_tenantred("eth0", &["10.9.0.5/24"], &[]);
        let (a, _) = answer(&misfit, &Options::default());
        assert_eq!(a["response"]["allowed"], true, "{a}");
        assert!(a["response"].get("warnings").is_none(), "{a}");
        let (opts, view) = checking_with(Enforcement::Deny);
        let (a, _) = answer(&misfit, &opts);
        assert_eq!(a["response"]["allowed"], false, "{a}");
        assert_eq!(a["response"]["status"]["code"], 422);
        assert_eq!(
            *view.1.lock().unwrap(),
            [networks::MisfitReason::NotInSubnets]
        );
    }

    #[test]
    fn a_misfit_joins_every_other_cause_of_the_review_in_one_denial() {
        let body = on_tenantred(
            "eth0:1",
            &["10.128.20.3/24"],
            &["10.128.20.9/16".to_owned(), "winner".to_owned()],
        );
        let (a, summary) = answer(&body, &checking(Enforcement::Deny));
        assert_eq!(
            causes(&a),
            [
                "spec.interface: \"Invalid value: \\\"eth0:1\\\": interface name contains / or : or whitespace characters\"",
                "status.ips[1]: \"Invalid value: \\\"winner\\\": must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)\"",
                "spec.ipRequests[0]: \"Invalid value: \\\"10.128.20.3/24\\\": in excludeSubnets of network \\\"tenantred\\\" (10.128.20.0/29)\"",
                "status.ips[0]: \"Invalid value: \\\"10.128.20.9/16\\\": prefix length differs from its subnet of network \\\"tenantred\\\" (10.128.20.0/24)\"",
            ]
        );
        assert!(summary.causes.iter().all(|c| c == "FieldValueInvalid"));
        assert_eq!(summary.causes.len(), 4);
    }

    #[test]
    fn enforcement_warn_admits_a_misfit_with_its_cause_as_a_warning() {
        let body = on_tenantred("eth0", &["10.9.0.5/24"], &[]);
        let (opts, view) = checking_with(Enforcement::Warn);
        let (a, summary) = answer(&body, &opts);
        assert_eq!(a["response"]["allowed"], true);
        assert!(summary.would_deny);
        assert_eq!(
            a["response"]["warnings"],
            // Cut to 120 characters, as every warning is (DESIGN §6).
            serde_json::json!(["spec.ipRequests[0]: Invalid value: \"10.9.0.5/24\": not in the subnets of network \"tenantred\" (10.128.20.0/24, fd10:128..."])
        );
        assert_eq!(view.1.lock().unwrap().len(), 1, "counted, admitted or not");
    }

    #[test]
    fn misfits_are_capped_with_every_other_cause_and_all_counted() {
        let ips: Vec<String> = (0..10_000)
            .map(|i| format!("10.9.{}.{}/24", i / 250, i % 250 + 1))
            .collect();
        let (opts, view) = checking_with(Enforcement::Deny);
        let (a, _) = answer(&on_tenantred("eth0", &[], &ips), &opts);
        let causes = a["response"]["status"]["details"]["causes"]
            .as_array()
            .unwrap();
        assert_eq!(causes.len(), caps::MAX_CAUSES + 1);
        assert_eq!(causes[100]["message"], "and 9900 more errors");
        let told = view.1.lock().unwrap();
        assert_eq!(told.len(), 10_000, "every misfit counted, listed or not");
        assert!(told
            .iter()
            .all(|r| *r == networks::MisfitReason::NotInSubnets));
    }

    #[test]
    fn mutate_completes_a_bare_address_only_with_check_networks() {
        let mut create: Value =
            serde_json::from_slice(&on_tenantred("eth0", &["10.128.20.77"], &[])).unwrap();
        create["request"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("status");
        let body = serde_json::to_vec(&create).unwrap();
        let patch = |opts: &Options| {
            let reviewed = review(&body, Webhook::Mutate, opts).expect("answered");
            let a: Value = serde_json::from_slice(&reviewed.body).unwrap();
            assert_eq!(a["response"]["allowed"], true);
            a["response"]["patch"].as_str().map(|p| {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
                String::from_utf8(bytes).unwrap()
            })
        };
        assert_eq!(patch(&Options::default()), None);
        assert_eq!(
            patch(&checking(Enforcement::Deny)).as_deref(),
            Some(r#"[{"op":"replace","path":"/spec/ipRequests/0","value":"10.128.20.77/24"}]"#)
        );
    }
}
