//! Validation of IPAMClaim objects: every rule of the behaviour contract, errors collected
//! (never only the first), spec immutability and ratcheting on UPDATE. The rules read the
//! typed [`view`](crate::admission::model::view) the walk keeps of an object, nothing else.
//!
//! Lists are read item by item from their text, and what a rule must remember of every item
//! (to find a value repeated, or the old condition of a type) is kept compact: a parsed
//! address or the place of a string in the text, never a copy of the item.

use std::borrow::Cow;

use crate::admission::answer::field::{
    decoded_number, BadValue, CappedErrors, ErrorList, FieldError, Path, Report,
};
use crate::admission::json::{self, Kind, Raw, Str};
use crate::admission::model::view::{Claim, Condition, Field, List, Metadata, RawOf, Spec, Status};
use crate::admission::rules::ip::{self, AddressError};

/// Longest allowed object name (`IsDNS1123Subdomain`).
const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// The kernel's limit on interface names (IFNAMSIZ - 1), as CNI checks it.
const INTERFACE_NAME_MAX_BYTES: usize = 15;
/// At most one requested address per IP family.
const IP_REQUESTS_MAX: usize = 2;
/// `metav1.Condition` limits, as the upstream CRD schema declares them.
const CONDITION_TYPE_MAX: usize = 316;
const CONDITION_REASON_MAX: usize = 1024;
const CONDITION_MESSAGE_MAX: usize = 32768;
const CONDITION_STATUSES: [&str; 3] = ["True", "False", "Unknown"];

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const NETWORK_NAME_MSG: &str = "a CNI network name must start with an alphanumeric character and contain only alphanumeric characters, '_', '.' or '-' (regex used for validation is '^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$')";
const CONDITION_TYPE_PATTERN: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$";
const CONDITION_REASON_PATTERN: &str = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$";

/// The verdict on one object: the errors found, sorted as they are found and kept only as far
/// as an answer lists them (see [`CappedErrors`]).
#[derive(Debug, Default, PartialEq)]
pub struct Verdict<'a> {
    /// Errors that deny the request.
    pub errors: CappedErrors<'a>,
    /// Errors on values unchanged since `oldObject` (ratcheting): reported as warnings only.
    pub ratcheted: CappedErrors<'a>,
}

/// Validates `object`; on UPDATE (`old` given) also checks spec immutability and ratchets
/// errors on values that did not change, like Kubernetes CRD validation ratcheting.
///
/// Each error is sorted as it is found, and only the first ones are kept: judging a review
/// costs as much as reading it, however many errors it has.
pub fn validate<'a>(object: &Claim<'a>, old: Option<&Claim<'a>>) -> Verdict<'a> {
    let Some(old) = old else {
        let mut errors = CappedErrors::default();
        check_object(object, &mut errors);
        return Verdict {
            errors,
            ratcheted: CappedErrors::default(),
        };
    };
    let mut ratchet = Ratchet::new(object, old);
    check_object(object, &mut ratchet);
    let mut verdict = ratchet.verdict;
    for e in immutability(object, old) {
        verdict.errors.push(e);
    }
    verdict
}

/// Every rule on a single object, independent of any old object: every error, in order.
pub fn validate_object<'a>(object: &Claim<'a>) -> ErrorList<'a> {
    let mut errs = ErrorList::new();
    check_object(object, &mut errs);
    errs
}

/// Every rule on a single object, each error handed to `errs` as it is found.
fn check_object<'a>(object: &Claim<'a>, errs: &mut dyn Report<'a>) {
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
enum Text<'a> {
    Absent,
    Str(Cow<'a, str>),
    WrongType,
}

// === impl Text ===

impl<'a> Text<'a> {
    /// The string; empty when absent or of the wrong type.
    fn or_empty(&self) -> &str {
        match self {
            Text::Str(s) => s,
            Text::Absent | Text::WrongType => "",
        }
    }
}

/// Reads the string field `key` below `path`, reporting a value of another type.
fn string_field<'a>(
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
fn list_field<'a>(
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

fn validate_metadata<'a>(metadata: Field<'a, Metadata<'a>>, errs: &mut dyn Report<'a>) {
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
fn dns1123_subdomain(value: &str) -> Vec<String> {
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
fn is_dns1123_label(label: &str) -> bool {
    let b = label.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

fn validate_spec<'a>(spec: &Spec<'a>, errs: &mut dyn Report<'a>) {
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
fn is_network_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A kernel interface name as CNI's `ValidateInterfaceName` checks it; every broken rule is
/// reported. Non-empty is checked by the caller.
fn validate_interface_name<'a>(name: Cow<'a, str>, path: &Path, errs: &mut dyn Report<'a>) {
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

/// `spec.ipRequests`: at most two interface addresses, of different IP families.
fn validate_ip_requests<'a>(requests: List<'a>, path: &Path, errs: &mut dyn Report<'a>) {
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
struct AddressList {
    /// Per item, what it is ([`Class`]).
    classes: Vec<Class>,
    /// Per item, whether it repeats an earlier one.
    repeats: Bits,
}

/// What an item of an address list is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
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
    fn family(&self, i: usize) -> Option<bool> {
        match self.classes[i] {
            Class::V4 if !self.repeats.get(i) => Some(true),
            Class::V6 if !self.repeats.get(i) => Some(false),
            _ => None,
        }
    }
}

/// What the items of an address list must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
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
fn validate_address_list<'a>(
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

/// The keys of a list's items that must not repeat: addresses, each with the item's index,
/// and strings, found repeated as they come.
struct RepeatKeys<'a> {
    /// IPv4 addresses.
    v4: Vec<(u32, u32)>,
    /// IPv6 addresses.
    v6: Vec<([u8; 16], u32)>,
    /// The strings seen so far.
    texts: FirstTexts<'a>,
    /// Which items repeat an earlier one (for strings, as found).
    repeats: Bits,
}

// === impl RepeatKeys ===

impl<'a> RepeatKeys<'a> {
    fn new(list: List<'a>) -> Self {
        RepeatKeys {
            v4: Vec::new(),
            v6: Vec::new(),
            texts: FirstTexts::new(list.raw.text, list.len),
            repeats: Bits::new(list.len),
        }
    }

    fn address(&mut self, ip: std::net::IpAddr, i: usize) {
        match ip {
            std::net::IpAddr::V4(v4) => self.v4.push((u32::from(v4), i as u32)),
            std::net::IpAddr::V6(v6) => self.v6.push((v6.octets(), i as u32)),
        }
    }

    /// Item `i`, a string of the list's text that is not an address.
    fn text(&mut self, text: Str<'a>, i: usize) {
        if self.texts.repeats(text) {
            self.repeats.set(i);
        }
    }

    /// Which items repeat the key of an earlier one.
    fn repeats(mut self) -> Bits {
        self.v4.sort_unstable();
        mark_repeats(&self.v4, |a, b| a.0 == b.0, &mut self.repeats);
        self.v6.sort_unstable();
        mark_repeats(&self.v6, |a, b| a.0 == b.0, &mut self.repeats);
        self.repeats
    }
}

/// The distinct strings of a list's text, each remembered by where its first copy starts and
/// half of its hash (8 bytes in a hash table): whether a string repeats an earlier one is
/// found in constant time, without sorting, whatever the strings (the hash is keyed per
/// process, so that a client cannot choose strings that collide).
/// A list of at most [`FEW_TEXTS`] items compares its strings with each other instead: hashing
/// costs more than a few comparisons.
struct FirstTexts<'a> {
    text: &'a str,
    table: hashbrown::HashTable<(u32, u32)>,
    few: Option<([Str<'a>; FEW_TEXTS], usize)>,
}

/// Up to this many items, a list's strings are compared one by one.
const FEW_TEXTS: usize = 8;

// === impl FirstTexts ===

impl<'a> FirstTexts<'a> {
    /// The first strings of the list whose text is `text`, of `items` items.
    fn new(text: &'a str, items: usize) -> Self {
        FirstTexts {
            text,
            table: hashbrown::HashTable::new(),
            few: (items <= FEW_TEXTS).then_some(([Str::plain(""); FEW_TEXTS], 0)),
        }
    }

    /// Whether `s`, a string of the list's text, repeats one seen before; remembers it if not.
    fn repeats(&mut self, s: Str<'a>) -> bool {
        if let Some((seen, len)) = &mut self.few {
            if seen[..*len].contains(&s) {
                return true;
            }
            if *len < FEW_TEXTS {
                seen[*len] = s;
                *len += 1;
                return false;
            }
        }
        if let Some((seen, len)) = self.few.take() {
            // More strings than the list was said to hold: the table takes them all.
            for first in &seen[..len] {
                self.hashed(*first);
            }
        }
        self.hashed(s)
    }

    fn hashed(&mut self, s: Str<'a>) -> bool {
        let text = self.text;
        let hash = std::hash::BuildHasher::hash_one(text_hash_state(), s.decode().as_bytes());
        // The table is rebuilt from the kept half as it grows: the low bits pick the bucket,
        // the top ones hashbrown's tag, so the half is spread over both.
        let half = (hash >> 32) as u32;
        let spread = |half: u32| u64::from(half).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let entry = self.table.entry(
            spread(half),
            |&(at, h)| h == half && Str::at(text, at) == s,
            |&(_, h)| spread(h),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(_) => true,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert((json::offset(text, s.raw()), half));
                false
            }
        }
    }
}

/// The hasher keys of [`FirstTexts`], drawn once per process.
fn text_hash_state() -> &'static std::collections::hash_map::RandomState {
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    STATE.get_or_init(Default::default)
}

/// Marks every entry of `sorted` (ordered by key, then by index) whose key is its
/// predecessor's: all but the first of each key.
fn mark_repeats<T: Copy>(
    sorted: &[(T, u32)],
    same: impl Fn(&(T, u32), &(T, u32)) -> bool,
    out: &mut Bits,
) {
    for pair in sorted.windows(2) {
        if same(&pair[0], &pair[1]) {
            out.set(pair[1].1 as usize);
        }
    }
}

/// One bit per item.
struct Bits(Vec<u64>);

// === impl Bits ===

impl Bits {
    fn new(len: usize) -> Self {
        Bits(vec![0; len.div_ceil(64)])
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    fn any(&self) -> bool {
        self.0.iter().any(|&w| w != 0)
    }
}

fn validate_status<'a>(status: &Status<'a>, errs: &mut dyn Report<'a>) {
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
fn validate_conditions<'a>(
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
fn validate_condition<'a>(
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
fn validate_observed_generation<'a>(value: Raw<'a>, path: &Path, errs: &mut dyn Report<'a>) {
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
fn is_json_integer(f: f64) -> bool {
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
    f.is_finite() && f.abs() <= MAX_SAFE_INTEGER && f.fract() == 0.0
}

/// The API server's wording for a string that does not match a CRD schema `pattern`.
fn pattern_error<'a>(path: &Path, value: Cow<'a, str>, pattern: &str) -> FieldError<'a> {
    let detail = format!("{path} in body should match '{pattern}'");
    FieldError::invalid(path.clone(), value, detail)
}
/// `^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$`
fn is_qualified_condition_type(value: &str) -> bool {
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
fn is_condition_reason(value: &str) -> bool {
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
fn is_rfc3339(value: &str) -> bool {
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

/// UPDATE: the spec is immutable. Each changed spec field is an error; the whole `spec` when
/// it appears or disappears.
fn immutability<'a>(object: &Claim<'a>, old: &Claim<'a>) -> ErrorList<'a> {
    let mut errs = ErrorList::new();
    match (object.spec, old.spec) {
        (Field::Value(new_spec), Field::Value(old_spec)) => {
            let strings = [
                ("network", new_spec.network, old_spec.network),
                ("interface", new_spec.interface, old_spec.interface),
            ];
            for (field, new_value, old_value) in strings {
                if !same(new_value.raw(), old_value.raw(), RawOf::same_value) {
                    let value = new_value.raw().map(|v| match v {
                        RawOf::Str(s) => BadValue::Str(s.decode()),
                        RawOf::Raw(raw) => BadValue::of(raw),
                    });
                    errs.push(immutable(Path::new("spec").child(field), value));
                }
            }
            let (new_value, old_value) = (new_spec.ip_requests.raw(), old_spec.ip_requests.raw());
            if !same(new_value, old_value, Raw::same_value) {
                let path = Path::new("spec").child("ipRequests");
                errs.push(immutable(path, new_value.map(BadValue::of)));
            }
        }
        (new_spec, old_spec) => {
            let (new_value, old_value) = (spec_raw(&new_spec), spec_raw(&old_spec));
            if !same(new_value, old_value, Raw::same_value) {
                errs.push(immutable(Path::new("spec"), new_value.map(BadValue::of)));
            }
        }
    }
    errs
}

/// `spec` as text, unless absent or `null`.
fn spec_raw<'a>(spec: &Field<'a, Spec<'a>>) -> Option<Raw<'a>> {
    match *spec {
        Field::Value(spec) => Some(spec.raw),
        Field::Other(raw) => Some(raw),
        Field::Absent | Field::Null => None,
    }
}

/// Whether two values (`None` for absent or `null`) are the same.
fn same<T>(a: Option<T>, b: Option<T>, same_value: impl Fn(&T, &T) -> bool) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same_value(&a, &b),
        _ => false,
    }
}

fn immutable<'a>(path: Path, new_value: Option<BadValue<'a>>) -> FieldError<'a> {
    FieldError {
        kind: crate::admission::answer::field::ErrorType::Invalid,
        path,
        value: new_value.unwrap_or(BadValue::Null),
        detail: "field is immutable".to_owned(),
    }
}

/// Ratcheting: sorts each error of the new object, as validation finds it, into those that
/// deny and those about values unchanged from the old object, which are reported as warnings.
///
/// An error is ratcheted when the old object had the very same error (same type, field,
/// value and detail) — conditions are matched by their `type`, as the list is keyed by it —
/// and, for errors inside an atomic list (`status.ips`, `spec.ipRequests`), the whole list is
/// unchanged, since Kubernetes does not correlate the items of an atomic list.
///
/// What an error is matched against is found without judging every item of the old object:
/// an unchanged atomic list has exactly the errors it had (the rules read nothing else), a
/// condition's errors are those of the one old condition of its type, judged alone when
/// needed, and every other field has a handful of errors at most, judged at the first error.
/// So sorting the errors of a review costs as much as reading it, however many errors there
/// are, and a valid object costs nothing more.
struct Ratchet<'r, 'a> {
    object: &'r Claim<'a>,
    old: &'r Claim<'a>,
    /// What the errors are matched against, made at the first error.
    index: Option<OldIndex<'a>>,
    /// The condition being judged: its index and its text.
    condition: Option<(usize, Raw<'a>)>,
    /// The errors of the old condition last looked at, and its index.
    old_condition_errors: Option<(usize, ErrorList<'a>)>,
    /// Where the errors go.
    verdict: Verdict<'a>,
}

/// What [`Ratchet`] matches errors against.
struct OldIndex<'a> {
    /// Whether `status.ips` and `spec.ipRequests` are the same in both objects.
    same_list: [bool; 2],
    /// The old conditions by `type`, the first of each type (see [`OldConditions`]).
    old_conditions: OldConditions<'a>,
    /// The old object's errors outside list items, by path.
    old_errors: std::collections::HashMap<String, Vec<FieldError<'a>>>,
}

/// The atomic lists whose items are never correlated with the old object's.
const ATOMIC_LISTS: [(&str, &str); 2] = [("status", "ips"), ("spec", "ipRequests")];
/// The start of the path of a condition.
const CONDITION_PREFIX: &str = "status.conditions[";

/// A list member of a claim as `value[parent][list]` finds it: missing, `null`, or a value.
#[derive(Clone, Copy)]
enum Member<'a> {
    Missing,
    Null,
    Is(Raw<'a>),
}

// === impl Member ===

impl<'a> Member<'a> {
    /// `claim[parent][list]` for one of the [`ATOMIC_LISTS`].
    fn of(claim: &Claim<'a>, (parent, _): (&str, &str)) -> Self {
        let field = match (parent, claim.status, claim.spec) {
            ("status", Field::Value(status), _) => status.ips,
            ("spec", _, Field::Value(spec)) => spec.ip_requests,
            _ => return Member::Missing,
        };
        match field {
            Field::Absent => Member::Missing,
            Field::Null => Member::Null,
            Field::Value(list) => Member::Is(list.raw),
            Field::Other(raw) => Member::Is(raw),
        }
    }

    fn same(&self, other: &Member<'_>) -> bool {
        match (self, other) {
            (Member::Missing, Member::Missing) | (Member::Null, Member::Null) => true,
            (Member::Is(a), Member::Is(b)) => a.same_value(b),
            _ => false,
        }
    }
}

/// The old object's conditions that have a `type`, the first of each type, sorted by type for
/// a binary search: a string type by where its text stands in the list, any other by its
/// fingerprint. Each entry is the condition's index and where its text starts.
struct OldConditions<'a> {
    /// The list's text.
    text: &'a str,
    /// `(type, index, item)` for string types.
    strs: Vec<(u32, u32, u32)>,
    /// `(fingerprint, index, item)` for types of any other JSON type (`null` included).
    others: Vec<(u128, u32, u32)>,
}

// === impl OldConditions ===

impl<'a> OldConditions<'a> {
    fn new(old: &Claim<'a>) -> Self {
        let list = match old.status {
            Field::Value(Status {
                conditions: Field::Value(list),
                ..
            }) => Some(list),
            _ => None,
        };
        let text = list.map_or("", |l| l.raw.text);
        let mut index = OldConditions {
            text,
            strs: Vec::new(),
            others: Vec::new(),
        };
        for (i, item) in list.iter().flat_map(List::items).enumerate() {
            let Some(t) = Condition::type_value(item) else {
                continue;
            };
            let (i, at) = (i as u32, json::offset(text, item.text));
            match t.as_str() {
                Some(s) => index.strs.push((json::offset(text, s.raw()), i, at)),
                None => index.others.push((t.fingerprint(), i, at)),
            }
        }
        let str_at = |at: u32| Str::at(text, at);
        // Stable, so that the first of each type comes first.
        index
            .strs
            .sort_by(|a, b| str_at(a.0).cmp_decoded(&str_at(b.0)));
        index.others.sort_by_key(|o| o.0);
        index
    }

    fn is_empty(&self) -> bool {
        self.strs.is_empty() && self.others.is_empty()
    }

    /// The index and text of the first old condition whose type is `t`.
    fn find(&self, t: Raw<'_>) -> Option<(usize, Raw<'a>)> {
        let (index, at) = match t.as_str() {
            Some(s) => {
                let str_at = |at: u32| Str::at(self.text, at);
                let first = self
                    .strs
                    .partition_point(|e| str_at(e.0).cmp_decoded(&s).is_lt());
                let &(found, index, at) = self.strs.get(first)?;
                (str_at(found) == s).then_some((index, at))?
            }
            None => {
                let fingerprint = t.fingerprint();
                let first = self.others.partition_point(|e| e.0 < fingerprint);
                let &(found, index, at) = self.others.get(first)?;
                (found == fingerprint).then_some((index, at))?
            }
        };
        let mut reader = json::Reader::new(&self.text[at as usize..]);
        let item = reader.skip().ok()?;
        Some((index as usize, item))
    }
}

/// The old object's errors outside list items: every error but those of the items of the
/// atomic lists and of the conditions (which [`Ratchet`] matches otherwise). Items are not
/// judged at all.
#[derive(Default)]
struct FieldsOnly<'a>(ErrorList<'a>);

impl<'a> Report<'a> for FieldsOnly<'a> {
    fn push(&mut self, e: FieldError<'a>) {
        self.0.push(e);
    }

    fn items(&self) -> bool {
        false
    }
}

// === impl Ratchet ===

impl<'a> OldIndex<'a> {
    fn new(object: &Claim<'a>, old: &Claim<'a>) -> Self {
        let same_list =
            ATOMIC_LISTS.map(|which| Member::of(object, which).same(&Member::of(old, which)));
        let mut fields = FieldsOnly::default();
        check_object(old, &mut fields);
        let mut old_errors: std::collections::HashMap<String, Vec<FieldError<'a>>> =
            std::collections::HashMap::new();
        for e in fields.0 {
            old_errors.entry(e.path.to_string()).or_default().push(e);
        }
        OldIndex {
            same_list,
            old_conditions: OldConditions::new(old),
            old_errors,
        }
    }
}

impl<'r, 'a> Ratchet<'r, 'a> {
    fn new(object: &'r Claim<'a>, old: &'r Claim<'a>) -> Self {
        Ratchet {
            object,
            old,
            index: None,
            condition: None,
            old_condition_errors: None,
            verdict: Verdict::default(),
        }
    }

    /// Whether `error` is about a value unchanged from the old object.
    fn is_unchanged(&mut self, error: &FieldError<'a>) -> bool {
        let (object, old) = (self.object, self.old);
        let index = self.index.get_or_insert_with(|| OldIndex::new(object, old));
        let path = error.path.as_str();
        for ((parent, list), same) in ATOMIC_LISTS.iter().zip(index.same_list) {
            let Some(rest) = path
                .strip_prefix(parent)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|rest| rest.strip_prefix(list))
            else {
                continue;
            };
            if rest.starts_with('[') {
                // An item's errors depend on the list alone: an unchanged list had them all.
                return same;
            }
            if rest.is_empty() && !same {
                return false;
            }
        }
        if path.starts_with(CONDITION_PREFIX) {
            return self.condition_unchanged(error);
        }
        index.old_errors.get(path).is_some_and(|old| {
            old.iter()
                .any(|o| o.kind == error.kind && o.value == error.value && o.detail == error.detail)
        })
    }

    /// The `type` of the new condition `i`, whatever its JSON type.
    fn new_type(&self, i: usize) -> Option<Raw<'a>> {
        match self.condition {
            Some((current, item)) if current == i => Condition::type_value(item),
            // Validation names the condition it judges before its errors; should it not, the
            // list is read to find it.
            _ => match self.object.status {
                Field::Value(Status {
                    conditions: Field::Value(list),
                    ..
                }) => list.items().nth(i).and_then(Condition::type_value),
                _ => None,
            },
        }
    }

    /// Whether an error under `status.conditions[i]` was an error of the old condition of the
    /// same `type` too, at its own index there.
    fn condition_unchanged(&mut self, error: &FieldError<'a>) -> bool {
        let Some(old_conditions) = self.index.as_ref().map(|i| &i.old_conditions) else {
            return false;
        };
        if old_conditions.is_empty() {
            return false;
        }
        let path = error.path.as_str();
        let Some((new_index, tail)) = path[CONDITION_PREFIX.len()..].split_once(']') else {
            return false;
        };
        let Some((old_index, old_item)) = new_index
            .parse::<usize>()
            .ok()
            .and_then(|i| self.new_type(i))
            .and_then(|t| old_conditions.find(t))
        else {
            return false;
        };
        // The errors of one condition come one after the other: judging the old one once per
        // new condition is enough.
        if self.old_condition_errors.as_ref().map(|(i, _)| *i) != Some(old_index) {
            let mut errs = ErrorList::new();
            let old_path = Path::new("status").child("conditions").index(old_index);
            // The first condition of a type is never a duplicate: no list to check against.
            validate_condition(
                old_item,
                Condition::read(old_item),
                &old_path,
                false,
                &mut errs,
            );
            self.old_condition_errors = Some((old_index, errs));
        }
        let Some((_, old_errors)) = &self.old_condition_errors else {
            return false;
        };
        let old_path = format!("{CONDITION_PREFIX}{old_index}]{tail}");
        let mut old_detail = None;
        old_errors.iter().any(|o| {
            o.path.as_str() == old_path
                && o.kind == error.kind
                && o.value == error.value
                && o.detail
                    == *old_detail.get_or_insert_with(|| error.detail.replace(path, &old_path))
        })
    }
}

impl<'a> Report<'a> for Ratchet<'_, 'a> {
    fn push(&mut self, e: FieldError<'a>) {
        if self.is_unchanged(&e) {
            self.verdict.ratcheted.push(e);
        } else {
            self.verdict.errors.push(e);
        }
    }

    fn condition(&mut self, index: usize, item: Raw<'a>) {
        self.condition = Some((index, item));
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::model::view::testing;
    use serde_json::{json, Value};

    /// The repeats [`FirstTexts`] finds in the strings of the JSON list `text`.
    fn repeats_in(text: &str) -> Vec<bool> {
        let list = json::Raw::new(text, Kind::Array);
        let items: Vec<_> = list.items().collect();
        let mut first = FirstTexts::new(text, items.len());
        items
            .into_iter()
            .map(|item| first.repeats(item.as_str().expect("a string")))
            .collect()
    }

    #[test]
    fn short_and_long_lists_find_the_same_repeats() {
        // Escaped and plain spellings of one string are the same string.
        let short = r#"["a","b","\u0061","c","b","a"]"#;
        assert_eq!(repeats_in(short), [false, false, true, false, true, true]);
        // Past the few compared one by one, the hash table: the same answers.
        let long = format!(
            "[{}]",
            (0..30)
                .map(|i| if i % 2 == 0 {
                    format!("\"\\u006{}\"", i % 3)
                } else {
                    format!("\"`{}\"", i % 3)
                })
                .collect::<Vec<_>>()
                .join(",")
        );
        let found = repeats_in(&long);
        assert_eq!(found.iter().filter(|r| !**r).count(), 6, "{long}");
        assert!(found[6..].iter().all(|r| *r), "{long}");
    }

    /// [`super::validate`] of JSON values.
    fn validate(object: &Value, old: Option<&Value>) -> Verdict<'static> {
        let old = old.map(testing::claim);
        super::validate(&testing::claim(object), old.as_ref())
    }

    /// [`super::validate_object`] of a JSON value.
    fn validate_object(object: &Value) -> ErrorList<'static> {
        super::validate_object(&testing::claim(object))
    }

    /// [`super::immutability`] of JSON values.
    fn immutability(object: &Value, old: &Value) -> ErrorList<'static> {
        super::immutability(&testing::claim(object), &testing::claim(old))
    }

    /// `value[parent][field]`, as the model reads a list.
    fn member<'v>(value: &'v Value, parent: &str, field: &str) -> Option<&'v Value> {
        value.get(parent)?.get(field)
    }

    fn claim() -> Value {
        json!({
            "apiVersion": "k8s.cni.cncf.io/v1alpha1",
            "kind": "IPAMClaim",
            "metadata": {"name": "vm-a.tenantred", "namespace": "ns1"},
            "spec": {"network": "tenantred", "interface": "pod16367aacb67"},
            "status": {
                "ips": ["10.128.20.8/24", "fd10:128:20::8/64"],
                "ownerPod": {"name": "virt-launcher-vm-a-x7k2p"},
                "conditions": [{
                    "type": "IPsAllocated",
                    "status": "True",
                    "reason": "Allocated",
                    "message": "addresses allocated",
                    "lastTransitionTime": "2026-11-26T23:00:00Z",
                    "observedGeneration": 1
                }]
            }
        })
    }

    fn with(pointer: &str, value: Value) -> Value {
        let mut c = claim();
        set(&mut c, pointer, value);
        c
    }

    fn set(doc: &mut Value, pointer: &str, value: Value) {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        let parent = doc.pointer_mut(parent).expect("parent exists");
        match parent {
            Value::Object(m) => {
                m.insert(key.to_owned(), value);
            }
            Value::Array(a) => {
                let i: usize = key.parse().expect("index");
                if i == a.len() {
                    a.push(value);
                } else {
                    a[i] = value;
                }
            }
            _ => panic!("not a container"),
        }
    }

    fn without(pointer: &str) -> Value {
        let mut c = claim();
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        c.pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect("object")
            .remove(key);
        c
    }

    fn messages(object: &Value) -> Vec<String> {
        validate_object(object)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn assert_clean(object: &Value) {
        assert_eq!(messages(object), Vec::<String>::new());
    }

    fn assert_one(object: &Value, expected: &str) {
        assert_eq!(messages(object), vec![expected.to_owned()]);
    }

    // --- the whole object ---

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

    // --- metadata.name ---

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

    // --- spec ---

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
                    crate::admission::answer::field::go_quote(bad)
                ),
            );
        }
    }

    // --- spec.interface ---

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

    // --- spec.ipRequests ---

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

    // --- status ---

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

    #[test]
    fn rejects_invalid_owner_pod_name_and_accepts_empty() {
        assert_clean(&with("/status/ownerPod/name", json!("")));
        let msgs = messages(&with("/status/ownerPod/name", json!("Pod_1")));
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].starts_with("status.ownerPod.name: Invalid value: \"Pod_1\""));
    }

    // --- status.conditions ---

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

    // --- schema-level faults as kube-apiserver 1.28's CRD validation gives them (issue 17) ---

    /// The cause type and message of each error of the claim with `pointer` set to `value`.
    fn causes_with(pointer: &str, value: Value) -> Vec<(&'static str, String)> {
        validate_object(&with(pointer, value))
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
        use crate::admission::answer::field::go_float;
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
    fn ratchets_an_unchanged_schema_fault() {
        let mut old = claim();
        set(&mut old, "/status/conditions/0/status", json!(2));
        set(&mut old, "/status/conditions/0/reason", json!(""));
        let mut new = old.clone();
        set(&mut new, "/status/ips", json!(["10.128.20.9/24"]));
        let verdict = validate(&new, Some(&old));
        assert!(verdict.errors.is_empty(), "{:?}", verdict.errors);
        assert_eq!(verdict.ratcheted.len(), 3);
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

    // --- UPDATE: immutability and ratcheting ---

    #[test]
    fn rejects_changed_network_on_update() {
        let old = claim();
        let new = with("/spec/network", json!("blue"));
        let v = validate(&new, Some(&old));
        let msgs: Vec<String> = v.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec!["spec.network: Invalid value: \"blue\": field is immutable"]
        );
    }

    #[test]
    fn rejects_every_changed_spec_field() {
        let old = claim();
        let mut new = with("/spec/network", json!("blue"));
        set(&mut new, "/spec/interface", json!("eth1"));
        set(&mut new, "/spec/ipRequests", json!(["10.0.0.1/24"]));
        let v = validate(&new, Some(&old));
        assert_eq!(v.errors.len(), 3, "{:?}", v.errors);
        assert_eq!(
            v.errors.kept.0[2].to_string(),
            "spec.ipRequests: Invalid value: [\"10.0.0.1/24\"]: field is immutable"
        );
    }

    #[test]
    fn rejects_spec_appearing_on_update() {
        let old = without("/spec");
        let new = claim();
        let v = validate(&new, Some(&old));
        let msgs: Vec<String> = v.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec!["spec: Invalid value: {\"interface\":\"pod16367aacb67\",\"network\":\"tenantred\"}: field is immutable"]
        );
    }

    #[test]
    fn accepts_unchanged_spec_on_status_update() {
        let old = without("/status");
        let v = validate(&claim(), Some(&old));
        assert_eq!(v, Verdict::default());
    }

    #[test]
    fn ratchets_an_invalid_value_unchanged_since_the_old_object() {
        // A claim created before the webhook was installed, with an interface name CNI refuses,
        // must still accept status updates.
        let old = with("/spec/interface", json!("eth:0"));
        let mut new = old.clone();
        set(&mut new, "/status/ips", json!(["10.1.2.3/24"]));
        let v = validate(&new, Some(&old));
        assert!(v.errors.is_empty(), "{:?}", v.errors);
        assert_eq!(v.ratcheted.len(), 1);
    }

    /// A claim written with a bare IP before the webhook (or before issue 26) keeps taking
    /// status updates that leave its addresses alone: the error comes back as a warning.
    #[test]
    fn ratchets_an_unchanged_bare_ip() {
        let old = with("/status/ips", json!(["10.0.0.5"]));
        let mut new = old.clone();
        set(
            &mut new,
            "/status/ownerPod/name",
            json!("virt-launcher-vm-a-abcde"),
        );
        let v = validate(&new, Some(&old));
        assert!(v.errors.is_empty(), "{:?}", v.errors);
        assert_eq!(v.ratcheted.len(), 1);
        let v = validate(&with("/status/ips", json!(["10.0.0.6"])), Some(&old));
        assert_eq!(
            v.errors.len(),
            1,
            "a changed list is judged: {:?}",
            v.errors
        );
    }

    #[test]
    fn does_not_ratchet_a_changed_invalid_value() {
        let old = with("/status/ips", json!(["winner"]));
        let new = with("/status/ips", json!(["10.1.2.3/24", "winner"]));
        let v = validate(&new, Some(&old));
        assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
        assert!(v.ratcheted.is_empty());
    }

    #[test]
    fn does_not_ratchet_items_of_a_changed_atomic_list() {
        let old = with("/status/ips", json!(["winner", "10.1.2.3/24"]));
        let new = with("/status/ips", json!(["winner", "10.1.2.4/24"]));
        let v = validate(&new, Some(&old));
        assert_eq!(v.errors.len(), 1);
    }

    #[test]
    fn ratchets_conditions_matched_by_type_after_reordering() {
        let bad = json!({"type": "Old", "status": "True", "reason": "bad reason", "lastTransitionTime": "2026-01-01T00:00:00Z"});
        let good = json!({"type": "Ready", "status": "True", "reason": "Ok", "lastTransitionTime": "2026-01-01T00:00:00Z"});
        let old = with("/status/conditions", json!([bad.clone(), good.clone()]));
        let new = with("/status/conditions", json!([good, bad]));
        let v = validate(&new, Some(&old));
        assert!(v.errors.is_empty(), "{:?}", v.errors);
        assert_eq!(v.ratcheted.len(), 1);
    }

    #[test]
    fn does_not_ratchet_on_create() {
        let v = validate(&with("/spec/interface", json!("eth:0")), None);
        assert_eq!(v.errors.len(), 1);
    }

    // --- long lists: linear, capped ---

    /// Ratcheting as the contract states it, judged the plain way: every error of the new
    /// object against every error of the old one. The model the streaming [`Ratchet`] must
    /// agree with.
    fn ratcheted_by_model(object: &Value, old: &Value) -> (Vec<String>, Vec<String>) {
        let old_errors = validate_object(old);
        let list_of = |path: &str| {
            ATOMIC_LISTS.into_iter().find(|(parent, list)| {
                path.strip_prefix(parent)
                    .and_then(|r| r.strip_prefix('.'))
                    .and_then(|r| r.strip_prefix(list))
                    .is_some_and(|r| r.is_empty() || r.starts_with('['))
            })
        };
        let (mut denied, mut ratcheted) = (Vec::new(), Vec::new());
        for e in validate_object(object) {
            let path = e.path.as_str();
            let list_same = list_of(path).is_none_or(|(parent, list)| {
                member(object, parent, list) == member(old, parent, list)
            });
            let old_path = match path.strip_prefix(CONDITION_PREFIX) {
                None => Some(path.to_owned()),
                Some(rest) => rest.split_once(']').and_then(|(i, tail)| {
                    let t = object.pointer(&format!("/status/conditions/{i}/type"))?;
                    let j = old
                        .pointer("/status/conditions")?
                        .as_array()?
                        .iter()
                        .position(|c| c.get("type") == Some(t))?;
                    Some(format!("{CONDITION_PREFIX}{j}]{tail}"))
                }),
            };
            let unchanged = list_same
                && old_path.is_some_and(|old_path| {
                    old_errors.iter().any(|o| {
                        o.path.as_str() == old_path
                            && o.kind == e.kind
                            && o.value == e.value
                            && o.detail == e.detail.replace(path, &old_path)
                    })
                });
            if unchanged {
                ratcheted.push(e.to_string());
            } else {
                denied.push(e.to_string());
            }
        }
        denied.extend(immutability(object, old).iter().map(ToString::to_string));
        (denied, ratcheted)
    }

    fn all(errors: &CappedErrors) -> Vec<String> {
        assert_eq!(errors.more, 0, "the model cases stay under the cap");
        errors.iter().map(ToString::to_string).collect()
    }

    fn arbitrary_claim() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let address = prop::sample::select(vec![
            json!("10.1.2.3/24"),
            json!("10.1.2.3/16"),
            json!("2001:DB8::1/64"),
            json!("2001:db8::1/64"),
            json!("2001:db8::1"),
            json!("winner"),
            json!("010.1.2.3"),
            json!(5),
        ]);
        let condition = (
            prop::sample::select(vec![json!("A"), json!("B"), json!("bad type"), json!(7)]),
            prop::sample::select(vec![json!("True"), json!("Maybe")]),
            prop::sample::select(vec![json!("Ok"), json!("bad reason"), json!("")]),
            prop::sample::select(vec![json!("2026-11-26T23:00:00Z"), json!("now")]),
        )
            .prop_map(|(t, st, r, ltt)| {
                json!({"type": t, "status": st, "reason": r, "lastTransitionTime": ltt})
            });
        let conditions = prop_oneof![
            prop::collection::vec(condition, 0..5).prop_map(Value::Array),
            Just(json!("not a list")),
            Just(json!([3])),
        ];
        (
            prop::collection::vec(address.clone(), 0..5),
            prop::collection::vec(address, 0..4),
            conditions,
            prop::sample::select(vec![json!("eth0"), json!("eth:0"), json!("a very long name")]),
            prop::sample::select(vec![json!("vm-a"), json!("VM_A")]),
            any::<bool>(),
        )
            .prop_map(|(ips, requests, conditions, interface, name, with_status)| {
                let mut c = json!({
                    "metadata": {"name": name},
                    "spec": {"network": "tenantred", "interface": interface, "ipRequests": requests},
                });
                if with_status {
                    c["status"] = json!({"ips": ips, "conditions": conditions});
                }
                c
            })
    }

    proptest::proptest! {
        #[test]
        fn ratchets_like_the_plain_model(
            old in arbitrary_claim(),
            new in arbitrary_claim(),
            keep in proptest::prelude::any::<[bool; 4]>(),
        ) {
            // Parts of the new object copied from the old one, so that unchanged lists,
            // conditions and names are common.
            let mut new = new;
            for (copy, pointer) in keep.iter().zip(["/status/ips", "/spec/ipRequests", "/status/conditions", "/metadata/name"]) {
                if let (true, Some(value)) = (*copy, old.pointer(pointer)) {
                    if let Some(slot) = new.pointer_mut(pointer) {
                        *slot = value.clone();
                    }
                }
            }
            let v = validate(&new, Some(&old));
            let (denied, ratcheted) = ratcheted_by_model(&new, &old);
            proptest::prop_assert_eq!(all(&v.errors), denied);
            proptest::prop_assert_eq!(all(&v.ratcheted), ratcheted);
        }
    }

    #[test]
    fn keeps_the_first_errors_of_a_long_list_and_counts_the_rest() {
        let n = 10_000;
        let ips: Vec<Value> = (0..n).map(|i| json!(format!("x{i}"))).collect();
        let v = validate(&with("/status/ips", Value::Array(ips)), None);
        assert_eq!(v.errors.len(), n);
        assert_eq!(v.errors.kept.len(), CappedErrors::KEPT);
        assert_eq!(v.errors.more, n - CappedErrors::KEPT);
        assert!(v.errors.kept.0[0]
            .to_string()
            .starts_with("status.ips[0]: Invalid value: \"x0\""));
    }

    // Repeats are found on the decoded strings, whatever their escapes (and a string that
    // differs only after an escape is no repeat).
    #[test]
    fn a_repeat_written_with_escapes_is_still_a_repeat() {
        let text = r#"{"metadata":{"name":"a"},"spec":{"network":"n","interface":"e"},"status":{"ips":["x","\u0078","x\u0079"],"conditions":[{"type":"A","status":"True","reason":"R","lastTransitionTime":"2026-11-26T23:00:00Z"},{"type":"\u0041","status":"True","reason":"R","lastTransitionTime":"2026-11-26T23:00:00Z"}]}}"#;
        let errors: Vec<String> = super::validate_object(&testing::claim_of(text))
            .iter()
            .filter(|e| e.kind.cause_type() == "FieldValueDuplicate")
            .map(|e| e.path.to_string())
            .collect();
        assert_eq!(errors, ["status.ips[1]", "status.conditions[1].type"]);
    }

    #[test]
    fn reports_every_repeat_of_one_value_in_a_long_list() {
        // Every item after the first repeats it: invalid and duplicate, two errors each.
        let ips = vec![json!("x"); 20_000];
        let v = validate(&with("/status/ips", Value::Array(ips)), None);
        assert_eq!(v.errors.len(), 2 * 20_000 - 1);
    }

    #[test]
    fn ratchets_a_long_unchanged_list_and_denies_it_changed() {
        let ips: Vec<Value> = (0..5_000).map(|i| json!(format!("x{i}"))).collect();
        let old = with("/status/ips", Value::Array(ips.clone()));
        let v = validate(&old.clone(), Some(&old));
        assert!(v.errors.is_empty());
        assert_eq!(v.ratcheted.len(), 5_000);
        let mut changed = ips;
        changed.push(json!("10.1.2.3/24"));
        let v = validate(&with("/status/ips", Value::Array(changed)), Some(&old));
        assert_eq!(v.errors.len(), 5_000);
        assert!(v.ratcheted.is_empty());
    }

    #[test]
    fn ratchets_long_condition_lists_matched_by_type_in_any_order() {
        let conditions: Vec<Value> = (0..3_000)
            .map(|i| json!({"type": format!("T{i}"), "status": "True", "reason": "bad reason", "lastTransitionTime": "2026-01-01T00:00:00Z"}))
            .collect();
        let old = with("/status/conditions", Value::Array(conditions.clone()));
        let reversed: Vec<Value> = conditions.into_iter().rev().collect();
        let v = validate(
            &with("/status/conditions", Value::Array(reversed)),
            Some(&old),
        );
        assert!(v.errors.is_empty(), "{:?}", v.errors.kept.0.first());
        assert_eq!(v.ratcheted.len(), 3_000);
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
