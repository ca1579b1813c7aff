//! A connection's reads, held while its request body waits for room in the memory budget.
//!
//! actix-http reads a connection as fast as it can: up to 32 KiB into its read buffer (which
//! then keeps a 64 KiB allocation for the connection's life) and 32 KiB more into the request's
//! payload, whether or not the handler wants the body yet. Under a flood of connections that
//! each send part of a body, that is where memory goes. [`Gated`] wraps a connection's stream
//! and reads only as far as allowed:
//!
//! - bytes are handed up at most [`PIECE`] per turn of the connection's task, so that
//!   actix-http parses a request head and hands the request to the app before it has read
//!   more than a piece of the body, and so that its read buffer never grows past its first
//!   allocation (each piece is parsed and taken by the handler before the next is read);
//! - once the app has the request ([`RequestMarks`], through [`track`](crate::serve::conn::track)), nothing more is read until the handler opens
//!   the gate ([`Gate::open`]: the body has room in the budget) or the request ends.
//!
//! While a gate is held, the body waits in the kernel's socket buffers and TCP pushes back on
//! the client. HTTP/2 connections are never held ([`Gate::off`]): they multiplex requests over
//! one stream, and their flow-control windows bound what they buffer.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, ReadBuf};

use crate::serve::conn::{forward_writes, RequestMarks};

/// Most bytes handed up per turn of a connection's task between requests: a request head of
/// the API server (about 300 bytes) and a small review fit in one piece.
pub const PIECE: usize = 4 * 1024;

/// Where a connection's reads stand, shared by its stream and its requests.
#[derive(Clone, Default)]
pub struct Gate(Rc<Inner>);

#[derive(Default)]
struct Inner {
    state: Cell<State>,
    /// The connection's task, when a read waits for the gate to open.
    waiting: Cell<Option<Waker>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading: at most [`PIECE`] bytes per turn; `handed` so far in this turn.
    Pieces { handed: usize },
    /// The app has the request and its body has no room yet: nothing is read.
    Held,
    /// Never held, never cut into pieces (HTTP/2).
    Off,
}

impl Default for State {
    fn default() -> Self {
        State::Pieces { handed: 0 }
    }
}

/// A connection's stream, reading only as far as its [`Gate`] allows.
pub struct Gated<T> {
    io: T,
    gate: Gate,
}

// === impl Gate ===

impl Gate {
    /// A gate that never holds reads.
    pub fn off() -> Self {
        let gate = Gate::default();
        gate.0.state.set(State::Off);
        gate
    }

    /// The request's body has room (or needs none): read it.
    pub fn open(&self) {
        if self.0.state.get() == State::Held {
            self.move_to(State::default());
        }
    }

    /// Whether this connection's reads can be held (HTTP/1.1).
    pub fn holds(&self) -> bool {
        self.0.state.get() != State::Off
    }

    /// The app has the request: hold reads until [`Gate::open`].
    fn hold(&self) {
        if matches!(self.0.state.get(), State::Pieces { .. }) {
            self.0.state.set(State::Held);
        }
    }

    /// The request is answered (or dropped): read the next one.
    fn request_done(&self) {
        if self.0.state.get() == State::Held {
            self.move_to(State::default());
        }
    }

    fn move_to(&self, to: State) {
        if self.0.state.get() == State::Off {
            return;
        }
        self.0.state.set(to);
        // A read may have found the gate held: let the connection's task try again.
        if let Some(waker) = self.0.waiting.take() {
            waker.wake();
        }
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Gate").field(&self.0.state.get()).finish()
    }
}

// === impl Gated ===

impl<T> Gated<T> {
    /// Wraps `io`, whose reads `gate` governs.
    pub fn new(io: T, gate: Gate) -> Self {
        Gated { io, gate }
    }

    /// The gate the connection's requests open (see [`track`](crate::serve::conn::track)).
    pub fn gate(&self) -> Gate {
        self.gate.clone()
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T> std::fmt::Debug for Gated<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gated")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Gated<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let inner = &this.gate.0;
        match inner.state.get() {
            State::Off => Pin::new(&mut this.io).poll_read(cx, buf),
            State::Held => {
                inner.waiting.set(Some(cx.waker().clone()));
                Poll::Pending
            }
            State::Pieces { handed } if handed >= PIECE => {
                // A whole piece this turn: let actix-http parse what it has before reading on.
                inner.state.set(State::default());
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            State::Pieces { handed } => {
                let room = (PIECE - handed).min(buf.remaining());
                if room == 0 {
                    return Pin::new(&mut this.io).poll_read(cx, buf);
                }
                let mut piece = ReadBuf::new(buf.initialize_unfilled_to(room));
                let polled = Pin::new(&mut this.io).poll_read(cx, &mut piece);
                let read = piece.filled().len();
                buf.advance(read);
                // The state may have changed meanwhile only through this connection's own
                // requests, which cannot run during this call.
                inner.state.set(match polled {
                    Poll::Ready(Ok(())) => State::Pieces {
                        handed: handed + read,
                    },
                    _ => State::default(),
                });
                polled
            }
        }
    }
}

forward_writes!(Gated);

impl RequestMarks for Gate {
    /// The app has the request: hold reads until [`Gate::open`].
    fn request_started(&self) {
        self.hold();
    }

    /// The request is answered (or dropped): read the next one.
    fn request_ended(&self) {
        self.request_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Reads once with a 64 KiB buffer; `None` when the read would wait.
    async fn read_now<T: AsyncRead + Unpin>(io: &mut T) -> Option<usize> {
        let mut buf = vec![0u8; 64 * 1024];
        tokio::time::timeout(Duration::from_millis(50), io.read(&mut buf))
            .await
            .ok()
            .map(|r| r.expect("read"))
    }

    #[tokio::test]
    async fn between_requests_a_turn_reads_at_most_a_piece() {
        let (mut client, server) = tokio::io::duplex(256 * 1024);
        let mut server = Gated::new(server, Gate::default());
        client.write_all(&[b'x'; 3 * PIECE]).await.expect("write");
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = ReadBuf::new(&mut buf);
        let mut cx = Context::from_waker(Waker::noop());
        // One piece, then a yield before the next.
        assert!(Pin::new(&mut server)
            .poll_read(&mut cx, &mut read)
            .is_ready());
        assert_eq!(read.filled().len(), PIECE);
        assert!(Pin::new(&mut server)
            .poll_read(&mut cx, &mut read)
            .is_pending());
        assert!(Pin::new(&mut server)
            .poll_read(&mut cx, &mut read)
            .is_ready());
        assert_eq!(read.filled().len(), 2 * PIECE);
    }

    #[tokio::test]
    async fn a_held_gate_reads_nothing_until_opened() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let gate = Gate::default();
        let mut server = Gated::new(server, gate.clone());
        gate.hold();
        client.write_all(b"body").await.expect("write");
        assert_eq!(read_now(&mut server).await, None, "read while held");
        // Opening wakes the waiting read, which then gets the bytes.
        let opener = async {
            tokio::task::yield_now().await;
            gate.open();
        };
        let (read, ()) = tokio::join!(read_now(&mut server), opener);
        assert_eq!(read, Some(4));
    }

    #[tokio::test]
    async fn the_end_of_a_request_releases_a_held_gate() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let gate = Gate::default();
        let mut server = Gated::new(server, gate.clone());
        gate.hold();
        client.write_all(b"next request").await.expect("write");
        let done = async {
            tokio::task::yield_now().await;
            gate.request_done();
        };
        let (read, ()) = tokio::join!(read_now(&mut server), done);
        assert_eq!(read, Some(12));
    }

    #[tokio::test]
    async fn an_opened_gate_still_reads_in_pieces() {
        let (mut client, server) = tokio::io::duplex(256 * 1024);
        let gate = Gate::default();
        let mut server = Gated::new(server, gate.clone());
        gate.hold();
        gate.open();
        client.write_all(&[b'x'; 3 * PIECE]).await.expect("write");
        assert_eq!(read_now(&mut server).await, Some(PIECE));
    }

    #[tokio::test]
    async fn off_is_never_held_nor_cut() {
        let (mut client, server) = tokio::io::duplex(256 * 1024);
        let off = Gate::off();
        let mut server = Gated::new(server, off.clone());
        off.hold();
        client.write_all(&[b'x'; 3 * PIECE]).await.expect("write");
        assert_eq!(read_now(&mut server).await, Some(3 * PIECE));
        assert!(!off.holds());
    }
}
