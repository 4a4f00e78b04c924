//! Sessions on disk under `DATA_DIR`, in redb: they survive a restart, a
//! crash or a redeploy of a single machine, with no other service.
//!
//! - **Acknowledged means durable.** Every write (a new session, a change)
//!   goes to one writer thread, which commits whatever has queued up
//!   together in one durable transaction: one fsync for many changes. A
//!   caller hears back only after that commit. An edit runs there too, on
//!   the stored snapshot (the same [`decide`] as every backend), so a
//!   change costs one hand-off and no compare-and-set retries.
//! - **Reads never wait for the writer.** They open their own read
//!   transaction (redb's MVCC), from redb's page cache or the file; the
//!   store keeps no copy of the sessions in memory.
//! - **Last use is kept coarsely.** A read that finds a session unused for
//!   [`touch_every`] or more asks the writer to note the use, without an
//!   fsync of its own (it is made durable by the next one, or lost by a
//!   crash). Idle expiry and the session cap use it, so they hold across
//!   restarts, give or take that much.
//! - **Expiry and the cap** work as in memory: two use-ordered indexes,
//!   one of sessions never changed (which expire sooner and go first) and
//!   one of the rest.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redb::{
    Database, DatabaseError, Durability, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use tokio::sync::oneshot;

use super::{Backend, Cas, DurableCommits, Outcome, StoreError, StoreLimits, Swap, decide};
use crate::session::id::{ReadToken, SessionId};
use crate::session::state::{Edit, Key, Snapshot, State};

/// sid → the encoded [`Record`].
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// read token → sid.
const TOKENS: TableDefinition<&str, &str> = TableDefinition::new("tokens");
/// (last use in ms, sid) of sessions never changed, and of the others.
const UNCHANGED_BY_USE: TableDefinition<(u64, &str), ()> = TableDefinition::new("unchanged_by_use");
const CHANGED_BY_USE: TableDefinition<(u64, &str), ()> = TableDefinition::new("changed_by_use");

/// Room the writer checks for before it says writes work again.
const PROBE: TableDefinition<&str, &[u8]> = TableDefinition::new("probe");
const PROBE_BYTES: usize = 64 * 1024;

/// redb's page cache: what memory the store may keep of the file, however
/// many sessions it holds (redb's default is 1 GiB).
const CACHE: usize = 16 * 1024 * 1024;

/// The file under `DATA_DIR`.
const FILE: &str = "sessions.redb";

/// Writes waiting for the writer at most; past it, a write is refused
/// (503) rather than queued without bound.
const QUEUE: usize = 4096;
/// Writes committed in one transaction at most.
const BATCH: usize = 1024;
/// How often the writer sweeps expired sessions when idle.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How stale a session's stored last use may get: a twentieth of the
/// shorter lifetime, between 1 s and a minute.
pub fn touch_every(limits: &StoreLimits) -> Duration {
    (limits.unchanged_ttl.min(limits.ttl) / 20).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Why `DATA_DIR` cannot be used. Each message names it and the cause.
#[derive(Debug)]
pub enum OpenError {
    NotAFolder(PathBuf),
    CannotCreate(PathBuf, std::io::Error),
    NotWritable(PathBuf, std::io::Error),
    InUse(PathBuf),
    Damaged(PathBuf, String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAFolder(dir) => write!(f, "DATA_DIR {} is not a folder", dir.display()),
            Self::CannotCreate(dir, e) => write!(f, "DATA_DIR {} cannot be created: {e}", dir.display()),
            Self::NotWritable(dir, e) => write!(f, "DATA_DIR {} is not writable: {e}", dir.display()),
            Self::InUse(dir) => {
                write!(f, "DATA_DIR {} is in use by another process (one server per folder)", dir.display())
            }
            Self::Damaged(dir, e) => {
                write!(f, "the session store in DATA_DIR {} is damaged or unreadable: {e}", dir.display())
            }
        }
    }
}

impl std::error::Error for OpenError {}

/// One session as stored: version, last use, read token, values.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    snapshot: Snapshot,
    last_used_ms: u64,
    token: ReadToken,
}

const TOKEN_LEN: usize = 22;
const RECORD_LEN: usize = 8 + 8 + TOKEN_LEN + 8 * Key::ALL.len();

impl Record {
    /// Fixed width, little-endian: version, last use, token, one f64 per
    /// widget in widget order.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECORD_LEN);
        out.extend_from_slice(&self.snapshot.version.to_le_bytes());
        out.extend_from_slice(&self.last_used_ms.to_le_bytes());
        out.extend_from_slice(self.token.as_str().as_bytes());
        for (_, value) in self.snapshot.state.entries() {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("a stored session {what}"));
        if bytes.len() != RECORD_LEN {
            return Err(corrupt("has the wrong length"));
        }
        let word = |at: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            b
        };
        let token = std::str::from_utf8(&bytes[16..16 + TOKEN_LEN])
            .ok()
            .and_then(ReadToken::parse)
            .ok_or_else(|| corrupt("has a malformed token"))?;
        let mut state = State::default();
        for (i, key) in Key::ALL.into_iter().enumerate() {
            let value = f64::from_le_bytes(word(16 + TOKEN_LEN + 8 * i));
            if !value.is_finite() {
                return Err(corrupt("holds a value that is not finite"));
            }
            state[key] = value;
        }
        Ok(Self {
            snapshot: Snapshot { version: u64::from_le_bytes(word(0)), state },
            last_used_ms: u64::from_le_bytes(word(8)),
            token,
        })
    }

    fn changed(&self) -> bool {
        self.snapshot.version > 0
    }

    /// This session at `snapshot`. Its use is noted only when `stale`, as
    /// for reads: most changes then rewrite the record alone.
    fn at(&self, snapshot: Snapshot, now: u64, stale: bool) -> Self {
        let last_used_ms = if stale { now } else { self.last_used_ms };
        Self { snapshot, last_used_ms, token: self.token.clone() }
    }
}

/// What the writer is asked to do.
enum Write {
    Create {
        id: SessionId,
        token: ReadToken,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Cas {
        id: SessionId,
        expected: u64,
        next: Snapshot,
        reply: oneshot::Sender<Result<Cas, StoreError>>,
    },
    /// Run the callbacks on the stored snapshot and store what they give.
    Apply {
        id: SessionId,
        edit: Edit,
        reply: oneshot::Sender<Result<Option<Outcome>, StoreError>>,
    },
    /// Note a use; no reply, no fsync of its own.
    Touch {
        id: SessionId,
    },
    /// A durable commit of [`PROBE_BYTES`], to learn whether writes work
    /// again (after a full disk, say).
    Probe {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// Counters the writer keeps, for `/metrics` and the benchmarks.
#[derive(Default)]
struct DurableStats {
    /// Durable commits, each one fsync.
    commits: AtomicU64,
    /// Changes and new sessions made durable.
    writes: AtomicU64,
}

/// What both the store and its writer thread see.
struct Shared {
    /// `None` while the writer reopens the file after an I/O error (redb
    /// refuses every call on a database that had one).
    db: RwLock<Option<Arc<Database>>>,
    file: PathBuf,
    limits: StoreLimits,
    sessions: AtomicUsize,
    /// False after a failed commit, until one succeeds.
    healthy: AtomicBool,
    /// Set by a failed commit: the writer must reopen the file first.
    needs_reopen: AtomicBool,
    expired_since_asked: AtomicUsize,
    stats: DurableStats,
    clock: WallClock,
}

pub struct DurableStore {
    shared: Arc<Shared>,
    writes: mpsc::SyncSender<Write>,
}

/// The sessions table, as a read or a write transaction opens it.
trait SessionsTable: ReadableTable<&'static str, &'static [u8]> {}
impl<T: ReadableTable<&'static str, &'static [u8]>> SessionsTable for T {}

/// The record of `id` in `sessions`, expired or not.
fn record_in(sessions: &impl SessionsTable, id: &str) -> Result<Option<Record>, StoreError> {
    let Some(bytes) = sessions.get(id).map_err(unavailable)? else { return Ok(None) };
    Record::decode(bytes.value()).map(Some)
}

/// What the store stamps uses with: milliseconds since the Unix epoch, so
/// that a stamp means the same after a restart (a monotonic clock would
/// not). Tests move it on instead of sleeping through a lifetime.
#[derive(Clone)]
pub struct WallClock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl WallClock {
    pub fn system() -> Self {
        Self::new(system_ms)
    }

    pub fn new(now_ms: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(now_ms))
    }

    fn now_ms(&self) -> u64 {
        (self.0)()
    }
}

fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unavailable(e: impl fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("the session store on disk failed: {e}"))
}

impl Shared {
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        let slot = self.db.read().unwrap_or_else(|e| e.into_inner());
        slot.clone().ok_or_else(|| StoreError::Unavailable("the session store is reopening".to_owned()))
    }

    /// Whether [`PROBE_BYTES`] can be written and synced in `DATA_DIR` now.
    fn room(&self) -> bool {
        let probe = self.file.with_file_name(".room");
        let written = std::fs::File::create(&probe).and_then(|mut file| {
            std::io::Write::write_all(&mut file, &[0; PROBE_BYTES])?;
            file.sync_all()
        });
        let _ = std::fs::remove_file(&probe);
        written.is_ok()
    }

    /// After an I/O error: closes the file and opens it again, once every
    /// reader has let go of it. False while that cannot happen yet.
    fn reopen(&self) -> bool {
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        if let Some(db) = slot.take()
            && let Err(db) = Arc::try_unwrap(db)
        {
            *slot = Some(db);
            return false;
        }
        match Database::builder().set_cache_size(CACHE).create(&self.file) {
            Ok(db) => {
                *slot = Some(Arc::new(db));
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reopen the session store yet");
                false
            }
        }
    }

    fn ttl_ms(&self, changed: bool) -> u64 {
        if changed { ms(self.limits.ttl) } else { ms(self.limits.unchanged_ttl.min(self.limits.ttl)) }
    }

    fn expired(&self, record: &Record, now: u64) -> bool {
        record.last_used_ms.saturating_add(self.ttl_ms(record.changed())) <= now
    }

    /// The live record of `id` in `sessions` (of a read or a write
    /// transaction), if any.
    fn live(&self, sessions: &impl SessionsTable, id: &str, now: u64) -> Result<Option<Record>, StoreError> {
        Ok(record_in(sessions, id)?.filter(|record| !self.expired(record, now)))
    }

    /// Whether `record`'s stored last use is stale enough to note a new one.
    fn stale(&self, record: &Record, now: u64) -> bool {
        now.saturating_sub(record.last_used_ms) >= ms(touch_every(&self.limits))
    }
}

impl DurableStore {
    /// Opens (or creates) the store in `dir`, and starts its writer thread.
    pub fn open(dir: &Path, limits: StoreLimits) -> Result<Self, OpenError> {
        Self::open_with_clock(dir, limits, WallClock::system())
    }

    pub fn open_with_clock(dir: &Path, limits: StoreLimits, clock: WallClock) -> Result<Self, OpenError> {
        let dir = dir.to_path_buf();
        if dir.exists() && !dir.is_dir() {
            return Err(OpenError::NotAFolder(dir));
        }
        std::fs::create_dir_all(&dir).map_err(|e| OpenError::CannotCreate(dir.clone(), e))?;
        let probe = dir.join(".write-test");
        std::fs::write(&probe, b"").map_err(|e| OpenError::NotWritable(dir.clone(), e))?;
        let _ = std::fs::remove_file(&probe);
        let db = Database::builder().set_cache_size(CACHE).create(dir.join(FILE)).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => OpenError::InUse(dir.clone()),
            other => OpenError::Damaged(dir.clone(), other.to_string()),
        })?;
        let damaged = |e: &dyn fmt::Display| OpenError::Damaged(dir.clone(), e.to_string());
        // Create the tables, so reads find them; count what is there.
        let txn = db.begin_write().map_err(|e| damaged(&e))?;
        let sessions = {
            let table = txn.open_table(SESSIONS).map_err(|e| damaged(&e))?;
            txn.open_table(TOKENS).map_err(|e| damaged(&e))?;
            txn.open_table(UNCHANGED_BY_USE).map_err(|e| damaged(&e))?;
            txn.open_table(CHANGED_BY_USE).map_err(|e| damaged(&e))?;
            table.len().map_err(|e| damaged(&e))?
        };
        txn.commit().map_err(|e| damaged(&e))?;
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            file: dir.join(FILE),
            limits,
            sessions: AtomicUsize::new(usize::try_from(sessions).unwrap_or(usize::MAX)),
            healthy: AtomicBool::new(true),
            needs_reopen: AtomicBool::new(false),
            expired_since_asked: AtomicUsize::new(0),
            stats: DurableStats::default(),
            clock,
        });
        let (writes, queue) = mpsc::sync_channel(QUEUE);
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("session-writer".to_owned())
            .spawn(move || write_loop(&writer, &queue))
            .map_err(|e| OpenError::CannotCreate(dir.clone(), e))?;
        Ok(Self { shared, writes })
    }

    /// Hands `write` to the writer; refuses (503) when its queue is full.
    fn send(&self, write: Write) -> Result<(), StoreError> {
        self.writes.try_send(write).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => StoreError::Unavailable("too many writes queued".to_owned()),
            mpsc::TrySendError::Disconnected(_) => {
                StoreError::Unavailable("the writer has stopped".to_owned())
            }
        })
    }

    async fn ask<T>(
        &self,
        write: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Write,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(write(reply))?;
        answer.await.unwrap_or_else(|_| Err(StoreError::Unavailable("the writer has stopped".to_owned())))
    }

    /// `id`'s live record, noting the use when the stored one is stale.
    fn read_and_touch(&self, txn: &ReadTransaction, id: &SessionId) -> Result<Option<Record>, StoreError> {
        let now = self.shared.clock.now_ms();
        let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
        let record = self.shared.live(&sessions, id.as_str(), now)?;
        if let Some(record) = &record
            && self.shared.stale(record, now)
        {
            // Best effort: a full queue only delays the note.
            let _ = self.send(Write::Touch { id: id.clone() });
        }
        Ok(record)
    }

    fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        self.shared.db()?.begin_read().map_err(unavailable)
    }
}

#[async_trait]
impl Backend for DurableStore {
    async fn create(&self) -> Result<SessionId, StoreError> {
        let id = SessionId::random();
        let token = ReadToken::random();
        let sid = id.clone();
        self.ask(|reply| Write::Create { id: sid, token, reply }).await?;
        Ok(id)
    }

    async fn get(&self, id: &SessionId) -> Result<Option<(Snapshot, ReadToken)>, StoreError> {
        let txn = self.begin_read()?;
        Ok(self.read_and_touch(&txn, id)?.map(|r| (r.snapshot, r.token)))
    }

    async fn by_token(&self, token: &ReadToken) -> Result<Option<(SessionId, Snapshot)>, StoreError> {
        let txn = self.begin_read()?;
        let sid = {
            let tokens = txn.open_table(TOKENS).map_err(unavailable)?;
            let Some(sid) = tokens.get(token.as_str()).map_err(unavailable)? else { return Ok(None) };
            SessionId::parse(sid.value())
                .ok_or_else(|| StoreError::Corrupt("a malformed session id".into()))?
        };
        Ok(self.read_and_touch(&txn, &sid)?.map(|r| (sid, r.snapshot)))
    }

    async fn compare_and_set(&self, id: &SessionId, swap: Swap<'_>) -> Result<Cas, StoreError> {
        let Swap { expected, next, .. } = swap;
        // One process per DATA_DIR: the routes publish to its views.
        self.ask(|reply| Write::Cas { id: id.clone(), expected, next, reply }).await
    }

    async fn apply_in_writer(
        &self,
        id: &SessionId,
        edit: Edit,
    ) -> Option<Result<Option<Outcome>, StoreError>> {
        Some(self.ask(|reply| Write::Apply { id: id.clone(), edit, reply }).await)
    }

    async fn peek(&self, ids: &[SessionId]) -> Result<Vec<Option<Snapshot>>, StoreError> {
        let txn = self.begin_read()?;
        let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
        let now = self.shared.clock.now_ms();
        ids.iter().map(|id| Ok(self.shared.live(&sessions, id.as_str(), now)?.map(|r| r.snapshot))).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.shared.healthy.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.ask(|reply| Write::Probe { reply }).await
    }

    fn session_count(&self) -> Option<usize> {
        Some(self.shared.sessions.load(Ordering::Relaxed))
    }

    fn durable_commits(&self) -> Option<DurableCommits> {
        let stats = &self.shared.stats;
        Some(DurableCommits {
            commits: stats.commits.load(Ordering::Relaxed),
            writes: stats.writes.load(Ordering::Relaxed),
        })
    }

    /// The writer sweeps by itself; this reports how many went since asked.
    fn sweep_expired(&self) -> usize {
        self.shared.expired_since_asked.swap(0, Ordering::Relaxed)
    }
}

// ------------------------------------------------------------ the writer

fn write_loop(shared: &Shared, queue: &mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(BATCH);
    // Noted uses and sweeps are committed without an fsync; they are made
    // durable with the next write, or at the latest this much later.
    let flush_every = touch_every(&shared.limits);
    let mut unflushed_since: Option<std::time::Instant> = None;
    loop {
        let stopping = match queue.recv_timeout(SWEEP_EVERY) {
            Ok(first) => {
                batch.push(first);
                false
            }
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => true,
        };
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        // After a failed write redb takes no more until it is reopened; the
        // old handle keeps serving reads meanwhile. Reopen only once there
        // is room again (a full disk), or the new open would fail too.
        if shared.needs_reopen.load(Ordering::Relaxed) {
            if !(shared.room() && shared.reopen()) {
                let down = StoreError::Unavailable("the session store cannot write now".to_owned());
                refuse(batch.drain(..), &down);
                if stopping {
                    return;
                }
                continue;
            }
            shared.needs_reopen.store(false, Ordering::Relaxed);
        }
        let flush = stopping || unflushed_since.is_some_and(|since| since.elapsed() >= flush_every);
        match commit(shared, &mut batch, flush) {
            Some(true) => unflushed_since = None,
            Some(false) => {
                unflushed_since.get_or_insert_with(std::time::Instant::now);
            }
            None => {}
        }
        if stopping {
            return;
        }
    }
}

/// Answers each of `writes` with `error`.
fn refuse(writes: impl Iterator<Item = Write>, error: &StoreError) {
    for write in writes {
        match write {
            Write::Create { reply, .. } | Write::Probe { reply } => {
                let _ = reply.send(Err(error.clone()));
            }
            Write::Cas { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Write::Apply { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Write::Touch { .. } => {}
        }
    }
}

/// What one write in a batch will answer, once the batch is durable.
enum Pending {
    Created(oneshot::Sender<Result<(), StoreError>>),
    Cas(oneshot::Sender<Result<Cas, StoreError>>, Cas),
    Applied(oneshot::Sender<Result<Option<Outcome>, StoreError>>, Option<Outcome>),
    Probe(oneshot::Sender<Result<(), StoreError>>),
}

/// Applies `batch` (and a sweep) in one transaction, durable if anyone
/// waits on it or `flush` says so, and then answers everyone. Returns
/// whether the commit was durable, `None` if it failed.
fn commit(shared: &Shared, batch: &mut Vec<Write>, flush: bool) -> Option<bool> {
    let mut writes = batch.drain(..);
    let mut tally = Tally::with_capacity(writes.len());
    let result = apply_batch(shared, &mut writes, &mut tally, flush);
    match &result {
        Ok(_) => {
            shared.healthy.store(true, Ordering::Relaxed);
            let count = shared.sessions.load(Ordering::Relaxed) + tally.created - tally.removed;
            shared.sessions.store(count, Ordering::Relaxed);
            shared.expired_since_asked.fetch_add(tally.expired, Ordering::Relaxed);
            shared.stats.writes.fetch_add(tally.written(), Ordering::Relaxed);
        }
        Err(e) => {
            shared.healthy.store(false, Ordering::Relaxed);
            shared.needs_reopen.store(true, Ordering::Relaxed);
            tracing::error!(error = %e, "a write to the session store failed");
            // The writes after the one that failed get its error too.
            refuse(writes, e);
        }
    }
    tally.answer(result.as_ref().map(|_| ()).map_err(Clone::clone));
    result.ok()
}

/// What a batch did, and whom it answers once its commit is over.
struct Tally {
    pending: Vec<Pending>,
    created: usize,
    /// Evicted or expired.
    removed: usize,
    expired: usize,
}

impl Tally {
    fn with_capacity(writes: usize) -> Self {
        Self { pending: Vec::with_capacity(writes), created: 0, removed: 0, expired: 0 }
    }

    /// New sessions and changes, made durable by the commit.
    fn written(&self) -> u64 {
        let writes = self.pending.iter().filter(|p| {
            matches!(
                p,
                Pending::Created(_)
                    | Pending::Cas(_, Cas::Written)
                    | Pending::Applied(_, Some(Outcome::Changed(_)))
            )
        });
        writes.count() as u64
    }

    fn answer(self, committed: Result<(), StoreError>) {
        for answer in self.pending {
            match answer {
                Pending::Created(reply) | Pending::Probe(reply) => {
                    let _ = reply.send(committed.clone());
                }
                Pending::Cas(reply, outcome) => {
                    let _ = reply.send(committed.clone().map(|()| outcome));
                }
                Pending::Applied(reply, outcome) => {
                    let _ = reply.send(committed.clone().map(|()| outcome));
                }
            }
        }
    }
}

/// Applies `writes` until one fails, then sweeps and commits. Returns
/// whether the commit was durable.
fn apply_batch(
    shared: &Shared,
    writes: &mut impl Iterator<Item = Write>,
    tally: &mut Tally,
    flush: bool,
) -> Result<bool, StoreError> {
    let mut txn = shared.db()?.begin_write().map_err(unavailable)?;
    // No quick repair: it doubles the fsyncs per commit (two-phase), and
    // the full check after a crash is quick at the sizes this app keeps
    // (see BENCHMARKS.md).
    txn.set_quick_repair(false);
    let now = shared.clock.now_ms();
    for write in writes {
        apply_write(shared, &txn, now, write, tally)?;
    }
    tally.expired = sweep(shared, &txn, now)?;
    tally.removed += tally.expired;
    // Only what someone waits on needs an fsync; a sweep or a noted use
    // rides along with the next durable commit.
    let durable = flush || !tally.pending.is_empty();
    if !durable {
        txn.set_durability(Durability::None).map_err(unavailable)?;
    }
    txn.commit().map_err(unavailable)?;
    if durable {
        shared.stats.commits.fetch_add(1, Ordering::Relaxed);
    }
    Ok(durable)
}

/// One write, in the batch's transaction; its answer waits in `tally`.
fn apply_write(
    shared: &Shared,
    txn: &WriteTransaction,
    now: u64,
    write: Write,
    tally: &mut Tally,
) -> Result<(), StoreError> {
    let live =
        |id: &SessionId| shared.live(&txn.open_table(SESSIONS).map_err(unavailable)?, id.as_str(), now);
    // The record after a change, its use noted if the stored one is stale.
    let changed = |before: &Record, next: Snapshot| before.at(next, now, shared.stale(before, now));
    match write {
        Write::Create { id, token, reply } => {
            while shared.sessions.load(Ordering::Relaxed) + tally.created - tally.removed
                >= shared.limits.max_sessions.max(1)
            {
                if !evict_one(txn)? {
                    break;
                }
                tally.removed += 1;
            }
            let record = Record { snapshot: Snapshot::new(), last_used_ms: now, token };
            put(txn, &id, &record, None)?;
            let mut tokens = txn.open_table(TOKENS).map_err(unavailable)?;
            tokens.insert(record.token.as_str(), id.as_str()).map_err(unavailable)?;
            tally.created += 1;
            tally.pending.push(Pending::Created(reply));
        }
        Write::Cas { id, expected, next, reply } => {
            let outcome = match live(&id)? {
                Some(before) if before.snapshot.version == expected => {
                    put(txn, &id, &changed(&before, next), Some(&before))?;
                    Cas::Written
                }
                Some(_) => Cas::Conflict,
                None => Cas::Gone,
            };
            tally.pending.push(Pending::Cas(reply, outcome));
        }
        Write::Apply { id, edit, reply } => {
            let outcome = match live(&id)? {
                Some(before) => {
                    let (outcome, next) = decide(before.snapshot, edit);
                    if let Some(next) = next {
                        put(txn, &id, &changed(&before, next), Some(&before))?;
                    }
                    Some(outcome)
                }
                None => None,
            };
            tally.pending.push(Pending::Applied(reply, outcome));
        }
        Write::Touch { id } => {
            if let Some(before) = live(&id)? {
                put(txn, &id, &before.at(before.snapshot, now, true), Some(&before))?;
            }
        }
        Write::Probe { reply } => {
            let room = vec![0; PROBE_BYTES];
            let mut probe = txn.open_table(PROBE).map_err(unavailable)?;
            probe.insert("room", room.as_slice()).map_err(unavailable)?;
            tally.pending.push(Pending::Probe(reply));
        }
    }
    Ok(())
}

fn by_use(changed: bool) -> TableDefinition<'static, (u64, &'static str), ()> {
    if changed { CHANGED_BY_USE } else { UNCHANGED_BY_USE }
}

/// Stores `record` for `id`, moving its place in the use indexes if that
/// changed.
fn put(
    txn: &WriteTransaction,
    id: &SessionId,
    record: &Record,
    before: Option<&Record>,
) -> Result<(), StoreError> {
    let same_place = |b: &&Record| b.last_used_ms == record.last_used_ms && b.changed() == record.changed();
    if before.filter(same_place).is_some() {
        let mut sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
        sessions.insert(id.as_str(), record.encode().as_slice()).map_err(unavailable)?;
        return Ok(());
    }
    if let Some(before) = before {
        txn.open_table(by_use(before.changed()))
            .map_err(unavailable)?
            .remove((before.last_used_ms, id.as_str()))
            .map_err(unavailable)?;
    }
    txn.open_table(by_use(record.changed()))
        .map_err(unavailable)?
        .insert((record.last_used_ms, id.as_str()), ())
        .map_err(unavailable)?;
    txn.open_table(SESSIONS)
        .map_err(unavailable)?
        .insert(id.as_str(), record.encode().as_slice())
        .map_err(unavailable)?;
    Ok(())
}

fn remove(txn: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    let bytes = txn
        .open_table(SESSIONS)
        .map_err(unavailable)?
        .remove(id)
        .map_err(unavailable)?
        .map(|b| b.value().to_vec());
    if let Some(bytes) = bytes {
        let record = Record::decode(&bytes)?;
        txn.open_table(TOKENS).map_err(unavailable)?.remove(record.token.as_str()).map_err(unavailable)?;
        txn.open_table(by_use(record.changed()))
            .map_err(unavailable)?
            .remove((record.last_used_ms, id))
            .map_err(unavailable)?;
    }
    Ok(())
}

/// The least recently used session of `index`, if any.
fn oldest(
    txn: &WriteTransaction,
    index: TableDefinition<(u64, &str), ()>,
) -> Result<Option<(u64, String)>, StoreError> {
    let table = txn.open_table(index).map_err(unavailable)?;
    let first = table.first().map_err(unavailable)?;
    Ok(first.map(|(key, _)| {
        let (last_used, id) = key.value();
        (last_used, id.to_owned())
    }))
}

/// Makes room: the least recently used unchanged session, else the least
/// recently used of all. False when there is nothing to evict.
fn evict_one(txn: &WriteTransaction) -> Result<bool, StoreError> {
    for index in [UNCHANGED_BY_USE, CHANGED_BY_USE] {
        if let Some((_, id)) = oldest(txn, index)? {
            remove(txn, &id)?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes every session idle past its lifetime; returns how many.
fn sweep(shared: &Shared, txn: &WriteTransaction, now: u64) -> Result<usize, StoreError> {
    let mut gone = 0;
    for changed in [false, true] {
        let ttl = shared.ttl_ms(changed);
        while let Some((last_used, id)) = oldest(txn, by_use(changed))? {
            if last_used.saturating_add(ttl) > now {
                break;
            }
            remove(txn, &id)?;
            gone += 1;
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::store::swap;

    fn limits(max_sessions: usize, ttl: Duration) -> StoreLimits {
        StoreLimits { max_sessions, ttl, unchanged_ttl: ttl }
    }

    /// A folder for the store to make, in a temporary one removed afterwards.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let parent = tempfile::Builder::new().prefix("wc-durable-").tempdir().unwrap();
        let path = parent.path().join("data");
        (parent, path)
    }

    #[test]
    fn records_round_trip_and_refuse_garbage() {
        let snapshot = Snapshot::new().then_set(Key::Lbs, 10.0);
        let record = Record { snapshot, last_used_ms: 1_234, token: ReadToken::random() };
        let bytes = record.encode();
        assert_eq!(bytes.len(), RECORD_LEN);
        assert_eq!(Record::decode(&bytes).unwrap(), record);
        assert!(matches!(Record::decode(&bytes[1..]), Err(StoreError::Corrupt(_))));
        let mut infinite = bytes.clone();
        infinite[RECORD_LEN - 8..].copy_from_slice(&f64::INFINITY.to_le_bytes());
        assert!(matches!(Record::decode(&infinite), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn stored_uses_are_at_most_a_twentieth_of_a_lifetime_stale() {
        assert_eq!(touch_every(&limits(1, Duration::from_secs(86_400))), Duration::from_secs(60));
        assert_eq!(touch_every(&limits(1, Duration::from_secs(100))), Duration::from_secs(5));
        assert_eq!(touch_every(&limits(1, Duration::from_secs(2))), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn sessions_tokens_and_versions_survive_reopening() {
        let (_parent, dir) = scratch();
        let (sid, token) = {
            let store = DurableStore::open(&dir, limits(10, Duration::from_secs(3600))).unwrap();
            let sid = store.create().await.unwrap();
            let (before, token) = store.get(&sid).await.unwrap().unwrap();
            let next = before.then_set(Key::Kg, 1.0);
            assert_eq!(swap(&store, &sid, 0, next).await, Cas::Written);
            assert_eq!(swap(&store, &sid, 0, next).await, Cas::Conflict);
            let committed = store.durable_commits().unwrap();
            assert_eq!(committed.writes, 2, "the new session and one change");
            assert!(committed.commits >= 1 && committed.commits <= 3, "{committed:?}");
            (sid, token)
        };
        let reopened = reopen(&dir, limits(10, Duration::from_secs(3600)), WallClock::system());
        let (snapshot, again) = reopened.get(&sid).await.unwrap().unwrap();
        assert_eq!((snapshot.version, snapshot.state[Key::Kg], &again), (1, 1.0, &token));
        assert_eq!(reopened.by_token(&token).await.unwrap().map(|(id, _)| id), Some(sid));
        assert_eq!(reopened.session_count(), Some(1));
    }

    /// Opens the store in `dir` once the last one's writer has let go of it.
    fn reopen(dir: &Path, limits: StoreLimits, clock: WallClock) -> DurableStore {
        loop {
            match DurableStore::open_with_clock(dir, limits, clock.clone()) {
                Ok(store) => break store,
                Err(OpenError::InUse(_)) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// The stamps are wall-clock time, so a lifetime runs on while the
    /// store is closed; a noted use survives closing it.
    #[tokio::test]
    async fn lifetimes_and_noted_uses_hold_across_reopening() {
        let (_parent, dir) = scratch();
        let lifetime = limits(10, Duration::from_secs(2));
        let ahead = Arc::new(AtomicU64::new(0));
        let clock = {
            let ahead = Arc::clone(&ahead);
            WallClock::new(move || system_ms() + ahead.load(Ordering::Relaxed))
        };
        let (changed, unchanged) = {
            let store = reopen(&dir, lifetime, clock.clone());
            let (changed, unchanged) = (store.create().await.unwrap(), store.create().await.unwrap());
            let next = Snapshot::new().then_set(Key::Lbs, 5.0);
            assert_eq!(swap(&store, &changed, 0, next).await, Cas::Written);
            (changed, unchanged)
        };
        // Three quarters of a lifetime after each use, the sessions are
        // there, and reading them notes a use. (The clock moves once the
        // last store's writer has let go, so that it notes uses at the
        // time they were made.)
        for later in [1_500, 3_000] {
            let store = reopen(&dir, lifetime, clock.clone());
            ahead.store(later, Ordering::Relaxed);
            assert!(store.get(&changed).await.unwrap().is_some(), "{later} ms on");
            assert!(store.get(&unchanged).await.unwrap().is_some(), "{later} ms on");
        }
        // Past a lifetime after the last use, they are gone.
        let store = reopen(&dir, lifetime, clock);
        ahead.store(3_000 + 2_001, Ordering::Relaxed);
        assert_eq!(store.get(&changed).await.unwrap(), None, "an expired session came back");
        assert_eq!(store.get(&unchanged).await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_cap_evicts_unchanged_sessions_first() {
        let (_parent, dir) = scratch();
        let store = DurableStore::open(&dir, limits(2, Duration::from_secs(3600))).unwrap();
        let changed = store.create().await.unwrap();
        let next = Snapshot::new().then_set(Key::Lbs, 1.0);
        assert_eq!(swap(&store, &changed, 0, next).await, Cas::Written);
        let first = store.create().await.unwrap();
        let second = store.create().await.unwrap();
        assert_eq!(store.session_count(), Some(2));
        assert!(
            store.get(&changed).await.unwrap().is_some(),
            "a changed session went before an unchanged one"
        );
        assert!(store.get(&first).await.unwrap().is_none());
        assert!(store.get(&second).await.unwrap().is_some());
    }

    #[test]
    fn a_file_is_not_a_data_dir() {
        let (_parent, dir) = scratch();
        std::fs::write(&dir, b"x").unwrap();
        let e = DurableStore::open(&dir, limits(1, Duration::from_secs(1))).err().expect("refused");
        assert!(matches!(e, OpenError::NotAFolder(_)), "{e}");
        assert!(e.to_string().starts_with("DATA_DIR "), "{e}");
    }
}
