//! Address conflicts between claims (`--unique-addresses`, DESIGN §9): the verdict on an
//! address that another claim on the same network already holds.
//!
//! The core sees the cluster only through [`Holders`], a read-only lookup that a front end
//! passes in [`Options`](crate::admission::Options): `serve` hands it the watched index,
//! `replay` an index of its inputs, tests a fixed one. Nothing here knows where the holders
//! come from.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::admission::answer::field::Report as _;
use crate::admission::answer::field::{FieldError, Path};
use crate::admission::answer::gotext::{go_quote, quote_clipped};
use crate::admission::model::types::KIND;
use crate::admission::model::view::{Claim, Field, List};
use crate::admission::rules::ip::{self, AddressError};
use crate::admission::rules::Verdict;

/// The two lists of a claim that hold addresses, as `(parent, member)`.
pub const ADDRESS_LISTS: [(&str, &str); 2] = [("spec", "ipRequests"), ("status", "ips")];

/// The claim under review, which never conflicts with itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimant<'a> {
    /// Its namespace (`request.namespace`).
    pub namespace: &'a str,
    /// Its name (`request.name`, or the object's `metadata.name`).
    pub name: &'a str,
}

/// A claim that holds (or has reserved) an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// A read-only view of the addresses that the claims of a cluster hold on each network.
pub trait Holders: Send + Sync + fmt::Debug {
    /// A claim other than `claimant` that holds `ip` on `network`, or has reserved it; `None`
    /// when the address is free to `claimant`.
    fn holder(&self, network: &str, ip: IpAddr, claimant: &Claimant<'_>) -> Option<Holder>;
}

/// The view the pipeline is given: shared by every worker, read-only to the core.
pub type View = Arc<dyn Holders>;

/// What an admitted CREATE or UPDATE adds to the holders, for the front end to record:
/// `serve` reserves it until the watch shows the claim, `replay` indexes it for the documents
/// after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// The claim's namespace.
    pub namespace: String,
    /// The claim's name.
    pub name: String,
    /// Its `metadata.uid`, empty when the object has none (a file that was never in a
    /// cluster): with the namespace and name, the holder of the claim's reservations.
    pub uid: String,
    /// Its `spec.network`.
    pub network: String,
    /// Every address the claim holds once written, each once, sorted.
    pub addresses: Vec<AdmittedAddress>,
    /// Whether the review was a dry run: `serve` then reserves nothing (the webhook has no
    /// side effects), while `replay`, whose documents are all hypothetical, indexes it. Set by
    /// the pipeline, which reads `request.dryRun`.
    pub dry_run: bool,
}

/// One address of an [`Admitted`] claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmittedAddress {
    /// The address.
    pub ip: IpAddr,
    /// Whether the verdict judged it: false when it was already in the same list of
    /// `oldObject` (ratcheted), so that a conflict on it predates this review.
    pub judged: bool,
}

/// The address an item of an address list stands for, when it stands for exactly one: a
/// valid address, or one that is only not written canonically (`2001:DB8::1`). Ambiguous
/// values (leading zeros, IPv4-mapped IPv6) and non-addresses hold nothing. The strict parser
/// decides (about 550 instructions an address): a fast path through the standard parser and a
/// print of the address to compare its spelling cost three times as much for IPv6.
pub fn held_address(value: &str) -> Option<IpAddr> {
    match ip::parse(value) {
        Ok(address) => Some(address.ip),
        Err(AddressError::NotCanonical { canonical }) => Some(canonical.ip),
        Err(_) => None,
    }
}

/// `object.spec.network` when it is a non-empty string.
pub fn network_of<'a>(object: &Claim<'a>) -> Option<Cow<'a, str>> {
    let network = object.spec.value()?.network.str()?.decode();
    (!network.is_empty()).then_some(network)
}

/// The list `parent.member` of `object` (one of [`ADDRESS_LISTS`]), when it is a list.
fn list<'a>(object: &Claim<'a>, (parent, _): (&str, &str)) -> Option<List<'a>> {
    let field = match parent {
        "spec" => object.spec.value()?.ip_requests,
        _ => object.status.value()?.ips,
    };
    match field {
        Field::Value(list) => Some(list),
        _ => None,
    }
}

/// The addresses of the list `which` of `old`, sorted, for ratcheting by binary search (a
/// list may be long: the check stays n log n).
fn old_addresses(old: Option<&Claim<'_>>, network: &str, which: (&str, &str)) -> Vec<IpAddr> {
    let Some(old) = old.filter(|o| network_of(o).as_deref() == Some(network)) else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = list(old, which)
        .iter()
        .flat_map(List::items)
        .filter_map(|item| held_address(&item.as_str()?.decode()))
        .collect();
    ips.sort_unstable();
    ips
}

/// Adds to `verdict` one error per address of `spec.ipRequests` and `status.ips` that another
/// claim on the same network holds, in the API server's allocation wording. On UPDATE an
/// address already in the same list of `old` is ratcheted: the conflict predates this change,
/// so it comes back as a warning instead.
///
/// Returns what the claim holds once written (every address, each once, sorted), for the
/// front end to reserve or index if the review is admitted; `None` when the object names no
/// network or holds no address.
pub fn check<'a>(
    holders: &dyn Holders,
    claimant: &Claimant<'_>,
    object: &Claim<'a>,
    old: Option<&Claim<'a>>,
    verdict: &mut Verdict<'a>,
) -> Option<Admitted> {
    let network = network_of(object)?;
    let mut addresses: Vec<AdmittedAddress> = Vec::new();
    for which in ADDRESS_LISTS {
        let Some(items) = list(object, which).filter(|l| l.len > 0) else {
            continue;
        };
        let before = old_addresses(old, &network, which);
        let mut path: Option<Path> = None;
        for (i, item) in items.items().enumerate() {
            let Some(text) = item.as_str().map(|s| s.decode()) else {
                continue;
            };
            let Some(ip) = held_address(&text) else {
                continue;
            };
            let judged = before.binary_search(&ip).is_err();
            addresses.push(AdmittedAddress { ip, judged });
            let Some(holder) = holders.holder(&network, ip, claimant) else {
                continue;
            };
            let path = path.get_or_insert_with(|| Path::new(which.0).child(which.1));
            let error = FieldError::invalid(
                path.index(i),
                text,
                allocated(ip, &holder, claimant, &network),
            );
            if judged {
                verdict.errors.push(error);
            } else {
                verdict.ratcheted.push(error);
            }
        }
    }
    if addresses.is_empty() {
        return None;
    }
    // Each address once (n log n: a list may be long); judged if any list judged it.
    addresses.sort_unstable_by_key(|a| a.ip);
    addresses.dedup_by(|later, kept| {
        let same = later.ip == kept.ip;
        if same {
            kept.judged |= later.judged;
        }
        same
    });
    let uid = object
        .metadata
        .value()
        .and_then(|m| m.uid.str())
        .map(|uid| uid.decode().into_owned())
        .unwrap_or_default();
    Some(Admitted {
        namespace: claimant.namespace.to_owned(),
        name: claimant.name.to_owned(),
        uid,
        network: network.into_owned(),
        addresses,
        dry_run: false,
    })
}

/// `address 10.0.0.5 is already allocated to IPAMClaim "vm-b.tenantred" on network "tenantred"`;
/// the holder is named only when it is in the claimant's namespace, so that claim names never
/// leak across tenants.
fn allocated(ip: IpAddr, holder: &Holder, claimant: &Claimant<'_>, network: &str) -> String {
    let network = quote_clipped(network);
    if holder.namespace == claimant.namespace {
        let name = quote_clipped(&holder.name);
        format!("address {ip} is already allocated to {KIND} {name} on network {network}")
    } else {
        format!("address {ip} is already allocated to an {KIND} in another namespace on network {network}")
    }
}

// === impl Holder ===

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, go_quote(&self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::model::view::testing;
    use serde_json::{json, Value};

    /// A fixed set of holders: `(namespace, name, network, ip)`.
    #[derive(Debug)]
    struct Fixed(Vec<(&'static str, &'static str, &'static str, IpAddr)>);

    impl Holders for Fixed {
        fn holder(&self, network: &str, ip: IpAddr, claimant: &Claimant<'_>) -> Option<Holder> {
            self.0
                .iter()
                .find(|(ns, name, net, held)| {
                    *net == network
                        && *held == ip
                        && (*ns != claimant.namespace || *name != claimant.name)
                })
                .map(|(ns, name, _, _)| Holder {
                    namespace: (*ns).to_owned(),
                    name: (*name).to_owned(),
                })
        }
    }

    fn fixed() -> Fixed {
        Fixed(vec![
            (
                "ns1",
                "vm-b.tenantred",
                "tenantred",
                "10.0.0.5".parse().unwrap(),
            ),
            (
                "ns2",
                "vm-x.tenantred",
                "tenantred",
                "fd00::7".parse().unwrap(),
            ),
        ])
    }

    const ME: Claimant<'static> = Claimant {
        namespace: "ns1",
        name: "vm-a.tenantred",
    };

    fn claim(requests: Value, ips: Value) -> Value {
        json!({
            "metadata": {"name": "vm-a.tenantred"},
            "spec": {"network": "tenantred", "interface": "pod1", "ipRequests": requests},
            "status": {"ips": ips},
        })
    }

    /// `check` of `object` (against `old`) with the fixed holders: the verdict it fills and
    /// what it returns for the claim to hold.
    fn run(object: &Value, old: Option<&Value>) -> (Verdict<'static>, Option<Admitted>) {
        let mut verdict = Verdict::default();
        let old = old.map(testing::claim);
        let admitted = check(
            &fixed(),
            &ME,
            &testing::claim(object),
            old.as_ref(),
            &mut verdict,
        );
        (verdict, admitted)
    }

    fn judge(object: &Value, old: Option<&Value>) -> Verdict<'static> {
        run(object, old).0
    }

    /// What `check` returns for the claim to hold.
    fn admitted(object: &Value, old: Option<&Value>) -> Option<Admitted> {
        run(object, old).1
    }

    fn texts(list: &crate::admission::answer::field::CappedErrors) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn names_a_holder_in_the_same_namespace() {
        let v = judge(&claim(json!([]), json!(["10.0.0.5/24"])), None);
        assert_eq!(
            texts(&v.errors),
            ["status.ips[0]: Invalid value: \"10.0.0.5/24\": address 10.0.0.5 is already allocated to IPAMClaim \"vm-b.tenantred\" on network \"tenantred\""]
        );
        assert_eq!(v.errors.kept.0[0].kind.cause_type(), "FieldValueInvalid");
    }

    #[test]
    fn never_names_a_holder_in_another_namespace() {
        let v = judge(&claim(json!(["fd00::7/64"]), json!([])), None);
        let msgs = texts(&v.errors);
        assert_eq!(
            msgs,
            ["spec.ipRequests[0]: Invalid value: \"fd00::7/64\": address fd00::7 is already allocated to an IPAMClaim in another namespace on network \"tenantred\""]
        );
        assert!(!msgs[0].contains("vm-x"));
    }

    #[test]
    fn the_prefix_length_does_not_matter() {
        for spelling in ["10.0.0.5", "10.0.0.5/16", "10.0.0.5/32"] {
            let v = judge(&claim(json!([spelling]), json!([])), None);
            assert_eq!(v.errors.len(), 1, "{spelling}");
        }
    }

    #[test]
    fn another_network_or_address_is_free() {
        let mut other = claim(json!(["10.0.0.5/24"]), json!(["10.0.0.6/24"]));
        assert_eq!(judge(&other, None).errors.len(), 1);
        other["spec"]["network"] = json!("blue");
        assert!(judge(&other, None).errors.is_empty());
    }

    #[test]
    fn a_claim_never_conflicts_with_itself() {
        let me_holding = Fixed(vec![(
            "ns1",
            "vm-a.tenantred",
            "tenantred",
            "10.0.0.5".parse().unwrap(),
        )]);
        let mut verdict = Verdict::default();
        let holds = check(
            &me_holding,
            &ME,
            &testing::claim(&claim(json!([]), json!(["10.0.0.5/24"]))),
            None,
            &mut verdict,
        );
        assert_eq!(verdict, Verdict::default());
        assert!(holds.is_some());
    }

    #[test]
    fn reports_both_lists_and_skips_values_that_are_no_address() {
        let v = judge(
            &claim(
                json!(["10.0.0.5/24"]),
                json!(["winner", "010.0.0.5", "10.0.0.5/24"]),
            ),
            None,
        );
        let paths: Vec<&str> = v.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["spec.ipRequests[0]", "status.ips[2]"]);
    }

    #[test]
    fn a_non_canonical_spelling_still_names_its_address() {
        let v = judge(&claim(json!([]), json!(["FD00::7/64"])), None);
        assert_eq!(v.errors.len(), 1);
    }

    #[test]
    fn ratchets_an_address_already_in_the_same_list_of_the_old_object() {
        let old = claim(json!([]), json!(["10.0.0.5/24"]));
        let new = claim(json!([]), json!(["10.0.0.5/24", "fd00::7/64"]));
        let v = judge(&new, Some(&old));
        assert_eq!(texts(&v.errors).len(), 1);
        assert_eq!(v.errors.kept.0[0].path.as_str(), "status.ips[1]");
        assert_eq!(v.ratcheted.len(), 1);
        assert_eq!(v.ratcheted.kept.0[0].path.as_str(), "status.ips[0]");
    }

    #[test]
    fn does_not_ratchet_an_address_that_moved_between_lists() {
        let old = claim(json!(["10.0.0.5/24"]), json!([]));
        let new = claim(json!(["10.0.0.5/24"]), json!(["10.0.0.5/24"]));
        let v = judge(&new, Some(&old));
        assert_eq!(v.ratcheted.len(), 1);
        assert_eq!(texts(&v.errors).len(), 1);
        assert_eq!(v.errors.kept.0[0].path.as_str(), "status.ips[0]");
    }

    #[test]
    fn does_not_ratchet_across_a_network_change() {
        let mut old = claim(json!([]), json!(["10.0.0.5/24"]));
        old["spec"]["network"] = json!("blue");
        let v = judge(&claim(json!([]), json!(["10.0.0.5/24"])), Some(&old));
        assert_eq!(v.errors.len(), 1);
        assert!(v.ratcheted.is_empty());
    }

    #[test]
    fn without_a_network_nothing_is_looked_up() {
        let mut object = claim(json!(["10.0.0.5"]), json!([]));
        object["spec"]["network"] = json!("");
        assert_eq!(judge(&object, None), Verdict::default());
        object["spec"]["network"] = json!(7);
        assert_eq!(judge(&object, None), Verdict::default());
    }

    #[test]
    fn admitted_carries_the_claims_uid() {
        let mut object = claim(json!(["10.0.0.9/24"]), json!([]));
        object["metadata"]["uid"] = json!("6f1c0a8e-1d2b-4c5e-9f00-0123456789ab");
        let a = admitted(&object, None).expect("addresses");
        assert_eq!(a.uid, "6f1c0a8e-1d2b-4c5e-9f00-0123456789ab");
    }

    #[test]
    fn admitted_lists_each_address_once_and_marks_ratcheted_ones() {
        let old = claim(json!(["10.0.0.5/24"]), json!(["fd00::1/64"]));
        let new = claim(
            json!(["10.0.0.5/24"]),
            json!(["10.0.0.5/24", "fd00::1/64", "x"]),
        );
        let a = admitted(&new, Some(&old)).expect("addresses");
        assert_eq!(a.network, "tenantred");
        assert_eq!(a.uid, "", "the object has no uid");
        assert_eq!(
            a.addresses,
            [
                AdmittedAddress {
                    ip: "10.0.0.5".parse().unwrap(),
                    judged: true
                },
                AdmittedAddress {
                    ip: "fd00::1".parse().unwrap(),
                    judged: false
                },
            ]
        );
        assert!(admitted(&claim(json!([]), json!([])), None).is_none());
    }

    #[test]
    fn an_item_holds_its_address_however_spelled_and_nothing_when_ambiguous() {
        let v4: IpAddr = "10.0.0.5".parse().unwrap();
        let v6: IpAddr = "fd00::5".parse().unwrap();
        for (value, held) in [
            ("10.0.0.5", Some(v4)),
            ("10.0.0.5/24", Some(v4)),
            ("10.0.0.5/33", None),
            ("10.0.0.5/024", None),
            ("010.0.0.5", None),
            ("fd00::5", Some(v6)),
            ("FD00::5", Some(v6)),
            ("fd00:0::5/64", Some(v6)),
            ("fd00::5/129", None),
            ("::ffff:1.2.3.4", None),
            ("fe80::1%eth0", None),
            ("1.2.3.4.5", None),
            ("", None),
            ("/", None),
        ] {
            assert_eq!(held_address(value), held, "{value:?}");
        }
    }
}
