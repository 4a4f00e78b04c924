//! Accepting and serving connections, with the limits `axum::serve` does
//! not offer: a cap on connections, time limits on request heads and idle
//! keep-alives, a bounded head size, and a shutdown that ends within its
//! grace period whatever clients hold.

pub mod client;
mod connection;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::telemetry::{Metrics, RateLimitedLog};
pub use connection::Timeouts;
use connection::{Activity, InFlight, Tracked, tracked_body};

/// A request head larger than this gets 431: it bounds the memory an
/// unfinished head can hold.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub timeouts: Timeouts,
    /// Connections open at once; past it, new ones are closed at once.
    pub max_connections: usize,
    /// From the shutdown signal to the end, whatever clients hold.
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` turns true, then stops
/// accepting, asks every connection to finish and, once `shutdown_grace`
/// has passed, drops those that have not.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    metrics: Arc<Metrics>,
    open: Arc<AtomicUsize>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let (closing, closed) = watch::channel(false);
    let refused = RateLimitedLog::new("connection refused: too many open connections");
    let accept_failed = RateLimitedLog::new("accepting a connection failed");
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    // Only this loop adds connections, so the count cannot pass
                    // the cap between this check and the increment below.
                    if open.load(Ordering::Relaxed) >= limits.max_connections {
                        // Closed at once: better than a client hanging.
                        metrics.connection_refused("too_many_connections");
                        refused.warn(&format!("the cap is {}", limits.max_connections));
                        drop(tcp);
                        continue;
                    }
                    let app = app.clone();
                    let metrics = Arc::clone(&metrics);
                    let closed = closed.clone();
                    let counted = Counted::new(Arc::clone(&open));
                    connections.spawn(async move {
                        serve_connection(tcp, peer, app, limits.timeouts, &metrics, closed).await;
                        drop(counted);
                    });
                }
                Err(e) => {
                    // EMFILE and the like: count, say so (not on every
                    // try), and let a moment pass instead of spinning.
                    metrics.accept_failed();
                    accept_failed.warn(&e.to_string());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Reap finished connections so the set stays as small as the open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopping(&mut shutdown) => break,
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_grace, drained).await.is_err() {
        tracing::info!(left = connections.len(), "grace period over; dropping the remaining connections");
        connections.shutdown().await;
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: Timeouts,
    metrics: &Metrics,
    mut closing: watch::Receiver<bool>,
) {
    // Small answers go out at once instead of waiting on Nagle's algorithm.
    let _ = tcp.set_nodelay(true);
    let activity = Activity::new();
    let io = TokioIo::new(Tracked::new(tcp, Arc::clone(&activity)));
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            activity.request_started();
            let mark = InFlight(Arc::clone(&activity));
            let answer = app.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = answer.await.unwrap_or_else(|never: Infallible| match never {});
                Ok::<_, Infallible>(response.map(|body| tracked_body(body, mark)))
            }
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        // Our own clock does the head and idle limits (see `connection`).
        .header_read_timeout(None)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(2 * MAX_HEAD_BYTES);
    let connection = http.serve_connection(io, service);
    tokio::pin!(connection);
    // Looked at every so often while busy (see `Activity::check`), so a
    // connection that falls idle is cut at most that much after its limit.
    let mut check_at = tokio::time::Instant::now() + timeouts.header.min(timeouts.idle);
    let mut graceful = false;
    let served = loop {
        tokio::select! {
            served = connection.as_mut() => break served,
            () = tokio::time::sleep_until(check_at) => match activity.check(timeouts) {
                Ok(next) => check_at = next,
                Err(cut) => {
                    metrics.connection_cut(cut.label());
                    tracing::debug!(reason = cut.label(), "connection cut");
                    return;
                }
            },
            () = stopping(&mut closing), if !graceful => {
                graceful = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    };
    if let Err(e) = served {
        // hyper answers a malformed or oversized head itself (400, 431);
        // make those visible here. A client that just went away is routine.
        static REFUSED: RateLimitedLog = RateLimitedLog::new("request refused before routing");
        let kind = hyper_error_kind(&e);
        metrics.connection_error(kind);
        if e.is_parse() {
            REFUSED.warn(&format!("{kind}: {e}"));
        } else {
            tracing::debug!(kind, error = %e, "connection ended with an error");
        }
    }
}

/// One open connection in the shared count, for as long as it lives.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(open: Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(open)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Completes once the flag is true. (The guard `wait_for` returns is not
/// `Send`, so it must not live in a `select!` of a spawned task.)
async fn stopping(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

/// A label for what went wrong on a connection.
fn hyper_error_kind(e: &hyper::Error) -> &'static str {
    if e.is_parse_too_large() {
        "head_too_large"
    } else if e.is_parse() {
        "malformed_request"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_incomplete_message() {
        "incomplete_message"
    } else {
        "io"
    }
}
