//! `replay`: the admission pipeline over captured or hand-written payloads, with no cluster.
//!
//! Inputs are read into documents (AdmissionReviews, or bare IPAMClaims wrapped as CREATE
//! reviews), each document is sent through a [`Transport`] (the pipeline in process, or a
//! running webhook over HTTPS), and the answers are printed as JSON lines or text.

use std::fmt::Write as _;
use std::io::{BufRead as _, Read};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::admission::{self, Options, Webhook};

/// File endings read when walking a directory.
const EXTENSIONS: [&str; 4] = ["json", "ndjson", "yaml", "yml"];

/// Which webhook(s) replay runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `/validate` only.
    Validate,
    /// `/mutate` only.
    Mutate,
    /// What the API server does: mutate, then validate the patched object.
    Chain,
}

/// One input document, ready to send: an AdmissionReview request body.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it came from: a file path, or `-` for stdin.
    pub source: String,
    /// Its position in the source, from 1.
    pub index: usize,
    /// The review to send, or why the document could not be read.
    pub review: Result<Vec<u8>, String>,
}

/// An input that could not be read at all (a missing file, say).
#[derive(Debug, Clone)]
pub struct InputError {
    /// The path as given.
    pub source: String,
    /// Why it could not be read.
    pub message: String,
}

/// Sends a review to a webhook and returns the AdmissionReview it answers with.
pub trait Transport {
    /// Posts `body` to `webhook`; an error is a review that got no answer.
    fn send(&mut self, webhook: Webhook, body: &[u8]) -> Result<Vec<u8>, String>;
}

/// The admission pipeline in this process.
#[derive(Debug, Clone, Default)]
pub struct InProcess {
    /// The pipeline's options (field validation, defaults).
    pub options: Options,
}

// === impl InProcess ===

impl Transport for InProcess {
    fn send(&mut self, webhook: Webhook, body: &[u8]) -> Result<Vec<u8>, String> {
        admission::review(body, webhook, &self.options)
            .map(|r| r.body)
            .map_err(|e| format!("the webhook refused the request (400): {e}"))
    }
}

/// A running webhook, reached over HTTPS (`--server URL --ca FILE`).
pub struct Remote {
    client: reqwest::Client,
    base: String,
    runtime: tokio::runtime::Runtime,
}

/// A `--server` connection that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS or HTTP client could not be built.
    #[error("cannot set up the HTTPS client: {0}")]
    Client(String),
}

// === impl Remote ===

impl Remote {
    /// A client for the webhook at `url` (e.g. `https://localhost:8443`), trusting only the CA
    /// in `ca`, optionally presenting a client certificate (`(cert, key)` PEM files).
    pub fn new(
        url: &str,
        ca: &Path,
        client_cert: Option<(&Path, &Path)>,
    ) -> Result<Self, RemoteError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};

        let pem_err = |path: &Path, reason: String| RemoteError::Pem {
            path: path.display().to_string(),
            reason,
        };
        let mut roots = rustls::RootCertStore::empty();
        let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .map_err(|e| pem_err(ca, e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| pem_err(ca, e.to_string()))?;
        if cas.is_empty() {
            return Err(pem_err(ca, "no certificate in file".to_owned()));
        }
        for cert in cas {
            roots
                .add(cert)
                .map_err(|e| pem_err(ca, format!("not a usable CA certificate: {e}")))?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RemoteError::Client(e.to_string()))?
            .with_root_certificates(roots);
        let mut tls = match client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| pem_err(cert, e.to_string()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| pem_err(cert, e.to_string()))?;
                let key =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| pem_err(cert, format!("unusable client certificate: {e}")))?
            }
        };
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| RemoteError::Client(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Client(e.to_string()))?;
        Ok(Remote {
            client,
            base: url.trim_end_matches('/').to_owned(),
            runtime,
        })
    }
}

impl Transport for Remote {
    fn send(&mut self, webhook: Webhook, body: &[u8]) -> Result<Vec<u8>, String> {
        let path = match webhook {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
        };
        let url = format!("{}/{path}", self.base);
        let request = self
            .client
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
            if status == reqwest::StatusCode::BAD_REQUEST {
                // The same words the in-process pipeline uses for a request it cannot answer.
                return Err(format!(
                    "the webhook refused the request (400): {}",
                    String::from_utf8_lossy(&bytes).trim()
                ));
            }
            if !status.is_success() {
                return Err(format!(
                    "{url}: HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                ));
            }
            Ok(bytes.to_vec())
        })
    }
}

/// One thing read from the inputs: a document, or an input that could not be read.
#[derive(Debug, Clone)]
pub enum Input {
    /// A document, ready to judge (or holding why it could not be parsed).
    Document(Document),
    /// A path that could not be read at all.
    Error(InputError),
}

/// Reads every input in order, handing each document to `visit` as soon as its file is read,
/// so that memory holds one file at a time: files, directories (recursively, `.json`,
/// `.ndjson`, `.yaml`, `.yml`), or stdin when `paths` is empty or a path is `-`.
pub fn visit_inputs(paths: &[PathBuf], stdin: &mut dyn Read, visit: &mut dyn FnMut(Input)) {
    if paths.is_empty() {
        read_source("-", None, stdin, visit);
    }
    for path in paths {
        if path.as_os_str() == "-" {
            read_source("-", None, stdin, visit);
            continue;
        }
        let mut files = Vec::new();
        if let Err(message) = collect_files(path, &mut files) {
            visit(Input::Error(InputError {
                source: path.display().to_string(),
                message,
            }));
            continue;
        }
        for file in files {
            let source = file.display().to_string();
            match std::fs::File::open(&file) {
                Ok(mut f) => read_source(&source, format_of(&file), &mut f, visit),
                Err(e) => visit(Input::Error(InputError {
                    source,
                    message: format!("cannot read: {e}"),
                })),
            }
        }
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

/// Reads one source (a file or stdin) document by document. JSON is streamed, so a large
/// one-document-per-line file is never held whole; YAML is read whole (its documents are small).
fn read_source(
    source: &str,
    format: Option<Format>,
    reader: &mut dyn Read,
    visit: &mut dyn FnMut(Input),
) {
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, reader);
    let format = match format {
        Some(f) => f,
        None => match reader.fill_buf() {
            Ok(head) => sniff(head),
            Err(e) => {
                visit(Input::Error(InputError {
                    source: source.to_owned(),
                    message: format!("cannot read: {e}"),
                }));
                return;
            }
        },
    };
    let mut index = 0;
    let mut emit = |raw: Result<Vec<u8>, String>| {
        index += 1;
        visit(Input::Document(Document {
            source: source.to_owned(),
            index,
            review: raw.and_then(|raw| to_review(raw, source, index)),
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
enum Format {
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
/// the chunk size and the largest document, however long the file.
fn json_documents(reader: &mut dyn Read, emit: &mut dyn FnMut(Result<Vec<u8>, String>)) {
    const CHUNK: u64 = 4 * 1024 * 1024;
    let mut buf: Vec<u8> = Vec::new();
    let mut at_end = false;
    loop {
        if !at_end {
            match reader.take(CHUNK).read_to_end(&mut buf) {
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

/// A document as a review body: an AdmissionReview as it is; a bare IPAMClaim as a CREATE in
/// its namespace (or `default`) with a uid derived from where it was read.
fn to_review(raw: Vec<u8>, source: &str, index: usize) -> Result<Vec<u8>, String> {
    // Only the kind (and a claim's name and namespace) is needed here: the pipeline reads the
    // rest, so the document is skimmed rather than decoded whole.
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(default)]
        name: String,
        #[serde(default)]
        namespace: String,
    }
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        kind: String,
        metadata: Option<Meta>,
    }
    let head: Head =
        serde_json::from_slice(&raw).map_err(|e| format!("not a JSON document: {e}"))?;
    match head.kind.as_str() {
        "AdmissionReview" => Ok(raw),
        crate::types::KIND => {
            let meta = head.metadata.unwrap_or(Meta {
                name: String::new(),
                namespace: String::new(),
            });
            let raw = String::from_utf8(raw).map_err(|e| format!("not valid UTF-8: {e}"))?;
            Ok(wrap_claim(&raw, &meta.name, &meta.namespace, source, index).into_bytes())
        }
        "" => Err("document has no kind: expected an AdmissionReview or an IPAMClaim".to_owned()),
        other => Err(format!(
            "document is a {other}: expected an AdmissionReview or an IPAMClaim"
        )),
    }
}

fn wrap_claim(raw: &str, name: &str, namespace: &str, source: &str, index: usize) -> String {
    let namespace = if namespace.is_empty() {
        "default"
    } else {
        namespace
    };
    let uid = replay_uid(source, index);
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
        uid = q(&uid),
        name = q(name),
        namespace = q(namespace),
        object = raw,
    )
}

/// A stable uid for a bare object, so that replaying the same files twice (or through a
/// server) prints the same output.
fn replay_uid(source: &str, index: usize) -> String {
    // FNV-1a: small, stable across platforms and releases (unlike std's SipHash keys).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source.bytes().chain(index.to_string().bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let hex = format!("{h:016x}");
    format!("00000000-0000-4000-8000-{}", &hex[4..])
}

/// The AdmissionReview answering one document, as the webhook(s) of `mode` answer it.
///
/// `Chain` does what the API server does, through the same transport for both steps, so that
/// a run in process and one against a server print the same bytes: a review that `/validate`
/// refuses to decode (strict field errors) stops there, as the API server would refuse it
/// before any webhook; otherwise `/mutate` runs, and `/validate` judges the patched object.
/// The answer is the validation verdict carrying the mutation's patch.
pub fn judge(review: &[u8], mode: Mode, transport: &mut dyn Transport) -> Result<Vec<u8>, String> {
    match mode {
        Mode::Validate => transport.send(Webhook::Validate, review),
        Mode::Mutate => transport.send(Webhook::Mutate, review),
        Mode::Chain => chain(review, transport),
    }
}

fn chain(review: &[u8], transport: &mut dyn Transport) -> Result<Vec<u8>, String> {
    let validated = transport.send(Webhook::Validate, review)?;
    let verdict: Value = parse_answer(&validated)?;
    if verdict.pointer("/response/status/reason") == Some(&Value::from("BadRequest")) {
        return Ok(validated);
    }
    let mutated: Value = parse_answer(&transport.send(Webhook::Mutate, review)?)?;
    let Some(patch_b64) = mutated.pointer("/response/patch").and_then(Value::as_str) else {
        return Ok(validated);
    };
    let patch_bytes = base64::engine::general_purpose::STANDARD
        .decode(patch_b64)
        .map_err(|e| format!("the mutating webhook sent a patch that is not base64: {e}"))?;
    let patch: json_patch::Patch = serde_json::from_slice(&patch_bytes)
        .map_err(|e| format!("the mutating webhook sent a patch that is not JSON Patch: {e}"))?;
    let mut request: Value =
        serde_json::from_slice(review).map_err(|e| format!("not a JSON review: {e}"))?;
    let object = request
        .pointer_mut("/request/object")
        .ok_or("the mutating webhook patched a review without an object")?;
    json_patch::patch(object, &patch)
        .map_err(|e| format!("the mutating webhook's patch does not apply: {e}"))?;
    let patched_review = serde_json::to_vec(&request).map_err(|e| e.to_string())?;

    let mut answer: Value = parse_answer(&transport.send(Webhook::Validate, &patched_review)?)?;
    if let Some(response) = answer.get_mut("response").and_then(Value::as_object_mut) {
        response.insert("patch".to_owned(), Value::from(patch_b64));
        response.insert("patchType".to_owned(), Value::from("JSONPatch"));
    }
    serde_json::to_vec(&answer).map_err(|e| e.to_string())
}

fn parse_answer(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("the webhook's answer is not JSON: {e}"))
}

/// What happened to one document.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Where the document came from.
    pub source: String,
    /// Its position in the source, from 1.
    pub index: usize,
    /// The AdmissionReview answer, or why there is none.
    pub answer: Result<Vec<u8>, String>,
}

// === impl Outcome ===

impl Outcome {
    /// Whether the answer allowed the review (false for an error).
    pub fn allowed(&self) -> Option<bool> {
        let answer = self.answer.as_ref().ok()?;
        serde_json::from_slice::<Value>(answer)
            .ok()?
            .pointer("/response/allowed")?
            .as_bool()
    }
}

/// Runs one document through `mode` on `transport`.
pub fn run_one(doc: &Document, mode: Mode, transport: &mut dyn Transport) -> Outcome {
    Outcome {
        source: doc.source.clone(),
        index: doc.index,
        answer: match &doc.review {
            Ok(review) => judge(review, mode, transport),
            Err(e) => Err(e.clone()),
        },
    }
}

/// Runs every document through `mode` on `transport`; every document is processed, whatever
/// happened to the ones before it.
pub fn run(docs: &[Document], mode: Mode, transport: &mut dyn Transport) -> Vec<Outcome> {
    docs.iter()
        .map(|doc| run_one(doc, mode, transport))
        .collect()
}

/// Tallies of one run, and its exit status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Documents allowed.
    pub allowed: usize,
    /// Documents denied.
    pub denied: usize,
    /// Documents or inputs that could not be read, parsed or sent.
    pub errors: usize,
}

// === impl Tally ===

impl Tally {
    /// Counts outcomes and unreadable inputs.
    pub fn of(outcomes: &[Outcome], input_errors: usize) -> Self {
        let mut t = Tally {
            errors: input_errors,
            ..Tally::default()
        };
        outcomes.iter().for_each(|o| t.add(o));
        t
    }

    /// Counts one outcome.
    pub fn add(&mut self, outcome: &Outcome) {
        match outcome.allowed() {
            Some(true) => self.allowed += 1,
            Some(false) => self.denied += 1,
            None => self.errors += 1,
        }
    }

    /// 0 when every review was allowed, 1 when one was denied, 2 when an input could not be
    /// read, parsed or sent (2 wins over 1).
    pub fn exit_code(&self) -> u8 {
        if self.errors > 0 {
            2
        } else if self.denied > 0 {
            1
        } else {
            0
        }
    }

    /// The one-line summary for stderr.
    pub fn summary(&self) -> String {
        format!(
            "replay: {} documents: {} allowed, {} denied, {} errors",
            self.allowed + self.denied + self.errors,
            self.allowed,
            self.denied,
            self.errors
        )
    }
}

/// `--output json`: the answer line of an outcome (the AdmissionReview as the webhook sent
/// it), or None for an error (reported on stderr instead).
pub fn json_line(outcome: &Outcome) -> Option<String> {
    let answer = outcome.answer.as_ref().ok()?;
    Some(String::from_utf8_lossy(answer).into_owned())
}

/// `--output text`: one line per document, with its causes and warnings indented below.
pub fn text_lines(outcome: &Outcome, doc: Option<&Document>) -> String {
    let place = format!("{}#{}", outcome.source, outcome.index);
    let answer = match &outcome.answer {
        Ok(a) => a,
        Err(e) => return format!("{place} ERROR\n  {e}\n"),
    };
    let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
        return format!("{place} ERROR\n  the answer is not JSON\n");
    };
    let request: Option<Value> = doc
        .and_then(|d| d.review.as_ref().ok())
        .and_then(|r| serde_json::from_slice(r).ok());
    let field = |p: &str| {
        request
            .as_ref()
            .and_then(|r| r.pointer(p))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut name = field("/request/name");
    if name.is_empty() {
        name = field("/request/object/metadata/name");
    }
    let verdict = match answer.pointer("/response/allowed").and_then(Value::as_bool) {
        Some(true) => "ALLOWED",
        _ => "DENIED",
    };
    let mut out = format!(
        "{place} {}/{} {} {verdict}\n",
        field("/request/namespace"),
        name,
        field("/request/operation"),
    );
    let causes = answer
        .pointer("/response/status/details/causes")
        .and_then(Value::as_array);
    match causes {
        Some(causes) if !causes.is_empty() && verdict == "DENIED" => {
            for c in causes {
                let f = c.get("field").and_then(Value::as_str).unwrap_or_default();
                let m = c.get("message").and_then(Value::as_str).unwrap_or_default();
                let _ = writeln!(out, "  {f}: {m}");
            }
        }
        _ if verdict == "DENIED" => {
            let m = answer
                .pointer("/response/status/message")
                .and_then(Value::as_str)
                .unwrap_or("denied without a message");
            let _ = writeln!(out, "  {m}");
        }
        _ => {}
    }
    if let Some(patch) = answer.pointer("/response/patch").and_then(Value::as_str) {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(patch) {
            let _ = writeln!(out, "  patch: {}", String::from_utf8_lossy(&bytes));
        }
    }
    for w in answer
        .pointer("/response/warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "  warning: {}", w.as_str().unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAIM_YAML: &str = "apiVersion: k8s.cni.cncf.io/v1alpha1
kind: IPAMClaim
metadata:
  name: vm-a.tenantred
  namespace: ns1
spec:
  network: tenantred
  interface: pod16367aacb67
";

    fn docs(bytes: &str, format: Format) -> Vec<Document> {
        docs_from("test", bytes, format)
    }

    fn docs_from(source: &str, bytes: &str, format: Format) -> Vec<Document> {
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

    fn verdict(doc: &Document, mode: Mode) -> Value {
        let mut t = InProcess::default();
        let review = doc.review.as_ref().expect("readable");
        serde_json::from_slice(&judge(review, mode, &mut t).expect("answered")).expect("json")
    }

    #[test]
    fn wraps_a_bare_claim_as_a_create_in_its_namespace() {
        let d = docs(CLAIM_YAML, Format::Yaml);
        assert_eq!(d.len(), 1);
        let review: Value = serde_json::from_slice(d[0].review.as_ref().unwrap()).unwrap();
        assert_eq!(review["request"]["operation"], "CREATE");
        assert_eq!(review["request"]["namespace"], "ns1");
        assert_eq!(review["request"]["name"], "vm-a.tenantred");
        assert_eq!(verdict(&d[0], Mode::Chain)["response"]["allowed"], true);
    }

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
    fn finds_a_duplicate_key_in_yaml() {
        let yaml = CLAIM_YAML.replace(
            "  network: tenantred\n",
            "  network: tenantred\n  network: blue\n",
        );
        let d = docs(&yaml, Format::Yaml);
        let v = verdict(&d[0], Mode::Chain);
        assert_eq!(v["response"]["allowed"], false);
        let msg = v["response"]["status"]["message"].as_str().unwrap();
        assert!(msg.contains("duplicate field \"spec.network\""), "{msg}");
    }

    #[test]
    fn reads_json_lines_and_keeps_duplicate_keys() {
        let line = r#"{"apiVersion":"k8s.cni.cncf.io/v1alpha1","kind":"IPAMClaim","metadata":{"name":"a"},"spec":{"network":"n","network":"m","interface":"eth0"}}"#;
        let d = docs(&format!("{line}\n{line}\n"), Format::Json);
        assert_eq!(d.len(), 2);
        let v = verdict(&d[1], Mode::Validate);
        assert_eq!(v["response"]["status"]["code"], 400);
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

    #[test]
    fn chain_admits_a_non_canonical_address_in_canonical_form() {
        let yaml = format!("{CLAIM_YAML}status:\n  ips: [\"2001:DB8::1/64\"]\n");
        let d = docs(&yaml, Format::Yaml);
        assert_eq!(verdict(&d[0], Mode::Validate)["response"]["allowed"], false);
        let v = verdict(&d[0], Mode::Chain);
        assert_eq!(v["response"]["allowed"], true, "{v}");
        assert_eq!(v["response"]["patchType"], "JSONPatch");
    }

    #[test]
    fn exit_code_prefers_errors_over_denials() {
        let t = Tally {
            allowed: 1,
            denied: 1,
            errors: 1,
        };
        assert_eq!(t.exit_code(), 2);
        assert_eq!(
            Tally {
                allowed: 1,
                denied: 1,
                errors: 0
            }
            .exit_code(),
            1
        );
        assert_eq!(
            Tally {
                allowed: 3,
                denied: 0,
                errors: 0
            }
            .exit_code(),
            0
        );
    }

    #[test]
    fn text_output_lists_causes_under_the_verdict() {
        let yaml = format!("{CLAIM_YAML}status:\n  ips: [winner]\n");
        let d = docs(&yaml, Format::Yaml);
        let outcomes = run(&d, Mode::Chain, &mut InProcess::default());
        let text = text_lines(&outcomes[0], Some(&d[0]));
        assert_eq!(
            text,
            "test#1 ns1/vm-a.tenantred CREATE DENIED\n  status.ips[0]: Invalid value: \"winner\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)\n"
        );
    }
}
