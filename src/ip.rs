//! Placeholder API; the real strict address parser replaces this file.
use std::fmt;
use std::net::IpAddr;

/// A valid IP address, or an interface address (an IP with a prefix length).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// The IP address.
    pub ip: IpAddr,
    /// The prefix length, for an interface address.
    pub prefix: Option<u8>,
}

impl Address {
    /// Whether this is an IPv4 address.
    pub fn is_ipv4(&self) -> bool {
        self.ip.is_ipv4()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix {
            Some(p) => write!(f, "{}/{p}", self.ip),
            None => write!(f, "{}", self.ip),
        }
    }
}

/// Why a value is not a valid canonical address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not an IP.
    #[error("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    InvalidIp,
    /// Not canonical.
    #[error("must be in canonical form ({:?})", canonical.to_string())]
    NotCanonical {
        /// The canonical form.
        canonical: Address,
    },
}

/// Parses a value.
pub fn parse(value: &str) -> Result<Address, AddressError> {
    let a = match value.split_once('/') {
        Some((ip, p)) => Address {
            ip: ip.parse().map_err(|_| AddressError::InvalidIp)?,
            prefix: Some(p.parse().map_err(|_| AddressError::InvalidIp)?),
        },
        None => Address {
            ip: value.parse().map_err(|_| AddressError::InvalidIp)?,
            prefix: None,
        },
    };
    if a.prefix.unwrap_or(0) > if a.ip.is_ipv4() { 32 } else { 128 } {
        return Err(AddressError::InvalidIp);
    }
    if a.to_string() != value {
        return Err(AddressError::NotCanonical { canonical: a });
    }
    Ok(a)
}
