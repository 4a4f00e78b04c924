//! Liveness and readiness for orchestrators.

use axum::http::{StatusCode, header};

use crate::context::Ctx;

/// The process is up and serving.
pub async fn live() -> &'static str {
    "ok\n"
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(ctx: Ctx) -> ([(header::HeaderName, &'static str); 1], String) {
    let text = ctx.metrics.render(
        ctx.store.session_count(),
        ctx.fan_out.open_streams(),
        ctx.fan_out.watched_sessions(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// Ready for traffic: not shutting down.
pub async fn ready(ctx: Ctx) -> (StatusCode, &'static str) {
    if *ctx.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}
