//! What one committed widget form says, decoded from its body by one pure
//! function, so that the route, its tests and the fuzzer read it alike.

use std::borrow::Cow;
use std::fmt;

use super::id::ViewId;
use super::number::{NumberError, parse_number};
use super::state::{Edit, Key, Step};

/// A form that is not one our pages send: a client bug, never a typo (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// No field named after the widget's key. An *empty* field is fine: it
    /// commits the default, as in Streamlit.
    MissingValue,
    /// `step` is neither `up` nor `down`.
    BadStep,
}

impl FormError {
    pub fn message(self) -> &'static str {
        match self {
            Self::MissingValue => "The form has no value for this field.",
            Self::BadStep => "step must be up or down.",
        }
    }
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// The fields of `POST /s/{sid}/widgets/{key}`. The first of each name
/// counts; unknown names are ignored, as browsers may add some.
#[derive(Debug, PartialEq)]
pub struct WidgetForm<'a> {
    pub key: Key,
    /// What the field held, as typed: shown again if it is refused.
    pub text: Cow<'a, str>,
    pub step: Option<Step>,
    /// The view that sent it, so its own change is not echoed back to it.
    /// A malformed one is dropped: it only costs that view an echo.
    pub view: Option<ViewId>,
}

impl<'a> WidgetForm<'a> {
    pub fn decode(key: Key, body: &'a [u8]) -> Result<Self, FormError> {
        let (mut text, mut step, mut view) = (None, None, None);
        for (name, value) in form_urlencoded::parse(body) {
            let slot = match &*name {
                name if name == key.as_str() => &mut text,
                "step" => &mut step,
                "view" => &mut view,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        let step = match step.as_deref() {
            None => None,
            Some("up") => Some(Step::Up),
            Some("down") => Some(Step::Down),
            Some(_) => return Err(FormError::BadStep),
        };
        Ok(Self {
            key,
            text: text.ok_or(FormError::MissingValue)?,
            step,
            view: view.and_then(|view| ViewId::parse(&view)),
        })
    }

    /// The edit the user made, or why what they typed is not a number.
    pub fn edit(&self) -> Result<Edit, NumberError> {
        Ok(Edit { key: self.key, typed: parse_number(&self.text)?, step: self.step })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Key::{Kg, Lbs};
    use crate::session::Weight;

    #[test]
    fn reads_what_the_page_sends() {
        let form = WidgetForm::decode(Lbs, b"lbs=10&step=up&view=AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(form.text, "10");
        assert_eq!(form.step, Some(Step::Up));
        assert_eq!(form.edit(), Ok(Edit { key: Lbs, typed: Weight::new(10.0), step: Some(Step::Up) }));
        assert!(form.view.is_some());
    }

    #[test]
    fn the_first_field_of_a_name_counts() {
        let form = WidgetForm::decode(Kg, b"lbs=1&kg=%202.5&kg=9").unwrap();
        assert_eq!(form.text, " 2.5");
        assert_eq!(form.edit(), Ok(Edit { key: Kg, typed: Weight::new(2.5), step: None }));
    }

    #[test]
    fn an_empty_field_commits_the_default_but_a_missing_one_is_an_error() {
        assert_eq!(WidgetForm::decode(Lbs, b"lbs=").unwrap().edit().unwrap().typed, None);
        assert_eq!(WidgetForm::decode(Lbs, b"kg=1"), Err(FormError::MissingValue));
        assert_eq!(WidgetForm::decode(Lbs, b""), Err(FormError::MissingValue));
    }

    #[test]
    fn refuses_unknown_steps_and_drops_malformed_views() {
        assert_eq!(WidgetForm::decode(Lbs, b"lbs=1&step=sideways"), Err(FormError::BadStep));
        assert_eq!(WidgetForm::decode(Lbs, b"lbs=1&view=%3Cscript%3E").unwrap().view, None);
    }

    #[test]
    fn what_is_not_a_number_is_kept_as_typed_for_the_message() {
        let form = WidgetForm::decode(Lbs, b"lbs=ten%20%E2%9C%93").unwrap();
        assert_eq!(form.text, "ten \u{2713}");
        assert_eq!(form.edit(), Err(NumberError::NotANumber));
    }
}
