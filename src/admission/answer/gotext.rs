//! Values as Go prints them in the API server's messages: `%q` strings (cut to a bound), `%v`
//! floats, `%#v` values, the JSON type names and formats its schema validation uses.

use std::fmt;

use crate::admission::json::{self, Kind, Raw};

/// Longest value (in bytes) echoed in an error; longer ones are cut, so that a huge invalid
/// value never makes a huge answer (the API server cuts webhook messages anyway).
pub const MAX_ECHOED_BYTES: usize = 256;

/// `text` cut to at most `max` bytes on a character boundary, and whether it was cut.
pub fn clip(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

/// Go's `%q` of `text`, cut to [`MAX_ECHOED_BYTES`] with a note of the full length.
pub fn quote_clipped(text: &str) -> String {
    match clip(text, MAX_ECHOED_BYTES) {
        (whole, false) => go_quote(whole),
        (head, true) => format!("{}... ({} bytes, truncated)", go_quote(head), text.len()),
    }
}

/// The JSON type name the API server's schema validation uses in its messages.
pub fn json_type_name(v: Raw<'_>) -> &'static str {
    match v.kind {
        Kind::Null => "null",
        Kind::Bool => "boolean",
        Kind::Number => match v.number().map(|n| decoded_number(&n)) {
            Some(Ok(_)) => "integer",
            _ => "number",
        },
        Kind::String => "string",
        Kind::Array => "array",
        Kind::Object => "object",
    }
}

/// A JSON number as the API server's decoder makes it: an `int64` when its text is an integer
/// that fits (`Ok`), else a `float64` (`Err`): a fraction, an exponent, or beyond int64.
pub fn decoded_number(n: &serde_json::Number) -> Result<i64, f64> {
    n.as_i64().ok_or_else(|| n.as_f64().unwrap_or(f64::NAN))
}

/// The format the API server's schema validation gives what its decoder made of `v`, when
/// `v` is not a string: `int64`, `float64`, or nothing (booleans, objects, arrays).
pub fn decoded_format(v: Raw<'_>) -> &'static str {
    match v.number().map(|n| decoded_number(&n)) {
        Some(Ok(_)) => "int64",
        Some(Err(_)) => "float64",
        None => "",
    }
}

/// A float as Go's `%v` prints it: the shortest text that reads back the same, with an
/// exponent (`1e+06`, `1.5e-07`) below 1e-4 and from 1e6 on.
pub fn go_float(f: f64) -> String {
    let exponential = format!("{f:e}");
    let Some((mantissa, exponent)) = exponential.split_once('e') else {
        return exponential;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) || f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
}

/// Text written up to a number of bytes (cut on a character boundary) and measured whole.
pub(super) struct Bounded {
    pub(super) head: String,
    max: usize,
    pub(super) len: usize,
}

// === impl Bounded ===

impl Bounded {
    pub(super) fn new(max: usize) -> Self {
        Bounded {
            head: String::new(),
            max,
            len: 0,
        }
    }
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // serde_json writes whole UTF-8 sequences; a cut may still fall inside one, which
        // `clip` moves back to a character boundary.
        let text = String::from_utf8_lossy(buf);
        let _ = fmt::Write::write_str(self, &text);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Once cut, nothing more is written: the head stays a prefix of the whole.
        if self.head.len() == self.len {
            self.head
                .push_str(clip(s, self.max.saturating_sub(self.head.len())).0);
        }
        self.len += s.len();
        Ok(())
    }
}

/// Writes `v` as Go's `%#v` prints what the API server's decoder makes of it:
/// `map[string]interface {}{"a":1, "b":[]interface {}{true, "x"}}`, keys sorted, `null` as
/// `interface {}(nil)`, numbers as `int64` or `float64`.
pub(super) fn go_syntax(v: Raw<'_>, out: &mut impl fmt::Write) -> fmt::Result {
    match v.kind {
        Kind::Null => out.write_str("interface {}(nil)"),
        Kind::Bool => out.write_str(v.text),
        Kind::Number => match v.number().map(|n| decoded_number(&n)) {
            Some(Ok(i)) => write!(out, "{i}"),
            Some(Err(f)) => out.write_str(&go_float(f)),
            None => out.write_str(v.text),
        },
        Kind::String => {
            let text = v.as_str().map(|s| s.decode()).unwrap_or_default();
            out.write_str(&go_quote(&text))
        }
        Kind::Array => {
            out.write_str("[]interface {}{")?;
            for (i, item) in v.items().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                go_syntax(item, out)?;
            }
            out.write_str("}")
        }
        Kind::Object => {
            out.write_str("map[string]interface {}{")?;
            // Go prints a map's keys sorted, whatever order they came in.
            for (i, (key, value)) in json::sorted_object(v).enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                out.write_str(&go_quote(&key))?;
                out.write_str(":")?;
                go_syntax(value, out)?;
            }
            out.write_str("}")
        }
    }
}

/// Quotes a string the way Go's `%q` does, so messages match the API server byte for byte.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    // Printable ASCII other than the quote and the backslash stands for itself: such runs are
    // copied whole.
    let plain = |b: u8| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\';
    let bytes = s.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let run = bytes[start..].iter().position(|&b| !plain(b));
        let end = run.map_or(bytes.len(), |n| start + n);
        out.push_str(&s[start..end]);
        let Some(c) = s[end..].chars().next() else {
            break;
        };
        go_quote_char(&mut out, c);
        start = end + c.len_utf8();
    }
    out.push('"');
    out
}

/// One character of [`go_quote`] that is not printable ASCII, or is a quote or a backslash.
pub(super) fn go_quote_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\u{b}' => out.push_str("\\v"),
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Approximates Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the
/// ASCII space; not control characters, other whitespace or unassigned/format characters.
pub(super) fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    // Format characters (category Cf) that commonly appear: soft hyphen, zero-width and
    // bidirectional controls, BOM. Go escapes them.
    !matches!(c,
        '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{180e}'
        | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        | '\u{e000}'..='\u{f8ff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(go_quote("é"), "\"é\"");
        assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
        assert_eq!(go_quote("a\u{a0}b"), "\"a\\u00a0b\"");
    }

    proptest::proptest! {
        /// Runs of printable ASCII are copied whole: the result is the quoting of each
        /// character on its own.
        #[test]
        fn quotes_any_text_as_char_by_char(
            text in "([a-z\"\\\\\\x00-\\x1f\\x7f\u{80}-\u{10ffff}]{0,3}[ -~]{0,20}){0,8}"
        ) {
            let mut expected = String::from("\"");
            for c in text.chars() {
                match c {
                    ' '..='~' if c != '"' && c != '\\' => expected.push(c),
                    c => go_quote_char(&mut expected, c),
                }
            }
            expected.push('"');
            proptest::prop_assert_eq!(go_quote(&text), expected);
        }
    }
}
