//! Values kept as text, printed and compared as serde_json's `Value` would hold them: object
//! members sorted by key, the last of repeated keys kept.

use std::borrow::Cow;
use std::hash::Hasher;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::admission::json::text::{offset, read_or_broken};
use crate::admission::json::{Kind, Raw, Reader, Str};

/// The members of an object as serde_json's `Value` holds them: sorted by key (bytewise), the
/// last of repeated keys kept. Each member is remembered by where it starts in the object's
/// text (eight bytes a member, however long): sorting a huge object costs less memory than its
/// text.
pub(super) fn sorted_members(object: Raw<'_>) -> Vec<(u32, u32)> {
    let text = object.text;
    let mut reader = Reader::new(text);
    let mut members = Vec::new();
    let mut next = read_or_broken(reader.open_object());
    while let Some(key) = next {
        let value = read_or_broken(reader.skip());
        members.push((offset(text, key.raw), offset(text, value.text)));
        next = read_or_broken(reader.next_key());
    }
    let key = |at: u32| Str::at(text, at);
    // Stable: of equal keys the last stays last, and is the one kept.
    members.sort_by(|a, b| key(a.0).cmp_decoded(&key(b.0)));
    let mut kept = 0;
    for i in 0..members.len() {
        if kept > 0 && key(members[kept - 1].0) == key(members[i].0) {
            members[kept - 1] = members[i];
        } else {
            members[kept] = members[i];
            kept += 1;
        }
    }
    members.truncate(kept);
    members
}

/// The value that starts at `at` of `text`.
pub(super) fn value_at(text: &str, at: usize) -> Raw<'_> {
    let mut reader = Reader { text, pos: at };
    read_or_broken(reader.skip())
}

/// A value kept as text, serialised as serde_json serialises the `Value` it decodes to: keys
/// sorted, the last of repeated keys, numbers as serde_json prints them, strings escaped as it
/// escapes them. For equality, `-0.0` is written as `0.0`, which `Value` holds equal to it.
#[derive(Clone, Copy, Debug)]
pub struct Canonical<'a> {
    pub(super) raw: Raw<'a>,
    pub(super) for_equality: bool,
}

// === impl Canonical ===

impl<'a> Canonical<'a> {
    /// `raw` as serde_json would print its `Value`.
    pub fn new(raw: Raw<'a>) -> Self {
        Canonical {
            raw,
            for_equality: false,
        }
    }

    pub(super) fn for_equality(raw: Raw<'a>) -> Self {
        Canonical {
            raw,
            for_equality: true,
        }
    }

    fn child(&self, raw: Raw<'a>) -> Self {
        Canonical { raw, ..*self }
    }
}

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = self.raw;
        match raw.kind {
            Kind::Null => serializer.serialize_unit(),
            Kind::Bool => serializer.serialize_bool(raw.text == "true"),
            Kind::Number => {
                let number = raw.number().ok_or_else(|| {
                    serde::ser::Error::custom("a number the walk has read does not decode")
                })?;
                if self.for_equality && number.as_f64() == Some(0.0) && number.is_f64() {
                    return serializer.serialize_f64(0.0);
                }
                number.serialize(serializer)
            }
            Kind::String => {
                let text = raw.as_str().map(|s| s.decode()).unwrap_or_default();
                serializer.serialize_str(&text)
            }
            Kind::Array => {
                let mut seq = serializer.serialize_seq(None)?;
                for item in raw.items() {
                    seq.serialize_element(&self.child(item))?;
                }
                seq.end()
            }
            Kind::Object => {
                let mut map = serializer.serialize_map(None)?;
                for (key, value) in sorted_members(raw) {
                    let key = Str::at(raw.text, key).decode();
                    map.serialize_entry(
                        key.as_ref(),
                        &self.child(value_at(raw.text, value as usize)),
                    )?;
                }
                map.end()
            }
        }
    }
}

/// Visits a value as serde_json's `Value` holds it (object members sorted by key, the last
/// of repeated keys), for printers of other syntaxes.
pub fn sorted_object<'a>(object: Raw<'a>) -> impl Iterator<Item = (Cow<'a, str>, Raw<'a>)> {
    let text = object.text;
    sorted_members(object)
        .into_iter()
        .map(move |(key, value)| (Str::at(text, key).decode(), value_at(text, value as usize)))
}

/// The hasher keys of [`Raw::fingerprint`], drawn once per process.
pub(super) fn fingerprint_keys() -> &'static [std::collections::hash_map::RandomState; 2] {
    static KEYS: std::sync::OnceLock<[std::collections::hash_map::RandomState; 2]> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(Default::default)
}

/// Two independently keyed SipHashes of a text written to it.
pub(super) struct TextHasher(pub(super) [std::collections::hash_map::DefaultHasher; 2]);

impl TextHasher {
    pub(super) fn finish(&self) -> u128 {
        (u128::from(self.0[0].finish()) << 64) | u128::from(self.0[1].finish())
    }
}

impl std::io::Write for TextHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Byte by byte: the same text must hash the same however it is cut into writes.
        for &b in buf {
            self.0[0].write_u8(b);
            self.0[1].write_u8(b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// [`Canonical`] claims to print a value as serde_json prints the `Value` it decodes to,
    /// which holds an object's members sorted by key (a `BTreeMap`). That is true only while no
    /// crate in the build turns on serde_json's `preserve_order` feature (an `IndexMap` in
    /// insertion order): this test fails the day one does, before any answer changes.
    #[test]
    fn serde_json_values_hold_members_sorted_by_key() {
        let value: Value = serde_json::from_str(r#"{"b":1,"a":2,"c":{"z":1,"y":2}}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            r#"{"a":2,"b":1,"c":{"y":2,"z":1}}"#,
            "serde_json's preserve_order is on: Canonical no longer prints what Value prints"
        );
    }

    proptest! {
        /// Any object (keys in any order, repeated, escaped) prints as its `Value` prints.
        #[test]
        fn prints_what_serde_json_prints_of_its_value(
            members in prop::collection::vec(
                (
                    prop::sample::select(vec!["a", "b", "B", "é", "\\u0061", "a\\n", ""]),
                    prop::sample::select(vec!["1", "1.0", "-0.0", "1e3", "\"x\"", "null", "[2,1]", "{\"k\":1,\"k\":2}", "true"]),
                ),
                0..8,
            ),
        ) {
            let members: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text = format!("{{{}}}", members.join(","));
            let value: Value = serde_json::from_str(&text).expect("JSON");
            let raw = Raw::new(&text, Kind::Object);
            prop_assert_eq!(
                serde_json::to_string(&Canonical::new(raw)).unwrap(),
                serde_json::to_string(&value).unwrap(),
                "{}",
                text
            );
        }
    }
}
