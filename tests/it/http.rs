//! Issue 2's HTTP interface, on the real server over HTTP: sessions, the
//! page, committing changes with and without htmx, and the read-only views.
//! Errors are in `http_errors.rs`, assets and headers in `http_assets.rs`.

use crate::common;

use common::checks::{
    LB_IN_KG, assert_live_root, assert_no_store, assert_update, assert_view_id, assert_view_ids,
    check_state_json, form_body, number, raw_number,
};
use common::html;
use common::spawn_app;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

// ---- GET / ----------------------------------------------------------------

#[tokio::test]
async fn root_redirects_to_a_new_session_with_an_unguessable_id() {
    let app = spawn_app().await;
    let reply = app.get("/").await;
    assert_eq!(reply.status, 303, "GET / is 303 See Other");
    let location = reply.header("location").to_owned();
    let sid = location.strip_prefix("/s/").unwrap_or_else(|| panic!("Location {location} is not /s/{{sid}}"));
    assert!(sid.len() >= 22, "sid {sid:?} is shorter than 22 characters (128 bits)");
    assert!(
        sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "sid {sid:?} is not URL-safe"
    );
    assert_no_store(&reply.headers, "GET /");
    assert_eq!(app.get(&location).await.status, 200, "the new session's page exists");
}

#[tokio::test]
async fn each_visit_to_root_gets_a_session_of_its_own() {
    let app = spawn_app().await;
    let first = app.new_session().await;
    let second = app.new_session().await;
    assert_ne!(first, second, "two visits to / share a session");
    app.commit(&first, "lbs", "10").await;
    assert_eq!(app.state_json(&first).await, r#"{"lbs":10.0,"kg":4.5359237}"#);
    assert_eq!(app.state_json(&second).await, r#"{"lbs":0.0,"kg":0.0}"#, "a change leaked between sessions");
}

// ---- GET /s/{sid} ---------------------------------------------------------

#[tokio::test]
async fn the_page_is_the_tutorial_app() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let reply = app.get(&format!("/s/{sid}")).await;
    assert_eq!(reply.status, 200);
    assert!(reply.content_type().starts_with("text/html"), "{}", reply.content_type());
    assert_no_store(&reply.headers, "the page");
    let page = reply.body;

    let title = &html::tags(&page, "title")[0];
    assert_eq!(html::text(&page, title), "st.session_state", "document title");
    let h1: Vec<String> = html::tags(&page, "h1").iter().map(|t| html::text(&page, t)).collect();
    assert_eq!(h1, ["st.session_state"]);
    let h2: Vec<String> = html::tags(&page, "h2").iter().map(|t| html::text(&page, t)).collect();
    assert_eq!(h2, ["Input", "Output"]);

    // Each field's label is the one whose `for` is the field's id.
    let label = |key: &str| {
        let input = html::part(&page, "input", key).unwrap_or_else(|| panic!("no {key} input"));
        let tag = html::tags(&page, "label").into_iter().find(|l| l.attr("for") == Some(input.id()));
        let tag = tag.unwrap_or_else(|| panic!("no label for the {key} input {input:?}"));
        (html::text(&page, &tag), tag.start)
    };
    let (pounds, pounds_at) = label("lbs");
    let (kilograms, kilograms_at) = label("kg");
    assert_eq!(pounds.trim(), "Pounds:");
    assert_eq!(kilograms.trim(), "Kilograms:");

    for key in ["lbs", "kg"] {
        let input = html::part(&page, "input", key).unwrap_or_else(|| panic!("no {key} input"));
        assert_eq!(input.attr("name"), Some(key), "{key} name");
        assert_eq!(input.attr("type"), Some("text"), "{key} must be type=text, not number");
        assert_eq!(input.attr("inputmode"), Some("decimal"), "{key} inputmode");
        assert_eq!(input.attr("value"), Some("0.00"), "{key} shows two decimals");
    }

    // Top to bottom: Input, Pounds, Kilograms, Output, the caption, the dump.
    let input_at = page.find(">Input<").expect("Input header");
    let output_at = page.find(">Output<").expect("Output header");
    let caption_at = page.find("st.session_state object:").expect("the st.write caption");
    let dump = html::part(&page, "pre", "state").expect("the state dump");
    assert!(input_at < pounds_at && pounds_at < kilograms_at && kilograms_at < output_at);
    assert!(output_at < caption_at && caption_at < dump.start);

    // The dump is the state as indented JSON, in widget order.
    let shown = html::text(&page, &dump);
    assert!(shown.contains('\n'), "the dump is not indented: {shown:?}");
    assert_eq!(check_state_json(&shown), Ok((0.0, 0.0)), "{shown}");
}

#[tokio::test]
async fn the_page_is_one_live_view_of_its_session() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let page = app.page(&sid).await;
    let main = assert_live_root(&page, "main", &format!("s:{sid}"), "/events", "the page");
    // Everything the user sees is inside it.
    let main_html = html::inner_html(&page, &main);
    for part in ["lbs", "kg"] {
        assert!(html::part(main_html, "input", part).is_some(), "the {part} field is outside the view");
    }
    assert!(html::part(main_html, "pre", "state").is_some(), "the dump is outside the view");
    // It names itself, and its forms post as it, so its own change is not
    // echoed back to it.
    let view = main.attr("data-view").expect("the page names its view");
    assert_view_id(view, "the page's view");
    let hidden: Vec<html::Tag> =
        html::tags(&page, "input").into_iter().filter(|i| i.attr("name") == Some("view")).collect();
    assert!(hidden.iter().all(|i| i.attr("type") == Some("hidden")), "{hidden:?}");
    let views: Vec<Option<&str>> = hidden.iter().map(|i| i.attr("value")).collect();
    assert_eq!(views, [Some(view), Some(view)], "each form posts the page's view");
    // The dump and the message lines are what updates name.
    let dump = html::part(&page, "pre", "state").expect("the dump");
    assert_eq!(dump.id(), "", "the dump has no id: {dump:?}");
    assert_eq!(dump.attr("data-version"), Some("0"), "{dump:?}");
    for key in ["lbs", "kg"] {
        let message = html::part(&page, "p", &format!("{key}-msg")).expect("a message line");
        assert_eq!((message.attr("role"), message.attr("data-version")), (Some("alert"), Some("0")));
        assert_eq!(html::text(&page, &message), "", "{key}: a message on a fresh page");
    }
}

#[tokio::test]
async fn element_ids_are_per_view_and_labels_point_at_them() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let first = app.page(&sid).await;
    let second = app.page(&sid).await;
    let first_ids = assert_view_ids(&first, "input", "the page");
    let second_ids = assert_view_ids(&second, "input", "the page again");
    assert_eq!(first_ids.len(), 6, "a field, its message and its hint, twice: {first_ids:?}");
    for id in &first_ids {
        assert!(!second_ids.contains(id), "two renders of the page share the id {id}");
    }
    // The ids are the view's: the one the page names itself by.
    let view = html::tags(&first, "main")[0].attr("data-view").expect("data-view").to_owned();
    assert_eq!(
        first_ids,
        [
            format!("wc-{view}-lbs"),
            format!("wc-{view}-lbs-msg"),
            format!("wc-{view}-lbs-hint"),
            format!("wc-{view}-kg"),
            format!("wc-{view}-kg-msg"),
            format!("wc-{view}-kg-hint"),
        ]
    );
}

#[tokio::test]
async fn each_field_is_a_plain_form_with_set_before_minus_and_plus() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let page = app.page(&sid).await;
    for key in ["lbs", "kg"] {
        let action = format!("/s/{sid}/widgets/{key}");
        let (form, inside) = html::form_with_action(&page, &action)
            .unwrap_or_else(|| panic!("no <form action={action:?}> in {page}"));
        assert!(form.attr("method").is_some_and(|m| m.eq_ignore_ascii_case("post")), "{form:?}");
        let input = html::tags(inside, "input").into_iter().find(|i| i.attr("name") == Some(key));
        let input = input.unwrap_or_else(|| panic!("the {key} input is not inside its form"));
        assert_eq!(input.attr("data-part"), Some(key), "{input:?}");
        assert!(input.id().starts_with("wc-") && input.id().ends_with(&format!("-{key}")), "{input:?}");
        // app.js applies the answer itself; htmx swaps nothing.
        assert_eq!(form.attr("hx-swap"), Some("none"), "{form:?}");
        assert_eq!(form.attr("hx-post"), Some(action.as_str()), "{form:?}");

        let submits: Vec<html::Tag> = html::tags(inside, "button")
            .into_iter()
            .filter(|b| b.attr("type").is_none_or(|t| t.eq_ignore_ascii_case("submit")))
            .collect();
        assert_eq!(submits.len(), 3, "{key}: a plain submit, − and +: {inside}");
        assert!(
            !submits[0].has("name") && !submits[0].has("value"),
            "{key}: Enter presses the first submit button, which must not step: {:?}",
            submits[0]
        );
        let minus = &submits[1];
        let plus = &submits[2];
        assert_eq!((minus.attr("name"), minus.attr("value")), (Some("step"), Some("down")));
        assert_eq!((plus.attr("name"), plus.attr("value")), (Some("step"), Some("up")));
        assert!(["−", "-"].contains(&html::text(inside, minus).trim()), "{key}: − button text");
        assert_eq!(html::text(inside, plus).trim(), "+", "{key}: + button text");
    }
}

#[tokio::test]
async fn fields_show_two_decimals_and_the_dump_full_precision() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    app.commit(&sid, "lbs", "10").await;
    let page = app.page(&sid).await;
    let value = |key: &str| html::part(&page, "input", key).and_then(|t| t.attr("value").map(str::to_owned));
    assert_eq!(value("lbs").as_deref(), Some("10.00"));
    assert_eq!(value("kg").as_deref(), Some("4.54"));
    let dump = html::part(&page, "pre", "state").expect("dump");
    let shown = html::text(&page, &dump);
    assert_eq!(check_state_json(&shown), Ok((10.0, 4.5359237)), "{shown}");
    assert!(shown.contains("4.5359237") && shown.contains("10.0"), "{shown}");
}

#[tokio::test]
async fn a_reload_keeps_the_state() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    app.commit(&sid, "kg", "2").await;
    let first = app.page(&sid).await;
    let second = app.page(&sid).await;
    for page in [first, second] {
        let kg = html::part(&page, "input", "kg").expect("kg input");
        assert_eq!(kg.attr("value"), Some("2.00"));
    }
}

// ---- POST /s/{sid}/widgets/{key} with htmx --------------------------------

#[tokio::test]
async fn htmx_pounds_update_kilograms_and_the_dump_but_never_pounds() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let reply = app.post_form(&sid, "lbs", &[("lbs", "10")], true).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.content_type().starts_with("text/html"), "{}", reply.content_type());
    assert_no_store(&reply.headers, "htmx commit");
    let body = &reply.body;
    assert!(!body.contains("<html"), "a fragment, not a page: {body}");

    // Never the field being typed in.
    assert_update(body, &[("p", "lbs-msg"), ("input", "kg"), ("p", "kg-msg"), ("pre", "state")], "lbs=10");
    let kg = html::part(body, "input", "kg").expect("checked above");
    assert_eq!((kg.attr("value"), kg.attr("data-version")), (Some("4.54"), Some("1")));
    let dump = html::part(body, "pre", "state").expect("checked above");
    assert_eq!(dump.attr("data-version"), Some("1"), "{dump:?}");
    assert!(html::text(body, &dump).contains("4.5359237"), "{body}");
    assert_eq!(app.state_json(&sid).await, r#"{"lbs":10.0,"kg":4.5359237}"#);
}

#[tokio::test]
async fn htmx_kilograms_update_pounds_and_the_dump_but_never_kilograms() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let reply = app.post_form(&sid, "kg", &[("kg", "1")], true).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert_update(body, &[("input", "lbs"), ("p", "lbs-msg"), ("p", "kg-msg"), ("pre", "state")], "kg=1");
    let lbs = html::part(body, "input", "lbs").expect("checked above");
    assert_eq!(lbs.attr("value"), Some("2.20"));

    let state = app.state_json(&sid).await;
    assert_eq!(raw_number(&state, "kg"), "1.0");
    let pounds = number(&state, "lbs");
    assert!(close(pounds, 1.0 / LB_IN_KG), "1 kg is {pounds} lb");
    let dump = html::part(body, "pre", "state").expect("dump");
    let dumped = html::text(body, &dump);
    assert!(dumped.contains(raw_number(&state, "lbs")), "the dump {dumped} disagrees with {state}");
}

#[tokio::test]
async fn a_valid_commit_clears_an_earlier_message() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    assert_eq!(app.post_form(&sid, "lbs", &[("lbs", "ten")], true).await.status, 422);
    let reply = app.post_form(&sid, "lbs", &[("lbs", "10")], true).await;
    assert_eq!(reply.status, 200);
    let message = html::part(&reply.body, "p", "lbs-msg").expect("the lbs message comes back");
    assert_eq!((message.attr("role"), message.attr("data-version")), (Some("alert"), Some("1")));
    assert!(!message.has("id"), "{message:?}");
    assert_eq!(html::text(&reply.body, &message).trim(), "", "the old message stays");
}

// ---- POST without htmx: post/redirect/get ----------------------------------

#[tokio::test]
async fn without_javascript_a_post_redirects_back_and_the_change_sticks() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let reply = app.post_form(&sid, "lbs", &[("lbs", "10")], false).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(reply.header("location"), format!("/s/{sid}"));
    assert_eq!(app.state_json(&sid).await, r#"{"lbs":10.0,"kg":4.5359237}"#);

    // What the browser then shows.
    let page = app.page(&sid).await;
    let value = |key: &str| html::part(&page, "input", key).and_then(|t| t.attr("value").map(str::to_owned));
    assert_eq!(value("lbs").as_deref(), Some("10.00"));
    assert_eq!(value("kg").as_deref(), Some("4.54"));

    let reply = app.post_form(&sid, "kg", &[("kg", "1")], false).await;
    assert_eq!(reply.status, 303);
    let state = app.state_json(&sid).await;
    assert_eq!(raw_number(&state, "kg"), "1.0");
    assert!(close(number(&state, "lbs"), 1.0 / LB_IN_KG), "{state}");
}

#[tokio::test]
async fn a_header_other_than_hx_request_true_is_a_plain_form() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let response = app
        .client
        .post(app.url(&format!("/s/{sid}/widgets/lbs")))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("HX-Request", "false")
        .body("lbs=3")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 303);
}

// ---- − and + ------------------------------------------------------------------

#[tokio::test]
async fn plus_and_minus_step_a_hundredth_and_round_to_two_decimals() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    app.commit(&sid, "lbs", "10").await;

    // The kg field shows 4.54 while the state holds 4.5359237: + gives 4.55.
    let reply = app.post_form(&sid, "kg", &[("kg", "4.54"), ("step", "up")], false).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let state = app.state_json(&sid).await;
    assert_eq!(raw_number(&state, "kg"), "4.55", "{state}");
    assert!(close(number(&state, "lbs"), 4.55 / LB_IN_KG), "the kg callback ran: {state}");

    // − with htmx: the stepped field itself changes, so it comes back too.
    let reply = app.post_form(&sid, "kg", &[("kg", "4.55"), ("step", "down")], true).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let parts = [("input", "lbs"), ("p", "lbs-msg"), ("input", "kg"), ("p", "kg-msg"), ("pre", "state")];
    assert_update(&reply.body, &parts, "kg step down");
    let kg = html::part(&reply.body, "input", "kg").expect("the stepped field comes back");
    assert_eq!(kg.attr("value"), Some("4.54"));
    let lbs = html::part(&reply.body, "input", "lbs").expect("the other field comes back");
    assert_eq!(lbs.attr("value"), Some(format!("{:.2}", 4.54 / LB_IN_KG).as_str()));
    assert_eq!(raw_number(&app.state_json(&sid).await, "kg"), "4.54");

    // A step starts from what was typed, not from the state.
    app.post_form(&sid, "lbs", &[("lbs", "3"), ("step", "up")], false).await;
    assert_eq!(raw_number(&app.state_json(&sid).await, "lbs"), "3.01");
    app.post_form(&sid, "lbs", &[("lbs", "0"), ("step", "down")], false).await;
    assert_eq!(raw_number(&app.state_json(&sid).await, "lbs"), "-0.01");
}

#[tokio::test]
async fn stepping_a_huge_value_does_not_overflow() {
    // 1e307 + 0.01 is 1e307 in floating point; rounding that to two
    // decimals must not pass through infinity and be refused.
    let app = spawn_app().await;
    let sid = app.new_session().await;
    for (text, step) in [("1e307", "up"), ("-1e307", "down"), ("1e300", "up")] {
        let reply = app.post_form(&sid, "lbs", &[("lbs", text), ("step", step)], true).await;
        assert_eq!(reply.status, 200, "lbs={text}&step={step}: {}", reply.body);
        let lbs = number(&app.state_json(&sid).await, "lbs");
        assert_eq!(lbs, text.parse::<f64>().unwrap(), "lbs={text}&step={step}");
    }
}

// ---- Streamlit's semantics -----------------------------------------------------

#[tokio::test]
async fn a_callback_runs_only_when_the_value_changed() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    app.commit(&sid, "lbs", "10").await;
    let before = app.snapshot(&sid).await;
    assert_eq!(before.0, r#"{"lbs":10.0,"kg":4.5359237}"#);

    // The same value, however written, with and without htmx.
    for (text, htmx) in [("10", true), ("10", false), ("10.00", true), (" 10 ", false), ("1e1", true)] {
        let reply = app.post_form(&sid, "lbs", &[("lbs", text)], htmx).await;
        assert_eq!(reply.status, if htmx { 200 } else { 303 }, "{text:?}");
        assert_eq!(
            app.snapshot(&sid).await,
            before,
            "posting lbs={text:?} again changed the state or version"
        );
    }
    // Kilograms shows 4.54: committing it untouched is no change, so the
    // kg callback does not turn 10 lb into 10.0089… lb.
    let reply = app.post_form(&sid, "kg", &[("kg", "4.54")], true).await;
    assert_eq!(reply.status, 200);
    assert_eq!(app.snapshot(&sid).await, before, "an untouched kg field ran its callback");

    // A real change moves the version on.
    app.commit(&sid, "lbs", "11").await;
    let after = app.snapshot(&sid).await;
    assert!(after.1 > before.1, "version {} after a change, was {}", after.1, before.1);
}

#[tokio::test]
async fn an_empty_field_commits_zero() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    for (key, blank) in [("lbs", ""), ("kg", "   ")] {
        app.commit(&sid, key, "10").await;
        assert_ne!(app.state_json(&sid).await, r#"{"lbs":0.0,"kg":0.0}"#);
        let reply = app.post_form(&sid, key, &[(key, blank)], true).await;
        assert_eq!(reply.status, 200, "{key}={blank:?}: {}", reply.body);
        assert_eq!(app.state_json(&sid).await, r#"{"lbs":0.0,"kg":0.0}"#, "{key}={blank:?}");
    }
}

#[tokio::test]
async fn spaces_a_leading_plus_and_exponents_are_accepted() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    for (text, want) in [
        (" 12 ", "12.0"),
        ("+2.5", "2.5"),
        ("1e3", "1000.0"),
        ("1E-2", "0.01"),
        ("\t7\n", "7.0"),
        (".5", "0.5"),
    ] {
        for htmx in [true, false] {
            app.commit(&sid, "lbs", "99").await; // so each post is a change
            let reply = app.post_form(&sid, "lbs", &[("lbs", text)], htmx).await;
            assert_eq!(reply.status, if htmx { 200 } else { 303 }, "lbs={text:?}: {}", reply.body);
            assert_eq!(raw_number(&app.state_json(&sid).await, "lbs"), want, "lbs={text:?}");
        }
    }
    // A raw `+` in a form body is a space, so `lbs=+5` is " 5".
    app.commit(&sid, "kg", "1").await;
    let reply = app.post_widget(&sid, "kg", "kg=+5", true).await;
    assert_eq!(reply.status(), 200);
    assert_eq!(raw_number(&app.state_json(&sid).await, "kg"), "5.0");
}

#[tokio::test]
async fn huge_but_finite_pounds_are_accepted() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    app.commit(&sid, "lbs", "1e308").await;
    let (lbs, kg) = check_state_json(&app.state_json(&sid).await).expect("valid state");
    assert_eq!(lbs, 1e308);
    assert!(close(kg, 1e308 * LB_IN_KG));
}

// ---- Read-only views ----------------------------------------------------------

#[tokio::test]
async fn state_json_is_an_object_in_widget_order() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    app.commit(&sid, "kg", "3").await;
    let reply = app.get(&format!("/s/{sid}/state.json")).await;
    assert_eq!(reply.status, 200);
    assert!(reply.content_type().starts_with("application/json"), "{}", reply.content_type());
    assert_no_store(&reply.headers, "state.json");
    assert!(reply.body.starts_with(r#"{"lbs":"#), "lbs first: {}", reply.body);
    let (lbs, kg) = check_state_json(&reply.body).expect("valid state.json");
    assert_eq!(kg, 3.0);
    assert!(close(lbs, 3.0 / LB_IN_KG));
}

#[tokio::test]
async fn the_state_fragment_is_the_dump_alone() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    app.commit(&sid, "lbs", "10").await;
    let reply = app.get(&format!("/s/{sid}/fragments/state")).await;
    assert_eq!(reply.status, 200);
    assert!(reply.content_type().starts_with("text/html"), "{}", reply.content_type());
    assert_no_store(&reply.headers, "the state fragment");
    let body = &reply.body;
    for whole_page in ["<html", "<head", "<body", "<!DOCTYPE", "<!doctype"] {
        assert!(!body.contains(whole_page), "a fragment, not a page: {body}");
    }
    let root = assert_live_root(body, "div", &format!("s:{sid}"), &format!("{}/events", app.base), "state");
    assert!(!root.has("data-view"), "the dump writes nothing: {root:?}");
    let dump = html::part(body, "pre", "state").unwrap_or_else(|| panic!("no dump in {body}"));
    assert_eq!(dump.id(), "", "{dump:?}");
    assert_eq!(check_state_json(&html::text(body, &dump)), Ok((10.0, 4.5359237)), "{body}");
    assert_eq!(
        common::checks::part_names(body),
        [("pre".to_owned(), "state".to_owned())],
        "the dump alone: {body}"
    );
    assert!(html::tags(body, "input").is_empty(), "the dump alone: {body}");
}

#[tokio::test]
async fn healthz_answers() {
    let app = spawn_app().await;
    let reply = app.get("/healthz").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn form_bodies_are_encoded_as_browsers_do() {
    // The helper every test above relies on.
    assert_eq!(form_body(&[("lbs", "+1 e")]), "lbs=%2B1+e");
}

/// `X-Request-Id`: a new id for each request, echoed; a proxy's own only
/// from a trusted proxy, and only if it is plain.
#[tokio::test]
async fn every_response_names_its_request() {
    let app = spawn_app().await;
    let id = |response: &reqwest::Response| response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let first = id(&app.get_with("/healthz", &[]).await);
    let second = id(&app.get_with("/nowhere", &[]).await);
    assert_ne!(first, second);
    for new in [&first, &second] {
        assert!(new.len() == 16 && new.bytes().all(|b| b.is_ascii_hexdigit()), "{new}");
    }
    let claimed = id(&app.get_with("/healthz", &[("x-request-id", "from-a-stranger")]).await);
    assert_ne!(claimed, "from-a-stranger", "an untrusted peer names nothing");

    let behind_proxy = common::spawn_app_with(common::config(&["--trusted-proxies", "127.0.0.1/32"])).await;
    let kept = behind_proxy.get_with("/healthz", &[("x-request-id", "edge-7f3a.1")]).await;
    assert_eq!(id(&kept), "edge-7f3a.1");
    let garbage = behind_proxy.get_with("/healthz", &[("x-request-id", "a b <c>")]).await;
    assert_eq!(id(&garbage).len(), 16, "a messy id is replaced");
}
