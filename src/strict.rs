//! Strict field checking: unknown and duplicate keys found in the raw bytes of an IPAMClaim.
//!
//! The API server drops an unknown field silently and keeps the last of two duplicate keys, and
//! decoding into `serde_json::Value` loses duplicates too, so this walks the request bytes itself.
//! The walk is iterative (an explicit stack bounded by [`MAX_DEPTH`]), allocates nothing for keys
//! without escapes, and builds a path string only when it has something to report.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::{self, Write as _};

/// How deeply objects and arrays may nest, counting the root object as the first level.
pub const MAX_DEPTH: usize = 64;

/// What is wrong with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueKind {
    /// The schema does not declare the field.
    Unknown,
    /// The key appears twice in one object.
    Duplicate,
}

/// One field-validation error, named like the API server names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Unknown or duplicate.
    pub kind: IssueKind,
    /// The field path, e.g. `spec.foo` or `status.conditions[0].colour`.
    pub path: String,
}

/// The object could not be walked.
#[derive(Debug, thiserror::Error)]
pub enum StrictError {
    /// Not well-formed JSON (including truncated input and invalid UTF-8 in a string).
    #[error("malformed JSON at byte {offset}")]
    Malformed {
        /// Byte offset of the problem.
        offset: usize,
    },
    /// Objects and arrays nest deeper than [`MAX_DEPTH`].
    #[error("JSON nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
}

/// Finds unknown and duplicate fields in the raw JSON of an IPAMClaim, in document order.
///
/// A top-level value that is not an object has no fields to judge and yields no issues (the
/// decoding layer rejects it), but it must still be well-formed and within [`MAX_DEPTH`].
pub fn check(object: &[u8]) -> Result<Vec<Issue>, StrictError> {
    Walker::new(object).run()
}

// === Schema ===

/// The shape the walker expects at one place in the object.
///
/// Kept in sync with `src/types.rs` (for `spec` and `status`, which a unit test cross-checks
/// against the generated CRD) and with `metav1.ObjectMeta` (for `metadata`).
#[derive(Debug)]
enum Node {
    /// An object with exactly these fields; any other key is unknown.
    Object(&'static [(&'static str, Node)]),
    /// A list whose items have this shape.
    List(&'static Node),
    /// A string map such as labels: any key is allowed, only duplicates are reported.
    Map,
    /// Free-form content such as `fieldsV1`: any keys at any depth, only duplicates reported.
    Free,
    /// A scalar. Should a container turn up here instead, that is a type error for another
    /// layer; the walker only skips over it.
    Leaf,
}

/// The IPAMClaim object.
static ROOT: Node = Node::Object(&[
    ("apiVersion", Node::Leaf),
    ("kind", Node::Leaf),
    ("metadata", OBJECT_META),
    ("spec", SPEC),
    ("status", STATUS),
]);

/// `metav1.ObjectMeta`.
const OBJECT_META: Node = Node::Object(&[
    ("name", Node::Leaf),
    ("generateName", Node::Leaf),
    ("namespace", Node::Leaf),
    ("selfLink", Node::Leaf),
    ("uid", Node::Leaf),
    ("resourceVersion", Node::Leaf),
    ("generation", Node::Leaf),
    ("creationTimestamp", Node::Leaf),
    ("deletionTimestamp", Node::Leaf),
    ("deletionGracePeriodSeconds", Node::Leaf),
    ("labels", Node::Map),
    ("annotations", Node::Map),
    ("ownerReferences", Node::List(&OWNER_REFERENCE)),
    ("finalizers", Node::List(&Node::Leaf)),
    ("managedFields", Node::List(&MANAGED_FIELDS_ENTRY)),
]);

/// `metav1.OwnerReference`.
const OWNER_REFERENCE: Node = Node::Object(&[
    ("apiVersion", Node::Leaf),
    ("kind", Node::Leaf),
    ("name", Node::Leaf),
    ("uid", Node::Leaf),
    ("controller", Node::Leaf),
    ("blockOwnerDeletion", Node::Leaf),
]);

/// `metav1.ManagedFieldsEntry`.
const MANAGED_FIELDS_ENTRY: Node = Node::Object(&[
    ("manager", Node::Leaf),
    ("operation", Node::Leaf),
    ("apiVersion", Node::Leaf),
    ("time", Node::Leaf),
    ("fieldsType", Node::Leaf),
    ("fieldsV1", Node::Free),
    ("subresource", Node::Leaf),
]);

/// `IPAMClaimSpec`.
const SPEC: Node = Node::Object(&[
    ("network", Node::Leaf),
    ("interface", Node::Leaf),
    ("ipRequests", Node::List(&Node::Leaf)),
]);

/// `IPAMClaimStatus`.
const STATUS: Node = Node::Object(&[
    ("ips", Node::List(&Node::Leaf)),
    ("ownerPod", Node::Object(&[("name", Node::Leaf)])),
    ("conditions", Node::List(&CONDITION)),
]);

/// `Condition`, shaped like `metav1.Condition`.
const CONDITION: Node = Node::Object(&[
    ("type", Node::Leaf),
    ("status", Node::Leaf),
    ("observedGeneration", Node::Leaf),
    ("lastTransitionTime", Node::Leaf),
    ("reason", Node::Leaf),
    ("message", Node::Leaf),
]);

/// Where a key lands in an object.
enum Slot {
    /// The field at this index of an [`Node::Object`], with the shape of its value.
    Declared(usize, &'static Node),
    /// Any key of a [`Node::Map`] or [`Node::Free`] object; its value is free-form.
    Free,
    /// A key the object does not declare.
    Unknown,
}

// === impl Node ===

impl Node {
    /// Where `key` lands in an object walked against this node.
    #[inline]
    fn slot(&self, key: &[u8]) -> Slot {
        match self {
            Node::Object(fields) => match fields
                .iter()
                .position(|(name, _)| same_key(name.as_bytes(), key))
            {
                Some(i) => Slot::Declared(i, &fields[i].1),
                None => Slot::Unknown,
            },
            Node::Map | Node::Free => Slot::Free,
            // Keys are never looked up in a frame that is being skipped.
            Node::List(_) | Node::Leaf => Slot::Unknown,
        }
    }

    /// The shape of an item if this node is walked as a list.
    #[inline]
    fn item(&self) -> &'static Node {
        match self {
            Node::List(item) => item,
            Node::Free => &Node::Free,
            Node::Object(_) | Node::Map | Node::Leaf => &Node::Leaf,
        }
    }

    /// What to walk an object or array against: the node itself if it fits the container,
    /// otherwise [`Node::Leaf`] so that a mistyped value is skipped without reports.
    fn for_container(&'static self, is_object: bool) -> &'static Node {
        match (is_object, self) {
            (true, Node::Object(_) | Node::Map | Node::Free) => self,
            (false, Node::List(_) | Node::Free) => self,
            _ => &Node::Leaf,
        }
    }
}

// === impl Issue ===

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            IssueKind::Unknown => write!(f, "unknown field \"{}\"", self.path),
            IssueKind::Duplicate => write!(f, "duplicate field \"{}\"", self.path),
        }
    }
}

// === Walker ===

/// Up to this many keys an object's duplicate check is a linear scan; beyond, a hash set.
const LINEAR_KEYS: usize = 16;

/// Which kind of container a frame is, how far it has been read, and how its current child is
/// named in a path: all that [`Walker::step`] needs to know what may come next.
#[derive(Debug)]
enum Label<'a> {
    /// An object with no member read yet.
    ObjectStart,
    /// The key of the current member of an object (decoded, except in a skipped object).
    Key(Cow<'a, [u8]>),
    /// An array with no item read yet.
    ArrayStart,
    /// The index of the current item of an array.
    Index(usize),
}

/// One open object or array.
struct Frame<'a> {
    /// The expected shape; [`Node::Leaf`] when the container is only being skipped.
    node: &'static Node,
    /// Object or array, and the child being walked, so that a path can be built on demand.
    label: Label<'a>,
    /// Which of an [`Node::Object`]'s declared fields were seen, by index.
    declared: u64,
    /// Where this object's other keys start in [`Walker::seen`].
    seen_start: usize,
    /// Keys of a large object, once the linear scan would get slow.
    large: Option<HashSet<Cow<'a, [u8]>>>,
}

/// The state of one `check` call.
struct Walker<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Frames of the open containers are `frames[..depth]`. Slots past `depth` are kept for
    /// reuse: opening a container then writes its frame in place, where a push would build it
    /// aside and copy it (and stall the CPU on store forwarding, once per container).
    frames: Vec<Frame<'a>>,
    depth: usize,
    /// Keys of the open objects, innermost last; one shared vector so that small objects cost
    /// no allocation of their own.
    seen: Vec<Cow<'a, [u8]>>,
    issues: Vec<Issue>,
}

/// Byte classes inside a string: 0 is plain, anything else needs a closer look.
static STRING_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = 1;
        i += 1;
    }
    table[b'"' as usize] = 1;
    table[b'\\' as usize] = 1;
    let mut i = 0x80;
    while i < 256 {
        table[i] = 1;
        i += 1;
    }
    table
};

/// The end of the run of plain string bytes (not `"`, `\`, control or non-ASCII) at `pos`.
///
/// Strings are most of an object's bytes, so they are scanned eight bytes at a time. A special
/// byte ends up with its high bit set: a quote or backslash is zero after the XOR and borrows
/// when one is subtracted, a control byte borrows when 0x20 is, and a non-ASCII byte has the bit
/// already. A borrow may also mark the byte after a special one, never one before, so the lowest
/// mark is exact.
#[inline]
fn plain_run(bytes: &[u8], mut pos: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let v = u64::from_le_bytes(chunk);
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        let special = (quote.wrapping_sub(ONES)
            | backslash.wrapping_sub(ONES)
            | v.wrapping_sub(ONES * 0x20)
            | v)
            & HIGH;
        if special != 0 {
            return pos + (special.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while pos < bytes.len() && STRING_CLASS[bytes[pos] as usize] == 0 {
        pos += 1;
    }
    pos
}

fn malformed(offset: usize) -> StrictError {
    StrictError::Malformed { offset }
}

// === impl Walker ===

impl<'a> Walker<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Walker {
            bytes,
            pos: 0,
            frames: Vec::with_capacity(16),
            depth: 0,
            seen: Vec::with_capacity(32),
            issues: Vec::new(),
        }
    }

    fn run(mut self) -> Result<Vec<Issue>, StrictError> {
        self.value(&ROOT)?;
        while self.depth > 0 {
            self.step()?;
        }
        self.skip_ws();
        if self.pos != self.bytes.len() {
            return Err(malformed(self.pos));
        }
        Ok(self.issues)
    }

    /// Reads what follows inside the innermost container: a member, an item or its end.
    fn step(&mut self) -> Result<(), StrictError> {
        self.skip_ws();
        let at = self.pos;
        let b = self.next()?;
        let Some(frame) = self.open_frames().last() else {
            return Err(malformed(at));
        };
        match (&frame.label, b) {
            (Label::ObjectStart | Label::Key(_), b'}')
            | (Label::ArrayStart | Label::Index(_), b']') => {
                self.close();
                Ok(())
            }
            (Label::ObjectStart, b'"') => self.member(),
            (Label::Key(_), b',') => {
                self.skip_ws();
                if self.next()? != b'"' {
                    return Err(malformed(self.pos - 1));
                }
                self.member()
            }
            (Label::Index(_), b',') => self.item(),
            (Label::ArrayStart, _) => {
                self.pos = at;
                self.item()
            }
            _ => Err(malformed(at)),
        }
    }

    /// Reads one `"key": value` member; the opening quote is already consumed.
    fn member(&mut self) -> Result<(), StrictError> {
        let key_at = self.pos;
        let (raw, escaped) = self.string()?;
        self.skip_ws();
        if self.next()? != b':' {
            return Err(malformed(self.pos - 1));
        }
        let Some(frame) = self.frames[..self.depth].last_mut() else {
            return Err(malformed(self.pos));
        };
        if matches!(frame.node, Node::Leaf) {
            // Nothing inside a skipped container is reported, so its keys need no decoding.
            frame.label = Label::Key(Cow::Borrowed(raw));
            return self.value(&Node::Leaf);
        }
        let key = decode_key(raw, escaped, key_at)?;
        let (first, declared) = match frame.node.slot(&key) {
            // A declared field is one bit: no key list to search for most members.
            Slot::Declared(i, node) => {
                let bit = 1 << i;
                let first = frame.declared & bit == 0;
                frame.declared |= bit;
                (first, Some(node))
            }
            Slot::Free => (
                remember(frame, &mut self.seen, share(&key)),
                Some(&Node::Free),
            ),
            Slot::Unknown => (remember(frame, &mut self.seen, share(&key)), None),
        };
        frame.label = Label::Key(key);
        if !first {
            self.report(IssueKind::Duplicate);
        } else if declared.is_none() {
            self.report(IssueKind::Unknown);
        }
        // The value of an unknown field is skipped whole: its children are not fields either.
        self.value(declared.unwrap_or(&Node::Leaf))
    }

    /// Reads one array item; a separating comma is already consumed.
    fn item(&mut self) -> Result<(), StrictError> {
        let Some(frame) = self.frames[..self.depth].last_mut() else {
            return Err(malformed(self.pos));
        };
        let node = frame.node.item();
        frame.label = Label::Index(match frame.label {
            Label::Index(i) => i + 1,
            _ => 0,
        });
        self.value(node)
    }

    /// Reads a scalar whole, or opens a container for [`Walker::step`] to continue.
    fn value(&mut self, node: &'static Node) -> Result<(), StrictError> {
        self.skip_ws();
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(malformed(self.pos));
        };
        match b {
            b'{' => return self.open(true, node),
            b'[' => return self.open(false, node),
            b'"' => {
                self.pos += 1;
                self.string()?;
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return Err(malformed(self.pos)),
        }
        Ok(())
    }

    fn open(&mut self, is_object: bool, node: &'static Node) -> Result<(), StrictError> {
        if self.depth >= MAX_DEPTH {
            return Err(StrictError::TooDeep { max: MAX_DEPTH });
        }
        self.pos += 1;
        let node = node.for_container(is_object);
        let label = if is_object {
            Label::ObjectStart
        } else {
            Label::ArrayStart
        };
        let seen_start = self.seen.len();
        if let Some(frame) = self.frames.get_mut(self.depth) {
            frame.node = node;
            frame.label = label;
            frame.declared = 0;
            frame.seen_start = seen_start;
            frame.large = None;
        } else {
            self.frames.push(Frame {
                node,
                label,
                declared: 0,
                seen_start,
                large: None,
            });
        }
        self.depth += 1;
        Ok(())
    }

    fn close(&mut self) {
        if let Some(frame) = self.open_frames().last() {
            let seen_start = frame.seen_start;
            self.seen.truncate(seen_start);
            self.depth -= 1;
        }
    }

    fn open_frames(&self) -> &[Frame<'a>] {
        &self.frames[..self.depth]
    }

    /// Records an issue at the current position, naming it by the labels of all open frames.
    fn report(&mut self, kind: IssueKind) {
        let mut path = String::new();
        for (depth, frame) in self.open_frames().iter().enumerate() {
            match &frame.label {
                Label::ObjectStart | Label::ArrayStart => {}
                Label::Key(key) => {
                    if depth > 0 {
                        path.push('.');
                    }
                    path.push_str(&String::from_utf8_lossy(key));
                }
                Label::Index(i) => {
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        self.issues.push(Issue { kind, path });
    }

    /// Reads the rest of a string whose opening quote is consumed; returns its raw content and
    /// whether it holds escapes. Escapes and UTF-8 are validated as JSON requires.
    #[inline(always)]
    fn string(&mut self) -> Result<(&'a [u8], bool), StrictError> {
        let bytes = self.bytes;
        let start = self.pos;
        let end = plain_run(bytes, start);
        // Nearly every string is plain ASCII without escapes; keep that path small enough to
        // inline at each call.
        if bytes.get(end) == Some(&b'"') {
            self.pos = end + 1;
            return Ok((&bytes[start..end], false));
        }
        self.pos = end;
        self.string_rest(start)
    }

    /// The rest of [`Walker::string`] from the first escape, non-ASCII or bad byte.
    #[cold]
    fn string_rest(&mut self, start: usize) -> Result<(&'a [u8], bool), StrictError> {
        let bytes = self.bytes;
        let mut escaped = false;
        let mut ascii = true;
        loop {
            match bytes.get(self.pos) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(0x80..=0xff) => {
                    ascii = false;
                    self.pos += 1;
                }
                // A raw control character, or the input ends inside the string.
                _ => return Err(malformed(self.pos)),
            }
            self.pos = plain_run(bytes, self.pos);
        }
        let raw = &bytes[start..self.pos];
        self.pos += 1;
        if !ascii {
            if let Err(e) = std::str::from_utf8(raw) {
                return Err(malformed(start + e.valid_up_to()));
            }
        }
        Ok((raw, escaped))
    }

    /// Steps over one escape sequence at `pos`, rejecting what serde_json rejects, lone
    /// surrogates included.
    fn escape(&mut self) -> Result<(), StrictError> {
        let at = self.pos;
        match self.bytes.get(at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 2,
            Some(b'u') => {
                let (_, len) = unicode_escape(self.bytes, at)?;
                self.pos += len;
            }
            _ => return Err(malformed(at)),
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), StrictError> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(malformed(self.pos))
        }
    }

    /// Steps over a number with JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<(), StrictError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(malformed(self.pos)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn some_digits(&mut self) -> Result<(), StrictError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(malformed(self.pos));
        }
        self.digits();
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<u8, StrictError> {
        let b = self.peek().ok_or(malformed(self.pos))?;
        self.pos += 1;
        Ok(b)
    }
}

/// Adds `key` to the keys of the innermost object; `false` if it was already there.
#[inline]
fn remember<'a>(frame: &mut Frame<'a>, seen: &mut Vec<Cow<'a, [u8]>>, key: Cow<'a, [u8]>) -> bool {
    if let Some(large) = &mut frame.large {
        return large.insert(key);
    }
    // The innermost object's keys are the tail of `seen`: inner objects truncate theirs on close.
    let mine = &seen[frame.seen_start..];
    if mine.iter().any(|k| same_key(k, &key)) {
        return false;
    }
    if mine.len() < LINEAR_KEYS {
        seen.push(key);
    } else {
        let mut large: HashSet<_> = seen.drain(frame.seen_start..).collect();
        large.insert(key);
        frame.large = Some(large);
    }
    true
}

/// A copy of `key` that costs nothing unless the key had escapes.
#[inline]
fn share<'a>(key: &Cow<'a, [u8]>) -> Cow<'a, [u8]> {
    match key {
        Cow::Borrowed(raw) => Cow::Borrowed(raw),
        Cow::Owned(decoded) => Cow::Owned(decoded.clone()),
    }
}

/// Key equality without a call to `memcmp`, which costs more than comparing a short key.
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a_words = a.chunks_exact(8);
    let mut b_words = b.chunks_exact(8);
    for (x, y) in a_words.by_ref().zip(b_words.by_ref()) {
        if word(x) != word(y) {
            return false;
        }
    }
    a_words
        .remainder()
        .iter()
        .zip(b_words.remainder())
        .all(|(x, y)| x == y)
}

/// Eight bytes as one integer.
#[inline]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// The key as the API server sees it: borrowed when it has no escapes, decoded otherwise.
/// `at` is the offset of the key's content, for error positions.
fn decode_key(raw: &[u8], escaped: bool, at: usize) -> Result<Cow<'_, [u8]>, StrictError> {
    if !escaped {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let decoded = match raw.get(i + 1) {
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let (c, len) = unicode_escape(raw, i).map_err(|_| malformed(at + i))?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                i += len;
                continue;
            }
            // `string` validated every escape already; this is only a guard.
            _ => return Err(malformed(at + i)),
        };
        out.push(decoded);
        i += 2;
    }
    Ok(Cow::Owned(out))
}

/// Decodes the `\uXXXX` escape at `at` (and the low half that must follow a high surrogate);
/// returns the character and the length of the escape text.
fn unicode_escape(bytes: &[u8], at: usize) -> Result<(char, usize), StrictError> {
    let first = hex4(bytes, at + 2).ok_or(malformed(at))?;
    let (code, len) = match first {
        0xd800..=0xdbff => {
            if bytes.get(at + 6) != Some(&b'\\') || bytes.get(at + 7) != Some(&b'u') {
                return Err(malformed(at));
            }
            let low = hex4(bytes, at + 8).ok_or(malformed(at + 6))?;
            if !(0xdc00..=0xdfff).contains(&low) {
                return Err(malformed(at + 6));
            }
            (0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00), 12)
        }
        0xdc00..=0xdfff => return Err(malformed(at)),
        _ => (first, 6),
    };
    let c = char::from_u32(code).ok_or(malformed(at))?;
    Ok((c, len))
}

/// The value of four hex digits at `at`, if there are four.
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc << 4 | v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        JSONSchemaProps, JSONSchemaPropsOrArray,
    };
    use kube::CustomResourceExt;
    use proptest::prelude::*;
    use serde_json::value::RawValue;
    use std::collections::BTreeSet;

    /// The issues of `json` as the API server would word them.
    fn issues(json: &str) -> Vec<String> {
        check(json.as_bytes())
            .unwrap_or_else(|e| panic!("{json}: {e}"))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn unknown(path: &str) -> String {
        format!("unknown field \"{path}\"")
    }

    fn duplicate(path: &str) -> String {
        format!("duplicate field \"{path}\"")
    }

    /// A claim shaped like the captured ones, touching every part of the schema.
    const SAMPLE: &str = r#"{"apiVersion":"k8s.cni.cncf.io/v1alpha1","kind":"IPAMClaim",
        "metadata":{"name":"vm-a.tenantred","namespace":"ns1","generation":1,
          "labels":{"app":"vm-a"},"annotations":{"note":"{\"a\":[1,2]}"},
          "finalizers":["x/y"],
          "ownerReferences":[{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachine","name":"vm-a",
            "uid":"a079","controller":true,"blockOwnerDeletion":false}],
          "managedFields":[{"manager":"kubectl","operation":"Update","apiVersion":"v1",
            "time":"2026-11-26T23:44:31Z","fieldsType":"FieldsV1",
            "fieldsV1":{"f:spec":{".":{},"f:network":{}}},"subresource":"status"}]},
        "spec":{"network":"tenantred","interface":"pod16367aacb67","ipRequests":["10.0.0.1/24"]},
        "status":{"ips":["10.128.20.8/24","fd10:128:20::8/64"],"ownerPod":{"name":"virt-launcher"},
          "conditions":[{"type":"IPsAllocated","status":"True","observedGeneration":-1.5e+3,
            "lastTransitionTime":"2026-11-26T23:00:00Z","reason":"Allocated","message":null}]}}"#;

    fn payload_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/payloads/kube-apiserver-1.28")
    }

    #[test]
    fn captured_objects_have_no_issues() {
        #[derive(serde::Deserialize)]
        struct Review<'a> {
            #[serde(borrow)]
            request: Request<'a>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Request<'a> {
            #[serde(borrow)]
            object: Option<&'a RawValue>,
            #[serde(borrow)]
            old_object: Option<&'a RawValue>,
        }

        let dir = payload_dir();
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("captured payloads missing at {}: {e}", dir.display()));
        let mut checked = 0;
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if !name.ends_with(".json") || name == "request-headers.json" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("payload readable");
            let review: Review<'_> = serde_json::from_str(&text).expect("payload is a review");
            for raw in [review.request.object, review.request.old_object]
                .into_iter()
                .flatten()
            {
                let value: serde_json::Value = serde_json::from_str(raw.get()).expect("json");
                if value.is_null() {
                    continue;
                }
                // Both the bytes exactly as captured and the compact form the server may send.
                let compact = serde_json::to_vec(&value).expect("serializes");
                for bytes in [raw.get().as_bytes(), &compact[..]] {
                    let found = check(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert_eq!(found, Vec::new(), "{name}");
                    checked += 1;
                }
            }
        }
        // 17 captures, most with an old object too: far more than this if the files are there.
        assert!(
            checked >= 40,
            "only {checked} objects checked in {}",
            dir.display()
        );
    }

    #[test]
    fn sample_has_no_issues() {
        assert_eq!(issues(SAMPLE), Vec::<String>::new());
    }

    #[test]
    fn reports_unknown_spec_field() {
        let json = r#"{"spec":{"network":"n","foo":"bar","interface":"eth0"}}"#;
        assert_eq!(issues(json), [unknown("spec.foo")]);
    }

    #[test]
    fn reports_unknown_root_field() {
        let json = r#"{"apiVersion":"v","kind":"k","extra":1,"spec":{}}"#;
        assert_eq!(issues(json), [unknown("extra")]);
    }

    #[test]
    fn reports_unknown_metadata_field() {
        let json = r#"{"metadata":{"name":"a","nmae":"b"}}"#;
        assert_eq!(issues(json), [unknown("metadata.nmae")]);
    }

    #[test]
    fn reports_unknown_field_in_condition() {
        let json = r#"{"status":{"ips":[],"conditions":[{"type":"A","colour":"red"}]}}"#;
        assert_eq!(issues(json), [unknown("status.conditions[0].colour")]);
    }

    #[test]
    fn reports_unknown_field_in_owner_reference() {
        let json =
            r#"{"metadata":{"ownerReferences":[{"name":"a","bogus":1},{"name":"b","bogus":2}]}}"#;
        assert_eq!(
            issues(json),
            [
                unknown("metadata.ownerReferences[0].bogus"),
                unknown("metadata.ownerReferences[1].bogus")
            ]
        );
    }

    #[test]
    fn reports_unknown_field_in_managed_fields_entry() {
        let json =
            r#"{"metadata":{"managedFields":[{"manager":"m","fieldsV1":{"f:x":{}},"extra":{}}]}}"#;
        assert_eq!(issues(json), [unknown("metadata.managedFields[0].extra")]);
    }

    #[test]
    fn reports_unknown_field_in_owner_pod() {
        let json = r#"{"status":{"ownerPod":{"name":"p","age":3}}}"#;
        assert_eq!(issues(json), [unknown("status.ownerPod.age")]);
    }

    #[test]
    fn does_not_descend_into_unknown_field() {
        let json =
            r#"{"spec":{"foo":{"bar":{"x":1,"x":2},"baz":[{"y":1}]},"network":"n"},"extra":[]}"#;
        assert_eq!(issues(json), [unknown("spec.foo"), unknown("extra")]);
    }

    #[test]
    fn does_not_descend_into_mistyped_known_field() {
        // A type error belongs to validation; only the skip has to be right.
        let json = r#"{"spec":{"network":{"a":1,"a":2},"ipRequests":{"b":1}},"status":[{"c":1}],"kind":"k"}"#;
        assert_eq!(issues(json), Vec::<String>::new());
    }

    #[test]
    fn reports_duplicate_spec_network() {
        let json = r#"{"spec":{"network":"a","interface":"eth0","network":"b"}}"#;
        assert_eq!(issues(json), [duplicate("spec.network")]);
    }

    #[test]
    fn reports_duplicate_top_level_key() {
        let json = r#"{"spec":{"network":"a"},"kind":"k","spec":{"network":"b"}}"#;
        assert_eq!(issues(json), [duplicate("spec")]);
    }

    #[test]
    fn reports_duplicate_label() {
        let json = r#"{"metadata":{"labels":{"app":"a","tier":"b","app":"c"}}}"#;
        assert_eq!(issues(json), [duplicate("metadata.labels.app")]);
    }

    #[test]
    fn reports_duplicate_annotation() {
        let json = r#"{"metadata":{"annotations":{"x/y":"1","x/y":"2"}}}"#;
        assert_eq!(issues(json), [duplicate("metadata.annotations.x/y")]);
    }

    #[test]
    fn reports_duplicate_inside_fields_v1() {
        let json = r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:spec":{".":{},"f:network":{},"f:network":{}}}}]}}"#;
        assert_eq!(
            issues(json),
            [duplicate(
                "metadata.managedFields[0].fieldsV1.f:spec.f:network"
            )]
        );
    }

    #[test]
    fn reports_duplicate_in_second_condition() {
        let json = r#"{"status":{"conditions":[{"type":"A","reason":"R"},{"type":"B","reason":"R","type":"C"}]}}"#;
        assert_eq!(issues(json), [duplicate("status.conditions[1].type")]);
    }

    #[test]
    fn decodes_escaped_keys_before_comparing() {
        let json = r#"{"spec":{"network":"a","\u006eetwork":"b"}}"#;
        assert_eq!(issues(json), [duplicate("spec.network")]);
    }

    #[test]
    fn escaped_key_matches_schema_and_names_path_decoded() {
        let json = r#"{"\u0073pec":{"\u0066o\u006f":1},"spec":{}}"#;
        assert_eq!(issues(json), [unknown("spec.foo"), duplicate("spec")]);
    }

    #[test]
    fn decodes_surrogate_pairs_and_short_escapes_in_keys() {
        let json = "{\"metadata\":{\"labels\":{\"\u{1f600}\\t\":\"a\",\"\\ud83d\\ude00\\u0009\":\"b\",\"a\\\"b\\/\":\"c\",\"a\\u0022b/\":\"d\"}}}";
        assert_eq!(
            issues(json),
            [
                duplicate("metadata.labels.\u{1f600}\t"),
                duplicate("metadata.labels.a\"b/")
            ]
        );
    }

    #[test]
    fn reports_each_repeat_of_a_triple_key() {
        let json = r#"{"spec":{"network":"a","network":"b","network":"c"}}"#;
        assert_eq!(
            issues(json),
            [duplicate("spec.network"), duplicate("spec.network")]
        );
    }

    #[test]
    fn repeated_unknown_key_is_unknown_then_duplicate() {
        let json = r#"{"spec":{"foo":1,"foo":2,"foo":3}}"#;
        assert_eq!(
            issues(json),
            [
                unknown("spec.foo"),
                duplicate("spec.foo"),
                duplicate("spec.foo")
            ]
        );
    }

    #[test]
    fn keys_of_sibling_objects_do_not_collide() {
        let json = r#"{"status":{"conditions":[{"type":"A"},{"type":"B"}],"ips":[]},"spec":{"network":"n"},"metadata":{"labels":{"spec":"x"},"annotations":{"spec":"y"}}}"#;
        assert_eq!(issues(json), Vec::<String>::new());
    }

    #[test]
    fn reports_duplicates_in_objects_with_many_keys() {
        // Past the linear scan's limit the keys move to a hash set; both halves must still count.
        let mut labels: Vec<String> = (0..40).map(|i| format!("\"k{i}\":\"v\"")).collect();
        labels.insert(10, "\"k3\":\"v\"".into());
        labels.push("\"k3\":\"v\"".into());
        labels.push("\"k39\":\"v\"".into());
        labels.push("\"k40\":\"v\"".into());
        let json = format!(
            r#"{{"metadata":{{"labels":{{{}}},"labels":{{}}}},"spec":{{}}}}"#,
            labels.join(",")
        );
        assert_eq!(
            issues(&json),
            [
                duplicate("metadata.labels.k3"),
                duplicate("metadata.labels.k3"),
                duplicate("metadata.labels.k39"),
                duplicate("metadata.labels")
            ]
        );
    }

    #[test]
    fn reports_issues_in_document_order() {
        let json = r#"{"metadata":{"name":"a","nmae":"b","name":"c"},"spec":{"network":"n","network":"m"},"zzz":1,"status":{"ips":[],"ipz":[]}}"#;
        assert_eq!(
            issues(json),
            [
                unknown("metadata.nmae"),
                duplicate("metadata.name"),
                duplicate("spec.network"),
                unknown("zzz"),
                unknown("status.ipz")
            ]
        );
    }

    #[test]
    fn accepts_any_keys_in_labels_and_annotations() {
        let json = r#"{"metadata":{"labels":{"app.kubernetes.io/name":"x","spec":"y","":"z"},
            "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"spec\":{\"foo\":1}}\n","anything":"goes"}}}"#;
        assert_eq!(issues(json), Vec::<String>::new());
    }

    #[test]
    fn accepts_deep_fields_v1() {
        let mut inner = String::from("{}");
        for i in 0..40 {
            inner = format!(r#"{{"f:level{i}":{inner},".":{{}},"k:{{\"uid\":\"{i}\"}}":{{}}}}"#);
        }
        let json = format!(r#"{{"metadata":{{"managedFields":[{{"fieldsV1":{inner}}}]}}}}"#);
        assert_eq!(issues(&json), Vec::<String>::new());
    }

    #[test]
    fn structural_characters_in_strings_do_not_confuse_the_scanner() {
        let json = r#"{"metadata":{"annotations":{"a\"}],:\\":"}]\",:{[\\","\\":"\\\\\"","b":"\"\"\u0022"},
            "labels":{"}":"]","a\"}],:\\":"x"}},"spec":{"network":"\"}","foo":"x"}}"#;
        assert_eq!(issues(json), [unknown("spec.foo")]);
    }

    #[test]
    fn skips_numbers_and_literals() {
        let json = r#"{"metadata":{"generation":0,"deletionGracePeriodSeconds":-12,"uid":1.25e-7,
            "finalizers":[true,false,null,-0,0.0,1E+2,3e9]},"spec":{"ipRequests":[ null ,"a" , 12 ],"foo":true}}"#;
        assert_eq!(issues(json), [unknown("spec.foo")]);
    }

    #[test]
    fn non_object_root_has_no_issues() {
        for json in ["null", "1", "\"spec\"", "[{\"x\":1,\"x\":2}]", " [] "] {
            assert_eq!(issues(json), Vec::<String>::new(), "{json}");
        }
    }

    #[test]
    fn rejects_malformed_json() {
        let cases = [
            "",
            " ",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{,}",
            "{,\"a\":1}",
            "{\"a\":1,,\"b\":2}",
            "{\"a\" 1}",
            "[1,,2]",
            "[1 2]",
            "{\"a\":1,}",
            "[1,]",
            "[,1]",
            "{\"a\":1 \"b\":2}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":1e}",
            "{\"a\":-}",
            "{\"a\":+1}",
            "{\"a\":tru}",
            "{\"a\":nul}",
            "{\"a\":truex}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12\"}",
            "{\"a\":\"\\u12g4\"}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\ud800\\u0041\"}",
            "{\"a\":\"\\udc00\"}",
            "{\"\\ud83d\":1}",
            "{\"a\":\"x\ny\"}",
            "{\"a\":1}}",
            "{} x",
            "{\"a\":[}",
            "{\"a\":{]}",
            "{1:2}",
            "{'a':1}",
        ];
        for json in cases {
            assert!(
                matches!(check(json.as_bytes()), Err(StrictError::Malformed { .. })),
                "{json:?} accepted"
            );
            // The scanner's grammar is serde_json's.
            assert!(
                serde_json::from_str::<serde_json::Value>(json).is_err(),
                "{json:?}"
            );
        }
    }

    #[test]
    fn rejects_truncated_input_at_every_offset() {
        let bytes = SAMPLE.as_bytes();
        for end in 0..bytes.len() {
            let result = check(&bytes[..end]);
            assert!(
                matches!(result, Err(StrictError::Malformed { .. })),
                "prefix of {end} bytes gave {result:?}"
            );
        }
        assert_eq!(check(bytes).expect("whole sample"), Vec::new());
    }

    #[test]
    fn rejects_invalid_utf8_in_strings() {
        let cases: [&[u8]; 4] = [
            b"{\"spec\":{\"network\":\"a\xffb\"}}",
            b"{\"spec\":{\"netw\xc3\":1}}",
            b"{\"metadata\":{\"labels\":{\"a\":\"\xed\xa0\x80\"}}}",
            b"{\"x\":{\"y\":\"\xe2\x82\"}}",
        ];
        for bytes in cases {
            assert!(
                matches!(check(bytes), Err(StrictError::Malformed { .. })),
                "{bytes:?}"
            );
        }
        let ok = "{\"metadata\":{\"labels\":{\"caf\u{e9}\":\"\u{1f600}\",\"caf\u{e9}\":\"x\"}}}";
        assert_eq!(issues(ok), [duplicate("metadata.labels.caf\u{e9}")]);
    }

    #[test]
    fn rejects_deep_array_nesting() {
        let json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            check(json.as_bytes()),
            Err(StrictError::TooDeep { max: MAX_DEPTH })
        ));
        let json = format!("{{\"spec\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            check(json.as_bytes()),
            Err(StrictError::TooDeep { max: MAX_DEPTH })
        ));
    }

    #[test]
    fn rejects_deep_object_nesting() {
        let json = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        assert!(matches!(
            check(json.as_bytes()),
            Err(StrictError::TooDeep { max: MAX_DEPTH })
        ));
        // Unclosed, as a hostile client might send it: still the depth error, not a crash.
        let json = "{\"a\":".repeat(10_000);
        assert!(matches!(
            check(json.as_bytes()),
            Err(StrictError::TooDeep { max: MAX_DEPTH })
        ));
    }

    #[test]
    fn accepts_nesting_at_max_depth() {
        let objects = format!(
            "{}{{}}{}",
            "{\"a\":".repeat(MAX_DEPTH - 1),
            "}".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(issues(&objects), [unknown("a")]);
        let arrays = format!(
            "{{\"spec\":{}{}}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(issues(&arrays), Vec::<String>::new());
        let free = format!(
            "{{\"metadata\":{{\"managedFields\":[{{\"fieldsV1\":{}{{\"x\":1,\"x\":2}}{}}}]}}}}",
            "{\"f\":".repeat(MAX_DEPTH - 6),
            "}".repeat(MAX_DEPTH - 6)
        );
        let path = format!(
            "metadata.managedFields[0].fieldsV1.{}x",
            "f.".repeat(MAX_DEPTH - 6)
        );
        assert_eq!(issues(&free), [duplicate(&path)]);
    }

    #[test]
    fn rejects_nesting_one_past_max_depth() {
        let objects = format!(
            "{}{{}}{}",
            "{\"a\":".repeat(MAX_DEPTH),
            "}".repeat(MAX_DEPTH)
        );
        assert!(matches!(
            check(objects.as_bytes()),
            Err(StrictError::TooDeep { max: MAX_DEPTH })
        ));
        let arrays = format!(
            "{{\"spec\":{}{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert!(matches!(
            check(arrays.as_bytes()),
            Err(StrictError::TooDeep { max: MAX_DEPTH })
        ));
    }

    #[test]
    fn display_matches_api_server_wording() {
        let issue = Issue {
            kind: IssueKind::Unknown,
            path: "spec.foo".into(),
        };
        assert_eq!(issue.to_string(), "unknown field \"spec.foo\"");
        let issue = Issue {
            kind: IssueKind::Duplicate,
            path: "spec.network".into(),
        };
        assert_eq!(issue.to_string(), "duplicate field \"spec.network\"");
        assert_eq!(
            StrictError::Malformed { offset: 7 }.to_string(),
            "malformed JSON at byte 7"
        );
        assert_eq!(
            StrictError::TooDeep { max: 64 }.to_string(),
            "JSON nests deeper than 64 levels"
        );
    }

    /// Asserts that `node` declares exactly what the generated CRD schema declares.
    fn assert_same_shape(node: &Node, schema: &JSONSchemaProps, path: &str) {
        let kind = schema.type_.as_deref();
        match node {
            Node::Object(fields) => {
                assert_eq!(kind, Some("object"), "{path}");
                let props = schema
                    .properties
                    .as_ref()
                    .unwrap_or_else(|| panic!("{path}: no properties in the CRD"));
                let ours: BTreeSet<&str> = fields.iter().map(|(name, _)| *name).collect();
                let theirs: BTreeSet<&str> = props.keys().map(String::as_str).collect();
                assert_eq!(ours, theirs, "fields of {path}: strict schema vs CRD");
                for (name, child) in *fields {
                    assert_same_shape(child, &props[*name], &format!("{path}.{name}"));
                }
            }
            Node::List(item) => {
                assert_eq!(kind, Some("array"), "{path}");
                match &schema.items {
                    Some(JSONSchemaPropsOrArray::Schema(items)) => {
                        assert_same_shape(item, items, &format!("{path}[]"))
                    }
                    other => panic!("{path}: items {other:?}"),
                }
            }
            Node::Map | Node::Free => assert_eq!(kind, Some("object"), "{path}"),
            Node::Leaf => assert!(
                !matches!(kind, Some("object" | "array")),
                "{path} is a {kind:?} in the CRD but a leaf here"
            ),
        }
    }

    #[test]
    fn declared_fields_fit_the_seen_mask() {
        fn walk(node: &Node) {
            match node {
                Node::Object(fields) => {
                    assert!(fields.len() <= 64, "one bit per field in Frame::declared");
                    fields.iter().for_each(|(_, child)| walk(child));
                }
                Node::List(item) => walk(item),
                Node::Map | Node::Free | Node::Leaf => {}
            }
        }
        walk(&ROOT);
    }

    #[test]
    fn schema_matches_generated_crd() {
        let crd = crate::types::IPAMClaim::crd();
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("CRD has a schema");
        let props = schema.properties.as_ref().expect("root properties");
        let Node::Object(root) = &ROOT else {
            panic!("root is an object")
        };
        let ours: BTreeSet<&str> = root.iter().map(|(name, _)| *name).collect();
        let theirs: BTreeSet<&str> = props.keys().map(String::as_str).collect();
        // The generated root declares spec and status; the rest is standard for every kind.
        assert!(ours.is_superset(&theirs), "{theirs:?} not all in {ours:?}");
        for (name, node) in *root {
            if matches!(*name, "spec" | "status") {
                assert_same_shape(node, &props[*name], name);
            }
        }
    }

    // --- property tests ---

    /// A JSON value to be written out by hand, so that keys may repeat.
    #[derive(Clone, Debug)]
    enum Json {
        Scalar(&'static str),
        Array(Vec<Json>),
        Object(Vec<(String, bool, Json)>),
    }

    const SCALARS: &[&str] = &[
        "1",
        "-2.5e3",
        "0",
        "true",
        "false",
        "null",
        "\"s\"",
        r#""a\"}],:\\""#,
        "\"\u{e9}\"",
        r#""\ud83d\ude00""#,
    ];

    const KEYS: &[&str] = &[
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "status",
        "labels",
        "annotations",
        "network",
        "ipRequests",
        "conditions",
        "type",
        "managedFields",
        "fieldsV1",
        "ownerReferences",
        "ownerPod",
        "name",
        "ips",
        "x",
        "a\"}],:\\",
        "\u{e9}\u{1f600}",
        "",
    ];

    fn json_value() -> impl Strategy<Value = Json> {
        let leaf = prop::sample::select(SCALARS).prop_map(Json::Scalar);
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::vec((prop::sample::select(KEYS), any::<bool>(), inner), 0..6)
                    .prop_map(|members| {
                        members
                            .into_iter()
                            .map(|(k, esc, v)| (k.to_string(), esc, v))
                            .collect()
                    })
                    .prop_map(Json::Object),
            ]
        })
    }

    fn root_object() -> impl Strategy<Value = Json> {
        prop::collection::vec(
            (prop::sample::select(KEYS), any::<bool>(), json_value()),
            0..6,
        )
        .prop_map(|members| {
            Json::Object(
                members
                    .into_iter()
                    .map(|(k, esc, v)| (k.to_string(), esc, v))
                    .collect(),
            )
        })
    }

    /// Writes `value` with `ws` between tokens; keys marked so are written all in `\u` escapes.
    fn write_json(value: &Json, ws: &str, out: &mut String) {
        match value {
            Json::Scalar(text) => out.push_str(text),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(ws);
                    write_json(item, ws, out);
                }
                out.push_str(ws);
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (key, escape_all, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(ws);
                    if *escape_all {
                        out.push('"');
                        for unit in key.encode_utf16() {
                            let _ = write!(out, "\\u{unit:04X}");
                        }
                        out.push('"');
                    } else {
                        out.push_str(&serde_json::to_string(key).expect("key"));
                    }
                    out.push_str(ws);
                    out.push(':');
                    out.push_str(ws);
                    write_json(value, ws, out);
                }
                out.push_str(ws);
                out.push('}');
            }
        }
    }

    /// The issues `check` must find, by plain recursion over the parsed tree.
    fn expected(node: &'static Node, value: &Json, path: &str, out: &mut Vec<String>) {
        match value {
            Json::Scalar(_) => {}
            Json::Array(items) => {
                let node = node.for_container(false);
                if matches!(node, Node::Leaf) {
                    return;
                }
                for (i, item) in items.iter().enumerate() {
                    expected(node.item(), item, &format!("{path}[{i}]"), out);
                }
            }
            Json::Object(members) => {
                let node = node.for_container(true);
                if matches!(node, Node::Leaf) {
                    return;
                }
                let mut seen = BTreeSet::new();
                for (key, _, value) in members {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    let declared = match node.slot(key.as_bytes()) {
                        Slot::Declared(_, child) => Some(child),
                        Slot::Free => Some(&Node::Free),
                        Slot::Unknown => None,
                    };
                    if !seen.insert(key.as_str()) {
                        out.push(duplicate(&child_path));
                    } else if declared.is_none() {
                        out.push(unknown(&child_path));
                    }
                    expected(declared.unwrap_or(&Node::Leaf), value, &child_path, out);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn finds_what_a_tree_walk_finds(root in root_object(), ws in prop::sample::select(&["", " ", "\n\t "][..])) {
            let mut text = String::new();
            write_json(&root, ws, &mut text);
            let mut want = Vec::new();
            expected(&ROOT, &root, "", &mut want);
            prop_assert_eq!(issues(&text), want, "{}", text);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = check(&bytes);
        }

        #[test]
        fn never_panics_on_arbitrary_structural_bytes(bytes in prop::collection::vec(
            prop::sample::select(&b"{}[]\":,\\ u0aeE.-+tfn\xc3\xa9"[..]), 0..128)) {
            let _ = check(&bytes);
        }

        #[test]
        fn judges_mutated_objects_like_serde_json(
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..6)
        ) {
            let mut bytes = SAMPLE.as_bytes().to_vec();
            for (at, op, byte) in edits {
                let i = at.index(bytes.len() + 1);
                match op {
                    0 => bytes.insert(i, byte),
                    1 if i < bytes.len() => { bytes.remove(i); }
                    _ if i < bytes.len() => bytes[i] = byte,
                    _ => bytes.push(byte),
                }
            }
            let ours = check(&bytes);
            let theirs = serde_json::from_slice::<serde_json::Value>(&bytes);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?}: {:?}", String::from_utf8_lossy(&bytes), ours);
        }
    }
}
