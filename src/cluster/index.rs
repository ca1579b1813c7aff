//! The index of the addresses that claims hold: (network, address) → claim, fed by events.
//!
//! [`Claims`] is what a list-and-watch shows: [`apply`](Claims::apply) and
//! [`delete`](Claims::delete) one claim at a time, or a whole re-list collected into a fresh
//! `Claims` and swapped in at once by [`Index::reset`]. [`Index`] adds the reservations of
//! addresses admitted but not yet seen by the watch. Nothing here knows HTTP, the API server
//! or a clock: the time is passed in, so tests never sleep.
//!
//! Only what the verdict needs is kept (network, addresses, namespace/name, uid), never whole
//! objects, with networks and namespaces interned: 100,000 claims fit in tens of MiB.

use std::collections::hash_map::{HashMap, RandomState};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::BuildHasher as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::HashTable;
use serde_json::Value;

use crate::admission::rules::conflicts::{self, Admitted, Claimant, Holder, ADDRESS_LISTS};

/// One claim as the index sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid` (empty when unknown, as for a file that was never in a cluster).
    pub uid: String,
    /// `spec.network` (empty when the claim names none: it then holds nothing).
    pub network: String,
    /// The addresses of `spec.ipRequests` and `status.ips`, each once.
    pub addresses: Vec<IpAddr>,
}

// === impl Claim ===

impl Claim {
    /// The claim an IPAMClaim object describes, `None` without a name. Addresses are read as
    /// the verdict reads them ([`conflicts::held_address`]); a claim being deleted still holds
    /// its addresses until it is gone.
    pub fn from_object(object: &Value) -> Option<Claim> {
        let meta = object.get("metadata")?;
        let text = |key: &str| meta.get(key).and_then(Value::as_str).unwrap_or_default();
        Claim::from_parts(
            text("namespace"),
            text("name"),
            text("uid"),
            object.get("spec"),
            object.get("status"),
        )
    }

    /// The claim of these metadata, `spec` and `status`, read leniently: a member of another
    /// type holds nothing, and so does a claim without a network. `None` without a name.
    pub fn from_parts(
        namespace: &str,
        name: &str,
        uid: &str,
        spec: Option<&Value>,
        status: Option<&Value>,
    ) -> Option<Claim> {
        if name.is_empty() {
            return None;
        }
        let network = spec
            .and_then(|s| s.get("network"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut addresses = Vec::new();
        // Without a network, a claim holds nothing.
        let parts = if network.is_empty() {
            [None, None]
        } else {
            [spec, status]
        };
        for (part, (_, member)) in parts.into_iter().zip(ADDRESS_LISTS) {
            let items = part.and_then(|p| p.get(member)).and_then(Value::as_array);
            for item in items.into_iter().flatten() {
                if let Some(ip) = item.as_str().and_then(conflicts::held_address) {
                    addresses.push(ip);
                }
            }
        }
        Some(Claim {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
            network,
            addresses: dedup(addresses),
        })
    }

    /// The claim an admitted review writes, as `replay` indexes it.
    pub fn admitted(admitted: &Admitted) -> Claim {
        Claim {
            namespace: admitted.namespace.clone(),
            name: admitted.name.clone(),
            uid: admitted.uid.clone(),
            network: admitted.network.clone(),
            addresses: dedup(admitted.addresses.iter().map(|a| a.ip).collect()),
        }
    }
}

/// `addresses` sorted, each once (n log n: a list may be long).
fn dedup(mut addresses: Vec<IpAddr>) -> Vec<IpAddr> {
    addresses.sort_unstable();
    addresses.dedup();
    addresses
}

/// Strings kept once, each with a small id (namespaces and networks are few, claims many).
#[derive(Clone, Debug, Default)]
struct Interner {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

// === impl Interner ===

impl Interner {
    fn get(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    fn intern(&mut self, text: &str) -> u32 {
        if let Some(id) = self.get(text) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct names");
        let text: Arc<str> = Arc::from(text);
        self.names.push(text.clone());
        self.ids.insert(text, id);
        id
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// An address on a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct AddrKey {
    network: u32,
    ip: IpAddr,
}

/// A claim's addresses, sorted: inline up to two (one per family is the common case), on the
/// heap beyond.
#[derive(Clone, Debug)]
enum Addresses {
    Inline { len: u8, ips: [IpAddr; 2] },
    Heap(Box<[IpAddr]>),
}

// === impl Addresses ===

impl Addresses {
    const NONE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

    /// `sorted` must be sorted and without repeats.
    fn new(sorted: Vec<IpAddr>) -> Self {
        match sorted.as_slice() {
            [] => Addresses::Inline {
                len: 0,
                ips: [Self::NONE; 2],
            },
            [a] => Addresses::Inline {
                len: 1,
                ips: [*a, Self::NONE],
            },
            [a, b] => Addresses::Inline {
                len: 2,
                ips: [*a, *b],
            },
            _ => Addresses::Heap(sorted.into_boxed_slice()),
        }
    }

    fn as_slice(&self) -> &[IpAddr] {
        match self {
            Addresses::Inline { len, ips } => &ips[..usize::from(*len)],
            Addresses::Heap(ips) => ips,
        }
    }
}

/// A `metadata.uid` in 16 bytes: a UUID as the API server writes it, or 0 for a uid that is
/// unknown (a file that was never in a cluster) or not a UUID.
fn compact_uid(uid: &str) -> u128 {
    let hex: Vec<u8> = uid.bytes().filter(|&b| b != b'-').collect();
    if uid.len() != 36 || hex.len() != 32 {
        return 0;
    }
    std::str::from_utf8(&hex)
        .ok()
        .and_then(|h| u128::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

/// One indexed claim; a slot whose name is empty is free.
#[derive(Clone, Debug)]
struct Slot {
    uid: u128,
    name: Box<str>,
    addresses: Addresses,
    namespace: u32,
    network: u32,
}

/// Where an address is held: a slot, and the address's position in the slot's addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    slot: u32,
    at: u32,
}

/// The claims a list-and-watch shows, indexed by name and by address. Only claims that hold
/// at least one address take room, and little: the tables store slot numbers and find the
/// name or address they stand for in the slot (about 150 bytes a claim of two addresses).
#[derive(Clone, Debug, Default)]
pub struct Claims {
    namespaces: Interner,
    networks: Interner,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Slots by (namespace, name).
    names: HashTable<u32>,
    /// The first claim holding each (network, address).
    held: HashTable<Held>,
    /// Further claims holding the same address: conflicts that predate the webhook (or that
    /// `--enforcement Warn` let in). Rare, so kept apart from the common case.
    also_held: HashMap<AddrKey, Vec<u32>>,
    hasher: RandomState,
    live: usize,
    addresses: usize,
}

// === impl Claims ===

impl Claims {
    /// No claims.
    pub fn new() -> Self {
        Claims::default()
    }

    fn name_hash(&self, namespace: u32, name: &str) -> u64 {
        self.hasher.hash_one((namespace, name))
    }

    fn addr_hash(&self, key: AddrKey) -> u64 {
        self.hasher.hash_one(key)
    }

    fn addr_of(&self, held: Held) -> AddrKey {
        let slot = &self.slots[held.slot as usize];
        AddrKey {
            network: slot.network,
            ip: slot.addresses.as_slice()[held.at as usize],
        }
    }

    /// Adds `claim`, or replaces what its namespace/name held before.
    pub fn apply(&mut self, claim: Claim) {
        let namespace = self.namespaces.intern(&claim.namespace);
        if let Some(slot) = self.slot_of(namespace, &claim.name) {
            self.remove(slot);
        }
        if claim.addresses.is_empty() || claim.network.is_empty() {
            return;
        }
        let network = self.networks.intern(&claim.network);
        let addresses = Addresses::new(dedup(claim.addresses));
        let slot = Slot {
            uid: compact_uid(&claim.uid),
            name: claim.name.into(),
            addresses,
            namespace,
            network,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 claims")
            }
        };
        let count = self.slots[id as usize].addresses.as_slice().len();
        for at in 0..count {
            let at = u32::try_from(at).expect("fewer than 2^32 addresses");
            let key = self.addr_of(Held { slot: id, at });
            let hash = self.addr_hash(key);
            let (slots, hasher) = (&self.slots, &self.hasher);
            let addr_of = |h: &Held| {
                let s = &slots[h.slot as usize];
                AddrKey {
                    network: s.network,
                    ip: s.addresses.as_slice()[h.at as usize],
                }
            };
            if self.held.find(hash, |h| addr_of(h) == key).is_some() {
                self.also_held.entry(key).or_default().push(id);
            } else {
                self.held
                    .insert_unique(hash, Held { slot: id, at }, |h| hasher.hash_one(addr_of(h)));
            }
        }
        self.addresses += count;
        self.live += 1;
        let hash = self.name_hash(namespace, &self.slots[id as usize].name);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.names.insert_unique(hash, id, |&other| {
            let s = &slots[other as usize];
            hasher.hash_one((s.namespace, &*s.name))
        });
    }

    /// Removes the claim `namespace/name`: its addresses are released. A `uid` that names
    /// another incarnation of the claim (both known, different) removes nothing, so that the
    /// delete of an older claim never releases the addresses of a newer one of the same name.
    /// Whether a claim was removed.
    pub fn delete(&mut self, namespace: &str, name: &str, uid: &str) -> bool {
        let Some(ns) = self.namespaces.get(namespace) else {
            return false;
        };
        let Some(slot) = self.slot_of(ns, name) else {
            return false;
        };
        let (held_uid, uid) = (self.slots[slot as usize].uid, compact_uid(uid));
        if uid != 0 && held_uid != 0 && held_uid != uid {
            return false;
        }
        self.remove(slot);
        true
    }

    fn slot_of(&self, namespace: u32, name: &str) -> Option<u32> {
        let hash = self.name_hash(namespace, name);
        self.names
            .find(hash, |&id| {
                let s = &self.slots[id as usize];
                s.namespace == namespace && *s.name == *name
            })
            .copied()
    }

    fn remove(&mut self, id: u32) {
        let (namespace, network) = {
            let s = &self.slots[id as usize];
            (s.namespace, s.network)
        };
        let name_hash = self.name_hash(namespace, &self.slots[id as usize].name);
        if let Ok(entry) = self.names.find_entry(name_hash, |&other| other == id) {
            entry.remove();
        }
        let ips: Vec<IpAddr> = self.slots[id as usize].addresses.as_slice().to_vec();
        for ip in &ips {
            let key = AddrKey { network, ip: *ip };
            let hash = self.addr_hash(key);
            let first = self.held.find(hash, |h| self.addr_of(*h) == key).copied();
            if first.map(|h| h.slot) == Some(id) {
                // The next holder, if any, becomes the first.
                let next = self.also_held.get_mut(&key).and_then(Vec::pop);
                let replacement = next.map(|next| Held {
                    slot: next,
                    at: self.position(next, *ip),
                });
                // The entry is found by its slot alone: only one entry of a table of unique
                // addresses has this slot and this hash's address.
                let slots = &self.slots;
                let is_this = |h: &Held| {
                    h.slot == id && slots[id as usize].addresses.as_slice()[h.at as usize] == *ip
                };
                if let Ok(entry) = self.held.find_entry(hash, is_this) {
                    match replacement {
                        Some(r) => *entry.into_mut() = r,
                        None => {
                            entry.remove();
                        }
                    }
                }
            } else if let Some(more) = self.also_held.get_mut(&key) {
                if let Some(at) = more.iter().position(|&h| h == id) {
                    more.swap_remove(at);
                }
            }
            if self.also_held.get(&key).is_some_and(Vec::is_empty) {
                self.also_held.remove(&key);
            }
        }
        self.addresses -= ips.len();
        self.live -= 1;
        self.slots[id as usize] = Slot {
            uid: 0,
            name: Box::default(),
            addresses: Addresses::new(Vec::new()),
            namespace: 0,
            network: 0,
        };
        self.free.push(id);
    }

    /// Where `ip` is in the addresses of slot `id` (which holds it).
    fn position(&self, id: u32, ip: IpAddr) -> u32 {
        let at = self.slots[id as usize]
            .addresses
            .as_slice()
            .binary_search(&ip)
            .unwrap_or_default();
        u32::try_from(at).unwrap_or_default()
    }

    /// A claim other than `claimant` that holds `ip` on `network`.
    pub fn holder(&self, network: &str, ip: IpAddr, claimant: &Claimant<'_>) -> Option<Holder> {
        let key = AddrKey {
            network: self.networks.get(network)?,
            ip,
        };
        let first = self
            .held
            .find(self.addr_hash(key), |h| self.addr_of(*h) == key)?
            .slot;
        let claimant_ns = self.namespaces.get(claimant.namespace);
        let is_claimant = |id: u32| {
            let slot = &self.slots[id as usize];
            Some(slot.namespace) == claimant_ns && *slot.name == *claimant.name
        };
        let other = if is_claimant(first) {
            self.also_held
                .get(&key)?
                .iter()
                .copied()
                .find(|&id| !is_claimant(id))?
        } else {
            first
        };
        let slot = &self.slots[other as usize];
        Some(Holder {
            namespace: self.namespaces.name(slot.namespace).to_owned(),
            name: slot.name.to_string(),
        })
    }

    /// The addresses the claim `namespace/name` holds on `network`, sorted; none when it
    /// holds none there (or is not indexed).
    pub fn addresses_of(&self, namespace: &str, name: &str, network: &str) -> &[IpAddr] {
        let (Some(ns), Some(net)) = (self.namespaces.get(namespace), self.networks.get(network))
        else {
            return &[];
        };
        match self.slot_of(ns, name) {
            Some(id) if self.slots[id as usize].network == net => {
                self.slots[id as usize].addresses.as_slice()
            }
            _ => &[],
        }
    }

    /// Whether the claim `namespace/name` holds `ip` on `network`.
    pub fn holds(&self, namespace: &str, name: &str, network: &str, ip: IpAddr) -> bool {
        self.addresses_of(namespace, name, network)
            .binary_search(&ip)
            .is_ok()
    }

    /// Gives back the room that growing left unused (after a re-list is collected).
    pub fn shrink_to_fit(&mut self) {
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.names.shrink_to_fit(|&id| {
            let s = &slots[id as usize];
            hasher.hash_one((s.namespace, &*s.name))
        });
        self.held.shrink_to_fit(|h| {
            let s = &slots[h.slot as usize];
            hasher.hash_one(AddrKey {
                network: s.network,
                ip: s.addresses.as_slice()[h.at as usize],
            })
        });
        self.slots.shrink_to_fit();
        self.free.shrink_to_fit();
        self.also_held.shrink_to_fit();
    }

    /// How many claims hold at least one address.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no claim holds an address.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// How many (claim, network, address) entries are held.
    pub fn addresses(&self) -> usize {
        self.addresses
    }

    /// Every claim as `(namespace, name) → (uid, network, addresses)`, and every held address
    /// as `(network, ip) → holders`, both in a fixed order: what two indexes of the same claims
    /// agree on, however they were built.
    #[allow(clippy::type_complexity)]
    pub fn snapshot(
        &self,
    ) -> (
        BTreeMap<(String, String), (u128, String, Vec<IpAddr>)>,
        BTreeMap<(String, IpAddr), BTreeSet<(String, String)>>,
    ) {
        let mut claims = BTreeMap::new();
        for &id in &self.names {
            let s = &self.slots[id as usize];
            claims.insert(
                (
                    self.namespaces.name(s.namespace).to_owned(),
                    s.name.to_string(),
                ),
                (
                    s.uid,
                    self.networks.name(s.network).to_owned(),
                    s.addresses.as_slice().to_vec(),
                ),
            );
        }
        let mut held: BTreeMap<(String, IpAddr), BTreeSet<(String, String)>> = BTreeMap::new();
        let holders = self.held.iter().map(|h| (self.addr_of(*h), h.slot)).chain(
            self.also_held
                .iter()
                .flat_map(|(k, ids)| ids.iter().map(move |&id| (*k, id))),
        );
        for (key, id) in holders {
            let s = &self.slots[id as usize];
            held.entry((self.networks.name(key.network).to_owned(), key.ip))
                .or_default()
                .insert((
                    self.namespaces.name(s.namespace).to_owned(),
                    s.name.to_string(),
                ));
        }
        (claims, held)
    }
}

impl FromIterator<Claim> for Claims {
    fn from_iter<I: IntoIterator<Item = Claim>>(claims: I) -> Self {
        let mut out = Claims::new();
        for claim in claims {
            out.apply(claim);
        }
        out
    }
}

/// Two indexes are equal when they hold the same claims and addresses, whatever the order of
/// the events that built them.
impl PartialEq for Claims {
    fn eq(&self, other: &Self) -> bool {
        self.live == other.live
            && self.addresses == other.addresses
            && self.snapshot() == other.snapshot()
    }
}

/// An address admitted for a claim that the watch has not shown holding it yet.
#[derive(Clone, Debug)]
struct Reservation {
    namespace: Box<str>,
    name: Box<str>,
    expires: Instant,
}

/// Reservations by network and address, with their expiry times in order (the TTL is one for
/// all, so reservation order is expiry order).
#[derive(Clone, Debug, Default)]
struct Reservations {
    by_network: HashMap<Box<str>, HashMap<IpAddr, Vec<Reservation>>>,
    expiry: VecDeque<(Instant, Box<str>, IpAddr)>,
}

// === impl Reservations ===

impl Reservations {
    /// Reserves each of `ips` on `network` for the claim `namespace/name` until `until`.
    fn reserve(
        &mut self,
        (namespace, name): (&str, &str),
        network: &str,
        ips: impl Iterator<Item = IpAddr>,
        until: Instant,
    ) {
        let mut ips = ips.peekable();
        if ips.peek().is_none() {
            return;
        }
        let by_ip = match self.by_network.get_mut(network) {
            Some(by_ip) => by_ip,
            None => self.by_network.entry(network.into()).or_default(),
        };
        for ip in ips {
            let list = by_ip.entry(ip).or_default();
            match list
                .iter_mut()
                .find(|r| *r.namespace == *namespace && *r.name == *name)
            {
                // Extended: its entry in the expiry queue is queued again when it comes due, so
                // the queue grows with the reservations, not with the reviews that renew them.
                Some(r) => r.expires = r.expires.max(until),
                None => {
                    list.push(Reservation {
                        namespace: namespace.into(),
                        name: name.into(),
                        expires: until,
                    });
                    self.expiry.push_back((until, network.into(), ip));
                }
            }
        }
    }

    /// Forgets every reservation that expired by `now`. Lookups ignore an expired reservation
    /// anyway: this only gives its memory back. An address whose reservations outlive the
    /// entry that came due (extended since) is queued once more, at the earliest of them.
    fn expire(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.expiry.front() {
            if *at > now {
                break;
            }
            let Some((_, network, ip)) = self.expiry.pop_front() else {
                break;
            };
            self.retain_at(&network, ip, |r| r.expires > now);
            let next = self
                .by_network
                .get(&network)
                .and_then(|by_ip| by_ip.get(&ip))
                .and_then(|list| list.iter().map(|r| r.expires).min());
            if let Some(next) = next {
                self.expiry.push_back((next, network, ip));
            }
        }
    }

    /// Keeps the reservations of `ip` on `network` that `keep` accepts.
    fn retain_at(&mut self, network: &str, ip: IpAddr, keep: impl FnMut(&Reservation) -> bool) {
        let Some(by_ip) = self.by_network.get_mut(network) else {
            return;
        };
        if let Some(list) = by_ip.get_mut(&ip) {
            list.retain(keep);
            if list.is_empty() {
                by_ip.remove(&ip);
            }
        }
        if by_ip.is_empty() {
            self.by_network.remove(network);
        }
    }

    fn holder(
        &self,
        network: &str,
        ip: IpAddr,
        claimant: &Claimant<'_>,
        now: Instant,
    ) -> Option<Holder> {
        self.by_network
            .get(network)?
            .get(&ip)?
            .iter()
            .find(|r| {
                r.expires > now
                    && !(*r.namespace == *claimant.namespace && *r.name == *claimant.name)
            })
            .map(|r| Holder {
                namespace: r.namespace.to_string(),
                name: r.name.to_string(),
            })
    }

    /// Drops the reservations that `claims` now shows held by the claim that made them.
    fn release_shown(&mut self, claims: &Claims) {
        let mut shown = Vec::new();
        for (network, by_ip) in &self.by_network {
            for (ip, list) in by_ip {
                if list
                    .iter()
                    .any(|r| claims.holds(&r.namespace, &r.name, network, *ip))
                {
                    shown.push((network.clone(), *ip));
                }
            }
        }
        for (network, ip) in shown {
            self.retain_at(&network, ip, |r| {
                !claims.holds(&r.namespace, &r.name, &network, ip)
            });
        }
    }

    /// Drops the reservations of `claim` for the addresses it now holds.
    fn release_claim(&mut self, claim: &Claim) {
        for &ip in &claim.addresses {
            self.retain_at(&claim.network, ip, |r| {
                !(*r.namespace == *claim.namespace && *r.name == *claim.name)
            });
        }
    }

    fn count(&self, now: Instant) -> usize {
        self.by_network
            .values()
            .flat_map(HashMap::values)
            .flatten()
            .filter(|r| r.expires > now)
            .count()
    }
}

/// The cluster's claims as the watch shows them, and the addresses this replica admitted that
/// the watch does not show yet.
#[derive(Clone, Debug, Default)]
pub struct Index {
    claims: Claims,
    reservations: Reservations,
}

// === impl Index ===

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Index::default()
    }

    /// The watch shows `claim` (added or modified): it replaces what its name held, and its
    /// reservations of the addresses it now holds are dropped.
    pub fn apply(&mut self, claim: Claim) {
        self.reservations.release_claim(&claim);
        self.claims.apply(claim);
    }

    /// The watch shows `namespace/name` deleted (see [`Claims::delete`]). Its reservations
    /// stay until they expire: they may be for a claim of that name being created again.
    pub fn delete(&mut self, namespace: &str, name: &str, uid: &str) -> bool {
        self.claims.delete(namespace, name, uid)
    }

    /// A whole re-list, collected apart, replaces the claims at once: there is never a moment
    /// with an empty or half index. Reservations that the list shows held are dropped.
    /// Returns the claims replaced, for the caller to drop outside any lock.
    pub fn reset(&mut self, claims: Claims) -> Claims {
        let old = std::mem::replace(&mut self.claims, claims);
        self.reservations.release_shown(&self.claims);
        old
    }

    /// A claim other than `claimant` that holds `ip` on `network`, or has a reservation for it
    /// that is still running at `now`.
    pub fn holder(
        &self,
        network: &str,
        ip: IpAddr,
        claimant: &Claimant<'_>,
        now: Instant,
    ) -> Option<Holder> {
        self.claims
            .holder(network, ip, claimant)
            .or_else(|| self.reservations.holder(network, ip, claimant, now))
    }

    /// Reserves the addresses of an admitted claim for `ttl` from `now`, unless `check` finds
    /// that one the verdict judged free is now held by another claim (admitted meanwhile by
    /// another worker): then nothing is reserved and that holder is returned, for the review
    /// to be judged again. Check and reservation happen under one `&mut`, so of two reviews
    /// for one address only one can reserve it.
    pub fn try_reserve(
        &mut self,
        admitted: &Admitted,
        check: bool,
        now: Instant,
        ttl: Duration,
    ) -> Result<(), Holder> {
        self.reservations.expire(now);
        let claimant = Claimant {
            namespace: &admitted.namespace,
            name: &admitted.name,
        };
        if check {
            for address in admitted.addresses.iter().filter(|a| a.judged) {
                if let Some(holder) = self.holder(&admitted.network, address.ip, &claimant, now) {
                    return Err(holder);
                }
            }
        }
        // The claim's own addresses are looked up once: those the watch shows it holding need
        // no reservation.
        let held = self
            .claims
            .addresses_of(&admitted.namespace, &admitted.name, &admitted.network);
        self.reservations.reserve(
            (&admitted.namespace, &admitted.name),
            &admitted.network,
            admitted
                .addresses
                .iter()
                .map(|a| a.ip)
                .filter(|ip| held.binary_search(ip).is_err()),
            now + ttl,
        );
        Ok(())
    }

    /// Drops the reservations that `admitted` made (its claim's, for its addresses): the
    /// review was refused after all, so they hold nothing the API server will write.
    pub fn release(&mut self, admitted: &Admitted) {
        for address in &admitted.addresses {
            self.reservations
                .retain_at(&admitted.network, address.ip, |r| {
                    !(*r.namespace == *admitted.namespace && *r.name == *admitted.name)
                });
        }
    }

    /// The claims the watch shows.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// Whether any reservation is held, expired or not (when none is, lookups need no clock).
    pub fn has_reservations(&self) -> bool {
        !self.reservations.by_network.is_empty()
    }

    /// How many reservations are running at `now`.
    pub fn reservations(&self, now: Instant) -> usize {
        self.reservations.count(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::rules::conflicts::AdmittedAddress;
    use proptest::prelude::*;
    use serde_json::json;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn claim(ns: &str, name: &str, network: &str, addresses: &[&str]) -> Claim {
        Claim {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            uid: uuid(ns, name),
            network: network.to_owned(),
            addresses: addresses.iter().map(|a| ip(a)).collect(),
        }
    }

    /// A UUID of its own for each namespace/name, as the API server would give.
    fn uuid(ns: &str, name: &str) -> String {
        let n = ns
            .bytes()
            .chain(name.bytes())
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        format!("00000000-0000-4000-8000-{:012x}", n & 0xffff_ffff_ffff)
    }

    fn who(ns: &'static str, name: &'static str) -> Claimant<'static> {
        Claimant {
            namespace: ns,
            name,
        }
    }

    fn holder(ns: &str, name: &str) -> Option<Holder> {
        Some(Holder {
            namespace: ns.to_owned(),
            name: name.to_owned(),
        })
    }

    fn admitted(ns: &str, name: &str, network: &str, addresses: &[&str]) -> Admitted {
        Admitted {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            uid: String::new(),
            network: network.to_owned(),
            addresses: addresses
                .iter()
                .map(|a| AdmittedAddress {
                    ip: ip(a),
                    judged: true,
                })
                .collect(),
            dry_run: false,
        }
    }

    const TTL: Duration = Duration::from_secs(30);

    #[test]
    fn a_released_reservation_no_longer_holds_the_address() {
        let now = Instant::now();
        let mut index = Index::new();
        let a = admitted("ns1", "a", "red", &["10.0.0.5"]);
        let b = admitted("ns1", "b", "red", &["10.0.0.6"]);
        index.try_reserve(&a, true, now, TTL).expect("a");
        index.try_reserve(&b, true, now, TTL).expect("b");
        index.release(&a);
        assert_eq!(
            index.holder("red", ip("10.0.0.5"), &who("ns1", "z"), now),
            None
        );
        // Another claim's reservation stays.
        assert!(index
            .holder("red", ip("10.0.0.6"), &who("ns1", "z"), now)
            .is_some());
    }

    #[test]
    fn reads_a_claim_from_its_object() {
        let object = json!({
            "metadata": {"name": "vm-a.tenantred", "namespace": "ns1", "uid": "u1",
                         "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"network": "tenantred", "interface": "pod1", "ipRequests": ["10.0.0.5/24"]},
            "status": {"ips": ["10.0.0.5/16", "FD00::1/64", "winner", "010.0.0.9"]},
        });
        assert_eq!(
            Claim::from_object(&object),
            Some(Claim {
                namespace: "ns1".to_owned(),
                name: "vm-a.tenantred".to_owned(),
                uid: "u1".to_owned(),
                network: "tenantred".to_owned(),
                addresses: vec![ip("10.0.0.5"), ip("fd00::1")],
            })
        );
        assert_eq!(Claim::from_object(&json!({"metadata": {}})), None);
        assert_eq!(Claim::from_object(&json!([1])), None);
    }

    /// Issue 26: a bare IP is refused in new writes of `status.ips`, but one already stored
    /// still names its address, and holds it against every other claim.
    #[test]
    fn a_bare_ip_in_a_stored_claim_still_holds_its_address() {
        let object = json!({
            "metadata": {"name": "vm-a.tenantred", "namespace": "ns1", "uid": "u1"},
            "spec": {"network": "tenantred", "interface": ""},
            "status": {"ips": ["10.0.0.7"]},
        });
        let claims: Claims = Claim::from_object(&object).into_iter().collect();
        assert_eq!(
            claims.holder("tenantred", ip("10.0.0.7"), &who("ns1", "b")),
            holder("ns1", "vm-a.tenantred")
        );
    }

    #[test]
    fn keeps_a_uuid_in_16_bytes_and_anything_else_as_unknown() {
        assert_eq!(
            compact_uid("367b99ee-5da4-4a68-950c-4e7ffcfe8169"),
            0x367b99ee_5da4_4a68_950c_4e7ffcfe8169
        );
        for other in [
            "",
            "u1",
            "367b99ee5da44a68950c4e7ffcfe8169",
            "367b99ee-5da4-4a68-950c-4e7ffcfe816g",
        ] {
            assert_eq!(compact_uid(other), 0, "{other}");
        }
    }

    #[test]
    fn keeps_more_than_two_addresses() {
        let mut claims = Claims::new();
        claims.apply(claim(
            "ns1",
            "a",
            "red",
            &["10.0.0.3", "10.0.0.1", "fd00::1", "10.0.0.2"],
        ));
        assert_eq!(claims.addresses(), 4);
        for ip_text in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::1"] {
            assert!(claims.holds("ns1", "a", "red", ip(ip_text)), "{ip_text}");
        }
        claims.shrink_to_fit();
        assert!(claims.delete("ns1", "a", ""));
        assert_eq!((claims.len(), claims.addresses()), (0, 0));
    }

    #[test]
    fn finds_the_holder_of_an_address_on_its_network_only() {
        let claims: Claims = [claim("ns1", "a", "red", &["10.0.0.5", "fd00::5"])]
            .into_iter()
            .collect();
        assert_eq!(
            claims.holder("red", ip("10.0.0.5"), &who("ns1", "b")),
            holder("ns1", "a")
        );
        assert_eq!(
            claims.holder("red", ip("fd00::5"), &who("ns2", "a")),
            holder("ns1", "a")
        );
        assert_eq!(
            claims.holder("blue", ip("10.0.0.5"), &who("ns1", "b")),
            None
        );
        assert_eq!(claims.holder("red", ip("10.0.0.6"), &who("ns1", "b")), None);
        assert_eq!(claims.holder("red", ip("10.0.0.5"), &who("ns1", "a")), None);
        assert_eq!((claims.len(), claims.addresses()), (1, 2));
    }

    #[test]
    fn an_update_releases_the_addresses_it_drops() {
        let mut claims = Claims::new();
        claims.apply(claim("ns1", "a", "red", &["10.0.0.5"]));
        claims.apply(claim("ns1", "a", "red", &["10.0.0.6"]));
        assert_eq!(claims.holder("red", ip("10.0.0.5"), &who("ns1", "b")), None);
        assert_eq!(
            claims.holder("red", ip("10.0.0.6"), &who("ns1", "b")),
            holder("ns1", "a")
        );
        claims.apply(claim("ns1", "a", "red", &[]));
        assert!(claims.is_empty());
        assert_eq!(claims.holder("red", ip("10.0.0.6"), &who("ns1", "b")), None);
    }

    #[test]
    fn a_delete_releases_and_a_stale_delete_does_not() {
        let mut claims = Claims::new();
        claims.apply(claim("ns1", "a", "red", &["10.0.0.5"]));
        assert!(!claims.delete("ns1", "a", &uuid("ns1", "an older a")));
        assert_eq!(claims.len(), 1);
        assert!(claims.delete("ns1", "a", &uuid("ns1", "a")));
        assert!(!claims.delete("ns1", "a", ""));
        assert_eq!(claims.holder("red", ip("10.0.0.5"), &who("ns1", "b")), None);
        assert_eq!((claims.len(), claims.addresses()), (0, 0));
    }

    #[test]
    fn an_address_held_twice_names_the_other_holder_and_survives_either_delete() {
        let mut claims = Claims::new();
        claims.apply(claim("ns1", "a", "red", &["10.0.0.5"]));
        claims.apply(claim("ns1", "b", "red", &["10.0.0.5"]));
        assert_eq!(
            claims.holder("red", ip("10.0.0.5"), &who("ns1", "a")),
            holder("ns1", "b")
        );
        assert_eq!(
            claims.holder("red", ip("10.0.0.5"), &who("ns1", "b")),
            holder("ns1", "a")
        );
        claims.delete("ns1", "a", "");
        assert_eq!(
            claims.holder("red", ip("10.0.0.5"), &who("ns1", "c")),
            holder("ns1", "b")
        );
        claims.delete("ns1", "b", "");
        assert_eq!(claims.holder("red", ip("10.0.0.5"), &who("ns1", "c")), None);
    }

    /// Regression (found measuring issue 31): every review renewing a reservation queued an
    /// expiry entry held for the whole TTL, so memory grew with the review rate.
    #[test]
    fn renewing_a_reservation_does_not_grow_the_expiry_queue() {
        let mut reservations = Reservations::default();
        let t0 = Instant::now();
        let address = ip("10.0.0.5");
        for i in 0..10_000 {
            let now = t0 + Duration::from_millis(i);
            reservations.expire(now);
            reservations.reserve(("ns1", "a"), "red", [address].into_iter(), now + TTL);
        }
        assert_eq!(reservations.expiry.len(), 1);
        // Still held until the last renewal's TTL, then forgotten.
        let last = t0 + Duration::from_millis(9_999) + TTL;
        reservations.expire(last - Duration::from_millis(1));
        assert_eq!(reservations.count(last - Duration::from_millis(1)), 1);
        reservations.expire(last);
        assert_eq!(reservations.count(last), 0);
        assert!(reservations.expiry.is_empty() && reservations.by_network.is_empty());
    }

    #[test]
    fn a_reservation_blocks_others_until_it_expires() {
        let t0 = Instant::now();
        let mut index = Index::new();
        let a = admitted("ns1", "a", "red", &["10.0.0.5"]);
        assert_eq!(index.try_reserve(&a, true, t0, TTL), Ok(()));
        assert_eq!(
            index.holder("red", ip("10.0.0.5"), &who("ns1", "b"), t0),
            holder("ns1", "a")
        );
        assert_eq!(
            index.holder("red", ip("10.0.0.5"), &who("ns1", "a"), t0),
            None
        );
        let later = t0 + TTL - Duration::from_millis(1);
        assert!(index
            .holder("red", ip("10.0.0.5"), &who("ns1", "b"), later)
            .is_some());
        let expired = t0 + TTL;
        assert_eq!(
            index.holder("red", ip("10.0.0.5"), &who("ns1", "b"), expired),
            None
        );
        assert_eq!(index.reservations(expired), 0);
        // Once expired, another claim may reserve it.
        let b = admitted("ns1", "b", "red", &["10.0.0.5"]);
        assert_eq!(index.try_reserve(&b, true, expired, TTL), Ok(()));
    }

    #[test]
    fn of_two_reviews_for_one_address_only_the_first_reserves() {
        let t0 = Instant::now();
        let mut index = Index::new();
        let a = admitted("ns1", "a", "red", &["10.0.0.5", "fd00::5"]);
        let b = admitted("ns2", "b", "red", &["fd00::5"]);
        assert_eq!(index.try_reserve(&a, true, t0, TTL), Ok(()));
        assert_eq!(
            index.try_reserve(&b, true, t0, TTL),
            Err(holder("ns1", "a").unwrap())
        );
        // Nothing of the refused one was reserved.
        assert_eq!(index.reservations(t0), 2);
        // Without the check (--enforcement Warn|Audit admits anyway), both reserve.
        assert_eq!(index.try_reserve(&b, false, t0, TTL), Ok(()));
        assert_eq!(index.reservations(t0), 3);
    }

    #[test]
    fn an_address_not_judged_is_not_checked() {
        let t0 = Instant::now();
        let mut index = Index::new();
        index.apply(claim("ns1", "a", "red", &["10.0.0.5"]));
        let mut b = admitted("ns1", "b", "red", &["10.0.0.5"]);
        assert!(index.try_reserve(&b, true, t0, TTL).is_err());
        b.addresses[0].judged = false; // a conflict that predates the review (ratcheted)
        assert_eq!(index.try_reserve(&b, true, t0, TTL), Ok(()));
    }

    #[test]
    fn reservations_yield_to_the_watch() {
        let t0 = Instant::now();
        let mut index = Index::new();
        let a = admitted("ns1", "a", "red", &["10.0.0.5", "10.0.0.6"]);
        index.try_reserve(&a, true, t0, TTL).expect("free");
        assert_eq!(index.reservations(t0), 2);
        // The watch shows the claim holding one of them: that reservation is dropped.
        index.apply(claim("ns1", "a", "red", &["10.0.0.5"]));
        assert_eq!(index.reservations(t0), 1);
        assert_eq!(
            index.holder("red", ip("10.0.0.5"), &who("ns1", "b"), t0),
            holder("ns1", "a")
        );
        // A re-list that shows the other drops it too.
        index.reset(
            [claim("ns1", "a", "red", &["10.0.0.6"])]
                .into_iter()
                .collect(),
        );
        assert_eq!(index.reservations(t0), 0);
        assert_eq!(
            index.holder("red", ip("10.0.0.5"), &who("ns1", "b"), t0),
            None
        );
        assert_eq!(
            index.holder("red", ip("10.0.0.6"), &who("ns1", "b"), t0),
            holder("ns1", "a")
        );
    }

    #[test]
    fn a_reset_keeps_reservations_the_list_does_not_show() {
        let t0 = Instant::now();
        let mut index = Index::new();
        index
            .try_reserve(&admitted("ns1", "a", "red", &["10.0.0.5"]), true, t0, TTL)
            .expect("free");
        index.reset(Claims::new());
        assert_eq!(
            index.holder("red", ip("10.0.0.5"), &who("ns1", "b"), t0),
            holder("ns1", "a")
        );
    }

    #[test]
    fn an_address_the_claim_already_holds_is_not_reserved() {
        let t0 = Instant::now();
        let mut index = Index::new();
        index.apply(claim("ns1", "a", "red", &["10.0.0.5"]));
        index
            .try_reserve(&admitted("ns1", "a", "red", &["10.0.0.5"]), true, t0, TTL)
            .expect("its own");
        assert_eq!(index.reservations(t0), 0);
    }

    // === Property: any sequence of events equals the index of the final claims ===

    #[derive(Clone, Debug)]
    enum Event {
        Apply(Claim),
        Delete(String, String),
        Reset(Vec<Claim>),
    }

    const NAMESPACES: [&str; 2] = ["ns1", "ns2"];
    const NAMES: [&str; 4] = ["a", "b", "c", "d"];
    const NETWORKS: [&str; 2] = ["red", "blue"];
    const IPS: [&str; 5] = ["10.0.0.1", "10.0.0.2", "fd00::1", "fd00::2", "10.0.0.3"];

    fn any_claim() -> impl Strategy<Value = Claim> {
        (
            0..NAMESPACES.len(),
            0..NAMES.len(),
            0..NETWORKS.len(),
            proptest::collection::vec(0..IPS.len(), 0..4),
        )
            .prop_map(|(ns, name, net, ips)| {
                let ips: Vec<&str> = ips.into_iter().map(|i| IPS[i]).collect();
                claim(NAMESPACES[ns], NAMES[name], NETWORKS[net], &ips)
            })
    }

    fn any_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            6 => any_claim().prop_map(Event::Apply),
            3 => (0..NAMESPACES.len(), 0..NAMES.len())
                .prop_map(|(ns, n)| Event::Delete(NAMESPACES[ns].to_owned(), NAMES[n].to_owned())),
            1 => proptest::collection::vec(any_claim(), 0..6).prop_map(Event::Reset),
        ]
    }

    proptest! {
        #[test]
        fn after_any_events_the_index_equals_the_index_of_the_final_claims(
            events in proptest::collection::vec(any_event(), 0..40)
        ) {
            let mut index = Index::new();
            let mut model: BTreeMap<(String, String), Claim> = BTreeMap::new();
            for event in events {
                match event {
                    Event::Apply(c) => {
                        model.insert((c.namespace.clone(), c.name.clone()), c.clone());
                        index.apply(c);
                    }
                    Event::Delete(ns, name) => {
                        model.remove(&(ns.clone(), name.clone()));
                        index.delete(&ns, &name, "");
                    }
                    Event::Reset(list) => {
                        model.clear();
                        for c in &list {
                            model.insert((c.namespace.clone(), c.name.clone()), c.clone());
                        }
                        index.reset(list.into_iter().collect());
                    }
                }
            }
            let rebuilt: Claims = model.values().cloned().collect();
            prop_assert!(index.claims() == &rebuilt);
            let now = Instant::now();
            // And every lookup agrees with the model.
            for net in NETWORKS {
                for addr in IPS {
                    for ns in NAMESPACES {
                        for name in NAMES {
                            let me = who(ns, name);
                            let expected = model.values().any(|c| {
                                c.network == net
                                    && c.addresses.contains(&ip(addr))
                                    && (c.namespace != ns || c.name != name)
                            });
                            let found = index.holder(net, ip(addr), &me, now);
                            prop_assert_eq!(found.is_some(), expected);
                            if let Some(h) = found {
                                let c = &model[&(h.namespace.clone(), h.name.clone())];
                                prop_assert!(c.network == net && c.addresses.contains(&ip(addr)));
                            }
                        }
                    }
                }
            }
        }

        #[test]
        fn reservations_expire_and_yield_to_the_watch(
            reserve_at in 0u64..60, shown in any::<bool>(), look_at in 0u64..120
        ) {
            let t0 = Instant::now();
            let mut index = Index::new();
            let reserved_at = t0 + Duration::from_secs(reserve_at);
            index.try_reserve(&admitted("ns1", "a", "red", &["10.0.0.1"]), true, reserved_at, TTL)
                .expect("free");
            if shown {
                index.apply(claim("ns1", "a", "red", &["10.0.0.1"]));
            }
            let at = t0 + Duration::from_secs(look_at);
            let found = index.holder("red", ip("10.0.0.1"), &who("ns2", "b"), at);
            // Held while the watch shows it; otherwise only until the reservation expires.
            let in_window = at < reserved_at + TTL;
            prop_assert_eq!(found.is_some(), shown || in_window);
            prop_assert_eq!(index.reservations(at) > 0, !shown && in_window);
        }
    }
}
