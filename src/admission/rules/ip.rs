//! Strict parsing of IP addresses and interface addresses, as Kubernetes validates them.
//!
//! Kubernetes reads a value in two passes, and this module does the same so that it accepts
//! and rejects exactly what the API server would, with the same words:
//!
//! 1. A lenient parse, like `netutils.ParseIPSloppy` / `ParseCIDRSloppy` (Go's `net` parser
//!    before 1.17). It allows leading zeros, because Kubernetes has stored such values for
//!    years; a value it refuses is simply not an address.
//! 2. Strict checks, like `IsValidIP` with `netip.ParseAddr` / `netip.ParsePrefix`: no leading
//!    zeros, no IPv4-mapped IPv6, and the text must be the canonical one (Go's `IP.String()`).
//!
//! Leading zeros and IPv4-mapped addresses are *ambiguous* (other software reads `010.1.2.3`
//! as octal, and `::ffff:1.2.3.4` as either family), so those errors never carry a rewrite.
//! A value that is merely not canonical does, so the mutating webhook can fix it.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A valid IP address, or an interface address (an IP with a prefix length).
///
/// Unlike a CIDR, an interface address keeps the bits beyond the prefix: `10.128.20.8/24` is
/// the host `10.128.20.8` on a `/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// The IP address.
    pub ip: IpAddr,
    /// The prefix length, for an interface address.
    pub prefix: Option<u8>,
}

// === impl Address ===

impl Address {
    /// Whether the IP is an IPv4 address.
    pub fn is_ipv4(&self) -> bool {
        self.ip.is_ipv4()
    }

    /// Whether `value` is exactly this address's canonical text.
    ///
    /// Streams the text through a comparing writer instead of building a `String`, because
    /// this runs for every address of every review.
    fn is_spelled(&self, value: &str) -> bool {
        let IpAddr::V6(v6) = self.ip else {
            let mut rest = SpelledAs(value.as_bytes());
            return write!(rest, "{self}").is_ok() && rest.0.is_empty();
        };
        let mut text = Canonical6::default();
        text.write(v6);
        let Some(rest) = value.as_bytes().strip_prefix(text.as_bytes()) else {
            return false;
        };
        match self.prefix {
            None => rest.is_empty(),
            Some(prefix) => {
                let mut digits = [0; 4];
                digits[0] = b'/';
                let len = match prefix {
                    0..=9 => 1,
                    10..=99 => 2,
                    _ => 3,
                };
                let mut p = prefix;
                for i in (1..=len).rev() {
                    digits[i] = b'0' + p % 10;
                    p /= 10;
                }
                rest == &digits[..=len]
            }
        }
    }
}

/// The canonical text of an IPv6 address (RFC 5952, as `Ipv6Addr`'s `Display` and Go print
/// it), written into a buffer of its own: the check of every IPv6 address of every review
/// runs no formatting machinery.
struct Canonical6 {
    text: [u8; 39],
    len: usize,
}

impl Default for Canonical6 {
    fn default() -> Self {
        Canonical6 {
            text: [0; 39],
            len: 0,
        }
    }
}

// === impl Canonical6 ===

impl Canonical6 {
    fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len]
    }

    fn push(&mut self, b: u8) {
        self.text[self.len] = b;
        self.len += 1;
    }

    /// Writes `ip`: lowercase groups without leading zeros, the first longest run of two or
    /// more zero groups as `::`. (An IPv4-mapped address, which `Display` prints with a dotted
    /// quad, never reaches here: [`parse`] refuses it first.)
    fn write(&mut self, ip: Ipv6Addr) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let groups = ip.segments();
        let (mut run_start, mut run_len) = (0, 0);
        let mut i = 0;
        while i < 8 {
            if groups[i] == 0 {
                let start = i;
                while i < 8 && groups[i] == 0 {
                    i += 1;
                }
                if i - start > run_len {
                    (run_start, run_len) = (start, i - start);
                }
            } else {
                i += 1;
            }
        }
        if run_len < 2 {
            run_len = 0;
        }
        let mut i = 0;
        while i < 8 {
            if run_len > 0 && i == run_start {
                self.push(b':');
                self.push(b':');
                i += run_len;
                continue;
            }
            if i > 0 && !(run_len > 0 && i == run_start + run_len) {
                self.push(b':');
            }
            let g = groups[i];
            let mut started = false;
            for shift in [12, 8, 4, 0] {
                let digit = (g >> shift) & 0xf;
                if digit != 0 || started || shift == 0 {
                    self.push(HEX[usize::from(digit)]);
                    started = true;
                }
            }
            i += 1;
        }
    }
}

/// Writes the canonical text: the IP as Go's `net.IP.String()` prints it, then `/prefix`.
///
/// Rust's `Ipv6Addr` display follows RFC 5952 exactly as Go does (lowercase, no leading zeros
/// in a group, the first longest run of two or more zero groups as `::`, and `::102:304` for
/// an IPv4-compatible address). The one difference is an IPv4-mapped address, which Rust
/// prints as `::ffff:1.2.3.4` and Go as `1.2.3.4`; [`parse`] never returns one.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix {
            Some(prefix) => write!(f, "{}/{prefix}", self.ip),
            None => write!(f, "{}", self.ip),
        }
    }
}

/// A writer that succeeds only while what is written matches the front of a byte string.
struct SpelledAs<'a>(&'a [u8]);

impl fmt::Write for SpelledAs<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Failing early stops the formatting at the first difference.
        let rest = self.0.strip_prefix(s.as_bytes()).ok_or(fmt::Error)?;
        self.0 = rest;
        Ok(())
    }
}

/// Why a value is not a valid address in canonical form.
///
/// The messages are Kubernetes' own, byte for byte, so that a client sees the same detail
/// from this webhook as from the API server.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The value (without `/`) is not an IP address at all.
    #[error("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    InvalidIp,
    /// The value (with `/`) is not an IP address and prefix length at all.
    #[error("must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)")]
    InvalidCidr,
    /// An IPv4 octet has a leading zero, or an IPv6 group has more than four digits.
    #[error("must not have leading 0s")]
    LeadingZeros,
    /// As [`AddressError::LeadingZeros`], in the IP or the prefix length of an interface address.
    #[error("must not have leading 0s in IP or prefix length")]
    LeadingZerosCidr,
    /// The IP is an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
    #[error("must not be an IPv4-mapped IPv6 address")]
    Ipv4Mapped,
    /// The IP of an interface address is an IPv4-mapped IPv6 address.
    #[error("must not have an IPv4-mapped IPv6 address")]
    Ipv4MappedCidr,
    /// The value is a valid address, but not written in its one canonical form.
    #[error("must be in canonical form ({:?})", canonical.to_string())]
    NotCanonical {
        /// The address the value stands for; its `Display` is the canonical text.
        canonical: Address,
    },
}

// === impl AddressError ===

impl AddressError {
    /// The message, as `to_string` words it: fixed text copied without the formatting machinery
    /// (every invalid address of a denial has one).
    pub fn message(&self) -> String {
        let fixed = match self {
            AddressError::InvalidIp => {
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            }
            AddressError::InvalidCidr => {
                "must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)"
            }
            AddressError::LeadingZeros => "must not have leading 0s",
            AddressError::LeadingZerosCidr => "must not have leading 0s in IP or prefix length",
            AddressError::Ipv4Mapped => "must not be an IPv4-mapped IPv6 address",
            AddressError::Ipv4MappedCidr => "must not have an IPv4-mapped IPv6 address",
            AddressError::NotCanonical { .. } => return self.to_string(),
        };
        fixed.to_owned()
    }
}

// === impl AddressError ===

impl AddressError {
    /// Whether the value could be read as more than one address, so it must not be rewritten.
    ///
    /// `010.1.2.3` is 10.1.2.3 to Go but 8.1.2.3 to anything reading octal, and
    /// `::ffff:1.2.3.4` is IPv4 to some stacks and IPv6 to others.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            Self::LeadingZeros | Self::LeadingZerosCidr | Self::Ipv4Mapped | Self::Ipv4MappedCidr
        )
    }
}

/// Parses `value` as an IP address or, when it contains `/`, as an interface address
/// (`IP/prefix`), and accepts it only if it is valid and in canonical form.
///
/// The checks run in Kubernetes' order and the first failure is returned: not an address at
/// all, leading zeros, IPv4-mapped IPv6, not canonical.
pub fn parse(value: &str) -> Result<Address, AddressError> {
    // Everything valid is ASCII, so working on bytes never splits a character that matters;
    // any other byte simply fails to parse.
    let bytes = value.as_bytes();
    let (ip_text, prefix_text) = match bytes.iter().position(|&b| b == b'/') {
        Some(slash) => (&bytes[..slash], Some(&bytes[slash + 1..])),
        None => (bytes, None),
    };
    let cidr = prefix_text.is_some();
    let invalid = if cidr {
        AddressError::InvalidCidr
    } else {
        AddressError::InvalidIp
    };

    let (ip, mut padded) = parse_ip_sloppy(ip_text).ok_or_else(|| invalid.clone())?;
    let prefix = match prefix_text {
        None => None,
        Some(text) => {
            // An IPv4-mapped address is IPv6 text, so the IPv6 range applies, as in Go.
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            let (length, zero) = decimal(text, bits).ok_or(invalid)?;
            padded |= zero;
            Some(length)
        }
    };

    if padded {
        return Err(if cidr {
            AddressError::LeadingZerosCidr
        } else {
            AddressError::LeadingZeros
        });
    }
    if matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()) {
        return Err(if cidr {
            AddressError::Ipv4MappedCidr
        } else {
            AddressError::Ipv4Mapped
        });
    }
    let address = Address { ip, prefix };
    // Dotted-quad text that passed the checks above (four decimal octets and a decimal prefix,
    // no leading zeros) is the canonical text; only IPv6 text has other spellings.
    if ip.is_ipv6() && !address.is_spelled(value) {
        return Err(AddressError::NotCanonical { canonical: address });
    }
    Ok(address)
}

/// The lenient first pass: reads an IP as Go's pre-1.17 `net.ParseIP` would, and reports
/// whether the strict pass must reject it for leading zeros.
fn parse_ip_sloppy(text: &[u8]) -> Option<(IpAddr, bool)> {
    // Only IPv6 text has a colon, and an IPv4 parse of it (or an IPv6 parse of colon-free
    // text) would fail anyway, so the colon alone picks the family.
    if text.contains(&b':') {
        parse_ipv6(text).map(|(ip, padded)| (IpAddr::V6(ip), padded))
    } else {
        parse_ipv4(text).map(|(ip, padded)| (IpAddr::V4(ip), padded))
    }
}

/// Reads a dotted quad that makes up all of `text`; octets may have leading zeros, which are
/// reported rather than refused.
fn parse_ipv4(text: &[u8]) -> Option<(Ipv4Addr, bool)> {
    let mut octets = [0u8; 4];
    let mut padded = false;
    let mut parts = text.split(|&b| b == b'.');
    for octet in &mut octets {
        let (value, zero) = decimal(parts.next()?, u8::MAX)?;
        *octet = value;
        padded |= zero;
    }
    if parts.next().is_some() {
        return None;
    }
    Some((Ipv4Addr::from(octets), padded))
}

/// Reads an IPv6 address in any RFC 4291 text form that makes up all of `text`: `::` for a
/// run of zero groups, and optionally an IPv4 address as the last 32 bits.
///
/// Like Go's lenient parser, a group may have any number of hex digits as long as its value
/// fits 16 bits; more than four means leading zeros, which the strict pass refuses.
fn parse_ipv6(text: &[u8]) -> Option<(Ipv6Addr, bool)> {
    let mut groups = [0u16; 8];
    let mut len = 0;
    // The index into `groups` where `::` stands, if it appears.
    let mut gap = None;
    let mut padded = false;
    let mut rest = text;

    if let Some(after) = rest.strip_prefix(b"::") {
        gap = Some(0);
        rest = after;
    }
    while !rest.is_empty() {
        let (value, digits) = hex_run(rest);
        if digits == 0 {
            return None;
        }
        if rest.get(digits) == Some(&b'.') {
            // An embedded IPv4 address is the last two groups, so it ends the text. Too few
            // groups before it without a `::` fail the count below.
            if len > 6 {
                return None;
            }
            let (ipv4, zero) = parse_ipv4(rest)?;
            let [a, b, c, d] = ipv4.octets();
            groups[len] = u16::from_be_bytes([a, b]);
            groups[len + 1] = u16::from_be_bytes([c, d]);
            len += 2;
            padded |= zero;
            break;
        }
        if len == 8 {
            return None;
        }
        groups[len] = u16::try_from(value).ok()?;
        len += 1;
        padded |= digits > 4;

        rest = &rest[digits..];
        if rest.is_empty() {
            break;
        }
        rest = rest.strip_prefix(b":")?;
        if let Some(after) = rest.strip_prefix(b":") {
            if gap.is_some() {
                return None;
            }
            gap = Some(len);
            rest = after;
        } else if rest.is_empty() {
            // A single trailing colon.
            return None;
        }
    }

    match gap {
        None if len == 8 => {}
        // `::` must stand for at least one zero group.
        Some(at) if len < 8 => {
            let tail = len - at;
            groups.copy_within(at..len, 8 - tail);
            groups[at..8 - tail].fill(0);
        }
        _ => return None,
    }
    Some((Ipv6Addr::from(groups), padded))
}

/// Reads the run of hex digits at the start of `text`: its value and its length in digits.
///
/// The value saturates just above `u16::MAX`, so a long run cannot overflow and still reads
/// as too large.
fn hex_run(text: &[u8]) -> (u32, usize) {
    let mut value = 0u32;
    let mut digits = 0;
    for &b in text {
        let Some(digit) = char::from(b).to_digit(16) else {
            break;
        };
        value = (value * 16 + digit).min(u32::from(u16::MAX) + 1);
        digits += 1;
    }
    (value, digits)
}

/// Reads a non-empty run of decimal digits that makes up all of `text`, with a value of at
/// most `max`: its value and whether it has a leading zero (`0` alone does not).
fn decimal(text: &[u8], max: u8) -> Option<(u8, bool)> {
    let (&first, _) = text.split_first()?;
    let mut value = 0u16;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        // Saturating keeps any number of leading zeros readable while a huge value stays
        // out of range instead of overflowing.
        value = (value * 10 + u16::from(b - b'0')).min(u16::from(u8::MAX) + 1);
    }
    let value = u8::try_from(value).ok().filter(|&v| v <= max)?;
    Some((value, first == b'0' && text.len() > 1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_read_as_their_display() {
        use super::{parse, AddressError};
        let canonical = parse("2001:db8::1").expect("canonical");
        for e in [
            AddressError::InvalidIp,
            AddressError::InvalidCidr,
            AddressError::LeadingZeros,
            AddressError::LeadingZerosCidr,
            AddressError::Ipv4Mapped,
            AddressError::Ipv4MappedCidr,
            AddressError::NotCanonical { canonical },
        ] {
            assert_eq!(e.message(), e.to_string());
        }
    }

    proptest::proptest! {
        /// The canonical text written by hand is what `Ipv6Addr` prints, for addresses rich
        /// in zero groups (runs of every length and place, ties between runs).
        #[test]
        fn writes_ipv6_as_display_does(
            groups in proptest::array::uniform8(proptest::prop_oneof![
                4 => proptest::prelude::Just(0u16),
                1 => 1u16..16,
                1 => proptest::prelude::any::<u16>(),
            ])
        ) {
            let ip = std::net::Ipv6Addr::from(groups);
            proptest::prop_assume!(ip.to_ipv4_mapped().is_none());
            let mut text = super::Canonical6::default();
            text.write(ip);
            let shown = ip.to_string();
            proptest::prop_assert_eq!(text.as_bytes(), shown.as_bytes());
        }
    }

    use super::*;
    use proptest::prelude::*;

    fn canonical(value: &str) -> String {
        match parse(value) {
            Err(AddressError::NotCanonical { canonical }) => canonical.to_string(),
            other => panic!("{value:?}: expected NotCanonical, got {other:?}"),
        }
    }

    fn assert_error(values: &[&str], expected: &AddressError) {
        for value in values {
            assert_eq!(parse(value).as_ref(), Err(expected), "{value:?}");
        }
    }

    #[test]
    fn accepts_canonical_ips() {
        for value in [
            "10.1.2.3",
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "::1",
            "1::",
            "2001:db8::5",
        ] {
            let address = parse(value).unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_eq!(address.prefix, None, "{value:?}");
            assert_eq!(address.to_string(), value);
        }
        assert_eq!(
            parse("10.1.2.3"),
            Ok(Address {
                ip: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
                prefix: None
            })
        );
    }

    #[test]
    fn accepts_interface_addresses_with_host_bits() {
        for (value, prefix) in [
            ("10.128.20.8/24", 24),
            ("fd10:128:20::8/64", 64),
            ("2001:db8::5/64", 64),
            ("0.0.0.0/0", 0),
            ("1.2.3.4/32", 32),
            ("2001:db8::1/128", 128),
            ("::/0", 0),
        ] {
            let address = parse(value).unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_eq!(address.prefix, Some(prefix), "{value:?}");
            assert_eq!(address.to_string(), value);
        }
        assert_eq!(
            parse("10.128.20.8/24").map(|a| a.ip),
            Ok(IpAddr::V4(Ipv4Addr::new(10, 128, 20, 8)))
        );
    }

    #[test]
    fn accepts_single_zero_group_uncompressed() {
        // RFC 5952: "::" must not stand for a single zero group.
        assert!(parse("2001:db8:0:1:1:1:1:1").is_ok());
        assert_eq!(canonical("2001:db8::1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
    }

    #[test]
    fn rejects_prefix_out_of_range() {
        assert_error(
            &[
                "10.1.2.3/33",
                "2001:db8::1/129",
                "::ffff:1.2.3.4/129",
                "::/256",
                "1.2.3.4/1024",
                "1.2.3.4/4294967296",
            ],
            &AddressError::InvalidCidr,
        );
    }

    #[test]
    fn rejects_malformed_prefix() {
        assert_error(
            &[
                "10.1.2.3/",
                "10.1.2.3/-1",
                "10.1.2.3/+24",
                "10.1.2.3/24/1",
                "10.1.2.3/ 24",
                "10.1.2.3/24 ",
                "10.1.2.3/0x18",
                "/24",
                "/",
                "//",
                "10.1.2.3//24",
            ],
            &AddressError::InvalidCidr,
        );
    }

    #[test]
    fn rejects_ipv4_mapped() {
        assert_error(
            &[
                "::ffff:1.2.3.4",
                "::ffff:102:304",
                "::FFFF:1.2.3.4",
                "0:0:0:0:0:ffff:1.2.3.4",
                "0:0:0:0:0:ffff:102:304",
            ],
            &AddressError::Ipv4Mapped,
        );
    }

    #[test]
    fn rejects_ipv4_mapped_interface_address() {
        // The IPv6 prefix range applies to a mapped address, so /33 is well-formed here.
        assert_error(
            &[
                "::ffff:1.2.3.4/120",
                "::ffff:1.2.3.4/33",
                "::ffff:102:304/128",
            ],
            &AddressError::Ipv4MappedCidr,
        );
    }

    #[test]
    fn rejects_leading_zeros() {
        assert_error(
            &[
                "010.1.2.3",
                "0010.1.2.3",
                "10.01.2.3",
                "10.1.2.00",
                "00.0.0.0",
                "::1.2.3.04",
                // Leading zeros are reported before the mapping.
                "::ffff:010.1.2.3",
                // Go's lenient parser reads five digits; netip refuses them as zero padding.
                "2001:db8::00001",
            ],
            &AddressError::LeadingZeros,
        );
    }

    #[test]
    fn rejects_leading_zeros_in_interface_address() {
        assert_error(
            &[
                "10.1.2.3/024",
                "10.1.2.3/00",
                "010.1.2.3/24",
                "2001:db8::1/064",
                "::ffff:1.2.3.4/0120",
                "10.1.2.3/000000000000000000000000024",
            ],
            &AddressError::LeadingZerosCidr,
        );
    }

    #[test]
    fn rejects_zones() {
        assert_error(
            &["fe80::1%eth0", "fe80::1%1", "%eth0"],
            &AddressError::InvalidIp,
        );
        assert_error(&["fe80::1%eth0/64"], &AddressError::InvalidCidr);
    }

    #[test]
    fn rejects_non_addresses() {
        assert_error(
            &[
                "",
                "winner",
                "chicken",
                " 10.1.2.3",
                "10.1.2.3 ",
                "10.1.2. 3",
                "1.2.3",
                "1.2.3.4.5",
                "1.2.3.",
                ".1.2.3",
                "1..2.3",
                "10.1.2.300",
                "10.1.2.256",
                "10.1.2.1000",
                "10.1.2.99999999999999999999",
                "1.2.3.4:",
                "0x1.2.3.4",
                "1::2::3",
                ":::",
                ":::1",
                "1:::2",
                ":1::",
                "::1:",
                "1:",
                ":",
                "[::1]",
                "1:2:3:4:5:6:7",
                "1:2:3:4:5:6:7:8:9",
                "1:2:3:4:5:6:7:8::",
                "::1:2:3:4:5:6:7:8",
                "1:2:3:4:5:6:7::8",
                "2001:db8::10000",
                "2001:db8::g",
                "1:2:3:4:5:6:7:1.2.3.4",
                "1:2:3:4:5:1.2.3.4",
                "::1.2.3",
                "::1.2.3.4:1",
                "::1a.2.3.4",
                "::256.1.2.3",
                "１０.1.2.3",
                "10.1.2.３",
                "é",
                "::é",
                "1.2.3.4\0",
            ],
            &AddressError::InvalidIp,
        );
        assert_error(
            &[
                "winner/24",
                "10.1.2.300/24",
                "１０.1.2.3/24",
                "10.1.2.3/２４",
                "é/é",
            ],
            &AddressError::InvalidCidr,
        );
    }

    #[test]
    fn rewrites_ipv6_to_canonical_form() {
        for (value, expected) in [
            ("2001:DB8::1", "2001:db8::1"),
            ("2001:0db8:0:0::1", "2001:db8::1"),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("2001:db8::0:1", "2001:db8::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
            ("0:0:0:0:0:0:0:0", "::"),
            ("0::0", "::"),
            ("::0", "::"),
            ("1:0:0:0:0:0:0:0", "1::"),
            ("0:0:0:0:0:0:0:1", "::1"),
            ("FD10:128:20::8", "fd10:128:20::8"),
            // IPv4-compatible (not mapped): Go prints it in hex, and so must we.
            ("::1.2.3.4", "::102:304"),
            ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
            ("2001:DB8:0:0::1/64", "2001:db8::1/64"),
            ("::0/0", "::/0"),
        ] {
            assert_eq!(canonical(value), expected, "{value:?}");
        }
    }

    #[test]
    fn not_canonical_message_quotes_canonical_form() {
        let err = parse("2001:DB8::1").unwrap_err();
        assert!(!err.is_ambiguous());
        assert_eq!(
            err.to_string(),
            r#"must be in canonical form ("2001:db8::1")"#
        );
    }

    #[test]
    fn error_messages_match_kubernetes() {
        let cases = [
            (
                "winner",
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ),
            (
                "winner/24",
                "must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)",
            ),
            ("010.1.2.3", "must not have leading 0s"),
            (
                "10.1.2.3/024",
                "must not have leading 0s in IP or prefix length",
            ),
            ("::ffff:1.2.3.4", "must not be an IPv4-mapped IPv6 address"),
            (
                "::ffff:1.2.3.4/120",
                "must not have an IPv4-mapped IPv6 address",
            ),
            (
                "2001:db8:0:0::1/64",
                r#"must be in canonical form ("2001:db8::1/64")"#,
            ),
        ];
        for (value, message) in cases {
            assert_eq!(parse(value).unwrap_err().to_string(), message, "{value:?}");
        }
    }

    #[test]
    fn only_leading_zeros_and_mapping_are_ambiguous() {
        for value in [
            "010.1.2.3",
            "10.1.2.3/024",
            "::ffff:1.2.3.4",
            "::ffff:1.2.3.4/120",
        ] {
            assert!(parse(value).unwrap_err().is_ambiguous(), "{value:?}");
        }
        for value in ["winner", "winner/24", "2001:DB8::1", "2001:DB8::1/64"] {
            assert!(!parse(value).unwrap_err().is_ambiguous(), "{value:?}");
        }
    }

    #[test]
    fn reports_family() {
        assert!(parse("10.1.2.3/24").unwrap().is_ipv4());
        assert!(!parse("2001:db8::1/64").unwrap().is_ipv4());
    }

    /// IPv6 addresses with zero groups common enough to exercise `::` placement.
    fn ipv6_addrs() -> impl Strategy<Value = Ipv6Addr> {
        proptest::array::uniform8(prop_oneof![Just(0u16), 1u16..=0xf, any::<u16>()])
            .prop_map(Ipv6Addr::from)
            .prop_filter("IPv4-mapped", |ip| ip.to_ipv4_mapped().is_none())
    }

    fn addresses() -> impl Strategy<Value = Address> {
        prop_oneof![
            (any::<Ipv4Addr>(), proptest::option::of(0u8..=32)).prop_map(|(ip, prefix)| Address {
                ip: IpAddr::V4(ip),
                prefix
            }),
            (ipv6_addrs(), proptest::option::of(0u8..=128)).prop_map(|(ip, prefix)| Address {
                ip: IpAddr::V6(ip),
                prefix
            }),
        ]
    }

    /// Text shaped like addresses, with near-misses common: padded, empty, oversized and
    /// upper-case fields, the wrong number of groups, `::` in any place, embedded IPv4
    /// tails, zones, stray characters and odd prefixes.
    fn address_like(with_prefix: bool) -> impl Strategy<Value = String> {
        let octet = prop_oneof![
            3 => Just("0"),
            3 => Just("1"),
            3 => Just("10"),
            3 => Just("255"),
            1 => Just("01"),
            1 => Just("00"),
            1 => Just("256"),
            1 => Just(""),
        ];
        let octets = prop_oneof![8 => Just(4), 1 => Just(3), 1 => Just(5)];
        let ipv4 = (proptest::collection::vec(octet, 5), octets)
            .prop_map(|(octets, len)| octets[..len].join("."));
        let group = prop_oneof![
            4 => Just("0"),
            2 => Just("1"),
            1 => Just("db8"),
            1 => Just("DB8"),
            1 => Just("ffff"),
            1 => Just("FFFF"),
            1 => Just("0000"),
            1 => Just("00001"),
            1 => Just("10000"),
            1 => Just(""),
        ];
        let ipv6 = (
            proptest::collection::vec(group, 8),
            0usize..=8,
            proptest::option::of(0usize..=8),
            proptest::option::weighted(0.3, ipv4.clone()),
        )
            .prop_map(|(groups, len, gap, tail)| {
                let mut parts = groups[..len].to_vec();
                parts.extend(tail.as_deref());
                let gap = gap.map(|g| g % (parts.len() + 1));
                let mut text = String::new();
                for (i, part) in parts.iter().enumerate() {
                    if gap == Some(i) {
                        text.push_str("::");
                    } else if i > 0 {
                        text.push(':');
                    }
                    text.push_str(part);
                }
                if gap == Some(parts.len()) {
                    text.push_str("::");
                }
                text
            });
        let prefix = prop_oneof![
            Just("0"),
            Just("00"),
            Just("24"),
            Just("024"),
            Just("32"),
            Just("33"),
            Just("128"),
            Just("129"),
            Just(""),
            Just("24/1"),
        ];
        let junk = prop_oneof![
            20 => Just(""),
            1 => Just("%eth0"),
            1 => Just(" "),
            1 => Just("é"),
            1 => Just("]"),
        ];
        (
            prop_oneof![ipv4, ipv6],
            proptest::option::weighted(0.7, prefix),
            junk,
        )
            .prop_map(
                move |(ip, prefix, junk)| match prefix.filter(|_| with_prefix) {
                    Some(prefix) => format!("{ip}{junk}/{prefix}"),
                    None => format!("{ip}{junk}"),
                },
            )
    }

    proptest! {
        #[test]
        fn canonical_text_parses_to_same_address(address in addresses()) {
            prop_assert_eq!(parse(&address.to_string()), Ok(address));
        }

        #[test]
        fn expanded_ipv6_is_rewritten_to_canonical(
            ip in ipv6_addrs(),
            upper in any::<u32>(),
            prefix in proptest::option::of(0u8..=128),
        ) {
            let mut spelled = String::new();
            for (i, group) in ip.segments().iter().enumerate() {
                if i > 0 {
                    spelled.push(':');
                }
                for (j, c) in format!("{group:04x}").chars().enumerate() {
                    let upper = upper & (1 << (i * 4 + j)) != 0;
                    spelled.push(if upper { c.to_ascii_uppercase() } else { c });
                }
            }
            if let Some(prefix) = prefix {
                spelled.push_str(&format!("/{prefix}"));
            }
            let address = Address { ip: IpAddr::V6(ip), prefix };
            if spelled == address.to_string() {
                prop_assert_eq!(parse(&spelled), Ok(address));
            } else {
                prop_assert_eq!(parse(&spelled), Err(AddressError::NotCanonical { canonical: address }));
            }
        }

        #[test]
        fn padded_ipv4_octet_is_leading_zeros(ip in any::<Ipv4Addr>(), which in 0usize..4) {
            let mut octets = ip.octets().map(|o| o.to_string());
            octets[which].insert(0, '0');
            prop_assert_eq!(parse(&octets.join(".")), Err(AddressError::LeadingZeros));
        }

        /// Rust's own parser is strict in the same way as Go's `netip`, so a value passes
        /// the leading-zeros check exactly when std reads it, and both read the same IP.
        #[test]
        fn agrees_with_std_on_strict_ips(value in address_like(false)) {
            let std = value.parse::<IpAddr>().ok();
            match parse(&value) {
                Ok(address) | Err(AddressError::NotCanonical { canonical: address }) => {
                    prop_assert_eq!(Some(address.ip), std);
                }
                Err(AddressError::Ipv4Mapped) => prop_assert!(
                    matches!(std, Some(IpAddr::V6(ip)) if ip.to_ipv4_mapped().is_some())
                ),
                Err(_) => prop_assert_eq!(std, None),
            }
        }

        #[test]
        fn canonical_form_offered_is_accepted(value in address_like(true)) {
            match parse(&value) {
                Ok(address) => prop_assert_eq!(address.to_string(), value),
                Err(AddressError::NotCanonical { canonical }) => {
                    prop_assert_ne!(canonical.to_string(), value);
                    prop_assert_eq!(parse(&canonical.to_string()), Ok(canonical));
                }
                Err(_) => {}
            }
        }

        #[test]
        fn never_panics(value in any::<String>()) {
            let _ = parse(&value);
        }
    }
}
