//! The server's log: a `tracing` subscriber writing through a bounded, non-blocking writer,
//! the count of the lines it had to drop, and the periodic line that reports them.
//!
//! A worker thread never writes to stderr itself: it formats its line and hands it to the
//! writer's own thread over a queue of at most [`QUEUE_LINES`] lines. When the queue is full
//! (stderr not drained fast enough, or at all) the line is dropped and counted instead of
//! blocking a review; [`DroppedLines`] reads the count for `/metrics`, and [`report_unwritten`]
//! says it in the log once per [`REPORT_EVERY`] when it grew. The [`Logs`] guard, dropped last
//! in `main`, writes out what is still queued (the last lines of a SIGTERM).
//!
//! The lines that requests write (a denial, a refusal, an error) are also held to a rate,
//! [`LineBudget`] (`--request-log-limit`, [`DEFAULT_REQUEST_LOG_LIMIT`] a second): a flood of
//! denied or malformed requests, which a looping client or a hostile one sends at saturation,
//! would otherwise spend a fifth of the server's CPU formatting lines nobody reads one by one.
//! Past the rate a line is counted instead of formatted, and the count is said once per
//! [`REPORT_EVERY`] too; every request is still counted in the metrics.
//!
//! Only `serve` installs it. `replay`, `certs` and `crd` install no subscriber: what they say on
//! stderr (errors, replay's summary) is their output, written synchronously by themselves.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// Lines the writer's queue holds. A line is at most about [`MAX_LINE_BYTES`] (every string
/// taken from a request is [`Clipped`]), so a full queue holds at most about 2 MiB, within the
/// room `serve::budget::BASE_BYTES` leaves over the process's measured base; the line of a
/// usual denial is 400 to 600 bytes.
pub const QUEUE_LINES: usize = 1024;
/// About the longest a line gets: the review line's five strings from the request clipped to
/// [`Clipped::MAX_BYTES`] each, its cause types (a handful of names at most), numbers, field
/// names and the timestamp.
pub const MAX_LINE_BYTES: usize = 2048;
/// Lines a second the requests may write at most, by default (`--request-log-limit`): far more
/// than a cluster's denials in normal work (a handful a minute), far fewer than a flood.
pub const DEFAULT_REQUEST_LOG_LIMIT: u32 = 200;
/// How often the counts of dropped and suppressed lines are checked, and each said in one line
/// when it grew.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Bytes the writer's thread gathers before writing them out: the lines queued while it wrote
/// the last batch go out in one `write(2)`, and every batch is flushed as soon as the queue is
/// empty, so a line never waits for later ones.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, the event's fields at the top level.
    Json,
    /// Human-readable text.
    Text,
}

/// Where the lines go, and how they are kept until written.
pub struct Sink<W> {
    /// What the writer's thread writes to.
    pub writer: W,
    /// Colour codes (for a person at a terminal, never for a log collector).
    pub ansi: bool,
    /// The queue's bound, in lines ([`QUEUE_LINES`] for the server).
    pub queue_lines: usize,
}

/// The installed log: keep it until the process exits, and drop it last, so that the lines
/// still queued are written out (within a second: a writer that cannot write does not hold
/// the exit).
#[must_use = "dropping it stops the log's writer"]
pub struct Logs {
    dropped: DroppedLines,
    _guard: WorkerGuard,
}

/// How many log lines were dropped because the writer's queue was full; zero for ever for a
/// server started without [`Logs`] (the tests').
#[derive(Clone, Default)]
pub struct DroppedLines(Option<ErrorCounter>);

/// Why the log could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// A global subscriber was already installed.
    #[error("cannot install the log subscriber")]
    Init(#[source] tracing_subscriber::util::TryInitError),
}

/// How many lines the requests may write each second, and how many they could not: shared by
/// every worker, one atomic word per line asked for.
#[derive(Debug)]
pub struct LineBudget {
    /// Lines a second; 0: no limit.
    per_second: u32,
    /// What the seconds are counted from.
    epoch: Instant,
    /// The current second (high 32 bits, seconds since `epoch`) and the lines written in it.
    window: AtomicU64,
    /// Lines not written because the second's were used up.
    suppressed: AtomicU64,
}

/// A string from a review as a log field, at most [`Clipped::MAX_BYTES`] of it: a review may
/// carry a name of megabytes (denied for it, and so logged), and a queued line must stay small.
/// Kubernetes names, namespaces and uids are far shorter, so a real one is never clipped.
pub struct Clipped<'a>(pub &'a str);

// === impl Sink ===

impl Sink<io::BufWriter<io::Stderr>> {
    /// The server's: stderr, coloured only when it is a terminal, [`QUEUE_LINES`] queued.
    pub fn stderr() -> Self {
        use std::io::IsTerminal as _;
        Sink {
            ansi: io::stderr().is_terminal(),
            writer: io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, io::stderr()),
            queue_lines: QUEUE_LINES,
        }
    }
}

// === impl Logs ===

impl Logs {
    /// Installs the process's subscriber: `filter`, then `format`, written through `sink`.
    pub fn install<W: Write + Send + 'static>(
        filter: EnvFilter,
        format: Format,
        sink: Sink<W>,
    ) -> Result<Logs, LogsError> {
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(sink.queue_lines.max(1))
            .thread_name("log-writer")
            .finish(sink.writer);
        let dropped = DroppedLines(Some(writer.error_counter()));
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(sink.ansi);
        let registry = tracing_subscriber::registry().with(filter);
        match format {
            Format::Json => registry.with(fmt.json().flatten_event(true)).try_init(),
            Format::Text => registry.with(fmt).try_init(),
        }
        .map_err(LogsError::Init)?;
        Ok(Logs {
            dropped,
            _guard: guard,
        })
    }

    /// The count of lines dropped so far, for the server's metric and its report.
    pub fn dropped(&self) -> DroppedLines {
        self.dropped.clone()
    }
}

// === impl DroppedLines ===

impl DroppedLines {
    /// Lines dropped so far.
    pub fn count(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |c| u64::try_from(c.dropped_lines()).unwrap_or(u64::MAX))
    }
}

impl fmt::Debug for DroppedLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DroppedLines").field(&self.count()).finish()
    }
}

// === impl LineBudget ===

impl LineBudget {
    /// At most `per_second` lines each second; 0: every line.
    pub fn new(per_second: u32) -> Self {
        LineBudget {
            per_second,
            epoch: Instant::now(),
            window: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether a request may write its line now; when not, it is counted as suppressed. Ask
    /// only for a line the filter lets through (`tracing::enabled!`), so that the count holds
    /// only lines that would have been written.
    pub fn take(&self) -> bool {
        self.per_second == 0 || self.take_in(self.epoch.elapsed().as_secs())
    }

    fn take_in(&self, second: u64) -> bool {
        // Seconds wrap after 136 years: a new second still starts a new window.
        let second = second & u64::from(u32::MAX);
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let next = if current >> 32 == second {
                if current & u64::from(u32::MAX) >= u64::from(self.per_second) {
                    self.suppressed.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                current + 1
            } else {
                (second << 32) | 1
            };
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// Lines suppressed so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }

    /// The limit, lines a second (0: none).
    pub fn per_second(&self) -> u32 {
        self.per_second
    }
}

impl Default for LineBudget {
    fn default() -> Self {
        LineBudget::new(DEFAULT_REQUEST_LOG_LIMIT)
    }
}

/// Says in one line, every `every`, how many lines were dropped (the writer's queue full) and
/// how many suppressed (past the requests' rate) since it last said so, each when any were:
/// the counts themselves are on `/metrics`. Runs until the task is aborted.
pub async fn report_unwritten(dropped: DroppedLines, budget: Arc<LineBudget>, every: Duration) {
    let (mut reported_dropped, mut reported_suppressed) = (dropped.count(), budget.suppressed());
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = dropped.count();
        if now > reported_dropped {
            warn!(
                dropped = now - reported_dropped,
                total = now,
                "{} log lines dropped: the log's writer could not keep up (its queue was full); reviews were not held back",
                now - reported_dropped
            );
            reported_dropped = now;
        }
        let now = budget.suppressed();
        if now > reported_suppressed {
            warn!(
                suppressed = now - reported_suppressed,
                total = now,
                limit = budget.per_second(),
                "{} request log lines not written: more than {} a second (--request-log-limit; 0 writes every line); the requests are counted in the metrics",
                now - reported_suppressed,
                budget.per_second()
            );
            reported_suppressed = now;
        }
    }
}

// === impl Clipped ===

impl Clipped<'_> {
    /// The most of the string a line carries.
    pub const MAX_BYTES: usize = 256;
}

impl fmt::Display for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s.len() <= Self::MAX_BYTES {
            return f.write_str(s);
        }
        let mut end = Self::MAX_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{}…({} bytes)", &s[..end], s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipped_keeps_real_names_whole() {
        let name = "a".repeat(253);
        assert_eq!(Clipped(&name).to_string(), name);
        assert_eq!(Clipped("").to_string(), "");
    }

    #[test]
    fn clipped_cuts_a_long_string_at_a_char_boundary_and_says_its_length() {
        let long = "é".repeat(1000);
        let shown = Clipped(&long).to_string();
        assert!(shown.ends_with("…(2000 bytes)"), "{shown}");
        assert!(shown.len() <= Clipped::MAX_BYTES + "…(2000 bytes)".len());
        assert!(shown.starts_with(&"é".repeat(128)));
    }

    #[test]
    fn no_counter_means_nothing_dropped() {
        assert_eq!(DroppedLines::default().count(), 0);
    }

    /// A writer that takes nothing until `release` is dropped: a log collector that stopped
    /// reading.
    struct Stuck(std::sync::mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            Err(io::Error::other("released"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Lines written by a subscriber installed on this thread.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Captured {
        /// A subscriber writing here, installed on this thread until the guard is dropped.
        fn installed() -> (Captured, tracing::subscriber::DefaultGuard) {
            let captured = Captured::default();
            let out = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || out.clone())
                .with_ansi(false)
                .finish();
            (captured, tracing::subscriber::set_default(subscriber))
        }

        /// What was written so far.
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("lock").clone()).expect("UTF-8")
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_budget_writes_its_lines_each_second_and_counts_the_rest() {
        let budget = LineBudget::new(3);
        let taken = |second| (0..5).filter(|_| budget.take_in(second)).count();
        assert_eq!(taken(7), 3);
        assert_eq!(budget.suppressed(), 2);
        assert_eq!(taken(7), 0, "the second's lines are used up");
        assert_eq!(budget.suppressed(), 7);
        assert_eq!(taken(8), 3, "a new second, new lines");
        assert_eq!(taken(1 << 32 | 8), 0, "the same second after the wrap");
        assert_eq!(budget.suppressed(), 14);
        assert_eq!(taken(u64::from(u32::MAX)), 3);
        assert_eq!(budget.suppressed(), 16);
    }

    #[test]
    fn no_limit_writes_every_line() {
        let budget = LineBudget::new(0);
        assert!((0..10_000).all(|_| budget.take()));
        assert_eq!(budget.suppressed(), 0);
    }

    #[test]
    fn workers_together_take_no_more_than_the_second_holds() {
        let budget = Arc::new(LineBudget::new(1000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let budget = budget.clone();
                std::thread::spawn(move || (0..2000).filter(|_| budget.take_in(5)).count())
            })
            .collect();
        let taken: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
        assert_eq!(taken, 1000);
        assert_eq!(budget.suppressed(), 7000);
    }

    #[tokio::test(start_paused = true)]
    async fn suppressed_lines_are_reported_once_per_period_only_when_they_grew() {
        let (captured, _default) = Captured::installed();
        let budget = Arc::new(LineBudget::new(2));
        let report = tokio::spawn(report_unwritten(
            DroppedLines::default(),
            budget.clone(),
            REPORT_EVERY,
        ));
        tokio::time::sleep(REPORT_EVERY / 2).await;
        (0..10).for_each(|_| _ = budget.take_in(3));
        tokio::time::sleep(REPORT_EVERY * 3).await;
        let text = captured.text();
        assert_eq!(
            text.matches("request log lines not written").count(),
            1,
            "{text}"
        );
        assert!(text.contains("suppressed=8 total=8 limit=2"), "{text}");
        assert!(!text.contains("dropped"), "{text}");
        report.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_lines_are_reported_once_per_period_only_when_they_grew() {
        let (captured, _default) = Captured::installed();

        let (release, stuck) = std::sync::mpsc::channel();
        let (mut writer, _guard) = NonBlockingBuilder::default()
            .buffered_lines_limit(1)
            .finish(Stuck(stuck));
        let dropped = DroppedLines(Some(writer.error_counter()));
        let budget = Arc::new(LineBudget::new(0));
        let report = tokio::spawn(report_unwritten(dropped.clone(), budget, REPORT_EVERY));
        tokio::time::sleep(REPORT_EVERY / 2).await;

        // One line in the stuck write, one queued, the rest dropped.
        for _ in 0..12 {
            writer.write_all(b"line\n").expect("never fails");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(dropped.count() >= 10, "{:?}", dropped);
        let first = dropped.count();
        tokio::time::sleep(REPORT_EVERY * 3).await;
        let text = captured.text();
        assert_eq!(text.matches("log lines dropped").count(), 1, "{text}");
        assert!(text.contains(&format!("dropped={first}")), "{text}");

        writer.write_all(b"line\n").expect("never fails");
        tokio::time::sleep(REPORT_EVERY).await;
        let text = captured.text();
        assert_eq!(text.matches("log lines dropped").count(), 2, "{text}");
        assert!(text.contains("dropped=1 "), "{text}");
        report.abort();
        drop(release);
    }
}
