//! The tree's promise, checked on the source: the admission core reaches neither front end nor
//! any I/O, and replay never reaches the HTTPS front end.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The lines of the files below `src/<dir>` that mention one of `forbidden`, up to each file's
/// unit tests (at its bottom, after `#[cfg(test)]`), which may read fixtures.
fn offending_lines(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let files = rust_files(&root);
    assert!(!files.is_empty(), "no sources in {}", root.display());
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).expect("source");
        // A file's unit tests start at `#[cfg(test)]`; a file of tests alone opens with
        // `#![cfg(test)]`.
        let lines = text
            .lines()
            .take_while(|l| !matches!(l.trim(), "#[cfg(test)]" | "#![cfg(test)]"));
        for (n, line) in lines.enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if let Some(word) = forbidden.iter().find(|w| code.contains(*w)) {
                found.push(format!(
                    "{}:{}: {word}: {}",
                    file.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

#[test]
fn the_admission_core_reaches_no_front_end_and_no_io() {
    let forbidden = [
        // the front ends
        "crate::serve",
        "crate::replay",
        "crate::certs",
        "crate::cluster",
        "ipamclaim_webhook::",
        // I/O and runtimes
        "actix",
        "tokio",
        "reqwest",
        "rustls",
        "std::fs",
        "std::net::Tcp",
        "std::io::stdin",
        "std::time::SystemTime",
        "std::env",
    ];
    let found = offending_lines("admission", &forbidden);
    assert!(
        found.is_empty(),
        "the core reaches out:\n{}",
        found.join("\n")
    );
}

#[test]
fn replay_never_reaches_the_https_front_end() {
    let found = offending_lines("replay", &["crate::serve", "actix"]);
    assert!(
        found.is_empty(),
        "replay reaches the server:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_cluster_view_never_reaches_the_front_ends() {
    let found = offending_lines("cluster", &["crate::serve", "crate::replay", "actix"]);
    assert!(
        found.is_empty(),
        "the cluster view reaches a front end:\n{}",
        found.join("\n")
    );
}

/// The index is fed by events and tested by feeding it events: it knows no HTTP, no API
/// client, no runtime and no clock of its own.
#[test]
fn the_index_knows_no_http_and_no_clock() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cluster/index.rs");
    let text = fs::read_to_string(&path).expect("src/cluster/index.rs");
    let forbidden = [
        "kube::",
        "hyper",
        "http",
        "tokio",
        "reqwest",
        "actix",
        "Instant::now",
        "SystemTime",
        "std::fs",
        "std::net::Tcp",
    ];
    let found: Vec<String> = text
        .lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .enumerate()
        .filter_map(|(n, line)| {
            let code = line.split("//").next().unwrap_or_default();
            forbidden
                .iter()
                .find(|w| code.contains(*w))
                .map(|w| format!("index.rs:{}: {w}: {}", n + 1, line.trim()))
        })
        .collect();
    assert!(
        found.is_empty(),
        "the index reaches out:\n{}",
        found.join("\n")
    );
}
