//! Reading replay's inputs: files, directories and stdin, JSON and YAML, into review bodies.
//!
//! A document is an AdmissionReview (sent as it is) or a bare IPAMClaim (wrapped as a CREATE
//! review). Each document's exact text is kept, so duplicate keys reach the strict field check.

use std::io::{BufRead as _, Read};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;
use serde_json::Value;

/// File endings read when walking a directory.
const EXTENSIONS: [&str; 4] = ["json", "ndjson", "yaml", "yml"];

/// One input document, ready to send: an AdmissionReview request body.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it came from: a file path, or `-` for stdin.
    pub source: String,
    /// Its position in the source, from 1.
    pub index: usize,
    /// Its index in the document's `items` when the document is a `List`.
    pub item: Option<usize>,
    /// The review to send, or why the document could not be read.
    pub review: Result<Vec<u8>, String>,
    /// What the API server would do to its object between the two webhooks (`chain`).
    pub between: Between,
}

/// What the API server does to an object between the mutating and the validating webhooks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Between {
    /// Nothing: an UPDATE, a review of a subresource, or a bare claim (which stands for the
    /// claim as stored, so it is judged with its status).
    #[default]
    Nothing,
    /// It drops `status`: an AdmissionReview of a CREATE of `ipamclaims` whose object carries
    /// one (the resource has a status subresource; the drop happens after the mutating
    /// webhooks ran, before the validating ones).
    DropStatus,
}

// === impl Document ===

impl Document {
    /// Where the document is, as replay prints it: `file#2`, or `file#2.items[0]` for an item
    /// of a `List`.
    pub fn place(&self) -> String {
        place(&self.source, self.index, self.item)
    }
}

/// `source#index`, and `.items[i]` for an item of a `List`.
pub(super) fn place(source: &str, index: usize, item: Option<usize>) -> String {
    match item {
        Some(i) => format!("{source}#{index}.items[{i}]"),
        None => format!("{source}#{index}"),
    }
}

/// An input that could not be read at all (a missing file, say).
#[derive(Debug, Clone)]
pub struct InputError {
    /// The path as given.
    pub source: String,
    /// Why it could not be read.
    pub message: String,
}

/// One thing read from the inputs: a document, or an input that could not be read.
#[derive(Debug, Clone)]
pub enum Input {
    /// A document, ready to judge (or holding why it could not be parsed).
    Document(Document),
    /// A path that could not be read at all.
    Error(InputError),
}

/// One document of an input as read, before anything is made of it: its JSON text (a YAML
/// document turned into JSON key by key), or why it could not be read.
#[derive(Debug, Clone)]
pub(super) struct RawDocument {
    /// Where it came from: a file path, or `-` for stdin.
    pub source: String,
    /// Its position in the source, from 1.
    pub index: usize,
    /// Its text, or why there is none.
    pub text: Result<Vec<u8>, String>,
}

/// Reads every input in order, handing each document to `visit` as soon as its file is read,
/// so that memory holds one file at a time: files, directories (recursively, `.json`,
/// `.ndjson`, `.yaml`, `.yml`), or stdin when `paths` is empty or a path is `-`.
pub fn visit_inputs(paths: &[PathBuf], stdin: &mut dyn Read, visit: &mut dyn FnMut(Input)) {
    visit_raw(paths, stdin, &mut |raw| match raw {
        Ok(doc) => visit_reviews(doc, visit),
        Err(e) => visit(Input::Error(e)),
    });
}

/// As [`visit_inputs`], handing each document over as read, whatever it is: for inputs that
/// are not reviews or claims (`--networks`).
pub(super) fn visit_raw(
    paths: &[PathBuf],
    stdin: &mut dyn Read,
    visit: &mut dyn FnMut(Result<RawDocument, InputError>),
) {
    if paths.is_empty() {
        read_raw_source("-", None, stdin, visit);
    }
    for path in paths {
        if path.as_os_str() == "-" {
            read_raw_source("-", None, stdin, visit);
            continue;
        }
        let mut files = Vec::new();
        if let Err(message) = collect_files(path, &mut files) {
            visit(Err(InputError {
                source: path.display().to_string(),
                message,
            }));
            continue;
        }
        for file in files {
            let source = file.display().to_string();
            match std::fs::File::open(&file) {
                Ok(mut f) => read_raw_source(&source, format_of(&file), &mut f, visit),
                Err(e) => visit(Err(InputError {
                    source,
                    message: format!("cannot read: {e}"),
                })),
            }
        }
    }
}

/// The review bodies of one document (an AdmissionReview, a bare claim, a `List` of claims).
fn visit_reviews(doc: RawDocument, visit: &mut dyn FnMut(Input)) {
    let reviews = match doc.text {
        Ok(raw) => to_reviews(raw, &doc.source, doc.index),
        Err(e) => vec![(None, Err(e), Between::Nothing)],
    };
    for (item, review, between) in reviews {
        visit(Input::Document(Document {
            source: doc.source.clone(),
            index: doc.index,
            item,
            review,
            between,
        }));
    }
}

/// Every input at once (see [`visit_inputs`]).
pub fn read_inputs(paths: &[PathBuf], stdin: &mut dyn Read) -> (Vec<Document>, Vec<InputError>) {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    visit_inputs(paths, stdin, &mut |input| match input {
        Input::Document(d) => docs.push(d),
        Input::Error(e) => errors.push(e),
    });
    (docs, errors)
}

/// Reads one source (a file or stdin) into review bodies (see [`read_raw_source`]).
#[cfg(test)]
pub(super) fn read_source(
    source: &str,
    format: Option<Format>,
    reader: &mut dyn Read,
    visit: &mut dyn FnMut(Input),
) {
    read_raw_source(source, format, reader, &mut |raw| match raw {
        Ok(doc) => visit_reviews(doc, visit),
        Err(e) => visit(Input::Error(e)),
    });
}

/// Reads one source (a file or stdin) document by document. JSON is streamed, so a large
/// one-document-per-line file is never held whole; YAML is read whole (its documents are small).
fn read_raw_source(
    source: &str,
    format: Option<Format>,
    reader: &mut dyn Read,
    visit: &mut dyn FnMut(Result<RawDocument, InputError>),
) {
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, reader);
    let format = match format {
        Some(f) => f,
        None => match reader.fill_buf() {
            Ok(head) => sniff(head),
            Err(e) => {
                visit(Err(InputError {
                    source: source.to_owned(),
                    message: format!("cannot read: {e}"),
                }));
                return;
            }
        },
    };
    let mut index = 0;
    let mut emit = |text: Result<Vec<u8>, String>| {
        index += 1;
        visit(Ok(RawDocument {
            source: source.to_owned(),
            index,
            text,
        }));
    };
    match format {
        Format::Json => json_documents(&mut reader, &mut emit),
        Format::Yaml => {
            let mut bytes = Vec::new();
            match reader.read_to_end(&mut bytes) {
                Ok(_) => yaml_documents(&bytes, &mut emit),
                Err(e) => emit(Err(format!("cannot read: {e}"))),
            }
        }
    }
}

/// A file, or every file with a known ending below a directory, in a stable (sorted) order.
fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("cannot list directory: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, out)?;
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            out.push(entry);
        }
    }
    Ok(())
}

/// How a file's documents are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    /// One JSON document, or several one after another (one per line).
    Json,
    /// One or more YAML documents separated by `---`.
    Yaml,
}

/// The format a file's ending names; None when the content must tell.
fn format_of(path: &Path) -> Option<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json" | "ndjson") => Some(Format::Json),
        Some("yaml" | "yml") => Some(Format::Yaml),
        _ => None,
    }
}

/// JSON starts with `{` or `[`; anything else is read as YAML (of which JSON is a subset).
fn sniff(bytes: &[u8]) -> Format {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => Format::Json,
        _ => Format::Yaml,
    }
}

/// JSON documents one after another, each kept as its exact text (duplicate keys included).
///
/// The reader is consumed in chunks parsed from memory (serde_json parses a slice several times
/// faster than a reader), keeping only the unfinished tail of a chunk: memory stays bounded by
/// the chunk size and twice the largest document, however long the file.
///
/// A document longer than a chunk is parsed again from its start each time more is read, so
/// each read is at least as long as what is already held: the buffer doubles, and a document
/// is parsed a few times over in all rather than once per chunk it spans.
fn json_documents(reader: &mut dyn Read, emit: &mut dyn FnMut(Result<Vec<u8>, String>)) {
    const CHUNK: u64 = 4 * 1024 * 1024;
    let mut buf: Vec<u8> = Vec::new();
    let mut at_end = false;
    loop {
        if !at_end {
            let want = CHUNK.max(buf.len() as u64);
            match reader.take(want).read_to_end(&mut buf) {
                Ok(0) => at_end = true,
                Ok(_) => {}
                Err(e) => return emit(Err(format!("cannot read: {e}"))),
            }
        }
        let mut stream = serde_json::Deserializer::from_slice(&buf).into_iter::<&RawValue>();
        let mut consumed = 0;
        loop {
            match stream.next() {
                Some(Ok(raw)) => {
                    emit(Ok(raw.get().as_bytes().to_vec()));
                    consumed = stream.byte_offset();
                }
                // Only whitespace is left.
                None => {
                    consumed = buf.len();
                    break;
                }
                // A document cut by the chunk boundary: read on.
                Some(Err(e)) if e.is_eof() && !at_end => break,
                Some(Err(e)) => {
                    // The rest of the stream cannot be trusted after a syntax error.
                    return emit(Err(format!("not valid JSON: {e}")));
                }
            }
        }
        buf.drain(..consumed);
        if at_end && buf.is_empty() {
            return;
        }
    }
}

/// YAML documents, each turned into JSON text key by key so that a duplicate key survives for
/// the strict field check instead of being merged away.
fn yaml_documents(bytes: &[u8], emit: &mut dyn FnMut(Result<Vec<u8>, String>)) {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return emit(Err(format!("not valid UTF-8: {e}"))),
    };
    for doc in yaml_serde::Deserializer::from_str(text) {
        let mut json = Vec::new();
        let mut ser = serde_json::Serializer::new(&mut json);
        match serde_transcode::transcode(doc, &mut ser) {
            Ok(()) if json == b"null" => {} // an empty document (a trailing `---`)
            Ok(()) => emit(Ok(json)),
            Err(e) => {
                emit(Err(format!("not valid YAML: {e}")));
                break;
            }
        }
    }
}

/// A review body to send, or why there is none.
type Review = Result<Vec<u8>, String>;

/// What a document (or an item of a `List`) turned out to be.
enum Piece<'a> {
    /// An AdmissionReview: sent as it is.
    Review(Between),
    /// A bare IPAMClaim, with its name and namespace.
    Claim { name: String, namespace: String },
    /// A `List` (what `kubectl get -o yaml|json` prints) and its items' text.
    List(Vec<&'a RawValue>),
}

/// The members of a document that say what it is, read leniently: the last of two equal keys
/// wins (as in the API server; the strict field check reports the duplicate later), a member
/// of the wrong JSON type counts as absent, and nothing else is decoded.
#[derive(Default)]
struct Head<'a> {
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    items: Option<&'a RawValue>,
    /// Of an AdmissionReview's `request`: what the API server does between the webhooks.
    between: Between,
}

/// The members of an AdmissionReview's `request` that say whether the API server drops the
/// object's status before validating it; read as leniently as [`Head`] (a member of another
/// type counts as absent), and without decoding anything: each is only compared.
struct RequestHead {
    create: bool,
    main_resource: bool,
    no_sub_resource: bool,
    object_has_status: bool,
}

// === impl RequestHead ===

impl RequestHead {
    fn between(&self) -> Between {
        if self.create && self.main_resource && self.no_sub_resource && self.object_has_status {
            Between::DropStatus
        } else {
            Between::Nothing
        }
    }
}

impl Default for RequestHead {
    fn default() -> Self {
        RequestHead {
            create: false,
            main_resource: false,
            no_sub_resource: true,
            object_has_status: false,
        }
    }
}

impl<'de> serde::Deserialize<'de> for RequestHead {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, Visitor};
        use std::borrow::Cow;

        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RequestHead;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequestHead, A::Error> {
                let mut head = RequestHead::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "operation" => head.create = map.next_value_seed(Probe::Is("CREATE"))?,
                        "subResource" => {
                            head.no_sub_resource = map.next_value_seed(Probe::Empty)?
                        }
                        "resource" => {
                            let plural = crate::admission::model::types::PLURAL;
                            head.main_resource =
                                map.next_value_seed(Probe::Member("resource", plural))?;
                        }
                        "object" => {
                            head.object_has_status = map.next_value_seed(Probe::HasKey("status"))?
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(head)
            }
            fn visit_unit<E>(self) -> Result<RequestHead, E> {
                Ok(RequestHead::default())
            }
        }
        d.deserialize_any(Members)
    }
}

/// A question about one JSON value, answered while it is skimmed: nothing is decoded or kept.
#[derive(Clone, Copy)]
enum Probe {
    /// Whether it is this string.
    Is(&'static str),
    /// Whether it is the empty string or `null`.
    Empty,
    /// Whether it is an object with this key.
    HasKey(&'static str),
    /// Whether it is an object whose member (the last of repeated keys) is this string.
    Member(&'static str, &'static str),
}

impl<'de> serde::de::DeserializeSeed<'de> for Probe {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Probe {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(match self {
            Probe::Is(text) => v == text,
            Probe::Empty => v.is_empty(),
            Probe::HasKey(_) | Probe::Member(..) => false,
        })
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(matches!(self, Probe::Empty))
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self {
                Probe::HasKey(name) if key == name => {
                    found = true;
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                Probe::Member(name, text) if key == name => {
                    found = map.next_value_seed(Probe::Is(text))?;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

// === impl Head ===

impl<'de> serde::Deserialize<'de> for Head<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, Visitor};
        use std::borrow::Cow;

        /// A string, or `None` for a value of any other type.
        struct Text(Option<String>);
        impl<'de> serde::Deserialize<'de> for Text {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Text(Value::deserialize(d)?.as_str().map(str::to_owned)))
            }
        }

        struct Members<'a>(Head<'a>);
        impl<'de> Visitor<'de> for Members<'de> {
            type Value = Head<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Head<'de>, A::Error> {
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "kind" => self.0.kind = map.next_value::<Text>()?.0,
                        "request" => {
                            self.0.between = map.next_value::<RequestHead>()?.between();
                        }
                        "items" => self.0.items = Some(map.next_value()?),
                        "metadata" => {
                            let meta: Value = map.next_value()?;
                            let text = |k: &str| meta.get(k)?.as_str().map(str::to_owned);
                            self.0.name = text("name");
                            self.0.namespace = text("namespace");
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(self.0)
            }
        }
        d.deserialize_map(Members(Head::default()))
    }
}

/// Reads what `raw` is. `what` names it in errors ("document", "item").
fn piece<'a>(raw: &'a [u8], what: &str) -> Result<Piece<'a>, String> {
    let head: Head<'a> =
        serde_json::from_slice(raw).map_err(|e| format!("not a JSON {what}: {e}"))?;
    let expected = if what == "item" {
        "an IPAMClaim"
    } else {
        "an AdmissionReview, an IPAMClaim or a List of IPAMClaims"
    };
    match head.kind.as_deref().unwrap_or_default() {
        "AdmissionReview" if what != "item" => Ok(Piece::Review(head.between)),
        crate::admission::model::types::KIND => Ok(Piece::Claim {
            name: head.name.unwrap_or_default(),
            namespace: head.namespace.unwrap_or_default(),
        }),
        // `kubectl get ipamclaims -o yaml|json` prints a `List`; the API itself an
        // `IPAMClaimList`.
        "List" | "IPAMClaimList" if what != "item" => {
            let items = match head.items {
                None => Vec::new(),
                Some(items) if items.get() == "null" => Vec::new(),
                Some(items) => serde_json::from_str(items.get())
                    .map_err(|_| format!("the {what}'s items are not a list"))?,
            };
            Ok(Piece::List(items))
        }
        "" => Err(format!("{what} has no kind: expected {expected}")),
        other => Err(format!("{what} is a {other}: expected {expected}")),
    }
}

/// A document as review bodies, each with the index of the `List` item it came from: an
/// AdmissionReview as it is; a bare IPAMClaim as a CREATE in its namespace (or `default`) with
/// a uid derived from where it was read; a `List` item by item, as bare claims.
///
/// Only what a document is (its kind, a claim's name and namespace, a list's items) is read
/// here: the pipeline reads the rest, so the document is skimmed rather than decoded whole.
fn to_reviews(raw: Vec<u8>, source: &str, index: usize) -> Vec<(Option<usize>, Review, Between)> {
    let text = match String::from_utf8(raw) {
        Ok(text) => text,
        Err(e) => return vec![(None, Err(format!("not valid UTF-8: {e}")), Between::Nothing)],
    };
    match piece(text.as_bytes(), "document") {
        Err(e) => vec![(None, Err(e), Between::Nothing)],
        Ok(Piece::Review(between)) => vec![(None, Ok(text.into_bytes()), between)],
        Ok(Piece::Claim { name, namespace }) => {
            let uid = replay_uid(source, &index.to_string());
            vec![(
                None,
                Ok(wrap_claim(&text, &name, &namespace, &uid).into_bytes()),
                Between::Nothing,
            )]
        }
        Ok(Piece::List(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let review = match piece(item.get().as_bytes(), "item") {
                    Ok(Piece::Claim { name, namespace }) => {
                        let uid = replay_uid(source, &format!("{index}.items[{i}]"));
                        Ok(wrap_claim(item.get(), &name, &namespace, &uid).into_bytes())
                    }
                    Ok(_) => Err("item is not an IPAMClaim".to_owned()),
                    Err(e) => Err(e),
                };
                (Some(i), review, Between::Nothing)
            })
            .collect(),
    }
}

/// A bare claim's text as a CREATE review with `uid`.
fn wrap_claim(raw: &str, name: &str, namespace: &str, uid: &str) -> String {
    let namespace = if namespace.is_empty() {
        "default"
    } else {
        namespace
    };
    let q = |s: &str| Value::String(s.to_owned()).to_string();
    // The object's own text is embedded unchanged so that the strict field check sees it.
    format!(
        concat!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"#,
            r#""uid":{uid},"#,
            r#""kind":{{"group":"k8s.cni.cncf.io","version":"v1alpha1","kind":"IPAMClaim"}},"#,
            r#""resource":{{"group":"k8s.cni.cncf.io","version":"v1alpha1","resource":"ipamclaims"}},"#,
            r#""name":{name},"namespace":{namespace},"operation":"CREATE","#,
            r#""userInfo":{{"username":"ipamclaim-webhook-replay"}},"#,
            r#""object":{object},"oldObject":null,"dryRun":true,"#,
            r#""options":{{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}}}}}}"#
        ),
        uid = q(uid),
        name = q(name),
        namespace = q(namespace),
        object = raw,
    )
}

/// A stable uid for a bare object at `position` (a document number, or `N.items[i]`) of
/// `source`, so that replaying the same files twice (or through a server) prints the same
/// output.
fn replay_uid(source: &str, position: &str) -> String {
    // FNV-1a: small, stable across platforms and releases (unlike std's SipHash keys).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source.bytes().chain(position.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let hex = format!("{h:016x}");
    format!("00000000-0000-4000-8000-{}", &hex[4..])
}

/// What the replay tests of this module and of [`crate::replay`] read documents with.
#[cfg(test)]
pub(crate) mod testing {
    use super::{read_source, Document, Format, Input};

    /// A bare claim, as a user would write it.
    pub const CLAIM_YAML: &str = "apiVersion: k8s.cni.cncf.io/v1alpha1
kind: IPAMClaim
metadata:
  name: vm-a.tenantred
  namespace: ns1
spec:
  network: tenantred
  interface: pod16367aacb67
";

    pub fn docs(bytes: &str, format: Format) -> Vec<Document> {
        docs_from("test", bytes, format)
    }

    pub fn docs_from(source: &str, bytes: &str, format: Format) -> Vec<Document> {
        let mut out = Vec::new();
        read_source(
            source,
            Some(format),
            &mut bytes.as_bytes(),
            &mut |i| match i {
                Input::Document(d) => out.push(d),
                Input::Error(e) => panic!("{e:?}"),
            },
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{docs, docs_from, CLAIM_YAML};
    use super::*;

    #[test]
    fn uses_default_namespace_and_a_stable_uid() {
        let yaml = CLAIM_YAML.replace("  namespace: ns1\n", "");
        let a = docs(&yaml, Format::Yaml);
        let b = docs(&yaml, Format::Yaml);
        let ra: Value = serde_json::from_slice(a[0].review.as_ref().unwrap()).unwrap();
        let rb: Value = serde_json::from_slice(b[0].review.as_ref().unwrap()).unwrap();
        assert_eq!(ra["request"]["namespace"], "default");
        assert_eq!(ra["request"]["uid"], rb["request"]["uid"]);
        let other = docs_from("other", &yaml, Format::Yaml);
        let ro: Value = serde_json::from_slice(other[0].review.as_ref().unwrap()).unwrap();
        assert_ne!(ra["request"]["uid"], ro["request"]["uid"]);
    }

    #[test]
    fn reads_multi_document_yaml() {
        let yaml = format!(
            "{CLAIM_YAML}---\n{}---\n",
            CLAIM_YAML.replace("vm-a", "vm-b")
        );
        let d = docs(&yaml, Format::Yaml);
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].index, 2);
    }

    #[test]
    fn reads_documents_cut_by_the_chunk_boundary() {
        // Large enough to span several 4 MiB chunks, with documents straddling the borders.
        let line = format!(
            "{{\"kind\":\"IPAMClaim\",\"metadata\":{{\"name\":\"a\",\"annotations\":{{\"pad\":\"{}\"}}}}}}\n",
            "x".repeat(300_001)
        );
        let text = line.repeat(30);
        let d = docs(&text, Format::Json);
        assert_eq!(d.len(), 30);
        assert!(d.iter().all(|d| d.review.is_ok()));
        assert_eq!(d[29].index, 30);
    }

    // Regression: a document longer than a chunk was parsed again for every chunk it spans
    // (quadratic in its length); it is read whole, once, with the ones around it.
    #[test]
    fn reads_a_document_many_chunks_long() {
        let big = format!(
            "{{\"kind\":\"IPAMClaim\",\"metadata\":{{\"name\":\"big\"}},\"spec\":{{\"pad\":\"{}\"}}}}",
            "x".repeat(30 * 1024 * 1024)
        );
        let small = "{\"kind\":\"IPAMClaim\",\"metadata\":{\"name\":\"small\"}}";
        let text = format!("{small}\n{big}\n{small}\n");
        let d = docs(&text, Format::Json);
        assert_eq!(d.len(), 3);
        assert!(d.iter().all(|d| d.review.is_ok()));
        let review: Value = serde_json::from_slice(d[1].review.as_ref().unwrap()).unwrap();
        assert_eq!(review["request"]["name"], "big");
        assert_eq!(
            review["request"]["object"]["spec"]["pad"]
                .as_str()
                .map(str::len),
            Some(30 * 1024 * 1024)
        );
    }

    #[test]
    fn reports_an_unparsable_document_and_keeps_earlier_ones() {
        let d = docs("{\"kind\":\"IPAMClaim\"}\n{not json", Format::Json);
        assert_eq!(d.len(), 2);
        assert!(d[0].review.is_ok());
        assert!(d[1].review.as_ref().unwrap_err().contains("not valid JSON"));
    }

    #[test]
    fn refuses_documents_of_other_kinds() {
        let d = docs("kind: Pod\napiVersion: v1\n", Format::Yaml);
        assert!(d[0].review.as_ref().unwrap_err().contains("is a Pod"));
    }

    /// Issue 26: which reviews the API server drops the status of between the webhooks, read
    /// leniently: a member of another type counts as absent.
    #[test]
    fn tells_a_create_of_the_main_resource_with_status() {
        let review = |request: &str| {
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
            )
        };
        let main = r#""resource":{"group":"k8s.cni.cncf.io","version":"v1alpha1","resource":"ipamclaims"}"#;
        for (request, want) in [
            (
                format!(r#"{{"operation":"CREATE",{main},"object":{{"status":{{"ips":null}}}}}}"#),
                Between::DropStatus,
            ),
            (
                format!(
                    r#"{{"operation":"CREATE",{main},"subResource":null,"object":{{"status":{{}}}}}}"#
                ),
                Between::DropStatus,
            ),
            (
                format!(
                    r#"{{"operation":"CREATE",{main},"subResource":"","object":{{"status":1}}}}"#
                ),
                Between::DropStatus,
            ),
            (
                format!(r#"{{"operation":"CREATE",{main},"object":{{"spec":{{}}}}}}"#),
                Between::Nothing,
            ),
            (
                format!(r#"{{"operation":"UPDATE",{main},"object":{{"status":{{}}}}}}"#),
                Between::Nothing,
            ),
            (
                format!(
                    r#"{{"operation":"CREATE",{main},"subResource":"status","object":{{"status":{{}}}}}}"#
                ),
                Between::Nothing,
            ),
            (
                r#"{"operation":"CREATE","resource":{"resource":"pods"},"object":{"status":{}}}"#
                    .to_owned(),
                Between::Nothing,
            ),
            (
                format!(r#"{{"operation":7,{main},"object":{{"status":{{}}}}}}"#),
                Between::Nothing,
            ),
            (
                format!(r#"{{"operation":"CREATE",{main},"object":null}}"#),
                Between::Nothing,
            ),
        ] {
            let d = docs(&review(&request), Format::Json);
            assert_eq!(d[0].between, want, "{request}");
        }
    }
}
