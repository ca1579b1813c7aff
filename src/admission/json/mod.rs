//! JSON text as the admission core reads it: a reader that checks the syntax exactly as
//! serde_json does and hands out strings borrowed from the text, and values kept as their text
//! ([`Raw`]), compared and printed the way serde_json's `Value` would be, decoded only when a
//! rule needs them.
//!
//! The reader knows two ways of reading a value, because the API server's decoder (and the
//! serde_json one this webhook used before) knows two: a value that is *read* has its strings'
//! `\u` escapes checked for paired surrogates and its numbers checked to fit a `float64`; a
//! value that is *skipped* has only its syntax checked. Which one applies where is decided by
//! the walk of an object ([`strict`](crate::admission::decode::strict)); both accept exactly what
//! serde_json accepts in the same place. Nothing here says *why* a text is malformed: the
//! pipeline asks serde_json for that (see `admission::decode::envelope`), so that the message is
//! serde_json's, position included.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{BuildHasher, Hasher};

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

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

/// A JSON string as it stands in the text: its content between the quotes, escapes and all.
/// Most strings hold no escape and *are* their decoded text; the others are decoded when
/// needed.
#[derive(Clone, Copy, Debug)]
pub struct Str<'a> {
    raw: &'a str,
    escaped: bool,
}

/// A value kept as its text (from its first byte to its last), and its JSON type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw<'a> {
    /// The value's text.
    pub text: &'a str,
    /// Its JSON type.
    pub kind: Kind,
    /// Whether a string holds an escape (as the reader found it; `false` for other types).
    escaped: bool,
}

/// Reads JSON text from a position on.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
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
        let key = self.string_rest(true)?;
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
        self.string_rest(true)
    }

    /// The rest of a string whose opening quote was just read.
    #[inline(always)]
    fn string_rest(&mut self, read: bool) -> Read<Str<'a>> {
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
        self.escaped_string(start, end, read)
    }

    /// The rest of a string from `i`, where a plain run from `start` stopped short of its
    /// closing quote.
    #[inline(never)]
    fn escaped_string(&mut self, start: usize, mut i: usize, read: bool) -> Read<Str<'a>> {
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
                    i = escape(bytes, i + 1, read)?;
                }
                // A control character, or the end of the text.
                _ => return Err(Malformed),
            }
        }
    }

    /// Reads the number that comes next and returns its text. A number that is read must fit
    /// a `float64`, as serde_json decodes it; a skipped one need only be well-formed.
    pub fn number(&mut self, read: bool) -> Read<&'a str> {
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
        if read && !(plain && token.len() <= 300) && !fits(token) {
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
    pub fn scalar(&mut self, read: bool) -> Read<Raw<'a>> {
        let first = self.peek().ok_or(Malformed)?;
        let start = self.pos;
        let mut escaped = false;
        let kind = match first {
            b'"' => {
                self.pos += 1;
                escaped = self.string_rest(read)?.escaped;
                Kind::String
            }
            b'-' | b'0'..=b'9' => {
                self.number(read)?;
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
    pub fn skip(&mut self) -> Read<Raw<'a>> {
        let start = match self.peek() {
            Some(b'{' | b'[') => self.pos,
            _ => return self.scalar(false),
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
                    self.number(false)?;
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
    fn skip_inline(&mut self) -> Read<Raw<'a>> {
        match self.peek() {
            Some(b'{' | b'[') => self.skip(),
            _ => self.scalar(false),
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
        self.escaped_string(start, end, false).map(|_| ())
    }
}

/// A stack of booleans, one bit each: the first 64 in a word of its own (no allocation for
/// the nesting of any real object), deeper ones in a vector.
#[derive(Default)]
struct BitStack {
    low: u64,
    deeper: Vec<u64>,
    len: usize,
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
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// Four bytes as one integer.
#[inline]
fn half(bytes: &[u8]) -> u32 {
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

/// Checks the escape after a backslash at `i` and returns where it ends. A string that is read
/// must pair its `\u` surrogates (as serde_json requires to make a Rust string); a skipped one
/// need only have four hex digits after each `\u`.
fn escape(bytes: &[u8], i: usize, read: bool) -> Read<usize> {
    match bytes.get(i) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 1),
        Some(b'u') => {
            let unit = hex4(bytes, i + 1)?;
            let end = i + 5;
            if !read {
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
fn hex4(bytes: &[u8], i: usize) -> Read<u16> {
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
fn digits(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Whether serde_json decodes the well-formed number `token` (it refuses one beyond a
/// `float64`, e.g. `1e400`).
fn fits(token: &str) -> bool {
    token.parse::<serde_json::Number>().is_ok()
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
fn unescape(raw: &str) -> String {
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
fn read_or_broken<T>(read: Read<T>) -> T {
    read.expect("text the walk has read is well-formed")
}

/// The items of an array kept as text.
#[derive(Clone, Debug)]
pub struct Items<'a> {
    reader: Reader<'a>,
    more: bool,
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
    reader: Reader<'a>,
    next: Option<Str<'a>>,
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

/// The members of an object as serde_json's `Value` holds them: sorted by key (bytewise), the
/// last of repeated keys kept. Each member is remembered by where it starts in the object's
/// text (eight bytes a member, however long): sorting a huge object costs less memory than its
/// text.
fn sorted_members(object: Raw<'_>) -> Vec<(u32, u32)> {
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

/// Where `part`, a slice of `text`, starts in it. Texts are at most 2 GiB (the pipeline
/// refuses larger bodies), so the offset fits 32 bits.
pub fn offset(text: &str, part: &str) -> u32 {
    (part.as_ptr() as usize - text.as_ptr() as usize) as u32
}

/// The value that starts at `at` of `text`.
fn value_at(text: &str, at: usize) -> Raw<'_> {
    let mut reader = Reader { text, pos: at };
    read_or_broken(reader.skip())
}

/// A value kept as text, serialised as serde_json serialises the `Value` it decodes to: keys
/// sorted, the last of repeated keys, numbers as serde_json prints them, strings escaped as it
/// escapes them. For equality, `-0.0` is written as `0.0`, which `Value` holds equal to it.
#[derive(Clone, Copy, Debug)]
pub struct Canonical<'a> {
    raw: Raw<'a>,
    for_equality: bool,
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

    fn for_equality(raw: Raw<'a>) -> Self {
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
fn fingerprint_keys() -> &'static [std::collections::hash_map::RandomState; 2] {
    static KEYS: std::sync::OnceLock<[std::collections::hash_map::RandomState; 2]> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(Default::default)
}

/// Two independently keyed SipHashes of a text written to it.
struct TextHasher([std::collections::hash_map::DefaultHasher; 2]);

impl TextHasher {
    fn finish(&self) -> u128 {
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
            for read in [true, false] {
                let raw = Reader::new(&text).scalar(read).expect("a string");
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
