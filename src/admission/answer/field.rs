//! Field paths and field errors, rendered exactly like apimachinery's `field.Error` and
//! `apierrors.NewInvalid`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use kube::core::Status;

use crate::admission::answer::caps::{self, Listing};
use crate::admission::answer::gotext::{
    clip, decoded_format, decoded_number, go_float, go_syntax, json_type_name, quote_clipped,
    Bounded, MAX_ECHOED_BYTES,
};
use crate::admission::json::{self, Kind, Raw};

/// A path to a field of an object, as Kubernetes prints it: `status.ips[2]`, `metadata.labels[app]`.
///
/// A top-level path is the field's name itself, without a copy; deeper ones are written once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path(Cow<'static, str>);

// === impl Path ===

impl Path {
    /// A path that starts at the named top-level field.
    pub fn new(root: &'static str) -> Self {
        Path(Cow::Borrowed(root))
    }

    /// The path of a named field below this one.
    pub fn child(&self, name: &str) -> Self {
        if let Some(known) = self.known(name.len(), |tail| tail == name.as_bytes(), b'.') {
            return known;
        }
        let mut s = String::with_capacity(self.0.len() + name.len() + 1);
        s.push_str(&self.0);
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(name);
        Path(Cow::Owned(s))
    }

    /// The path of a list item below this one.
    pub fn index(&self, i: usize) -> Self {
        if i == 0 {
            if let Some(known) = self.known(2, |tail| tail == b"0]", b'[') {
                return known;
            }
        }
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = i;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let digits = std::str::from_utf8(&digits[at..]).unwrap_or_default();
        let mut s = String::with_capacity(self.0.len() + digits.len() + 2);
        s.push_str(&self.0);
        s.push('[');
        s.push_str(digits);
        s.push(']');
        Path(Cow::Owned(s))
    }

    /// The path of a map entry below this one.
    pub fn key(&self, k: &str) -> Self {
        Path(Cow::Owned(format!("{}[{k}]", self.0)))
    }

    /// One of [`KNOWN_PATHS`]: this path, then `joint`, then a tail of `len` bytes that
    /// `is_tail` accepts.
    #[inline]
    fn known(&self, len: usize, is_tail: impl Fn(&[u8]) -> bool, joint: u8) -> Option<Self> {
        let Cow::Borrowed(parent) = self.0 else {
            return None;
        };
        let known = KNOWN_PATHS.iter().find(|known| {
            let known = known.as_bytes();
            known.len() == parent.len() + 1 + len
                && known.starts_with(parent.as_bytes())
                && known[parent.len()] == joint
                && is_tail(&known[parent.len() + 1..])
        })?;
        Some(Path(Cow::Borrowed(known)))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The paths below the top level that the rules pass down on every review, for the errors they
/// may name: borrowed from here rather than written (and allocated) each time.
const KNOWN_PATHS: [&str; 9] = [
    "spec.network",
    "spec.interface",
    "spec.ipRequests",
    "status.ips",
    "status.ownerPod",
    "status.conditions",
    "status.conditions[0]",
    "metadata.name",
    "metadata.generateName",
];

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of a field error; each maps to a Kubernetes `CauseType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// A required value is missing (`FieldValueRequired`).
    Required,
    /// A value is malformed (`FieldValueInvalid`).
    Invalid,
    /// A value does not have the schema's type (`FieldValueTypeInvalid`).
    TypeInvalid,
    /// A value that must be unique appears twice (`FieldValueDuplicate`).
    Duplicate,
    /// A value is longer than allowed (`FieldValueTooLong`).
    TooLong,
    /// A list has more items than allowed (`FieldValueTooMany`).
    TooMany,
    /// A value is not one of an enumeration (`FieldValueNotSupported`).
    NotSupported,
    /// A value is not allowed in this context (`FieldValueForbidden`).
    Forbidden,
}

// === impl ErrorType ===

impl ErrorType {
    /// The `CauseType` string of `metav1.StatusCause`.
    pub fn cause_type(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
        }
    }

    /// The human text apimachinery prints for this type.
    pub fn text(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid | ErrorType::TypeInvalid => "Invalid value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
        }
    }
}

/// The offending value of a field error, printed the way Go's `%q` / `%v` would. Strings are
/// borrowed from the review: an error costs no copy of a value, however long.
#[derive(Clone, Debug, PartialEq)]
pub enum BadValue<'a> {
    /// No value is printed.
    Omit,
    /// A string, printed quoted.
    Str(Cow<'a, str>),
    /// An integer, printed bare.
    Int(i64),
    /// A float, printed bare.
    Float(f64),
    /// A boolean, printed bare.
    Bool(bool),
    /// A structured value, printed as compact JSON (as serde_json prints its `Value`): `head`
    /// is the start of the text, at most [`MAX_ECHOED_BYTES`], `len` the length of all of it.
    Json {
        /// The start of the text.
        head: String,
        /// The length of the whole text in bytes.
        len: usize,
    },
    /// A JSON object or array as the API server's schema validation prints it: Go's `%#v` of
    /// the `map[string]interface {}` or `[]interface {}` its decoder makes of it. `head` is
    /// the start of the text, at most [`MAX_ECHOED_BYTES`], `len` the length of all of it.
    Go {
        /// The start of the text.
        head: String,
        /// The length of the whole text in bytes.
        len: usize,
    },
    /// No value at all, printed `null`.
    Null,
}

// === impl BadValue ===

impl<'a> BadValue<'a> {
    /// The bad value of a JSON value, with strings and numbers printed like Go would.
    pub fn of(v: Raw<'a>) -> Self {
        match v.kind {
            Kind::Null => BadValue::Null,
            Kind::Bool => BadValue::Bool(v.text == "true"),
            Kind::String => BadValue::Str(v.as_str().map(|s| s.decode()).unwrap_or_default()),
            Kind::Number => match v.number() {
                Some(n) => match n.as_i64() {
                    Some(i) => BadValue::Int(i),
                    None => BadValue::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                None => BadValue::Float(f64::NAN),
            },
            Kind::Array | Kind::Object => {
                let mut text = Bounded::new(MAX_ECHOED_BYTES);
                let _ = serde_json::to_writer(&mut text, &json::Canonical::new(v));
                BadValue::Json {
                    head: text.head,
                    len: text.len,
                }
            }
        }
    }

    /// The bad value the API server's schema validation prints for `v` (its enum check, its
    /// minimum): what its decoder makes of `v` (an `int64`, a `float64`, a `bool`, a map or a
    /// slice), printed as Go prints it.
    pub fn decoded(v: Raw<'a>) -> Self {
        match v.kind {
            Kind::Number => match v.number().map(|n| decoded_number(&n)) {
                Some(Ok(i)) => BadValue::Int(i),
                Some(Err(f)) => BadValue::Float(f),
                None => BadValue::Float(f64::NAN),
            },
            Kind::Array | Kind::Object => {
                let mut text = Bounded::new(MAX_ECHOED_BYTES);
                let _ = go_syntax(v, &mut text);
                BadValue::Go {
                    head: text.head,
                    len: text.len,
                }
            }
            _ => BadValue::of(v),
        }
    }
}

impl<'a> From<&'a str> for BadValue<'a> {
    fn from(s: &'a str) -> Self {
        BadValue::Str(Cow::Borrowed(s))
    }
}

impl<'a> From<Cow<'a, str>> for BadValue<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        BadValue::Str(s)
    }
}

impl From<String> for BadValue<'_> {
    fn from(s: String) -> Self {
        BadValue::Str(Cow::Owned(s))
    }
}

impl From<i64> for BadValue<'_> {
    fn from(i: i64) -> Self {
        BadValue::Int(i)
    }
}

/// One field-level validation error, like apimachinery's `field.Error`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError<'a> {
    /// What is wrong.
    pub kind: ErrorType,
    /// Where it is wrong.
    pub path: Path,
    /// The offending value.
    pub value: BadValue<'a>,
    /// Why it is wrong, in a few words (may be empty).
    pub detail: String,
}

// === impl FieldError ===

impl<'a> FieldError<'a> {
    /// A missing required value (`field.Required`).
    pub fn required(path: Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, path, BadValue::Omit, detail)
    }

    /// A malformed value (`field.Invalid`).
    pub fn invalid(path: Path, value: impl Into<BadValue<'a>>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, path, value.into(), detail)
    }

    /// A value of the wrong JSON type, worded like the API server's schema validation.
    pub fn type_invalid(path: Path, actual: Raw<'_>, expected: &str) -> Self {
        let actual = json_type_name(actual);
        let detail = format!("{path} in body must be of type {expected}: \"{actual}\"");
        Self::new(
            ErrorType::TypeInvalid,
            path,
            BadValue::Str(Cow::Borrowed(actual)),
            detail,
        )
    }

    /// A value that is not of the type a schema `format` needs (an integer where a `date-time`
    /// belongs), worded as the API server's schema validation words it: the value is the
    /// format of what its decoder made of the value (`int64`, `float64`, or nothing for other
    /// types), e.g. `Invalid value: "int64": x in body must be of type date-time: "int64"`.
    pub fn format_type_invalid(path: Path, actual: Raw<'_>, format: &str) -> Self {
        let actual = decoded_format(actual);
        let detail = format!("{path} in body must be of type {format}: \"{actual}\"");
        Self::new(
            ErrorType::TypeInvalid,
            path,
            BadValue::Str(Cow::Borrowed(actual)),
            detail,
        )
    }

    /// A string that is not of a schema `format` (`date-time`): a type error for the API
    /// server's schema validation too.
    pub fn format_invalid(path: Path, value: Cow<'a, str>, format: &str) -> Self {
        let detail = format!(
            "{path} in body must be of type {format}: {}",
            quote_clipped(&value)
        );
        Self::new(ErrorType::TypeInvalid, path, value.into(), detail)
    }

    /// A string shorter than a schema `minLength`, as CRD validation words it (`""` in a
    /// `minLength: 1` field is this, not `Required value`).
    pub fn too_short(path: Path, value: &'a str, min: usize) -> Self {
        let detail = format!("{path} in body should be at least {min} chars long");
        Self::new(ErrorType::Invalid, path, value.into(), detail)
    }

    /// A repeated value that must be unique (`field.Duplicate`).
    pub fn duplicate(path: Path, value: impl Into<BadValue<'a>>) -> Self {
        Self::new(ErrorType::Duplicate, path, value.into(), "")
    }

    /// A value over a byte limit (`field.TooLong`).
    pub fn too_long(path: Path, max_bytes: usize) -> Self {
        let detail = format!("must have at most {max_bytes} bytes");
        Self::new(ErrorType::TooLong, path, BadValue::Omit, detail)
    }

    /// A string over a schema `maxLength` (`field.TooLongMaxLength`, as CRD validation words it).
    pub fn too_long_max_length(path: Path, max: usize) -> Self {
        let detail = format!("may not be longer than {max}");
        Self::new(ErrorType::TooLong, path, BadValue::Omit, detail)
    }

    /// A list with more items than allowed (`field.TooMany`).
    pub fn too_many(path: Path, actual: usize, max: usize) -> Self {
        let detail = format!("must have at most {max} items");
        let actual = i64::try_from(actual).unwrap_or(i64::MAX);
        Self::new(ErrorType::TooMany, path, BadValue::Int(actual), detail)
    }

    /// A value outside an enumeration (`field.NotSupported`).
    pub fn not_supported(path: Path, value: impl Into<BadValue<'a>>, valid: &[&str]) -> Self {
        let quoted: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
        let detail = format!("supported values: {}", quoted.join(", "));
        Self::new(ErrorType::NotSupported, path, value.into(), detail)
    }

    /// A value not permitted here (`field.Forbidden`).
    pub fn forbidden(path: Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, path, BadValue::Omit, detail)
    }

    fn new(kind: ErrorType, path: Path, value: BadValue<'a>, detail: impl Into<String>) -> Self {
        FieldError {
            kind,
            path,
            value,
            detail: detail.into(),
        }
    }

    /// The message without the field path (`ErrorBody()`), as in `details.causes[].message`.
    pub fn body(&self) -> String {
        let mut s = String::with_capacity(self.body_capacity());
        self.write_body(&mut s);
        s
    }

    /// Room for most bodies in one allocation: the words, the value's text and its quotes.
    fn body_capacity(&self) -> usize {
        let value = match &self.value {
            BadValue::Str(v) => v.len().min(MAX_ECHOED_BYTES) + 48,
            BadValue::Json { head, .. } | BadValue::Go { head, .. } => head.len() + 40,
            _ => 24,
        };
        self.kind.text().len() + value + 2 + self.detail.len()
    }

    /// Writes [`FieldError::body`] to `s`.
    fn write_body(&self, s: &mut String) {
        s.push_str(self.kind.text());
        let prints_value = !matches!(
            self.kind,
            ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong
        );
        if prints_value {
            match &self.value {
                BadValue::Omit => {}
                BadValue::Str(v) => {
                    s.push_str(": ");
                    s.push_str(&quote_clipped(v));
                }
                BadValue::Int(i) => s.push_str(&format!(": {i}")),
                BadValue::Float(f) => {
                    s.push_str(": ");
                    s.push_str(&go_float(*f));
                }
                BadValue::Bool(b) => s.push_str(&format!(": {b}")),
                BadValue::Json { head, len } | BadValue::Go { head, len } => {
                    s.push_str(": ");
                    s.push_str(head);
                    if *len > head.len() {
                        s.push_str(&format!("... ({len} bytes, truncated)"));
                    }
                }
                BadValue::Null => s.push_str(": \"null\""),
            }
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
    }
}

impl fmt::Display for FieldError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.body())
    }
}

/// A list of field errors, collected in the order they were found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorList<'a>(pub Vec<FieldError<'a>>);

// === impl ErrorList ===

impl<'a> ErrorList<'a> {
    /// An empty list.
    pub fn new() -> Self {
        ErrorList(Vec::new())
    }

    /// Adds one error.
    pub fn push(&mut self, e: FieldError<'a>) {
        self.0.push(e);
    }

    /// Adds every error of another list.
    pub fn extend(&mut self, other: ErrorList<'a>) {
        self.0.extend(other.0);
    }

    /// Whether no error was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many errors were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The errors, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError<'a>> {
        self.0.iter()
    }

    /// The aggregate text (`ErrorList.ToAggregate().Error()`): one error bare, several as
    /// `[e1, e2]`, repeated messages once.
    pub fn aggregate(&self) -> String {
        let texts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        aggregate(&texts, 0)
    }

    /// The `Status` of `apierrors.NewInvalid(kind, name, errs)`: code 422, reason `Invalid`,
    /// with the errors listed up to the caps of [`caps`].
    pub fn to_invalid_status(&self, group: &str, kind: &str, name: &str) -> Status {
        self.to_invalid_status_listed(group, kind, name).0
    }

    /// [`ErrorList::to_invalid_status`], and how many errors it left out of the list.
    pub fn to_invalid_status_listed(&self, group: &str, kind: &str, name: &str) -> (Status, usize) {
        invalid_status(&self.0, 0, group, kind, name)
    }
}

/// The `Status` of `apierrors.NewInvalid` for `errors` and `more` errors after them, and how
/// many errors it leaves out of the list.
///
/// The first errors are listed, as causes and in the message, up to [`caps::MAX_CAUSES`] and
/// [`caps::MAX_CAUSE_BYTES`]; the rest are counted in a last part of the message and a last
/// cause, `and 9900 more errors`. That cause has neither a reason nor a field: it is not an
/// error of its own, and kubectl prints it after the others as `: and 9900 more errors`, where
/// it cannot be missed (kubectl shows the causes, not the message).
fn invalid_status(
    errors: &[FieldError<'_>],
    more: usize,
    group: &str,
    kind: &str,
    name: &str,
) -> (Status, usize) {
    let mut room = Listing::causes();
    let mut listed: Vec<(&FieldError<'_>, String, String)> =
        Vec::with_capacity(errors.len().min(caps::MAX_CAUSES));
    for e in errors {
        if room.is_full() {
            room.leave_out(1);
            continue;
        }
        let body = e.body();
        let path = e.path.as_str();
        let mut text = String::with_capacity(path.len() + 2 + body.len());
        text.push_str(path);
        text.push_str(": ");
        text.push_str(&body);
        if room.admit(caps::json_len(&text)) {
            listed.push((e, text, body));
        }
    }
    room.leave_out(more);
    let left_out = room.left_out();
    let qualified = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    let quoted_name = quote_clipped(name);
    let message = if errors.is_empty() && more == 0 {
        [qualified.as_str(), " ", &quoted_name, " is invalid"].concat()
    } else {
        let texts: Vec<&str> = listed.iter().map(|(_, text, _)| text.as_str()).collect();
        let listing = aggregate(&texts, left_out);
        [
            qualified.as_str(),
            " ",
            &quoted_name,
            " is invalid: ",
            &listing,
        ]
        .concat()
    };
    let mut causes: Vec<StatusCause> = listed
        .into_iter()
        .map(|(e, _, body)| StatusCause {
            reason: e.kind.cause_type().to_owned(),
            message: body,
            field: e.path.as_str().to_owned(),
        })
        .collect();
    if left_out > 0 {
        causes.push(StatusCause {
            reason: String::new(),
            message: caps::and_more(left_out, "error"),
            field: String::new(),
        });
    }
    let status = Status {
        status: Some(StatusSummary::Failure),
        code: 422,
        message,
        metadata: None,
        reason: "Invalid".to_owned(),
        details: Some(StatusDetails {
            name: clip(name, MAX_ECHOED_BYTES).0.to_owned(),
            group: group.to_owned(),
            kind: kind.to_owned(),
            uid: String::new(),
            causes,
            retry_after_seconds: 0,
        }),
    };
    (status, left_out)
}

/// Where validation puts the errors it finds: a whole [`ErrorList`], or a collector that sorts
/// them as they come and keeps only what an answer lists.
pub trait Report<'a> {
    /// Takes one error.
    fn push(&mut self, e: FieldError<'a>);

    /// Whether the items of lists are to be judged at all: not when only the errors of the
    /// fields that hold them are wanted.
    fn items(&self) -> bool {
        true
    }

    /// Says which item of `status.conditions` the next errors are about (ratcheting matches
    /// them with the old condition of the same type).
    fn condition(&mut self, _index: usize, _item: Raw<'a>) {}
}

impl<'a> Report<'a> for ErrorList<'a> {
    fn push(&mut self, e: FieldError<'a>) {
        self.0.push(e);
    }
}

/// Errors as an answer needs them: the first ones in full, in the order they were found, and
/// only the number of the others, so that a review with a million errors holds a hundred.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CappedErrors<'a> {
    /// The first errors found, at most [`CappedErrors::KEPT`].
    pub kept: ErrorList<'a>,
    /// How many more were found.
    pub more: usize,
}

// === impl CappedErrors ===

impl<'a> CappedErrors<'a> {
    /// How many errors are kept in full: as many as an answer lists, as causes or warnings.
    pub const KEPT: usize = if caps::MAX_CAUSES > caps::MAX_WARNINGS {
        caps::MAX_CAUSES
    } else {
        caps::MAX_WARNINGS
    };

    /// Whether no error was found.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.more == 0
    }

    /// How many errors were found.
    pub fn len(&self) -> usize {
        self.kept.len() + self.more
    }

    /// The errors kept, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError<'a>> {
        self.kept.iter()
    }

    /// [`ErrorList::to_invalid_status`] of every error found.
    pub fn to_invalid_status(&self, group: &str, kind: &str, name: &str) -> Status {
        self.to_invalid_status_listed(group, kind, name).0
    }

    /// [`ErrorList::to_invalid_status_listed`] of every error found.
    pub fn to_invalid_status_listed(&self, group: &str, kind: &str, name: &str) -> (Status, usize) {
        invalid_status(&self.kept.0, self.more, group, kind, name)
    }
}

impl<'a> Report<'a> for CappedErrors<'a> {
    fn push(&mut self, e: FieldError<'a>) {
        if self.kept.len() < Self::KEPT {
            if self.kept.0.capacity() == 0 {
                // A denial rarely has one error alone: room for a few at once.
                self.kept.0.reserve(8);
            }
            self.kept.0.push(e);
        } else {
            self.more += 1;
        }
    }
}

/// `ToAggregate().Error()` of error texts, repeated ones once, with `left_out` more errors
/// named at the end: `[e1, e2, and 9900 more errors]`.
fn aggregate<T: AsRef<str>>(texts: &[T], left_out: usize) -> String {
    // A few texts are compared with each other (most differ in length or early on); more go
    // through a hash set, so that 100 listed errors stay linear.
    const FEW: usize = 8;
    let mut seen = HashSet::new();
    let mut unique: Vec<&str> = Vec::with_capacity(texts.len() + 1);
    for text in texts {
        let text = text.as_ref();
        let new = if texts.len() <= FEW {
            !unique.contains(&text)
        } else {
            seen.insert(text)
        };
        if new {
            unique.push(text);
        }
    }
    let more;
    if left_out > 0 {
        more = caps::and_more(left_out, "error");
        unique.push(&more);
    } else if let [one] = unique.as_slice() {
        return (*one).to_owned();
    } else if unique.is_empty() {
        return String::new();
    }
    let len: usize = unique.iter().map(|t| t.len() + 2).sum();
    let mut listing = String::with_capacity(len + 2);
    listing.push('[');
    for (i, text) in unique.iter().enumerate() {
        if i > 0 {
            listing.push_str(", ");
        }
        listing.push_str(text);
    }
    listing.push(']');
    listing
}

impl<'a> IntoIterator for ErrorList<'a> {
    type Item = FieldError<'a>;
    type IntoIter = std::vec::IntoIter<FieldError<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_are_the_paths_written_out() {
        let written = |parent: &str, joint: &str, tail: &str| format!("{parent}{joint}{tail}");
        for known in KNOWN_PATHS {
            let (parent, tail) = known.split_once('.').expect("below the top level");
            let built = match tail.strip_suffix("[0]") {
                Some(list) => Path::new("status").child(list).index(0),
                None => Path::new(match parent {
                    "spec" => "spec",
                    "status" => "status",
                    _ => "metadata",
                })
                .child(tail),
            };
            assert_eq!(built.as_str(), known);
            assert!(matches!(built.0, Cow::Borrowed(_)), "{known} is borrowed");
        }
        // Anything else is written out, the same text either way.
        let cases = [
            (Path::new("spec").child("net"), written("spec", ".", "net")),
            (
                Path::new("spec").child("netwerk"),
                written("spec", ".", "netwerk"),
            ),
            (
                Path::new("status").child("ipz"),
                written("status", ".", "ipz"),
            ),
            (
                Path::new("metadata").child("labels"),
                written("metadata", ".", "labels"),
            ),
            (
                Path::new("spec").child("networks"),
                written("spec", ".", "networks"),
            ),
            (
                Path::new("status").child("ips").index(0),
                written("status.ips", "[", "0]"),
            ),
            (
                Path::new("status").child("conditions").index(1),
                written("status.conditions", "[", "1]"),
            ),
            (
                Path::new("status").child("conditions").index(10),
                written("status.conditions", "[", "10]"),
            ),
            (
                Path::new("status").child("conditions").child("0]"),
                written("status.conditions", ".", "0]"),
            ),
            (Path::default().child("spec"), "spec".to_owned()),
            (Path::default().child("network"), "network".to_owned()),
        ];
        for (path, want) in cases {
            assert_eq!(path.as_str(), want);
        }
        assert_eq!(
            Path::new("spec").child("network"),
            Path(Cow::Owned("spec.network".to_owned()))
        );
    }

    #[test]
    fn renders_required_without_value() {
        let e = FieldError::required(Path::new("spec").child("interface"), "");
        assert_eq!(e.to_string(), "spec.interface: Required value");
    }

    #[test]
    fn renders_invalid_with_quoted_value_and_detail() {
        let e = FieldError::invalid(
            Path::new("status").child("ips").index(1),
            "10.1.2.300",
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        );
        assert_eq!(
            e.to_string(),
            "status.ips[1]: Invalid value: \"10.1.2.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        );
    }

    #[test]
    fn renders_duplicate_without_detail() {
        let e = FieldError::duplicate(Path::new("status").child("ips").index(1), "winner");
        assert_eq!(e.to_string(), "status.ips[1]: Duplicate value: \"winner\"");
    }

    #[test]
    fn renders_too_long_without_value() {
        let e = FieldError::too_long(Path::new("spec").child("interface"), 15);
        assert_eq!(
            e.to_string(),
            "spec.interface: Too long: must have at most 15 bytes"
        );
    }

    #[test]
    fn renders_not_supported_with_quoted_choices() {
        let e = FieldError::not_supported(Path::new("s"), "Maybe", &["True", "False", "Unknown"]);
        assert_eq!(
            e.to_string(),
            "s: Unsupported value: \"Maybe\": supported values: \"True\", \"False\", \"Unknown\""
        );
    }

    #[test]
    fn renders_integer_values_bare() {
        let e = FieldError::invalid(Path::new("x"), 5i64, "must be small");
        assert_eq!(e.to_string(), "x: Invalid value: 5: must be small");
    }

    #[test]
    fn aggregates_repeated_texts_once_however_many_there_are() {
        assert_eq!(aggregate(&["a", "b", "a"], 0), "[a, b]");
        assert_eq!(aggregate(&["a", "a"], 0), "a");
        assert_eq!(aggregate(&["a", "a"], 3), "[a, and 3 more errors]");
        // Past the few compared one by one, the hash set: the same result.
        let many: Vec<String> = (0..20).map(|i| format!("e{}", i % 7)).collect();
        let expected: Vec<String> = (0..7).map(|i| format!("e{i}")).collect();
        assert_eq!(aggregate(&many, 0), format!("[{}]", expected.join(", ")));
    }

    #[test]
    fn writes_list_indices_in_decimal() {
        let path = Path::new("status").child("ips");
        for i in [0, 7, 9, 10, 99, 100, 12345, usize::MAX] {
            assert_eq!(path.index(i).as_str(), format!("status.ips[{i}]"));
        }
        assert_eq!(Path::default().index(3).as_str(), "[3]");
    }

    #[test]
    fn cuts_huge_values_but_not_ordinary_ones() {
        let ordinary = "x".repeat(MAX_ECHOED_BYTES);
        let e = FieldError::invalid(Path::new("spec").child("network"), ordinary.as_str(), "bad");
        assert_eq!(e.body(), format!("Invalid value: \"{ordinary}\": bad"));
        let huge = format!("é{}", "x".repeat(5 * 1024 * 1024));
        let e = FieldError::invalid(Path::new("spec").child("network"), huge.as_str(), "bad");
        let body = e.body();
        assert!(body.len() < 400, "{}", body.len());
        assert!(
            body.ends_with(&format!("... ({} bytes, truncated): bad", huge.len())),
            "{body}"
        );
        let status = ErrorList(vec![e]).to_invalid_status("g", "K", &huge);
        assert!(status.message.len() < 1000, "{}", status.message.len());
        assert!(status.details.unwrap().name.len() <= MAX_ECHOED_BYTES);
    }

    #[test]
    fn aggregates_one_bare_and_several_bracketed_without_repeats() {
        let a = FieldError::required(Path::new("spec").child("network"), "");
        let b = FieldError::required(Path::new("spec").child("interface"), "");
        let one = ErrorList(vec![a.clone()]);
        assert_eq!(one.aggregate(), "spec.network: Required value");
        let many = ErrorList(vec![a.clone(), b, a]);
        assert_eq!(
            many.aggregate(),
            "[spec.network: Required value, spec.interface: Required value]"
        );
    }

    #[test]
    fn builds_new_invalid_status() {
        let errs = ErrorList(vec![FieldError::required(
            Path::new("spec").child("network"),
            "",
        )]);
        let st = errs.to_invalid_status("k8s.cni.cncf.io", "IPAMClaim", "c1");
        assert_eq!(st.code, 422);
        assert_eq!(st.reason, "Invalid");
        assert_eq!(
            st.message,
            "IPAMClaim.k8s.cni.cncf.io \"c1\" is invalid: spec.network: Required value"
        );
        let details = st.details.expect("details");
        assert_eq!(details.causes[0].reason, "FieldValueRequired");
        assert_eq!(details.causes[0].field, "spec.network");
        assert_eq!(details.causes[0].message, "Required value");
    }
}
