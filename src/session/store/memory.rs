//! Sessions in this process's memory, with an idle TTL and an LRU cap:
//! the default backend, which needs nothing installed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Backend, Cas, StoreError};
use crate::session::id::{ReadToken, SessionId, ViewId};
use crate::session::state::Snapshot;

/// Limits of the in-memory store.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// At most this many sessions at once; the least recently used goes first.
    pub max_sessions: usize,
    /// A session idle for this long is gone.
    pub ttl: Duration,
}

struct Entry {
    snapshot: Snapshot,
    read_token: ReadToken,
    last_used: Instant,
    /// Key of this entry in `Sessions::by_use`.
    use_tick: u64,
}

#[derive(Default)]
struct Sessions {
    map: HashMap<SessionId, Entry>,
    by_token: HashMap<ReadToken, SessionId>,
    /// Use order: the first entry is the least recently used session.
    by_use: BTreeMap<u64, SessionId>,
    tick: u64,
}

impl Sessions {
    fn touch(&mut self, id: &SessionId, now: Instant) -> Option<&mut Entry> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.get_mut(id)?;
        self.by_use.remove(&entry.use_tick);
        self.by_use.insert(tick, id.clone());
        entry.use_tick = tick;
        entry.last_used = now;
        Some(entry)
    }

    fn remove(&mut self, id: &SessionId) {
        if let Some(entry) = self.map.remove(id) {
            self.by_use.remove(&entry.use_tick);
            self.by_token.remove(&entry.read_token);
        }
    }

    fn remove_oldest(&mut self) {
        if let Some((_, id)) = self.by_use.pop_first() {
            self.remove(&id);
        }
    }

    fn oldest_last_used(&self) -> Option<Instant> {
        let (_, id) = self.by_use.first_key_value()?;
        self.map.get(id).map(|e| e.last_used)
    }
}

/// Sessions in this process's memory: a few hundred bytes each.
pub struct MemoryStore {
    limits: StoreLimits,
    sessions: Mutex<Sessions>,
}

impl MemoryStore {
    pub fn new(limits: StoreLimits) -> Self {
        Self { limits, sessions: Mutex::new(Sessions::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // Every critical section below leaves the maps consistent before
        // anything that could panic, so a poisoned lock is still sound.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a session last used at `last_used` has outlived the TTL.
    fn expired(&self, last_used: Instant, now: Instant) -> bool {
        last_used + self.limits.ttl <= now
    }

    /// Finds a live session and marks it used; drops it if it expired.
    fn live<'a>(&self, sessions: &'a mut Sessions, id: &SessionId, now: Instant) -> Option<&'a mut Entry> {
        let expired = self.expired(sessions.map.get(id)?.last_used, now);
        if expired {
            sessions.remove(id);
            return None;
        }
        sessions.touch(id, now)
    }

    fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut sessions = self.lock();
        let mut gone = 0;
        while sessions.oldest_last_used().is_some_and(|t| self.expired(t, now)) {
            sessions.remove_oldest();
            gone += 1;
        }
        gone
    }
}

#[async_trait]
impl Backend for MemoryStore {
    async fn create(&self) -> Result<SessionId, StoreError> {
        let id = SessionId::random();
        let now = Instant::now();
        let mut sessions = self.lock();
        while sessions.map.len() >= self.limits.max_sessions.max(1) {
            sessions.remove_oldest();
        }
        sessions.tick += 1;
        let use_tick = sessions.tick;
        sessions.by_use.insert(use_tick, id.clone());
        let read_token = ReadToken::random();
        sessions.by_token.insert(read_token.clone(), id.clone());
        let entry = Entry { snapshot: Snapshot::new(), read_token, last_used: now, use_tick };
        sessions.map.insert(id.clone(), entry);
        Ok(id)
    }

    async fn get(&self, id: &SessionId) -> Result<Option<(Snapshot, ReadToken)>, StoreError> {
        let mut sessions = self.lock();
        Ok(self.live(&mut sessions, id, Instant::now()).map(|e| (e.snapshot, e.read_token.clone())))
    }

    async fn by_token(&self, token: &ReadToken) -> Result<Option<(SessionId, Snapshot)>, StoreError> {
        let mut sessions = self.lock();
        let Some(id) = sessions.by_token.get(token).cloned() else {
            return Ok(None);
        };
        Ok(self.live(&mut sessions, &id, Instant::now()).map(|e| (id, e.snapshot)))
    }

    async fn compare_and_set(
        &self,
        id: &SessionId,
        expected: u64,
        next: Snapshot,
        _origin: Option<&ViewId>,
    ) -> Result<Cas, StoreError> {
        // The routes publish to this process's views; there are no others.
        let mut sessions = self.lock();
        let Some(entry) = self.live(&mut sessions, id, Instant::now()) else {
            return Ok(Cas::Gone);
        };
        if entry.snapshot.version != expected {
            return Ok(Cas::Conflict);
        }
        entry.snapshot = next;
        Ok(Cas::Written)
    }

    async fn peek(&self, ids: &[SessionId]) -> Result<Vec<Option<Snapshot>>, StoreError> {
        let now = Instant::now();
        let sessions = self.lock();
        let live = |id| sessions.map.get(id).filter(|e: &&Entry| !self.expired(e.last_used, now));
        Ok(ids.iter().map(|id| live(id).map(|e| e.snapshot)).collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn session_count(&self) -> Option<usize> {
        Some(self.lock().map.len())
    }

    fn sweep_expired(&self) -> usize {
        self.sweep()
    }

    fn in_process(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max_sessions: usize, ttl: Duration) -> MemoryStore {
        MemoryStore::new(StoreLimits { max_sessions, ttl })
    }

    #[tokio::test]
    async fn unknown_ids_create_nothing() {
        let s = store(10, Duration::from_secs(60));
        let id = SessionId::random();
        assert_eq!(s.get(&id).await.unwrap(), None);
        assert_eq!(s.compare_and_set(&id, 0, Snapshot::new(), None).await.unwrap(), Cas::Gone);
        assert_eq!(s.peek(&[id]).await.unwrap(), [None]);
        assert_eq!(s.session_count(), Some(0));
    }

    #[tokio::test]
    async fn least_recently_used_goes_first() {
        let s = store(2, Duration::from_secs(60));
        let a = s.create().await.unwrap();
        let b = s.create().await.unwrap();
        s.get(&a).await.unwrap();
        let c = s.create().await.unwrap();
        assert!(s.get(&a).await.unwrap().is_some());
        assert!(s.get(&b).await.unwrap().is_none());
        assert!(s.get(&c).await.unwrap().is_some());
        assert_eq!(s.session_count(), Some(2));
        assert_eq!(s.lock().by_token.len(), 2, "evicted tokens go too");
    }

    #[tokio::test]
    async fn read_tokens_find_their_session_only() {
        let s = store(10, Duration::from_secs(60));
        let id = s.create().await.unwrap();
        let (_, token) = s.get(&id).await.unwrap().unwrap();
        assert_ne!(token.as_str(), id.as_str());
        assert_eq!(s.by_token(&token).await.unwrap().map(|(sid, _)| sid), Some(id));
        assert!(s.by_token(&ReadToken::random()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn idle_sessions_expire() {
        let s = store(10, Duration::from_millis(30));
        let a = s.create().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(s.sweep_expired(), 1);
        assert!(s.get(&a).await.unwrap().is_none());
        let b = s.create().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(s.get(&b).await.unwrap().is_none(), "expired on access");
    }

    #[tokio::test]
    async fn compare_and_set_checks_the_version() {
        let s = store(10, Duration::from_secs(60));
        let id = s.create().await.unwrap();
        let next = Snapshot { version: 1, ..Snapshot::new() };
        assert_eq!(s.compare_and_set(&id, 1, next, None).await.unwrap(), Cas::Conflict);
        assert_eq!(s.compare_and_set(&id, 0, next, None).await.unwrap(), Cas::Written);
        assert_eq!(s.peek(std::slice::from_ref(&id)).await.unwrap(), [Some(next)]);
    }
}
