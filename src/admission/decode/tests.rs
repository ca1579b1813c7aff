//! The strict walk tested as one stage: keys, order, views, the serde_json model, hostile input.
#![cfg(test)]

use super::report::*;
use super::schema::*;
use super::walk::*;
use crate::admission::json::{self, Raw, Reader, Str};
use crate::admission::model::view::Status;
use crate::admission::model::view::{Claim, Condition, Field, List};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray,
};
use kube::CustomResourceExt;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashSet;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The issues of `json` as the API server would word them, in its order; every one, as
/// long as fewer than [`KEPT`] of each kind.
fn issues(json: &str) -> Vec<String> {
    let found = check(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
    let listed: Vec<String> = found.first().map(ToString::to_string).collect();
    assert_eq!(listed.len(), found.len(), "{json}: some were only counted");
    listed
}

fn unknown(path: &str) -> String {
    format!("unknown field \"{path}\"")
}

fn duplicate(path: &str) -> String {
    format!("duplicate field \"{path}\"")
}

/// A claim shaped like the captured ones, touching every part of the schema.
const SAMPLE: &str = r#"{"apiVersion":"k8s.cni.cncf.io/v1alpha1","kind":"IPAMClaim",
    "metadata":{"name":"vm-a.tenantred","namespace":"ns1","generation":1,
      "labels":{"app":"vm-a"},"annotations":{"note":"{\"a\":[1,2]}"},
      "finalizers":["x/y"],
      "ownerReferences":[{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachine","name":"vm-a",
        "uid":"a079","controller":true,"blockOwnerDeletion":false}],
      "managedFields":[{"manager":"kubectl","operation":"Update","apiVersion":"v1",
        "time":"2026-11-26T23:44:31Z","fieldsType":"FieldsV1",
        "fieldsV1":{"f:spec":{".":{},"f:network":{}}},"subresource":"status"}]},
    "spec":{"network":"tenantred","interface":"pod16367aacb67","ipRequests":["10.0.0.1/24"]},
    "status":{"ips":["10.128.20.8/24","fd10:128:20::8/64"],"ownerPod":{"name":"virt-launcher"},
      "conditions":[{"type":"IPsAllocated","status":"True","observedGeneration":-1.5e+3,
        "lastTransitionTime":"2026-11-26T23:00:00Z","reason":"Allocated","message":null}]}}"#;

fn payload_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captured")
}

#[test]
fn captured_objects_have_no_issues() {
    #[derive(serde::Deserialize)]
    struct Review<'a> {
        #[serde(borrow)]
        request: Request<'a>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Request<'a> {
        #[serde(borrow)]
        object: Option<&'a RawValue>,
        #[serde(borrow)]
        old_object: Option<&'a RawValue>,
    }

    let dir = payload_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("captured payloads missing at {}: {e}", dir.display()));
    let mut checked = 0;
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !name.ends_with(".json") || name == "request-headers.json" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("payload readable");
        let review: Review<'_> = serde_json::from_str(&text).expect("payload is a review");
        for raw in [review.request.object, review.request.old_object]
            .into_iter()
            .flatten()
        {
            let value: serde_json::Value = serde_json::from_str(raw.get()).expect("json");
            if value.is_null() {
                continue;
            }
            // Both the bytes exactly as captured and the compact form the server may send.
            let compact = serde_json::to_vec(&value).expect("serializes");
            for bytes in [raw.get().as_bytes(), &compact[..]] {
                let found = check(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(found.is_empty(), "{name}: {found:?}");
                checked += 1;
            }
        }
    }
    // 17 captures, most with an old object too: far more than this if the files are there.
    assert!(
        checked >= 40,
        "only {checked} objects checked in {}",
        dir.display()
    );
}

#[test]
fn sample_has_no_issues() {
    assert_eq!(issues(SAMPLE), Vec::<String>::new());
}

#[test]
fn reports_unknown_spec_field() {
    let json = r#"{"spec":{"network":"n","foo":"bar","interface":"eth0"}}"#;
    assert_eq!(issues(json), [unknown("spec.foo")]);
}

#[test]
fn reports_unknown_root_field() {
    let json = r#"{"apiVersion":"v","kind":"k","extra":1,"spec":{}}"#;
    assert_eq!(issues(json), [unknown("extra")]);
}

#[test]
fn reports_unknown_metadata_field() {
    let json = r#"{"metadata":{"name":"a","nmae":"b"}}"#;
    assert_eq!(issues(json), [unknown("metadata.nmae")]);
}

#[test]
fn reports_unknown_field_in_condition() {
    let json = r#"{"status":{"ips":[],"conditions":[{"type":"A","colour":"red"}]}}"#;
    assert_eq!(issues(json), [unknown("status.conditions[0].colour")]);
}

#[test]
fn reports_unknown_field_in_owner_reference() {
    let json =
        r#"{"metadata":{"ownerReferences":[{"name":"a","bogus":1},{"name":"b","bogus":2}]}}"#;
    assert_eq!(
        issues(json),
        [
            unknown("metadata.ownerReferences[0].bogus"),
            unknown("metadata.ownerReferences[1].bogus")
        ]
    );
}

#[test]
fn reports_unknown_field_in_managed_fields_entry() {
    let json =
        r#"{"metadata":{"managedFields":[{"manager":"m","fieldsV1":{"f:x":{}},"extra":{}}]}}"#;
    assert_eq!(issues(json), [unknown("metadata.managedFields[0].extra")]);
}

#[test]
fn reports_unknown_field_in_owner_pod() {
    let json = r#"{"status":{"ownerPod":{"name":"p","age":3}}}"#;
    assert_eq!(issues(json), [unknown("status.ownerPod.age")]);
}

#[test]
fn does_not_descend_into_unknown_field() {
    let json = r#"{"spec":{"foo":{"bar":{"x":1,"x":2},"baz":[{"y":1}]},"network":"n"},"extra":[]}"#;
    assert_eq!(issues(json), [unknown("extra"), unknown("spec.foo")]);
}

#[test]
fn does_not_descend_into_mistyped_known_field() {
    // A type error belongs to validation; only the skip has to be right.
    let json =
        r#"{"spec":{"network":{"a":1,"a":2},"ipRequests":{"b":1}},"status":[{"c":1}],"kind":"k"}"#;
    assert_eq!(issues(json), Vec::<String>::new());
}

#[test]
fn reports_duplicate_spec_network() {
    let json = r#"{"spec":{"network":"a","interface":"eth0","network":"b"}}"#;
    assert_eq!(issues(json), [duplicate("spec.network")]);
}

#[test]
fn reports_duplicate_top_level_key() {
    let json = r#"{"spec":{"network":"a"},"kind":"k","spec":{"network":"b"}}"#;
    assert_eq!(issues(json), [duplicate("spec")]);
}

#[test]
fn reports_duplicate_label() {
    let json = r#"{"metadata":{"labels":{"app":"a","tier":"b","app":"c"}}}"#;
    assert_eq!(issues(json), [duplicate("metadata.labels.app")]);
}

#[test]
fn reports_duplicate_annotation() {
    let json = r#"{"metadata":{"annotations":{"x/y":"1","x/y":"2"}}}"#;
    assert_eq!(issues(json), [duplicate("metadata.annotations.x/y")]);
}

#[test]
fn reports_duplicate_inside_fields_v1() {
    let json = r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:spec":{".":{},"f:network":{},"f:network":{}}}}]}}"#;
    assert_eq!(
        issues(json),
        [duplicate(
            "metadata.managedFields[0].fieldsV1.f:spec.f:network"
        )]
    );
}

#[test]
fn reports_duplicates_in_large_and_nested_fields_v1() {
    let many: Vec<String> = (0..40).map(|i| format!(r#""f:k{i}":{{}}"#)).collect();
    let many = many.join(",");
    let clean = format!(
        r#"{{"metadata":{{"managedFields":[{{"fieldsV1":{{{many},"f:x":[{{"a":1,"b":[2]}},[]]}}}}]}}}}"#
    );
    assert_eq!(issues(&clean), Vec::<String>::new());
    let late =
        format!(r#"{{"metadata":{{"managedFields":[{{"fieldsV1":{{{many},"f:k3":{{}}}}}}]}}}}"#);
    assert_eq!(
        issues(&late),
        [duplicate("metadata.managedFields[0].fieldsV1.f:k3")]
    );
    // A repeat after a closed sibling object, and one in the sibling's own keys.
    let json = r#"{"metadata":{"managedFields":[{"fieldsV1":{"a":{"x":1,"y":2},"b":[{"x":1,"x":2}],"a":3}},{"fieldsV1":{"a":1}}]}}"#;
    assert_eq!(
        issues(json),
        [
            duplicate("metadata.managedFields[0].fieldsV1.b[0].x"),
            duplicate("metadata.managedFields[0].fieldsV1.a"),
        ]
    );
}

/// The status of `text`'s walk (strict or not).
fn status_of(text: &str, strict: bool) -> crate::admission::model::view::Status<'_> {
    match walk(text, strict).expect("well-formed").claim.status {
        Field::Value(status) => status,
        other => panic!("no status object in {text}: {other:?}"),
    }
}

#[test]
fn reads_a_plain_first_condition_in_passing() {
    let text = r#"{"status":{"conditions":[{"type":"IPsAllocated","status":"True","observedGeneration":1,"lastTransitionTime":"2026-11-26T23:00:00Z","reason":"Allocated","message":"a \"b\""},{"type":"B"}]}}"#;
    for strict in [true, false] {
        let status = status_of(text, strict);
        let (raw, condition) = status.first_condition.expect("read in passing");
        assert!(
            raw.text.starts_with(r#"{"type":"IPsAllocated""#),
            "{}",
            raw.text
        );
        assert!(
            raw.text.ends_with(r#""message":"a \"b\""}"#),
            "{}",
            raw.text
        );
        assert_eq!(Some(condition), Condition::read(raw));
    }
    // The last of repeated keys wins, its first condition too; a list that is not one has none.
    let text = r#"{"status":{"conditions":[{"type":"A"}],"conditions":[{"type":"B"}]}}"#;
    let (_, condition) = status_of(text, true).first_condition.expect("read");
    assert_eq!(condition.r#type.str().map(|t| t.decode()), Some("B".into()));
    let text = r#"{"status":{"conditions":[{"type":"A"}],"conditions":7}}"#;
    assert!(status_of(text, true).first_condition.is_none());
    // Not read in passing: an unknown or repeated key, a container value, a first item
    // that is not an object (the rules read such items from their text).
    for text in [
        r#"{"status":{"conditions":[{"type":"A","colour":"red"}]}}"#,
        r#"{"status":{"conditions":[{"type":"A","type":"B"}]}}"#,
        r#"{"status":{"conditions":[{"type":"A","reason":{}}]}}"#,
        r#"{"status":{"conditions":[1,{"type":"A"}]}}"#,
    ] {
        assert!(status_of(text, true).first_condition.is_none(), "{text}");
    }
}

#[test]
fn reports_duplicate_in_second_condition() {
    let json = r#"{"status":{"conditions":[{"type":"A","reason":"R"},{"type":"B","reason":"R","type":"C"}]}}"#;
    assert_eq!(issues(json), [duplicate("status.conditions[1].type")]);
}

#[test]
fn decodes_escaped_keys_before_comparing() {
    let json = r#"{"spec":{"network":"a","\u006eetwork":"b"}}"#;
    assert_eq!(issues(json), [duplicate("spec.network")]);
}

#[test]
fn escaped_key_matches_schema_and_names_path_decoded() {
    let json = r#"{"\u0073pec":{"\u0066o\u006f":1},"spec":{"b\u0061r":1}}"#;
    // The first `spec` is replaced by the second: its unknown field is gone with it.
    assert_eq!(issues(json), [duplicate("spec"), unknown("spec.bar")]);
}

#[test]
fn decodes_surrogate_pairs_and_short_escapes_in_keys() {
    let json = "{\"metadata\":{\"labels\":{\"\u{1f600}\\t\":\"a\",\"\\ud83d\\ude00\\u0009\":\"b\",\"a\\\"b\\/\":\"c\",\"a\\u0022b/\":\"d\"}}}";
    assert_eq!(
        issues(json),
        [
            duplicate("metadata.labels.\u{1f600}\t"),
            duplicate("metadata.labels.a\"b/")
        ]
    );
}

#[test]
fn reports_a_triple_key_once() {
    let json = r#"{"spec":{"network":"a","network":"b","network":"c"}}"#;
    assert_eq!(issues(json), [duplicate("spec.network")]);
}

// Regression: the path of each issue was written whole, so many issues below a huge key
// cost the key's length each (quadratic in the input).
#[test]
fn keeps_the_start_of_a_long_path_and_its_whole_length() {
    let key = format!(
        "{}é{}",
        "k".repeat(MAX_PATH_BYTES - 30),
        "k".repeat(1 << 20)
    );
    let json = format!(
        r#"{{"metadata":{{"managedFields":[{{"fieldsV1":{{"{key}":{{"a":1,"a":2,"a":3}}}}}}]}}}}"#
    );
    let found = check(json.as_bytes()).expect("well-formed");
    let whole = format!("metadata.managedFields[0].fieldsV1.{key}.a");
    // The key is there three times: one path, named once.
    assert_eq!(found.len(), 1);
    let issue = found.first().next().expect("one issue");
    assert_eq!(issue.kind, IssueKind::Duplicate);
    assert_eq!(issue.path_len, whole.len());
    assert!(issue.path.len() <= MAX_PATH_BYTES);
    assert!(
        issue.path.len() >= MAX_PATH_BYTES - 1,
        "cut on a character boundary"
    );
    assert!(whole.starts_with(&issue.path));
    // A short path is kept whole.
    let found = check(br#"{"spec":{"foo":1}}"#).expect("well-formed");
    let issue = found.first().next().expect("one issue");
    assert_eq!((issue.path.as_str(), issue.path_len), ("spec.foo", 8));
}

#[test]
fn a_cut_path_is_the_start_of_the_path_even_across_a_wide_character() {
    // The key fills the room but for one byte, which the next character does not fit in:
    // nothing after the cut may be written, not even the dot and index that follow.
    let prefix = "metadata.labels.";
    let key = format!("{}é", "k".repeat(MAX_PATH_BYTES - prefix.len() - 1));
    let json = format!(r#"{{"metadata":{{"labels":{{"{key}":{{"a":1,"a":2}}}}}}}}"#);
    let found = check(json.as_bytes()).expect("well-formed");
    let issue = found.first().next().expect("one issue");
    let whole = format!("{prefix}{key}.a");
    assert_eq!(issue.path_len, whole.len());
    assert!(whole.starts_with(&issue.path), "{}", issue.path);
    assert_eq!(issue.path.len(), MAX_PATH_BYTES - 1);
}

#[test]
fn repeated_unknown_key_is_a_duplicate_then_unknown_once() {
    let json = r#"{"spec":{"foo":1,"foo":2,"foo":3}}"#;
    assert_eq!(issues(json), [duplicate("spec.foo"), unknown("spec.foo")]);
}

#[test]
fn keys_of_sibling_objects_do_not_collide() {
    let json = r#"{"status":{"conditions":[{"type":"A"},{"type":"B"}],"ips":[]},"spec":{"network":"n"},"metadata":{"labels":{"spec":"x"},"annotations":{"spec":"y"}}}"#;
    assert_eq!(issues(json), Vec::<String>::new());
}

#[test]
fn reports_duplicates_in_objects_with_many_keys() {
    // Past the linear scan's limit the keys move to a hash set; both halves must still count.
    let mut labels: Vec<String> = (0..40).map(|i| format!("\"k{i}\":\"v\"")).collect();
    labels.insert(10, "\"k3\":\"v\"".into());
    labels.push("\"k5\":\"v\"".into());
    labels.push("\"k39\":\"v\"".into());
    labels.push("\"k40\":\"v\"".into());
    let json = format!(
        r#"{{"metadata":{{"labels":{{{}}},"labels":{{}}}},"spec":{{}}}}"#,
        labels.join(",")
    );
    assert_eq!(
        issues(&json),
        [
            duplicate("metadata.labels.k3"),
            duplicate("metadata.labels.k5"),
            duplicate("metadata.labels.k39"),
            duplicate("metadata.labels")
        ]
    );
}

// DESIGN §4's worked example of the API server's order.
#[test]
fn lists_issues_in_the_api_servers_order() {
    let json = r#"{"zzz":1,"metadata":{"name":"a","zeta":1,"alpha":2,"labels":{"a":"1","a":"2"}},
        "spec":{"network":"n","interface":"a","interface":"b","zeta":1,"Alpha":2},
        "status":{"ips":[],"b":1},"aaa":1}"#;
    assert_eq!(
        issues(json),
        [
            duplicate("metadata.labels.a"),
            duplicate("spec.interface"),
            unknown("metadata.alpha"),
            unknown("metadata.zeta"),
            unknown("aaa"),
            unknown("spec.Alpha"),
            unknown("spec.zeta"),
            unknown("status.b"),
            unknown("zzz"),
        ]
    );
}

// Issue 16, as measured on kube-apiserver 1.28: unknown fields sorted, not in document
// order.
#[test]
fn sorts_unknown_fields() {
    let json = r#"{"spec":{"network":"n","interface":"i","foo":1,"bar":{"x":1}}}"#;
    assert_eq!(issues(json), [unknown("spec.bar"), unknown("spec.foo")]);
}

// Issue 16: duplicates before unknown fields, wherever they are.
#[test]
fn lists_duplicates_before_unknown_fields() {
    let json = r#"{"spec":{"network":"n","interface":"i","foo":1,"network":"blue"}}"#;
    assert_eq!(
        issues(json),
        [duplicate("spec.network"), unknown("spec.foo")]
    );
}

// Issue 16: `labels` twice, each with `a` twice: the duplicate inside comes first (a
// decoder finds `labels` repeated once it has read its value), and each path once.
#[test]
fn names_each_duplicate_path_once_inner_first() {
    let json = r#"{"metadata":{"name":"x","labels":{"a":"1","a":"2"},"labels":{"a":"1","a":"2"}}}"#;
    assert_eq!(
        issues(json),
        [duplicate("metadata.labels.a"), duplicate("metadata.labels")]
    );
    let json = r#"{"spec":{"network":"a"},"spec":{"network":"b","network":"c"}}"#;
    assert_eq!(issues(json), [duplicate("spec.network"), duplicate("spec")]);
}

#[test]
fn names_a_path_reached_through_dotted_keys_once() {
    // `a.b` then `c`, and `a` then `b.c`: one path as the API server names it.
    let json = r#"{"metadata":{"managedFields":[{"fieldsV1":{"a.b":{"c":1,"c":2},"a":{"b.c":1,"b.c":2}}}]}}"#;
    assert_eq!(
        issues(json),
        [duplicate("metadata.managedFields[0].fieldsV1.a.b.c")]
    );
}

#[test]
fn drops_the_unknown_fields_of_a_replaced_value() {
    // Unknown fields at every depth of the first `status`, which the second replaces; and
    // of the first `metadata`.
    let json = r#"{"metadata":{"nmae":1,"ownerReferences":[{"bogus":1}]},
        "status":{"ips":[],"x":1,"ownerPod":{"age":1},"conditions":[{"colour":1}]},
        "metadata":{"name":"a","managedFields":[{"extra":1}]},
        "status":{"ips":[],"conditions":[{"type":"A"},{"size":2}]}}"#;
    assert_eq!(
        issues(json),
        [
            duplicate("metadata"),
            duplicate("status"),
            unknown("metadata.managedFields[0].extra"),
            unknown("status.conditions[1].size"),
        ]
    );
    // A replaced member of a deeper object, and a value replaced by one of another type.
    let json = r#"{"status":{"ownerPod":{"age":1},"ips":[],"ownerPod":{"name":"p"},
        "conditions":[{"colour":1}],"conditions":null}}"#;
    assert_eq!(
        issues(json),
        [duplicate("status.ownerPod"), duplicate("status.conditions")]
    );
}

#[test]
fn keeps_the_unknown_fields_of_the_last_value_only() {
    // The last value wins even when an earlier one filled the list of the first ones:
    // those it pushed out must come back.
    let early: Vec<String> = (0..150).map(|i| format!("\"a{i:03}\":1")).collect();
    let late: Vec<String> = (0..150).map(|i| format!("\"b{i:03}\":1")).collect();
    let json = format!(
        r#"{{"spec":{{{}}},"zzz":1,"spec":{{{}}}}}"#,
        early.join(","),
        late.join(",")
    );
    let found = check(json.as_bytes()).expect("well-formed");
    assert_eq!(found.len(), 1 + 150 + 1);
    let first: Vec<String> = found.first().map(ToString::to_string).collect();
    assert_eq!(first.len(), 1 + KEPT);
    assert_eq!(first[0], duplicate("spec"));
    assert_eq!(first[1], unknown("spec.b000"));
    assert_eq!(first[KEPT], unknown(&format!("spec.b{:03}", KEPT - 1)));
    assert_eq!(found.unknown_fields().len(), KEPT);
}

#[test]
fn keeps_the_first_unknown_fields_in_order_and_counts_the_rest() {
    // In reverse order, so that each one found replaces the largest one kept.
    let keys: Vec<String> = (0..10_000)
        .rev()
        .map(|i| format!("\"k{i:05}\":1"))
        .collect();
    let json = format!(
        r#"{{"status":{{"ips":[],{}}},"metadata":{{"zz":1}}}}"#,
        keys.join(",")
    );
    let found = check(json.as_bytes()).expect("well-formed");
    assert_eq!(found.len(), 10_001);
    let first: Vec<String> = found.first().map(ToString::to_string).collect();
    assert_eq!(first.len(), KEPT);
    assert_eq!(first[0], unknown("metadata.zz"));
    let expected: Vec<String> = (0..KEPT - 1)
        .map(|i| unknown(&format!("status.k{i:05}")))
        .collect();
    assert_eq!(first[1..], expected[..]);
}

#[test]
fn counts_every_distinct_duplicate_and_keeps_the_first() {
    // Three of each key: each path once, in the order found; the unknown fields after them
    // are counted, and still kept for the drift metric.
    let keys: Vec<String> = (0..1000)
        .flat_map(|i| std::iter::repeat_n(format!("\"k{i}\":1"), 3))
        .collect();
    let json = format!(
        r#"{{"metadata":{{"annotations":{{{}}}}},"spec":{{"foo":1}}}}"#,
        keys.join(",")
    );
    let found = check(json.as_bytes()).expect("well-formed");
    assert_eq!(found.len(), 1000 + 1);
    let first: Vec<String> = found.first().map(ToString::to_string).collect();
    let expected: Vec<String> = (0..KEPT)
        .map(|i| duplicate(&format!("metadata.annotations.k{i}")))
        .collect();
    assert_eq!(first, expected);
    assert_eq!(found.unknown_fields()[0].to_string(), unknown("spec.foo"));
}

#[test]
fn accepts_any_keys_in_labels_and_annotations() {
    let json = r#"{"metadata":{"labels":{"app.kubernetes.io/name":"x","spec":"y","":"z"},
        "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"spec\":{\"foo\":1}}\n","anything":"goes"}}}"#;
    assert_eq!(issues(json), Vec::<String>::new());
}

#[test]
fn accepts_deep_fields_v1() {
    let mut inner = String::from("{}");
    for i in 0..40 {
        inner = format!(r#"{{"f:level{i}":{inner},".":{{}},"k:{{\"uid\":\"{i}\"}}":{{}}}}"#);
    }
    let json = format!(r#"{{"metadata":{{"managedFields":[{{"fieldsV1":{inner}}}]}}}}"#);
    assert_eq!(issues(&json), Vec::<String>::new());
}

#[test]
fn structural_characters_in_strings_do_not_confuse_the_walk() {
    let json = r#"{"metadata":{"annotations":{"a\"}],:\\":"}]\",:{[\\","\\":"\\\\\"","b":"\"\"\u0022"},
        "labels":{"}":"]","a\"}],:\\":"x"}},"spec":{"network":"\"}","foo":"x"}}"#;
    assert_eq!(issues(json), [unknown("spec.foo")]);
}

#[test]
fn skips_numbers_and_literals() {
    let json = r#"{"metadata":{"generation":0,"deletionGracePeriodSeconds":-12,"uid":1.25e-7,
        "finalizers":[true,false,null,-0,0.0,1E+2,3e9]},"spec":{"ipRequests":[ null ,"a" , 12 ],"foo":true}}"#;
    assert_eq!(issues(json), [unknown("spec.foo")]);
}

#[test]
fn non_object_root_has_no_issues() {
    for json in ["null", "1", "\"spec\"", "[{\"x\":1,\"x\":2}]", " [] "] {
        assert_eq!(issues(json), Vec::<String>::new(), "{json}");
    }
}

#[test]
fn rejects_malformed_json() {
    let cases = [
        "",
        " ",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{,}",
        "{,\"a\":1}",
        "{\"a\":1,,\"b\":2}",
        "{\"a\" 1}",
        "[1,,2]",
        "[1 2]",
        "{\"a\":1,}",
        "[1,]",
        "[,1]",
        "{\"a\":1 \"b\":2}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":1e}",
        "{\"a\":-}",
        "{\"a\":+1}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":truex}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\u12g4\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"\\udc00\"}",
        "{\"\\ud83d\":1}",
        "{\"a\":\"x\ny\"}",
        "{\"a\":1}}",
        "{} x",
        "{\"a\":[}",
        "{\"a\":{]}",
        "{1:2}",
        "{'a':1}",
    ];
    for json in cases {
        assert!(
            matches!(check(json.as_bytes()), Err(StrictError::Malformed(_))),
            "{json:?} accepted"
        );
        // The walk reads with serde_json, so its grammar is serde_json's.
        assert!(
            serde_json::from_str::<serde_json::Value>(json).is_err(),
            "{json:?}"
        );
    }
}

#[test]
fn rejects_truncated_input_at_every_offset() {
    let bytes = SAMPLE.as_bytes();
    for end in 0..bytes.len() {
        let result = check(&bytes[..end]);
        assert!(
            matches!(result, Err(StrictError::Malformed(_))),
            "prefix of {end} bytes gave {result:?}"
        );
    }
    assert!(check(bytes).expect("whole sample").is_empty());
}

#[test]
fn rejects_invalid_utf8_in_strings() {
    let cases: [&[u8]; 4] = [
        b"{\"spec\":{\"network\":\"a\xffb\"}}",
        b"{\"spec\":{\"netw\xc3\":1}}",
        b"{\"metadata\":{\"labels\":{\"a\":\"\xed\xa0\x80\"}}}",
        b"{\"x\":{\"y\":\"\xe2\x82\"}}",
    ];
    for bytes in cases {
        assert!(
            matches!(check(bytes), Err(StrictError::Malformed(_))),
            "{bytes:?}"
        );
    }
    let ok = "{\"metadata\":{\"labels\":{\"caf\u{e9}\":\"\u{1f600}\",\"caf\u{e9}\":\"x\"}}}";
    assert_eq!(issues(ok), [duplicate("metadata.labels.caf\u{e9}")]);
}

#[test]
fn rejects_deep_array_nesting() {
    let json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        check(json.as_bytes()),
        Err(StrictError::TooDeep { max: MAX_DEPTH })
    ));
    let json = format!("{{\"spec\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        check(json.as_bytes()),
        Err(StrictError::TooDeep { max: MAX_DEPTH })
    ));
}

#[test]
fn rejects_deep_object_nesting() {
    let json = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    assert!(matches!(
        check(json.as_bytes()),
        Err(StrictError::TooDeep { max: MAX_DEPTH })
    ));
    // Unclosed, as a hostile client might send it: refused, not a crash. Past the limit
    // the rest is skipped by serde_json's iterative skipper, which finds the end missing.
    let json = "{\"a\":".repeat(10_000);
    assert!(matches!(
        check(json.as_bytes()),
        Err(StrictError::Malformed(_))
    ));
}

#[test]
fn accepts_nesting_at_max_depth() {
    let objects = format!(
        "{}{{}}{}",
        "{\"a\":".repeat(MAX_DEPTH - 1),
        "}".repeat(MAX_DEPTH - 1)
    );
    assert_eq!(issues(&objects), [unknown("a")]);
    let arrays = format!(
        "{{\"spec\":{}{}}}",
        "[".repeat(MAX_DEPTH - 1),
        "]".repeat(MAX_DEPTH - 1)
    );
    assert_eq!(issues(&arrays), Vec::<String>::new());
    let free = format!(
        "{{\"metadata\":{{\"managedFields\":[{{\"fieldsV1\":{}{{\"x\":1,\"x\":2}}{}}}]}}}}",
        "{\"f\":".repeat(MAX_DEPTH - 6),
        "}".repeat(MAX_DEPTH - 6)
    );
    let path = format!(
        "metadata.managedFields[0].fieldsV1.{}x",
        "f.".repeat(MAX_DEPTH - 6)
    );
    assert_eq!(issues(&free), [duplicate(&path)]);
}

#[test]
fn free_content_is_walked_to_the_same_depth_and_names_items() {
    // fieldsV1 sits five containers deep: one more than `accepts_nesting_at_max_depth`.
    for (open, close) in [("{\"f\":", "}"), ("[", "]")] {
        let json = format!(
            "{{\"metadata\":{{\"managedFields\":[{{\"fieldsV1\":{}{{}}{}}}]}}}}",
            open.repeat(MAX_DEPTH - 4),
            close.repeat(MAX_DEPTH - 4)
        );
        assert!(
            matches!(
                check(json.as_bytes()),
                Err(StrictError::TooDeep { max: MAX_DEPTH })
            ),
            "{open}"
        );
    }
    let json = r#"{"metadata":{"managedFields":[{"fieldsV1":{"a":[1,{"b":1,"b":2}]}}]}}"#;
    assert_eq!(
        issues(json),
        [duplicate("metadata.managedFields[0].fieldsV1.a[1].b")]
    );
}

#[test]
fn rejects_nesting_one_past_max_depth() {
    let objects = format!(
        "{}{{}}{}",
        "{\"a\":".repeat(MAX_DEPTH),
        "}".repeat(MAX_DEPTH)
    );
    assert!(matches!(
        check(objects.as_bytes()),
        Err(StrictError::TooDeep { max: MAX_DEPTH })
    ));
    let arrays = format!(
        "{{\"spec\":{}{}}}",
        "[".repeat(MAX_DEPTH),
        "]".repeat(MAX_DEPTH)
    );
    assert!(matches!(
        check(arrays.as_bytes()),
        Err(StrictError::TooDeep { max: MAX_DEPTH })
    ));
}

#[test]
fn display_matches_api_server_wording() {
    let issue = Issue {
        kind: IssueKind::Unknown,
        path: "spec.foo".into(),
        path_len: 8,
    };
    assert_eq!(issue.to_string(), "unknown field \"spec.foo\"");
    let issue = Issue {
        kind: IssueKind::Duplicate,
        path: "spec.network".into(),
        path_len: 12,
    };
    assert_eq!(issue.to_string(), "duplicate field \"spec.network\"");
    assert_eq!(
        StrictError::Malformed("EOF while parsing a value at line 1 column 0".into()).to_string(),
        "malformed JSON: EOF while parsing a value at line 1 column 0"
    );
    assert_eq!(
        StrictError::TooDeep { max: 64 }.to_string(),
        "JSON nests deeper than 64 levels"
    );
}

/// Asserts that `node` declares exactly what the generated CRD schema declares.
fn assert_same_shape(node: &Node, schema: &JSONSchemaProps, path: &str) {
    let kind = schema.type_.as_deref();
    match node {
        Node::Object(fields) => {
            assert_eq!(kind, Some("object"), "{path}");
            let props = schema
                .properties
                .as_ref()
                .unwrap_or_else(|| panic!("{path}: no properties in the CRD"));
            let ours: BTreeSet<&str> = fields.declared.iter().map(|d| d.name).collect();
            let theirs: BTreeSet<&str> = props.keys().map(String::as_str).collect();
            assert_eq!(ours, theirs, "fields of {path}: strict schema vs CRD");
            for d in fields.declared {
                let name = d.name;
                assert_same_shape(&d.node, &props[name], &format!("{path}.{name}"));
            }
        }
        Node::List(item) => {
            assert_eq!(kind, Some("array"), "{path}");
            match &schema.items {
                Some(JSONSchemaPropsOrArray::Schema(items)) => {
                    assert_same_shape(item, items, &format!("{path}[]"))
                }
                other => panic!("{path}: items {other:?}"),
            }
        }
        Node::Map | Node::Free => assert_eq!(kind, Some("object"), "{path}"),
        Node::Leaf => assert!(
            !matches!(kind, Some("object" | "array")),
            "{path} is a {kind:?} in the CRD but a leaf here"
        ),
    }
}

#[test]
fn declared_fields_fit_the_seen_mask() {
    fn walk(node: &Node) {
        match node {
            Node::Object(fields) => {
                assert!(
                    fields.declared.len() <= 64,
                    "one bit per field in Keys::declared"
                );
                fields.declared.iter().for_each(|d| walk(&d.node));
            }
            Node::List(item) => walk(item),
            Node::Map | Node::Free | Node::Leaf => {}
        }
    }
    walk(&ROOT);
}

#[test]
fn keys_are_recognised_as_declared_fields_however_written() {
    fn read(fields: &Fields, key: &str) -> (String, Option<usize>, &'static str) {
        let text = format!("{key} : 1");
        let text: &'static str = Box::leak(text.into_boxed_str());
        let mut reader = Reader::new(text);
        let (read, found) = fields.read_key(&mut reader).expect("a key");
        (read.decode().into_owned(), found, &text[reader.pos()..])
    }
    fn check(fields: &Fields) {
        for (i, declared) in fields.declared.iter().enumerate() {
            let name = declared.name;
            let escaped: String = name
                .chars()
                .map(|c| format!("\\u{:04x}", c as u32))
                .collect();
            for key in [format!("\"{name}\""), format!("\"{escaped}\"")] {
                assert_eq!(
                    read(fields, &key),
                    (name.to_owned(), Some(i), " 1"),
                    "{key}"
                );
            }
            // Keys that start like a declared one, or that it starts like, are not it.
            for other in [
                &name[..name.len() - 1],
                &format!("{name}s"),
                &format!("{name}\\n"),
            ] {
                let key = format!("\"{other}\"");
                let found = fields.find(serde_json::from_str::<String>(&key).unwrap().as_bytes());
                assert_eq!(read(fields, &key).1, found, "{key}");
                assert_ne!(found, Some(i), "{key}");
            }
        }
    }
    fn walk(node: &Node) {
        match node {
            Node::Object(fields) => {
                check(fields);
                fields.declared.iter().for_each(|d| walk(&d.node));
            }
            Node::List(item) => walk(item),
            Node::Map | Node::Free | Node::Leaf => {}
        }
    }
    walk(&ROOT);
    // A key that is no key is refused, not taken for a field.
    let Node::Object(fields) = &ROOT else {
        unreachable!()
    };
    for text in [r#""kind"1"#, r#""kind"#, r#"kind":1"#] {
        assert!(fields.read_key(&mut Reader::new(text)).is_err(), "{text}");
    }
}

#[test]
fn schema_matches_generated_crd() {
    let crd = crate::admission::model::types::IPAMClaim::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("CRD has a schema");
    let props = schema.properties.as_ref().expect("root properties");
    let Node::Object(root) = &ROOT else {
        panic!("root is an object")
    };
    let ours: BTreeSet<&str> = root.declared.iter().map(|d| d.name).collect();
    let theirs: BTreeSet<&str> = props.keys().map(String::as_str).collect();
    // The generated root declares spec and status; the rest is standard for every kind.
    assert!(ours.is_superset(&theirs), "{theirs:?} not all in {ours:?}");
    for d in root.declared {
        if matches!(d.name, "spec" | "status") {
            assert_same_shape(&d.node, &props[d.name], d.name);
        }
    }
}

// --- property tests ---

/// A JSON value to be written out by hand, so that keys may repeat.
#[derive(Clone, Debug)]
enum Json {
    Scalar(&'static str),
    Array(Vec<Json>),
    Object(Vec<(String, bool, Json)>),
}

const SCALARS: &[&str] = &[
    "1",
    "-2.5e3",
    "0",
    "true",
    "false",
    "null",
    "\"s\"",
    r#""a\"}],:\\""#,
    "\"\u{e9}\"",
    r#""\ud83d\ude00""#,
];

const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "status",
    "labels",
    "annotations",
    "network",
    "ipRequests",
    "conditions",
    "type",
    "managedFields",
    "fieldsV1",
    "ownerReferences",
    "ownerPod",
    "name",
    "ips",
    "x",
    "a\"}],:\\",
    "\u{e9}\u{1f600}",
    "",
];

/// The members of a condition, and keys that are not.
const CONDITION_KEYS: &[&str] = &[
    "type",
    "status",
    "observedGeneration",
    "lastTransitionTime",
    "reason",
    "message",
    "colour",
    "",
];

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop::sample::select(SCALARS).prop_map(Json::Scalar);
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((prop::sample::select(KEYS), any::<bool>(), inner), 0..6)
                .prop_map(|members| {
                    members
                        .into_iter()
                        .map(|(k, esc, v)| (k.to_string(), esc, v))
                        .collect()
                })
                .prop_map(Json::Object),
        ]
    })
}

fn root_object() -> impl Strategy<Value = Json> {
    prop::collection::vec(
        (prop::sample::select(KEYS), any::<bool>(), json_value()),
        0..6,
    )
    .prop_map(|members| {
        Json::Object(
            members
                .into_iter()
                .map(|(k, esc, v)| (k.to_string(), esc, v))
                .collect(),
        )
    })
}

/// Writes `value` with `ws` between tokens; keys marked so are written all in `\u` escapes.
fn write_json(value: &Json, ws: &str, out: &mut String) {
    match value {
        Json::Scalar(text) => out.push_str(text),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(ws);
                write_json(item, ws, out);
            }
            out.push_str(ws);
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (key, escape_all, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(ws);
                if *escape_all {
                    out.push('"');
                    for unit in key.encode_utf16() {
                        let _ = write!(out, "\\u{unit:04X}");
                    }
                    out.push('"');
                } else {
                    out.push_str(&serde_json::to_string(key).expect("key"));
                }
                out.push_str(ws);
                out.push(':');
                out.push_str(ws);
                write_json(value, ws, out);
            }
            out.push_str(ws);
            out.push('}');
        }
    }
}

// --- a model of the API server's order (DESIGN §4), written apart from the walk ---

/// The IPAMClaim schema as the model sees it: `spec` and `status` read from the generated
/// CRD, `metadata` written out from `metav1.ObjectMeta`. Not the walk's [`Node`] table.
#[derive(Clone, Debug)]
enum Shape {
    /// An object with these fields; any other key is unknown.
    Fields(BTreeMap<String, Shape>),
    /// A list of these.
    Items(Box<Shape>),
    /// A string map (labels, annotations): any key; a list here is of the wrong type.
    Strings,
    /// Free-form content (`fieldsV1`): any key, at any depth, in objects or lists.
    Anything,
    /// A scalar.
    Scalar,
}

fn fields(members: &[(&str, Shape)]) -> Shape {
    Shape::Fields(
        members
            .iter()
            .map(|(name, shape)| (name.to_string(), shape.clone()))
            .collect(),
    )
}

fn shape_of(schema: &JSONSchemaProps) -> Shape {
    match (schema.type_.as_deref(), &schema.properties, &schema.items) {
        (Some("object"), Some(props), _) => Shape::Fields(
            props
                .iter()
                .map(|(name, prop)| (name.clone(), shape_of(prop)))
                .collect(),
        ),
        (Some("object"), None, _) => Shape::Anything,
        (Some("array"), _, Some(JSONSchemaPropsOrArray::Schema(items))) => {
            Shape::Items(Box::new(shape_of(items)))
        }
        _ => Shape::Scalar,
    }
}

fn claim_shape() -> &'static Shape {
    static SHAPE: std::sync::OnceLock<Shape> = std::sync::OnceLock::new();
    SHAPE.get_or_init(read_claim_shape)
}

fn read_claim_shape() -> Shape {
    let crd = crate::admission::model::types::IPAMClaim::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("CRD has a schema");
    let props = schema.properties.as_ref().expect("root properties");
    let scalar = || Shape::Scalar;
    let owner_reference = fields(&[
        ("apiVersion", scalar()),
        ("kind", scalar()),
        ("name", scalar()),
        ("uid", scalar()),
        ("controller", scalar()),
        ("blockOwnerDeletion", scalar()),
    ]);
    let managed_fields_entry = fields(&[
        ("manager", scalar()),
        ("operation", scalar()),
        ("apiVersion", scalar()),
        ("time", scalar()),
        ("fieldsType", scalar()),
        ("fieldsV1", Shape::Anything),
        ("subresource", scalar()),
    ]);
    let mut metadata = vec![
        ("labels", Shape::Strings),
        ("annotations", Shape::Strings),
        ("ownerReferences", Shape::Items(Box::new(owner_reference))),
        ("finalizers", Shape::Items(Box::new(scalar()))),
        (
            "managedFields",
            Shape::Items(Box::new(managed_fields_entry)),
        ),
    ];
    for name in [
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        metadata.push((name, scalar()));
    }
    fields(&[
        ("apiVersion", scalar()),
        ("kind", scalar()),
        ("metadata", fields(&metadata)),
        ("spec", shape_of(&props["spec"])),
        ("status", shape_of(&props["status"])),
    ])
}

/// The shape of the members (`Ok`) or items (`Err`) of `value`, when `shape` takes a
/// value of its type; `None` for a value of the wrong type, whose keys are not fields.
fn inside<'s>(shape: &'s Shape, value: &Json) -> Option<Result<&'s Shape, &'s Shape>> {
    match (shape, value) {
        (Shape::Fields(_), Json::Object(_)) => Some(Ok(shape)),
        (Shape::Strings | Shape::Anything, Json::Object(_)) => Some(Ok(&Shape::Anything)),
        (Shape::Items(item), Json::Array(_)) => Some(Err(item)),
        (Shape::Anything, Json::Array(_)) => Some(Err(&Shape::Anything)),
        _ => None,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The duplicate keys of `value` as a decoder finds them: a key once its value was read.
/// `shape` is `None` below an unknown field.
fn model_duplicates(shape: Option<&Shape>, value: &Json, path: &str, out: &mut Vec<String>) {
    match (shape.and_then(|s| inside(s, value)), value) {
        (Some(Ok(object)), Json::Object(members)) => {
            let mut keys = HashSet::new();
            for (key, _, value) in members {
                let child = match object {
                    Shape::Fields(declared) => declared.get(key),
                    _ => Some(&Shape::Anything),
                };
                let child_path = join(path, key);
                model_duplicates(child, value, &child_path, out);
                if !keys.insert(key) {
                    out.push(child_path);
                }
            }
        }
        (Some(Err(item)), Json::Array(items)) => {
            for (i, value) in items.iter().enumerate() {
                model_duplicates(Some(item), value, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A JSON value as the API server decodes it: the last of equal keys wins.
enum Tree {
    Scalar,
    Array(Vec<Tree>),
    Object(BTreeMap<String, Tree>),
}

fn decode(value: &Json) -> Tree {
    match value {
        Json::Scalar(_) => Tree::Scalar,
        Json::Array(items) => Tree::Array(items.iter().map(decode).collect()),
        Json::Object(members) => Tree::Object(
            members
                .iter()
                .map(|(key, _, value)| (key.clone(), decode(value)))
                .collect(),
        ),
    }
}

/// The unknown fields of a decoded value: keys an object's schema does not declare.
fn model_unknowns(shape: &Shape, value: &Tree, path: &str, out: &mut Vec<String>) {
    match (shape, value) {
        (Shape::Fields(declared), Tree::Object(members)) => {
            for (key, value) in members {
                let child_path = join(path, key);
                match declared.get(key) {
                    Some(child) => model_unknowns(child, value, &child_path, out),
                    None => out.push(child_path),
                }
            }
        }
        (Shape::Items(item), Tree::Array(items)) => {
            for (i, value) in items.iter().enumerate() {
                model_unknowns(item, value, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Every field-validation error of `root` in the API server's order: the duplicates (each
/// path once, the first time), then the unknown fields of the decoded object, those of
/// `metadata` sorted, then the others sorted.
fn model(root: &Json) -> Vec<String> {
    let shape = claim_shape();
    let mut duplicates = Vec::new();
    model_duplicates(Some(shape), root, "", &mut duplicates);
    let mut named = HashSet::new();
    duplicates.retain(|path| named.insert(path.clone()));
    let (mut of_metadata, mut others) = (Vec::new(), Vec::new());
    if let (Shape::Fields(declared), Tree::Object(members)) = (shape, decode(root)) {
        for (key, value) in &members {
            match declared.get(key) {
                Some(child) if key == "metadata" => {
                    model_unknowns(child, value, key, &mut of_metadata)
                }
                Some(child) => model_unknowns(child, value, key, &mut others),
                None => others.push(key.clone()),
            }
        }
    }
    of_metadata.sort();
    others.sort();
    let duplicates = duplicates.iter().map(|p| duplicate(p));
    let unknowns = of_metadata.iter().chain(&others).map(|p| unknown(p));
    duplicates.chain(unknowns).collect()
}

/// Checks the walk of `text` against the model of `root`: every error counted, the first
/// ones listed in order, the first unknown fields kept.
fn assert_walk_matches_model(root: &Json, text: &str) -> Result<(), TestCaseError> {
    let want = model(root);
    let found = check(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
    prop_assert_eq!(found.len(), want.len(), "{}", text);
    let first: Vec<String> = found.first().map(ToString::to_string).collect();
    prop_assert_eq!(&first[..], &want[..first.len()], "{}", text);
    // Only what cannot be listed anyway is left out of the list.
    prop_assert!(first.len() == want.len() || first.len() >= KEPT, "{}", text);
    let unknowns: Vec<String> = want
        .iter()
        .filter(|e| e.starts_with("unknown"))
        .take(KEPT)
        .cloned()
        .collect();
    let kept: Vec<String> = found
        .unknown_fields()
        .iter()
        .map(|i| i.to_string())
        .collect();
    prop_assert_eq!(kept, unknowns, "{}", text);
    Ok(())
}

/// A small deterministic generator (SplitMix64): a failing case is named by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

/// Keys no object of the schema declares, or one declares elsewhere: sorting around each
/// other (case, dots, brackets, non-ASCII), and the names of other levels.
const STRANGERS: &[&str] = &[
    "foo",
    "Foo",
    "alpha",
    "Alpha",
    "zeta",
    "a.b",
    "ownerPod.name",
    "conditions[0]",
    "",
    "\u{e9}",
    "\u{1f600}",
    "a\"}],:\\",
    "spec",
    "metadata",
    "labels",
    "type",
    "name",
    "ips",
];

/// Keys of maps and free-form content, few so that they repeat.
const MAP_KEYS: &[&str] = &["a", "b", "a.b", "f:spec", ""];

/// An object or list of no schema, with repeated keys at any depth.
fn free_value(rng: &mut Rng, depth: usize) -> Json {
    if depth > 8 || rng.one_in(3) {
        return Json::Scalar(SCALARS[rng.below(SCALARS.len())]);
    }
    if rng.one_in(3) {
        return Json::Array(
            (0..rng.below(3))
                .map(|_| free_value(rng, depth + 1))
                .collect(),
        );
    }
    Json::Object(
        (0..rng.below(4))
            .map(|_| {
                let key = MAP_KEYS[rng.below(MAP_KEYS.len())].to_owned();
                (key, rng.one_in(6), free_value(rng, depth + 1))
            })
            .collect(),
    )
}

/// A value for `shape`: mostly of its type, with unknown keys and repeated keys (whose
/// earlier value is replaced) in every object, sometimes of the wrong type.
fn generate(shape: &Shape, rng: &mut Rng, depth: usize) -> Json {
    if depth > 10 {
        return Json::Scalar("1");
    }
    if depth > 0 && rng.one_in(12) {
        // The wrong type: a container where none fits, or a scalar.
        return match shape {
            Shape::Items(_) | Shape::Scalar => free_value(rng, depth),
            _ => Json::Array(vec![free_value(rng, depth + 1)]),
        };
    }
    match shape {
        Shape::Fields(declared) => {
            let mut members: Vec<(String, bool, Json)> = Vec::new();
            for (name, child) in declared {
                if rng.one_in(2) {
                    members.push((name.clone(), rng.one_in(8), generate(child, rng, depth + 1)));
                }
            }
            for _ in 0..rng.below(3) {
                let key = STRANGERS[rng.below(STRANGERS.len())];
                if !declared.contains_key(key) {
                    members.push((key.to_owned(), rng.one_in(8), free_value(rng, depth + 1)));
                }
            }
            for i in (1..members.len()).rev() {
                members.swap(i, rng.below(i + 1));
            }
            for _ in 0..rng.below(3) {
                if members.is_empty() {
                    break;
                }
                let key = members[rng.below(members.len())].0.clone();
                let value = match declared.get(&key) {
                    Some(child) => generate(child, rng, depth + 1),
                    None => free_value(rng, depth + 1),
                };
                let at = rng.below(members.len() + 1);
                members.insert(at, (key, rng.one_in(8), value));
            }
            Json::Object(members)
        }
        Shape::Items(item) => Json::Array(
            (0..rng.below(4))
                .map(|_| generate(item, rng, depth + 1))
                .collect(),
        ),
        Shape::Strings => Json::Object(
            (0..rng.below(5))
                .map(|_| {
                    let key = MAP_KEYS[rng.below(MAP_KEYS.len())].to_owned();
                    let value = if rng.one_in(4) {
                        free_value(rng, depth + 1)
                    } else {
                        Json::Scalar("\"v\"")
                    };
                    (key, rng.one_in(8), value)
                })
                .collect(),
        ),
        Shape::Anything => free_value(rng, depth),
        Shape::Scalar => Json::Scalar(SCALARS[rng.below(SCALARS.len())]),
    }
}

/// A claim from `seed`, with unknown and repeated keys at every depth of the schema.
fn generated_claim(seed: u64) -> Json {
    generate(claim_shape(), &mut Rng(seed), 0)
}

/// The unknown fields of every value, replaced or not, each key once per object: what the
/// list would hold if a replaced value's unknown fields counted.
fn unknowns_of_every_value(shape: &Shape, value: &Json, path: &str, out: &mut Vec<String>) {
    match (shape, value) {
        (Shape::Fields(declared), Json::Object(members)) => {
            let mut keys = HashSet::new();
            for (key, _, value) in members {
                let child_path = join(path, key);
                match declared.get(key) {
                    Some(child) => unknowns_of_every_value(child, value, &child_path, out),
                    None if keys.insert(key) => out.push(child_path),
                    None => {}
                }
            }
        }
        (Shape::Items(item), Json::Array(items)) => {
            for (i, value) in items.iter().enumerate() {
                unknowns_of_every_value(item, value, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A path with its list indices and last key taken off: the object of the schema it is in.
fn place(path: &str) -> String {
    let mut place = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                place.push_str("[]");
            }
            ']' => in_index = false,
            _ if !in_index => place.push(c),
            _ => {}
        }
    }
    place
        .rsplit_once('.')
        .map_or(String::new(), |(head, _)| head.to_owned())
}

// The generator is what makes the property test mean something: it must put unknown and
// repeated keys in every object of the schema, and unknown fields in values that a later
// key replaces.
#[test]
fn generated_claims_reach_every_object_of_the_schema() {
    let objects = [
        "",
        "metadata",
        "metadata.ownerReferences[]",
        "metadata.managedFields[]",
        "spec",
        "status",
        "status.ownerPod",
        "status.conditions[]",
    ];
    let mut unknown_in = BTreeSet::new();
    let mut duplicate_in = BTreeSet::new();
    let mut replaced = 0;
    let mut free_duplicates = 0;
    let shape = claim_shape();
    for seed in 0..3000 {
        let root = generated_claim(seed);
        for error in model(&root) {
            let path = error.split('"').nth(1).unwrap_or_default().to_owned();
            if error.starts_with("unknown") {
                unknown_in.insert(place(&path));
            } else {
                if path.contains("fieldsV1.") || path.contains("labels.") {
                    free_duplicates += 1;
                }
                duplicate_in.insert(place(&path));
            }
        }
        let mut every = Vec::new();
        unknowns_of_every_value(shape, &root, "", &mut every);
        let kept = model(&root)
            .iter()
            .filter(|e| e.starts_with("unknown"))
            .count();
        replaced += usize::from(every.len() > kept);
    }
    for object in objects {
        assert!(
            unknown_in.contains(object),
            "no unknown field in {object:?}"
        );
        assert!(duplicate_in.contains(object), "no duplicate in {object:?}");
    }
    assert!(
        replaced > 300,
        "unknown fields dropped with their value in {replaced} claims"
    );
    assert!(
        free_duplicates > 300,
        "{free_duplicates} duplicates in maps"
    );
}

/// What the view must hold: the full decode with only the members rules read.
fn kept_part_of(full: Value) -> Value {
    fn retain(value: Option<&mut Value>, keys: &[&str]) {
        if let Some(Value::Object(obj)) = value {
            obj.retain(|k, _| keys.contains(&k.as_str()));
        }
    }
    let Value::Object(mut obj) = full else {
        return full;
    };
    obj.retain(|k, _| matches!(k.as_str(), "metadata" | "spec" | "status"));
    retain(
        obj.get_mut("metadata"),
        &["name", "generateName", "labels", "uid"],
    );
    retain(obj.get_mut("spec"), &["network", "interface", "ipRequests"]);
    retain(obj.get_mut("status"), &["ips", "ownerPod", "conditions"]);
    if let Some(status) = obj.get_mut("status") {
        retain(status.get_mut("ownerPod"), &["name"]);
    }
    Value::Object(obj)
}

/// A value kept as text, decoded by serde_json.
fn decoded(raw: Raw<'_>) -> Value {
    serde_json::from_str(raw.text).expect("kept text decodes")
}

/// A field of the view as a member of a JSON object (`None`: no member).
fn member_of<T>(field: &Field<'_, T>, value: impl Fn(&T) -> Value) -> Option<Value> {
    match field {
        Field::Absent => None,
        Field::Null => Some(Value::Null),
        Field::Value(v) => Some(value(v)),
        Field::Other(raw) => {
            assert_ne!(raw.kind, json::Kind::Null, "null is Field::Null");
            Some(decoded(*raw))
        }
    }
}

fn object_of(members: &[(&str, Option<Value>)]) -> Value {
    Value::Object(
        members
            .iter()
            .filter_map(|(k, v)| Some(((*k).to_owned(), v.clone()?)))
            .collect(),
    )
}

fn str_of(s: &Str<'_>) -> Value {
    Value::String(s.decode().into_owned())
}

fn list_of(list: &List<'_>) -> Value {
    let value = decoded(list.raw);
    assert_eq!(
        value.as_array().map(Vec::len),
        Some(list.len),
        "list length"
    );
    assert_eq!(list.items().count(), list.len, "items of {}", list.raw.text);
    value
}

/// The view the walk made, as a JSON value of the members it holds.
fn view_value(claim: &Claim<'_>) -> Value {
    if !claim.is_object() {
        return decoded(claim.raw);
    }
    let metadata = member_of(&claim.metadata, |m| {
        object_of(&[
            ("name", member_of(&m.name, str_of)),
            ("generateName", member_of(&m.generate_name, str_of)),
            ("labels", member_of(&m.labels, |l| decoded(*l))),
            ("uid", member_of(&m.uid, str_of)),
        ])
    });
    let spec = member_of(&claim.spec, |s| {
        object_of(&[
            ("network", member_of(&s.network, str_of)),
            ("interface", member_of(&s.interface, str_of)),
            ("ipRequests", member_of(&s.ip_requests, list_of)),
        ])
    });
    let status = member_of(&claim.status, |s| {
        let owner_pod = member_of(&s.owner_pod, |o| {
            object_of(&[("name", member_of(&o.name, str_of))])
        });
        object_of(&[
            ("ips", member_of(&s.ips, list_of)),
            ("ownerPod", owner_pod),
            ("conditions", member_of(&s.conditions, list_of)),
        ])
    });
    object_of(&[("metadata", metadata), ("spec", spec), ("status", status)])
}

/// Both walks keep what a full decode holds of the read members: the typed members, the
/// whole object's text and the whole `spec`'s text.
fn assert_keeps_like_full(text: &str) {
    let full = serde_json::from_str::<Value>(text).expect("decodes");
    for strict in [true, false] {
        let walked = walk(text, strict).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert_eq!(
            view_value(&walked.claim),
            kept_part_of(full.clone()),
            "{text}"
        );
        assert_eq!(decoded(walked.claim.raw), full, "{text}");
        if let Field::Value(spec) = walked.claim.spec {
            assert_eq!(Some(&decoded(spec.raw)), full.get("spec"), "{text}");
        }
        assert!(!walked.too_deep);
    }
}

fn fixture_objects(dir: &std::path::Path, out: &mut Vec<(String, Option<String>)>) {
    for entry in std::fs::read_dir(dir).expect("read fixtures") {
        let path = entry.expect("fixture entry").path();
        if path.is_dir() {
            fixture_objects(&path, out);
            continue;
        }
        if !path.to_string_lossy().ends_with(".request.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read fixture");
        let Ok(review) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let object = review.pointer("/request/object").map(Value::to_string);
        let old = review.pointer("/request/oldObject").map(Value::to_string);
        if let Some(object) = object {
            out.push((object, old));
        }
    }
}

#[test]
fn walk_judges_every_fixture_like_a_full_decode() {
    use crate::admission::rules::validate;
    let mut objects = Vec::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    fixture_objects(&dir, &mut objects);
    assert!(
        objects.len() > 50,
        "found {} fixture objects",
        objects.len()
    );
    for (object, old) in &objects {
        if !matches!(serde_json::from_str::<Value>(object), Ok(Value::Object(_))) {
            continue;
        }
        assert_keeps_like_full(object);
        // The reference: the text serde_json writes of its own decode (no repeated key,
        // no escape it does not need, no whitespace).
        let full = |t: &str| {
            let value = serde_json::from_str::<Value>(t).expect("decodes");
            serde_json::to_string(&value).expect("writes")
        };
        let walked = |t: &'static str| walk(t, false).expect("decodes").claim;
        let leak = |t: String| -> &'static str { Box::leak(t.into_boxed_str()) };
        let (object_text, old_text) = (leak(object.clone()), old.clone().map(leak));
        let (full_object, full_old) = (leak(full(object)), old.as_deref().map(full).map(leak));
        assert_eq!(
            validate(&walked(object_text), old_text.map(walked).as_ref()),
            validate(&walked(full_object), full_old.map(walked).as_ref()),
            "{object}"
        );
    }
}

/// The walk of `text` with and without the clean paths: the same issues, the same views but
/// for the first condition (which only the clean path fills, and which must then be the
/// list's first item), the same verdict, or the same refusal (the contract of `walk`'s doc).
fn assert_clean_and_full_walks_agree(text: &str) -> Result<(), TestCaseError> {
    use crate::admission::rules::validate;
    for strict in [true, false] {
        let (clean, full) = (walk(text, strict), walk_full(text, strict));
        let (clean, full) = match (clean, full) {
            (Ok(clean), Ok(full)) => (clean, full),
            (clean, full) => {
                prop_assert_eq!(clean.is_err(), full.is_err(), "{}", text);
                continue;
            }
        };
        prop_assert_eq!(&clean.issues, &full.issues, "{}", text);
        prop_assert_eq!(clean.too_deep, full.too_deep, "{}", text);
        if let Field::Value(Status {
            first_condition: Some((raw, _)),
            conditions: Field::Value(conditions),
            ..
        }) = &clean.claim.status
        {
            prop_assert_eq!(
                conditions.raw.items().next().map(|i| i.text),
                Some(raw.text)
            );
        }
        if !clean.too_deep {
            prop_assert_eq!(
                validate(&clean.claim, Some(&clean.claim)),
                validate(&full.claim, Some(&full.claim)),
                "{}",
                text
            );
            prop_assert_eq!(validate(&clean.claim, None), validate(&full.claim, None));
        }
        let mut clean_claim = clean.claim;
        if let Field::Value(status) = &mut clean_claim.status {
            status.first_condition = None;
        }
        prop_assert_eq!(clean_claim, full.claim, "{}", text);
    }
    Ok(())
}

#[test]
fn clean_and_full_walks_agree_on_every_fixture() {
    let mut objects = Vec::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    fixture_objects(&dir, &mut objects);
    assert!(
        objects.len() > 50,
        "found {} fixture objects",
        objects.len()
    );
    for (object, old) in &objects {
        for text in std::iter::once(object).chain(old) {
            assert_clean_and_full_walks_agree(text).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn clean_and_full_walks_agree_on_the_shapes_that_leave_the_clean_path() {
    for text in [
        r#"{"status":{"conditions":[{"type":"A","type":"B"}]}}"#,
        r#"{"status":{"conditions":[{"type":"A","colour":"red","status":"True"}]}}"#,
        r#"{"status":{"conditions":[{"type":{"nested":1}},{"type":"B"}]}}"#,
        r#"{"status":{"conditions":[{"type":"A"}],"conditions":[{"type":"B"}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:a":{},"f:a":{}}}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17}}]}}"#,
        r#"{"metadata":{"ownerReferences":[{"uid":"a","uid":"b"},{"kind":[1]}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]}}"#,
        r#"{"metadata":{"ownerReferences":[{"\u0075id":"a","uid":"b"}]}}"#,
    ] {
        assert_clean_and_full_walks_agree(text).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn walk_keeps_the_last_of_duplicate_keys() {
    assert_keeps_like_full(r#"{"spec":{"network":"a"},"spec":{"network":"b"}}"#);
    assert_keeps_like_full(r#"{"metadata":{"name":"a","name":"b"},"metadata":7}"#);
    assert_keeps_like_full(r#"{"metadata":{"name":"a"},"metadata":{"uid":"u"}}"#);
}

#[test]
fn walk_keeps_values_that_are_not_objects_whole() {
    for text in [
        "[1,2,{\"a\":[true,null,-1,2.5e3]}]",
        "\"text\"",
        "null",
        "-12",
        r#"{"metadata":[{"x":1},"y",1.5]}"#,
        r#"{"metadata":"name"}"#,
        r#"{"metadata":null,"spec":null}"#,
        r#"{"spec":{"a":{"b":[{"c":"\u00e9\ud83d\ude00"}]}},"status":{"ips":[]}}"#,
    ] {
        assert_keeps_like_full(text);
    }
}

// Regression: a strict walk reads every value, so it fails wherever a full decode fails.
#[test]
fn strict_walk_fails_where_a_full_decode_fails() {
    for text in [
        r#"{"metadata":{"managedFields":[{"x":1e999}]},"spec":{}}"#,
        r#"{"apiVersion":-1e400}"#,
        r#"{"metadata":{"annotations":{"a":"\ud800"}}}"#,
        r#"{"metadata":{"annotations":{"a":"\x"}}}"#,
        r#"{"metadata":{"uid":"u"}} trailing"#,
        r#"{"metadata":{"uid":"u""#,
        r#"{"kind":tru}"#,
    ] {
        assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
        assert!(walk(text, true).is_err(), "{text}");
        assert!(check(text.as_bytes()).is_err(), "{text}");
    }
}

// A plain walk (oldObject, the mutating webhook) skips the members no rule reads with
// serde_json's skipper: their syntax is checked, their numbers' range is not, and their
// nesting costs no recursion.
#[test]
fn plain_walk_checks_only_the_syntax_of_unread_members() {
    let deep = format!(
        r#"{{"metadata":{{"annotations":{{"a":{}{}}}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    for text in [
        r#"{"metadata":{"managedFields":[{"x":1e999}]},"spec":{}}"#,
        deep.as_str(),
    ] {
        let walked = walk(text, false).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert!(!walked.too_deep, "{text}");
    }
    for text in [
        r#"{"metadata":{"uid":"u"}} trailing"#,
        r#"{"metadata":{"uid":"u""#,
        r#"{"kind":tru}"#,
        r#"{"metadata":{"annotations":{"a":"\x"}}}"#,
    ] {
        assert!(walk(text, false).is_err(), "{text}");
    }
    // What is kept is still held to the depth limit.
    let deep_label = format!(
        r#"{{"metadata":{{"labels":{{"a":{}{}}}}}}}"#,
        "[".repeat(MAX_DEPTH),
        "]".repeat(MAX_DEPTH)
    );
    assert!(walk(&deep_label, false).expect("well-formed").too_deep);
}

// serde_json gives its private raw-value key a meaning when decoding a `Value`; the walk
// builds its values itself, so the key is an unknown field like any other.
#[test]
fn raw_value_marker_is_an_ordinary_key() {
    let text = r#"{"$serde_json::private::RawValue":"{\"spec\":{\"network\":\"n\"}}","metadata":{"$serde_json::private::RawValue":"{}","name":"a"}}"#;
    let walked = walk(text, true).expect("well-formed");
    assert_eq!(
        view_value(&walked.claim),
        serde_json::json!({"metadata": {"name": "a"}})
    );
    assert_eq!(
        issues(text),
        [
            unknown("metadata.$serde_json::private::RawValue"),
            unknown("$serde_json::private::RawValue"),
        ]
    );
    let spec = r#"{"spec":{"$serde_json::private::RawValue":"[1]"}}"#;
    let walked = walk(spec, false).expect("well-formed");
    assert_eq!(view_value(&walked.claim), serde_json::json!({"spec": {}}));
    let Field::Value(kept) = walked.claim.spec else {
        panic!("spec is an object");
    };
    // As text: serde_json's own decode of it would read the marker.
    assert_eq!(kept.raw.text, r#"{"$serde_json::private::RawValue":"[1]"}"#);
    assert_eq!(kept.network, Field::Absent);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    // Issue 16: the order, each path once, replaced values, against the model.
    #[test]
    fn lists_what_the_model_lists(seed in any::<u64>(), ws in prop::sample::select(&["", " ", "\n\t "][..])) {
        let root = generated_claim(seed);
        let mut text = String::new();
        write_json(&root, ws, &mut text);
        assert_walk_matches_model(&root, &text)?;
    }

    // The clean and the full walk agree on generated claims and on objects of any shape.
    #[test]
    fn clean_and_full_walks_agree_on_generated_objects(
        seed in any::<u64>(),
        root in root_object(),
        ws in prop::sample::select(&["", " ", "\n\t "][..]),
    ) {
        let mut text = String::new();
        write_json(&generated_claim(seed), ws, &mut text);
        assert_clean_and_full_walks_agree(&text)?;
        let mut text = String::new();
        write_json(&root, ws, &mut text);
        assert_clean_and_full_walks_agree(&text)?;
    }

    // Objects of any shape, with the schema's keys anywhere.
    #[test]
    fn lists_what_the_model_lists_for_any_keys(root in root_object(), ws in prop::sample::select(&["", " ", "\n\t "][..])) {
        let mut text = String::new();
        write_json(&root, ws, &mut text);
        assert_walk_matches_model(&root, &text)?;
    }

    // The first condition read in passing is the one the rules would read from its text.
    #[test]
    fn first_condition_is_what_its_text_reads(
        members in prop::collection::vec((prop::sample::select(CONDITION_KEYS), any::<bool>(), json_value()), 0..8),
        more in prop::collection::vec(json_value(), 0..2),
        strict in any::<bool>(),
        ws in prop::sample::select(&["", " ", "\n\t "][..]),
    ) {
        let first = Json::Object(
            members.into_iter().map(|(k, esc, v)| (k.to_owned(), esc, v)).collect(),
        );
        let mut items = vec![first];
        items.extend(more);
        let root = Json::Object(vec![(
            "status".to_owned(),
            false,
            Json::Object(vec![("conditions".to_owned(), false, Json::Array(items))]),
        )]);
        let mut text = String::new();
        write_json(&root, ws, &mut text);
        let status = status_of(&text, strict);
        let Field::Value(list) = status.conditions else {
            panic!("conditions is a list: {text}");
        };
        let item = list.items().next().expect("one item at least");
        if let Some((raw, condition)) = status.first_condition {
            prop_assert_eq!(raw, item, "{}", text);
            prop_assert_eq!(Some(condition), Condition::read(item), "{}", text);
        }
    }

    // Free-form content of any shape: read in one loop while it holds no repeated key,
    // walked again with paths once it does.
    #[test]
    fn lists_what_the_model_lists_in_fields_v1(content in json_value(), ws in prop::sample::select(&["", " ", "\n\t "][..])) {
        let entry = Json::Object(vec![
            ("manager".to_owned(), false, Json::Scalar("\"m\"")),
            ("fieldsV1".to_owned(), false, content.clone()),
            ("zeta".to_owned(), false, content),
        ]);
        let root = Json::Object(vec![(
            "metadata".to_owned(),
            false,
            Json::Object(vec![(
                "managedFields".to_owned(),
                false,
                Json::Array(vec![entry.clone(), entry]),
            )]),
        )]);
        let mut text = String::new();
        write_json(&root, ws, &mut text);
        assert_walk_matches_model(&root, &text)?;
    }
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = check(&bytes);
    }

    #[test]
    fn never_panics_on_arbitrary_structural_bytes(bytes in prop::collection::vec(
        prop::sample::select(&b"{}[]\":,\\ u0aeE.-+tfn\xc3\xa9"[..]), 0..128)) {
        let _ = check(&bytes);
    }

    #[test]
    fn judges_mutated_objects_like_serde_json(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..6)
    ) {
        let mut bytes = SAMPLE.as_bytes().to_vec();
        for (at, op, byte) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => { bytes.remove(i); }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => bytes.push(byte),
            }
        }
        let ours = check(&bytes);
        let theirs = serde_json::from_slice::<serde_json::Value>(&bytes);
        prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?}: {:?}", String::from_utf8_lossy(&bytes), ours);
    }
}
