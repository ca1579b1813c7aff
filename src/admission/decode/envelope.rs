//! Decoding an AdmissionReview: the envelope and, in the same pass over the body's text, its
//! `object` and `oldObject` (walked by [`walk`](crate::admission::decode::walk) into typed views).
//!
//! Reviews as an API server sends them are read by hand, once. Anything else (a member of an
//! unexpected type, a repeated envelope key, malformed JSON) goes to serde_json's decoder over
//! the same types as before, which either accepts it (and the objects are then walked from the
//! text it found them in) or refuses it in its own words, position included: a refusal reads
//! the same whichever way the body came in.

use std::borrow::Cow;

use crate::admission::decode::fallback::by_serde;
use crate::admission::decode::walk::Walked;
use crate::admission::json::{Kind, Reader, Str};

/// Largest body the walk reads: offsets into the text are kept in 32 bits (with one bit to
/// spare), so 2 GiB. The server's body limit is far below.
pub const MAX_TEXT_BYTES: usize = (u32::MAX >> 1) as usize;

/// A decoded AdmissionReview.
#[derive(Debug, Default)]
pub struct Review<'a> {
    /// `apiVersion`.
    pub api_version: Option<Cow<'a, str>>,
    /// `kind`.
    pub kind: Option<Cow<'a, str>>,
    /// `request`.
    pub request: Option<Request<'a>>,
}

/// `request` of an AdmissionReview: what the webhook reads of it. Strings are borrowed from
/// the body where they hold no escapes.
#[derive(Debug, Default)]
pub struct Request<'a> {
    /// `uid`.
    pub uid: Option<Cow<'a, str>>,
    /// `kind`.
    pub kind: Option<GroupVersion<'a>>,
    /// `resource`.
    pub resource: Option<GroupVersion<'a>>,
    /// `subResource`.
    pub sub_resource: Option<Cow<'a, str>>,
    /// `name`.
    pub name: Option<Cow<'a, str>>,
    /// `namespace`.
    pub namespace: Option<Cow<'a, str>>,
    /// `operation`.
    pub operation: Option<Cow<'a, str>>,
    /// `object`, walked strictly or not as asked.
    pub object: Option<Box<Walked<'a>>>,
    /// `oldObject`, never walked strictly.
    pub old_object: Option<Box<Walked<'a>>>,
    /// `dryRun`.
    pub dry_run: Option<bool>,
}

/// `request.kind` (`metav1.GroupVersionKind`) or `request.resource`
/// (`metav1.GroupVersionResource`, whose third member is `resource`).
#[derive(Debug)]
pub struct GroupVersion<'a> {
    /// The API group.
    pub group: Cow<'a, str>,
    /// The version.
    pub version: Cow<'a, str>,
    /// The kind, or the resource.
    pub kind: Cow<'a, str>,
}

/// Decodes a review's text; `strict` walks `object` for unknown and duplicate fields. The
/// error is why the body is not a review, in serde_json's words.
pub fn decode(text: &str, strict: bool) -> Result<Review<'_>, String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "a body of {} bytes is more than the {MAX_TEXT_BYTES} this webhook reads",
            text.len()
        ));
    }
    match fast(text, strict) {
        Some(review) => Ok(review),
        None => by_serde(text, strict),
    }
}

// === The one pass ===

/// The review an API server sends, read in one pass; `None` for anything else (which
/// [`by_serde`] decodes or refuses).
fn fast(text: &str, strict: bool) -> Option<Review<'_>> {
    let mut reader = Reader::new(text);
    let mut review = Review::default();
    let mut seen = Once::default();
    let mut key = reader.open_object().ok()?;
    while let Some(k) = key {
        match plain(k)? {
            "apiVersion" => review.api_version = seen.once(0, string(&mut reader))?,
            "kind" => review.kind = seen.once(1, string(&mut reader))?,
            "request" => {
                seen.first(2)?;
                match reader.kind().ok()? {
                    Kind::Null => {
                        reader.literal().ok()?;
                    }
                    Kind::Object => {
                        // Filled where it stays: the request holds both objects' views.
                        request(
                            &mut reader,
                            strict,
                            review.request.insert(Request::default()),
                        )?
                    }
                    _ => return None,
                }
            }
            _ => {
                reader.skip().ok()?;
            }
        }
        key = reader.next_key().ok()?;
    }
    reader.at_end().then_some(review)
}

fn request<'a>(reader: &mut Reader<'a>, strict: bool, request: &mut Request<'a>) -> Option<()> {
    let mut seen = Once::default();
    let mut key = reader.open_object().ok()?;
    while let Some(k) = key {
        match plain(k)? {
            "uid" => request.uid = seen.once(0, string(reader))?,
            "kind" => request.kind = seen.once(1, gvk(reader, "kind"))?,
            "resource" => request.resource = seen.once(2, gvk(reader, "resource"))?,
            "subResource" => request.sub_resource = seen.once(3, string(reader))?,
            "name" => request.name = seen.once(4, string(reader))?,
            "namespace" => request.namespace = seen.once(5, string(reader))?,
            "operation" => request.operation = seen.once(6, string(reader))?,
            "object" => {
                seen.first(7)?;
                request.object = object(reader, strict)?;
            }
            "oldObject" => {
                seen.first(8)?;
                request.old_object = object(reader, false)?;
            }
            "dryRun" => {
                let dry_run = match reader.kind().ok()? {
                    Kind::Null => reader.literal().ok().map(|_| None),
                    Kind::Bool => {
                        let start = reader.pos();
                        reader.literal().ok()?;
                        Some(Some(reader.since(start) == "true"))
                    }
                    _ => None,
                };
                request.dry_run = seen.once(9, dry_run)?;
            }
            _ => {
                reader.skip().ok()?;
            }
        }
        key = reader.next_key().ok()?;
    }
    Some(())
}

/// Which envelope members were read: serde refuses a member twice.
#[derive(Default)]
struct Once(u16);

impl Once {
    /// `value`, the first time member `bit` is read.
    fn once<T>(&mut self, bit: u8, value: Option<T>) -> Option<T> {
        self.first(bit)?;
        value
    }

    /// Whether member `bit` is read for the first time (`None` if not).
    fn first(&mut self, bit: u8) -> Option<()> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return None;
        }
        self.0 |= mask;
        Some(())
    }
}

/// A key without escapes (serde would decode one before matching it).
fn plain(key: Str<'_>) -> Option<&str> {
    (!key.is_escaped()).then(|| key.raw())
}

/// An optional string: `null` or a string.
fn string<'a>(reader: &mut Reader<'a>) -> Option<Option<Cow<'a, str>>> {
    match reader.kind().ok()? {
        Kind::Null => reader.literal().ok().map(|_| None),
        Kind::String => reader.string().ok().map(|s| Some(s.decode())),
        _ => None,
    }
}

/// An optional group, version and `third` (kind or resource).
fn gvk<'a>(reader: &mut Reader<'a>, third: &str) -> Option<Option<GroupVersion<'a>>> {
    if reader.kind().ok()? == Kind::Null {
        return reader.literal().ok().map(|_| None);
    }
    let mut parts: [Option<Cow<'a, str>>; 3] = [None, None, None];
    let mut key = reader.open_object().ok()?;
    while let Some(k) = key {
        let k = plain(k)?.as_bytes();
        let i = match k {
            b"group" => 0,
            b"version" => 1,
            _ if k == third.as_bytes() => 2,
            _ => {
                reader.skip().ok()?;
                key = reader.next_key().ok()?;
                continue;
            }
        };
        // A repeated member, or one that is not a string, is serde's to refuse.
        if parts[i].is_some() || reader.peek()? != b'"' {
            return None;
        }
        parts[i] = Some(reader.string().ok()?.decode());
        key = reader.next_key().ok()?;
    }
    let [group, version, kind] = parts;
    Some(Some(GroupVersion {
        group: group?,
        version: version?,
        kind: kind?,
    }))
}

/// An optional object, walked.
fn object<'a>(reader: &mut Reader<'a>, strict: bool) -> Option<Option<Box<Walked<'a>>>> {
    if reader.kind().ok()? == Kind::Null {
        return reader.literal().ok().map(|_| None);
    }
    Walked::read_boxed(reader, strict).ok().map(Some)
}
