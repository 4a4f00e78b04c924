//! All markup, rendered with maud. Pure functions: no I/O here.

pub mod dump;
pub mod embed;
pub mod page;
pub mod readonly;
pub mod widgets;

pub use dump::dump;
pub use page::{converter_page, error_page};

use maud::{Markup, html};

use crate::assets;
use crate::session::{Key, ReadToken, SessionId, Snapshot, ViewId};
use widgets::{FieldContent, input, message};

/// The URLs a session's markup points at.
pub struct Links {
    /// `{base}/s/{sid}` or `{base}/v/{token}`, where `base` is empty for
    /// same-origin links or `https://host` for embedding.
    root: String,
}

impl Links {
    /// Links that can write: they carry the session id.
    pub fn writer(base: &str, sid: &SessionId) -> Self {
        Self { root: format!("{base}/s/{}", sid.as_str()) }
    }

    /// Read-only links: they carry the read token, never the session id.
    pub fn reader(base: &str, token: &ReadToken) -> Self {
        Self { root: format!("{base}/v/{}", token.as_str()) }
    }

    pub fn page(&self) -> &str {
        &self.root
    }

    pub fn widget(&self, key: Key) -> String {
        format!("{}/widgets/{key}", self.root)
    }

    pub fn events(&self, view: Option<&ViewId>) -> String {
        match view {
            Some(view) => format!("{}/events?view={}", self.root, view.as_str()),
            None => format!("{}/events", self.root),
        }
    }

    pub fn stylesheet(base: &str) -> String {
        format!("{base}{}", assets::APP_CSS.url())
    }
}

/// The answer to a committed change: the *other* fields, the dump, and
/// the changed field's cleared message. The field being typed in is left
/// alone, unless a − / + changed it.
pub fn change_response(snapshot: &Snapshot, changed: Key, stepped: bool) -> Markup {
    html! {
        @for key in Key::ALL {
            @if key != changed || stepped {
                (input(key, &FieldContent::Value(snapshot.state[key]), snapshot.version, true))
            }
            (message(key, &FieldContent::Value(snapshot.state[key]), Some(snapshot.version), true))
        }
        (dump(snapshot, None, true))
    }
}

/// The answer to refused input: the field as typed, with why.
pub fn refusal_response(snapshot: &Snapshot, key: Key, text: &str, why: &str) -> Markup {
    let content = FieldContent::Refused { text, message: why };
    html! {
        (input(key, &content, snapshot.version, true))
        (message(key, &content, Some(snapshot.version), true))
    }
}

/// The answer to a change that failed for a reason other than the input
/// (the session store is down, the session is gone): the message under
/// the field, and the field left as the user typed it.
pub fn field_error_response(key: Key, why: &str) -> Markup {
    message(key, &FieldContent::Refused { text: "", message: why }, None, true)
}

/// One server-sent event for views that can write: every field, its
/// cleared message line (a refusal shown before is stale once the state
/// moved on), and the dump, swapped out of band.
pub fn writer_event(snapshot: &Snapshot, origin: Option<&ViewId>) -> Markup {
    html! {
        @for key in Key::ALL {
            (input(key, &FieldContent::Value(snapshot.state[key]), snapshot.version, true))
            (message(key, &FieldContent::Value(snapshot.state[key]), Some(snapshot.version), true))
        }
        (dump(snapshot, origin, true))
    }
}
