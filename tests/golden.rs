//! Golden fixtures: every request under `tests/fixtures/<dir>/` goes through the admission
//! pipeline and must produce exactly the response stored beside it.
//!
//! `UPDATE_GOLDEN=1 cargo test --test golden` (or `make golden`) rewrites the responses; review
//! the diff by hand before committing it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use ipamclaim_webhook::admission::rules::defaulting::Defaults;
use ipamclaim_webhook::admission::{self, Enforcement, FieldValidation, Options, Webhook};
use ipamclaim_webhook::cluster::networks::SharedNetworks;
use ipamclaim_webhook::cluster::{Claim, Claims, SharedIndex};
use ipamclaim_webhook::replay;
use serde_json::Value;

/// The smallest corpus this suite accepts, so that it can never pass on an empty directory.
const MIN_FIXTURES: usize = 40;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The webhook and options a fixture directory's name stands for.
fn setup(dir: &str) -> (Webhook, Options) {
    let webhook = if dir.starts_with("mutate") || dir == "producers/mutate" {
        Webhook::Mutate
    } else {
        Webhook::Validate
    };
    let field_validation = if dir.ends_with("fieldvalidation-warn") {
        FieldValidation::Warn
    } else if dir.ends_with("fieldvalidation-ignore") {
        FieldValidation::Ignore
    } else {
        FieldValidation::Strict
    };
    let defaults = if dir == "mutate-defaults" {
        Defaults {
            default_interface: Some("net1".to_owned()),
            network_label: Some("k8s.cni.cncf.io/network".to_owned()),
        }
    } else {
        Defaults::default()
    };
    let enforcement = if dir.ends_with("enforcement-warn") {
        Enforcement::Warn
    } else if dir.ends_with("enforcement-audit") {
        Enforcement::Audit
    } else {
        Enforcement::Deny
    };
    let unique_addresses = dir
        .starts_with("validate-unique-addresses")
        .then(existing_claims);
    let check_networks = dir.contains("check-networks").then(fixture_networks);
    (
        webhook,
        Options {
            field_validation,
            defaults,
            enforcement,
            unique_addresses,
            check_networks,
        },
    )
}

/// `--unique-addresses` for the fixtures of `validate-unique-addresses*/`: the claims of
/// `validate-unique-addresses/existing.yaml` (a `List`, as `kubectl get ipamclaims -A -o yaml`
/// prints it), indexed and not judged. Reviews judged here reserve nothing, so every fixture
/// sees the same claims whatever the order.
fn existing_claims() -> admission::rules::conflicts::View {
    let path = fixtures_dir().join("validate-unique-addresses/existing.yaml");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let list: Value = yaml_serde::from_str(&text).expect("existing.yaml is YAML");
    let items = list["items"].as_array().expect("a List with items");
    let claims: Claims = items
        .iter()
        .map(|item| Claim::from_object(item).expect("each item is a named claim"))
        .collect();
    assert_eq!(
        claims.len(),
        items.len(),
        "every existing claim holds an address"
    );
    Arc::new(SharedIndex::of(claims))
}

/// `--check-networks` for the fixtures of `*check-networks*/`: the NADs of
/// `tests/fixtures/networks/` (`nads.yaml`, a copy of the shared examples, and `edges.yaml`),
/// read as `replay --networks tests/fixtures/networks` reads them.
fn fixture_networks() -> admission::rules::networks::View {
    let nads = replay::read_networks(&[fixtures_dir().join("networks")]).expect("networks/");
    assert!(nads.counts().networks >= 15, "{:?}", nads.counts());
    Arc::new(SharedNetworks::of(nads))
}

/// The JSON Patch of a response, decoded from base64, if it carries one.
fn response_patch(response: &Value) -> Option<json_patch::Patch> {
    let b64 = response.pointer("/response/patch")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("patch is base64");
    Some(serde_json::from_slice(&bytes).expect("patch is an RFC 6902 JSON Patch"))
}

/// The request's object with the response's patch applied.
fn apply(request: &Value, patch: &json_patch::Patch) -> Value {
    let mut object = request
        .pointer("/request/object")
        .cloned()
        .expect("a patched request has an object");
    json_patch::patch(&mut object, patch).expect("the patch applies to the request's object");
    object
}

/// The same review, carrying `object` instead (as the API server sends after a mutation).
fn resend(request: &Value, object: Value, uid: &str) -> Vec<u8> {
    let mut again = request.clone();
    again["request"]["object"] = object;
    again["request"]["uid"] = Value::String(uid.to_owned());
    serde_json::to_vec(&again).expect("serialise")
}

/// The producers' writes, one folder per webhook (see their README).
const PRODUCERS: [&str; 2] = ["producers/mutate", "producers/validate"];

/// Every `(request, expected response)` pair, with the directory it lives in (relative to
/// `tests/fixtures`).
fn pairs() -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = fs::read_dir(fixtures_dir())
        .expect("tests/fixtures exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir() && !p.ends_with("producers"))
        .collect();
    dirs.extend(PRODUCERS.iter().map(|d| fixtures_dir().join(d)));
    dirs.sort();
    for dir in dirs {
        let dir_name = dir
            .strip_prefix(fixtures_dir())
            .expect("below tests/fixtures")
            .to_string_lossy()
            .into_owned();
        let mut files: Vec<_> = fs::read_dir(&dir)
            .expect("fixture dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.to_string_lossy().ends_with(".request.json"))
            .collect();
        files.sort();
        for request in files {
            let response = PathBuf::from(
                request
                    .to_string_lossy()
                    .replace(".request.json", ".response.json"),
            );
            out.push((dir_name.clone(), request, response));
        }
    }
    out
}

#[test]
fn every_fixture_gets_its_golden_response() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let pairs = pairs();
    assert!(
        pairs.len() >= MIN_FIXTURES,
        "only {} fixtures found under {}",
        pairs.len(),
        fixtures_dir().display()
    );
    let mut failures = Vec::new();
    for (dir, request, response) in &pairs {
        let (webhook, options) = setup(dir);
        let body = fs::read(request).expect("read request");
        let reviewed = admission::review(&body, webhook, &options)
            .unwrap_or_else(|e| panic!("{}: not answerable: {e}", request.display()));
        let got: Value = serde_json::from_slice(&reviewed.body).expect("response is JSON");
        let patched_path = PathBuf::from(
            response
                .to_string_lossy()
                .replace(".response.json", ".patched.json"),
        );
        let patched = response_patch(&got).map(|p| {
            let request: Value = serde_json::from_slice(&body).expect("request is JSON");
            apply(&request, &p)
        });
        if update {
            let text = serde_json::to_string_pretty(&got).expect("pretty") + "\n";
            fs::write(response, text).expect("write golden response");
            match &patched {
                Some(p) => {
                    let text = serde_json::to_string_pretty(p).expect("pretty") + "\n";
                    fs::write(&patched_path, text).expect("write golden patched object");
                }
                None => {
                    let _ = fs::remove_file(&patched_path);
                }
            }
            continue;
        }
        let expected_patched: Option<Value> = fs::read(&patched_path)
            .ok()
            .map(|b| serde_json::from_slice(&b).expect("golden patched object is JSON"));
        if patched != expected_patched {
            failures.push(format!(
                "{}: patched object differs from {}",
                request.display(),
                patched_path.display()
            ));
        }
        let expected: Value = match fs::read(response) {
            Ok(bytes) => serde_json::from_slice(&bytes).expect("golden response is JSON"),
            Err(e) => {
                failures.push(format!("{}: no golden response: {e}", response.display()));
                continue;
            }
        };
        if got != expected {
            failures.push(format!(
                "{}:\n  expected {}\n  got      {}",
                request.display(),
                expected,
                got
            ));
        }
        let request_uid = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.pointer("/request/uid").cloned());
        if got.pointer("/response/uid").cloned() != request_uid {
            failures.push(format!("{}: uid not echoed", request.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        pairs.len(),
        failures.join("\n")
    );
}

#[test]
fn every_response_has_a_request() {
    let requests: Vec<PathBuf> = pairs().into_iter().map(|(_, _, resp)| resp).collect();
    for entry in walk(&fixtures_dir()) {
        let name = entry.to_string_lossy();
        if name.ends_with(".response.json") {
            assert!(
                requests.contains(&entry),
                "orphan golden file {}",
                entry.display()
            );
        }
        if name.ends_with(".patched.json") {
            let response = PathBuf::from(name.replace(".patched.json", ".response.json"));
            assert!(
                requests.contains(&response),
                "orphan golden file {}",
                entry.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn validating_responses_never_carry_a_patch() {
    for (dir, _, response) in pairs() {
        if setup(&dir).0 != Webhook::Validate {
            continue;
        }
        let Ok(bytes) = fs::read(&response) else {
            continue;
        };
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert!(
            v.pointer("/response/patch").is_none(),
            "{}",
            response.display()
        );
        assert!(
            v.pointer("/response/patchType").is_none(),
            "{}",
            response.display()
        );
    }
}

// Reinvocation safety: the patched object, sent again, yields no patch.
#[test]
fn mutating_is_idempotent_over_every_mutate_fixture() {
    let mut patched_fixtures = 0;
    for (dir, request_path, _) in pairs() {
        let (webhook, options) = setup(&dir);
        if webhook != Webhook::Mutate {
            continue;
        }
        let body = fs::read(&request_path).expect("read");
        let first = admission::review(&body, webhook, &options).expect("answerable");
        let first: Value = serde_json::from_slice(&first.body).expect("json");
        assert_eq!(
            first.pointer("/response/allowed"),
            Some(&Value::Bool(true)),
            "{}",
            request_path.display()
        );
        let Some(patch) = response_patch(&first) else {
            continue;
        };
        patched_fixtures += 1;
        let request: Value = serde_json::from_slice(&body).expect("json");
        let again = resend(&request, apply(&request, &patch), "again");
        let second = admission::review(&again, webhook, &options).expect("answerable");
        let second: Value = serde_json::from_slice(&second.body).expect("json");
        assert!(
            second.pointer("/response/patch").is_none(),
            "{}: a second pass patched again: {second}",
            request_path.display()
        );
    }
    assert!(
        patched_fixtures >= 5,
        "only {patched_fixtures} mutate fixtures carry a patch"
    );
}

// The API server runs /mutate, applies the patch, then /validate on the result.
#[test]
fn mutate_then_validate_admits_non_canonical_ipv6_in_canonical_form() {
    let path = fixtures_dir().join("mutate/status-ips-non-canonical-ipv6.request.json");
    let body = fs::read(&path).expect("fixture");
    let options = Options::default();

    let denied = admission::review(&body, Webhook::Validate, &options).expect("answerable");
    let denied: Value = serde_json::from_slice(&denied.body).expect("json");
    assert_eq!(
        denied["response"]["allowed"], false,
        "unpatched, it is denied"
    );

    let mutated = admission::review(&body, Webhook::Mutate, &options).expect("answerable");
    let mutated: Value = serde_json::from_slice(&mutated.body).expect("json");
    let request: Value = serde_json::from_slice(&body).expect("json");
    let patched = apply(&request, &response_patch(&mutated).expect("a patch"));
    assert_eq!(patched["status"]["ips"][1], "fd10:128:20::8/64");

    let validated = admission::review(&resend(&request, patched, "v"), Webhook::Validate, &options)
        .expect("answerable");
    let validated: Value = serde_json::from_slice(&validated.body).expect("json");
    assert_eq!(validated["response"]["allowed"], true, "{validated}");
}

/// Issue 26: every write KubeVirt and OVN-Kubernetes make in normal operation is admitted by
/// both webhooks, in every `--field-validation` mode (they carry no unknown field, so the
/// answers are the same, without a warning), and a KubeVirt create gets no patch.
#[test]
fn the_producers_writes_are_admitted_in_every_field_validation_mode() {
    let mut seen = 0;
    for (dir, request, _) in pairs() {
        if !dir.starts_with("producers/") {
            continue;
        }
        seen += 1;
        let (webhook, strict) = setup(&dir);
        let body = fs::read(&request).expect("read");
        let answer = |field_validation| {
            let options = Options {
                field_validation,
                ..strict.clone()
            };
            let reviewed = admission::review(&body, webhook, &options).expect("answerable");
            serde_json::from_slice::<Value>(&reviewed.body).expect("json")
        };
        let first = answer(FieldValidation::Strict);
        assert_eq!(
            first["response"]["allowed"],
            true,
            "{}: {first}",
            request.display()
        );
        assert!(
            first["response"].get("warnings").is_none(),
            "{}: {first}",
            request.display()
        );
        for mode in [FieldValidation::Warn, FieldValidation::Ignore] {
            assert_eq!(answer(mode), first, "{} in {mode:?}", request.display());
        }
        let name = request.file_name().unwrap().to_string_lossy();
        if name.starts_with("kubevirt-create") {
            assert!(
                first["response"].get("patch").is_none(),
                "{}: {first}",
                request.display()
            );
        }
    }
    assert!(seen >= 30, "only {seen} producer fixtures");
}

/// DESIGN §10: a bare address completed by `/mutate --check-networks` is one that
/// `/validate --check-networks` admits (the API server validates the patched object), and
/// without the completion a status update is denied (a bare IP is valid in `spec.ipRequests`,
/// never in `status.ips`).
#[test]
fn completed_addresses_are_admitted_by_validation_with_the_same_networks() {
    let (_, networks) = setup("validate-check-networks");
    let mut completed = 0;
    for (dir, request_path, _) in pairs() {
        if dir != "mutate-check-networks" {
            continue;
        }
        let (webhook, options) = setup(&dir);
        let body = fs::read(&request_path).expect("read");
        let mutated = admission::review(&body, webhook, &options).expect("answerable");
        let mutated: Value = serde_json::from_slice(&mutated.body).expect("json");
        let Some(patch) = response_patch(&mutated) else {
            continue;
        };
        completed += 1;
        let request: Value = serde_json::from_slice(&body).expect("json");
        let verdict = |object: Value| {
            let again = resend(&request, object, "validate");
            let answer = admission::review(&again, Webhook::Validate, &networks).expect("answer");
            serde_json::from_slice::<Value>(&answer.body).expect("json")["response"]["allowed"]
                == true
        };
        let original = request["request"]["object"].clone();
        assert!(
            verdict(apply(&request, &patch)),
            "{}: the completed object is denied",
            request_path.display()
        );
        let status = request["request"]["subResource"] == "status";
        assert!(
            !status || !verdict(original),
            "{}: the bare addresses were admitted without the completion",
            request_path.display()
        );
    }
    assert!(completed >= 3, "only {completed} completions");
}
