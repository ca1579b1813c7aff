//! The listening sockets and the HTTP settings both listeners share.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::time::Duration;

use actix_http::{HttpServiceBuilder, KeepAlive, Request, Response};
use actix_service::{Service, ServiceFactory};
use actix_web::body::BoxBody;
use actix_web::dev::AppConfig;

use crate::serve::budget;
use crate::serve::server::ServerError;

/// Connections a listener keeps waiting to be accepted (the kernel's backlog), as std's
/// `TcpListener::bind`.
const BACKLOG: i32 = 128;
/// Time a client has to acknowledge the close of its connection.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time a client has to finish the TLS handshake.
pub(super) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle time before a kept-alive connection is closed. The API server reuses connections, so
/// reuse saves a handshake per review; idle connections are closed at once on shutdown.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Binds a listener with `binder` (the socket calls, or a stand-in in tests). An IPv6
/// wildcard (`[::]`, the default) that the kernel refuses because it has no IPv6 at all is
/// bound as the IPv4 wildcard instead, as Go's `:8443` is; the refusal is returned for the log.
pub(super) fn bind(
    addr: SocketAddr,
    binder: fn(SocketAddr) -> io::Result<TcpListener>,
) -> Result<(TcpListener, SocketAddr, Option<io::Error>), ServerError> {
    let bound = |addr: SocketAddr, listener: io::Result<TcpListener>| {
        let bind_err = |source| ServerError::Bind { addr, source };
        let listener = listener.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        Ok::<_, ServerError>((listener, local))
    };
    match binder(addr) {
        Err(e)
            if addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                && e.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
        {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            let (listener, local) = bound(v4, binder(v4))?;
            Ok((listener, local, Some(e)))
        }
        listener => {
            let (listener, local) = bound(addr, listener)?;
            Ok((listener, local, None))
        }
    }
}

/// A listening TCP socket on `addr`. An IPv6 socket takes IPv4 connections too (as
/// IPv4-mapped addresses) whatever `net.ipv6.bindv6only` says, so that `[::]` is every address
/// of both families.
pub(super) fn bind_socket(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    // As std's bind: a restarted server can listen again while old connections linger.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The actix-web app config. Only URL generation reads it, and nothing here generates URLs.
pub(super) fn app_config(_: ()) -> AppConfig {
    AppConfig::default()
}

/// The HTTP settings both listeners share.
pub(super) fn http_builder<T, S, F, Fut>(
    local_addr: SocketAddr,
    secure: bool,
    header_timeout: Duration,
    http2: bool,
    on_shutdown: F,
) -> HttpServiceBuilder<T, S>
where
    S: ServiceFactory<Request, Config = ()>,
    S::Error: Into<Response<BoxBody>> + 'static,
    S::InitError: std::fmt::Debug,
    <S::Service as Service<Request>>::Future: 'static,
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let builder = HttpServiceBuilder::default()
        .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
        // The first request's head; `HeadTimed` bounds the heads of the requests after it.
        .client_request_timeout(header_timeout)
        .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
        .local_addr(local_addr)
        .graceful_shutdown_signal(on_shutdown);
    // What an HTTP/2 connection may send before its handlers read: its share of the memory
    // budget. (actix-http's defaults, 2 MiB per connection and 1 MiB per stream, are not.)
    let builder = if http2 {
        builder
            .h2_initial_window_size(budget::H2_WINDOW_BYTES)
            .h2_initial_connection_window_size(budget::H2_WINDOW_BYTES)
    } else {
        builder
    };
    if secure {
        builder.secure()
    } else {
        builder
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::server::DEFAULT_LISTEN;

    /// A kernel without IPv6: every IPv6 socket is refused as Linux refuses it then.
    fn without_ipv6(addr: SocketAddr) -> io::Result<TcpListener> {
        if addr.is_ipv6() {
            Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
        } else {
            bind_socket(addr)
        }
    }

    fn wildcard() -> SocketAddr {
        SocketAddr::new(DEFAULT_LISTEN.ip(), 0)
    }

    #[test]
    fn the_ipv6_wildcard_takes_both_families_on_one_socket() {
        let (listener, local, refused) = bind(wildcard(), bind_socket).expect("bound");
        assert!(refused.is_none());
        assert_eq!(local.ip(), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            std::net::TcpStream::connect((ip, local.port()))
                .unwrap_or_else(|e| panic!("connect over {ip}: {e}"));
        }
        drop(listener);
    }

    #[test]
    fn without_ipv6_the_wildcard_falls_back_to_ipv4() {
        let (listener, local, refused) = bind(wildcard(), without_ipv6).expect("bound");
        assert_eq!(local.ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(
            refused.and_then(|e| e.raw_os_error()),
            Some(libc::EAFNOSUPPORT)
        );
        std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, local.port())).expect("IPv4");
        drop(listener);
    }

    #[test]
    fn only_the_wildcard_falls_back_and_only_for_a_missing_family() {
        // A specific IPv6 address was asked for: refused, not replaced.
        let loopback = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0);
        assert!(matches!(
            bind(loopback, without_ipv6),
            Err(ServerError::Bind { addr, .. }) if addr == loopback
        ));
        // Any other failure of the wildcard (here: the port is taken) is an error too.
        let taken: fn(SocketAddr) -> io::Result<TcpListener> =
            |_| Err(io::Error::from(io::ErrorKind::AddrInUse));
        assert!(matches!(
            bind(wildcard(), taken),
            Err(ServerError::Bind { addr, .. }) if addr == wildcard()
        ));
    }
}
