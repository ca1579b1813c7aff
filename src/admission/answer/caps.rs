//! The caps on what one answer lists, so that its size does not grow with the review: the
//! causes of a denial, the field-validation errors of a strict denial and the warnings are each
//! listed up to a number of entries and of bytes, then closed by one entry saying how many more
//! were left out.
//!
//! A cap never changes a verdict: it only shortens the list that explains it. A review with
//! 10,000 errors is denied exactly as one with a single error.

/// Most causes (`status.details.causes`) one denial lists, and errors its message names.
pub const MAX_CAUSES: usize = 100;
/// Most bytes (as JSON text) of the causes one denial lists: 100 causes of the usual size
/// (about 100 to 200 bytes) fit; 100 long ones (each echoed value may take 256 bytes, more
/// once escaped) would not, and the message repeats them, so the answer stays under 64 KiB.
pub const MAX_CAUSE_BYTES: usize = 20 * 1024;
/// Most warnings one answer lists, besides the last one saying how many more there were.
pub const MAX_WARNINGS: usize = 100;
/// Most bytes (as JSON text) of the warnings one answer lists. The API server keeps about
/// 4 KiB of warnings per request (its `truncateAtTotalRunes`) and drops the ones after: this
/// leaves a quarter of it to the API server's own warnings and other webhooks', so that the
/// warning saying how many more there were is not the one dropped.
pub const MAX_WARNING_BYTES: usize = 3 * 1024;
/// Kubernetes advises warnings of at most 120 characters; longer ones are cut to it.
pub const MAX_WARNING_CHARS: usize = 120;

/// A list filled up to a cap: the first entries that fit are listed; from the first one that
/// does not, every entry is only counted. The first entry is always listed, whatever its
/// size, so that a cut list still names at least one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    max_items: usize,
    max_bytes: usize,
    items: usize,
    bytes: usize,
    left_out: usize,
}

// === impl Listing ===

impl Listing {
    /// An empty list of at most `max_items` entries and `max_bytes` bytes.
    pub fn new(max_items: usize, max_bytes: usize) -> Self {
        Listing {
            max_items,
            max_bytes,
            items: 0,
            bytes: 0,
            left_out: 0,
        }
    }

    /// The caps of a denial's causes (and of a strict denial's field errors).
    pub fn causes() -> Self {
        Listing::new(MAX_CAUSES, MAX_CAUSE_BYTES)
    }

    /// Whether the next entry, of `bytes`, is listed; if not, it is counted as left out.
    pub fn admit(&mut self, bytes: usize) -> bool {
        let fits = self.items == 0 || self.bytes.saturating_add(bytes) <= self.max_bytes;
        if self.is_full() || !fits {
            self.left_out += 1;
            return false;
        }
        self.items += 1;
        self.bytes += bytes;
        true
    }

    /// Whether every later entry will be left out, so that callers need not build it.
    pub fn is_full(&self) -> bool {
        self.left_out > 0 || self.items >= self.max_items
    }

    /// Counts `n` entries as left out without looking at them.
    pub fn leave_out(&mut self, n: usize) {
        self.left_out = self.left_out.saturating_add(n);
    }

    /// How many entries were left out.
    pub fn left_out(&self) -> usize {
        self.left_out
    }
}

impl Default for Listing {
    fn default() -> Self {
        Listing::new(MAX_WARNINGS, MAX_WARNING_BYTES)
    }
}

/// The last entry of a list cut short, as an operator reads it at the end of the list:
/// `and 1 more error`, `and 9900 more errors`.
pub fn and_more(n: usize, noun: &str) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!("and {n} more {noun}{plural}")
}

/// The bytes `text` takes inside a JSON string, as serde_json writes it: a quote and a
/// backslash take two, a control character two or six.
pub fn json_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut len = bytes.len();
    let mut i = 0;
    loop {
        // Runs of bytes written as they are, eight at a time.
        i = crate::admission::json::plain_run(bytes, i);
        let Some(&b) = bytes.get(i) else {
            return len;
        };
        len += match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
            _ => 5,
        };
        i += 1;
    }
}

/// Cuts a warning to the length Kubernetes advises, on a character boundary.
pub fn shorten(warning: String) -> String {
    match warning.char_indices().nth(MAX_WARNING_CHARS) {
        None => warning,
        Some(_) => {
            let cut: String = warning.chars().take(MAX_WARNING_CHARS - 3).collect();
            cut + "..."
        }
    }
}

/// The warnings of one answer: each cut to [`MAX_WARNING_CHARS`], at most [`MAX_WARNINGS`]
/// of them and [`MAX_WARNING_BYTES`] in all, then one saying how many more there were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warnings {
    listed: Vec<String>,
    room: Listing,
}

// === impl Warnings ===

impl Warnings {
    /// No warnings.
    pub fn new() -> Self {
        Warnings::default()
    }

    /// Adds the warning `text` makes; once the list is full, `text` is not even called.
    pub fn push_with(&mut self, text: impl FnOnce() -> String) {
        if self.room.is_full() {
            self.room.leave_out(1);
            return;
        }
        let warning = shorten(text());
        if self.room.admit(json_len(&warning)) {
            self.listed.push(warning);
        }
    }

    /// Counts `n` warnings as left out without building them.
    pub fn leave_out(&mut self, n: usize) {
        self.room.leave_out(n);
    }

    /// Adds the warnings of `other` after these, its left-out ones included.
    pub fn append(&mut self, other: Warnings) {
        for warning in other.listed {
            self.push_with(|| warning);
        }
        self.room.leave_out(other.room.left_out());
    }

    /// How many warnings the answer carries (the last one counting the rest included).
    pub fn len(&self) -> usize {
        self.listed.len() + usize::from(self.room.left_out() > 0)
    }

    /// Whether the answer carries no warning.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The warnings as the answer carries them, the one counting the rest last.
    pub fn texts(&self) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
        let more = (self.room.left_out() > 0).then(|| and_more(self.room.left_out(), "warning"));
        self.listed
            .iter()
            .map(|w| std::borrow::Cow::Borrowed(w.as_str()))
            .chain(more.map(std::borrow::Cow::Owned))
    }

    /// The warnings as the answer carries them.
    pub fn to_vec(&self) -> Vec<String> {
        let mut all = self.listed.clone();
        if self.room.left_out() > 0 {
            all.push(and_more(self.room.left_out(), "warning"));
        }
        all
    }
}

impl serde::Serialize for Warnings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for warning in &self.listed {
            seq.serialize_element(warning)?;
        }
        if self.room.left_out() > 0 {
            seq.serialize_element(&and_more(self.room.left_out(), "warning"))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_up_to_the_count_then_counts_the_rest() {
        let mut list = Listing::new(3, 1000);
        let listed: Vec<bool> = (0..5).map(|_| list.admit(10)).collect();
        assert_eq!(listed, [true, true, true, false, false]);
        assert_eq!(list.left_out(), 2);
    }

    #[test]
    fn stops_at_the_first_entry_over_the_bytes_and_lists_nothing_after_it() {
        let mut list = Listing::new(100, 25);
        // The third would pass 25 bytes; the short fourth would fit but comes after it.
        let listed: Vec<bool> = [10, 10, 10, 1].iter().map(|b| list.admit(*b)).collect();
        assert_eq!(listed, [true, true, false, false]);
        assert_eq!(list.left_out(), 2);
    }

    #[test]
    fn always_lists_the_first_entry() {
        let mut list = Listing::new(100, 5);
        assert!(list.admit(1000));
        assert!(!list.admit(1));
    }

    #[test]
    fn words_the_rest_for_an_operator() {
        assert_eq!(and_more(1, "error"), "and 1 more error");
        assert_eq!(and_more(9900, "error"), "and 9900 more errors");
        assert_eq!(and_more(2, "warning"), "and 2 more warnings");
    }

    #[test]
    fn measures_text_as_serde_json_escapes_it() {
        for text in [
            "plain",
            "a \"quoted\" \\ path",
            "tab\tnew\nline\u{1}\u{1f}",
            "é ü 日本",
        ] {
            let written = serde_json::to_string(text).unwrap();
            assert_eq!(json_len(text), written.len() - 2, "{text:?}");
        }
    }

    proptest::proptest! {
        /// Runs of plain text are measured eight bytes at a time: any mix of escapes, long
        /// runs and multi-byte characters measures what serde_json writes.
        #[test]
        fn measures_any_text_as_serde_json_writes_it(
            text in "([a-z\"\\\\\\x00-\\x1f\u{80}-\u{10ffff}]{0,3}[ -~]{0,20}){0,8}"
        ) {
            let written = serde_json::to_string(&text).unwrap();
            proptest::prop_assert_eq!(json_len(&text), written.len() - 2);
        }
    }

    #[test]
    fn cuts_warnings_to_120_characters() {
        assert_eq!(shorten("é".repeat(120)), "é".repeat(120));
        let cut = shorten("é".repeat(121));
        assert_eq!(cut.chars().count(), 120);
        assert!(cut.ends_with("..."));
    }

    #[test]
    fn warnings_end_with_how_many_more_there_were() {
        let mut w = Warnings::new();
        for i in 0..1000 {
            w.push_with(|| format!("w{i}"));
        }
        let all = w.to_vec();
        assert_eq!(all.len(), MAX_WARNINGS + 1);
        assert_eq!(all[0], "w0");
        assert_eq!(all[MAX_WARNINGS - 1], "w99");
        assert_eq!(all[MAX_WARNINGS], "and 900 more warnings");
        assert_eq!(w.len(), all.len());
        assert_eq!(serde_json::to_value(&w).unwrap(), serde_json::json!(all));
    }

    #[test]
    fn warnings_stay_within_their_bytes() {
        let mut w = Warnings::new();
        for _ in 0..1000 {
            w.push_with(|| "x".repeat(500));
        }
        let listed: usize = w.listed.iter().map(|s| json_len(s)).sum();
        assert!(listed <= MAX_WARNING_BYTES, "{listed}");
        assert_eq!(w.listed.len(), MAX_WARNING_BYTES / MAX_WARNING_CHARS);
        assert!(w.to_vec().last().unwrap().starts_with("and "));
    }

    #[test]
    fn a_full_list_does_not_build_the_warnings_it_leaves_out() {
        let mut w = Warnings::new();
        for i in 0..MAX_WARNINGS {
            w.push_with(|| format!("w{i}"));
        }
        w.push_with(|| unreachable!("a full list builds no more warnings"));
        assert_eq!(w.to_vec().last().unwrap(), "and 1 more warning");
    }

    #[test]
    fn appended_warnings_keep_their_count_of_the_rest() {
        let mut first = Warnings::new();
        first.push_with(|| "a".to_owned());
        first.leave_out(5);
        let mut second = Warnings::new();
        second.push_with(|| "b".to_owned());
        second.append(first);
        assert_eq!(second.to_vec(), ["b", "a", "and 5 more warnings"]);
    }
}
