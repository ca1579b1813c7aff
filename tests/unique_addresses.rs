//! `serve --unique-addresses` end to end: the server's watch pointed by a kubeconfig at a
//! stand-in for the API server (tests/standin), and reviews sent over TLS. The stand-in pages
//! its list, streams ADDED/MODIFIED/DELETED events and bookmarks, closes watches, answers an
//! expired version with 410 and refuses with 403, as the API server does.

mod common;
mod standin;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{bin, Launch, Serving};
use common::{metric, plain_client, post_json, TestServer, PATIENCE};
use ipamclaim_webhook::cluster::leases::ReservationStore;
use ipamclaim_webhook::cluster::watch::Credentials;
use ipamclaim_webhook::serve::UniqueAddresses;
use serde_json::{json, Value};
use standin::{claim, StandIn};

/// The namespace of the reservation Leases.
const NAMESPACE: &str = "ipamclaim-webhook";

/// A CREATE review of `namespace/name` on `network` asking for `ips` in `spec.ipRequests`.
fn create(
    uid: &str,
    namespace: &str,
    name: &str,
    network: &str,
    ips: &[&str],
    dry_run: bool,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "kind": "IPAMClaim"},
            "resource": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "resource": "ipamclaims"},
            "requestKind": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "kind": "IPAMClaim"},
            "requestResource": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "resource": "ipamclaims"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kubevirt:kubevirt-controller"},
            "object": {
                "apiVersion": "k8s.cni.cncf.io/v1alpha1",
                "kind": "IPAMClaim",
                "metadata": {"name": name, "namespace": namespace, "uid": format!("new-{uid}"),
                             "creationTimestamp": "2026-11-27T10:00:00Z", "generation": 1},
                "spec": {"network": network, "interface": "pod16367aacb67", "ipRequests": ips},
            },
            "oldObject": null,
            "dryRun": dry_run,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    }))
    .expect("json")
}

/// The `response` of a `/validate` answer.
async fn validate(server: &TestServer, body: Vec<u8>) -> Value {
    let reply = post_json(&server.client(), &server.url("/validate"), body).await;
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
    let resp = plain_client()
        .get(format!("{probe}/readyz"))
        .send()
        .await
        .expect("GET /readyz");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
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

/// Whether a dry-run CREATE asking for `ip` on `red` is admitted (a dry run reserves nothing,
/// so polling with it changes nothing).
async fn free(server: &TestServer, namespace: &str, ip: &str) -> bool {
    let body = create("probe", namespace, "vm-probe.red", "red", &[ip], true);
    validate(server, body).await["allowed"] == true
}

/// 1,200 claims on network `bulk` (three pages of the watcher's 500), and a few on `red`.
fn cluster_claims() -> Vec<Value> {
    let mut claims: Vec<Value> = (0..1200)
        .map(|i| {
            let (a, b) = (i / 250, i % 250);
            claim(
                "bulk",
                &format!("vm-{i}.bulk"),
                "bulk",
                &[&format!("10.{a}.{b}.1/16"), &format!("fd00:{a}::{b}:1/64")],
            )
        })
        .collect();
    claims.push(claim(
        "ns1",
        "vm-b.red",
        "red",
        &["10.0.0.5/24", "fd00:1ed::5/64"],
    ));
    claims.push(claim("ns2", "vm-x.red", "red", &["10.0.0.50/24"]));
    claims
}

fn start_server(kubeconfig: &Path, workers: usize) -> TestServer {
    TestServer::start(|cfg| {
        cfg.workers = workers;
        cfg.unique_addresses = Some(UniqueAddresses {
            credentials: Credentials::Kubeconfig(kubeconfig.to_path_buf()),
            reservation_ttl: Duration::from_secs(30),
            reservations: ReservationStore::Leases {
                namespace: Some(NAMESPACE.to_owned()),
            },
        });
    })
}

#[tokio::test]
async fn serve_judges_against_the_watched_claims_of_a_stand_in_api_server() {
    let api = StandIn::start(cluster_claims());
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path());
    api.hold_lists(true);
    let server = start_server(&kubeconfig, 2);
    let probe = server.probe_url("");

    // Until the first list is indexed, the replica is not ready.
    for _ in 0..5 {
        let (status, body) = readyz(&probe).await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("first list"), "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.hold_lists(false);
    eventually("ready after the first list", || async {
        readyz(&probe).await.0 == 200
    })
    .await;

    // The list was paged, each page after the first continuing the one before.
    let lists: Vec<_> = api
        .served()
        .into_iter()
        .filter(|s| s.verb == "list")
        .collect();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert!(lists
        .iter()
        .all(|l| l.query.get("limit").map(String::as_str) == Some("500")));
    assert!(!lists[0].query.contains_key("continue"));
    assert!(lists[1].query.contains_key("continue") && lists[2].query.contains_key("continue"));
    let metrics = server.metrics().await;
    assert_eq!(
        metric(&metrics, "ipamclaim_webhook_index_claims"),
        Some(1202.0)
    );
    assert_eq!(
        metric(&metrics, "ipamclaim_webhook_index_addresses"),
        Some(2403.0)
    );
    assert_eq!(metric(&metrics, "ipamclaim_webhook_index_ready"), Some(1.0));

    // The wording, and the namespace rule.
    let denied = validate(
        &server,
        create("u1", "ns1", "vm-a.red", "red", &["10.0.0.5/16"], false),
    )
    .await;
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["status"]["code"], 422);
    assert_eq!(
        denied["status"]["message"],
        "IPAMClaim.k8s.cni.cncf.io \"vm-a.red\" is invalid: spec.ipRequests[0]: Invalid value: \"10.0.0.5/16\": address 10.0.0.5 is already allocated to IPAMClaim \"vm-b.red\" on network \"red\""
    );
    let elsewhere = validate(
        &server,
        create("u2", "ns3", "vm-q.red", "red", &["10.0.0.50/24"], false),
    )
    .await;
    assert_eq!(
        cause(&elsewhere),
        "Invalid value: \"10.0.0.50/24\": address 10.0.0.50 is already allocated to an IPAMClaim in another namespace on network \"red\""
    );
    // The same address on another network is free.
    let other_net = validate(
        &server,
        create("u3", "ns1", "vm-a.blue", "blue", &["10.0.0.5/24"], false),
    )
    .await;
    assert_eq!(other_net["allowed"], true);

    // A dry run reserves nothing; an admitted review reserves until the watch shows it.
    assert!(free(&server, "ns1", "10.0.0.7").await);
    let d = validate(
        &server,
        create("u4", "ns1", "vm-d.red", "red", &["10.0.0.7/24"], false),
    )
    .await;
    assert_eq!(d["allowed"], true);
    let e = validate(
        &server,
        create("u5", "ns1", "vm-e.red", "red", &["10.0.0.7/24"], false),
    )
    .await;
    assert_eq!(e["allowed"], false);
    assert!(cause(&e).contains("to IPAMClaim \"vm-d.red\""), "{e}");
    assert_eq!(
        metric(
            &server.metrics().await,
            "ipamclaim_webhook_index_reservations"
        ),
        Some(2.0)
    );
    // The watch shows vm-d (ADDED): its reservation yields to the index.
    api.add(claim("ns1", "vm-d.red", "red", &["10.0.0.7/24"]));
    eventually("the reservation yields to the watched claim", || async {
        metric(
            &server.metrics().await,
            "ipamclaim_webhook_index_reservations",
        ) == Some(1.0)
    })
    .await;
    assert!(!free(&server, "ns1", "10.0.0.7").await);

    // MODIFIED moves vm-d to another address; DELETED releases vm-b's.
    api.modify(claim("ns1", "vm-d.red", "red", &["10.0.0.8/24"]));
    eventually("a modified claim releases its old address", || async {
        free(&server, "ns1", "10.0.0.7").await
    })
    .await;
    assert!(!free(&server, "ns1", "10.0.0.8").await);
    api.delete("ns1", "vm-b.red");
    eventually("a deleted claim releases its addresses", || async {
        free(&server, "ns1", "10.0.0.5").await
    })
    .await;

    // A bookmark, then the watch ends as the API server ends it every few minutes: the
    // watcher resumes from the bookmark's version, without a re-list.
    let bookmark = api.bookmark();
    api.close_watches();
    eventually("a second watch", || async {
        api.served().iter().filter(|s| s.verb == "watch").count() >= 2
    })
    .await;
    api.add(claim("ns1", "vm-f.red", "red", &["10.0.0.9/24"]));
    eventually("an event after the watch resumed", || async {
        !free(&server, "ns1", "10.0.0.9").await
    })
    .await;
    let served = api.served();
    assert_eq!(
        served.iter().filter(|s| s.verb == "list").count(),
        3,
        "no re-list: {served:?}"
    );
    let watches: Vec<_> = served.iter().filter(|s| s.verb == "watch").collect();
    assert!(watches.len() >= 2, "{watches:?}");
    assert_eq!(
        watches[0]
            .query
            .get("allowWatchBookmarks")
            .map(String::as_str),
        Some("true")
    );
    let resumed_rv: u64 = watches[1].query["resourceVersion"].parse().expect("rv");
    assert_eq!(
        resumed_rv, bookmark,
        "resumed from the bookmark: {watches:?}"
    );

    // Versions expire while vm-x disappears unseen: the resumed watch gets 410, and the
    // watcher re-lists. Until the re-list completes, the last index keeps serving.
    api.delete_unseen("ns2", "vm-x.red");
    api.expire_versions();
    api.hold_lists(true);
    api.close_watches();
    eventually("the watch broke on 410", || async {
        metric(
            &server.metrics().await,
            "ipamclaim_webhook_watch_restarts_total",
        )
        .unwrap_or(0.0)
            >= 1.0
    })
    .await;
    assert_eq!(readyz(&probe).await.0, 200, "the last index keeps serving");
    assert!(
        !free(&server, "ns3", "10.0.0.50").await,
        "vm-x still held by the last index"
    );
    api.hold_lists(false);
    eventually("the re-list shows vm-x gone", || async {
        free(&server, "ns3", "10.0.0.50").await
    })
    .await;
    assert!(api.served().iter().filter(|s| s.verb == "list").count() >= 6);

    let metrics = server.metrics().await;
    assert!(metric(&metrics, "ipamclaim_webhook_address_conflicts_total").unwrap_or(0.0) >= 5.0);
    assert!(metric(&metrics, "ipamclaim_webhook_watch_last_event_age_seconds").is_some());
    assert_eq!(metric(&metrics, "ipamclaim_webhook_index_ready"), Some(1.0));
    server.stop().await;
}

// Check-then-reserve: concurrent reviews for one address, on a server with two workers.
#[tokio::test]
async fn of_concurrent_reviews_for_one_address_one_replica_admits_one() {
    let api = StandIn::start(Vec::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(&api.kubeconfig(dir.path()), 2);
    let probe = server.probe_url("");
    eventually("ready", || async { readyz(&probe).await.0 == 200 }).await;
    let url = server.url("/validate");
    for round in 0..5 {
        let ip = format!("10.1.{round}.1/24");
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (client, url) = (server.client(), url.clone());
                let body = create(
                    &format!("r{round}-{i}"),
                    "ns1",
                    &format!("vm-{i}.red"),
                    "red",
                    &[&ip],
                    false,
                );
                tokio::spawn(async move {
                    post_json(&client, &url, body).await.json()["response"]["allowed"] == true
                })
            })
            .collect();
        let mut admitted = 0;
        for t in tasks {
            if t.await.expect("task") {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 1, "round {round}");
    }
    server.stop().await;
}

// --- the real binary ---

/// `serve` with certificates in `dir`, logging to `dir/server.log`; `extra` flags and `env`.
/// Not waited for: the caller watches its probes.
fn spawn_serve(dir: &Path, extra: &[&str], env: &[(&str, &Path)]) -> (Serving, String) {
    let certs = ipamclaim_webhook::certs::generate(&Default::default()).expect("certs");
    let mut launch = Launch::serving(dir, &certs)
        .args(&["--workers", "1", "--log-format", "json"])
        .args(extra);
    launch.cmd.env("HOME", dir);
    for (k, v) in env {
        launch.cmd.env(k, v);
    }
    let serving = launch.spawn();
    let probe = serving.probe_url("");
    (serving, probe)
}

#[tokio::test]
async fn an_rbac_refusal_keeps_readyz_failing_with_one_log_line_and_no_spin() {
    let api = StandIn::start(vec![claim("ns1", "vm-b.red", "red", &["10.0.0.5/24"])]);
    api.forbid(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path());
    let kubeconfig_arg = kubeconfig.to_string_lossy().into_owned();
    let (mut child, probe) = spawn_serve(
        dir.path(),
        &[
            "--unique-addresses",
            "--kubeconfig",
            &kubeconfig_arg,
            "--reservation-namespace",
            NAMESPACE,
        ],
        &[],
    );

    eventually("the list is refused", || async { !api.served().is_empty() }).await;
    let refused_at = Instant::now();
    let mut last = (0, String::new());
    while refused_at.elapsed() < Duration::from_secs(3) {
        last = readyz(&probe).await;
        assert_eq!(last.0, 503, "{}", last.1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        last.1
            .contains("forbidden to list ipamclaims.k8s.cni.cncf.io"),
        "{}",
        last.1
    );
    // Backoff, not a spin: a handful of attempts in three seconds.
    let attempts = api.served().len();
    assert!(
        (1..=6).contains(&attempts),
        "{attempts} list attempts: {:?}",
        api.served()
    );

    // Granted: the next attempt lists, and the replica becomes ready.
    api.forbid(false);
    eventually("ready once granted", || async {
        readyz(&probe).await.0 == 200
    })
    .await;
    child.kill();
    let log = child.log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot watch IPAMClaims"))
        .collect();
    assert_eq!(refusals.len(), 1, "one line for the refusal:\n{log}");
    assert!(refusals[0].contains("\"verb\":\"list\""), "{}", refusals[0]);
    assert!(
        refusals[0].contains("get, list and watch on ipamclaims.k8s.cni.cncf.io"),
        "{}",
        refusals[0]
    );
    assert_eq!(
        // "code: 403" (the error), not any "403" (a random port may hold those digits).
        log.lines().filter(|l| l.contains("code: 403")).count(),
        1,
        "no retry logs the 403 again:\n{log}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("index of IPAMClaims ready"))
            .count(),
        1,
        "{log}"
    );
}

// Without --unique-addresses nothing changes: the server never reaches the API, even with a
// kubeconfig in the environment.
#[tokio::test]
async fn without_the_flag_the_server_never_reaches_the_api() {
    let api = StandIn::start(vec![claim("ns1", "vm-b.red", "red", &["10.0.0.5/24"])]);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path());
    let (child, probe) = spawn_serve(dir.path(), &[], &[("KUBECONFIG", &kubeconfig)]);
    eventually("ready", || async {
        match plain_client().get(format!("{probe}/readyz")).send().await {
            Ok(r) => r.status().as_u16() == 200,
            Err(_) => false,
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.served(), Vec::new());
    let log = child.log();
    assert!(!log.contains("IPAMClaims"), "{log}");
}

// A kubeconfig that cannot be used stops serve at start-up, naming it.
#[test]
fn a_broken_kubeconfig_fails_start_up_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = ipamclaim_webhook::certs::generate(&Default::default()).expect("certs");
    certs.write_to(dir.path()).expect("write certs");
    let missing = dir.path().join("no-such-kubeconfig");
    let out = Command::new(bin())
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.path().join("tls.key"))
        .arg("--unique-addresses")
        .arg("--kubeconfig")
        .arg(&missing)
        .output()
        .expect("serve runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-kubeconfig"), "{stderr}");
}
