//! Liveness and readiness for orchestrators.

use axum::http::{StatusCode, header};

use std::sync::atomic::Ordering;

use crate::context::Ctx;
use crate::telemetry::Gauges;

/// The process is up and serving.
pub async fn live() -> &'static str {
    "ok\n"
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(ctx: Ctx) -> ([(header::HeaderName, &'static str); 1], String) {
    let text = ctx.metrics.render(&Gauges {
        sessions: ctx.store.session_count(),
        open_streams: ctx.fan_out.open_streams(),
        subscriptions: ctx.fan_out.subscriptions(),
        watched_sessions: ctx.fan_out.watched_sessions(),
        open_connections: ctx.open_connections.load(Ordering::Relaxed),
        tasks: tokio::runtime::Handle::current().metrics().num_alive_tasks(),
        durable: ctx.store.durable_commits(),
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// Ready for traffic: not shutting down, and the session store answers.
pub async fn ready(ctx: Ctx) -> (StatusCode, String) {
    match ctx.readiness().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}
