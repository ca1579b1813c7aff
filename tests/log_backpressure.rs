//! A log that nobody drains never holds a review back: the server's log (`serve::logs`) over a
//! writer that never takes a byte, a flood of denied reviews (each logs a line at INFO), and
//! every review still answered in time, the lines that did not fit counted on `/metrics`.
//!
//! Its own test binary: it installs the process's global subscriber.

mod common;

use std::io::{self, Write};
use std::sync::mpsc;
use std::time::Instant;

use common::*;
use ipamclaim_webhook::serve::logs::{Format, Logs, Sink};
use tracing_subscriber::EnvFilter;

/// A log collector that stopped reading: every write waits until the test ends.
struct NeverDrains(mpsc::Receiver<()>);

impl Write for NeverDrains {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        let _ = self.0.recv();
        Err(io::Error::other("the test is over"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const QUEUE_LINES: usize = 16;
const REVIEWS: usize = 400;
const CONCURRENCY: usize = 8;

// Regression (issue 31): a line per review was written on the worker thread, so a stalled
// stderr stalled every review.
#[tokio::test]
async fn a_log_that_never_drains_never_blocks_a_review() {
    let (release, stalled) = mpsc::channel();
    let logs = Logs::install(
        EnvFilter::new("info"),
        Format::Json,
        Sink {
            writer: NeverDrains(stalled),
            ansi: false,
            queue_lines: QUEUE_LINES,
        },
    )
    .expect("install the log");
    let dropped = logs.dropped();
    // Every line offered to the writer: what is measured here is its queue, not the budget.
    let server = TestServer::start(|cfg| {
        cfg.log_dropped = dropped.clone();
        cfg.request_log_limit = 0;
    });
    let client = server.client();
    let url = server.url("/validate?timeout=10s");

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            for i in (worker..REVIEWS).step_by(CONCURRENCY) {
                let body = denied_review(&format!("flood-{i}"));
                let answer = assert_answers(&post_json(&client, &url, body.clone()).await, &body);
                assert_eq!(answer["response"]["allowed"], false, "{answer}");
            }
        });
    }
    let all = async {
        while let Some(done) = tasks.join_next().await {
            done.expect("review task");
        }
    };
    tokio::time::timeout(PATIENCE, all)
        .await
        .expect("every review answered while the log is stalled");
    let took = started.elapsed();

    // One line is stuck in the write, QUEUE_LINES wait behind it; the rest were dropped.
    let lost = dropped.count();
    assert!(
        lost >= (REVIEWS - QUEUE_LINES - 1) as u64,
        "{lost} lines dropped of {REVIEWS}"
    );
    let metrics = server.metrics().await;
    assert_eq!(
        metric(&metrics, "ipamclaim_webhook_log_lines_dropped_total"),
        Some(lost as f64),
        "{metrics}"
    );
    eprintln!("{REVIEWS} denied reviews in {took:?} with the log stalled; {lost} lines dropped");
    server.stop().await;
    drop(release);
}

/// The captured CREATE with an interface name the kernel refuses: denied, one cause.
fn denied_review(uid: &str) -> Vec<u8> {
    let mut review: serde_json::Value =
        serde_json::from_slice(&review(uid, "admission.k8s.io/v1")).expect("JSON");
    review["request"]["object"]["spec"]["interface"] = "eth0:1".into();
    serde_json::to_vec(&review).expect("JSON")
}
