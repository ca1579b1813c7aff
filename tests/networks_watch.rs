//! The watch of NetworkAttachmentDefinitions (`--check-networks`, DESIGN §10) end to end: the
//! kube-rs watch pointed by a kubeconfig at the stand-in API server (tests/standin), which
//! pages its list, streams ADDED/MODIFIED/DELETED events, closes watches, answers an expired
//! version with 410 and refuses with 403; the shared view the admission core reads changes as
//! the NADs do.

mod standin;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ipamclaim_webhook::admission::answer::field::Path;
use ipamclaim_webhook::admission::rules::ip;
use ipamclaim_webhook::admission::rules::networks::{self, Definitions, Networks as _};
use ipamclaim_webhook::cluster::networks::{watch, SharedNetworks};
use ipamclaim_webhook::cluster::watch::Credentials;
use serde_json::Value;
use standin::{nad, Resource, StandIn};

/// How long a change may take to reach the view.
const PATIENCE: Duration = Duration::from_secs(30);

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The NADs of `tests/fixtures/networks/nads.yaml`, as the API server stores them.
fn fixture_nads() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/networks/nads.yaml"
    );
    let text = std::fs::read_to_string(path).expect("nads.yaml");
    let list: Value = yaml_serde::from_str(&text).expect("YAML");
    list["items"].as_array().expect("items").clone()
}

fn ovn_config(network: &str, subnets: &str) -> String {
    format!(
        r#"{{"cniVersion":"1.0.0","name":"{network}","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"{subnets}","allowPersistentIPs":true}}"#
    )
}

/// The details of the errors `value` gets on `network` for a claim of `namespace`; `None`
/// when the view has no such network.
fn verdict(
    view: &SharedNetworks,
    network: &str,
    value: &str,
    namespace: &str,
) -> Option<Vec<String>> {
    let found = view.network(network)?;
    let address = ip::parse(value).expect("an address");
    let path = Path::new("status").child("ips").index(0);
    Some(
        networks::judge(&found, address, value.to_owned().into(), &path, namespace)
            .map(|e| e.to_string())
            .collect(),
    )
}

/// A watch of `api` into a fresh view.
fn watching(api: &StandIn, dir: &std::path::Path) -> (Arc<SharedNetworks>, watch::Watch) {
    let view = Arc::new(SharedNetworks::new());
    let credentials = Credentials::Kubeconfig(api.kubeconfig(dir));
    let running = watch::start(credentials, view.clone()).expect("watch starts");
    (view, running)
}

#[test]
fn the_first_list_indexes_every_fixture_network_and_makes_the_view_ready() {
    let api = StandIn::start_with(Vec::new(), fixture_nads());
    let dir = tempfile::tempdir().expect("tempdir");
    let (view, _watch) = watching(&api, dir.path());
    eventually("the first list", || view.is_ready());
    let counts = view.stats().counts;
    assert_eq!((counts.nads, counts.networks), (15, 12), "{counts:?}");
    // tenantyellow: two NADs that agree (ns1, ns2) and one that does not (ns7).
    let yellow = view.network("tenantyellow").expect("tenantyellow");
    assert_eq!(yellow.definitions(), &Definitions::Disagree);
    let names: Vec<&str> = yellow.namespaces().iter().map(|n| &**n).collect();
    assert_eq!(names, ["ns1", "ns2", "ns7"]);
    // The cluster UDN defined in two namespaces names its ranges to both, and to no other.
    assert_eq!(
        verdict(&view, "cluster_udn_l2-primary", "10.100.0.1/16", "tenant-b").unwrap(),
        ["status.ips[0]: Invalid value: \"10.100.0.1/16\": the gateway of network \"cluster_udn_l2-primary\" (10.100.0.1)"]
    );
    assert_eq!(
        verdict(&view, "cluster_udn_l2-primary", "10.100.0.1/16", "tenant-c").unwrap(),
        ["status.ips[0]: Invalid value: \"10.100.0.1/16\": the gateway of network \"cluster_udn_l2-primary\""]
    );
    // A broken config is known by the name it starts with, without rules.
    let broken = view.network("broken-net").expect("broken-net");
    assert!(broken.rules().is_none());
    assert_eq!(
        networks::warning("broken-net", Some(&broken), "ns8").unwrap(),
        "spec.network: network \"broken-net\" has no address rules (config is not valid JSON)"
    );
    let served = api.served();
    assert!(
        served.iter().all(|s| s.resource == Resource::Nads),
        "{served:?}"
    );
}

#[test]
fn added_modified_and_deleted_nads_change_what_the_view_answers() {
    let api = StandIn::start_with(
        Vec::new(),
        vec![nad("ns1", "red", &ovn_config("red", "10.0.0.0/24"))],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (view, _watch) = watching(&api, dir.path());
    eventually("the first list", || view.is_ready());
    assert_eq!(
        verdict(&view, "red", "10.1.0.5/24", "ns1").unwrap(),
        ["status.ips[0]: Invalid value: \"10.1.0.5/24\": not in the subnets of network \"red\" (10.0.0.0/24)"]
    );
    // ADDED: a new network appears.
    api.add_nad(nad("ns2", "blue", &ovn_config("blue", "10.2.0.0/24")));
    eventually("blue added", || view.network("blue").is_some());
    // MODIFIED: red moves to another subnet.
    api.modify_nad(nad("ns1", "red", &ovn_config("red", "10.1.0.0/24")));
    eventually("red modified", || {
        verdict(&view, "red", "10.1.0.5/24", "ns1").is_some_and(|e| e.is_empty())
    });
    // A second NAD of red, in another namespace, that disagrees: the checks stop.
    api.add_nad(nad("ns3", "red", &ovn_config("red", "10.9.0.0/24")));
    eventually("red disagrees", || {
        view.network("red")
            .is_some_and(|n| *n.definitions() == Definitions::Disagree)
    });
    assert_eq!(
        verdict(&view, "red", "192.168.0.1/24", "ns1").unwrap(),
        Vec::<String>::new()
    );
    // DELETED: the disagreement goes with it, then the network.
    api.delete_nad("ns3", "red");
    eventually("red agrees again", || {
        view.network("red")
            .is_some_and(|n| n.rules().is_some() && n.namespaces().len() == 1)
    });
    api.delete_nad("ns1", "red");
    eventually("red deleted", || view.network("red").is_none());
    assert!(view.network("blue").is_some());
    // One list; everything else came by the watch.
    let lists = api.served().iter().filter(|s| s.verb == "list").count();
    assert_eq!(lists, 1);
}

#[test]
fn a_refusal_keeps_the_view_unready_and_an_expired_version_relists_in_whole() {
    let api = StandIn::start_with(
        Vec::new(),
        vec![
            nad("ns1", "red", &ovn_config("red", "10.0.0.0/24")),
            nad("ns2", "blue", &ovn_config("blue", "10.2.0.0/24")),
        ],
    );
    api.forbid(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let (view, _watch) = watching(&api, dir.path());
    eventually("the refusal", || {
        view.not_ready().is_some_and(|why| {
            why.contains("forbidden to list network-attachment-definitions.k8s.cni.cncf.io")
        })
    });
    api.forbid(false);
    eventually("the first list after the grant", || view.is_ready());
    assert!(view.network("blue").is_some());
    // blue goes without an event a watch could see; the version expires; the watch ends.
    api.delete_nad_unseen("ns2", "blue");
    api.expire_versions();
    api.close_watches();
    eventually("the re-list", || view.network("blue").is_none());
    assert!(view.network("red").is_some());
    assert!(view.is_ready());
    assert!(view.stats().watch_restarts >= 2);
}
