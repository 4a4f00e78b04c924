//! Log lines on stderr, as text or JSON, filtered by `RUST_LOG` (default
//! `info`: one line per request with its route, status and latency), in
//! `tracing-subscriber`'s own formats.
//!
//! Lines go through `tracing-appender`'s non-blocking writer: a request
//! never waits on a slow stderr (a pipe to a log collector that stalls).
//! Its queue is bounded; past it lines are dropped, never queued without
//! bound, and `/metrics` counts them. Its thread sleeps until there is a
//! line to write, so an idle server costs nothing here.

use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Log lines that may wait for the writer thread.
const QUEUED_LINES: usize = 64 * 1024;

/// Lines dropped because the queue was full. As global as the log
/// subscriber itself: there is one per process.
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Log lines dropped so far, for `/metrics` (0 before logging starts).
pub fn dropped_log_lines() -> usize {
    DROPPED.get().map_or(0, ErrorCounter::dropped_lines)
}

/// Keeps the log writer running: dropping it writes what is queued.
pub struct LogGuard {
    _worker: WorkerGuard,
}

/// Starts logging. Keep the guard alive while the server runs.
pub fn init_logs(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, worker) = NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUED_LINES)
        .lossy(true)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    let _ = DROPPED.set(writer.error_counter());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
    log_panics();
    LogGuard { _worker: worker }
}

/// Panics go to the log, with where they happened; the request that
/// panicked gets a 500 and the server goes on (see `routes`).
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(location = location.as_deref().unwrap_or("unknown"), "panic: {message}");
    }));
}
