//! Sessions: the state and its callbacks, ids, storage and fan-out.

pub mod bus;
pub mod fanout;
pub mod form;
pub mod id;
pub mod number;
pub mod state;
pub mod store;

pub use fanout::{Audience, Busy, FanOut, Frame, OpenStream, StreamLimits, Subscription};
pub use form::{FormError, WidgetForm};
pub use id::{ReadToken, SessionId, ViewId};
pub use number::Weight;
pub use state::{Edit, Key, Refusal, Snapshot, State, Step, WIDGETS};
pub use store::{
    Backend, Cas, DurableCommits, DurableStore, MemoryStore, OpenError, Outcome, RedisConfig, RedisStore,
    SessionStore, StoreError, StoreLimits, Swap,
};
