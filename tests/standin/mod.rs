//! A stand-in for the Kubernetes API server, on loopback over TLS, serving only what the
//! `--unique-addresses` and `--check-networks` watches ask for:
//! `GET /apis/k8s.cni.cncf.io/v1alpha1/ipamclaims` and
//! `GET /apis/k8s.cni.cncf.io/v1/network-attachment-definitions`, each as a paged list
//! (`limit` and `continue`, consistent across pages) and as a watch
//! (`watch=true&resourceVersion=R`: the events after R, then what the test pushes, as
//! ADDED/MODIFIED/DELETED/BOOKMARK lines of a chunked response; an ERROR event with code 410
//! when R has been compacted away, as the API server answers an expired version). Both
//! resources share one resourceVersion sequence, as in etcd.
//!
//! The test drives it: change claims with or without events, close the open watches, expire
//! old versions, refuse with 403 (RBAC), hold lists until released (each for every resource or
//! for one). It checks the bearer token of a kubeconfig it writes, and records every request
//! it served.
//!
//! It also serves one claim (`GET .../namespaces/NS/ipamclaims/NAME`) and the Leases of the
//! reservations across replicas ([`leases`]: create, get, update, delete with preconditions).
//!
//! Blocking I/O, one thread per connection: simple, and enough for the tests and the bench.
// Each test crate uses a different subset.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use ipamclaim_webhook::certs::{self, CertsOptions};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::{json, Value};

mod leases;
pub use leases::LeaseCall;

/// The list and watch path of IPAMClaims over all namespaces.
pub const PATH: &str = "/apis/k8s.cni.cncf.io/v1alpha1/ipamclaims";
/// The list and watch path of NetworkAttachmentDefinitions over all namespaces.
pub const NAD_PATH: &str = "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions";
/// The bearer token of the kubeconfig the stand-in writes; anything else gets 401.
pub const TOKEN: &str = "stand-in-token";

/// The resources the stand-in serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// `ipamclaims` (k8s.cni.cncf.io/v1alpha1).
    Claims,
    /// `network-attachment-definitions` (k8s.cni.cncf.io/v1).
    Nads,
}

/// One served request, as the test may check it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// What was asked for.
    pub resource: Resource,
    /// `list` or `watch`.
    pub verb: &'static str,
    /// The query parameters.
    pub query: BTreeMap<String, String>,
    /// The status code answered.
    pub status: u16,
}

/// The claims a paged list started with, and their resourceVersion.
type Snapshot = (u64, Arc<Vec<Arc<str>>>);

/// The objects of one resource, and the watch events they made.
#[derive(Default)]
struct Store {
    /// Each object's JSON, with its resourceVersion, by namespace/name.
    objects: BTreeMap<(String, String), Arc<str>>,
    /// Watch event lines by resourceVersion; those at or below `World::compacted` are gone.
    events: Vec<(u64, Arc<str>)>,
}

/// The API server's state as far as IPAMClaims and NetworkAttachmentDefinitions go.
#[derive(Default)]
struct World {
    claims: Store,
    nads: Store,
    /// The last resourceVersion handed out.
    rv: u64,
    compacted: u64,
    /// Bumped to end every open watch.
    watch_epoch: u64,
    /// Snapshots of paged lists by id.
    snapshots: HashMap<u64, Snapshot>,
    next_snapshot: u64,
    forbid: bool,
    hold_lists: bool,
    /// Resources refused (403) or whose lists are held, whatever `forbid` and `hold_lists` say.
    forbidden: Vec<Resource>,
    held: Vec<Resource>,
    served: Vec<Served>,
    leases: leases::Leases,
}

// === impl World ===

impl World {
    fn forbids(&self, resource: Resource) -> bool {
        self.forbid || self.forbidden.contains(&resource)
    }

    fn holds(&self, resource: Resource) -> bool {
        self.hold_lists || self.held.contains(&resource)
    }
}

struct Shared {
    world: Mutex<World>,
    changed: Condvar,
    stop: AtomicBool,
}

/// A running stand-in; stops when dropped.
pub struct StandIn {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    /// The CA that signed its certificate.
    pub ca_pem: String,
    shared: Arc<Shared>,
}

/// A claim object as the API server stores it (no resourceVersion yet).
pub fn claim(namespace: &str, name: &str, network: &str, ips: &[&str]) -> Value {
    json!({
        "apiVersion": "k8s.cni.cncf.io/v1alpha1",
        "kind": "IPAMClaim",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-{namespace}-{name}"),
            "creationTimestamp": "2026-11-26T23:44:31Z",
            "generation": 1,
            "managedFields": [{"apiVersion": "k8s.cni.cncf.io/v1alpha1", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {".": {}, "f:interface": {}, "f:network": {}}},
                "manager": "kubevirt-controller", "operation": "Apply",
                "time": "2026-11-26T23:44:31Z"}],
        },
        "spec": {"network": network, "interface": "pod16367aacb67"},
        "status": {
            "ips": ips,
            "ownerPod": {"name": format!("virt-launcher-{name}")},
            "conditions": [{"type": "IPsAllocated", "status": "True", "reason": "Allocated",
                "message": "addresses allocated", "observedGeneration": 1,
                "lastTransitionTime": "2026-11-26T23:00:00Z"}],
        }
    })
}

/// A NetworkAttachmentDefinition object as the API server stores it, with `spec.config` =
/// `config` (the CNI config as JSON text).
pub fn nad(namespace: &str, name: &str, config: &str) -> Value {
    json!({
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-nad-{namespace}-{name}"),
            "creationTimestamp": "2026-11-26T23:00:00Z",
            "generation": 1,
        },
        "spec": {"config": config},
    })
}

fn key_of(object: &Value) -> (String, String) {
    let text = |k: &str| {
        object["metadata"][k]
            .as_str()
            .expect("object has namespace and name")
            .to_owned()
    };
    (text("namespace"), text("name"))
}

// === impl Resource ===

impl Resource {
    fn path(self) -> &'static str {
        match self {
            Resource::Claims => PATH,
            Resource::Nads => NAD_PATH,
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Resource::Claims => "k8s.cni.cncf.io/v1alpha1",
            Resource::Nads => "k8s.cni.cncf.io/v1",
        }
    }

    fn list_kind(self) -> &'static str {
        match self {
            Resource::Claims => "IPAMClaimList",
            Resource::Nads => "NetworkAttachmentDefinitionList",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Resource::Claims => "ipamclaims",
            Resource::Nads => "network-attachment-definitions",
        }
    }
}

// === impl World ===

impl World {
    fn store(&mut self, resource: Resource) -> &mut Store {
        match resource {
            Resource::Claims => &mut self.claims,
            Resource::Nads => &mut self.nads,
        }
    }
}

// === impl StandIn ===

impl StandIn {
    /// A stand-in holding `claims`, listening on loopback.
    pub fn start(claims: impl IntoIterator<Item = Value>) -> StandIn {
        StandIn::start_with(claims, Vec::new())
    }

    /// A stand-in holding `claims` and the NetworkAttachmentDefinitions `nads`.
    pub fn start_with(
        claims: impl IntoIterator<Item = Value>,
        nads: impl IntoIterator<Item = Value>,
    ) -> StandIn {
        let certs = certs::generate(&CertsOptions::default()).expect("certificates");
        let chain = CertificateDer::pem_slice_iter(certs.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("cert PEM");
        let key = PrivateKeyDer::from_pem_slice(certs.key_pem.as_bytes()).expect("key PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        let tls = Arc::new(tls);

        let mut world = World::default();
        let objects = claims
            .into_iter()
            .map(|o| (Resource::Claims, o))
            .chain(nads.into_iter().map(|o| (Resource::Nads, o)));
        for (resource, object) in objects {
            world.rv += 1;
            let rv = world.rv;
            let text = with_rv(object, rv);
            let key = key_of(&serde_json::from_str(&text).expect("json"));
            world.store(resource).objects.insert(key, text.into());
        }
        // What came before the stand-in started is as good as compacted.
        world.compacted = world.rv;
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let accept = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept.stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (shared, tls) = (accept.clone(), tls.clone());
                std::thread::spawn(move || {
                    let Ok(conn) = ServerConnection::new(tls) else {
                        return;
                    };
                    let _ = stream.set_nodelay(true);
                    serve_connection(StreamOwned::new(conn, stream), &shared);
                });
            }
        });
        StandIn {
            addr,
            ca_pem: certs.ca_pem,
            shared,
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.shared.world.lock().expect("world")
    }

    /// Writes a kubeconfig for this stand-in into `dir` and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: https://{}\n    certificate-authority-data: {ca}\nusers:\n- name: webhook\n  user:\n    token: {TOKEN}\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: webhook\ncurrent-context: stand-in\n",
            self.addr
        );
        let path = dir.join("kubeconfig");
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    fn push(&self, resource: Resource, kind: &str, object: Value, delete: bool) {
        let mut world = self.world();
        world.rv += 1;
        let rv = world.rv;
        let text = with_rv(object, rv);
        let stored: Value = serde_json::from_str(&text).expect("json");
        let key = key_of(&stored);
        let store = world.store(resource);
        if delete {
            store.objects.remove(&key);
        } else {
            store.objects.insert(key, text.clone().into());
        }
        let line = format!("{{\"type\":\"{kind}\",\"object\":{text}}}\n");
        store.events.push((rv, line.into()));
        drop(world);
        self.shared.changed.notify_all();
    }

    fn push_delete(&self, resource: Resource, namespace: &str, name: &str) {
        let last = self
            .world()
            .store(resource)
            .objects
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
            .expect("object exists");
        let last = serde_json::from_str(&last).expect("json");
        self.push(resource, "DELETED", last, true);
    }

    /// Creates a claim: an ADDED event.
    pub fn add(&self, object: Value) {
        self.push(Resource::Claims, "ADDED", object, false);
    }

    /// Changes a claim: a MODIFIED event.
    pub fn modify(&self, object: Value) {
        self.push(Resource::Claims, "MODIFIED", object, false);
    }

    /// Deletes a claim: a DELETED event carrying its last state.
    pub fn delete(&self, namespace: &str, name: &str) {
        self.push_delete(Resource::Claims, namespace, name);
    }

    /// Creates a NetworkAttachmentDefinition: an ADDED event.
    pub fn add_nad(&self, object: Value) {
        self.push(Resource::Nads, "ADDED", object, false);
    }

    /// Changes a NetworkAttachmentDefinition: a MODIFIED event.
    pub fn modify_nad(&self, object: Value) {
        self.push(Resource::Nads, "MODIFIED", object, false);
    }

    /// Deletes a NetworkAttachmentDefinition: a DELETED event carrying its last state.
    pub fn delete_nad(&self, namespace: &str, name: &str) {
        self.push_delete(Resource::Nads, namespace, name);
    }

    /// Creates a claim with no event a watch could see (a watch lagging behind): a GET of
    /// the claim finds it, the index does not.
    pub fn add_unseen(&self, object: Value) {
        let mut world = self.world();
        world.rv += 1;
        let rv = world.rv;
        let text = with_rv(object, rv);
        let key = key_of(&serde_json::from_str(&text).expect("json"));
        world.claims.objects.insert(key, text.into());
    }

    /// Deletes a claim with no event a watch could see (as if it fell in a compacted gap).
    pub fn delete_unseen(&self, namespace: &str, name: &str) {
        let mut world = self.world();
        world.rv += 1;
        world
            .claims
            .objects
            .remove(&(namespace.to_owned(), name.to_owned()))
            .expect("claim exists");
    }

    /// Deletes a NetworkAttachmentDefinition with no event a watch could see.
    pub fn delete_nad_unseen(&self, namespace: &str, name: &str) {
        let mut world = self.world();
        world.rv += 1;
        world
            .nads
            .objects
            .remove(&(namespace.to_owned(), name.to_owned()))
            .expect("NAD exists");
    }

    /// A BOOKMARK at a new resourceVersion, which it returns.
    pub fn bookmark(&self) -> u64 {
        let mut world = self.world();
        world.rv += 1;
        let rv = world.rv;
        let line = format!(
            "{{\"type\":\"BOOKMARK\",\"object\":{{\"kind\":\"IPAMClaim\",\"apiVersion\":\"k8s.cni.cncf.io/v1alpha1\",\"metadata\":{{\"resourceVersion\":\"{rv}\"}}}}}}\n"
        );
        world.claims.events.push((rv, line.into()));
        drop(world);
        self.shared.changed.notify_all();
        rv
    }

    /// Ends every open watch, as the API server does every few minutes.
    pub fn close_watches(&self) {
        self.world().watch_epoch += 1;
        self.shared.changed.notify_all();
    }

    /// Compacts every version handed out so far: a watch resuming from one gets `410 Gone`.
    pub fn expire_versions(&self) {
        let mut world = self.world();
        world.rv += 1;
        world.compacted = world.rv;
        world.snapshots.clear();
        let compacted = world.compacted;
        world.claims.events.retain(|(rv, _)| *rv > compacted);
        world.nads.events.retain(|(rv, _)| *rv > compacted);
    }

    /// Refuses (403) or allows list and watch, as RBAC would.
    pub fn forbid(&self, forbid: bool) {
        self.world().forbid = forbid;
        self.shared.changed.notify_all();
    }

    /// Holds list requests until released.
    pub fn hold_lists(&self, hold: bool) {
        self.world().hold_lists = hold;
        self.shared.changed.notify_all();
    }

    /// Refuses (403) or allows list and watch of one resource only, as a missing RBAC rule
    /// for it would.
    pub fn forbid_resource(&self, resource: Resource, forbid: bool) {
        let mut world = self.world();
        world.forbidden.retain(|r| *r != resource);
        if forbid {
            world.forbidden.push(resource);
        }
        drop(world);
        self.shared.changed.notify_all();
    }

    /// Holds the list requests of one resource only until released.
    pub fn hold_lists_of(&self, resource: Resource, hold: bool) {
        let mut world = self.world();
        world.held.retain(|r| *r != resource);
        if hold {
            world.held.push(resource);
        }
        drop(world);
        self.shared.changed.notify_all();
    }

    /// Every request served so far (of claims and NADs; Lease calls are in
    /// [`StandIn::lease_calls`]).
    pub fn served(&self) -> Vec<Served> {
        self.world().served.clone()
    }

    /// Every Lease, as stored.
    pub fn leases(&self) -> Vec<Value> {
        self.world().leases.objects()
    }

    /// Every Lease call answered so far.
    pub fn lease_calls(&self) -> Vec<LeaseCall> {
        self.world().leases.calls()
    }

    /// Holds Lease writes (create, update, delete) until released: a slow API server.
    pub fn hold_lease_writes(&self, hold: bool) {
        self.world().leases.hold_writes = hold;
        self.shared.changed.notify_all();
    }

    /// Refuses (403) or allows every Lease call, as RBAC would.
    pub fn forbid_leases(&self, forbid: bool) {
        self.world().leases.forbid = forbid;
    }

    /// Puts a Lease there as given (a Lease someone else wrote).
    pub fn put_lease(&self, object: Value) {
        let mut world = self.world();
        world.rv += 1;
        let rv = world.rv;
        world.leases.put(object, rv);
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.changed.notify_all();
        // Unblocks the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

/// `object` with `metadata.resourceVersion` = `rv`, as JSON text.
fn with_rv(mut object: Value, rv: u64) -> String {
    object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
    object.to_string()
}

type Conn = StreamOwned<ServerConnection, TcpStream>;

/// Serves the requests of one connection until it closes.
fn serve_connection(conn: Conn, shared: &Shared) {
    let mut reader = BufReader::new(conn);
    loop {
        let Some(Head {
            method,
            path,
            query,
            token,
            length,
        }) = read_head(&mut reader)
        else {
            return;
        };
        let mut body = vec![0; length];
        if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
            return;
        }
        let conn = reader.get_mut();
        let resource = [Resource::Claims, Resource::Nads]
            .into_iter()
            .find(|r| r.path() == path);
        let keep = if token.as_deref() != Some(TOKEN) {
            respond(conn, 401, &status_json(401, "Unauthorized", "Unauthorized"))
        } else if let Some(lease) = leases::route(&path) {
            leases::serve(conn, shared, &method, lease, &body)
        } else if let Some((namespace, name)) = one_claim(&path) {
            let world = shared.world.lock().expect("world");
            let found = world
                .claims
                .objects
                .get(&(namespace, name.clone()))
                .cloned();
            drop(world);
            match found {
                Some(object) => respond(conn, 200, &object),
                None => respond(
                    conn,
                    404,
                    &status_json(
                        404,
                        "NotFound",
                        &format!("ipamclaims.k8s.cni.cncf.io \"{name}\" not found"),
                    ),
                ),
            }
        } else if let Some(resource) = resource {
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                watch(conn, shared, resource, query);
                false
            } else {
                list(conn, shared, resource, query)
            }
        } else {
            respond(
                conn,
                404,
                &status_json(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            )
        };
        if !keep {
            return;
        }
    }
}

/// `(namespace, name)` of the path of one claim.
fn one_claim(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/apis/k8s.cni.cncf.io/v1alpha1/namespaces/")?;
    let (namespace, rest) = rest.split_once('/')?;
    let name = rest.strip_prefix("ipamclaims/")?;
    (!name.is_empty() && !name.contains('/')).then(|| (namespace.to_owned(), name.to_owned()))
}

/// A request head: what the stand-in answers by.
struct Head {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    token: Option<String>,
    /// `Content-Length`, 0 when absent.
    length: usize,
}

/// Reads a request head: the method, the path, the query, the bearer token and the body's
/// length. `None` at the end.
fn read_head(reader: &mut BufReader<Conn>) -> Option<Head> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let target = words.next()?.to_owned();
    let mut token = None;
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                token = value.trim().strip_prefix("Bearer ").map(str::to_owned);
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Some(Head {
        method,
        path: path.to_owned(),
        query,
        token,
        length,
    })
}

fn status_json(code: u16, reason: &str, message: &str) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
    .to_string()
}

/// Writes a whole JSON answer; whether the connection may carry another request.
fn respond(conn: &mut Conn, status: u16, body: &str) -> bool {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        reason(status),
        body.len()
    );
    conn.write_all(head.as_bytes()).is_ok()
        && conn.write_all(body.as_bytes()).is_ok()
        && conn.flush().is_ok()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        410 => "Gone",
        _ => "Error",
    }
}

/// The API server's words for an RBAC refusal of `verb` on `resource`.
fn forbidden(resource: Resource, verb: &str) -> String {
    let plural = resource.plural();
    format!("{plural}.k8s.cni.cncf.io is forbidden: User \"system:serviceaccount:ipamclaim-webhook:ipamclaim-webhook\" cannot {verb} resource \"{plural}\" in API group \"k8s.cni.cncf.io\" at the cluster scope")
}

fn record(
    shared: &Shared,
    resource: Resource,
    verb: &'static str,
    query: &BTreeMap<String, String>,
    status: u16,
) {
    shared.world.lock().expect("world").served.push(Served {
        resource,
        verb,
        query: query.clone(),
        status,
    });
}

/// A paged list, from a snapshot taken at its first page, as the API server pages with etcd.
fn list(
    conn: &mut Conn,
    shared: &Shared,
    resource: Resource,
    query: BTreeMap<String, String>,
) -> bool {
    let mut world = shared.world.lock().expect("world");
    while world.holds(resource) && !shared.stop.load(Ordering::Acquire) {
        world = shared
            .changed
            .wait_timeout(world, Duration::from_millis(100))
            .expect("world")
            .0;
    }
    if world.forbids(resource) {
        drop(world);
        record(shared, resource, "list", &query, 403);
        let message = forbidden(resource, "list");
        return respond(conn, 403, &status_json(403, "Forbidden", &message));
    }
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let (snapshot_id, offset): (u64, usize) = match query.get("continue") {
        None => {
            let id = world.next_snapshot;
            world.next_snapshot += 1;
            let items: Vec<Arc<str>> = world.store(resource).objects.values().cloned().collect();
            let rv = world.rv;
            world.snapshots.insert(id, (rv, Arc::new(items)));
            (id, 0)
        }
        Some(token) => match token
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        {
            Some((id, offset)) if world.snapshots.contains_key(&id) => (id, offset),
            _ => {
                drop(world);
                record(shared, resource, "list", &query, 410);
                let body = status_json(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.");
                return respond(conn, 410, &body);
            }
        },
    };
    let (rv, items) = world.snapshots[&snapshot_id].clone();
    drop(world);
    let end = offset.saturating_add(limit).min(items.len());
    let continue_token = if end < items.len() {
        format!("{snapshot_id}-{end}")
    } else {
        String::new()
    };
    let mut body = String::with_capacity((end - offset) * 1200 + 256);
    body.push_str(&format!(
        "{{\"apiVersion\":\"{}\",\"kind\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{rv}\",\"continue\":\"{continue_token}\"}},\"items\":[",
        resource.api_version(),
        resource.list_kind(),
    ));
    for (i, item) in items[offset..end].iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(item);
    }
    body.push_str("]}");
    record(shared, resource, "list", &query, 200);
    respond(conn, 200, &body)
}

/// A watch: the events after the requested version, then each new one, until the test closes
/// the watches or the client goes away.
fn watch(conn: &mut Conn, shared: &Shared, resource: Resource, query: BTreeMap<String, String>) {
    let from: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let world = shared.world.lock().expect("world");
    if world.forbids(resource) {
        drop(world);
        record(shared, resource, "watch", &query, 403);
        let message = forbidden(resource, "watch");
        respond(conn, 403, &status_json(403, "Forbidden", &message));
        return;
    }
    let epoch = world.watch_epoch;
    let expired = from < world.compacted;
    drop(world);
    record(shared, resource, "watch", &query, 200);
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    if expired {
        let status: Value = serde_json::from_str(&status_json(
            410,
            "Expired",
            &format!("too old resource version: {from}"),
        ))
        .expect("json");
        let line = json!({"type": "ERROR", "object": status}).to_string() + "\n";
        let _ = chunk(conn, &line);
        let _ = conn.write_all(b"0\r\n\r\n").and_then(|()| conn.flush());
        return;
    }
    let mut sent = from;
    loop {
        let mut world = shared.world.lock().expect("world");
        let pending: Vec<(u64, Arc<str>)> = world
            .store(resource)
            .events
            .iter()
            .filter(|(rv, _)| *rv > sent)
            .cloned()
            .collect();
        if pending.is_empty() {
            if world.watch_epoch != epoch
                || world.forbids(resource)
                || shared.stop.load(Ordering::Acquire)
            {
                break;
            }
            world = shared
                .changed
                .wait_timeout(world, Duration::from_millis(100))
                .expect("world")
                .0;
            drop(world);
            continue;
        }
        drop(world);
        for (rv, line) in pending {
            if chunk(conn, &line).is_err() {
                return;
            }
            sent = rv;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").and_then(|()| conn.flush());
}

fn chunk(conn: &mut Conn, text: &str) -> std::io::Result<()> {
    conn.write_all(format!("{:x}\r\n", text.len()).as_bytes())?;
    conn.write_all(text.as_bytes())?;
    conn.write_all(b"\r\n")?;
    conn.flush()
}
