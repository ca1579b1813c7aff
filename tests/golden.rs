//! Golden fixtures: every request under `tests/fixtures/<dir>/` goes through the admission
//! pipeline and must produce exactly the response stored beside it.
//!
//! `UPDATE_GOLDEN=1 cargo test --test golden` (or `make golden`) rewrites the responses; review
//! the diff by hand before committing it.

use std::fs;
use std::path::{Path, PathBuf};

use ipamclaim_webhook::admission::{self, FieldValidation, Options, Webhook};
use serde_json::Value;

/// The smallest corpus this suite accepts, so that it can never pass on an empty directory.
const MIN_FIXTURES: usize = 40;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The webhook and options a fixture directory's name stands for.
fn setup(dir: &str) -> (Webhook, Options) {
    let webhook = if dir.starts_with("mutate") {
        Webhook::Mutate
    } else {
        Webhook::Validate
    };
    let field_validation = if dir.ends_with("fieldvalidation-warn") {
        FieldValidation::Warn
    } else if dir.ends_with("fieldvalidation-ignore") {
        FieldValidation::Ignore
    } else {
        FieldValidation::Strict
    };
    (webhook, Options { field_validation })
}

/// Every `(request, expected response)` pair, with the directory it lives in.
fn pairs() -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = fs::read_dir(fixtures_dir())
        .expect("tests/fixtures exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let dir_name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<_> = fs::read_dir(&dir)
            .expect("fixture dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.to_string_lossy().ends_with(".request.json"))
            .collect();
        files.sort();
        for request in files {
            let response =
                PathBuf::from(request.to_string_lossy().replace(".request.json", ".response.json"));
            out.push((dir_name.clone(), request, response));
        }
    }
    out
}

#[test]
fn every_fixture_gets_its_golden_response() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let pairs = pairs();
    assert!(
        pairs.len() >= MIN_FIXTURES,
        "only {} fixtures found under {}",
        pairs.len(),
        fixtures_dir().display()
    );
    let mut failures = Vec::new();
    for (dir, request, response) in &pairs {
        let (webhook, options) = setup(dir);
        let body = fs::read(request).expect("read request");
        let reviewed = admission::review(&body, webhook, &options)
            .unwrap_or_else(|e| panic!("{}: not answerable: {e}", request.display()));
        let got: Value = serde_json::from_slice(&reviewed.body).expect("response is JSON");
        if update {
            let text = serde_json::to_string_pretty(&got).expect("pretty") + "\n";
            fs::write(response, text).expect("write golden response");
            continue;
        }
        let expected: Value = match fs::read(response) {
            Ok(bytes) => serde_json::from_slice(&bytes).expect("golden response is JSON"),
            Err(e) => {
                failures.push(format!("{}: no golden response: {e}", response.display()));
                continue;
            }
        };
        if got != expected {
            failures.push(format!(
                "{}:\n  expected {}\n  got      {}",
                request.display(),
                expected,
                got
            ));
        }
        let request_uid = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.pointer("/request/uid").cloned());
        if got.pointer("/response/uid").cloned() != request_uid {
            failures.push(format!("{}: uid not echoed", request.display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} fixtures differ:\n{}", failures.len(), pairs.len(), failures.join("\n"));
}

#[test]
fn every_response_has_a_request() {
    let requests: Vec<PathBuf> = pairs().into_iter().map(|(_, _, resp)| resp).collect();
    for entry in walk(&fixtures_dir()) {
        if entry.to_string_lossy().ends_with(".response.json") {
            assert!(requests.contains(&entry), "orphan golden file {}", entry.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn validating_responses_never_carry_a_patch() {
    for (dir, _, response) in pairs() {
        if setup(&dir).0 != Webhook::Validate {
            continue;
        }
        let Ok(bytes) = fs::read(&response) else { continue };
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert!(v.pointer("/response/patch").is_none(), "{}", response.display());
        assert!(v.pointer("/response/patchType").is_none(), "{}", response.display());
    }
}
