//! What the app tells its operators: Prometheus metrics and log lines.

mod logs;
mod metrics;
mod rate_limited;
pub mod request_id;

pub use logs::init_logs;
pub use metrics::{Gauges, Metrics, Rejection};
pub use rate_limited::RateLimitedLog;
