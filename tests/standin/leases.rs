//! The stand-in's Leases (`coordination.k8s.io/v1`, namespaced), as the API server keeps them
//! for the reservations of `--unique-addresses`: create (409 AlreadyExists for a name taken),
//! get, update conditioned on the resourceVersion sent (409 Conflict on a stale one), and
//! delete with preconditions on uid and resourceVersion (409 when either differs). Each
//! write gets the next resourceVersion of the shared sequence; a created Lease gets a uid and
//! a creationTimestamp from the stand-in's clock. The test may hold writes (a slow API server),
//! refuse every Lease call (403, RBAC), or put a Lease there itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::{respond, status_json, Conn, Shared};

/// The path of the Leases of a namespace: `PREFIX{namespace}/leases[/{name}]`.
const PREFIX: &str = "/apis/coordination.k8s.io/v1/namespaces/";

/// One Lease call the stand-in answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseCall {
    /// `create`, `get`, `update` or `delete`.
    pub verb: &'static str,
    /// The Lease's name.
    pub name: String,
    /// The status code answered.
    pub status: u16,
}

/// The Leases, by namespace and name, and what was asked of them.
#[derive(Default)]
pub struct Leases {
    objects: BTreeMap<(String, String), Value>,
    calls: Vec<LeaseCall>,
    /// Writes wait while this is set.
    pub hold_writes: bool,
    /// Every Lease call is refused (403) while this is set.
    pub forbid: bool,
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// `(namespace, name)` of a Lease path, `name` empty for the collection; `None` for any other
/// path.
pub fn route(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix(PREFIX)?;
    let (namespace, rest) = rest.split_once('/')?;
    let name = match rest.strip_prefix("leases") {
        Some("") => "",
        Some(tail) => tail.strip_prefix('/').filter(|n| !n.contains('/'))?,
        None => return None,
    };
    Some((namespace.to_owned(), name.to_owned()))
}

/// RFC 3339 of the stand-in's clock, in seconds as the API server writes creationTimestamp.
fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil(i64::try_from(days).expect("days"));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).expect("day");
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).expect("month");
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn not_found(name: &str) -> (u16, String) {
    (
        404,
        status_json(
            404,
            "NotFound",
            &format!("leases.coordination.k8s.io \"{name}\" not found"),
        ),
    )
}

fn conflict(name: &str, why: &str) -> (u16, String) {
    (
        409,
        status_json(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": {why}"
            ),
        ),
    )
}

/// Answers one Lease call (`method` on the Lease path `namespace/name`, with `body`); whether
/// the connection may carry another request.
pub fn serve(
    conn: &mut Conn,
    shared: &Shared,
    method: &str,
    (namespace, name): (String, String),
    body: &[u8],
) -> bool {
    let mut world = shared.world.lock().expect("world");
    let write = method != "GET";
    while write && world.leases.hold_writes && !shared.stop.load(Ordering::Acquire) {
        world = shared
            .changed
            .wait_timeout(world, Duration::from_millis(50))
            .expect("world")
            .0;
    }
    let sent: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let name = if name.is_empty() {
        sent["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    } else {
        name
    };
    let key = (namespace.clone(), name.clone());
    let verb = match method {
        "POST" => "create",
        "GET" => "get",
        "PUT" => "update",
        "DELETE" => "delete",
        _ => "other",
    };
    let (status, answer) = if world.leases.forbid {
        let message = format!("leases.coordination.k8s.io \"{name}\" is forbidden: User \"system:serviceaccount:ipamclaim-webhook:ipamclaim-webhook\" cannot {verb} resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"{namespace}\"");
        (403, status_json(403, "Forbidden", &message))
    } else {
        match verb {
            "create" if world.leases.objects.contains_key(&key) => (
                409,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": format!("leases.coordination.k8s.io \"{name}\" already exists"),
                       "reason": "AlreadyExists",
                       "details": {"name": name, "group": "coordination.k8s.io", "kind": "leases"},
                       "code": 409})
                .to_string(),
            ),
            "create" => {
                world.rv += 1;
                let mut object = sent;
                let meta = &mut object["metadata"];
                meta["namespace"] = json!(namespace);
                meta["uid"] = json!(format!(
                    "lease-uid-{}",
                    NEXT_UID.fetch_add(1, Ordering::Relaxed)
                ));
                meta["resourceVersion"] = json!(world.rv.to_string());
                meta["creationTimestamp"] = json!(now_rfc3339());
                world.leases.objects.insert(key, object.clone());
                (201, object.to_string())
            }
            "get" => match world.leases.objects.get(&key) {
                Some(object) => (200, object.to_string()),
                None => not_found(&name),
            },
            "update" => match world.leases.objects.get(&key).cloned() {
                None => not_found(&name),
                Some(stored)
                    if sent["metadata"]["resourceVersion"]
                        != stored["metadata"]["resourceVersion"] =>
                {
                    let _ = stored;
                    conflict(
                        &name,
                        "the object has been modified; please apply your changes to the latest version and try again",
                    )
                }
                Some(stored) => {
                    world.rv += 1;
                    let mut object = sent;
                    let meta = &mut object["metadata"];
                    for kept in ["uid", "creationTimestamp", "namespace"] {
                        meta[kept] = stored["metadata"][kept].clone();
                    }
                    meta["resourceVersion"] = json!(world.rv.to_string());
                    world.leases.objects.insert(key, object.clone());
                    (200, object.to_string())
                }
            },
            "delete" => match world.leases.objects.get(&key).cloned() {
                None => not_found(&name),
                Some(stored) => {
                    let pre = &sent["preconditions"];
                    let meta = &stored["metadata"];
                    if pre["uid"].is_string() && pre["uid"] != meta["uid"] {
                        (
                            409,
                            status_json(
                                409,
                                "Conflict",
                                &format!(
                                    "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                                    pre["uid"], meta["uid"]
                                ),
                            ),
                        )
                    } else if pre["resourceVersion"].is_string()
                        && pre["resourceVersion"] != meta["resourceVersion"]
                    {
                        (
                            409,
                            status_json(
                                409,
                                "Conflict",
                                &format!(
                                    "Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in object meta: {}",
                                    pre["resourceVersion"], meta["resourceVersion"]
                                ),
                            ),
                        )
                    } else {
                        world.rv += 1;
                        world.leases.objects.remove(&key);
                        (
                            200,
                            json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                   "status": "Success",
                                   "details": {"name": name, "group": "coordination.k8s.io",
                                               "kind": "leases", "uid": meta["uid"]}})
                            .to_string(),
                        )
                    }
                }
            },
            _ => (
                405,
                status_json(405, "MethodNotAllowed", "method not allowed"),
            ),
        }
    };
    world.leases.calls.push(LeaseCall { verb, name, status });
    drop(world);
    shared.changed.notify_all();
    respond(conn, status, &answer)
}

// === impl Leases ===

impl Leases {
    /// Every Lease, as stored.
    pub fn objects(&self) -> Vec<Value> {
        self.objects.values().cloned().collect()
    }

    /// Every call answered so far.
    pub fn calls(&self) -> Vec<LeaseCall> {
        self.calls.clone()
    }

    /// Stores `object` as the test wrote it (its namespace, name and times as given), with a
    /// uid and resourceVersion if it has none.
    pub fn put(&mut self, mut object: Value, rv: u64) {
        let meta = &mut object["metadata"];
        if !meta["uid"].is_string() {
            meta["uid"] = json!(format!(
                "lease-uid-{}",
                NEXT_UID.fetch_add(1, Ordering::Relaxed)
            ));
        }
        meta["resourceVersion"] = json!(rv.to_string());
        let key = (
            meta["namespace"].as_str().expect("namespace").to_owned(),
            meta["name"].as_str().expect("name").to_owned(),
        );
        self.objects.insert(key, object);
    }
}
