//! Finding the items of a list that repeat an earlier one, in time linear in the list: addresses
//! compared as parsed values, strings by their decoded text (a few compared one by one, more
//! through a hash set), each remembered by its place in the list's text.

use crate::admission::json::{self, Str};
use crate::admission::model::view::List;

/// The keys of a list's items that must not repeat: addresses, each with the item's index,
/// and strings, found repeated as they come.
pub(super) struct RepeatKeys<'a> {
    /// IPv4 addresses.
    v4: Vec<(u32, u32)>,
    /// IPv6 addresses.
    v6: Vec<([u8; 16], u32)>,
    /// The strings seen so far.
    texts: FirstTexts<'a>,
    /// Which items repeat an earlier one (for strings, as found).
    repeats: Bits,
}

// === impl RepeatKeys ===

impl<'a> RepeatKeys<'a> {
    pub(super) fn new(list: List<'a>) -> Self {
        RepeatKeys {
            v4: Vec::new(),
            v6: Vec::new(),
            texts: FirstTexts::new(list.raw.text, list.len),
            repeats: Bits::new(list.len),
        }
    }

    pub(super) fn address(&mut self, ip: std::net::IpAddr, i: usize) {
        match ip {
            std::net::IpAddr::V4(v4) => self.v4.push((u32::from(v4), i as u32)),
            std::net::IpAddr::V6(v6) => self.v6.push((v6.octets(), i as u32)),
        }
    }

    /// Item `i`, a string of the list's text that is not an address.
    pub(super) fn text(&mut self, text: Str<'a>, i: usize) {
        if self.texts.repeats(text) {
            self.repeats.set(i);
        }
    }

    /// Which items repeat the key of an earlier one.
    pub(super) fn repeats(mut self) -> Bits {
        self.v4.sort_unstable();
        mark_repeats(&self.v4, |a, b| a.0 == b.0, &mut self.repeats);
        self.v6.sort_unstable();
        mark_repeats(&self.v6, |a, b| a.0 == b.0, &mut self.repeats);
        self.repeats
    }
}

/// The distinct strings of a list's text, each remembered by where its first copy starts and
/// half of its hash (8 bytes in a hash table): whether a string repeats an earlier one is
/// found in constant time, without sorting, whatever the strings (the hash is keyed per
/// process, so that a client cannot choose strings that collide).
/// A list of at most [`FEW_TEXTS`] items compares its strings with each other instead: hashing
/// costs more than a few comparisons.
pub(super) struct FirstTexts<'a> {
    text: &'a str,
    table: hashbrown::HashTable<(u32, u32)>,
    few: Option<([Str<'a>; FEW_TEXTS], usize)>,
}

/// Up to this many items, a list's strings are compared one by one.
pub(super) const FEW_TEXTS: usize = 8;

// === impl FirstTexts ===

impl<'a> FirstTexts<'a> {
    /// The first strings of the list whose text is `text`, of `items` items.
    pub(super) fn new(text: &'a str, items: usize) -> Self {
        FirstTexts {
            text,
            table: hashbrown::HashTable::new(),
            few: (items <= FEW_TEXTS).then_some(([Str::plain(""); FEW_TEXTS], 0)),
        }
    }

    /// Whether `s`, a string of the list's text, repeats one seen before; remembers it if not.
    pub(super) fn repeats(&mut self, s: Str<'a>) -> bool {
        if let Some((seen, len)) = &mut self.few {
            if seen[..*len].contains(&s) {
                return true;
            }
            if *len < FEW_TEXTS {
                seen[*len] = s;
                *len += 1;
                return false;
            }
        }
        if let Some((seen, len)) = self.few.take() {
            // More strings than the list was said to hold: the table takes them all.
            for first in &seen[..len] {
                self.hashed(*first);
            }
        }
        self.hashed(s)
    }

    pub(super) fn hashed(&mut self, s: Str<'a>) -> bool {
        let text = self.text;
        let hash = std::hash::BuildHasher::hash_one(text_hash_state(), s.decode().as_bytes());
        // The table is rebuilt from the kept half as it grows: the low bits pick the bucket,
        // the top ones hashbrown's tag, so the half is spread over both.
        let half = (hash >> 32) as u32;
        let spread = |half: u32| u64::from(half).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let entry = self.table.entry(
            spread(half),
            |&(at, h)| h == half && Str::at(text, at) == s,
            |&(_, h)| spread(h),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(_) => true,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert((json::offset(text, s.raw()), half));
                false
            }
        }
    }
}

/// The hasher keys of [`FirstTexts`], drawn once per process.
pub(super) fn text_hash_state() -> &'static std::collections::hash_map::RandomState {
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    STATE.get_or_init(Default::default)
}

/// Marks every entry of `sorted` (ordered by key, then by index) whose key is its
/// predecessor's: all but the first of each key.
pub(super) fn mark_repeats<T: Copy>(
    sorted: &[(T, u32)],
    same: impl Fn(&(T, u32), &(T, u32)) -> bool,
    out: &mut Bits,
) {
    for pair in sorted.windows(2) {
        if same(&pair[0], &pair[1]) {
            out.set(pair[1].1 as usize);
        }
    }
}

/// One bit per item.
pub(super) struct Bits(Vec<u64>);

// === impl Bits ===

impl Bits {
    pub(super) fn new(len: usize) -> Self {
        Bits(vec![0; len.div_ceil(64)])
    }

    pub(super) fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub(super) fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    pub(super) fn any(&self) -> bool {
        self.0.iter().any(|&w| w != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::json::Kind;
    use crate::admission::model::view::testing;
    use crate::admission::rules::testing::*;
    use serde_json::{json, Value};

    /// The repeats [`FirstTexts`] finds in the strings of the JSON list `text`.
    fn repeats_in(text: &str) -> Vec<bool> {
        let list = json::Raw::new(text, Kind::Array);
        let items: Vec<_> = list.items().collect();
        let mut first = FirstTexts::new(text, items.len());
        items
            .into_iter()
            .map(|item| first.repeats(item.as_str().expect("a string")))
            .collect()
    }

    #[test]
    fn short_and_long_lists_find_the_same_repeats() {
        // Escaped and plain spellings of one string are the same string.
        let short = r#"["a","b","\u0061","c","b","a"]"#;
        assert_eq!(repeats_in(short), [false, false, true, false, true, true]);
        // Past the few compared one by one, the hash table: the same answers.
        let long = format!(
            "[{}]",
            (0..30)
                .map(|i| if i % 2 == 0 {
                    format!("\"\\u006{}\"", i % 3)
                } else {
                    format!("\"`{}\"", i % 3)
                })
                .collect::<Vec<_>>()
                .join(",")
        );
        let found = repeats_in(&long);
        assert_eq!(found.iter().filter(|r| !**r).count(), 6, "{long}");
        assert!(found[6..].iter().all(|r| *r), "{long}");
    }

    // Repeats are found on the decoded strings, whatever their escapes (and a string that
    // differs only after an escape is no repeat).
    #[test]
    fn a_repeat_written_with_escapes_is_still_a_repeat() {
        let text = r#"{"metadata":{"name":"a"},"spec":{"network":"n","interface":"e"},"status":{"ips":["x","\u0078","x\u0079"],"conditions":[{"type":"A","status":"True","reason":"R","lastTransitionTime":"2026-11-26T23:00:00Z"},{"type":"\u0041","status":"True","reason":"R","lastTransitionTime":"2026-11-26T23:00:00Z"}]}}"#;
        let errors: Vec<String> =
            crate::admission::rules::validate_object(&testing::claim_of(text))
                .iter()
                .filter(|e| e.kind.cause_type() == "FieldValueDuplicate")
                .map(|e| e.path.to_string())
                .collect();
        assert_eq!(errors, ["status.ips[1]", "status.conditions[1].type"]);
    }

    #[test]
    fn reports_every_repeat_of_one_value_in_a_long_list() {
        // Every item after the first repeats it: invalid and duplicate, two errors each.
        let ips = vec![json!("x"); 20_000];
        let v = validate_json(&with("/status/ips", Value::Array(ips)), None);
        assert_eq!(v.errors.len(), 2 * 20_000 - 1);
    }
}
