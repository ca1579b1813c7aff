//! `serve --record-denied DIR`: each denied review written as a replayable file, off the
//! request path and bounded in count.

use std::collections::VecDeque;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::warn;

/// Default of `--record-denied-max`: how many files the directory keeps.
pub const DEFAULT_MAX_FILES: usize = 1000;
/// Reviews waiting to be written; beyond this a denial is not recorded (and counted) rather
/// than slowing the answer.
const QUEUE: usize = 256;
/// Bytes of reviews waiting to be written, at most (part of the memory budget's plan when
/// recording): a writer behind on large reviews drops them rather than holding them.
pub const QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// The recording directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The directory cannot be created or listed.
    #[error("--record-denied {dir}: {source}")]
    Dir {
        /// The directory.
        dir: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the --record-denied writer")]
    Thread(#[source] std::io::Error),
}

/// Hands denied reviews to a writer thread; cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct Recorder {
    queue: SyncSender<(String, Vec<u8>)>,
    dropped: Arc<AtomicU64>,
    /// Bytes of bodies in the queue.
    queued: Arc<AtomicUsize>,
}

// === impl Recorder ===

impl Recorder {
    /// Starts recording into `dir` (created if missing), keeping at most `max_files` files:
    /// the oldest are removed first.
    pub fn start(dir: &Path, max_files: usize) -> Result<Self, RecordError> {
        let dir_err = |source| RecordError::Dir {
            dir: dir.display().to_string(),
            source,
        };
        fs::create_dir_all(dir).map_err(dir_err)?;
        let mut existing: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(dir_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_record(p))
            .collect();
        // Names start with a zero-padded timestamp, so name order is age order.
        existing.sort();
        let written: VecDeque<PathBuf> = existing.into();

        let (queue, rx) = sync_channel::<(String, Vec<u8>)>(QUEUE);
        let dir = dir.to_path_buf();
        let max_files = max_files.max(1);
        let queued = Arc::new(AtomicUsize::new(0));
        let written_bytes = queued.clone();
        std::thread::Builder::new()
            .name("record-denied".to_owned())
            .spawn(move || {
                let mut written = written;
                let mut sequence: u64 = 0;
                for (uid, body) in rx {
                    sequence += 1;
                    match write_record(&dir, &uid, sequence, &body) {
                        Ok(path) => written.push_back(path),
                        Err(e) => {
                            warn!(dir = %dir.display(), error = %e, "cannot record a denied review")
                        }
                    }
                    written_bytes.fetch_sub(body.len(), Ordering::Relaxed);
                    drop(body);
                    while written.len() > max_files {
                        if let Some(old) = written.pop_front() {
                            let _ = fs::remove_file(old);
                        }
                    }
                }
            })
            .map_err(RecordError::Thread)?;
        Ok(Recorder {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
            queued,
        })
    }

    /// Queues a denied review for writing; when the writer is behind, the review is not
    /// recorded and counted instead, so the answer is never delayed.
    pub fn record(&self, uid: &str, body: &[u8]) {
        let room = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| {
                Some(queued + body.len()).filter(|&total| total <= QUEUE_BYTES)
            })
            .is_ok();
        let sent = room
            && match self.queue.try_send((uid.to_owned(), body.to_vec())) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.queued.fetch_sub(body.len(), Ordering::Relaxed);
                    false
                }
            };
        if !sent {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(
                dropped = n,
                "denied review not recorded: the writer is behind"
            );
        }
    }
}

fn is_record(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("denied-") && n.ends_with(".json"))
}

/// Writes one review atomically (a temporary name, then a rename), so that a replay of the
/// directory never reads half a file.
fn write_record(dir: &Path, uid: &str, sequence: u64, body: &[u8]) -> std::io::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // The uid comes from the request: keep only characters that are safe in a file name.
    let safe_uid: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    let name = format!("denied-{nanos:020}-{sequence:06}-{safe_uid}.json");
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(body)?;
    file.sync_all()?;
    fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn records(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| is_record(p))
            .collect();
        v.sort();
        v
    }

    fn wait_for(dir: &Path, n: usize) -> Vec<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = records(dir);
            if r.len() == n || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn writes_each_review_as_sent() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::start(dir.path(), 10).unwrap();
        rec.record("uid-1", b"{\"a\":1}");
        let files = wait_for(dir.path(), 1);
        assert_eq!(files.len(), 1);
        assert_eq!(fs::read(&files[0]).unwrap(), b"{\"a\":1}");
        assert!(files[0].to_string_lossy().ends_with("-uid-1.json"));
    }

    #[test]
    fn keeps_at_most_max_files_removing_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::start(dir.path(), 3).unwrap();
        for i in 0..5 {
            rec.record(&format!("u{i}"), format!("{i}").as_bytes());
        }
        // The writer removes the two oldest once five are written.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut files = records(dir.path());
        while !(files.len() == 3 && fs::read(&files[2]).unwrap() == b"4")
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
            files = records(dir.path());
        }
        let bodies: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
        assert_eq!(bodies, vec![b"2".to_vec(), b"3".to_vec(), b"4".to_vec()]);
    }

    #[test]
    fn queued_bytes_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::start(dir.path(), 10).unwrap();
        // Larger than the whole queue: dropped, never held.
        rec.record("too-big", &vec![b' '; QUEUE_BYTES + 1]);
        assert_eq!(rec.dropped.load(Ordering::Relaxed), 1);
        rec.record("fits", b"{}");
        let files = wait_for(dir.path(), 1);
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].to_string_lossy().ends_with("-fits.json"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while rec.queued.load(Ordering::Relaxed) != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            rec.queued.load(Ordering::Relaxed),
            0,
            "written bytes not given back"
        );
    }

    #[test]
    fn sanitises_the_uid_in_file_names() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::start(dir.path(), 10).unwrap();
        rec.record("../../etc/passwd", b"{}");
        let files = wait_for(dir.path(), 1);
        assert_eq!(files[0].parent(), Some(dir.path()));
        assert!(files[0].to_string_lossy().ends_with("-etcpasswd.json"));
    }

    #[test]
    fn refuses_a_directory_it_cannot_create() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        fs::write(&file, b"x").unwrap();
        let err = Recorder::start(&file.join("sub"), 10).unwrap_err();
        assert!(err.to_string().contains("plain-file"), "{err}");
    }
}
