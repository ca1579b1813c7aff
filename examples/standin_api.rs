//! Bench-only: the stand-in API server of the tests (`tests/standin`) holding N claims of two
//! addresses each (100,000 by default), for `make bench-load` to measure `serve
//! --unique-addresses` with a full index (`benches/unique_list.rs` makes the same claims).
//!
//! `standin_api --claims N --dir DIR` writes `DIR/kubeconfig`, prints `ready DIR/kubeconfig`
//! on stdout, and serves the list and the watch until it is killed. The claims are on network
//! `tenantred`, as the load run's review, and none holds its addresses (10.128.20.8 and
//! fd10:128:20::8): every review looks both up and is admitted.

#![forbid(unsafe_code)]

#[path = "../tests/standin/mod.rs"]
mod standin;

use std::io::Write as _;
use std::path::PathBuf;

use clap::Parser;
use standin::{claim, StandIn};

/// The stand-in API server with N claims (bench-only).
#[derive(Debug, Parser)]
struct Args {
    /// How many claims it holds.
    #[arg(long, default_value_t = 100_000)]
    claims: usize,
    /// Where to write the kubeconfig.
    #[arg(long)]
    dir: PathBuf,
}

fn main() {
    let args = Args::parse();
    let api = StandIn::start((0..args.claims).map(|i| {
        let (a, b, c) = (i >> 16, (i >> 8) & 0xff, i & 0xff);
        claim(
            &format!("ns{}", i % 100),
            &format!("vm-{i}.tenantred"),
            "tenantred",
            &[
                &format!("10.{}.{b}.{c}/8", 100 + a),
                &format!("fd10:{a:x}:{b:x}::{c:x}/64"),
            ],
        )
    }));
    let kubeconfig = api.kubeconfig(&args.dir);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready {}", kubeconfig.display());
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}
