//! `replay`: the admission pipeline over captured or hand-written payloads, with no cluster.
//!
//! Inputs are read into documents (AdmissionReviews, or bare IPAMClaims wrapped as CREATE
//! reviews), each document is sent through a [`Transport`] (the pipeline in process, or a
//! running webhook over HTTPS), and the answers are printed as JSON lines or text.

mod existing;
mod input;
mod networks;
mod transport;

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::Value;

use crate::admission::Webhook;

pub use existing::{read_existing, ExistingError};
pub use input::{read_inputs, visit_inputs, Between, Document, Input, InputError};
pub use networks::{read_networks, NetworksError};
pub use transport::{InProcess, Remote, RemoteError, Transport};

/// Which webhook(s) replay runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `/validate` only.
    Validate,
    /// `/mutate` only.
    Mutate,
    /// What the API server does: mutate, then validate the patched object.
    Chain,
}

/// The AdmissionReview answering one document, as the webhook(s) of `mode` answer it.
///
/// `Chain` does what the API server does, through the same transport for both steps, so that
/// a run in process and one against a server print the same bytes: a review that `/validate`
/// refuses to decode (strict field errors) stops there, as the API server would refuse it
/// before any webhook; otherwise `/mutate` runs, the API server's own step between the two
/// webhooks is applied (`between`: on a CREATE of `ipamclaims`, `status` is dropped), and
/// `/validate` judges the object so changed. The answer is the validation verdict carrying
/// the mutation's patch.
pub fn judge(
    review: &[u8],
    mode: Mode,
    between: Between,
    transport: &mut dyn Transport,
) -> Result<Vec<u8>, String> {
    match mode {
        Mode::Validate => transport.send(Webhook::Validate, review),
        Mode::Mutate => transport.send(Webhook::Mutate, review),
        Mode::Chain => chain(review, between, transport),
    }
}

fn chain(
    review: &[u8],
    between: Between,
    transport: &mut dyn Transport,
) -> Result<Vec<u8>, String> {
    let validated = transport.send(Webhook::Validate, review)?;
    let verdict: Value = parse_answer(&validated)?;
    if verdict.pointer("/response/status/reason") == Some(&Value::from("BadRequest")) {
        return Ok(validated);
    }
    let mutated: Value = parse_answer(&transport.send(Webhook::Mutate, review)?)?;
    let patch_b64 = mutated.pointer("/response/patch").and_then(Value::as_str);
    if patch_b64.is_none() && between == Between::Nothing {
        return Ok(validated);
    }
    let mut request: Value =
        serde_json::from_slice(review).map_err(|e| format!("not a JSON review: {e}"))?;
    let object = request
        .pointer_mut("/request/object")
        .ok_or("the mutating webhook patched a review without an object")?;
    if let Some(patch_b64) = patch_b64 {
        let patch_bytes = base64::engine::general_purpose::STANDARD
            .decode(patch_b64)
            .map_err(|e| format!("the mutating webhook sent a patch that is not base64: {e}"))?;
        let patch: json_patch::Patch = serde_json::from_slice(&patch_bytes).map_err(|e| {
            format!("the mutating webhook sent a patch that is not JSON Patch: {e}")
        })?;
        json_patch::patch(object, &patch)
            .map_err(|e| format!("the mutating webhook's patch does not apply: {e}"))?;
    }
    if between == Between::DropStatus {
        if let Some(members) = object.as_object_mut() {
            members.remove("status");
        }
    }
    let changed_review = serde_json::to_vec(&request).map_err(|e| e.to_string())?;

    let mut answer: Value = parse_answer(&transport.send(Webhook::Validate, &changed_review)?)?;
    if let (Some(patch_b64), Some(response)) = (
        patch_b64,
        answer.get_mut("response").and_then(Value::as_object_mut),
    ) {
        response.insert("patch".to_owned(), Value::from(patch_b64));
        response.insert("patchType".to_owned(), Value::from("JSONPatch"));
    }
    serde_json::to_vec(&answer).map_err(|e| e.to_string())
}

fn parse_answer(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("the webhook's answer is not JSON: {e}"))
}

/// What happened to one document.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Where the document came from.
    pub source: String,
    /// Its position in the source, from 1.
    pub index: usize,
    /// Its index in the document's `items` when the document is a `List`.
    pub item: Option<usize>,
    /// The AdmissionReview answer, or why there is none.
    pub answer: Result<Vec<u8>, String>,
}

// === impl Outcome ===

impl Outcome {
    /// Where the document is, as replay prints it (see [`Document::place`]).
    pub fn place(&self) -> String {
        input::place(&self.source, self.index, self.item)
    }

    /// Whether the answer allowed the review (false for an error).
    pub fn allowed(&self) -> Option<bool> {
        /// The one member read of an answer (the rest is skipped, not decoded).
        #[derive(serde::Deserialize)]
        struct Answer {
            response: Option<Verdict>,
        }
        #[derive(serde::Deserialize)]
        struct Verdict {
            allowed: Option<bool>,
        }
        let answer = self.answer.as_ref().ok()?;
        match serde_json::from_slice::<Answer>(answer) {
            Ok(answer) => answer.response?.allowed,
            // An answer of another shape (a member of another type, a repeated key) is read
            // as a tree, the last of repeated keys winning.
            Err(_) => serde_json::from_slice::<Value>(answer)
                .ok()?
                .pointer("/response/allowed")?
                .as_bool(),
        }
    }
}

/// Runs one document through `mode` on `transport`.
pub fn run_one(doc: &Document, mode: Mode, transport: &mut dyn Transport) -> Outcome {
    let outcome = Outcome {
        source: doc.source.clone(),
        index: doc.index,
        item: doc.item,
        answer: match &doc.review {
            Ok(review) => judge(review, mode, doc.between, transport),
            Err(e) => Err(e.clone()),
        },
    };
    transport.settle(outcome.allowed() == Some(true));
    outcome
}

/// Runs every document through `mode` on `transport`; every document is processed, whatever
/// happened to the ones before it.
pub fn run(docs: &[Document], mode: Mode, transport: &mut dyn Transport) -> Vec<Outcome> {
    docs.iter()
        .map(|doc| run_one(doc, mode, transport))
        .collect()
}

/// Tallies of one run, and its exit status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Documents allowed.
    pub allowed: usize,
    /// Documents denied.
    pub denied: usize,
    /// Documents or inputs that could not be read, parsed or sent.
    pub errors: usize,
}

// === impl Tally ===

impl Tally {
    /// Counts outcomes and unreadable inputs.
    pub fn of(outcomes: &[Outcome], input_errors: usize) -> Self {
        let mut t = Tally {
            errors: input_errors,
            ..Tally::default()
        };
        outcomes.iter().for_each(|o| t.add(o));
        t
    }

    /// Counts one outcome.
    pub fn add(&mut self, outcome: &Outcome) {
        match outcome.allowed() {
            Some(true) => self.allowed += 1,
            Some(false) => self.denied += 1,
            None => self.errors += 1,
        }
    }

    /// 0 when every review was allowed, 1 when one was denied, 2 when an input could not be
    /// read, parsed or sent (2 wins over 1).
    pub fn exit_code(&self) -> u8 {
        if self.errors > 0 {
            2
        } else if self.denied > 0 {
            1
        } else {
            0
        }
    }

    /// The one-line summary for stderr.
    pub fn summary(&self) -> String {
        format!(
            "replay: {} documents: {} allowed, {} denied, {} errors",
            self.allowed + self.denied + self.errors,
            self.allowed,
            self.denied,
            self.errors
        )
    }
}

/// `--output json`: the answer line of an outcome (the AdmissionReview as the webhook sent
/// it), or None for an error (reported on stderr instead).
pub fn json_line(outcome: &Outcome) -> Option<String> {
    let answer = outcome.answer.as_ref().ok()?;
    Some(String::from_utf8_lossy(answer).into_owned())
}

/// `--output text`: one line per document, with its causes and warnings indented below.
pub fn text_lines(outcome: &Outcome, doc: Option<&Document>) -> String {
    let place = outcome.place();
    let answer = match &outcome.answer {
        Ok(a) => a,
        Err(e) => return format!("{place} ERROR\n  {e}\n"),
    };
    let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
        return format!("{place} ERROR\n  the answer is not JSON\n");
    };
    let request: Option<Value> = doc
        .and_then(|d| d.review.as_ref().ok())
        .and_then(|r| serde_json::from_slice(r).ok());
    let field = |p: &str| {
        request
            .as_ref()
            .and_then(|r| r.pointer(p))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut name = field("/request/name");
    if name.is_empty() {
        name = field("/request/object/metadata/name");
    }
    let verdict = match answer.pointer("/response/allowed").and_then(Value::as_bool) {
        Some(true) => "ALLOWED",
        _ => "DENIED",
    };
    let mut out = format!(
        "{place} {}/{} {} {verdict}\n",
        field("/request/namespace"),
        name,
        field("/request/operation"),
    );
    let causes = answer
        .pointer("/response/status/details/causes")
        .and_then(Value::as_array);
    match causes {
        Some(causes) if !causes.is_empty() && verdict == "DENIED" => {
            for c in causes {
                let f = c.get("field").and_then(Value::as_str).unwrap_or_default();
                let m = c.get("message").and_then(Value::as_str).unwrap_or_default();
                // A cause without a field (the last of a cut list, `and 9900 more errors`).
                if f.is_empty() {
                    let _ = writeln!(out, "  {m}");
                } else {
                    let _ = writeln!(out, "  {f}: {m}");
                }
            }
        }
        _ if verdict == "DENIED" => {
            let m = answer
                .pointer("/response/status/message")
                .and_then(Value::as_str)
                .unwrap_or("denied without a message");
            let _ = writeln!(out, "  {m}");
        }
        _ => {}
    }
    if let Some(patch) = answer.pointer("/response/patch").and_then(Value::as_str) {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(patch) {
            let _ = writeln!(out, "  patch: {}", String::from_utf8_lossy(&bytes));
        }
    }
    for w in answer
        .pointer("/response/warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "  warning: {}", w.as_str().unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::input::testing::{docs, CLAIM_YAML};
    use super::input::Format;
    use super::*;

    fn verdict(doc: &Document, mode: Mode) -> Value {
        let mut t = InProcess::default();
        let review = doc.review.as_ref().expect("readable");
        serde_json::from_slice(&judge(review, mode, doc.between, &mut t).expect("answered"))
            .expect("json")
    }

    #[test]
    fn wraps_a_bare_claim_as_a_create_in_its_namespace() {
        let d = docs(CLAIM_YAML, Format::Yaml);
        assert_eq!(d.len(), 1);
        let review: Value = serde_json::from_slice(d[0].review.as_ref().unwrap()).unwrap();
        assert_eq!(review["request"]["operation"], "CREATE");
        assert_eq!(review["request"]["namespace"], "ns1");
        assert_eq!(review["request"]["name"], "vm-a.tenantred");
        assert_eq!(verdict(&d[0], Mode::Chain)["response"]["allowed"], true);
    }

    #[test]
    fn finds_a_duplicate_key_in_yaml() {
        let yaml = CLAIM_YAML.replace(
            "  network: tenantred\n",
            "  network: tenantred\n  network: blue\n",
        );
        let d = docs(&yaml, Format::Yaml);
        let v = verdict(&d[0], Mode::Chain);
        assert_eq!(v["response"]["allowed"], false);
        let msg = v["response"]["status"]["message"].as_str().unwrap();
        assert!(msg.contains("duplicate field \"spec.network\""), "{msg}");
    }

    #[test]
    fn reads_json_lines_and_keeps_duplicate_keys() {
        let line = r#"{"apiVersion":"k8s.cni.cncf.io/v1alpha1","kind":"IPAMClaim","metadata":{"name":"a"},"spec":{"network":"n","network":"m","interface":"eth0"}}"#;
        let d = docs(&format!("{line}\n{line}\n"), Format::Json);
        assert_eq!(d.len(), 2);
        let v = verdict(&d[1], Mode::Validate);
        assert_eq!(v["response"]["status"]["code"], 400);
    }

    /// A review of `operation` on `sub_resource` whose object is `CLAIM_YAML` with `status`.
    fn review_with_status(operation: &str, sub_resource: &str, status: Value) -> String {
        let claim: Value = yaml_serde::from_str(CLAIM_YAML).unwrap();
        let mut object = claim.clone();
        object["status"] = status;
        let old = if operation == "UPDATE" {
            claim
        } else {
            Value::Null
        };
        serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u1",
                "kind": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "kind": "IPAMClaim"},
                "resource": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "resource": "ipamclaims"},
                "subResource": sub_resource,
                "namespace": "ns1",
                "name": "vm-a.tenantred",
                "operation": operation,
                "userInfo": {},
                "object": object,
                "oldObject": old,
            }
        })
        .to_string()
    }

    #[test]
    fn chain_admits_a_non_canonical_address_in_canonical_form() {
        let status = serde_json::json!({"ips": ["2001:DB8::1/64"]});
        let review = review_with_status("UPDATE", "status", status);
        let d = docs(&review, Format::Json);
        assert_eq!(d[0].between, Between::Nothing);
        assert_eq!(verdict(&d[0], Mode::Validate)["response"]["allowed"], false);
        let v = verdict(&d[0], Mode::Chain);
        assert_eq!(v["response"]["allowed"], true, "{v}");
        assert_eq!(v["response"]["patchType"], "JSONPatch");
    }

    /// Regression (issue 26): KubeVirt's create carries `"status":{"ips":null}`, which the API
    /// server drops between the two webhooks; chain does the same, and no patch is made.
    #[test]
    fn chain_drops_status_of_a_create_review_as_the_api_server_does() {
        let review = review_with_status("CREATE", "", serde_json::json!({"ips": null}));
        let d = docs(&review, Format::Json);
        assert_eq!(d[0].between, Between::DropStatus);
        assert_eq!(verdict(&d[0], Mode::Validate)["response"]["allowed"], false);
        let v = verdict(&d[0], Mode::Chain);
        assert_eq!(v["response"]["allowed"], true, "{v}");
        assert!(v["response"].get("patch").is_none(), "{v}");
    }

    /// A bare claim stands for the claim as stored: its status is judged (and, on a CREATE,
    /// not defaulted).
    #[test]
    fn chain_judges_a_bare_claim_with_its_status() {
        let yaml = format!("{CLAIM_YAML}status:\n  ips: [\"2001:DB8::1/64\"]\n");
        let d = docs(&yaml, Format::Yaml);
        assert_eq!(d[0].between, Between::Nothing);
        let v = verdict(&d[0], Mode::Chain);
        assert_eq!(v["response"]["allowed"], false, "{v}");
        let message = v["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(r#"must be in canonical form ("2001:db8::1/64")"#),
            "{message}"
        );
    }

    #[test]
    fn exit_code_prefers_errors_over_denials() {
        let t = Tally {
            allowed: 1,
            denied: 1,
            errors: 1,
        };
        assert_eq!(t.exit_code(), 2);
        assert_eq!(
            Tally {
                allowed: 1,
                denied: 1,
                errors: 0
            }
            .exit_code(),
            1
        );
        assert_eq!(
            Tally {
                allowed: 3,
                denied: 0,
                errors: 0
            }
            .exit_code(),
            0
        );
    }

    #[test]
    fn text_output_lists_causes_under_the_verdict() {
        let yaml = format!("{CLAIM_YAML}status:\n  ips: [winner]\n");
        let d = docs(&yaml, Format::Yaml);
        let outcomes = run(&d, Mode::Chain, &mut InProcess::default());
        let text = text_lines(&outcomes[0], Some(&d[0]));
        assert_eq!(
            text,
            "test#1 ns1/vm-a.tenantred CREATE DENIED\n  status.ips[0]: Invalid value: \"winner\": must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)\n"
        );
    }
}
