//! One number input per widget, as Streamlit draws it: a label, the field,
//! and − / + buttons, plus a message line for refused input.

use std::fmt;

use maud::{Markup, Render, html};

use crate::session::number::TwoDecimals;
use crate::session::{Key, Snapshot, ViewId};

use super::Links;

/// Element ids, prefixed so fragments can be embedded in other pages:
/// `wc-lbs` for the field, `wc-lbs-msg` for its message.
#[derive(Clone, Copy)]
pub struct ElementId {
    key: Key,
    suffix: &'static str,
}

pub fn input_id(key: Key) -> ElementId {
    ElementId { key, suffix: "" }
}

pub fn message_id(key: Key) -> ElementId {
    ElementId { key, suffix: "-msg" }
}

/// Rendered as is: ids are made of our own ASCII names, nothing to escape.
impl Render for ElementId {
    fn render_to(&self, buffer: &mut String) {
        buffer.push_str("wc-");
        buffer.push_str(self.key.as_str());
        buffer.push_str(self.suffix);
    }
}

/// What a field shows: the stored value, or the refused text with why.
pub enum FieldContent<'a> {
    Value(f64),
    Refused { text: &'a str, message: &'a str },
}

impl FieldContent<'_> {
    fn message(&self) -> Option<&str> {
        match self {
            Self::Value(_) => None,
            Self::Refused { message, .. } => Some(message),
        }
    }
}

/// The field's text: the value with two decimals, or what was typed.
impl fmt::Display for FieldContent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(value) => TwoDecimals(*value).fmt(f),
            Self::Refused { text, .. } => f.write_str(text),
        }
    }
}

/// The text field alone. `oob` marks it for an out-of-band swap.
pub fn input(key: Key, content: &FieldContent, version: u64, oob: bool) -> Markup {
    let invalid = content.message().is_some();
    html! {
        input id=(input_id(key)) name=(key.as_str()) type="text" inputmode="decimal"
            autocomplete="off" spellcheck="false" value=(content)
            aria-describedby=(message_id(key)) aria-invalid=[invalid.then_some("true")]
            data-version=(version) hx-swap-oob=[oob.then_some("true")];
    }
}

/// The message line under a field; empty when all is well. `version` is
/// the state it goes with; `None` for a failure that belongs to no state
/// (the store was down), which the page always shows.
pub fn message(key: Key, content: &FieldContent, version: Option<u64>, oob: bool) -> Markup {
    html! {
        p.message id=(message_id(key)) role="alert" data-version=[version]
            hx-swap-oob=[oob.then_some("true")] {
            @if let Some(message) = content.message() { (message) }
        }
    }
}

/// A whole widget: a plain HTML form that htmx enhances, so it also works
/// without JavaScript.
pub fn widget(links: &Links, view: &ViewId, key: Key, content: &FieldContent, snapshot: &Snapshot) -> Markup {
    let widget = key.widget();
    let action = links.widget(key);
    let name = widget.label.trim_end_matches(':');
    html! {
        form.widget method="post" action=(action) hx-post=(action) hx-trigger="change, submit"
            hx-swap="none" {
            label for=(input_id(key)) { (widget.label) }
            div.number-input {
                (input(key, content, snapshot.version, false))
                // Enter submits with the first submit button: a plain "set",
                // never a step.
                button.set type="submit" { "Set" }
                button.step type="submit" name="step" value="down" aria-label={ "Decrease " (name) } { "−" }
                button.step type="submit" name="step" value="up" aria-label={ "Increase " (name) } { "+" }
            }
            (message(key, content, Some(snapshot.version), false))
            input type="hidden" name="view" value=(view.as_str());
        }
    }
}
