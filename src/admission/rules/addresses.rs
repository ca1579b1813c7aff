//! Address lists (`status.ips`, `spec.ipRequests`): each item an address in Kubernetes' strict
//! canonical form (`status.ips` in CIDR form), the same address never twice, and at most one
//! requested address per IP family.

use crate::admission::answer::field::{FieldError, Path, Report};
use crate::admission::model::view::List;
use crate::admission::rules::ip::{self, AddressError};
use crate::admission::rules::repeats::{Bits, RepeatKeys};

/// At most one requested address per IP family.
pub(super) const IP_REQUESTS_MAX: usize = 2;

/// `spec.ipRequests`: at most two interface addresses, of different IP families.
pub(super) fn validate_ip_requests<'a>(requests: List<'a>, path: &Path, errs: &mut dyn Report<'a>) {
    if requests.len > IP_REQUESTS_MAX {
        errs.push(FieldError::too_many(
            path.clone(),
            requests.len,
            IP_REQUESTS_MAX,
        ));
    }
    if !errs.items() {
        return;
    }
    let addresses = validate_address_list(requests, Form::IpOrInterface, path, errs);
    let mut seen_family: Option<(usize, bool)> = None;
    for (i, item) in requests.items().enumerate() {
        let Some(v4) = addresses.family(i) else {
            continue;
        };
        match seen_family {
            Some((first, first_v4)) if first_v4 == v4 => {
                let value = item.as_str().map(|s| s.decode()).unwrap_or_default();
                errs.push(FieldError::invalid(
                    path.index(i),
                    value,
                    format!(
                        "must be of a different IP family than {}",
                        path.index(first)
                    ),
                ))
            }
            Some(_) => {}
            None => seen_family = Some((i, v4)),
        }
    }
}

/// What [`validate_address_list`] found of each item of an address list.
pub(super) struct AddressList {
    /// Per item, what it is ([`Class`]).
    classes: Vec<Class>,
    /// Per item, whether it repeats an earlier one.
    repeats: Bits,
}

/// What an item of an address list is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    /// Not a string.
    NotString,
    /// A valid IPv4 address or interface address.
    V4,
    /// A valid IPv6 address or interface address.
    V6,
    /// An address not written in canonical form.
    NotCanonical,
    /// An IP without the prefix length its list requires ([`Form::Interface`]); it still names
    /// its address, which counts for repeats.
    Bare,
    /// Not an address.
    Invalid,
}

// === impl AddressList ===

impl AddressList {
    /// Whether item `i` is a valid address that repeats no earlier one, and if so whether it
    /// is IPv4.
    pub(super) fn family(&self, i: usize) -> Option<bool> {
        match self.classes[i] {
            Class::V4 if !self.repeats.get(i) => Some(true),
            Class::V6 if !self.repeats.get(i) => Some(false),
            _ => None,
        }
    }
}

/// What the items of an address list must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Form {
    /// An interface address in CIDR form (`10.1.2.3/24`): `status.ips`, which OVN-Kubernetes
    /// parses with `ParseCIDR` when a network's controller starts, failing the whole start on
    /// the first entry that does not parse (DESIGN §1).
    Interface,
    /// An IP address or an interface address: `spec.ipRequests`.
    IpOrInterface,
}

/// Checks each item of an address list (`status.ips`, `spec.ipRequests`) and reports the
/// same address twice (whatever the spelling or prefix; a value that is not an address when
/// its text repeats). Returns what each item is.
///
/// The list is read twice: once to parse every item and find the repeats (by sorting compact
/// keys: an address, or where a string stands in the list's text), once to report each
/// item's errors in order.
pub(super) fn validate_address_list<'a>(
    list: List<'a>,
    form: Form,
    path: &Path,
    errs: &mut dyn Report<'a>,
) -> AddressList {
    let mut classes = Vec::with_capacity(list.len);
    let mut keys = RepeatKeys::new(list);
    for (i, item) in list.items().enumerate() {
        let Some(text) = item.as_str() else {
            classes.push(Class::NotString);
            continue;
        };
        let value = text.decode();
        // Kubernetes' IsValidInterfaceAddress reads a value without `/` as no CIDR at all.
        let bare = form == Form::Interface && !value.contains('/');
        let class = match ip::parse(&value) {
            Ok(a) if bare => {
                keys.address(a.ip, i);
                Class::Bare
            }
            Err(AddressError::NotCanonical { canonical }) if bare => {
                keys.address(canonical.ip, i);
                Class::Bare
            }
            Ok(a) => {
                keys.address(a.ip, i);
                if a.is_ipv4() {
                    Class::V4
                } else {
                    Class::V6
                }
            }
            Err(AddressError::NotCanonical { canonical }) => {
                keys.address(canonical.ip, i);
                Class::NotCanonical
            }
            Err(_) => {
                keys.text(text, i);
                Class::Invalid
            }
        };
        classes.push(class);
    }
    let repeats = keys.repeats();
    // Most lists are valid and repeat nothing: then there is nothing to report.
    let clean = classes.iter().all(|c| matches!(c, Class::V4 | Class::V6));
    if clean && !repeats.any() {
        return AddressList { classes, repeats };
    }
    for ((i, item), class) in list.items().enumerate().zip(&classes) {
        // Most items are valid: their path is written only for an error.
        let item_path = || path.index(i);
        let value = match item.as_str() {
            Some(text) => text.decode(),
            None => {
                errs.push(FieldError::type_invalid(item_path(), item, "string"));
                continue;
            }
        };
        if matches!(class, Class::NotCanonical | Class::Invalid | Class::Bare) {
            let error = if form == Form::Interface && !value.contains('/') {
                Err(AddressError::InvalidCidr)
            } else {
                ip::parse(&value)
            };
            if let Err(e) = error {
                errs.push(FieldError::invalid(item_path(), value.clone(), e.message()));
            }
        }
        if repeats.get(i) {
            errs.push(FieldError::duplicate(item_path(), value));
        }
    }
    AddressList { classes, repeats }
}

#[cfg(test)]
mod tests {
    use crate::admission::rules::testing::*;
    use serde_json::json;

    #[test]
    fn accepts_dual_stack_ip_requests() {
        assert_clean(&with(
            "/spec/ipRequests",
            json!(["10.0.0.5/24", "fd00::5/64"]),
        ));
        assert_clean(&with("/spec/ipRequests", json!([])));
        assert_clean(&with("/spec/ipRequests", json!(["10.0.0.5/24"])));
    }

    #[test]
    fn rejects_ip_requests_of_one_family() {
        assert_one(
            &with("/spec/ipRequests", json!(["10.0.0.5/24", "10.0.0.6/24"])),
            "spec.ipRequests[1]: Invalid value: \"10.0.0.6/24\": must be of a different IP family than spec.ipRequests[0]",
        );
    }

    #[test]
    fn rejects_more_than_two_ip_requests() {
        let msgs = messages(&with(
            "/spec/ipRequests",
            json!(["10.0.0.5/24", "fd00::5/64", "10.0.0.7/24"]),
        ));
        assert_eq!(
            msgs[0],
            "spec.ipRequests: Too many: 3: must have at most 2 items"
        );
    }

    #[test]
    fn rejects_invalid_ip_request() {
        let msgs = messages(&with("/spec/ipRequests", json!(["10.0.0.300/24"])));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].starts_with("spec.ipRequests[0]: Invalid value: \"10.0.0.300/24\""));
    }

    #[test]
    fn rejects_status_without_ips() {
        assert_one(&without("/status/ips"), "status.ips: Required value");
    }

    #[test]
    fn accepts_empty_ips() {
        assert_clean(&with("/status/ips", json!([])));
    }

    #[test]
    fn rejects_the_upstream_example_ips() {
        let msgs = messages(&with(
            "/status/ips",
            json!(["winner", "winner", "chicken", "dinner"]),
        ));
        let invalid = |i: usize, v: &str| {
            format!("status.ips[{i}]: Invalid value: \"{v}\": must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)")
        };
        assert_eq!(
            msgs,
            vec![
                invalid(0, "winner"),
                invalid(1, "winner"),
                "status.ips[1]: Duplicate value: \"winner\"".to_owned(),
                invalid(2, "chicken"),
                invalid(3, "dinner"),
            ]
        );
    }

    #[test]
    fn rejects_the_same_address_twice() {
        assert_one(
            &with("/status/ips", json!(["10.1.2.3/24", "10.1.2.3/16"])),
            "status.ips[1]: Duplicate value: \"10.1.2.3/16\"",
        );
    }

    #[test]
    fn rejects_non_string_ip() {
        assert_one(
            &with("/status/ips", json!([null])),
            "status.ips[0]: Invalid value: \"null\": status.ips[0] in body must be of type string: \"null\"",
        );
    }

    #[test]
    fn rejects_ip_out_of_range_with_kubernetes_wording() {
        assert_one(
            &with("/status/ips", json!(["10.1.2.300/24"])),
            "status.ips[0]: Invalid value: \"10.1.2.300/24\": must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)",
        );
        assert_one(
            &with("/spec/ipRequests", json!(["10.1.2.300"])),
            "spec.ipRequests[0]: Invalid value: \"10.1.2.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        );
    }

    #[test]
    fn rejects_non_canonical_ipv6_naming_the_canonical_form() {
        assert_one(
            &with("/status/ips", json!(["2001:DB8::1/64"])),
            "status.ips[0]: Invalid value: \"2001:DB8::1/64\": must be in canonical form (\"2001:db8::1/64\")",
        );
    }

    /// Regression (issue 26): OVN-Kubernetes parses every `status.ips` entry with `ParseCIDR`
    /// when a network's controller starts and fails the whole start on a bare IP.
    #[test]
    fn rejects_bare_ip_in_status_ips_with_the_cidr_wording() {
        for bare in [
            "10.0.0.5",
            "fd10::5",
            "2001:DB8::1",
            "010.1.2.3",
            "::ffff:1.2.3.4",
        ] {
            assert_one(
                &with("/status/ips", json!(["10.0.0.6/24", bare])),
                &format!("status.ips[1]: Invalid value: \"{bare}\": must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)"),
            );
        }
    }

    #[test]
    fn a_bare_ip_still_names_its_address_for_repeats() {
        let msgs = messages(&with("/status/ips", json!(["10.0.0.5/24", "10.0.0.5"])));
        assert_eq!(
            msgs,
            vec![
                "status.ips[1]: Invalid value: \"10.0.0.5\": must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)",
                "status.ips[1]: Duplicate value: \"10.0.0.5\"",
            ]
        );
    }

    #[test]
    fn accepts_bare_ips_in_ip_requests() {
        assert_clean(&with("/spec/ipRequests", json!(["10.0.0.5", "fd10::5"])));
    }

    #[test]
    fn rejects_ambiguous_and_malformed_addresses() {
        for bad in [
            "::ffff:1.2.3.4",
            "010.1.2.3",
            "10.1.2.3/024",
            "fe80::1%eth0",
            "10.1.2.3/33",
            "2001:db8::1/129",
        ] {
            assert_eq!(
                messages(&with("/status/ips", json!([bad]))).len(),
                1,
                "{bad}"
            );
        }
    }

    #[test]
    fn accepts_host_and_full_prefixes() {
        assert_clean(&with(
            "/status/ips",
            json!([
                "10.1.2.3/32",
                "2001:db8::1/128",
                "10.1.2.4/0",
                "2001:db8::2/0"
            ]),
        ));
    }
}
