//! Sessions: the state and its callbacks, ids, storage and fan-out.

pub mod fanout;
pub mod id;
pub mod number;
pub mod state;
pub mod store;

pub use fanout::{Audience, Busy, FanOut, Frame, StreamLimits, Subscription};
pub use id::{ReadToken, SessionId, ViewId};
pub use state::{Edit, Key, Refusal, Snapshot, State, Step, WIDGETS};
pub use store::{MemoryStore, Outcome, SessionStore, StoreError, StoreLimits};

use std::sync::Arc;
use std::time::Duration;

/// Periodically drops sessions idle past their TTL, so memory follows
/// live use even when nobody touches the expired ones again.
pub async fn sweeper(store: Arc<dyn SessionStore>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        store.sweep_expired();
    }
}
