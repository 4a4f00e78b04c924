//! Where session state lives, behind one async, fallible seam.
//!
//! A [`Backend`] only stores: it reads snapshots and writes one with a
//! compare-and-set on the version. The seed's callbacks run in Rust, in
//! [`SessionStore::apply`], written once for every backend: read, run
//! [`Snapshot::apply`], write if nobody else wrote first, retry otherwise.

mod durable;
mod memory;
pub(crate) mod redis;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;

pub use self::redis::{RedisConfig, RedisStore};
pub use durable::{DurableStore, OpenError};
pub use memory::{MemoryStore, StoreLimits};

use super::id::{ReadToken, SessionId, ViewId};
use super::state::{Edit, Refusal, Snapshot};

/// What a disk-backed store has committed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurableCommits {
    /// Durable commits, each one fsync.
    pub commits: u64,
    /// New sessions and changes made durable by them.
    pub writes: u64,
}

/// A failure of the backend itself, never of the user's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The backend cannot be reached or did not answer in time. Transient:
    /// the client should try again (503).
    Unavailable(String),
    /// Writers kept colliding on one session past the retry budget (503).
    Contended,
    /// The backend answered with something this version cannot read (500).
    Corrupt(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(why) => write!(f, "session store unavailable: {why}"),
            Self::Contended => f.write_str("too many concurrent writers on one session"),
            Self::Corrupt(why) => write!(f, "session store returned unreadable data: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What became of one edit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Changed(Snapshot),
    /// Same value as before: no callback ran and the version stayed.
    Unchanged(Snapshot),
    Refused(Refusal, Snapshot),
}

/// A write that lands only while the session is still at version
/// `expected`, made by the view `origin` (if a view made it).
#[derive(Debug, Clone, Copy)]
pub struct Swap<'a> {
    pub expected: u64,
    pub next: Snapshot,
    pub origin: Option<&'a ViewId>,
}

/// What became of one compare-and-set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cas {
    /// Written, and announced to every replica's views.
    Written,
    /// Another writer got there first: the stored version is not the expected one.
    Conflict,
    /// The session is unknown or expired; nothing was written.
    Gone,
}

/// `compare_and_set` with no origin, from a test that expects an answer.
#[cfg(test)]
pub(crate) async fn swap(backend: &impl Backend, id: &SessionId, expected: u64, next: Snapshot) -> Cas {
    backend.compare_and_set(id, Swap { expected, next, origin: None }).await.expect("the store answers")
}

/// The storage seam. Every call is one round trip at most, and none of
/// them creates anything for an unknown id.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Starts a session at the initial state.
    async fn create(&self) -> Result<SessionId, StoreError>;
    /// The current state and the read-only token, or `None` for an unknown
    /// or expired id. Counts as use: it refreshes the idle timer.
    async fn get(&self, id: &SessionId) -> Result<Option<(Snapshot, ReadToken)>, StoreError>;
    /// The session a read-only token stands for, and its state.
    async fn by_token(&self, token: &ReadToken) -> Result<Option<(SessionId, Snapshot)>, StoreError>;
    /// Writes `swap.next` if the stored version is still `swap.expected`, and in the
    /// same step announces it (with the view that made it) to other
    /// processes watching the session.
    async fn compare_and_set(&self, id: &SessionId, swap: Swap<'_>) -> Result<Cas, StoreError>;
    /// The current state of each of `ids`, in order, `None` where gone.
    /// Counts as no use: an open view asking does not keep a session alive.
    async fn peek(&self, ids: &[SessionId]) -> Result<Vec<Option<Snapshot>>, StoreError>;
    /// Whether the backend answers right now.
    async fn ping(&self) -> Result<(), StoreError>;
    /// How many sessions are live, where the backend can count them cheaply.
    fn session_count(&self) -> Option<usize>;
    /// Drops sessions idle past the TTL; returns how many went. Backends
    /// that expire entries themselves (Redis) do nothing here.
    fn sweep_expired(&self) -> usize;
    /// Durable commits (one fsync each) and the writes they made durable,
    /// so far, for a backend that commits to disk itself.
    fn durable_commits(&self) -> Option<DurableCommits> {
        None
    }
    /// Whether every call is answered from this process's memory, never
    /// waiting on I/O. Such a backend needs no deadline.
    fn in_process(&self) -> bool {
        false
    }
    /// For backends whose writes all go through one writer of their own
    /// (`DATA_DIR`): applies `edit` there, by [`decide`], in one step instead
    /// of a read and a compare-and-set. `None` where the backend cannot;
    /// `Some(Ok(None))` for an unknown id.
    async fn apply_in_writer(
        &self,
        _id: &SessionId,
        _edit: Edit,
    ) -> Option<Result<Option<Outcome>, StoreError>> {
        None
    }
    /// For backends that hold the state in this process: runs `change` on
    /// the current snapshot and stores what it returns, under the backend's
    /// own lock, in one step instead of a read and a compare-and-set.
    /// `None` where the backend cannot; `Some(false)` for an unknown id.
    fn update_in_place(
        &self,
        _id: &SessionId,
        _change: &mut dyn FnMut(Snapshot) -> Option<Snapshot>,
    ) -> Option<bool> {
        None
    }
}

/// Writers queued per process, so that on one replica edits to one
/// session wait their turn instead of colliding; only writers on other
/// replicas can still conflict. Striped: a fixed number of locks, so
/// memory does not grow with sessions.
const WRITER_STRIPES: usize = 256;

/// The most any one call to the store may take, retries included, so that
/// a request never hangs on a backend that is down or stalled.
pub const STORE_DEADLINE: Duration = Duration::from_millis(1500);

/// Compare-and-set attempts before giving up with [`StoreError::Contended`].
/// Writers on one replica are queued, so each attempt competes with at most
/// one writer per other replica.
const MAX_ATTEMPTS: usize = 64;

/// The sessions, whatever the backend: the seam the routes see.
pub struct SessionStore {
    backend: Arc<dyn Backend>,
    writers: Box<[Mutex<()>]>,
}

impl SessionStore {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend, writers: (0..WRITER_STRIPES).map(|_| Mutex::new(())).collect() }
    }

    /// Applies one edit as the seed's callbacks say. `None` for an unknown
    /// or expired id: nothing is created. `origin` is the view that made
    /// the edit, so that its own change is not echoed back to it.
    pub async fn apply(
        &self,
        id: &SessionId,
        edit: Edit,
        origin: Option<&ViewId>,
    ) -> Result<Option<Outcome>, StoreError> {
        let mut outcome = None;
        let in_place = self.backend.update_in_place(id, &mut |before| {
            let (decided, next) = decide(before, edit);
            outcome = Some(decided);
            next
        });
        match in_place {
            Some(true) => return Ok(outcome),
            Some(false) => return Ok(None),
            None => {}
        }
        match tokio::time::timeout(STORE_DEADLINE, self.backend.apply_in_writer(id, edit)).await {
            Ok(Some(applied)) => return applied,
            Ok(None) => {}
            Err(_) => return Err(deadline_passed()),
        }
        self.within_deadline(async {
            let _turn = self.writers[stripe(id)].lock().await;
            self.compare_and_set_loop(id, edit, origin).await
        })
        .await
    }

    /// Read, decide, write if nobody else wrote first; else again.
    async fn compare_and_set_loop(
        &self,
        id: &SessionId,
        edit: Edit,
        origin: Option<&ViewId>,
    ) -> Result<Option<Outcome>, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let Some((before, _)) = self.backend.get(id).await? else {
                return Ok(None);
            };
            let (outcome, next) = decide(before, edit);
            let Some(next) = next else { return Ok(Some(outcome)) };
            match self.backend.compare_and_set(id, Swap { expected: before.version, next, origin }).await? {
                Cas::Written => return Ok(Some(outcome)),
                Cas::Gone => return Ok(None),
                Cas::Conflict => continue,
            }
        }
        Err(StoreError::Contended)
    }

    pub async fn create(&self) -> Result<SessionId, StoreError> {
        self.within_deadline(self.backend.create()).await
    }

    /// The current state; counts as use.
    pub async fn get(&self, id: &SessionId) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.session(id).await?.map(|(snapshot, _)| snapshot))
    }

    /// The current state and the read-only token; counts as use.
    pub async fn session(&self, id: &SessionId) -> Result<Option<(Snapshot, ReadToken)>, StoreError> {
        self.within_deadline(self.backend.get(id)).await
    }

    pub async fn by_token(&self, token: &ReadToken) -> Result<Option<(SessionId, Snapshot)>, StoreError> {
        self.within_deadline(self.backend.by_token(token)).await
    }

    pub async fn peek(&self, ids: &[SessionId]) -> Result<Vec<Option<Snapshot>>, StoreError> {
        self.within_deadline(self.backend.peek(ids)).await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.within_deadline(self.backend.ping()).await
    }

    pub fn session_count(&self) -> Option<usize> {
        self.backend.session_count()
    }

    pub fn sweep_expired(&self) -> usize {
        self.backend.sweep_expired()
    }

    pub fn durable_commits(&self) -> Option<DurableCommits> {
        self.backend.durable_commits()
    }

    async fn within_deadline<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if self.backend.in_process() {
            return call.await;
        }
        tokio::time::timeout(STORE_DEADLINE, call).await.unwrap_or_else(|_| Err(deadline_passed()))
    }
}

fn deadline_passed() -> StoreError {
    StoreError::Unavailable(format!("no answer within {STORE_DEADLINE:?}"))
}

/// What an edit does to `before`, by the seed's callbacks
/// ([`Snapshot::apply`]), and the snapshot to store, if any.
pub(super) fn decide(before: Snapshot, edit: Edit) -> (Outcome, Option<Snapshot>) {
    match before.apply(edit) {
        Ok(Some(after)) => (Outcome::Changed(after), Some(after)),
        Ok(None) => (Outcome::Unchanged(before), None),
        Err(refusal) => (Outcome::Refused(refusal, before), None),
    }
}

/// Ids are random, so any of their bytes spreads sessions evenly.
fn stripe(id: &SessionId) -> usize {
    let bytes = id.as_str().as_bytes();
    let mixed = bytes[..4].iter().fold(0usize, |acc, &b| acc.wrapping_mul(64).wrapping_add(usize::from(b)));
    mixed % WRITER_STRIPES
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::session::Weight;
    use crate::session::state::Key;

    fn store() -> SessionStore {
        let ttl = Duration::from_secs(60);
        let limits = StoreLimits { max_sessions: 10, ttl, unchanged_ttl: ttl };
        SessionStore::new(Arc::new(MemoryStore::new(limits)))
    }

    fn edit(value: f64) -> Edit {
        Edit::set(Key::Lbs, value)
    }

    #[tokio::test]
    async fn outcomes() {
        let s = store();
        let id = s.create().await.unwrap();
        assert!(matches!(s.apply(&id, edit(10.0), None).await.unwrap(), Some(Outcome::Changed(_))));
        assert!(matches!(s.apply(&id, edit(10.0), None).await.unwrap(), Some(Outcome::Unchanged(_))));
        let kg = Edit { key: Key::Kg, typed: Weight::new(1e308), step: None };
        let Some(Outcome::Refused(_, snap)) = s.apply(&id, kg, None).await.unwrap() else { panic!() };
        assert_eq!(snap.version, 1);
    }

    #[tokio::test]
    async fn unknown_ids_create_nothing() {
        let s = store();
        assert_eq!(s.apply(&SessionId::random(), edit(1.0), None).await.unwrap(), None);
        assert_eq!(s.session_count(), Some(0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_each_get_a_version() {
        let s = Arc::new(store());
        let id = s.create().await.unwrap();
        let writers = (1..=40).map(|i| {
            let (s, id) = (Arc::clone(&s), id.clone());
            tokio::spawn(async move { s.apply(&id, edit(f64::from(i)), None).await })
        });
        for writer in writers {
            assert!(matches!(writer.await.unwrap().unwrap(), Some(Outcome::Changed(_))));
        }
        assert_eq!(s.get(&id).await.unwrap().unwrap().version, 40);
    }

    #[test]
    fn stripes_are_in_range() {
        for _ in 0..1000 {
            assert!(stripe(&SessionId::random()) < WRITER_STRIPES);
        }
    }
}
