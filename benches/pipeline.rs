//! Criterion benchmarks of the admission pipeline: review bytes in, review bytes out.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipamclaim_webhook::admission::{review, Options, Webhook};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pipeline(c: &mut Criterion) {
    let options = Options::default();
    let cases = [
        (
            "validate_create_valid",
            Webhook::Validate,
            "validate/captured-02-validate-create.request.json",
        ),
        (
            "validate_status_update_dual_stack",
            Webhook::Validate,
            "validate/captured-04-validate-update-status.request.json",
        ),
        (
            "validate_denied_several_causes",
            Webhook::Validate,
            "validate/status-ips-winner-chicken-dinner.request.json",
        ),
        (
            "mutate_with_patch",
            Webhook::Mutate,
            "mutate/status-ips-non-canonical-ipv6.request.json",
        ),
    ];
    let mut group = c.benchmark_group("pipeline");
    for (name, webhook, file) in cases {
        let body = fixture(file);
        // Fail the bench rather than time an error path by mistake.
        review(&body, webhook, &options).expect("fixture is answerable");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| review(black_box(&body), webhook, &options).expect("answered"))
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
