//! HTTP: which handler answers what, and the layers around them.

mod assets;
mod events;
pub mod extract;
mod health;
mod pages;
mod state;
mod widgets;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::LatencyUnit;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::context::AppContext;

pub use events::sse_event;

/// Form bodies are a number and a few words; anything past this is refused
/// with 413 before it is read.
pub const BODY_LIMIT: usize = 4 * 1024;

/// No inline script or style and no eval: htmx runs with `allowEval:false`
/// and `includeIndicatorStyles:false`.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; worker-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'";

pub fn router(ctx: Arc<AppContext>) -> Router {
    // Event streams live as long as their viewers; everything else is
    // cut off at the request timeout.
    let streams = Router::new().route("/s/{sid}/events", get(events::stream));
    let ordinary = Router::new()
        .route("/", get(pages::start))
        .route("/s/{sid}", get(pages::show))
        .route("/s/{sid}/widgets/{key}", post(widgets::commit))
        .route("/s/{sid}/state.json", get(state::json))
        .route("/s/{sid}/fragments/state", get(state::dump_fragment))
        .route("/assets/{name}", get(assets::serve))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(pages::not_found)
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, ctx.config.request_timeout));

    Router::new()
        .merge(streams)
        .merge(ordinary)
        .method_not_allowed_fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CompressionLayer::new())
        // Every response: session URLs are capabilities, so no referrer
        // leaves the page and nothing about a session is cached.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, value("no-store")))
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, value(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, value("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, value("nosniff")))
        .layer(middleware::from_fn_with_state(Arc::clone(&ctx), record_latency))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .with_state(ctx)
}

/// Logs the route pattern, never the path: paths hold session ids.
fn request_span(request: &Request) -> tracing::Span {
    let route = request.extensions().get::<MatchedPath>().map_or("<unmatched>", MatchedPath::as_str);
    tracing::info_span!("request", method = %request.method(), route)
}

fn value(text: &'static str) -> HeaderValue {
    HeaderValue::from_static(text)
}

/// Feeds the request latency histogram, labelled by route pattern.
async fn record_latency(
    axum::extract::State(ctx): axum::extract::State<Arc<AppContext>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or("<unmatched>");
    ctx.metrics.request_served(route, method.as_str(), response.status().as_u16(), started.elapsed());
    response
}
