//! Both languages and accessibility, in real Chromium (issue 13): axe-core
//! finds nothing in any state, remote changes are announced once, the Tab
//! order has no invisible stops, focus shows in forced colours too, the
//! page reflows at 320 CSS px, and the Hindi page renders its glyphs.

use crate::browser_support;
use crate::common;

use browser_support::{Browser, Options, WAIT, wait_for, with_browser};
use common::TestApp;
use fantoccini::key::Key;
use serde_json::{Value as Json, json};

const LBS: &str = "[data-part=lbs]";
const KG: &str = "[data-part=kg]";
const LBS_MSG: &str = "[data-part=lbs-msg]";

/// axe-core, for tests only (MPL-2.0, `tests/it/vendor/axe-core/LICENSE`).
/// Evaluated over WebDriver, so the page's own CSP stays as it is.
const AXE: &str = include_str!("vendor/axe-core/axe-4.14.1.min.js");
const AXE_TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"];

/// Runs axe (loading it first) on the page, with the tags as `arguments[0]`:
/// one line per violation.
const AXE_RUN: &str = "const done = arguments[arguments.length - 1];\
     axe.run(document, { runOnly: { type: 'tag', values: arguments[0] }, resultTypes: ['violations'] })\
       .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '\
         + v.nodes.map(n => n.target.join(' ') + ' [' + n.failureSummary + ']').join('; '))))\
       .catch(e => done(['axe failed: ' + e]));";

async fn load_axe(b: &Browser) {
    if b.js("return typeof window.axe;", vec![]).await != json!("object") {
        b.js(AXE, vec![]).await;
    }
}

/// Runs axe on the current page and fails with every violation it finds.
async fn assert_axe_clean(b: &Browser, what: &str) {
    load_axe(b).await;
    let violations = b.client.execute_async(AXE_RUN, vec![json!(AXE_TAGS)]).await.expect("run axe");
    assert_eq!(violations, json!([]), "axe on {what} ({})", b.current_url().await);
}

async fn lang(b: &Browser) -> Json {
    b.js("return document.documentElement.lang;", vec![]).await
}

/// A new session's page, in `lang` (chosen with the page's own switch).
async fn open_page_in(b: &Browser, app: &TestApp, tag: &str) -> String {
    let (url, _) = b.open_new_session(app).await;
    if tag != "en" {
        b.click(&format!("nav a[hreflang={tag}]")).await;
        wait_for(format!("the page in {tag}"), WAIT, || async {
            Ok((lang(b).await == json!(tag)).then_some(()))
        })
        .await;
    }
    b.wait_live().await;
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_nothing_in_either_language_in_any_state() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        // First, that axe runs and sees: an image with no text is found.
        b.open_new_session(&app).await;
        b.js("document.querySelector('main').append(document.createElement('img'));", vec![]).await;
        load_axe(&b).await;
        let found = b.client.execute_async(AXE_RUN, vec![json!(AXE_TAGS)]).await.expect("run axe");
        assert!(found.to_string().contains("image-alt"), "axe saw nothing wrong: {found}");

        for tag in ["en", "hi"] {
            open_page_in(&b, &app, tag).await;
            assert_axe_clean(&b, &format!("the page at rest ({tag})")).await;

            b.commit(LBS, "10").await;
            b.wait_value(KG, "4.54").await;
            assert_axe_clean(&b, &format!("the page after a change ({tag})")).await;

            b.commit(LBS, "abc").await;
            wait_for("the refusal", WAIT, || async {
                Ok((!b.text(LBS_MSG).await?.is_empty()).then_some(()))
            })
            .await;
            assert_axe_clean(&b, &format!("the page showing a refusal ({tag})")).await;

            let read_link = b.js("return document.querySelector('.share a').href;", vec![]).await;
            b.goto(read_link.as_str().expect("a read-only link")).await;
            b.wait_live().await;
            assert_eq!(lang(&b).await, json!(tag), "the read-only view keeps the language");
            assert_axe_clean(&b, &format!("the read-only view ({tag})")).await;

            b.goto(&app.url("/no/such/page")).await;
            assert_eq!(lang(&b).await, json!(tag), "the 404 page keeps the language");
            assert_axe_clean(&b, &format!("the 404 page ({tag})")).await;
        }
    })
    .await;
}

/// The announcer, and how often it has said something since the page
/// marked it (a MutationObserver counts), or `false` if it was replaced.
async fn announcements(b: &Browser) -> Json {
    b.js(
        "const region = document.querySelector('[data-wc-announce]');\
         return region === window.__wcRegion ? window.__wcSaid : false;",
        vec![],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_another_view_is_announced_once_through_the_same_region() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        for tag in ["en", "hi"] {
            let url = open_page_in(&b, &app, tag).await;
            let sid = url.rsplit('/').next().expect("a session id").to_owned();
            listen(&b).await;
            let region = b
                .js(
                    "return [window.__wcRegion.getAttribute('aria-live'), window.__wcRegion.textContent];",
                    vec![],
                )
                .await;
            assert_eq!(region, json!(["polite", ""]), "on the page from the start, silent");

            app.commit(&sid, "lbs", "10").await;
            b.wait_value(KG, "4.54").await;
            let said = if tag == "en" {
                "Changed in another view: Pounds: 10.00, Kilograms: 4.54"
            } else {
                "दूसरे दृश्य में बदला गया: पाउंड: 10.00, किलोग्राम: 4.54"
            };
            wait_for("the announcement", WAIT, || async {
                Ok((announcements(&b).await == json!([said])).then_some(()))
            })
            .await;

            // This page's own change is not announced as another view's.
            b.commit(KG, "1").await;
            b.wait_value(LBS, "2.20").await;
            b.wait_htmx_idle().await;
            app.commit(&sid, "kg", "2").await;
            b.wait_value(LBS, "4.41").await;
            let second = if tag == "en" {
                "Changed in another view: Pounds: 4.41, Kilograms: 2.00"
            } else {
                "दूसरे दृश्य में बदला गया: पाउंड: 4.41, किलोग्राम: 2.00"
            };
            let heard = wait_for("the second announcement", WAIT, || async {
                let heard = announcements(&b).await;
                Ok((heard.as_array().is_some_and(|h| h.len() >= 2)).then_some(heard))
            })
            .await;
            assert_eq!(heard, json!([said, second]), "({tag})");
        }
    })
    .await;
}

/// Starts counting what the view's announcer says (see [`announcements`]).
async fn listen(b: &Browser) {
    b.js(
        "window.__wcRegion = document.querySelector('[data-wc-announce]');\
         window.__wcSaid = [];\
         new MutationObserver(() => window.__wcSaid.push(window.__wcRegion.textContent))\
           .observe(window.__wcRegion, { childList: true, characterData: true, subtree: true });",
        vec![],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_only_view_announces_a_change_once_and_its_values_are_no_live_regions() {
    let app = common::spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    with_browser(Options::default(), |b| async move {
        b.goto(&app.url(&format!("/v/{token}?lang=hi"))).await;
        b.wait_live().await;
        let silent = b
            .js(
                "return [...document.querySelectorAll('output')].map(o => o.getAttribute('aria-live'));",
                vec![],
            )
            .await;
        assert_eq!(silent, json!(["off", "off"]));
        listen(&b).await;
        app.commit(&sid, "kg", "1").await;
        b.wait_text_contains("output[data-part=lbs]", "2.20").await;
        let said = json!(["दूसरे दृश्य में बदला गया: पाउंड: 2.20, किलोग्राम: 1.00"]);
        wait_for("the announcement", WAIT, || async { Ok((announcements(&b).await == said).then_some(())) })
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_announced_once() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        open_page_in(&b, &app, "en").await;
        b.js(
            "const message = document.querySelector(arguments[0]);\
             window.__wcAlerts = [];\
             new MutationObserver(() => window.__wcAlerts.push(message.textContent))\
               .observe(message, { childList: true, characterData: true, subtree: true });",
            vec![json!(LBS_MSG)],
        )
        .await;
        b.commit(LBS, "१x").await;
        b.wait_text_contains(LBS_MSG, "Enter a number").await;
        b.wait_htmx_idle().await;
        let alerts = b.js("return window.__wcAlerts;", vec![]).await;
        assert_eq!(alerts, json!(["Enter a number, such as 10 or 4.54."]), "one alert, said once");
        assert_eq!(
            b.js("return document.querySelector(arguments[0]).getAttribute('role');", vec![json!(LBS_MSG)])
                .await,
            json!("alert")
        );
    })
    .await;
}

/// Presses Tab as a user would (through the input pipeline, not a DOM
/// event) and describes where focus went.
async fn tab(b: &Browser) -> Json {
    for kind in ["rawKeyDown", "keyUp"] {
        b.cdp(
            "Input.dispatchKeyEvent",
            json!({ "type": kind, "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9 }),
        )
        .await;
    }
    b.js(
        "const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);\
         const lum = c => rgb(c).map(v => v / 255).map(v => v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)\
           .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);\
         const contrast = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };\
         const background = el => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor;\
           if (!/rgba\\(.*, 0\\)$/.test(c) && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };\
         const e = document.activeElement; const r = e.getBoundingClientRect(); const s = getComputedStyle(e);\
         const name = e.getAttribute('aria-label') || (e.labels && e.labels[0] && e.labels[0].textContent)\
           || e.textContent.trim();\
         return { tag: e.tagName.toLowerCase(), name: name,\
                  visible: r.width >= 8 && r.height >= 8 && s.visibility === 'visible',\
                  ring: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,\
                  contrast: contrast(s.outlineColor, background(e)) };",
        vec![],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tab_order_has_no_invisible_stops_and_focus_always_shows() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        open_page_in(&b, &app, "en").await;
        for forced_colours in [false, true] {
            let features = if forced_colours {
                json!([{ "name": "forced-colors", "value": "active" }])
            } else {
                json!([])
            };
            b.cdp("Emulation.setEmulatedMedia", json!({ "features": features })).await;
            let here = b.current_url().await;
            b.goto(&here).await;
            b.wait_live().await;
            let mut stops = Vec::new();
            for _ in 0..8 {
                stops.push(tab(&b).await);
            }
            let names: Vec<&str> = stops.iter().map(|s| s["name"].as_str().unwrap_or("?")).collect();
            assert_eq!(
                names,
                [
                    "हिन्दी",
                    "Pounds:",
                    "Decrease Pounds",
                    "Increase Pounds",
                    "Kilograms:",
                    "Decrease Kilograms",
                    "Increase Kilograms",
                    "read-only link"
                ],
                "the Tab order (forced colours: {forced_colours})"
            );
            for stop in &stops {
                assert_eq!(stop["visible"], json!(true), "an invisible Tab stop: {stop}");
                assert_eq!(
                    stop["ring"],
                    json!(true),
                    "no focus ring (forced colours: {forced_colours}): {stop}"
                );
                let contrast = stop["contrast"].as_f64().unwrap_or(0.0);
                assert!(
                    contrast >= 3.0,
                    "a focus ring at {contrast:.2}:1 (forced colours: {forced_colours}): {stop}"
                );
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_are_spin_buttons_with_a_hint_until_enter() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        open_page_in(&b, &app, "en").await;
        let field = "const f = document.querySelector(arguments[0]);\
             const hint = document.getElementById(f.getAttribute('aria-describedby').split(' ')[1]);\
             return [f.getAttribute('role'), f.getAttribute('aria-valuenow'), hint.textContent];";
        assert_eq!(b.js(field, vec![json!(LBS)]).await, json!(["spinbutton", "0.00", ""]));

        b.commit(LBS, "10").await;
        b.wait_value(KG, "4.54").await;
        b.press(LBS, Key::Up).await;
        b.wait_value(LBS, "10.01").await;
        assert_eq!(b.js(field, vec![json!(LBS)]).await, json!(["spinbutton", "10.01", ""]));
        let kg = b.js(field, vec![json!(KG)]).await;
        assert_eq!(kg, json!(["spinbutton", "4.54", ""]), "the other field too");

        b.type_over(LBS, "२.५").await;
        let typing = b.js(field, vec![json!(LBS)]).await;
        assert_eq!(typing, json!(["spinbutton", "10.01", "Press Enter to apply"]));
        b.press(LBS, Key::Enter).await;
        b.wait_value(LBS, "2.50").await;
        b.wait_value(KG, "1.13").await;
        assert_eq!(b.js(field, vec![json!(LBS)]).await, json!(["spinbutton", "2.50", ""]));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_reflows_at_320_css_pixels() {
    let app = common::spawn_app().await;
    with_browser(Options { width: 320, height: 640, ..Options::default() }, |b| async move {
        b.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 320, "height": 640, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
        for tag in ["en", "hi"] {
            open_page_in(&b, &app, tag).await;
            // The widest a state gets: a refusal, and a long number.
            b.commit(LBS, "1e300").await;
            b.wait_text_contains("[data-part=state]", "1e+300").await;
            b.commit(KG, "not a number at all, and long").await;
            b.wait_text_contains("[data-part=kg-msg]", if tag == "en" { "Enter a number" } else { "संख्या" })
                .await;
            let widths = b
                .js(
                    "return [document.documentElement.scrollWidth, document.documentElement.clientWidth, innerWidth];",
                    vec![],
                )
                .await;
            assert_eq!(widths[2], json!(320), "the viewport");
            assert!(
                widths[0].as_i64() <= widths[1].as_i64(),
                "sideways scrolling at 320 px ({tag}): {widths}"
            );
        }
    })
    .await;
}

/// Kept as a test artefact (`target/screenshots/hindi.png`), and checked
/// by eye when the look changes: Devanagari glyphs, not boxes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshot_of_the_hindi_page() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        open_page_in(&b, &app, "hi").await;
        b.commit(LBS, "१०").await;
        b.wait_value(KG, "4.54").await;
        b.js("document.activeElement && document.activeElement.blur();", vec![]).await;
        b.wait_value(LBS, "10.00").await;
        // A face that covers Devanagari is used: a vowel mark sits on its
        // consonant instead of taking a box of its own.
        let widths = b
            .js(
                "const c = document.createElement('canvas').getContext('2d');\
                 c.font = getComputedStyle(document.querySelector('h2')).font;\
                 return [c.measureText('ककक').width, c.measureText('कंकंकं').width];",
                vec![],
            )
            .await;
        let (plain, marked) = (widths[0].as_f64().unwrap(), widths[1].as_f64().unwrap());
        assert!(marked < plain * 1.1, "Devanagari renders as boxes: {widths}");
        b.screenshot_artefact("hindi.png").await;
    })
    .await;
}
