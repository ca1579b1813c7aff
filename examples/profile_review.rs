//! A harness for profiling the admission pipeline under callgrind: one review, judged N times
//! in a loop, nothing else in the process worth counting. BENCHMARKS.md ("Issue 14, second
//! round: the reader, the walk and the answer") shows how it is run.
//!
//! ```sh
//! cargo build --release --example profile_review
//! valgrind --tool=callgrind --toggle-collect='*admission::pipeline::review*' \
//!     target/release/examples/profile_review REVIEW.json 200 validate
//! ```
//!
//! Modes: `validate` and `mutate` judge the review (a fourth argument `Warn` or `Ignore` sets
//! the field validation; `Strict` by default); `walk-object` and `walk-old` only walk
//! `request.object` (strictly) or `request.oldObject` (as the pipeline does), so that
//! `--toggle-collect='*profile_review::walk*'` counts the walk alone; `skim` reads the review
//! with serde_json and keeps nothing (`--toggle-collect='*profile_review::skim*'`): the least any
//! pass over the bytes costs.

use std::hint::black_box;

use ipamclaim_webhook::admission::{decode, json, review, FieldValidation, Options, Webhook};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: profile_review REVIEW.json [N] [validate|mutate|walk-object|walk-old|skim] [Strict|Warn|Ignore]";
    let path = args.get(1).expect(usage);
    let body = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let n: usize = args.get(2).map_or(1000, |s| s.parse().expect(usage));
    let mode = args.get(3).map_or("validate", String::as_str);
    let field_validation = match args.get(4).map(String::as_str) {
        Some("Warn") => FieldValidation::Warn,
        Some("Ignore") => FieldValidation::Ignore,
        _ => FieldValidation::Strict,
    };
    let opts = Options {
        field_validation,
        ..Options::default()
    };
    let mut total = 0;
    match mode {
        "validate" | "mutate" => {
            let webhook = if mode == "mutate" {
                Webhook::Mutate
            } else {
                Webhook::Validate
            };
            for _ in 0..n {
                let reviewed = review(black_box(&body), webhook, &opts).expect("a review");
                total += reviewed.body.len();
            }
        }
        "walk-object" | "walk-old" | "skip-object" | "skip-old" => {
            let review: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            let key = if mode.ends_with("object") {
                "object"
            } else {
                "oldObject"
            };
            let text = serde_json::to_string(&review["request"][key]).expect("JSON");
            for _ in 0..n {
                total += if mode.starts_with("skip") {
                    skip(black_box(&text))
                } else {
                    walk(black_box(&text), mode == "walk-object")
                };
            }
        }
        "skim" => {
            for _ in 0..n {
                total += skim(black_box(&body));
            }
        }
        _ => panic!("{usage}"),
    }
    println!("{total}");
}

#[inline(never)]
fn walk(text: &str, strict: bool) -> usize {
    decode::walk(text, strict).expect("an object").issues.len()
}

#[inline(never)]
fn skip(text: &str) -> usize {
    let mut reader = json::Reader::new(text);
    reader.skip().expect("JSON").text.len()
}

#[inline(never)]
fn skim(body: &[u8]) -> usize {
    let text = std::str::from_utf8(body).expect("UTF-8");
    let _: serde::de::IgnoredAny = serde_json::from_str(text).expect("JSON");
    text.len()
}
