//! JSON text as the admission core reads it: a reader that checks the syntax exactly as
//! serde_json does and hands out strings borrowed from the text, and values kept as their text
//! ([`Raw`]), compared and printed the way serde_json's `Value` would be, decoded only when a
//! rule needs them.
//!
//! The reader knows two ways of reading a value, because the API server's decoder (and the
//! serde_json one this webhook used before) knows two, and the caller picks one as a type
//! ([`Mode`]): a value read as [`Decode`] has its strings' `\u` escapes checked for paired
//! surrogates and its numbers checked to fit a `float64`, as serde_json checks what it decodes
//! into `Value`; one read as [`Skip`] has only its syntax checked, as serde_json checks what it
//! skips (`IgnoredAny`). Which one applies where is decided by the walk of an object
//! ([`walk`](crate::admission::decode::walk)); both accept exactly what serde_json accepts in
//! the same place (property tests below compare them on generated and mutated JSON). Nothing here says *why* a text is malformed: the
//! pipeline asks serde_json for that (see `admission::decode::envelope`), so that the message is
//! serde_json's, position included.

mod canonical;
mod reader;
mod text;

use std::fmt;

pub use canonical::{sorted_object, Canonical};
pub(crate) use reader::{plain_run, same_bytes};
pub use reader::{Decode, Mode, Reader, Skip};
pub use text::{offset, Items, Members, Raw, Str};

/// The text is not JSON where it was read (or, in a number that is read, does not fit a
/// `float64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// The result of reading.
pub type Read<T> = Result<T, Malformed>;

/// The JSON type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Null => "null",
            Kind::Bool => "boolean",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Objects and arrays alternating `depth` deep, closed in order (or, with `wrong_close`
    /// at that depth, with the other bracket).
    fn nested(depth: usize, wrong_close: Option<usize>) -> String {
        let mut text = String::new();
        for level in 0..depth {
            text.push_str(if level % 2 == 0 { "{\"k\":" } else { "[1," });
        }
        text.push_str("null");
        for level in (0..depth).rev() {
            let object = level % 2 == 0;
            let object = object != (wrong_close == Some(level));
            text.push(if object { '}' } else { ']' });
        }
        text
    }

    #[test]
    fn skips_nesting_deeper_than_one_word_of_the_bit_stack() {
        for depth in [1, 63, 64, 65, 128, 129, 300] {
            let text = nested(depth, None);
            let mut reader = Reader::new(&text);
            let raw = reader.skip().unwrap_or_else(|_| panic!("depth {depth}"));
            assert_eq!(raw.text, text);
            assert!(reader.at_end());
        }
    }

    #[test]
    fn a_container_closed_by_the_other_bracket_is_malformed_at_any_depth() {
        for (depth, level) in [(10, 3), (70, 0), (70, 65), (200, 130), (200, 199)] {
            let text = nested(depth, Some(level));
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(&text).is_err());
            assert_eq!(
                Reader::new(&text).skip(),
                Err(Malformed),
                "depth {depth}, wrong bracket at {level}"
            );
        }
    }

    /// The string of a JSON text that holds one.
    fn str_of(text: &str) -> Str<'_> {
        Reader::new(text).string().expect("a JSON string")
    }

    #[test]
    fn strings_are_equal_by_what_they_decode_to() {
        let same = [
            (r#""ab""#, r#""ab""#),
            (r#""a\u0062""#, r#""ab""#),
            (r#""\u0061b""#, r#""ab""#),
            (r#""\u0061\u0062""#, r#""a\u0062""#),
            (
                r#""k:{\"uid\":\"x\"}""#,
                r#""k:{\u0022uid\u0022:\u0022x\u0022}""#,
            ),
            (r#""\/""#, r#""/""#),
        ];
        for (a, b) in same {
            assert!(str_of(a) == str_of(b), "{a} == {b}");
            assert!(str_of(b) == str_of(a), "{b} == {a}");
        }
        let different = [
            (r#""ab""#, r#""abc""#),
            (r#""a\n""#, r#""a""#),
            (r#""a\n""#, r#""an""#),
            (r#""\u0061b""#, r#""aab""#),
            (r#""xa\u0062""#, r#""ab""#),
            (r#""k:{\"uid\"}""#, r#""f:metadata""#),
        ];
        for (a, b) in different {
            assert!(str_of(a) != str_of(b), "{a} != {b}");
            assert!(str_of(b) != str_of(a), "{b} != {a}");
        }
    }

    proptest::proptest! {
        // A string's escapes as the reader finds them are those its text holds, read or
        // skipped, and in members and items of kept text as well; it decodes as serde_json does.
        #[test]
        fn a_read_string_knows_its_escapes(
            chars in proptest::collection::vec(
                proptest::sample::select(&["a", "\\\"", "\\\\", "\\n", "\\u00e9", "\\ud83d\\ude00", "\u{e9}", "/", " "][..]),
                0..6,
            ),
        ) {
            let text = format!("\"{}\"", chars.concat());
            let want: String = serde_json::from_str(&text).expect("JSON");
            for raw in [Reader::new(&text).scalar::<Decode>(), Reader::new(&text).scalar::<Skip>()] {
                let raw = raw.expect("a string");
                let s = raw.as_str().expect("a string");
                proptest::prop_assert_eq!(s.is_escaped(), text.contains('\\'), "{}", text);
                proptest::prop_assert_eq!(&*s.decode(), want.as_str(), "{}", text);
                proptest::prop_assert_eq!(raw, Raw::new(raw.text, Kind::String));
            }
            let object = format!("{{\"k\":{text}}}");
            let member = Raw::new(&object, Kind::Object).members().next().expect("a member").1;
            proptest::prop_assert_eq!(member.as_str().map(|s| s.is_escaped()), Some(text.contains('\\')));
            let array = format!("[{text}]");
            let item = Raw::new(&array, Kind::Array).items().next().expect("an item");
            proptest::prop_assert_eq!(item.as_str().map(|s| s.is_escaped()), Some(text.contains('\\')));
        }
    }
}
