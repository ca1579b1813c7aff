//! Criterion benchmarks of `--check-networks`: what the network check adds to a review with
//! two addresses when 10,000 networks are indexed, and the memory the index takes.
//!
//! `cargo bench --bench networks` measures, and prints the RSS of 100,000 claims and 10,000
//! NADs indexed in this process; `cargo test --benches` runs each case once. Compare
//! `networks/review_on_10k` (the whole review with the flag on) and `networks/check_*` with
//! `networks/review_off` (the whole review without it) of the same run: with the flag off the
//! pipeline never calls the check. `BENCH=networks GROUP=networks
//! scripts/bench-instructions.sh review_off review_on_10k` counts instructions of the two.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;

use criterion::{criterion_group, Criterion};
use ipamclaim_webhook::admission::answer::caps::Warnings;
use ipamclaim_webhook::admission::rules::networks::{self, Networks as _};
use ipamclaim_webhook::admission::rules::Verdict;
use ipamclaim_webhook::admission::{decode, review, Options, Webhook};
use ipamclaim_webhook::cluster::networks::{Nad, Nads, SharedNetworks};
use ipamclaim_webhook::cluster::{Claim, Claims};
use serde_json::Value;

/// Networks indexed, each defined by one NAD in a namespace of its own.
const NETWORKS: usize = 10_000;
/// Claims indexed beside them for the memory figure, each with two addresses.
const CLAIMS: usize = 100_000;

/// The typical review: a status UPDATE setting `10.128.20.8/24` and `fd10:128:20::8/64` on
/// network `tenantred` in `ns1`.
const STATUS_UPDATE: &str = "validate/captured-04-validate-update-status.request.json";

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The config of network `i`: OVN-Kubernetes layer2 in the main, with every other shape the
/// parser reads mixed in; `tenantred` is the one the review is on.
fn config(i: usize) -> (String, String) {
    let (a, b) = (i >> 8, i & 0xff);
    let name = if i == 0 {
        "tenantred".to_owned()
    } else {
        format!("net-{i}")
    };
    let config = match i % 5 {
        _ if i == 0 => r#"{"cniVersion":"1.0.0","name":"tenantred","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.128.20.0/24,fd10:128:20::/64","excludeSubnets":"10.128.20.0/29","allowPersistentIPs":true}"#.to_owned(),
        0 | 1 => format!(
            r#"{{"cniVersion":"1.0.0","name":"{name}","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.{a}.{b}.0/24,fd10:{a:x}:{b:x}::/64","excludeSubnets":"10.{a}.{b}.0/29","allowPersistentIPs":true}}"#
        ),
        2 => format!(
            r#"{{"cniVersion":"1.1.0","name":"{name}","type":"ovn-k8s-cni-overlay","role":"primary","topology":"layer2","subnets":"10.{a}.{b}.0/24,fd10:{a:x}:{b:x}::/64","allowPersistentIPs":true}}"#
        ),
        3 => format!(
            r#"{{"cniVersion":"0.3.1","name":"{name}","type":"macvlan","ipam":{{"type":"whereabouts","ipRanges":[{{"range":"10.{a}.{b}.0/24","range_start":"10.{a}.{b}.10","range_end":"10.{a}.{b}.99"}},{{"range":"fd10:{a:x}:{b:x}::/64","exclude":["fd10:{a:x}:{b:x}::1/128"]}}]}}}}"#
        ),
        _ => format!(
            r#"{{"cniVersion":"1.0.0","name":"{name}","type":"bridge","ipam":{{"type":"host-local","ranges":[[{{"subnet":"10.{a}.{b}.0/24","rangeStart":"10.{a}.{b}.20"}}]]}}}}"#
        ),
    };
    (name, config)
}

/// 10,000 NADs, each parsed as the watch parses them.
fn nads() -> Vec<Nad> {
    (0..NETWORKS)
        .map(|i| {
            let (_, config) = config(i);
            let namespace = if i == 0 {
                "ns1".to_owned()
            } else {
                format!("ns-{i}")
            };
            Nad::parse(&namespace, &format!("nad-{i}"), Some(&config))
        })
        .collect()
}

/// The object and old object of a review, as the pipeline walks them.
fn objects(review: &[u8]) -> (String, String) {
    let review: Value = serde_json::from_slice(review).expect("json");
    let request = &review["request"];
    (
        request["object"].to_string(),
        request["oldObject"].to_string(),
    )
}

fn check(c: &mut Criterion) {
    let view = std::sync::Arc::new(SharedNetworks::of(nads().into_iter().collect()));
    assert_eq!(view.stats().counts.networks, NETWORKS);
    let update = fixture(STATUS_UPDATE);
    let (object, old) = objects(&update);
    let object = decode::walk(&object, false).expect("object").claim;
    let old = decode::walk(&old, false).expect("old object").claim;
    // Both addresses outside their network: two errors to word.
    let wrong_text = String::from_utf8(update.clone())
        .expect("utf-8")
        .replace("10.128.20.8/24", "10.9.0.5/24")
        .replace("fd10:128:20::8/64", "fd10:9::5/64");
    let (wrong, _) = objects(wrong_text.as_bytes());
    let wrong = decode::walk(&wrong, false).expect("object").claim;

    let mut verdict = Verdict::default();
    let mut warnings = Warnings::new();
    networks::check(
        &*view,
        "ns1",
        &object,
        Some(&old),
        &mut verdict,
        &mut warnings,
    );
    assert!(
        verdict.errors.is_empty() && warnings.is_empty(),
        "{verdict:?}"
    );
    networks::check(
        &*view,
        "ns1",
        &wrong,
        Some(&old),
        &mut verdict,
        &mut warnings,
    );
    assert_eq!(verdict.errors.len(), 2);

    let mut group = c.benchmark_group("networks");
    group.bench_function("review_off", |b| {
        let opts = Options::default();
        b.iter(|| review(black_box(&update), Webhook::Validate, &opts).expect("review"));
    });
    // The whole review with the flag on: what `scripts/bench-instructions.sh` compares with
    // `review_off` (BENCH=networks GROUP=networks).
    let on = Options {
        check_networks: Some(view.clone()),
        ..Options::default()
    };
    let reviewed = review(&update, Webhook::Validate, &on).expect("review");
    assert!(
        reviewed.summary.allowed && reviewed.summary.warnings == 0,
        "{:?}",
        reviewed.summary
    );
    group.bench_function("review_on_10k", |b| {
        b.iter(|| review(black_box(&update), Webhook::Validate, &on).expect("review"));
    });
    group.bench_function("check_status_update_10k", |b| {
        b.iter(|| {
            let mut verdict = Verdict::default();
            let mut warnings = Warnings::new();
            networks::check(
                &*view,
                black_box("ns1"),
                black_box(&object),
                Some(&old),
                &mut verdict,
                &mut warnings,
            );
            verdict
        });
    });
    group.bench_function("check_two_misfits_10k", |b| {
        b.iter(|| {
            let mut verdict = Verdict::default();
            let mut warnings = Warnings::new();
            networks::check(
                &*view,
                black_box("ns1"),
                black_box(&wrong),
                Some(&old),
                &mut verdict,
                &mut warnings,
            );
            verdict
        });
    });
    group.bench_function("lookup_10k", |b| {
        b.iter(|| view.network(black_box("net-5000")));
    });
    group.finish();
}

criterion_group!(benches, check);

/// (VmRSS, VmHWM) of this process in KiB.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The RSS that 100,000 claims and then 10,000 NADs add to this process.
fn memory() {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let (start, _) = rss();
    let claims: Claims = (0..CLAIMS)
        .map(|i| {
            let (a, b, c) = (i >> 16, (i >> 8) & 0xff, i & 0xff);
            Claim {
                namespace: format!("ns{}", i % 100),
                name: format!("vm-{i}.tenantred"),
                uid: format!("00000000-0000-4000-8000-{i:012}"),
                network: "tenantred".to_owned(),
                addresses: vec![
                    IpAddr::from([10, 200 + a as u8, b as u8, c as u8]),
                    format!("fd10:200:{a:x}:{b:x}::{c:x}")
                        .parse()
                        .expect("ipv6"),
                ],
            }
        })
        .collect();
    let (with_claims, _) = rss();
    let parsed = nads();
    let (with_parsed, _) = rss();
    let mut index: Nads = parsed.into_iter().collect();
    index.shrink_to_fit();
    let view = SharedNetworks::of(index);
    let (with_nads, peak) = rss();
    let counts = view.stats().counts;
    let heap: usize = (0..NETWORKS)
        .filter_map(|i| view.network(&config(i).0))
        .map(|n| n.heap_bytes())
        .sum();
    println!(
        "memory: {} claims, {} NADs ({} networks)",
        claims.len(),
        counts.nads,
        counts.networks
    );
    println!("  RSS at start: {:.1} MiB", mib(start));
    println!("  + 100,000 claims indexed: {:.1} MiB", mib(with_claims));
    println!(
        "  + 10,000 NADs indexed: {:.1} MiB (peak {:.1} MiB, while the parsed list was held: {:.1} MiB)",
        mib(with_nads),
        mib(peak),
        mib(with_parsed)
    );
    println!(
        "  the network index: {:.1} MiB of RSS, {} bytes a network; the views' own heap: {} bytes a network",
        mib(with_nads.saturating_sub(with_claims)),
        with_nads.saturating_sub(with_claims) * 1024 / NETWORKS as u64,
        heap / NETWORKS
    );
    black_box((claims, view));
}

fn main() {
    // Under `cargo bench` (not `cargo test --benches`), the memory figures too.
    if std::env::args().any(|a| a == "--bench") {
        memory();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
