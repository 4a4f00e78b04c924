//! The read-only view (`/v/{token}`): the same page, live, with outputs
//! instead of inputs and no forms, so nothing on it can change the state.

use maud::{Markup, html};

use crate::assets;
use crate::session::number::TwoDecimals;
use crate::session::{Key, Snapshot};

use super::page::{layout, sse_sink};
use super::widgets::input_id;
use super::{Links, dump};

/// A widget's value, shown and never editable.
pub fn output(key: Key, snapshot: &Snapshot, oob: bool) -> Markup {
    html! {
        output id=(input_id(key)) data-version=(snapshot.version) hx-swap-oob=[oob.then_some("true")] {
            (TwoDecimals(snapshot.state[key]))
        }
    }
}

/// Both values side by side, in the page's 2:1:2 columns.
pub fn outputs(snapshot: &Snapshot) -> Markup {
    html! {
        div.columns.readonly {
            @for (i, key) in Key::ALL.into_iter().enumerate() {
                @if i > 0 { div.spacer {} }
                div.widget {
                    label for=(input_id(key)) { (key.widget().label) }
                    (output(key, snapshot, false))
                }
            }
        }
    }
}

pub fn reader_page(links: &Links, snapshot: &Snapshot) -> Markup {
    let body = html! {
        main.app hx-ext="sse" sse-connect=(links.events(None))
            data-stream-worker=(assets::STREAM_WORKER.url()) {
            h1 { "st.session_state" }
            p.share { "A live, read-only view." }
            h2 { "Input" }
            (outputs(snapshot))
            h2 { "Output" }
            p { "st.session_state object:" }
            (dump(snapshot, None, false))
            (sse_sink())
        }
    };
    layout("st.session_state", body)
}

/// One server-sent event for read-only views: values and the dump.
pub fn reader_event(snapshot: &Snapshot) -> Markup {
    html! {
        @for key in Key::ALL { (output(key, snapshot, true)) }
        (dump(snapshot, None, true))
    }
}
