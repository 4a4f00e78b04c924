//! What every handler shares.

use std::sync::Arc;

use axum::http::HeaderValue;
use tokio::sync::watch;

use crate::config::Config;
use crate::error::AppError;
use crate::routes::content_security_policy;
use crate::session::{
    FanOut, MemoryStore, ReadToken, SessionId, SessionStore, Snapshot, StoreLimits, StreamLimits,
};
use crate::telemetry::Metrics;

pub struct AppContext {
    pub config: Config,
    pub store: Arc<dyn SessionStore>,
    pub fan_out: Arc<FanOut>,
    pub metrics: Metrics,
    /// Built once from `FRAME_ANCESTORS`.
    pub content_security_policy: HeaderValue,
    /// Flips to `true` when the server starts shutting down; event streams
    /// watch it so graceful shutdown does not wait for them forever.
    pub shutdown: watch::Receiver<bool>,
}

impl AppContext {
    /// The in-memory set-up, with the store and fan-out sized by `config`.
    pub fn in_memory(config: Config, shutdown: watch::Receiver<bool>) -> Self {
        let store = MemoryStore::new(StoreLimits {
            max_sessions: usize::try_from(config.max_sessions).unwrap_or(usize::MAX),
            ttl: config.session_ttl,
        });
        let fan_out = FanOut::new(StreamLimits {
            per_session: config.max_streams_per_session,
            total: config.max_streams,
        });
        // FRAME_ANCESTORS is checked when parsed; should a hand-built config
        // still hold something unsendable, fall back to the default.
        let content_security_policy = HeaderValue::try_from(content_security_policy(&config.frame_ancestors))
            .or_else(|_| HeaderValue::try_from(content_security_policy("'self'")))
            .expect("the default policy is a valid header value");
        Self {
            config,
            store: Arc::new(store),
            fan_out,
            metrics: Metrics::new(),
            content_security_policy,
            shutdown,
        }
    }
}

impl AppContext {
    /// The session's current state; an unknown or expired id is a 404.
    pub async fn snapshot(&self, sid: &SessionId) -> Result<Snapshot, AppError> {
        self.store.get(sid).await?.ok_or(AppError::UnknownSession)
    }

    /// The session a read token stands for, and its state; an unknown or
    /// expired token is a 404.
    pub async fn reader(&self, token: &ReadToken) -> Result<(SessionId, Snapshot), AppError> {
        self.store.by_token(token).await?.ok_or(AppError::UnknownSession)
    }
}

pub type Ctx = axum::extract::State<Arc<AppContext>>;
