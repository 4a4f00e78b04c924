//! What every response gets: a time limit, the security headers, its
//! language, its place in the latency histogram, and one log line.
//!
//! A hand-written tower layer rather than `axum::middleware::from_fn`:
//! `from_fn` clones a boxed service and boxes a future for every request
//! (what that costs is measured in BENCHMARKS.md).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tokio::time::Timeout;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::context::AppContext;
use crate::error::AppError;
use crate::i18n::{Choice, Lang};
use crate::telemetry::request_id::{self, request_id};

#[derive(Clone)]
pub struct EveryResponseLayer {
    ctx: Arc<AppContext>,
}

impl EveryResponseLayer {
    pub fn new(ctx: Arc<AppContext>) -> Self {
        Self { ctx }
    }
}

impl<S> Layer<S> for EveryResponseLayer {
    type Service = EveryResponse<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EveryResponse { inner, ctx: Arc::clone(&self.ctx) }
    }
}

#[derive(Clone)]
pub struct EveryResponse<S> {
    inner: S,
    ctx: Arc<AppContext>,
}

impl<S> Service<Request> for EveryResponse<S>
where
    S: Service<Request, Error = Infallible>,
    S::Response: IntoResponse,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EveryResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let language = Lang::of_request(request.uri().query(), request.headers());
        request.extensions_mut().insert(language);
        let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        let id = request_id(peer, request.headers(), &self.ctx.config.trusted_proxies);
        // Every line logged while handling the request carries its id.
        let span = tracing::info_span!("request", request_id = %id.to_str().unwrap_or_default());
        let seen = Seen {
            started: Instant::now(),
            method: request.method().clone(),
            route: request.extensions().get::<MatchedPath>().cloned(),
            language,
            id,
        };
        // The limit is on producing the response: a slow body upload is
        // cut off, while an event stream, whose response starts at once,
        // goes on as long as its viewer stays. Error pages, which render
        // with no request at hand, find the language in the scope.
        let inner = language.lang.scope(self.inner.call(request)).instrument(span);
        let inner = tokio::time::timeout(self.ctx.config.request_timeout, inner);
        EveryResponseFuture { inner, ctx: Arc::clone(&self.ctx), seen }
    }
}

/// What is known of the request before it is handled.
struct Seen {
    started: Instant,
    method: Method,
    route: Option<MatchedPath>,
    language: Choice,
    id: HeaderValue,
}

pin_project! {
    pub struct EveryResponseFuture<F> {
        #[pin]
        inner: Timeout<Instrumented<tokio::task::futures::TaskLocalFuture<Lang, F>>>,
        ctx: Arc<AppContext>,
        seen: Seen,
    }
}

impl<F, R> Future for EveryResponseFuture<F>
where
    F: Future<Output = Result<R, Infallible>>,
    R: IntoResponse,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let response = match ready!(this.inner.as_mut().poll(cx)) {
            Ok(Ok(response)) => response.into_response(),
            Err(_elapsed) => this.seen.language.lang.sync_scope(|| AppError::Timeout.into_response()),
        };
        let _in_request = this.inner.get_ref().span().enter();
        Poll::Ready(Ok(finish(this.ctx, this.seen, response)))
    }
}

fn finish(ctx: &AppContext, seen: &Seen, mut response: Response) -> Response {
    let headers = response.headers_mut();
    // Session URLs are capabilities: no referrer leaves the page, and
    // nothing about a session is cached.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(request_id::HEADER, seen.id.clone());
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    // The policy governs documents, so it goes on HTML: pages, fragments
    // and error pages. Browsers ignore it elsewhere (the stream worker,
    // a script that runs as a document of its own, carries its own).
    let html = headers.get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    if html {
        headers.insert(header::CONTENT_SECURITY_POLICY, ctx.content_security_policy.clone());
        // Every HTML answer is in the request's language, which the
        // cookie or Accept-Language chose unless the URL did.
        headers.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(seen.language.lang.tag()));
        headers.append(header::VARY, HeaderValue::from_static("Accept-Language, Cookie"));
    }
    if let Some(cookie) = seen.language.cookie() {
        headers.append(header::SET_COOKIE, cookie);
    }

    // By route pattern: paths hold session ids, which are capabilities and
    // never logged.
    let route = seen.route.as_ref().map_or("<unmatched>", MatchedPath::as_str);
    let (method, status, took) = (&seen.method, response.status().as_u16(), seen.started.elapsed());
    ctx.metrics.request_served(route, method, status, took);
    // For event streams this is when the stream opened.
    let latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    tracing::info!(%method, route, status, latency_us, "finished processing request");
    response
}
