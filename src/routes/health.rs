//! Liveness and readiness for orchestrators.

use axum::http::StatusCode;

use crate::context::Ctx;

/// The process is up and serving.
pub async fn live() -> &'static str {
    "ok\n"
}

/// Ready for traffic: not shutting down.
pub async fn ready(ctx: Ctx) -> (StatusCode, &'static str) {
    if *ctx.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}
