//! What the app tells its operators: Prometheus metrics and log lines.

mod logs;
mod metrics;

pub use logs::{LogGuard, init_logs};
pub use metrics::{Metrics, Rejection};
