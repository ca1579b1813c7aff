//! `serve --check-networks` end to end: the server's watch pointed by a kubeconfig at the
//! stand-in API server (tests/standin) holding the fixture NADs, and reviews sent over TLS.
//! The stand-in lists, streams ADDED/MODIFIED/DELETED, holds lists and refuses with 403 as the
//! API server does; the server's answers change as the NADs do, and equal the golden answers
//! that replay gives offline.

mod common;
mod standin;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::process::{Launch, Serving};
use common::{fixtures_dir, metric, plain_client, post_json, TestServer, PATIENCE};
use ipamclaim_webhook::cluster::leases::ReservationStore;
use ipamclaim_webhook::cluster::watch::Credentials;
use ipamclaim_webhook::serve::{CheckNetworks, UniqueAddresses};
use serde_json::{json, Value};
use standin::{claim, nad, Resource, StandIn};

/// Every NAD of `tests/fixtures/networks/` (nads.yaml and edges.yaml), as stored.
fn fixture_nads() -> Vec<Value> {
    let mut nads = Vec::new();
    for file in ["nads.yaml", "edges.yaml"] {
        let path = fixtures_dir().join("networks").join(file);
        let text = std::fs::read_to_string(&path).expect("fixture NADs");
        let list: Value = yaml_serde::from_str(&text).expect("YAML");
        nads.extend(list["items"].as_array().expect("items").iter().cloned());
    }
    nads
}

fn ovn_config(network: &str, subnets: &str) -> String {
    format!(
        r#"{{"cniVersion":"1.0.0","name":"{network}","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"{subnets}","allowPersistentIPs":true}}"#
    )
}

/// A CREATE review of `namespace/name` on `network` asking for `ips` in `spec.ipRequests`.
fn create(uid: &str, namespace: &str, name: &str, network: &str, ips: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "kind": "IPAMClaim"},
            "resource": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "resource": "ipamclaims"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "migration-operator"},
            "object": {
                "apiVersion": "k8s.cni.cncf.io/v1alpha1",
                "kind": "IPAMClaim",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"network": network, "interface": "pod1", "ipRequests": ips},
            },
            "oldObject": null,
            "dryRun": true,
        }
    }))
    .expect("json")
}

/// The `response` of a `/validate` (or `/mutate`) answer.
async fn answer(server: &TestServer, path: &str, body: Vec<u8>) -> Value {
    let reply = post_json(&server.client(), &server.url(path), body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["response"].clone()
}

/// The first cause's message of a denial, or "" when allowed.
fn cause(response: &Value) -> String {
    response
        .pointer("/status/details/causes/0/message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `GET /readyz`: status and body.
async fn readyz(probe: &str) -> (u16, String) {
    match plain_client().get(format!("{probe}/readyz")).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// Polls `check` until it holds, for at most [`PATIENCE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn start_server(kubeconfig: &Path, unique: bool) -> TestServer {
    TestServer::start(|cfg| {
        let credentials = Credentials::Kubeconfig(kubeconfig.to_path_buf());
        cfg.workers = 2;
        cfg.check_networks = Some(CheckNetworks {
            credentials: credentials.clone(),
        });
        cfg.unique_addresses = unique.then(|| UniqueAddresses {
            credentials,
            reservation_ttl: Duration::from_secs(30),
            // One replica: its own memory is enough (tests/reservations.rs tries the Leases).
            reservations: ReservationStore::Memory,
        });
    })
}

/// Every request of a golden fixture directory, sorted.
fn requests_of(dir: &str) -> Vec<PathBuf> {
    let mut requests: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join(dir))
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".request.json"))
        .collect();
    requests.sort();
    requests
}

/// The verdict of the first `status.ips` address of a dry-run CREATE on `network` in
/// `namespace`: "" when admitted, else the first cause.
async fn verdict_on(server: &TestServer, namespace: &str, network: &str, ip: &str) -> String {
    let body = create("probe", namespace, "vm-probe.x", network, &[ip]);
    let response = answer(server, "/validate", body).await;
    if response["allowed"] == true {
        String::new()
    } else {
        cause(&response)
    }
}

#[tokio::test]
async fn serve_judges_against_the_watched_networks_of_a_stand_in_api_server() {
    let api = StandIn::start_with(Vec::new(), fixture_nads());
    let dir = tempfile::tempdir().expect("tempdir");
    api.hold_lists(true);
    let server = start_server(&api.kubeconfig(dir.path()), false);
    let probe = server.probe_url("");

    // Until the first list of NADs is indexed, the replica is not ready.
    for _ in 0..5 {
        let (status, body) = readyz(&probe).await;
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("the network index is not ready: the first list is not complete"),
            "{body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.hold_lists(false);
    eventually("ready after the first list", || async {
        readyz(&probe).await.0 == 200
    })
    .await;
    let metrics = server.metrics().await;
    for (name, value) in [
        ("ipamclaim_webhook_network_index_nads", 18.0),
        ("ipamclaim_webhook_network_index_networks", 15.0),
        ("ipamclaim_webhook_network_index_invalid_configs", 1.0),
        ("ipamclaim_webhook_network_index_unruled_networks", 2.0),
        ("ipamclaim_webhook_network_index_disagreeing_networks", 1.0),
        ("ipamclaim_webhook_network_index_ready", 1.0),
    ] {
        assert_eq!(metric(&metrics, name), Some(value), "{name}");
    }
    // Only NADs were read: no IPAMClaim without --unique-addresses.
    let served = api.served();
    assert!(
        served.iter().all(|s| s.resource == Resource::Nads),
        "{served:?}"
    );

    // The server's answers are the golden ones (which replay gives offline too).
    let requests = requests_of("validate-check-networks");
    assert!(requests.len() >= 30, "{}", requests.len());
    for request in &requests {
        let body = std::fs::read(request).expect("request");
        let reply = post_json(&server.client(), &server.url("/validate"), body).await;
        let golden = PathBuf::from(
            request
                .to_string_lossy()
                .replace(".request.json", ".response.json"),
        );
        let expected: Value =
            serde_json::from_slice(&std::fs::read(golden).expect("golden")).expect("json");
        assert_eq!(reply.json(), expected, "{}", request.display());
    }
    // And /mutate completes a bare address of a known network.
    let mutated = answer(
        &server,
        "/mutate",
        create(
            "m1",
            "ns1",
            "vm-m.tenantred",
            "tenantred",
            &["10.128.20.40"],
        ),
    )
    .await;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(mutated["patch"].as_str().expect("a patch"))
        .expect("base64");
    assert_eq!(
        String::from_utf8_lossy(&patch),
        r#"[{"op":"replace","path":"/spec/ipRequests/0","value":"10.128.20.40/24"}]"#
    );

    // ADDED: a network no NAD defined is judged once one does.
    assert_eq!(verdict_on(&server, "ns9", "red", "10.1.0.5/24").await, "");
    api.add_nad(nad("ns9", "red", &ovn_config("red", "10.0.0.0/24")));
    eventually("red added", || async {
        verdict_on(&server, "ns9", "red", "10.1.0.5/24").await
            == "Invalid value: \"10.1.0.5/24\": not in the subnets of network \"red\" (10.0.0.0/24)"
    })
    .await;
    // MODIFIED: red moves to the claim's subnet, which now fits.
    api.modify_nad(nad("ns9", "red", &ovn_config("red", "10.1.0.0/24")));
    eventually("red modified", || async {
        verdict_on(&server, "ns9", "red", "10.1.0.5/24")
            .await
            .is_empty()
    })
    .await;
    assert_eq!(
        verdict_on(&server, "ns9", "red", "10.0.0.5/24").await,
        "Invalid value: \"10.0.0.5/24\": not in the subnets of network \"red\" (10.1.0.0/24)"
    );
    // DELETED: red is known no more; a warning says its addresses are not checked.
    api.delete_nad("ns9", "red");
    eventually("red deleted", || async {
        verdict_on(&server, "ns9", "red", "10.0.0.5/24")
            .await
            .is_empty()
    })
    .await;
    let warned = answer(
        &server,
        "/validate",
        create("w1", "ns9", "vm-w.red", "red", &["10.0.0.5/24"]),
    )
    .await;
    assert_eq!(
        warned["warnings"],
        json!(["spec.network: no NAD defines network \"red\": addresses not checked"])
    );

    let metrics = server.metrics().await;
    assert!(
        metric(
            &metrics,
            r#"ipamclaim_webhook_network_misfits_total{reason="not_in_subnets"}"#
        )
        .unwrap_or(0.0)
            >= 3.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            r#"ipamclaim_webhook_network_misfits_total{reason="gateway"}"#
        ),
        Some(5.0),
        "the gateways of the golden fixtures"
    );
    assert!(metric(
        &metrics,
        "ipamclaim_webhook_network_watch_last_event_age_seconds"
    )
    .is_some());
    assert_eq!(
        metric(&metrics, "ipamclaim_webhook_network_index_networks"),
        Some(15.0)
    );
    server.stop().await;
}

#[tokio::test]
async fn with_unique_addresses_one_readiness_waits_for_both_lists_and_one_denial_joins_both() {
    let api = StandIn::start_with(
        vec![claim("ns1", "vm-b.red", "red", &["10.0.0.5/24"])],
        vec![nad("ns1", "red", &ovn_config("red", "10.0.0.0/24"))],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    api.hold_lists_of(Resource::Nads, true);
    let server = start_server(&api.kubeconfig(dir.path()), true);
    let probe = server.probe_url("");

    // The claims are listed, the networks are not: not ready, and /readyz says which.
    eventually("the claims listed", || async {
        metric(&server.metrics().await, "ipamclaim_webhook_index_ready") == Some(1.0)
    })
    .await;
    let (status, body) = readyz(&probe).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body.trim(),
        "the network index is not ready: the first list is not complete"
    );
    api.hold_lists_of(Resource::Nads, false);
    eventually("ready once both are listed", || async {
        readyz(&probe).await.0 == 200
    })
    .await;
    let resources: Vec<Resource> = api.served().iter().map(|s| s.resource).collect();
    assert!(resources.contains(&Resource::Claims) && resources.contains(&Resource::Nads));

    // A conflict and a misfit of one address: one denial, both causes.
    let denied = answer(
        &server,
        "/validate",
        create("u1", "ns1", "vm-a.red", "red", &["10.0.0.5/16"]),
    )
    .await;
    assert_eq!(denied["allowed"], false);
    let causes: Vec<&str> = denied["status"]["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .map(|c| c["message"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        causes,
        [
            "Invalid value: \"10.0.0.5/16\": address 10.0.0.5 is already allocated to IPAMClaim \"vm-b.red\" on network \"red\"",
            "Invalid value: \"10.0.0.5/16\": prefix length differs from its subnet of network \"red\" (10.0.0.0/24)",
        ]
    );
    server.stop().await;
}

// --- the real binary ---

/// `serve` with certificates in `dir`, logging to `dir/server.log`; `extra` flags.
fn spawn_serve(dir: &Path, extra: &[&str]) -> (Serving, String) {
    let certs = ipamclaim_webhook::certs::generate(&Default::default()).expect("certs");
    let mut launch = Launch::serving(dir, &certs)
        .args(&["--workers", "1", "--log-format", "json"])
        .args(extra);
    launch.cmd.env("HOME", dir);
    let serving = launch.spawn();
    let probe = serving.probe_url("");
    (serving, probe)
}

// RBAC granting the claims but not the NADs (the networks component missing beside the
// unique-addresses one): /readyz names the missing permission, one log line says so, and the
// replica becomes ready once it is granted.
#[tokio::test]
async fn a_refusal_of_nads_alone_keeps_readyz_failing_with_one_log_line() {
    let api = StandIn::start_with(
        vec![claim("ns1", "vm-b.red", "red", &["10.0.0.5/24"])],
        vec![nad("ns1", "red", &ovn_config("red", "10.0.0.0/24"))],
    );
    api.forbid_resource(Resource::Nads, true);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path()).to_string_lossy().into_owned();
    let (mut child, probe) = spawn_serve(
        dir.path(),
        &[
            "--unique-addresses",
            "--reservations",
            "Memory",
            "--check-networks",
            "--kubeconfig",
            &kubeconfig,
        ],
    );
    eventually("the NADs refused", || async {
        api.served()
            .iter()
            .any(|s| s.resource == Resource::Nads && s.status == 403)
    })
    .await;
    eventually("the claims indexed", || async {
        let (status, body) = readyz(&probe).await;
        status == 503 && !body.contains("IPAMClaim")
    })
    .await;
    let (status, body) = readyz(&probe).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("the network index cannot be built: forbidden to list network-attachment-definitions.k8s.cni.cncf.io at cluster scope"),
        "{body}"
    );
    api.forbid_resource(Resource::Nads, false);
    eventually("ready once granted", || async {
        readyz(&probe).await.0 == 200
    })
    .await;
    child.kill();
    let log = child.log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot watch NetworkAttachmentDefinitions"))
        .collect();
    assert_eq!(refusals.len(), 1, "one line for the refusal:\n{log}");
    assert!(refusals[0].contains("\"verb\":\"list\""), "{}", refusals[0]);
    assert!(
        refusals[0].contains("manifests/components/networks"),
        "{}",
        refusals[0]
    );
    for ready in [
        "index of IPAMClaims ready",
        "index of networks ready: first list of NetworkAttachmentDefinitions complete",
    ] {
        assert_eq!(
            log.lines().filter(|l| l.contains(ready)).count(),
            1,
            "{ready}:\n{log}"
        );
    }
}
