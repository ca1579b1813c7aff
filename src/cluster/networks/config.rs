//! One NetworkAttachmentDefinition read into what the network check needs: the CNI network it
//! defines (its config's `name`) and that network's address rules, made judge-ready once per
//! event, never per review.
//!
//! Understood (DESIGN §10): OVN-Kubernetes (`type: ovn-k8s-cni-overlay`), and the `ipam` block
//! of whereabouts and host-local under any plugin. A conflist (`plugins`) is read through its
//! first plugin that is OVN-Kubernetes or has an `ipam` object. Anything else, or a config
//! that does not parse, is a network known without address rules, with the reason.

use std::fmt;
use std::net::IpAddr;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::admission::answer::gotext::{clip, go_quote};
use crate::admission::rules::networks::{
    Addressing, Cidr, Draft, Persistence, Plugin, Reason, Refused, Rules, Span, SubnetDraft,
    Topology,
};

/// The CNI `type` of OVN-Kubernetes' secondary and user-defined networks.
pub const OVN_TYPE: &str = "ovn-k8s-cni-overlay";

/// Longest part of a config quoted in a reason: reasons end up in short warnings.
const MAX_QUOTED: usize = 24;

/// Most subnets and ranges one config may have to be checked: making rules costs subnets
/// times shared ranges, and a NAD is writable by a namespace's users. Real networks have a
/// handful.
pub const MAX_RANGES: usize = 1024;

/// A NetworkAttachmentDefinition as the index keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nad {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The network it defines: its config's `name`. `None` when the config names none (an
    /// empty `spec.config`, which Multus fills from a file on the node, or no `name`): such a
    /// NAD defines no network the check can find.
    pub network: Option<String>,
    /// What its config says about addresses.
    pub addressing: Addressing,
    /// Whether its config could not be read as the plugin reads it (not JSON, a member of
    /// another type, a range that is not one): counted apart from configs that are fine but
    /// give no rules (another plugin, no subnets), for the metrics.
    pub invalid: bool,
}

/// Why a config gives no address rules: the reason a warning carries.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `spec.config` is empty or absent.
    #[error("no config")]
    Empty,
    /// `spec.config` is not JSON.
    #[error("config is not valid JSON")]
    NotJson,
    /// `spec.config` is JSON but not an object.
    #[error("config is not a JSON object")]
    NotObject,
    /// A conflist none of whose plugins is OVN-Kubernetes or has an `ipam` object.
    #[error("no plugin with ipam")]
    NoPlugin,
    /// The plugin is not OVN-Kubernetes and has no `ipam`.
    #[error("plugin {0} has no ipam")]
    NoIpam(String),
    /// An IPAM plugin other than whereabouts and host-local (dhcp, static, ...).
    #[error("ipam type {0}")]
    IpamType(String),
    /// An OVN-Kubernetes config without `topology` (the cluster's default network).
    #[error("no topology")]
    NoTopology,
    /// An OVN-Kubernetes `topology` other than layer2, layer3 and localnet.
    #[error("topology {0}")]
    Topology(String),
    /// An OVN-Kubernetes `role` other than primary and secondary.
    #[error("role {0}")]
    Role(String),
    /// No subnets or ranges: the network has no IPAM.
    #[error("no subnets")]
    NoSubnets,
    /// More subnets and ranges than [`MAX_RANGES`].
    #[error("more than {MAX_RANGES} subnets and ranges")]
    TooMany,
    /// A member of another JSON type than the plugin reads.
    #[error("{key} is not {expected}")]
    Type {
        /// The member.
        key: &'static str,
        /// `a string`, `a list`, ...
        expected: &'static str,
    },
    /// A value that is not a CIDR (or address) as the plugin reads it.
    #[error("{key}: {value} is invalid")]
    Invalid {
        /// The member.
        key: &'static str,
        /// The value, quoted and cut short.
        value: String,
    },
    /// A host-local subnet with host bits set, which host-local refuses.
    #[error("{key}: {value} has host bits set")]
    HostBits {
        /// The member.
        key: &'static str,
        /// The value, quoted and cut short.
        value: String,
    },
    /// A range end outside its subnet, or a range that ends before it starts.
    #[error("{key}: {value} is outside its subnet")]
    Outside {
        /// The member.
        key: &'static str,
        /// The value, quoted and cut short.
        value: String,
    },
}

/// `text` as Go's `%q`, cut to [`MAX_QUOTED`] bytes.
fn shown(text: &str) -> String {
    match clip(text, MAX_QUOTED) {
        (whole, false) => go_quote(whole),
        (head, true) => format!("{}...", go_quote(head)),
    }
}

// === impl Nad ===

impl Nad {
    /// The NAD `namespace/name` with `spec.config` = `config`.
    pub fn parse(namespace: &str, name: &str, config: Option<&str>) -> Nad {
        let (network, read) = read_config(config.unwrap_or_default());
        let (addressing, invalid) = match read {
            Ok(rules) => (Addressing::Ruled(rules), false),
            Err(e) => (unruled(&e), e.is_invalid()),
        };
        Nad {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            network,
            addressing,
            invalid,
        }
    }

    /// The NAD of an object as the API server serves it (`metadata`, `spec.config`), read
    /// leniently; `None` without a name. For `replay --networks`.
    pub fn from_object(object: &Value) -> Option<Nad> {
        let meta = object.get("metadata")?;
        let text = |key: &str| meta.get(key).and_then(Value::as_str).unwrap_or_default();
        if text("name").is_empty() {
            return None;
        }
        let config = object
            .get("spec")
            .and_then(|s| s.get("config"))
            .and_then(Value::as_str);
        Some(Nad::parse(text("namespace"), text("name"), config))
    }
}

/// The network a config names and what it says about addresses.
pub fn read(config: &str) -> (Option<String>, Addressing) {
    let (network, read) = read_config(config);
    let addressing = match read {
        Ok(rules) => Addressing::Ruled(rules),
        Err(e) => unruled(&e),
    };
    (network, addressing)
}

/// The network a config names, and its rules or why it has none.
fn read_config(config: &str) -> (Option<String>, Result<Rules, ConfigError>) {
    if config.trim().is_empty() {
        return (None, Err(ConfigError::Empty));
    }
    let value: Value = match serde_json::from_str(config) {
        Ok(value) => value,
        // A config cut short still names its network when its `name` comes first.
        Err(_) => return (name_before_fault(config), Err(ConfigError::NotJson)),
    };
    let Some(top) = value.as_object() else {
        return (None, Err(ConfigError::NotObject));
    };
    let network = top
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    (network, addressing(top))
}

// === impl ConfigError ===

impl ConfigError {
    /// Whether the config is not one the plugin would read (as opposed to one it reads fine
    /// that gives no rules here: no config, another plugin or IPAM, no subnets, too many).
    pub fn is_invalid(&self) -> bool {
        match self {
            ConfigError::NotJson
            | ConfigError::NotObject
            | ConfigError::Topology(_)
            | ConfigError::Role(_)
            | ConfigError::Type { .. }
            | ConfigError::Invalid { .. }
            | ConfigError::HostBits { .. }
            | ConfigError::Outside { .. } => true,
            ConfigError::Empty
            | ConfigError::NoPlugin
            | ConfigError::NoIpam(_)
            | ConfigError::IpamType(_)
            | ConfigError::NoTopology
            | ConfigError::NoSubnets
            | ConfigError::TooMany => false,
        }
    }
}

fn unruled(e: &ConfigError) -> Addressing {
    Addressing::Unruled(e.to_string().into_boxed_str())
}

/// The rules of a config object (a plain config or a conflist).
pub fn addressing(top: &Map<String, Value>) -> Result<Rules, ConfigError> {
    let plugin = match top.get("plugins") {
        None | Some(Value::Null) => top,
        Some(Value::Array(plugins)) => plugins
            .iter()
            .filter_map(Value::as_object)
            .find(|p| {
                p.get("type").and_then(Value::as_str) == Some(OVN_TYPE)
                    || p.get("ipam").is_some_and(Value::is_object)
            })
            .ok_or(ConfigError::NoPlugin)?,
        Some(_) => {
            return Err(ConfigError::Type {
                key: "plugins",
                expected: "a list",
            })
        }
    };
    let kind = text(plugin, "type")?.unwrap_or_default();
    // allowPersistentIPs is what KubeVirt's IPAM controller reads, whatever the plugin.
    let persistent = flag(plugin, "allowPersistentIPs")?;
    if kind == OVN_TYPE {
        return ovn(plugin, persistent).and_then(bounded_rules);
    }
    let ipam = match plugin.get("ipam") {
        Some(Value::Object(ipam)) => ipam,
        None | Some(Value::Null) => return Err(ConfigError::NoIpam(shown(kind))),
        Some(_) => {
            return Err(ConfigError::Type {
                key: "ipam",
                expected: "an object",
            })
        }
    };
    let persistence = if persistent {
        Persistence::Keeps
    } else {
        Persistence::NotAllowed
    };
    let (plugin, subnets) = match text(ipam, "type")?.unwrap_or_default() {
        "whereabouts" => (Plugin::Whereabouts, whereabouts(ipam)?),
        "host-local" => (Plugin::HostLocal, host_local(ipam)?),
        other => return Err(ConfigError::IpamType(shown(other))),
    };
    bounded_rules(Draft {
        plugin,
        persistence,
        subnets,
        refused: Vec::new(),
        reserved: Vec::new(),
    })
}

/// The rules of `draft`, unless it has more than [`MAX_RANGES`] subnets and ranges.
fn bounded_rules(draft: Draft) -> Result<Rules, ConfigError> {
    let local: usize = draft.subnets.iter().map(|s| 1 + s.refused.len()).sum();
    if local + draft.refused.len() + draft.reserved.len() > MAX_RANGES {
        return Err(ConfigError::TooMany);
    }
    Ok(Rules::new(draft))
}

/// An OVN-Kubernetes config: every range is one comma-separated string.
fn ovn(plugin: &Map<String, Value>, persistent: bool) -> Result<Draft, ConfigError> {
    let topology = match text(plugin, "topology")?.unwrap_or_default() {
        "layer2" => Topology::Layer2,
        "layer3" => Topology::Layer3,
        "localnet" => Topology::Localnet,
        "" => return Err(ConfigError::NoTopology),
        other => return Err(ConfigError::Topology(shown(other))),
    };
    let primary = match text(plugin, "role")?.unwrap_or_default() {
        "primary" => true,
        "secondary" | "" => false,
        other => return Err(ConfigError::Role(shown(other))),
    };
    let mut subnets = Vec::new();
    for entry in entries(text(plugin, "subnets")?) {
        // layer3: `cidr/hostPrefix`, the host prefix cut off (each node's subnet is cut from
        // the network's; a claim's prefix is the node subnet's, which no rule here knows).
        let cidr_text = match topology {
            Topology::Layer3 => match entry.match_indices('/').nth(1) {
                Some((second, _)) => &entry[..second],
                None => entry,
            },
            _ => entry,
        };
        let (cidr, _) = cidr(cidr_text, "subnets")?;
        let prefix = (topology != Topology::Layer3).then_some(cidr.prefix);
        subnets.push(SubnetDraft {
            cidr,
            prefix,
            range: None,
            refused: Vec::new(),
        });
    }
    if subnets.is_empty() {
        return Err(ConfigError::NoSubnets);
    }
    let mut refused = Vec::new();
    for entry in entries(text(plugin, "excludeSubnets")?) {
        refused.push(Refused {
            reason: Reason::ExcludeSubnets,
            span: cidr_or_address(entry, "excludeSubnets")?,
        });
    }
    let mut infrastructure = Vec::new();
    for entry in entries(text(plugin, "infrastructureSubnets")?) {
        infrastructure.push(Refused {
            reason: Reason::Infrastructure,
            span: cidr_or_address(entry, "infrastructureSubnets")?,
        });
    }
    let mut gateways = Vec::new();
    for entry in entries(text(plugin, "defaultGatewayIPs")?) {
        gateways.push(address(entry, "defaultGatewayIPs")?);
    }
    let mut reserved = Vec::new();
    for entry in entries(text(plugin, "reservedSubnets")?) {
        reserved.push(cidr_or_address(entry, "reservedSubnets")?);
    }
    let reserved: Vec<Cidr> = reserved.iter().filter_map(Span::as_cidr).collect();
    if primary && topology == Topology::Layer2 {
        // The gateway (defaultGatewayIPs, else each subnet's first address) and the management
        // address (the second); with infrastructureSubnets, both come from there.
        for gateway in &gateways {
            refused.push(Refused {
                reason: Reason::Gateway,
                span: Span::single(*gateway),
            });
        }
        if infrastructure.is_empty() {
            for s in &subnets {
                if !s.cidr.has_network_address() {
                    continue;
                }
                let at = |offset: u128| span_at(s.cidr, offset);
                let own_gateway = gateways.iter().any(|g| s.cidr.contains(point(*g)));
                if !own_gateway {
                    refused.push(Refused {
                        reason: Reason::Gateway,
                        span: at(1),
                    });
                }
                if s.cidr.size_minus_one() > 2 {
                    refused.push(Refused {
                        reason: Reason::Management,
                        span: at(2),
                    });
                }
            }
        }
    }
    refused.extend(infrastructure);
    let persistence = match (topology, persistent) {
        (Topology::Layer3, _) => Persistence::Layer3,
        (_, true) => Persistence::Keeps,
        (_, false) => Persistence::NotAllowed,
    };
    Ok(Draft {
        plugin: Plugin::OvnKubernetes { topology, primary },
        persistence,
        subnets,
        refused,
        reserved,
    })
}

/// The whereabouts `ipam` block: `range` (a CIDR, or `start-end/prefix`) with `range_start`,
/// `range_end` and `exclude`, then each of `ipRanges` read the same way.
fn whereabouts(ipam: &Map<String, Value>) -> Result<Vec<SubnetDraft>, ConfigError> {
    let mut subnets = Vec::new();
    if text(ipam, "range")?.is_some_and(|r| !r.is_empty()) {
        subnets.push(whereabouts_range(ipam)?);
    }
    match ipam.get("ipRanges") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ranges)) => {
            for range in ranges {
                let range = range.as_object().ok_or(ConfigError::Type {
                    key: "ipRanges",
                    expected: "a list of objects",
                })?;
                subnets.push(whereabouts_range(range)?);
            }
        }
        Some(_) => {
            return Err(ConfigError::Type {
                key: "ipRanges",
                expected: "a list",
            })
        }
    }
    if subnets.is_empty() {
        return Err(ConfigError::NoSubnets);
    }
    Ok(subnets)
}

/// One whereabouts range.
fn whereabouts_range(range: &Map<String, Value>) -> Result<SubnetDraft, ConfigError> {
    let text_of = text(range, "range")?.unwrap_or_default();
    let (cidr, mut start, mut end) = match text_of.split_once('-') {
        Some((first, last)) => {
            let start = address(first.trim(), "range")?;
            let (cidr, _) = cidr(last.trim(), "range")?;
            let end = address(last.trim().split('/').next().unwrap_or_default(), "range")?;
            (cidr, Some(start), Some(end))
        }
        None => (cidr(text_of, "range")?.0, None, None),
    };
    if let Some(first) = text(range, "range_start")? {
        start = Some(address(first, "range_start")?);
    }
    if let Some(last) = text(range, "range_end")? {
        end = Some(address(last, "range_end")?);
    }
    let range_span = bounded(cidr, start, end, "range_start")?;
    let mut refused = Vec::new();
    match range.get("exclude") {
        None | Some(Value::Null) => {}
        Some(Value::Array(excludes)) => {
            for exclude in excludes {
                let exclude = exclude.as_str().ok_or(ConfigError::Type {
                    key: "exclude",
                    expected: "a list of strings",
                })?;
                refused.push(Refused {
                    reason: Reason::Exclude,
                    span: cidr_or_address(exclude, "exclude")?,
                });
            }
        }
        Some(_) => {
            return Err(ConfigError::Type {
                key: "exclude",
                expected: "a list",
            })
        }
    }
    Ok(SubnetDraft {
        cidr,
        prefix: Some(cidr.prefix),
        range: range_span,
        refused,
    })
}

/// The host-local `ipam` block: `ranges` (a list of range sets, each a list of ranges), or one
/// range's keys directly under `ipam`.
fn host_local(ipam: &Map<String, Value>) -> Result<Vec<SubnetDraft>, ConfigError> {
    let mut subnets = Vec::new();
    match ipam.get("ranges") {
        None | Some(Value::Null) => {}
        Some(Value::Array(sets)) => {
            for set in sets {
                let set = set.as_array().ok_or(ConfigError::Type {
                    key: "ranges",
                    expected: "a list of lists",
                })?;
                for range in set {
                    let range = range.as_object().ok_or(ConfigError::Type {
                        key: "ranges",
                        expected: "a list of lists of objects",
                    })?;
                    subnets.push(host_local_range(range)?);
                }
            }
        }
        Some(_) => {
            return Err(ConfigError::Type {
                key: "ranges",
                expected: "a list",
            })
        }
    }
    if text(ipam, "subnet")?.is_some_and(|s| !s.is_empty()) {
        subnets.push(host_local_range(ipam)?);
    }
    if subnets.is_empty() {
        return Err(ConfigError::NoSubnets);
    }
    Ok(subnets)
}

/// One host-local range: its gateway (default: the first address) is never handed out, and
/// `rangeEnd` defaults to the last address before the IPv4 broadcast.
fn host_local_range(range: &Map<String, Value>) -> Result<SubnetDraft, ConfigError> {
    let subnet = text(range, "subnet")?.unwrap_or_default();
    let (cidr, host_bits) = cidr(subnet, "subnet")?;
    if host_bits {
        return Err(ConfigError::HostBits {
            key: "subnet",
            value: shown(subnet),
        });
    }
    let start = text(range, "rangeStart")?
        .map(|s| address(s, "rangeStart"))
        .transpose()?;
    let end = text(range, "rangeEnd")?
        .map(|s| address(s, "rangeEnd"))
        .transpose()?;
    let span = bounded(cidr, start, end, "rangeStart")?;
    let gateway = match text(range, "gateway")? {
        Some(gateway) => Span::single(address(gateway, "gateway")?),
        None => span_at(cidr, 1),
    };
    Ok(SubnetDraft {
        cidr,
        prefix: Some(cidr.prefix),
        range: span,
        refused: vec![Refused {
            reason: Reason::Gateway,
            span: gateway,
        }],
    })
}

/// The range `start..=end` inside `cidr`, the missing end at the subnet's first host or last
/// address before the IPv4 broadcast; `None` when neither is given (the whole subnet).
fn bounded(
    cidr: Cidr,
    start: Option<IpAddr>,
    end: Option<IpAddr>,
    key: &'static str,
) -> Result<Option<Span>, ConfigError> {
    if start.is_none() && end.is_none() {
        return Ok(None);
    }
    let whole = cidr.span();
    let skip = u128::from(cidr.has_network_address());
    let first = start.map_or(whole.first + skip, |s| point(s).n);
    let last_host = whole.last - if cidr.v6 { 0 } else { skip };
    let last = end.map_or(last_host, |e| point(e).n);
    let outside = |ip: Option<IpAddr>| ip.is_some_and(|ip| !cidr.contains(point(ip)));
    if outside(start) || outside(end) || first > last {
        let value = [start, end]
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("-");
        return Err(ConfigError::Outside {
            key,
            value: shown(&value),
        });
    }
    Ok(Some(Span {
        v6: cidr.v6,
        first,
        last,
    }))
}

/// The one-address range at `offset` from `cidr`'s network address.
fn span_at(cidr: Cidr, offset: u128) -> Span {
    let n = cidr.base + offset.min(cidr.size_minus_one());
    Span {
        v6: cidr.v6,
        first: n,
        last: n,
    }
}

fn point(ip: IpAddr) -> crate::admission::rules::networks::Point {
    crate::admission::rules::networks::Point::of(ip)
}

/// The entries of a comma-separated list, trimmed, empty ones skipped.
fn entries(list: Option<&str>) -> impl Iterator<Item = &str> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

/// The string member `key`; `None` when absent or null.
fn text<'v>(
    object: &'v Map<String, Value>,
    key: &'static str,
) -> Result<Option<&'v str>, ConfigError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ConfigError::Type {
            key,
            expected: "a string",
        }),
    }
}

/// The boolean member `key`; false when absent or null.
fn flag(object: &Map<String, Value>, key: &'static str) -> Result<bool, ConfigError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ConfigError::Type {
            key,
            expected: "a boolean",
        }),
    }
}

/// An address of member `key`.
fn address(text: &str, key: &'static str) -> Result<IpAddr, ConfigError> {
    text.trim().parse().map_err(|_| ConfigError::Invalid {
        key,
        value: shown(text),
    })
}

/// A CIDR of member `key`, its host bits masked, and whether any were set.
fn cidr(text: &str, key: &'static str) -> Result<(Cidr, bool), ConfigError> {
    let invalid = || ConfigError::Invalid {
        key,
        value: shown(text),
    };
    let (ip, prefix) = text.trim().split_once('/').ok_or_else(invalid)?;
    let ip: IpAddr = ip.parse().map_err(|_| invalid())?;
    let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
    Cidr::masked(ip, prefix).ok_or_else(invalid)
}

/// A CIDR (host bits masked) or a bare address of member `key`, as a range.
fn cidr_or_address(text: &str, key: &'static str) -> Result<Span, ConfigError> {
    if text.contains('/') {
        Ok(cidr(text, key)?.0.span())
    } else {
        Ok(Span::single(address(text, key)?))
    }
}

/// The top-level `name` of a config that is not JSON to its end, when it comes before the
/// fault: a config cut short (`{"name":"broken-net","subnets":`) still says which network a
/// broken NAD was meant to define, so that claims on it are told so.
fn name_before_fault(config: &str) -> Option<String> {
    let mut name = None;
    let mut reader = serde_json::Deserializer::from_str(config);
    let _ = NameSeed(&mut name).deserialize(&mut reader);
    name.filter(|n: &String| !n.is_empty())
}

/// Reads a JSON object's members in order, keeping the last string `name` it passes.
struct NameSeed<'s>(&'s mut Option<String>);

impl<'de> DeserializeSeed<'de> for NameSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NameSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CNI config object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "name" {
                if let Value::String(name) = map.next_value::<Value>()? {
                    *self.0 = Some(name);
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::answer::field::Path;
    use crate::admission::rules::ip;
    use crate::admission::rules::networks::{judge, Definitions, Network};
    use std::sync::Arc;

    /// The NADs of `tests/fixtures/networks/nads.yaml` (a copy of the shared examples), by
    /// `namespace/name`.
    fn fixtures() -> Vec<(String, String, String)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/networks/nads.yaml"
        );
        let text = std::fs::read_to_string(path).expect("nads.yaml");
        let list: Value = yaml_serde::from_str(&text).expect("YAML");
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| {
                let meta = &item["metadata"];
                (
                    meta["namespace"].as_str().unwrap().to_owned(),
                    meta["name"].as_str().unwrap().to_owned(),
                    item["spec"]["config"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn fixture(namespace: &str, name: &str) -> Nad {
        let (ns, n, config) = fixtures()
            .into_iter()
            .find(|(ns, n, _)| ns == namespace && n == name)
            .unwrap_or_else(|| panic!("no fixture {namespace}/{name}"));
        Nad::parse(&ns, &n, Some(&config))
    }

    #[test]
    fn a_config_that_does_not_parse_is_told_from_one_without_rules() {
        assert!(fixture("ns8", "broken").invalid);
        assert!(!fixture("ns6", "dhcp-net").invalid);
        assert!(!fixture("ns1", "l2-network").invalid);
        for config in [
            r#"{"name":"x","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.0.0.0/33"}"#,
            r#"{"name":"x","type":"ovn-k8s-cni-overlay","topology":"layer4","subnets":"10.0.0.0/24"}"#,
            r#"{"name":"x","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":7}"#,
            "[1]",
        ] {
            assert!(Nad::parse("ns", "n", Some(config)).invalid, "{config}");
        }
        for config in [
            "",
            r#"{"name":"x","type":"macvlan"}"#,
            r#"{"name":"x","type":"ovn-k8s-cni-overlay","topology":"layer2"}"#,
            r#"{"name":"x","type":"macvlan","ipam":{"type":"dhcp"}}"#,
        ] {
            assert!(!Nad::parse("ns", "n", Some(config)).invalid, "{config}");
        }
    }

    fn rules(nad: &Nad) -> &Rules {
        match &nad.addressing {
            Addressing::Ruled(rules) => rules,
            Addressing::Unruled(why) => panic!("{}/{}: no rules: {why}", nad.namespace, nad.name),
        }
    }

    /// The errors of `values` on a network made of `nad` alone, for a claim of its namespace.
    fn verdicts(nad: &Nad, values: &[&str]) -> Vec<Vec<String>> {
        let network = Network::new(
            nad.network.as_deref().unwrap_or_default().into(),
            vec![nad.namespace.as_str().into()],
            Definitions::Agree(Arc::new(nad.addressing.clone())),
        );
        values
            .iter()
            .map(|value| {
                let address = ip::parse(value).expect("a canonical address");
                let path = Path::new("status").child("ips").index(0);
                judge(&network, address, (*value).into(), &path, &nad.namespace)
                    .map(|e| e.detail)
                    .collect()
            })
            .collect()
    }

    fn ok(n: usize) -> Vec<Vec<String>> {
        vec![Vec::new(); n]
    }

    #[test]
    fn every_fixture_is_read() {
        let all = fixtures();
        assert_eq!(all.len(), 15);
        for (ns, name, config) in all {
            let nad = Nad::parse(&ns, &name, Some(&config));
            assert!(nad.network.is_some(), "{ns}/{name} names its network");
        }
    }

    #[test]
    fn ovn_secondary_layer2_with_excluded_subnets() {
        let nad = fixture("ns1", "l2-network");
        assert_eq!(nad.network.as_deref(), Some("tenantyellow"));
        let r = rules(&nad);
        assert_eq!(
            r.plugin(),
            Plugin::OvnKubernetes {
                topology: Topology::Layer2,
                primary: false
            }
        );
        assert_eq!(r.persistence(), Persistence::Keeps);
        assert_eq!(
            r.subnets().map(|s| s.to_string()).collect::<Vec<_>>(),
            ["10.100.200.0/24"]
        );
        assert_eq!(
            verdicts(&nad, &["10.100.200.7/24", "10.100.200.8/24", "10.100.200.255/24"]),
            [
                vec!["in excludeSubnets of network \"tenantyellow\" (10.100.200.0/29)".to_owned()],
                vec![],
                vec!["the broadcast address of a subnet of network \"tenantyellow\" (10.100.200.0/24)".to_owned()],
            ]
        );
        // The same network in ns2, written for its own NAD: the same rules.
        assert_eq!(fixture("ns2", "l2-network").addressing, nad.addressing);
        // And another NAD of the same network says otherwise.
        let other = fixture("ns7", "conflicting");
        assert_eq!(other.network.as_deref(), Some("tenantyellow"));
        assert_ne!(other.addressing, nad.addressing);
    }

    #[test]
    fn ovn_dual_stack_secondary_layer2_keeps_first_addresses_ordinary() {
        let nad = fixture("mynamespace", "test-net");
        assert_eq!(nad.network.as_deref(), Some("mynamespace_test-net"));
        assert_eq!(
            verdicts(
                &nad,
                &["192.168.100.1/24", "2001:dbb::1/64", "2001:dbb::fffe/64"]
            ),
            ok(3)
        );
        assert_eq!(
            verdicts(&nad, &["2001:dbb::ffff/64"])[0],
            ["beyond the first 65535 addresses OVN-Kubernetes allocates in a subnet of network \"mynamespace_test-net\" (2001:dbb::/64)"]
        );
    }

    #[test]
    fn ovn_primary_layer2_reserves_gateway_and_management_addresses() {
        let nad = fixture("tenant-a", "l2-primary");
        let r = rules(&nad);
        assert_eq!(
            r.plugin(),
            Plugin::OvnKubernetes {
                topology: Topology::Layer2,
                primary: true
            }
        );
        assert_eq!(
            verdicts(
                &nad,
                &[
                    "10.100.0.1/16",
                    "10.100.0.2/16",
                    "fd10:100::1/64",
                    "fd10:100::2/64",
                    "10.100.0.3/16",
                    "fd10:100::3/64"
                ]
            ),
            [
                vec!["the gateway of network \"cluster_udn_l2-primary\" (10.100.0.1)".to_owned()],
                vec![
                    "the management address of network \"cluster_udn_l2-primary\" (10.100.0.2)"
                        .to_owned()
                ],
                vec!["the gateway of network \"cluster_udn_l2-primary\" (fd10:100::1)".to_owned()],
                vec![
                    "the management address of network \"cluster_udn_l2-primary\" (fd10:100::2)"
                        .to_owned()
                ],
                vec![],
                vec![],
            ]
        );
        assert_eq!(fixture("tenant-b", "l2-primary").addressing, nad.addressing);
    }

    #[test]
    fn ovn_primary_layer2_with_infrastructure_subnets_frees_the_first_addresses() {
        let nad = fixture("tenant-c", "preassigned");
        let r = rules(&nad);
        assert_eq!(
            r.reserved()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["10.50.0.16/28"]
        );
        assert_eq!(
            verdicts(
                &nad,
                &[
                    "10.50.0.1/24",
                    "10.50.0.2/24",
                    "10.50.0.17/24",
                    "10.50.0.254/24",
                    "10.50.0.249/24"
                ]
            ),
            [
                vec![],
                vec![],
                vec![],
                vec!["the gateway of network \"tenant-c_preassigned\" (10.50.0.254)".to_owned()],
                vec![
                    "in infrastructureSubnets of network \"tenant-c_preassigned\" (10.50.0.248/29)"
                        .to_owned()
                ],
            ]
        );
    }

    #[test]
    fn ovn_primary_layer2_gateway_defaults_per_family() {
        // defaultGatewayIPs for IPv4 only: the IPv6 subnet's gateway is its first address.
        let (_, addressing) = read(
            r#"{"name":"p","type":"ovn-k8s-cni-overlay","topology":"layer2","role":"primary","subnets":"10.0.0.0/24, fd00::/64","defaultGatewayIPs":"10.0.0.254"}"#,
        );
        let nad = Nad {
            namespace: "ns".into(),
            name: "p".into(),
            network: Some("p".into()),
            addressing,
            invalid: false,
        };
        let found = verdicts(
            &nad,
            &["10.0.0.1/24", "10.0.0.254/24", "fd00::1/64", "10.0.0.2/24"],
        );
        assert_eq!(found[0], Vec::<String>::new());
        assert!(found[1][0].starts_with("the gateway"));
        assert!(found[2][0].starts_with("the gateway"));
        assert!(found[3][0].starts_with("the management address"));
    }

    #[test]
    fn ovn_localnet_excludes_subnets_and_single_addresses() {
        let nad = fixture("vms", "physnet");
        assert_eq!(nad.network.as_deref(), Some("physnet-vlan10"));
        assert_eq!(
            verdicts(
                &nad,
                &[
                    "172.16.10.1/24",
                    "172.16.10.16/24",
                    "172.16.10.250/24",
                    "172.16.10.251/24"
                ]
            ),
            [
                vec!["in excludeSubnets of network \"physnet-vlan10\" (172.16.10.0/28)".to_owned()],
                vec![],
                vec!["in excludeSubnets of network \"physnet-vlan10\" (172.16.10.250)".to_owned()],
                vec![],
            ]
        );
    }

    #[test]
    fn ovn_without_persistent_ips_or_on_layer3_keeps_no_addresses() {
        assert_eq!(
            rules(&fixture("vms", "ephemeral")).persistence(),
            Persistence::NotAllowed
        );
        let l3 = fixture("ns3", "l3-network");
        let r = rules(&l3);
        assert_eq!(r.persistence(), Persistence::Layer3);
        // cidr/hostPrefix: the host prefix is cut off; no prefix length is demanded.
        assert_eq!(
            r.subnets().map(|s| s.to_string()).collect::<Vec<_>>(),
            ["10.128.0.0/16"]
        );
        assert_eq!(
            verdicts(&l3, &["10.128.5.9/24", "10.129.0.1/24"])[0],
            Vec::<String>::new()
        );
        assert_eq!(verdicts(&l3, &["10.129.0.1/24"])[0].len(), 1);
    }

    #[test]
    fn ovn_masks_host_bits_of_its_subnets() {
        let (_, addressing) = read(
            r#"{"name":"m","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.0.0.5/24","allowPersistentIPs":true}"#,
        );
        let Addressing::Ruled(r) = addressing else {
            panic!()
        };
        assert_eq!(
            r.subnets().map(|s| s.to_string()).collect::<Vec<_>>(),
            ["10.0.0.0/24"]
        );
    }

    #[test]
    fn whereabouts_range_with_host_bits_and_excludes() {
        let nad = fixture("ns4", "macvlan-wb");
        assert_eq!(nad.network.as_deref(), Some("whereabouts-conf"));
        assert_eq!(rules(&nad).plugin(), Plugin::Whereabouts);
        assert_eq!(rules(&nad).persistence(), Persistence::NotAllowed);
        assert_eq!(
            verdicts(
                &nad,
                &[
                    "192.168.2.226/28",
                    "192.168.2.229/28",
                    "192.168.2.236/28",
                    "192.168.2.237/28",
                    "192.168.2.240/28"
                ]
            ),
            [
                vec![],
                vec![
                    "in the excluded addresses of network \"whereabouts-conf\" (192.168.2.228/30)"
                        .to_owned()
                ],
                vec![
                    "in the excluded addresses of network \"whereabouts-conf\" (192.168.2.236)"
                        .to_owned()
                ],
                vec![],
                vec![
                    "not in the subnets of network \"whereabouts-conf\" (192.168.2.224/28)"
                        .to_owned()
                ],
            ]
        );
    }

    #[test]
    fn whereabouts_ip_ranges_with_start_end_and_excludes() {
        let nad = fixture("ns4", "macvlan-wb-ranges");
        assert_eq!(
            verdicts(&nad, &["192.168.10.10/24", "192.168.10.9/24", "192.168.10.100/24", "abcd::1/64", "abcd::2/64"]),
            [
                vec![],
                vec!["outside the address ranges of network \"whereabouts-dual\" (192.168.10.10-192.168.10.99)".to_owned()],
                vec!["outside the address ranges of network \"whereabouts-dual\" (192.168.10.10-192.168.10.99)".to_owned()],
                vec!["in the excluded addresses of network \"whereabouts-dual\" (abcd::1)".to_owned()],
                vec![],
            ]
        );
    }

    #[test]
    fn whereabouts_start_end_prefix_form() {
        let (_, addressing) = read(
            r#"{"name":"w","type":"macvlan","ipam":{"type":"whereabouts","range":"192.168.2.225-192.168.2.230/28"}}"#,
        );
        let Addressing::Ruled(r) = addressing else {
            panic!()
        };
        let subnet = r.subnets().next().unwrap();
        assert_eq!(subnet.to_string(), "192.168.2.224/28");
        assert_eq!(
            r.ranges(subnet)
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["192.168.2.225-192.168.2.230"]
        );
        // range_end alone: the start defaults to the first host.
        let (_, addressing) = read(
            r#"{"name":"w","type":"macvlan","ipam":{"type":"whereabouts","range":"10.0.0.0/24","range_end":"10.0.0.50"}}"#,
        );
        let Addressing::Ruled(r) = addressing else {
            panic!()
        };
        let subnet = r.subnets().next().unwrap();
        assert_eq!(
            r.ranges(subnet).unwrap()[0].to_string(),
            "10.0.0.1-10.0.0.50"
        );
    }

    #[test]
    fn host_local_range_sets_with_gateways() {
        let nad = fixture("ns5", "bridge-hl");
        assert_eq!(rules(&nad).plugin(), Plugin::HostLocal);
        let found = verdicts(
            &nad,
            &[
                "10.10.1.20/16",
                "10.10.3.50/16",
                "10.10.3.51/16",
                "10.10.0.254/16",
                "3ffe:ffff:0:1ff::10/64",
                "3ffe:ffff:0:1ff::21/64",
            ],
        );
        assert_eq!(found[0], Vec::<String>::new());
        assert_eq!(found[1], Vec::<String>::new());
        assert_eq!(
            found[2],
            ["outside the address ranges of network \"hostlocal-net\" (10.10.1.20-10.10.3.50)"]
        );
        assert_eq!(
            found[3],
            ["the gateway of network \"hostlocal-net\" (10.10.0.254)"]
        );
        assert_eq!(found[4], Vec::<String>::new());
        assert_eq!(found[5], ["outside the address ranges of network \"hostlocal-net\" (3ffe:ffff:0:1ff::10-3ffe:ffff:0:1ff::20)"]);
    }

    #[test]
    fn host_local_single_range_defaults() {
        // The keys directly under ipam; no gateway: the first address; no rangeEnd.
        let (_, addressing) = read(
            r#"{"name":"h","type":"bridge","ipam":{"type":"host-local","subnet":"10.1.0.0/24","rangeStart":"10.1.0.100"}}"#,
        );
        let nad = Nad {
            namespace: "ns".into(),
            name: "h".into(),
            network: Some("h".into()),
            addressing,
            invalid: false,
        };
        let found = verdicts(
            &nad,
            &[
                "10.1.0.1/24",
                "10.1.0.100/24",
                "10.1.0.254/24",
                "10.1.0.99/24",
            ],
        );
        assert_eq!(found[0], ["the gateway of network \"h\" (10.1.0.1)"]);
        assert_eq!(found[1], Vec::<String>::new());
        assert_eq!(found[2], Vec::<String>::new());
        assert_eq!(
            found[3],
            ["outside the address ranges of network \"h\" (10.1.0.100-10.1.0.254)"]
        );
    }

    #[test]
    fn host_local_refuses_a_subnet_with_host_bits() {
        let (_, addressing) = read(
            r#"{"name":"h","type":"bridge","ipam":{"type":"host-local","subnet":"10.1.0.5/24"}}"#,
        );
        assert_eq!(
            addressing,
            Addressing::Unruled("subnet: \"10.1.0.5/24\" has host bits set".into())
        );
    }

    #[test]
    fn other_plugins_are_known_without_rules() {
        let dhcp = fixture("ns6", "dhcp-net");
        assert_eq!(dhcp.network.as_deref(), Some("dhcp-net"));
        assert_eq!(
            dhcp.addressing,
            Addressing::Unruled("ipam type \"dhcp\"".into())
        );
        for (config, why) in [
            (
                r#"{"name":"a","type":"macvlan"}"#,
                "plugin \"macvlan\" has no ipam",
            ),
            (
                r#"{"name":"a","type":"macvlan","ipam":{"type":"static","addresses":[]}}"#,
                "ipam type \"static\"",
            ),
            (
                r#"{"name":"a","type":"ovn-k8s-cni-overlay","topology":"layer2"}"#,
                "no subnets",
            ),
            (
                r#"{"name":"a","type":"ovn-k8s-cni-overlay","subnets":"10.0.0.0/8"}"#,
                "no topology",
            ),
            (
                r#"{"name":"a","type":"ovn-k8s-cni-overlay","topology":"layer9","subnets":"10.0.0.0/8"}"#,
                "topology \"layer9\"",
            ),
            (
                r#"{"name":"a","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.0.0.0/33"}"#,
                "subnets: \"10.0.0.0/33\" is invalid",
            ),
            (
                r#"{"name":"a","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":["10.0.0.0/8"]}"#,
                "subnets is not a string",
            ),
            (
                r#"{"name":"a","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.0.0.0/8","allowPersistentIPs":"yes"}"#,
                "allowPersistentIPs is not a boolean",
            ),
            (
                r#"{"name":"a","type":"macvlan","ipam":{"type":"whereabouts","range":"10.0.0.0/24","range_start":"10.0.1.1"}}"#,
                "range_start: \"10.0.1.1\" is outside its subnet",
            ),
            (
                r#"{"name":"a","type":"macvlan","ipam":{"type":"whereabouts"}}"#,
                "no subnets",
            ),
            (
                r#"{"name":"a","plugins":[{"type":"tuning"}]}"#,
                "no plugin with ipam",
            ),
            (r#"[1,2]"#, "config is not a JSON object"),
            ("", "no config"),
        ] {
            assert_eq!(read(config).1, Addressing::Unruled(why.into()), "{config}");
        }
    }

    #[test]
    fn a_broken_config_still_names_its_network_when_it_can() {
        let broken = fixture("ns8", "broken");
        assert_eq!(broken.network.as_deref(), Some("broken-net"));
        assert_eq!(
            broken.addressing,
            Addressing::Unruled("config is not valid JSON".into())
        );
        assert_eq!(read(r#"{"type":"x","subnets":"#).0, None);
        assert_eq!(read(r#"{"name":7,"#).0, None);
        assert_eq!(read("not json").0, None);
    }

    #[test]
    fn a_conflist_is_read_through_its_first_plugin_with_ipam() {
        let (network, addressing) = read(
            r#"{"cniVersion":"1.0.0","name":"list","plugins":[{"type":"tuning"},{"type":"macvlan","ipam":{"type":"host-local","subnet":"10.2.0.0/24"}},{"type":"bridge","ipam":{"type":"dhcp"}}]}"#,
        );
        assert_eq!(network.as_deref(), Some("list"));
        let Addressing::Ruled(r) = addressing else {
            panic!("{addressing:?}")
        };
        assert_eq!(r.plugin(), Plugin::HostLocal);
    }

    #[test]
    fn reads_a_nad_object_leniently() {
        let object = serde_json::json!({
            "metadata": {"name": "n", "namespace": "ns"},
            "spec": {"config": "{\"name\":\"x\",\"type\":\"macvlan\"}"}
        });
        let nad = Nad::from_object(&object).unwrap();
        assert_eq!(
            (
                nad.namespace.as_str(),
                nad.name.as_str(),
                nad.network.as_deref()
            ),
            ("ns", "n", Some("x"))
        );
        let odd = serde_json::json!({"metadata": {"name": "n"}, "spec": {"config": 7}});
        assert_eq!(Nad::from_object(&odd).unwrap().network, None);
        assert!(Nad::from_object(&serde_json::json!({"metadata": {}})).is_none());
    }

    #[test]
    fn a_config_with_too_many_ranges_is_not_checked() {
        // 600 subnets and 600 excluded addresses: more than the cap, however cheap each.
        let subnets: Vec<String> = (0..600)
            .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
            .collect();
        let excludes: Vec<String> = (0..600).map(|i| format!("10.0.0.{}/32", i % 256)).collect();
        let config = format!(
            r#"{{"name":"big","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"{}","excludeSubnets":"{}"}}"#,
            subnets.join(","),
            excludes.join(",")
        );
        assert_eq!(
            read(&config).1,
            Addressing::Unruled("more than 1024 subnets and ranges".into())
        );
        let config = format!(
            r#"{{"name":"ok","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"{}"}}"#,
            subnets.join(",")
        );
        assert!(matches!(read(&config).1, Addressing::Ruled(_)));
    }

    #[test]
    fn long_values_are_cut_short_in_reasons() {
        let long = "x".repeat(200);
        let (_, addressing) = read(&format!(
            r#"{{"name":"a","type":"macvlan","ipam":{{"type":"{long}"}}}}"#
        ));
        let Addressing::Unruled(why) = addressing else {
            panic!()
        };
        assert!(why.len() < 50, "{why}");
    }
}
