//! Issue 2's error bullets, on the real server over HTTP: refused input
//! (422, with the state compared byte for byte before and after), unknown
//! sessions and keys (404), oversized bodies (413), bad requests (400), and
//! extractor rejections rendered as our pages, never as plain text.

use crate::common;

use std::time::Duration;

use common::TestApp;
use common::checks::{
    Reply, assert_error_page, assert_no_store, assert_update, assert_view_ids, assert_widget_error,
    check_state_json, form_body,
};
use common::html;
use common::{spawn_app, spawn_app_with};
use weight_converter::session::SessionId;

/// Not finite decimal numbers, each as a user might type it.
const NOT_NUMBERS: [&str; 23] = [
    "abc", "ten", "NaN", "nan", "inf", "-inf", "Infinity", "1,5", "0x10", "-", "e", "+", ".", "1e", "1e+",
    "1..2", "1 2", "--1", "1_000", "१x", "x१", "१,५", "½",
];
/// Decimal numbers too large for a float.
const TOO_LARGE: [&str; 3] = ["1e309", "-1e309", "99999e99999"];

/// A session that already holds a change, so "unchanged" means something.
async fn session_with_values(app: &TestApp) -> String {
    let sid = app.new_session().await;
    app.commit(&sid, "lbs", "10").await;
    sid
}

/// Posts `key=text` and checks the refusal a user would see: 422, the
/// field re-rendered with what they typed, marked invalid, a message
/// beside it, and the state exactly as before.
async fn assert_refused(app: &TestApp, sid: &str, key: &str, text: &str, htmx: bool, message_has: &str) {
    let what = format!("{key}={text:?} (htmx: {htmx})");
    let before = app.snapshot(sid).await;
    let reply = app.post_form(sid, key, &[(key, text)], htmx).await;
    assert_eq!(reply.status, 422, "{what}: {}", reply.body);
    assert!(reply.content_type().starts_with("text/html"), "{what}: {}", reply.content_type());
    assert_no_store(&reply.headers, &what);
    let body = &reply.body;
    if htmx {
        assert!(!body.contains("<html"), "{what}: htmx gets fragments, not a page");
    } else {
        assert!(body.contains("<html"), "{what}: without htmx the whole page comes back");
    }

    let message_part = format!("{key}-msg");
    if htmx {
        // An update for app.js to apply to the view that posted: the field
        // as typed and its message, named by part, no ids.
        assert_update(body, &[("input", key), ("p", &message_part)], &what);
    }
    let input = html::part(body, "input", key).unwrap_or_else(|| panic!("{what}: no field in {body}"));
    assert_eq!(input.attr("aria-invalid"), Some("true"), "{what}: {input:?}");
    assert_eq!(input.attr("value"), Some(text), "{what}: the field keeps what was typed");
    let message =
        html::part(body, "p", &message_part).unwrap_or_else(|| panic!("{what}: no message in {body}"));
    assert_eq!(message.attr("role"), Some("alert"), "{what}: {message:?}");
    // Both go with the state they were refused against.
    let version = before.1.to_string();
    assert_eq!(input.attr("data-version"), Some(version.as_str()), "{what}: {input:?}");
    assert_eq!(message.attr("data-version"), Some(version.as_str()), "{what}: {message:?}");
    let said = html::text(body, &message);
    assert!(
        said.to_lowercase().contains(message_has),
        "{what}: message {said:?} does not say {message_has:?}"
    );
    if !htmx {
        // The page ties the message to its field, and shows the rest of
        // the state as it still is.
        assert_view_ids(body, "input", &what);
        let described_by = input.attr("aria-describedby").unwrap_or_default();
        assert_eq!(described_by.split(' ').next(), Some(message.id()), "{what}: message not tied to field");
        // A page of its own, whose title says it shows an error.
        assert!(body.contains("<title>Error: st.session_state</title>"), "{what}: the title");
        let other = if key == "lbs" { "kg" } else { "lbs" };
        let other = html::part(body, "input", other).expect("the other field");
        assert!(!other.has("aria-invalid"), "{what}: {other:?}");
        let dump = html::part(body, "pre", "state").expect("the dump");
        assert_eq!(check_state_json(&html::text(body, &dump)), check_state_json(&before.0), "{what}");
    }
    assert_eq!(app.snapshot(sid).await, before, "{what}: the state or version changed");
}

// ---- 422: refused input ----------------------------------------------------------

#[tokio::test]
async fn what_is_not_a_number_is_refused_with_a_message_and_changes_nothing() {
    let app = spawn_app().await;
    let sid = session_with_values(&app).await;
    for key in ["lbs", "kg"] {
        for text in NOT_NUMBERS {
            for htmx in [true, false] {
                assert_refused(&app, &sid, key, text, htmx, "number").await;
            }
        }
    }
}

#[tokio::test]
async fn markup_typed_into_a_field_comes_back_as_text() {
    // The refused text is echoed into the field's value: escaped, it can
    // neither close the attribute nor add an element.
    let app = spawn_app().await;
    let sid = session_with_values(&app).await;
    let attack = "\"><script>alert(1)</script><img src=x onerror=alert(2)>&amp;";
    for htmx in [true, false] {
        assert_refused(&app, &sid, "lbs", attack, htmx, "number").await;
        let reply = app.post_widget(&sid, "lbs", &form_body(&[("lbs", attack)]), htmx).await;
        let body = reply.text().await.expect("body");
        assert!(!body.contains("<script>alert") && !body.contains("<img src=x"), "unescaped: {body}");
        assert!(body.contains("&lt;script&gt;alert(1)"), "not escaped as expected: {body}");
        assert!(body.contains("&amp;amp;"), "an entity typed in must stay text: {body}");
    }
}

#[tokio::test]
async fn numbers_too_large_for_a_float_are_refused() {
    let app = spawn_app().await;
    let sid = session_with_values(&app).await;
    for key in ["lbs", "kg"] {
        for text in TOO_LARGE {
            for htmx in [true, false] {
                assert_refused(&app, &sid, key, text, htmx, "large").await;
            }
        }
    }
}

#[tokio::test]
async fn a_conversion_that_overflows_is_refused() {
    let app = spawn_app().await;
    let sid = session_with_values(&app).await;
    // 1e308 kg is about 2.2e308 lb, past the largest float.
    for text in ["1e308", "-1e308", "1.7976931348623157e308"] {
        for htmx in [true, false] {
            assert_refused(&app, &sid, "kg", text, htmx, "large").await;
        }
    }
    let json = app.state_json(&sid).await;
    assert!(!json.contains("null") && !json.to_lowercase().contains("inf"), "{json}");
}

#[tokio::test]
async fn refused_input_with_a_step_changes_nothing() {
    let app = spawn_app().await;
    let sid = session_with_values(&app).await;
    let before = app.snapshot(&sid).await;
    for htmx in [true, false] {
        let reply = app.post_form(&sid, "kg", &[("kg", "abc"), ("step", "up")], htmx).await;
        assert_eq!(reply.status, 422, "{}", reply.body);
    }
    assert_eq!(app.snapshot(&sid).await, before);

    // A step up from the largest float: floats have no room for +0.01
    // there, so the value stays the largest float. Kilograms of it are
    // finite, so that is accepted, as stepping at any other value is…
    let reply = app.post_form(&sid, "lbs", &[("lbs", "1.7976931348623157e308"), ("step", "up")], true).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(app.state_json(&sid).await, r#"{"lbs":1.7976931348623157e+308,"kg":8.154198895749274e+307}"#);
    assert_eq!(8.154198895749274e307, f64::MAX * 0.45359237);
    // … but from Kilograms, the Pounds it makes would be infinite: refused,
    // and nothing changes.
    let before = app.snapshot(&sid).await;
    let reply = app.post_form(&sid, "kg", &[("kg", "1.7976931348623157e308"), ("step", "up")], true).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(reply.body.contains("Too large: Pounds would not be a finite number."), "{}", reply.body);
    assert_eq!(app.snapshot(&sid).await, before);
}

// ---- 404: unknown sessions and keys ------------------------------------------------

/// Session ids no server handed out: well-formed but unknown, and malformed.
fn unknown_sids(real: &str) -> Vec<String> {
    let mut sids = vec![
        SessionId::random().as_str().to_owned(),
        "short".to_owned(),
        "AAAAAAAAAAAAAAAAAAAAAB".to_owned(), // 22 characters, but bits past the 128th
        "AAAAAAAAAAAAAAAAAAAAAAA".to_owned(), // 23 characters
        "AAAAAAAAAAAAAAAAAAAA!A".to_owned(),
        "%FF%FE".to_owned(), // not UTF-8
        "x".repeat(300),
    ];
    // A real id with its case changed: base64url is case-sensitive.
    let swapped: String = real
        .chars()
        .map(|c| if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
        .collect();
    sids.push(swapped);
    sids
}

#[tokio::test]
async fn an_unknown_or_malformed_session_is_a_404_page_linking_home_and_creates_nothing() {
    let app = spawn_app().await;
    let real = app.new_session().await;
    let sessions = app.ctx.store.session_count();
    for sid in unknown_sids(&real) {
        let page = app.get(&format!("/s/{sid}")).await;
        assert_eq!(page.status, 404, "GET /s/{sid}: {}", page.body);
        assert_error_page(&page, &format!("GET /s/{sid}"));
        for path in [format!("/s/{sid}/state.json"), format!("/s/{sid}/fragments/state")] {
            let reply = app.get(&path).await;
            assert_eq!(reply.status, 404, "GET {path}");
            assert_error_page(&reply, &path);
        }
        for htmx in [true, false] {
            let reply = app.post_form(&sid, "lbs", &[("lbs", "10")], htmx).await;
            assert_eq!(reply.status, 404, "POST to {sid}: {}", reply.body);
            // A path that does not decode as UTF-8 names no widget to put a
            // message under: that is the 404 page, for htmx too.
            let as_widget = htmx && sid != "%FF%FE";
            assert_widget_error(&reply, as_widget, "lbs", &format!("POST to {sid}"));
        }
        // Still nothing there afterwards.
        assert_eq!(app.get(&format!("/s/{sid}")).await.status, 404, "{sid} came into being");
    }
    assert_eq!(app.ctx.store.session_count(), sessions, "requests for unknown sessions created some");
}

#[tokio::test]
async fn an_expired_session_is_a_404_page() {
    let app = spawn_app_with(common::config(&["--session-ttl", "1h", "--idle-timeout", "10h"])).await;
    let sid = app.new_session().await;
    assert_eq!(app.get(&format!("/s/{sid}")).await.status, 200);
    common::let_time_pass(Duration::from_secs(3601)).await;
    let reply = app.get(&format!("/s/{sid}")).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_error_page(&reply, "an expired session");
    let reply = app.post_form(&sid, "lbs", &[("lbs", "1")], true).await;
    assert_eq!(reply.status, 404, "posting revived an expired session");
    assert_eq!(app.get(&format!("/s/{sid}")).await.status, 404);
}

#[tokio::test]
async fn an_unknown_widget_key_is_404_and_changes_nothing() {
    let app = spawn_app().await;
    let sid = session_with_values(&app).await;
    let before = app.snapshot(&sid).await;
    for key in ["stone", "LBS", "Kg", "lbs.json", "%20lbs", "lbs%00", "state"] {
        for htmx in [true, false] {
            let body = form_body(&[(key, "1"), ("lbs", "1"), ("kg", "1")]);
            let reply = app.post_raw(&format!("/s/{sid}/widgets/{key}"), Some(FORM), body, htmx).await;
            assert_eq!(reply.status, 404, "key {key:?}: {}", reply.body);
            assert_error_page(&reply, &format!("key {key:?}"));
        }
    }
    assert_eq!(app.snapshot(&sid).await, before);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_our_pages() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    for path in ["/nope", "/s", "/s/", &format!("/s/{sid}/nope"), &format!("/s/{sid}/widgets")] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 404, "GET {path}");
        assert_error_page(&reply, path);
    }
    // A method no route has: 405, on our page.
    let reply =
        Reply::read(app.client.delete(app.url(&format!("/s/{sid}/widgets/lbs"))).send().await.unwrap()).await;
    assert_eq!(reply.status, 405, "DELETE widget");
    assert_error_page(&reply, "DELETE widget");
}

/// Issue 11, bug 3: without JavaScript a refused value shows the page at
/// the widget's URL; reloading it (a GET there) leads back to the page.
#[tokio::test]
async fn a_get_of_a_widget_url_leads_back_to_the_page() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let refused = app.post_form(&sid, "lbs", &[("lbs", "abc")], false).await;
    assert_eq!(refused.status, 422);
    for key in ["lbs", "kg"] {
        let reply = app.get(&format!("/s/{sid}/widgets/{key}")).await;
        assert_eq!(reply.status, 303, "GET widget {key}");
        assert_eq!(reply.header("location"), format!("/s/{sid}"));
    }
    assert_eq!(app.get(&format!("/s/{sid}/widgets/stone")).await.status, 404);
    assert_eq!(app.get("/s/not-a-session/widgets/lbs").await.status, 404);
}

// ---- 413, 400 and extractor rejections --------------------------------------------------

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn a_body_over_4_kib_is_413_and_changes_nothing() {
    let app = spawn_app().await;
    let sid = session_with_values(&app).await;
    let before = app.snapshot(&sid).await;
    let path = format!("/s/{sid}/widgets/lbs");
    let big = form_body(&[("lbs", "20"), ("pad", &"x".repeat(5000))]);
    for htmx in [true, false] {
        let reply = app.post_raw(&path, Some(FORM), big.clone(), htmx).await;
        assert_eq!(reply.status, 413, "{}", reply.body);
        assert_widget_error(&reply, htmx, "lbs", "413");
    }
    // Sent in chunks, with no Content-Length to refuse it up front.
    let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(format!("&pad={}", "y".repeat(1000))));
    let body = futures_util::stream::iter(std::iter::once(Ok("lbs=20".to_owned())).chain(chunks));
    let reply = app.post_raw(&path, Some(FORM), reqwest::Body::wrap_stream(body), true).await;
    assert_eq!(reply.status, 413, "chunked: {}", reply.body);
    assert_widget_error(&reply, true, "lbs", "chunked 413");
    assert_eq!(app.snapshot(&sid).await, before);

    // A body of a few hundred bytes is fine.
    let fine = form_body(&[("lbs", "20"), ("pad", &"x".repeat(500))]);
    assert_eq!(app.post_raw(&path, Some(FORM), fine, false).await.status, 303);
    assert_eq!(app.state_json(&sid).await.find("\"lbs\":20.0"), Some(1));
}

#[tokio::test]
async fn a_bad_step_is_400_and_changes_nothing() {
    let app = spawn_app().await;
    let sid = session_with_values(&app).await;
    let before = app.snapshot(&sid).await;
    for step in ["sideways", "UP", "", "1"] {
        for htmx in [true, false] {
            let reply = app.post_form(&sid, "kg", &[("kg", "2"), ("step", step)], htmx).await;
            assert_eq!(reply.status, 400, "step={step:?}: {}", reply.body);
            assert_widget_error(&reply, htmx, "kg", &format!("step={step:?}"));
            assert!(reply.body.contains("step"), "the message names the problem: {}", reply.body);
        }
    }
    assert_eq!(app.snapshot(&sid).await, before);
}

#[tokio::test]
async fn invalid_percent_encoding_is_a_clear_error_and_changes_nothing() {
    let app = spawn_app().await;
    let sid = session_with_values(&app).await;
    let before = app.snapshot(&sid).await;
    let path = format!("/s/{sid}/widgets/lbs");
    for body in ["lbs=%ZZ", "lbs=1%", "lbs=%4", "lbs=%E2%88", "lbs=%FF%FE", "lbs=2%G0"] {
        for htmx in [true, false] {
            let what = format!("{body:?} (htmx: {htmx})");
            let reply = app.post_raw(&path, Some(FORM), body, htmx).await;
            // Decoded with U+FFFD for what is not UTF-8, so it is typed text,
            // and not a number.
            assert_eq!(reply.status, 422, "{what}: {}", reply.body);
            assert!(reply.content_type().starts_with("text/html"), "{what}: {}", reply.content_type());
            if !htmx {
                assert!(reply.body.contains("<html"), "{what}: not our page: {}", reply.body);
            }
            assert!(html::strip_tags(&reply.body).trim().len() > 10, "{what}: no message: {}", reply.body);
        }
    }
    // Raw bytes that are not UTF-8 at all.
    let reply = app.post_raw(&path, Some(FORM), b"lbs=\xff\xfe".to_vec(), false).await;
    assert_eq!(reply.status, 422, "raw bytes: {}", reply.body);
    assert!(reply.body.contains("<html"), "{}", reply.body);
    assert_eq!(app.snapshot(&sid).await, before);
}

#[tokio::test]
async fn a_body_without_the_field_is_refused_and_changes_nothing() {
    // Garbage in the name (`l%ZZbs`), another widget's field, or nothing:
    // no value was committed, so nothing may change (empty *value* is 0).
    let app = spawn_app().await;
    let sid = session_with_values(&app).await;
    let before = app.snapshot(&sid).await;
    let path = format!("/s/{sid}/widgets/lbs");
    for body in ["", "l%ZZbs=5", "kg=5", "%ZZ", "step=up", "view=x"] {
        for htmx in [true, false] {
            let what = format!("{body:?} (htmx: {htmx})");
            let reply = app.post_raw(&path, Some(FORM), body, htmx).await;
            assert_eq!(reply.status, 400, "{what}: {}", reply.body);
            assert!(reply.content_type().starts_with("text/html"), "{what}: {}", reply.content_type());
            assert_eq!(app.snapshot(&sid).await, before, "{what} changed the state");
        }
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_refused_with_our_page_and_changes_nothing() {
    let app = spawn_app().await;
    let sid = session_with_values(&app).await;
    let before = app.snapshot(&sid).await;
    let path = format!("/s/{sid}/widgets/lbs");
    let cases: [(Option<&str>, &str); 5] = [
        (Some("application/json"), r#"{"lbs":5}"#),
        (Some("application/json"), "lbs=5"),
        (Some("text/plain"), "lbs=5"),
        (Some("this is not a content type"), "lbs=5"),
        (
            Some("multipart/form-data; boundary=x"),
            "--x\r\nContent-Disposition: form-data; name=\"lbs\"\r\n\r\n5\r\n--x--\r\n",
        ),
    ];
    for (content_type, body) in cases {
        for htmx in [true, false] {
            let what = format!("{content_type:?} {body:?} (htmx: {htmx})");
            let reply = app.post_raw(&path, content_type, body, htmx).await;
            assert_eq!(reply.status, 415, "{what}: {}", reply.body);
            assert_widget_error(&reply, htmx, "lbs", &what);
            assert_eq!(app.snapshot(&sid).await, before, "{what} changed the state");
        }
    }
}

#[tokio::test]
async fn a_form_content_type_with_a_charset_is_fine() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let path = format!("/s/{sid}/widgets/lbs");
    let reply =
        app.post_raw(&path, Some("application/x-www-form-urlencoded; charset=UTF-8"), "lbs=4", true).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(app.state_json(&sid).await.find("\"lbs\":4.0"), Some(1));
}

#[tokio::test]
async fn error_fragments_are_never_plain_text() {
    // Every error this file provokes, checked once more for the one thing
    // axum's defaults get wrong: a text/plain body.
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let replies: Vec<(&str, u16, Reply)> = vec![
        ("refused", 422, app.post_form(&sid, "lbs", &[("lbs", "x")], true).await),
        ("bad step", 400, app.post_form(&sid, "lbs", &[("lbs", "1"), ("step", "x")], true).await),
        ("too large", 413, app.post_form(&sid, "lbs", &[("pad", &"x".repeat(9000))], true).await),
        ("unknown key", 404, app.post_form(&sid, "oz", &[("oz", "1")], true).await),
        ("bad sid", 404, app.get("/s/%FF").await),
        ("bad asset", 404, app.get("/assets/%FF").await),
    ];
    for (what, status, reply) in replies {
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        assert!(reply.content_type().starts_with("text/html"), "{what}: {}", reply.content_type());
        assert!(reply.body.trim_start().starts_with('<'), "{what}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn a_request_that_times_out_gets_our_page() {
    // A client that starts a body and stalls: cut off at REQUEST_TIMEOUT,
    // and told so in our page, not with an empty or plain-text body.
    let app = spawn_app_with(common::config(&["--request-timeout", "1s"])).await;
    let sid = session_with_values(&app).await;
    let before = app.snapshot(&sid).await;
    let stalled = futures_util::stream::unfold(0, |sent| async move {
        match sent {
            0 => Some((Ok::<_, std::io::Error>("lbs=".to_owned()), 1)),
            1 => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Some((Ok("1".to_owned()), 2))
            }
            _ => None,
        }
    });
    let path = format!("/s/{sid}/widgets/lbs");
    let reply = app.post_raw(&path, Some(FORM), reqwest::Body::wrap_stream(stalled), false).await;
    assert_eq!(reply.status, 408, "{}", reply.body);
    assert_error_page(&reply, "408");
    assert_eq!(app.snapshot(&sid).await, before);
}
