//! Duplicate keys: the keys of each open object (a bitmask of declared fields, a shared vector
//! of other keys, a table of offsets past [`LINEAR_KEYS`]), and the duplicate paths found.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};

use crate::admission::decode::envelope::MAX_TEXT_BYTES;
use crate::admission::decode::report::{Issue, IssueKind, KEPT};
use crate::admission::decode::walk::{Step, Walker};
use crate::admission::json::{self, same_bytes, Str};

/// Up to this many keys an object's duplicate check is a linear scan; beyond, a hash table.
pub(super) const LINEAR_KEYS: usize = 16;

/// Whether a key was seen before in its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Repeat {
    /// Not before.
    First,
    /// Once or more, and this is the first repeat: a duplicate to report.
    Again,
    /// Reported already: the same path again.
    Reported,
}

/// The keys of one object, for its duplicate check.
pub(super) struct Keys {
    /// Which of an [`Node::Object`]'s declared fields were seen, by index.
    pub(super) declared: u64,
    /// Which of them were reported as duplicates.
    pub(super) reported: u64,
    /// Where this object's other keys start in [`Walker::seen`].
    pub(super) start: usize,
    /// Keys of a large object, once the linear scan would get slow: where each starts in the
    /// text (4 bytes a key, however long), with [`REPORTED`] set once reported.
    pub(super) large: Option<hashbrown::HashTable<u32>>,
}

/// The bit of an offset in [`Keys::large`] that marks a key reported as a duplicate.
pub(super) const REPORTED: u32 = 1 << 31;

// An offset into the text is below MAX_TEXT_BYTES (the envelope refuses longer bodies, and the
// walk's own entry points refuse longer texts), so it fits 32 bits with the top bit free for
// REPORTED: a key is never taken for a reported one, nor an offset cut.
const _: () = assert!(MAX_TEXT_BYTES < REPORTED as usize);

// === impl Keys ===

impl Keys {
    pub(super) fn open<const CLEAN: bool>(walker: &Walker<'_, CLEAN>) -> Self {
        Keys {
            declared: 0,
            reported: 0,
            start: walker.seen.len(),
            large: None,
        }
    }

    /// Marks the declared field `i` seen.
    pub(super) fn declare(&mut self, i: usize) -> Repeat {
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
    pub(super) fn remember<'a, const CLEAN: bool>(
        &mut self,
        walker: &mut Walker<'a, CLEAN>,
        key: Str<'a>,
    ) -> Repeat {
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

    pub(super) fn close<const CLEAN: bool>(self, walker: &mut Walker<'_, CLEAN>) {
        walker.seen.truncate(self.start);
    }
}

/// The hash of a key's decoded text.
pub(super) fn key_hash(state: &RandomState, key: Str<'_>) -> u64 {
    state.hash_one(key.decode().as_bytes())
}

/// Key equality: bytes compared without a call to `memcmp` when neither key is escaped.
#[inline]
pub(super) fn same_str(a: &Str<'_>, b: &Str<'_>) -> bool {
    if a.is_escaped() || b.is_escaped() {
        return a == b;
    }
    same_bytes(a.raw().as_bytes(), b.raw().as_bytes())
}

/// The duplicate fields one walk found: each path once, the first [`KEPT`] in full.
#[derive(Default)]
pub(super) struct Duplicates {
    /// One fingerprint of the path of each duplicate found (a key repeated in one object is
    /// found once): sorted and deduplicated at the end, they count the distinct paths, however
    /// often one repeats (the same key in values a later duplicate replaced, the same text
    /// reached through keys that hold dots). Each needs two copies of a key in the text.
    pub(super) found: Vec<u128>,
    /// The fingerprints of the listed ones, so that a path is listed once.
    pub(super) listed_paths: HashSet<u128>,
    /// The first ones, in the order found.
    pub(super) listed: Vec<Issue>,
    /// The keys of the fingerprints, drawn at the first duplicate.
    pub(super) keys: Option<[RandomState; 2]>,
}

// === impl Duplicates ===

impl Duplicates {
    /// Records the duplicate key named by `step`, after its value was read.
    pub(super) fn found(&mut self, step: &Step<'_, '_>) {
        let fingerprint = step.hashed(self).finish();
        self.found.push(fingerprint);
        if self.listed.len() < KEPT && self.listed_paths.insert(fingerprint) {
            self.listed.push(step.issue(IssueKind::Duplicate));
        }
    }

    /// A hasher of path texts, keyed for this walk.
    pub(super) fn hasher(&mut self) -> PathHasher {
        let keys = self
            .keys
            .get_or_insert_with(|| [RandomState::new(), RandomState::new()]);
        PathHasher([keys[0].build_hasher(), keys[1].build_hasher()])
    }

    /// The first duplicates in order, and how many distinct paths there are.
    pub(super) fn into_listed(mut self) -> (Vec<Issue>, usize) {
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
pub(super) struct PathHasher([std::collections::hash_map::DefaultHasher; 2]);

// === impl PathHasher ===

impl PathHasher {
    /// Adds `text`, one byte at a time: `Hasher` promises the same hash only for the same
    /// sequence of writes, and `a.b` + `.c` must hash as `a` + `.b.c`.
    pub(super) fn write(&mut self, text: &[u8]) {
        for &byte in text {
            self.0[0].write_u8(byte);
            self.0[1].write_u8(byte);
        }
    }

    pub(super) fn finish(&self) -> u128 {
        (u128::from(self.0[0].finish()) << 64) | u128::from(self.0[1].finish())
    }
}
