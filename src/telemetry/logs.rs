//! Log lines on stderr, as text or JSON, filtered by `RUST_LOG` (default
//! `info`: one line per request with its route, status and latency), in
//! `tracing-subscriber`'s own formats and timer.
//!
//! Each line is written straight to stderr by the thread that logs it, in
//! one write, as `tracing-subscriber` does by default. A writer thread of
//! its own (`tracing-appender`) would spare a request a stalled log reader,
//! but waking it for every line costs more than the write itself
//! (BENCHMARKS.md); containers and service managers drain stderr as it
//! comes. Nothing runs while the server is idle.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Starts logging, once per process.
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
    log_panics();
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
