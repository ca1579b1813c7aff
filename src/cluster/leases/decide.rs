//! The decisions of the reservations across replicas (DESIGN §9), as pure functions of what a
//! Lease says, what the index (or the API server) says of its holder, and the time: what a
//! review does about an address whose Lease already exists ([`resolve`]), and what a replica
//! does about a Lease it knows of ([`collect`]). The I/O that gathers these facts and acts on
//! the answers is elsewhere ([`super::client`], [`super::reserver`]).
//!
//! The rules, in short: a Lease is its claim's until the watch has shown that claim holding the
//! address for a grace period (then the index guards the address, and the Lease goes), or until
//! it runs out without the claim ever holding the address (its write was never persisted: the
//! Lease may be taken over by a review, or deleted a grace period later). Both "shown" and "never persisted" are asked of the API server
//! itself before anything is taken away on the index's word alone, which may lag.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::admission::rules::conflicts::Holder;
use crate::cluster::leases::lease::{ClaimRef, Read};

/// Whether a claim holds an address on a network (in the index, or by a GET of the claim).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// It does: persisted.
    Holding,
    /// It does not (or the claim is gone).
    NotHolding,
}

/// What a review does about one address whose Lease exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The claim's own: reserved, nothing to write.
    Ours,
    /// The claim's own, but half run out, or held under another incarnation of the claim:
    /// renew it (an update conditioned on its resourceVersion), so that it outlives the write
    /// this review admits.
    Renew,
    /// Another claim holds it, or may: its write may still be in flight. A conflict, naming it.
    Conflict(Holder),
    /// Run out, and the index does not show its holder holding the address: ask the API server
    /// (the index may lag) before taking it over.
    AskApi,
    /// Run out, and its holder does not hold the address: that claim's write was never
    /// persisted. Take the Lease over (an update conditioned on its resourceVersion).
    TakeOver,
}

/// What is known when a review finds an address's Lease already there.
#[derive(Clone, Debug)]
pub struct Found<'a> {
    /// The claim under review.
    pub claimant: &'a ClaimRef,
    /// The Lease, as read.
    pub lease: &'a Read,
    /// What this replica's index says of the Lease's holder and this address.
    pub index: Seen,
    /// What the API server said of them, once asked.
    pub api: Option<Seen>,
    /// The wall clock.
    pub now: Timestamp,
    /// `--reservation-ttl`: a Lease of the claimant with less than half of it left is renewed.
    pub ttl: Duration,
}

/// The holder named when a Lease's holder cannot be read (a Lease written by hand): it is in
/// no namespace, so a denial says "in another namespace".
fn unknown_holder() -> Holder {
    Holder {
        namespace: String::new(),
        name: String::new(),
    }
}

/// What a review does about an address whose Lease exists (see [`Step`]).
pub fn resolve(found: &Found<'_>) -> Step {
    let lease = found.lease;
    match &lease.holder {
        Some(holder) if holder.same_claim(found.claimant) => {
            let half = found
                .now
                .saturating_add(found.ttl / 2)
                .unwrap_or(Timestamp::MAX);
            if !holder.same_incarnation(found.claimant) || lease.expires < half {
                Step::Renew
            } else {
                Step::Ours
            }
        }
        holder => {
            let named = holder
                .as_ref()
                .map_or_else(unknown_holder, ClaimRef::holder);
            if found.index == Seen::Holding || found.now < lease.expires {
                return Step::Conflict(named);
            }
            match found.api {
                // A holder this webhook did not write cannot be asked about: it never held
                // anything the index could show.
                None if holder.is_some() => Step::AskApi,
                Some(Seen::Holding) => Step::Conflict(named),
                _ => Step::TakeOver,
            }
        }
    }
}

/// What a replica does about a Lease it knows of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collect {
    /// Leave it.
    Keep,
    /// Delete it (conditioned on its uid and resourceVersion).
    Delete,
    /// Run out a grace period ago, and the index does not show its holder holding the
    /// address: ask the API server whether it does before deleting it.
    AskApi,
}

/// What is known of a Lease a replica knows of, at one round of collection.
#[derive(Clone, Copy, Debug)]
pub struct Known {
    /// How long this replica's index has shown the Lease's holder holding the address, if it
    /// shows it now.
    pub shown_for: Option<Duration>,
    /// When the Lease runs out.
    pub expires: Timestamp,
    /// What the API server said of the holder and the address, once asked (`NotHolding` for a
    /// holder that cannot be read).
    pub api: Option<Seen>,
    /// The wall clock.
    pub now: Timestamp,
    /// How long the index must have shown the holder before the Lease goes: long enough for
    /// the watches of the other replicas to show it too. A Lease never shown goes as long
    /// after it ran out.
    pub grace: Duration,
}

/// What a replica does about a Lease it knows of (see [`Collect`]).
pub fn collect(known: &Known) -> Collect {
    if let Some(shown) = known.shown_for {
        return if shown >= known.grace {
            Collect::Delete
        } else {
            Collect::Keep
        };
    }
    // A Lease whose holder never held the address is no hurry: for a grace period after it
    // runs out, the next review of its address takes it over (and says so) instead.
    let idle = known
        .expires
        .saturating_add(known.grace)
        .unwrap_or(Timestamp::MAX);
    if known.now < idle {
        return Collect::Keep;
    }
    match known.api {
        None => Collect::AskApi,
        Some(Seen::Holding) => Collect::Keep,
        Some(Seen::NotHolding) => Collect::Delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("timestamp")
    }

    fn claim(ns: &str, name: &str, uid: &str) -> ClaimRef {
        ClaimRef {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
        }
    }

    /// A Lease held by `holder` that runs out at `expires`.
    fn lease(holder: Option<ClaimRef>, expires: i64) -> Read {
        Read {
            holder,
            resource_version: "7".to_owned(),
            uid: "lease-uid".to_owned(),
            expires: at(expires),
        }
    }

    fn step(claimant: &ClaimRef, lease: &Read, index: Seen, api: Option<Seen>, now: i64) -> Step {
        resolve(&Found {
            claimant,
            lease,
            index,
            api,
            now: at(now),
            ttl: TTL,
        })
    }

    fn b() -> Holder {
        Holder {
            namespace: "ns1".to_owned(),
            name: "b".to_owned(),
        }
    }

    #[test]
    fn the_claims_own_lease_admits_without_a_write() {
        let a = claim("ns1", "a", "u1");
        let l = lease(Some(a.clone()), 30);
        assert_eq!(step(&a, &l, Seen::NotHolding, None, 0), Step::Ours);
        // The uid unknown on one side: still the same incarnation.
        let l = lease(Some(claim("ns1", "a", "")), 30);
        assert_eq!(step(&a, &l, Seen::NotHolding, None, 0), Step::Ours);
    }

    #[test]
    fn the_claims_own_lease_is_renewed_when_half_run_out_or_held_by_another_incarnation() {
        let a = claim("ns1", "a", "u1");
        let l = lease(Some(a.clone()), 30);
        assert_eq!(step(&a, &l, Seen::NotHolding, None, 14), Step::Ours);
        assert_eq!(step(&a, &l, Seen::NotHolding, None, 16), Step::Renew);
        assert_eq!(step(&a, &l, Seen::NotHolding, None, 60), Step::Renew);
        let older = lease(Some(claim("ns1", "a", "u0")), 30);
        assert_eq!(step(&a, &older, Seen::NotHolding, None, 0), Step::Renew);
    }

    #[test]
    fn another_claims_running_lease_is_a_conflict_whatever_the_index_says() {
        let a = claim("ns1", "a", "u1");
        let l = lease(Some(claim("ns1", "b", "u2")), 30);
        assert_eq!(
            step(&a, &l, Seen::NotHolding, None, 29),
            Step::Conflict(b())
        );
        assert_eq!(step(&a, &l, Seen::Holding, None, 29), Step::Conflict(b()));
    }

    #[test]
    fn another_claims_lease_shown_held_is_a_conflict_even_run_out() {
        let a = claim("ns1", "a", "u1");
        let l = lease(Some(claim("ns1", "b", "u2")), 30);
        assert_eq!(step(&a, &l, Seen::Holding, None, 90), Step::Conflict(b()));
    }

    #[test]
    fn a_run_out_lease_is_taken_over_only_once_the_api_says_its_holder_never_held_it() {
        let a = claim("ns1", "a", "u1");
        let l = lease(Some(claim("ns1", "b", "u2")), 30);
        assert_eq!(step(&a, &l, Seen::NotHolding, None, 30), Step::AskApi);
        assert_eq!(
            step(&a, &l, Seen::NotHolding, Some(Seen::Holding), 30),
            Step::Conflict(b()),
            "the index lags: the API shows the holder holding it"
        );
        assert_eq!(
            step(&a, &l, Seen::NotHolding, Some(Seen::NotHolding), 30),
            Step::TakeOver
        );
    }

    #[test]
    fn a_lease_of_an_unreadable_holder_names_no_one_and_is_taken_over_once_run_out() {
        let a = claim("ns1", "a", "u1");
        let l = lease(None, 30);
        let unknown = Holder {
            namespace: String::new(),
            name: String::new(),
        };
        assert_eq!(
            step(&a, &l, Seen::NotHolding, None, 10),
            Step::Conflict(unknown)
        );
        assert_eq!(step(&a, &l, Seen::NotHolding, None, 31), Step::TakeOver);
    }

    fn kept(shown_for: Option<u64>, expires: i64, api: Option<Seen>, now: i64) -> Collect {
        collect(&Known {
            shown_for: shown_for.map(Duration::from_secs),
            expires: at(expires),
            api,
            now: at(now),
            grace: Duration::from_secs(30),
        })
    }

    #[test]
    fn a_lease_goes_once_the_index_has_shown_its_holder_for_the_grace_period() {
        assert_eq!(kept(Some(0), 30, None, 0), Collect::Keep);
        assert_eq!(kept(Some(29), 30, None, 29), Collect::Keep);
        assert_eq!(kept(Some(30), 30, None, 30), Collect::Delete);
        // Shown is enough, run out or not.
        assert_eq!(kept(Some(30), 300, None, 30), Collect::Delete);
    }

    #[test]
    fn a_lease_never_shown_goes_a_grace_period_after_it_ran_out_if_the_api_says_its_holder_does_not_hold_it(
    ) {
        assert_eq!(kept(None, 30, None, 29), Collect::Keep);
        // Run out: left to a review to take over, for the grace period.
        assert_eq!(kept(None, 30, None, 59), Collect::Keep);
        assert_eq!(kept(None, 30, None, 60), Collect::AskApi);
        assert_eq!(kept(None, 30, Some(Seen::Holding), 60), Collect::Keep);
        assert_eq!(kept(None, 30, Some(Seen::NotHolding), 60), Collect::Delete);
    }
}
