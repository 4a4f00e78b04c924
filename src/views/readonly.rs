//! The read-only view (`/v/{token}`): the same page, live, with outputs
//! instead of inputs and no forms, so nothing on it can change the state.

use maud::{Markup, html};

use crate::i18n::Texts;
use crate::session::{Key, Snapshot, ViewId};

use super::live::{Holder, live_view};
use super::page::{TITLE, captioned_dump, layout};
use super::widgets::{Placement, label, output};
use super::{Links, dump};

/// Both values side by side, in the page's 2:1:2 columns. `ids` names
/// this view's elements; a reader never writes, so it has no view id.
pub fn outputs(t: &Texts, snapshot: &Snapshot, ids: &ViewId) -> Markup {
    html! {
        div.columns.readonly {
            @for (i, key) in Key::ALL.into_iter().enumerate() {
                @if i > 0 { div.spacer {} }
                div.widget {
                    (label(t, key, ids))
                    (output(key, snapshot, Placement::InView(ids)))
                }
            }
        }
    }
}

pub fn reader_page(t: &Texts, links: &Links, snapshot: &Snapshot) -> Markup {
    let body = html! {
        h1 { (TITLE) }
        p.share { (t.share.notice) }
        h2 { (t.input) }
        (outputs(t, snapshot, &ViewId::random()))
        h2 { (t.output) }
        (captioned_dump(t, snapshot))
    };
    layout(t, TITLE, live_view(t, Holder::Page, links, None, body))
}

/// One server-sent event for read-only views: values and the dump.
pub fn reader_event(snapshot: &Snapshot) -> Markup {
    html! {
        @for key in Key::ALL { (output(key, snapshot, Placement::Update)) }
        (dump(snapshot, None))
    }
}
