//! A deadline for every request head on a kept-alive HTTP/1.1 connection, not only the first.
//!
//! actix-http bounds the head of a connection's first request (`client_request_timeout`), but
//! on a kept-alive connection the idle timer stops at the first byte of the next request and
//! nothing bounds the rest of that head: a client could trickle it a byte at a time and hold
//! the connection (and a connection slot) for ever. This module closes that gap, as Go's
//! `ReadHeaderTimeout` does for every request.
//!
//! Two parts share one per-connection [`Phase`]: [`HeadTimed`] wraps the connection's stream,
//! arms the deadline when the first byte after an idle period arrives, and fails the read once
//! it passes (actix then drops the connection); [`track`](crate::serve::conn::track), a middleware, marks the head as
//! complete when the request reaches the app, and the connection idle again when the answer is
//! ready. The body is not covered: the handler bounds its read with the request timeout.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};
use tracing::debug;

use crate::serve::conn::{forward_writes, RequestMarks};

/// Where a connection is between requests, shared by its stream and its requests.
#[derive(Clone, Debug, Default)]
pub struct Phase(Rc<Cell<State>>);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Between requests: the next byte read starts a request head.
    #[default]
    Idle,
    /// A request head is arriving and must be complete by then.
    Head(Instant),
    /// The app has the request; the handler bounds what it reads.
    Busy,
    /// Never armed (HTTP/2, which multiplexes requests over one stream).
    Off,
}

/// A connection's stream, failing its reads once a request head is overdue.
#[derive(Debug)]
pub struct HeadTimed<T> {
    io: T,
    phase: Phase,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

// === impl Phase ===

impl Phase {
    /// A phase that never arms the deadline.
    pub fn off() -> Self {
        Phase(Rc::new(Cell::new(State::Off)))
    }

    /// The app has the request: its head is complete.
    fn busy(&self) {
        self.move_to(State::Busy);
    }

    /// The request is answered: the next byte starts a new head.
    fn idle(&self) {
        self.move_to(State::Idle);
    }

    fn move_to(&self, to: State) {
        if self.0.get() != State::Off {
            self.0.set(to);
        }
    }
}

// === impl HeadTimed ===

impl<T> HeadTimed<T> {
    /// Wraps `io`; each request head must arrive within `timeout` of its first byte. Must be
    /// called within a Tokio runtime (it makes a timer).
    pub fn new(io: T, timeout: Duration, phase: Phase) -> Self {
        HeadTimed {
            io,
            phase,
            timeout,
            timer: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// The phase the connection's requests update (see [`track`](crate::serve::conn::track)).
    pub fn phase(&self) -> Phase {
        self.phase.clone()
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadTimed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let State::Head(deadline) = this.phase.0.get() {
            if this.timer.deadline() != deadline {
                this.timer.as_mut().reset(deadline);
            }
            // Polled on every read attempt, so the timer wakes the connection's task even when
            // no further byte ever comes.
            if this.timer.as_mut().poll(cx).is_ready() {
                debug!(
                    timeout_ms = this.timeout.as_millis() as u64,
                    "request head not received in time: closing the connection"
                );
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request head not received within the header timeout",
                )));
            }
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let deadline = Instant::now() + this.timeout;
            if this.phase.0.get() == State::Idle {
                this.phase.0.set(State::Head(deadline));
                this.timer.as_mut().reset(deadline);
                // Register the timer with this task now: the next read may not come before it.
                let _ = this.timer.as_mut().poll(cx);
            }
        }
        polled
    }
}

forward_writes!(HeadTimed);

impl RequestMarks for Phase {
    fn request_started(&self) {
        self.busy();
    }

    fn request_ended(&self) {
        self.idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test(start_paused = true)]
    async fn a_head_that_never_completes_fails_the_read() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = HeadTimed::new(server, Duration::from_secs(5), Phase::default());
        let mut client = client;
        client.write_all(b"GET / HT").await.expect("write");
        let mut buf = [0u8; 64];
        let n = server.read(&mut buf).await.expect("first bytes");
        assert_eq!(n, 8);
        // Nothing more comes: the read fails once the deadline passes.
        let err = server.read(&mut buf).await.expect_err("timed out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn trickled_bytes_do_not_extend_the_deadline() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = HeadTimed::new(server, Duration::from_secs(5), Phase::default());
        let started = Instant::now();
        let trickle = tokio::spawn(async move {
            for _ in 0..100 {
                if client.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let mut buf = [0u8; 64];
        let err = loop {
            match server.read(&mut buf).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() <= Duration::from_millis(5_500));
        drop(server);
        trickle.await.expect("trickle task");
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_or_idle_connection_is_not_timed() {
        let (mut client, server) = tokio::io::duplex(64);
        let phase = Phase::default();
        let mut server = HeadTimed::new(server, Duration::from_secs(5), phase.clone());
        client.write_all(b"head").await.expect("write");
        let mut buf = [0u8; 64];
        assert_eq!(server.read(&mut buf).await.expect("head"), 4);
        // The app took the request: a slow body is the handler's business.
        phase.busy();
        tokio::time::sleep(Duration::from_secs(60)).await;
        client.write_all(b"body").await.expect("write");
        assert_eq!(server.read(&mut buf).await.expect("body"), 4);
        // Answered: idle again, and a long pause before the next request is fine too.
        phase.idle();
        tokio::time::sleep(Duration::from_secs(60)).await;
        client.write_all(b"next").await.expect("write");
        assert_eq!(server.read(&mut buf).await.expect("next head"), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn off_never_times_out() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = HeadTimed::new(server, Duration::from_secs(1), Phase::off());
        client.write_all(b"a").await.expect("write");
        let mut buf = [0u8; 8];
        assert_eq!(server.read(&mut buf).await.expect("a"), 1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        client.write_all(b"b").await.expect("write");
        assert_eq!(server.read(&mut buf).await.expect("b"), 1);
    }
}
