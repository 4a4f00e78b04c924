//! Browser tests: the real server on port 0, driven in headless Chromium
//! through chromedriver. Each test has a browser to itself, in a fresh tab,
//! while it runs; at most two run at once (see `browser_support`).
//!
//! Run: `cargo test --test it browser`. Needs Debian's `chromium` and
//! `chromium-driver` (or `CHROMIUM` / `CHROMEDRIVER`); without them the
//! tests fail, they never skip.

use crate::browser_support;
use crate::common;

use browser_support::{Browser, Options, WAIT, wait_for, with_browser};
use common::TestApp;
use fantoccini::key::Key;
use fantoccini::wd::WindowHandle;
use serde_json::json;

const LBS: &str = "[data-part=lbs]";
const KG: &str = "[data-part=kg]";
const LBS_MSG: &str = "[data-part=lbs-msg]";
const DUMP: &str = "[data-part=state]";
const KG_PLUS: &str = "form:has([data-part=kg]) button[name=step][value=up]";
const KG_MINUS: &str = "form:has([data-part=kg]) button[name=step][value=down]";

/// Console errors a test may cause on purpose: refused input answers 422.
const REFUSAL: &str = "status of 422";

/// Event frames the server rendered, for every audience (writer and
/// reader): each update a view could receive is one.
fn frames_rendered(app: &TestApp) -> u64 {
    app.counter("weight_converter_frames_rendered_total")
}

/// How many widget POSTs the server has answered, from its own metrics.
fn widget_posts(app: &TestApp) -> u64 {
    app.counter(r#"weight_converter_request_duration_seconds_count{route="/s/{sid}/widgets/{key}"}"#)
}

/// The dump's text, with the whitespace of its indentation collapsed.
async fn dump(b: &Browser) -> String {
    b.text(DUMP).await.expect("the state dump").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Waits for a message under Pounds, and returns it.
async fn pounds_message(b: &Browser) -> String {
    wait_for("a message under Pounds", WAIT, || async {
        let text = b.text(LBS_MSG).await?;
        Ok((!text.trim().is_empty()).then_some(text))
    })
    .await
}

async fn assert_no_console_errors(b: &Browser, allowed: &[&str]) {
    let errors = b.console_errors(allowed).await;
    assert!(errors.is_empty(), "the browser console shows errors: {errors:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_pounds_and_enter_converts_to_kilograms() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let (_, sid) = b.open_new_session(&app).await;
        assert_eq!(b.client.title().await.unwrap(), "st.session_state");
        b.wait_value(LBS, "0.00").await;
        b.wait_value(KG, "0.00").await;

        b.commit(LBS, "10").await;
        b.wait_value(KG, "4.54").await;
        b.wait_text_contains(DUMP, "4.5359237").await;
        assert_eq!(dump(&b).await, r#"{ "lbs": 10.0, "kg": 4.5359237 }"#);
        assert_eq!(app.state_json(&sid).await, r#"{"lbs":10.0,"kg":4.5359237}"#);
        // Once accepted, the field typed in shows two decimals, as Streamlit's does.
        b.wait_value(LBS, "10.00").await;
        // Enter fires "change" and "submit"; only one request goes out. A
        // second would follow the first at once; the next commit orders
        // after both, so once it is answered any duplicate was counted.
        b.commit(LBS, "20").await;
        b.wait_value(KG, "9.07").await;
        assert_eq!(widget_posts(&app), 2, "one POST per Enter");
        assert_no_console_errors(&b, &[]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plus_and_minus_on_kilograms_update_pounds() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let (_, sid) = b.open_new_session(&app).await;
        b.commit(LBS, "10").await;
        b.wait_value(KG, "4.54").await;

        // 4.5359237 + 0.01 rounds to 4.55, as in Streamlit.
        b.click(KG_PLUS).await;
        b.wait_value(KG, "4.55").await;
        b.wait_value(LBS, "10.03").await;
        b.wait_text_contains(DUMP, r#""kg": 4.55"#).await;
        assert_eq!(app.state_json(&sid).await, r#"{"lbs":10.03103292941193,"kg":4.55}"#);

        b.click(KG_MINUS).await;
        b.wait_value(KG, "4.54").await;
        b.wait_value(LBS, "10.01").await;
        assert_no_console_errors(&b, &[]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_keys_step_like_the_buttons() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let (_, _sid) = b.open_new_session(&app).await;
        b.commit(LBS, "10").await;
        b.wait_value(KG, "4.54").await;

        b.press(LBS, Key::Up).await;
        b.wait_value(LBS, "10.01").await;
        b.wait_text_contains(DUMP, r#""lbs": 10.01"#).await;
        b.wait_text_contains(DUMP, r#""kg": 4.540459623"#).await;

        b.press(LBS, Key::Down).await;
        b.press(LBS, Key::Down).await;
        b.wait_value(LBS, "9.99").await;
        b.wait_text_contains(DUMP, r#""lbs": 9.99"#).await;
        // The field kept focus through the steps.
        assert_eq!(b.focused_part().await.as_deref(), Some("lbs"));
        assert_no_console_errors(&b, &[]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn letters_show_a_message_and_change_nothing() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let (_, sid) = b.open_new_session(&app).await;
        b.commit(LBS, "10").await;
        b.wait_value(KG, "4.54").await;
        b.wait_text_contains(DUMP, "4.5359237").await;
        let dump_before = dump(&b).await;
        let state_before = app.state_json(&sid).await;
        let frames_before = frames_rendered(&app);
        assert_eq!(b.text(LBS_MSG).await.unwrap(), "");

        b.commit(LBS, "abc").await;
        let message = pounds_message(&b).await;
        assert!(message.contains("number"), "message: {message:?}");
        let invalid = b.find(LBS).await.unwrap().attr("aria-invalid").await.unwrap();
        assert_eq!(invalid.as_deref(), Some("true"));
        // What was typed stays, so it can be corrected; it was committed,
        // so "Press Enter" has gone, once the answer came.
        assert_eq!(b.value(LBS).await.unwrap(), "abc");
        b.wait_htmx_idle().await;
        let hint =
            "return document.querySelector('[data-part=lbs]').form.querySelector('[data-hint]').textContent;";
        assert_eq!(b.js(hint, vec![]).await, json!(""));
        // Even where JavaScript would read it as a number: a refusal is
        // never shown with two decimals.
        let before = widget_posts(&app);
        b.commit(LBS, "0x10").await;
        wait_for("the refusal of 0x10", WAIT, || async { Ok((widget_posts(&app) > before).then_some(())) })
            .await;
        b.wait_htmx_idle().await;
        assert_eq!(b.value(LBS).await.unwrap(), "0x10");

        // Nothing changed, and no update can be on its way: the server
        // rendered no frame for any view since.
        assert_eq!(frames_rendered(&app), frames_before, "an update was sent for a refusal");
        assert_eq!(b.value(KG).await.unwrap(), "4.54");
        assert_eq!(dump(&b).await, dump_before);
        assert_eq!(app.state_json(&sid).await, state_before);

        // Correcting it clears the message.
        b.commit(LBS, "20").await;
        b.wait_value(KG, "9.07").await;
        wait_for("the message to clear", WAIT, || async {
            Ok(b.text(LBS_MSG).await?.trim().is_empty().then_some(()))
        })
        .await;
        assert_no_console_errors(&b, &[REFUSAL]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_the_values() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let (url, _sid) = b.open_new_session(&app).await;
        b.commit(LBS, "10").await;
        b.wait_value(KG, "4.54").await;

        b.client.refresh().await.expect("reload");
        b.wait_htmx().await;
        assert_eq!(b.current_url().await, url);
        b.wait_value(LBS, "10.00").await;
        b.wait_value(KG, "4.54").await;
        b.wait_text_contains(DUMP, "4.5359237").await;

        // A fresh load of the URL (no form state to restore) shows the same.
        b.goto(&url).await;
        b.wait_value(LBS, "10.00").await;
        b.wait_value(KG, "4.54").await;
        assert_no_console_errors(&b, &[]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_the_plain_form_converts() {
    let app = common::spawn_app().await;
    with_browser(Options::without_javascript(), |b| async move {
        b.goto(&app.url("/")).await;
        let url = b.current_url().await;
        assert!(url.starts_with(&app.url("/s/")), "/ should lead to a session, got {url}");
        let sid = url.rsplit('/').next().unwrap().to_owned();
        // Scripts really are off: htmx never ran.
        let htmx = b.js("return typeof window.htmx;", vec![]).await;
        assert_eq!(htmx, json!("undefined"), "JavaScript should be disabled");

        b.commit(LBS, "10").await;
        // Enter posts the form; the 303 brings the page back, converted.
        b.wait_value(KG, "4.54").await;
        b.wait_value(LBS, "10.00").await;
        b.wait_text_contains(DUMP, "4.5359237").await;
        assert_eq!(b.current_url().await, url);
        assert_eq!(app.state_json(&sid).await, r#"{"lbs":10.0,"kg":4.5359237}"#);

        // The + button works as a plain submit too.
        b.click(KG_PLUS).await;
        b.wait_value(KG, "4.55").await;
        b.wait_value(LBS, "10.03").await;

        // Letters: the page comes back (422) with the message, nothing changes.
        b.commit(LBS, "abc").await;
        pounds_message(&b).await;
        assert_eq!(b.value(KG).await.unwrap(), "4.55");
        assert_eq!(app.state_json(&sid).await, r#"{"lbs":10.03103292941193,"kg":4.55}"#);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshot_of_a_converted_page() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let (_, _sid) = b.open_new_session(&app).await;
        b.commit(LBS, "10").await;
        b.wait_value(KG, "4.54").await;
        b.wait_text_contains(DUMP, "4.5359237").await;
        // Blur the field, so the shot shows the page at rest.
        b.js("document.activeElement && document.activeElement.blur();", vec![]).await;
        b.wait_value(LBS, "10.00").await;

        b.screenshot_artefact("converter.png").await;

        // What the eye checks, checked by the browser too: the columns are
        // 2:1:2, the − / + buttons are visible, the JSON is coloured.
        let layout = b
            .js(
                "const r = s => document.querySelector(s).getBoundingClientRect();\
                 const col = s => r(s).width;\
                 const style = s => getComputedStyle(document.querySelector(s));\
                 return {\
                   lbs: col('form:has([data-part=lbs])'), spacer: col('.spacer'), kg: col('form:has([data-part=kg])'),\
                   lbsTop: r('[data-part=lbs]').top, kgTop: r('[data-part=kg]').top,\
                   plus: r(arguments[0]).width, minus: r(arguments[1]).width,\
                   key: style('.json-key').color, number: style('.json-number').color,\
                   text: style('pre.json').color\
                 };",
                vec![json!(KG_PLUS), json!(KG_MINUS)],
            )
            .await;
        let f = |k: &str| layout[k].as_f64().unwrap_or_else(|| panic!("{k} in {layout}"));
        assert!((f("lbs") - f("kg")).abs() < 1.0, "columns differ: {layout}");
        assert!((f("lbs") / f("spacer") - 2.0).abs() < 0.35, "not 2:1:2: {layout}");
        assert!((f("lbsTop") - f("kgTop")).abs() < 1.0, "fields not aligned: {layout}");
        assert!(f("plus") >= 16.0 && f("minus") >= 16.0, "buttons too small: {layout}");
        assert_ne!(layout["key"], layout["text"], "JSON keys are not coloured: {layout}");
        assert_ne!(layout["number"], layout["text"], "JSON numbers are not coloured: {layout}");
    })
    .await;
}

// ------------------------------------------------------------ live sync

/// Starts recording, in the current window, the time (`Date.now()`) at
/// which the dump first contains `needle`.
async fn watch_for(b: &Browser, needle: &str) {
    b.js(
        "const needle = arguments[0];\
         window.__wcSeen = null;\
         const check = () => {\
           const dump = document.querySelector('[data-part=state]');\
           if (window.__wcSeen === null && dump && dump.textContent.includes(needle)) {\
             window.__wcSeen = Date.now();\
           }\
         };\
         if (window.__wcObserver) window.__wcObserver.disconnect();\
         window.__wcObserver = new MutationObserver(check);\
         window.__wcObserver.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});\
         check();",
        vec![json!(needle)],
    )
    .await;
}

/// Waits until the current window has seen what [`watch_for`] watches for,
/// and returns when, in the browser's clock.
async fn seen_at(b: &Browser) -> i64 {
    wait_for("the change to arrive", WAIT, || async {
        Ok(b.client.execute("return window.__wcSeen;", vec![]).await?.as_i64())
    })
    .await
}

/// Starts recording, in the current window, when Enter is next pressed.
async fn mark_enter(b: &Browser) {
    b.js(
        "window.__wcSent = null;\
         if (!window.__wcMarking) {\
           window.__wcMarking = true;\
           document.addEventListener('keydown', e => {\
             if (e.key === 'Enter' && window.__wcSent === null) window.__wcSent = Date.now();\
           }, true);\
         }",
        vec![],
    )
    .await;
}

async fn enter_at(b: &Browser) -> i64 {
    b.js("return window.__wcSent;", vec![]).await.as_i64().expect("Enter was pressed")
}

/// Commits `text` in `field` of window `from` and returns how long, in
/// the browser's clock, from Enter in `from` until window `to`'s dump
/// contains `needle`.
async fn sync_latency(
    b: &Browser,
    (from, to): (&WindowHandle, &WindowHandle),
    field: &str,
    text: &str,
    needle: &str,
) -> i64 {
    b.switch_to(to).await;
    watch_for(b, needle).await;
    b.switch_to(from).await;
    b.type_over(field, text).await;
    mark_enter(b).await;
    b.press(field, Key::Enter).await;
    b.wait_text_contains(DUMP, needle).await;
    let sent = enter_at(b).await;
    b.switch_to(to).await;
    seen_at(b).await - sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_windows_stay_in_step_both_ways() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let (url, sid) = b.open_new_session(&app).await;
        let a = b.window().await;
        b.wait_live().await;
        let w = b.open_window(&url).await;
        b.wait_htmx().await;
        b.wait_live().await;

        // A → B, then B → A, a few times each.
        let (mut a_to_b, mut b_to_a) = (Vec::new(), Vec::new());
        for (round, kg_dumped) in [(1, "4.5359237"), (2, "9.0718474"), (3, "13.6077711")] {
            let lbs = format!("{}", 10 * round);
            let kg_text = format!("\"kg\": {kg_dumped}");
            a_to_b.push(sync_latency(&b, (&a, &w), LBS, &lbs, &kg_text).await);
            b.wait_value(LBS, &format!("{lbs}.00")).await;
            let kg = format!("{round}");
            b_to_a.push(sync_latency(&b, (&w, &a), KG, &kg, &format!("\"kg\": {round}.0")).await);
            b.wait_value(KG, &format!("{kg}.00")).await;
        }
        eprintln!("sync latency, Enter to the other window's dump: A → B {a_to_b:?} ms, B → A {b_to_a:?} ms");
        b.wait_value(LBS, "6.61").await;

        assert_eq!(app.state_json(&sid).await, r#"{"lbs":6.613867865546327,"kg":3.0}"#);
        assert!(a_to_b.iter().chain(&b_to_a).all(|&t| t < 1000), "a change took a second or more");

        // A third window opened later starts from the current state.
        let _c = b.open_window(&url).await;
        b.wait_value(LBS, "6.61").await;
        b.wait_value(KG, "3.00").await;
        b.wait_text_contains(DUMP, r#""kg": 3.0"#).await;
        assert_no_console_errors(&b, &[]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_windows_on_two_replicas_stay_in_step() {
    let redis = common::redis::RedisServer::start().await;
    let url = redis.url();
    let replica = || common::spawn_app_with(common::config(&["--redis-url", &url]));
    let (one, two) = (replica().await, replica().await);
    one.wait_until_ready().await;
    two.wait_until_ready().await;
    with_browser(Options::default(), |b| async move {
        let (_, sid) = b.open_new_session(&one).await;
        let a = b.window().await;
        b.wait_live().await;
        // The same session through the other replica, as a load balancer
        // without sticky sessions might send it.
        let w = b.open_window(&two.url(&format!("/s/{sid}"))).await;
        b.wait_htmx().await;
        b.wait_live().await;
        let a_to_b = sync_latency(&b, (&a, &w), LBS, "10", "\"kg\": 4.5359237").await;
        b.wait_value(LBS, "10.00").await;
        let b_to_a = sync_latency(&b, (&w, &a), KG, "1", "\"kg\": 1.0").await;
        b.wait_value(LBS, "2.20").await;
        eprintln!("sync latency across replicas: A → B {a_to_b} ms, B → A {b_to_a} ms");
        assert_eq!(two.state_json(&sid).await, r#"{"lbs":2.2046226218487757,"kg":1.0}"#);
        assert_no_console_errors(&b, &[]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_a_change_says_so_and_keeps_what_was_typed() {
    let mut redis = common::redis::RedisServer::start().await;
    let app = common::spawn_app_with(common::config(&["--redis-url", &redis.url()])).await;
    app.wait_until_ready().await;
    with_browser(Options::default(), |b| async move {
        let (_, sid) = b.open_new_session(&app).await;
        b.wait_live().await;
        b.commit(LBS, "10").await;
        b.wait_value(KG, "4.54").await;

        redis.kill();
        b.commit(LBS, "25").await;
        let message = pounds_message(&b).await;
        assert!(message.contains("cannot reach its session store"), "message: {message:?}");
        assert_eq!(b.value(LBS).await.unwrap(), "25", "what was typed stays, to try again");
        assert_eq!(b.value(KG).await.unwrap(), "4.54");
        // Nor does the page look live while it cannot hear changes.
        b.wait_text_contains("[data-wc-status]", "Reconnecting…").await;

        redis.restart().await;
        app.wait_until_ready().await;
        b.wait_live().await;
        assert_eq!(b.text("[data-wc-status]").await.unwrap(), "");
        b.commit(LBS, "25").await;
        b.wait_value(KG, "11.34").await;
        wait_for("the message to clear", WAIT, || async {
            Ok(b.text(LBS_MSG).await?.trim().is_empty().then_some(()))
        })
        .await;
        assert_eq!(app.state_json(&sid).await, r#"{"lbs":25.0,"kg":11.33980925}"#);
        assert_no_console_errors(&b, &["status of 503", "Error Code 503"]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsaved_typing_in_b_survives_a_change_in_a() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let (url, sid) = b.open_new_session(&app).await;
        let a = b.window().await;
        b.wait_live().await;
        let w = b.open_window(&url).await;
        b.wait_htmx().await;
        b.wait_live().await;

        // B: click into Pounds, type 12, do not commit.
        b.type_over(LBS, "12").await;
        assert_eq!(b.value(LBS).await.unwrap(), "12");
        assert_eq!(b.focused_part().await.as_deref(), Some("lbs"));
        watch_for(&b, r#""kg": 1.0"#).await;

        // A: Kilograms = 1, Enter.
        b.switch_to(&a).await;
        b.commit(KG, "1").await;
        b.wait_value(LBS, "2.20").await;

        // B: the dump and Kilograms follow; Pounds still holds 12, focused.
        b.switch_to(&w).await;
        seen_at(&b).await;
        b.wait_value(KG, "1.00").await;
        b.wait_text_contains(DUMP, r#""lbs": 2.2046226218487757"#).await;
        assert_eq!(b.value(LBS).await.unwrap(), "12", "B's unsaved text was overwritten");
        assert_eq!(b.focused_part().await.as_deref(), Some("lbs"), "B's field lost focus");
        assert_eq!(app.state_json(&sid).await, r#"{"lbs":2.2046226218487757,"kg":1.0}"#);

        // Committing it in B brings every view to 12 lb.
        b.press(LBS, Key::Enter).await;
        b.wait_value(KG, "5.44").await;
        b.switch_to(&a).await;
        b.wait_value(LBS, "12.00").await;
        b.wait_value(KG, "5.44").await;
        assert_no_console_errors(&b, &[]).await;
    })
    .await;
}

#[test]
fn a_missing_browser_fails_loudly() {
    let missing = Some("/nonexistent/chromium".into());
    let caught = std::panic::catch_unwind(|| browser_support::locate_programs_from(missing, None))
        .expect_err("a missing browser must panic, not skip");
    let message = caught
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| caught.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        message.contains("BROWSER TEST FAILED") && message.contains("/nonexistent/chromium"),
        "{message}"
    );
    assert!(message.contains("apt-get install chromium chromium-driver"), "{message}");
    // And the real lookup finds both, as every other test here needs.
    let found = browser_support::locate_programs();
    assert!(found.chromium.exists() && found.chromedriver.exists(), "{found:?}");
}

/// Issue 11, bug 1: letters and one Enter post once, and the refusal is
/// shown once (the duplicate filter compared NaN with NaN).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn letters_and_one_enter_post_once() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let (_, _sid) = b.open_new_session(&app).await;
        b.wait_live().await;
        let before = widget_posts(&app);
        b.commit(LBS, "abc").await;
        pounds_message(&b).await;
        // A second POST would follow the first at once; a correction
        // afterwards orders after both, so once it is answered any
        // duplicate would have been counted.
        b.commit(LBS, "10").await;
        b.wait_value(KG, "4.54").await;
        assert_eq!(widget_posts(&app) - before, 2, "one POST for the letters, one for 10");
        assert_no_console_errors(&b, &[REFUSAL]).await;
    })
    .await;
}

/// Issue 11, bug 2: a refusal under a field clears once another view sets
/// a valid value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_clears_when_another_view_sets_a_value() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let (url, _sid) = b.open_new_session(&app).await;
        let a = b.window().await;
        b.wait_live().await;
        b.commit(LBS, "abc").await;
        pounds_message(&b).await;
        let _w = b.open_window(&url).await;
        b.wait_htmx().await;
        b.wait_live().await;
        b.commit(LBS, "10").await;
        b.wait_value(KG, "4.54").await;
        b.switch_to(&a).await;
        b.wait_value(KG, "4.54").await;
        wait_for("the stale message to clear", WAIT, || async {
            Ok(b.text(LBS_MSG).await?.trim().is_empty().then_some(()))
        })
        .await;
        assert_no_console_errors(&b, &[REFUSAL]).await;
    })
    .await;
}
