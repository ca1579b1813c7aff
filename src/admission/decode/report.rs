//! The strict walk's findings, in the API server's order and words: duplicate fields, each path
//! once, in the order a decoder finds them; then unknown fields, those of `metadata` first,
//! each list sorted and capped at [`KEPT`] paths kept in full, the rest counted.

use std::collections::BinaryHeap;
use std::fmt;

/// Longest path (in bytes) an [`Issue`] keeps: a key, or a key above it, can be megabytes
/// long, and copying it whole for each of many issues below it would cost the square of the
/// input. An answer shows at most this much of a path anyway.
pub const MAX_PATH_BYTES: usize = 2 * crate::admission::answer::gotext::MAX_ECHOED_BYTES;

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
    pub(super) duplicates: Vec<Issue>,
    /// How many distinct duplicate paths there are.
    pub(super) duplicate_count: usize,
    /// The first unknown fields: those of `metadata` sorted, then the others sorted bytewise;
    /// at most [`KEPT`].
    pub(super) unknowns: Vec<Issue>,
    /// How many unknown fields there are.
    pub(super) unknown_count: usize,
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

// === impl Issue ===

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            IssueKind::Unknown => write!(f, "unknown field \"{}\"", self.path),
            IssueKind::Duplicate => write!(f, "duplicate field \"{}\"", self.path),
        }
    }
}
/// The unknown fields below one value, as far as an answer can list them: the first [`KEPT`]
/// in the API server's order and how many there are in all. A value's list is held until the
/// object around it closes (a later duplicate key may replace the value, and its unknown
/// fields with it), then merged into that object's: the walk holds a few lists of at most
/// [`KEPT`] paths, however many unknown keys the object has. Most values have none: then it is
/// one null pointer, which the walk passes up from every value it reads.
#[derive(Default)]
pub(super) struct Unknowns(Option<Box<UnknownList>>);

/// The unknown fields below a value that has some.
#[derive(Default)]
pub(super) struct UnknownList {
    /// The first ones, largest on top, so that a smaller one replaces it.
    pub(super) first: BinaryHeap<Ranked>,
    /// How many there are.
    pub(super) count: usize,
}

/// An unknown field as the API server orders it: those of `metadata` first, then by path,
/// bytewise. A path cut to [`MAX_PATH_BYTES`] sorts by its start, then by its whole length.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Ranked {
    pub(super) outside_metadata: bool,
    pub(super) path: String,
    pub(super) path_len: usize,
}

// === impl Unknowns ===

impl Unknowns {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Adds an unknown field.
    pub(super) fn add(&mut self, in_metadata: bool, issue: Issue) {
        let list = self.0.get_or_insert_with(Box::default);
        list.count += 1;
        list.keep(Ranked {
            outside_metadata: !in_metadata,
            path: issue.path,
            path_len: issue.path_len,
        });
    }

    /// Adds the unknown fields of `other`.
    pub(super) fn merge(&mut self, other: Unknowns) {
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
    pub(super) fn into_sorted(self) -> (Vec<Issue>, usize) {
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
    pub(super) fn keep(&mut self, ranked: Ranked) {
        if self.first.len() < KEPT {
            self.first.push(ranked);
        } else if self.first.peek().is_some_and(|last| ranked < *last) {
            self.first.pop();
            self.first.push(ranked);
        }
    }
}

/// A path being written: its start, of at most [`MAX_PATH_BYTES`] bytes, and its whole length.
pub(super) struct PathText {
    pub(super) text: String,
    pub(super) len: usize,
}

// === impl PathText ===

impl PathText {
    pub(super) fn push(&mut self, part: &str) {
        // Once a part has been cut, nothing after it may follow, or the text would not be the
        // start of the path.
        let cut = self.text.len() < self.len;
        self.len += part.len();
        if !cut {
            let room = MAX_PATH_BYTES - self.text.len();
            self.text
                .push_str(crate::admission::answer::gotext::clip(part, room).0);
        }
    }
}
