//! HTTP: which handler answers what, and the layers around them.

mod assets;
mod embed;
mod events;
mod every_response;
pub mod extract;
mod health;
mod observe;
mod pages;
mod readonly;
mod state;
mod widgets;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::context::AppContext;

/// Form bodies are a number and a few words; anything past this is refused
/// with 413 as soon as it is seen.
pub const BODY_LIMIT: usize = 4 * 1024;

pub fn router(ctx: Arc<AppContext>) -> Router {
    // What other sites may use when ALLOW_ORIGINS names them: fragments,
    // widget posts and event streams.
    let cross_origin = Router::new()
        .route("/events", get(events::multiplexed))
        .route("/s/{sid}/events", get(events::writer))
        .route("/v/{token}/events", get(events::reader))
        .route("/s/{sid}/widgets/{key}", post(widgets::commit).get(widgets::back_to_page))
        .route("/s/{sid}/fragments/{fragment}", get(embed::fragment))
        .route("/v/{token}/fragments/{fragment}", get(embed::fragment))
        // Before the CORS layer, so preflights for these routes reach it.
        .method_not_allowed_fallback(pages::method_not_allowed);
    // No origins: no CORS headers at all, so browsers keep it same-origin.
    let cross_origin = match cors(&ctx.config.embedding.allow_origins) {
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
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed);
    // On the app's port unless METRICS_ADDR gives it a listener of its own.
    let own = match ctx.config.metrics_addr {
        None => own.route("/metrics", get(health::metrics)),
        Some(_) => own,
    };

    Router::new().merge(cross_origin).merge(own).layer(every_response::layers(&ctx)).with_state(ctx)
}

/// `/metrics` alone, for its own listener (`METRICS_ADDR`).
pub fn metrics_router(ctx: Arc<AppContext>) -> Router {
    Router::new().route("/metrics", get(health::metrics)).with_state(ctx)
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

/// CORS for the listed origins. The app needs no credentials (sessions
/// live in URLs, and `app.js` opens its streams without them), but they
/// are allowed, for host pages whose htmx sends them (`withCredentials`).
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
