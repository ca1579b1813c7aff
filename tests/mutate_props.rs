//! Property: any valid IP or interface address, in any letter case and expansion, is rewritten
//! by `/mutate` to its canonical form, which `/validate` then admits when it is an interface
//! address (CIDR form, as `status.ips` requires) and refuses, in Kubernetes' CIDR-form words,
//! when it is a bare IP.

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use ipamclaim_webhook::admission::{review, Options, Webhook};
use proptest::prelude::*;
use serde_json::{json, Value};

/// A status-update review of a claim whose `status.ips` holds `ip`.
fn review_with_ip(ip: &str) -> Vec<u8> {
    let claim = json!({
        "apiVersion": "k8s.cni.cncf.io/v1alpha1",
        "kind": "IPAMClaim",
        "metadata": {"name": "vm-a.tenantred", "namespace": "ns1"},
        "spec": {"network": "tenantred", "interface": "pod16367aacb67"},
        "status": {"ips": [ip]}
    });
    let mut old = claim.clone();
    old.as_object_mut().unwrap().remove("status");
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "prop",
            "kind": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "kind": "IPAMClaim"},
            "resource": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "resource": "ipamclaims"},
            "subResource": "status",
            "name": "vm-a.tenantred",
            "namespace": "ns1",
            "operation": "UPDATE",
            "userInfo": {"username": "test"},
            "object": claim,
            "oldObject": old
        }
    }))
    .unwrap()
}

/// `/validate`'s verdict on a patched review: admitted exactly when the address has a prefix.
fn admitted_when_cidr(verdict: &Value, cidr: bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        &verdict["response"]["allowed"],
        &Value::Bool(cidr),
        "{}",
        verdict
    );
    if !cidr {
        let message = verdict["response"]["status"]["message"].as_str().unwrap();
        prop_assert!(
            message.ends_with(
                "must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)"
            ),
            "{}",
            message
        );
    }
    Ok(())
}

fn answer(body: &[u8], webhook: Webhook) -> Value {
    let reviewed = review(body, webhook, &Options::default()).expect("answerable");
    assert!(!reviewed.summary.panicked);
    serde_json::from_slice(&reviewed.body).expect("json")
}

/// The IP after `/mutate`'s patch is applied, and the patched review.
fn mutated(ip: &str) -> (String, Vec<u8>) {
    let body = review_with_ip(ip);
    let answer = answer(&body, Webhook::Mutate);
    assert_eq!(answer["response"]["allowed"], true);
    let mut request: Value = serde_json::from_slice(&body).unwrap();
    if let Some(patch) = answer["response"]["patch"].as_str() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut request["request"]["object"], &patch).unwrap();
    }
    let ip = request["request"]["object"]["status"]["ips"][0]
        .as_str()
        .unwrap()
        .to_owned();
    (ip, serde_json::to_vec(&request).unwrap())
}

/// `ip` written with every group in full (`2001:0db8:0000:…`), letters in random case.
fn expanded(ip: Ipv6Addr, upper: &[bool]) -> String {
    let full = ip
        .segments()
        .iter()
        .map(|s| format!("{s:04x}"))
        .collect::<Vec<_>>()
        .join(":");
    full.chars()
        .zip(upper.iter().cycle())
        .map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c })
        .collect()
}

fn not_mapped() -> impl Strategy<Value = Ipv6Addr> {
    // Zero-heavy segments, so that `::` compression is exercised.
    prop::array::uniform8(prop_oneof![Just(0u16), Just(1u16), any::<u16>()])
        .prop_map(Ipv6Addr::from)
        .prop_filter(
            "IPv4-mapped addresses are ambiguous, never rewritten",
            |ip| ip.to_ipv4_mapped().is_none(),
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_spelling_of_an_ipv6_address_ends_up_canonical_and_judged(
        ip in not_mapped(),
        prefix in proptest::option::of(0u8..=128),
        upper in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let suffix = prefix.map(|p| format!("/{p}")).unwrap_or_default();
        let spelled = format!("{}{suffix}", expanded(ip, &upper));
        let canonical = format!("{ip}{suffix}");
        let (result, patched) = mutated(&spelled);
        prop_assert_eq!(&result, &canonical);
        admitted_when_cidr(&answer(&patched, Webhook::Validate), prefix.is_some())?;
        // Reinvocation: the canonical value is left alone.
        let (again, _) = mutated(&canonical);
        prop_assert_eq!(again, canonical);
    }

    #[test]
    fn any_canonical_ipv4_address_is_left_alone_and_judged(
        ip in any::<u32>().prop_map(Ipv4Addr::from),
        prefix in proptest::option::of(0u8..=32),
    ) {
        let text = format!("{ip}{}", prefix.map(|p| format!("/{p}")).unwrap_or_default());
        let (result, patched) = mutated(&text);
        prop_assert_eq!(&result, &text);
        admitted_when_cidr(&answer(&patched, Webhook::Validate), prefix.is_some())?;
    }

    #[test]
    fn ipv4_with_leading_zeros_is_never_guessed(ip in any::<u32>().prop_map(Ipv4Addr::from)) {
        let o = ip.octets();
        let ambiguous = format!("{:03}.{:03}.{:03}.{:03}", o[0], o[1], o[2], o[3]);
        prop_assume!(ambiguous != ip.to_string());
        let (result, patched) = mutated(&ambiguous);
        prop_assert_eq!(&result, &ambiguous, "left for validation to reject");
        let verdict = answer(&patched, Webhook::Validate);
        prop_assert_eq!(&verdict["response"]["allowed"], &Value::Bool(false));
    }
}
