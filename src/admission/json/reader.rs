//! The reader: JSON text read token by token, checked exactly as serde_json checks it, strings
//! handed out borrowed from the text.

use crate::admission::json::{Kind, Malformed, Raw, Read, Str};

/// How a value is read, chosen by the caller as a type (as serde_json's caller picks `Value`
/// or `IgnoredAny`): [`Decode`] checks what serde_json checks of a value it decodes, [`Skip`]
/// what it checks of one it skips. Both accept exactly what serde_json accepts in that place.
pub trait Mode: sealed::Sealed {
    /// Whether strings' `\u` escapes must pair their surrogates and numbers fit a `float64`.
    const DECODES: bool;
}

/// Read as serde_json reads a value into `Value`: `\u` surrogates paired, numbers within a
/// `float64`.
#[derive(Clone, Copy, Debug)]
pub enum Decode {}

/// Read as serde_json skips a value (`IgnoredAny`): only the syntax is checked.
#[derive(Clone, Copy, Debug)]
pub enum Skip {}

impl Mode for Decode {
    const DECODES: bool = true;
}

impl Mode for Skip {
    const DECODES: bool = false;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Decode {}
    impl Sealed for super::Skip {}
}

/// Reads JSON text from a position on.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    pub(super) text: &'a str,
    pub(super) pos: usize,
}

// === impl Reader ===

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Reader { text, pos: 0 }
    }

    /// The text being read.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Where the reader is, in bytes from the start of the text.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The text from `start` to where the reader is.
    pub fn since(&self, start: usize) -> &'a str {
        &self.text[start..self.pos]
    }

    #[inline]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Skips whitespace and returns the next byte, if any.
    #[inline(always)]
    pub fn peek(&mut self) -> Option<u8> {
        // Compact JSON, as the API server sends it, has no whitespace between tokens: every
        // byte that starts a token is above the space.
        let b = *self.bytes().get(self.pos)?;
        if b > b' ' {
            return Some(b);
        }
        self.skip_whitespace()
    }

    fn skip_whitespace(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        while let Some(&b) = bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Consumes `byte` after whitespace, or fails.
    #[inline(always)]
    fn expect(&mut self, byte: u8) -> Read<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// The type of the next value, from its first byte, without reading it.
    pub fn kind(&mut self) -> Read<Kind> {
        match self.peek().ok_or(Malformed)? {
            b'{' => Ok(Kind::Object),
            b'[' => Ok(Kind::Array),
            b'"' => Ok(Kind::String),
            b'-' | b'0'..=b'9' => Ok(Kind::Number),
            b't' | b'f' => Ok(Kind::Bool),
            b'n' => Ok(Kind::Null),
            _ => Err(Malformed),
        }
    }

    /// Opens the object that comes next and reads its first key; `None` if it is empty.
    #[inline(always)]
    pub fn open_object(&mut self) -> Read<Option<Str<'a>>> {
        self.expect(b'{')?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(None);
        }
        self.key().map(Some)
    }

    /// After a member's value: the next key, or `None` where the object closes.
    #[inline(always)]
    pub fn next_key(&mut self) -> Read<Option<Str<'a>>> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.key().map(Some)
            }
            Some(b'}') => {
                self.pos += 1;
                Ok(None)
            }
            _ => Err(Malformed),
        }
    }

    /// Opens the object that comes next: whether a member follows (its key is next).
    #[inline(always)]
    pub fn open_members(&mut self) -> Read<bool> {
        self.open(b'{', b'}')
    }

    /// After a member's value: whether another member follows (its key is next), or the
    /// object closes.
    #[inline(always)]
    pub fn next_member(&mut self) -> Read<bool> {
        self.next(b'}')
    }

    /// The first byte of the key that comes next (after its quote), without reading it.
    #[inline(always)]
    pub fn key_lead(&mut self) -> Option<u8> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.bytes().get(self.pos + 1).copied()
    }

    /// Reads the key that comes next and its colon when the key is `name` written without
    /// escapes (`name` holds no quote or backslash); otherwise reads nothing and says `None`.
    #[inline(always)]
    pub fn key_if(&mut self, name: &'static str) -> Read<Option<Str<'a>>> {
        let start = self.pos + 1;
        let end = start + name.len();
        let bytes = self.bytes();
        match bytes.get(start..end) {
            Some(text) if bytes.get(end) == Some(&b'"') && same_bytes(text, name.as_bytes()) => {}
            _ => return Ok(None),
        }
        self.pos = end + 1;
        self.colon()?;
        Ok(Some(Str {
            raw: &self.text[start..end],
            escaped: false,
        }))
    }

    /// A key and its colon; keys are always read (escapes checked), never only skipped.
    #[inline(always)]
    pub fn key(&mut self) -> Read<Str<'a>> {
        if self.peek() != Some(b'"') {
            return Err(Malformed);
        }
        self.pos += 1;
        let key = self.string_rest::<Decode>()?;
        self.colon()?;
        Ok(key)
    }

    /// The colon after a key; compact JSON puts it right after the key.
    #[inline(always)]
    fn colon(&mut self) -> Read<()> {
        if self.bytes().get(self.pos) == Some(&b':') {
            self.pos += 1;
            return Ok(());
        }
        self.expect(b':')
    }

    /// Opens the array that comes next; whether an item follows.
    pub fn open_array(&mut self) -> Read<bool> {
        self.open(b'[', b']')
    }

    /// After an item: whether another follows (`,`), or the array closes.
    #[inline(always)]
    pub fn next_item(&mut self) -> Read<bool> {
        self.next(b']')
    }

    /// Opens the container that `open` starts and `close` ends: whether anything is in it.
    #[inline(always)]
    fn open(&mut self, open: u8, close: u8) -> Read<bool> {
        self.expect(open)?;
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// After a value in a container that `close` ends: whether another follows (`,`), or the
    /// container closes.
    #[inline(always)]
    fn next(&mut self, close: u8) -> Read<bool> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(Malformed),
        }
    }

    /// Reads the string that comes next: escapes checked, `\u` surrogates paired.
    #[inline(always)]
    pub fn string(&mut self) -> Read<Str<'a>> {
        self.expect(b'"')?;
        self.string_rest::<Decode>()
    }

    /// The rest of a string whose opening quote was just read.
    #[inline(always)]
    fn string_rest<M: Mode>(&mut self) -> Read<Str<'a>> {
        let bytes = self.bytes();
        let start = self.pos;
        let end = plain_run(bytes, start);
        // Most strings hold no escape: they end at the first byte that ends a plain run.
        if bytes.get(end) == Some(&b'"') {
            self.pos = end + 1;
            return Ok(Str {
                raw: &self.text[start..end],
                escaped: false,
            });
        }
        self.escaped_string::<M>(start, end)
    }

    /// The rest of a string from `i`, where a plain run from `start` stopped short of its
    /// closing quote.
    #[inline(never)]
    fn escaped_string<M: Mode>(&mut self, start: usize, mut i: usize) -> Read<Str<'a>> {
        let bytes = self.bytes();
        let mut escaped = false;
        loop {
            i = plain_run(bytes, i);
            match bytes.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(Str {
                        raw: &self.text[start..i],
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    i = escape::<M>(bytes, i + 1)?;
                }
                // A control character, or the end of the text.
                _ => return Err(Malformed),
            }
        }
    }

    /// Reads the number that comes next and returns its text. A number read as [`Decode`] must
    /// fit a `float64`, as serde_json decodes it; a skipped one need only be well-formed.
    pub fn number<M: Mode>(&mut self) -> Read<&'a str> {
        self.peek();
        let bytes = self.bytes();
        let start = self.pos;
        let mut i = start;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(bytes, i + 1),
            _ => return Err(Malformed),
        }
        let mut plain = true;
        if bytes.get(i) == Some(&b'.') {
            let end = digits(bytes, i + 1);
            if end == i + 1 {
                return Err(Malformed);
            }
            i = end;
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            plain = false;
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let end = digits(bytes, i);
            if end == i {
                return Err(Malformed);
            }
            i = end;
        }
        let token = &self.text[start..i];
        self.pos = i;
        // Without an exponent, 300 characters cannot reach the largest float64 (about 1.8e308):
        // only longer numbers and exponents are handed to serde_json to find out.
        if M::DECODES && !(plain && token.len() <= 300) && !fits(token) {
            return Err(Malformed);
        }
        Ok(token)
    }

    /// Reads `true`, `false` or `null`.
    pub fn literal(&mut self) -> Read<Kind> {
        let rest = &self.bytes()[self.pos..];
        let (len, kind) = match rest.first() {
            Some(b't') if rest.starts_with(b"true") => (4, Kind::Bool),
            Some(b'f') if rest.starts_with(b"false") => (5, Kind::Bool),
            Some(b'n') if rest.starts_with(b"null") => (4, Kind::Null),
            _ => return Err(Malformed),
        };
        self.pos += len;
        Ok(kind)
    }

    /// Reads a scalar (string, number, literal) that comes next, and returns it as text.
    #[inline(always)]
    pub fn scalar<M: Mode>(&mut self) -> Read<Raw<'a>> {
        let first = self.peek().ok_or(Malformed)?;
        let start = self.pos;
        let mut escaped = false;
        let kind = match first {
            b'"' => {
                self.pos += 1;
                escaped = self.string_rest::<M>()?.escaped;
                Kind::String
            }
            b'-' | b'0'..=b'9' => {
                self.number::<M>()?;
                Kind::Number
            }
            b't' | b'f' | b'n' => self.literal()?,
            _ => return Err(Malformed),
        };
        Ok(Raw {
            text: self.since(start),
            kind,
            escaped,
        })
    }

    /// Skips the value that comes next, checking only its syntax, as serde_json's own skipper
    /// does: keys and strings are not checked for paired surrogates, numbers not for range,
    /// and nesting costs no recursion however deep it goes.
    ///
    /// Its own loop rather than the walk's: a skipped value has no path, no schema and no view
    /// to fill, and the walk's bookkeeping would cost on every member no rule reads.
    pub fn skip(&mut self) -> Read<Raw<'a>> {
        let start = match self.peek() {
            Some(b'{' | b'[') => self.pos,
            _ => return self.scalar::<Skip>(),
        };
        let kind = if self.bytes()[start] == b'{' {
            Kind::Object
        } else {
            Kind::Array
        };
        // One bit per open container: set for an object.
        let mut open = BitStack::default();
        loop {
            // At a value.
            match self.peek().ok_or(Malformed)? {
                b'{' => {
                    self.pos += 1;
                    open.push(true);
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        open.pop();
                    } else {
                        self.skip_key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.pos += 1;
                    open.push(false);
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        open.pop();
                    } else {
                        continue;
                    }
                }
                b'"' => {
                    self.pos += 1;
                    self.skip_string_rest()?;
                }
                b'-' | b'0'..=b'9' => {
                    self.number::<Skip>()?;
                }
                _ => {
                    self.literal()?;
                }
            }
            // After a value: a separator, or the end of containers.
            loop {
                let Some(object) = open.top() else {
                    return Ok(Raw::new(self.since(start), kind));
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if object {
                            self.skip_key()?;
                        }
                        break;
                    }
                    Some(b'}') if object => {
                        self.pos += 1;
                        open.pop();
                    }
                    Some(b']') if !object => {
                        self.pos += 1;
                        open.pop();
                    }
                    _ => return Err(Malformed),
                }
            }
        }
    }

    /// [`Reader::skip`], with a scalar read in place: most members of the objects the rules
    /// read again are scalars.
    #[inline(always)]
    pub(super) fn skip_inline(&mut self) -> Read<Raw<'a>> {
        match self.peek() {
            Some(b'{' | b'[') => self.skip(),
            _ => self.scalar::<Skip>(),
        }
    }

    fn skip_key(&mut self) -> Read<()> {
        if self.peek() != Some(b'"') {
            return Err(Malformed);
        }
        self.pos += 1;
        self.skip_string_rest()?;
        self.colon()
    }

    /// Skips the rest of a string whose opening quote was just read, checking it as a skipped
    /// string is checked; nothing of it is kept.
    #[inline(always)]
    fn skip_string_rest(&mut self) -> Read<()> {
        let bytes = self.bytes();
        let start = self.pos;
        let end = plain_run(bytes, start);
        if bytes.get(end) == Some(&b'"') {
            self.pos = end + 1;
            return Ok(());
        }
        self.escaped_string::<Skip>(start, end).map(|_| ())
    }
}

/// A stack of booleans, one bit each: the first 64 in a word of its own (no allocation for
/// the nesting of any real object), deeper ones in a vector.
#[derive(Default)]
pub(super) struct BitStack {
    pub(super) low: u64,
    pub(super) deeper: Vec<u64>,
    pub(super) len: usize,
}

impl BitStack {
    #[inline]
    fn push(&mut self, bit: bool) {
        let (word, shift) = (self.len / 64, self.len % 64);
        let slot = if word == 0 {
            &mut self.low
        } else {
            if word > self.deeper.len() {
                self.deeper.push(0);
            }
            &mut self.deeper[word - 1]
        };
        if bit {
            *slot |= 1 << shift;
        } else {
            *slot &= !(1 << shift);
        }
        self.len += 1;
    }

    #[inline]
    fn pop(&mut self) {
        self.len -= 1;
    }

    #[inline]
    fn top(&self) -> Option<bool> {
        let i = self.len.checked_sub(1)?;
        let word = if i < 64 {
            self.low
        } else {
            self.deeper[i / 64 - 1]
        };
        Some(word >> (i % 64) & 1 == 1)
    }
}

/// Byte equality without a call to `memcmp`, which costs more than comparing a short key:
/// eight bytes at a time, the last eight (or four) overlapping the ones before.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if word(&a[i..i + 8]) != word(&b[i..i + 8]) {
                return false;
            }
            i += 8;
        }
        return word(&a[n - 8..]) == word(&b[n - 8..]);
    }
    if n >= 4 {
        return half(&a[..4]) == half(&b[..4]) && half(&a[n - 4..]) == half(&b[n - 4..]);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// Eight bytes as one integer.
#[inline]
pub(super) fn word(bytes: &[u8]) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// Four bytes as one integer.
#[inline]
pub(super) fn half(bytes: &[u8]) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(bytes);
    u32::from_le_bytes(w)
}

/// The index of the first byte from `i` on that ends a plain run of string text: a quote, a
/// backslash or a control character; the length of `bytes` if none. Eight bytes at a time.
#[inline(always)]
pub(crate) fn plain_run(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A byte is flagged when it is zero after the xor (a quote, a backslash) or below
        // 0x20: the lowest flag of each test is exact, so the lowest of all is the first.
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let flags = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        let flags = flags & HIGHS;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

/// Checks the escape after a backslash at `i` and returns where it ends. A string read as
/// [`Decode`] must pair its `\u` surrogates (as serde_json requires to make a Rust string); a skipped one
/// need only have four hex digits after each `\u`.
pub(super) fn escape<M: Mode>(bytes: &[u8], i: usize) -> Read<usize> {
    match bytes.get(i) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 1),
        Some(b'u') => {
            let unit = hex4(bytes, i + 1)?;
            let end = i + 5;
            if !M::DECODES {
                return Ok(end);
            }
            match unit {
                0xDC00..=0xDFFF => Err(Malformed),
                0xD800..=0xDBFF => {
                    if bytes.get(end..end + 2) != Some(b"\\u") {
                        return Err(Malformed);
                    }
                    match hex4(bytes, end + 2)? {
                        0xDC00..=0xDFFF => Ok(end + 6),
                        _ => Err(Malformed),
                    }
                }
                _ => Ok(end),
            }
        }
        _ => Err(Malformed),
    }
}

/// The four hex digits at `i`.
pub(super) fn hex4(bytes: &[u8], i: usize) -> Read<u16> {
    let digits = bytes.get(i..i + 4).ok_or(Malformed)?;
    digits.iter().try_fold(0u16, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(Malformed),
        };
        Ok(acc << 4 | u16::from(d))
    })
}

/// The index after the decimal digits from `i` on.
#[inline]
pub(super) fn digits(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Whether serde_json decodes the well-formed number `token` (it refuses one beyond a
/// `float64`, e.g. `1e400`).
pub(super) fn fits(token: &str) -> bool {
    token.parse::<serde_json::Number>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IgnoredAny;
    use serde_json::Value;

    /// A whole value read with the reader's primitives in mode `M`: objects key by key (keys
    /// are always decoded, as a decoder must), arrays item by item, scalars as `M` reads them.
    fn read_value<M: Mode>(reader: &mut Reader<'_>, depth: usize) -> Read<()> {
        if depth > 100 {
            return Err(Malformed);
        }
        match reader.peek() {
            Some(b'{') => {
                let mut key = reader.open_object()?;
                while key.is_some() {
                    read_value::<M>(reader, depth + 1)?;
                    key = reader.next_key()?;
                }
            }
            Some(b'[') => {
                let mut more = reader.open_array()?;
                while more {
                    read_value::<M>(reader, depth + 1)?;
                    more = reader.next_item()?;
                }
            }
            _ => {
                reader.scalar::<M>()?;
            }
        }
        Ok(())
    }

    /// Whether the reader reads all of `text` as one value decoded (as into `Value`).
    fn decodes(text: &str) -> bool {
        let mut reader = Reader::new(text);
        read_value::<Decode>(&mut reader, 0).is_ok() && reader.at_end()
    }

    /// Whether the reader skips all of `text` as one value (as `IgnoredAny` does).
    fn skips(text: &str) -> bool {
        let mut reader = Reader::new(text);
        reader.skip().is_ok() && reader.at_end()
    }

    /// Scalars with every corner serde_json tells apart: escapes and surrogates (paired, lone,
    /// reversed), control characters, numbers beyond a float64 or malformed, literals.
    fn scalar() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "0",
            "-0",
            "12",
            "-1.5",
            "1e5",
            "1E-5",
            "2.5e+3",
            "1e400",
            "-1e400",
            "1e-400",
            "123456789012345678901234567890",
            "01",
            "1.",
            "-",
            ".5",
            "1e",
            "+1",
            "true",
            "false",
            "null",
            "nul",
            "tru",
            r#""""#,
            r#""a""#,
            r#""\n\t\"\\\/""#,
            r#""\u00e9""#,
            r#""\uD83D\uDE00""#,
            r#""\uD800""#,
            r#""\uDC00""#,
            r#""\uDE00\uD83D""#,
            r#""\uD800x""#,
            r#""\u12""#,
            r#""\x""#,
            "\"\u{1}\"",
            "\"é\"",
            "\"a\u{7f}b\"",
        ])
        .prop_map(str::to_owned)
    }

    /// JSON-like text: objects, arrays and the scalars above, with whitespace.
    fn text() -> impl Strategy<Value = String> {
        let ws = prop::sample::select(vec!["", " ", "\n\t", "\r "]);
        scalar().prop_recursive(4, 32, 4, move |inner| {
            let ws = ws.clone();
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..4), ws.clone())
                    .prop_map(|(items, ws)| format!("[{ws}{}{ws}]", items.join(&format!("{ws},"))),),
                (
                    prop::collection::vec((scalar(), inner), 0..4),
                    ws
                )
                    .prop_map(|(members, ws)| {
                        let members: Vec<String> = members
                            .into_iter()
                            .map(|(k, v)| {
                                // Keys are strings where the scalar is one, else a plain key.
                                let k = if k.starts_with('"') { k } else { format!("\"{k}\"") };
                                format!("{k}{ws}:{ws}{v}")
                            })
                            .collect();
                        format!("{{{ws}{}{ws}}}", members.join(","))
                    }),
            ]
        })
    }

    /// `text` with a few characters inserted, deleted or replaced.
    fn mutated() -> impl Strategy<Value = String> {
        let edit = (
            0..3u8,
            any::<prop::sample::Index>(),
            prop::sample::select(vec![
                '{', '}', '[', ']', ',', ':', '"', '\\', 'u', 'D', '8', '0', 'e', '-', '.', ' ',
                '\u{1}', 'é', 'n', 't',
            ]),
        );
        (text(), prop::collection::vec(edit, 1..4)).prop_map(|(text, edits)| {
            let mut chars: Vec<char> = text.chars().collect();
            for (op, at, c) in edits {
                let i = at.index(chars.len() + 1);
                match op {
                    0 => chars.insert(i, c),
                    1 if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ if i < chars.len() => chars[i] = c,
                    _ => chars.push(c),
                }
            }
            chars.into_iter().collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Read as `Decode`, the reader accepts exactly the texts serde_json decodes into a
        /// `Value`; skipped, exactly those it skips as `IgnoredAny`.
        #[test]
        fn reads_and_skips_what_serde_json_reads_and_skips(text in text()) {
            prop_assert_eq!(decodes(&text), serde_json::from_str::<Value>(&text).is_ok(), "{}", text);
            prop_assert_eq!(skips(&text), serde_json::from_str::<IgnoredAny>(&text).is_ok(), "{}", text);
        }

        /// The same on text a few edits away from JSON: what serde_json refuses, the reader
        /// refuses too, in both modes.
        #[test]
        fn refuses_what_serde_json_refuses(text in mutated()) {
            prop_assert_eq!(decodes(&text), serde_json::from_str::<Value>(&text).is_ok(), "{}", text);
            prop_assert_eq!(skips(&text), serde_json::from_str::<IgnoredAny>(&text).is_ok(), "{}", text);
        }
    }
}
