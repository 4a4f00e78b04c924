//! Binding, serving and shutting down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::context::{self, AppContext, BackendError};
use crate::memory::Reclaimer;
use crate::routes::{metrics_router, router};
use crate::server::{self, ServeLimits, Timeouts};
use crate::session::bus::{BusHandles, RedisBus};
use crate::session::{Backend, StoreError};

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    Listen(std::io::Error),
    ListenForMetrics(std::io::Error),
    Backend(BackendError),
    Store(StoreError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Listen(e) => write!(f, "cannot listen: {e}"),
            Self::ListenForMetrics(e) => write!(f, "cannot listen on METRICS_ADDR: {e}"),
            Self::Backend(e) => e.fmt(f),
            Self::Store(e) => write!(f, "cannot set up the session store: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    ctx: Arc<AppContext>,
    stop: watch::Sender<bool>,
    bus: Option<RedisBus>,
}

impl Server {
    /// Binds with the backend `config` names: Redis with `REDIS_URL`, disk
    /// with `DATA_DIR`, else memory.
    pub async fn bind(config: Config) -> Result<Self, StartError> {
        let backend = context::backend(&config).map_err(StartError::Backend)?;
        Self::bind_with(config, backend).await
    }

    /// Binds with a backend of the caller's choosing.
    pub async fn bind_with(config: Config, backend: Arc<dyn Backend>) -> Result<Self, StartError> {
        let listener =
            TcpListener::bind((config.listen.host, config.listen.port)).await.map_err(StartError::Listen)?;
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(StartError::ListenForMetrics)?),
            None => None,
        };
        let (stop, shutdown) = watch::channel(false);
        let (ctx, bus) = AppContext::new(config, backend, shutdown).map_err(StartError::Store)?;
        Ok(Self { listener, metrics_listener, ctx: Arc::new(ctx), stop, bus })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served when `METRICS_ADDR` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn context(&self) -> Arc<AppContext> {
        Arc::clone(&self.ctx)
    }

    /// Serves until `signal` completes, then stops accepting, ends every
    /// event stream and lets in-flight requests finish, all within
    /// `SHUTDOWN_GRACE`.
    pub async fn serve(self, signal: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self { listener, metrics_listener, ctx, stop, bus } = self;
        let app = router(Arc::clone(&ctx));
        let limits = ServeLimits {
            timeouts: Timeouts {
                header: ctx.config.timeouts.header_timeout.get(),
                idle: ctx.config.timeouts.idle_timeout.get(),
            },
            max_connections: connection_cap(ctx.config.listen.max_connections),
            shutdown_grace: ctx.config.timeouts.shutdown_grace.get(),
        };
        if let Some(metrics_listener) = metrics_listener {
            // The same time limits, and a cap of its own: scrapers never
            // take the app's connections, nor the app theirs.
            let limits = ServeLimits { max_connections: METRICS_CONNECTIONS, ..limits };
            let open = Arc::new(AtomicUsize::new(0));
            let metrics = Arc::clone(&ctx.metrics);
            tokio::spawn(server::serve(
                metrics_listener,
                metrics_router(Arc::clone(&ctx)),
                limits,
                metrics,
                open,
                ctx.shutdown.clone(),
            ));
        }
        let housekeeping = tokio::spawn(housekeeping(Arc::clone(&ctx)));
        if let (Some(bus), Some(subscribed)) = (bus, &ctx.bus_subscribed) {
            let handles = BusHandles {
                fan_out: Arc::clone(&ctx.fan_out),
                resync: Arc::clone(&ctx.resync),
                subscribed: Arc::clone(subscribed),
            };
            tokio::spawn(bus.run(handles, ctx.shutdown.clone()));
        }
        // On the signal, the flag tells the accept loop to stop and every
        // event stream to end (spread over the grace period); without it
        // graceful shutdown would wait for the streams forever.
        let on_signal = tokio::spawn(async move {
            signal.await;
            tracing::info!("shutting down");
            let _ = stop.send(true);
        });
        let open = Arc::clone(&ctx.open_connections);
        server::serve(listener, app, limits, Arc::clone(&ctx.metrics), open, ctx.shutdown.clone()).await;
        on_signal.abort();
        housekeeping.abort();
        Ok(())
    }
}

/// Connections open at once on `METRICS_ADDR`: scrapers are few.
const METRICS_CONNECTIONS: usize = 16;

/// Files the process keeps for itself beyond connections: the listener,
/// logs, Redis, and room to accept and close one past the cap.
const RESERVED_FILES: u64 = 64;

/// `MAX_CONNECTIONS`, lowered to fit the open-file limit after raising the
/// soft limit to the hard one: running out of descriptors would shut every
/// new client out, where the cap closes just the excess ones.
fn connection_cap(wanted: u64) -> usize {
    let files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let fits = files.saturating_sub(RESERVED_FILES).max(1);
    if wanted > fits {
        tracing::warn!(
            wanted,
            open_file_limit = files,
            cap = fits,
            "MAX_CONNECTIONS lowered to fit the open-file limit"
        );
    }
    usize::try_from(wanted.min(fits)).unwrap_or(usize::MAX)
}

/// Once a second, and whenever the change bus asks: drop sessions idle
/// past their TTL, so memory follows live use even when nobody touches the
/// expired ones again, and give it back to the system after large drops; bring every watched session's views in line with
/// the store; and fold latency samples into their histogram buckets.
async fn housekeeping(ctx: Arc<AppContext>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut failing = false;
    let mut reclaimer = Reclaimer::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = ctx.resync.notified() => {}
        }
        ctx.store.sweep_expired();
        let connections = ctx.open_connections.load(std::sync::atomic::Ordering::Relaxed);
        reclaimer.observe(ctx.store.session_count().unwrap_or(0) + ctx.fan_out.subscriptions() + connections);
        // Clients not seen for a while hold no memory in the rate limiter.
        ctx.new_sessions.retain_recent();
        ctx.new_sessions.shrink_to_fit();
        // A store that cannot answer now is asked again next second, and
        // the streams stay open meanwhile. Logged when it starts and stops.
        let resynced = resync_watched_sessions(&ctx).await;
        match (&resynced, failing) {
            (Ok(()), true) => tracing::info!("re-reading the watched sessions works again"),
            (Err(e), false) => tracing::warn!(error = %e, "cannot re-read the watched sessions"),
            _ => {}
        }
        failing = resynced.is_err();
        ctx.metrics.upkeep();
    }
}

/// Re-reads the watched sessions only (at most `MAX_STREAMS`), so it costs
/// nothing without streams: the streams of sessions that are gone end, and
/// views whose state differs from the store's (a lost notice) get it.
async fn resync_watched_sessions(ctx: &AppContext) -> Result<(), StoreError> {
    let watched = ctx.fan_out.watched();
    if watched.is_empty() {
        return Ok(());
    }
    let ids: Vec<_> = watched.iter().map(|(id, _)| id.clone()).collect();
    let stored = ctx.store.peek(&ids).await?;
    for ((id, seen), stored) in watched.into_iter().zip(stored) {
        match stored {
            Some(fresh) => ctx.fan_out.resync(&id, seen, fresh),
            None => ctx.fan_out.close(&id),
        }
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    // Installed now, not when first polled: a SIGTERM that comes right
    // after the ready line must shut down gracefully, not kill.
    #[cfg(unix)]
    let (mut sigterm, mut sigint) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match sigterm.as_mut() {
                    Some(s) => {
                        let _ = s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let int = async {
                match sigint.as_mut() {
                    Some(s) => {
                        let _ = s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = term => {},
                () = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `weight-converter healthcheck`: asks a running server for `/healthz`.
/// Plain HTTP/1.0 over TCP, so the container needs no curl or shell.
pub async fn healthcheck(target: SocketAddr) -> std::process::ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(target).await?;
        stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n").await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), check).await {
        Ok(Ok(true)) => std::process::ExitCode::SUCCESS,
        Ok(Ok(false)) => {
            eprintln!("healthcheck: {target} answered, but not 200");
            std::process::ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("healthcheck: {target}: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("healthcheck: {target} did not answer within 2 s");
            std::process::ExitCode::FAILURE
        }
    }
}
