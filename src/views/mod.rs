//! All markup, rendered with maud. Pure functions: no I/O here.

pub mod dump;
pub mod embed;
pub mod live;
pub mod page;
pub mod readonly;
pub mod widgets;

pub use dump::dump;
pub use page::{converter_page, error_page};

use maud::{Markup, html};

use crate::assets;
use crate::session::{Edit, Key, ReadToken, SessionId, Snapshot, ViewId};
use widgets::{FieldContent, Placement, input, message};

/// The URLs a session's markup points at, and how its event stream names it.
pub struct Links {
    /// Empty for same-origin links, or `https://host` for embedding.
    base: String,
    /// `{base}/s/{sid}` or `{base}/v/{token}`.
    root: String,
    /// `s:{sid}` or `v:{token}`: the session as `GET /events` names it.
    watch: String,
}

impl Links {
    /// Links that can write: they carry the session id.
    pub fn writer(base: &str, sid: &SessionId) -> Self {
        Self {
            base: base.to_owned(),
            root: format!("{base}/s/{}", sid.as_str()),
            watch: format!("s:{}", sid.as_str()),
        }
    }

    /// Read-only links: they carry the read token, never the session id.
    pub fn reader(base: &str, token: &ReadToken) -> Self {
        Self {
            base: base.to_owned(),
            root: format!("{base}/v/{}", token.as_str()),
            watch: format!("v:{}", token.as_str()),
        }
    }

    pub fn page(&self) -> &str {
        &self.root
    }

    pub fn widget(&self, key: Key) -> String {
        format!("{}/widgets/{key}", self.root)
    }

    /// The one stream endpoint a browser's views share.
    pub fn events(&self) -> String {
        format!("{}/events", self.base)
    }

    pub fn watch(&self) -> &str {
        &self.watch
    }

    pub fn new_session(&self) -> String {
        format!("{}/", self.base)
    }

    pub fn stylesheet(&self) -> String {
        format!("{}{}", self.base, assets::APP_CSS.url())
    }
}

/// How a field was changed, which decides whether the answer carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangedBy {
    /// Typed and committed: the field holds what the user typed, and is
    /// left alone.
    Typing,
    /// A − / + button: the server made the new value, so the field gets it.
    Step,
}

impl ChangedBy {
    pub fn of(edit: &Edit) -> Self {
        if edit.step.is_some() { Self::Step } else { Self::Typing }
    }
}

/// The answer to a committed change: the *other* fields, the dump, and
/// the changed field's cleared message (and the field itself after a step).
pub fn change_response(snapshot: &Snapshot, changed: Key, by: ChangedBy) -> Markup {
    html! {
        @for key in Key::ALL {
            @if key != changed || by == ChangedBy::Step {
                (input(key, &FieldContent::Value(snapshot.state[key]), snapshot.version, Placement::Update))
            }
            (message(key, &FieldContent::Value(snapshot.state[key]), Some(snapshot.version), Placement::Update))
        }
        (dump(snapshot, None))
    }
}

/// The answer to refused input: the field as typed, with why.
pub fn refusal_response(snapshot: &Snapshot, key: Key, text: &str, why: &str) -> Markup {
    let content = FieldContent::Refused { text, message: why };
    html! {
        (input(key, &content, snapshot.version, Placement::Update))
        (message(key, &content, Some(snapshot.version), Placement::Update))
    }
}

/// The answer to a change that failed for a reason other than the input
/// (the session store is down, the session is gone): the message under
/// the field, and the field left as the user typed it.
pub fn field_error_response(key: Key, why: &str) -> Markup {
    message(key, &FieldContent::Refused { text: "", message: why }, None, Placement::Update)
}

/// One server-sent event for views that can write: every field, its
/// cleared message line (a refusal shown before is stale once the state
/// moved on), and the dump.
pub fn writer_event(snapshot: &Snapshot, origin: Option<&ViewId>) -> Markup {
    html! {
        @for key in Key::ALL {
            (input(key, &FieldContent::Value(snapshot.state[key]), snapshot.version, Placement::Update))
            (message(key, &FieldContent::Value(snapshot.state[key]), Some(snapshot.version), Placement::Update))
        }
        (dump(snapshot, origin))
    }
}
