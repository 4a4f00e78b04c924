//! Whole pages.

use maud::{DOCTYPE, Markup, html};

use crate::assets;
use crate::i18n::{Lang, Texts, fill};
use crate::session::{Key, Snapshot, ViewId};

use super::live::{Holder, live_view};
use super::widgets::{FieldContent, widget};
use super::{Links, dump};

/// htmx's settings. CSP-clean (no eval, no inline styles). Every answer
/// to a change, refusals and errors too, is applied by `app.js` to the
/// view that sent it, so htmx swaps nothing itself (`hx-swap="none"`). A
/// refusal (422) is an answer, not an error to log. `responseHandling`
/// replaces the whole default list, so the defaults are restated.
const HTMX_CONFIG: &str = r#"{"allowEval":false,"allowScriptTags":false,"includeIndicatorStyles":false,"historyCacheSize":0,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"422","swap":false},{"code":"[45]..","swap":false,"error":true}]}"#;

pub(super) fn layout(t: &Texts, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(t.tag) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) }
                link rel="stylesheet" href=(assets::APP_CSS.url());
                script src=(assets::HTMX.url()) defer {}
                script src=(assets::APP_JS.url()) defer {}
            }
            body {
                (language_switch(t))
                (body)
            }
        }
    }
}

/// A link to this same address in every other language; the choice is
/// remembered in a cookie.
fn language_switch(t: &Texts) -> Markup {
    html! {
        nav.languages aria-label=(t.languages) {
            @for other in Lang::ALL.into_iter().map(Lang::texts).filter(|o| o.tag != t.tag) {
                a href={ "?lang=" (other.tag) } lang=(other.tag) hreflang=(other.tag) { (other.name) }
            }
        }
    }
}

/// The dump under its caption, which names it.
pub(super) fn captioned_dump(t: &Texts, snapshot: &Snapshot) -> Markup {
    html! {
        figure.dump {
            figcaption { (t.state_object) }
            (dump(snapshot, None))
        }
    }
}

/// Refused input to show again, beside its field.
pub struct Refused<'a> {
    pub key: Key,
    pub text: &'a str,
    pub message: &'a str,
}

/// The tutorial's page, live.
pub fn converter_page(
    t: &Texts,
    links: &Links,
    read_link: &str,
    view: &ViewId,
    snapshot: &Snapshot,
    refused: Option<Refused>,
) -> Markup {
    let content = |key: Key| match &refused {
        Some(r) if r.key == key => FieldContent::Refused { text: r.text, message: r.message },
        _ => FieldContent::Value(snapshot.state[key]),
    };
    let body = html! {
        h1 { (TITLE) }
        h2 { (t.input) }
        div.columns {
            (widget(t, links, view, Key::Lbs, &content(Key::Lbs), snapshot))
            div.spacer {}
            (widget(t, links, view, Key::Kg, &content(Key::Kg), snapshot))
        }
        h2 { (t.output) }
        (captioned_dump(t, snapshot))
        p.share {
            (t.share.prompt) " " a href=(read_link) { (t.share.link) }
        }
    };
    // Without JavaScript a refusal is a page of its own: its title says so.
    let title = match refused {
        Some(_) => fill(t.error_title, "title", TITLE),
        None => TITLE.to_owned(),
    };
    layout(t, &title, live_view(t, Holder::Page, links, Some(view), body))
}

/// The page's title, as the tutorial's `st.title`: it is code, the same
/// in every language.
pub(super) const TITLE: &str = "st.session_state";

/// A page for a status other than 200, with a way back to a fresh session.
pub fn error_page(t: &Texts, title: &str, message: &str) -> Markup {
    let body = html! {
        main.app.error {
            h1 { (title) }
            p { (message) }
            p { a href="/" { (t.live.new_session) } }
        }
    };
    layout(t, title, body)
}
