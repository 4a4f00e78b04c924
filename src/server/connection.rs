//! One HTTP/1.1 connection's life, with the time limits hyper does not
//! keep apart: how long a client may take to send a request head, and how
//! long a keep-alive connection may sit idle between requests.
//!
//! hyper's own `header_read_timeout` starts when it begins waiting for a
//! head, which includes the idle time between keep-alive requests, so it
//! cannot be 10 s for heads and 60 s for idling at once. Instead the socket
//! and the service each note what the connection is doing ([`Activity`]),
//! and a per-connection timer cuts it when the phase it is in has lasted
//! too long. A request being answered (an open event stream too) has no
//! limit here; `REQUEST_TIMEOUT` bounds producing a response.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The time limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the first byte of a request (or the connection's start) to its
    /// whole head.
    pub header: Duration,
    /// Between a response's end and the next request's first byte.
    pub idle: Duration,
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for (the rest of) a request head.
    Head = 0,
    /// Answering at least one request.
    Busy = 1,
    /// Between requests, with nothing received.
    Idle = 2,
}

/// Why a connection was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    HeaderTimeout,
    IdleTimeout,
}

impl Cut {
    pub fn label(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
        }
    }
}

/// Shared by the socket wrapper, the service and the timer of one
/// connection. Times are milliseconds since the connection started.
pub struct Activity {
    started: Instant,
    phase: AtomicU8,
    since_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        // A new connection owes its first head.
        Arc::new(Self {
            started: Instant::now(),
            phase: AtomicU8::new(Phase::Head as u8),
            since_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn enter(&self, phase: Phase) {
        self.since_ms.store(self.now_ms(), Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Head,
            1 => Phase::Busy,
            _ => Phase::Idle,
        }
    }

    /// Bytes arrived: on an idle connection, a new head has begun.
    fn received(&self) {
        if self.phase() == Phase::Idle {
            self.enter(Phase::Head);
        }
    }

    /// hyper has parsed a head and calls the service.
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.phase.store(Phase::Busy as u8, Ordering::Relaxed);
    }

    /// A response's body has been sent or dropped.
    pub fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.enter(Phase::Idle);
        }
    }

    /// `Err` when the current phase has outlived its limit; else when to
    /// look again.
    pub fn check(&self, limits: Timeouts) -> Result<Instant, Cut> {
        let since = self.started + Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
        let (limit, cut) = match self.phase() {
            // Nothing to check until the response ends; look again later.
            Phase::Busy => return Ok(Instant::now() + limits.header.min(limits.idle)),
            Phase::Head => (limits.header, Cut::HeaderTimeout),
            Phase::Idle => (limits.idle, Cut::IdleTimeout),
        };
        let deadline = since + limit;
        if Instant::now() >= deadline { Err(cut) } else { Ok(deadline) }
    }
}

pin_project_lite::pin_project! {
    /// The socket, noting when bytes arrive.
    pub struct Tracked<T> {
        #[pin]
        inner: T,
        activity: Arc<Activity>,
    }
}

impl<T> Tracked<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead> AsyncRead for Tracked<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.received();
        }
        polled
    }
}

impl<T: AsyncWrite> AsyncWrite for Tracked<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// Marks the request finished when the response body is done with,
/// however that happens (sent, or dropped when the client left).
pub struct InFlight(pub Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that holds its request's [`InFlight`] mark.
pub fn tracked_body(body: axum::body::Body, mark: InFlight) -> axum::body::Body {
    axum::body::Body::new(body.map_frame(move |frame| {
        let _keep = &mark;
        frame
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Timeouts = Timeouts { header: Duration::from_secs(10), idle: Duration::from_secs(60) };

    /// Lets `secs` pass, then checks the connection as its watcher would.
    async fn after(activity: &Activity, secs: u64) -> Result<(), Cut> {
        tokio::time::advance(Duration::from_secs(secs)).await;
        activity.check(LIMITS).map(drop)
    }

    /// What becomes of the connection `secs` from now, having been fine a
    /// second before.
    async fn fate_after(activity: &Activity, secs: u64) -> Result<(), Cut> {
        assert_eq!(after(activity, secs - 1).await, Ok(()), "a second before");
        after(activity, 1).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_owes_a_head_within_the_header_timeout() {
        let activity = Activity::new();
        assert_eq!(fate_after(&activity, 10).await, Err(Cut::HeaderTimeout));
    }

    #[tokio::test(start_paused = true)]
    async fn busy_connections_are_never_cut_and_idle_ones_after_the_idle_timeout() {
        let activity = Activity::new();
        activity.request_started();
        assert_eq!(after(&activity, 3600).await, Ok(()), "an answer in progress, such as an event stream");
        activity.request_finished();
        assert_eq!(activity.phase(), Phase::Idle);
        assert_eq!(fate_after(&activity, 60).await, Err(Cut::IdleTimeout));
    }

    #[tokio::test(start_paused = true)]
    async fn a_byte_after_idling_starts_the_header_clock() {
        let activity = Activity::new();
        activity.request_started();
        activity.request_finished();
        assert_eq!(after(&activity, 30).await, Ok(()));
        activity.received();
        assert_eq!(activity.phase(), Phase::Head);
        assert_eq!(fate_after(&activity, 10).await, Err(Cut::HeaderTimeout));
    }
}
