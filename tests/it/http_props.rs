//! Property tests over HTTP, against one real server: no input makes the
//! state non-finite or its JSON invalid, refused input changes nothing,
//! and finite numbers round-trip through the state exactly.

use crate::common;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use common::checks::{LB_IN_KG, check_state_json, form_body, raw_number};
use common::{TestApp, spawn_app_with};
use weight_converter::session::{Key, Snapshot, State, WidgetForm, state};

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// What people type, what they should not, and what nobody would.
fn typed_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[-+ 0-9eE.,_xa-fnNiItTyY]{0,14}",
        any::<f64>().prop_map(|x| format!("{x}")),
        any::<f64>().prop_map(|x| format!("{x:e}")),
        (-400i32..400, any::<u32>()).prop_map(|(exp, mantissa)| format!("{mantissa}e{exp}")),
        prop::sample::select(vec!["NaN", "inf", "-inf", "1e309", "1e308", "-1e308", "", " ", "-0", "+.5e-3"])
            .prop_map(str::to_owned),
        "\\PC{0,16}",
    ]
}

fn state_of(result: Result<(f64, f64), String>) -> Result<(f64, f64), TestCaseError> {
    result.map_err(TestCaseError::fail)
}

/// These properties start a session per case, far more than one client
/// may start in a minute by default.
fn many_sessions() -> weight_converter::Config {
    common::config(&["--new-sessions-per-minute", &u32::MAX.to_string()])
}

#[test]
fn no_input_makes_the_state_non_finite_or_its_json_invalid() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let app: TestApp = rt.block_on(spawn_app_with(many_sessions()));
    let sid = rt.block_on(app.new_session());
    let step = prop::option::of(prop::sample::select(vec!["up", "down"]));
    let strategy = (prop::sample::select(vec!["lbs", "kg"]), typed_text(), step, any::<bool>());
    runner(256)
        .run(&strategy, |(key, text, step, htmx)| {
            rt.block_on(async {
                let before = app.snapshot(&sid).await;
                let mut pairs = vec![(key, text.as_str())];
                if let Some(step) = step {
                    pairs.push(("step", step));
                }
                let reply = app.post_form(&sid, key, &pairs, htmx).await;
                // What the app must answer, from its own rules: refused if
                // the text is no number or the callback would overflow.
                let refused = {
                    let (lbs, kg) = state_of(check_state_json(&before.0))?;
                    let mut snapshot = Snapshot { version: before.1, state: State::default() };
                    (snapshot.state[Key::Lbs], snapshot.state[Key::Kg]) = (lbs, kg);
                    let key = if key == "lbs" { Key::Lbs } else { Key::Kg };
                    let body = form_body(&pairs);
                    let form = WidgetForm::decode(key, body.as_bytes()).expect("a well-formed form");
                    form.edit().map_err(drop).and_then(|edit| snapshot.apply(edit).map_err(drop)).is_err()
                };
                let want = if refused {
                    422
                } else if htmx {
                    200
                } else {
                    303
                };
                prop_assert_eq!(reply.status, want, "{}={:?} step {:?}: {}", key, text, step, reply.body);
                let after = app.snapshot(&sid).await;
                state_of(check_state_json(&after.0))?;
                if reply.status == 422 {
                    prop_assert_eq!(&after, &before, "refused {}={:?} changed the state", key, text);
                }
                Ok(())
            })
        })
        .unwrap();
}

#[test]
fn finite_numbers_round_trip_through_the_state() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let app: TestApp = rt.block_on(spawn_app_with(many_sessions()));
    let number = prop_oneof![
        any::<f64>(),
        -1e6f64..1e6,
        (-1000i64..1000).prop_map(|cents| cents as f64 / 100.0),
        prop::sample::select(vec![
            8.1e307,
            8.2e307,
            -8.2e307,
            f64::MAX * LB_IN_KG,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324
        ]),
    ];
    let strategy = (
        prop::sample::select(vec!["lbs", "kg"]),
        number.prop_filter("finite", |x| x.is_finite()),
        any::<bool>(),
    );
    runner(192)
        .run(&strategy, |(key, x, exponent)| {
            rt.block_on(async {
                // A fresh session each time, so every post is a change.
                let sid = app.new_session().await;
                let text = if exponent { format!("{x:e}") } else { format!("{x}") };
                let reply = app.post_form(&sid, key, &[(key, &text)], true).await;
                let json = app.state_json(&sid).await;
                let (lbs, kg) = state_of(check_state_json(&json))?;
                let other = if key == "lbs" { x * LB_IN_KG } else { x / LB_IN_KG };
                // Pounds never overflow; kilograms do past about 8.15e307.
                // Right at the edge, the conversion's own rounding decides.
                let edge = if key == "lbs" { f64::INFINITY } else { f64::MAX * LB_IN_KG };
                let ratio = x.abs() / edge;
                let overflows =
                    ratio > 1.000_001 || ratio > 0.999_999 && !state::kilograms_to_pounds(x).is_finite();
                if overflows {
                    prop_assert_eq!(reply.status, 422, "{}={}: {}", key, text, reply.body);
                    prop_assert_eq!(json.as_str(), r#"{"lbs":0.0,"kg":0.0}"#);
                    return Ok(());
                }
                prop_assert_eq!(reply.status, 200, "{}={}: {}", key, text, reply.body);
                let (typed, converted) = if key == "lbs" { (lbs, kg) } else { (kg, lbs) };
                // Exactly what was typed, at full precision.
                prop_assert_eq!(typed, x + 0.0, "{}={} stored as {}", key, text, raw_number(&json, key));
                let tolerance = 1e-15 * other.abs() + 1e-300;
                prop_assert!(
                    (converted - other).abs() <= tolerance,
                    "{}={} converted to {}, want about {}",
                    key,
                    text,
                    converted,
                    other
                );
                Ok(())
            })
        })
        .unwrap();
}
