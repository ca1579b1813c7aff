//! The cost of `serve --unique-addresses` at scale: the real binary pointed at the stand-in
//! API server of the tests holding N claims of two addresses each (100,000 by default), how
//! long the first list takes to be indexed (until `/readyz` answers 200), and the server's RSS
//! then and after a forced re-list (the new index is built beside the old one, then swapped
//! in).
//!
//! `cargo bench --bench unique_list` measures (`CLAIMS=N` to change the count, `RELISTS=N` the
//! forced re-lists, 3 by default); under
//! `cargo test --benches` it runs once with 2,000 claims, as a smoke test. `NADS=N` adds
//! `--check-networks` and N NetworkAttachmentDefinitions to the stand-in (one network each, the
//! mix of benches/networks.rs): both indexes are listed, and re-listed together, on one client
//! (`NADS=10000 cargo bench --bench unique_list` is the issue-27 figure).

#[path = "../tests/standin/mod.rs"]
mod standin;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use standin::{claim, nad, StandIn};

/// The config of network `i`, OVN-Kubernetes layer2 in the main with whereabouts and
/// host-local mixed in, as in benches/networks.rs.
fn network_config(i: usize) -> String {
    let (a, b) = (i >> 8, i & 0xff);
    match i % 5 {
        0 | 1 => format!(
            r#"{{"cniVersion":"1.0.0","name":"net-{i}","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.{a}.{b}.0/24,fd10:{a:x}:{b:x}::/64","excludeSubnets":"10.{a}.{b}.0/29","allowPersistentIPs":true}}"#
        ),
        2 => format!(
            r#"{{"cniVersion":"1.1.0","name":"net-{i}","type":"ovn-k8s-cni-overlay","role":"primary","topology":"layer2","subnets":"10.{a}.{b}.0/24,fd10:{a:x}:{b:x}::/64","allowPersistentIPs":true}}"#
        ),
        3 => format!(
            r#"{{"cniVersion":"0.3.1","name":"net-{i}","type":"macvlan","ipam":{{"type":"whereabouts","ipRanges":[{{"range":"10.{a}.{b}.0/24","range_start":"10.{a}.{b}.10","range_end":"10.{a}.{b}.99"}},{{"range":"fd10:{a:x}:{b:x}::/64","exclude":["fd10:{a:x}:{b:x}::1/128"]}}]}}}}"#
        ),
        _ => format!(
            r#"{{"cniVersion":"1.0.0","name":"net-{i}","type":"bridge","ipam":{{"type":"host-local","ranges":[[{{"subnet":"10.{a}.{b}.0/24","rangeStart":"10.{a}.{b}.20"}}]]}}}}"#
        ),
    }
}

/// `GET path` on the plain-HTTP probe listener: the status code, or 0 when unreachable.
fn get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// (VmRSS, VmHWM) of `pid` in KiB.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, text) = get(port, "/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let count: usize = std::env::var("CLAIMS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(if measuring { 100_000 } else { 2_000 });

    let nad_count: usize = std::env::var("NADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);

    let made = Instant::now();
    let nads =
        (0..nad_count).map(|i| nad(&format!("ns-{i}"), &format!("nad-{i}"), &network_config(i)));
    let api = StandIn::start_with(
        (0..count).map(|i| {
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
        }),
        nads,
    );
    eprintln!(
        "stand-in: {count} claims and {nad_count} NADs made in {:?}",
        made.elapsed()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let certs = ipamclaim_webhook::certs::generate(&Default::default()).expect("certs");
    certs.write_to(dir.path()).expect("write certs");
    let kubeconfig = api.kubeconfig(dir.path());
    let probe = free_port();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_ipamclaim-webhook"))
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--probe-listen", &format!("127.0.0.1:{probe}")])
        .arg("--tls-cert")
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.path().join("tls.key"))
        .arg("--unique-addresses")
        .args(if nad_count > 0 {
            &["--check-networks"][..]
        } else {
            &[][..]
        })
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--reservation-namespace", "ipamclaim-webhook"])
        .args(["--log-format", "json"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let child = Reaper(child);
    let pid = child.0.id();
    let (baseline, _) = {
        wait_until("probe port", Duration::from_secs(60), || {
            get(probe, "/healthz").0 == 200
        });
        rss(pid)
    };
    let to_ready = wait_until("ready", Duration::from_secs(300), || {
        get(probe, "/readyz").0 == 200
    });
    let since_start = started.elapsed();
    let lists = api.served().iter().filter(|s| s.verb == "list").count();
    let indexed = metric(probe, "ipamclaim_webhook_index_claims").unwrap_or(0.0);
    assert_eq!(indexed as usize, count, "every claim indexed");
    let nads_indexed =
        || metric(probe, "ipamclaim_webhook_network_index_nads").unwrap_or(0.0) as usize;
    if nad_count > 0 {
        assert_eq!(nads_indexed(), nad_count, "every NAD indexed");
    }
    let (ready_rss, ready_hwm) = rss(pid);

    // Forced re-lists: versions expire, the watch ends, the watcher gets 410 and lists again;
    // each new index is built beside the old one, then swapped in.
    let rounds: usize = std::env::var("RELISTS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut relists = Vec::new();
    for round in 1..=rounds {
        let restarts = metric(probe, "ipamclaim_webhook_watch_restarts_total").unwrap_or(0.0);
        let network_restarts =
            || metric(probe, "ipamclaim_webhook_network_watch_restarts_total").unwrap_or(0.0);
        let network_restarts_before = network_restarts();
        api.expire_versions();
        api.close_watches();
        let took = wait_until("re-list", Duration::from_secs(300), || {
            api.served().iter().filter(|s| s.verb == "list").count() >= (round + 1) * lists
                && metric(probe, "ipamclaim_webhook_watch_restarts_total").unwrap_or(0.0) > restarts
                && metric(probe, "ipamclaim_webhook_index_claims").unwrap_or(0.0) as usize == count
                && (nad_count == 0
                    || (network_restarts() > network_restarts_before
                        && nads_indexed() == nad_count))
        });
        std::thread::sleep(Duration::from_millis(200));
        relists.push((took, rss(pid)));
    }

    println!("unique_list: {count} claims, 2 addresses each, {nad_count} NADs, {lists} list pages");
    println!("  first list indexed (readyz 200) {:.2} s after the probe port opened, {:.2} s after start", to_ready.as_secs_f64(), since_start.as_secs_f64());
    println!(
        "  RSS before the list (probe port open): {:.1} MiB",
        baseline as f64 / 1024.0
    );
    println!(
        "  RSS with the index ready: {:.1} MiB (peak so far {:.1} MiB)",
        ready_rss as f64 / 1024.0,
        ready_hwm as f64 / 1024.0
    );
    for (i, (took, (rss, hwm))) in relists.iter().enumerate() {
        println!(
            "  forced re-list {}: done in {:.2} s (410, backoff, list); RSS after it {:.1} MiB (peak so far {:.1} MiB)",
            i + 1,
            took.as_secs_f64(),
            *rss as f64 / 1024.0,
            *hwm as f64 / 1024.0
        );
    }
}
