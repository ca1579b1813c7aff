//! The index of the cluster's networks: CNI network name → [`Network`], fed by events.
//!
//! [`Nads`] is what a list-and-watch of NetworkAttachmentDefinitions shows: [`apply`] and
//! [`delete`] one NAD at a time, or a whole re-list collected into a fresh `Nads` and swapped
//! in at once (see [`SharedNetworks::reset`](super::shared::SharedNetworks::reset)). A network
//! defined by several NADs records them all: the namespaces that define it (for the tenancy
//! rule) and whether they agree about its addresses. Each NAD's config is parsed once, when
//! its event arrives ([`Nad::parse`](super::config::Nad::parse)); a lookup is one hash and
//! hands out the network's judge-ready [`Network`], rebuilt only when one of its NADs changes.
//! Nothing here knows HTTP, the API server or a clock.
//!
//! [`apply`]: Nads::apply
//! [`delete`]: Nads::delete

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::admission::rules::networks::{Addressing, Definitions, Network};
use crate::cluster::networks::config::Nad;

/// One NAD of a network.
#[derive(Clone, Debug)]
struct Member {
    namespace: Arc<str>,
    name: Box<str>,
    /// Shared with the other members when they say the same (most networks defined in many
    /// namespaces are one config written many times).
    addressing: Arc<Addressing>,
}

/// A network: its NADs, and the view lookups hand out, rebuilt when they change.
#[derive(Clone, Debug)]
struct Entry {
    members: Vec<Member>,
    network: Arc<Network>,
}

/// A NAD's namespace (kept once) and name.
type NadKey = (Arc<str>, Box<str>);

/// The NetworkAttachmentDefinitions a list-and-watch shows, indexed by the network they define.
#[derive(Clone, Debug, Default)]
pub struct Nads {
    /// Namespaces kept once.
    namespaces: HashSet<Arc<str>>,
    /// Each NAD → the network it defines, if its config names one.
    nads: HashMap<NadKey, Option<Arc<str>>>,
    /// The NADs whose config is invalid ([`Nad::invalid`]).
    invalid: HashSet<NadKey>,
    /// Each network by its CNI name.
    networks: HashMap<Arc<str>, Entry>,
}

/// What the index holds, for logs and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// NetworkAttachmentDefinitions.
    pub nads: usize,
    /// Networks they define.
    pub networks: usize,
    /// NADs whose config names no network (nothing to key them by).
    pub unnamed: usize,
    /// Networks whose NADs disagree about their addresses.
    pub disagreeing: usize,
    /// Networks known without address rules.
    pub unruled: usize,
    /// NADs whose config could not be read as the plugin reads it (not JSON, a member of
    /// another type, a range that is not one).
    pub invalid: usize,
}

// === impl Nads ===

impl Nads {
    /// No NADs.
    pub fn new() -> Self {
        Nads::default()
    }

    fn intern(&mut self, namespace: &str) -> Arc<str> {
        if let Some(ns) = self.namespaces.get(namespace) {
            return ns.clone();
        }
        let ns: Arc<str> = Arc::from(namespace);
        self.namespaces.insert(ns.clone());
        ns
    }

    /// Adds `nad`, or replaces what its namespace/name defined before.
    pub fn apply(&mut self, nad: Nad) {
        self.delete(&nad.namespace, &nad.name);
        if let Some(name) = self.insert(nad) {
            self.rebuild(&name);
        }
    }

    /// Adds `nad`, known to be new, to its network's members without rebuilding the network's
    /// view: the network it joined, if any.
    fn insert(&mut self, nad: Nad) -> Option<Arc<str>> {
        let namespace = self.intern(&nad.namespace);
        let key = (namespace.clone(), nad.name.into_boxed_str());
        if nad.invalid {
            self.invalid.insert(key.clone());
        }
        let Some(network) = nad.network else {
            self.nads.insert(key, None);
            return None;
        };
        let name: Arc<str> = match self.networks.get_key_value(network.as_str()) {
            Some((name, _)) => name.clone(),
            None => Arc::from(network),
        };
        let entry = self.networks.entry(name.clone()).or_insert_with(|| Entry {
            members: Vec::new(),
            network: Arc::new(Network::new(
                name.clone(),
                Vec::new(),
                Definitions::Disagree,
            )),
        });
        let addressing = match entry.members.first() {
            Some(first) if *first.addressing == nad.addressing => first.addressing.clone(),
            _ => Arc::new(nad.addressing),
        };
        entry.members.push(Member {
            namespace,
            name: key.1.clone(),
            addressing,
        });
        self.nads.insert(key, Some(name.clone()));
        Some(name)
    }

    /// Removes the NAD `namespace/name`; whether there was one.
    pub fn delete(&mut self, namespace: &str, name: &str) -> bool {
        let Some(ns) = self.namespaces.get(namespace).cloned() else {
            return false;
        };
        let key = (ns.clone(), Box::from(name));
        let Some(network) = self.nads.remove(&key) else {
            return false;
        };
        self.invalid.remove(&key);
        let Some(network) = network else {
            return true;
        };
        if let Some(entry) = self.networks.get_mut(&network) {
            if let Some(at) = entry
                .members
                .iter()
                .position(|m| m.namespace == ns && *m.name == *name)
            {
                entry.members.swap_remove(at);
            }
        }
        self.rebuild(&network);
        true
    }

    /// Makes the view of the network `name` anew from its members, or forgets a network that
    /// has none left.
    fn rebuild(&mut self, name: &Arc<str>) {
        let Some(entry) = self.networks.get_mut(name) else {
            return;
        };
        let Some(first) = entry.members.first() else {
            self.networks.remove(name);
            return;
        };
        let agree = entry.members.iter().all(|m| {
            Arc::ptr_eq(&m.addressing, &first.addressing) || m.addressing == first.addressing
        });
        let definitions = if agree {
            Definitions::Agree(first.addressing.clone())
        } else {
            Definitions::Disagree
        };
        let namespaces = entry.members.iter().map(|m| m.namespace.clone()).collect();
        entry.network = Arc::new(Network::new(name.clone(), namespaces, definitions));
    }

    /// The network of that CNI name.
    pub fn network(&self, name: &str) -> Option<Arc<Network>> {
        self.networks.get(name).map(|e| e.network.clone())
    }

    /// How many NADs, networks, and of which kinds.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            nads: self.nads.len(),
            networks: self.networks.len(),
            unnamed: self.nads.values().filter(|n| n.is_none()).count(),
            invalid: self.invalid.len(),
            ..Counts::default()
        };
        for entry in self.networks.values() {
            match entry.network.definitions() {
                Definitions::Disagree => counts.disagreeing += 1,
                Definitions::Agree(a) if matches!(**a, Addressing::Unruled(_)) => {
                    counts.unruled += 1;
                }
                Definitions::Agree(_) => {}
            }
        }
        counts
    }

    /// Gives back the room that growing left unused (after a re-list is collected).
    pub fn shrink_to_fit(&mut self) {
        self.namespaces.shrink_to_fit();
        self.nads.shrink_to_fit();
        self.invalid.shrink_to_fit();
        self.networks.shrink_to_fit();
        for entry in self.networks.values_mut() {
            entry.members.shrink_to_fit();
        }
    }

    /// Every NAD as `(namespace, name) → network`, and every network as `name → view`, in a
    /// fixed order: what two indexes of the same NADs agree on, however they were built.
    #[allow(clippy::type_complexity)]
    pub fn snapshot(
        &self,
    ) -> (
        BTreeMap<(String, String), Option<String>>,
        BTreeMap<String, Network>,
    ) {
        let nads = self
            .nads
            .iter()
            .map(|((ns, name), network)| {
                (
                    (ns.to_string(), name.to_string()),
                    network.as_ref().map(ToString::to_string),
                )
            })
            .collect();
        let networks = self
            .networks
            .iter()
            .map(|(name, entry)| (name.to_string(), (*entry.network).clone()))
            .collect();
        (nads, networks)
    }
}

/// A whole list at once: each network's view is built once, after all its NADs are in, so
/// that a network defined in thousands of namespaces costs its size, not its size squared.
impl FromIterator<Nad> for Nads {
    fn from_iter<I: IntoIterator<Item = Nad>>(nads: I) -> Self {
        let mut index = Nads::new();
        for nad in nads {
            let ns = index.namespaces.get(nad.namespace.as_str()).cloned();
            let seen =
                ns.is_some_and(|ns| index.nads.contains_key(&(ns, Box::from(nad.name.as_str()))));
            if seen {
                // A list names each NAD once; should one come twice, the last one wins.
                index.apply(nad);
            } else {
                index.insert(nad);
            }
        }
        let names: Vec<Arc<str>> = index.networks.keys().cloned().collect();
        for name in names {
            index.rebuild(&name);
        }
        index
    }
}

impl PartialEq for Nads {
    fn eq(&self, other: &Self) -> bool {
        self.snapshot() == other.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CONFIGS: [&str; 5] = [
        r#"{"name":"red","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.0.0.0/24","allowPersistentIPs":true}"#,
        // The same rules, written otherwise.
        r#"{"name":"red","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":" 10.0.0.0/24 ","allowPersistentIPs":true,"mtu":1400}"#,
        r#"{"name":"red","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.1.0.0/24","allowPersistentIPs":true}"#,
        r#"{"name":"blue","type":"macvlan","ipam":{"type":"dhcp"}}"#,
        r#"{"type":"macvlan"}"#,
    ];

    fn nad(namespace: &str, name: &str, config: usize) -> Nad {
        Nad::parse(namespace, name, Some(CONFIGS[config]))
    }

    fn namespaces(network: &Network) -> Vec<&str> {
        network.namespaces().iter().map(|n| &**n).collect()
    }

    #[test]
    fn a_network_records_every_namespace_that_defines_it() {
        let mut index = Nads::new();
        index.apply(nad("ns2", "a", 0));
        index.apply(nad("ns1", "b", 1));
        let red = index.network("red").expect("red");
        assert_eq!(namespaces(&red), ["ns1", "ns2"]);
        assert!(matches!(red.definitions(), Definitions::Agree(_)));
        assert!(red.rules().is_some());
        assert!(index.network("blue").is_none());
    }

    #[test]
    fn nads_that_disagree_are_recorded_and_agree_again_once_one_goes() {
        let mut index = Nads::new();
        index.apply(nad("ns1", "a", 0));
        index.apply(nad("ns7", "c", 2));
        assert_eq!(
            index.network("red").unwrap().definitions(),
            &Definitions::Disagree
        );
        assert_eq!(index.counts().disagreeing, 1);
        index.delete("ns7", "c");
        let red = index.network("red").unwrap();
        assert!(red.rules().is_some());
        assert_eq!(namespaces(&red), ["ns1"]);
    }

    #[test]
    fn an_update_moves_a_nad_between_networks_and_a_delete_forgets_an_empty_network() {
        let mut index = Nads::new();
        index.apply(nad("ns1", "a", 0));
        index.apply(nad("ns1", "a", 3));
        assert!(index.network("red").is_none());
        assert!(index.network("blue").is_some());
        assert!(index.delete("ns1", "a"));
        assert!(!index.delete("ns1", "a"));
        assert!(!index.delete("nowhere", "a"));
        assert_eq!(index.counts(), Counts::default());
    }

    #[test]
    fn a_nad_naming_no_network_is_counted_and_deleted() {
        let mut index = Nads::new();
        index.apply(nad("ns1", "x", 4));
        assert_eq!(
            index.counts(),
            Counts {
                nads: 1,
                unnamed: 1,
                ..Counts::default()
            }
        );
        assert!(index.delete("ns1", "x"));
        assert_eq!(index.counts().nads, 0);
    }

    #[test]
    fn a_nad_whose_config_does_not_parse_is_counted_until_it_is_fixed_or_deleted() {
        let broken = |ns: &str| Nad::parse(ns, "x", Some(r#"{"name":"red","subnets":"#));
        let mut index = Nads::new();
        index.apply(broken("ns1"));
        index.apply(broken("ns2"));
        index.apply(nad("ns3", "x", 3));
        assert_eq!(index.counts().invalid, 2, "{:?}", index.counts());
        index.apply(nad("ns1", "x", 0));
        assert_eq!(index.counts().invalid, 1);
        assert!(index.delete("ns2", "x"));
        assert_eq!(index.counts().invalid, 0);
        let listed: Nads = [broken("ns1"), broken("ns1"), broken("ns2")]
            .into_iter()
            .collect();
        assert_eq!(listed.counts().invalid, 2);
    }

    #[test]
    fn members_that_agree_share_one_copy_of_their_rules() {
        let index: Nads = (0..100)
            .map(|i| nad(&format!("ns{i}"), "a", i % 2))
            .collect();
        let entry = &index.networks["red"];
        assert!(entry
            .members
            .iter()
            .all(|m| Arc::ptr_eq(&m.addressing, &entry.members[0].addressing)));
        assert_eq!(index.network("red").unwrap().namespaces().len(), 100);
    }

    #[derive(Clone, Debug)]
    enum Event {
        Apply(Nad),
        Delete(String, String),
        Reset(Vec<Nad>),
    }

    const NAMESPACES: [&str; 3] = ["ns1", "ns2", "ns3"];
    const NAMES: [&str; 3] = ["a", "b", "c"];

    fn any_nad() -> impl Strategy<Value = Nad> {
        (0..NAMESPACES.len(), 0..NAMES.len(), 0..CONFIGS.len())
            .prop_map(|(ns, name, config)| nad(NAMESPACES[ns], NAMES[name], config))
    }

    fn any_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            6 => any_nad().prop_map(Event::Apply),
            3 => (0..NAMESPACES.len(), 0..NAMES.len())
                .prop_map(|(ns, n)| Event::Delete(NAMESPACES[ns].to_owned(), NAMES[n].to_owned())),
            1 => proptest::collection::vec(any_nad(), 0..6).prop_map(Event::Reset),
        ]
    }

    proptest! {
        // After any events, the index is the index of the final NADs, and every lookup says
        // what a plain model of those NADs says.
        #[test]
        fn after_any_events_the_index_equals_the_index_of_the_final_nads(
            events in proptest::collection::vec(any_event(), 0..40)
        ) {
            let mut index = Nads::new();
            let mut model: BTreeMap<(String, String), Nad> = BTreeMap::new();
            for event in events {
                match event {
                    Event::Apply(n) => {
                        model.insert((n.namespace.clone(), n.name.clone()), n.clone());
                        index.apply(n);
                    }
                    Event::Delete(ns, name) => {
                        model.remove(&(ns.clone(), name.clone()));
                        index.delete(&ns, &name);
                    }
                    Event::Reset(list) => {
                        model.clear();
                        for n in &list {
                            model.insert((n.namespace.clone(), n.name.clone()), n.clone());
                        }
                        index = list.into_iter().collect();
                    }
                }
            }
            let rebuilt: Nads = model.values().cloned().collect();
            prop_assert!(index == rebuilt);
            for network in ["red", "blue", "green"] {
                let defining: Vec<&Nad> =
                    model.values().filter(|n| n.network.as_deref() == Some(network)).collect();
                let found = index.network(network);
                prop_assert_eq!(found.is_some(), !defining.is_empty());
                let Some(found) = found else { continue };
                let mut expected: Vec<&str> = defining.iter().map(|n| n.namespace.as_str()).collect();
                expected.sort_unstable();
                expected.dedup();
                prop_assert_eq!(namespaces(&found), expected);
                let agree = defining.iter().all(|n| n.addressing == defining[0].addressing);
                match found.definitions() {
                    Definitions::Agree(a) => {
                        prop_assert!(agree);
                        prop_assert_eq!(&**a, &defining[0].addressing);
                    }
                    Definitions::Disagree => prop_assert!(!agree),
                }
            }
            prop_assert_eq!(index.counts().nads, model.len());
        }
    }
}
