//! What every response gets, as one stack of layers around the routes:
//! its request id, language, log line and metrics (see `observe`), the
//! security headers, a time limit with its HTML 408 page, compression,
//! and a 500 page for a handler that panicked.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::Route;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::CompressionLevel;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use super::observe::ObserveLayer;
use crate::context::AppContext;
use crate::error::AppError;

/// The layers, outermost first, applied to the router as one, so each
/// route is wrapped (and boxed) once, not once per middleware.
pub fn layers(
    ctx: &Arc<AppContext>,
) -> impl Layer<
    Route,
    Service: Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
                 + Clone
                 + Send
                 + Sync
                 + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    let policy = ctx.content_security_policy.clone();
    ServiceBuilder::new()
        // Outermost, so the log line and metrics see the final answer.
        .layer(ObserveLayer::new(Arc::clone(ctx)))
        // Session URLs are capabilities: no referrer leaves the page, and
        // nothing about a session is cached unless a route says otherwise.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        // The policy governs documents, so it goes on HTML: pages,
        // fragments and error pages. Browsers ignore it elsewhere (the
        // stream worker, a script that runs as a document of its own,
        // carries its own).
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, move |r: &Response| {
            is_html(r.headers()).then(|| policy.clone())
        }))
        .map_response(timeout_page)
        // The limit is on producing the response: a slow body upload is
        // cut off, while an event stream, whose response starts at once,
        // goes on as long as its viewer stays.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            ctx.config.timeouts.request_timeout.get(),
        ))
        .layer(compression())
        // Inside the others, so a panic's 500 gets the security headers,
        // the log line and the metrics like any answer.
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| AppError::Internal.into_response()))
}

pub fn is_html(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"text/html"))
}

/// The time limit answers an empty 408; the app's own page says why, in
/// the request's language. No handler answers 408 itself.
fn timeout_page<B>(response: Response<B>) -> Response
where
    Response<B>: IntoResponse,
{
    if response.status() == StatusCode::REQUEST_TIMEOUT {
        AppError::Timeout.into_response()
    } else {
        response.into_response()
    }
}

/// Pages are compressed, quickly. Small fragments are not: for a few
/// hundred bytes it costs more time than it saves. Assets come compressed
/// from the build, and event streams must not be buffered by a compressor.
/// Pages and fragments, compressed as they go out: gzip only. At the
/// quality a response can wait for, brotli makes pages no smaller than
/// gzip, and its encoder's buffers are many times larger, which the
/// allocator then keeps. (The assets are brotli-compressed once, at build
/// time, at its best.)
fn compression() -> CompressionLayer<impl Predicate> {
    let worth_it = SizeAbove::new(1024)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::const_new("text/event-stream"));
    CompressionLayer::new().quality(CompressionLevel::Fastest).no_br().compress_when(worth_it)
}
