//! What every handler shares.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::http::HeaderValue;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{Notify, watch};

use crate::config::Config;
use crate::error::AppError;
use crate::session::bus::RedisBus;
use crate::session::{
    Backend, DurableStore, FanOut, MemoryStore, OpenError, ReadToken, RedisConfig, RedisStore, SessionId,
    SessionStore, Snapshot, StoreError, StoreLimits, StreamLimits,
};
use crate::telemetry::Metrics;

pub struct AppContext {
    pub config: Config,
    pub store: SessionStore,
    pub fan_out: Arc<FanOut>,
    pub metrics: Arc<Metrics>,
    /// Built once from `FRAME_ANCESTORS`.
    pub content_security_policy: HeaderValue,
    /// Flips to `true` when the server starts shutting down; event streams
    /// watch it so graceful shutdown does not wait for them forever.
    pub shutdown: watch::Receiver<bool>,
    /// Wakes housekeeping to re-read every watched session now, after the
    /// change bus (re)subscribed and may have missed notices.
    pub resync: Arc<Notify>,
    /// Whether this replica hears other replicas' changes; `None` when
    /// there are no other replicas (the in-memory store).
    pub bus_subscribed: Option<Arc<AtomicBool>>,
    /// New sessions per client, so one client looping `GET /` cannot
    /// crowd out everyone else's sessions.
    pub new_sessions: DefaultKeyedRateLimiter<IpAddr>,
    /// Connections open right now.
    pub open_connections: Arc<AtomicUsize>,
}

/// Why the backend `config` asks for cannot be set up.
#[derive(Debug)]
pub enum BackendError {
    /// `REDIS_URL` and `DATA_DIR` both: two stores, which would disagree.
    Both,
    Redis(StoreError),
    DataDir(OpenError),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Both => f.write_str(
                "REDIS_URL (--redis-url) and DATA_DIR (--data-dir) are both set: sessions live in one store, \
                 so choose one (an empty DATA_DIR= switches it off)",
            ),
            Self::Redis(e) => write!(f, "cannot set up the session store: {e}"),
            Self::DataDir(e) => e.fmt(f),
        }
    }
}

/// The backend `config` asks for: Redis with `REDIS_URL`, disk with
/// `DATA_DIR` (never both), else memory.
pub fn backend(config: &Config) -> Result<Arc<dyn Backend>, BackendError> {
    let limits = StoreLimits {
        max_sessions: usize::try_from(config.sessions.max_sessions).unwrap_or(usize::MAX),
        ttl: config.sessions.session_ttl.get(),
        unchanged_ttl: config.sessions.unchanged_session_ttl.get(),
    };
    Ok(match (redis_config(config), config.data_dir()) {
        (Some(_), Some(_)) => return Err(BackendError::Both),
        (Some(redis), None) => Arc::new(RedisStore::new(redis).map_err(BackendError::Redis)?),
        (None, Some(dir)) => Arc::new(DurableStore::open(dir, limits).map_err(BackendError::DataDir)?),
        (None, None) => Arc::new(MemoryStore::new(limits)),
    })
}

fn redis_config(config: &Config) -> Option<RedisConfig> {
    let url = config.storage.redis_url.clone()?;
    Some(RedisConfig {
        url,
        prefix: config.storage.redis_prefix.clone(),
        ttl: config.sessions.session_ttl.get(),
        unchanged_ttl: config.sessions.unchanged_session_ttl.min(config.sessions.session_ttl).get(),
    })
}

impl AppContext {
    /// The context for `config`, on `backend`, and the change bus to run
    /// beside it when other replicas share the store.
    pub fn new(
        config: Config,
        backend: Arc<dyn Backend>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Self, Option<RedisBus>), StoreError> {
        let config_rate = config.sessions.new_sessions_per_minute;
        let fan_out = FanOut::new(StreamLimits {
            writers_per_session: config.streams.max_streams_per_session,
            readers_per_session: config.streams.max_readers_per_session,
            per_client: config.streams.max_streams_per_client,
            total: config.streams.max_streams,
        });
        let bus = match redis_config(&config) {
            Some(redis) => Some(RedisBus { client: redis.client()?, channel: redis.channel() }),
            None => None,
        };
        // FRAME_ANCESTORS is checked when parsed; should a hand-built config
        // still hold something unsendable, fall back to the default.
        let content_security_policy =
            HeaderValue::try_from(content_security_policy(&config.embedding.frame_ancestors))
                .or_else(|_| HeaderValue::try_from(content_security_policy("'self'")))
                .expect("the default policy is a valid header value");
        let ctx = Self {
            config,
            store: SessionStore::new(backend),
            fan_out,
            metrics: Arc::new(Metrics::new()),
            content_security_policy,
            shutdown,
            resync: Arc::new(Notify::new()),
            bus_subscribed: bus.as_ref().map(|_| Arc::new(AtomicBool::new(false))),
            open_connections: Arc::new(AtomicUsize::new(0)),
            new_sessions: RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(config_rate).unwrap_or(NonZeroU32::MIN),
            )),
        };
        Ok((ctx, bus))
    }

    /// The session's current state; an unknown or expired id is a 404.
    pub async fn snapshot(&self, sid: &SessionId) -> Result<Snapshot, AppError> {
        self.store.get(sid).await?.ok_or(AppError::UnknownSession)
    }

    /// The session a read token stands for, and its state; an unknown or
    /// expired token is a 404.
    pub async fn reader(&self, token: &ReadToken) -> Result<(SessionId, Snapshot), AppError> {
        self.store.by_token(token).await?.ok_or(AppError::UnknownSession)
    }

    /// Lets `client` start a session, or says when it may.
    pub fn may_start_session(&self, client: IpAddr) -> Result<(), AppError> {
        self.new_sessions.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::TooManySessions { retry_after_secs: wait.as_secs() + 1 }
        })
    }

    /// A stream opened now would hear other replicas' changes: with Redis,
    /// only while the change bus is subscribed.
    pub fn hears_changes(&self) -> Result<(), AppError> {
        match &self.bus_subscribed {
            Some(up) if !up.load(Ordering::Relaxed) => {
                Err(AppError::Store(StoreError::Unavailable("not subscribed to changes".to_owned())))
            }
            _ => Ok(()),
        }
    }

    /// Ready for traffic: not shutting down, the store answers, and changes
    /// made on other replicas are heard. The reason when not.
    pub async fn readiness(&self) -> Result<(), &'static str> {
        if *self.shutdown.borrow() {
            return Err("shutting down");
        }
        if self.store.ping().await.is_err() {
            return Err("session store unavailable");
        }
        if self.bus_subscribed.as_ref().is_some_and(|up| !up.load(Ordering::Relaxed)) {
            return Err("not subscribed to changes");
        }
        Ok(())
    }
}

pub type Ctx = axum::extract::State<Arc<AppContext>>;

/// No inline script or style and no eval: htmx runs with `allowEval:false`
/// and `includeIndicatorStyles:false`.
fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         worker-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {frame_ancestors}"
    )
}
