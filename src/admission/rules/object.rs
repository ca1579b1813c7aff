//! The rules on one object, every error collected (never only the first): `metadata.name`,
//! `spec`, `status`, `status.conditions`, worded as the API server words them. They read the
//! typed [`view`](crate::admission::model::view) the walk keeps of an object, nothing else.
//!
//! Lists are read item by item from their text, and what a rule must remember of every item
//! (to find a value repeated) is kept compact: a parsed address or the place of a string in
//! the text, never a copy of the item.

use std::borrow::Cow;

use crate::admission::answer::field::{BadValue, ErrorList, FieldError, Path, Report};
use crate::admission::answer::gotext::decoded_number;
use crate::admission::json::{Kind, Raw, Str};
use crate::admission::model::view::{Claim, Condition, Field, List, Metadata, Spec, Status};
use crate::admission::rules::addresses::{validate_address_list, validate_ip_requests, Form};
use crate::admission::rules::repeats::FirstTexts;

/// Longest allowed object name (`IsDNS1123Subdomain`).
pub(super) const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// The kernel's limit on interface names (IFNAMSIZ - 1), as CNI checks it.
pub(super) const INTERFACE_NAME_MAX_BYTES: usize = 15;
/// `metav1.Condition` limits, as the upstream CRD schema declares them.
pub(super) const CONDITION_TYPE_MAX: usize = 316;
pub(super) const CONDITION_REASON_MAX: usize = 1024;
pub(super) const CONDITION_MESSAGE_MAX: usize = 32768;
pub(super) const CONDITION_STATUSES: [&str; 3] = ["True", "False", "Unknown"];

pub(super) const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub(super) const NETWORK_NAME_MSG: &str = "a CNI network name must start with an alphanumeric character and contain only alphanumeric characters, '_', '.' or '-' (regex used for validation is '^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$')";
pub(super) const CONDITION_TYPE_PATTERN: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$";
pub(super) const CONDITION_REASON_PATTERN: &str = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$";

/// Every rule on a single object, independent of any old object: every error, in order.
pub fn validate_object<'a>(object: &Claim<'a>) -> ErrorList<'a> {
    let mut errs = ErrorList::new();
    check_object(object, &mut errs);
    errs
}

/// Every rule on a single object, each error handed to `errs` as it is found.
pub(super) fn check_object<'a>(object: &Claim<'a>, errs: &mut dyn Report<'a>) {
    if object.raw.kind != Kind::Object {
        errs.push(FieldError::type_invalid(
            Path::default(),
            object.raw,
            "object",
        ));
        return;
    }
    validate_metadata(object.metadata, errs);
    match object.spec {
        Field::Absent | Field::Null => errs.push(FieldError::required(Path::new("spec"), "")),
        Field::Value(spec) => validate_spec(&spec, errs),
        Field::Other(other) => {
            errs.push(FieldError::type_invalid(Path::new("spec"), other, "object"))
        }
    }
    match object.status {
        Field::Absent | Field::Null => {}
        Field::Value(status) => validate_status(&status, errs),
        Field::Other(other) => errs.push(FieldError::type_invalid(
            Path::new("status"),
            other,
            "object",
        )),
    }
}

/// A string field as found: absent (or null), a string, or a value of another type (already
/// reported, so callers do not report it missing as well).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Text<'a> {
    Absent,
    Str(Cow<'a, str>),
    WrongType,
}

// === impl Text ===

impl<'a> Text<'a> {
    /// The string; empty when absent or of the wrong type.
    pub(super) fn or_empty(&self) -> &str {
        match self {
            Text::Str(s) => s,
            Text::Absent | Text::WrongType => "",
        }
    }
}

/// Reads the string field `key` below `path`, reporting a value of another type.
pub(super) fn string_field<'a>(
    field: Field<'a, Str<'a>>,
    path: &Path,
    key: &str,
    errs: &mut dyn Report<'a>,
) -> Text<'a> {
    match field {
        Field::Absent | Field::Null => Text::Absent,
        Field::Value(s) => Text::Str(s.decode()),
        Field::Other(other) => {
            errs.push(FieldError::type_invalid(path.child(key), other, "string"));
            Text::WrongType
        }
    }
}

/// A list field; a value of another type is reported and treated as absent.
pub(super) fn list_field<'a>(
    field: Field<'a, List<'a>>,
    path: &Path,
    key: &str,
    errs: &mut dyn Report<'a>,
) -> Option<List<'a>> {
    match field {
        Field::Absent | Field::Null => None,
        Field::Value(list) => Some(list),
        Field::Other(other) => {
            errs.push(FieldError::type_invalid(path.child(key), other, "array"));
            None
        }
    }
}

pub(super) fn validate_metadata<'a>(metadata: Field<'a, Metadata<'a>>, errs: &mut dyn Report<'a>) {
    let path = Path::new("metadata");
    let meta = match metadata {
        Field::Absent | Field::Null => Metadata::default(),
        Field::Value(m) => m,
        Field::Other(other) => {
            errs.push(FieldError::type_invalid(path, other, "object"));
            return;
        }
    };
    let name_field = string_field(meta.name, &path, "name", errs);
    let generate_name = string_field(meta.generate_name, &path, "generateName", errs);
    if let Text::Str(generate_name) = &generate_name {
        if !generate_name.is_empty() {
            // A generateName is a prefix: its trailing dash is fine, the suffix comes later.
            let prefix = generate_name.strip_suffix('-').unwrap_or(generate_name);
            for msg in dns1123_subdomain(prefix) {
                errs.push(FieldError::invalid(
                    path.child("generateName"),
                    generate_name.clone(),
                    msg,
                ));
            }
        }
    }
    match name_field {
        Text::Str(name) if !name.is_empty() => {
            for msg in dns1123_subdomain(&name) {
                errs.push(FieldError::invalid(path.child("name"), name.clone(), msg));
            }
        }
        Text::WrongType => {}
        Text::Absent | Text::Str(_) => {
            if generate_name.or_empty().is_empty() {
                errs.push(FieldError::required(
                    path.child("name"),
                    "name or generateName is required",
                ));
            }
        }
    }
}

/// `IsDNS1123Subdomain`: the messages of every rule `value` breaks.
pub(super) fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut msgs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        msgs.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if !is_dns1123_subdomain(value) {
        msgs.push(DNS1123_SUBDOMAIN_MSG.to_owned());
    }
    msgs
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`
pub(crate) fn is_dns1123_subdomain(value: &str) -> bool {
    !value.is_empty() && value.split('.').all(is_dns1123_label)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
pub(super) fn is_dns1123_label(label: &str) -> bool {
    let b = label.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

pub(super) fn validate_spec<'a>(spec: &Spec<'a>, errs: &mut dyn Report<'a>) {
    let path = Path::new("spec");
    match string_field(spec.network, &path, "network", errs) {
        Text::Absent => errs.push(FieldError::required(path.child("network"), "")),
        Text::Str(network) if network.is_empty() => {
            errs.push(FieldError::required(path.child("network"), ""))
        }
        Text::Str(network) if !is_network_name(&network) => errs.push(FieldError::invalid(
            path.child("network"),
            network,
            NETWORK_NAME_MSG,
        )),
        Text::Str(_) | Text::WrongType => {}
    }
    // The CRD requires the key, not a value: KubeVirt's IPAM controller, the one producer of
    // claims, never sets the interface and sends it empty (DESIGN §1).
    match string_field(spec.interface, &path, "interface", errs) {
        Text::Absent => errs.push(FieldError::required(path.child("interface"), "")),
        Text::Str(interface) if interface.is_empty() => {}
        Text::Str(interface) => validate_interface_name(interface, &path.child("interface"), errs),
        Text::WrongType => {}
    }
    if let Some(requests) = list_field(spec.ip_requests, &path, "ipRequests", errs) {
        validate_ip_requests(requests, &path.child("ipRequests"), errs);
    }
}

/// CNI's network-name syntax: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
pub(super) fn is_network_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A kernel interface name as CNI's `ValidateInterfaceName` checks it; every broken rule is
/// reported. Non-empty is checked by the caller.
pub(super) fn validate_interface_name<'a>(
    name: Cow<'a, str>,
    path: &Path,
    errs: &mut dyn Report<'a>,
) {
    if name.len() > INTERFACE_NAME_MAX_BYTES {
        errs.push(FieldError::too_long(path.clone(), INTERFACE_NAME_MAX_BYTES));
    }
    if name == "." || name == ".." {
        errs.push(FieldError::invalid(
            path.clone(),
            name.clone(),
            "interface name is . or ..",
        ));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        errs.push(FieldError::invalid(
            path.clone(),
            name,
            "interface name contains / or : or whitespace characters",
        ));
    }
}

pub(super) fn validate_status<'a>(status: &Status<'a>, errs: &mut dyn Report<'a>) {
    let path = Path::new("status");
    match status.ips {
        Field::Absent | Field::Null => errs.push(FieldError::required(path.child("ips"), "")),
        Field::Value(ips) => {
            if errs.items() {
                validate_address_list(ips, Form::Interface, &path.child("ips"), errs);
            }
        }
        Field::Other(other) => {
            errs.push(FieldError::type_invalid(path.child("ips"), other, "array"))
        }
    }
    match status.owner_pod {
        Field::Absent | Field::Null => {}
        Field::Value(owner) => {
            let owner_path = path.child("ownerPod");
            if let Text::Str(name) = string_field(owner.name, &owner_path, "name", errs) {
                if !name.is_empty() {
                    for msg in dns1123_subdomain(&name) {
                        errs.push(FieldError::invalid(
                            owner_path.child("name"),
                            name.clone(),
                            msg,
                        ));
                    }
                }
            }
        }
        Field::Other(other) => errs.push(FieldError::type_invalid(
            path.child("ownerPod"),
            other,
            "object",
        )),
    }
    if let Some(conditions) = list_field(status.conditions, &path, "conditions", errs) {
        if errs.items() {
            let first = status.first_condition;
            validate_conditions(conditions, first, &path.child("conditions"), errs);
        }
    }
}

/// `metav1.Condition` rules, as the CRD schema and the API server word them. `first` is the
/// first condition when the walk read it already ([`Status::first_condition`]).
pub(super) fn validate_conditions<'a>(
    conditions: List<'a>,
    first: Option<(Raw<'a>, Condition<'a>)>,
    path: &Path,
    errs: &mut dyn Report<'a>,
) {
    // A condition repeats the type of an earlier one: the types seen so far tell as the list
    // is read, once. A single condition repeats nothing.
    let mut types =
        (conditions.len > 1).then(|| FirstTexts::new(conditions.raw.text, conditions.len));
    let mut judge = |i: usize, item: Raw<'a>, cond: Option<Condition<'a>>| {
        errs.condition(i, item);
        let repeated = match (&mut types, cond.and_then(|c| c.r#type.str())) {
            (Some(types), Some(t)) if !t.raw().is_empty() => types.repeats(t),
            _ => false,
        };
        validate_condition(item, cond, &path.index(i), repeated, errs);
    };
    match first {
        // The list is not read again for its one item.
        Some((item, cond)) if conditions.len == 1 => judge(0, item, Some(cond)),
        _ => {
            for (i, item) in conditions.items().enumerate() {
                let cond = match first {
                    Some((_, cond)) if i == 0 => Some(cond),
                    _ => Condition::read(item),
                };
                judge(i, item, cond);
            }
        }
    }
}

/// The rules of one condition at `item_path` (`cond`, as read from `item`); `repeated` when its type is that of an earlier
/// condition (a duplicate is reported after the type's other errors).
pub(super) fn validate_condition<'a>(
    item: Raw<'a>,
    cond: Option<Condition<'a>>,
    item_path: &Path,
    repeated: bool,
    errs: &mut dyn Report<'a>,
) {
    let Some(cond) = cond else {
        errs.push(FieldError::type_invalid(item_path.clone(), item, "object"));
        return;
    };

    match string_field(cond.r#type, item_path, "type", errs) {
        Text::Absent => errs.push(FieldError::required(item_path.child("type"), "")),
        Text::Str(t) if t.is_empty() => {
            errs.push(FieldError::required(item_path.child("type"), ""))
        }
        Text::WrongType => {}
        Text::Str(t) => {
            // Most conditions are valid: the path is written only for an error.
            let p = || item_path.child("type");
            if t.chars().count() > CONDITION_TYPE_MAX {
                errs.push(FieldError::too_long_max_length(p(), CONDITION_TYPE_MAX));
            }
            if !is_qualified_condition_type(&t) {
                errs.push(pattern_error(&p(), t.clone(), CONDITION_TYPE_PATTERN));
            }
            if repeated {
                errs.push(FieldError::duplicate(p(), t));
            }
        }
    }

    match string_field(cond.status, item_path, "status", errs) {
        Text::Absent => errs.push(FieldError::required(item_path.child("status"), "")),
        Text::Str(s) if !CONDITION_STATUSES.contains(&s.as_ref()) => errs.push(
            FieldError::not_supported(item_path.child("status"), s, &CONDITION_STATUSES),
        ),
        Text::WrongType => {
            // The API server checks the enum after the type, whatever the type: a value that
            // is not a string is both a type error and an unsupported value.
            if let Field::Other(value) = cond.status {
                errs.push(FieldError::not_supported(
                    item_path.child("status"),
                    BadValue::decoded(value),
                    &CONDITION_STATUSES,
                ))
            }
        }
        Text::Str(_) => {}
    }

    match string_field(cond.reason, item_path, "reason", errs) {
        Text::Absent => errs.push(FieldError::required(item_path.child("reason"), "")),
        // The CRD's `minLength: 1`, checked before the pattern (the API server stops at it).
        Text::Str(r) if r.is_empty() => {
            errs.push(FieldError::too_short(item_path.child("reason"), "", 1))
        }
        Text::WrongType => {}
        Text::Str(r) => {
            let p = || item_path.child("reason");
            if r.chars().count() > CONDITION_REASON_MAX {
                errs.push(FieldError::too_long_max_length(p(), CONDITION_REASON_MAX));
            }
            if !is_condition_reason(&r) {
                errs.push(pattern_error(&p(), r, CONDITION_REASON_PATTERN));
            }
        }
    }

    if let Text::Str(m) = string_field(cond.message, item_path, "message", errs) {
        if m.chars().count() > CONDITION_MESSAGE_MAX {
            errs.push(FieldError::too_long_max_length(
                item_path.child("message"),
                CONDITION_MESSAGE_MAX,
            ));
        }
    }

    // `format: date-time`: the API server's schema validation reports a value that is not a
    // date-time as a type error, a string (`""` too) or not.
    let p = || item_path.child("lastTransitionTime");
    match cond.last_transition_time {
        Field::Absent | Field::Null => errs.push(FieldError::required(p(), "")),
        Field::Value(t) => {
            let t = t.decode();
            if !is_rfc3339(&t) {
                errs.push(FieldError::format_invalid(p(), t, "date-time"))
            }
        }
        // Its schema validation lets a list through a string field with a format; a claim
        // is never admitted with one, so it is the plain type error.
        Field::Other(list) if list.kind == Kind::Array => {
            errs.push(FieldError::type_invalid(p(), list, "string"))
        }
        Field::Other(other) => errs.push(FieldError::format_type_invalid(p(), other, "date-time")),
    }

    match cond.observed_generation {
        Field::Absent | Field::Null => {}
        Field::Value(generation) | Field::Other(generation) => {
            let p = item_path.child("observedGeneration");
            validate_observed_generation(generation, &p, errs);
        }
    }
}

/// `observedGeneration` (`type: integer`, `format: int64`, `minimum: 0`), judged as the API
/// server's schema validation judges what its decoder makes of the value: an `int64`, or a
/// `float64` for a number with a fraction or an exponent or beyond int64, which counts as an
/// integer when it has no fraction. Its minimum is checked on any number, after the type.
pub(super) fn validate_observed_generation<'a>(
    value: Raw<'a>,
    path: &Path,
    errs: &mut dyn Report<'a>,
) {
    match value.kind {
        Kind::Number => {
            let decoded = value.number().map(|n| decoded_number(&n));
            let (integer, negative, bad) = match decoded {
                Some(Ok(i)) => (true, i < 0, BadValue::Int(i)),
                Some(Err(f)) => (is_json_integer(f), f < 0.0, BadValue::Float(f)),
                None => (false, false, BadValue::Float(f64::NAN)),
            };
            if !integer {
                errs.push(FieldError::format_type_invalid(
                    path.clone(),
                    value,
                    "int64",
                ));
            }
            if negative {
                let detail = format!("{path} in body should be greater than or equal to 0");
                errs.push(FieldError::invalid(path.clone(), bad, detail));
            }
        }
        Kind::Bool | Kind::Object => errs.push(FieldError::format_type_invalid(
            path.clone(),
            value,
            "int64",
        )),
        Kind::String | Kind::Array | Kind::Null => {
            errs.push(FieldError::type_invalid(path.clone(), value, "integer"))
        }
    }
}

/// Whether a `float64` is taken for an integer by the API server's schema validation: no
/// fraction, within ±(2^53 - 1). (go-openapi also lets a fraction within a relative 1e-9 of
/// an integer pass, e.g. `1000000000.5`; that is not copied: such a generation is denied.)
pub(super) fn is_json_integer(f: f64) -> bool {
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
    f.is_finite() && f.abs() <= MAX_SAFE_INTEGER && f.fract() == 0.0
}

/// The API server's wording for a string that does not match a CRD schema `pattern`.
pub(super) fn pattern_error<'a>(path: &Path, value: Cow<'a, str>, pattern: &str) -> FieldError<'a> {
    let detail = format!("{path} in body should match '{pattern}'");
    FieldError::invalid(path.clone(), value, detail)
}
/// `^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$`
pub(super) fn is_qualified_condition_type(value: &str) -> bool {
    match value.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_qualified_name_part(name),
        None => is_qualified_name_part(value),
    }
}

/// The name part of a qualified name (label keys, condition types), without its length limit:
/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
pub(crate) fn is_qualified_name_part(name: &str) -> bool {
    let b = name.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`
pub(super) fn is_condition_reason(value: &str) -> bool {
    let b = value.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphabetic()
                && (last.is_ascii_alphanumeric() || *last == b'_')
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b',' | b':'))
        }
        _ => false,
    }
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with real calendar ranges.
pub(super) fn is_rfc3339(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |from: usize, n: usize| -> Option<u32> {
        let part = b.get(from..from + n)?;
        part.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i).is_some_and(|x| x.eq_ignore_ascii_case(&c));
    let (Some(year), Some(month), Some(day)) = (digits(0, 4), digits(5, 2), digits(8, 2)) else {
        return false;
    };
    let (Some(hour), Some(minute), Some(second)) = (digits(11, 2), digits(14, 2), digits(17, 2))
    else {
        return false;
    };
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if at(i, b'Z') {
        return i + 1 == b.len();
    }
    if !(at(i, b'+') || at(i, b'-')) || b.len() != i + 6 || !at(i + 3, b':') {
        return false;
    }
    matches!((digits(i + 1, 2), digits(i + 4, 2)), (Some(h), Some(m)) if h <= 23 && m <= 59)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::answer::field::CappedErrors;
    use crate::admission::rules::testing::*;
    use serde_json::{json, Value};

    #[test]
    fn accepts_a_typical_claim() {
        assert_clean(&claim());
    }

    #[test]
    fn accepts_a_claim_without_status() {
        assert_clean(&without("/status"));
        assert_clean(&with("/status", Value::Null));
    }

    #[test]
    fn collects_every_error_not_only_the_first() {
        let c = json!({"metadata": {"name": "Bad_Name"}, "spec": {}, "status": {}});
        let msgs = messages(&c);
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert!(msgs[0].starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ));
        assert_eq!(msgs[1], "spec.network: Required value");
        assert_eq!(msgs[2], "spec.interface: Required value");
        assert_eq!(msgs[3], "status.ips: Required value");
    }

    #[test]
    fn rejects_missing_name_and_generate_name() {
        assert_one(
            &without("/metadata/name"),
            "metadata.name: Required value: name or generateName is required",
        );
    }

    #[test]
    fn accepts_generate_name_without_name() {
        let mut c = without("/metadata/name");
        set(&mut c, "/metadata/generateName", json!("vm-a-"));
        assert_clean(&c);
    }

    #[test]
    fn rejects_invalid_generate_name() {
        let mut c = without("/metadata/name");
        set(&mut c, "/metadata/generateName", json!("VM-"));
        let msgs = messages(&c);
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0]
            .starts_with("metadata.generateName: Invalid value: \"VM-\": a lowercase RFC 1123"));
    }

    #[test]
    fn rejects_uppercase_name() {
        let msgs = messages(&with("/metadata/name", json!("VM-a")));
        assert_eq!(
            msgs,
            vec![format!(
                "metadata.name: Invalid value: \"VM-a\": {DNS1123_SUBDOMAIN_MSG}"
            )]
        );
    }

    #[test]
    fn accepts_name_of_253_characters() {
        let name = format!("{}.{}", "a".repeat(63), "b".repeat(189));
        assert_eq!(name.len(), 253);
        assert_clean(&with("/metadata/name", json!(name)));
    }

    #[test]
    fn rejects_name_of_254_characters() {
        let name = format!("{}.{}", "a".repeat(63), "b".repeat(190));
        let msgs = messages(&with("/metadata/name", json!(name)));
        assert_eq!(msgs.len(), 1);
        assert!(
            msgs[0].ends_with(": must be no more than 253 characters"),
            "{}",
            msgs[0]
        );
    }

    #[test]
    fn rejects_name_with_empty_label_or_edge_dash() {
        for bad in ["a..b", ".a", "a.", "-a", "a-", "a_b"] {
            assert_eq!(
                messages(&with("/metadata/name", json!(bad))).len(),
                1,
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_missing_spec() {
        assert_one(&without("/spec"), "spec: Required value");
    }

    #[test]
    fn rejects_spec_of_wrong_type() {
        assert_one(
            &with("/spec", json!("nope")),
            "spec: Invalid value: \"string\": spec in body must be of type object: \"string\"",
        );
    }

    #[test]
    fn rejects_missing_and_empty_network() {
        assert_one(&without("/spec/network"), "spec.network: Required value");
        assert_one(
            &with("/spec/network", json!("")),
            "spec.network: Required value",
        );
    }

    #[test]
    fn rejects_network_of_wrong_type() {
        assert_one(
            &with("/spec/network", json!(5)),
            "spec.network: Invalid value: \"integer\": spec.network in body must be of type string: \"integer\"",
        );
    }

    #[test]
    fn accepts_network_names_cni_accepts() {
        for ok in ["a", "tenantred", "Net_1.blue-2", "9net"] {
            assert_clean(&with("/spec/network", json!(ok)));
        }
    }

    #[test]
    fn rejects_network_names_cni_refuses() {
        for bad in ["-net", "_net", ".net", "net work", "net/1", "nét", "net:1"] {
            assert_one(
                &with("/spec/network", json!(bad)),
                &format!(
                    "spec.network: Invalid value: {}: {NETWORK_NAME_MSG}",
                    crate::admission::answer::gotext::go_quote(bad)
                ),
            );
        }
    }

    #[test]
    fn rejects_missing_interface() {
        assert_one(
            &without("/spec/interface"),
            "spec.interface: Required value",
        );
        assert_one(
            &with("/spec/interface", Value::Null),
            "spec.interface: Required value",
        );
    }

    /// Regression (issue 26): KubeVirt's IPAM controller never sets the interface and sends
    /// it empty; the CRD's `required` asks for the key only.
    #[test]
    fn accepts_empty_interface_as_kubevirt_sends_it() {
        assert_clean(&with("/spec/interface", json!("")));
    }

    #[test]
    fn accepts_interface_of_15_bytes() {
        assert_clean(&with("/spec/interface", json!("a".repeat(15))));
    }

    #[test]
    fn rejects_interface_of_16_bytes() {
        assert_one(
            &with("/spec/interface", json!("a".repeat(16))),
            "spec.interface: Too long: must have at most 15 bytes",
        );
    }

    #[test]
    fn rejects_interface_whose_multibyte_character_makes_16_bytes() {
        let name = format!("{}é", "a".repeat(14));
        assert_eq!(name.chars().count(), 15);
        assert_eq!(name.len(), 16);
        assert_one(
            &with("/spec/interface", json!(name)),
            "spec.interface: Too long: must have at most 15 bytes",
        );
        let fits = format!("{}é", "a".repeat(13));
        assert_clean(&with("/spec/interface", json!(fits)));
    }

    #[test]
    fn rejects_dot_and_dot_dot_interface() {
        for bad in [".", ".."] {
            assert_one(
                &with("/spec/interface", json!(bad)),
                &format!("spec.interface: Invalid value: \"{bad}\": interface name is . or .."),
            );
        }
        assert_clean(&with("/spec/interface", json!("...")));
    }

    #[test]
    fn rejects_interface_with_slash_colon_or_whitespace() {
        for bad in [
            "eth/0",
            "eth:0",
            "eth 0",
            "eth\t0",
            "eth\u{a0}0",
            "eth\u{2003}0",
            "eth\u{3000}0",
            "eth\u{85}0",
        ] {
            let msgs = messages(&with("/spec/interface", json!(bad)));
            assert_eq!(msgs.len(), 1, "{bad:?}: {msgs:?}");
            assert!(
                msgs[0].ends_with(": interface name contains / or : or whitespace characters"),
                "{msgs:?}"
            );
        }
    }

    #[test]
    fn reports_both_too_long_and_bad_characters() {
        let msgs = messages(&with("/spec/interface", json!("a very long interface")));
        assert_eq!(msgs.len(), 2, "{msgs:?}");
    }

    #[test]
    fn rejects_invalid_owner_pod_name_and_accepts_empty() {
        assert_clean(&with("/status/ownerPod/name", json!("")));
        let msgs = messages(&with("/status/ownerPod/name", json!("Pod_1")));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].starts_with("status.ownerPod.name: Invalid value: \"Pod_1\""));
    }

    #[test]
    fn rejects_condition_reason_with_spaces() {
        assert_one(
            &with("/status/conditions/0/reason", json!("not allocated")),
            &format!("status.conditions[0].reason: Invalid value: \"not allocated\": status.conditions[0].reason in body should match '{CONDITION_REASON_PATTERN}'"),
        );
    }

    #[test]
    fn accepts_condition_reasons_of_the_pattern() {
        for ok in ["A", "Allocated", "A_b,c:d", "a1_"] {
            assert_clean(&with("/status/conditions/0/reason", json!(ok)));
        }
        for bad in ["1A", "A:", "A,", "_A"] {
            assert_eq!(
                messages(&with("/status/conditions/0/reason", json!(bad))).len(),
                1,
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_missing_condition_fields() {
        let c = with("/status/conditions/0", json!({}));
        assert_eq!(
            messages(&c),
            vec![
                "status.conditions[0].type: Required value",
                "status.conditions[0].status: Required value",
                "status.conditions[0].reason: Required value",
                "status.conditions[0].lastTransitionTime: Required value",
            ]
        );
    }

    #[test]
    fn rejects_unsupported_condition_status() {
        assert_one(
            &with("/status/conditions/0/status", json!("Maybe")),
            "status.conditions[0].status: Unsupported value: \"Maybe\": supported values: \"True\", \"False\", \"Unknown\"",
        );
    }

    #[test]
    fn rejects_condition_type_not_a_qualified_name() {
        let msgs = messages(&with("/status/conditions/0/type", json!("IPs Allocated")));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].contains("in body should match"), "{msgs:?}");
        assert_clean(&with(
            "/status/conditions/0/type",
            json!("k8s.cni.cncf.io/IPsAllocated"),
        ));
    }

    #[test]
    fn rejects_condition_type_over_316_characters() {
        let t = "A".repeat(317);
        assert_one(
            &with("/status/conditions/0/type", json!(t)),
            "status.conditions[0].type: Too long: may not be longer than 316",
        );
    }

    #[test]
    fn rejects_condition_reason_over_1024_and_message_over_32768() {
        assert_one(
            &with("/status/conditions/0/reason", json!("A".repeat(1025))),
            "status.conditions[0].reason: Too long: may not be longer than 1024",
        );
        assert_clean(&with(
            "/status/conditions/0/message",
            json!("m".repeat(32768)),
        ));
        assert_one(
            &with("/status/conditions/0/message", json!("m".repeat(32769))),
            "status.conditions[0].message: Too long: may not be longer than 32768",
        );
    }

    #[test]
    fn rejects_condition_time_not_rfc3339() {
        assert_one(
            &with("/status/conditions/0/lastTransitionTime", json!("yesterday")),
            "status.conditions[0].lastTransitionTime: Invalid value: \"yesterday\": status.conditions[0].lastTransitionTime in body must be of type date-time: \"yesterday\"",
        );
    }

    #[test]
    fn accepts_rfc3339_times_and_rejects_impossible_dates() {
        for ok in [
            "2026-11-26T23:00:00Z",
            "2026-11-26T23:00:00.123456Z",
            "2024-02-29T00:00:00+01:00",
            "2026-11-26t23:00:00z",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-26 23:00:00Z",
            "2026-11-26T24:00:00Z",
            "2026-11-26T23:00:00",
            "2026-11-26T23:00:00.Z",
            "2026-11-26T23:00:00+0100",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn rejects_negative_observed_generation() {
        assert_one(
            &with("/status/conditions/0/observedGeneration", json!(-1)),
            "status.conditions[0].observedGeneration: Invalid value: -1: status.conditions[0].observedGeneration in body should be greater than or equal to 0",
        );
        assert_clean(&with("/status/conditions/0/observedGeneration", json!(0)));
    }

    /// The cause type and message of each error of the claim with `pointer` set to `value`.
    fn causes_with(pointer: &str, value: Value) -> Vec<(&'static str, String)> {
        validate_object_json(&with(pointer, value))
            .iter()
            .map(|e| (e.kind.cause_type(), e.to_string()))
            .collect()
    }

    const CONDITION: &str = "status.conditions[0]";
    const SUPPORTED: &str = r#"supported values: "True", "False", "Unknown""#;

    #[test]
    fn an_empty_reason_is_shorter_than_its_min_length() {
        let r = format!("{CONDITION}.reason");
        assert_eq!(
            causes_with("/status/conditions/0/reason", json!("")),
            [(
                "FieldValueInvalid",
                format!(r#"{r}: Invalid value: "": {r} in body should be at least 1 chars long"#)
            )]
        );
    }

    #[test]
    fn a_time_that_is_not_a_date_time_is_a_type_error() {
        let t = format!("{CONDITION}.lastTransitionTime");
        for (value, shown) in [
            (json!("now"), r#""now""#),
            (json!(""), r#""""#),
            (json!(5), r#""int64""#),
            (json!(-5), r#""int64""#),
            (json!(5.5), r#""float64""#),
            (json!(1e3), r#""float64""#),
            (json!(u64::MAX), r#""float64""#),
            (json!(true), r#""""#),
            (json!({"seconds": 5}), r#""""#),
        ] {
            assert_eq!(
                causes_with("/status/conditions/0/lastTransitionTime", value.clone()),
                [(
                    "FieldValueTypeInvalid",
                    format!("{t}: Invalid value: {shown}: {t} in body must be of type date-time: {shown}")
                )],
                "{value}"
            );
        }
        // A list passes the API server's schema here; it is denied as the type error it is.
        assert_eq!(
            causes_with("/status/conditions/0/lastTransitionTime", json!([])),
            [(
                "FieldValueTypeInvalid",
                format!(
                    r#"{t}: Invalid value: "array": {t} in body must be of type string: "array""#
                )
            )]
        );
    }

    #[test]
    fn a_status_that_is_not_a_string_is_a_type_error_and_unsupported() {
        let s = format!("{CONDITION}.status");
        for (value, kind, shown) in [
            (json!(2), "integer", "2"),
            (json!(-7), "integer", "-7"),
            (json!(2.5), "number", "2.5"),
            (json!(1e21), "number", "1e+21"),
            (json!(u64::MAX), "number", "1.8446744073709552e+19"),
            (json!(true), "boolean", "true"),
            (json!({}), "object", "map[string]interface {}{}"),
            (
                json!({"z": null, "a": [1, 2.5, "x", true], "m": {"k": "v"}}),
                "object",
                r#"map[string]interface {}{"a":[]interface {}{1, 2.5, "x", true}, "m":map[string]interface {}{"k":"v"}, "z":interface {}(nil)}"#,
            ),
            (json!([]), "array", "[]interface {}{}"),
            (json!(["True"]), "array", r#"[]interface {}{"True"}"#),
        ] {
            assert_eq!(
                causes_with("/status/conditions/0/status", value.clone()),
                [
                    (
                        "FieldValueTypeInvalid",
                        format!(
                            r#"{s}: Invalid value: "{kind}": {s} in body must be of type string: "{kind}""#
                        )
                    ),
                    (
                        "FieldValueNotSupported",
                        format!("{s}: Unsupported value: {shown}: {SUPPORTED}")
                    ),
                ],
                "{value}"
            );
        }
    }

    #[test]
    fn cuts_a_huge_unsupported_status() {
        let huge: Vec<String> = (0..10_000).map(|i| format!("v{i}")).collect();
        let causes = causes_with("/status/conditions/0/status", json!(huge));
        let (_, message) = &causes[1];
        assert!(message.len() < 600, "{} bytes", message.len());
        assert!(
            message.starts_with(&format!(
                r#"{CONDITION}.status: Unsupported value: []interface {{}}{{"v0", "v1", "#
            )),
            "{message}"
        );
        let whole = 16
            + (0..10_000)
                .map(|i| format!("\"v{i}\"").len() + 2)
                .sum::<usize>()
            - 2;
        assert!(
            message.ends_with(&format!("... ({whole} bytes, truncated): {SUPPORTED}")),
            "{message}"
        );
    }

    #[test]
    fn a_generation_is_an_int64_of_at_least_zero() {
        let g = format!("{CONDITION}.observedGeneration");
        let minimum = |shown: &str| {
            (
                "FieldValueInvalid",
                format!(
                    "{g}: Invalid value: {shown}: {g} in body should be greater than or equal to 0"
                ),
            )
        };
        let int64 = |shown: &str| {
            (
                "FieldValueTypeInvalid",
                format!("{g}: Invalid value: {shown}: {g} in body must be of type int64: {shown}"),
            )
        };
        let integer = |shown: &str| {
            (
                "FieldValueTypeInvalid",
                format!(
                    "{g}: Invalid value: {shown}: {g} in body must be of type integer: {shown}"
                ),
            )
        };
        let cases = [
            (json!(1.5), vec![int64(r#""float64""#)]),
            (json!(-1.5), vec![int64(r#""float64""#), minimum("-1.5")]),
            (json!(-2.0), vec![minimum("-2")]),
            (json!(-2e6), vec![minimum("-2e+06")]),
            (json!(u64::MAX), vec![int64(r#""float64""#)]),
            (json!(1e300), vec![int64(r#""float64""#)]),
            (json!(true), vec![int64(r#""""#)]),
            (json!({"n": 1}), vec![int64(r#""""#)]),
            (json!("1"), vec![integer(r#""string""#)]),
            (json!([1]), vec![integer(r#""array""#)]),
        ];
        for (value, want) in cases {
            assert_eq!(
                causes_with("/status/conditions/0/observedGeneration", value.clone()),
                want,
                "{value}"
            );
        }
        // A number without a fraction is an integer to the API server however it is written.
        for value in [
            json!(3.0),
            json!(1e3),
            json!(0.0),
            json!(-0.0),
            json!(9_007_199_254_740_991.0),
        ] {
            assert_clean(&with("/status/conditions/0/observedGeneration", value));
        }
    }

    #[test]
    fn numbers_the_decoder_makes_floats_are_named_numbers() {
        assert_one(
            &with("/spec/network", json!(u64::MAX)),
            r#"spec.network: Invalid value: "number": spec.network in body must be of type string: "number""#,
        );
    }

    #[test]
    fn prints_floats_as_go_does() {
        use crate::admission::answer::gotext::go_float;
        for (f, go) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e6, "1e+06"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (9_007_199_254_740_993.0, "9.007199254740992e+15"),
        ] {
            assert_eq!(go_float(f), go, "{f}");
        }
    }

    #[test]
    fn rejects_duplicate_condition_type() {
        let mut c = claim();
        let cond = c
            .pointer("/status/conditions/0")
            .cloned()
            .expect("condition");
        set(&mut c, "/status/conditions/1", cond);
        assert_one(
            &c,
            "status.conditions[1].type: Duplicate value: \"IPsAllocated\"",
        );
    }

    #[test]
    fn keeps_the_first_errors_of_a_long_list_and_counts_the_rest() {
        let n = 10_000;
        let ips: Vec<Value> = (0..n).map(|i| json!(format!("x{i}"))).collect();
        let v = validate_json(&with("/status/ips", Value::Array(ips)), None);
        assert_eq!(v.errors.len(), n);
        assert_eq!(v.errors.kept.len(), CappedErrors::KEPT);
        assert_eq!(v.errors.more, n - CappedErrors::KEPT);
        assert!(v.errors.kept.0[0]
            .to_string()
            .starts_with("status.ips[0]: Invalid value: \"x0\""));
    }

    #[test]
    fn cuts_a_huge_time_in_its_detail() {
        let huge = "x".repeat(1024 * 1024);
        let msgs = messages(&with(
            "/status/conditions/0/lastTransitionTime",
            json!(huge),
        ));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].len() < 1024, "{} bytes", msgs[0].len());
        assert!(
            msgs[0].ends_with(&format!("({} bytes, truncated)", huge.len())),
            "{}",
            &msgs[0][..200]
        );
    }
}
