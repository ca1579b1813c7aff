//! Addresses that fit their network (`--check-networks`, DESIGN §10): what the core knows of a
//! network, the read-only lookup it sees networks through, and the verdict on each address.
//!
//! A network reaches the core judge-ready: its subnets, the ranges refused inside them and the
//! ranges addresses are handed out from are cut once, when its NetworkAttachmentDefinition
//! changes, into sorted disjoint pieces ([`span::Cover`]). Judging an address is then a binary
//! search and a few integer comparisons; words are made only for an address that does not
//! fit. Nothing here knows where networks come from: `serve` hands the watched index in,
//! `replay` an index of files, tests a fixed one.

pub mod span;

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::Arc;

use crate::admission::answer::caps::{self, Warnings};
use crate::admission::answer::field::Report as _;
use crate::admission::answer::field::{FieldError, Path};
use crate::admission::answer::gotext::quote_clipped;
use crate::admission::model::view::{Claim, Field, List};
use crate::admission::rules::conflicts::{network_of, ADDRESS_LISTS};
use crate::admission::rules::ip::{self, Address, AddressError};
use crate::admission::rules::Verdict;

pub use span::{Cidr, Point, Span};
use span::{Cover, Found};

/// The most addresses of one IPv6 subnet that OVN-Kubernetes' allocator covers: its bitmap
/// has 65,536 bits, of which the first (the network address) and the last are never handed out.
pub const OVN_IPV6_ADDRESSES: u128 = 65_535;

/// Subnets and ranges named in one message at most; the rest are counted.
const MAX_NAMED: usize = 8;

/// A read-only view of the networks of a cluster, keyed by the CNI config's `name` (what
/// `spec.network` holds).
pub trait Networks: Send + Sync + fmt::Debug {
    /// The network of that name, or `None` when no NetworkAttachmentDefinition defines it.
    fn network(&self, name: &str) -> Option<Arc<Network>>;

    /// Counts one address of a review that does not fit its network, by the rule it breaks
    /// (not those ratcheted into warnings): `serve`'s metrics. Nothing by default.
    fn misfit(&self, _reason: MisfitReason) {}
}

/// The view the pipeline is given: shared by every worker, read-only to the core.
pub type View = Arc<dyn Networks>;

/// A network as the verdict sees it: who defines it, and what they say about its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    name: Arc<str>,
    /// Sorted, each once.
    namespaces: Box<[Arc<str>]>,
    definitions: Definitions,
}

/// What the NetworkAttachmentDefinitions of one network say about its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Definitions {
    /// They all say the same (or there is one).
    Agree(Arc<Addressing>),
    /// They disagree: the network's addresses are not checked.
    Disagree,
}

/// What one network config says about addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// Rules the verdict applies.
    Ruled(Rules),
    /// No rules (another plugin, no subnets, a config that does not parse): why, in a few
    /// words such as `ipam type "dhcp"`.
    Unruled(Box<str>),
}

/// The plugin that hands out a network's addresses, as far as the rules differ between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Plugin {
    /// OVN-Kubernetes (`type: ovn-k8s-cni-overlay`).
    OvnKubernetes {
        /// `topology`.
        topology: Topology,
        /// `role: primary` (else secondary).
        primary: bool,
    },
    /// The whereabouts IPAM plugin.
    Whereabouts,
    /// The host-local IPAM plugin.
    HostLocal,
}

/// An OVN-Kubernetes network's `topology`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topology {
    /// `layer2`.
    Layer2,
    /// `layer3`: one subnet per node, cut from the network's.
    Layer3,
    /// `localnet`.
    Localnet,
}

/// Whether a network keeps addresses for claims (persistent IPs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Persistence {
    /// It does (`allowPersistentIPs: true`, not layer3).
    Keeps,
    /// `allowPersistentIPs` is not true.
    NotAllowed,
    /// A layer3 network never does.
    Layer3,
}

/// Why an address inside a network's subnets is never handed out. Where ranges of several
/// reasons overlap, the earlier reason is the one named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// A gateway: OVN-Kubernetes primary layer2 (`defaultGatewayIPs`, else each subnet's
    /// first address), host-local (`gateway`, else the first address).
    Gateway,
    /// The management address of an OVN-Kubernetes primary layer2 network (the second).
    Management,
    /// OVN-Kubernetes `infrastructureSubnets`.
    Infrastructure,
    /// OVN-Kubernetes `excludeSubnets`.
    ExcludeSubnets,
    /// whereabouts `exclude`.
    Exclude,
}

/// A range of a network refused, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Refused {
    /// Why.
    pub reason: Reason,
    /// The range as configured.
    pub span: Span,
}

/// A subnet as a parser reads it from a config, before the network is made judge-ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetDraft {
    /// The subnet.
    pub cidr: Cidr,
    /// The prefix length its addresses carry: the subnet's, or `None` where it is another
    /// (layer3: the node subnet's).
    pub prefix: Option<u8>,
    /// The range addresses are handed out from, when one is configured (whereabouts
    /// `range_start`–`range_end`, host-local `rangeStart`–`rangeEnd`).
    pub range: Option<Span>,
    /// Ranges refused in this subnet only (whereabouts `exclude`, the host-local gateway).
    pub refused: Vec<Refused>,
}

/// What a parser reads from a config; [`Rules::new`] makes it judge-ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// The plugin.
    pub plugin: Plugin,
    /// Whether it keeps addresses for claims.
    pub persistence: Persistence,
    /// The subnets, in any order.
    pub subnets: Vec<SubnetDraft>,
    /// Ranges refused in every subnet (OVN-Kubernetes `excludeSubnets`,
    /// `infrastructureSubnets`, gateways, management addresses).
    pub refused: Vec<Refused>,
    /// OVN-Kubernetes `reservedSubnets`: kept from dynamic allocation, valid for claims.
    pub reserved: Vec<Cidr>,
}

/// A network's address rules, judge-ready. Two configs that say the same in another order
/// make equal rules, so that NADs of one network agree however their configs are written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rules {
    plugin: Plugin,
    persistence: Persistence,
    /// IPv4 first, then by address.
    pools: Box<[Pool]>,
    /// Which pool holds an address: the most specific subnet where subnets nest.
    cover: Cover,
    /// Every range refused, sorted, each once; pools' covers point into it.
    refused: Box<[Refused]>,
    reserved: Box<[Cidr]>,
}

/// One subnet of a network, with what applies inside it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Pool {
    subnet: Cidr,
    prefix: Option<u8>,
    /// The ranges addresses are handed out from, sorted and disjoint (a binary search finds
    /// an address's); `None`: the whole subnet.
    ranges: Option<Box<[Span]>>,
    /// The refused ranges in this subnet, tagged with their place in [`Rules::refused`].
    refused: Cover,
    /// The last address the plugin's allocator covers: the subnet's last, but for
    /// OVN-Kubernetes IPv6 subnets (see [`OVN_IPV6_ADDRESSES`]).
    last: u128,
}

/// Where an address lands in a network, without words: what the fast path computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The subnet that holds it (an index of the network's subnets), if any.
    pool: Option<u32>,
    /// Its prefix length is not the subnet's.
    wrong_prefix: bool,
    /// Why it cannot be used, if it cannot.
    misfit: Option<Misfit>,
}

/// Why an address inside a network cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Misfit {
    NotInSubnets,
    NetworkAddress,
    Broadcast,
    /// An index of [`Rules::refused`].
    Refused(u32),
    OutsideRanges,
    BeyondOvn,
}

/// Which rule of DESIGN §10 an address broke: what the misfit metric is labelled by (one label
/// per rule, so the label set is fixed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MisfitReason {
    /// Not inside any subnet of the network.
    NotInSubnets,
    /// A prefix length other than its subnet's.
    PrefixLength,
    /// The network address of its subnet.
    NetworkAddress,
    /// The IPv4 broadcast address of its subnet.
    Broadcast,
    /// A gateway ([`Reason::Gateway`]).
    Gateway,
    /// The management address ([`Reason::Management`]).
    Management,
    /// In `infrastructureSubnets`.
    Infrastructure,
    /// In `excludeSubnets`.
    ExcludeSubnets,
    /// In whereabouts' `exclude`.
    Excluded,
    /// Outside the configured address ranges.
    OutsideRanges,
    /// Beyond what the OVN-Kubernetes allocator hands out in an IPv6 subnet.
    BeyondAllocator,
}

// === impl MisfitReason ===

impl MisfitReason {
    /// Every reason, in the order of DESIGN §10.
    pub const ALL: [MisfitReason; 11] = [
        MisfitReason::NotInSubnets,
        MisfitReason::PrefixLength,
        MisfitReason::NetworkAddress,
        MisfitReason::Broadcast,
        MisfitReason::Gateway,
        MisfitReason::Management,
        MisfitReason::Infrastructure,
        MisfitReason::ExcludeSubnets,
        MisfitReason::Excluded,
        MisfitReason::OutsideRanges,
        MisfitReason::BeyondAllocator,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            MisfitReason::NotInSubnets => "not_in_subnets",
            MisfitReason::PrefixLength => "prefix_length",
            MisfitReason::NetworkAddress => "network_address",
            MisfitReason::Broadcast => "broadcast",
            MisfitReason::Gateway => "gateway",
            MisfitReason::Management => "management",
            MisfitReason::Infrastructure => "infrastructure_subnets",
            MisfitReason::ExcludeSubnets => "exclude_subnets",
            MisfitReason::Excluded => "excluded",
            MisfitReason::OutsideRanges => "outside_ranges",
            MisfitReason::BeyondAllocator => "beyond_allocator",
        }
    }
}

// === impl Network ===

impl Network {
    /// The network `name`, defined in `namespaces` (any order, repeats allowed).
    pub fn new(name: Arc<str>, namespaces: Vec<Arc<str>>, definitions: Definitions) -> Self {
        let mut namespaces = namespaces;
        namespaces.sort_unstable();
        namespaces.dedup();
        Network {
            name,
            namespaces: namespaces.into_boxed_slice(),
            definitions,
        }
    }

    /// Its name (the CNI config's `name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespaces whose NetworkAttachmentDefinitions define it, sorted.
    pub fn namespaces(&self) -> &[Arc<str>] {
        &self.namespaces
    }

    /// What its definitions say.
    pub fn definitions(&self) -> &Definitions {
        &self.definitions
    }

    /// Whether a NetworkAttachmentDefinition in `namespace` defines it: only then are its
    /// ranges named to a claim of that namespace.
    pub fn is_defined_in(&self, namespace: &str) -> bool {
        self.namespaces
            .binary_search_by(|ns| (**ns).cmp(namespace))
            .is_ok()
    }

    /// Its rules, when its definitions agree on some.
    pub fn rules(&self) -> Option<&Rules> {
        match &self.definitions {
            Definitions::Agree(addressing) => match &**addressing {
                Addressing::Ruled(rules) => Some(rules),
                Addressing::Unruled(_) => None,
            },
            Definitions::Disagree => None,
        }
    }

    /// The prefix length a bare address of this network gets (`10.200.0.5` → 24, for the
    /// defaulting of `/mutate`): its subnet's. `None` when no rule says one (not in a subnet,
    /// subnets that nest around it, layer3, no rules).
    pub fn subnet_prefix(&self, ip: IpAddr) -> Option<u8> {
        self.rules()?.subnet_prefix(ip)
    }

    /// The heap bytes it holds, its rules included (the index's memory figures).
    pub fn heap_bytes(&self) -> usize {
        let namespaces = std::mem::size_of_val::<[Arc<str>]>(&self.namespaces);
        let rules = match &self.definitions {
            Definitions::Agree(addressing) => {
                std::mem::size_of::<Addressing>()
                    + match &**addressing {
                        Addressing::Ruled(rules) => rules.heap_bytes(),
                        Addressing::Unruled(why) => why.len(),
                    }
            }
            Definitions::Disagree => 0,
        };
        namespaces + rules
    }
}

// === impl Rules ===

impl Rules {
    /// The judge-ready rules of `draft`. Subnets given twice are joined (their ranges and
    /// refusals together); where subnets nest, an address belongs to the most specific.
    pub fn new(draft: Draft) -> Rules {
        let Draft {
            plugin,
            persistence,
            mut subnets,
            refused: shared,
            reserved,
        } = draft;
        subnets.sort_unstable_by_key(|s| s.cidr);

        // Every refused range once, in a fixed order, so that equal configs make equal rules.
        let mut refused: Vec<Refused> = shared.clone();
        refused.extend(subnets.iter().flat_map(|s| s.refused.iter().copied()));
        refused.sort_unstable();
        refused.dedup();
        let place = |r: &Refused| {
            let at = refused.binary_search(r).unwrap_or_default();
            u32::try_from(at).unwrap_or(u32::MAX)
        };

        let mut pools: Vec<Pool> = Vec::new();
        let mut i = 0;
        while i < subnets.len() {
            let cidr = subnets[i].cidr;
            let mut same = i;
            while same < subnets.len() && subnets[same].cidr == cidr {
                same += 1;
            }
            let group = &subnets[i..same];
            i = same;
            let whole = cidr.span();
            // One draft without a range hands out the whole subnet.
            let ranges = (!group.iter().any(|s| s.range.is_none())).then(|| {
                let inside = group
                    .iter()
                    .filter_map(|s| s.range.and_then(|r| r.within(&whole)));
                joined(inside.collect()).into_boxed_slice()
            });
            let inside: Vec<(Span, u32)> = shared
                .iter()
                .chain(group.iter().flat_map(|s| s.refused.iter()))
                .filter_map(|r| Some((r.span.within(&whole)?, place(r))))
                .collect::<Vec<_>>();
            // Earlier reasons first: the cover names the first range where they overlap.
            let mut inside = inside;
            inside.sort_unstable_by_key(|(_, at)| *at);
            // A range given twice is one range.
            inside.dedup_by_key(|(_, at)| *at);
            let last = match plugin {
                // One allocator per subnet (layer3 has one per node subnet, which no rule
                // here knows): offsets 1 ..= size - 2 of a bitmap of min(size, 65,536) bits.
                Plugin::OvnKubernetes { topology, .. }
                    if topology != Topology::Layer3 && cidr.v6 && cidr.has_network_address() =>
                {
                    let covered = cidr.size_minus_one().min(OVN_IPV6_ADDRESSES);
                    cidr.base + (covered - 1)
                }
                _ => cidr.last(),
            };
            pools.push(Pool {
                subnet: cidr,
                prefix: group.iter().find_map(|s| s.prefix),
                ranges,
                refused: Cover::new(inside),
                last,
            });
        }
        // The most specific subnet first where subnets nest.
        let mut by_size: Vec<(Span, u32)> = pools
            .iter()
            .enumerate()
            .map(|(at, p)| (p.subnet.span(), u32::try_from(at).unwrap_or(u32::MAX)))
            .collect();
        by_size.sort_by_key(|(span, _)| span.last - span.first);
        let mut reserved = reserved;
        reserved.sort_unstable();
        reserved.dedup();
        Rules {
            plugin,
            persistence,
            pools: pools.into_boxed_slice(),
            cover: Cover::new(by_size),
            refused: refused.into_boxed_slice(),
            reserved: reserved.into_boxed_slice(),
        }
    }

    /// The plugin.
    pub fn plugin(&self) -> Plugin {
        self.plugin
    }

    /// Whether the network keeps addresses for claims.
    pub fn persistence(&self) -> Persistence {
        self.persistence
    }

    /// The subnets, IPv4 first, then by address.
    pub fn subnets(&self) -> impl Iterator<Item = Cidr> + '_ {
        self.pools.iter().map(|p| p.subnet)
    }

    /// The refused ranges, by reason.
    pub fn refused(&self) -> &[Refused] {
        &self.refused
    }

    /// The reserved subnets (valid for claims).
    pub fn reserved(&self) -> &[Cidr] {
        &self.reserved
    }

    /// The ranges addresses are handed out from in `subnet`; `None`: the whole subnet.
    pub fn ranges(&self, subnet: Cidr) -> Option<&[Span]> {
        self.pools
            .iter()
            .find(|p| p.subnet == subnet)
            .and_then(|p| p.ranges.as_deref())
    }

    /// See [`Network::subnet_prefix`].
    pub fn subnet_prefix(&self, ip: IpAddr) -> Option<u8> {
        let found = self.cover.find(Point::of(ip))?;
        if found.shared {
            return None;
        }
        self.pools.get(found.tag as usize)?.prefix
    }

    /// Where `address` lands: integer comparisons only. A bare address (no prefix length)
    /// is not judged on its prefix: the rule on CIDR form reports it.
    pub fn place(&self, address: Address) -> Placement {
        let p = Point::of(address.ip);
        let Some(Found { tag, .. }) = self.cover.find(p) else {
            return Placement {
                pool: None,
                wrong_prefix: false,
                misfit: Some(Misfit::NotInSubnets),
            };
        };
        let Some(pool) = self.pools.get(tag as usize) else {
            return Placement {
                pool: None,
                wrong_prefix: false,
                misfit: Some(Misfit::NotInSubnets),
            };
        };
        let wrong_prefix =
            matches!((address.prefix, pool.prefix), (Some(got), Some(want)) if got != want);
        Placement {
            pool: Some(tag),
            wrong_prefix,
            misfit: pool.misfit(p),
        }
    }

    /// The heap bytes the rules hold.
    pub fn heap_bytes(&self) -> usize {
        let pools: usize = self
            .pools
            .iter()
            .map(|p| {
                std::mem::size_of::<Pool>()
                    + p.ranges
                        .as_deref()
                        .map_or(0, std::mem::size_of_val::<[Span]>)
                    + p.refused.heap_bytes()
            })
            .sum();
        pools
            + self.cover.heap_bytes()
            + std::mem::size_of_val::<[Refused]>(&self.refused)
            + std::mem::size_of_val::<[Cidr]>(&self.reserved)
    }

    /// The detail of one misfit, naming ranges when `own` (the claim's namespace defines the
    /// network) and describing them without ranges otherwise.
    fn detail(&self, misfit: Misfit, pool: Option<&Pool>, name: &str, own: bool) -> String {
        let network = quote_clipped(name);
        let subnet = pool.map(|p| p.subnet);
        let (what, ranges): (Cow<'static, str>, Option<String>) = match misfit {
            Misfit::NotInSubnets => {
                let listed = listing(self.pools.iter().map(|p| p.subnet), "subnet");
                let text = format!("not in the subnets of network {network}");
                return with_ranges(text, own.then_some(listed));
            }
            Misfit::NetworkAddress => (
                "the network address of a subnet".into(),
                subnet.map(|s| s.to_string()),
            ),
            Misfit::Broadcast => (
                "the broadcast address of a subnet".into(),
                subnet.map(|s| s.to_string()),
            ),
            Misfit::Refused(at) => {
                let refused = self.refused.get(at as usize);
                let what = match refused.map(|r| r.reason) {
                    Some(Reason::Gateway) => "the gateway",
                    Some(Reason::Management) => "the management address",
                    Some(Reason::Infrastructure) => "in infrastructureSubnets",
                    Some(Reason::ExcludeSubnets) => "in excludeSubnets",
                    Some(Reason::Exclude) | None => "in the excluded addresses",
                };
                (what.into(), refused.map(|r| r.span.to_string()))
            }
            Misfit::OutsideRanges => (
                "outside the address ranges".into(),
                pool.and_then(|p| p.ranges.as_deref())
                    .filter(|ranges| !ranges.is_empty())
                    .map(|ranges| listing(ranges.iter().copied(), "range")),
            ),
            Misfit::BeyondOvn => {
                let big = pool.is_some_and(|p| p.subnet.size_minus_one() > OVN_IPV6_ADDRESSES);
                let what = if big {
                    "beyond the first 65535 addresses OVN-Kubernetes allocates in a subnet"
                } else {
                    "beyond the addresses OVN-Kubernetes allocates in a subnet"
                };
                (what.into(), subnet.map(|s| s.to_string()))
            }
        };
        with_ranges(
            format!("{what} of network {network}"),
            ranges.filter(|_| own),
        )
    }

    /// The errors of a placement that does not fit, on `path`.
    fn errors<'a>(
        &self,
        placement: Placement,
        name: &str,
        own: bool,
        path: &Path,
        value: Cow<'a, str>,
    ) -> Judged<'a> {
        let pool = placement.pool.and_then(|at| self.pools.get(at as usize));
        let prefix = placement.wrong_prefix.then(|| {
            let network = quote_clipped(name);
            let text = format!("prefix length differs from its subnet of network {network}");
            let subnet = pool.map(|p| p.subnet.to_string()).filter(|_| own);
            FieldError::invalid(path.clone(), value.clone(), with_ranges(text, subnet))
        });
        let misfit = placement.misfit.map(|misfit| {
            FieldError::invalid(path.clone(), value, self.detail(misfit, pool, name, own))
        });
        [prefix, misfit].into_iter().flatten()
    }
}

/// `text (ranges)`, or `text` alone.
fn with_ranges(mut text: String, ranges: Option<String>) -> String {
    if let Some(ranges) = ranges {
        text.push_str(" (");
        text.push_str(&ranges);
        text.push(')');
    }
    text
}

/// `a, b, c`, the first [`MAX_NAMED`] of `items` and a count of the rest.
fn listing<T: fmt::Display>(items: impl ExactSizeIterator<Item = T>, noun: &str) -> String {
    let total = items.len();
    let mut text = String::new();
    for (i, item) in items.take(MAX_NAMED).enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        let _ = write!(text, "{item}");
    }
    if total > MAX_NAMED {
        let _ = write!(text, ", {}", caps::and_more(total - MAX_NAMED, noun));
    }
    text
}

/// `ranges` sorted, overlapping and adjacent ones joined.
fn joined(mut ranges: Vec<Span>) -> Vec<Span> {
    ranges.sort_unstable();
    let mut out: Vec<Span> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.v6 == r.v6 && r.first <= last.last.saturating_add(1) => {
                last.last = last.last.max(r.last);
            }
            _ => out.push(r),
        }
    }
    out
}

// === impl Pool ===

impl Pool {
    /// Why `p`, inside this subnet, cannot be used.
    fn misfit(&self, p: Point) -> Option<Misfit> {
        if self.subnet.has_network_address() {
            if p.n == self.subnet.base {
                return Some(Misfit::NetworkAddress);
            }
            if !p.v6 && p.n == self.subnet.last() {
                return Some(Misfit::Broadcast);
            }
        }
        if let Some(found) = self.refused.find(p) {
            return Some(Misfit::Refused(found.tag));
        }
        if let Some(ranges) = &self.ranges {
            let after = ranges.partition_point(|r| r.first <= p.n);
            // The last range starting at or before the address must reach it.
            if after.checked_sub(1).is_none_or(|at| ranges[at].last < p.n) {
                return Some(Misfit::OutsideRanges);
            }
        }
        if p.n > self.last {
            return Some(Misfit::BeyondOvn);
        }
        None
    }
}

// === impl Placement ===

impl Placement {
    /// Whether the address fits its network.
    pub fn fits(&self) -> bool {
        !self.wrong_prefix && self.misfit.is_none()
    }
}

// === impl Misfit ===

impl Misfit {
    /// The rule broken, as the metric names it.
    fn reason(self, rules: &Rules) -> MisfitReason {
        match self {
            Misfit::NotInSubnets => MisfitReason::NotInSubnets,
            Misfit::NetworkAddress => MisfitReason::NetworkAddress,
            Misfit::Broadcast => MisfitReason::Broadcast,
            Misfit::Refused(at) => match rules.refused.get(at as usize).map(|r| r.reason) {
                Some(Reason::Gateway) => MisfitReason::Gateway,
                Some(Reason::Management) => MisfitReason::Management,
                Some(Reason::Infrastructure) => MisfitReason::Infrastructure,
                Some(Reason::ExcludeSubnets) => MisfitReason::ExcludeSubnets,
                Some(Reason::Exclude) | None => MisfitReason::Excluded,
            },
            Misfit::OutsideRanges => MisfitReason::OutsideRanges,
            Misfit::BeyondOvn => MisfitReason::BeyondAllocator,
        }
    }
}

/// The errors [`judge`] finds for one address: at most two (its prefix length, and its place).
pub type Judged<'a> = std::iter::Flatten<std::array::IntoIter<Option<FieldError<'a>>, 2>>;

/// The verdict of DESIGN §10 on one address of `network`: `FieldValueInvalid` errors on
/// `path` (`status.ips[0]`, `spec.ipRequests[1]`) echoing `value`, in the API server's style,
/// e.g. `status.ips[0]: Invalid value: "10.9.0.5/24": not in the subnets of network
/// "tenantred" (10.200.0.0/24, fd10:200::/64)`. Ranges are named only when `namespace` (the
/// claim's) defines the network: nothing leaks across tenants. A network whose definitions
/// disagree, or that has no rules, gives no error.
pub fn judge<'a>(
    network: &Network,
    address: Address,
    value: Cow<'a, str>,
    path: &Path,
    namespace: &str,
) -> Judged<'a> {
    let Some(rules) = network.rules() else {
        return [None, None].into_iter().flatten();
    };
    let placement = rules.place(address);
    if placement.fits() {
        return [None, None].into_iter().flatten();
    }
    let own = network.is_defined_in(namespace);
    rules.errors(placement, &network.name, own, path, value)
}

/// The warning a claim on the network `name` gets, if any (`path: message`, short): no
/// NetworkAttachmentDefinition defines it, its definitions disagree, it has no address rules,
/// or it keeps no addresses for claims. Never a denial. Why a network has no rules is said
/// only to claims of a namespace that defines it.
pub fn warning(name: &str, network: Option<&Network>, namespace: &str) -> Option<String> {
    // Words only for a warning: most reviews are on networks that need none.
    let quoted = || quote_clipped(name);
    let Some(network) = network else {
        return Some(format!(
            "spec.network: no NAD defines network {}: addresses not checked",
            quoted()
        ));
    };
    let addressing = match &network.definitions {
        Definitions::Disagree => {
            return Some(format!(
                "spec.network: the NADs of network {} disagree: addresses not checked",
                quoted()
            ))
        }
        Definitions::Agree(addressing) => addressing,
    };
    match &**addressing {
        Addressing::Unruled(why) => {
            let text = format!("spec.network: network {} has no address rules", quoted());
            let why = network.is_defined_in(namespace).then(|| why.to_string());
            Some(with_ranges(text, why))
        }
        Addressing::Ruled(rules) => {
            let why = match rules.persistence {
                Persistence::Keeps => return None,
                Persistence::NotAllowed => "allowPersistentIPs is not true",
                Persistence::Layer3 => "layer3 topology",
            };
            Some(format!(
                "spec.network: network {} does not persist IPs: {why}",
                quoted()
            ))
        }
    }
}

/// The address an item of an address list stands for, with its prefix length: a valid
/// address, or one only not written canonically. Ambiguous values and non-addresses are left
/// to the rules of DESIGN §4.
pub fn address_of(value: &str) -> Option<Address> {
    match ip::parse(value) {
        Ok(address) => Some(address),
        Err(AddressError::NotCanonical { canonical }) => Some(canonical),
        Err(_) => None,
    }
}

/// The list `parent.member` of `object` (one of [`ADDRESS_LISTS`]), when it is a list.
fn list<'a>(object: &Claim<'a>, (parent, _): (&str, &str)) -> Option<List<'a>> {
    let field = match parent {
        "spec" => object.spec.value()?.ip_requests,
        _ => object.status.value()?.ips,
    };
    match field {
        Field::Value(list) => Some(list),
        _ => None,
    }
}

/// The addresses of the list `which` of `old` on `network`, sorted, for ratcheting by binary
/// search.
fn old_addresses(
    old: Option<&Claim<'_>>,
    network: &str,
    which: (&str, &str),
) -> Vec<(IpAddr, Option<u8>)> {
    let Some(old) = old.filter(|o| network_of(o).as_deref() == Some(network)) else {
        return Vec::new();
    };
    let mut addresses: Vec<(IpAddr, Option<u8>)> = list(old, which)
        .iter()
        .flat_map(List::items)
        .filter_map(|item| address_of(&item.as_str()?.decode()))
        .map(|a| (a.ip, a.prefix))
        .collect();
    addresses.sort_unstable();
    addresses
}

/// Adds to `verdict` the errors of every address of `spec.ipRequests` and `status.ips` that
/// does not fit the object's network, and to `warnings` the network's [`warning`]. On UPDATE
/// an address already in the same list of `old` (same address, same prefix length) is
/// ratcheted: the network changed under it, so its errors come back as warnings instead.
/// Each error added (not the ratcheted ones) is counted by [`Networks::misfit`].
pub fn check<'a>(
    networks: &dyn Networks,
    namespace: &str,
    object: &Claim<'a>,
    old: Option<&Claim<'a>>,
    verdict: &mut Verdict<'a>,
    warnings: &mut Warnings,
) {
    let Some(name) = network_of(object) else {
        return;
    };
    let network = networks.network(&name);
    if let Some(text) = warning(&name, network.as_deref(), namespace) {
        warnings.push_with(|| text);
    }
    let Some(network) = network else {
        return;
    };
    let Some(rules) = network.rules() else {
        return;
    };
    let own = network.is_defined_in(namespace);
    for which in ADDRESS_LISTS {
        let Some(items) = list(object, which).filter(|l| l.len > 0) else {
            continue;
        };
        let mut before: Option<Vec<(IpAddr, Option<u8>)>> = None;
        let mut path: Option<Path> = None;
        for (i, item) in items.items().enumerate() {
            let Some(text) = item.as_str().map(|s| s.decode()) else {
                continue;
            };
            let Some(address) = address_of(&text) else {
                continue;
            };
            let placement = rules.place(address);
            if placement.fits() {
                continue;
            }
            // Only an address that does not fit is looked for in the old object.
            let before = before.get_or_insert_with(|| old_addresses(old, &name, which));
            let judged = before.binary_search(&(address.ip, address.prefix)).is_err();
            let path = path.get_or_insert_with(|| Path::new(which.0).child(which.1));
            for e in rules.errors(placement, &name, own, &path.index(i), text.clone()) {
                if judged {
                    verdict.errors.push(e);
                } else {
                    verdict.ratcheted.push(e);
                }
            }
            if judged {
                if placement.wrong_prefix {
                    networks.misfit(MisfitReason::PrefixLength);
                }
                if let Some(misfit) = placement.misfit {
                    networks.misfit(misfit.reason(rules));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::model::view::testing;
    use serde_json::{json, Value};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn cidr(text: &str) -> Cidr {
        let (addr, prefix) = text.split_once('/').unwrap();
        Cidr::masked(ip(addr), prefix.parse().unwrap()).unwrap().0
    }

    fn span(text: &str) -> Span {
        match text.split_once('-') {
            Some((a, b)) => Span::new(ip(a), ip(b)).unwrap(),
            None if text.contains('/') => cidr(text).span(),
            None => Span::single(ip(text)),
        }
    }

    fn subnet(text: &str) -> SubnetDraft {
        let cidr = cidr(text);
        SubnetDraft {
            cidr,
            prefix: Some(cidr.prefix),
            range: None,
            refused: Vec::new(),
        }
    }

    fn refused(reason: Reason, text: &str) -> Refused {
        Refused {
            reason,
            span: span(text),
        }
    }

    fn ovn(topology: Topology, primary: bool, subnets: &[&str], refused: Vec<Refused>) -> Rules {
        Rules::new(Draft {
            plugin: Plugin::OvnKubernetes { topology, primary },
            persistence: Persistence::Keeps,
            subnets: subnets.iter().map(|s| subnet(s)).collect(),
            refused,
            reserved: Vec::new(),
        })
    }

    fn network(name: &str, namespaces: &[&str], rules: Rules) -> Network {
        Network::new(
            name.into(),
            namespaces.iter().map(|&n| Arc::from(n)).collect(),
            Definitions::Agree(Arc::new(Addressing::Ruled(rules))),
        )
    }

    /// The errors of `value` on `status.ips[0]`, judged for a claim of `namespace`.
    fn errors(network: &Network, value: &str, namespace: &str) -> Vec<String> {
        let address = address_of(value).expect("an address");
        let path = Path::new("status").child("ips").index(0);
        judge(network, address, value.to_owned().into(), &path, namespace)
            .map(|e| e.to_string())
            .collect()
    }

    fn tenantred() -> Network {
        network(
            "tenantred",
            &["ns1"],
            ovn(
                Topology::Layer2,
                false,
                &["fd10:200::/64", "10.200.0.0/24"],
                Vec::new(),
            ),
        )
    }

    #[test]
    fn an_address_outside_every_subnet_names_them_in_the_own_namespace() {
        assert_eq!(
            errors(&tenantred(), "10.9.0.5/24", "ns1"),
            ["status.ips[0]: Invalid value: \"10.9.0.5/24\": not in the subnets of network \"tenantred\" (10.200.0.0/24, fd10:200::/64)"]
        );
    }

    #[test]
    fn another_namespace_learns_no_ranges() {
        let msgs = errors(&tenantred(), "10.9.0.5/24", "ns2");
        assert_eq!(
            msgs,
            ["status.ips[0]: Invalid value: \"10.9.0.5/24\": not in the subnets of network \"tenantred\""]
        );
        let msgs = errors(&tenantred(), "10.200.0.5/16", "ns2").join("\n");
        assert!(!msgs.contains("10.200.0.0"), "{msgs}");
    }

    #[test]
    fn an_address_that_fits_gives_nothing() {
        for value in [
            "10.200.0.5/24",
            "fd10:200::5/64",
            "10.200.0.1/24",
            "10.200.0.254",
        ] {
            assert_eq!(
                errors(&tenantred(), value, "ns1"),
                Vec::<String>::new(),
                "{value}"
            );
        }
    }

    #[test]
    fn a_prefix_length_other_than_the_subnets_is_refused() {
        assert_eq!(
            errors(&tenantred(), "10.200.0.5/16", "ns1"),
            ["status.ips[0]: Invalid value: \"10.200.0.5/16\": prefix length differs from its subnet of network \"tenantred\" (10.200.0.0/24)"]
        );
        assert_eq!(
            errors(&tenantred(), "fd10:200::5/128", "ns9"),
            ["status.ips[0]: Invalid value: \"fd10:200::5/128\": prefix length differs from its subnet of network \"tenantred\""]
        );
    }

    #[test]
    fn a_bare_address_is_judged_on_its_place_only() {
        assert!(errors(&tenantred(), "10.200.0.5", "ns1").is_empty());
        assert_eq!(errors(&tenantred(), "10.200.0.0", "ns1").len(), 1);
    }

    #[test]
    fn a_wrong_prefix_and_a_wrong_place_are_two_errors() {
        assert_eq!(
            errors(&tenantred(), "10.200.0.255/25", "ns1"),
            [
                "status.ips[0]: Invalid value: \"10.200.0.255/25\": prefix length differs from its subnet of network \"tenantred\" (10.200.0.0/24)",
                "status.ips[0]: Invalid value: \"10.200.0.255/25\": the broadcast address of a subnet of network \"tenantred\" (10.200.0.0/24)",
            ]
        );
    }

    #[test]
    fn the_network_address_and_the_ipv4_broadcast_are_refused() {
        let n = tenantred();
        assert_eq!(
            errors(&n, "10.200.0.0/24", "ns1"),
            ["status.ips[0]: Invalid value: \"10.200.0.0/24\": the network address of a subnet of network \"tenantred\" (10.200.0.0/24)"]
        );
        assert_eq!(
            errors(&n, "fd10:200::/64", "ns2"),
            ["status.ips[0]: Invalid value: \"fd10:200::/64\": the network address of a subnet of network \"tenantred\""]
        );
        assert_eq!(errors(&n, "10.200.0.255/24", "ns1").len(), 1);
    }

    #[test]
    fn a_block_of_two_or_one_has_no_network_or_broadcast_address() {
        let n = network(
            "p2p",
            &["ns1"],
            Rules::new(Draft {
                plugin: Plugin::Whereabouts,
                persistence: Persistence::NotAllowed,
                subnets: vec![subnet("10.0.0.0/31"), subnet("10.0.1.1/32")],
                refused: Vec::new(),
                reserved: Vec::new(),
            }),
        );
        for value in ["10.0.0.0/31", "10.0.0.1/31", "10.0.1.1/32"] {
            assert!(errors(&n, value, "ns1").is_empty(), "{value}");
        }
    }

    #[test]
    fn excluded_subnets_are_refused_and_named() {
        let n = network(
            "tenantyellow",
            &["ns1", "ns2"],
            ovn(
                Topology::Layer2,
                false,
                &["10.100.200.0/24"],
                vec![refused(Reason::ExcludeSubnets, "10.100.200.0/29")],
            ),
        );
        assert_eq!(
            errors(&n, "10.100.200.3/24", "ns2"),
            ["status.ips[0]: Invalid value: \"10.100.200.3/24\": in excludeSubnets of network \"tenantyellow\" (10.100.200.0/29)"]
        );
        assert_eq!(
            errors(&n, "10.100.200.3/24", "ns3"),
            ["status.ips[0]: Invalid value: \"10.100.200.3/24\": in excludeSubnets of network \"tenantyellow\""]
        );
        // Secondary layer2: the first address is ordinary (here excluded, not a gateway).
        assert!(errors(&n, "10.100.200.8/24", "ns1").is_empty());
        // The network address is named as such, though excluded too.
        assert!(errors(&n, "10.100.200.0/24", "ns1")[0].contains("the network address"));
    }

    #[test]
    fn primary_layer2_refuses_its_gateway_and_management_address() {
        // What the parser gives for a primary layer2 network without infrastructureSubnets.
        let n = network(
            "cluster_udn_l2-primary",
            &["tenant-a", "tenant-b"],
            ovn(
                Topology::Layer2,
                true,
                &["10.100.0.0/16", "fd10:100::/64"],
                vec![
                    refused(Reason::Gateway, "10.100.0.1"),
                    refused(Reason::Gateway, "fd10:100::1"),
                    refused(Reason::Management, "10.100.0.2"),
                    refused(Reason::Management, "fd10:100::2"),
                ],
            ),
        );
        assert_eq!(
            errors(&n, "10.100.0.1/16", "tenant-a"),
            ["status.ips[0]: Invalid value: \"10.100.0.1/16\": the gateway of network \"cluster_udn_l2-primary\" (10.100.0.1)"]
        );
        assert_eq!(
            errors(&n, "fd10:100::2/64", "tenant-c"),
            ["status.ips[0]: Invalid value: \"fd10:100::2/64\": the management address of network \"cluster_udn_l2-primary\""]
        );
        assert!(errors(&n, "10.100.0.3/16", "tenant-a").is_empty());
    }

    #[test]
    fn infrastructure_subnets_are_refused_and_reserved_subnets_stay_valid() {
        let rules = Rules::new(Draft {
            plugin: Plugin::OvnKubernetes {
                topology: Topology::Layer2,
                primary: true,
            },
            persistence: Persistence::Keeps,
            subnets: vec![subnet("10.50.0.0/24")],
            refused: vec![
                refused(Reason::Infrastructure, "10.50.0.248/29"),
                refused(Reason::Gateway, "10.50.0.254"),
            ],
            reserved: vec![cidr("10.50.0.16/28")],
        });
        let n = network("tenant-c_preassigned", &["tenant-c"], rules);
        // The gateway is named as such though it is in the infrastructure subnet too.
        assert_eq!(
            errors(&n, "10.50.0.254/24", "tenant-c"),
            ["status.ips[0]: Invalid value: \"10.50.0.254/24\": the gateway of network \"tenant-c_preassigned\" (10.50.0.254)"]
        );
        assert_eq!(
            errors(&n, "10.50.0.250/24", "tenant-c"),
            ["status.ips[0]: Invalid value: \"10.50.0.250/24\": in infrastructureSubnets of network \"tenant-c_preassigned\" (10.50.0.248/29)"]
        );
        for value in ["10.50.0.17/24", "10.50.0.1/24", "10.50.0.2/24"] {
            assert!(errors(&n, value, "tenant-c").is_empty(), "{value}");
        }
        assert_eq!(n.rules().unwrap().reserved(), [cidr("10.50.0.16/28")]);
    }

    #[test]
    fn ovn_ipv6_subnets_end_after_65535_addresses() {
        let n = network(
            "big",
            &["ns1"],
            ovn(Topology::Layer2, false, &["fd10:100::/64"], Vec::new()),
        );
        assert!(errors(&n, "fd10:100::fffe/64", "ns1").is_empty());
        assert_eq!(
            errors(&n, "fd10:100::ffff/64", "ns1"),
            ["status.ips[0]: Invalid value: \"fd10:100::ffff/64\": beyond the first 65535 addresses OVN-Kubernetes allocates in a subnet of network \"big\" (fd10:100::/64)"]
        );
        assert_eq!(errors(&n, "fd10:100::1:0/64", "ns2").len(), 1);
        // A small IPv6 subnet: its last address is never handed out.
        let small = network(
            "small",
            &["ns1"],
            ovn(Topology::Localnet, false, &["fd10::/120"], Vec::new()),
        );
        assert!(errors(&small, "fd10::fe/120", "ns1").is_empty());
        assert_eq!(
            errors(&small, "fd10::ff/120", "ns1"),
            ["status.ips[0]: Invalid value: \"fd10::ff/120\": beyond the addresses OVN-Kubernetes allocates in a subnet of network \"small\" (fd10::/120)"]
        );
        // Other plugins hand out the whole IPv6 subnet.
        let wb = network(
            "wb",
            &["ns1"],
            Rules::new(Draft {
                plugin: Plugin::Whereabouts,
                persistence: Persistence::NotAllowed,
                subnets: vec![subnet("fd10::/120")],
                refused: Vec::new(),
                reserved: Vec::new(),
            }),
        );
        assert!(errors(&wb, "fd10::ff/120", "ns1").is_empty());
    }

    fn whereabouts(subnets: Vec<SubnetDraft>) -> Network {
        network(
            "whereabouts-dual",
            &["ns4"],
            Rules::new(Draft {
                plugin: Plugin::Whereabouts,
                persistence: Persistence::NotAllowed,
                subnets,
                refused: Vec::new(),
                reserved: Vec::new(),
            }),
        )
    }

    #[test]
    fn whereabouts_ranges_and_excludes_are_refused_and_named() {
        let mut v4 = subnet("192.168.10.0/24");
        v4.range = Some(span("192.168.10.10-192.168.10.99"));
        let mut v6 = subnet("abcd::/64");
        v6.refused = vec![refused(Reason::Exclude, "abcd::1")];
        let n = whereabouts(vec![v4, v6]);
        assert_eq!(
            errors(&n, "192.168.10.100/24", "ns4"),
            ["status.ips[0]: Invalid value: \"192.168.10.100/24\": outside the address ranges of network \"whereabouts-dual\" (192.168.10.10-192.168.10.99)"]
        );
        assert_eq!(
            errors(&n, "192.168.10.9/24", "ns5"),
            ["status.ips[0]: Invalid value: \"192.168.10.9/24\": outside the address ranges of network \"whereabouts-dual\""]
        );
        assert_eq!(
            errors(&n, "abcd::1/64", "ns4"),
            ["status.ips[0]: Invalid value: \"abcd::1/64\": in the excluded addresses of network \"whereabouts-dual\" (abcd::1)"]
        );
        for value in ["192.168.10.10/24", "192.168.10.99/24", "abcd::2/64"] {
            assert!(errors(&n, value, "ns4").is_empty(), "{value}");
        }
    }

    #[test]
    fn an_exclude_applies_to_its_own_subnet_only() {
        // Two subnets; the exclude of the first lies in the second's space but is not its.
        let mut a = subnet("10.0.0.0/24");
        a.refused = vec![refused(Reason::Exclude, "10.0.1.0/28")];
        let b = subnet("10.0.1.0/24");
        let n = whereabouts(vec![a, b]);
        assert!(errors(&n, "10.0.1.5/24", "ns4").is_empty());
    }

    #[test]
    fn ranges_of_one_subnet_join_and_one_without_a_range_opens_it_whole() {
        let mut a = subnet("10.10.0.0/16");
        a.range = Some(span("10.10.1.20-10.10.1.50"));
        let mut b = subnet("10.10.0.0/16");
        b.range = Some(span("10.10.3.0-10.10.3.50"));
        let n = whereabouts(vec![a.clone(), b]);
        assert!(errors(&n, "10.10.3.7/16", "ns4").is_empty());
        assert!(errors(&n, "10.10.1.20/16", "ns4").is_empty());
        assert_eq!(
            errors(&n, "10.10.2.7/16", "ns4"),
            ["status.ips[0]: Invalid value: \"10.10.2.7/16\": outside the address ranges of network \"whereabouts-dual\" (10.10.1.20-10.10.1.50, 10.10.3.0-10.10.3.50)"]
        );
        let n = whereabouts(vec![a, subnet("10.10.0.0/16")]);
        assert!(errors(&n, "10.10.2.7/16", "ns4").is_empty());
    }

    #[test]
    fn a_range_wholly_outside_its_subnet_hands_out_nothing() {
        let mut a = subnet("10.0.0.0/24");
        a.range = Some(span("10.0.1.1-10.0.1.9"));
        let n = whereabouts(vec![a]);
        assert_eq!(
            errors(&n, "10.0.0.5/24", "ns4"),
            ["status.ips[0]: Invalid value: \"10.0.0.5/24\": outside the address ranges of network \"whereabouts-dual\""]
        );
    }

    #[test]
    fn a_layer3_ipv6_subnet_has_no_single_allocator_limit() {
        let mut l3 = subnet("fd00::/48");
        l3.prefix = None;
        let rules = Rules::new(Draft {
            plugin: Plugin::OvnKubernetes {
                topology: Topology::Layer3,
                primary: false,
            },
            persistence: Persistence::Layer3,
            subnets: vec![l3],
            refused: Vec::new(),
            reserved: Vec::new(),
        });
        let n = network("l3", &["ns1"], rules);
        assert!(errors(&n, "fd00:0:0:5::9/64", "ns1").is_empty());
    }

    #[test]
    fn nested_subnets_judge_by_the_most_specific_and_default_no_prefix() {
        let n = whereabouts(vec![subnet("10.0.0.0/16"), subnet("10.0.1.0/24")]);
        assert!(errors(&n, "10.0.1.5/24", "ns4").is_empty());
        assert_eq!(errors(&n, "10.0.1.5/16", "ns4").len(), 1);
        assert!(errors(&n, "10.0.2.5/16", "ns4").is_empty());
        assert_eq!(n.subnet_prefix(ip("10.0.2.5")), Some(16));
        assert_eq!(n.subnet_prefix(ip("10.0.1.5")), None);
    }

    #[test]
    fn the_subnet_prefix_is_what_a_bare_address_gets() {
        let n = tenantred();
        assert_eq!(n.subnet_prefix(ip("10.200.0.5")), Some(24));
        assert_eq!(n.subnet_prefix(ip("fd10:200::5")), Some(64));
        assert_eq!(n.subnet_prefix(ip("10.9.0.5")), None);
        // layer3 addresses carry the node subnet's prefix, which no rule says.
        let mut l3 = subnet("10.128.0.0/16");
        l3.prefix = None;
        let rules = Rules::new(Draft {
            plugin: Plugin::OvnKubernetes {
                topology: Topology::Layer3,
                primary: false,
            },
            persistence: Persistence::Layer3,
            subnets: vec![l3],
            refused: Vec::new(),
            reserved: Vec::new(),
        });
        let l3 = network("tenantblue", &["ns3"], rules);
        assert_eq!(l3.subnet_prefix(ip("10.128.3.5")), None);
        assert!(errors(&l3, "10.128.3.5/24", "ns3").is_empty());
    }

    #[test]
    fn many_subnets_are_counted_past_the_first_eight() {
        let subnets: Vec<String> = (0..10).map(|i| format!("10.{i}.0.0/16")).collect();
        let subnets: Vec<&str> = subnets.iter().map(String::as_str).collect();
        let n = network(
            "many",
            &["ns1"],
            ovn(Topology::Localnet, false, &subnets, Vec::new()),
        );
        let msg = errors(&n, "192.168.0.1/24", "ns1").join("");
        assert!(msg.ends_with("10.7.0.0/16, and 2 more subnets)"), "{msg}");
    }

    #[test]
    fn equal_configs_in_another_order_make_equal_rules() {
        let a = ovn(
            Topology::Layer2,
            false,
            &["10.0.0.0/24", "fd00::/64"],
            vec![
                refused(Reason::ExcludeSubnets, "10.0.0.0/29"),
                refused(Reason::ExcludeSubnets, "10.0.0.250"),
            ],
        );
        let b = ovn(
            Topology::Layer2,
            false,
            &["fd00::/64", "10.0.0.0/24"],
            vec![
                refused(Reason::ExcludeSubnets, "10.0.0.250"),
                refused(Reason::ExcludeSubnets, "10.0.0.0/29"),
                refused(Reason::ExcludeSubnets, "10.0.0.0/29"),
            ],
        );
        assert_eq!(a, b);
        let c = ovn(Topology::Layer2, false, &["10.0.0.0/24"], Vec::new());
        assert_ne!(a, c);
    }

    #[test]
    fn a_network_without_rules_or_in_disagreement_judges_nothing() {
        let unruled = Network::new(
            "dhcp-net".into(),
            vec!["ns6".into()],
            Definitions::Agree(Arc::new(Addressing::Unruled("ipam type \"dhcp\"".into()))),
        );
        assert!(errors(&unruled, "1.2.3.4/8", "ns6").is_empty());
        assert_eq!(unruled.subnet_prefix(ip("1.2.3.4")), None);
        let disagree = Network::new(
            "tenantyellow".into(),
            vec!["ns1".into(), "ns7".into()],
            Definitions::Disagree,
        );
        assert!(errors(&disagree, "1.2.3.4/8", "ns1").is_empty());
    }

    #[test]
    fn warns_of_a_network_no_nad_defines_or_whose_nads_disagree() {
        assert_eq!(
            warning("blue", None, "ns1").unwrap(),
            "spec.network: no NAD defines network \"blue\": addresses not checked"
        );
        let disagree = Network::new(
            "tenantyellow".into(),
            vec!["ns1".into()],
            Definitions::Disagree,
        );
        assert_eq!(
            warning("tenantyellow", Some(&disagree), "ns1").unwrap(),
            "spec.network: the NADs of network \"tenantyellow\" disagree: addresses not checked"
        );
    }

    #[test]
    fn warns_of_a_network_without_rules_saying_why_only_to_its_own_namespace() {
        let unruled = Network::new(
            "dhcp-net".into(),
            vec!["ns6".into()],
            Definitions::Agree(Arc::new(Addressing::Unruled("ipam type \"dhcp\"".into()))),
        );
        assert_eq!(
            warning("dhcp-net", Some(&unruled), "ns6").unwrap(),
            "spec.network: network \"dhcp-net\" has no address rules (ipam type \"dhcp\")"
        );
        assert_eq!(
            warning("dhcp-net", Some(&unruled), "ns1").unwrap(),
            "spec.network: network \"dhcp-net\" has no address rules"
        );
    }

    #[test]
    fn warns_of_a_network_that_keeps_no_addresses_for_claims() {
        let mut rules = ovn(Topology::Layer2, false, &["10.9.0.0/24"], Vec::new());
        assert_eq!(
            warning(
                "tenantred",
                Some(&network("tenantred", &[], rules.clone())),
                "x"
            ),
            None
        );
        rules.persistence = Persistence::NotAllowed;
        assert_eq!(
            warning("ephemeral", Some(&network("ephemeral", &[], rules.clone())), "x").unwrap(),
            "spec.network: network \"ephemeral\" does not persist IPs: allowPersistentIPs is not true"
        );
        rules.persistence = Persistence::Layer3;
        assert_eq!(
            warning("tenantblue", Some(&network("tenantblue", &[], rules)), "x").unwrap(),
            "spec.network: network \"tenantblue\" does not persist IPs: layer3 topology"
        );
    }

    #[test]
    fn warnings_stay_within_120_characters_for_a_40_character_name() {
        let name = "n".repeat(40);
        let unruled = Network::new(
            name.as_str().into(),
            vec!["ns".into()],
            Definitions::Agree(Arc::new(Addressing::Unruled(
                "plugin \"macvlan\" has no ipam".into(),
            ))),
        );
        let mut rules = ovn(Topology::Layer3, false, &["10.0.0.0/8"], Vec::new());
        rules.persistence = Persistence::NotAllowed;
        let ephemeral = network(&name, &[], rules);
        let disagree = Network::new(name.as_str().into(), Vec::new(), Definitions::Disagree);
        for w in [
            warning(&name, None, "ns"),
            warning(&name, Some(&unruled), "ns"),
            warning(&name, Some(&ephemeral), "ns"),
            warning(&name, Some(&disagree), "ns"),
        ] {
            let w = w.unwrap();
            assert!(
                w.chars().count() <= caps::MAX_WARNING_CHARS,
                "{} {w}",
                w.len()
            );
        }
    }

    /// A fixed set of networks.
    #[derive(Debug)]
    struct Fixed(Vec<Arc<Network>>);

    impl Networks for Fixed {
        fn network(&self, name: &str) -> Option<Arc<Network>> {
            self.0.iter().find(|n| n.name() == name).cloned()
        }
    }

    fn claim(network: &str, requests: Value, ips: Value) -> Value {
        json!({
            "metadata": {"name": "vm-a.tenantred"},
            "spec": {"network": network, "interface": "pod1", "ipRequests": requests},
            "status": {"ips": ips},
        })
    }

    fn run(
        object: &Value,
        old: Option<&Value>,
        namespace: &str,
    ) -> (Verdict<'static>, Vec<String>) {
        let networks = Fixed(vec![Arc::new(tenantred())]);
        let mut verdict = Verdict::default();
        let mut warnings = Warnings::new();
        let old = old.map(testing::claim);
        check(
            &networks,
            namespace,
            &testing::claim(object),
            old.as_ref(),
            &mut verdict,
            &mut warnings,
        );
        (verdict, warnings.to_vec())
    }

    fn texts(list: &crate::admission::answer::field::CappedErrors) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn check_judges_both_lists_and_skips_what_is_no_address() {
        let object = claim(
            "tenantred",
            json!(["10.9.0.5/24"]),
            json!([
                "winner",
                7,
                "010.200.0.5/24",
                "10.200.0.5/24",
                "FD10:200::/64"
            ]),
        );
        let (v, warnings) = run(&object, None, "ns1");
        let paths: Vec<&str> = v.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["spec.ipRequests[0]", "status.ips[4]"]);
        assert_eq!(v.errors.kept.0[0].kind.cause_type(), "FieldValueInvalid");
        // The value is echoed as written.
        assert!(texts(&v.errors)[1]
            .starts_with("status.ips[4]: Invalid value: \"FD10:200::/64\": the network address"));
        assert!(warnings.is_empty());
    }

    /// A lookup of [`tenantred`] that counts the misfits it is told of.
    #[derive(Debug, Default)]
    struct Counting(std::sync::Mutex<Vec<MisfitReason>>);

    impl Networks for Counting {
        fn network(&self, name: &str) -> Option<Arc<Network>> {
            (name == "tenantred").then(|| Arc::new(tenantred()))
        }

        fn misfit(&self, reason: MisfitReason) {
            self.0.lock().unwrap().push(reason);
        }
    }

    /// `check` of `object` against `old` with [`tenantred`], and the misfits it counts, each
    /// reason once with its count, in the order of [`MisfitReason::ALL`].
    fn misfits(object: &Value, old: Option<&Value>) -> Vec<(MisfitReason, u32)> {
        let networks = Counting::default();
        let old = old.map(testing::claim);
        check(
            &networks,
            "ns1",
            &testing::claim(object),
            old.as_ref(),
            &mut Verdict::default(),
            &mut Warnings::new(),
        );
        let told = networks.0.lock().unwrap();
        MisfitReason::ALL
            .iter()
            .map(|r| (*r, told.iter().filter(|t| *t == r).count() as u32))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    #[test]
    fn check_counts_each_error_by_the_rule_it_breaks_but_not_ratcheted_ones() {
        let object = claim(
            "tenantred",
            json!(["10.9.0.5/24", "10.200.0.0/16"]),
            json!(["10.200.0.255/24", "10.9.0.6/24", "10.200.0.7/24"]),
        );
        assert_eq!(
            misfits(&object, None),
            [
                (MisfitReason::NotInSubnets, 2),
                (MisfitReason::PrefixLength, 1),
                (MisfitReason::NetworkAddress, 1),
                (MisfitReason::Broadcast, 1),
            ]
        );
        let old = claim("tenantred", json!([]), json!(["10.200.0.255/24"]));
        let update = claim("tenantred", json!([]), json!(["10.200.0.255/24"]));
        assert_eq!(misfits(&update, Some(&old)), []);
        let labels: Vec<&str> = MisfitReason::ALL.iter().map(|r| r.as_str()).collect();
        let mut unique = labels.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), labels.len(), "{labels:?}");
    }

    #[test]
    fn check_ratchets_an_address_unchanged_since_the_old_object() {
        let old = claim("tenantred", json!([]), json!(["10.9.0.5/24"]));
        let new = claim(
            "tenantred",
            json!([]),
            json!(["10.9.0.5/24", "10.9.0.6/24"]),
        );
        let (v, _) = run(&new, Some(&old), "ns1");
        assert_eq!(texts(&v.errors).len(), 1);
        assert_eq!(v.errors.kept.0[0].path.as_str(), "status.ips[1]");
        assert_eq!(v.ratcheted.len(), 1);
        assert_eq!(v.ratcheted.kept.0[0].path.as_str(), "status.ips[0]");
    }

    #[test]
    fn check_does_not_ratchet_a_new_prefix_length_or_another_list() {
        let old = claim("tenantred", json!(["10.200.0.5/16"]), json!([]));
        let new = claim(
            "tenantred",
            json!(["10.200.0.5/25"]),
            json!(["10.200.0.5/16"]),
        );
        let (v, _) = run(&new, Some(&old), "ns1");
        assert_eq!(v.errors.len(), 2);
        assert!(v.ratcheted.is_empty());
    }

    #[test]
    fn check_warns_of_an_unknown_network_and_judges_nothing() {
        let (v, warnings) = run(
            &claim("blue", json!(["10.9.0.5/24"]), json!([])),
            None,
            "ns1",
        );
        assert_eq!(v, Verdict::default());
        assert_eq!(
            warnings,
            ["spec.network: no NAD defines network \"blue\": addresses not checked"]
        );
        let mut nameless = claim("", json!(["10.9.0.5/24"]), json!([]));
        assert_eq!(
            run(&nameless, None, "ns1"),
            (Verdict::default(), Vec::new())
        );
        nameless["spec"]["network"] = json!(7);
        assert_eq!(
            run(&nameless, None, "ns1"),
            (Verdict::default(), Vec::new())
        );
    }

    proptest::proptest! {
        // Arithmetic against a plain big-integer model: with a range first..=last configured
        // in a subnet, an address of the subnet fits exactly when the model says it is in the
        // range and is neither the network address nor the IPv4 broadcast; IPv4 and IPv6.
        #[test]
        fn an_address_fits_a_range_exactly_when_the_integer_model_says_so(
            v6 in proptest::bool::ANY,
            base_seed in proptest::num::u128::ANY,
            host_bits in 2u32..20,
            a in 0u128..(1 << 20), b in 0u128..(1 << 20), probe in 0u128..(1 << 20),
            excluded in proptest::option::of((0u128..(1 << 20), 0u128..64)),
        ) {
            let width: u32 = if v6 { 128 } else { 32 };
            let size: u128 = 1 << host_bits;
            let seed = if v6 { base_seed } else { base_seed & u128::from(u32::MAX) };
            let base = seed >> host_bits << host_bits;
            let (lo, hi) = (base + a.min(b) % size, base + a.max(b) % size);
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            let n = base + probe % size;
            let to_ip = |n: u128| Point { v6, n }.ip();
            let cidr = Cidr::masked(to_ip(base), (width - host_bits) as u8).unwrap().0;
            let mut draft = SubnetDraft {
                cidr,
                prefix: Some(cidr.prefix),
                range: Span::new(to_ip(lo), to_ip(hi)),
                refused: Vec::new(),
            };
            let exclude = excluded.map(|(at, len)| {
                let first = base + at % size;
                (first, (first + len).min(base + size - 1))
            });
            if let Some((first, last)) = exclude {
                draft.refused.push(Refused { reason: Reason::Exclude, span: Span::new(to_ip(first), to_ip(last)).unwrap() });
            }
            let rules = Rules::new(Draft {
                plugin: Plugin::Whereabouts,
                persistence: Persistence::NotAllowed,
                subnets: vec![draft],
                refused: Vec::new(),
                reserved: Vec::new(),
            });
            let model = lo <= n && n <= hi
                && n != base
                && (v6 || n != base + size - 1)
                && exclude.is_none_or(|(first, last)| n < first || n > last);
            let address = Address { ip: to_ip(n), prefix: Some(cidr.prefix) };
            proptest::prop_assert_eq!(rules.place(address).fits(), model, "{} in {}..{}", n, lo, hi);
            // Outside the subnet nothing fits, and every prefix but the subnet's is wrong.
            let outside = Address { ip: to_ip(base.wrapping_sub(1) & span::family_max(v6)), prefix: None };
            proptest::prop_assert!(!rules.place(outside).fits() || host_bits >= width);
            let wrong = Address { ip: to_ip(n), prefix: Some(cidr.prefix - 1) };
            proptest::prop_assert!(!rules.place(wrong).fits());
        }
    }
}
