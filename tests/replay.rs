//! `ipamclaim-webhook replay` driven as a user drives it: the real binary, real files, stdin,
//! and a real server over TLS for `--server` and `--record-denied`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

use common::{fixtures_dir, post_json, TestServer, PATIENCE};

const VALID: &str = "apiVersion: k8s.cni.cncf.io/v1alpha1
kind: IPAMClaim
metadata:
  name: vm-a.tenantred
  namespace: ns1
spec:
  network: tenantred
  interface: pod16367aacb67
";

fn invalid() -> String {
    VALID.replace("pod16367aacb67", "a-very-long-interface")
}

fn replay() -> Command {
    let mut cmd = Command::cargo_bin("ipamclaim-webhook").expect("binary");
    cmd.arg("replay");
    cmd
}

/// `replay ARGS PATH`, run to completion.
fn run(args: &[&str], path: &Path) -> Output {
    replay().args(args).arg(path).output().expect("replay runs")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn allowed(v: &Value) -> bool {
    v.pointer("/response/allowed")
        .and_then(Value::as_bool)
        .expect("allowed")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(&path, text).expect("write");
    path
}

/// Every `*.request.json` of the fixture corpus, sorted.
fn fixture_requests() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![fixtures_dir()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(dir).expect("read dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".request.json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

// --- exit status ---

#[test]
fn exits_0_when_every_review_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "ok.yaml", VALID);
    let out = run(&["--output", "json"], &f);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 allowed, 0 denied, 0 errors"));
}

#[test]
fn exits_1_when_a_review_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write(dir.path(), "ok.yaml", VALID);
    let bad = write(dir.path(), "bad.yaml", &invalid());
    let out = replay()
        .args(["--output", "json"])
        .arg(&ok)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(
        lines.iter().map(allowed).collect::<Vec<_>>(),
        vec![true, false]
    );
}

#[test]
fn exits_2_for_an_unreadable_file_and_still_processes_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write(dir.path(), "ok.yaml", VALID);
    let bad = write(dir.path(), "bad.yaml", &invalid());
    let missing = dir.path().join("missing.yaml");
    let broken = write(dir.path(), "broken.json", "{\"kind\": ");
    let out = replay()
        .args(["--output", "json"])
        .arg(&ok)
        .arg(&missing)
        .arg(&broken)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "2 wins over 1: {out:?}");
    assert_eq!(
        json_lines(&out).len(),
        2,
        "both readable documents were judged"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.yaml"), "{stderr}");
    assert!(stderr.contains("broken.json document 1"), "{stderr}");
    assert!(stderr.contains("1 allowed, 1 denied, 2 errors"), "{stderr}");
}

// --- input forms ---

#[test]
fn reads_an_admission_review_file() {
    let f = fixtures_dir().join("validate/captured-08-validate-update.request.json");
    let out = run(&["--output", "json", "--webhook", "validate"], &f);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    let request: Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
    assert_eq!(lines[0]["response"]["uid"], request["request"]["uid"]);
}

#[test]
fn answers_a_v1beta1_review_in_v1beta1() {
    let f = fixtures_dir().join("validate/v1beta1-create-valid.request.json");
    let out = run(&["--output", "json"], &f);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        json_lines(&out)[0]["apiVersion"],
        "admission.k8s.io/v1beta1"
    );
}

#[test]
fn reads_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let claim = |iface: &str| {
        format!(
            r#"{{"apiVersion":"k8s.cni.cncf.io/v1alpha1","kind":"IPAMClaim","metadata":{{"name":"a"}},"spec":{{"network":"n","interface":"{iface}"}}}}"#
        )
    };
    let f = write(
        dir.path(),
        "claims.ndjson",
        &format!("{}\n{}\n", claim("eth0"), claim("eth:0")),
    );
    let out = run(&["--output", "json"], &f);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(
        lines.iter().map(allowed).collect::<Vec<_>>(),
        vec![true, false]
    );
}

#[test]
fn reads_multi_document_yaml_of_bare_claims() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "claims.yaml",
        &format!("{VALID}---\n{}", invalid()),
    );
    let out = run(&["--output", "text"], &f);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("claims.yaml#1 ns1/vm-a.tenantred CREATE ALLOWED"),
        "{text}"
    );
    assert!(text.contains("claims.yaml#2 ns1/vm-a.tenantred CREATE DENIED\n  spec.interface: Too long: must have at most 15 bytes"), "{text}");
}

#[test]
fn reads_stdin_when_no_path_is_given() {
    let out = replay()
        .args(["--output", "json"])
        .write_stdin(invalid())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(json_lines(&out).len(), 1);
}

#[test]
fn walks_a_directory_tree_reading_known_endings_only() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a/one.yaml", VALID);
    write(dir.path(), "a/b/two.yml", VALID);
    let review = fs::read_to_string(
        fixtures_dir().join("validate/captured-02-validate-create.request.json"),
    )
    .unwrap();
    write(dir.path(), "a/b/c/three.json", &review);
    write(dir.path(), "a/notes.txt", "not a claim");
    let out = replay()
        .args(["--output", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json_lines(&out).len(), 3);
}

#[test]
fn finds_a_duplicate_key_in_yaml_and_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = write(
        dir.path(),
        "dup.yaml",
        &VALID.replace(
            "  network: tenantred\n",
            "  network: tenantred\n  network: blue\n",
        ),
    );
    let json = fixtures_dir().join("validate/strict-duplicate-network.request.json");
    for f in [yaml, json] {
        let out = run(&["--output", "json"], &f);
        assert_eq!(out.status.code(), Some(1), "{}", f.display());
        let line = &json_lines(&out)[0];
        let msg = line["response"]["status"]["message"].as_str().unwrap();
        assert!(msg.contains("duplicate field \"spec.network\""), "{msg}");
    }
}

#[test]
fn chain_reports_the_patch_with_the_verdict() {
    // A status update (status is defaulted where it is written, not on CREATE).
    let f = fixtures_dir().join("mutate/status-ips-non-canonical-ipv6.request.json");
    let out = run(&["--output", "text"], &f);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            r#"patch: [{"op":"replace","path":"/status/ips/1","value":"fd10:128:20::8/64"}]"#
        ),
        "{text}"
    );
    let out = run(&["--output", "json", "--webhook", "validate"], &f);
    assert_eq!(
        out.status.code(),
        Some(1),
        "validate alone denies the non-canonical text"
    );
}

/// Issue 26: KubeVirt's create, as the API server sends it to the mutating webhook (status
/// still in the body), passes the chain with no patch; every write of the producers passes.
#[test]
fn chain_admits_the_producers_writes_and_patches_no_kubevirt_create() {
    let f = fixtures_dir().join("producers/mutate/kubevirt-create.request.json");
    let out = run(&["--webhook", "chain", "--output", "text"], &f);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" CREATE ALLOWED"), "{text}");
    assert!(!text.contains("patch:"), "{text}");

    let mut requests: Vec<PathBuf> = ["producers/mutate", "producers/validate"]
        .iter()
        .flat_map(|d| fs::read_dir(fixtures_dir().join(d)).expect("fixtures"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".request.json"))
        .collect();
    requests.sort();
    let out = replay()
        .args(["--webhook", "chain", "--output", "json"])
        .args(&requests)
        .output()
        .expect("replay runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let answers = json_lines(&out);
    assert!(answers.len() >= 30, "{} answers", answers.len());
    assert!(answers.iter().all(allowed));
}

/// Issue 26: a bare IP in `status.ips` would stop OVN-Kubernetes' network controller at its
/// next start; the chain refuses it in Kubernetes' words.
#[test]
fn chain_refuses_a_status_update_with_a_bare_ip() {
    let review = fs::read_to_string(
        fixtures_dir().join("producers/mutate/ovn-status-allocated-one-address.request.json"),
    )
    .unwrap()
    .replace("10.200.0.5/24", "10.0.0.5");
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "bare.json", &review);
    let out = run(&["--webhook", "chain", "--output", "text"], &f);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(r#"status.ips[0]: Invalid value: "10.0.0.5": must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)"#),
        "{text}"
    );
}

#[test]
fn names_the_file_and_document_of_an_unreadable_document() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "mixed.yaml",
        &format!("{VALID}---\nkind: Pod\napiVersion: v1\n"),
    );
    let out = run(&["--output", "json"], &f);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mixed.yaml document 2: document is a Pod"),
        "{stderr}"
    );
}

// --- what `kubectl get` prints ---

/// The README's pipe: `kubectl get ipamclaims -A -o yaml | ipamclaim-webhook replay`.
#[test]
fn replays_what_kubectl_get_prints_item_by_item() {
    let list = fs::read_to_string(fixtures_dir().join("replay/kubectl-get-ipamclaims.yaml"))
        .expect("fixture");
    let text = replay()
        .args(["--output", "text"])
        .write_stdin(list.clone())
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(1), "{text:?}");
    let stdout = String::from_utf8_lossy(&text.stdout);
    let verdicts: Vec<&str> = stdout.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(
        verdicts,
        [
            "-#1.items[0] ns1/vm-a.tenantred CREATE ALLOWED",
            "-#1.items[1] ns2/vm-b.tenantred CREATE DENIED",
            "-#1.items[2] ns2/vm-c.tenantblue CREATE ALLOWED",
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("status.ips[0]: Invalid value: \"winner\""),
        "{stdout}"
    );

    // Each item is a review of its own, with a uid of its own that a second run repeats.
    let json = replay()
        .args(["--output", "json"])
        .write_stdin(list.clone())
        .output()
        .unwrap();
    let uids: Vec<Value> = json_lines(&json)
        .iter()
        .map(|v| v["response"]["uid"].clone())
        .collect();
    assert_eq!(uids.len(), 3);
    assert!(uids[0] != uids[1] && uids[1] != uids[2] && uids[0] != uids[2]);
    let again = replay()
        .args(["--output", "json"])
        .write_stdin(list)
        .output()
        .unwrap();
    assert_eq!(json.stdout, again.stdout);
}

#[test]
fn an_item_that_is_not_a_claim_is_an_input_error_and_the_others_are_judged() {
    let claim = r#"{"apiVersion":"k8s.cni.cncf.io/v1alpha1","kind":"IPAMClaim","metadata":{"name":"a","namespace":"ns1"},"spec":{"network":"n","interface":"eth0"}}"#;
    let list = format!(
        r#"{{"apiVersion":"k8s.cni.cncf.io/v1alpha1","kind":"IPAMClaimList","items":[{claim},{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p"}}}},{claim}]}}"#
    );
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "list.json", &list);
    let out = run(&["--output", "json"], &f);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json_lines(&out).len(), 2, "both claims are still judged");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("list.json document 1.items[1]: item is a Pod: expected an IPAMClaim"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 documents: 2 allowed, 0 denied, 1 errors"),
        "{stderr}"
    );
}

// Regression: a bare claim with a key twice at its top level was an input error (exit 2); the
// API server answers it with a strict decoding error, and so does replay now.
#[test]
fn judges_a_bare_claim_whose_top_level_has_a_key_twice() {
    let claim = r#"{"apiVersion":"k8s.cni.cncf.io/v1alpha1","kind":"IPAMClaim","kind":"IPAMClaim","metadata":{"name":"a"},"spec":{"network":"n","interface":"eth0"}}"#;
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "twice.json", claim);
    let out = run(&["--output", "json", "--webhook", "validate"], &f);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let answer = &json_lines(&out)[0];
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("strict decoding error: duplicate field \"kind\""),
        "{message}"
    );
}

// --- against a running server ---

fn replay_json(args: &[&str], files: &[PathBuf]) -> Output {
    replay()
        .args(["--output", "json"])
        .args(args)
        .args(files)
        .output()
        .unwrap()
}

#[tokio::test]
async fn server_output_is_byte_identical_to_in_process_on_the_fixture_corpus() {
    let server = TestServer::start(|_| {});
    let ca = server.dir.path().join("ca.crt");
    let url = server.url("");
    let files = fixture_requests();
    assert!(
        files.len() >= 40,
        "fixture corpus too small: {}",
        files.len()
    );
    for webhook in ["validate", "mutate", "chain"] {
        let (files, ca, url) = (files.clone(), ca.clone(), url.clone());
        let (local, remote) = tokio::task::spawn_blocking(move || {
            let local = replay_json(&["--webhook", webhook], &files);
            let ca = ca.to_string_lossy().into_owned();
            let remote = replay_json(
                &["--webhook", webhook, "--server", &url, "--ca", &ca],
                &files,
            );
            (local, remote)
        })
        .await
        .unwrap();
        assert_eq!(local.status.code(), remote.status.code(), "{webhook}");
        assert!(!local.stdout.is_empty());
        assert!(
            local.stdout == remote.stdout,
            "{webhook}: --server output differs from in-process"
        );
    }
    server.stop().await;
}

/// A server with serve's default `--field-validation Warn` answers as in-process replay does
/// with `--field-validation Warn` (and not as replay's own default, Strict, which the corpus
/// tells apart).
#[tokio::test]
async fn a_warn_server_matches_replay_told_warn() {
    let server = TestServer::start(|cfg| {
        cfg.admission.field_validation = ipamclaim_webhook::admission::FieldValidation::Warn
    });
    let ca = server
        .dir
        .path()
        .join("ca.crt")
        .to_string_lossy()
        .into_owned();
    let url = server.url("");
    let files = fixture_requests();
    let (strict, warn, remote) = tokio::task::spawn_blocking(move || {
        let strict = replay_json(&["--webhook", "validate"], &files);
        let warn = replay_json(
            &["--webhook", "validate", "--field-validation", "Warn"],
            &files,
        );
        let remote = replay_json(
            &["--webhook", "validate", "--server", &url, "--ca", &ca],
            &files,
        );
        (strict, warn, remote)
    })
    .await
    .unwrap();
    assert!(
        warn.stdout == remote.stdout,
        "a Warn server differs from replay told Warn"
    );
    assert!(
        strict.stdout != remote.stdout,
        "the corpus does not tell Strict from Warn"
    );
    assert!(
        String::from_utf8_lossy(&remote.stderr).contains("with the server's flags"),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_recorded_denial_replays_to_the_same_verdict() {
    let record = tempfile::tempdir().unwrap();
    let record_dir = record.path().to_path_buf();
    let server = TestServer::start(|cfg| cfg.record_denied = Some(record_dir.clone()));
    let request =
        fs::read(fixtures_dir().join("validate/status-ips-winner-chicken-dinner.request.json"))
            .unwrap();
    let reply = post_json(&server.client(), &server.url("/validate"), request).await;
    assert_eq!(reply.status, 200);
    let answered = reply.json();
    assert_eq!(answered["response"]["allowed"], false);
    // An allowed review is not recorded.
    let ok = fs::read(fixtures_dir().join("validate/create-valid-minimal.request.json")).unwrap();
    post_json(&server.client(), &server.url("/validate"), ok).await;

    let deadline = Instant::now() + PATIENCE;
    let files = loop {
        let files: Vec<PathBuf> = fs::read_dir(&record_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        if !files.is_empty() || Instant::now() > deadline {
            break files;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(files.len(), 1, "exactly the denied review is recorded");

    let out = tokio::task::spawn_blocking(move || {
        run(&["--output", "json", "--webhook", "validate"], &record_dir)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json_lines(&out),
        vec![answered],
        "replay gives the very answer the server gave"
    );
    server.stop().await;
}

// --- --unique-addresses ---

/// A bare claim on `network` asking for `addresses` (`spec.ipRequests`).
fn claim_yaml(namespace: &str, name: &str, network: &str, addresses: &[&str]) -> String {
    format!(
        "apiVersion: k8s.cni.cncf.io/v1alpha1\nkind: IPAMClaim\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  network: {network}\n  interface: pod1\n  ipRequests: [{}]\n",
        addresses.join(", ")
    )
}

/// The causes of each denied line of `replay --output text`, as printed.
fn text_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn unique_addresses_judges_each_claim_against_the_claims_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "claims/1-a.yaml",
        &claim_yaml("ns1", "vm-a.red", "red", &["10.0.0.5/24"]),
    );
    write(
        d,
        "claims/2-b.yaml",
        &claim_yaml("ns1", "vm-b.red", "red", &["10.0.0.5/16"]),
    );
    write(
        d,
        "claims/3-c.yaml",
        &claim_yaml("ns2", "vm-c.red", "red", &["10.0.0.5/24", "fd00::5/64"]),
    );
    write(
        d,
        "claims/4-d.yaml",
        &claim_yaml("ns1", "vm-d.blue", "blue", &["10.0.0.5/24"]),
    );
    // Denied for its interface: it never reaches the cluster, so it holds nothing.
    let refused = claim_yaml("ns1", "vm-e.red", "red", &["10.0.0.6/24"]).replace("pod1", "eth0:1");
    write(d, "claims/5-e.yaml", &refused);
    write(
        d,
        "claims/6-f.yaml",
        &claim_yaml("ns1", "vm-f.red", "red", &["10.0.0.6/24"]),
    );

    let out = run(
        &["--output", "text", "--unique-addresses"],
        &d.join("claims"),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = text_of(&out);
    let claims = d.join("claims");
    let at = |file: &str| format!("{}#1", claims.join(file).display());
    let expected = [
        format!("{} ns1/vm-a.red CREATE ALLOWED", at("1-a.yaml")),
        format!("{} ns1/vm-b.red CREATE DENIED", at("2-b.yaml")),
        "  spec.ipRequests[0]: Invalid value: \"10.0.0.5/16\": address 10.0.0.5 is already allocated to IPAMClaim \"vm-a.red\" on network \"red\"".to_owned(),
        format!("{} ns2/vm-c.red CREATE DENIED", at("3-c.yaml")),
        "  spec.ipRequests[0]: Invalid value: \"10.0.0.5/24\": address 10.0.0.5 is already allocated to an IPAMClaim in another namespace on network \"red\"".to_owned(),
        format!("{} ns1/vm-d.blue CREATE ALLOWED", at("4-d.yaml")),
        format!("{} ns1/vm-e.red CREATE DENIED", at("5-e.yaml")),
        "  spec.interface: Invalid value: \"eth0:1\": interface name contains / or : or whitespace characters".to_owned(),
        format!("{} ns1/vm-f.red CREATE ALLOWED", at("6-f.yaml")),
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("6 documents: 3 allowed, 3 denied, 0 errors"),
        "{stderr}"
    );

    // Without the flag, no claim is judged against another.
    let plain = run(&["--output", "json"], &claims);
    let verdicts: Vec<bool> = json_lines(&plain).iter().map(allowed).collect();
    assert_eq!(verdicts, [true, true, true, true, false, true]);
}

#[test]
fn unique_addresses_judges_against_an_existing_list_without_judging_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // What `kubectl get ipamclaims -A -o yaml` printed: its second item carries addresses no
    // IPAM would write, and would be denied if it were judged.
    let existing = fixtures_dir().join("replay/kubectl-get-ipamclaims.yaml");
    write(
        d,
        "new/vm-z.yaml",
        &claim_yaml("ns1", "vm-z.tenantred", "tenantred", &["10.128.20.8/24"]),
    );
    write(
        d,
        "new/vm-y.yaml",
        &claim_yaml("ns1", "vm-y.tenantred", "tenantred", &["10.128.20.99/24"]),
    );
    let existing_arg = existing.to_string_lossy().into_owned();
    let out = run(
        &[
            "--output",
            "json",
            "--unique-addresses",
            "--existing",
            &existing_arg,
        ],
        &d.join("new"),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "only the documents to judge are judged");
    // vm-y sorts first.
    assert!(allowed(&lines[0]));
    assert!(!allowed(&lines[1]));
    assert_eq!(
        lines[1]["response"]["status"]["message"],
        "IPAMClaim.k8s.cni.cncf.io \"vm-z.tenantred\" is invalid: spec.ipRequests[0]: Invalid value: \"10.128.20.8/24\": address 10.128.20.8 is already allocated to IPAMClaim \"vm-a.tenantred\" on network \"tenantred\""
    );

    // Claims judged against an export that holds them already never conflict with
    // themselves: re-applying a folder that is in the cluster passes.
    let export = fixtures_dir().join("validate-unique-addresses/existing.yaml");
    let export_arg = export.to_string_lossy().into_owned();
    let again = run(
        &[
            "--output",
            "json",
            "--webhook",
            "validate",
            "--unique-addresses",
            "--existing",
            &export_arg,
        ],
        &export,
    );
    let verdicts = json_lines(&again);
    assert_eq!(verdicts.len(), 5);
    assert!(verdicts.iter().all(allowed), "{}", text_of(&again));
}

#[test]
fn existing_requires_unique_addresses_and_must_be_readable() {
    let dir = tempfile::tempdir().unwrap();
    let claim = write(dir.path(), "a.yaml", VALID);
    let out = replay()
        .args(["--existing", "x.yaml"])
        .arg(&claim)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let missing = dir.path().join("missing.yaml");
    let out = replay()
        .args(["--unique-addresses", "--existing"])
        .arg(&missing)
        .arg(&claim)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.yaml"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing is judged against a partial cluster"
    );
    // --server judges against that server's own index, not this run's.
    let out = replay()
        .args([
            "--unique-addresses",
            "--server",
            "https://127.0.0.1:1",
            "--ca",
            "ca.crt",
        ])
        .arg(&claim)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// The offline check gives the server's words: every golden answer of the fixtures judged
// against existing.yaml comes out of replay, in the order replay reads them (no fixture there
// asks for what an earlier admitted one holds).
#[test]
fn unique_addresses_gives_the_golden_answers_of_the_server() {
    let dir = fixtures_dir().join("validate-unique-addresses");
    let existing = dir.join("existing.yaml").to_string_lossy().into_owned();
    let mut requests: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".request.json"))
        .collect();
    requests.sort();
    assert!(requests.len() >= 10);
    let out = replay()
        .args([
            "--output",
            "json",
            "--webhook",
            "validate",
            "--unique-addresses",
            "--existing",
            &existing,
        ])
        .args(&requests)
        .output()
        .unwrap();
    let lines = json_lines(&out);
    assert_eq!(lines.len(), requests.len());
    for (request, got) in requests.iter().zip(&lines) {
        let golden = PathBuf::from(
            request
                .to_string_lossy()
                .replace(".request.json", ".response.json"),
        );
        let expected: Value = serde_json::from_slice(&fs::read(&golden).unwrap()).unwrap();
        assert_eq!(got, &expected, "{}", request.display());
    }
}

// --- --check-networks ---

/// A bare claim on `network` in `namespace` holding `ips` in `status.ips`.
fn claim_with_status(namespace: &str, name: &str, network: &str, ips: &[&str]) -> String {
    format!(
        "apiVersion: k8s.cni.cncf.io/v1alpha1\nkind: IPAMClaim\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  network: {network}\n  interface: pod1\nstatus:\n  ips: [{}]\n",
        ips.join(", ")
    )
}

/// The shared examples' NADs, as `kubectl get network-attachment-definitions -A -o yaml`
/// printed them.
fn nads_yaml() -> String {
    fixtures_dir()
        .join("networks/nads.yaml")
        .to_string_lossy()
        .into_owned()
}

// Issue 27, done when: `replay --check-networks --networks nads.yaml claims.yaml` prints the
// §10 messages for the bad claims, and exits 0 on claims that fit.
#[test]
fn check_networks_prints_the_messages_for_claims_that_do_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let docs = [
        claim_with_status(
            "vms",
            "vm-a.physnet",
            "physnet-vlan10",
            &["10.9.0.5/24", "172.16.10.5/24"],
        ),
        claim_with_status(
            "tenant-a",
            "vm-b.l2",
            "cluster_udn_l2-primary",
            &["10.100.0.1/16", "10.100.7.7/24"],
        ),
        claim_with_status(
            "tenant-c",
            "vm-c.l2",
            "cluster_udn_l2-primary",
            &["10.100.0.2/16"],
        ),
        claim_with_status(
            "ns4",
            "vm-d.wb",
            "whereabouts-dual",
            &["192.168.10.100/24", "abcd::1/64"],
        ),
        claim_with_status(
            "vms",
            "vm-e.physnet",
            "physnet-vlan10",
            &["172.16.10.20/24"],
        ),
    ];
    let claims = write(dir.path(), "claims.yaml", &docs.join("---\n"));
    let out = run(
        &[
            "--output",
            "text",
            "--check-networks",
            "--networks",
            &nads_yaml(),
        ],
        &claims,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = |i: usize| format!("{}#{i}", claims.display());
    let expected = [
        format!("{} vms/vm-a.physnet CREATE DENIED", at(1)),
        "  status.ips[0]: Invalid value: \"10.9.0.5/24\": not in the subnets of network \"physnet-vlan10\" (172.16.10.0/24)".to_owned(),
        "  status.ips[1]: Invalid value: \"172.16.10.5/24\": in excludeSubnets of network \"physnet-vlan10\" (172.16.10.0/28)".to_owned(),
        format!("{} tenant-a/vm-b.l2 CREATE DENIED", at(2)),
        "  status.ips[0]: Invalid value: \"10.100.0.1/16\": the gateway of network \"cluster_udn_l2-primary\" (10.100.0.1)".to_owned(),
        "  status.ips[1]: Invalid value: \"10.100.7.7/24\": prefix length differs from its subnet of network \"cluster_udn_l2-primary\" (10.100.0.0/16)".to_owned(),
        // Defined in tenant-a and tenant-b only: described, its ranges not named.
        format!("{} tenant-c/vm-c.l2 CREATE DENIED", at(3)),
        "  status.ips[0]: Invalid value: \"10.100.0.2/16\": the management address of network \"cluster_udn_l2-primary\"".to_owned(),
        format!("{} ns4/vm-d.wb CREATE DENIED", at(4)),
        "  status.ips[0]: Invalid value: \"192.168.10.100/24\": outside the address ranges of network \"whereabouts-dual\" (192.168.10.10-192.168.10.99)".to_owned(),
        "  status.ips[1]: Invalid value: \"abcd::1/64\": in the excluded addresses of network \"whereabouts-dual\" (abcd::1)".to_owned(),
        "  warning: spec.network: network \"whereabouts-dual\" does not persist IPs: allowPersistentIPs is not true".to_owned(),
        format!("{} vms/vm-e.physnet CREATE ALLOWED", at(5)),
    ];
    let text = text_of(&out);
    assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--networks: 15 NetworkAttachmentDefinitions of 12 networks"),
        "{stderr}"
    );
    assert!(
        stderr.contains("5 documents: 1 allowed, 4 denied, 0 errors"),
        "{stderr}"
    );

    // Without the flag the same claims are judged as text only: all admitted.
    let plain = run(&["--output", "json"], &claims);
    assert_eq!(plain.status.code(), Some(0));
}

#[test]
fn check_networks_exits_0_on_claims_that_fit_and_completes_bare_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let docs = [
        claim_with_status("ns1", "vm-a.yellow", "tenantyellow", &["10.100.200.9/24"]),
        claim_with_status(
            "mynamespace",
            "vm-b.test",
            "mynamespace_test-net",
            &["192.168.100.1/24", "2001:dbb::1/64"],
        ),
        claim_yaml(
            "tenant-c",
            "vm-c.pre",
            "tenant-c_preassigned",
            &["10.50.0.17"],
        ),
    ];
    let claims = write(dir.path(), "claims.yaml", &docs.join("---\n"));
    let out = run(
        &[
            "--output",
            "json",
            "--check-networks",
            "--networks",
            &nads_yaml(),
        ],
        &claims,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert!(lines.iter().all(allowed));
    // The NADs of tenantyellow disagree: a warning, never a denial.
    assert_eq!(
        lines[0]["response"]["warnings"],
        serde_json::json!([
            "spec.network: the NADs of network \"tenantyellow\" disagree: addresses not checked"
        ])
    );
    // chain: the bare request completed with its subnet's prefix length.
    let patch = lines[2]["response"]["patch"].as_str().expect("a patch");
    use base64::Engine as _;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .unwrap();
    assert_eq!(
        String::from_utf8(patch).unwrap(),
        r#"[{"op":"replace","path":"/spec/ipRequests/0","value":"10.50.0.17/24"}]"#
    );
}

#[test]
fn check_networks_needs_networks_that_can_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let claim = write(dir.path(), "a.yaml", VALID);
    let missing = dir.path().join("missing-nads.yaml");
    let out = replay()
        .args(["--check-networks", "--networks"])
        .arg(&missing)
        .arg(&claim)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing-nads.yaml"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing judged against missing networks"
    );
    // A claim file given as the networks is refused, naming it.
    let out = replay()
        .args(["--check-networks", "--networks"])
        .arg(&claim)
        .arg(&claim)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("a.yaml#1: document is a IPAMClaim: expected a NetworkAttachmentDefinition"),
        "{stderr}"
    );
    for args in [&["--check-networks"][..], &["--networks", "x.yaml"]] {
        let out = replay().args(args).arg(&claim).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

// The offline check gives the server's words: every golden answer of the check-networks
// fixtures comes out of replay pointed at the same NADs (tests/check_networks.rs checks the
// server against the same goldens).
#[test]
fn check_networks_gives_the_golden_answers_of_the_server() {
    let networks = fixtures_dir()
        .join("networks")
        .to_string_lossy()
        .into_owned();
    for (dir, flags) in [
        ("validate-check-networks", &[][..]),
        (
            "validate-check-networks-enforcement-warn",
            &["--enforcement", "Warn"][..],
        ),
    ] {
        let dir = fixtures_dir().join(dir);
        let mut requests: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".request.json"))
            .collect();
        requests.sort();
        assert!(!requests.is_empty());
        let out = replay()
            .args(["--output", "json", "--webhook", "validate"])
            .args(["--check-networks", "--networks", &networks])
            .args(flags)
            .args(&requests)
            .output()
            .unwrap();
        let lines = json_lines(&out);
        assert_eq!(lines.len(), requests.len());
        for (request, got) in requests.iter().zip(&lines) {
            let golden = PathBuf::from(
                request
                    .to_string_lossy()
                    .replace(".request.json", ".response.json"),
            );
            let expected: Value = serde_json::from_slice(&fs::read(&golden).unwrap()).unwrap();
            assert_eq!(got, &expected, "{}", request.display());
        }
    }
}
