//! Binding, serving and shutting down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::context::AppContext;
use crate::routes::router;

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    ctx: Arc<AppContext>,
    stop: watch::Sender<bool>,
}

impl Server {
    pub async fn bind(config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind((config.host, config.port)).await?;
        let (stop, shutdown) = watch::channel(false);
        let ctx = Arc::new(AppContext::in_memory(config, shutdown));
        Ok(Self { listener, ctx, stop })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn context(&self) -> Arc<AppContext> {
        Arc::clone(&self.ctx)
    }

    /// Serves until `signal` completes, then stops accepting, ends every
    /// event stream and lets in-flight requests finish.
    pub async fn serve(self, signal: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self { listener, ctx, stop } = self;
        let app = router(Arc::clone(&ctx));
        let housekeeping = tokio::spawn(housekeeping(Arc::clone(&ctx)));
        let shutdown = async move {
            signal.await;
            tracing::info!("shutting down");
            // Streams end themselves on this; without it graceful
            // shutdown would wait for them forever.
            let _ = stop.send(true);
        };
        // Small answers go out at once instead of waiting on Nagle's algorithm.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let served = axum::serve(listener, app.into_make_service()).with_graceful_shutdown(shutdown).await;
        housekeeping.abort();
        served
    }
}

/// Once a second: drop sessions idle past their TTL, so memory follows
/// live use even when nobody touches the expired ones again; end the
/// streams of sessions that are gone; and fold latency samples into their
/// histogram buckets.
async fn housekeeping(ctx: Arc<AppContext>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        ctx.store.sweep_expired();
        end_streams_of_gone_sessions(&ctx).await;
        ctx.metrics.upkeep();
    }
}

/// Asks the store about the watched sessions only (at most `MAX_STREAMS`),
/// so it works the same for any store and costs nothing without streams.
async fn end_streams_of_gone_sessions(ctx: &AppContext) {
    let watched = ctx.fan_out.watched();
    if watched.is_empty() {
        return;
    }
    match ctx.store.still_live(&watched).await {
        Ok(live) => {
            for (id, _) in watched.iter().zip(live).filter(|(_, live)| !live) {
                ctx.fan_out.close(id);
            }
        }
        // A store that cannot answer now is asked again next second.
        Err(e) => tracing::warn!(error = %e.0, "cannot check which watched sessions are live"),
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
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
