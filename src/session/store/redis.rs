//! Sessions in Redis, shared by every replica started with the same URL.
//!
//! Redis is the authority for the state, the version, the read token and
//! the idle TTL (key expiry, refreshed on use). Per session:
//! - `{prefix}s:{sid}`, a hash: `v` (the version), `t` (the read token) and
//!   one field per widget key;
//! - `{prefix}t:{token}`, the session id, so read-only links resolve.
//!
//! Both keys carry the same expiry and are refreshed together, so an
//! expired session leaves nothing behind. Every write is a Lua script:
//! the compare-and-set checks the version, writes, and PUBLISHes the new
//! state on the change channel in one atomic step (WATCH/MULTI is unsound
//! on a shared multiplexed connection). The scripts derive the token key
//! from the session's own `t` field, so this targets one Redis primary
//! (with replicas or Sentinel), not Redis Cluster.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, RedisError, Script};

use super::{Backend, Cas, StoreError, Swap};
use crate::session::bus::Notice;
use crate::session::id::{ReadToken, SessionId};
use crate::session::number::{format_stored, parse_stored};
use crate::session::state::{Key, Snapshot, State};

/// Where and how to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db` or `redis+unix:///path/to/redis.sock`.
    pub url: String,
    /// Prepended to every key and channel: pub/sub ignores the db number,
    /// so apps sharing one Redis need different prefixes.
    pub prefix: String,
    /// Sessions idle this long expire.
    pub ttl: Duration,
    /// Sessions never changed expire after this much idling instead.
    pub unchanged_ttl: Duration,
}

impl RedisConfig {
    pub fn client(&self) -> Result<Client, StoreError> {
        Client::open(self.url.as_str()).map_err(|e| StoreError::Unavailable(format!("REDIS_URL: {e}")))
    }

    /// The one channel every change is announced on.
    pub fn channel(&self) -> String {
        format!("{}changes", self.prefix)
    }

    fn session_prefix(&self) -> String {
        format!("{}s:", self.prefix)
    }

    fn token_prefix(&self) -> String {
        format!("{}t:", self.prefix)
    }
}

/// Creates a session unless either key exists (ids are random, so that is
/// a safeguard, not a code path). KEYS: session, token. ARGV: ttl in ms,
/// token, sid, then field/value pairs.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', '0', 't', ARGV[2], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[1])
return 1
";

/// Reads a session and refreshes its expiry, unless it was refreshed
/// within the last `slack` ms: a refresh is a write, which the append-only
/// file must sync, so refreshing on every read would cost an fsync per
/// read. A session never changed (version 0) gets the shorter TTL.
/// KEYS: session. ARGV: ttl in ms, unchanged ttl in ms, slack in ms, token
/// key prefix, then the widget fields. Returns `[v, t, values…]` or nil.
const GET: &str = r"
local values = redis.call('HMGET', KEYS[1], 'v', 't', unpack(ARGV, 5))
if not values[1] then return false end
local ttl = values[1] == '0' and ARGV[2] or ARGV[1]
if redis.call('PTTL', KEYS[1]) < tonumber(ttl) - tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', ARGV[4] .. values[2], ttl)
end
return values
";

/// Resolves a read token and refreshes both keys as [`GET`] does. KEYS:
/// token key. ARGV: ttl in ms, unchanged ttl in ms, slack in ms, session
/// key prefix, then the widget fields. Returns `[sid, v, t, values…]` or nil.
const BY_TOKEN: &str = r"
local sid = redis.call('GET', KEYS[1])
if not sid then return false end
local key = ARGV[4] .. sid
local values = redis.call('HMGET', key, 'v', 't', unpack(ARGV, 5))
if not values[1] then return false end
local ttl = values[1] == '0' and ARGV[2] or ARGV[1]
if redis.call('PTTL', key) < tonumber(ttl) - tonumber(ARGV[3]) then
  redis.call('PEXPIRE', key, ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
table.insert(values, 1, sid)
return values
";

/// The compare-and-set: writes only if the version is still the expected
/// one, then refreshes both keys' expiry and announces the change, all in
/// one atomic step. KEYS: session. ARGV: expected version, ttl in ms,
/// token key prefix, channel, notice, then field/value pairs (with `v`).
/// Returns 0 if gone, 1 on a conflict, 2 when written.
const COMPARE_AND_SET: &str = r"
local current = redis.call('HMGET', KEYS[1], 'v', 't')
if not current[1] then return 0 end
if current[1] ~= ARGV[1] then return 1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', ARGV[3] .. current[2], ARGV[2])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 2
";

/// The hash fields behind each widget, in widget order.
const FIELDS: [&str; Key::ALL.len()] = {
    let mut fields = [""; Key::ALL.len()];
    let mut i = 0;
    while i < Key::ALL.len() {
        fields[i] = Key::ALL[i].as_str();
        i += 1;
    }
    fields
};

struct Scripts {
    create: Script,
    get: Script,
    by_token: Script,
    compare_and_set: Script,
}

pub struct RedisStore {
    config: RedisConfig,
    connection: ConnectionManager,
    scripts: Scripts,
    ttl_ms: u64,
    unchanged_ttl_ms: u64,
}

impl RedisStore {
    /// Connects lazily: the server starts (and reports not ready) while
    /// Redis is still down, and the connection comes up when Redis does.
    pub fn new(config: RedisConfig) -> Result<Self, StoreError> {
        let client = config.client()?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            // The default gives up after 6 retries; a replica must come
            // back by itself however long Redis was away.
            .set_number_of_retries(usize::MAX)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, manager)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let scripts = Scripts {
            create: Script::new(CREATE),
            get: Script::new(GET),
            by_token: Script::new(BY_TOKEN),
            compare_and_set: Script::new(COMPARE_AND_SET),
        };
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        let (ttl_ms, unchanged_ttl_ms) = (millis(config.ttl), millis(config.unchanged_ttl.min(config.ttl)));
        Ok(Self { config, connection, scripts, ttl_ms, unchanged_ttl_ms })
    }

    /// How stale a session's expiry may get before a read refreshes it: a
    /// hundredth of the TTL, at most a minute. A session idle for its TTL
    /// may so go up to that much early.
    fn refresh_slack_ms(&self) -> u64 {
        (self.unchanged_ttl_ms / 100).min(60_000)
    }

    /// Runs one of the reading scripts ([`GET`], [`BY_TOKEN`]) on `key`,
    /// with the prefix of the other key it refreshes.
    async fn read(
        &self,
        script: &Script,
        key: String,
        other_prefix: String,
    ) -> Result<Option<Vec<Option<String>>>, StoreError> {
        let mut invocation = script.key(key);
        invocation.arg(self.ttl_ms).arg(self.unchanged_ttl_ms).arg(self.refresh_slack_ms());
        invocation.arg(other_prefix).arg(&FIELDS[..]);
        let mut connection = self.connection.clone();
        call(invocation.invoke_async(&mut connection)).await
    }

    fn session_key(&self, id: &SessionId) -> String {
        format!("{}{}", self.config.session_prefix(), id.as_str())
    }

    fn token_key(&self, token: &ReadToken) -> String {
        format!("{}{}", self.config.token_prefix(), token.as_str())
    }
}

/// Maps the client's errors; the deadline is the caller's
/// ([`STORE_DEADLINE`](super::STORE_DEADLINE)): while reconnecting, the
/// client makes commands wait for the new connection.
async fn call<T>(request: impl Future<Output = Result<T, RedisError>>) -> Result<T, StoreError> {
    request.await.map_err(|e| store_error(&e))
}

fn store_error(e: &RedisError) -> StoreError {
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreError::Corrupt(e.to_string()),
        // Connection trouble, and server refusals such as OOM under
        // `maxmemory`: the client may try again later.
        _ => StoreError::Unavailable(e.to_string()),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

/// `[v, t, values…]` as stored by the scripts above.
fn decode_session(fields: &[Option<String>]) -> Result<(Snapshot, ReadToken), StoreError> {
    let [Some(version), Some(token), values @ ..] = fields else {
        return Err(corrupt("a session hash lacks its version or token"));
    };
    let version = version.parse().map_err(|_| corrupt("a session version is not a number"))?;
    let token = ReadToken::parse(token).ok_or_else(|| corrupt("a read token is malformed"))?;
    let state = decode_state(values)?;
    Ok((Snapshot { version, state }, token))
}

/// One value per widget, in widget order; each a finite number.
pub(crate) fn decode_state<S: AsRef<str>>(values: &[Option<S>]) -> Result<State, StoreError> {
    if values.len() != Key::ALL.len() {
        return Err(corrupt("a session has the wrong number of values"));
    }
    let mut state = State::default();
    for (key, value) in Key::ALL.into_iter().zip(values) {
        let value = value.as_ref().ok_or_else(|| corrupt("a session lacks a value"))?;
        state[key] = parse_stored(value.as_ref()).ok_or_else(|| corrupt("a stored value is not finite"))?;
    }
    Ok(state)
}

/// `v`, then each widget field with its value, as HSET takes them.
fn state_fields(snapshot: &Snapshot) -> Vec<String> {
    let mut fields = vec!["v".to_owned(), snapshot.version.to_string()];
    for (key, value) in snapshot.state.entries() {
        fields.push(key.as_str().to_owned());
        fields.push(format_stored(value));
    }
    fields
}

#[async_trait]
impl Backend for RedisStore {
    async fn get(&self, id: &SessionId) -> Result<Option<(Snapshot, ReadToken)>, StoreError> {
        let reply = self.read(&self.scripts.get, self.session_key(id), self.config.token_prefix()).await?;
        reply.map(|fields| decode_session(&fields)).transpose()
    }

    async fn create(&self) -> Result<SessionId, StoreError> {
        let id = SessionId::random();
        let token = ReadToken::random();
        let initial = Snapshot::new();
        let mut invocation = self.scripts.create.key(self.session_key(&id));
        let ttl = self.unchanged_ttl_ms;
        invocation.key(self.token_key(&token)).arg(ttl).arg(token.as_str()).arg(id.as_str());
        invocation.arg(&state_fields(&initial)[2..]);
        let mut connection = self.connection.clone();
        let created: i64 = call(invocation.invoke_async(&mut connection)).await?;
        if created == 1 {
            Ok(id)
        } else {
            Err(StoreError::Unavailable("a fresh random id was taken; try again".to_owned()))
        }
    }

    async fn by_token(&self, token: &ReadToken) -> Result<Option<(SessionId, Snapshot)>, StoreError> {
        let reply =
            self.read(&self.scripts.by_token, self.token_key(token), self.config.session_prefix()).await?;
        let Some(reply) = reply else { return Ok(None) };
        let [Some(sid), fields @ ..] = reply.as_slice() else {
            return Err(corrupt("a token lookup returned no session id"));
        };
        let sid = SessionId::parse(sid).ok_or_else(|| corrupt("a token points at a malformed id"))?;
        let (snapshot, stored_token) = decode_session(fields)?;
        // A token key left over from another session: treat as unknown.
        Ok((stored_token == *token).then_some((sid, snapshot)))
    }

    async fn compare_and_set(&self, id: &SessionId, swap: Swap<'_>) -> Result<Cas, StoreError> {
        let Swap { expected, next, origin } = swap;
        let notice = Notice { session: id.clone(), snapshot: next, origin: origin.cloned() };
        let mut invocation = self.scripts.compare_and_set.key(self.session_key(id));
        invocation
            .arg(expected)
            .arg(self.ttl_ms)
            .arg(self.config.token_prefix())
            .arg(self.config.channel())
            .arg(notice.encode())
            .arg(state_fields(&next));
        let mut connection = self.connection.clone();
        match call(invocation.invoke_async::<i64>(&mut connection)).await? {
            0 => Ok(Cas::Gone),
            1 => Ok(Cas::Conflict),
            2 => Ok(Cas::Written),
            _ => Err(corrupt("the compare-and-set script answered something unknown")),
        }
    }

    async fn peek(&self, ids: &[SessionId]) -> Result<Vec<Option<Snapshot>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipeline = redis::pipe();
        for id in ids {
            pipeline.cmd("HMGET").arg(self.session_key(id)).arg("v").arg(&FIELDS[..]);
        }
        let mut connection = self.connection.clone();
        let replies: Vec<Vec<Option<String>>> = call(pipeline.query_async(&mut connection)).await?;
        replies
            .iter()
            .map(|fields| match fields.split_first() {
                Some((None, _)) => Ok(None),
                Some((Some(version), values)) => {
                    let version =
                        version.parse().map_err(|_| corrupt("a session version is not a number"))?;
                    Ok(Some(Snapshot { version, state: decode_state(values)? }))
                }
                None => Err(corrupt("HMGET answered nothing")),
            })
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        call(redis::cmd("PING").query_async::<()>(&mut connection)).await
    }

    /// Redis expires keys itself and counting them would scan the keyspace.
    /// Memory is bounded by `maxmemory` with `noeviction` instead.
    fn session_count(&self) -> Option<usize> {
        None
    }

    fn sweep_expired(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Weight;

    #[test]
    fn fields_follow_the_widgets() {
        assert_eq!(FIELDS, ["lbs", "kg"]);
    }

    #[test]
    fn stored_state_round_trips() {
        let snapshot = Snapshot::new()
            .apply(crate::session::Edit { key: Key::Kg, typed: Weight::new(1e-300), step: None })
            .unwrap()
            .unwrap();
        let fields = state_fields(&snapshot);
        assert_eq!(fields[..2], ["v", "1"]);
        let values: Vec<Option<&str>> =
            fields[2..].iter().skip(1).step_by(2).map(|v| Some(v.as_str())).collect();
        assert_eq!(decode_state(&values).unwrap(), snapshot.state);
    }

    #[test]
    fn garbage_is_refused_not_trusted() {
        assert!(decode_state(&[Some("1"), Some("inf")]).is_err());
        assert!(decode_state(&[Some("1"), Some("x")]).is_err());
        assert!(decode_state(&[Some("1")]).is_err());
        assert!(decode_state::<&str>(&[Some("1"), None]).is_err());
        let token = ReadToken::random();
        let ok =
            [Some("3".to_owned()), Some(token.as_str().to_owned()), Some("1e0".into()), Some("2e0".into())];
        assert_eq!(decode_session(&ok).unwrap().0.version, 3);
        let bad_version =
            [Some("x".to_owned()), Some(token.as_str().to_owned()), Some("1".into()), Some("2".into())];
        assert!(decode_session(&bad_version).is_err());
    }
}
