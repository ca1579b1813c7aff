//! Strict field checking: unknown and duplicate keys of an IPAMClaim, found in the one pass over
//! the review that also reads the members the rules read, and listed in the API server's order.
//!
//! The API server drops an unknown field silently and keeps the last of two duplicate keys, and
//! decoding into `serde_json::Value` loses duplicates too, so the keys are checked as the text
//! is read, byte for byte against a static schema. That walk is also where `request.object` and
//! `request.oldObject` are read into typed views ([`Claim`]): only `metadata.name`,
//! `metadata.generateName`, `metadata.labels`, `spec` and `status` are kept, borrowed from the
//! text (no rule reads anything else; `managedFields` alone is most of a real object).
//!
//! The order is the API server's (DESIGN §4): first every duplicate field, each path once, in
//! the order a decoder finds them that checks a key after reading its value; then the unknown
//! fields of `metadata`, sorted; then every other unknown field, sorted bytewise; each unknown
//! field once, judged on the object as decoded with the last of duplicate keys winning. Only the
//! first [`KEPT`] of each kind are kept in full, the rest counted: the walk holds a bounded list
//! however many keys the object has.
//!
//! Memory: what the walk holds beyond the text is bounded by the text, a small multiple at most
//! (see `tests/judging_memory.rs`): an object's keys are remembered as 4-byte offsets once it has
//! more than a few, a duplicate path as one 16-byte fingerprint, and lists as their text.

use std::cell::OnceCell;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashSet};
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, Hasher};

use crate::admission::json::{self, same_bytes, Kind, Malformed, Raw, Read, Reader, Str};
use crate::admission::model::view::{Claim, Condition, Field, Metadata, OwnerPod, Spec, Status};

/// How deeply objects and arrays may nest, counting the root object as the first level.
pub const MAX_DEPTH: usize = 64;

/// Longest path (in bytes) an [`Issue`] keeps: a key, or a key above it, can be megabytes
/// long, and copying it whole for each of many issues below it would cost the square of the
/// input. An answer shows at most this much of a path anyway.
pub const MAX_PATH_BYTES: usize = 2 * crate::admission::answer::field::MAX_ECHOED_BYTES;

/// How many duplicate fields, and how many unknown fields, the walk keeps in full: as many as
/// an answer lists, as causes or as warnings. The others are only counted.
pub const KEPT: usize = crate::admission::answer::field::CappedErrors::KEPT;

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
    /// The field path, e.g. `spec.foo` or `status.conditions[0].colour`, cut to at most
    /// [`MAX_PATH_BYTES`] (on a character boundary).
    pub path: String,
    /// The length in bytes of the whole path: more than `path.len()` when it was cut.
    pub path_len: usize,
}

/// The field-validation errors of an object in the API server's order, the first ones in full
/// and the others counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Issues {
    /// The first duplicate fields, each path once, in the order a decoder finds them (a key
    /// after its value); at most [`KEPT`].
    duplicates: Vec<Issue>,
    /// How many distinct duplicate paths there are.
    duplicate_count: usize,
    /// The first unknown fields: those of `metadata` sorted, then the others sorted bytewise;
    /// at most [`KEPT`].
    unknowns: Vec<Issue>,
    /// How many unknown fields there are.
    unknown_count: usize,
}

// === impl Issues ===

impl Issues {
    /// How many field-validation errors there are in all.
    pub fn len(&self) -> usize {
        self.duplicate_count + self.unknown_count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first errors in the API server's order, as many as were kept in full: the kept
    /// duplicates, then, when no duplicate was left out, the kept unknown fields. The other
    /// `len()` minus these are only counted.
    pub fn first(&self) -> impl Iterator<Item = &Issue> {
        let unknowns = if self.duplicates.len() == self.duplicate_count {
            &self.unknowns[..]
        } else {
            &[]
        };
        self.duplicates.iter().chain(unknowns)
    }

    /// The first unknown fields in the API server's order, at most [`KEPT`], whatever the
    /// duplicates before them.
    pub fn unknown_fields(&self) -> &[Issue] {
        &self.unknowns
    }
}

/// The object could not be walked.
#[derive(Debug, thiserror::Error)]
pub enum StrictError {
    /// Not well-formed JSON (including truncated input and invalid UTF-8).
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// Objects and arrays nest deeper than [`MAX_DEPTH`].
    #[error("JSON nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
}

/// Finds the unknown and duplicate fields in the raw JSON of an IPAMClaim, in the API
/// server's order.
///
/// A top-level value that is not an object has no fields to judge and yields no issues (the
/// decoding layer rejects it), but it must still be well-formed and within [`MAX_DEPTH`].
pub fn check(object: &[u8]) -> Result<Issues, StrictError> {
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
    let mut reader = Reader::new(text);
    let walked = Walked::read(&mut reader, strict)?;
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
        let mut walked = Box::new(Walked {
            claim: Claim::new(Raw::new("", Kind::Object)),
            issues: Issues::default(),
            too_deep: false,
        });
        let mut walker = Walker {
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

// === Schema ===

/// The shape the walker expects at one place in the object.
///
/// Kept in sync with `src/admission/types.rs` (for `spec` and `status`, which a unit test
/// cross-checks against the generated CRD) and with `metav1.ObjectMeta` (for `metadata`).
#[derive(Debug)]
enum Node {
    /// An object with exactly these fields; any other key is unknown.
    Object(&'static Fields),
    /// A list whose items have this shape.
    List(&'static Node),
    /// A string map such as labels: any key is allowed, only duplicates are reported.
    Map,
    /// Free-form content such as `fieldsV1`: any keys at any depth, only duplicates reported.
    Free,
    /// A scalar. Should a container turn up here instead, that is a type error for another
    /// layer; the walker reads it without checking its keys.
    Leaf,
}

/// The IPAMClaim object.
static ROOT: Node = Node::Object(&Fields::new(&[
    field("apiVersion", Node::Leaf),
    field("kind", Node::Leaf),
    kept("metadata", OBJECT_META, Member::Metadata),
    kept("spec", SPEC, Member::Spec),
    kept("status", STATUS, Member::Status),
]));

/// `metav1.ObjectMeta`.
const OBJECT_META: Node = Node::Object(&Fields::new(&[
    kept("name", Node::Leaf, Member::Name),
    kept("generateName", Node::Leaf, Member::GenerateName),
    field("namespace", Node::Leaf),
    field("selfLink", Node::Leaf),
    field("uid", Node::Leaf),
    field("resourceVersion", Node::Leaf),
    field("generation", Node::Leaf),
    field("creationTimestamp", Node::Leaf),
    field("deletionTimestamp", Node::Leaf),
    field("deletionGracePeriodSeconds", Node::Leaf),
    kept("labels", Node::Map, Member::Labels),
    field("annotations", Node::Map),
    field("ownerReferences", Node::List(&OWNER_REFERENCE)),
    field("finalizers", Node::List(&Node::Leaf)),
    field("managedFields", Node::List(&MANAGED_FIELDS_ENTRY)),
]));

/// `metav1.OwnerReference`.
const OWNER_REFERENCE: Node = Node::Object(&Fields::new(&[
    field("apiVersion", Node::Leaf),
    field("kind", Node::Leaf),
    field("name", Node::Leaf),
    field("uid", Node::Leaf),
    field("controller", Node::Leaf),
    field("blockOwnerDeletion", Node::Leaf),
]));

/// `metav1.ManagedFieldsEntry`.
const MANAGED_FIELDS_ENTRY: Node = Node::Object(&Fields::new(&[
    field("manager", Node::Leaf),
    field("operation", Node::Leaf),
    field("apiVersion", Node::Leaf),
    field("time", Node::Leaf),
    field("fieldsType", Node::Leaf),
    field("fieldsV1", Node::Free),
    field("subresource", Node::Leaf),
]));

/// `IPAMClaimSpec`.
const SPEC: Node = Node::Object(&Fields::new(&[
    kept("network", Node::Leaf, Member::Network),
    kept("interface", Node::Leaf, Member::Interface),
    kept("ipRequests", Node::List(&Node::Leaf), Member::IpRequests),
]));

/// `IPAMClaimStatus`.
const STATUS: Node = Node::Object(&Fields::new(&[
    kept("ips", Node::List(&Node::Leaf), Member::Ips),
    kept("ownerPod", OWNER_POD, Member::OwnerPod),
    kept("conditions", Node::List(&CONDITION), Member::Conditions),
]));

/// `OwnerPod`.
const OWNER_POD: Node = Node::Object(&Fields::new(&[kept("name", Node::Leaf, Member::PodName)]));

/// `Condition`, shaped like `metav1.Condition`.
const CONDITION: Node = Node::Object(&Fields::new(&[
    field("type", Node::Leaf),
    field("status", Node::Leaf),
    field("observedGeneration", Node::Leaf),
    field("lastTransitionTime", Node::Leaf),
    field("reason", Node::Leaf),
    field("message", Node::Leaf),
]));

/// A declared field: its name, its shape, and which member of the typed view it fills.
#[derive(Debug)]
struct Declared {
    name: &'static str,
    node: Node,
    member: Member,
}

/// The member of the typed view ([`Claim`] and below) a declared field fills; the walk keeps
/// exactly these (and, when not strict, skips the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    /// None: the field is only checked.
    None,
    /// `metadata` (kept trimmed to the three below).
    Metadata,
    /// `spec`.
    Spec,
    /// `status`.
    Status,
    /// `metadata.name`.
    Name,
    /// `metadata.generateName`.
    GenerateName,
    /// `metadata.labels`.
    Labels,
    /// `spec.network`.
    Network,
    /// `spec.interface`.
    Interface,
    /// `spec.ipRequests`.
    IpRequests,
    /// `status.ips`.
    Ips,
    /// `status.ownerPod`.
    OwnerPod,
    /// `status.conditions`.
    Conditions,
    /// `status.ownerPod.name`.
    PodName,
}

/// A declared field that the typed view does not hold.
const fn field(name: &'static str, node: Node) -> Declared {
    kept(name, node, Member::None)
}

/// A declared field that fills `member` of the typed view.
const fn kept(name: &'static str, node: Node, member: Member) -> Declared {
    Declared { name, node, member }
}

/// The declared fields of an object, and a table to find a key among them without comparing it
/// with each: a key's first byte picks the few fields it can be.
#[derive(Debug)]
struct Fields {
    declared: &'static [Declared],
    /// By the low five bits of a key's first byte: one more than the index of each field it
    /// can be (at most [`LEADS`]), then zeros.
    by_lead: [[u8; LEADS]; 32],
}

/// How many declared fields of one object may share the low five bits of their first byte.
const LEADS: usize = 3;

// === impl Fields ===

impl Fields {
    const fn new(declared: &'static [Declared]) -> Fields {
        assert!(declared.len() < u8::MAX as usize && declared.len() <= 64);
        let mut by_lead = [[0; LEADS]; 32];
        let mut i = 0;
        while i < declared.len() {
            let lead = &mut by_lead[(declared[i].name.as_bytes()[0] & 31) as usize];
            let mut j = 0;
            while lead[j] != 0 {
                j += 1;
                assert!(
                    j < LEADS,
                    "too many fields of one object share a first byte"
                );
            }
            lead[j] = i as u8 + 1;
            i += 1;
        }
        Fields { declared, by_lead }
    }

    /// Reads the key that comes next and its colon: the key, and the index of the declared
    /// field it names. A key written as a declared name is recognised by comparing it with the
    /// few names that start like it, without looking for its end first; any other key is read
    /// as usual (an escaped one decoded and looked up).
    #[inline(always)]
    fn read_key<'a>(&self, reader: &mut Reader<'a>) -> Read<(Str<'a>, Option<usize>)> {
        if let Some(lead) = reader.key_lead() {
            for i in self.leading(lead) {
                if let Some(key) = reader.key_if(self.declared[i].name)? {
                    return Ok((key, Some(i)));
                }
            }
        }
        let key = reader.key()?;
        // A plain key that names a declared field was found above.
        let found = if key.is_escaped() {
            self.find(key.decode().as_bytes())
        } else {
            None
        };
        Ok((key, found))
    }

    /// The index of the declared field named `key` (unescaped).
    #[inline]
    fn find(&self, key: &[u8]) -> Option<usize> {
        let &lead = key.first()?;
        self.leading(lead)
            .find(|&i| same_bytes(self.declared[i].name.as_bytes(), key))
    }

    /// The indices of the declared fields whose names may start with `lead`.
    #[inline(always)]
    fn leading(&self, lead: u8) -> impl Iterator<Item = usize> + '_ {
        self.by_lead[usize::from(lead & 31)]
            .iter()
            .map_while(|&candidate| usize::from(candidate).checked_sub(1))
    }
}

/// Where a key lands in an object.
#[derive(Clone, Copy)]
enum Slot {
    /// The field at this index of an [`Node::Object`].
    Declared(usize, &'static Declared),
    /// Any key of a [`Node::Map`] or [`Node::Free`] object; its value is free-form.
    Free,
    /// A key the object does not declare.
    Unknown,
}

// === impl Node ===

impl Node {
    /// Where `key` lands in an object walked against this node: its bytes are compared with
    /// the declared names, no allocation (an escaped key is decoded first, which is rare).
    #[inline(always)]
    fn slot(&self, key: Str<'_>) -> Slot {
        match self {
            Node::Object(fields) => {
                let found = if key.is_escaped() {
                    fields.find(key.decode().as_bytes())
                } else {
                    fields.find(key.raw().as_bytes())
                };
                match found {
                    Some(i) => Slot::Declared(i, &fields.declared[i]),
                    None => Slot::Unknown,
                }
            }
            Node::Map | Node::Free => Slot::Free,
            // Keys are never looked up in an object that is not checked.
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
    /// otherwise [`Node::Leaf`] so that a mistyped value is read without reports.
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

// === The walk ===

/// Up to this many keys an object's duplicate check is a linear scan; beyond, a hash table.
const LINEAR_KEYS: usize = 16;

/// Which part of a value the walk keeps (and so reads, when it is not strict).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    /// Nothing: the value is only checked (or skipped).
    Nothing,
    /// The object: its `metadata` trimmed, `spec` and `status` whole.
    Root,
    /// `metadata`: `name`, `generateName` and `labels`.
    Metadata,
    /// All of it.
    Whole,
}

// === impl Keep ===

impl Keep {
    /// What to keep of the member of an object kept as `self` that lands in `slot`. Every
    /// rule reads only what this keeps.
    fn member(self, slot: Slot) -> Keep {
        match self {
            Keep::Nothing | Keep::Whole => self,
            // `Root` and `Metadata` walk the root and its `metadata`, which are always walked
            // against their declared fields.
            Keep::Root | Keep::Metadata => match slot {
                Slot::Declared(_, declared) => match declared.member {
                    Member::Metadata => Keep::Metadata,
                    Member::None => Keep::Nothing,
                    _ => Keep::Whole,
                },
                Slot::Free | Slot::Unknown => Keep::Nothing,
            },
        }
    }

    /// What to keep of the member `key` of an object kept as `self`, where the walk has not
    /// looked the key up: the same as [`Keep::member`].
    fn member_named(self, key: Str<'_>) -> Keep {
        let node = match self {
            Keep::Nothing | Keep::Whole => return self,
            Keep::Root => &ROOT,
            Keep::Metadata => &OBJECT_META,
        };
        self.member(node.slot(key))
    }

    /// What to keep of an item of an array kept as `self`: a trimmed member that turns out
    /// not to be an object is kept whole.
    fn item(self) -> Keep {
        match self {
            Keep::Nothing => Keep::Nothing,
            _ => Keep::Whole,
        }
    }
}

/// One step of the path from the object's root to the value being walked, on the stack.
struct Step<'s, 'a> {
    parent: Option<&'s Step<'s, 'a>>,
    label: Label<'a>,
    /// The hash of the path's text up to and including this step, made at the first duplicate
    /// at or below it and kept for the next: a long key is hashed once, however many
    /// duplicates it holds.
    hashed: OnceCell<PathHasher>,
}

/// How a step is named in a path.
#[derive(Clone, Copy)]
enum Label<'a> {
    Key(Str<'a>),
    Index(usize),
}

// === impl Step ===

impl<'s, 'a> Step<'s, 'a> {
    fn new(parent: Option<&'s Step<'s, 'a>>, label: Label<'a>) -> Self {
        Step {
            parent,
            label,
            hashed: OnceCell::new(),
        }
    }

    /// The hash of the text of the path to here; its cost is this step's label, once.
    fn hashed(&self, duplicates: &mut Duplicates) -> &PathHasher {
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
    fn issue(&self, kind: IssueKind) -> Issue {
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
    fn in_metadata(&self) -> bool {
        let mut root = self;
        while let Some(parent) = root.parent {
            root = parent;
        }
        matches!(root.label, Label::Key(key) if key.is("metadata"))
    }
}

/// Where a value stands in the object, and what to make of it.
#[derive(Clone, Copy)]
struct At<'s, 'a> {
    /// The expected shape; [`Node::Leaf`] where nothing is checked.
    node: &'static Node,
    keep: Keep,
    /// How many objects and arrays enclose the value.
    depth: usize,
    path: Option<&'s Step<'s, 'a>>,
}

/// What the walk makes of one value: its text, and the unknown fields below it.
struct Seen<'a> {
    raw: Raw<'a>,
    /// How many items, when it is an array.
    items: usize,
    unknowns: Unknowns,
}

// === impl Seen ===

impl<'a> Seen<'a> {
    fn plain(raw: Raw<'a>) -> Self {
        Seen {
            raw,
            items: 0,
            unknowns: Unknowns::default(),
        }
    }
}

/// The walk of one object: the reader, and what the walk shares across its levels.
struct Walker<'a> {
    reader: Reader<'a>,
    /// Whether unknown and duplicate fields are looked for.
    strict: bool,
    /// Keys of the open objects that a declared-field bit cannot track (map keys, unknown
    /// keys), innermost last, each with whether it was already reported as a duplicate: one
    /// vector for the walk, so that small objects cost no allocation of their own.
    seen: Vec<(Str<'a>, bool)>,
    /// The duplicate fields found so far. Unknown fields travel up with the values instead
    /// ([`Seen::unknowns`]): a later duplicate key may still replace the value holding them.
    duplicates: Duplicates,
    /// The hasher keys of large objects' key tables, drawn at the first one.
    key_state: Option<RandomState>,
    too_deep: bool,
}

// === impl Walker ===

impl<'a> Walker<'a> {
    /// The object's root, into `claim` (a claim of an empty object); the unknown fields in it.
    fn root(&mut self, claim: &mut Claim<'a>) -> Read<Unknowns> {
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

    fn metadata(
        &mut self,
        meta: &mut Metadata<'a>,
        member: Member,
        at: At<'_, 'a>,
    ) -> Read<Option<Unknowns>> {
        Ok(Some(match member {
            Member::Name => self.string(at, &mut meta.name)?,
            Member::GenerateName => self.string(at, &mut meta.generate_name)?,
            Member::Labels => {
                let seen = self.value(at)?;
                meta.labels = Field::of_kind(seen.raw, Kind::Object);
                seen.unknowns
            }
            _ => return Ok(None),
        }))
    }

    fn spec(&mut self, at: At<'_, 'a>, field: &mut Field<'a, Spec<'a>>) -> Read<Unknowns> {
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

    fn status(
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
    fn typed<T>(
        &mut self,
        at: At<'_, 'a>,
        field: &mut Field<'a, T>,
        value: T,
        fill: impl FnMut(&mut Self, &mut T, Member, At<'_, 'a>) -> Read<Option<Unknowns>>,
    ) -> Read<Unknowns> {
        self.typed_raw(at, field, value, fill)
            .map(|(unknowns, _)| unknowns)
    }

    fn typed_raw<T>(
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
    fn string(&mut self, at: At<'_, 'a>, field: &mut Field<'a, Str<'a>>) -> Read<Unknowns> {
        let seen = self.value(at)?;
        *field = Field::of_str(seen.raw);
        Ok(seen.unknowns)
    }

    /// A member the schema types as a list.
    fn list(
        &mut self,
        at: At<'_, 'a>,
        field: &mut Field<'a, crate::admission::model::view::List<'a>>,
    ) -> Read<Unknowns> {
        let seen = self.value(at)?;
        *field = Field::of_list(seen.raw, seen.items);
        Ok(seen.unknowns)
    }

    /// Reads (or, when neither strict nor kept, skips) the value that comes next.
    fn value(&mut self, at: At<'_, 'a>) -> Read<Seen<'a>> {
        // A strict walk reads every value, so that escapes and numbers are checked throughout
        // the object.
        if !self.strict && at.keep == Keep::Nothing {
            return self.reader.skip().map(Seen::plain);
        }
        if matches!(at.node, Node::Free) {
            if let Some(raw) = self.or_rewind(|w| w.free_clean(at.depth))? {
                return Ok(Seen::plain(raw));
            }
            // A repeated key, or nesting as deep as the walk goes: walked again, with paths.
            return self.free(at.path, at.depth).map(Seen::plain);
        }
        match self.reader.peek() {
            Some(b'{') => {
                if let Node::Object(fields) = at.node {
                    if let Some(raw) = self.or_rewind(|w| w.object_clean(fields, at.depth, None))? {
                        return Ok(Seen::plain(raw));
                    }
                    // Not the plain case: walked again, with paths.
                }
                self.object(at, |_, _, _| Ok(None))
            }
            Some(b'[') => self.array(at, None),
            _ => self.reader.scalar(true).map(Seen::plain),
        }
    }

    /// Reads an object of `fields`, `depth` containers deep, as [`Walker::object`] does, when
    /// each of its keys is a declared field, none repeats, and each value is a scalar where the
    /// field is one, or free-form content without repeated keys where the field is that (an
    /// item of `managedFields`, `ownerReferences` or `conditions`, as written): its text then,
    /// `None` otherwise, with the reader anywhere inside the object (the caller walks it again).
    /// With `condition`, the members of a condition are read into it as well.
    fn object_clean(
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
                    let value = self.reader.scalar(true)?;
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
    fn free(&mut self, path: Option<&Step<'_, 'a>>, depth: usize) -> Read<Raw<'a>> {
        let (open, kind) = match self.reader.peek() {
            Some(b'{') => (true, Kind::Object),
            Some(b'[') => (false, Kind::Array),
            _ => return self.reader.scalar(true),
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
    fn free_clean(&mut self, depth: usize) -> Read<Option<Raw<'a>>> {
        // Where each open object's keys start in `seen`; `None` for an open array.
        let mut open: [Option<u32>; MAX_DEPTH] = [None; MAX_DEPTH];
        let mut level = 0;
        let kind = match self.reader.peek() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            _ => return self.reader.scalar(true).map(Some),
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
                self.reader.scalar(true)?;
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
    fn remember_clean(&mut self, keys: Option<u32>, key: Str<'a>) -> bool {
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
    fn first_condition(&mut self, item: At<'_, 'a>) -> Read<Option<(Raw<'a>, Condition<'a>)>> {
        let Node::Object(fields) = item.node else {
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
    fn or_rewind<T>(&mut self, read: impl FnOnce(&mut Self) -> Read<Option<T>>) -> Read<Option<T>> {
        let (reader, seen) = (self.reader.clone(), self.seen.len());
        let read = read(self)?;
        if read.is_none() {
            self.reader = reader;
            self.seen.truncate(seen);
        }
        Ok(read)
    }

    /// Whether the walk may open another object or array; if not, notes it.
    fn may_open(&mut self, at: At<'_, 'a>) -> bool {
        if at.depth >= MAX_DEPTH {
            self.too_deep = true;
            return false;
        }
        true
    }

    /// Walks an array; with `first`, an object first item read as [`Walker::object_clean`]
    /// reads it is read into `first` as a condition too.
    fn array(
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
    fn object<F>(&mut self, at: At<'_, 'a>, mut typed: F) -> Read<Seen<'a>>
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

/// Whether a key was seen before in its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Repeat {
    /// Not before.
    First,
    /// Once or more, and this is the first repeat: a duplicate to report.
    Again,
    /// Reported already: the same path again.
    Reported,
}

/// The keys of one object, for its duplicate check.
struct Keys {
    /// Which of an [`Node::Object`]'s declared fields were seen, by index.
    declared: u64,
    /// Which of them were reported as duplicates.
    reported: u64,
    /// Where this object's other keys start in [`Walker::seen`].
    start: usize,
    /// Keys of a large object, once the linear scan would get slow: where each starts in the
    /// text (4 bytes a key, however long), with [`REPORTED`] set once reported.
    large: Option<hashbrown::HashTable<u32>>,
}

/// The bit of an offset in [`Keys::large`] that marks a key reported as a duplicate (texts are
/// below 2 GiB).
const REPORTED: u32 = 1 << 31;

// === impl Keys ===

impl Keys {
    fn open(walker: &Walker<'_>) -> Self {
        Keys {
            declared: 0,
            reported: 0,
            start: walker.seen.len(),
            large: None,
        }
    }

    /// Marks the declared field `i` seen.
    fn declare(&mut self, i: usize) -> Repeat {
        let bit = 1 << i;
        if self.declared & bit == 0 {
            self.declared |= bit;
            Repeat::First
        } else if self.reported & bit == 0 {
            self.reported |= bit;
            Repeat::Again
        } else {
            Repeat::Reported
        }
    }

    /// Adds `key` to the object's keys.
    fn remember<'a>(&mut self, walker: &mut Walker<'a>, key: Str<'a>) -> Repeat {
        let text = walker.reader.text();
        if let Some(large) = &mut self.large {
            let state = walker.key_state.get_or_insert_with(RandomState::new);
            let hash = key_hash(state, key);
            let found = large.find_mut(hash, |&at| Str::at(text, at & !REPORTED) == key);
            return match found {
                Some(at) if *at & REPORTED == 0 => {
                    *at |= REPORTED;
                    Repeat::Again
                }
                Some(_) => Repeat::Reported,
                None => {
                    large.insert_unique(hash, json::offset(text, key.raw()), |&at| {
                        key_hash(state, Str::at(text, at & !REPORTED))
                    });
                    Repeat::First
                }
            };
        }
        // Inner objects have closed by now, so this object's keys are the tail of `seen`.
        let mine = &mut walker.seen[self.start..];
        if let Some((_, reported)) = mine.iter_mut().find(|(k, _)| same_str(k, &key)) {
            return if std::mem::replace(reported, true) {
                Repeat::Reported
            } else {
                Repeat::Again
            };
        }
        if mine.len() < LINEAR_KEYS {
            if walker.seen.capacity() == 0 {
                // Room for the keys of a few nested objects at once, not grown a few at a time.
                walker.seen.reserve(2 * LINEAR_KEYS);
            }
            walker.seen.push((key, false));
            return Repeat::First;
        }
        let state = walker.key_state.get_or_insert_with(RandomState::new);
        let mut large = hashbrown::HashTable::with_capacity(2 * LINEAR_KEYS);
        let hasher = |&at: &u32| key_hash(state, Str::at(text, at & !REPORTED));
        for (k, reported) in walker.seen.drain(self.start..).chain([(key, false)]) {
            let at = json::offset(text, k.raw()) | if reported { REPORTED } else { 0 };
            large.insert_unique(hasher(&at), at, hasher);
        }
        self.large = Some(large);
        Repeat::First
    }

    fn close(self, walker: &mut Walker<'_>) {
        walker.seen.truncate(self.start);
    }
}

/// The hash of a key's decoded text.
fn key_hash(state: &RandomState, key: Str<'_>) -> u64 {
    state.hash_one(key.decode().as_bytes())
}

/// Key equality: bytes compared without a call to `memcmp` when neither key is escaped.
#[inline]
fn same_str(a: &Str<'_>, b: &Str<'_>) -> bool {
    if a.is_escaped() || b.is_escaped() {
        return a == b;
    }
    same_bytes(a.raw().as_bytes(), b.raw().as_bytes())
}

/// The duplicate fields one walk found: each path once, the first [`KEPT`] in full.
#[derive(Default)]
struct Duplicates {
    /// One fingerprint of the path of each duplicate found (a key repeated in one object is
    /// found once): sorted and deduplicated at the end, they count the distinct paths, however
    /// often one repeats (the same key in values a later duplicate replaced, the same text
    /// reached through keys that hold dots). Each needs two copies of a key in the text.
    found: Vec<u128>,
    /// The fingerprints of the listed ones, so that a path is listed once.
    listed_paths: HashSet<u128>,
    /// The first ones, in the order found.
    listed: Vec<Issue>,
    /// The keys of the fingerprints, drawn at the first duplicate.
    keys: Option<[RandomState; 2]>,
}

// === impl Duplicates ===

impl Duplicates {
    /// Records the duplicate key named by `step`, after its value was read.
    fn found(&mut self, step: &Step<'_, '_>) {
        let fingerprint = step.hashed(self).finish();
        self.found.push(fingerprint);
        if self.listed.len() < KEPT && self.listed_paths.insert(fingerprint) {
            self.listed.push(step.issue(IssueKind::Duplicate));
        }
    }

    /// A hasher of path texts, keyed for this walk.
    fn hasher(&mut self) -> PathHasher {
        let keys = self
            .keys
            .get_or_insert_with(|| [RandomState::new(), RandomState::new()]);
        PathHasher([keys[0].build_hasher(), keys[1].build_hasher()])
    }

    /// The first duplicates in order, and how many distinct paths there are.
    fn into_listed(mut self) -> (Vec<Issue>, usize) {
        self.found.sort_unstable();
        self.found.dedup();
        (self.listed, self.found.len())
    }
}

/// A 128-bit fingerprint of a path's text, as two independently keyed SipHashes: two distinct
/// paths share one with a chance of about 2^-128, and a client cannot aim for it (the keys are
/// drawn per walk). Should it happen, one duplicate field goes unnamed: a verdict never
/// depends on it, as the other is still there.
#[derive(Clone)]
struct PathHasher([std::collections::hash_map::DefaultHasher; 2]);

// === impl PathHasher ===

impl PathHasher {
    /// Adds `text`, one byte at a time: `Hasher` promises the same hash only for the same
    /// sequence of writes, and `a.b` + `.c` must hash as `a` + `.b.c`.
    fn write(&mut self, text: &[u8]) {
        for &byte in text {
            self.0[0].write_u8(byte);
            self.0[1].write_u8(byte);
        }
    }

    fn finish(&self) -> u128 {
        (u128::from(self.0[0].finish()) << 64) | u128::from(self.0[1].finish())
    }
}

/// The unknown fields below one value, as far as an answer can list them: the first [`KEPT`]
/// in the API server's order and how many there are in all. A value's list is held until the
/// object around it closes (a later duplicate key may replace the value, and its unknown
/// fields with it), then merged into that object's: the walk holds a few lists of at most
/// [`KEPT`] paths, however many unknown keys the object has. Most values have none: then it is
/// one null pointer, which the walk passes up from every value it reads.
#[derive(Default)]
struct Unknowns(Option<Box<UnknownList>>);

/// The unknown fields below a value that has some.
#[derive(Default)]
struct UnknownList {
    /// The first ones, largest on top, so that a smaller one replaces it.
    first: BinaryHeap<Ranked>,
    /// How many there are.
    count: usize,
}

/// An unknown field as the API server orders it: those of `metadata` first, then by path,
/// bytewise. A path cut to [`MAX_PATH_BYTES`] sorts by its start, then by its whole length.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ranked {
    outside_metadata: bool,
    path: String,
    path_len: usize,
}

// === impl Unknowns ===

impl Unknowns {
    fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Adds an unknown field.
    fn add(&mut self, in_metadata: bool, issue: Issue) {
        let list = self.0.get_or_insert_with(Box::default);
        list.count += 1;
        list.keep(Ranked {
            outside_metadata: !in_metadata,
            path: issue.path,
            path_len: issue.path_len,
        });
    }

    /// Adds the unknown fields of `other`.
    fn merge(&mut self, other: Unknowns) {
        let Some(mut other) = other.0 else {
            return;
        };
        let Some(list) = &mut self.0 else {
            self.0 = Some(other);
            return;
        };
        if other.first.len() > list.first.len() {
            std::mem::swap(list, &mut other);
        }
        list.count += other.count;
        for ranked in other.first {
            list.keep(ranked);
        }
    }

    /// The first ones in order, and how many there are in all.
    fn into_sorted(self) -> (Vec<Issue>, usize) {
        let Some(list) = self.0 else {
            return (Vec::new(), 0);
        };
        let first = list
            .first
            .into_sorted_vec()
            .into_iter()
            .map(|r| Issue {
                kind: IssueKind::Unknown,
                path: r.path,
                path_len: r.path_len,
            })
            .collect();
        (first, list.count)
    }
}

// === impl UnknownList ===

impl UnknownList {
    /// Keeps `ranked` if it is among the first [`KEPT`].
    fn keep(&mut self, ranked: Ranked) {
        if self.first.len() < KEPT {
            self.first.push(ranked);
        } else if self.first.peek().is_some_and(|last| ranked < *last) {
            self.first.pop();
            self.first.push(ranked);
        }
    }
}

/// A path being written: its start, of at most [`MAX_PATH_BYTES`] bytes, and its whole length.
struct PathText {
    text: String,
    len: usize,
}

// === impl PathText ===

impl PathText {
    fn push(&mut self, part: &str) {
        // Once a part has been cut, nothing after it may follow, or the text would not be the
        // start of the path.
        let cut = self.text.len() < self.len;
        self.len += part.len();
        if !cut {
            let room = MAX_PATH_BYTES - self.text.len();
            self.text
                .push_str(crate::admission::answer::field::clip(part, room).0);
        }
    }
}

// === The walk as serde_json reads it ===

/// A value read by serde_json where and as [`Walked::read`] reads it (every value when strict,
/// else only the members kept; containers past [`MAX_DEPTH`] opened with their contents
/// skipped), keeping nothing: serde_json then refuses exactly what the walk refuses, and says
/// why in its own words.
#[derive(Clone, Copy)]
pub struct Skeleton {
    strict: bool,
    keep: Keep,
    depth: usize,
}

// === impl Skeleton ===

impl Skeleton {
    /// The root of an object.
    pub fn root(strict: bool) -> Self {
        Skeleton {
            strict,
            keep: Keep::Root,
            depth: 0,
        }
    }

    /// A member or item kept as `keep`: read, or skipped unread.
    fn child(self, keep: Keep) -> Option<Self> {
        (self.strict || keep != Keep::Nothing).then_some(Skeleton {
            keep,
            depth: self.depth + 1,
            ..self
        })
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Skeleton {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Skeleton {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        use serde::de::IgnoredAny;
        let item = (self.depth < MAX_DEPTH)
            .then(|| self.child(self.keep.item()))
            .flatten();
        loop {
            let more = match item {
                Some(item) => seq.next_element_seed(item)?.is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::IgnoredAny;
        if self.depth >= MAX_DEPTH {
            while map.next_key::<IgnoredAny>()?.is_some() {
                map.next_value::<IgnoredAny>()?;
            }
            return Ok(());
        }
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.child(self.keep.member_named(Str::plain(&key))) {
                Some(member) => map.next_value_seed(member)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::json::{Raw, Str};
    use crate::admission::model::view::{Claim, Field, List};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        JSONSchemaProps, JSONSchemaPropsOrArray,
    };
    use kube::CustomResourceExt;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;
    use serde_json::value::RawValue;
    use serde_json::Value;
    use std::collections::{BTreeMap, BTreeSet};

    /// The issues of `json` as the API server would word them, in its order; every one, as
    /// long as fewer than [`KEPT`] of each kind.
    fn issues(json: &str) -> Vec<String> {
        let found = check(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
        let listed: Vec<String> = found.first().map(ToString::to_string).collect();
        assert_eq!(listed.len(), found.len(), "{json}: some were only counted");
        listed
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
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captured")
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
                    assert!(found.is_empty(), "{name}: {found:?}");
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
        assert_eq!(issues(json), [unknown("extra"), unknown("spec.foo")]);
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
    fn reports_duplicates_in_large_and_nested_fields_v1() {
        let many: Vec<String> = (0..40).map(|i| format!(r#""f:k{i}":{{}}"#)).collect();
        let many = many.join(",");
        let clean = format!(
            r#"{{"metadata":{{"managedFields":[{{"fieldsV1":{{{many},"f:x":[{{"a":1,"b":[2]}},[]]}}}}]}}}}"#
        );
        assert_eq!(issues(&clean), Vec::<String>::new());
        let late = format!(
            r#"{{"metadata":{{"managedFields":[{{"fieldsV1":{{{many},"f:k3":{{}}}}}}]}}}}"#
        );
        assert_eq!(
            issues(&late),
            [duplicate("metadata.managedFields[0].fieldsV1.f:k3")]
        );
        // A repeat after a closed sibling object, and one in the sibling's own keys.
        let json = r#"{"metadata":{"managedFields":[{"fieldsV1":{"a":{"x":1,"y":2},"b":[{"x":1,"x":2}],"a":3}},{"fieldsV1":{"a":1}}]}}"#;
        assert_eq!(
            issues(json),
            [
                duplicate("metadata.managedFields[0].fieldsV1.b[0].x"),
                duplicate("metadata.managedFields[0].fieldsV1.a"),
            ]
        );
    }

    /// The status of `text`'s walk (strict or not).
    fn status_of(text: &str, strict: bool) -> crate::admission::model::view::Status<'_> {
        match walk(text, strict).expect("well-formed").claim.status {
            Field::Value(status) => status,
            other => panic!("no status object in {text}: {other:?}"),
        }
    }

    #[test]
    fn reads_a_plain_first_condition_in_passing() {
        let text = r#"{"status":{"conditions":[{"type":"IPsAllocated","status":"True","observedGeneration":1,"lastTransitionTime":"2026-11-26T23:00:00Z","reason":"Allocated","message":"a \"b\""},{"type":"B"}]}}"#;
        for strict in [true, false] {
            let status = status_of(text, strict);
            let (raw, condition) = status.first_condition.expect("read in passing");
            assert!(
                raw.text.starts_with(r#"{"type":"IPsAllocated""#),
                "{}",
                raw.text
            );
            assert!(
                raw.text.ends_with(r#""message":"a \"b\""}"#),
                "{}",
                raw.text
            );
            assert_eq!(Some(condition), Condition::read(raw));
        }
        // The last of repeated keys wins, its first condition too; a list that is not one has none.
        let text = r#"{"status":{"conditions":[{"type":"A"}],"conditions":[{"type":"B"}]}}"#;
        let (_, condition) = status_of(text, true).first_condition.expect("read");
        assert_eq!(condition.r#type.str().map(|t| t.decode()), Some("B".into()));
        let text = r#"{"status":{"conditions":[{"type":"A"}],"conditions":7}}"#;
        assert!(status_of(text, true).first_condition.is_none());
        // Not read in passing: an unknown or repeated key, a container value, a first item
        // that is not an object (the rules read such items from their text).
        for text in [
            r#"{"status":{"conditions":[{"type":"A","colour":"red"}]}}"#,
            r#"{"status":{"conditions":[{"type":"A","type":"B"}]}}"#,
            r#"{"status":{"conditions":[{"type":"A","reason":{}}]}}"#,
            r#"{"status":{"conditions":[1,{"type":"A"}]}}"#,
        ] {
            assert!(status_of(text, true).first_condition.is_none(), "{text}");
        }
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
        let json = r#"{"\u0073pec":{"\u0066o\u006f":1},"spec":{"b\u0061r":1}}"#;
        // The first `spec` is replaced by the second: its unknown field is gone with it.
        assert_eq!(issues(json), [duplicate("spec"), unknown("spec.bar")]);
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
    fn reports_a_triple_key_once() {
        let json = r#"{"spec":{"network":"a","network":"b","network":"c"}}"#;
        assert_eq!(issues(json), [duplicate("spec.network")]);
    }

    // Regression: the path of each issue was written whole, so many issues below a huge key
    // cost the key's length each (quadratic in the input).
    #[test]
    fn keeps_the_start_of_a_long_path_and_its_whole_length() {
        let key = format!(
            "{}é{}",
            "k".repeat(MAX_PATH_BYTES - 30),
            "k".repeat(1 << 20)
        );
        let json = format!(
            r#"{{"metadata":{{"managedFields":[{{"fieldsV1":{{"{key}":{{"a":1,"a":2,"a":3}}}}}}]}}}}"#
        );
        let found = check(json.as_bytes()).expect("well-formed");
        let whole = format!("metadata.managedFields[0].fieldsV1.{key}.a");
        // The key is there three times: one path, named once.
        assert_eq!(found.len(), 1);
        let issue = found.first().next().expect("one issue");
        assert_eq!(issue.kind, IssueKind::Duplicate);
        assert_eq!(issue.path_len, whole.len());
        assert!(issue.path.len() <= MAX_PATH_BYTES);
        assert!(
            issue.path.len() >= MAX_PATH_BYTES - 1,
            "cut on a character boundary"
        );
        assert!(whole.starts_with(&issue.path));
        // A short path is kept whole.
        let found = check(br#"{"spec":{"foo":1}}"#).expect("well-formed");
        let issue = found.first().next().expect("one issue");
        assert_eq!((issue.path.as_str(), issue.path_len), ("spec.foo", 8));
    }

    #[test]
    fn a_cut_path_is_the_start_of_the_path_even_across_a_wide_character() {
        // The key fills the room but for one byte, which the next character does not fit in:
        // nothing after the cut may be written, not even the dot and index that follow.
        let prefix = "metadata.labels.";
        let key = format!("{}é", "k".repeat(MAX_PATH_BYTES - prefix.len() - 1));
        let json = format!(r#"{{"metadata":{{"labels":{{"{key}":{{"a":1,"a":2}}}}}}}}"#);
        let found = check(json.as_bytes()).expect("well-formed");
        let issue = found.first().next().expect("one issue");
        let whole = format!("{prefix}{key}.a");
        assert_eq!(issue.path_len, whole.len());
        assert!(whole.starts_with(&issue.path), "{}", issue.path);
        assert_eq!(issue.path.len(), MAX_PATH_BYTES - 1);
    }

    #[test]
    fn repeated_unknown_key_is_a_duplicate_then_unknown_once() {
        let json = r#"{"spec":{"foo":1,"foo":2,"foo":3}}"#;
        assert_eq!(issues(json), [duplicate("spec.foo"), unknown("spec.foo")]);
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
        labels.push("\"k5\":\"v\"".into());
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
                duplicate("metadata.labels.k5"),
                duplicate("metadata.labels.k39"),
                duplicate("metadata.labels")
            ]
        );
    }

    // DESIGN §4's worked example of the API server's order.
    #[test]
    fn lists_issues_in_the_api_servers_order() {
        let json = r#"{"zzz":1,"metadata":{"name":"a","zeta":1,"alpha":2,"labels":{"a":"1","a":"2"}},
            "spec":{"network":"n","interface":"a","interface":"b","zeta":1,"Alpha":2},
            "status":{"ips":[],"b":1},"aaa":1}"#;
        assert_eq!(
            issues(json),
            [
                duplicate("metadata.labels.a"),
                duplicate("spec.interface"),
                unknown("metadata.alpha"),
                unknown("metadata.zeta"),
                unknown("aaa"),
                unknown("spec.Alpha"),
                unknown("spec.zeta"),
                unknown("status.b"),
                unknown("zzz"),
            ]
        );
    }

    // Issue 16, as measured on kube-apiserver 1.28: unknown fields sorted, not in document
    // order.
    #[test]
    fn sorts_unknown_fields() {
        let json = r#"{"spec":{"network":"n","interface":"i","foo":1,"bar":{"x":1}}}"#;
        assert_eq!(issues(json), [unknown("spec.bar"), unknown("spec.foo")]);
    }

    // Issue 16: duplicates before unknown fields, wherever they are.
    #[test]
    fn lists_duplicates_before_unknown_fields() {
        let json = r#"{"spec":{"network":"n","interface":"i","foo":1,"network":"blue"}}"#;
        assert_eq!(
            issues(json),
            [duplicate("spec.network"), unknown("spec.foo")]
        );
    }

    // Issue 16: `labels` twice, each with `a` twice: the duplicate inside comes first (a
    // decoder finds `labels` repeated once it has read its value), and each path once.
    #[test]
    fn names_each_duplicate_path_once_inner_first() {
        let json =
            r#"{"metadata":{"name":"x","labels":{"a":"1","a":"2"},"labels":{"a":"1","a":"2"}}}"#;
        assert_eq!(
            issues(json),
            [duplicate("metadata.labels.a"), duplicate("metadata.labels")]
        );
        let json = r#"{"spec":{"network":"a"},"spec":{"network":"b","network":"c"}}"#;
        assert_eq!(issues(json), [duplicate("spec.network"), duplicate("spec")]);
    }

    #[test]
    fn names_a_path_reached_through_dotted_keys_once() {
        // `a.b` then `c`, and `a` then `b.c`: one path as the API server names it.
        let json = r#"{"metadata":{"managedFields":[{"fieldsV1":{"a.b":{"c":1,"c":2},"a":{"b.c":1,"b.c":2}}}]}}"#;
        assert_eq!(
            issues(json),
            [duplicate("metadata.managedFields[0].fieldsV1.a.b.c")]
        );
    }

    #[test]
    fn drops_the_unknown_fields_of_a_replaced_value() {
        // Unknown fields at every depth of the first `status`, which the second replaces; and
        // of the first `metadata`.
        let json = r#"{"metadata":{"nmae":1,"ownerReferences":[{"bogus":1}]},
            "status":{"ips":[],"x":1,"ownerPod":{"age":1},"conditions":[{"colour":1}]},
            "metadata":{"name":"a","managedFields":[{"extra":1}]},
            "status":{"ips":[],"conditions":[{"type":"A"},{"size":2}]}}"#;
        assert_eq!(
            issues(json),
            [
                duplicate("metadata"),
                duplicate("status"),
                unknown("metadata.managedFields[0].extra"),
                unknown("status.conditions[1].size"),
            ]
        );
        // A replaced member of a deeper object, and a value replaced by one of another type.
        let json = r#"{"status":{"ownerPod":{"age":1},"ips":[],"ownerPod":{"name":"p"},
            "conditions":[{"colour":1}],"conditions":null}}"#;
        assert_eq!(
            issues(json),
            [duplicate("status.ownerPod"), duplicate("status.conditions")]
        );
    }

    #[test]
    fn keeps_the_unknown_fields_of_the_last_value_only() {
        // The last value wins even when an earlier one filled the list of the first ones:
        // those it pushed out must come back.
        let early: Vec<String> = (0..150).map(|i| format!("\"a{i:03}\":1")).collect();
        let late: Vec<String> = (0..150).map(|i| format!("\"b{i:03}\":1")).collect();
        let json = format!(
            r#"{{"spec":{{{}}},"zzz":1,"spec":{{{}}}}}"#,
            early.join(","),
            late.join(",")
        );
        let found = check(json.as_bytes()).expect("well-formed");
        assert_eq!(found.len(), 1 + 150 + 1);
        let first: Vec<String> = found.first().map(ToString::to_string).collect();
        assert_eq!(first.len(), 1 + KEPT);
        assert_eq!(first[0], duplicate("spec"));
        assert_eq!(first[1], unknown("spec.b000"));
        assert_eq!(first[KEPT], unknown(&format!("spec.b{:03}", KEPT - 1)));
        assert_eq!(found.unknown_fields().len(), KEPT);
    }

    #[test]
    fn keeps_the_first_unknown_fields_in_order_and_counts_the_rest() {
        // In reverse order, so that each one found replaces the largest one kept.
        let keys: Vec<String> = (0..10_000)
            .rev()
            .map(|i| format!("\"k{i:05}\":1"))
            .collect();
        let json = format!(
            r#"{{"status":{{"ips":[],{}}},"metadata":{{"zz":1}}}}"#,
            keys.join(",")
        );
        let found = check(json.as_bytes()).expect("well-formed");
        assert_eq!(found.len(), 10_001);
        let first: Vec<String> = found.first().map(ToString::to_string).collect();
        assert_eq!(first.len(), KEPT);
        assert_eq!(first[0], unknown("metadata.zz"));
        let expected: Vec<String> = (0..KEPT - 1)
            .map(|i| unknown(&format!("status.k{i:05}")))
            .collect();
        assert_eq!(first[1..], expected[..]);
    }

    #[test]
    fn counts_every_distinct_duplicate_and_keeps_the_first() {
        // Three of each key: each path once, in the order found; the unknown fields after them
        // are counted, and still kept for the drift metric.
        let keys: Vec<String> = (0..1000)
            .flat_map(|i| std::iter::repeat_n(format!("\"k{i}\":1"), 3))
            .collect();
        let json = format!(
            r#"{{"metadata":{{"annotations":{{{}}}}},"spec":{{"foo":1}}}}"#,
            keys.join(",")
        );
        let found = check(json.as_bytes()).expect("well-formed");
        assert_eq!(found.len(), 1000 + 1);
        let first: Vec<String> = found.first().map(ToString::to_string).collect();
        let expected: Vec<String> = (0..KEPT)
            .map(|i| duplicate(&format!("metadata.annotations.k{i}")))
            .collect();
        assert_eq!(first, expected);
        assert_eq!(found.unknown_fields()[0].to_string(), unknown("spec.foo"));
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
    fn structural_characters_in_strings_do_not_confuse_the_walk() {
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
                matches!(check(json.as_bytes()), Err(StrictError::Malformed(_))),
                "{json:?} accepted"
            );
            // The walk reads with serde_json, so its grammar is serde_json's.
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
                matches!(result, Err(StrictError::Malformed(_))),
                "prefix of {end} bytes gave {result:?}"
            );
        }
        assert!(check(bytes).expect("whole sample").is_empty());
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
                matches!(check(bytes), Err(StrictError::Malformed(_))),
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
        // Unclosed, as a hostile client might send it: refused, not a crash. Past the limit
        // the rest is skipped by serde_json's iterative skipper, which finds the end missing.
        let json = "{\"a\":".repeat(10_000);
        assert!(matches!(
            check(json.as_bytes()),
            Err(StrictError::Malformed(_))
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
    fn free_content_is_walked_to_the_same_depth_and_names_items() {
        // fieldsV1 sits five containers deep: one more than `accepts_nesting_at_max_depth`.
        for (open, close) in [("{\"f\":", "}"), ("[", "]")] {
            let json = format!(
                "{{\"metadata\":{{\"managedFields\":[{{\"fieldsV1\":{}{{}}{}}}]}}}}",
                open.repeat(MAX_DEPTH - 4),
                close.repeat(MAX_DEPTH - 4)
            );
            assert!(
                matches!(
                    check(json.as_bytes()),
                    Err(StrictError::TooDeep { max: MAX_DEPTH })
                ),
                "{open}"
            );
        }
        let json = r#"{"metadata":{"managedFields":[{"fieldsV1":{"a":[1,{"b":1,"b":2}]}}]}}"#;
        assert_eq!(
            issues(json),
            [duplicate("metadata.managedFields[0].fieldsV1.a[1].b")]
        );
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
            path_len: 8,
        };
        assert_eq!(issue.to_string(), "unknown field \"spec.foo\"");
        let issue = Issue {
            kind: IssueKind::Duplicate,
            path: "spec.network".into(),
            path_len: 12,
        };
        assert_eq!(issue.to_string(), "duplicate field \"spec.network\"");
        assert_eq!(
            StrictError::Malformed("EOF while parsing a value at line 1 column 0".into())
                .to_string(),
            "malformed JSON: EOF while parsing a value at line 1 column 0"
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
                let ours: BTreeSet<&str> = fields.declared.iter().map(|d| d.name).collect();
                let theirs: BTreeSet<&str> = props.keys().map(String::as_str).collect();
                assert_eq!(ours, theirs, "fields of {path}: strict schema vs CRD");
                for d in fields.declared {
                    let name = d.name;
                    assert_same_shape(&d.node, &props[name], &format!("{path}.{name}"));
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
                    assert!(
                        fields.declared.len() <= 64,
                        "one bit per field in Keys::declared"
                    );
                    fields.declared.iter().for_each(|d| walk(&d.node));
                }
                Node::List(item) => walk(item),
                Node::Map | Node::Free | Node::Leaf => {}
            }
        }
        walk(&ROOT);
    }

    #[test]
    fn keys_are_recognised_as_declared_fields_however_written() {
        fn read(fields: &Fields, key: &str) -> (String, Option<usize>, &'static str) {
            let text = format!("{key} : 1");
            let text: &'static str = Box::leak(text.into_boxed_str());
            let mut reader = Reader::new(text);
            let (read, found) = fields.read_key(&mut reader).expect("a key");
            (read.decode().into_owned(), found, &text[reader.pos()..])
        }
        fn check(fields: &Fields) {
            for (i, declared) in fields.declared.iter().enumerate() {
                let name = declared.name;
                let escaped: String = name
                    .chars()
                    .map(|c| format!("\\u{:04x}", c as u32))
                    .collect();
                for key in [format!("\"{name}\""), format!("\"{escaped}\"")] {
                    assert_eq!(
                        read(fields, &key),
                        (name.to_owned(), Some(i), " 1"),
                        "{key}"
                    );
                }
                // Keys that start like a declared one, or that it starts like, are not it.
                for other in [
                    &name[..name.len() - 1],
                    &format!("{name}s"),
                    &format!("{name}\\n"),
                ] {
                    let key = format!("\"{other}\"");
                    let found =
                        fields.find(serde_json::from_str::<String>(&key).unwrap().as_bytes());
                    assert_eq!(read(fields, &key).1, found, "{key}");
                    assert_ne!(found, Some(i), "{key}");
                }
            }
        }
        fn walk(node: &Node) {
            match node {
                Node::Object(fields) => {
                    check(fields);
                    fields.declared.iter().for_each(|d| walk(&d.node));
                }
                Node::List(item) => walk(item),
                Node::Map | Node::Free | Node::Leaf => {}
            }
        }
        walk(&ROOT);
        // A key that is no key is refused, not taken for a field.
        let Node::Object(fields) = &ROOT else {
            unreachable!()
        };
        for text in [r#""kind"1"#, r#""kind"#, r#"kind":1"#] {
            assert!(fields.read_key(&mut Reader::new(text)).is_err(), "{text}");
        }
    }

    #[test]
    fn schema_matches_generated_crd() {
        let crd = crate::admission::model::types::IPAMClaim::crd();
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("CRD has a schema");
        let props = schema.properties.as_ref().expect("root properties");
        let Node::Object(root) = &ROOT else {
            panic!("root is an object")
        };
        let ours: BTreeSet<&str> = root.declared.iter().map(|d| d.name).collect();
        let theirs: BTreeSet<&str> = props.keys().map(String::as_str).collect();
        // The generated root declares spec and status; the rest is standard for every kind.
        assert!(ours.is_superset(&theirs), "{theirs:?} not all in {ours:?}");
        for d in root.declared {
            if matches!(d.name, "spec" | "status") {
                assert_same_shape(&d.node, &props[d.name], d.name);
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

    /// The members of a condition, and keys that are not.
    const CONDITION_KEYS: &[&str] = &[
        "type",
        "status",
        "observedGeneration",
        "lastTransitionTime",
        "reason",
        "message",
        "colour",
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

    // --- a model of the API server's order (DESIGN §4), written apart from the walk ---

    /// The IPAMClaim schema as the model sees it: `spec` and `status` read from the generated
    /// CRD, `metadata` written out from `metav1.ObjectMeta`. Not the walk's [`Node`] table.
    #[derive(Clone, Debug)]
    enum Shape {
        /// An object with these fields; any other key is unknown.
        Fields(BTreeMap<String, Shape>),
        /// A list of these.
        Items(Box<Shape>),
        /// A string map (labels, annotations): any key; a list here is of the wrong type.
        Strings,
        /// Free-form content (`fieldsV1`): any key, at any depth, in objects or lists.
        Anything,
        /// A scalar.
        Scalar,
    }

    fn fields(members: &[(&str, Shape)]) -> Shape {
        Shape::Fields(
            members
                .iter()
                .map(|(name, shape)| (name.to_string(), shape.clone()))
                .collect(),
        )
    }

    fn shape_of(schema: &JSONSchemaProps) -> Shape {
        match (schema.type_.as_deref(), &schema.properties, &schema.items) {
            (Some("object"), Some(props), _) => Shape::Fields(
                props
                    .iter()
                    .map(|(name, prop)| (name.clone(), shape_of(prop)))
                    .collect(),
            ),
            (Some("object"), None, _) => Shape::Anything,
            (Some("array"), _, Some(JSONSchemaPropsOrArray::Schema(items))) => {
                Shape::Items(Box::new(shape_of(items)))
            }
            _ => Shape::Scalar,
        }
    }

    fn claim_shape() -> &'static Shape {
        static SHAPE: std::sync::OnceLock<Shape> = std::sync::OnceLock::new();
        SHAPE.get_or_init(read_claim_shape)
    }

    fn read_claim_shape() -> Shape {
        let crd = crate::admission::model::types::IPAMClaim::crd();
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("CRD has a schema");
        let props = schema.properties.as_ref().expect("root properties");
        let scalar = || Shape::Scalar;
        let owner_reference = fields(&[
            ("apiVersion", scalar()),
            ("kind", scalar()),
            ("name", scalar()),
            ("uid", scalar()),
            ("controller", scalar()),
            ("blockOwnerDeletion", scalar()),
        ]);
        let managed_fields_entry = fields(&[
            ("manager", scalar()),
            ("operation", scalar()),
            ("apiVersion", scalar()),
            ("time", scalar()),
            ("fieldsType", scalar()),
            ("fieldsV1", Shape::Anything),
            ("subresource", scalar()),
        ]);
        let mut metadata = vec![
            ("labels", Shape::Strings),
            ("annotations", Shape::Strings),
            ("ownerReferences", Shape::Items(Box::new(owner_reference))),
            ("finalizers", Shape::Items(Box::new(scalar()))),
            (
                "managedFields",
                Shape::Items(Box::new(managed_fields_entry)),
            ),
        ];
        for name in [
            "name",
            "generateName",
            "namespace",
            "selfLink",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            metadata.push((name, scalar()));
        }
        fields(&[
            ("apiVersion", scalar()),
            ("kind", scalar()),
            ("metadata", fields(&metadata)),
            ("spec", shape_of(&props["spec"])),
            ("status", shape_of(&props["status"])),
        ])
    }

    /// The shape of the members (`Ok`) or items (`Err`) of `value`, when `shape` takes a
    /// value of its type; `None` for a value of the wrong type, whose keys are not fields.
    fn inside<'s>(shape: &'s Shape, value: &Json) -> Option<Result<&'s Shape, &'s Shape>> {
        match (shape, value) {
            (Shape::Fields(_), Json::Object(_)) => Some(Ok(shape)),
            (Shape::Strings | Shape::Anything, Json::Object(_)) => Some(Ok(&Shape::Anything)),
            (Shape::Items(item), Json::Array(_)) => Some(Err(item)),
            (Shape::Anything, Json::Array(_)) => Some(Err(&Shape::Anything)),
            _ => None,
        }
    }

    fn join(path: &str, key: &str) -> String {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    }

    /// The duplicate keys of `value` as a decoder finds them: a key once its value was read.
    /// `shape` is `None` below an unknown field.
    fn model_duplicates(shape: Option<&Shape>, value: &Json, path: &str, out: &mut Vec<String>) {
        match (shape.and_then(|s| inside(s, value)), value) {
            (Some(Ok(object)), Json::Object(members)) => {
                let mut keys = HashSet::new();
                for (key, _, value) in members {
                    let child = match object {
                        Shape::Fields(declared) => declared.get(key),
                        _ => Some(&Shape::Anything),
                    };
                    let child_path = join(path, key);
                    model_duplicates(child, value, &child_path, out);
                    if !keys.insert(key) {
                        out.push(child_path);
                    }
                }
            }
            (Some(Err(item)), Json::Array(items)) => {
                for (i, value) in items.iter().enumerate() {
                    model_duplicates(Some(item), value, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }

    /// A JSON value as the API server decodes it: the last of equal keys wins.
    enum Tree {
        Scalar,
        Array(Vec<Tree>),
        Object(BTreeMap<String, Tree>),
    }

    fn decode(value: &Json) -> Tree {
        match value {
            Json::Scalar(_) => Tree::Scalar,
            Json::Array(items) => Tree::Array(items.iter().map(decode).collect()),
            Json::Object(members) => Tree::Object(
                members
                    .iter()
                    .map(|(key, _, value)| (key.clone(), decode(value)))
                    .collect(),
            ),
        }
    }

    /// The unknown fields of a decoded value: keys an object's schema does not declare.
    fn model_unknowns(shape: &Shape, value: &Tree, path: &str, out: &mut Vec<String>) {
        match (shape, value) {
            (Shape::Fields(declared), Tree::Object(members)) => {
                for (key, value) in members {
                    let child_path = join(path, key);
                    match declared.get(key) {
                        Some(child) => model_unknowns(child, value, &child_path, out),
                        None => out.push(child_path),
                    }
                }
            }
            (Shape::Items(item), Tree::Array(items)) => {
                for (i, value) in items.iter().enumerate() {
                    model_unknowns(item, value, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }

    /// Every field-validation error of `root` in the API server's order: the duplicates (each
    /// path once, the first time), then the unknown fields of the decoded object, those of
    /// `metadata` sorted, then the others sorted.
    fn model(root: &Json) -> Vec<String> {
        let shape = claim_shape();
        let mut duplicates = Vec::new();
        model_duplicates(Some(shape), root, "", &mut duplicates);
        let mut named = HashSet::new();
        duplicates.retain(|path| named.insert(path.clone()));
        let (mut of_metadata, mut others) = (Vec::new(), Vec::new());
        if let (Shape::Fields(declared), Tree::Object(members)) = (shape, decode(root)) {
            for (key, value) in &members {
                match declared.get(key) {
                    Some(child) if key == "metadata" => {
                        model_unknowns(child, value, key, &mut of_metadata)
                    }
                    Some(child) => model_unknowns(child, value, key, &mut others),
                    None => others.push(key.clone()),
                }
            }
        }
        of_metadata.sort();
        others.sort();
        let duplicates = duplicates.iter().map(|p| duplicate(p));
        let unknowns = of_metadata.iter().chain(&others).map(|p| unknown(p));
        duplicates.chain(unknowns).collect()
    }

    /// Checks the walk of `text` against the model of `root`: every error counted, the first
    /// ones listed in order, the first unknown fields kept.
    fn assert_walk_matches_model(root: &Json, text: &str) -> Result<(), TestCaseError> {
        let want = model(root);
        let found = check(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
        prop_assert_eq!(found.len(), want.len(), "{}", text);
        let first: Vec<String> = found.first().map(ToString::to_string).collect();
        prop_assert_eq!(&first[..], &want[..first.len()], "{}", text);
        // Only what cannot be listed anyway is left out of the list.
        prop_assert!(first.len() == want.len() || first.len() >= KEPT, "{}", text);
        let unknowns: Vec<String> = want
            .iter()
            .filter(|e| e.starts_with("unknown"))
            .take(KEPT)
            .cloned()
            .collect();
        let kept: Vec<String> = found
            .unknown_fields()
            .iter()
            .map(|i| i.to_string())
            .collect();
        prop_assert_eq!(kept, unknowns, "{}", text);
        Ok(())
    }

    /// A small deterministic generator (SplitMix64): a failing case is named by its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn one_in(&mut self, n: u64) -> bool {
            self.next().is_multiple_of(n)
        }
    }

    /// Keys no object of the schema declares, or one declares elsewhere: sorting around each
    /// other (case, dots, brackets, non-ASCII), and the names of other levels.
    const STRANGERS: &[&str] = &[
        "foo",
        "Foo",
        "alpha",
        "Alpha",
        "zeta",
        "a.b",
        "ownerPod.name",
        "conditions[0]",
        "",
        "\u{e9}",
        "\u{1f600}",
        "a\"}],:\\",
        "spec",
        "metadata",
        "labels",
        "type",
        "name",
        "ips",
    ];

    /// Keys of maps and free-form content, few so that they repeat.
    const MAP_KEYS: &[&str] = &["a", "b", "a.b", "f:spec", ""];

    /// An object or list of no schema, with repeated keys at any depth.
    fn free_value(rng: &mut Rng, depth: usize) -> Json {
        if depth > 8 || rng.one_in(3) {
            return Json::Scalar(SCALARS[rng.below(SCALARS.len())]);
        }
        if rng.one_in(3) {
            return Json::Array(
                (0..rng.below(3))
                    .map(|_| free_value(rng, depth + 1))
                    .collect(),
            );
        }
        Json::Object(
            (0..rng.below(4))
                .map(|_| {
                    let key = MAP_KEYS[rng.below(MAP_KEYS.len())].to_owned();
                    (key, rng.one_in(6), free_value(rng, depth + 1))
                })
                .collect(),
        )
    }

    /// A value for `shape`: mostly of its type, with unknown keys and repeated keys (whose
    /// earlier value is replaced) in every object, sometimes of the wrong type.
    fn generate(shape: &Shape, rng: &mut Rng, depth: usize) -> Json {
        if depth > 10 {
            return Json::Scalar("1");
        }
        if depth > 0 && rng.one_in(12) {
            // The wrong type: a container where none fits, or a scalar.
            return match shape {
                Shape::Items(_) | Shape::Scalar => free_value(rng, depth),
                _ => Json::Array(vec![free_value(rng, depth + 1)]),
            };
        }
        match shape {
            Shape::Fields(declared) => {
                let mut members: Vec<(String, bool, Json)> = Vec::new();
                for (name, child) in declared {
                    if rng.one_in(2) {
                        members.push((
                            name.clone(),
                            rng.one_in(8),
                            generate(child, rng, depth + 1),
                        ));
                    }
                }
                for _ in 0..rng.below(3) {
                    let key = STRANGERS[rng.below(STRANGERS.len())];
                    if !declared.contains_key(key) {
                        members.push((key.to_owned(), rng.one_in(8), free_value(rng, depth + 1)));
                    }
                }
                for i in (1..members.len()).rev() {
                    members.swap(i, rng.below(i + 1));
                }
                for _ in 0..rng.below(3) {
                    if members.is_empty() {
                        break;
                    }
                    let key = members[rng.below(members.len())].0.clone();
                    let value = match declared.get(&key) {
                        Some(child) => generate(child, rng, depth + 1),
                        None => free_value(rng, depth + 1),
                    };
                    let at = rng.below(members.len() + 1);
                    members.insert(at, (key, rng.one_in(8), value));
                }
                Json::Object(members)
            }
            Shape::Items(item) => Json::Array(
                (0..rng.below(4))
                    .map(|_| generate(item, rng, depth + 1))
                    .collect(),
            ),
            Shape::Strings => Json::Object(
                (0..rng.below(5))
                    .map(|_| {
                        let key = MAP_KEYS[rng.below(MAP_KEYS.len())].to_owned();
                        let value = if rng.one_in(4) {
                            free_value(rng, depth + 1)
                        } else {
                            Json::Scalar("\"v\"")
                        };
                        (key, rng.one_in(8), value)
                    })
                    .collect(),
            ),
            Shape::Anything => free_value(rng, depth),
            Shape::Scalar => Json::Scalar(SCALARS[rng.below(SCALARS.len())]),
        }
    }

    /// A claim from `seed`, with unknown and repeated keys at every depth of the schema.
    fn generated_claim(seed: u64) -> Json {
        generate(claim_shape(), &mut Rng(seed), 0)
    }

    /// The unknown fields of every value, replaced or not, each key once per object: what the
    /// list would hold if a replaced value's unknown fields counted.
    fn unknowns_of_every_value(shape: &Shape, value: &Json, path: &str, out: &mut Vec<String>) {
        match (shape, value) {
            (Shape::Fields(declared), Json::Object(members)) => {
                let mut keys = HashSet::new();
                for (key, _, value) in members {
                    let child_path = join(path, key);
                    match declared.get(key) {
                        Some(child) => unknowns_of_every_value(child, value, &child_path, out),
                        None if keys.insert(key) => out.push(child_path),
                        None => {}
                    }
                }
            }
            (Shape::Items(item), Json::Array(items)) => {
                for (i, value) in items.iter().enumerate() {
                    unknowns_of_every_value(item, value, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }

    /// A path with its list indices and last key taken off: the object of the schema it is in.
    fn place(path: &str) -> String {
        let mut place = String::new();
        let mut in_index = false;
        for c in path.chars() {
            match c {
                '[' => {
                    in_index = true;
                    place.push_str("[]");
                }
                ']' => in_index = false,
                _ if !in_index => place.push(c),
                _ => {}
            }
        }
        place
            .rsplit_once('.')
            .map_or(String::new(), |(head, _)| head.to_owned())
    }

    // The generator is what makes the property test mean something: it must put unknown and
    // repeated keys in every object of the schema, and unknown fields in values that a later
    // key replaces.
    #[test]
    fn generated_claims_reach_every_object_of_the_schema() {
        let objects = [
            "",
            "metadata",
            "metadata.ownerReferences[]",
            "metadata.managedFields[]",
            "spec",
            "status",
            "status.ownerPod",
            "status.conditions[]",
        ];
        let mut unknown_in = BTreeSet::new();
        let mut duplicate_in = BTreeSet::new();
        let mut replaced = 0;
        let mut free_duplicates = 0;
        let shape = claim_shape();
        for seed in 0..3000 {
            let root = generated_claim(seed);
            for error in model(&root) {
                let path = error.split('"').nth(1).unwrap_or_default().to_owned();
                if error.starts_with("unknown") {
                    unknown_in.insert(place(&path));
                } else {
                    if path.contains("fieldsV1.") || path.contains("labels.") {
                        free_duplicates += 1;
                    }
                    duplicate_in.insert(place(&path));
                }
            }
            let mut every = Vec::new();
            unknowns_of_every_value(shape, &root, "", &mut every);
            let kept = model(&root)
                .iter()
                .filter(|e| e.starts_with("unknown"))
                .count();
            replaced += usize::from(every.len() > kept);
        }
        for object in objects {
            assert!(
                unknown_in.contains(object),
                "no unknown field in {object:?}"
            );
            assert!(duplicate_in.contains(object), "no duplicate in {object:?}");
        }
        assert!(
            replaced > 300,
            "unknown fields dropped with their value in {replaced} claims"
        );
        assert!(
            free_duplicates > 300,
            "{free_duplicates} duplicates in maps"
        );
    }

    /// What the view must hold: the full decode with only the members rules read.
    fn kept_part_of(full: Value) -> Value {
        fn retain(value: Option<&mut Value>, keys: &[&str]) {
            if let Some(Value::Object(obj)) = value {
                obj.retain(|k, _| keys.contains(&k.as_str()));
            }
        }
        let Value::Object(mut obj) = full else {
            return full;
        };
        obj.retain(|k, _| matches!(k.as_str(), "metadata" | "spec" | "status"));
        retain(obj.get_mut("metadata"), &["name", "generateName", "labels"]);
        retain(obj.get_mut("spec"), &["network", "interface", "ipRequests"]);
        retain(obj.get_mut("status"), &["ips", "ownerPod", "conditions"]);
        if let Some(status) = obj.get_mut("status") {
            retain(status.get_mut("ownerPod"), &["name"]);
        }
        Value::Object(obj)
    }

    /// A value kept as text, decoded by serde_json.
    fn decoded(raw: Raw<'_>) -> Value {
        serde_json::from_str(raw.text).expect("kept text decodes")
    }

    /// A field of the view as a member of a JSON object (`None`: no member).
    fn member_of<T>(field: &Field<'_, T>, value: impl Fn(&T) -> Value) -> Option<Value> {
        match field {
            Field::Absent => None,
            Field::Null => Some(Value::Null),
            Field::Value(v) => Some(value(v)),
            Field::Other(raw) => {
                assert_ne!(raw.kind, json::Kind::Null, "null is Field::Null");
                Some(decoded(*raw))
            }
        }
    }

    fn object_of(members: &[(&str, Option<Value>)]) -> Value {
        Value::Object(
            members
                .iter()
                .filter_map(|(k, v)| Some(((*k).to_owned(), v.clone()?)))
                .collect(),
        )
    }

    fn str_of(s: &Str<'_>) -> Value {
        Value::String(s.decode().into_owned())
    }

    fn list_of(list: &List<'_>) -> Value {
        let value = decoded(list.raw);
        assert_eq!(
            value.as_array().map(Vec::len),
            Some(list.len),
            "list length"
        );
        assert_eq!(list.items().count(), list.len, "items of {}", list.raw.text);
        value
    }

    /// The view the walk made, as a JSON value of the members it holds.
    fn view_value(claim: &Claim<'_>) -> Value {
        if !claim.is_object() {
            return decoded(claim.raw);
        }
        let metadata = member_of(&claim.metadata, |m| {
            object_of(&[
                ("name", member_of(&m.name, str_of)),
                ("generateName", member_of(&m.generate_name, str_of)),
                ("labels", member_of(&m.labels, |l| decoded(*l))),
            ])
        });
        let spec = member_of(&claim.spec, |s| {
            object_of(&[
                ("network", member_of(&s.network, str_of)),
                ("interface", member_of(&s.interface, str_of)),
                ("ipRequests", member_of(&s.ip_requests, list_of)),
            ])
        });
        let status = member_of(&claim.status, |s| {
            let owner_pod = member_of(&s.owner_pod, |o| {
                object_of(&[("name", member_of(&o.name, str_of))])
            });
            object_of(&[
                ("ips", member_of(&s.ips, list_of)),
                ("ownerPod", owner_pod),
                ("conditions", member_of(&s.conditions, list_of)),
            ])
        });
        object_of(&[("metadata", metadata), ("spec", spec), ("status", status)])
    }

    /// Both walks keep what a full decode holds of the read members: the typed members, the
    /// whole object's text and the whole `spec`'s text.
    fn assert_keeps_like_full(text: &str) {
        let full = serde_json::from_str::<Value>(text).expect("decodes");
        for strict in [true, false] {
            let walked = walk(text, strict).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(
                view_value(&walked.claim),
                kept_part_of(full.clone()),
                "{text}"
            );
            assert_eq!(decoded(walked.claim.raw), full, "{text}");
            if let Field::Value(spec) = walked.claim.spec {
                assert_eq!(Some(&decoded(spec.raw)), full.get("spec"), "{text}");
            }
            assert!(!walked.too_deep);
        }
    }

    fn fixture_objects(dir: &std::path::Path, out: &mut Vec<(String, Option<String>)>) {
        for entry in std::fs::read_dir(dir).expect("read fixtures") {
            let path = entry.expect("fixture entry").path();
            if path.is_dir() {
                fixture_objects(&path, out);
                continue;
            }
            if !path.to_string_lossy().ends_with(".request.json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read fixture");
            let Ok(review) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let object = review.pointer("/request/object").map(Value::to_string);
            let old = review.pointer("/request/oldObject").map(Value::to_string);
            if let Some(object) = object {
                out.push((object, old));
            }
        }
    }

    #[test]
    fn walk_judges_every_fixture_like_a_full_decode() {
        use crate::admission::rules::validation::validate;
        let mut objects = Vec::new();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        fixture_objects(&dir, &mut objects);
        assert!(
            objects.len() > 50,
            "found {} fixture objects",
            objects.len()
        );
        for (object, old) in &objects {
            if !matches!(serde_json::from_str::<Value>(object), Ok(Value::Object(_))) {
                continue;
            }
            assert_keeps_like_full(object);
            // The reference: the text serde_json writes of its own decode (no repeated key,
            // no escape it does not need, no whitespace).
            let full = |t: &str| {
                let value = serde_json::from_str::<Value>(t).expect("decodes");
                serde_json::to_string(&value).expect("writes")
            };
            let walked = |t: &'static str| walk(t, false).expect("decodes").claim;
            let leak = |t: String| -> &'static str { Box::leak(t.into_boxed_str()) };
            let (object_text, old_text) = (leak(object.clone()), old.clone().map(leak));
            let (full_object, full_old) = (leak(full(object)), old.as_deref().map(full).map(leak));
            assert_eq!(
                validate(&walked(object_text), old_text.map(walked).as_ref()),
                validate(&walked(full_object), full_old.map(walked).as_ref()),
                "{object}"
            );
        }
    }

    #[test]
    fn walk_keeps_the_last_of_duplicate_keys() {
        assert_keeps_like_full(r#"{"spec":{"network":"a"},"spec":{"network":"b"}}"#);
        assert_keeps_like_full(r#"{"metadata":{"name":"a","name":"b"},"metadata":7}"#);
        assert_keeps_like_full(r#"{"metadata":{"name":"a"},"metadata":{"uid":"u"}}"#);
    }

    #[test]
    fn walk_keeps_values_that_are_not_objects_whole() {
        for text in [
            "[1,2,{\"a\":[true,null,-1,2.5e3]}]",
            "\"text\"",
            "null",
            "-12",
            r#"{"metadata":[{"x":1},"y",1.5]}"#,
            r#"{"metadata":"name"}"#,
            r#"{"metadata":null,"spec":null}"#,
            r#"{"spec":{"a":{"b":[{"c":"\u00e9\ud83d\ude00"}]}},"status":{"ips":[]}}"#,
        ] {
            assert_keeps_like_full(text);
        }
    }

    // Regression: a strict walk reads every value, so it fails wherever a full decode fails.
    #[test]
    fn strict_walk_fails_where_a_full_decode_fails() {
        for text in [
            r#"{"metadata":{"managedFields":[{"x":1e999}]},"spec":{}}"#,
            r#"{"apiVersion":-1e400}"#,
            r#"{"metadata":{"annotations":{"a":"\ud800"}}}"#,
            r#"{"metadata":{"annotations":{"a":"\x"}}}"#,
            r#"{"metadata":{"uid":"u"}} trailing"#,
            r#"{"metadata":{"uid":"u""#,
            r#"{"kind":tru}"#,
        ] {
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
            assert!(walk(text, true).is_err(), "{text}");
            assert!(check(text.as_bytes()).is_err(), "{text}");
        }
    }

    // A plain walk (oldObject, the mutating webhook) skips the members no rule reads with
    // serde_json's skipper: their syntax is checked, their numbers' range is not, and their
    // nesting costs no recursion.
    #[test]
    fn plain_walk_checks_only_the_syntax_of_unread_members() {
        let deep = format!(
            r#"{{"metadata":{{"annotations":{{"a":{}{}}}}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        for text in [
            r#"{"metadata":{"managedFields":[{"x":1e999}]},"spec":{}}"#,
            deep.as_str(),
        ] {
            let walked = walk(text, false).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert!(!walked.too_deep, "{text}");
        }
        for text in [
            r#"{"metadata":{"uid":"u"}} trailing"#,
            r#"{"metadata":{"uid":"u""#,
            r#"{"kind":tru}"#,
            r#"{"metadata":{"annotations":{"a":"\x"}}}"#,
        ] {
            assert!(walk(text, false).is_err(), "{text}");
        }
        // What is kept is still held to the depth limit.
        let deep_label = format!(
            r#"{{"metadata":{{"labels":{{"a":{}{}}}}}}}"#,
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert!(walk(&deep_label, false).expect("well-formed").too_deep);
    }

    // serde_json gives its private raw-value key a meaning when decoding a `Value`; the walk
    // builds its values itself, so the key is an unknown field like any other.
    #[test]
    fn raw_value_marker_is_an_ordinary_key() {
        let text = r#"{"$serde_json::private::RawValue":"{\"spec\":{\"network\":\"n\"}}","metadata":{"$serde_json::private::RawValue":"{}","name":"a"}}"#;
        let walked = walk(text, true).expect("well-formed");
        assert_eq!(
            view_value(&walked.claim),
            serde_json::json!({"metadata": {"name": "a"}})
        );
        assert_eq!(
            issues(text),
            [
                unknown("metadata.$serde_json::private::RawValue"),
                unknown("$serde_json::private::RawValue"),
            ]
        );
        let spec = r#"{"spec":{"$serde_json::private::RawValue":"[1]"}}"#;
        let walked = walk(spec, false).expect("well-formed");
        assert_eq!(view_value(&walked.claim), serde_json::json!({"spec": {}}));
        let Field::Value(kept) = walked.claim.spec else {
            panic!("spec is an object");
        };
        // As text: serde_json's own decode of it would read the marker.
        assert_eq!(kept.raw.text, r#"{"$serde_json::private::RawValue":"[1]"}"#);
        assert_eq!(kept.network, Field::Absent);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        // Issue 16: the order, each path once, replaced values, against the model.
        #[test]
        fn lists_what_the_model_lists(seed in any::<u64>(), ws in prop::sample::select(&["", " ", "\n\t "][..])) {
            let root = generated_claim(seed);
            let mut text = String::new();
            write_json(&root, ws, &mut text);
            assert_walk_matches_model(&root, &text)?;
        }

        // Objects of any shape, with the schema's keys anywhere.
        #[test]
        fn lists_what_the_model_lists_for_any_keys(root in root_object(), ws in prop::sample::select(&["", " ", "\n\t "][..])) {
            let mut text = String::new();
            write_json(&root, ws, &mut text);
            assert_walk_matches_model(&root, &text)?;
        }

        // The first condition read in passing is the one the rules would read from its text.
        #[test]
        fn first_condition_is_what_its_text_reads(
            members in prop::collection::vec((prop::sample::select(CONDITION_KEYS), any::<bool>(), json_value()), 0..8),
            more in prop::collection::vec(json_value(), 0..2),
            strict in any::<bool>(),
            ws in prop::sample::select(&["", " ", "\n\t "][..]),
        ) {
            let first = Json::Object(
                members.into_iter().map(|(k, esc, v)| (k.to_owned(), esc, v)).collect(),
            );
            let mut items = vec![first];
            items.extend(more);
            let root = Json::Object(vec![(
                "status".to_owned(),
                false,
                Json::Object(vec![("conditions".to_owned(), false, Json::Array(items))]),
            )]);
            let mut text = String::new();
            write_json(&root, ws, &mut text);
            let status = status_of(&text, strict);
            let Field::Value(list) = status.conditions else {
                panic!("conditions is a list: {text}");
            };
            let item = list.items().next().expect("one item at least");
            if let Some((raw, condition)) = status.first_condition {
                prop_assert_eq!(raw, item, "{}", text);
                prop_assert_eq!(Some(condition), Condition::read(item), "{}", text);
            }
        }

        // Free-form content of any shape: read in one loop while it holds no repeated key,
        // walked again with paths once it does.
        #[test]
        fn lists_what_the_model_lists_in_fields_v1(content in json_value(), ws in prop::sample::select(&["", " ", "\n\t "][..])) {
            let entry = Json::Object(vec![
                ("manager".to_owned(), false, Json::Scalar("\"m\"")),
                ("fieldsV1".to_owned(), false, content.clone()),
                ("zeta".to_owned(), false, content),
            ]);
            let root = Json::Object(vec![(
                "metadata".to_owned(),
                false,
                Json::Object(vec![(
                    "managedFields".to_owned(),
                    false,
                    Json::Array(vec![entry.clone(), entry]),
                )]),
            )]);
            let mut text = String::new();
            write_json(&root, ws, &mut text);
            assert_walk_matches_model(&root, &text)?;
        }
    }

    proptest! {
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
