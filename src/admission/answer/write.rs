//! Writing the answer: the AdmissionReview response as JSON, in one buffer sized before it is
//! written (from the lengths of its parts), byte for byte what serde_json writes for the same
//! fields (kube-core's `Status` included, its empty members left out as its serde attributes
//! say).
//!
//! A patch is written base64-encoded straight from its operations (and so from the review's
//! text, for a list rewritten whole): the answer is the only copy of it.

use std::io::Write as _;

use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use kube::core::Status;

use crate::admission::answer::response::Response;
use crate::admission::rules::defaulting::Operation;

/// The AdmissionReview answering with `response`, in `api_version`.
pub fn write(api_version: &str, response: &Response<'_>) -> Vec<u8> {
    let patch = response.patch.as_deref().map(|ops| Patch {
        ops,
        json_len: json_len(ops),
    });
    let mut size = Estimate(0);
    review(&mut size, api_version, response, patch.as_ref());
    let mut out = Buffer(Vec::with_capacity(size.0));
    review(&mut out, api_version, response, patch.as_ref());
    out.0
}

/// A patch to write, and the length of its JSON text.
struct Patch<'p, 'a> {
    ops: &'p [Operation<'a>],
    json_len: usize,
}

/// Where the answer goes: an estimate of its size, then the buffer.
trait Sink {
    /// JSON text as it is.
    fn raw(&mut self, text: &str);
    /// A JSON string, quoted and escaped as serde_json escapes it.
    fn string(&mut self, text: &str);
    /// A patch, as a base64 JSON string.
    fn patch(&mut self, patch: &Patch<'_, '_>);
}

/// The size of an answer, without reading its strings: each as long as its text and an eighth
/// more for escapes (the quotes a denial's message holds around each value). An answer with
/// more escapes than that grows its buffer once or twice.
struct Estimate(usize);

impl Sink for Estimate {
    fn raw(&mut self, text: &str) {
        self.0 += text.len();
    }

    fn string(&mut self, text: &str) {
        self.0 += 2 + text.len() + text.len() / 8;
    }

    fn patch(&mut self, patch: &Patch<'_, '_>) {
        self.0 += 2 + patch.json_len.div_ceil(3) * 4;
    }
}

/// Writes an answer.
struct Buffer(Vec<u8>);

impl Sink for Buffer {
    fn raw(&mut self, text: &str) {
        self.0.extend_from_slice(text.as_bytes());
    }

    fn string(&mut self, text: &str) {
        self.0.push(b'"');
        escape(&mut self.0, text);
        self.0.push(b'"');
    }

    fn patch(&mut self, patch: &Patch<'_, '_>) {
        self.0.push(b'"');
        let mut encoder = base64::write::EncoderWriter::new(
            &mut self.0,
            &base64::engine::general_purpose::STANDARD,
        );
        // Writing to a vector cannot fail, nor can serialising the operations (their numbers
        // and strings were read from the review).
        let _ = serde_json::to_writer(&mut encoder, patch.ops);
        let _ = encoder.finish();
        drop(encoder);
        self.0.push(b'"');
    }
}

/// The length of the operations' JSON text.
fn json_len(ops: &[Operation<'_>]) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    let _ = serde_json::to_writer(&mut counter, ops);
    let _ = counter.flush();
    counter.0
}

/// Escapes `text` as serde_json does: `"` and `\` with a backslash, the control characters
/// `\b \t \n \f \r` by name and the others as `\u00XX`; runs of plain text copied whole.
fn escape(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut start = 0;
    loop {
        let at = crate::admission::json::plain_run(bytes, start);
        out.extend_from_slice(&bytes[start..at]);
        let Some(&b) = bytes.get(at) else {
            return;
        };
        let named = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            b'\t' => b't',
            b'\n' => b'n',
            0x0c => b'f',
            b'\r' => b'r',
            _ => 0,
        };
        match named {
            0 => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
            named => {
                out.push(b'\\');
                out.push(named);
            }
        }
        start = at + 1;
    }
}

/// The members of an object being written, separated by commas.
struct Members(bool);

impl Members {
    fn open(out: &mut impl Sink) -> Self {
        out.raw("{");
        Members(true)
    }

    /// Starts the member `name`, one of this file's field names, which need no escape.
    fn name(&mut self, out: &mut impl Sink, name: &'static str) {
        debug_assert!(name.bytes().all(|b| b >= b' ' && b != b'"' && b != b'\\'));
        if !std::mem::take(&mut self.0) {
            out.raw(",");
        }
        out.raw("\"");
        out.raw(name);
        out.raw("\":");
    }

    fn string(&mut self, out: &mut impl Sink, name: &'static str, value: &str) {
        self.name(out, name);
        out.string(value);
    }

    /// A member whose name comes from elsewhere (an annotation's key), escaped as needed.
    fn entry(&mut self, out: &mut impl Sink, name: &str, value: &str) {
        if !std::mem::take(&mut self.0) {
            out.raw(",");
        }
        out.string(name);
        out.raw(":");
        out.string(value);
    }

    fn close(self, out: &mut impl Sink) {
        out.raw("}");
    }
}

fn review(
    out: &mut impl Sink,
    api_version: &str,
    response: &Response<'_>,
    patch: Option<&Patch<'_, '_>>,
) {
    let mut review = Members::open(out);
    review.string(out, "apiVersion", api_version);
    review.string(out, "kind", "AdmissionReview");
    review.name(out, "response");
    let mut r = Members::open(out);
    r.string(out, "uid", response.uid);
    r.name(out, "allowed");
    out.raw(if response.allowed { "true" } else { "false" });
    if let Some(s) = &response.status {
        r.name(out, "status");
        status(out, s);
    }
    if let Some(patch) = patch {
        r.name(out, "patch");
        out.patch(patch);
        r.string(out, "patchType", "JSONPatch");
    }
    if let Some(annotations) = &response.audit_annotations {
        r.name(out, "auditAnnotations");
        let mut a = Members::open(out);
        for (key, value) in annotations {
            a.entry(out, key, value);
        }
        a.close(out);
    }
    if !response.warnings.is_empty() {
        r.name(out, "warnings");
        out.raw("[");
        for (i, warning) in response.warnings.texts().enumerate() {
            if i > 0 {
                out.raw(",");
            }
            out.string(&warning);
        }
        out.raw("]");
    }
    r.close(out);
    review.close(out);
}

/// kube-core's `Status`, as its serde attributes write it.
fn status(out: &mut impl Sink, s: &Status) {
    let mut m = Members::open(out);
    if let Some(summary) = s.status {
        let summary = match summary {
            StatusSummary::Success => "Success",
            StatusSummary::Failure => "Failure",
        };
        m.string(out, "status", summary);
    }
    if s.code != 0 {
        m.name(out, "code");
        out.raw(&s.code.to_string());
    }
    if !s.message.is_empty() {
        m.string(out, "message", &s.message);
    }
    if let Some(metadata) = &s.metadata {
        // Never set by this webhook; written as serde would, should it ever be.
        m.name(out, "metadata");
        out.raw(&serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned()));
    }
    if !s.reason.is_empty() {
        m.string(out, "reason", &s.reason);
    }
    if let Some(d) = &s.details {
        m.name(out, "details");
        details(out, d);
    }
    m.close(out);
}

fn details(out: &mut impl Sink, d: &StatusDetails) {
    let mut m = Members::open(out);
    for (name, value) in [
        ("name", &d.name),
        ("group", &d.group),
        ("kind", &d.kind),
        ("uid", &d.uid),
    ] {
        if !value.is_empty() {
            m.string(out, name, value);
        }
    }
    if !d.causes.is_empty() {
        m.name(out, "causes");
        out.raw("[");
        for (i, cause) in d.causes.iter().enumerate() {
            if i > 0 {
                out.raw(",");
            }
            self::cause(out, cause);
        }
        out.raw("]");
    }
    if d.retry_after_seconds != 0 {
        m.name(out, "retryAfterSeconds");
        out.raw(&d.retry_after_seconds.to_string());
    }
    m.close(out);
}

fn cause(out: &mut impl Sink, c: &StatusCause) {
    let mut m = Members::open(out);
    for (name, value) in [
        ("reason", &c.reason),
        ("message", &c.message),
        ("field", &c.field),
    ] {
        if !value.is_empty() {
            m.string(out, name, value);
        }
    }
    m.close(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A string is written exactly as serde_json writes it, whatever escapes it needs.
        #[test]
        fn writes_any_string_as_serde_json_does(
            text in "([a-z\"\\\\\\x00-\\x1f\\x7f\u{80}-\u{10ffff}]{0,3}[ -~]{0,20}){0,8}"
        ) {
            let mut out = Buffer(Vec::new());
            out.string(&text);
            proptest::prop_assert_eq!(
                String::from_utf8(out.0).unwrap(),
                serde_json::to_string(&text).unwrap()
            );
        }
    }
}
