//! The seed app as data: two widgets, their callbacks, and what a change does.
//!
//! ```python
//! def lbs_to_kg():
//!   st.session_state.kg = st.session_state.lbs/2.2046
//! def kg_to_lbs():
//!   st.session_state.lbs = st.session_state.kg*2.2046
//! pounds = st.number_input("Pounds:", key = "lbs", on_change = lbs_to_kg)
//! kilogram = st.number_input("Kilograms:", key = "kg", on_change = kg_to_lbs)
//! ```

use std::fmt;
use std::ops::{Index, IndexMut};
use std::str::FromStr;

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::number::{Weight, round2};

/// A state key, one per widget. The discriminant is the widget's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Lbs = 0,
    Kg = 1,
}
use Key::{Kg, Lbs};

/// One `st.number_input`.
pub struct Widget {
    pub key: Key,
    pub label: &'static str,
    pub default: f64,
    pub on_change: fn(&mut State),
}

/// The page, top to bottom. Adding a widget means adding an entry here
/// (and its key above).
pub const WIDGETS: [Widget; 2] = [
    Widget { key: Lbs, label: "Pounds:", default: 0.0, on_change: lbs_to_kg },
    Widget { key: Kg, label: "Kilograms:", default: 0.0, on_change: kg_to_lbs },
];

fn lbs_to_kg(state: &mut State) {
    state[Kg] = pounds_to_kilograms(state[Lbs]);
}

fn kg_to_lbs(state: &mut State) {
    state[Lbs] = kilograms_to_pounds(state[Kg]);
}

/// The international pound, by definition, in kilograms: 0.45359237,
/// kept as an integer over 10^8 so that whole numbers convert exactly.
/// (The tutorial's 2.2046 is a rounded factor.)
const KG_PER_LB_TIMES_1E8: f64 = 45_359_237.0;
const E8: f64 = 100_000_000.0;

/// `10 lb → 4.5359237 kg`, where `10.0 * 0.45359237` would give
/// `4.535923700000001`.
pub fn pounds_to_kilograms(lbs: f64) -> f64 {
    scale(lbs, KG_PER_LB_TIMES_1E8, E8)
}

pub fn kilograms_to_pounds(kg: f64) -> f64 {
    scale(kg, E8, KG_PER_LB_TIMES_1E8)
}

/// `value * num / den`, with a fallback for when only the intermediate
/// product overflows. A result that is still infinite is the caller's to
/// refuse.
fn scale(value: f64, num: f64, den: f64) -> f64 {
    let product = value * num;
    if product.is_finite() { product / den } else { value * (num / den) }
}

impl Key {
    pub const ALL: [Key; WIDGETS.len()] = [Lbs, Kg];

    pub const fn as_str(self) -> &'static str {
        match self {
            Lbs => "lbs",
            Kg => "kg",
        }
    }

    pub fn widget(self) -> &'static Widget {
        &WIDGETS[self as usize]
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Key {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Key::ALL.into_iter().find(|k| k.as_str() == s).ok_or(())
    }
}

/// `st.session_state`: one value per widget, in widget order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State {
    values: [f64; WIDGETS.len()],
}

impl Default for State {
    fn default() -> Self {
        Self { values: WIDGETS.map(|w| w.default) }
    }
}

impl Index<Key> for State {
    type Output = f64;
    fn index(&self, key: Key) -> &f64 {
        &self.values[key as usize]
    }
}

impl IndexMut<Key> for State {
    fn index_mut(&mut self, key: Key) -> &mut f64 {
        &mut self.values[key as usize]
    }
}

impl State {
    /// `(key, value)` in widget order.
    pub fn entries(&self) -> impl Iterator<Item = (Key, f64)> + '_ {
        Key::ALL.into_iter().map(|k| (k, self[k]))
    }
}

/// Serializes as a JSON object in widget order: `{"lbs":0.0,"kg":0.0}`.
impl Serialize for State {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(WIDGETS.len()))?;
        for (key, value) in self.entries() {
            map.serialize_entry(key.as_str(), &value)?;
        }
        map.end()
    }
}

/// The state as of one applied change. Small and `Copy`, so anything that
/// shows state renders from a snapshot, never from a half-applied change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Grows by one with each applied change; 0 for a new session.
    pub version: u64,
    pub state: State,
}

impl Snapshot {
    pub fn new() -> Self {
        Self { version: 0, state: State::default() }
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Self::new()
    }
}

/// A − or + press: ±0.01, rounded to two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Down,
    Up,
}

/// One commit of one widget, as the user made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edit {
    pub key: Key,
    /// What the field held; `None` when it was empty.
    pub typed: Option<Weight>,
    pub step: Option<Step>,
}

/// Why an edit was refused. Nothing changes when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The callback would make this key's value infinite.
    Overflow(Key),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overflow(key) => {
                let label = key.widget().label.trim_end_matches(':');
                write!(f, "Too large: {label} would not be a finite number.")
            }
        }
    }
}

impl Snapshot {
    /// Runs one edit as Streamlit would: store the key, then run its
    /// callback, but only when the value actually changed. Returns the
    /// new snapshot, or `None` when nothing changed.
    pub fn apply(&self, edit: Edit) -> Result<Option<Snapshot>, Refusal> {
        let widget = edit.key.widget();
        let current = self.state[edit.key];
        let typed = edit.typed.map_or(widget.default, Weight::get);
        // The field shows two decimals; submitting what it shows, untouched,
        // is not a change of the full-precision value behind it.
        let shown_untouched = typed == current || typed == round2(current);
        let value = match edit.step {
            None if shown_untouched => return Ok(None),
            None => typed,
            Some(step) => {
                let base = if shown_untouched { current } else { typed };
                round2(match step {
                    Step::Down => base - 0.01,
                    Step::Up => base + 0.01,
                })
            }
        };
        if value == current {
            return Ok(None);
        }
        let mut state = self.state;
        state[edit.key] = value;
        (widget.on_change)(&mut state);
        if let Some((key, _)) = state.entries().find(|(_, v)| !v.is_finite()) {
            return Err(Refusal::Overflow(key));
        }
        Ok(Some(Snapshot { version: self.version + 1, state }))
    }
}

/// What tests across the crate start from.
#[cfg(test)]
impl Edit {
    /// A plain commit of `value` to `key`, as Enter sends it.
    pub fn set(key: Key, value: f64) -> Edit {
        Edit { key, typed: Weight::new(value), step: None }
    }
}

#[cfg(test)]
impl Snapshot {
    /// This snapshot after a plain commit of `value` to `key`, which must
    /// change it.
    pub fn then_set(&self, key: Key, value: f64) -> Snapshot {
        self.apply(Edit::set(key, value)).expect("accepted").expect("changed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_like_the_tutorial() {
        let s = Snapshot::new();
        assert_eq!(serde_json::to_string(&s.state).unwrap(), r#"{"lbs":0.0,"kg":0.0}"#);
    }

    #[test]
    fn converts_with_the_exact_definition() {
        assert_eq!(pounds_to_kilograms(10.0), 4.5359237);
        assert!((kilograms_to_pounds(4.5359237) - 10.0).abs() < 1e-14);
        assert_eq!(pounds_to_kilograms(1.0), 0.45359237);
        assert_eq!(kilograms_to_pounds(0.45359237), 1.0);
        // Only the intermediate overflows: still converted.
        assert!(pounds_to_kilograms(1e305).is_finite());
    }

    #[test]
    fn each_callback_writes_the_other_key() {
        let s = Snapshot::new().then_set(Lbs, 10.0);
        assert_eq!((s.version, s.state[Lbs], s.state[Kg]), (1, 10.0, 4.5359237));
        let s = s.then_set(Kg, 1.0);
        assert_eq!((s.version, s.state[Kg]), (2, 1.0));
        assert!((s.state[Lbs] - 2.2046226218487757).abs() < 1e-12);
    }

    #[test]
    fn no_callback_without_a_change() {
        let s = Snapshot::new().then_set(Lbs, 10.0);
        assert_eq!(s.apply(Edit::set(Lbs, 10.0)), Ok(None));
        // Kilograms shows 4.54; submitting that untouched changes nothing.
        assert_eq!(s.apply(Edit::set(Kg, 4.54)), Ok(None));
        // An empty field commits the default.
        let zero = s.apply(Edit { key: Lbs, typed: None, step: None }).unwrap().unwrap();
        assert_eq!(zero.state, State::default());
    }

    #[test]
    fn steps_round_to_two_decimals() {
        let s = Snapshot::new().then_set(Lbs, 10.0);
        let up = Edit { key: Kg, typed: Weight::new(4.54), step: Some(Step::Up) };
        let s = s.apply(up).unwrap().unwrap();
        assert_eq!(s.state[Kg], 4.55);
        let down = Edit { key: Kg, typed: Weight::new(4.55), step: Some(Step::Down) };
        assert_eq!(s.apply(down).unwrap().unwrap().state[Kg], 4.54);
        // Stepping from what was typed, not from the state.
        let typed = Edit { key: Lbs, typed: Weight::new(3.0), step: Some(Step::Up) };
        assert_eq!(s.apply(typed).unwrap().unwrap().state[Lbs], 3.01);
    }

    #[test]
    fn overflow_is_refused() {
        let s = Snapshot::new();
        assert_eq!(s.apply(Edit::set(Kg, 1e308)), Err(Refusal::Overflow(Lbs)));
        assert!(s.apply(Edit::set(Lbs, 1e308)).unwrap().is_some());
    }

    #[test]
    fn keys_parse_and_print() {
        assert_eq!("kg".parse(), Ok(Kg));
        assert_eq!("lbs".parse(), Ok(Lbs));
        assert!("LBS".parse::<Key>().is_err());
        assert!(WIDGETS.iter().enumerate().all(|(i, w)| w.key as usize == i));
    }
}
