//! The members of an IPAMClaim that the rules read, as typed views borrowed from the review's
//! text: all that validation, defaulting and the address check see of an object.
//!
//! The walk of an object ([`strict`](crate::admission::decode::strict)) fills a [`Claim`] in the same
//! pass that checks its keys: `metadata.name`, `metadata.generateName`, `metadata.labels`,
//! `metadata.uid`, `spec` and `status`, the last of repeated keys winning as in the object the API server
//! decodes. A field of the wrong JSON type is kept as its text ([`Field::Other`]), so that the
//! rules can name its type as the API server does. Lists are kept as their text and read item
//! by item when a rule reads them: judging a list of a million items holds one item at a time,
//! not a million.

use crate::admission::json::{Kind, Raw, Str};

/// A field as found: absent, `null`, of the schema's type, or of another JSON type.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Field<'a, T> {
    /// The object has no such key.
    #[default]
    Absent,
    /// The key holds `null`, which the API server takes for absent (but a JSON Patch does not).
    Null,
    /// A value of the schema's type.
    Value(T),
    /// A value of another JSON type (never `null`).
    Other(Raw<'a>),
}

/// The object under review, as the rules read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Claim<'a> {
    /// The whole object as text (the members are absent when it is not a JSON object).
    pub raw: Raw<'a>,
    /// `metadata`.
    pub metadata: Field<'a, Metadata<'a>>,
    /// `spec`.
    pub spec: Field<'a, Spec<'a>>,
    /// `status`.
    pub status: Field<'a, Status<'a>>,
}

/// `metadata`: the members the rules read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metadata<'a> {
    /// `metadata.name`.
    pub name: Field<'a, Str<'a>>,
    /// `metadata.generateName`.
    pub generate_name: Field<'a, Str<'a>>,
    /// `metadata.labels`, an object kept as its text (only `--network-label` reads it, one key).
    pub labels: Field<'a, Raw<'a>>,
    /// `metadata.uid`: the claim's identity in the reservations of `--unique-addresses` (the
    /// API server sets it before validating admission, on CREATE too).
    pub uid: Field<'a, Str<'a>>,
}

/// `spec`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spec<'a> {
    /// The whole `spec` object as text: immutability names it whole when it appears.
    pub raw: Raw<'a>,
    /// `spec.network`.
    pub network: Field<'a, Str<'a>>,
    /// `spec.interface`.
    pub interface: Field<'a, Str<'a>>,
    /// `spec.ipRequests`.
    pub ip_requests: Field<'a, List<'a>>,
}

/// `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Status<'a> {
    /// `status.ips`.
    pub ips: Field<'a, List<'a>>,
    /// `status.ownerPod`.
    pub owner_pod: Field<'a, OwnerPod<'a>>,
    /// `status.conditions`.
    pub conditions: Field<'a, List<'a>>,
    /// The first item of `status.conditions` (its text, and the condition), when the walk read
    /// it whole in passing (an object of declared scalar members, none repeated: most
    /// conditions); the rules read it from here rather than read its text again. `None` says
    /// nothing about the item.
    pub first_condition: Option<(Raw<'a>, Condition<'a>)>,
}

/// `status.ownerPod`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OwnerPod<'a> {
    /// `status.ownerPod.name`.
    pub name: Field<'a, Str<'a>>,
}

/// A list kept as its text, read item by item.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct List<'a> {
    /// The array's text.
    pub raw: Raw<'a>,
    /// How many items it has.
    pub len: usize,
}

/// One item of `status.conditions`, read from its text when a rule reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Condition<'a> {
    /// `type`.
    pub r#type: Field<'a, Str<'a>>,
    /// `status`.
    pub status: Field<'a, Str<'a>>,
    /// `reason`.
    pub reason: Field<'a, Str<'a>>,
    /// `message`.
    pub message: Field<'a, Str<'a>>,
    /// `lastTransitionTime`.
    pub last_transition_time: Field<'a, Str<'a>>,
    /// `observedGeneration` (an integer).
    pub observed_generation: Field<'a, Raw<'a>>,
}

// === impl Claim ===

impl<'a> Claim<'a> {
    /// A claim of `raw`, its members not read yet.
    pub fn new(raw: Raw<'a>) -> Self {
        Claim {
            raw,
            metadata: Field::Absent,
            spec: Field::Absent,
            status: Field::Absent,
        }
    }

    /// Whether the object is a JSON object at all.
    pub fn is_object(&self) -> bool {
        self.raw.kind == Kind::Object
    }
}

// === impl Field ===

impl<'a, T> Field<'a, T> {
    /// The value of the schema's type, if that is what the field holds.
    pub fn value(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Whether the field holds anything but `null`: the API server takes `null` for absent.
    pub fn is_present(&self) -> bool {
        matches!(self, Field::Value(_) | Field::Other(_))
    }
}

impl<'a> Field<'a, Str<'a>> {
    /// A string field from the value found.
    pub fn of_str(raw: Raw<'a>) -> Self {
        match raw.as_str() {
            Some(s) => Field::Value(s),
            None => Field::of_other(raw),
        }
    }

    /// The string, when the field holds one.
    pub fn str(&self) -> Option<Str<'a>> {
        self.value().copied()
    }

    /// The field's value as text, whatever its type (`None` when absent or `null`).
    pub fn raw(&self) -> Option<RawOf<'a>> {
        match *self {
            Field::Value(s) => Some(RawOf::Str(s)),
            Field::Other(raw) => Some(RawOf::Raw(raw)),
            Field::Absent | Field::Null => None,
        }
    }
}

impl<'a> Field<'a, Raw<'a>> {
    /// A field whose schema type is `kind`, from the value found.
    pub fn of_kind(raw: Raw<'a>, kind: Kind) -> Self {
        if raw.kind == kind {
            Field::Value(raw)
        } else {
            Field::of_other(raw)
        }
    }
}

impl<'a> Field<'a, List<'a>> {
    /// A list field from the value found and its number of items.
    pub fn of_list(raw: Raw<'a>, len: usize) -> Self {
        if raw.kind == Kind::Array {
            Field::Value(List { raw, len })
        } else {
            Field::of_other(raw)
        }
    }

    /// The field's value as text, whatever its type (`None` when absent or `null`).
    pub fn raw(&self) -> Option<Raw<'a>> {
        match *self {
            Field::Value(list) => Some(list.raw),
            Field::Other(raw) => Some(raw),
            Field::Absent | Field::Null => None,
        }
    }
}

impl<'a, T> Field<'a, T> {
    /// `null` or a value of another type than the schema's.
    pub fn of_other(raw: Raw<'a>) -> Self {
        if raw.kind == Kind::Null {
            Field::Null
        } else {
            Field::Other(raw)
        }
    }
}

/// A field's value as text: a string, or any other value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RawOf<'a> {
    /// A string.
    Str(Str<'a>),
    /// Any other value.
    Raw(Raw<'a>),
}

// === impl RawOf ===

impl RawOf<'_> {
    /// Whether two field values are the same value for serde_json's `Value`.
    pub fn same_value(&self, other: &RawOf<'_>) -> bool {
        match (self, other) {
            (RawOf::Str(a), RawOf::Str(b)) => a == b,
            (RawOf::Raw(a), RawOf::Raw(b)) => a.same_value(b),
            _ => false,
        }
    }
}

// === impl List ===

impl<'a> List<'a> {
    /// The items, in order.
    pub fn items(&self) -> crate::admission::json::Items<'a> {
        self.raw.items()
    }
}

// === impl Condition ===

impl<'a> Condition<'a> {
    /// The condition an item of `status.conditions` holds, or `None` when the item is not an
    /// object. Of repeated keys, the last is kept.
    pub fn read(item: Raw<'a>) -> Option<Self> {
        if item.kind != Kind::Object {
            return None;
        }
        let mut condition = Condition::default();
        for (key, value) in item.members() {
            let decoded;
            let key = if key.is_escaped() {
                decoded = key.decode();
                decoded.as_bytes()
            } else {
                key.raw().as_bytes()
            };
            condition.fill_named(key, value);
        }
        Some(condition)
    }

    /// Sets the member named `key` (decoded) to `value`; other keys are not members. The walk
    /// fills [`Status::first_condition`] through this too.
    pub(crate) fn fill_named(&mut self, key: &[u8], value: Raw<'a>) {
        match key {
            b"type" => self.r#type = Field::of_str(value),
            b"status" => self.status = Field::of_str(value),
            b"reason" => self.reason = Field::of_str(value),
            b"message" => self.message = Field::of_str(value),
            b"lastTransitionTime" => self.last_transition_time = Field::of_str(value),
            b"observedGeneration" => self.observed_generation = Field::of_kind(value, Kind::Number),
            _ => {}
        }
    }

    /// The value of `type` as text, whatever its type, `null` included (ratcheting matches
    /// conditions by it).
    pub fn type_value(item: Raw<'a>) -> Option<Raw<'a>> {
        item.member("type")
    }
}

/// Views of JSON values for unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::Claim;

    /// The view the walk makes of `text`, which must be well-formed JSON.
    pub fn claim_of(text: &str) -> Claim<'_> {
        crate::admission::decode::walk(text, false)
            .unwrap_or_else(|_| panic!("not JSON: {text}"))
            .claim
    }

    /// The view of `value` as serde_json writes it. The text is leaked so that the view (and
    /// the errors that borrow from it) outlive the test's own values; tests are short-lived.
    pub fn claim(value: &serde_json::Value) -> Claim<'static> {
        claim_of(Box::leak(value.to_string().into_boxed_str()))
    }
}
