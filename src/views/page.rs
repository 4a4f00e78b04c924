//! Whole pages.

use maud::{DOCTYPE, Markup, html};

use crate::assets;
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

pub(super) fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) }
                link rel="stylesheet" href=(assets::APP_CSS.url());
                script src=(assets::HTMX.url()) defer {}
                script src=(assets::APP_JS.url()) defer {}
            }
            body { (body) }
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
        h1 { "st.session_state" }
        h2 { "Input" }
        div.columns {
            (widget(links, view, Key::Lbs, &content(Key::Lbs), snapshot))
            div.spacer {}
            (widget(links, view, Key::Kg, &content(Key::Kg), snapshot))
        }
        h2 { "Output" }
        p { "st.session_state object:" }
        (dump(snapshot, None))
        p.share {
            "Share a live, read-only view: " a href=(read_link) { "read-only link" }
        }
    };
    layout("st.session_state", live_view(Holder::Page, links, Some(view), body))
}

/// A page for a status other than 200, with a way back to a fresh session.
pub fn error_page(title: &str, message: &str) -> Markup {
    let body = html! {
        main.app.error {
            h1 { (title) }
            p { (message) }
            p { a href="/" { "Start a new session" } }
        }
    };
    layout(title, body)
}
