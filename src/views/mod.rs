//! All markup, rendered with maud. Pure functions: no I/O here.

pub mod dump;
pub mod page;
pub mod widgets;

pub use dump::dump;
pub use page::{converter_page, error_page};

use maud::{Markup, html};

use crate::session::{Key, SessionId, Snapshot, ViewId};
use widgets::{FieldContent, input, message};

/// The URLs a session's markup points at.
pub struct Links<'a> {
    /// Empty for same-origin links, or `https://host` for embedding.
    pub base: &'a str,
    pub sid: &'a SessionId,
}

impl Links<'_> {
    pub fn page(&self) -> String {
        format!("{}/s/{}", self.base, self.sid.as_str())
    }

    pub fn widget(&self, key: Key) -> String {
        format!("{}/widgets/{key}", self.page())
    }

    pub fn events(&self, view: &ViewId) -> String {
        format!("{}/events?view={}", self.page(), view.as_str())
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
            (message(key, &FieldContent::Value(snapshot.state[key]), snapshot.version, true))
        }
        (dump(snapshot, None, true))
    }
}

/// The answer to refused input: the field as typed, with why.
pub fn refusal_response(snapshot: &Snapshot, key: Key, text: &str, why: &str) -> Markup {
    let content = FieldContent::Refused { text, message: why };
    html! {
        (input(key, &content, snapshot.version, true))
        (message(key, &content, snapshot.version, true))
    }
}

/// One server-sent event for views that can write: every field and the
/// dump, swapped out of band.
pub fn writer_event(snapshot: &Snapshot, origin: Option<&ViewId>) -> Markup {
    html! {
        @for key in Key::ALL {
            (input(key, &FieldContent::Value(snapshot.state[key]), snapshot.version, true))
        }
        (dump(snapshot, origin, true))
    }
}
