//! `serve --unique-addresses` across replicas (DESIGN §9, "Across replicas"): two real `serve`
//! processes, as the Deployment runs them, against one stand-in API server (tests/standin),
//! each with its own index and in-memory reservations, and reservation Leases in the stand-in.
//! Reviews are sent to the replicas over TLS, as the API server would, and what the stand-in
//! was asked (Lease creates, reads, updates, deletes) is checked.

mod common;
mod standin;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{Launch, Serving};
use common::{client, metric, plain_client, post_json, tls_client, PATIENCE};
use ipamclaim_webhook::certs::{self, DevCerts};
use rustls::version::{TLS12, TLS13};
use serde_json::{json, Value};
use standin::{claim, LeaseCall, StandIn};

/// The namespace of the reservation Leases.
const NAMESPACE: &str = "ipamclaim-webhook";
/// The network every claim here is on.
const NETWORK: &str = "red";

/// An AdmissionReview of `operation` on `object` (and `old`).
fn review(
    uid: &str,
    operation: &str,
    sub_resource: Option<&str>,
    object: &Value,
    old: Option<&Value>,
    dry_run: bool,
) -> Vec<u8> {
    let meta = &object["metadata"];
    let mut request = json!({
        "uid": uid,
        "kind": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "kind": "IPAMClaim"},
        "resource": {"group": "k8s.cni.cncf.io", "version": "v1alpha1", "resource": "ipamclaims"},
        "name": meta["name"],
        "namespace": meta["namespace"],
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:kubevirt:kubevirt-ipam-controller"},
        "object": object,
        "oldObject": old,
        "dryRun": dry_run,
    });
    if let Some(sub) = sub_resource {
        request["subResource"] = json!(sub);
    }
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    }))
    .expect("json")
}

/// A claim as a CREATE carries it: `ipRequests` pre-assigned, no status, the uid the API server
/// gave it (the same as the stand-in's claim of that name).
fn new_claim(namespace: &str, name: &str, ip_requests: &[&str]) -> Value {
    json!({
        "apiVersion": "k8s.cni.cncf.io/v1alpha1",
        "kind": "IPAMClaim",
        "metadata": {"name": name, "namespace": namespace,
                     "uid": format!("uid-{namespace}-{name}"),
                     "creationTimestamp": "2026-11-27T10:00:00Z", "generation": 1,
                     "labels": {"kubevirt.io/vm": "vm"}},
        "spec": {"network": NETWORK, "interface": "", "ipRequests": ip_requests},
    })
}

/// A CREATE of `namespace/name` asking for `ips` in `spec.ipRequests`.
fn create(uid: &str, namespace: &str, name: &str, ips: &[&str], dry_run: bool) -> Vec<u8> {
    let object = new_claim(namespace, name, ips);
    review(uid, "CREATE", None, &object, None, dry_run)
}

/// An OVN-Kubernetes status update of `namespace/name` from `old` addresses to `new` ones.
fn status_update(uid: &str, namespace: &str, name: &str, old: &[&str], new: &[&str]) -> Vec<u8> {
    let before = claim(namespace, name, NETWORK, old);
    let mut after = claim(namespace, name, NETWORK, new);
    after["status"]["ownerPod"]["name"] = json!(format!("virt-launcher-{name}-2"));
    review(uid, "UPDATE", Some("status"), &after, Some(&before), false)
}

/// Whether an answer admits.
fn allowed(response: &Value) -> bool {
    response["allowed"] == true
}

/// The first cause's message of a denial.
fn cause(response: &Value) -> String {
    response
        .pointer("/status/details/causes/0/message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
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

/// The Lease writes the stand-in answered with a success, by verb.
fn writes(calls: &[LeaseCall], verb: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.verb == verb && c.status < 300)
        .count()
}

/// Two `serve` processes, each with its own index, against one stand-in.
struct Replicas {
    servers: Vec<Serving>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Replicas {
    /// Two replicas with `--unique-addresses` and `extra` flags, ready (first list indexed).
    async fn start(api: &StandIn, extra: &[&str]) -> Replicas {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = certs::generate(&Default::default()).expect("certs");
        let kubeconfig = api.kubeconfig(dir.path());
        let mut servers = Vec::new();
        for i in 0..2 {
            servers.push(Self::spawn(dir.path(), i, &certs, &kubeconfig, extra).await);
        }
        let client = client(tls_client(
            &certs.ca_pem,
            &[b"http/1.1"],
            &[&TLS13, &TLS12],
            None,
        ));
        let replicas = Replicas {
            servers,
            client,
            _dir: dir,
        };
        for server in &replicas.servers {
            let url = server.probe_url("/readyz");
            eventually("the replica is ready", || async {
                matches!(plain_client().get(&url).send().await, Ok(r) if r.status() == 200)
            })
            .await;
        }
        replicas
    }

    async fn spawn(
        dir: &Path,
        i: usize,
        certs: &DevCerts,
        kubeconfig: &Path,
        extra: &[&str],
    ) -> Serving {
        let own = dir.join(format!("replica-{i}"));
        std::fs::create_dir_all(&own).expect("replica dir");
        let mut launch = Launch::serving(&own, certs)
            .args(&["--workers", "2", "--log-format", "json"])
            .args(&["--shutdown-delay", "0", "--unique-addresses"])
            .args(&["--reservation-namespace", NAMESPACE])
            .args(extra);
        launch.cmd.arg("--kubeconfig").arg(kubeconfig);
        launch.cmd.env("HOME", &own);
        launch.start().await
    }

    /// The `response` of `/validate` (with `query`) on replica `i`.
    async fn validate_with(&self, i: usize, query: &str, body: Vec<u8>) -> Value {
        let url = format!("https://{}/validate{query}", self.servers[i].addr());
        let reply = post_json(&self.client, &url, body).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["response"].clone()
    }

    async fn validate(&self, i: usize, body: Vec<u8>) -> Value {
        self.validate_with(i, "?timeout=5s", body).await
    }

    /// `series` summed over the replicas.
    async fn metric(&self, series: &str) -> f64 {
        let mut sum = 0.0;
        for server in &self.servers {
            sum += metric(&server.metrics().await, series).unwrap_or(0.0);
        }
        sum
    }

    /// Sends `bodies` at once, the i-th to replica `i % 2`; the answers in order.
    async fn all_at_once(&self, bodies: Vec<Vec<u8>>) -> Vec<Value> {
        let barrier = Arc::new(tokio::sync::Barrier::new(bodies.len()));
        let tasks: Vec<_> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let url = format!("https://{}/validate?timeout=5s", self.servers[i % 2].addr());
                let (client, barrier) = (self.client.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    post_json(&client, &url, body).await.json()["response"].clone()
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("task"));
        }
        answers
    }
}

/// Rounds of concurrent CREATEs for one address, four per round, split across the replicas;
/// how many each round admitted, and its answers. The claim admitted (if one) is then written
/// to the stand-in, as the API server would persist it.
async fn rounds(replicas: &Replicas, api: &StandIn, count: usize) -> Vec<(usize, Vec<Value>)> {
    let mut results = Vec::new();
    for round in 0..count {
        let ip = format!("10.9.{}.{}/24", round / 200, round % 200 + 1);
        let bodies = (0..4)
            .map(|i| {
                let name = format!("vm-{round}-{i}.red");
                create(&format!("r{round}-{i}"), "ns1", &name, &[&ip], false)
            })
            .collect();
        let answers = replicas.all_at_once(bodies).await;
        let admitted: Vec<usize> = (0..4).filter(|&i| allowed(&answers[i])).collect();
        for &i in &admitted {
            api.add(claim(
                "ns1",
                &format!("vm-{round}-{i}.red"),
                NETWORK,
                &[&ip],
            ));
        }
        results.push((admitted.len(), answers));
    }
    results
}

const ROUNDS: usize = 40;

// The guarantee of issue 29: whichever replicas the reviews land on, one claim gets an address.
#[tokio::test]
async fn of_concurrent_reviews_for_one_address_split_across_two_replicas_exactly_one_is_admitted() {
    let api = StandIn::start(Vec::new());
    let replicas = Replicas::start(&api, &["--reservation-ttl", "3s"]).await;
    let results = rounds(&replicas, &api, ROUNDS).await;
    for (round, (admitted, answers)) in results.iter().enumerate() {
        assert_eq!(*admitted, 1, "round {round}: {answers:#?}");
        let winner = answers.iter().position(allowed).expect("one admitted");
        let ip = format!("10.9.0.{}", round + 1);
        for (i, answer) in answers.iter().enumerate().filter(|(i, _)| *i != winner) {
            // Found in the index, in memory or through a Lease: the same words. The holder is
            // the winner, or a claim this replica had reserved the address for in memory that
            // the Lease then refused (a reservation names its claim until it is given back).
            let named = |j: usize| {
                format!(
                    "Invalid value: \"{ip}/24\": address {ip} is already allocated to IPAMClaim \"vm-{round}-{j}.red\" on network \"red\""
                )
            };
            let text = cause(answer);
            assert!(
                (0..4).any(|j| j != i && text == named(j)),
                "round {round}, review {i}: {text}"
            );
            assert_eq!(answer["status"]["code"], 422);
        }
    }
    // One Lease created per address; the losing replica found each through it.
    assert_eq!(
        replicas
            .metric("ipamclaim_webhook_reservation_writes_total{write=\"created\"}")
            .await,
        ROUNDS as f64
    );
    let caught = replicas
        .metric("ipamclaim_webhook_reservation_conflicts_total")
        .await;
    assert!(
        caught >= ROUNDS as f64,
        "{caught} conflicts found through Leases in {ROUNDS} rounds"
    );
    // Once the index shows every holder for the grace period, the Leases go.
    eventually("every Lease collected", || async {
        api.leases().is_empty()
    })
    .await;
    let calls = api.lease_calls();
    assert_eq!(writes(&calls, "delete"), ROUNDS, "{calls:?}");
    assert_eq!(writes(&calls, "update"), 0, "nothing renewed or taken over");
    eventually("the replicas forget them", || async {
        replicas
            .metric("ipamclaim_webhook_reservation_leases")
            .await
            == 0.0
    })
    .await;
}

// The control: the same rounds without Leases admit two claims each, one per replica. This is
// the race the Leases close; if it stops showing here, the test above proves nothing.
#[tokio::test]
async fn without_reservations_in_leases_two_replicas_both_admit_one_address() {
    let api = StandIn::start(Vec::new());
    let replicas = Replicas::start(&api, &["--reservations", "Memory"]).await;
    let results = rounds(&replicas, &api, 10).await;
    for (round, (admitted, answers)) in results.iter().enumerate() {
        assert_eq!(*admitted, 2, "round {round}: {answers:#?}");
    }
    assert!(api.lease_calls().is_empty());
}

#[tokio::test]
async fn a_holder_that_never_appears_is_taken_over_after_the_ttl() {
    const TTL: Duration = Duration::from_secs(2);
    let api = StandIn::start(Vec::new());
    let replicas = Replicas::start(&api, &["--reservation-ttl", "2s"]).await;

    // vm-a is admitted by replica 0, but its write never lands (another webhook denied it).
    let a = replicas
        .validate(0, create("a", "ns1", "vm-a.red", &["10.7.0.5/24"], false))
        .await;
    assert!(allowed(&a), "{a}");
    let admitted_at = Instant::now();
    // Replica 1 knows nothing of it but the Lease: a conflict, in the index's words.
    let b = replicas
        .validate(1, create("b1", "ns1", "vm-b.red", &["10.7.0.5/24"], false))
        .await;
    assert!(!allowed(&b));
    assert_eq!(
        cause(&b),
        "Invalid value: \"10.7.0.5/24\": address 10.7.0.5 is already allocated to IPAMClaim \"vm-a.red\" on network \"red\""
    );
    // In another namespace, the holder is not named.
    let x = replicas
        .validate(1, create("x1", "ns2", "vm-x.red", &["10.7.0.5/24"], false))
        .await;
    assert!(
        cause(&x).contains("to an IPAMClaim in another namespace"),
        "{x}"
    );

    // Once the Lease has run out and the API server says vm-a never held the address, vm-b
    // takes it over.
    let mut tries = 1;
    let taken = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        tries += 1;
        let answer = replicas
            .validate(
                1,
                create(
                    &format!("b{tries}"),
                    "ns1",
                    "vm-b.red",
                    &["10.7.0.5/24"],
                    false,
                ),
            )
            .await;
        if allowed(&answer) {
            break Instant::now();
        }
        assert!(
            admitted_at.elapsed() < PATIENCE,
            "never taken over: {answer}"
        );
    };
    assert!(
        taken.duration_since(admitted_at) >= TTL,
        "taken over after {:?}, before the TTL",
        taken.duration_since(admitted_at)
    );
    let leases = api.leases();
    assert_eq!(leases.len(), 1, "{leases:#?}");
    assert!(leases[0]["spec"]["holderIdentity"]
        .as_str()
        .expect("holder")
        .starts_with("ns1/vm-b.red/"));
    assert_eq!(leases[0]["spec"]["leaseTransitions"], 1);
    assert_eq!(
        replicas
            .metric("ipamclaim_webhook_reservation_writes_total{write=\"taken_over\"}")
            .await,
        1.0
    );
    eventually("the take-over's log line", || async {
        replicas.servers[1]
            .log()
            .lines()
            .any(|l| l.contains("reservation taken over") && l.contains("ns1/vm-a.red/"))
    })
    .await;
    // And now vm-a is the one refused, by either replica.
    let a_again = replicas
        .validate(0, create("a2", "ns1", "vm-a.red", &["10.7.0.5/24"], false))
        .await;
    assert!(
        cause(&a_again).contains("to IPAMClaim \"vm-b.red\""),
        "{a_again}"
    );
}

// Two replicas racing to take over one run-out Lease: both read it, both update it conditioned
// on what they read; the API server lets one through, the other's update is refused (409) and
// it judges again: a conflict with the winner.
#[tokio::test]
async fn of_two_take_overs_of_one_lease_exactly_one_wins() {
    use ipamclaim_webhook::cluster::leases::lease;
    let api = StandIn::start(Vec::new());
    let replicas = Replicas::start(&api, &["--reservation-ttl", "30s"]).await;
    let long_ago = "2026-01-01T00:00:00.000000Z";
    for round in 0..10 {
        let ip = format!("10.8.0.{}", round + 1);
        // A Lease of a claim whose write never landed, run out long ago.
        api.put_lease(json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": lease::name(NETWORK, ip.parse().expect("ip")),
                         "namespace": NAMESPACE, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"holderIdentity": "ns1/vm-gone.red/uid-gone", "leaseDurationSeconds": 30,
                     "acquireTime": long_ago, "renewTime": long_ago},
        }));
        let bodies = (0..2)
            .map(|i| {
                create(
                    &format!("t{round}-{i}"),
                    "ns1",
                    &format!("vm-t{round}-{i}.red"),
                    &[&format!("{ip}/24")],
                    false,
                )
            })
            .collect();
        let answers = replicas.all_at_once(bodies).await;
        let admitted: Vec<usize> = (0..2).filter(|&i| allowed(&answers[i])).collect();
        assert_eq!(admitted.len(), 1, "round {round}: {answers:#?}");
        let winner = format!("vm-t{round}-{}.red", admitted[0]);
        let loser = &answers[1 - admitted[0]];
        assert!(
            cause(loser).contains(&format!("to IPAMClaim \"{winner}\"")),
            "round {round}: {loser}"
        );
        let held = api
            .leases()
            .into_iter()
            .find(|l| {
                l["metadata"]["annotations"]["ipamclaim-webhook.k8s.cni.cncf.io/address"]
                    == ip.as_str()
            })
            .expect("the Lease");
        assert!(held["spec"]["holderIdentity"]
            .as_str()
            .expect("holder")
            .starts_with(&format!("ns1/{winner}/")));
    }
    let calls = api.lease_calls();
    let updated = writes(&calls, "update");
    assert_eq!(updated, 10, "one take-over a round: {calls:?}");
    let refused = calls
        .iter()
        .filter(|c| c.verb == "update" && c.status == 409)
        .count();
    eprintln!("{refused} of 20 take-overs were refused as stale (409) and judged again");
}

#[tokio::test]
async fn a_holder_the_api_shows_is_never_taken_over_though_the_index_lags() {
    let api = StandIn::start(Vec::new());
    let replicas = Replicas::start(&api, &["--reservation-ttl", "1s"]).await;
    let a = replicas
        .validate(0, create("a", "ns1", "vm-a.red", &["10.7.1.5/24"], false))
        .await;
    assert!(allowed(&a));
    // vm-a is written, but no watch event tells the replicas: only a GET finds it.
    api.add_unseen(claim("ns1", "vm-a.red", NETWORK, &["10.7.1.5/24"]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (i, uid) in [(1, "b1"), (0, "b2")] {
        let b = replicas
            .validate(i, create(uid, "ns1", "vm-b.red", &["10.7.1.5/24"], false))
            .await;
        assert!(
            cause(&b).contains("to IPAMClaim \"vm-a.red\""),
            "replica {i}: {b}"
        );
    }
    assert_eq!(writes(&api.lease_calls(), "update"), 0);
}

#[tokio::test]
async fn a_dry_run_and_a_review_that_adds_no_address_write_nothing() {
    let api = StandIn::start(vec![claim("ns1", "vm-c.red", NETWORK, &["10.7.2.5/24"])]);
    let replicas = Replicas::start(&api, &[]).await;
    // kubectl apply --dry-run=server: judged, admitted, nothing written.
    let dry = replicas
        .validate(0, create("d", "ns1", "vm-d.red", &["10.7.2.6/24"], true))
        .await;
    assert!(allowed(&dry));
    // KubeVirt's CREATE: no address.
    let kubevirt = replicas
        .validate(1, create("k", "ns1", "vm-k.red", &[], false))
        .await;
    assert!(allowed(&kubevirt));
    // A status update that keeps the address (a new pod after a migration).
    let keep = replicas
        .validate(
            0,
            status_update("s", "ns1", "vm-c.red", &["10.7.2.5/24"], &["10.7.2.5/24"]),
        )
        .await;
    assert!(allowed(&keep), "{keep}");
    assert_eq!(api.lease_calls(), Vec::new());
    assert_eq!(
        replicas
            .metric("ipamclaim_webhook_reservation_duration_seconds_count")
            .await,
        0.0,
        "no review waited"
    );
    // The same status update adding an address: one Lease.
    let add = replicas
        .validate(
            0,
            status_update(
                "s2",
                "ns1",
                "vm-c.red",
                &["10.7.2.5/24"],
                &["10.7.2.5/24", "fd00:7:2::5/64"],
            ),
        )
        .await;
    assert!(allowed(&add), "{add}");
    let calls = api.lease_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!((calls[0].verb, calls[0].status), ("create", 201));
}

// The figure of issue 29: the API writes of one VM start, a KubeVirt CREATE and then
// OVN-Kubernetes' status update with a dual-stack pair, until the Leases are collected.
#[tokio::test]
async fn a_vm_start_costs_one_lease_create_and_one_delete_per_address() {
    let api = StandIn::start(Vec::new());
    let replicas = Replicas::start(&api, &["--reservation-ttl", "1s"]).await;
    let kubevirt = replicas
        .validate(0, create("k", "ns1", "vm-v.red", &[], false))
        .await;
    assert!(allowed(&kubevirt));
    api.add(claim("ns1", "vm-v.red", NETWORK, &[]));
    let ips = ["10.7.3.5/24", "fd00:7:3::5/64"];
    let ovn = replicas
        .validate(1, status_update("o", "ns1", "vm-v.red", &[], &ips))
        .await;
    assert!(allowed(&ovn), "{ovn}");
    api.modify(claim("ns1", "vm-v.red", NETWORK, &ips));
    eventually("both Leases collected", || async {
        api.leases().is_empty()
    })
    .await;
    let calls = api.lease_calls();
    let counted: Vec<_> = ["create", "update", "delete"]
        .iter()
        .map(|verb| writes(&calls, verb))
        .collect();
    assert_eq!(counted, [2, 0, 2], "{calls:?}");
    assert!(
        calls.iter().all(|c| c.status < 300),
        "no failed call: {calls:?}"
    );
}

#[tokio::test]
async fn a_reservation_not_written_in_time_is_refused_with_500_and_undone() {
    let api = StandIn::start(Vec::new());
    let replicas = Replicas::start(&api, &[]).await;
    api.hold_lease_writes(true);
    let started = Instant::now();
    let late = replicas
        .validate_with(
            0,
            "?timeout=1s",
            create("l1", "ns1", "vm-l.red", &["10.7.4.5/24"], false),
        )
        .await;
    // Answered (200, not 504): within its deadline.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!allowed(&late));
    assert_eq!(late["status"]["code"], 500);
    assert_eq!(late["status"]["reason"], "InternalError");
    let message = late["status"]["message"].as_str().expect("message");
    assert!(
        message.contains("reservation of the claim's addresses could not be written")
            && message.contains("did not answer within")
            && message.contains("fail closed"),
        "{message}"
    );
    assert_eq!(
        replicas
            .metric("ipamclaim_webhook_reservation_errors_total{reason=\"timeout\"}")
            .await,
        1.0
    );
    // The write lands late: the refused review's Lease is deleted again.
    api.hold_lease_writes(false);
    eventually("the late Lease is released", || async {
        api.leases().is_empty() && writes(&api.lease_calls(), "delete") == 1
    })
    .await;
    // Nothing is left held by the refused review: another claim gets the address.
    let other = replicas
        .validate(0, create("m1", "ns1", "vm-m.red", &["10.7.4.5/24"], false))
        .await;
    assert!(allowed(&other), "{other}");

    // RBAC refusing the Leases: refused with 500, naming it.
    api.forbid_leases(true);
    let forbidden = replicas
        .validate(1, create("f1", "ns1", "vm-f.red", &["10.7.4.6/24"], false))
        .await;
    assert_eq!(forbidden["status"]["code"], 500);
    let message = forbidden["status"]["message"].as_str().expect("message");
    assert!(message.contains("forbidden"), "{message}");
    // The log's writer is asynchronous: the line comes shortly after the answer.
    eventually("the refusal's log line", || async {
        replicas.servers[1]
            .log()
            .contains("could not be reserved in the API server")
    })
    .await;
}

/// The `p`-th percentile of sorted `samples`.
fn percentile(samples: &[Duration], p: f64) -> Duration {
    let at = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[at]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

// The figures of issue 29 (BENCHMARKS.md, "Reservations across replicas"), not a check: the
// round trip of a CREATE that reserves one new address, and of KubeVirt's CREATE that adds
// none, against a replica with Leases and one without, interleaved so that both see the same
// machine. `IPAMCLAIM_WEBHOOK_BIN=<release build> cargo test --test reservations -- --ignored
// --nocapture`.
#[tokio::test]
#[ignore = "a measurement: run it by name with --ignored --nocapture"]
async fn measure_what_a_reservation_adds_to_a_review() {
    const N: usize = 1000;
    let api = StandIn::start(Vec::new());
    let with = Replicas::start(&api, &[]).await;
    let without = Replicas::start(&api, &["--reservations", "Memory"]).await;
    let mut times: [Vec<Duration>; 4] = Default::default();
    for i in 0..N + 50 {
        let reviews = [
            (
                &with,
                create(
                    &format!("a{i}"),
                    "ns1",
                    &format!("vm-a{i}.red"),
                    &[&format!("10.{}.{}.1/24", 100 + i / 250, i % 250)],
                    false,
                ),
            ),
            (
                &without,
                create(
                    &format!("b{i}"),
                    "ns1",
                    &format!("vm-b{i}.red"),
                    &[&format!("10.{}.{}.1/24", 50 + i / 250, i % 250)],
                    false,
                ),
            ),
            (
                &with,
                create(&format!("c{i}"), "ns1", &format!("vm-c{i}.red"), &[], false),
            ),
            (
                &without,
                create(&format!("d{i}"), "ns1", &format!("vm-d{i}.red"), &[], false),
            ),
        ];
        for (k, (replicas, body)) in reviews.into_iter().enumerate() {
            let started = Instant::now();
            let answer = replicas.validate(0, body).await;
            let took = started.elapsed();
            assert!(allowed(&answer), "{answer}");
            // The first 50 warm the connections up.
            if i >= 50 {
                times[k].push(took);
            }
        }
    }
    let names = [
        "one new address, Leases",
        "one new address, Memory",
        "no address (KubeVirt), Leases",
        "no address (KubeVirt), Memory",
    ];
    println!("| review, reservations | p50 | p90 | p99 |");
    println!("|---|---:|---:|---:|");
    for (name, samples) in names.iter().zip(times.iter_mut()) {
        samples.sort();
        println!(
            "| {name} | {} | {} | {} |",
            micros(percentile(samples, 0.5)),
            micros(percentile(samples, 0.9)),
            micros(percentile(samples, 0.99))
        );
    }
    let text = with.servers[0].metrics().await;
    let (sum, count) = (
        metric(&text, "ipamclaim_webhook_reservation_duration_seconds_sum").unwrap_or(0.0),
        metric(
            &text,
            "ipamclaim_webhook_reservation_duration_seconds_count",
        )
        .unwrap_or(0.0),
    );
    println!(
        "server side, Leases: {count} reviews waited {} on average for their Lease",
        micros(Duration::from_secs_f64(sum / count.max(1.0)))
    );
    let calls = api.lease_calls();
    println!(
        "Lease calls: {} creates, {} other",
        writes(&calls, "create"),
        calls.len() - writes(&calls, "create")
    );
}

// Outside a pod, with no namespace for the Leases, serve refuses to start (fail closed) and
// says what to give it, rather than writing Leases to a namespace it guessed.
#[test]
fn without_a_namespace_for_the_leases_serve_refuses_to_start_naming_the_flag() {
    use ipamclaim_webhook::cluster::leases::reserver::POD_NAMESPACE_FILE;
    if Path::new(POD_NAMESPACE_FILE).exists() {
        // In a pod the pod's own namespace is the default: nothing to refuse here.
        eprintln!("skipped: {POD_NAMESPACE_FILE} exists (running in a pod)");
        return;
    }
    let api = StandIn::start(Vec::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = certs::generate(&Default::default()).expect("certs");
    certs.write_to(dir.path()).expect("write certs");
    let kubeconfig = api.kubeconfig(dir.path());
    let out = std::process::Command::new(common::process::bin())
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(dir.path().join(certs::CERT_FILE))
        .arg("--tls-key")
        .arg(dir.path().join(certs::KEY_FILE))
        .arg("--unique-addresses")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env_remove("IPAMCLAIM_WEBHOOK_RESERVATION_NAMESPACE")
        .env_remove("IPAMCLAIM_WEBHOOK_RESERVATIONS")
        .output()
        .expect("serve runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--reservation-namespace") && stderr.contains("--reservations Memory"),
        "{stderr}"
    );
    assert!(api.lease_calls().is_empty());
}
