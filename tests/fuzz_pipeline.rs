//! A fuzz harness for the admission pipeline that runs on stable: proptest drives
//! [`admission::review`] with arbitrary bytes, generated review envelopes, byte-level corruption of
//! the captured kube-apiserver reviews, and structured mutations of those reviews (fields
//! deleted, duplicated, retyped, unicode inserted into strings, IP-like strings in
//! `status.ips`).
//!
//! Properties: judging never panics, not even a panic the pipeline catches (`summary.panicked`:
//! a caught panic is still a bug); the same bytes give the same answer; an answerable review gets
//! a well-formed AdmissionReview echoing apiVersion and uid; `/mutate` never denies a review it
//! can answer, its patch applies to the object and is idempotent; `/validate` denies only with
//! 400 or 422, never with an internal 500; and a body serde_json refuses as JSON is never
//! admitted (the review is read by the project's own reader, src/admission/json/reader.rs).
//!
//! The default case counts keep `make test` fast. A long run (see docs/robustness.md):
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz_pipeline`.

mod common;

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use ipamclaim_webhook::admission::model::types::{GROUP, KIND, PLURAL, VERSION};
use ipamclaim_webhook::admission::rules::defaulting::Defaults;
use ipamclaim_webhook::admission::{self, Enforcement, FieldValidation, Options, Webhook};
use ipamclaim_webhook::cluster::networks::{Nad, Nads, SharedNetworks};
use ipamclaim_webhook::cluster::{Claim, Claims, SharedIndex};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use serde_json::{json, Value};

/// The captured reviews, read once; fails loudly when they are missing.
fn captured() -> &'static [Vec<u8>] {
    static CAPTURED: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        common::captured_payloads()
            .iter()
            .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
            .collect()
    })
}

/// The captured reviews, parsed.
fn captured_values() -> &'static [Value] {
    static VALUES: OnceLock<Vec<Value>> = OnceLock::new();
    VALUES.get_or_init(|| {
        captured()
            .iter()
            .map(|b| serde_json::from_slice(b).expect("a captured review is JSON"))
            .collect()
    })
}

// === strategies ===

fn options() -> impl Strategy<Value = Options> {
    let field_validation = prop_oneof![
        Just(FieldValidation::Strict),
        Just(FieldValidation::Warn),
        Just(FieldValidation::Ignore),
    ];
    let enforcement = prop_oneof![
        Just(Enforcement::Deny),
        Just(Enforcement::Warn),
        Just(Enforcement::Audit),
    ];
    (
        field_validation,
        enforcement,
        prop::option::of(Just("eth0".to_owned())),
        prop::option::of(Just("k8s.cni.cncf.io/network".to_owned())),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(field_validation, enforcement, default_interface, network_label, unique, fit)| {
                Options {
                    field_validation,
                    defaults: Defaults {
                        default_interface,
                        network_label,
                    },
                    enforcement,
                    unique_addresses: unique.then(holders),
                    check_networks: fit.then(networks),
                }
            },
        )
}

/// `--check-networks` over the captured reviews' network (tenantred in ns1, with a gateway, an
/// excluded range and an IPv6 subnet beyond OVN-Kubernetes' allocator) and a network of /31
/// and /127 subnets, so that generated addresses fit, misfit and get completed.
fn networks() -> admission::rules::networks::View {
    static NETWORKS: OnceLock<admission::rules::networks::View> = OnceLock::new();
    NETWORKS
        .get_or_init(|| {
            let nads: Nads = [
                Nad::parse(
                    "ns1",
                    "tenantred",
                    Some(r#"{"name":"tenantred","type":"ovn-k8s-cni-overlay","topology":"layer2","role":"primary","subnets":"10.128.20.0/24,fd10:128:20::/48","excludeSubnets":"10.128.20.128/25","allowPersistentIPs":true}"#),
                ),
                Nad::parse(
                    "ns2",
                    "p2p",
                    Some(r#"{"name":"p2p","type":"ovn-k8s-cni-overlay","topology":"localnet","subnets":"10.1.2.2/31,2001:db8::/127","allowPersistentIPs":true}"#),
                ),
            ]
            .into_iter()
            .collect();
            Arc::new(SharedNetworks::of(nads))
        })
        .clone()
}

/// `--unique-addresses` over claims that hold the addresses the generated reviews ask for
/// most often, in the captured reviews' namespace and another.
fn holders() -> admission::rules::conflicts::View {
    static HOLDERS: OnceLock<admission::rules::conflicts::View> = OnceLock::new();
    HOLDERS
        .get_or_init(|| {
            let claim = |namespace: &str, name: &str, addresses: &[&str]| Claim {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                uid: String::new(),
                network: "tenantred".to_owned(),
                addresses: addresses.iter().map(|a| a.parse().expect("ip")).collect(),
            };
            let claims: Claims = [
                claim("ns1", "holder-a", &["10.128.20.8", "fd10:128:20::8"]),
                claim("ns2", "holder-b", &["10.1.2.3", "2001:db8::1"]),
            ]
            .into_iter()
            .collect();
            Arc::new(SharedIndex::of(claims))
        })
        .clone()
}

fn webhook() -> impl Strategy<Value = Webhook> {
    prop_oneof![Just(Webhook::Validate), Just(Webhook::Mutate)]
}

/// Strings that look like addresses, right or wrong in every way DESIGN §4 names: leading
/// zeros, octets over 255, prefixes out of range, upper case, non-canonical IPv6, IPv4-mapped,
/// zones.
fn ip_like() -> impl Strategy<Value = String> {
    let prefix =
        prop::option::of(0u16..140).prop_map(|p| p.map(|p| format!("/{p}")).unwrap_or_default());
    let v4 = (
        prop::array::uniform4(0u16..300),
        any::<bool>(),
        prefix.clone(),
    )
        .prop_map(|(octets, zero_pad, prefix)| {
            let text: Vec<String> = octets
                .iter()
                .map(|o| {
                    if zero_pad && *o < 10 {
                        format!("0{o}")
                    } else {
                        o.to_string()
                    }
                })
                .collect();
            format!("{}{prefix}", text.join("."))
        });
    let v6 = (
        prop::collection::vec(0u32..=0xffff, 1..=8),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prefix,
    )
        .prop_map(|(groups, upper, compress, pad, prefix)| {
            let mut text: Vec<String> = groups
                .iter()
                .map(|g| {
                    if pad {
                        format!("{g:04x}")
                    } else {
                        format!("{g:x}")
                    }
                })
                .collect();
            if compress || groups.len() < 8 {
                let at = groups.len() / 2;
                text.insert(at, String::new());
                if at == 0 {
                    text.insert(0, String::new());
                }
            }
            let text = format!("{}{prefix}", text.join(":"));
            if upper {
                text.to_uppercase()
            } else {
                text
            }
        });
    prop_oneof![
        v4,
        v6,
        (prop::array::uniform4(0u16..256))
            .prop_map(|o| format!("::ffff:{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        "fe80::[0-9a-f]{1,4}%[a-z0-9]{1,5}",
        "[0-9a-fA-F:./%]{0,40}",
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any::<String>().prop_map(Value::from),
        ip_like().prop_map(Value::from),
        "[a-z0-9.-]{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names: mostly the schema's own, so that known fields get wrong values.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&[
            "spec", "network", "interface", "ipRequests", "status", "ips", "ownerPod", "name",
            "conditions", "type", "reason", "message", "lastTransitionTime", "observedGeneration",
            "metadata", "labels", "generateName", "namespace", "apiVersion", "kind",
        ][..]).prop_map(str::to_owned),
        1 => "[a-zA-Z~/]{1,8}",
        1 => any::<String>(),
    ]
}

/// A step along a JSON path.
#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Item(usize),
}

/// One change to a captured review, applied inside `request.object` or `request.oldObject`.
#[derive(Clone, Debug)]
enum Mutation {
    /// Remove a field or list item.
    Delete(Index),
    /// Write a field's key twice, the first time with this value (the later key wins when
    /// decoded, as in the API server; strict field checking must see both).
    Duplicate(Index, Value),
    /// Replace a value with one of any type.
    Retype(Index, Value),
    /// Insert text into a string value at a character position.
    InsertText(Index, String, Index),
    /// Add (or replace) a named field in an object.
    AddField(Index, String, Value),
    /// Set `status.ips` of `request.object`.
    SetIps(Vec<String>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), json_value()).prop_map(|(i, v)| Mutation::Duplicate(i, v)),
        (any::<Index>(), json_value()).prop_map(|(i, v)| Mutation::Retype(i, v)),
        (any::<Index>(), any::<String>(), any::<Index>())
            .prop_map(|(i, s, at)| Mutation::InsertText(i, s, at)),
        (any::<Index>(), field_name(), json_value())
            .prop_map(|(i, k, v)| Mutation::AddField(i, k, v)),
        prop::collection::vec(ip_like(), 0..4).prop_map(Mutation::SetIps),
    ]
}

/// A captured review and the mutations to apply to it.
fn mutated_review() -> impl Strategy<Value = (usize, Vec<Mutation>)> {
    (0..captured().len(), prop::collection::vec(mutation(), 1..6))
}

/// Mostly `good`, sometimes any JSON value at all.
fn mostly(good: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop_oneof![19 => good, 1 => json_value()]
}

/// AdmissionReview envelopes built field by field: each field right, wrong or missing, and
/// objects that are captured ones or any JSON at all.
fn envelope() -> impl Strategy<Value = Value> {
    let api_version = mostly(prop_oneof![
        Just(json!(admission::ADMISSION_V1)),
        Just(json!(admission::ADMISSION_V1BETA1)),
    ]);
    let kind = mostly(Just(json!("AdmissionReview")));
    let uid = mostly("[a-z0-9-]{1,36}".prop_map(Value::from));
    let gvk = mostly(prop_oneof![
        4 => Just(json!({"group": GROUP, "version": VERSION, "kind": KIND})),
        1 => Just(json!({"group": "", "version": "v1", "kind": "Pod"})),
    ]);
    let gvr = mostly(Just(
        json!({"group": GROUP, "version": VERSION, "resource": PLURAL}),
    ));
    let operation = mostly(
        prop::sample::select(&["CREATE", "UPDATE", "DELETE", "CONNECT", "PATCH"][..])
            .prop_map(Value::from),
    );
    let sub_resource = mostly(prop_oneof![Just(json!("status")), Just(json!(""))]);
    let object = || {
        prop_oneof![
            3 => any::<Index>().prop_map(|i| {
                let reviews = captured_values();
                let review = &reviews[i.index(reviews.len())];
                match &review["request"]["object"] {
                    Value::Null => review["request"]["oldObject"].clone(),
                    object => object.clone(),
                }
            }),
            2 => json_value(),
            1 => Just(Value::Null),
        ]
    };
    (
        (api_version, kind, uid, gvk, gvr),
        (operation, sub_resource, object(), object()),
        prop::collection::vec(prop::bool::weighted(0.1), 10),
    )
        .prop_map(
            |((api_version, kind, uid, gvk, gvr), (operation, sub, object, old), omit)| {
                // `omit[n]` leaves field n out (rarely).
                let fields = [
                    ("uid", uid),
                    ("kind", gvk),
                    ("resource", gvr),
                    ("operation", operation),
                    ("subResource", sub),
                    ("object", object),
                    ("oldObject", old),
                ];
                let request: serde_json::Map<String, Value> = fields
                    .into_iter()
                    .enumerate()
                    .filter(|(n, _)| !omit[*n])
                    .map(|(_, (k, v))| (k.to_owned(), v))
                    .collect();
                let mut review = serde_json::Map::new();
                for (n, (k, v)) in [
                    ("apiVersion", api_version),
                    ("kind", kind),
                    ("request", Value::Object(request)),
                ]
                .into_iter()
                .enumerate()
                {
                    if !omit[n + 7] {
                        review.insert(k.to_owned(), v);
                    }
                }
                Value::Object(review)
            },
        )
}

// === applying mutations ===

/// Every path below the roots `request.object` and `request.oldObject` (the roots themselves
/// excluded: replacing them changes the envelope, which other strategies cover).
fn paths(review: &Value) -> Vec<Vec<Seg>> {
    fn walk(v: &Value, at: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        let children: Vec<(Seg, &Value)> = match v {
            Value::Object(map) => map.iter().map(|(k, v)| (Seg::Key(k.clone()), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Seg::Item(i), v))
                .collect(),
            _ => return,
        };
        for (seg, child) in children {
            at.push(seg);
            out.push(at.clone());
            walk(child, at, out);
            at.pop();
        }
    }
    let mut out = Vec::new();
    for root in ["object", "oldObject"] {
        let mut at = vec![Seg::Key("request".into()), Seg::Key(root.into())];
        let value = &review["request"][root];
        walk(value, &mut at, &mut out);
    }
    out
}

fn get<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Item(i) => v.get(*i),
    })
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.as_object_mut()?.get_mut(k),
        Seg::Item(i) => v.as_array_mut()?.get_mut(*i),
    })
}

/// Applies `mutations` and returns the review's bytes (with any duplicated keys).
fn apply(mut review: Value, mutations: &[Mutation]) -> Vec<u8> {
    let mut duplicates: Vec<(Vec<Seg>, Value)> = Vec::new();
    for m in mutations {
        let all = paths(&review);
        let pick = |i: &Index, filter: &dyn Fn(&[Seg]) -> bool| -> Option<Vec<Seg>> {
            let candidates: Vec<&Vec<Seg>> = all.iter().filter(|p| filter(p)).collect();
            (!candidates.is_empty()).then(|| candidates[i.index(candidates.len())].clone())
        };
        match m {
            Mutation::Delete(i) => {
                if let Some(path) = pick(i, &|_| true) {
                    let (last, parent) = path.split_last().expect("not a root");
                    match (get_mut(&mut review, parent), last) {
                        (Some(Value::Object(map)), Seg::Key(k)) => {
                            map.remove(k);
                        }
                        (Some(Value::Array(items)), Seg::Item(n)) => {
                            items.remove(*n);
                        }
                        _ => {}
                    }
                }
            }
            Mutation::Duplicate(i, value) => {
                if let Some(path) = pick(i, &|p| matches!(p.last(), Some(Seg::Key(_)))) {
                    duplicates.push((path, value.clone()));
                }
            }
            Mutation::Retype(i, value) => {
                if let Some(slot) = pick(i, &|_| true).and_then(|p| get_mut(&mut review, &p)) {
                    *slot = value.clone();
                }
            }
            Mutation::InsertText(i, text, at) => {
                let string_paths = |p: &[Seg]| get(&review, p).is_some_and(Value::is_string);
                if let Some(path) = pick(i, &string_paths) {
                    if let Some(Value::String(s)) = get_mut(&mut review, &path) {
                        let chars: Vec<char> = s.chars().collect();
                        let n = at.index(chars.len() + 1);
                        let mut out: String = chars[..n].iter().collect();
                        out.push_str(text);
                        out.extend(&chars[n..]);
                        *s = out;
                    }
                }
            }
            Mutation::AddField(i, key, value) => {
                // Any object, the roots included.
                let roots = ["object", "oldObject"]
                    .map(|r| vec![Seg::Key("request".into()), Seg::Key(r.into())]);
                let objects: Vec<&Vec<Seg>> = roots
                    .iter()
                    .chain(&all)
                    .filter(|p| get(&review, p).is_some_and(Value::is_object))
                    .collect();
                if !objects.is_empty() {
                    let target = objects[i.index(objects.len())].clone();
                    if let Some(Value::Object(map)) = get_mut(&mut review, &target) {
                        map.insert(key.clone(), value.clone());
                    }
                }
            }
            Mutation::SetIps(ips) => {
                if let Some(Value::Object(object)) = review["request"].get_mut("object") {
                    let status = object.entry("status").or_insert_with(|| json!({}));
                    if let Value::Object(status) = status {
                        status.insert("ips".into(), json!(ips));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    write_json(&review, &mut Vec::new(), &duplicates, &mut out);
    out
}

/// Serialises `v`, writing each key in `duplicates` twice: first with the extra value.
fn write_json(v: &Value, at: &mut Vec<Seg>, duplicates: &[(Vec<Seg>, Value)], out: &mut Vec<u8>) {
    let key = |out: &mut Vec<u8>, k: &str| {
        serde_json::to_writer(&mut *out, k).expect("write key");
        out.push(b':');
    };
    match v {
        Value::Object(map) => {
            out.push(b'{');
            for (n, (k, child)) in map.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                at.push(Seg::Key(k.clone()));
                for (_, extra) in duplicates.iter().filter(|(p, _)| p == at) {
                    key(out, k);
                    serde_json::to_writer(&mut *out, extra).expect("write value");
                    out.push(b',');
                }
                key(out, k);
                write_json(child, at, duplicates, out);
                at.pop();
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (n, child) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                at.push(Seg::Item(n));
                write_json(child, at, duplicates, out);
                at.pop();
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("write scalar"),
    }
}

/// Where the tokens of a JSON text are: numbers and string contents (byte ranges), and the
/// bytes of structure (`{}[],:` and quotes).
struct Tokens {
    numbers: Vec<std::ops::Range<usize>>,
    strings: Vec<std::ops::Range<usize>>,
    structure: Vec<usize>,
}

fn tokens(text: &[u8]) -> Tokens {
    let mut t = Tokens {
        numbers: Vec::new(),
        strings: Vec::new(),
        structure: Vec::new(),
    };
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                t.structure.push(i);
                let start = i + 1;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                t.strings.push(start..i.min(text.len()));
                t.structure.push(i.min(text.len().saturating_sub(1)));
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < text.len() && b"-+.eE0123456789".contains(&text[i]) {
                    i += 1;
                }
                t.numbers.push(start..i);
            }
            b'{' | b'}' | b'[' | b']' | b',' | b':' => {
                t.structure.push(i);
                i += 1;
            }
            _ => i += 1,
        }
    }
    t
}

/// One rewrite of a token (see [`tokens`]).
#[derive(Clone, Debug)]
enum TokenEdit {
    /// A number becomes this text.
    Number(Index, Vec<u8>),
    /// The inside of a string becomes this text.
    String(Index, Vec<u8>),
    /// A byte of structure is replaced by, or gets before it, this byte, or is removed.
    Structure(Index, u8, u8),
}

impl TokenEdit {
    fn apply(&self, body: &[u8]) -> Vec<u8> {
        let t = tokens(body);
        let splice = |range: std::ops::Range<usize>, with: &[u8]| {
            let mut out = body[..range.start].to_vec();
            out.extend_from_slice(with);
            out.extend_from_slice(&body[range.end..]);
            out
        };
        match self {
            TokenEdit::Number(at, text) if !t.numbers.is_empty() => {
                splice(t.numbers[at.index(t.numbers.len())].clone(), text)
            }
            TokenEdit::String(at, text) if !t.strings.is_empty() => {
                splice(t.strings[at.index(t.strings.len())].clone(), text)
            }
            TokenEdit::Structure(at, byte, op) if !t.structure.is_empty() => {
                let i = t.structure[at.index(t.structure.len())];
                match op % 3 {
                    0 => splice(i..i + 1, &[*byte]),
                    1 => splice(i..i, &[*byte]),
                    _ => splice(i..i + 1, &[]),
                }
            }
            _ => body.to_vec(),
        }
    }
}

fn token_edit() -> impl Strategy<Value = TokenEdit> {
    let number = prop::collection::vec(prop::sample::select(b"-+.eE0123456789".to_vec()), 0..8);
    let string = prop::collection::vec(
        prop_oneof![
            prop::sample::select(b"\\\"u0123456789abcdefABCDEFDnrtbf/x ".to_vec()),
            Just(0u8),
            Just(0x1f),
            Just(0x7f),
            Just(0xc3),
            Just(0xed),
            Just(0xff),
        ],
        0..10,
    );
    prop_oneof![
        (any::<Index>(), number).prop_map(|(at, text)| TokenEdit::Number(at, text)),
        (any::<Index>(), string).prop_map(|(at, text)| TokenEdit::String(at, text)),
        (
            any::<Index>(),
            prop::sample::select(b"{}[],:\" \\0ntf".to_vec()),
            any::<u8>()
        )
            .prop_map(|(at, byte, op)| TokenEdit::Structure(at, byte, op)),
    ]
}

// === properties ===

/// Judges `body`: never a panic (caught or not), the same answer twice, and when answered, a
/// well-formed AdmissionReview. Returns the answer, if any.
fn judge(body: &[u8], webhook: Webhook, opts: &Options) -> Result<Option<Value>, TestCaseError> {
    let first = admission::review(body, webhook, opts);
    let again = admission::review(body, webhook, opts);
    let (first, again) = match (first, again) {
        (Err(a), Err(b)) => {
            prop_assert_eq!(a.to_string(), b.to_string(), "same bytes, same refusal");
            return Ok(None);
        }
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            return Err(TestCaseError::fail(format!(
                "not deterministic: {a:?} then {b:?}"
            )))
        }
    };
    prop_assert!(
        !first.summary.panicked,
        "judging panicked (caught): {:?}",
        first.summary
    );
    prop_assert_eq!(&first.body, &again.body, "same bytes, same answer");

    let answer: Value = serde_json::from_slice(&first.body)
        .map_err(|e| TestCaseError::fail(format!("the answer is not JSON: {e}")))?;
    let response = &answer["response"];
    prop_assert_eq!(&answer["kind"], "AdmissionReview");
    prop_assert!(
        answer["apiVersion"] == admission::ADMISSION_V1
            || answer["apiVersion"] == admission::ADMISSION_V1BETA1,
        "apiVersion {}",
        answer["apiVersion"]
    );
    prop_assert!(
        response["uid"].as_str().is_some_and(|u| !u.is_empty()),
        "uid {}",
        response["uid"]
    );
    let allowed = response["allowed"].as_bool();
    prop_assert!(allowed.is_some(), "allowed {}", response["allowed"]);
    prop_assert_eq!(allowed, Some(first.summary.allowed));
    if allowed == Some(false) {
        let code = response["status"]["code"].as_u64();
        // A denial names a code; 500 only ever means an internal failure, which these inputs
        // must never cause.
        prop_assert!(
            matches!(code, Some(400 | 422)),
            "denied with code {code:?}: {}",
            response["status"]
        );
    }
    if let Some(patch) = response.get("patch") {
        prop_assert_eq!(&response["patchType"], "JSONPatch");
        prop_assert!(patch.is_string(), "patch {patch}");
    }
    Ok(Some(answer))
}

/// [`judge`], for a review that must be answered.
fn answered(body: &[u8], webhook: Webhook, opts: &Options) -> Result<Value, TestCaseError> {
    judge(body, webhook, opts)?
        .ok_or_else(|| TestCaseError::fail(format!("refused as unanswerable ({webhook:?})")))
}

/// The patch of a `/mutate` answer applies to the object, and the patched object, sent again,
/// yields no patch; the chain then judges the patched object without panicking.
fn mutate_is_idempotent(
    review: &[u8],
    answer: &Value,
    opts: &Options,
) -> Result<(), TestCaseError> {
    let Some(patch) = answer["response"]["patch"].as_str() else {
        return Ok(());
    };
    let patch = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .map_err(|e| TestCaseError::fail(format!("patch is not base64: {e}")))?;
    let patch: json_patch::Patch = serde_json::from_slice(&patch)
        .map_err(|e| TestCaseError::fail(format!("patch is not a JSON Patch: {e}")))?;
    // Decoded as the pipeline decodes it (the last of duplicate keys wins).
    let mut review: Value = serde_json::from_slice(review).expect("an answered review is JSON");
    let object = &mut review["request"]["object"];
    json_patch::patch(object, &patch)
        .map_err(|e| TestCaseError::fail(format!("the patch does not apply: {e}")))?;
    let again = serde_json::to_vec(&review).expect("serialise");
    let second = answered(&again, Webhook::Mutate, opts)?;
    prop_assert!(
        second["response"].get("patch").is_none(),
        "not idempotent: second patch {} after {}",
        second["response"]["patch"],
        serde_json::to_string(&patch).unwrap_or_default()
    );
    judge(&again, Webhook::Validate, opts)?;
    Ok(())
}

/// proptest's defaults (256 cases, or `PROPTEST_CASES`), with failures kept beside this file in
/// `fuzz_pipeline.proptest-regressions` and replayed first on the next run.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        webhook in webhook(),
        opts in options(),
    ) {
        judge(&body, webhook, &opts)?;
    }

    #[test]
    fn generated_envelopes_never_panic(
        review in envelope(),
        webhook in webhook(),
        opts in options(),
    ) {
        let body = serde_json::to_vec(&review).expect("serialise");
        if let Some(answer) = judge(&body, webhook, &opts)? {
            prop_assert_eq!(&answer["apiVersion"], &review["apiVersion"]);
            prop_assert_eq!(&answer["response"]["uid"], &review["request"]["uid"]);
        }
    }

    #[test]
    fn corrupted_captured_reviews_never_panic(
        which in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 1..3),
        webhook in webhook(),
        opts in options(),
    ) {
        let mut body = captured()[which.index(captured().len())].clone();
        for (at, byte, op) in edits {
            let i = at.index(body.len() + 1);
            match op {
                0 if i < body.len() => body[i] = byte,
                1 => body.insert(i, byte),
                _ => body.truncate(i),
            }
        }
        judge(&body, webhook, &opts)?;
    }

    // The review is read by a hand-written reader (src/admission/json/reader.rs), not by serde_json:
    // whatever serde_json refuses as JSON (even where it only skips a value) must never be
    // admitted. Each case rewrites a few tokens of a captured review: a number, the inside of
    // a string, or a byte of structure, with text drawn from what matters to JSON's grammar.
    #[test]
    fn malformed_json_is_never_admitted(
        which in any::<Index>(),
        edits in prop::collection::vec(token_edit(), 1..4),
        webhook in webhook(),
        opts in options(),
    ) {
        let mut body = captured()[which.index(captured().len())].clone();
        for edit in edits {
            body = edit.apply(&body);
        }
        let malformed = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err();
        if let Some(answer) = judge(&body, webhook, &opts)? {
            prop_assert!(
                !(malformed && answer["response"]["allowed"] == true),
                "serde_json refuses this body, the webhook admitted it: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn mutated_captured_reviews_get_well_formed_answers(
        (which, mutations) in mutated_review(),
        opts in options(),
    ) {
        let original = &captured_values()[which];
        let body = apply(original.clone(), &mutations);
        for webhook in [Webhook::Validate, Webhook::Mutate] {
            // The envelope is intact, so every mutated review is answered.
            let answer = answered(&body, webhook, &opts)?;
            prop_assert_eq!(&answer["apiVersion"], &original["apiVersion"]);
            prop_assert_eq!(&answer["response"]["uid"], &original["request"]["uid"]);
            if webhook == Webhook::Mutate {
                // Every captured review is an IPAMClaim of a supported operation with the
                // objects it needs: the mutating webhook never denies it.
                prop_assert_eq!(&answer["response"]["allowed"], true, "{}", answer);
                mutate_is_idempotent(&body, &answer, &opts)?;
            }
        }
    }

    #[test]
    fn ip_like_strings_in_status_ips_default_idempotently(
        which in any::<Index>(),
        ips in prop::collection::vec(ip_like(), 0..5),
        opts in options(),
    ) {
        // The reviews with an object to default.
        let with_object: Vec<&Value> =
            captured_values().iter().filter(|r| r["request"]["object"].is_object()).collect();
        let original = with_object[which.index(with_object.len())];
        let body = apply(original.clone(), &[Mutation::SetIps(ips)]);
        let answer = answered(&body, Webhook::Mutate, &opts)?;
        prop_assert_eq!(&answer["response"]["allowed"], true, "{}", answer);
        mutate_is_idempotent(&body, &answer, &opts)?;
        let verdict = answered(&body, Webhook::Validate, &opts)?;
        prop_assert_eq!(&verdict["response"]["uid"], &original["request"]["uid"]);
    }
}

/// The mutation machinery itself: a duplicated key is written twice, the extra value first
/// (so that the original, written last, is the one a decoder keeps).
#[test]
fn duplicated_keys_are_written_twice() {
    let object = json!({"spec": {"network": "blue"}});
    let network = vec![Seg::Key("spec".into()), Seg::Key("network".into())];
    let mut out = Vec::new();
    write_json(&object, &mut Vec::new(), &[(network, json!(5))], &mut out);
    assert_eq!(
        String::from_utf8(out).expect("UTF-8"),
        r#"{"spec":{"network":5,"network":"blue"}}"#
    );
}

/// Every captured review, unmutated, passes the same properties (the harness has no false
/// alarm on real traffic).
#[test]
fn captured_reviews_pass_the_properties() {
    for (body, review) in captured().iter().zip(captured_values()) {
        for webhook in [Webhook::Validate, Webhook::Mutate] {
            let answer = judge(body, webhook, &Options::default())
                .unwrap_or_else(|e| panic!("{}: {e}", review["request"]["uid"]))
                .expect("answered");
            if webhook == Webhook::Mutate {
                mutate_is_idempotent(body, &answer, &Options::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", review["request"]["uid"]));
            }
        }
    }
}
