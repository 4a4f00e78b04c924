//! One number input per widget, as Streamlit draws it: a label, the field,
//! and − / + buttons, plus a message line for refused input.

use std::fmt;

use maud::{Markup, Render, html};

use crate::i18n::Texts;
use crate::session::number::TwoDecimals;
use crate::session::{Key, Snapshot, ViewId};

use super::Links;

/// Where a piece of markup goes.
///
/// In a whole view its elements get ids of that view, so labels and
/// descriptions point at the right field however many views (pages,
/// embeds of one or several sessions) share a document. An update (a
/// response to a change, a stream event) carries no ids: it is the same
/// for every view of a session, and `app.js` applies it to each view by
/// the elements' `data-part` names.
#[derive(Clone, Copy)]
pub enum Placement<'a> {
    InView(&'a ViewId),
    Update,
}

impl<'a> Placement<'a> {
    fn id(self, part: Part) -> Option<ElementId<'a>> {
        match self {
            Self::InView(view) => Some(ElementId { view, part }),
            Self::Update => None,
        }
    }
}

/// What an element shows, named the same in every view: the key of a
/// field (`lbs`), of its message line (`lbs-msg`), or of its hint
/// (`lbs-hint`, which only `app.js` fills, so no update carries it).
#[derive(Clone, Copy)]
pub enum Part {
    Field(Key),
    Message(Key),
    Hint(Key),
}

impl Render for Part {
    fn render_to(&self, buffer: &mut String) {
        match self {
            Self::Field(key) => buffer.push_str(key.as_str()),
            Self::Message(key) => {
                buffer.push_str(key.as_str());
                buffer.push_str("-msg");
            }
            Self::Hint(key) => {
                buffer.push_str(key.as_str());
                buffer.push_str("-hint");
            }
        }
    }
}

/// `wc-{view}-lbs`, `wc-{view}-lbs-msg`.
#[derive(Clone, Copy)]
pub struct ElementId<'a> {
    view: &'a ViewId,
    part: Part,
}

/// Rendered as is: ids are made of our own ASCII names and a view id
/// (base64url), nothing to escape.
impl Render for ElementId<'_> {
    fn render_to(&self, buffer: &mut String) {
        buffer.push_str("wc-");
        buffer.push_str(self.view.as_str());
        buffer.push('-');
        self.part.render_to(buffer);
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

/// The text field alone: a spin button, as − / + and ArrowUp / ArrowDown
/// step it, with its value for assistive technology.
pub fn input(key: Key, content: &FieldContent, version: u64, place: Placement) -> Markup {
    let (now, typed) = match content {
        FieldContent::Value(value) => (Some(TwoDecimals(*value)), None),
        FieldContent::Refused { text, .. } => (None, Some(*text)),
    };
    let described_by = place
        .id(Part::Message(key))
        .zip(place.id(Part::Hint(key)))
        .map(|(message, hint)| html! { (message) " " (hint) });
    html! {
        input id=[place.id(Part::Field(key))] data-part=(Part::Field(key)) name=(key.as_str())
            type="text" inputmode="decimal" autocomplete="off" spellcheck="false" value=(content)
            role="spinbutton" aria-valuenow=[now] aria-valuetext=[typed]
            aria-describedby=[described_by] aria-invalid=[content.message().is_some().then_some("true")]
            data-version=(version);
    }
}

/// The message line under a field; empty when all is well. `version` is
/// the state it goes with; `None` for a failure that belongs to no state
/// (the store was down), which the page always shows.
pub fn message(key: Key, content: &FieldContent, version: Option<u64>, place: Placement) -> Markup {
    html! {
        p.message id=[place.id(Part::Message(key))] data-part=(Part::Message(key)) role="alert"
            data-version=[version] {
            @if let Some(message) = content.message() { (message) }
        }
    }
}

/// A widget's value, shown and never editable (the read-only view).
pub fn output(key: Key, snapshot: &Snapshot, place: Placement) -> Markup {
    html! {
        // Not a live region of its own, as <output> would be: the view's
        // announcer says what changed, once.
        output id=[place.id(Part::Field(key))] data-part=(Part::Field(key)) data-version=(snapshot.version)
            aria-live="off" {
            (TwoDecimals(snapshot.state[key]))
        }
    }
}

/// The label of a field or an output in `view`.
pub fn label(t: &Texts, key: Key, view: &ViewId) -> Markup {
    html! { label for=(ElementId { view, part: Part::Field(key) }) { (t.field(key).label) } }
}

/// A whole widget: a plain HTML form that htmx enhances, so it also works
/// without JavaScript.
pub fn widget(
    t: &Texts,
    links: &Links,
    view: &ViewId,
    key: Key,
    content: &FieldContent,
    snapshot: &Snapshot,
) -> Markup {
    let words = t.field(key);
    let action = links.widget(key);
    let place = Placement::InView(view);
    html! {
        form.widget method="post" action=(action) hx-post=(action) hx-trigger="change, submit"
            hx-swap="none" {
            (label(t, key, view))
            div.number-input {
                (input(key, content, snapshot.version, place))
                // Enter submits with the first submit button: a plain "set",
                // never a step. Hidden, so it is no Tab stop and says nothing.
                button.set type="submit" hidden {}
                // In the Tab order: without JavaScript, ArrowUp / ArrowDown
                // do not step, and these are a keyboard's only way to.
                button.step type="submit" name="step" value="down" aria-label=(words.decrease) { "−" }
                button.step type="submit" name="step" value="up" aria-label=(words.increase) { "+" }
            }
            (message(key, content, Some(snapshot.version), place))
            p.hint id=[place.id(Part::Hint(key))] data-hint=(t.field_notes.press_enter) {}
            input type="hidden" name="view" value=(view.as_str());
        }
    }
}
