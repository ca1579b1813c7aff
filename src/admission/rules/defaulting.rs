//! Defaulting for `/mutate`: the smallest RFC 6902 JSON Patch that applies the defaults.
//!
//! The patch is computed from the object as the request carried it and touches only the
//! paths it defaults, so fields the types do not model are never dropped or rewritten. Its
//! operations are written as `json-patch` writes its own (`{"op","path","value"}`, paths
//! escaped by its `jsonptr`), and a list rewritten whole is written item by item from the
//! request's text: the patch holds no copy of the list.

use std::borrow::Cow;
use std::sync::Arc;

use json_patch::jsonptr::PointerBuf;
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use crate::admission::json::{Canonical, Kind, Raw};
use crate::admission::model::view::{Claim, Field, List};
use crate::admission::rules::conflicts::network_of;
use crate::admission::rules::ip::{self, Address, AddressError};
use crate::admission::rules::networks::{Network, Networks};
use crate::admission::rules::object::{is_dns1123_subdomain, is_qualified_name_part};

/// Longest label value, and longest name part of a label key.
const LABEL_MAX: usize = 63;
/// Longest prefix of a label key.
const LABEL_PREFIX_MAX: usize = 253;
/// Most addresses of one list rewritten one `replace` each; beyond, the list is replaced
/// whole, so that the patch stays about as long as the list instead of ten times longer.
pub const MAX_ITEM_OPERATIONS: usize = 100;

/// The opt-in defaults (both off unless configured).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    /// `--default-interface`: fills a missing or empty `spec.interface` on CREATE.
    pub default_interface: Option<String>,
    /// `--network-label`: sets this label to `spec.network` when that is a valid label value.
    pub network_label: Option<String>,
}

/// A default that cannot be configured as given; refused at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DefaultsError {
    /// The `--network-label` key is not a valid label key.
    #[error("--network-label {key:?} is not a valid label key: {reason}")]
    LabelKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The `--default-interface` name is not a valid interface name.
    #[error("--default-interface {name:?} is not a valid interface name (1 to 15 bytes, not . or .., no /, : or whitespace)")]
    Interface {
        /// The name as given.
        name: String,
    },
}

// === impl Defaults ===

impl Defaults {
    /// Checks the configured defaults, so that a bad flag stops start-up instead of producing
    /// patches the API server or validation would refuse.
    pub fn check(&self) -> Result<(), DefaultsError> {
        if let Some(key) = &self.network_label {
            check_label_key(key).map_err(|reason| DefaultsError::LabelKey {
                key: key.clone(),
                reason,
            })?;
        }
        if let Some(name) = &self.default_interface {
            let bad = name.is_empty()
                || name.len() > 15
                || name == "."
                || name == ".."
                || name
                    .chars()
                    .any(|c| c == '/' || c == ':' || c.is_whitespace());
            if bad {
                return Err(DefaultsError::Interface { name: name.clone() });
            }
        }
        Ok(())
    }
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of at most 63 characters.
fn check_label_key(key: &str) -> Result<(), &'static str> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > LABEL_PREFIX_MAX || !is_dns1123_subdomain(prefix)
            {
                return Err(
                    "the prefix must be a lowercase DNS subdomain of at most 253 characters",
                );
            }
            name
        }
        None => key,
    };
    if name.is_empty() || name.len() > LABEL_MAX || !is_qualified_name_part(name) {
        return Err("the name must be 1 to 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character");
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of the qualified-name alphabet.
fn is_label_value(value: &str) -> bool {
    value.is_empty() || (value.len() <= LABEL_MAX && is_qualified_name_part(value))
}

/// One operation of the patch, serialised as `json-patch` serialises its `PatchOperation`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Operation<'a> {
    /// `add`.
    Add {
        /// Where.
        path: PointerBuf,
        /// What.
        value: PatchValue<'a>,
    },
    /// `replace`.
    Replace {
        /// Where.
        path: PointerBuf,
        /// What.
        value: PatchValue<'a>,
    },
}

/// The value of an operation.
#[derive(Clone, Debug, PartialEq)]
pub enum PatchValue<'a> {
    /// A string.
    Str(Cow<'a, str>),
    /// `[]`.
    EmptyList,
    /// `{key: value}`: labels with one label.
    Labels(&'a str, Cow<'a, str>),
    /// An address list with each valid but non-canonical address in canonical form, each bare
    /// address of the network (when one is given) completed with its subnet's prefix length,
    /// and every other item as it was.
    Canonical(List<'a>, Option<Arc<Network>>),
}

// === impl Operation ===

impl Operation<'_> {
    /// Where the operation applies.
    pub fn path(&self) -> &PointerBuf {
        match self {
            Operation::Add { path, .. } | Operation::Replace { path, .. } => path,
        }
    }
}

impl Serialize for PatchValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            PatchValue::Str(s) => serializer.serialize_str(s),
            PatchValue::EmptyList => serializer.serialize_seq(Some(0))?.end(),
            PatchValue::Labels(key, value) => {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(key, value)?;
                map.end()
            }
            PatchValue::Canonical(list, network) => {
                let mut seq = serializer.serialize_seq(Some(list.len))?;
                let mut subnets = Subnets::Found(network.clone());
                for item in list.items() {
                    match rewrite(item, &mut subnets) {
                        Some(canonical) => seq.serialize_element(&canonical)?,
                        None => seq.serialize_element(&Canonical::new(item))?,
                    }
                }
                seq.end()
            }
        }
    }
}

/// The network whose subnets complete a bare address (`--check-networks`, DESIGN §10), looked
/// up only once a list holds a bare address: most reviews hold none, and cost no lookup.
enum Subnets<'a, 'n> {
    /// Not looked up yet: the lookup, and the object's `spec.network`.
    Unlooked(&'n dyn Networks, Cow<'a, str>),
    /// Looked up (or nothing to look up): the network, if it is known.
    Found(Option<Arc<Network>>),
}

// === impl Subnets ===

impl<'a, 'n> Subnets<'a, 'n> {
    /// For `object`, with `networks` when the flag is on (without it, not even the network's
    /// name is read).
    fn of(object: &Claim<'a>, networks: Option<&'n dyn Networks>) -> Self {
        let Some(networks) = networks else {
            return Subnets::Found(None);
        };
        match network_of(object) {
            Some(name) => Subnets::Unlooked(networks, name),
            None => Subnets::Found(None),
        }
    }

    /// The network, looked up the first time.
    fn network(&mut self) -> Option<&Arc<Network>> {
        if let Subnets::Unlooked(networks, name) = self {
            *self = Subnets::Found(networks.network(name));
        }
        match self {
            Subnets::Found(network) => network.as_ref(),
            Subnets::Unlooked(..) => None,
        }
    }
}

/// The text an item of an address list is rewritten to, if any: a valid address not written
/// canonically in canonical form; with a known network, a bare address (no `/`) completed
/// with its subnet's prefix length (`10.200.0.5` → `10.200.0.5/24`), in canonical form too.
/// Never an ambiguous or invalid value, nor a bare address whose subnet no rule says.
fn rewrite(item: Raw<'_>, subnets: &mut Subnets<'_, '_>) -> Option<String> {
    let text = item.as_str()?.decode();
    let (address, canonical) = match ip::parse(&text) {
        Ok(address) => (address, true),
        Err(AddressError::NotCanonical { canonical }) => (canonical, false),
        Err(_) => return None,
    };
    let completed = match address.prefix {
        None => subnets
            .network()
            .and_then(|n| n.subnet_prefix(address.ip))
            .map(|prefix| Address {
                prefix: Some(prefix),
                ..address
            }),
        Some(_) => None,
    };
    match completed {
        Some(completed) => Some(completed.to_string()),
        None => (!canonical).then(|| address.to_string()),
    }
}

/// The patch operations that default `object`; empty when nothing changes.
///
/// `create` is true on CREATE (the only operation where `spec` may still be filled in).
/// `networks` (with `--check-networks`) completes bare addresses of a known network.
pub fn patch<'a>(
    object: &Claim<'a>,
    create: bool,
    defaults: &'a Defaults,
    networks: Option<&dyn Networks>,
) -> Vec<Operation<'a>> {
    let mut ops = Vec::new();
    if object.raw.kind != Kind::Object {
        return ops;
    }
    let spec = object.spec.value();
    let mut subnets = Subnets::of(object, networks);

    if create {
        if let (Some(spec), Some(name)) = (spec, &defaults.default_interface) {
            let value = || PatchValue::Str(Cow::Borrowed(name.as_str()));
            // Empty is what KubeVirt's IPAM controller sends for "not set" (DESIGN §1): an
            // operator who asks for a default interface expects it there too.
            match spec.interface {
                Field::Absent => ops.push(add(&["spec", "interface"], value())),
                Field::Null => ops.push(replace(&["spec", "interface"], value())),
                Field::Value(interface) if interface.is("") => {
                    ops.push(replace(&["spec", "interface"], value()))
                }
                Field::Value(_) | Field::Other(_) => {}
            }
        }
        if let Some(Field::Value(requests)) = spec.map(|s| s.ip_requests) {
            canonicalise(requests, "spec", "ipRequests", &mut subnets, &mut ops);
        }
    }

    if let Some(key) = &defaults.network_label {
        if let Some(network) = spec.and_then(|s| s.network.str()) {
            label(object, key, network.decode(), &mut ops);
        }
    }

    // The API server drops `status` from a CREATE of a resource with a status subresource
    // after the mutating webhooks ran: a patch there would change nothing but its own length.
    // Status is defaulted on the `ipamclaims/status` UPDATEs that write it.
    if let (false, Field::Value(status)) = (create, object.status) {
        match status.ips {
            Field::Absent => ops.push(add(&["status", "ips"], PatchValue::EmptyList)),
            Field::Null => ops.push(replace(&["status", "ips"], PatchValue::EmptyList)),
            Field::Value(ips) => canonicalise(ips, "status", "ips", &mut subnets, &mut ops),
            Field::Other(_) => {}
        }
    }
    ops
}

/// Rewrites each valid but non-canonical address of a list to its canonical text, and (with
/// a known network) completes each bare address with its subnet's prefix length (see
/// [`rewrite`]). Ambiguous values (leading zeros, IPv4-mapped) and invalid ones are left for
/// validation to reject: the webhook does not guess.
///
/// One `replace` per address, or, for more than [`MAX_ITEM_OPERATIONS`] of them, one of the
/// whole list with those addresses rewritten and every other item as it was.
fn canonicalise<'a>(
    items: List<'a>,
    parent: &str,
    field: &str,
    subnets: &mut Subnets<'_, '_>,
    ops: &mut Vec<Operation<'a>>,
) {
    let mut rewrites: Vec<(usize, String)> = Vec::new();
    for (i, item) in items.items().enumerate() {
        if let Some(canonical) = rewrite(item, subnets) {
            if rewrites.len() == MAX_ITEM_OPERATIONS {
                let network = subnets.network().cloned();
                let value = PatchValue::Canonical(items, network);
                ops.push(replace(&[parent, field], value));
                return;
            }
            rewrites.push((i, canonical));
        }
    }
    for (i, canonical) in rewrites {
        let index = i.to_string();
        let value = PatchValue::Str(Cow::Owned(canonical));
        ops.push(replace(&[parent, field, &index], value));
    }
}

/// Sets label `key` to `network` when that is a valid label value and not already set.
fn label<'a>(
    object: &Claim<'a>,
    key: &'a str,
    network: Cow<'a, str>,
    ops: &mut Vec<Operation<'a>>,
) {
    if !is_label_value(&network) {
        return;
    }
    // A review always carries metadata; without it there is nowhere sane to add a label.
    let Some(metadata) = object.metadata.value() else {
        return;
    };
    match metadata.labels {
        Field::Absent => ops.push(add(
            &["metadata", "labels"],
            PatchValue::Labels(key, network),
        )),
        Field::Null => ops.push(replace(
            &["metadata", "labels"],
            PatchValue::Labels(key, network),
        )),
        Field::Value(labels) => match labels.member(key) {
            Some(current) if current.as_str().is_some_and(|c| c.is(&network)) => {}
            Some(_) => ops.push(replace(
                &["metadata", "labels", key],
                PatchValue::Str(network),
            )),
            None => ops.push(add(&["metadata", "labels", key], PatchValue::Str(network))),
        },
        Field::Other(_) => {}
    }
}

fn pointer(tokens: &[&str]) -> PointerBuf {
    // from_tokens escapes `~` and `/` in each token (`~0`, `~1`).
    PointerBuf::from_tokens(tokens.iter().copied())
}

fn add<'a>(tokens: &[&str], value: PatchValue<'a>) -> Operation<'a> {
    Operation::Add {
        path: pointer(tokens),
        value,
    }
}

fn replace<'a>(tokens: &[&str], value: PatchValue<'a>) -> Operation<'a> {
    Operation::Replace {
        path: pointer(tokens),
        value,
    }
}

/// Whether every operation of `ops` applies to `object` as RFC 6902 requires: the parent of
/// an `add` is an object, the target of a `replace` exists (an item: within its list). It
/// resolves each path against what the walk kept of the object, independently of how the
/// operations were made: a patch that does not apply is a bug, refused rather than sent.
pub fn applies(ops: &[Operation<'_>], object: &Claim<'_>) -> bool {
    ops.iter().all(|op| {
        let tokens: Vec<Cow<'_, str>> = op
            .path()
            .tokens()
            .map(|t| t.decoded().into_owned().into())
            .collect();
        let tokens: Vec<&str> = tokens.iter().map(Cow::as_ref).collect();
        match op {
            Operation::Add { .. } => match tokens.split_last() {
                Some((_, parent)) => resolve(object, parent) == Target::Object,
                None => false,
            },
            Operation::Replace { .. } => resolve(object, &tokens) != Target::Missing,
        }
    })
}

/// What a JSON pointer names in an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// Nothing.
    Missing,
    /// An object.
    Object,
    /// Some other value (`null` included).
    Value,
}

/// What the pointer `tokens` names in `object`, as far as the walk kept it.
fn resolve(object: &Claim<'_>, tokens: &[&str]) -> Target {
    fn of<T>(field: Option<&Field<'_, T>>, is_object: bool) -> Target {
        match field {
            None | Some(Field::Absent) => Target::Missing,
            Some(Field::Value(_)) if is_object => Target::Object,
            Some(Field::Other(raw)) if raw.kind == Kind::Object => Target::Object,
            Some(_) => Target::Value,
        }
    }
    fn item(list: Option<&Field<'_, List<'_>>>, index: &str) -> Target {
        match (list.and_then(Field::value), index.parse::<usize>()) {
            (Some(list), Ok(i)) if i < list.len => Target::Value,
            _ => Target::Missing,
        }
    }
    if object.raw.kind != Kind::Object {
        return Target::Missing;
    }
    let metadata = object.metadata.value();
    let spec = object.spec.value();
    let status = object.status.value();
    match tokens {
        [] => Target::Object,
        ["metadata"] => of(Some(&object.metadata), true),
        ["metadata", "labels"] => of(metadata.map(|m| &m.labels), true),
        ["metadata", "labels", key] => {
            match metadata
                .and_then(|m| m.labels.value())
                .and_then(|l| l.member(key))
            {
                Some(value) if value.kind == Kind::Object => Target::Object,
                Some(_) => Target::Value,
                None => Target::Missing,
            }
        }
        ["spec"] => of(Some(&object.spec), true),
        ["spec", "interface"] => of(spec.map(|s| &s.interface), false),
        ["spec", "ipRequests"] => of(spec.map(|s| &s.ip_requests), false),
        ["spec", "ipRequests", i] => item(spec.map(|s| &s.ip_requests), i),
        ["status"] => of(Some(&object.status), true),
        ["status", "ips"] => of(status.map(|s| &s.ips), false),
        ["status", "ips", i] => item(status.map(|s| &s.ips), i),
        _ => Target::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::model::view::testing;
    use crate::admission::rules::testing::{layer2, FixedNetworks};
    use json_patch::PatchOperation;
    use serde_json::{json, Value};

    /// The patch of `object`, as `json-patch` reads it back; checked to apply to the view the
    /// patch was made from.
    fn patch(object: &Value, create: bool, defaults: &Defaults) -> Vec<PatchOperation> {
        patch_with(object, create, defaults, None)
    }

    /// As [`patch`], with `--check-networks` given `networks`.
    fn patch_with(
        object: &Value,
        create: bool,
        defaults: &Defaults,
        networks: Option<&dyn Networks>,
    ) -> Vec<PatchOperation> {
        let claim = testing::claim(object);
        let ops = super::patch(&claim, create, defaults, networks);
        assert!(applies(&ops, &claim), "the patch applies to its object");
        serde_json::from_value(ops_json(&ops)).expect("json-patch reads the patch")
    }

    fn claim() -> Value {
        json!({
            "apiVersion": "k8s.cni.cncf.io/v1alpha1",
            "kind": "IPAMClaim",
            "metadata": {"name": "vm-a.tenantred", "namespace": "ns1", "labels": {"app": "vm-a"}},
            "spec": {"network": "tenantred", "interface": "pod16367aacb67"},
            "status": {"ips": ["10.128.20.8/24", "fd10:128:20::8/64"]}
        })
    }

    fn ops_json<T: Serialize>(ops: &[T]) -> Value {
        serde_json::to_value(ops).expect("patch serialises")
    }

    fn applied(object: &Value, ops: &[PatchOperation]) -> Value {
        let mut doc = object.clone();
        json_patch::patch(&mut doc, ops).expect("patch applies");
        doc
    }

    #[test]
    fn leaves_a_canonical_claim_alone() {
        assert!(patch(&claim(), true, &Defaults::default()).is_empty());
    }

    #[test]
    fn canonicalises_ipv6_with_one_replace_per_item() {
        let mut c = claim();
        c["status"]["ips"] = json!(["10.128.20.8/24", "FD10:128:20:0:0:0:0:8/64"]);
        let ops = patch(&c, false, &Defaults::default());
        assert_eq!(
            ops_json(&ops),
            json!([{"op": "replace", "path": "/status/ips/1", "value": "fd10:128:20::8/64"}])
        );
    }

    #[test]
    fn replaces_a_long_list_whole_rather_than_item_by_item() {
        let spelled = |i: usize| format!("2001:DB8::{:x}", i + 1);
        let mut c = claim();
        let many: Vec<Value> = (0..=MAX_ITEM_OPERATIONS)
            .map(|i| json!(spelled(i)))
            .chain([json!("winner"), json!(5)])
            .collect();
        c["status"]["ips"] = Value::Array(many.clone());
        let ops = patch(&c, false, &Defaults::default());
        assert_eq!(ops.len(), 1, "one operation for the whole list");
        let mut expected: Vec<Value> = (0..=MAX_ITEM_OPERATIONS)
            .map(|i| json!(format!("2001:db8::{:x}", i + 1)))
            .collect();
        expected.extend([json!("winner"), json!(5)]);
        assert_eq!(
            ops_json(&ops),
            json!([{"op": "replace", "path": "/status/ips", "value": expected}])
        );
        let patched = applied(&c, &ops);
        assert!(
            patch(&patched, false, &Defaults::default()).is_empty(),
            "idempotent"
        );
        let whole = serde_json::to_vec(&ops).unwrap().len();
        let list = serde_json::to_vec(&many).unwrap().len();
        assert!(
            whole < list + 64,
            "patch {whole} bytes for a list of {list}"
        );

        // Up to the limit, item by item.
        c["status"]["ips"] = Value::Array(many[..MAX_ITEM_OPERATIONS].to_vec());
        assert_eq!(
            patch(&c, false, &Defaults::default()).len(),
            MAX_ITEM_OPERATIONS
        );
    }

    #[test]
    fn leaves_ambiguous_and_invalid_addresses_for_validation() {
        let mut c = claim();
        c["status"]["ips"] = json!(["010.1.2.3", "::ffff:1.2.3.4", "winner", 5]);
        assert!(patch(&c, false, &Defaults::default()).is_empty());
    }

    #[test]
    fn adds_empty_ips_to_a_status_without_them() {
        let mut c = claim();
        c["status"] = json!({"ownerPod": {"name": "p"}});
        let ops = patch(&c, false, &Defaults::default());
        assert_eq!(
            ops_json(&ops),
            json!([{"op": "add", "path": "/status/ips", "value": []}])
        );
    }

    #[test]
    fn canonicalises_ip_requests_on_create_only() {
        let mut c = claim();
        c["spec"]["ipRequests"] = json!(["2001:DB8::5/64"]);
        assert_eq!(patch(&c, true, &Defaults::default()).len(), 1);
        assert!(patch(&c, false, &Defaults::default()).is_empty());
    }

    #[test]
    fn fills_missing_interface_on_create_when_configured() {
        let mut c = claim();
        c["spec"].as_object_mut().unwrap().remove("interface");
        let d = Defaults {
            default_interface: Some("net1".into()),
            ..Defaults::default()
        };
        assert_eq!(
            ops_json(&patch(&c, true, &d)),
            json!([{"op": "add", "path": "/spec/interface", "value": "net1"}])
        );
        assert!(patch(&c, false, &d).is_empty(), "never on UPDATE");
        assert!(
            patch(&c, true, &Defaults::default()).is_empty(),
            "off by default"
        );
    }

    #[test]
    fn fills_empty_interface_on_create_when_configured() {
        let mut c = claim();
        c["spec"]["interface"] = json!("");
        let d = Defaults {
            default_interface: Some("net1".into()),
            ..Defaults::default()
        };
        assert_eq!(
            ops_json(&patch(&c, true, &d)),
            json!([{"op": "replace", "path": "/spec/interface", "value": "net1"}])
        );
        assert!(patch(&c, false, &d).is_empty(), "never on UPDATE");
        assert!(
            patch(&c, true, &Defaults::default()).is_empty(),
            "off by default: empty is valid"
        );
    }

    /// Regression (issue 26): the API server drops `status` on CREATE after the mutating
    /// webhooks ran, so KubeVirt's `"status":{"ips":null}` gets no patch at all.
    #[test]
    fn patches_nothing_under_status_on_create() {
        for status in [
            json!({"ips": null}),
            json!({"ips": null, "ownerPod": {"name": ""}}),
            json!({}),
            json!({"ips": ["FD10:128:20:0:0:0:0:8/64"]}),
        ] {
            let mut c = claim();
            c["status"] = status.clone();
            assert!(patch(&c, true, &Defaults::default()).is_empty(), "{status}");
            assert!(
                !patch(&c, false, &Defaults::default()).is_empty(),
                "{status}"
            );
        }
    }

    #[test]
    fn sets_network_label_with_escaped_key() {
        let d = Defaults {
            network_label: Some("k8s.cni.cncf.io/network".into()),
            ..Defaults::default()
        };
        let ops = patch(&claim(), true, &d);
        assert_eq!(
            ops_json(&ops),
            json!([{"op": "add", "path": "/metadata/labels/k8s.cni.cncf.io~1network", "value": "tenantred"}])
        );
        let patched = applied(&claim(), &ops);
        assert_eq!(
            patched["metadata"]["labels"]["k8s.cni.cncf.io/network"],
            "tenantred"
        );
        assert!(patch(&patched, true, &d).is_empty(), "idempotent");
    }

    #[test]
    fn escapes_tilde_in_label_keys() {
        let mut c = claim();
        c["metadata"]["labels"] = json!({});
        let ops = vec![add(
            &["metadata", "labels", "a~b/c"],
            PatchValue::Str("x".into()),
        )];
        assert_eq!(ops_json(&ops)[0]["path"], "/metadata/labels/a~0b~1c");
    }

    #[test]
    fn adds_labels_map_when_missing() {
        let mut c = claim();
        c["metadata"].as_object_mut().unwrap().remove("labels");
        let d = Defaults {
            network_label: Some("network".into()),
            ..Defaults::default()
        };
        let ops = patch(&c, true, &d);
        assert_eq!(
            ops_json(&ops),
            json!([{"op": "add", "path": "/metadata/labels", "value": {"network": "tenantred"}}])
        );
    }

    #[test]
    fn skips_network_label_when_network_is_not_a_label_value() {
        let mut c = claim();
        c["spec"]["network"] = json!("net.");
        let d = Defaults {
            network_label: Some("network".into()),
            ..Defaults::default()
        };
        assert!(patch(&c, true, &d).is_empty());
        c["spec"]["network"] = json!("n".repeat(64));
        assert!(patch(&c, true, &d).is_empty());
    }

    #[test]
    fn replaces_a_stale_network_label() {
        let mut c = claim();
        c["metadata"]["labels"]["network"] = json!("old");
        let d = Defaults {
            network_label: Some("network".into()),
            ..Defaults::default()
        };
        assert_eq!(
            ops_json(&patch(&c, false, &d)),
            json!([{"op": "replace", "path": "/metadata/labels/network", "value": "tenantred"}])
        );
    }

    #[test]
    fn keeps_fields_the_types_do_not_model() {
        let mut c = claim();
        c["metadata"]["annotations"] = json!({"example.com/unknown": "kept"});
        c["status"]["futureField"] = json!({"nested": [1, 2]});
        c["status"]["ips"] = json!(["2001:DB8::1"]);
        let patched = applied(&c, &patch(&c, false, &Defaults::default()));
        assert_eq!(patched["status"]["futureField"], c["status"]["futureField"]);
        assert_eq!(
            patched["metadata"]["annotations"],
            c["metadata"]["annotations"]
        );
        assert_eq!(patched["status"]["ips"], json!(["2001:db8::1"]));
    }

    #[test]
    fn refuses_bad_label_keys_and_interfaces_at_start_up() {
        for bad in [
            "",
            "-a",
            "a/",
            "/a",
            "A_/b",
            "Example.com/a",
            &"a".repeat(64),
        ] {
            let d = Defaults {
                network_label: Some(bad.to_string()),
                ..Defaults::default()
            };
            assert!(d.check().is_err(), "{bad:?}");
        }
        for good in ["network", "k8s.cni.cncf.io/network", "a.b_c-d"] {
            let d = Defaults {
                network_label: Some(good.to_string()),
                ..Defaults::default()
            };
            assert_eq!(d.check(), Ok(()), "{good:?}");
        }
        for bad in ["", ".", "eth:0", "a very long interface name"] {
            let d = Defaults {
                default_interface: Some(bad.to_string()),
                ..Defaults::default()
            };
            assert!(d.check().is_err(), "{bad:?}");
        }
    }

    /// tenantred (10.128.20.0/24, fd10:128:20::/64) as `--check-networks` knows it.
    fn tenantred() -> FixedNetworks {
        FixedNetworks(vec![layer2(
            "tenantred",
            &["ns1"],
            &["10.128.20.0/24", "fd10:128:20::/64"],
            &[],
        )])
    }

    #[test]
    fn completes_a_bare_address_of_a_known_network_with_its_subnets_prefix() {
        let networks = tenantred();
        let mut c = claim();
        c["status"]["ips"] = json!(["10.128.20.5", "FD10:128:20::5", "fd10:128:20::6/64"]);
        let ops = patch_with(&c, false, &Defaults::default(), Some(&networks));
        assert_eq!(
            ops_json(&ops),
            json!([
                {"op": "replace", "path": "/status/ips/0", "value": "10.128.20.5/24"},
                {"op": "replace", "path": "/status/ips/1", "value": "fd10:128:20::5/64"},
            ])
        );
        let patched = applied(&c, &ops);
        assert!(
            patch_with(&patched, false, &Defaults::default(), Some(&networks)).is_empty(),
            "idempotent"
        );
        // Without the flag, a bare address is left for validation to refuse; a non-canonical
        // one is still made canonical, bare.
        assert_eq!(
            ops_json(&patch(&c, false, &Defaults::default())),
            json!([{"op": "replace", "path": "/status/ips/1", "value": "fd10:128:20::5"}])
        );
    }

    #[test]
    fn completes_ip_requests_on_create_and_never_status_on_create() {
        let networks = tenantred();
        let mut c = claim();
        c["spec"]["ipRequests"] = json!(["10.128.20.5"]);
        c["status"]["ips"] = json!(["10.128.20.6"]);
        assert_eq!(
            ops_json(&patch_with(&c, true, &Defaults::default(), Some(&networks))),
            json!([{"op": "replace", "path": "/spec/ipRequests/0", "value": "10.128.20.5/24"}])
        );
        // On UPDATE the spec is immutable: only status.
        assert_eq!(
            ops_json(&patch_with(
                &c,
                false,
                &Defaults::default(),
                Some(&networks)
            )),
            json!([{"op": "replace", "path": "/status/ips/0", "value": "10.128.20.6/24"}])
        );
    }

    #[test]
    fn never_completes_what_no_rule_says() {
        let mut disagree = tenantred();
        disagree.0.push(std::sync::Arc::new(Network::new(
            "tenantyellow".into(),
            vec!["ns1".into(), "ns7".into()],
            crate::admission::rules::networks::Definitions::Disagree,
        )));
        for (network, ips) in [
            // Outside every subnet, ambiguous, invalid, and already with a prefix length.
            (
                "tenantred",
                json!(["10.9.0.5", "010.128.20.5", "winner", "10.128.20.5/16"]),
            ),
            // A network no NAD defines, and one whose NADs disagree.
            ("blue", json!(["10.128.20.5"])),
            ("tenantyellow", json!(["10.128.20.5"])),
        ] {
            let mut c = claim();
            c["spec"]["network"] = json!(network);
            c["status"]["ips"] = ips.clone();
            assert!(
                patch_with(&c, false, &Defaults::default(), Some(&disagree)).is_empty(),
                "{network} {ips}"
            );
        }
    }

    /// A lookup that counts how often it is asked.
    #[derive(Debug, Default)]
    struct Counting(std::sync::atomic::AtomicUsize, FixedNetworks);

    impl Networks for Counting {
        fn network(&self, name: &str) -> Option<std::sync::Arc<Network>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.1.network(name)
        }
    }

    #[test]
    fn looks_a_network_up_only_for_a_bare_address_and_once() {
        let counting = Counting(Default::default(), tenantred());
        let lookups = || counting.0.load(std::sync::atomic::Ordering::Relaxed);
        assert!(patch_with(&claim(), false, &Defaults::default(), Some(&counting)).is_empty());
        assert_eq!(lookups(), 0, "every address has its prefix length");
        let mut c = claim();
        c["status"]["ips"] = json!(["10.128.20.5", "fd10:128:20::5"]);
        assert_eq!(
            patch_with(&c, false, &Defaults::default(), Some(&counting)).len(),
            2
        );
        assert_eq!(lookups(), 1);
    }

    #[test]
    fn completes_bare_addresses_in_a_list_replaced_whole() {
        let networks = tenantred();
        let mut c = claim();
        let many: Vec<Value> = (0..=MAX_ITEM_OPERATIONS)
            .map(|i| json!(format!("fd10:128:20::{:x}", i + 1)))
            .collect();
        c["status"]["ips"] = Value::Array(many);
        let ops = patch_with(&c, false, &Defaults::default(), Some(&networks));
        assert_eq!(ops.len(), 1, "one operation for the whole list");
        let expected: Vec<Value> = (0..=MAX_ITEM_OPERATIONS)
            .map(|i| json!(format!("fd10:128:20::{:x}/64", i + 1)))
            .collect();
        assert_eq!(
            ops_json(&ops),
            json!([{"op": "replace", "path": "/status/ips", "value": expected}])
        );
        let patched = applied(&c, &ops);
        assert!(patch_with(&patched, false, &Defaults::default(), Some(&networks)).is_empty());
    }

    #[test]
    fn applies_refuses_a_patch_whose_target_is_missing() {
        let mut c = claim();
        c["metadata"].as_object_mut().unwrap().remove("labels");
        let claim = testing::claim(&c);
        let ok = [replace(
            &["status", "ips", "1"],
            PatchValue::Str("x".into()),
        )];
        assert!(applies(&ok, &claim));
        for bad in [
            replace(&["status", "ips", "2"], PatchValue::Str("x".into())),
            replace(&["status", "ips", "-"], PatchValue::Str("x".into())),
            add(&["metadata", "labels", "a"], PatchValue::Str("x".into())),
            replace(&["spec", "ipRequests"], PatchValue::EmptyList),
            add(&["spec", "interface", "x"], PatchValue::EmptyList),
        ] {
            assert!(!applies(std::slice::from_ref(&bad), &claim), "{bad:?}");
        }
    }
}
