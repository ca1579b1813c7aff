//! Helpers of the rules' unit tests: a typical claim as JSON, edited by JSON pointer, and the
#![cfg(test)]
//! rules run over it through the views the walk makes of JSON text.

use serde_json::{json, Value};

use crate::admission::answer::field::ErrorList;
use crate::admission::model::view::testing;
use crate::admission::rules::networks::{
    Addressing, Cidr, Definitions, Draft, Network, Networks, Persistence, Plugin, Reason, Refused,
    Rules, SubnetDraft, Topology,
};
use crate::admission::rules::update::Verdict;

/// [`validate`](super::validate) of JSON values.
pub(crate) fn validate_json(object: &Value, old: Option<&Value>) -> Verdict<'static> {
    let old = old.map(testing::claim);
    super::validate(&testing::claim(object), old.as_ref())
}

/// [`validate_object`](super::validate_object) of a JSON value.
pub(crate) fn validate_object_json(object: &Value) -> ErrorList<'static> {
    super::validate_object(&testing::claim(object))
}

/// [`immutability`](super::update::immutability) of JSON values.
pub(crate) fn immutability_json(object: &Value, old: &Value) -> ErrorList<'static> {
    super::update::immutability(&testing::claim(object), &testing::claim(old))
}

/// `value[parent][field]`, as the model reads a list.
pub(crate) fn member<'v>(value: &'v Value, parent: &str, field: &str) -> Option<&'v Value> {
    value.get(parent)?.get(field)
}

pub(crate) fn claim() -> Value {
    json!({
        "apiVersion": "k8s.cni.cncf.io/v1alpha1",
        "kind": "IPAMClaim",
        "metadata": {"name": "vm-a.tenantred", "namespace": "ns1"},
        "spec": {"network": "tenantred", "interface": "pod16367aacb67"},
        "status": {
            "ips": ["10.128.20.8/24", "fd10:128:20::8/64"],
            "ownerPod": {"name": "virt-launcher-vm-a-x7k2p"},
            "conditions": [{
                "type": "IPsAllocated",
                "status": "True",
                "reason": "Allocated",
                "message": "addresses allocated",
                "lastTransitionTime": "2026-11-26T23:00:00Z",
                "observedGeneration": 1
            }]
        }
    })
}

pub(crate) fn with(pointer: &str, value: Value) -> Value {
    let mut c = claim();
    set(&mut c, pointer, value);
    c
}

pub(crate) fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let parent = doc.pointer_mut(parent).expect("parent exists");
    match parent {
        Value::Object(m) => {
            m.insert(key.to_owned(), value);
        }
        Value::Array(a) => {
            let i: usize = key.parse().expect("index");
            if i == a.len() {
                a.push(value);
            } else {
                a[i] = value;
            }
        }
        _ => panic!("not a container"),
    }
}

pub(crate) fn without(pointer: &str) -> Value {
    let mut c = claim();
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    c.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("object")
        .remove(key);
    c
}

pub(crate) fn messages(object: &Value) -> Vec<String> {
    validate_object_json(object)
        .iter()
        .map(ToString::to_string)
        .collect()
}

pub(crate) fn assert_clean(object: &Value) {
    assert_eq!(messages(object), Vec::<String>::new());
}

pub(crate) fn assert_one(object: &Value, expected: &str) {
    assert_eq!(messages(object), vec![expected.to_owned()]);
}

/// A fixed set of networks, as `--check-networks` sees them.
#[derive(Debug, Default)]
pub(crate) struct FixedNetworks(pub(crate) Vec<std::sync::Arc<Network>>);

impl Networks for FixedNetworks {
    fn network(&self, name: &str) -> Option<std::sync::Arc<Network>> {
        self.0.iter().find(|n| n.name() == name).cloned()
    }
}

/// A secondary OVN-Kubernetes layer2 network `name` keeping addresses for claims, defined in
/// `namespaces`, of `subnets` (`10.128.20.0/24`), with `excluded` ranges in `excludeSubnets`.
pub(crate) fn layer2(
    name: &str,
    namespaces: &[&str],
    subnets: &[&str],
    excluded: &[&str],
) -> std::sync::Arc<Network> {
    let cidr = |text: &str| {
        let (ip, prefix) = text.split_once('/').expect("a CIDR");
        Cidr::masked(
            ip.parse().expect("an IP"),
            prefix.parse().expect("a prefix"),
        )
        .expect("a block")
        .0
    };
    let rules = Rules::new(Draft {
        plugin: Plugin::OvnKubernetes {
            topology: Topology::Layer2,
            primary: false,
        },
        persistence: Persistence::Keeps,
        subnets: subnets
            .iter()
            .map(|s| {
                let cidr = cidr(s);
                SubnetDraft {
                    cidr,
                    prefix: Some(cidr.prefix),
                    range: None,
                    refused: Vec::new(),
                }
            })
            .collect(),
        refused: excluded
            .iter()
            .map(|s| Refused {
                reason: Reason::ExcludeSubnets,
                span: cidr(s).span(),
            })
            .collect(),
        reserved: Vec::new(),
    });
    std::sync::Arc::new(Network::new(
        name.into(),
        namespaces.iter().map(|&n| n.into()).collect(),
        Definitions::Agree(std::sync::Arc::new(Addressing::Ruled(rules))),
    ))
}
