//! The text values the reader hands out: strings ([`Str`]) and values ([`Raw`]) borrowed from
//! the text, decoded only when a rule needs them, and the items and members of kept text.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::hash::BuildHasher;

use crate::admission::json::canonical::{fingerprint_keys, Canonical, TextHasher};
use crate::admission::json::reader::hex4;
use crate::admission::json::{Kind, Read, Reader};

/// A JSON string as it stands in the text: its content between the quotes, escapes and all.
/// Most strings hold no escape and *are* their decoded text; the others are decoded when
/// needed.
#[derive(Clone, Copy, Debug)]
pub struct Str<'a> {
    pub(super) raw: &'a str,
    pub(super) escaped: bool,
}

/// A value kept as its text (from its first byte to its last), and its JSON type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw<'a> {
    /// The value's text.
    pub text: &'a str,
    /// Its JSON type.
    pub kind: Kind,
    /// Whether a string holds an escape (as the reader found it; `false` for other types).
    pub(super) escaped: bool,
}

// === impl Str ===

impl<'a> Str<'a> {
    /// A string of text that needs no escape to be decoded (the name of a field, say).
    pub const fn plain(text: &'a str) -> Self {
        Str {
            raw: text,
            escaped: false,
        }
    }

    /// The string whose content starts at `at` of `text` (just after its opening quote), in
    /// text the walk has read.
    pub fn at(text: &'a str, at: u32) -> Self {
        let mut reader = Reader {
            text,
            pos: (at as usize).saturating_sub(1),
        };
        read_or_broken(reader.string())
    }

    /// The string's text between its quotes, escapes and all.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the text holds an escape.
    pub fn is_escaped(&self) -> bool {
        self.escaped
    }

    /// The decoded string: borrowed from the text unless it holds an escape.
    pub fn decode(&self) -> Cow<'a, str> {
        if !self.escaped {
            return Cow::Borrowed(self.raw);
        }
        Cow::Owned(unescape(self.raw))
    }

    /// Whether the decoded string is `text`.
    pub fn is(&self, text: &str) -> bool {
        if self.escaped {
            self.decode() == text
        } else {
            self.raw == text
        }
    }

    /// The decoded strings in order (bytewise, as Rust and Go compare strings).
    pub fn cmp_decoded(&self, other: &Str<'_>) -> Ordering {
        if !self.escaped && !other.escaped {
            return self.raw.cmp(other.raw);
        }
        self.decode().as_ref().cmp(other.decode().as_ref())
    }
}

impl PartialEq for Str<'_> {
    fn eq(&self, other: &Str<'_>) -> bool {
        // The same text is the same string; two texts without escapes are what they hold.
        if self.raw == other.raw {
            return true;
        }
        if !self.escaped && !other.escaped {
            return false;
        }
        // An escaped string against a plain one: its text up to the first escape is decoded
        // as it stands, and it decodes to no more bytes than its text. Most keys differ there,
        // without decoding anything.
        if self.escaped != other.escaped {
            let (escaped, plain) = if self.escaped {
                (self.raw, other.raw)
            } else {
                (other.raw, self.raw)
            };
            let lead = escaped.find('\\').unwrap_or(escaped.len());
            if plain.len() > escaped.len() || !plain.starts_with(&escaped[..lead]) {
                return false;
            }
        }
        self.cmp_decoded(other) == Ordering::Equal
    }
}

impl Eq for Str<'_> {}

/// Decodes the escapes of a string's text that the reader has checked.
pub(super) fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let bytes = rest.as_bytes();
        let (c, used) = match bytes.get(at + 1) {
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'n') => ('\n', 2),
            Some(b'r') => ('\r', 2),
            Some(b't') => ('\t', 2),
            Some(b'u') => {
                let unit = hex4(bytes, at + 2).unwrap_or(0xFFFD);
                match unit {
                    0xD800..=0xDBFF => {
                        let low = hex4(bytes, at + 8).unwrap_or(0);
                        let code = 0x10000
                            + ((u32::from(unit) - 0xD800) << 10)
                            + u32::from(low).wrapping_sub(0xDC00);
                        (char::from_u32(code).unwrap_or('\u{FFFD}'), 12)
                    }
                    _ => (char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'), 6),
                }
            }
            Some(&other) => (char::from(other), 2),
            None => ('\\', 1),
        };
        out.push(c);
        rest = rest.get(at + used..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

// === impl Raw ===

impl<'a> Raw<'a> {
    /// The value of `kind` whose text is `text` (a string's text looked through for escapes).
    pub fn new(text: &'a str, kind: Kind) -> Self {
        Raw {
            text,
            kind,
            escaped: kind == Kind::String && text.contains('\\'),
        }
    }

    /// The string, when the value is one.
    pub fn as_str(&self) -> Option<Str<'a>> {
        if self.kind != Kind::String {
            return None;
        }
        Some(Str {
            raw: &self.text[1..self.text.len() - 1],
            escaped: self.escaped,
        })
    }

    /// The number as serde_json decodes it, when the value is one.
    pub fn number(&self) -> Option<serde_json::Number> {
        (self.kind == Kind::Number)
            .then(|| self.text.parse().ok())
            .flatten()
    }

    /// The items of an array, in order; nothing for any other value.
    pub fn items(&self) -> Items<'a> {
        let mut reader = Reader::new(self.text);
        let more = self.kind == Kind::Array && reader.open_array() == Ok(true);
        Items { reader, more }
    }

    /// The members of an object in the order they stand, repeated keys included; nothing for
    /// any other value.
    pub fn members(&self) -> Members<'a> {
        let mut reader = Reader::new(self.text);
        let next = match self.kind {
            Kind::Object => read_or_broken(reader.open_object()),
            _ => None,
        };
        Members { reader, next }
    }

    /// The value of the last member named `key` (the one a decoder keeps), if the value is an
    /// object that has one.
    pub fn member(&self, key: &str) -> Option<Raw<'a>> {
        self.members()
            .filter(|(k, _)| k.is(key))
            .last()
            .map(|(_, v)| v)
    }

    /// A 128-bit fingerprint of the value as serde_json's `Value` would hold it: equal values
    /// (keys in any order, the last of repeated keys, `1.0` and `1.00`) have equal
    /// fingerprints; different values have different ones but with a chance of 2^-128, which
    /// no client can aim for (the keys are drawn per process).
    pub fn fingerprint(&self) -> u128 {
        let keys = fingerprint_keys();
        let mut hasher = TextHasher([keys[0].build_hasher(), keys[1].build_hasher()]);
        let _ = serde_json::to_writer(&mut hasher, &Canonical::for_equality(*self));
        hasher.finish()
    }

    /// Whether `self` and `other` are the same value for serde_json's `Value` (see
    /// [`Raw::fingerprint`]); the same text always is.
    pub fn same_value(&self, other: &Raw<'_>) -> bool {
        self.text == other.text
            || (self.kind == other.kind && self.fingerprint() == other.fingerprint())
    }
}

/// A read that cannot fail on text the walk has already read; should it fail anyway, that is a
/// bug: it panics, and the pipeline answers the review with a 500 (fail closed).
pub(super) fn read_or_broken<T>(read: Read<T>) -> T {
    read.expect("text the walk has read is well-formed")
}

/// The items of an array kept as text.
#[derive(Clone, Debug)]
pub struct Items<'a> {
    pub(super) reader: Reader<'a>,
    pub(super) more: bool,
}

impl<'a> Iterator for Items<'a> {
    type Item = Raw<'a>;

    fn next(&mut self) -> Option<Raw<'a>> {
        if !self.more {
            return None;
        }
        let item = read_or_broken(self.reader.skip_inline());
        self.more = read_or_broken(self.reader.next_item());
        Some(item)
    }
}

/// The members of an object kept as text.
#[derive(Clone, Debug)]
pub struct Members<'a> {
    pub(super) reader: Reader<'a>,
    pub(super) next: Option<Str<'a>>,
}

impl<'a> Iterator for Members<'a> {
    type Item = (Str<'a>, Raw<'a>);

    fn next(&mut self) -> Option<(Str<'a>, Raw<'a>)> {
        let key = self.next?;
        let value = read_or_broken(self.reader.skip_inline());
        self.next = read_or_broken(self.reader.next_key());
        Some((key, value))
    }
}

/// Where `part`, a slice of `text`, starts in it. Texts are at most 2 GiB (the pipeline
/// refuses larger bodies), so the offset fits 32 bits.
pub fn offset(text: &str, part: &str) -> u32 {
    (part.as_ptr() as usize - text.as_ptr() as usize) as u32
}
