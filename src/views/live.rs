//! The element around every live view (a page, an embedded fragment).
//!
//! `app.js` finds these by `data-wc-watch`, watches every session they
//! name on the browser's one event stream (`data-wc-events`), and applies
//! each update to the parts inside the view it is for. A view that can
//! write names itself (`data-view`), so it can skip the echo of its own
//! change. Its status line says when it is not live.

use maud::{Markup, html};

use crate::i18n::Texts;
use crate::session::ViewId;

use super::Links;

/// Which element holds the view.
#[derive(Clone, Copy)]
pub enum Holder {
    /// The page's `<main>`.
    Page,
    /// A fragment's `<div>`, with the stylesheet it needs on another site.
    Embed,
}

pub fn live_view(
    t: &Texts,
    holder: Holder,
    links: &Links,
    writer: Option<&ViewId>,
    content: Markup,
) -> Markup {
    let view = writer.map(ViewId::as_str);
    match holder {
        Holder::Page => html! {
            main.app data-wc-watch=(links.watch()) data-wc-events=(links.events()) data-view=[view] {
                (status(t, links, "")) (announcer(t)) (content)
            }
        },
        Holder::Embed => html! {
            div.wc-embed data-wc-watch=(links.watch()) data-wc-events=(links.events()) data-view=[view] {
                link rel="stylesheet" href=(links.stylesheet());
                // Until app.js says otherwise: a host page that loads no
                // app.js (an older snippet) shows a fragment that never
                // updates, and it must not look live.
                (status(t, links, t.live.connecting)) (announcer(t)) (content)
            }
        },
    }
}

/// Empty while the view is live. The words for the other cases are here,
/// with the rest of the markup's words, for `app.js` to show.
fn status(t: &Texts, links: &Links, initially: &str) -> Markup {
    html! {
        p.wc-status role="status" data-wc-status
            data-reconnecting=(t.live.reconnecting)
            data-gone=(t.live.session_ended)
            data-restart=(t.live.new_session)
            data-restart-href=(links.new_session()) { (initially) }
    }
}

/// Where `app.js` says, once, what another view changed. On the page from
/// the start and never replaced, so screen readers announce what it says.
fn announcer(t: &Texts) -> Markup {
    html! {
        p.visually-hidden aria-live="polite" data-wc-announce data-prefix=(t.live.changed_elsewhere) {}
    }
}
