//! `GET /s/{sid}/events`: a server-sent event stream of the session's state.
//!
//! It opens with the current state, whatever `Last-Event-ID` says, so a new
//! or reconnecting view catches up; then one event per applied change
//! (coalesced to the newest, should a view fall behind). Each event's bytes
//! are rendered once per version and shared by every stream.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::context::{AppContext, Ctx};
use crate::error::AppError;
use crate::session::{Audience, Frame, SessionId, ViewId};
use crate::views::readonly::reader_event;
use crate::views::writer_event;

use super::extract::{Client, Sid, Token};

/// How long a browser waits before reconnecting a dropped stream.
const RETRY_MS: u32 = 2000;

/// `GET /s/{sid}/events[?view=…]`: for views that can write.
pub async fn writer(
    ctx: Ctx,
    Sid(sid): Sid,
    Client(client): Client,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let view = view_param(query.as_deref());
    open(ctx.0, sid, Audience::Writer, client, view).await
}

/// `GET /v/{token}/events`: for read-only views.
pub async fn reader(ctx: Ctx, Token(token): Token, Client(client): Client) -> Result<Response, AppError> {
    let (sid, _) = ctx.reader(&token).await?;
    open(ctx.0, sid, Audience::Reader, client, None).await
}

async fn open(
    ctx: Arc<AppContext>,
    sid: SessionId,
    audience: Audience,
    client: IpAddr,
    view: Option<ViewId>,
) -> Result<Response, AppError> {
    // Subscribe before reading the state, so a change made in between
    // reaches the stream one way or the other.
    let mut subscription = ctx.fan_out.subscribe(&sid, audience, client).map_err(AppError::Busy)?;
    let snapshot = ctx.snapshot(&sid).await?;
    ctx.fan_out.publish(&sid, snapshot, None);
    let every = ctx.config.sse_keep_alive;
    let mut shutdown = ctx.shutdown.clone();
    let grace = ctx.config.shutdown_grace;
    let render = move |frame: &Frame| {
        ctx.metrics.frame_rendered(audience as usize);
        match audience {
            Audience::Writer => render_writer(frame),
            Audience::Reader => render_reader(frame),
        }
    };

    // Idle streams send a comment now and then (every `every`), so proxies
    // keep them open and a departed client is noticed.
    let body = async_stream::stream! {
        yield Ok::<_, Infallible>(Bytes::from(format!("retry: {RETRY_MS}\n\n")));
        let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // A new or reconnecting view catches up with the current state.
        let current = Arc::clone(&subscription.receiver.borrow_and_update());
        yield Ok(current.rendered(audience, &render));
        // The flag only ever turns true, so any change means stop.
        if *shutdown.borrow_and_update() {
            return;
        }
        let ending = end_of_stream(shutdown, grace);
        tokio::pin!(ending);
        loop {
            tokio::select! {
                changed = subscription.receiver.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let frame = Arc::clone(&subscription.receiver.borrow_and_update());
                    let own_echo = view.is_some() && frame.origin == view;
                    if !own_echo {
                        yield Ok(frame.rendered(audience, &render));
                    }
                }
                _ = keep_alive.tick() => yield Ok(Bytes::from_static(b": keep-alive\n\n")),
                () = &mut ending => break,
            }
        }
    };
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-store"),
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    Ok((headers, Body::from_stream(body)).into_response())
}

/// Completes some time after shutdown begins: a random point in the first
/// half of the grace period, so that thousands of views do not reconnect
/// (to another replica) in the same millisecond, and all have ended well
/// before the process does.
async fn end_of_stream(mut shutdown: watch::Receiver<bool>, grace: Duration) {
    let _ = shutdown.wait_for(|stop| *stop).await;
    let spread = u64::try_from(grace.as_millis() / 2).unwrap_or(u64::MAX).max(1);
    let delay = getrandom::u64().map_or(0, |random| random % spread);
    tokio::time::sleep(Duration::from_millis(delay)).await;
}

fn view_param(query: Option<&str>) -> Option<ViewId> {
    let query = query?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "view").and_then(|(_, v)| ViewId::parse(&v))
}

fn render_writer(frame: &Frame) -> Bytes {
    let html = writer_event(&frame.snapshot, frame.origin.as_ref()).into_string();
    Bytes::from(sse_event("state", frame.snapshot.version, &html))
}

/// Read-only events carry no view ids and no session id.
fn render_reader(frame: &Frame) -> Bytes {
    let html = reader_event(&frame.snapshot).into_string();
    Bytes::from(sse_event("state", frame.snapshot.version, &html))
}

/// One SSE event. Every line of `data` gets its own `data:` field, since
/// a bare newline would end the event early.
pub fn sse_event(event: &str, id: u64, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str("event: ");
    out.push_str(event);
    out.push_str("\nid: ");
    out.push_str(&id.to_string());
    out.push('\n');
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_data_stays_one_event() {
        assert_eq!(sse_event("state", 7, "a\nb"), "event: state\nid: 7\ndata: a\ndata: b\n\n");
    }

    #[test]
    fn view_param_is_validated() {
        let view = ViewId::random();
        assert_eq!(view_param(Some(&format!("view={}", view.as_str()))), Some(view));
        assert_eq!(view_param(Some("view=nonsense")), None);
        assert_eq!(view_param(None), None);
    }
}
