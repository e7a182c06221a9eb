//! The accept loop (issue 10 §1, §3): optional TLS, connection caps, timeouts against slow
//! clients, and a shutdown bounded in time. Built on hyper's HTTP/1.1 server connection and
//! tokio-rustls; no protocol plumbing of our own.
//!
//! - **Caps.** At most `max_connections` open connections, and `max_connections_per_ip` from one
//!   address (an IPv6 address counts by its /64). A connection over a cap is closed at once,
//!   before any byte is read.
//! - **Header read timeout** (hyper's `header_read_timeout`): from the moment a connection waits
//!   for a request (a new connection, or a kept-alive one between requests), the request head
//!   must be complete within `header_read_timeout_secs`. With TLS the handshake gets the same
//!   time.
//! - **Keep-alive idle timeout:** once a response is sent, a connection with no request in flight
//!   is closed after `keep_alive_timeout_secs` (or earlier by the header read timeout).
//! - **Body idle timeout:** tower-http's `RequestBodyTimeoutLayer` in the router (see `http`)
//!   for request bodies; for responses, a connection whose socket stays full (the client stopped
//!   reading) for `body_idle_timeout_secs` is dropped.
//! - **Shutdown:** the listener closes, every connection is asked to finish its request and close
//!   (idle ones close at once), in-flight requests get `shutdown_grace_ms`, then the remaining
//!   connections are dropped.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::config::Config;
use crate::tls::TlsConfig;

/// The transport settings taken from [`Config`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    header_read: Duration,
    keep_alive: Duration,
    send_stall: Duration,
    max_connections: usize,
    max_per_ip: usize,
    grace: Duration,
}

impl Limits {
    pub(crate) fn from_config(c: &Config) -> Limits {
        Limits {
            header_read: Duration::from_secs(c.header_read_timeout_secs),
            keep_alive: Duration::from_secs(c.keep_alive_timeout_secs),
            send_stall: Duration::from_secs(c.body_idle_timeout_secs),
            max_connections: c.max_connections,
            max_per_ip: c.max_connections_per_ip,
            grace: Duration::from_millis(c.shutdown_grace_ms),
        }
    }
}

/// The key a per-address cap or throttle counts by: the IPv4 address, or the IPv6 /64 (one
/// client usually holds a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Open connections per client address.
#[derive(Debug)]
struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// Holds one slot of a [`PerIp`] count; frees it on drop.
struct IpSlot {
    table: Arc<PerIp>,
    key: IpAddr,
}

impl PerIp {
    fn acquire(table: &Arc<PerIp>, ip: IpAddr) -> Option<IpSlot> {
        let key = client_key(ip);
        let mut open = table.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= table.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: Arc::clone(table),
            key,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes (see the module documentation).
pub(crate) async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<TlsConfig>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp {
        max: limits.max_per_ip,
        open: Mutex::new(HashMap::new()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut last_refusal_log: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors, or the peer reset before accept: wait a little
                        // instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let slots = Arc::clone(&total)
                    .try_acquire_owned()
                    .ok()
                    .map(|permit| (permit, PerIp::acquire(&per_ip, peer.ip())));
                let Some((permit, Some(ip_slot))) = slots else {
                    // Logged at most once a second: a flood must not flood the log too.
                    if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        last_refusal_log = Some(Instant::now());
                        tracing::warn!(peer = %peer, "connection refused: connection cap reached (max_connections / max_connections_per_ip)");
                    }
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let tls = tls.clone();
                let stop = stop_rx.clone();
                conns.spawn(async move {
                    connection(stream, peer, router, tls, limits, stop).await;
                    drop((permit, ip_slot));
                });
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            connections = conns.len(),
            "shutdown grace over: dropping the remaining connections"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

/// One client connection: the TLS handshake (bounded by the header read timeout), then HTTP/1.1.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    tls: Option<TlsConfig>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity {
        start: Instant::now(),
        in_flight: AtomicUsize::new(0),
        idle_since_ms: AtomicU64::new(0),
        write_blocked_since_ms: AtomicU64::new(0),
    });
    let stream = Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    };
    match tls {
        None => http1(TokioIo::new(stream), peer, router, limits, stop, activity).await,
        Some(tls) => {
            let handshake = tokio::time::timeout(limits.header_read, tls.acceptor().accept(stream));
            let stream = tokio::select! {
                r = handshake => r,
                _ = stop.changed() => return,
            };
            match stream {
                Ok(Ok(s)) => http1(TokioIo::new(s), peer, router, limits, stop, activity).await,
                Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
            }
        }
    }
}

/// The TCP stream of one connection, noting when its writes block (the peer stopped reading).
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl Watched {
    fn note<T>(&self, r: &Poll<io::Result<T>>) {
        let a = &self.activity;
        if r.is_pending() {
            let ms = a.now_ms().max(1);
            let _ = a.write_blocked_since_ms.compare_exchange(
                0,
                ms,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        } else {
            a.write_blocked_since_ms.store(0, Ordering::SeqCst);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(&r);
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Requests in flight on one connection, and when the last one ended.
#[derive(Debug)]
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `start` to the end of the last response; 0 before the first.
    idle_since_ms: AtomicU64,
    /// Milliseconds from `start` to the first write that found the socket full, while it stays
    /// full; 0 when writes go through.
    write_blocked_since_ms: AtomicU64,
}

/// Marks a request in flight until dropped (with the response body, or with the handler's future
/// when the client goes away).
struct InFlight(Arc<Activity>);

impl Activity {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// When the peer will have left a blocked write unread for `limit`, if a write is blocked.
    fn write_deadline(&self, limit: Duration) -> Option<Instant> {
        match self.write_blocked_since_ms.load(Ordering::SeqCst) {
            0 => None,
            ms => Some(self.start + Duration::from_millis(ms) + limit),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.idle_since_ms.store(ms.max(1), Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn http1<I>(
    io: I,
    peer: SocketAddr,
    router: axum::Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    activity: Arc<Activity>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let in_flight = activity.begin();
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let resp = router.oneshot(req.map(Body::new)).await;
                // The request counts as in flight until its response body is sent or dropped.
                resp.map(|r| {
                    r.map(|b| {
                        Body::new(b.map_frame(move |f| {
                            let _held = &in_flight;
                            f
                        }))
                    })
                })
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let idle_check = next_idle_check(&activity, limits.keep_alive);
        let write_check = activity
            .write_deadline(limits.send_stall)
            .unwrap_or_else(|| Instant::now() + limits.send_stall);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(peer = %peer, error = %e, "connection closed with an error");
                }
                break;
            }
            _ = stop.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(idle_check.min(write_check)) => {
                if activity
                    .write_deadline(limits.send_stall)
                    .is_some_and(|d| d <= Instant::now())
                {
                    // The client stopped reading its response: drop the connection.
                    tracing::debug!(peer = %peer, "send stalled: dropping the connection");
                    break;
                }
                if !closing && is_idle_past(&activity, limits.keep_alive) {
                    tracing::debug!(peer = %peer, "keep-alive timeout: closing an idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// When to look again whether the connection has been idle for `keep_alive`: at the end of the
/// idle period if it is idle now, else one period from now. Before the first request the header
/// read timeout governs alone.
fn next_idle_check(a: &Activity, keep_alive: Duration) -> Instant {
    let since = a.idle_since_ms.load(Ordering::SeqCst);
    if a.in_flight.load(Ordering::SeqCst) == 0 && since > 0 {
        a.start + Duration::from_millis(since) + keep_alive
    } else {
        Instant::now() + keep_alive
    }
}

fn is_idle_past(a: &Activity, keep_alive: Duration) -> bool {
    let since = a.idle_since_ms.load(Ordering::SeqCst);
    a.in_flight.load(Ordering::SeqCst) == 0
        && since > 0
        && a.start + Duration::from_millis(since) + keep_alive <= Instant::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        let b: IpAddr = "2001:db8:1:2:bbbb::2"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        let c: IpAddr = "2001:db8:1:3::1"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        assert_eq!(client_key(mapped), IpAddr::V4([192, 0, 2, 1].into()));
    }

    #[test]
    fn per_ip_cap_counts_and_frees() {
        let t = Arc::new(PerIp {
            max: 2,
            open: Mutex::new(HashMap::new()),
        });
        let ip = IpAddr::V4([10, 0, 0, 1].into());
        let a = PerIp::acquire(&t, ip);
        let b = PerIp::acquire(&t, ip);
        assert!(a.is_some() && b.is_some());
        assert!(PerIp::acquire(&t, ip).is_none());
        assert!(PerIp::acquire(&t, IpAddr::V4([10, 0, 0, 2].into())).is_some());
        drop(a);
        assert!(PerIp::acquire(&t, ip).is_some());
    }
}
