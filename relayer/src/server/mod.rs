//! The HTTP server, bounded against slow and idle clients.
//!
//! - Every request's headers must arrive within `HTTP_HEADER_TIMEOUT_SECS`, including the wait
//!   for the next request on a kept-alive connection (hyper's header read timer covers both).
//! - A body that stops sending for `HTTP_BODY_TIMEOUT_SECS` is cut off, and a whole request
//!   (body included) gets `HTTP_REQUEST_TIMEOUT_SECS` before it is answered 408.
//! - At most `HTTP_MAX_CONNECTIONS` are open, kept below the process's open-file limit with room
//!   for Postgres, the KMS and the RPC node. A new client at the limit takes the place of the
//!   connection idle the longest (`connections`), so silent sockets cannot keep real requests
//!   out; a file-descriptor shortage (EMFILE) is waited out, never spun on.
//! - HTTP/1.1 only; TLS handshakes get their own timeout (`crate::tls`).
pub mod connections;
pub mod headers;

use std::{net::SocketAddr, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper::{body::Incoming, server::conn::http1, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::TlsAcceptor;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

use self::connections::{Connections, Slot};
use crate::tls::Peer;

/// How long a shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(25);

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

/// Connections the open-file limit leaves room for: the soft `RLIMIT_NOFILE` less `reserve`
/// descriptors for everything else the process holds (database pool, KMS, RPC, logs).
pub fn max_connections_for_file_limit(reserve: u64) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1_024
    };
    soft.saturating_sub(reserve).clamp(16, 65_536) as usize
}

/// Serves `router` on `listener` until `shutdown`, then drains requests in flight.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let connections = Connections::default();
    let tracker = TaskTracker::new();
    let mut shortage_logged: Option<std::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let (stream, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors (or another transient failure): wait, then try again.
                if shortage_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(error = %e, open = connections.open(), "cannot accept a connection; lower HTTP_MAX_CONNECTIONS or raise the open-file limit (LimitNOFILE)");
                    shortage_logged = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = connections.admit(limits.max_connections) else {
            // Every connection is busy with a request: this client is refused (closed).
            tracing::debug!(%addr, "connection refused: every slot is busy");
            continue;
        };
        tracker.spawn(connection(
            stream,
            addr,
            slot,
            tls.clone(),
            router.clone(),
            limits,
            connections.clone(),
            shutdown.clone(),
        ));
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!("shutdown: requests still in flight after {DRAIN:?} were dropped");
    }
}

#[allow(clippy::too_many_arguments)] // one connection's whole context, passed once
async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    slot: Slot,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: Limits,
    connections: Connections,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => {
            let peer = Peer {
                addr,
                client_certified: false,
            };
            http(stream, peer, &slot, router, limits, connections, shutdown).await
        }
        Some(acceptor) => {
            let handshake = tokio::select! {
                h = crate::tls::handshake(&acceptor, stream, addr) => h,
                _ = slot.close.cancelled() => None,
            };
            if let Some((stream, peer)) = handshake {
                http(stream, peer, &slot, router, limits, connections, shutdown).await
            }
        }
    }
}

async fn http<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: S,
    peer: Peer,
    slot: &Slot,
    router: Router,
    limits: Limits,
    connections: Connections,
    shutdown: CancellationToken,
) {
    let id = slot.id;
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        connections.busy(id);
        request.extensions_mut().insert(ConnectInfo(peer));
        let (router, connections) = (router.clone(), connections.clone());
        async move {
            let response = router.oneshot(request).await;
            connections.idle(id);
            response
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(addr = %peer.addr, error = %e, "connection ended");
            }
        }
        // Made room for a newer client: close at once.
        _ = slot.close.cancelled() => {}
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}
