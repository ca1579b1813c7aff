//! Criterion benchmarks of the admission pipeline: review bytes in, review bytes out, and of
//! its parts (strict field walk, decoding, validation, defaulting), to show where time goes;
//! and of its growth: reviews with one list made long, at 1,000, 10,000 and 100,000 items,
//! whose cost per item must stay flat.
//!
//! `cargo bench --bench pipeline` measures; `cargo test --benches` runs each case once.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipamclaim_webhook::admission::rules::defaulting::{self, Defaults};
use ipamclaim_webhook::admission::{decode, rules};
use ipamclaim_webhook::admission::{review, FieldValidation, Options, Webhook};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// A typical review: the CREATE of a valid claim.
const CREATE: &str = "validate/captured-02-validate-create.request.json";
/// The typical review: a status UPDATE with dual-stack addresses and a condition.
const STATUS_UPDATE: &str = "validate/captured-04-validate-update-status.request.json";
/// A denial with several causes (invalid and duplicate addresses).
const DENIED: &str = "validate/status-ips-winner-chicken-dinner.request.json";
/// A mutate whose answer carries a patch (non-canonical IPv6 addresses).
const MUTATE_PATCH: &str = "mutate/status-ips-non-canonical-ipv6.request.json";

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The same document without the whitespace outside strings: the fixtures are pretty-printed,
/// while the API server sends compact JSON.
fn compact(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b.is_ascii_whitespace() {
            continue;
        }
        out.push(b);
    }
    out
}

/// The raw `request.object` and `request.oldObject` of a review, as the pipeline sees them.
struct Objects {
    object: String,
    old_object: Option<String>,
}

fn objects(body: &[u8]) -> Objects {
    #[derive(Deserialize)]
    struct Review<'a> {
        #[serde(borrow)]
        request: Request<'a>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Request<'a> {
        #[serde(borrow)]
        object: &'a RawValue,
        #[serde(borrow, default)]
        old_object: Option<&'a RawValue>,
    }
    let review: Review<'_> = serde_json::from_slice(body).expect("fixture is a review");
    Objects {
        object: review.request.object.get().to_owned(),
        old_object: review.request.old_object.map(|r| r.get().to_owned()),
    }
}

/// Bytes in, bytes out: what one HTTP request costs the pipeline.
fn pipeline(c: &mut Criterion) {
    let options = Options::default();
    let cases = [
        ("validate_create_valid", Webhook::Validate, CREATE),
        (
            "validate_status_update_dual_stack",
            Webhook::Validate,
            STATUS_UPDATE,
        ),
        (
            "validate_status_update_compact",
            Webhook::Validate,
            STATUS_UPDATE,
        ),
        ("validate_denied_several_causes", Webhook::Validate, DENIED),
        ("mutate_with_patch", Webhook::Mutate, MUTATE_PATCH),
        (
            "mutate_status_update_no_patch",
            Webhook::Mutate,
            STATUS_UPDATE,
        ),
    ];
    let mut group = c.benchmark_group("pipeline");
    for (name, webhook, file) in cases {
        let mut body = fixture(file);
        if name.ends_with("_compact") {
            body = compact(&body);
        }
        // Fail the bench rather than time an error path by mistake.
        let reviewed = review(&body, webhook, &options).expect("fixture is answerable");
        let expect_allowed = name != "validate_denied_several_causes";
        assert_eq!(reviewed.summary.allowed, expect_allowed, "{name}");
        if name == "mutate_with_patch" {
            let text = String::from_utf8_lossy(&reviewed.body);
            assert!(text.contains("\"patch\""), "{name} answers a patch");
        }
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| review(black_box(&body), webhook, &options).expect("answered"))
        });
    }
    group.finish();
}

/// The parts of `/validate` on the typical status update, and the validation and status
/// rendering of the denied one, to see where the time of a review goes.
fn parts(c: &mut Criterion) {
    let body = fixture(STATUS_UPDATE);
    let Objects { object, old_object } = objects(&body);
    let old_object = old_object.expect("status update has an oldObject");
    // The views the walk makes of them, which the rules read.
    let object_view = decode::walk(&object, false).expect("well-formed").claim;
    let old_view = decode::walk(&old_object, false).expect("well-formed").claim;

    let mut group = c.benchmark_group("parts");
    // serde_json reading the whole review and keeping nothing: the least any pass over these
    // bytes with serde_json costs.
    group.bench_function("skip_review", |b| {
        b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(&body)).expect("well-formed"))
    });
    // The pipeline's reading of `object`: strict field check and the members rules read.
    group.bench_function("walk_object_strict", |b| {
        b.iter(|| decode::walk(black_box(&object), true).expect("well-formed"))
    });
    // Its reading of `oldObject`: the members rules read, the rest skipped.
    group.bench_function("walk_old_object_plain", |b| {
        b.iter(|| decode::walk(black_box(&old_object), false).expect("well-formed"))
    });
    // For comparison: `object` decoded whole into a `Value`.
    group.bench_function("decode_object_value", |b| {
        b.iter(|| serde_json::from_str::<Value>(black_box(&object)).expect("decodes"))
    });
    group.bench_function("validate_update_parsed", |b| {
        b.iter(|| rules::validate(black_box(&object_view), Some(black_box(&old_view))))
    });
    group.bench_function("validate_object_parsed", |b| {
        b.iter(|| rules::validate_object(black_box(&object_view)))
    });
    let defaults = Defaults::default();
    group.bench_function("defaulting_patch_parsed", |b| {
        b.iter(|| defaulting::patch(black_box(&object_view), false, &defaults, None))
    });

    let denied = objects(&fixture(DENIED));
    let denied_view = decode::walk(&denied.object, false)
        .expect("well-formed")
        .claim;
    let denied_old = denied
        .old_object
        .as_deref()
        .map(|o| decode::walk(o, false).expect("well-formed").claim);
    group.bench_function("validate_denied_parsed", |b| {
        b.iter(|| rules::validate(black_box(&denied_view), denied_old.as_ref()))
    });
    let errors = rules::validate(&denied_view, denied_old.as_ref()).errors;
    assert!(errors.len() > 1, "the denied fixture has several causes");
    group.bench_function("denied_status_render", |b| {
        b.iter(|| {
            black_box(&errors).to_invalid_status("k8s.cni.cncf.io", "IPAMClaim", "vm-a.tenantred")
        })
    });
    group.finish();
}

/// The typical status update with one list made `n` items long, as the API server would send
/// it (compact), and whether it is allowed.
fn long_review(shape: &str, n: usize) -> (Vec<u8>, bool) {
    let mut review: Value = serde_json::from_slice(&fixture(STATUS_UPDATE)).expect("fixture");
    let object = &mut review["request"]["object"];
    let condition = |i: usize, reason: &str| {
        serde_json::json!({"type": format!("T{i}"), "status": "True", "reason": reason,
                           "lastTransitionTime": "2026-11-26T23:00:00Z"})
    };
    let allowed = match shape {
        "ips_valid" => {
            let ips: Vec<String> = (0..n)
                .map(|i| format!("10.{}.{}.{}/24", (i >> 16) & 255, (i >> 8) & 255, i & 255))
                .collect();
            object["status"]["ips"] = ips.into();
            true
        }
        "ips_invalid" => {
            object["status"]["ips"] = (0..n).map(|i| format!("x{i}")).collect::<Vec<_>>().into();
            false
        }
        "ips_one_value" => {
            object["status"]["ips"] = vec!["x"; n].into();
            false
        }
        "conditions_distinct_types" => {
            let list: Vec<Value> = (0..n).map(|i| condition(i, "Allocated")).collect();
            object["status"]["conditions"] = list.into();
            true
        }
        "conditions_ratcheted" => {
            let list: Vec<Value> = (0..n).map(|i| condition(i, "bad reason")).collect();
            object["status"]["conditions"] = list.clone().into();
            let reversed: Vec<Value> = list.into_iter().rev().collect();
            let old = &mut review["request"]["oldObject"];
            old["status"] = serde_json::json!({"ips": [], "conditions": reversed});
            true
        }
        "spec_unknown_keys" => {
            for i in 0..n {
                object["spec"][format!("k{i}")] = Value::from(0);
            }
            false
        }
        "spec_duplicate_keys" => {
            // Written as text below: a `Value` cannot hold a key twice.
            object["spec"]["@@DUPLICATES@@"] = Value::from(0);
            false
        }
        other => panic!("no shape {other}"),
    };
    let body = serde_json::to_string(&review).expect("serialise");
    if shape == "spec_duplicate_keys" {
        // `n` unknown keys, each twice, in reverse order: every one is a duplicate field and
        // an unknown field, and each unknown field found sorts before those kept so far.
        let keys: Vec<String> = (0..n)
            .rev()
            .map(|i| format!(r#""d{i:06}":0,"d{i:06}":0"#))
            .collect();
        return (
            body.replace(r#""@@DUPLICATES@@":0"#, &keys.join(","))
                .into_bytes(),
            allowed,
        );
    }
    (body.into_bytes(), allowed)
}

/// Growth: `/validate` on reviews with one list of 1,000, 10,000 and 100,000 items. Criterion
/// reports the time per review and, with the element throughput, items per second: the cost
/// per item must stay flat (within 2x from 1,000 to 100,000 items).
fn growth(c: &mut Criterion) {
    // Unknown keys are denied, as `replay` does by default: the walk stops at none of them.
    let options = Options {
        field_validation: FieldValidation::Strict,
        ..Options::default()
    };
    let mut group = c.benchmark_group("growth");
    group.sample_size(10);
    for shape in [
        "ips_valid",
        "ips_invalid",
        "ips_one_value",
        "conditions_distinct_types",
        "conditions_ratcheted",
        "spec_unknown_keys",
        "spec_duplicate_keys",
    ] {
        for n in [1_000, 10_000, 100_000] {
            let (body, allowed) = long_review(shape, n);
            let reviewed = review(&body, Webhook::Validate, &options).expect("answerable");
            assert_eq!(reviewed.summary.allowed, allowed, "{shape} {n}");
            assert!(
                reviewed.body.len() <= 64 * 1024,
                "{shape} {n}: answer too long"
            );
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(shape, n), &body, |b, body| {
                b.iter(|| review(black_box(body), Webhook::Validate, &options).expect("answered"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pipeline, parts, growth);
criterion_main!(benches);
