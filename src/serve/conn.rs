//! What the connection wrappers ([`gate`](crate::serve::gate) and
//! [`head_timeout`](crate::serve::head_timeout)) have in common: a state shared by a
//! connection's stream and its requests, which each request marks when the app gets it and
//! when its handling ends ([`track`]); and writes passed straight to the wrapped stream
//! ([`forward_writes!`](crate::serve::conn::forward_writes)).

use std::future::Future;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};

/// A connection's state that follows its requests; found in the request's connection data.
pub trait RequestMarks: Clone + 'static {
    /// The app has the request: its head is complete.
    fn request_started(&self);
    /// The request's handling ended: answered, failed or dropped.
    fn request_ended(&self);
}

/// Middleware (for `App::wrap_fn`): marks the connection's `M` when the app gets a request and
/// again when its handling ends, however it ends. Connections without an `M` are left alone.
pub fn track<M, S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<M, S, B>
where
    M: RequestMarks,
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let marks = req.request().conn_data::<M>().cloned();
    if let Some(marks) = &marks {
        marks.request_started();
    }
    let answer = srv.call(req);
    async move {
        let _ended = marks.map(EndedOnDrop);
        answer.await
    }
}

/// Marks the request's end when dropped.
struct EndedOnDrop<M: RequestMarks>(M);

impl<M: RequestMarks> Drop for EndedOnDrop<M> {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// Implements `tokio::io::AsyncWrite` for a wrapper `$wrapper<T>` of a stream in its field
/// `io`, passing every write straight through: the wrappers shape reads only.
macro_rules! forward_writes {
    ($wrapper:ident) => {
        impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $wrapper<T> {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.io.is_write_vectored()
            }
        }
    };
}

pub(crate) use forward_writes;
