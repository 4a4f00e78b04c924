//! What the app sees of each request: its id (in a span around the
//! handler, and in `X-Request-Id`), its language (a task-local scope for
//! every page and error, and the headers that say so), its place in the
//! latency histogram, and one log line.
//!
//! A small tower layer rather than `axum::middleware::from_fn`, which
//! clones a boxed service and boxes a future for every request: the same
//! code as a `from_fn` function costs measurably more instructions per
//! change (BENCHMARKS.md, "A third pass"). It must be outermost, to see
//! the final answer.

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
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::context::AppContext;
use crate::i18n::{Choice, Lang};
use crate::telemetry::request_id::{self, request_id};

#[derive(Clone)]
pub struct ObserveLayer {
    ctx: Arc<AppContext>,
}

impl ObserveLayer {
    pub fn new(ctx: Arc<AppContext>) -> Self {
        Self { ctx }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, ctx: Arc::clone(&self.ctx) }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    ctx: Arc<AppContext>,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Error = Infallible>,
    S::Response: IntoResponse,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

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
        // Error pages, which render with no request at hand, find the
        // language in the scope.
        let inner = language.lang.scope(self.inner.call(request)).instrument(span);
        ObserveFuture { inner, ctx: Arc::clone(&self.ctx), seen }
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
    pub struct ObserveFuture<F> {
        #[pin]
        inner: Instrumented<tokio::task::futures::TaskLocalFuture<Lang, F>>,
        ctx: Arc<AppContext>,
        seen: Seen,
    }
}

impl<F, R> Future for ObserveFuture<F>
where
    F: Future<Output = Result<R, Infallible>>,
    R: IntoResponse,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Ok(response) = ready!(this.inner.as_mut().poll(cx));
        let response = response.into_response();
        let _in_request = this.inner.span().enter();
        Poll::Ready(Ok(finish(this.ctx, this.seen, response)))
    }
}

fn finish(ctx: &AppContext, seen: &Seen, mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(request_id::HEADER, seen.id.clone());
    if super::every_response::is_html(headers) {
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
