//! The change bus between replicas: "session S is now at this snapshot".
//!
//! With Redis, the compare-and-set script PUBLISHes a [`Notice`] on one
//! channel, and each replica holds exactly one subscription to it
//! ([`RedisBus`]), whatever its number of views. Notices go into the
//! local [`FanOut`], whose per-session channels render each version once
//! per audience for all local views. In memory there is one process and
//! the routes publish to the fan-out directly.
//!
//! Pub/sub is at-most-once: notices are lost on a reconnect or when
//! Redis drops a slow subscriber. So after every (re)subscription the bus
//! asks for a resync, in which the watched sessions are re-read and any
//! that differ are pushed; the housekeeping timer does the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use redis::{Client, RedisError};
use tokio::sync::{Notify, watch};

use super::fanout::FanOut;
use super::id::{SessionId, ViewId};
use super::number::format_stored;
use super::state::{Key, Snapshot};
use super::store::redis::decode_state;

/// One applied change, as announced to every replica. It carries the new
/// state, so a replica renders it without reading it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub session: SessionId,
    pub snapshot: Snapshot,
    /// The view that made the change, so it is not echoed back to it.
    pub origin: Option<ViewId>,
}

impl Notice {
    /// `SID VERSION ORIGIN VALUE…`, with `-` for no origin.
    pub fn encode(&self) -> String {
        let mut text = format!(
            "{} {} {}",
            self.session.as_str(),
            self.snapshot.version,
            self.origin.as_ref().map_or("-", ViewId::as_str)
        );
        for (_, value) in self.snapshot.state.entries() {
            text.push(' ');
            text.push_str(&format_stored(value));
        }
        text
    }

    /// `None` for anything malformed: a notice from another version of the
    /// app, or garbage someone published on the channel.
    pub fn decode(text: &str) -> Option<Self> {
        let mut words = text.split(' ');
        let session = SessionId::parse(words.next()?)?;
        let version = words.next()?.parse().ok()?;
        let origin = match words.next()? {
            "-" => None,
            view => Some(ViewId::parse(view)?),
        };
        let values: Vec<Option<&str>> = words.map(Some).collect();
        if values.len() != Key::ALL.len() {
            return None;
        }
        let state = decode_state(&values).ok()?;
        Some(Self { session, snapshot: Snapshot { version, state }, origin })
    }
}

/// How often the subscription is pinged: a half-open connection would
/// otherwise look subscribed forever.
const PING_EVERY: Duration = Duration::from_secs(2);
/// Connecting, subscribing or a ping taking longer than this counts as down.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// Reconnect delays grow from the first to the last, then stay there.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_LAST: Duration = Duration::from_secs(1);

/// This replica's one subscription to the change channel.
pub struct RedisBus {
    pub client: Client,
    pub channel: String,
}

/// What the rest of the app sees of the bus.
pub struct BusHandles {
    pub fan_out: Arc<FanOut>,
    /// Notified after each (re)subscription: time to re-read every watched session.
    pub resync: Arc<Notify>,
    /// Whether notices from other replicas are arriving right now.
    pub subscribed: Arc<AtomicBool>,
}

impl RedisBus {
    /// Listens until `shutdown` turns true, reconnecting for as long as
    /// Redis is away, however long that is.
    pub async fn run(self, handles: BusHandles, mut shutdown: watch::Receiver<bool>) {
        let mut retry = RETRY_FIRST;
        loop {
            let outcome = tokio::select! {
                outcome = self.listen(&handles) => outcome,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let was_up = handles.subscribed.swap(false, Ordering::Relaxed);
            if was_up {
                tracing::warn!(error = %outcome, "lost the change subscription; reconnecting");
                // Views here would look live while missing other replicas' changes.
                handles.fan_out.interrupt_streams();
                retry = RETRY_FIRST;
            } else {
                tracing::debug!(error = %outcome, "cannot subscribe to changes yet");
            }
            tokio::select! {
                () = tokio::time::sleep(retry) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            retry = (retry * 2).min(RETRY_LAST);
        }
    }

    /// One connection's life: subscribe, then pass notices on until it fails.
    async fn listen(&self, handles: &BusHandles) -> BusDown {
        let connected = tokio::time::timeout(ANSWER_WITHIN, self.client.get_async_pubsub()).await;
        let mut pubsub = match connected {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => return BusDown::Redis(e),
            Err(_) => return BusDown::Timeout("connect"),
        };
        // Returns once Redis has confirmed the subscription.
        match tokio::time::timeout(ANSWER_WITHIN, pubsub.subscribe(&self.channel)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return BusDown::Redis(e),
            Err(_) => return BusDown::Timeout("subscribe"),
        }
        let (mut sink, mut messages) = pubsub.split();
        handles.subscribed.store(true, Ordering::Relaxed);
        tracing::info!(channel = %self.channel, "subscribed to changes");
        // Notices sent while this replica was not subscribed are lost.
        handles.resync.notify_one();
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { return BusDown::Closed };
                    match std::str::from_utf8(message.get_payload_bytes()).ok().and_then(Notice::decode) {
                        Some(notice) => handles.fan_out.publish(&notice.session, notice.snapshot, notice.origin),
                        None => tracing::warn!("ignored a malformed change notice"),
                    }
                }
                _ = ping.tick() => {
                    match tokio::time::timeout(ANSWER_WITHIN, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return BusDown::Redis(e),
                        Err(_) => return BusDown::Timeout("ping"),
                    }
                }
            }
        }
    }
}

/// Why a subscription ended.
enum BusDown {
    Redis(RedisError),
    Timeout(&'static str),
    Closed,
}

impl std::fmt::Display for BusDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redis(e) => write!(f, "{e}"),
            Self::Timeout(what) => write!(f, "{what}: no answer within {ANSWER_WITHIN:?}"),
            Self::Closed => f.write_str("the connection closed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip() {
        let snapshot = Snapshot::new().then_set(Key::Lbs, 10.0);
        for origin in [None, Some(ViewId::random())] {
            let notice = Notice { session: SessionId::random(), snapshot, origin };
            assert_eq!(Notice::decode(&notice.encode()), Some(notice));
        }
    }

    #[test]
    fn malformed_notices_are_refused() {
        let sid = SessionId::random();
        let sid = sid.as_str();
        for text in [
            String::new(),
            "garbage".to_owned(),
            format!("{sid} 1 - 1e0"),
            format!("{sid} 1 - 1e0 2e0 3e0"),
            format!("{sid} x - 1e0 2e0"),
            format!("{sid} 1 nonsense 1e0 2e0"),
            format!("{sid} 1 - NaN 2e0"),
            "short 1 - 1e0 2e0".to_owned(),
        ] {
            assert_eq!(Notice::decode(&text), None, "{text:?}");
        }
        assert!(Notice::decode(&format!("{sid} 1 - 1e0 2e0")).is_some());
    }
}
