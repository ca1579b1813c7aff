//! Criterion benchmarks of `--unique-addresses`: what the lookup of a review's addresses adds
//! to `admission::review` with 100,000 claims of two addresses each indexed, and the lookup
//! alone.
//!
//! `cargo bench --bench unique_addresses` measures; `cargo test --benches` runs each case once.
//! Compare `unique/*_off` with `unique/*_on_100k` of the same run.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use ipamclaim_webhook::admission::rules::conflicts::{Claimant, Holders};
use ipamclaim_webhook::admission::{review, Options, Webhook};
use ipamclaim_webhook::cluster::{Claim, Claims, SharedIndex};

/// Claims indexed, each with an IPv4 and an IPv6 address.
const CLAIMS: usize = 100_000;

/// The typical review: a status UPDATE setting an IPv4 and an IPv6 address (both looked up).
const STATUS_UPDATE: &str = "validate/captured-04-validate-update-status.request.json";
/// A CREATE asking for two addresses held by another claim (a denial with two causes).
const CONFLICT: &str =
    "validate-unique-addresses/create-conflict-in-status-and-ip-requests.request.json";

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// 100,000 claims on the reviews' network, in 100 namespaces, none holding what the status
/// update asks for; plus the holders the conflict fixture meets.
fn index() -> Arc<SharedIndex> {
    let mut claims: Claims = (0..CLAIMS)
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
    for (name, ip) in [
        ("vm-b.tenantred", "10.128.20.9"),
        ("vm-a.tenantred", "fd10:128:20::8"),
    ] {
        claims.apply(Claim {
            namespace: "ns1".to_owned(),
            name: name.to_owned(),
            uid: String::new(),
            network: "tenantred".to_owned(),
            addresses: vec![ip.parse().expect("ip")],
        });
    }
    assert_eq!(claims.addresses(), 2 * CLAIMS + 2);
    Arc::new(SharedIndex::of(claims))
}

fn unique(c: &mut Criterion) {
    let index = index();
    let off = Options::default();
    let on = Options {
        unique_addresses: Some(index.clone()),
        ..Options::default()
    };
    let update = fixture(STATUS_UPDATE);
    let conflict = fixture(CONFLICT);
    // Time the paths meant: the update admitted either way, the conflict denied only with
    // the index.
    assert!(
        review(&update, Webhook::Validate, &on)
            .expect("answered")
            .summary
            .allowed
    );
    assert!(
        review(&conflict, Webhook::Validate, &off)
            .expect("answered")
            .summary
            .allowed
    );
    assert!(
        !review(&conflict, Webhook::Validate, &on)
            .expect("answered")
            .summary
            .allowed
    );

    let mut group = c.benchmark_group("unique");
    for (name, body, opts) in [
        ("status_update_off", &update, &off),
        ("status_update_on_100k", &update, &on),
        ("conflict_off", &conflict, &off),
        ("conflict_on_100k", &conflict, &on),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| review(black_box(body), Webhook::Validate, opts).expect("answered"))
        });
    }
    // The lookups of the status update alone: two addresses, neither held.
    let claimant = Claimant {
        namespace: "ns1",
        name: "vm-a.tenantred",
    };
    let v4: IpAddr = "10.128.20.8".parse().expect("ip");
    let v6: IpAddr = "fd10:128:20::8".parse().expect("ip");
    group.bench_function("two_lookups_100k", |b| {
        b.iter(|| {
            (
                index.holder(black_box("tenantred"), black_box(v4), &claimant),
                index.holder(black_box("tenantred"), black_box(v6), &claimant),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, unique);
criterion_main!(benches);
