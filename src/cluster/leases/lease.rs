//! The Lease that reserves one address of one network for one claim across replicas (DESIGN §9,
//! "Across replicas"): its name, the object written, and what a Lease read says. No I/O.
//!
//! The name is derived from the network and the canonical address alone, so that every replica
//! (and every release) asks the API server for the same object, and etcd lets only one create
//! it. The holder is the claim: `namespace/name/uid` in `spec.holderIdentity`. The Lease says
//! when it runs out by the Lease's own fields: the latest time any writer (or the API server)
//! put on it, plus `leaseDurationSeconds`.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

use crate::admission::rules::conflicts::Holder;

/// Every reservation Lease's name starts with this.
pub const NAME_PREFIX: &str = "ipamclaim-";
/// The label every reservation Lease carries, for people (`kubectl get leases -l ...`).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "ipamclaim-webhook");
/// The network, as a label when it is a valid label value, and always as an annotation.
pub const NETWORK_KEY: &str = "ipamclaim-webhook.k8s.cni.cncf.io/network";
/// The address, as an annotation (for people: the webhook never reads it back).
pub const ADDRESS_KEY: &str = "ipamclaim-webhook.k8s.cni.cncf.io/address";

/// Bytes of the SHA-256 kept in a name: 160 bits, 40 hex digits, 50 characters in all.
const HASH_BYTES: usize = 20;
const _: () = assert!(NAME_PREFIX.len() + 2 * HASH_BYTES <= 63);

/// The name of the Lease of `ip` on `network`: a DNS label of 50 characters, the same on every
/// replica. The address is hashed in its canonical text (RFC 5952 for IPv6, as Go prints it).
pub fn name(network: &str, ip: IpAddr) -> String {
    let mut hash = Hashing(ring::digest::Context::new(&ring::digest::SHA256));
    // A newline cannot be in a network name: "a" + "b\n..." never hashes as "ab" + "\n...".
    hash.0.update(network.as_bytes());
    hash.0.update(b"\n");
    // The address's text straight into the hash: no string is built for it (the admit path
    // names a claim's Leases on every review that gives it addresses).
    let _ = write!(hash, "{ip}");
    let digest = hash.0.finish();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(NAME_PREFIX.len() + 2 * HASH_BYTES);
    out.push_str(NAME_PREFIX);
    for byte in &digest.as_ref()[..HASH_BYTES] {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// A SHA-256 fed by `write!`.
struct Hashing(ring::digest::Context);

impl fmt::Write for Hashing {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

/// A claim as the holder of a reservation: namespace, name and uid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClaimRef {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`, empty when unknown.
    pub uid: String,
}

// === impl ClaimRef ===

impl ClaimRef {
    /// Reads `spec.holderIdentity` as [`fmt::Display`] writes it; `None` for anything else (a
    /// Lease written by hand).
    pub fn parse(identity: &str) -> Option<ClaimRef> {
        let mut parts = identity.splitn(3, '/');
        let (namespace, name, uid) = (parts.next()?, parts.next()?, parts.next()?);
        if namespace.is_empty() || name.is_empty() || uid.contains('/') {
            return None;
        }
        Some(ClaimRef {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
        })
    }

    /// Whether `other` is the same claim: the same namespace and name, as the index and the
    /// verdict tell claims apart (a claim never conflicts with itself).
    pub fn same_claim(&self, other: &ClaimRef) -> bool {
        self.namespace == other.namespace && self.name == other.name
    }

    /// The same incarnation of the same claim: the uids agree too (or one is unknown).
    pub fn same_incarnation(&self, other: &ClaimRef) -> bool {
        self.is_incarnation(&other.namespace, &other.name, &other.uid)
    }

    /// [`ClaimRef::same_incarnation`] with the claim `namespace/name` of `uid`, borrowed.
    pub fn is_incarnation(&self, namespace: &str, name: &str, uid: &str) -> bool {
        self.namespace == namespace
            && self.name == name
            && (self.uid == uid || self.uid.is_empty() || uid.is_empty())
    }

    /// The claim as the verdict names a holder.
    pub fn holder(&self) -> Holder {
        Holder {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// `namespace/name/uid`: neither a namespace nor a claim name can hold a `/`.
impl fmt::Display for ClaimRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.name, self.uid)
    }
}

/// What a Lease read from the API server says, as the decisions need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// Its holder; `None` when `spec.holderIdentity` is missing or not one this webhook writes.
    pub holder: Option<ClaimRef>,
    /// `metadata.resourceVersion`: the precondition of an update or a delete.
    pub resource_version: String,
    /// `metadata.uid`: the precondition of a delete.
    pub uid: String,
    /// When it runs out: see [`expiry`].
    pub expires: Timestamp,
}

// === impl Read ===

impl Read {
    /// What `lease` says; `ttl` stands in for a missing `leaseDurationSeconds`, and `now` for a
    /// Lease without any time on it (then it counts as just written).
    pub fn of(lease: &Lease, ttl: Duration, now: Timestamp) -> Read {
        let spec = lease.spec.as_ref();
        Read {
            holder: spec
                .and_then(|s| s.holder_identity.as_deref())
                .and_then(ClaimRef::parse),
            resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
            uid: lease.metadata.uid.clone().unwrap_or_default(),
            expires: expiry(lease, ttl, now),
        }
    }
}

/// When `lease` runs out: the latest time written on it (its `creationTimestamp` and the
/// `managedFields` times, by the API server's clock; `acquireTime` and `renewTime`, by its
/// writer's), plus `leaseDurationSeconds` (`ttl` when missing). Taking the latest of clocks
/// that may disagree makes a Lease live longer, never shorter: a replica whose clock runs
/// behind cannot make its Lease look old to the others.
pub fn expiry(lease: &Lease, ttl: Duration, now: Timestamp) -> Timestamp {
    let meta = &lease.metadata;
    let spec = lease.spec.as_ref();
    let written = meta
        .creation_timestamp
        .iter()
        .map(|t| t.0)
        .chain(
            meta.managed_fields
                .iter()
                .flatten()
                .filter_map(|f| f.time.as_ref().map(|t| t.0)),
        )
        .chain(spec.and_then(|s| s.acquire_time.as_ref()).map(|t| t.0))
        .chain(spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0))
        .max()
        .unwrap_or(now);
    let duration = spec
        .and_then(|s| s.lease_duration_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map_or(ttl, Duration::from_secs);
    written.saturating_add(duration).unwrap_or(Timestamp::MAX)
}

/// `leaseDurationSeconds` for `ttl`: whole seconds, rounded up, at least one.
fn duration_seconds(ttl: Duration) -> i32 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
}

/// Whether `value` is a valid label value: at most 63 characters, alphanumerics at both ends,
/// `-`, `_` and `.` between (a network name may be longer, or end in `-`).
fn label_value(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// The Lease that reserves `ip` on `network` for `holder`, in `namespace`, from `now` for
/// `ttl`.
pub fn new(
    namespace: &str,
    network: &str,
    ip: IpAddr,
    holder: &ClaimRef,
    now: Timestamp,
    ttl: Duration,
) -> Lease {
    let mut metadata = ObjectMeta {
        name: Some(name(network, ip)),
        namespace: Some(namespace.to_owned()),
        ..ObjectMeta::default()
    };
    describe(&mut metadata, network, ip);
    Lease {
        metadata,
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(duration_seconds(ttl)),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }),
    }
}

/// The labels and annotations of the Lease of `ip` on `network`.
fn describe(meta: &mut ObjectMeta, network: &str, ip: IpAddr) {
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.insert(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned());
    if label_value(network) {
        labels.insert(NETWORK_KEY.to_owned(), network.to_owned());
    }
    let annotations = meta.annotations.get_or_insert_with(Default::default);
    annotations.insert(NETWORK_KEY.to_owned(), network.to_owned());
    annotations.insert(ADDRESS_KEY.to_owned(), ip.to_string());
}

/// `read` (the Lease of `ip` on `network`), held from `now` for `ttl` by `holder`, ready for an
/// update conditioned on the resourceVersion it was read at: a take-over (another holder: a
/// transition) or a renewal (the same claim, perhaps a newer incarnation of it).
pub fn held_by(
    read: &Lease,
    (network, ip): (&str, IpAddr),
    holder: &ClaimRef,
    now: Timestamp,
    ttl: Duration,
) -> Lease {
    let mut lease = read.clone();
    // The server's bookkeeping is not sent back; the resourceVersion is the precondition.
    lease.metadata.managed_fields = None;
    describe(&mut lease.metadata, network, ip);
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let before = spec.holder_identity.as_deref().and_then(ClaimRef::parse);
    if !before.is_some_and(|b| b.same_claim(holder)) {
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    spec.holder_identity = Some(holder.to_string());
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(duration_seconds(ttl));
    lease
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn claim(ns: &str, name: &str, uid: &str) -> ClaimRef {
        ClaimRef {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
        }
    }

    #[test]
    fn a_name_is_a_dns_label_the_same_for_every_spelling_of_an_address() {
        let v4 = name("tenantred", "10.0.0.5".parse().unwrap());
        assert_eq!(v4.len(), 50);
        assert!(v4.starts_with("ipamclaim-"));
        assert!(v4[NAME_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        // Parsed addresses are canonical: the spelling never reaches the name.
        let a: IpAddr = "2001:DB8:0:0::1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(name("red", a), name("red", b));
    }

    #[test]
    fn a_name_differs_by_network_and_by_address() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        assert_ne!(name("red", ip), name("blue", ip));
        assert_ne!(name("red", ip), name("red", "10.0.0.6".parse().unwrap()));
        // The separator keeps network and address apart.
        assert_ne!(
            name("red1", "0.0.0.5".parse().unwrap()),
            name("red", "10.0.0.5".parse().unwrap())
        );
        // Fixed across releases: a replica of the next version must find this one's Leases
        // (the first 20 bytes of SHA-256 of "tenantred\n10.0.0.5", as `sha256sum` gives them).
        assert_eq!(
            name("tenantred", "10.0.0.5".parse().unwrap()),
            "ipamclaim-c9de292b8930ff3f9bab62e646379331c23c250b"
        );
        assert_eq!(
            name("tenantred", "fd10:128:20::8".parse().unwrap()),
            "ipamclaim-d360437bfa4261237f52b91d32869050f1b80a6c"
        );
    }

    #[test]
    fn the_holder_identity_reads_back_and_refuses_what_it_never_writes() {
        let c = claim("ns1", "vm-a.red", "6f1c0a8e-1d2b-4c5e-9f00-0123456789ab");
        assert_eq!(ClaimRef::parse(&c.to_string()), Some(c));
        assert_eq!(
            ClaimRef::parse("ns1/vm-a.red/"),
            Some(claim("ns1", "vm-a.red", ""))
        );
        for bad in [
            "", "ns1", "ns1/vm-a", "/vm-a/u", "ns1//u", "a/b/c/d", "node-7",
        ] {
            assert_eq!(ClaimRef::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_same_claim_is_the_same_namespace_and_name() {
        let a = claim("ns1", "a", "u1");
        assert!(a.same_claim(&claim("ns1", "a", "u2")));
        assert!(!a.same_incarnation(&claim("ns1", "a", "u2")));
        assert!(a.same_incarnation(&claim("ns1", "a", "")));
        assert!(!a.same_claim(&claim("ns2", "a", "u1")));
    }

    #[test]
    fn a_new_lease_says_who_holds_what_until_when() {
        let now = at("2026-11-27T10:00:00Z");
        let holder = claim("ns1", "vm-a.red", "u1");
        let lease = new(
            "ipamclaim-webhook",
            "red",
            "fd00::5".parse().unwrap(),
            &holder,
            now,
            Duration::from_millis(1500),
        );
        let meta = &lease.metadata;
        assert_eq!(meta.namespace.as_deref(), Some("ipamclaim-webhook"));
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels[NETWORK_KEY], "red");
        assert_eq!(labels[MANAGED_BY.0], MANAGED_BY.1);
        assert_eq!(meta.annotations.as_ref().unwrap()[ADDRESS_KEY], "fd00::5");
        let spec = lease.spec.as_ref().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("ns1/vm-a.red/u1"));
        assert_eq!(spec.lease_duration_seconds, Some(2), "rounded up");
        let read = Read::of(&lease, Duration::from_secs(30), now);
        assert_eq!(read.holder, Some(holder));
        assert_eq!(read.expires, at("2026-11-27T10:00:02Z"));
    }

    #[test]
    fn a_network_that_is_no_label_value_is_only_annotated() {
        let now = at("2026-11-27T10:00:00Z");
        let long = "n".repeat(64);
        for network in [long.as_str(), "red-", "_red"] {
            let lease = new(
                "ns",
                network,
                "10.0.0.5".parse().unwrap(),
                &ClaimRef::default(),
                now,
                Duration::from_secs(30),
            );
            let meta = &lease.metadata;
            assert!(!meta.labels.as_ref().unwrap().contains_key(NETWORK_KEY));
            assert_eq!(meta.annotations.as_ref().unwrap()[NETWORK_KEY], network);
        }
    }

    #[test]
    fn expiry_counts_from_the_latest_time_on_the_lease() {
        let ttl = Duration::from_secs(30);
        let now = at("2026-11-27T12:00:00Z");
        let mut lease = new(
            "ns",
            "red",
            "10.0.0.5".parse().unwrap(),
            &ClaimRef::default(),
            at("2026-11-27T10:00:00Z"),
            Duration::from_secs(10),
        );
        assert_eq!(expiry(&lease, ttl, now), at("2026-11-27T10:00:10Z"));
        // A writer whose clock runs behind the API server's: the server's time counts.
        lease.metadata.creation_timestamp = Some(Time(at("2026-11-27T10:00:05Z")));
        assert_eq!(expiry(&lease, ttl, now), at("2026-11-27T10:00:15Z"));
        lease.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            time: Some(Time(at("2026-11-27T10:00:07Z"))),
            ..ManagedFieldsEntry::default()
        }]);
        assert_eq!(expiry(&lease, ttl, now), at("2026-11-27T10:00:17Z"));
        // Without a duration, the TTL; without any time, from now.
        lease.spec.as_mut().unwrap().lease_duration_seconds = None;
        assert_eq!(expiry(&lease, ttl, now), at("2026-11-27T10:00:37Z"));
        let bare = Lease::default();
        assert_eq!(expiry(&bare, ttl, now), at("2026-11-27T12:00:30Z"));
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let t0 = at("2026-11-27T10:00:00Z");
        let t1 = at("2026-11-27T10:01:00Z");
        let ttl = Duration::from_secs(30);
        let a = claim("ns1", "a", "u1");
        let mut read = new("ns", "red", "10.0.0.5".parse().unwrap(), &a, t0, ttl);
        read.metadata.resource_version = Some("7".to_owned());
        read.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);

        let at = ("red", "10.0.0.5".parse().unwrap());
        let renewed = held_by(&read, at, &claim("ns1", "a", "u2"), t1, ttl);
        let spec = renewed.spec.as_ref().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("ns1/a/u2"));
        assert_eq!(spec.acquire_time, Some(MicroTime(t0)));
        assert_eq!(spec.renew_time, Some(MicroTime(t1)));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(renewed.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(renewed.metadata.managed_fields, None);

        let taken = held_by(&read, at, &claim("ns1", "b", "u3"), t1, ttl);
        let spec = taken.spec.as_ref().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("ns1/b/u3"));
        assert_eq!(spec.acquire_time, Some(MicroTime(t1)));
        assert_eq!(spec.lease_transitions, Some(1));
        assert_eq!(taken.metadata.name, read.metadata.name);
    }

    #[test]
    fn a_lease_written_by_hand_is_described_once_taken_over() {
        let mut read = Lease::default();
        read.metadata.name = Some("ipamclaim-x".to_owned());
        read.metadata.labels = Some([("team".to_owned(), "net".to_owned())].into());
        let now = at("2026-11-27T10:00:00Z");
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let taken = held_by(
            &read,
            ("red", ip),
            &claim("ns1", "b", "u3"),
            now,
            Duration::from_secs(30),
        );
        let labels = taken.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["team"], "net", "kept");
        assert_eq!(labels[NETWORK_KEY], "red");
        assert_eq!(
            taken.metadata.annotations.as_ref().unwrap()[ADDRESS_KEY],
            "10.0.0.5"
        );
        assert_eq!(taken.spec.as_ref().unwrap().lease_transitions, Some(1));
    }
}
