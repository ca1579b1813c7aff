//! The walk of one object: its unknown and duplicate keys found in the one pass over the review
//! that also reads the members the rules read, and listed in the API server's order.
//!
//! The API server drops an unknown field silently and keeps the last of two duplicate keys, and
//! decoding into `serde_json::Value` loses duplicates too, so the keys are checked as the text
//! is read, byte for byte against a static schema. That walk is also where `request.object` and
//! `request.oldObject` are read into typed views ([`Claim`]): only `metadata.name`,
//! `metadata.generateName`, `metadata.labels`, `metadata.uid`, `spec` and `status` are kept,
//! borrowed from the text (nothing reads anything else; `managedFields` alone is most of a real
//! object).
//!
//! The order is the API server's (DESIGN §4): first every duplicate field, each path once, in
//! the order a decoder finds them that checks a key after reading its value; then the unknown
//! fields of `metadata`, sorted; then every other unknown field, sorted bytewise; each unknown
//! field once, judged on the object as decoded with the last of duplicate keys winning. Only the
//! first [`KEPT`] of each kind are kept in full, the rest counted: the walk holds a bounded list
//! however many keys the object has.
//!
//! Memory: what the walk holds beyond the text is bounded by the text, a small multiple at most
//! (`make bench-hostile`, BENCHMARKS.md): an object's keys are remembered as 4-byte offsets once
//! it has more than a few, a duplicate path as one 16-byte fingerprint, and lists as their text.
//!
//! Two ways through a value, one contract. The full walk ([`Walker::object`],
//! [`Walker::array`], [`Walker::free`]) names every step of the path and ranks every unknown
//! key. The clean paths ([`Walker::object_clean`], [`Walker::free_clean`], taken through
//! [`Walker::or_rewind`]) read a value in one loop, without paths: they answer `Some(text)`
//! exactly when the full walk would find nothing to report in that value (no unknown key, no
//! repeated key, no nesting as deep as [`MAX_DEPTH`]) and keep no more of it than its text,
//! and `None` otherwise, the reader then put back to the value's first byte for the full walk
//! to read it again and name what it finds. So a value is read at most three times, each pass
//! linear. [`Walker::first_condition`] fills the first condition's view in passing, which the
//! full walk leaves to the rules. The clean paths repeat the full walk's reading rather than
//! share it because sharing would put a path step and an unknown-field check back on every key
//! of the loop they exist to avoid (about 4,000 of the 55,000 instructions of a typical
//! status update). `Walker<'_, false>` never takes a clean path: `decode::tests` walks every
//! fixture and generated objects both ways and demands the same issues, views and verdicts.

use std::cell::OnceCell;
use std::collections::hash_map::RandomState;
use std::fmt::Write as _;

use crate::admission::decode::envelope::MAX_TEXT_BYTES;
use crate::admission::decode::keys::{same_str, Duplicates, Keys, PathHasher, Repeat, LINEAR_KEYS};
use crate::admission::decode::report::{Issue, IssueKind, Issues, PathText, StrictError, Unknowns};
use crate::admission::decode::schema::{Fields, Keep, Member, Node, Slot, ROOT};
use crate::admission::json::{Decode, Kind, Malformed, Raw, Read, Reader, Str};
use crate::admission::model::view::{Claim, Condition, Field, Metadata, OwnerPod, Spec, Status};

/// How deeply objects and arrays may nest, counting the root object as the first level.
pub const MAX_DEPTH: usize = 64;

/// Finds the unknown and duplicate fields in the raw JSON of an IPAMClaim, in the API
/// server's order.
///
/// A top-level value that is not an object has no fields to judge and yields no issues (the
/// decoding layer rejects it), but it must still be well-formed and within [`MAX_DEPTH`].
pub fn check(object: &[u8]) -> Result<Issues, StrictError> {
    if object.len() > MAX_TEXT_BYTES {
        return Err(StrictError::Malformed(format!(
            "{} bytes is more than the {MAX_TEXT_BYTES} the walk reads",
            object.len()
        )));
    }
    let text = std::str::from_utf8(object).map_err(|e| StrictError::Malformed(e.to_string()))?;
    let walked = walk(text, true).map_err(|_| {
        // The reader says only where; serde_json says why.
        let why = serde_json::from_str::<serde::de::IgnoredAny>(text)
            .err()
            .map_or_else(|| "not a JSON value".to_owned(), |e| e.to_string());
        StrictError::Malformed(why)
    })?;
    if walked.too_deep {
        return Err(StrictError::TooDeep { max: MAX_DEPTH });
    }
    Ok(walked.issues)
}

/// Reads the JSON text of an object as the admission pipeline does: the members the rules
/// read, and with `strict` its unknown and duplicate fields. The whole text must be the one
/// value.
pub fn walk(text: &str, strict: bool) -> Read<Walked<'_>> {
    // Offsets into the text are kept in 32 bits (see `keys`).
    if text.len() > MAX_TEXT_BYTES {
        return Err(Malformed);
    }
    let mut reader = Reader::new(text);
    let walked = Walked::read(&mut reader, strict)?;
    if !reader.at_end() {
        return Err(Malformed);
    }
    Ok(walked)
}

/// [`walk`] without the clean paths: the full walk of every value, for the tests of the
/// contract between the two (module doc).
#[cfg(test)]
pub(super) fn walk_full(text: &str, strict: bool) -> Read<Walked<'_>> {
    let mut reader = Reader::new(text);
    let walked = *Walked::read_boxed_with::<false>(&mut reader, strict)?;
    if !reader.at_end() {
        return Err(Malformed);
    }
    Ok(walked)
}

/// An object as read by the walk.
#[derive(Debug, Clone, PartialEq)]
pub struct Walked<'a> {
    /// The members the rules read (the last of two equal keys wins). A rule that starts
    /// reading another member must add it to [`view`](crate::admission::model::view) and to the walk.
    pub claim: Claim<'a>,
    /// Unknown and duplicate fields in the API server's order; none unless walked strictly.
    pub issues: Issues,
    /// Whether objects and arrays nest deeper than [`MAX_DEPTH`]: `claim` and `issues` are then
    /// incomplete and must not be judged.
    pub too_deep: bool,
}

// === impl Walked ===

impl<'a> Walked<'a> {
    /// Walks the value at `reader` and leaves the reader after it. A strict walk reads every
    /// value (strings' escapes and numbers' range checked throughout); a plain one skips what
    /// it does not keep, checking only its syntax.
    pub fn read(reader: &mut Reader<'a>, strict: bool) -> Read<Self> {
        Self::read_boxed(reader, strict).map(|walked| *walked)
    }

    /// [`Walked::read`], boxed: the walk fills the box where it stays.
    pub fn read_boxed(reader: &mut Reader<'a>, strict: bool) -> Read<Box<Self>> {
        Self::read_boxed_with::<true>(reader, strict)
    }

    /// [`Walked::read_boxed`], taking the clean paths or (`CLEAN` false) only the full walk.
    pub(super) fn read_boxed_with<const CLEAN: bool>(
        reader: &mut Reader<'a>,
        strict: bool,
    ) -> Read<Box<Self>> {
        let mut walked = Box::new(Walked {
            claim: Claim::new(Raw::new("", Kind::Object)),
            issues: Issues::default(),
            too_deep: false,
        });
        let mut walker = Walker::<'a, CLEAN> {
            reader: reader.clone(),
            strict,
            seen: Vec::new(),
            duplicates: Duplicates::default(),
            key_state: None,
            too_deep: false,
        };
        let unknowns = walker.root(&mut walked.claim)?;
        *reader = walker.reader;
        let (duplicates, duplicate_count) = walker.duplicates.into_listed();
        let (unknowns, unknown_count) = unknowns.into_sorted();
        walked.issues = Issues {
            duplicates,
            duplicate_count,
            unknowns,
            unknown_count,
        };
        walked.too_deep = walker.too_deep;
        Ok(walked)
    }
}

/// One step of the path from the object's root to the value being walked, on the stack.
pub(super) struct Step<'s, 'a> {
    pub(super) parent: Option<&'s Step<'s, 'a>>,
    pub(super) label: Label<'a>,
    /// The hash of the path's text up to and including this step, made at the first duplicate
    /// at or below it and kept for the next: a long key is hashed once, however many
    /// duplicates it holds.
    pub(super) hashed: OnceCell<PathHasher>,
}

/// How a step is named in a path.
#[derive(Clone, Copy)]
pub(super) enum Label<'a> {
    Key(Str<'a>),
    Index(usize),
}

// === impl Step ===

impl<'s, 'a> Step<'s, 'a> {
    pub(super) fn new(parent: Option<&'s Step<'s, 'a>>, label: Label<'a>) -> Self {
        Step {
            parent,
            label,
            hashed: OnceCell::new(),
        }
    }

    /// The hash of the text of the path to here; its cost is this step's label, once.
    pub(super) fn hashed(&self, duplicates: &mut Duplicates) -> &PathHasher {
        if let Some(hashed) = self.hashed.get() {
            return hashed;
        }
        let mut hasher = match self.parent {
            Some(parent) => parent.hashed(duplicates).clone(),
            None => duplicates.hasher(),
        };
        match self.label {
            Label::Key(key) => {
                if self.parent.is_some() {
                    hasher.write(b".");
                }
                hasher.write(key.decode().as_bytes());
            }
            Label::Index(i) => {
                let mut digits = String::new();
                let _ = write!(digits, "[{i}]");
                hasher.write(digits.as_bytes());
            }
        }
        self.hashed.get_or_init(|| hasher)
    }

    /// The issue `kind` about the member named by this step, its path cut to
    /// [`MAX_PATH_BYTES`]: the cost is the depth plus that bound, however long the keys on the
    /// way are.
    pub(super) fn issue(&self, kind: IssueKind) -> Issue {
        let mut labels = Vec::new();
        let mut at = Some(self);
        while let Some(s) = at {
            labels.push(s.label);
            at = s.parent;
        }
        labels.reverse();
        let mut path = PathText {
            text: String::new(),
            len: 0,
        };
        for label in labels {
            match label {
                Label::Key(key) => {
                    if path.len > 0 {
                        path.push(".");
                    }
                    path.push(&key.decode());
                }
                Label::Index(i) => {
                    let mut digits = String::new();
                    let _ = write!(digits, "[{i}]");
                    path.push(&digits);
                }
            }
        }
        Issue {
            kind,
            path: path.text,
            path_len: path.len,
        }
    }

    /// Whether the path starts at the root's `metadata`: the API server lists those unknown
    /// fields first.
    pub(super) fn in_metadata(&self) -> bool {
        let mut root = self;
        while let Some(parent) = root.parent {
            root = parent;
        }
        matches!(root.label, Label::Key(key) if key.is("metadata"))
    }
}

/// Where a value stands in the object, and what to make of it.
#[derive(Clone, Copy)]
pub(super) struct At<'s, 'a> {
    /// The expected shape; [`Node::Leaf`] where nothing is checked.
    pub(super) node: &'static Node,
    pub(super) keep: Keep,
    /// How many objects and arrays enclose the value.
    pub(super) depth: usize,
    pub(super) path: Option<&'s Step<'s, 'a>>,
}

/// What the walk makes of one value: its text, and the unknown fields below it.
pub(super) struct Seen<'a> {
    pub(super) raw: Raw<'a>,
    /// How many items, when it is an array.
    pub(super) items: usize,
    pub(super) unknowns: Unknowns,
}

// === impl Seen ===

impl<'a> Seen<'a> {
    pub(super) fn plain(raw: Raw<'a>) -> Self {
        Seen {
            raw,
            items: 0,
            unknowns: Unknowns::default(),
        }
    }
}

/// The walk of one object: the reader, and what the walk shares across its levels.
pub(super) struct Walker<'a, const CLEAN: bool = true> {
    pub(super) reader: Reader<'a>,
    /// Whether unknown and duplicate fields are looked for.
    pub(super) strict: bool,
    /// Keys of the open objects that a declared-field bit cannot track (map keys, unknown
    /// keys), innermost last, each with whether it was already reported as a duplicate: one
    /// vector for the walk, so that small objects cost no allocation of their own.
    pub(super) seen: Vec<(Str<'a>, bool)>,
    /// The duplicate fields found so far. Unknown fields travel up with the values instead
    /// ([`Seen::unknowns`]): a later duplicate key may still replace the value holding them.
    pub(super) duplicates: Duplicates,
    /// The hasher keys of large objects' key tables, drawn at the first one.
    pub(super) key_state: Option<RandomState>,
    pub(super) too_deep: bool,
}

// === impl Walker ===

impl<'a, const CLEAN: bool> Walker<'a, CLEAN> {
    /// The object's root, into `claim` (a claim of an empty object); the unknown fields in it.
    pub(super) fn root(&mut self, claim: &mut Claim<'a>) -> Read<Unknowns> {
        let at = At {
            node: &ROOT,
            keep: Keep::Root,
            depth: 0,
            path: None,
        };
        if self.reader.kind()? != Kind::Object {
            let seen = self.value(at)?;
            *claim = Claim::new(seen.raw);
            return Ok(seen.unknowns);
        }
        let seen = self.object(at, |w, member, at| {
            Ok(Some(match member {
                Member::Metadata => {
                    w.typed(at, &mut claim.metadata, Metadata::default(), Self::metadata)?
                }
                Member::Spec => w.spec(at, &mut claim.spec)?,
                Member::Status => {
                    w.typed(at, &mut claim.status, Status::default(), Self::status)?
                }
                _ => return Ok(None),
            }))
        })?;
        claim.raw = seen.raw;
        Ok(seen.unknowns)
    }

    pub(super) fn metadata(
        &mut self,
        meta: &mut Metadata<'a>,
        member: Member,
        at: At<'_, 'a>,
    ) -> Read<Option<Unknowns>> {
        Ok(Some(match member {
            Member::Name => self.string(at, &mut meta.name)?,
            Member::GenerateName => self.string(at, &mut meta.generate_name)?,
            Member::Uid => self.string(at, &mut meta.uid)?,
            Member::Labels => {
                let seen = self.value(at)?;
                meta.labels = Field::of_kind(seen.raw, Kind::Object);
                seen.unknowns
            }
            _ => return Ok(None),
        }))
    }

    pub(super) fn spec(
        &mut self,
        at: At<'_, 'a>,
        field: &mut Field<'a, Spec<'a>>,
    ) -> Read<Unknowns> {
        let empty = Raw::new("", Kind::Object);
        let spec = Spec {
            raw: empty,
            network: Field::Absent,
            interface: Field::Absent,
            ip_requests: Field::Absent,
        };
        let (unknowns, raw) = self.typed_raw(at, field, spec, |w, spec, member, at| {
            Ok(Some(match member {
                Member::Network => w.string(at, &mut spec.network)?,
                Member::Interface => w.string(at, &mut spec.interface)?,
                Member::IpRequests => w.list(at, &mut spec.ip_requests)?,
                _ => return Ok(None),
            }))
        })?;
        if let Field::Value(spec) = field {
            spec.raw = raw;
        }
        Ok(unknowns)
    }

    pub(super) fn status(
        &mut self,
        status: &mut Status<'a>,
        member: Member,
        at: At<'_, 'a>,
    ) -> Read<Option<Unknowns>> {
        Ok(Some(match member {
            Member::Ips => self.list(at, &mut status.ips)?,
            Member::OwnerPod => self.typed(
                at,
                &mut status.owner_pod,
                OwnerPod::default(),
                |w, pod, member, at| {
                    Ok(match member {
                        Member::PodName => Some(w.string(at, &mut pod.name)?),
                        _ => None,
                    })
                },
            )?,
            Member::Conditions => {
                // The last of repeated keys wins: its first condition too.
                status.first_condition = None;
                if self.reader.peek() == Some(b'[') {
                    let seen = self.array(at, Some(&mut status.first_condition))?;
                    status.conditions = Field::of_list(seen.raw, seen.items);
                    seen.unknowns
                } else {
                    self.list(at, &mut status.conditions)?
                }
            }
            _ => return Ok(None),
        }))
    }

    /// A member the schema types as an object: walked into `value` when it is one, kept as
    /// text otherwise. The last of repeated keys wins: `field` is replaced whole.
    pub(super) fn typed<T>(
        &mut self,
        at: At<'_, 'a>,
        field: &mut Field<'a, T>,
        value: T,
        fill: impl FnMut(&mut Self, &mut T, Member, At<'_, 'a>) -> Read<Option<Unknowns>>,
    ) -> Read<Unknowns> {
        self.typed_raw(at, field, value, fill)
            .map(|(unknowns, _)| unknowns)
    }

    pub(super) fn typed_raw<T>(
        &mut self,
        at: At<'_, 'a>,
        field: &mut Field<'a, T>,
        value: T,
        mut fill: impl FnMut(&mut Self, &mut T, Member, At<'_, 'a>) -> Read<Option<Unknowns>>,
    ) -> Read<(Unknowns, Raw<'a>)> {
        if self.reader.kind()? != Kind::Object {
            let seen = self.value(at)?;
            *field = Field::of_other(seen.raw);
            return Ok((seen.unknowns, seen.raw));
        }
        // Filled where it stays: a view is not small (a status holds its first condition).
        *field = Field::Value(value);
        let Field::Value(value) = field else {
            unreachable!("just set")
        };
        let seen = self.object(at, |w, name, at| fill(w, value, name, at))?;
        Ok((seen.unknowns, seen.raw))
    }

    /// A member the schema types as a string.
    pub(super) fn string(
        &mut self,
        at: At<'_, 'a>,
        field: &mut Field<'a, Str<'a>>,
    ) -> Read<Unknowns> {
        let seen = self.value(at)?;
        *field = Field::of_str(seen.raw);
        Ok(seen.unknowns)
    }

    /// A member the schema types as a list.
    pub(super) fn list(
        &mut self,
        at: At<'_, 'a>,
        field: &mut Field<'a, crate::admission::model::view::List<'a>>,
    ) -> Read<Unknowns> {
        let seen = self.value(at)?;
        *field = Field::of_list(seen.raw, seen.items);
        Ok(seen.unknowns)
    }

    /// Reads (or, when neither strict nor kept, skips) the value that comes next.
    pub(super) fn value(&mut self, at: At<'_, 'a>) -> Read<Seen<'a>> {
        // A strict walk reads every value, so that escapes and numbers are checked throughout
        // the object.
        if !self.strict && at.keep == Keep::Nothing {
            return self.reader.skip().map(Seen::plain);
        }
        if matches!(at.node, Node::Free) {
            if CLEAN {
                if let Some(raw) = self.or_rewind(|w| w.free_clean(at.depth))? {
                    return Ok(Seen::plain(raw));
                }
            }
            // A repeated key, or nesting as deep as the walk goes: walked again, with paths.
            return self.free(at.path, at.depth).map(Seen::plain);
        }
        match self.reader.peek() {
            Some(b'{') => {
                if let (true, Node::Object(fields)) = (CLEAN, at.node) {
                    if let Some(raw) = self.or_rewind(|w| w.object_clean(fields, at.depth, None))? {
                        return Ok(Seen::plain(raw));
                    }
                    // Not the plain case: walked again, with paths.
                }
                self.object(at, |_, _, _| Ok(None))
            }
            Some(b'[') => self.array(at, None),
            _ => self.reader.scalar::<Decode>().map(Seen::plain),
        }
    }

    /// Reads an object of `fields`, `depth` containers deep, as [`Walker::object`] does, when
    /// each of its keys is a declared field, none repeats, and each value is a scalar where the
    /// field is one, or free-form content without repeated keys where the field is that (an
    /// item of `managedFields`, `ownerReferences` or `conditions`, as written): its text then,
    /// `None` otherwise, with the reader anywhere inside the object (the caller walks it again).
    /// With `condition`, the members of a condition are read into it as well.
    pub(super) fn object_clean(
        &mut self,
        fields: &'static Fields,
        depth: usize,
        mut condition: Option<&mut Condition<'a>>,
    ) -> Read<Option<Raw<'a>>> {
        if depth >= MAX_DEPTH {
            return Ok(None);
        }
        let start = self.reader.pos();
        let mut more = self.reader.open_members()?;
        let mut seen = 0u64;
        while more {
            let Some(i) = fields.read_key(&mut self.reader)?.1 else {
                return Ok(None);
            };
            if seen & 1 << i != 0 {
                return Ok(None);
            }
            seen |= 1 << i;
            match (&fields.declared[i].node, self.reader.peek()) {
                (_, Some(b'{' | b'[')) => {
                    let Node::Free = fields.declared[i].node else {
                        return Ok(None);
                    };
                    if self.free_clean(depth + 1)?.is_none() {
                        return Ok(None);
                    }
                }
                (Node::Leaf | Node::Free, _) => {
                    let value = self.reader.scalar::<Decode>()?;
                    if let Some(condition) = condition.as_deref_mut() {
                        condition.fill_named(fields.declared[i].name.as_bytes(), value);
                    }
                }
                _ => return Ok(None),
            }
            more = self.reader.next_member()?;
        }
        Ok(Some(Raw::new(self.reader.since(start), Kind::Object)))
    }

    /// Reads free-form content (`fieldsV1`), `depth` containers deep at `path`: any key is
    /// allowed at any depth, so only repeated keys are looked for (when strict), and nothing
    /// below can be an unknown field. The same walk as [`Walker::object`] and
    /// [`Walker::array`] would make of it, without their bookkeeping of declared fields:
    /// `managedFields` is most of a typical object.
    pub(super) fn free(&mut self, path: Option<&Step<'_, 'a>>, depth: usize) -> Read<Raw<'a>> {
        let (open, kind) = match self.reader.peek() {
            Some(b'{') => (true, Kind::Object),
            Some(b'[') => (false, Kind::Array),
            _ => return self.reader.scalar::<Decode>(),
        };
        let start = self.reader.pos();
        if depth >= MAX_DEPTH {
            // As deep as the walk goes: keys are read, values skipped.
            self.too_deep = true;
            if open {
                let mut next = self.reader.open_object()?;
                while next.is_some() {
                    self.reader.skip()?;
                    next = self.reader.next_key()?;
                }
            } else {
                let mut more = self.reader.open_array()?;
                while more {
                    self.reader.skip()?;
                    more = self.reader.next_item()?;
                }
            }
        } else if open {
            let mut keys = Keys::open(self);
            let mut next = self.reader.open_object()?;
            while let Some(key) = next {
                let step = Step::new(path, Label::Key(key));
                let repeat = if self.strict {
                    keys.remember(self, key)
                } else {
                    Repeat::First
                };
                self.free(Some(&step), depth + 1)?;
                // As in an object: a repeated key is found once its value is read.
                if repeat == Repeat::Again {
                    self.duplicates.found(&step);
                }
                next = self.reader.next_key()?;
            }
            keys.close(self);
        } else {
            let mut more = self.reader.open_array()?;
            let mut index = 0;
            while more {
                let step = Step::new(path, Label::Index(index));
                self.free(Some(&step), depth + 1)?;
                index += 1;
                more = self.reader.next_item()?;
            }
        }
        Ok(Raw::new(self.reader.since(start), kind))
    }

    /// Reads free-form content as [`Walker::free`] does, `depth` containers deep, when it holds
    /// no repeated key and does not nest as deep as the walk goes: its text then, `None`
    /// otherwise (the caller walks it again with [`Walker::free`], which names what it finds).
    /// One loop without paths or recursion: the keys of each open object are the tail of
    /// [`Walker::seen`] from where the object opened.
    pub(super) fn free_clean(&mut self, depth: usize) -> Read<Option<Raw<'a>>> {
        // Where each open object's keys start in `seen`; `None` for an open array.
        let mut open: [Option<u32>; MAX_DEPTH] = [None; MAX_DEPTH];
        let mut level = 0;
        let kind = match self.reader.peek() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            _ => return self.reader.scalar::<Decode>().map(Some),
        };
        let start = self.reader.pos();
        loop {
            // At a value.
            let first = self.reader.peek();
            if matches!(first, Some(b'{' | b'[')) {
                if depth + level >= MAX_DEPTH {
                    return Ok(None);
                }
                if first == Some(b'{') {
                    open[level] = Some(self.seen.len() as u32);
                    level += 1;
                    if let Some(key) = self.reader.open_object()? {
                        if !self.remember_clean(open[level - 1], key) {
                            return Ok(None);
                        }
                        continue;
                    }
                } else {
                    open[level] = None;
                    level += 1;
                    if self.reader.open_array()? {
                        continue;
                    }
                }
                // An empty container: closed at once.
                level -= 1;
            } else {
                self.reader.scalar::<Decode>()?;
            }
            // After a value: the next key or item of the innermost open container, or its end.
            loop {
                if level == 0 {
                    return Ok(Some(Raw::new(self.reader.since(start), kind)));
                }
                match open[level - 1] {
                    Some(keys) => {
                        if let Some(key) = self.reader.next_key()? {
                            if !self.remember_clean(Some(keys), key) {
                                return Ok(None);
                            }
                            break;
                        }
                        self.seen.truncate(keys as usize);
                    }
                    None => {
                        if self.reader.next_item()? {
                            break;
                        }
                    }
                }
                level -= 1;
            }
        }
    }

    /// Adds `key` to the keys of the object whose keys start at `keys` in [`Walker::seen`];
    /// `false` if it is there already, or the object has more keys than a linear scan is for.
    #[inline]
    pub(super) fn remember_clean(&mut self, keys: Option<u32>, key: Str<'a>) -> bool {
        let Some(keys) = keys else { return false };
        let mine = &self.seen[keys as usize..];
        if mine.len() >= LINEAR_KEYS || mine.iter().any(|(k, _)| same_str(k, &key)) {
            return false;
        }
        if self.seen.capacity() == 0 {
            self.seen.reserve(2 * LINEAR_KEYS);
        }
        self.seen.push((key, false));
        true
    }

    /// Reads the item at `item` as [`Walker::value`] reads it and as a condition too, when it is
    /// an object that [`Walker::object_clean`] reads; otherwise `None`, the reader where it was.
    pub(super) fn first_condition(
        &mut self,
        item: At<'_, 'a>,
    ) -> Read<Option<(Raw<'a>, Condition<'a>)>> {
        let (true, Node::Object(fields)) = (CLEAN, item.node) else {
            return Ok(None);
        };
        if (!self.strict && item.keep == Keep::Nothing) || self.reader.peek() != Some(b'{') {
            return Ok(None);
        }
        let mut condition = Condition::default();
        let read = self.or_rewind(|w| w.object_clean(fields, item.depth, Some(&mut condition)))?;
        Ok(read.map(|raw| (raw, condition)))
    }

    /// `read`'s value, or, where it says `None`, the reader and the keys of open objects put
    /// back where they were before it: the value is then walked again from its first byte.
    #[inline(always)]
    pub(super) fn or_rewind<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Read<Option<T>>,
    ) -> Read<Option<T>> {
        let (reader, seen) = (self.reader.clone(), self.seen.len());
        let read = read(self)?;
        if read.is_none() {
            self.reader = reader;
            self.seen.truncate(seen);
        }
        Ok(read)
    }

    /// Whether the walk may open another object or array; if not, notes it.
    pub(super) fn may_open(&mut self, at: At<'_, 'a>) -> bool {
        if at.depth >= MAX_DEPTH {
            self.too_deep = true;
            return false;
        }
        true
    }

    /// Walks an array; with `first`, an object first item read as [`Walker::object_clean`]
    /// reads it is read into `first` as a condition too.
    pub(super) fn array(
        &mut self,
        at: At<'_, 'a>,
        mut first: Option<&mut Option<(Raw<'a>, Condition<'a>)>>,
    ) -> Read<Seen<'a>> {
        self.reader.peek();
        let start = self.reader.pos();
        let mut more = self.reader.open_array()?;
        let mut seen = Seen::plain(Raw::new("", Kind::Array));
        if !self.may_open(at) {
            while more {
                self.reader.skip()?;
                more = self.reader.next_item()?;
            }
        } else {
            let node = at.node.for_container(false).item();
            let keep = at.keep.item();
            // The items of a list are never replaced one by one: all their unknown fields count.
            while more {
                let step = Step::new(at.path, Label::Index(seen.items));
                let item = At {
                    node,
                    keep,
                    depth: at.depth + 1,
                    path: Some(&step),
                };
                if let Some(first) = first.take() {
                    if let Some(condition) = self.first_condition(item)? {
                        *first = Some(condition);
                        seen.items += 1;
                        more = self.reader.next_item()?;
                        continue;
                    }
                }
                let below = self.value(item)?.unknowns;
                seen.unknowns.merge(below);
                seen.items += 1;
                more = self.reader.next_item()?;
            }
        }
        seen.raw.text = self.reader.since(start);
        Ok(seen)
    }

    /// Walks an object: checks its keys against `at.node` (when strict), hands each declared
    /// member to `typed` (which reads it, or returns `None` to have it read as any value),
    /// and returns its text with the unknown fields below it.
    pub(super) fn object<F>(&mut self, at: At<'_, 'a>, mut typed: F) -> Read<Seen<'a>>
    where
        F: FnMut(&mut Self, Member, At<'_, 'a>) -> Read<Option<Unknowns>>,
    {
        self.reader.peek();
        let start = self.reader.pos();
        let mut more = self.reader.open_members()?;
        let raw = |text| Raw::new(text, Kind::Object);
        if !self.may_open(at) {
            // Keys are read, values skipped.
            while more {
                self.reader.key()?;
                self.reader.skip()?;
                more = self.reader.next_member()?;
            }
            return Ok(Seen::plain(raw(self.reader.since(start))));
        }
        let node = at.node.for_container(true);
        let checks = self.strict && !matches!(node, Node::Leaf);
        let mut keys = Keys::open(self);
        // The unknown keys of this object, each once.
        let mut unknowns = Unknowns::default();
        // The unknown fields below each declared member, by its index: only the last value of a
        // key counts, as in the object the API server decodes.
        let mut members: Vec<(usize, Unknowns)> = Vec::new();
        while more {
            let (key, slot) = match node {
                Node::Object(fields) => {
                    let (key, found) = fields.read_key(&mut self.reader)?;
                    let slot = match found {
                        Some(i) => Slot::Declared(i, &fields.declared[i]),
                        None => Slot::Unknown,
                    };
                    (key, slot)
                }
                _ => {
                    let key = self.reader.key()?;
                    (key, node.slot(key))
                }
            };
            let step = Step::new(at.path, Label::Key(key));
            let mut seen_before = Repeat::First;
            let mut child = &Node::Leaf;
            if checks {
                seen_before = match slot {
                    Slot::Declared(i, _) => keys.declare(i),
                    Slot::Free | Slot::Unknown => keys.remember(self, key),
                };
                if seen_before == Repeat::First && matches!(slot, Slot::Unknown) {
                    unknowns.add(step.in_metadata(), step.issue(IssueKind::Unknown));
                }
            }
            // The value of an unknown field is not walked against any shape: its children
            // are not fields either.
            match slot {
                Slot::Declared(_, declared) => child = &declared.node,
                Slot::Free => child = &Node::Free,
                Slot::Unknown => {}
            }
            let member = At {
                node: child,
                keep: at.keep.member(slot),
                depth: at.depth + 1,
                path: Some(&step),
            };
            let below = match slot {
                Slot::Declared(_, declared) => match typed(self, declared.member, member)? {
                    Some(below) => below,
                    None => self.value(member)?.unknowns,
                },
                Slot::Free | Slot::Unknown => self.value(member)?.unknowns,
            };
            // A decoder finds a duplicate key once it has read the key's value: the duplicates
            // inside the value come first.
            if seen_before == Repeat::Again {
                self.duplicates.found(&step);
            }
            if let (true, Slot::Declared(i, _)) = (checks, slot) {
                if seen_before != Repeat::First {
                    members.retain(|(j, _)| *j != i);
                }
                if !below.is_empty() {
                    members.push((i, below));
                }
            }
            more = self.reader.next_member()?;
        }
        keys.close(self);
        for (_, below) in members {
            unknowns.merge(below);
        }
        Ok(Seen {
            raw: raw(self.reader.since(start)),
            items: 0,
            unknowns,
        })
    }
}
