//! Server-sent event streams of session state.
//!
//! - `GET /s/{sid}/events` and `GET /v/{token}/events`: one session.
//! - `GET /events?s={sid}&v={token}…`: several sessions on one stream, so a
//!   browser needs one connection however many sessions its tabs and
//!   embeds show. Each event names the session it is for, as the client
//!   named it (`s:{sid}` or `v:{token}`), so a read token's events never
//!   show the session id.
//!
//! A stream opens with the current state of each session, whatever
//! `Last-Event-ID` says, so a new or reconnecting view catches up; then
//! one event per applied change (coalesced to the newest, should a view
//! fall behind). Each event's bytes are rendered once per version and
//! shared by every stream.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::{BoxStream, SelectAll};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::context::{AppContext, Ctx};
use crate::error::{AppError, BadRequest};
use crate::session::{Audience, Busy, Frame, ReadToken, SessionId, Subscription, ViewId};
use crate::views::readonly::reader_event;
use crate::views::writer_event;

use super::extract::{Client, Param, ReadOnly, Viewer};

/// How long a browser waits before reconnecting a dropped stream.
const RETRY_MS: u32 = 2000;

/// The most sessions one stream may carry: far more than a browser shows
/// at once, few enough that one request cannot watch the whole store.
const MAX_SESSIONS_PER_STREAM: usize = 32;

/// `GET /s/{sid}/events[?view=…]`: for views that can write.
pub async fn writer(
    ctx: Ctx,
    Param(sid): Param<SessionId>,
    Client(client): Client,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let view = view_param(query.as_deref());
    open(ctx.0, sid, Audience::Writer, client, view).await
}

/// `GET /v/{token}/events`: for read-only views.
pub async fn reader(
    ctx: Ctx,
    ReadOnly { sid, .. }: ReadOnly,
    Client(client): Client,
) -> Result<Response, AppError> {
    open(ctx.0, sid, Audience::Reader, client, None).await
}

/// How a multiplexed stream's events name a session: as the client did,
/// so nothing more.
fn label(viewer: &Viewer) -> String {
    match viewer {
        Viewer::Writer(sid) => format!("s:{}", sid.as_str()),
        Viewer::Reader(token) => format!("v:{}", token.as_str()),
    }
}

/// `s={sid}` and `v={token}` pairs, each at most once, at least one and at
/// most [`MAX_SESSIONS_PER_STREAM`]. Anything else is a broken client.
fn parse_watches(query: Option<&str>) -> Result<Vec<Viewer>, AppError> {
    let mut watches = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let watch = match &*name {
            "s" => SessionId::parse(&value).map(Viewer::Writer),
            "v" => ReadToken::parse(&value).map(Viewer::Reader),
            _ => return Err(AppError::BadRequest(BadRequest::StreamParameters)),
        };
        let watch = watch.ok_or(AppError::BadRequest(BadRequest::StreamNotASession))?;
        if !watches.contains(&watch) {
            watches.push(watch);
        }
        if watches.len() > MAX_SESSIONS_PER_STREAM {
            // The message says MAX_SESSIONS_PER_STREAM (checked by a test).
            return Err(AppError::BadRequest(BadRequest::StreamTooMany));
        }
    }
    if watches.is_empty() {
        return Err(AppError::BadRequest(BadRequest::StreamNoSession));
    }
    Ok(watches)
}

/// `GET /events?s={sid}&v={token}…`: every named session on one stream.
/// A session that is unknown or expires gets a `gone` event instead, and
/// one that has too many views already a `busy` event (try again later);
/// the others go on.
pub async fn multiplexed(
    ctx: Ctx,
    Client(client): Client,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let ctx = ctx.0;
    let watches = parse_watches(query.as_deref())?;
    let interrupted = may_open(&ctx)?;
    let mut live = Vec::with_capacity(watches.len());
    let mut gone = Vec::new();
    let mut busy = Vec::new();
    for watch in watches {
        let label: Arc<str> = label(&watch).into();
        let (sid, audience) = match watch {
            Viewer::Writer(sid) => (sid, Audience::Writer),
            Viewer::Reader(token) => match ctx.reader(&token).await {
                Ok((sid, _)) => (sid, Audience::Reader),
                Err(AppError::UnknownSession) => {
                    gone.push(label);
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        // As for one session: subscribe first, then read. A session with
        // too many views now waits; the others need not.
        let subscription = match ctx.fan_out.subscribe(&sid, audience, client) {
            Ok(subscription) => subscription,
            Err(Busy::TooManyForSession) => {
                busy.push(label);
                continue;
            }
            Err(other) => return Err(AppError::Busy(other)),
        };
        match ctx.snapshot(&sid).await {
            Ok(snapshot) => ctx.fan_out.publish(&sid, snapshot, None),
            Err(AppError::UnknownSession) => {
                gone.push(label);
                continue;
            }
            Err(e) => return Err(e),
        }
        live.push((label, audience, subscription));
    }
    let mut opening: Vec<Bytes> = gone.iter().map(|label| labelled_event("gone", label, b"")).collect();
    opening.extend(busy.iter().map(|label| labelled_event("busy", label, b"")));
    let mut changes = SelectAll::new();
    for (label, audience, mut subscription) in live {
        let current = Arc::clone(&subscription.receiver.borrow_and_update());
        opening.push(labelled_event("state", &label, &labelled_data(&ctx, audience, &current)));
        changes.push(changes_of(label, audience, subscription));
    }
    let events = {
        let ctx = Arc::clone(&ctx);
        changes
            .map(move |(label, audience, frame)| match frame {
                Some(frame) => labelled_event("state", &label, &labelled_data(&ctx, audience, &frame)),
                None => labelled_event("gone", &label, b""),
            })
            .boxed()
    };
    // Keep-alives are events here, so `app.js` can tell a stream that went
    // quiet (a dropped network the socket never saw) from an idle one; the
    // first says how often they come.
    let ping = Bytes::from(format!(
        "event: ping\ndata: {}\n\n",
        ctx.config.streams.sse_keep_alive.get().as_millis()
    ));
    opening.push(ping.clone());
    Ok(event_stream(&ctx, interrupted, opening, events, ping))
}

/// A session's event for a multiplexed stream: its `data:` lines, rendered
/// once per version and audience for every stream.
fn labelled_data(ctx: &AppContext, audience: Audience, frame: &Frame) -> Bytes {
    frame.data(audience, |frame| Bytes::from(sse_data(&event_html(ctx, audience, frame))))
}

/// A frame's HTML for `audience`, counted as one render: for writers the
/// fields, their message lines and the dump; for readers the values and
/// the dump, with no view ids and no session id.
fn event_html(ctx: &AppContext, audience: Audience, frame: &Frame) -> String {
    ctx.metrics.frame_rendered(audience as usize);
    match audience {
        Audience::Writer => writer_event(&frame.snapshot, frame.origin.as_ref()),
        Audience::Reader => reader_event(&frame.snapshot),
    }
    .into_string()
}

type Change = (Arc<str>, Audience, Option<Arc<Frame>>);

/// Each newer frame of one session, then `None` once it is gone.
fn changes_of(
    label: Arc<str>,
    audience: Audience,
    mut subscription: Subscription,
) -> BoxStream<'static, Change> {
    async_stream::stream! {
        while subscription.receiver.changed().await.is_ok() {
            let frame = Arc::clone(&subscription.receiver.borrow_and_update());
            yield (Arc::clone(&label), audience, Some(frame));
        }
        yield (label, audience, None);
    }
    .boxed()
}

const STREAM_HEADERS: [(header::HeaderName, &str); 3] = [
    (header::CONTENT_TYPE, "text/event-stream"),
    (header::CACHE_CONTROL, "no-store"),
    (header::HeaderName::from_static("x-accel-buffering"), "no"),
];

async fn open(
    ctx: Arc<AppContext>,
    sid: SessionId,
    audience: Audience,
    client: IpAddr,
    view: Option<ViewId>,
) -> Result<Response, AppError> {
    let interrupted = may_open(&ctx)?;
    // Subscribe before reading the state, so a change made in between
    // reaches the stream one way or the other.
    let mut subscription = ctx.fan_out.subscribe(&sid, audience, client).map_err(AppError::Busy)?;
    let snapshot = ctx.snapshot(&sid).await?;
    ctx.fan_out.publish(&sid, snapshot, None);
    let render = {
        let ctx = Arc::clone(&ctx);
        move |frame: &Frame| {
            Bytes::from(sse_event("state", frame.snapshot.version, &event_html(&ctx, audience, frame)))
        }
    };
    // A new or reconnecting view catches up with the current state.
    let current = Arc::clone(&subscription.receiver.borrow_and_update());
    let opening = vec![current.rendered(audience, &render)];
    let changes = async_stream::stream! {
        while subscription.receiver.changed().await.is_ok() {
            let frame = Arc::clone(&subscription.receiver.borrow_and_update());
            let own_echo = view.is_some() && frame.origin == view;
            if !own_echo {
                yield frame.rendered(audience, &render);
            }
        }
    };
    let keep_alive = Bytes::from_static(b": keep-alive\n\n");
    Ok(event_stream(&ctx, interrupted, opening, changes.boxed(), keep_alive))
}

/// Watches for interruptions from now on, and refuses a stream that would
/// not hear other replicas' changes.
fn may_open(ctx: &AppContext) -> Result<watch::Receiver<u64>, AppError> {
    let interrupted = ctx.fan_out.interruptions();
    ctx.hears_changes()?;
    Ok(interrupted)
}

/// What every event stream sends: `retry:`, the `opening` events, then
/// each of `changes` as it comes, and `keep_alive_bytes` when idle, so
/// proxies keep the stream open and a departed client is noticed. It ends
/// when the changes do, some time after shutdown begins, or when this
/// replica may have missed changes (see [`FanOut::interrupt_streams`]):
/// its views then say they are not live until they have reconnected and
/// caught up.
///
/// [`FanOut::interrupt_streams`]: crate::session::FanOut::interrupt_streams
fn event_stream(
    ctx: &AppContext,
    mut interrupted: watch::Receiver<u64>,
    opening: Vec<Bytes>,
    mut changes: BoxStream<'static, Bytes>,
    keep_alive_bytes: Bytes,
) -> Response {
    let counted = ctx.fan_out.stream_opened();
    let every = ctx.config.streams.sse_keep_alive.get();
    let mut shutdown = ctx.shutdown.clone();
    let grace = ctx.config.timeouts.shutdown_grace.get();
    let body = async_stream::stream! {
        let _counted = counted;
        yield Ok::<_, Infallible>(Bytes::from(format!("retry: {RETRY_MS}\n\n")));
        for event in opening {
            yield Ok(event);
        }
        // The flag only ever turns true, so any change means stop.
        if *shutdown.borrow_and_update() {
            return;
        }
        let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let ending = end_of_stream(shutdown, grace);
        tokio::pin!(ending);
        loop {
            tokio::select! {
                event = changes.next() => match event {
                    Some(event) => yield Ok(event),
                    None => break,
                },
                _ = keep_alive.tick() => yield Ok(keep_alive_bytes.clone()),
                () = &mut ending => break,
                _ = interrupted.changed() => break,
            }
        }
    };
    (STREAM_HEADERS, Body::from_stream(body)).into_response()
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

/// One SSE event.
pub fn sse_event(event: &str, id: u64, data: &str) -> String {
    let data = sse_data(data);
    let mut out = String::with_capacity(data.len() + 32);
    out.push_str("event: ");
    out.push_str(event);
    out.push_str("\nid: ");
    out.push_str(&id.to_string());
    out.push('\n');
    out.push_str(&data);
    out.push('\n');
    out
}

/// The `data:` lines of an event. Every line of `data` gets its own field,
/// since a bare newline would end the event early.
fn sse_data(data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 16);
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out
}

/// An event of a multiplexed stream: its first data line names the
/// session; `data` (already `data:` lines) follows.
fn labelled_event(event: &str, label: &str, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + label.len() + 32);
    out.put_slice(b"event: ");
    out.put_slice(event.as_bytes());
    out.put_slice(b"\ndata: ");
    out.put_slice(label.as_bytes());
    out.put_u8(b'\n');
    out.put_slice(data);
    out.put_u8(b'\n');
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_data_stays_one_event() {
        assert_eq!(sse_event("state", 7, "a\nb"), "event: state\nid: 7\ndata: a\ndata: b\n\n");
    }

    #[test]
    fn labelled_events_name_their_session_first() {
        let data = sse_data("<p>\n</p>");
        assert_eq!(
            &labelled_event("state", "v:abc", data.as_bytes())[..],
            b"event: state\ndata: v:abc\ndata: <p>\ndata: </p>\n\n"
        );
        assert_eq!(&labelled_event("gone", "s:x", b"")[..], b"event: gone\ndata: s:x\n\n");
    }

    #[test]
    fn a_multiplexed_stream_names_between_one_and_32_sessions() {
        let sid = SessionId::random();
        let token = ReadToken::random();
        let query = format!("s={0}&v={1}&s={0}", sid.as_str(), token.as_str());
        let watches = parse_watches(Some(&query)).unwrap();
        assert_eq!(watches, [Viewer::Writer(sid.clone()), Viewer::Reader(token)], "duplicates count once");
        assert_eq!(label(&watches[0]), format!("s:{}", sid.as_str()));
        for bad in [None, Some(""), Some("s=nonsense"), Some("x=1"), Some("view=abc")] {
            assert!(matches!(parse_watches(bad), Err(AppError::BadRequest(_))), "{bad:?}");
        }
        assert_eq!(MAX_SESSIONS_PER_STREAM, 32, "every language's message says 32 (i18n tests)");
        let client_cap = format!("var SESSIONS_PER_STREAM = {MAX_SESSIONS_PER_STREAM};");
        assert!(
            include_str!("../../assets/app.js").contains(&client_cap),
            "app.js splits streams at the cap"
        );
        let many: Vec<String> = (0..33).map(|_| format!("s={}", SessionId::random().as_str())).collect();
        assert!(parse_watches(Some(&many[..32].join("&"))).is_ok());
        assert!(matches!(parse_watches(Some(&many.join("&"))), Err(AppError::BadRequest(_))));
    }

    #[test]
    fn view_param_is_validated() {
        let view = ViewId::random();
        assert_eq!(view_param(Some(&format!("view={}", view.as_str()))), Some(view));
        assert_eq!(view_param(Some("view=nonsense")), None);
        assert_eq!(view_param(None), None);
    }
}
