//! Fragments for other sites' pages: self-contained, with absolute URLs.
//! Each is a live view of its own; a host page that loads `app.js` keeps
//! all of them live on one event stream, however many sessions they show.

use maud::{Markup, html};

use crate::i18n::Texts;
use crate::session::{Key, Snapshot, ViewId};

use super::live::{Holder, live_view};
use super::readonly::outputs;
use super::widgets::{FieldContent, widget};
use super::{Links, dump};

/// `/s/{sid}/fragments/converter`: both inputs, writable.
pub fn converter_fragment(t: &Texts, links: &Links, view: &ViewId, snapshot: &Snapshot) -> Markup {
    let value = |key: Key| FieldContent::Value(snapshot.state[key]);
    let content = html! {
        div.columns {
            (widget(t, links, view, Key::Lbs, &value(Key::Lbs), snapshot))
            div.spacer {}
            (widget(t, links, view, Key::Kg, &value(Key::Kg), snapshot))
        }
    };
    live_view(t, Holder::Embed, links, Some(view), content)
}

/// `/v/{token}/fragments/converter`: both values, read-only.
pub fn outputs_fragment(t: &Texts, links: &Links, snapshot: &Snapshot) -> Markup {
    live_view(t, Holder::Embed, links, None, outputs(t, snapshot, &ViewId::random()))
}

/// `…/fragments/state`: the dump, named for assistive technology, since
/// the host page says what it is in its own words.
pub fn state_fragment(t: &Texts, links: &Links, snapshot: &Snapshot) -> Markup {
    let content = html! { figure.dump aria-label=(t.state_object) { (dump(snapshot, None)) } };
    live_view(t, Holder::Embed, links, None, content)
}
