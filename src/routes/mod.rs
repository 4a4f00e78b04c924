//! HTTP: which handler answers what, and the layers around them.

mod assets;
mod embed;
mod events;
pub mod extract;
mod health;
mod pages;
mod readonly;
mod state;
mod widgets;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::context::AppContext;
use crate::error::AppError;

/// Form bodies are a number and a few words; anything past this is refused
/// with 413 before it is read.
pub const BODY_LIMIT: usize = 4 * 1024;

pub fn router(ctx: Arc<AppContext>) -> Router {
    let timeout = || middleware::from_fn_with_state(Arc::clone(&ctx), time_limit);
    // What other sites may use when ALLOW_ORIGINS names them: fragments,
    // widget posts and event streams. Streams live as long as their
    // viewers, so only the rest gets the request timeout.
    let streams = Router::new()
        .route("/s/{sid}/events", get(events::writer))
        .route("/v/{token}/events", get(events::reader));
    let embeddable = Router::new()
        .route("/s/{sid}/widgets/{key}", post(widgets::commit))
        .route("/s/{sid}/fragments/converter", get(embed::converter))
        .route("/s/{sid}/fragments/state", get(embed::state))
        .route("/v/{token}/fragments/converter", get(embed::reader_converter))
        .route("/v/{token}/fragments/state", get(embed::reader_state))
        .layer(timeout());
    // Before the CORS layer, so preflights for these routes reach it.
    let cross_origin = streams.merge(embeddable).method_not_allowed_fallback(pages::method_not_allowed);
    // No origins: no CORS headers at all, so browsers keep it same-origin.
    let cross_origin = match cors(&ctx.config.allow_origins) {
        Some(cors) => cross_origin.layer(cors),
        None => cross_origin,
    };

    let own = Router::new()
        .route("/", get(pages::start))
        .route("/s/{sid}", get(pages::show))
        .route("/s/{sid}/state.json", get(state::json))
        .route("/v/{token}", get(readonly::page))
        .route("/v/{token}/state.json", get(readonly::json))
        .route("/assets/{name}", get(assets::serve))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(health::metrics))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed)
        .layer(timeout());

    // One layer, so each route is wrapped (and boxed) once, not once per
    // middleware: that is most of the per-request allocations, and of the
    // memory an open event stream holds.
    let stack = tower::ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(Arc::clone(&ctx), every_response))
        .layer(compression())
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    Router::new().merge(cross_origin).merge(own).layer(stack).with_state(ctx)
}

/// What every response gets: the security headers, its place in the
/// latency histogram, and one log line (by route pattern: paths hold
/// session ids, which are capabilities and never logged).
async fn every_response(
    axum::extract::State(ctx): axum::extract::State<Arc<AppContext>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;

    let headers = response.headers_mut();
    // Session URLs are capabilities: no referrer leaves the page, and
    // nothing about a session is cached.
    headers.insert(header::REFERRER_POLICY, value("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, value("nosniff"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, value("no-store"));
    }
    // The policy governs documents, so it goes on HTML: pages, fragments
    // and error pages. Browsers ignore it elsewhere (the stream worker,
    // a script that runs as a document of its own, carries its own).
    let html = headers.get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    if html {
        headers.insert(header::CONTENT_SECURITY_POLICY, ctx.content_security_policy.clone());
    }

    let route = route.as_ref().map_or("<unmatched>", MatchedPath::as_str);
    let (status, took) = (response.status().as_u16(), started.elapsed());
    ctx.metrics.request_served(route, &method, status, took);
    // For event streams this is when the stream opened.
    tracing::info!(%method, route, status, latency_us = took.as_micros() as u64, "finished processing request");
    response
}

/// Pages are compressed, quickly. Small fragments are not: for a few
/// hundred bytes it costs more time than it saves. Assets come compressed
/// from the build, and event streams must not be buffered by a compressor.
fn compression() -> CompressionLayer<impl Predicate> {
    let worth_it = SizeAbove::new(1024)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::const_new("text/event-stream"));
    CompressionLayer::new().quality(CompressionLevel::Fastest).compress_when(worth_it)
}

/// No inline script or style and no eval: htmx runs with `allowEval:false`
/// and `includeIndicatorStyles:false`.
pub(crate) fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         worker-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {frame_ancestors}"
    )
}

/// Request headers htmx sends, which a cross-origin request must be
/// allowed to carry.
const HTMX_REQUEST_HEADERS: [&str; 8] = [
    "hx-request",
    "hx-current-url",
    "hx-target",
    "hx-trigger",
    "hx-trigger-name",
    "hx-boosted",
    "hx-prompt",
    "hx-history-restore-request",
];

/// Response headers htmx reads on every answer; unexposed, Chromium logs
/// "Refused to get unsafe header" for each.
const HTMX_RESPONSE_HEADERS: [&str; 11] = [
    "hx-location",
    "hx-push-url",
    "hx-redirect",
    "hx-refresh",
    "hx-replace-url",
    "hx-reswap",
    "hx-retarget",
    "hx-reselect",
    "hx-trigger",
    "hx-trigger-after-settle",
    "hx-trigger-after-swap",
];

/// CORS for the listed origins, with credentials, since htmx's SSE
/// extension opens its streams `withCredentials`.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::try_from(o.as_str()).ok())
        .collect();
    let names = |list: &[&'static str]| list.iter().map(|n| HeaderName::from_static(n)).collect::<Vec<_>>();
    let mut request_headers = names(&HTMX_REQUEST_HEADERS);
    request_headers.extend([
        header::CONTENT_TYPE,
        header::CACHE_CONTROL,
        HeaderName::from_static("last-event-id"),
    ]);
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(request_headers)
        .expose_headers(names(&HTMX_RESPONSE_HEADERS))
        .max_age(Duration::from_secs(600));
    Some(layer)
}

/// Ordinary requests get `REQUEST_TIMEOUT`, then our 408 page.
async fn time_limit(
    axum::extract::State(ctx): axum::extract::State<Arc<AppContext>>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(ctx.config.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::Timeout.into_response(),
    }
}

fn value(text: &'static str) -> HeaderValue {
    HeaderValue::from_static(text)
}
