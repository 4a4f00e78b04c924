//! `st.write("st.session_state object:", st.session_state)`: the whole
//! state as indented, highlighted JSON, keys in widget order.

use maud::{Markup, html};

use crate::session::number::FullPrecision;
use crate::session::{Snapshot, ViewId};

/// `origin` names the view whose change this is, so that view does not
/// announce its own change as another view's.
pub fn dump(snapshot: &Snapshot, origin: Option<&ViewId>) -> Markup {
    let last = snapshot.state.entries().count().saturating_sub(1);
    html! {
        pre.json data-part="state" data-version=(snapshot.version)
            data-origin=[origin.map(ViewId::as_str)] {
            code {
                "{\n"
                @for (i, (key, value)) in snapshot.state.entries().enumerate() {
                    "  " span.json-key { "\"" (key) "\"" } ": "
                    span.json-number { (FullPrecision(value)) }
                    @if i < last { "," }
                    "\n"
                }
                "}"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Key;

    #[test]
    fn dumps_full_precision_in_widget_order() {
        let html = dump(&Snapshot::new().then_set(Key::Lbs, 10.0), None).into_string();
        let lbs = html.find("lbs").unwrap();
        let kg = html.find("kg").unwrap();
        assert!(lbs < kg);
        assert!(html.contains(">10.0<") && html.contains(">4.5359237<"), "{html}");
        assert!(html.contains("data-version=\"1\""));
    }
}
