//! Address arithmetic for the network check: addresses as numbers, CIDR blocks, inclusive
//! ranges, and covers that cut the address space into sorted disjoint pieces, so that finding
//! what holds an address is one binary search, whatever overlaps a config has.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address as a number: its family, and its bits (an IPv4 address in the low 32 bits).
/// Families sort apart: every IPv4 point comes before every IPv6 point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Point {
    /// Whether it is an IPv6 address.
    pub v6: bool,
    /// The address's bits.
    pub n: u128,
}

// === impl Point ===

impl Point {
    /// The point of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Point {
                v6: false,
                n: u128::from(u32::from(v4)),
            },
            IpAddr::V6(v6) => Point {
                v6: true,
                n: u128::from(v6),
            },
        }
    }

    /// The address back.
    pub fn ip(self) -> IpAddr {
        address(self.v6, self.n)
    }
}

/// The address of bits `n` in a family (an IPv4 `n` is below 2^32 by construction).
fn address(v6: bool, n: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX)))
    }
}

/// The number of bits of an address of the family: 32 or 128.
pub fn width(v6: bool) -> u8 {
    if v6 {
        128
    } else {
        32
    }
}

/// The highest address of the family.
pub fn family_max(v6: bool) -> u128 {
    if v6 {
        u128::MAX
    } else {
        u128::from(u32::MAX)
    }
}

/// The host bits of a prefix length: `2^(width - prefix) - 1`. `prefix` is at most the width.
fn host_mask(v6: bool, prefix: u8) -> u128 {
    let host_bits = u32::from(width(v6) - prefix.min(width(v6)));
    if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    }
}

/// A CIDR block: a network address with its host bits zero, and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    /// Whether it is an IPv6 block.
    pub v6: bool,
    /// The network address's bits.
    pub base: u128,
    /// The prefix length, at most the family's width.
    pub prefix: u8,
}

// === impl Cidr ===

impl Cidr {
    /// The block `ip/prefix`, its host bits masked (`10.0.0.5/24` is `10.0.0.0/24`), and
    /// whether any were set; `None` when `prefix` exceeds the family's width.
    pub fn masked(ip: IpAddr, prefix: u8) -> Option<(Cidr, bool)> {
        let p = Point::of(ip);
        if prefix > width(p.v6) {
            return None;
        }
        let host = host_mask(p.v6, prefix);
        let cidr = Cidr {
            v6: p.v6,
            base: p.n & !host,
            prefix,
        };
        Some((cidr, p.n & host != 0))
    }

    /// The last address of the block.
    pub fn last(&self) -> u128 {
        self.base | host_mask(self.v6, self.prefix)
    }

    /// The number of addresses of the block minus one (so that a /0 fits).
    pub fn size_minus_one(&self) -> u128 {
        host_mask(self.v6, self.prefix)
    }

    /// Whether the block holds more than two addresses: only then do its first and last
    /// addresses (network and broadcast) mean something other than hosts (RFC 3021 /31s).
    pub fn has_network_address(&self) -> bool {
        self.size_minus_one() > 1
    }

    /// Whether `p` is in the block.
    pub fn contains(&self, p: Point) -> bool {
        p.v6 == self.v6 && p.n & !host_mask(self.v6, self.prefix) == self.base
    }

    /// The block as a range.
    pub fn span(&self) -> Span {
        Span {
            v6: self.v6,
            first: self.base,
            last: self.last(),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", address(self.v6, self.base), self.prefix)
    }
}

/// An inclusive range of addresses of one family, `first <= last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// Whether it is a range of IPv6 addresses.
    pub v6: bool,
    /// Its first address.
    pub first: u128,
    /// Its last address.
    pub last: u128,
}

// === impl Span ===

impl Span {
    /// The range `first..=last`; `None` when they are of different families or out of order.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<Span> {
        let (a, b) = (Point::of(first), Point::of(last));
        (a.v6 == b.v6 && a.n <= b.n).then_some(Span {
            v6: a.v6,
            first: a.n,
            last: b.n,
        })
    }

    /// The range of one address.
    pub fn single(ip: IpAddr) -> Span {
        let p = Point::of(ip);
        Span {
            v6: p.v6,
            first: p.n,
            last: p.n,
        }
    }

    /// Whether `p` is in the range.
    pub fn contains(&self, p: Point) -> bool {
        p.v6 == self.v6 && self.first <= p.n && p.n <= self.last
    }

    /// The part of the range inside `other`, if any.
    pub fn within(&self, other: &Span) -> Option<Span> {
        if self.v6 != other.v6 {
            return None;
        }
        let first = self.first.max(other.first);
        let last = self.last.min(other.last);
        (first <= last).then_some(Span {
            v6: self.v6,
            first,
            last,
        })
    }

    /// The range as one CIDR block, when it is exactly one.
    pub fn as_cidr(&self) -> Option<Cidr> {
        let size_minus_one = self.last - self.first;
        // A block's size is a power of two and its first address a multiple of it.
        let aligned = size_minus_one & size_minus_one.wrapping_add(1) == 0
            && self.first & size_minus_one == 0;
        if !aligned {
            return None;
        }
        let host_bits = 128 - size_minus_one.leading_zeros();
        let prefix = u32::from(width(self.v6)).checked_sub(host_bits)?;
        Some(Cidr {
            v6: self.v6,
            base: self.first,
            prefix: u8::try_from(prefix).ok()?,
        })
    }
}

/// One address bare (`10.0.0.1`), a CIDR block as such (`10.0.0.0/29`), anything else as
/// `first-last` (`192.168.10.10-192.168.10.99`).
impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            return write!(f, "{}", address(self.v6, self.first));
        }
        match self.as_cidr() {
            Some(cidr) => write!(f, "{cidr}"),
            None => write!(
                f,
                "{}-{}",
                address(self.v6, self.first),
                address(self.v6, self.last)
            ),
        }
    }
}

/// Which of several ranges holds each address, the first of them where they overlap: the
/// ranges cut into sorted disjoint pieces once, looked up by binary search.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cover {
    pieces: Box<[Piece]>,
}

/// A piece of a [`Cover`]: a range every address of which the same ranges hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Piece {
    span: Span,
    /// The tag of the first range holding it.
    tag: u32,
    /// Whether more than one range holds it.
    shared: bool,
}

/// What a [`Cover`] finds for an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// The tag of the first range that holds it.
    pub tag: u32,
    /// Whether other ranges hold it too.
    pub shared: bool,
}

// === impl Cover ===

impl Cover {
    /// The cover of `ranges`, each with a tag, the first given first where they overlap.
    ///
    /// A sweep over the ranges' ends in order, with the ranges open at each point in a set:
    /// n log n for n ranges however they nest, at most 2n + 1 pieces.
    pub fn new(ranges: impl IntoIterator<Item = (Span, u32)>) -> Cover {
        let ranges: Vec<(Span, u32)> = ranges.into_iter().collect();
        // (where, opens, rank): a range opens at its first address and closes just after its
        // last. An IPv4 range closes at 2^32 (no address, but before every IPv6 point); an
        // IPv6 range that ends at the top never closes: nothing follows it.
        let mut edges: Vec<(Point, bool, usize)> = Vec::with_capacity(2 * ranges.len());
        for (rank, (span, _)) in ranges.iter().enumerate() {
            edges.push((
                Point {
                    v6: span.v6,
                    n: span.first,
                },
                true,
                rank,
            ));
            if let Some(n) = span.last.checked_add(1) {
                edges.push((Point { v6: span.v6, n }, false, rank));
            }
        }
        edges.sort_unstable();
        let mut open: BTreeSet<usize> = BTreeSet::new();
        let mut pieces: Vec<Piece> = Vec::new();
        let mut i = 0;
        while i < edges.len() {
            let at = edges[i].0;
            while i < edges.len() && edges[i].0 == at {
                let (_, opens, rank) = edges[i];
                if opens {
                    open.insert(rank);
                } else {
                    open.remove(&rank);
                }
                i += 1;
            }
            let Some(&first) = open.first() else {
                continue;
            };
            // The piece runs to the next edge of its family, or to the family's end.
            let last = match edges.get(i) {
                Some((next, _, _)) if next.v6 == at.v6 => (next.n - 1).min(family_max(at.v6)),
                _ => family_max(at.v6),
            };
            let piece = Piece {
                span: Span {
                    v6: at.v6,
                    first: at.n,
                    last,
                },
                tag: ranges[first].1,
                shared: open.len() > 1,
            };
            match pieces.last_mut() {
                // Neighbours that say the same are one piece.
                Some(prev)
                    if prev.tag == piece.tag
                        && prev.shared == piece.shared
                        && prev.span.v6 == piece.span.v6
                        && prev.span.last.checked_add(1) == Some(piece.span.first) =>
                {
                    prev.span.last = piece.span.last;
                }
                _ => pieces.push(piece),
            }
        }
        Cover {
            pieces: pieces.into_boxed_slice(),
        }
    }

    /// What holds `p`, if anything.
    pub fn find(&self, p: Point) -> Option<Found> {
        let after = self
            .pieces
            .partition_point(|piece| (piece.span.v6, piece.span.first) <= (p.v6, p.n));
        let piece = self.pieces.get(after.checked_sub(1)?)?;
        piece.span.contains(p).then_some(Found {
            tag: piece.tag,
            shared: piece.shared,
        })
    }

    /// Whether no range was given.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The heap bytes it holds.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val::<[Piece]>(&self.pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn cidr(text: &str) -> Cidr {
        let (addr, prefix) = text.split_once('/').unwrap();
        Cidr::masked(ip(addr), prefix.parse().unwrap()).unwrap().0
    }

    #[test]
    fn masks_host_bits_and_says_so() {
        let (c, had) = Cidr::masked(ip("192.168.2.229"), 30).unwrap();
        assert_eq!((c.to_string(), had), ("192.168.2.228/30".to_owned(), true));
        let (c, had) = Cidr::masked(ip("fd10:100::"), 64).unwrap();
        assert_eq!((c.to_string(), had), ("fd10:100::/64".to_owned(), false));
        assert!(Cidr::masked(ip("10.0.0.0"), 33).is_none());
        assert_eq!(cidr("0.0.0.0/0").last(), u128::from(u32::MAX));
        assert_eq!(cidr("::/0").last(), u128::MAX);
    }

    #[test]
    fn only_blocks_of_more_than_two_addresses_have_a_network_address() {
        assert!(cidr("10.0.0.0/30").has_network_address());
        assert!(!cidr("10.0.0.0/31").has_network_address());
        assert!(!cidr("10.0.0.0/32").has_network_address());
        assert!(cidr("fd00::/126").has_network_address());
        assert!(!cidr("fd00::/127").has_network_address());
    }

    #[test]
    fn shows_a_range_as_an_address_a_block_or_two_ends() {
        assert_eq!(Span::single(ip("10.0.0.1")).to_string(), "10.0.0.1");
        assert_eq!(
            cidr("10.100.200.0/29").span().to_string(),
            "10.100.200.0/29"
        );
        let s = Span::new(ip("192.168.10.10"), ip("192.168.10.99")).unwrap();
        assert_eq!(s.to_string(), "192.168.10.10-192.168.10.99");
        assert_eq!(cidr("::/0").span().to_string(), "::/0");
        assert_eq!(cidr("0.0.0.0/0").span().to_string(), "0.0.0.0/0");
        // Aligned on a smaller block than its size: not one block.
        let s = Span::new(ip("10.0.0.4"), ip("10.0.0.11")).unwrap();
        assert_eq!(s.to_string(), "10.0.0.4-10.0.0.11");
        assert!(Span::new(ip("10.0.0.2"), ip("10.0.0.1")).is_none());
        assert!(Span::new(ip("10.0.0.1"), ip("fd00::1")).is_none());
    }

    #[test]
    fn a_cover_gives_the_first_range_where_they_overlap() {
        let outer = cidr("10.0.0.0/16").span();
        let inner = cidr("10.0.1.0/24").span();
        let cover = Cover::new([(inner, 7), (outer, 9)]);
        let at = |t: &str| cover.find(Point::of(ip(t)));
        assert_eq!(
            at("10.0.1.5"),
            Some(Found {
                tag: 7,
                shared: true
            })
        );
        assert_eq!(
            at("10.0.2.5"),
            Some(Found {
                tag: 9,
                shared: false
            })
        );
        assert_eq!(at("10.1.0.0"), None);
        // The same bits in the other family are elsewhere.
        assert_eq!(
            cover.find(Point {
                v6: true,
                n: outer.first
            }),
            None
        );
    }

    #[test]
    fn a_cover_reaches_the_top_of_each_family() {
        let all6 = cidr("::/0").span();
        let top4 = cidr("255.255.255.0/24").span();
        let cover = Cover::new([(top4, 1), (all6, 2)]);
        assert_eq!(
            cover.find(Point::of(ip("255.255.255.255"))).map(|f| f.tag),
            Some(1)
        );
        assert_eq!(
            cover
                .find(Point::of(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
                .map(|f| f.tag),
            Some(2)
        );
        assert_eq!(cover.find(Point::of(ip("::"))).map(|f| f.tag), Some(2));
        assert_eq!(cover.find(Point::of(ip("255.255.254.255"))), None);
    }

    /// A small universe, so that ranges overlap often: IPv4 0..64, and IPv6 at both ends.
    fn any_point() -> impl Strategy<Value = Point> {
        prop_oneof![
            (0u128..64).prop_map(|n| Point { v6: false, n }),
            (0u128..64).prop_map(|n| Point { v6: true, n }),
            (0u128..64).prop_map(|n| Point {
                v6: true,
                n: u128::MAX - n
            }),
            (0u128..4).prop_map(|n| Point {
                v6: false,
                n: u128::from(u32::MAX) - n
            }),
        ]
    }

    fn any_span() -> impl Strategy<Value = Span> {
        (any_point(), 0u128..20).prop_map(|(p, len)| Span {
            v6: p.v6,
            first: p.n,
            last: p.n.saturating_add(len).min(family_max(p.v6)),
        })
    }

    proptest! {
        // The cover answers what a scan of the ranges in order answers, for every address.
        #[test]
        fn a_cover_agrees_with_a_scan_of_its_ranges(
            spans in proptest::collection::vec(any_span(), 0..12),
            probes in proptest::collection::vec(any_point(), 1..40),
        ) {
            let tagged: Vec<(Span, u32)> =
                spans.iter().enumerate().map(|(i, s)| (*s, 100 + i as u32)).collect();
            let cover = Cover::new(tagged.clone());
            for p in probes {
                let holding: Vec<u32> =
                    tagged.iter().filter(|(s, _)| s.contains(p)).map(|(_, t)| *t).collect();
                let expected = holding.first().map(|&tag| Found { tag, shared: holding.len() > 1 });
                prop_assert_eq!(cover.find(p), expected, "{:?}", p);
            }
        }

        // Membership in a block and its ends, against the plain arithmetic of a big integer
        // model (addresses as numbers, blocks as base + size), IPv4 and IPv6.
        #[test]
        fn a_block_holds_exactly_base_to_base_plus_size(
            v6 in any::<bool>(), raw in any::<u128>(), prefix_seed in any::<u8>(), probe in any::<u128>(),
            near in -3i64..3,
        ) {
            let bits = if v6 { 128u32 } else { 32 };
            let prefix = u32::from(prefix_seed) % (bits + 1);
            let n = if v6 { raw } else { raw & u128::from(u32::MAX) };
            let ip = address(v6, n);
            let (block, had_host_bits) = Cidr::masked(ip, prefix as u8).unwrap();
            let size: Option<u128> = 1u128.checked_shl(bits - prefix).filter(|_| bits - prefix < 128);
            let model_base = match size { Some(size) => n / size * size, None => 0 };
            prop_assert_eq!(block.base, model_base);
            prop_assert_eq!(had_host_bits, n != model_base);
            let model_last = match size { Some(size) => model_base + (size - 1), None => u128::MAX };
            prop_assert_eq!(block.last(), model_last);
            // Probes anywhere, and just around both ends.
            let around = |edge: u128| edge.wrapping_add_signed(i128::from(near));
            for q in [probe, around(model_base), around(model_last)] {
                let q = if v6 { q } else { q & u128::from(u32::MAX) };
                let p = Point { v6, n: q };
                prop_assert_eq!(block.contains(p), model_base <= q && q <= model_last);
                prop_assert_eq!(block.span().contains(p), model_base <= q && q <= model_last);
            }
            prop_assert_eq!(block.span().as_cidr(), Some(block));
        }
    }
}
