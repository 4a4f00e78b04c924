//! Sessions in this process's memory, with an idle TTL and an LRU cap:
//! the default backend, which needs nothing installed.
//!
//! Sessions that were never changed are a tier of their own: they expire
//! sooner and are evicted first. A flood of `GET /` (any web page can make
//! its visitors' browsers send one) then cycles only other untouched
//! sessions, never one that holds somebody's values.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
// The runtime's clock, which tests can pause and move on
// (`tokio::time::advance`) instead of sleeping through a TTL. Outside a
// test it is the system's monotonic clock.
use tokio::time::Instant;

use super::{Backend, Cas, StoreError, Swap};
use crate::session::id::{ReadToken, SessionId};
use crate::session::state::Snapshot;

/// Limits of the in-memory store.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// At most this many sessions at once; the least recently used goes
    /// first, unchanged ones before any changed one.
    pub max_sessions: usize,
    /// A session idle for this long is gone.
    pub ttl: Duration,
    /// A session never changed and idle for this long is gone (at most `ttl`).
    pub unchanged_ttl: Duration,
}

/// Whether a session has ever been changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Unchanged = 0,
    Changed = 1,
}

impl Tier {
    fn of(snapshot: &Snapshot) -> Self {
        if snapshot.version == 0 { Self::Unchanged } else { Self::Changed }
    }
}

struct Entry {
    snapshot: Snapshot,
    read_token: ReadToken,
    last_used: Instant,
    /// Where this entry is in `Sessions::by_use`.
    use_tier: Tier,
    use_tick: u64,
}

#[derive(Default)]
struct Sessions {
    map: HashMap<SessionId, Entry>,
    by_token: HashMap<ReadToken, SessionId>,
    /// Use order per tier: the first entry is the least recently used.
    by_use: [BTreeMap<u64, SessionId>; 2],
    tick: u64,
}

impl Sessions {
    /// Marks a session used now, in the tier its snapshot puts it in.
    fn touch(&mut self, id: &SessionId, now: Instant) -> Option<&mut Entry> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.get_mut(id)?;
        self.by_use[entry.use_tier as usize].remove(&entry.use_tick);
        entry.use_tier = Tier::of(&entry.snapshot);
        self.by_use[entry.use_tier as usize].insert(tick, id.clone());
        entry.use_tick = tick;
        entry.last_used = now;
        Some(entry)
    }

    /// Stores a session's next snapshot; its first change moves it to the
    /// changed tier.
    fn write(&mut self, id: &SessionId, next: Snapshot) {
        let Some(entry) = self.map.get_mut(id) else { return };
        let first_change = entry.use_tier != Tier::of(&next);
        entry.snapshot = next;
        if first_change {
            self.touch(id, Instant::now());
        }
    }

    fn remove(&mut self, id: &SessionId) {
        if let Some(entry) = self.map.remove(id) {
            self.by_use[entry.use_tier as usize].remove(&entry.use_tick);
            self.by_token.remove(&entry.read_token);
        }
    }

    /// Makes room: the least recently used unchanged session, else the
    /// least recently used of all.
    fn evict_one(&mut self) {
        let tier =
            if self.by_use[Tier::Unchanged as usize].is_empty() { Tier::Changed } else { Tier::Unchanged };
        if let Some((_, id)) = self.by_use[tier as usize].pop_first() {
            self.remove(&id);
        }
    }

    fn oldest(&self, tier: Tier) -> Option<(&SessionId, Instant)> {
        let (_, id) = self.by_use[tier as usize].first_key_value()?;
        self.map.get(id).map(|e| (id, e.last_used))
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

    fn ttl(&self, tier: Tier) -> Duration {
        match tier {
            Tier::Unchanged => self.limits.unchanged_ttl.min(self.limits.ttl),
            Tier::Changed => self.limits.ttl,
        }
    }

    /// Whether a session of `tier` last used at `last_used` has outlived its TTL.
    fn expired(&self, tier: Tier, last_used: Instant, now: Instant) -> bool {
        last_used + self.ttl(tier) <= now
    }

    fn entry_expired(&self, entry: &Entry, now: Instant) -> bool {
        self.expired(entry.use_tier, entry.last_used, now)
    }

    /// Finds a live session and marks it used; drops it if it expired.
    fn live<'a>(&self, sessions: &'a mut Sessions, id: &SessionId, now: Instant) -> Option<&'a mut Entry> {
        if self.entry_expired(sessions.map.get(id)?, now) {
            sessions.remove(id);
            return None;
        }
        sessions.touch(id, now)
    }

    fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut sessions = self.lock();
        let mut gone = 0;
        for tier in [Tier::Unchanged, Tier::Changed] {
            while let Some((id, last_used)) = sessions.oldest(tier) {
                if !self.expired(tier, last_used, now) {
                    break;
                }
                let id = id.clone();
                sessions.remove(&id);
                gone += 1;
            }
        }
        gone
    }
}

#[async_trait]
impl Backend for MemoryStore {
    /// Every call is a map lookup under a lock: no deadline needed.
    fn in_process(&self) -> bool {
        true
    }

    async fn create(&self) -> Result<SessionId, StoreError> {
        let id = SessionId::random();
        let now = Instant::now();
        let mut sessions = self.lock();
        while sessions.map.len() >= self.limits.max_sessions.max(1) {
            sessions.evict_one();
        }
        sessions.tick += 1;
        let use_tick = sessions.tick;
        sessions.by_use[Tier::Unchanged as usize].insert(use_tick, id.clone());
        let read_token = ReadToken::random();
        sessions.by_token.insert(read_token.clone(), id.clone());
        let entry = Entry {
            snapshot: Snapshot::new(),
            read_token,
            last_used: now,
            use_tier: Tier::Unchanged,
            use_tick,
        };
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

    async fn compare_and_set(&self, id: &SessionId, swap: Swap<'_>) -> Result<Cas, StoreError> {
        // The routes publish to this process's views; there are no others.
        let mut sessions = self.lock();
        let Some(entry) = self.live(&mut sessions, id, Instant::now()) else {
            return Ok(Cas::Gone);
        };
        if entry.snapshot.version != swap.expected {
            return Ok(Cas::Conflict);
        }
        sessions.write(id, swap.next);
        Ok(Cas::Written)
    }

    async fn peek(&self, ids: &[SessionId]) -> Result<Vec<Option<Snapshot>>, StoreError> {
        let now = Instant::now();
        let sessions = self.lock();
        let live = |id| sessions.map.get(id).filter(|e: &&Entry| !self.entry_expired(e, now));
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

    fn update_in_place(
        &self,
        id: &SessionId,
        change: &mut dyn FnMut(Snapshot) -> Option<Snapshot>,
    ) -> Option<bool> {
        let mut sessions = self.lock();
        let Some(entry) = self.live(&mut sessions, id, Instant::now()) else {
            return Some(false);
        };
        if let Some(next) = change(entry.snapshot) {
            sessions.write(id, next);
        }
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::store::swap;

    fn store(max_sessions: usize, ttl: Duration) -> MemoryStore {
        MemoryStore::new(StoreLimits { max_sessions, ttl, unchanged_ttl: ttl })
    }

    async fn change(s: &MemoryStore, id: &SessionId) {
        let (now, _) = s.get(id).await.unwrap().unwrap();
        let next = Snapshot { version: now.version + 1, ..now };
        assert_eq!(
            s.compare_and_set(id, Swap { expected: now.version, next, origin: None }).await.unwrap(),
            Cas::Written
        );
    }

    #[tokio::test]
    async fn a_flood_of_new_sessions_evicts_no_changed_one() {
        let s = store(3, Duration::from_secs(60));
        let kept = s.create().await.unwrap();
        change(&s, &kept).await;
        for _ in 0..100 {
            s.create().await.unwrap();
        }
        assert!(s.get(&kept).await.unwrap().is_some(), "a changed session was evicted");
        assert_eq!(s.session_count(), Some(3));
        // With only changed sessions left, the least recently used goes.
        let s = store(2, Duration::from_secs(60));
        let (a, b) = (s.create().await.unwrap(), s.create().await.unwrap());
        change(&s, &a).await;
        change(&s, &b).await;
        s.get(&a).await.unwrap();
        s.create().await.unwrap();
        assert!(s.get(&b).await.unwrap().is_none());
        assert!(s.get(&a).await.unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn unchanged_sessions_expire_sooner() {
        let limits = StoreLimits {
            max_sessions: 10,
            ttl: Duration::from_secs(3600),
            unchanged_ttl: Duration::from_secs(600),
        };
        let s = MemoryStore::new(limits);
        let (untouched, changed) = (s.create().await.unwrap(), s.create().await.unwrap());
        change(&s, &changed).await;
        tokio::time::advance(Duration::from_secs(599)).await;
        assert_eq!(s.sweep_expired(), 0, "expired early");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(s.sweep_expired(), 1);
        assert!(s.get(&untouched).await.unwrap().is_none());
        assert!(s.get(&changed).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn unknown_ids_create_nothing() {
        let s = store(10, Duration::from_secs(60));
        let id = SessionId::random();
        assert_eq!(s.get(&id).await.unwrap(), None);
        assert_eq!(swap(&s, &id, 0, Snapshot::new()).await, Cas::Gone);
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
        assert_eq!(s.lock().by_use.iter().map(BTreeMap::len).sum::<usize>(), 2);
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

    #[tokio::test(start_paused = true)]
    async fn idle_sessions_expire() {
        let ttl = Duration::from_secs(3600);
        let s = store(10, ttl);
        let a = s.create().await.unwrap();
        tokio::time::advance(ttl + Duration::from_secs(1)).await;
        assert_eq!(s.sweep_expired(), 1);
        assert!(s.get(&a).await.unwrap().is_none());
        let b = s.create().await.unwrap();
        tokio::time::advance(ttl + Duration::from_secs(1)).await;
        assert!(s.get(&b).await.unwrap().is_none(), "expired on access");
    }

    #[tokio::test(start_paused = true)]
    async fn use_keeps_a_session_alive() {
        let ttl = Duration::from_secs(3600);
        let s = store(10, ttl);
        let a = s.create().await.unwrap();
        change(&s, &a).await;
        for _ in 0..5 {
            tokio::time::advance(ttl - Duration::from_secs(1)).await;
            assert!(s.get(&a).await.unwrap().is_some(), "expired while in use");
        }
        assert_eq!(s.sweep_expired(), 0);
    }

    #[tokio::test]
    async fn compare_and_set_checks_the_version() {
        let s = store(10, Duration::from_secs(60));
        let id = s.create().await.unwrap();
        let next = Snapshot { version: 1, ..Snapshot::new() };
        assert_eq!(swap(&s, &id, 1, next).await, Cas::Conflict);
        assert_eq!(swap(&s, &id, 0, next).await, Cas::Written);
        assert_eq!(s.peek(std::slice::from_ref(&id)).await.unwrap(), [Some(next)]);
    }
}
