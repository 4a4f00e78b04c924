//! Fan-out: tells every open view of a session about each applied change.
//!
//! Kept apart from storage: the store decides what the state is, this only
//! carries snapshots to listeners. One `watch` channel per watched session
//! holds just the newest frame, so a slow view never blocks the writer or
//! the other views, and never sees an error: it skips to the latest state.
//! With several replicas, the change bus calls [`FanOut::publish`] for
//! changes made elsewhere, and housekeeping calls [`FanOut::resync`] with
//! what the store holds, for the notices pub/sub lost.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::watch;

use super::id::{SessionId, ViewId};
use super::state::Snapshot;

/// Who a rendered frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// A view that holds the session id and shows inputs.
    Writer = 0,
    /// A read-only view: no inputs, no session id.
    Reader = 1,
}

/// One version of a session's state, as sent to its views.
pub struct Frame {
    pub snapshot: Snapshot,
    /// The view that made the change, so it is not echoed back to it.
    pub origin: Option<ViewId>,
    /// What is sent, by audience, rendered at most once per frame and
    /// shared by every stream that sends it: the whole event for a stream
    /// of this one session, and the data alone for streams of several.
    rendered: [OnceLock<Bytes>; 2],
    data: [OnceLock<Bytes>; 2],
}

impl Frame {
    pub fn new(snapshot: Snapshot, origin: Option<ViewId>) -> Self {
        Self { snapshot, origin, rendered: Default::default(), data: Default::default() }
    }

    /// The whole event for `audience`, rendered on first use.
    pub fn rendered(&self, audience: Audience, render: impl FnOnce(&Frame) -> Bytes) -> Bytes {
        self.rendered[audience as usize].get_or_init(|| render(self)).clone()
    }

    /// The event's data lines for `audience`, rendered on first use.
    pub fn data(&self, audience: Audience, render: impl FnOnce(&Frame) -> Bytes) -> Bytes {
        self.data[audience as usize].get_or_init(|| render(self)).clone()
    }
}

/// Caps on open streams, so memory stays bounded and no one client, and
/// no crowd of read-only viewers, can take every stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Streams of views that can write, per session.
    pub writers_per_session: usize,
    /// Streams of read-only views, per session: a budget of their own, so
    /// a shared dashboard never locks the owner out.
    pub readers_per_session: usize,
    /// Streams per client (see `server::client`), over all sessions.
    pub per_client: usize,
    pub total: usize,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    TooManyForSession,
    TooManyForClient,
    TooManyInTotal,
}

struct Channel {
    sender: watch::Sender<Arc<Frame>>,
    /// Open streams by audience.
    streams: [usize; 2],
}

#[derive(Default)]
struct Streams {
    channels: HashMap<SessionId, Channel>,
    by_client: HashMap<IpAddr, usize>,
}

pub struct FanOut {
    limits: StreamLimits,
    streams: Mutex<Streams>,
    /// Sessions watched, summed over the open streams: the unit every
    /// limit counts, since one stream may carry several sessions.
    subscriptions: AtomicUsize,
    /// Event-stream responses open right now, whatever each carries.
    open_streams: Arc<AtomicUsize>,
    /// Bumped when this replica may have missed changes (the change bus
    /// lost its subscription): every open stream ends, so its views say
    /// they are not live and catch up when they reconnect.
    interruptions: watch::Sender<u64>,
}

impl FanOut {
    pub fn new(limits: StreamLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            streams: Mutex::default(),
            subscriptions: AtomicUsize::new(0),
            open_streams: Arc::default(),
            interruptions: watch::Sender::new(0),
        })
    }

    /// Ends every open stream (see `interruptions`).
    pub fn interrupt_streams(&self) {
        self.interruptions.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes once [`interrupt_streams`](Self::interrupt_streams) is called.
    pub fn interruptions(&self) -> watch::Receiver<u64> {
        self.interruptions.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        // No critical section here can leave the maps half-updated.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sessions watched, summed over every open stream.
    pub fn subscriptions(&self) -> usize {
        self.subscriptions.load(Ordering::Relaxed)
    }

    /// Event-stream responses open right now: a browser whose tabs share
    /// one stream for all their sessions counts once.
    pub fn open_streams(&self) -> usize {
        self.open_streams.load(Ordering::Relaxed)
    }

    /// Counts one event-stream response for as long as the guard lives.
    pub fn stream_opened(&self) -> OpenStream {
        self.open_streams.fetch_add(1, Ordering::Relaxed);
        OpenStream(Arc::clone(&self.open_streams))
    }

    /// Sessions with at least one open stream.
    pub fn watched_sessions(&self) -> usize {
        self.lock().channels.len()
    }

    /// The sessions with at least one open stream, each with the snapshot
    /// its views were last sent.
    pub fn watched(&self) -> Vec<(SessionId, Snapshot)> {
        self.lock().channels.iter().map(|(id, c)| (id.clone(), c.sender.borrow().snapshot)).collect()
    }

    /// Ends every stream of a session that is gone (expired or evicted),
    /// so its views stop showing a state that no longer exists.
    pub fn close(&self, id: &SessionId) {
        // Dropping the sender ends each receiver's `changed()`.
        self.lock().channels.remove(id);
    }

    /// The session's channel, if anyone watches it; cloned so that sending
    /// happens outside the lock.
    fn sender(&self, id: &SessionId) -> Option<watch::Sender<Arc<Frame>>> {
        self.lock().channels.get(id).map(|c| c.sender.clone())
    }

    /// Offers a snapshot to the session's views. Kept only if newer than
    /// what they have, so publishes that race arrive in version order.
    pub fn publish(&self, id: &SessionId, snapshot: Snapshot, origin: Option<ViewId>) {
        let Some(sender) = self.sender(id) else {
            return; // nobody is watching
        };
        sender.send_if_modified(|current| {
            let newer = snapshot.version > current.snapshot.version;
            if newer {
                *current = Arc::new(Frame::new(snapshot, origin));
            }
            newer
        });
    }

    /// Pushes what the store holds (`fresh`) if it differs from `seen`, what
    /// [`watched`](Self::watched) returned before the store was read, and
    /// nothing newer arrived meanwhile. "Differs", not "is newer": after a
    /// Redis restart without durable writes a version can go backwards.
    pub fn resync(&self, id: &SessionId, seen: Snapshot, fresh: Snapshot) {
        if fresh == seen {
            return;
        }
        let Some(sender) = self.sender(id) else {
            return;
        };
        sender.send_if_modified(|current| {
            let untouched = current.snapshot == seen;
            if untouched {
                *current = Arc::new(Frame::new(fresh, None));
            }
            untouched
        });
    }

    /// Opens a stream on a session for `audience`, on behalf of `client`
    /// (a `server::client::limit_key`). Call [`publish`](Self::publish)
    /// with the stored snapshot *after* this, so a change made in between
    /// is never missed.
    pub fn subscribe(
        self: &Arc<Self>,
        id: &SessionId,
        audience: Audience,
        client: IpAddr,
    ) -> Result<Subscription, Busy> {
        let mut streams = self.lock();
        if self.subscriptions() >= self.limits.total {
            return Err(Busy::TooManyInTotal);
        }
        if streams.by_client.get(&client).is_some_and(|&n| n >= self.limits.per_client) {
            return Err(Busy::TooManyForClient);
        }
        let per_session = match audience {
            Audience::Writer => self.limits.writers_per_session,
            Audience::Reader => self.limits.readers_per_session,
        };
        let open_here = streams.channels.get(id).map_or(0, |c| c.streams[audience as usize]);
        if open_here >= per_session {
            return Err(Busy::TooManyForSession);
        }
        let channel = streams.channels.entry(id.clone()).or_insert_with(|| Channel {
            sender: watch::Sender::new(Arc::new(Frame::new(Snapshot::new(), None))),
            streams: [0; 2],
        });
        channel.streams[audience as usize] += 1;
        let receiver = channel.sender.subscribe();
        *streams.by_client.entry(client).or_insert(0) += 1;
        self.subscriptions.fetch_add(1, Ordering::Relaxed);
        Ok(Subscription { receiver, fan_out: Arc::clone(self), id: id.clone(), audience, client })
    }

    fn unsubscribe(&self, id: &SessionId, audience: Audience, client: IpAddr) {
        let mut streams = self.lock();
        // Absent once the session was closed.
        if let Some(channel) = streams.channels.get_mut(id) {
            channel.streams[audience as usize] -= 1;
            if channel.streams == [0, 0] {
                streams.channels.remove(id);
            }
        }
        if let Some(count) = streams.by_client.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                streams.by_client.remove(&client);
            }
        }
        self.subscriptions.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One open event-stream response, counted until dropped.
pub struct OpenStream(Arc<AtomicUsize>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One session watched by one open stream. Dropping it (the client left,
/// or the server is shutting down) releases its place in the counts.
pub struct Subscription {
    pub receiver: watch::Receiver<Arc<Frame>>,
    fan_out: Arc<FanOut>,
    id: SessionId,
    audience: Audience,
    client: IpAddr,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.fan_out.unsubscribe(&self.id, self.audience, self.client);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::session::state::Key;

    fn limits(per_session: usize, total: usize) -> StreamLimits {
        StreamLimits {
            writers_per_session: per_session,
            readers_per_session: per_session,
            per_client: total,
            total,
        }
    }

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn writer(hub: &Arc<FanOut>, id: &SessionId) -> Result<Subscription, Busy> {
        hub.subscribe(id, Audience::Writer, CLIENT)
    }

    fn two_sessions(limits: StreamLimits) -> (Arc<FanOut>, SessionId, SessionId) {
        (FanOut::new(limits), SessionId::random(), SessionId::random())
    }

    /// Open subscriptions, and sessions with any.
    fn counts(hub: &FanOut) -> (usize, usize) {
        (hub.subscriptions(), hub.watched_sessions())
    }

    fn changed(from: Snapshot, lbs: f64) -> Snapshot {
        from.then_set(Key::Lbs, lbs)
    }

    /// A session watched by one writer, which has been shown `v2`.
    struct ShownV2 {
        hub: Arc<FanOut>,
        id: SessionId,
        sub: Subscription,
        v1: Snapshot,
        v2: Snapshot,
    }

    fn shown_v2() -> ShownV2 {
        let hub = FanOut::new(limits(4, 4));
        let id = SessionId::random();
        let sub = writer(&hub, &id).unwrap();
        let v1 = changed(Snapshot::new(), 1.0);
        let v2 = changed(v1, 2.0);
        hub.publish(&id, v2, None);
        ShownV2 { hub, id, sub, v1, v2 }
    }

    #[test]
    fn older_versions_never_replace_newer_ones() {
        let ShownV2 { hub, id, sub, v1, v2 } = shown_v2();
        hub.publish(&id, v1, None);
        assert_eq!(sub.receiver.borrow().snapshot, v2);
    }

    #[test]
    fn resync_pushes_what_differs_unless_something_newer_came() {
        let ShownV2 { hub, id, sub, v1, v2 } = shown_v2();
        // The store was read at v2 but a rolled-back Redis says v1: pushed.
        hub.resync(&id, v2, v1);
        assert_eq!(sub.receiver.borrow().snapshot, v1);
        // Read while v1 was shown, but v2 arrived meanwhile: kept.
        let [(_, seen)] = hub.watched().try_into().unwrap();
        hub.publish(&id, v2, None);
        hub.resync(&id, seen, Snapshot::new());
        assert_eq!(sub.receiver.borrow().snapshot, v2);
    }

    #[test]
    fn caps_and_cleanup() {
        let (hub, a, b) = two_sessions(limits(2, 3));
        let a1 = writer(&hub, &a).unwrap();
        let a2 = writer(&hub, &a).unwrap();
        assert_eq!(writer(&hub, &a).err(), Some(Busy::TooManyForSession));
        let b1 = writer(&hub, &b).unwrap();
        assert_eq!(writer(&hub, &b).err(), Some(Busy::TooManyInTotal));
        assert_eq!(counts(&hub), (3, 2));
        drop((a1, a2, b1));
        assert_eq!(counts(&hub), (0, 0));
    }

    #[test]
    fn closing_a_session_ends_its_streams_only() {
        let (hub, gone, kept) = two_sessions(limits(4, 4));
        let ended = writer(&hub, &gone).unwrap();
        let open = writer(&hub, &kept).unwrap();
        hub.close(&gone);
        assert!(ended.receiver.has_changed().is_err(), "the closed stream's channel is gone");
        assert!(open.receiver.has_changed().is_ok());
        assert_eq!(hub.watched(), vec![(kept.clone(), Snapshot::new())]);
        drop(ended);
        assert_eq!(counts(&hub), (1, 1));
        drop(open);
        assert_eq!(counts(&hub), (0, 0));
    }

    #[test]
    fn readers_have_their_own_budget_and_clients_a_cap() {
        let limits =
            StreamLimits { writers_per_session: 1, readers_per_session: 2, per_client: 3, total: 10 };
        let hub = FanOut::new(limits);
        let id = SessionId::random();
        let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let r1 = hub.subscribe(&id, Audience::Reader, other).unwrap();
        let _r2 = hub.subscribe(&id, Audience::Reader, other).unwrap();
        assert_eq!(hub.subscribe(&id, Audience::Reader, CLIENT).err(), Some(Busy::TooManyForSession));
        // Readers at their cap do not lock the owner out.
        let _w = writer(&hub, &id).unwrap();
        assert_eq!(writer(&hub, &id).err(), Some(Busy::TooManyForSession));
        // One client at its cap; another still gets streams.
        let _x = hub.subscribe(&SessionId::random(), Audience::Writer, other).unwrap();
        assert_eq!(
            hub.subscribe(&SessionId::random(), Audience::Writer, other).err(),
            Some(Busy::TooManyForClient)
        );
        assert!(writer(&hub, &SessionId::random()).is_ok());
        drop(r1);
        assert!(hub.subscribe(&SessionId::random(), Audience::Writer, other).is_ok());
    }

    #[test]
    fn renders_once_per_audience() {
        let frame = Frame::new(Snapshot::new(), None);
        let mut calls = 0;
        for _ in 0..3 {
            frame.rendered(Audience::Writer, |_| {
                calls += 1;
                Bytes::from_static(b"x")
            });
        }
        assert_eq!(calls, 1);
    }
}
