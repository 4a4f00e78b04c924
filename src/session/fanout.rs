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
    rendered: [OnceLock<Bytes>; 2],
}

impl Frame {
    pub fn new(snapshot: Snapshot, origin: Option<ViewId>) -> Self {
        Self { snapshot, origin, rendered: Default::default() }
    }

    /// The event bytes for `audience`, rendered at most once per frame and
    /// shared by every view that sends it.
    pub fn rendered(&self, audience: Audience, render: impl FnOnce(&Frame) -> Bytes) -> Bytes {
        self.rendered[audience as usize].get_or_init(|| render(self)).clone()
    }
}

/// Caps on open streams, so memory stays bounded.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    pub per_session: usize,
    pub total: usize,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    TooManyForSession,
    TooManyInTotal,
}

struct Channel {
    sender: watch::Sender<Arc<Frame>>,
    streams: usize,
}

pub struct FanOut {
    limits: StreamLimits,
    channels: Mutex<HashMap<SessionId, Channel>>,
    open_streams: AtomicUsize,
}

impl FanOut {
    pub fn new(limits: StreamLimits) -> Arc<Self> {
        Arc::new(Self { limits, channels: Mutex::default(), open_streams: AtomicUsize::new(0) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Channel>> {
        // No critical section here can leave the map half-updated.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Streams open right now, over all sessions.
    pub fn open_streams(&self) -> usize {
        self.open_streams.load(Ordering::Relaxed)
    }

    /// Sessions with at least one open stream.
    pub fn watched_sessions(&self) -> usize {
        self.lock().len()
    }

    /// The sessions with at least one open stream, each with the snapshot
    /// its views were last sent.
    pub fn watched(&self) -> Vec<(SessionId, Snapshot)> {
        self.lock().iter().map(|(id, c)| (id.clone(), c.sender.borrow().snapshot)).collect()
    }

    /// Ends every stream of a session that is gone (expired or evicted),
    /// so its views stop showing a state that no longer exists.
    pub fn close(&self, id: &SessionId) {
        // Dropping the sender ends each receiver's `changed()`.
        self.lock().remove(id);
    }

    /// Offers a snapshot to the session's views. Kept only if newer than
    /// what they have, so publishes that race arrive in version order.
    pub fn publish(&self, id: &SessionId, snapshot: Snapshot, origin: Option<ViewId>) {
        let Some(sender) = self.lock().get(id).map(|c| c.sender.clone()) else {
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
        let Some(sender) = self.lock().get(id).map(|c| c.sender.clone()) else {
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

    /// Opens a stream on a session. Call [`publish`](Self::publish) with
    /// the stored snapshot *after* this, so a change made in between is
    /// never missed.
    pub fn subscribe(self: &Arc<Self>, id: &SessionId) -> Result<Subscription, Busy> {
        let mut channels = self.lock();
        if self.open_streams() >= self.limits.total {
            return Err(Busy::TooManyInTotal);
        }
        let channel = channels.entry(id.clone()).or_insert_with(|| Channel {
            sender: watch::Sender::new(Arc::new(Frame::new(Snapshot::new(), None))),
            streams: 0,
        });
        if channel.streams >= self.limits.per_session {
            if channel.streams == 0 {
                channels.remove(id);
            }
            return Err(Busy::TooManyForSession);
        }
        channel.streams += 1;
        self.open_streams.fetch_add(1, Ordering::Relaxed);
        Ok(Subscription { receiver: channel.sender.subscribe(), fan_out: Arc::clone(self), id: id.clone() })
    }

    fn unsubscribe(&self, id: &SessionId) {
        let mut channels = self.lock();
        // Absent once the session was closed.
        if let Some(channel) = channels.get_mut(id) {
            channel.streams -= 1;
            if channel.streams == 0 {
                channels.remove(id);
            }
        }
        self.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One open stream. Dropping it (the client left, or the server is
/// shutting down) releases its place in the counts.
pub struct Subscription {
    pub receiver: watch::Receiver<Arc<Frame>>,
    fan_out: Arc<FanOut>,
    id: SessionId,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.fan_out.unsubscribe(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::state::{Edit, Key};

    fn limits(per_session: usize, total: usize) -> StreamLimits {
        StreamLimits { per_session, total }
    }

    fn changed(from: Snapshot, lbs: f64) -> Snapshot {
        from.apply(Edit { key: Key::Lbs, typed: Some(lbs), step: None }).unwrap().unwrap()
    }

    #[test]
    fn older_versions_never_replace_newer_ones() {
        let hub = FanOut::new(limits(4, 4));
        let id = SessionId::random();
        let sub = hub.subscribe(&id).unwrap();
        let v1 = changed(Snapshot::new(), 1.0);
        let v2 = changed(v1, 2.0);
        hub.publish(&id, v2, None);
        hub.publish(&id, v1, None);
        assert_eq!(sub.receiver.borrow().snapshot, v2);
    }

    #[test]
    fn resync_pushes_what_differs_unless_something_newer_came() {
        let hub = FanOut::new(limits(4, 4));
        let id = SessionId::random();
        let sub = hub.subscribe(&id).unwrap();
        let v1 = changed(Snapshot::new(), 1.0);
        let v2 = changed(v1, 2.0);
        hub.publish(&id, v2, None);
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
        let hub = FanOut::new(limits(2, 3));
        let (a, b) = (SessionId::random(), SessionId::random());
        let a1 = hub.subscribe(&a).unwrap();
        let a2 = hub.subscribe(&a).unwrap();
        assert_eq!(hub.subscribe(&a).err(), Some(Busy::TooManyForSession));
        let b1 = hub.subscribe(&b).unwrap();
        assert_eq!(hub.subscribe(&b).err(), Some(Busy::TooManyInTotal));
        assert_eq!((hub.open_streams(), hub.watched_sessions()), (3, 2));
        drop((a1, a2, b1));
        assert_eq!((hub.open_streams(), hub.watched_sessions()), (0, 0));
    }

    #[test]
    fn closing_a_session_ends_its_streams_only() {
        let hub = FanOut::new(limits(4, 4));
        let (gone, kept) = (SessionId::random(), SessionId::random());
        let ended = hub.subscribe(&gone).unwrap();
        let open = hub.subscribe(&kept).unwrap();
        hub.close(&gone);
        assert!(ended.receiver.has_changed().is_err(), "the closed stream's channel is gone");
        assert!(open.receiver.has_changed().is_ok());
        assert_eq!(hub.watched(), vec![(kept.clone(), Snapshot::new())]);
        drop(ended);
        assert_eq!((hub.open_streams(), hub.watched_sessions()), (1, 1));
        drop(open);
        assert_eq!((hub.open_streams(), hub.watched_sessions()), (0, 0));
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
