//! Fragments for other sites' pages: self-contained, with absolute URLs,
//! and live through their own event stream.
//!
//! A page that embeds both the converter and the state dump loads the
//! dump with `?stream=shared`: it then has no stream of its own and is
//! kept live by the converter's, whose events swap it by id.

use maud::{Markup, html};

use crate::session::{Key, Snapshot, ViewId};

use super::page::sse_sink;
use super::readonly::outputs;
use super::widgets::{FieldContent, widget};
use super::{Links, dump};

/// A live wrapper: the stylesheet, the content and the stream.
fn live(base: &str, events: String, view: Option<&ViewId>, content: Markup) -> Markup {
    html! {
        div.wc-embed hx-ext="sse" sse-connect=(events)
            data-view=[view.map(ViewId::as_str)] {
            link rel="stylesheet" href=(Links::stylesheet(base));
            (content)
        }
    }
}

/// `/s/{sid}/fragments/converter`: both inputs, writable.
pub fn converter_fragment(base: &str, links: &Links, view: &ViewId, snapshot: &Snapshot) -> Markup {
    let content = html! {
        div.columns {
            (widget(links, view, Key::Lbs, &FieldContent::Value(snapshot.state[Key::Lbs]), snapshot))
            div.spacer {}
            (widget(links, view, Key::Kg, &FieldContent::Value(snapshot.state[Key::Kg]), snapshot))
        }
        (sse_sink())
    };
    live(base, links.events(Some(view)), Some(view), content)
}

/// `/v/{token}/fragments/converter`: both values, read-only.
pub fn outputs_fragment(base: &str, links: &Links, snapshot: &Snapshot) -> Markup {
    let content = html! { (outputs(snapshot)) (sse_sink()) };
    live(base, links.events(None), None, content)
}

/// `…/fragments/state`: the dump, with its own stream unless another
/// fragment on the page already has one.
pub fn state_fragment(base: &str, links: &Links, snapshot: &Snapshot, own_stream: bool) -> Markup {
    if !own_stream {
        return dump(snapshot, None, false);
    }
    let content = html! { (dump(snapshot, None, false)) (sse_sink()) };
    live(base, links.events(None), None, content)
}
