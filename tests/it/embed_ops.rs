//! Issue 4 on the real server over HTTP: read-only tokens, embeddable
//! fragments with absolute URLs, CORS for other origins, `frame-ancestors`,
//! session expiry and LRU eviction, metrics, health, and logs that never
//! hold a whole capability (on the compiled binary).
//! Body limits (413) are covered in `http_errors.rs`.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::binary::{self, KillOnDrop};
use common::checks::{
    Reply, assert_error_page, assert_live_root, assert_view_id, assert_view_ids, check_state_json, part_names,
};
use common::html;
use common::metrics::sample;
use common::sse::{READ_TIMEOUT, SseStream, dump_pair};
use common::{TestApp, spawn_app, spawn_app_with};
use reqwest::Method;
use weight_converter::Config;

/// The host page's origin, allowed in the CORS tests.
const HOST_ORIGIN: &str = "http://host.example";
/// An origin nobody allowed.
const EVIL_ORIGIN: &str = "http://evil.example";
/// Generous bounds on anything polled: only there to turn a hang into a failure.
const POLL_LIMIT: Duration = Duration::from_secs(15);

/// Attributes that hold URLs in our markup: links and forms, the stream
/// `app.js` opens (`data-wc-events`) and the status line's way back to a
/// new session (`data-restart-href`).
const URL_ATTRS: [&str; 7] =
    ["hx-post", "hx-get", "action", "data-wc-events", "data-restart-href", "href", "src"];

// ---- helpers ----------------------------------------------------------------------------

/// Every URL-valued attribute in `markup`, as `(attribute, value)`.
fn urls(markup: &str) -> Vec<(String, String)> {
    html::start_tags(markup)
        .into_iter()
        .flat_map(|tag| {
            URL_ATTRS
                .iter()
                .filter_map(move |name| tag.attr(name).map(|v| ((*name).to_owned(), v.to_owned())))
        })
        .collect()
}

/// Checks that every URL in a fragment starts with `base` followed by `/`,
/// and returns the URL attributes' names.
fn assert_absolute_urls(markup: &str, base: &str, what: &str) -> Vec<String> {
    let found = urls(markup);
    let prefix = format!("{base}/");
    for (name, value) in &found {
        assert!(value.starts_with(&prefix), "{what}: {name}={value:?} does not start with {prefix}");
    }
    found.into_iter().map(|(name, _)| name).collect()
}

/// A fragment: HTML, and not a whole document.
fn assert_fragment(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {}", reply.body);
    assert!(reply.content_type().starts_with("text/html"), "{what}: {}", reply.content_type());
    let lower = reply.body.to_ascii_lowercase();
    for whole in ["<html", "<head", "<body", "<!doctype"] {
        assert!(!lower.contains(whole), "{what}: has {whole}: {}", reply.body);
    }
}

/// `GET path` with these headers, read to the end.
async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Reply {
    Reply::read(app.get_with(path, headers).await).await
}

/// Any request with these headers (and body), read to the end.
async fn request(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/x-www-form-urlencoded").body(body.to_owned());
    }
    Reply::read(request.send().await.expect("request")).await
}

/// A header's value, if present and ASCII.
fn opt_header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.get(name).map(|v| v.to_str().expect("ASCII header"))
}

/// The comma-separated items of a header, lower-cased.
fn header_list(reply: &Reply, name: &str) -> Vec<String> {
    opt_header(reply, name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Checks that nothing of a session's writable id is in `text`.
fn assert_no_sid(text: &str, sid: &str, what: &str) {
    assert!(!text.contains(sid), "{what} reveals the session id {sid}:\n{text}");
    assert!(!text.contains("/s/"), "{what} links a writable /s/ URL:\n{text}");
}

/// The sources of one CSP directive.
fn csp_directive(reply: &Reply, name: &str) -> Vec<String> {
    let csp = reply.header("content-security-policy");
    csp.split(';')
        .map(str::trim)
        .find_map(|d| {
            let mut words = d.split_ascii_whitespace();
            words.next().filter(|n| n.eq_ignore_ascii_case(name))?;
            Some(words.map(str::to_owned).collect())
        })
        .unwrap_or_else(|| panic!("no {name} in CSP {csp}"))
}

/// `/metrics`, as text.
async fn metrics(app: &TestApp) -> String {
    let reply = app.get("/metrics").await;
    assert_eq!(reply.status, 200);
    reply.body
}

/// Polls a gauge until `done(value)`; panics after [`POLL_LIMIT`].
async fn wait_for_gauge(app: &TestApp, name: &str, done: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + POLL_LIMIT;
    loop {
        let text = metrics(app).await;
        let value = sample(&text, name).unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"));
        if done(value) {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} stuck at {value}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Opens an event stream that must answer 200.
async fn stream(app: &TestApp, path: &str) -> SseStream {
    SseStream::connect(&app.client, &app.url(path), None).await
}

// ---- read-only tokens -------------------------------------------------------------------

#[tokio::test]
async fn the_page_links_a_read_only_token_unlike_the_session_id() {
    let app = spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    assert!(token.len() >= 22, "token {token:?} is shorter than 22 characters");
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token:?}");
    assert_ne!(token, sid);
    assert!(!token.contains(&sid) && !sid.contains(&token));
    // Stable for the session, distinct between sessions.
    assert_eq!(common::checks::read_token(&app.page(&sid).await), token);
    let (_, other) = app.session_and_token().await;
    assert_ne!(other, token);
    // The session id is not a token.
    assert_eq!(app.get(&format!("/v/{sid}")).await.status, 404);
}

#[tokio::test]
async fn the_read_only_view_shows_the_state_and_never_the_session_id() {
    let app = spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    app.commit(&sid, "lbs", "10").await;

    let page = app.get(&format!("/v/{token}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.content_type().starts_with("text/html"));
    let body = &page.body;
    assert!(body.contains("4.5359237"), "the dump shows full precision: {body}");
    let kg = html::part(body, "output", "kg").expect("a kg value");
    assert_eq!(html::text(body, &kg).trim(), "4.54", "the kg value shows two decimals");
    let lbs = html::part(body, "output", "lbs").expect("an lbs value");
    assert_eq!(html::text(body, &lbs).trim(), "10.00");
    // Labelled by ids of this view alone.
    let ids = assert_view_ids(body, "output", "/v/{token}");
    let again = app.get(&format!("/v/{token}")).await.body;
    for id in assert_view_ids(&again, "output", "/v/{token} again") {
        assert!(!ids.contains(&id), "two renders of the read-only page share the id {id}");
    }
    assert_eq!(dump_pair(body), (10.0, 4.5359237));
    let lower = body.to_ascii_lowercase();
    for writable in ["<input", "<form", "<button", "<textarea", "<select", "hx-post", "contenteditable"] {
        assert!(!lower.contains(writable), "the read-only page has {writable}: {body}");
    }
    assert_no_sid(body, &sid, "/v/{token}");
    // It is live: it watches the session by its token, and writes nothing.
    let main = assert_live_root(body, "main", &format!("v:{token}"), "/events", "/v/{token}");
    assert!(!main.has("data-view"), "a read-only view names no writer: {main:?}");

    for path in ["fragments/state", "fragments/converter"] {
        let reply = app.get(&format!("/v/{token}/{path}")).await;
        assert_fragment(&reply, path);
        assert_no_sid(&reply.body, &sid, path);
        let events = format!("{}/events", app.base);
        let root = assert_live_root(&reply.body, "div", &format!("v:{token}"), &events, path);
        assert!(!root.has("data-view"), "{path}: {root:?}");
        if path == "fragments/converter" {
            assert_view_ids(&reply.body, "output", path);
        }
        let lower = reply.body.to_ascii_lowercase();
        assert!(!lower.contains("<input") && !lower.contains("<form"), "{path}: {}", reply.body);
        assert!(reply.body.contains("4.5359237") || reply.body.contains("4.54"), "{path}: {}", reply.body);
        assert_absolute_urls(&reply.body, &app.base, path);
    }

    let json = app.get(&format!("/v/{token}/state.json")).await;
    assert_eq!(json.status, 200);
    assert!(json.content_type().starts_with("application/json"), "{}", json.content_type());
    assert_eq!(check_state_json(&json.body), Ok((10.0, 4.5359237)));
    assert_eq!(json.body, app.state_json(&sid).await, "the same state as the session's");
    assert_no_sid(&json.body, &sid, "state.json");

    let mut events = stream(&app, &format!("/v/{token}/events")).await;
    let first = events.expect_event().await;
    assert_eq!(first.event, "state");
    assert_eq!(first.pair(), (10.0, 4.5359237));
    assert_no_sid(&first.data, &sid, "the first read-only event");
    assert!(!first.data.to_ascii_lowercase().contains("<input"), "{}", first.data);
    assert!(!first.id.as_deref().unwrap_or("").contains(&sid));
    // And on the one stream the views' app.js opens for the token.
    let mut shared = stream(&app, &format!("/events?v={token}")).await;
    let first = shared.expect_event().await;
    let (label, html) = first.data.split_once('\n').expect("a labelled event");
    assert_eq!((first.event.as_str(), label), ("state", format!("v:{token}").as_str()));
    assert_eq!(dump_pair(html), (10.0, 4.5359237));
    assert_no_sid(&first.data, &sid, "the first event of /events?v=");
}

#[tokio::test]
async fn the_read_only_stream_gets_live_updates() {
    let app = spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    let mut events = stream(&app, &format!("/v/{token}/events")).await;
    let first = events.expect_event().await;
    assert_eq!(first.pair(), (0.0, 0.0));
    let start = first.version();

    let reply = app.post_form(&sid, "lbs", &[("lbs", "10")], true).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seen = events.read_until_version(start + 1).await;
    let last = seen.last().expect("an event");
    assert_eq!(last.pair(), (10.0, 4.5359237));
    assert_no_sid(&last.data, &sid, "a read-only change event");

    let reply = app.post_form(&sid, "kg", &[("kg", "1")], true).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seen = events.read_until_version(start + 2).await;
    let (lbs, kg) = seen.last().expect("an event").pair();
    assert_eq!(kg, 1.0);
    assert!((lbs - 1.0 / 0.45359237).abs() < 1e-9, "{lbs}");
    for event in &seen {
        assert_no_sid(&event.data, &sid, "a read-only event");
    }
}

#[tokio::test]
async fn nothing_writes_through_a_token() {
    let app = spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    app.commit(&sid, "lbs", "10").await;
    let before = app.snapshot(&sid).await;

    let body = "lbs=99&kg=99&step=up";
    // No write route takes a token (404); a token is no session id (404);
    // the token's own routes are read-only (405).
    let attempts = [
        (Method::POST, format!("/v/{token}/widgets/lbs"), 404),
        (Method::POST, format!("/v/{token}/widgets/kg"), 404),
        (Method::POST, format!("/s/{token}/widgets/lbs"), 404),
        (Method::POST, format!("/s/{token}/widgets/kg"), 404),
        (Method::POST, format!("/v/{token}"), 405),
        (Method::PUT, format!("/v/{token}"), 405),
        (Method::POST, format!("/v/{token}/state.json"), 405),
        (Method::POST, format!("/v/{token}/fragments/converter"), 405),
        (Method::POST, format!("/v/{token}/fragments/state"), 405),
        (Method::POST, format!("/v/{token}/events"), 405),
    ];
    for (method, path, status) in attempts {
        for htmx in [false, true] {
            let headers: &[(&str, &str)] = if htmx { &[("hx-request", "true")] } else { &[] };
            let reply = request(&app, method.clone(), &path, headers, Some(body)).await;
            assert_eq!(reply.status, status, "{method} {path} (htmx: {htmx}): {}", reply.body);
            assert_no_sid(&reply.body, &sid, &format!("{method} {path}"));
        }
    }
    assert_eq!(app.snapshot(&sid).await, before, "a write through the token changed the state");
    // The token still reads.
    assert_eq!(app.get(&format!("/v/{token}")).await.status, 200);
}

#[tokio::test]
async fn an_unknown_token_is_404() {
    let app = spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    // Well-formed but unknown; malformed; the session id itself.
    let first = if token.starts_with('A') { 'B' } else { 'A' };
    let unknown = format!("{first}{}", &token[1..]);
    for bad in [unknown.as_str(), "nope", "not*a*token*at*all*12345", &"A".repeat(40), sid.as_str()] {
        for path in ["", "/state.json", "/fragments/state", "/fragments/converter", "/events"] {
            let reply = app.get(&format!("/v/{bad}{path}")).await;
            assert_eq!(reply.status, 404, "/v/{bad}{path}: {}", reply.body);
            assert!(reply.content_type().starts_with("text/html"), "/v/{bad}{path}");
        }
    }
    let reply = app.get(&format!("/v/{unknown}")).await;
    assert_error_page(&reply, "an unknown token");
}

// ---- embedding fragments ----------------------------------------------------------------

#[tokio::test]
async fn fragments_are_fragments_with_absolute_urls_from_the_host_header() {
    let app = spawn_app().await;
    let sid = app.new_session().await;

    let converter = app.get(&format!("/s/{sid}/fragments/converter")).await;
    assert_fragment(&converter, "the converter");
    let names = assert_absolute_urls(&converter.body, &app.base, "the converter");
    for needed in ["hx-post", "action", "data-wc-events"] {
        assert!(names.iter().any(|n| n == needed), "the converter has no {needed}: {}", converter.body);
    }
    let posts: Vec<_> = urls(&converter.body).into_iter().filter(|(n, _)| n == "hx-post").collect();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts.iter().any(|(_, u)| *u == format!("{}/s/{sid}/widgets/lbs", app.base)), "{posts:?}");
    let events = format!("{}/events", app.base);
    let root = assert_live_root(&converter.body, "div", &format!("s:{sid}"), &events, "the converter");
    let view = root.attr("data-view").expect("the converter names its view");
    assert_view_id(view, "the converter");
    // Its forms post as it, so its own change is not echoed back to it.
    let posted: Vec<String> = html::tags(&converter.body, "input")
        .iter()
        .filter(|i| i.attr("name") == Some("view") && i.attr("type") == Some("hidden"))
        .filter_map(|i| i.attr("value").map(str::to_owned))
        .collect();
    assert_eq!(posted, [view, view], "{}", converter.body);
    let ids = assert_view_ids(&converter.body, "input", "the converter");
    assert_eq!(ids[0], format!("wc-{view}-lbs"), "{ids:?}");
    // Two fragments on one host page: no id in common.
    let other = app.get(&format!("/s/{sid}/fragments/converter")).await;
    for id in assert_view_ids(&other.body, "input", "the converter again") {
        assert!(!ids.contains(&id), "two converters of one session share the id {id}");
    }

    let state = app.get(&format!("/s/{sid}/fragments/state")).await;
    assert_fragment(&state, "the state");
    let names = assert_absolute_urls(&state.body, &app.base, "the state");
    assert!(names.iter().any(|n| n == "data-wc-events"), "the state has no stream: {}", state.body);
    let root = assert_live_root(&state.body, "div", &format!("s:{sid}"), &events, "the state");
    assert!(!root.has("data-view"), "the state writes nothing: {root:?}");
    assert_eq!(part_names(&state.body), [("pre".to_owned(), "state".to_owned())], "{}", state.body);

    // Another Host: the URLs follow it, not the address the server bound.
    let custom =
        get_with(&app, &format!("/s/{sid}/fragments/converter"), &[("host", "weights.test:8443")]).await;
    assert_fragment(&custom, "the converter via another host");
    let names =
        assert_absolute_urls(&custom.body, "http://weights.test:8443", "the converter via another host");
    assert!(names.len() >= 3, "{}", custom.body);
}

#[tokio::test]
async fn the_fragments_stream_stays_live() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let state = app.get(&format!("/s/{sid}/fragments/state")).await;
    // What app.js opens: the root's stream, for the session it watches.
    let root =
        html::start_tags(&state.body).into_iter().find(|t| t.has("data-wc-watch")).expect("a live root");
    let (events_url, watch) = (root.attr("data-wc-events").unwrap(), root.attr("data-wc-watch").unwrap());
    let (kind, id) = watch.split_once(':').expect("s:{sid}");
    let url = format!("{events_url}?{kind}={id}");
    let mut events = SseStream::connect(&app.client, &url, None).await;
    let first = events.expect_event().await;
    let (label, html) = first.data.split_once('\n').expect("a labelled event");
    assert_eq!((first.event.as_str(), label, dump_pair(html)), ("state", watch, (0.0, 0.0)));
    let reply = app.post_form(&sid, "lbs", &[("lbs", "10")], true).await;
    assert_eq!(reply.status, 200);
    let next = events.expect_event().await;
    let (label, html) = next.data.split_once('\n').expect("a labelled event");
    assert_eq!((next.event.as_str(), label, dump_pair(html)), ("state", watch, (10.0, 4.5359237)));
}

#[tokio::test]
async fn public_url_is_the_base_of_every_fragment_url() {
    let app = spawn_app_with(common::config(&["--public-url", "https://weights.example.com"])).await;
    let (sid, token) = app.session_and_token().await;
    for path in [
        format!("/s/{sid}/fragments/converter"),
        format!("/s/{sid}/fragments/state"),
        format!("/v/{token}/fragments/converter"),
        format!("/v/{token}/fragments/state"),
    ] {
        // Whatever the Host says, even a malformed one.
        for host in [None, Some("other.example:9"), Some("evil.com/x\"")] {
            let headers: Vec<(&str, &str)> = host.map(|h| ("host", h)).into_iter().collect();
            let reply = get_with(&app, &path, &headers).await;
            assert_fragment(&reply, &path);
            let names = assert_absolute_urls(&reply.body, "https://weights.example.com", &path);
            assert!(names.iter().any(|n| n == "data-wc-events"), "{path}: {}", reply.body);
            let root = html::start_tags(&reply.body).into_iter().find(|t| t.has("data-wc-watch"));
            let root = root.unwrap_or_else(|| panic!("{path}: no live root"));
            assert_eq!(root.attr("data-wc-events"), Some("https://weights.example.com/events"), "{path}");
            assert!(!reply.body.contains(&app.base), "{path} names the bound address");
        }
    }
}

/// `?stream=shared` once left a fragment without a stream of its own; it
/// is accepted and ignored now: app.js shares one stream among all the
/// views of a page, so every fragment is a live view like the others.
#[tokio::test]
async fn a_shared_state_fragment_is_a_live_view_like_the_others() {
    let app = spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    app.commit(&sid, "lbs", "10").await;
    let events = format!("{}/events", app.base);
    for (path, watch) in [
        (format!("/s/{sid}/fragments/state"), format!("s:{sid}")),
        (format!("/v/{token}/fragments/state"), format!("v:{token}")),
    ] {
        let shared_path = format!("{path}?stream=shared");
        let shared = app.get(&shared_path).await;
        assert_fragment(&shared, &shared_path);
        let root = assert_live_root(&shared.body, "div", &watch, &events, &shared_path);
        assert!(!root.has("data-view"), "{shared_path}: {root:?}");
        assert_eq!(part_names(&shared.body), [("pre".to_owned(), "state".to_owned())], "{}", shared.body);
        assert_eq!(dump_pair(&shared.body), (10.0, 4.5359237));
        assert_absolute_urls(&shared.body, &app.base, &shared_path);
        // The very same fragment as without the parameter.
        assert_eq!(shared.body, app.get(&path).await.body, "{shared_path}");
        if watch.starts_with("v:") {
            assert_no_sid(&shared.body, &sid, &shared_path);
        }
    }
}

#[tokio::test]
async fn a_malformed_host_is_a_400_page_not_a_url() {
    let app = spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    for host in ["evil.com/x\"", "a<b>", "x@evil.com", "evil.com/\"><script>"] {
        for path in [
            format!("/s/{sid}/fragments/converter"),
            format!("/s/{sid}/fragments/state"),
            format!("/v/{token}/fragments/converter"),
            format!("/v/{token}/fragments/state"),
        ] {
            let reply = get_with(&app, &path, &[("host", host)]).await;
            assert_eq!(reply.status, 400, "{path} with Host {host:?}: {}", reply.body);
            assert!(reply.content_type().starts_with("text/html"), "{}", reply.content_type());
            assert!(reply.body.to_ascii_lowercase().contains("<html"), "an error page: {}", reply.body);
            assert!(!reply.body.contains("evil.com") && !reply.body.contains("a<b>"), "{}", reply.body);
        }
    }
}

// ---- CORS -------------------------------------------------------------------------------

fn allowing_host_page() -> Config {
    common::config(&["--allow-origins", HOST_ORIGIN])
}

/// Asserts the response allows exactly `origin`, with credentials.
fn assert_allows(reply: &Reply, origin: &str, what: &str) {
    assert_eq!(opt_header(reply, "access-control-allow-origin"), Some(origin), "{what}: {:?}", reply.headers);
    assert_eq!(opt_header(reply, "access-control-allow-credentials"), Some("true"), "{what}");
}

/// No `Access-Control-Allow-Origin`, so a browser keeps the answer from
/// the page that asked. (`Access-Control-Allow-Credentials` alone grants
/// nothing; the server sends it whatever the origin.)
fn assert_no_cors(reply: &Reply, what: &str) {
    assert_eq!(opt_header(reply, "access-control-allow-origin"), None, "{what}: {:?}", reply.headers);
}

/// No CORS header of any kind: what the server sends when no origin is allowed.
fn assert_no_cors_at_all(reply: &Reply, what: &str) {
    for (name, _) in &reply.headers {
        assert!(!name.as_str().starts_with("access-control-"), "{what}: {name} in {:?}", reply.headers);
    }
}

/// The browser's preflight before htmx posts a change from another origin.
async fn preflight(app: &TestApp, path: &str, origin: &str) -> Reply {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "hx-request,hx-current-url,content-type"),
    ];
    request(app, Method::OPTIONS, path, &headers, None).await
}

/// Opens an event stream with an `Origin` and returns its headers; the
/// stream is dropped.
async fn stream_headers(app: &TestApp, path: &str, origin: &str) -> Reply {
    let request =
        app.client.get(app.url(path)).header("accept", "text/event-stream").header("origin", origin);
    let response =
        tokio::time::timeout(READ_TIMEOUT, request.send()).await.expect("stream headers").expect("GET");
    assert_eq!(response.status(), 200, "{path}");
    Reply { status: response.status().as_u16(), headers: response.headers().clone(), body: String::new() }
}

#[tokio::test]
async fn an_allowed_origin_gets_a_preflight_allowing_htmx_headers_with_credentials() {
    let app = spawn_app_with(allowing_host_page()).await;
    let sid = app.new_session().await;
    for key in ["lbs", "kg"] {
        let reply = preflight(&app, &format!("/s/{sid}/widgets/{key}"), HOST_ORIGIN).await;
        assert_eq!(reply.status, 200, "preflight: {}", reply.body);
        assert_allows(&reply, HOST_ORIGIN, "the preflight");
        let headers = header_list(&reply, "access-control-allow-headers");
        for needed in ["hx-request", "hx-current-url", "content-type"] {
            assert!(headers.iter().any(|h| h == needed), "{needed} not allowed: {headers:?}");
        }
        assert!(!headers.iter().any(|h| h == "*"), "{headers:?}");
        let methods = header_list(&reply, "access-control-allow-methods");
        assert!(methods.iter().any(|m| m == "post"), "{methods:?}");
    }
}

/// htmx loads a fragment with its own headers, so the browser asks first.
#[tokio::test]
async fn an_allowed_origin_gets_a_preflight_for_loading_fragments() {
    let app = spawn_app_with(allowing_host_page()).await;
    let (sid, token) = app.session_and_token().await;
    for path in [
        format!("/s/{sid}/fragments/converter"),
        format!("/s/{sid}/fragments/state"),
        format!("/v/{token}/fragments/state"),
    ] {
        let headers = [
            ("origin", HOST_ORIGIN),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "hx-request,hx-current-url"),
        ];
        let reply = request(&app, Method::OPTIONS, &path, &headers, None).await;
        assert_eq!(reply.status, 200, "preflight of {path}");
        assert_allows(&reply, HOST_ORIGIN, &path);
        let allowed = header_list(&reply, "access-control-allow-headers");
        assert!(allowed.iter().any(|h| h == "hx-current-url"), "{path}: {allowed:?}");
    }
}

#[tokio::test]
async fn an_allowed_origin_can_embed_stream_and_post() {
    let app = spawn_app_with(allowing_host_page()).await;
    let (sid, token) = app.session_and_token().await;
    let origin = [("origin", HOST_ORIGIN)];

    // The stream the fragments' app.js opens, and the per-session ones.
    for path in
        [format!("/events?s={sid}&v={token}"), format!("/s/{sid}/events"), format!("/v/{token}/events")]
    {
        let reply = stream_headers(&app, &path, HOST_ORIGIN).await;
        assert_allows(&reply, HOST_ORIGIN, &path);
    }
    let reply = get_with(&app, "/assets/app.js", &origin).await;
    assert_eq!(reply.status, 200, "the stable app.js for host pages");
    for path in [
        format!("/s/{sid}/fragments/converter"),
        format!("/s/{sid}/fragments/state"),
        format!("/s/{sid}/fragments/state?stream=shared"),
        format!("/v/{token}/fragments/converter"),
        format!("/v/{token}/fragments/state"),
    ] {
        let reply = get_with(&app, &path, &origin).await;
        assert_fragment(&reply, &path);
        assert_allows(&reply, HOST_ORIGIN, &path);
    }

    let headers =
        [("origin", HOST_ORIGIN), ("hx-request", "true"), ("hx-current-url", "http://host.example/")];
    let reply = request(&app, Method::POST, &format!("/s/{sid}/widgets/lbs"), &headers, Some("lbs=10")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_allows(&reply, HOST_ORIGIN, "the POST");
    assert_eq!(check_state_json(&app.state_json(&sid).await), Ok((10.0, 4.5359237)));
    // Refused input is readable cross-origin too, so its message shows.
    let reply =
        request(&app, Method::POST, &format!("/s/{sid}/widgets/lbs"), &headers, Some("lbs=abc")).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_allows(&reply, HOST_ORIGIN, "a refused POST");
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers() {
    let app = spawn_app_with(allowing_host_page()).await;
    let (sid, token) = app.session_and_token().await;
    for origin in [EVIL_ORIGIN, "http://host.example.evil.example", "https://host.example", "null"] {
        let reply = preflight(&app, &format!("/s/{sid}/widgets/lbs"), origin).await;
        assert_no_cors(&reply, &format!("a preflight from {origin}"));
        for path in [format!("/s/{sid}/fragments/converter"), format!("/v/{token}/fragments/state")] {
            let reply = get_with(&app, &path, &[("origin", origin)]).await;
            assert_no_cors(&reply, &format!("{path} from {origin}"));
        }
        for path in [format!("/s/{sid}/events"), format!("/events?s={sid}")] {
            let reply = stream_headers(&app, &path, origin).await;
            assert_no_cors(&reply, &format!("{path} from {origin}"));
        }
        let headers = [("origin", origin), ("hx-request", "true")];
        let reply =
            request(&app, Method::POST, &format!("/s/{sid}/widgets/lbs"), &headers, Some("lbs=1")).await;
        assert_no_cors(&reply, &format!("a POST from {origin}"));
    }
}

#[tokio::test]
async fn without_allowed_origins_nobody_gets_cors_headers() {
    let app = spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    for origin in [HOST_ORIGIN, EVIL_ORIGIN, app.base.as_str()] {
        let reply = preflight(&app, &format!("/s/{sid}/widgets/lbs"), origin).await;
        assert_no_cors_at_all(&reply, &format!("a preflight from {origin}"));
        for path in [
            format!("/s/{sid}/fragments/converter"),
            format!("/s/{sid}/fragments/state"),
            format!("/v/{token}/fragments/state"),
        ] {
            let reply = get_with(&app, &path, &[("origin", origin)]).await;
            assert_eq!(reply.status, 200);
            assert_no_cors_at_all(&reply, &format!("{path} from {origin}"));
        }
        for path in [format!("/s/{sid}/events"), format!("/v/{token}/events"), format!("/events?v={token}")] {
            let reply = stream_headers(&app, &path, origin).await;
            assert_no_cors_at_all(&reply, &format!("{path} from {origin}"));
        }
        let headers = [("origin", origin), ("hx-request", "true")];
        let reply =
            request(&app, Method::POST, &format!("/s/{sid}/widgets/lbs"), &headers, Some("lbs=1")).await;
        assert_no_cors_at_all(&reply, &format!("a POST from {origin}"));
    }
}

#[tokio::test]
async fn page_routes_never_get_cors_headers() {
    let app = spawn_app_with(allowing_host_page()).await;
    let (sid, token) = app.session_and_token().await;
    let origin = [("origin", HOST_ORIGIN)];
    for path in [
        format!("/s/{sid}"),
        format!("/v/{token}"),
        format!("/s/{sid}/state.json"),
        format!("/v/{token}/state.json"),
        "/healthz".to_owned(),
        "/metrics".to_owned(),
    ] {
        let reply = get_with(&app, &path, &origin).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_no_cors(&reply, &path);
        let reply = request(
            &app,
            Method::OPTIONS,
            &path,
            &[("origin", HOST_ORIGIN), ("access-control-request-method", "GET")],
            None,
        )
        .await;
        assert_no_cors(&reply, &format!("a preflight of {path}"));
    }
    let reply = get_with(&app, "/", &origin).await;
    assert_eq!(reply.status, 303);
    assert_no_cors(&reply, "/");
}

// ---- frame-ancestors --------------------------------------------------------------------

#[tokio::test]
async fn frame_ancestors_defaults_to_self() {
    let app = spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    for path in
        [format!("/s/{sid}"), format!("/v/{token}"), format!("/s/{sid}/fragments/converter"), "/s/x".into()]
    {
        let reply = app.get(&path).await;
        assert_eq!(csp_directive(&reply, "frame-ancestors"), ["'self'"], "{path}");
    }
}

#[tokio::test]
async fn frame_ancestors_follows_the_config() {
    let app = spawn_app_with(common::config(&["--frame-ancestors", "https://a.example"])).await;
    let (sid, token) = app.session_and_token().await;
    for path in
        [format!("/s/{sid}"), format!("/v/{token}"), format!("/s/{sid}/fragments/state"), "/s/x".into()]
    {
        let reply = app.get(&path).await;
        assert_eq!(csp_directive(&reply, "frame-ancestors"), ["https://a.example"], "{path}");
        assert!(reply.header("content-security-policy").contains("frame-ancestors https://a.example"));
    }
}

// ---- expiry and eviction ----------------------------------------------------------------

#[tokio::test]
async fn an_idle_session_expires_to_the_404_page_with_a_way_back() {
    let ttl = Duration::from_secs(3600);
    let app = spawn_app_with(common::config(&["--session-ttl", "1h", "--idle-timeout", "10h"])).await;
    let (sid, token) = app.session_and_token().await;
    app.commit(&sid, "lbs", "10").await;
    common::let_time_pass(ttl + Duration::from_secs(1)).await;
    // Watch the gauge rather than the session: looking at it would keep it alive.
    wait_for_gauge(&app, "weight_converter_sessions", |n| n == 0.0).await;

    let reply = app.get(&format!("/s/{sid}")).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_error_page(&reply, "an expired session");
    assert!(html::tags(&reply.body, "a").iter().any(|a| a.attr("href") == Some("/")), "{}", reply.body);
    let reply = app.post_form(&sid, "lbs", &[("lbs", "1")], true).await;
    assert_eq!(reply.status, 404, "posting to an expired session: {}", reply.body);
    let reply = app.post_form(&sid, "lbs", &[("lbs", "1")], false).await;
    assert_eq!(reply.status, 404, "posting to an expired session: {}", reply.body);
    for path in ["/state.json", "/fragments/state", "/events"] {
        assert_eq!(app.get(&format!("/s/{sid}{path}")).await.status, 404, "{path}");
    }
    assert_eq!(app.get(&format!("/v/{token}")).await.status, 404, "the token outlived its session");
    assert_eq!(app.ctx.store.session_count(), Some(0), "a request revived the session");
    // Starting over works.
    let fresh = app.new_session().await;
    assert_eq!(app.get(&format!("/s/{fresh}")).await.status, 200);
}

#[tokio::test]
async fn a_session_in_regular_use_outlives_an_idle_one() {
    let ttl = Duration::from_secs(3600);
    let app = spawn_app_with(common::config(&["--session-ttl", "1h", "--idle-timeout", "10h"])).await;
    let idle = app.new_session().await;
    let used = app.new_session().await;
    // Two TTLs pass, the used session touched every quarter of one, by
    // each way of looking at it.
    for touch in 0..8 {
        let path = match touch % 3 {
            0 => format!("/s/{used}"),
            1 => format!("/s/{used}/state.json"),
            _ => format!("/s/{used}/fragments/state"),
        };
        assert_eq!(app.get(&path).await.status, 200, "{path} expired while in use, touch {touch}");
        common::let_time_pass(ttl / 4).await;
    }
    wait_for_gauge(&app, "weight_converter_sessions", |n| n == 1.0).await;
    assert_eq!(app.get(&format!("/s/{idle}")).await.status, 404, "the idle session is the one gone");
    assert_eq!(app.get(&format!("/s/{used}")).await.status, 200, "the used session is alive");
    app.commit(&used, "kg", "1").await;
}

#[tokio::test]
async fn past_max_sessions_the_least_recently_used_goes() {
    let app = spawn_app_with(common::config(&["--max-sessions", "3"])).await;
    let first = app.new_session().await;
    let (second, second_token) = app.session_and_token().await;
    let third = app.new_session().await;
    // Touch the first: the second is now the least recently used.
    assert_eq!(app.get(&format!("/s/{first}/state.json")).await.status, 200);
    let fourth = app.new_session().await;

    assert_eq!(app.ctx.store.session_count(), Some(3));
    let reply = app.get(&format!("/s/{second}")).await;
    assert_eq!(reply.status, 404, "the least recently used session survived");
    assert_error_page(&reply, "an evicted session");
    assert_eq!(app.get(&format!("/v/{second_token}")).await.status, 404, "its token survived");
    for (name, sid) in [("first", &first), ("third", &third), ("fourth", &fourth)] {
        assert_eq!(app.get(&format!("/s/{sid}")).await.status, 200, "the {name} session was evicted");
    }
    assert_eq!(sample(&metrics(&app).await, "weight_converter_sessions"), Some(3.0));
}

// ---- metrics and health -----------------------------------------------------------------

#[tokio::test]
async fn metrics_are_prometheus_text_and_count_what_happens() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    app.page(&sid).await;

    let reply = app.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(reply.content_type().starts_with("text/plain"), "{}", reply.content_type());
    let text = reply.body;
    for (name, kind) in [
        ("weight_converter_sessions", "gauge"),
        ("weight_converter_open_streams", "gauge"),
        ("weight_converter_request_duration_seconds", "histogram"),
    ] {
        assert!(text.contains(&format!("# TYPE {name} {kind}")), "no {kind} {name}:\n{text}");
    }
    assert_eq!(sample(&text, "weight_converter_sessions"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "weight_converter_open_streams"), Some(0.0), "{text}");
    let changes_before = sample(&text, "weight_converter_changes_total").unwrap_or(0.0);

    app.commit(&sid, "lbs", "10").await;
    let reply = app.post_form(&sid, "lbs", &[("lbs", "abc")], true).await;
    assert_eq!(reply.status, 422);

    let text = metrics(&app).await;
    assert!(text.contains("# TYPE weight_converter_changes_total counter"), "{text}");
    assert_eq!(sample(&text, "weight_converter_changes_total"), Some(changes_before + 1.0), "{text}");
    assert!(text.contains("# TYPE weight_converter_rejected_inputs_total counter"), "{text}");
    assert_eq!(
        sample(&text, r#"weight_converter_rejected_inputs_total{reason="not_a_number"}"#),
        Some(1.0),
        "{text}"
    );
    let buckets: Vec<&str> =
        text.lines().filter(|l| l.starts_with("weight_converter_request_duration_seconds_bucket{")).collect();
    for route in ["/", "/s/{sid}", "/s/{sid}/widgets/{key}"] {
        let label = format!("route=\"{route}\"");
        assert!(buckets.iter().any(|l| l.contains(&label)), "no bucket for {label}:\n{text}");
    }
    assert!(buckets.iter().any(|l| l.contains("le=\"+Inf\"")), "{text}");
    assert!(!text.contains(&sid), "metrics name a session");
    assert!(text.contains("weight_converter_request_duration_seconds_count{"), "{text}");

    // Open streams count while open.
    let events = stream(&app, &format!("/s/{sid}/events")).await;
    wait_for_gauge(&app, "weight_converter_open_streams", |n| n == 1.0).await;
    drop(events);
    wait_for_gauge(&app, "weight_converter_open_streams", |n| n == 0.0).await;
}

#[tokio::test]
async fn health_and_readiness_answer_while_running() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
}

// ---- logs, on the compiled binary -------------------------------------------------------

/// Starts the binary with `LOG_FORMAT=log_format`; returns it and its address.
fn start(log_format: &str) -> (KillOnDrop, String) {
    binary::start(
        binary::command().env("RUST_LOG", "debug").env("LOG_FORMAT", log_format).stderr(Stdio::piped()),
    )
}

/// SIGTERM, which must end the process with status 0; returns stderr.
fn terminate(mut server: KillOnDrop) -> String {
    server.terminate(POLL_LIMIT);
    server.stderr()
}

/// Makes requests of every kind that carries a capability; returns the
/// session id, its token and how many requests were made.
async fn exercise(base: &str) -> (String, String, usize) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(POLL_LIMIT)
        .build()
        .expect("client");
    let mut requests = 0;
    let mut get = async |path: String| {
        requests += 1;
        client.get(format!("{base}{path}")).send().await.expect("GET")
    };
    let start = get("/".into()).await;
    assert_eq!(start.status(), 303);
    let sid =
        start.headers()["location"].to_str().expect("ASCII").strip_prefix("/s/").expect("/s/").to_owned();
    let page = get(format!("/s/{sid}")).await.text().await.expect("page");
    let token = common::checks::read_token(&page);
    assert_eq!(get(format!("/v/{token}")).await.status(), 200);
    assert_eq!(get(format!("/v/{token}/state.json")).await.status(), 200);
    assert_eq!(get(format!("/s/{sid}/fragments/converter")).await.status(), 200);
    // Unknown capabilities are not logged either.
    let unknown_sid = format!("Z{}", &sid[1..]);
    let unknown_sid = if unknown_sid == sid { format!("Y{}", &sid[1..]) } else { unknown_sid };
    assert_eq!(get(format!("/s/{unknown_sid}")).await.status(), 404);

    for path in [format!("/s/{sid}/events"), format!("/v/{token}/events")] {
        let response = get(path).await;
        assert_eq!(response.status(), 200);
        let mut events = SseStream::new(response);
        events.expect_event().await;
        drop(events);
    }

    let post = client
        .post(format!("{base}/s/{sid}/widgets/lbs"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("hx-request", "true")
        .body("lbs=10")
        .send()
        .await
        .expect("POST");
    requests += 1;
    assert_eq!(post.status(), 200);
    let post = client
        .post(format!("{base}/s/{sid}/widgets/lbs"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("lbs=abc")
        .send()
        .await
        .expect("POST");
    requests += 1;
    assert_eq!(post.status(), 422);
    (sid, token, requests)
}

fn assert_no_capabilities(logs: &str, sid: &str, token: &str) {
    assert!(!logs.contains(sid), "the logs hold the whole session id {sid}:\n{logs}");
    assert!(!logs.contains(token), "the logs hold the whole read token {token}:\n{logs}");
    // Nor any long piece of either.
    for capability in [sid, token] {
        for window in capability.as_bytes().windows(12) {
            let piece = std::str::from_utf8(window).expect("ASCII");
            assert!(!logs.contains(piece), "the logs hold {piece:?}, part of {capability}:\n{logs}");
        }
    }
}

#[tokio::test]
async fn text_logs_have_a_line_per_request_and_no_capabilities() {
    let (server, base) = start("text");
    let (sid, token, requests) = exercise(&base).await;
    let logs = terminate(server);

    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("finished processing request")).collect();
    assert_eq!(lines.len(), requests, "one line per request:\n{logs}");
    for line in &lines {
        assert!(line.contains("status="), "no status: {line}");
        assert!(line.contains("latency_us="), "no latency: {line}");
        assert!(line.contains("route="), "no route: {line}");
    }
    assert!(lines.iter().any(|l| l.contains("status=303")), "{logs}");
    assert!(lines.iter().any(|l| l.contains("status=404")), "{logs}");
    assert!(lines.iter().any(|l| l.contains("status=422")), "{logs}");
    // Each request's lines carry its id: one id per request, and the line
    // a handler logs (a new session) has the id of its request's line.
    // tracing-subscriber's format: `… INFO request{request_id=…}: target: …`.
    let id_of = |line: &str| {
        line.split("request{request_id=").nth(1).map(|rest| rest.split('}').next().unwrap_or("").to_owned())
    };
    let ids: std::collections::HashSet<String> =
        lines.iter().map(|l| id_of(l).expect("a request id")).collect();
    assert_eq!(ids.len(), requests, "one id per request:\n{logs}");
    let created = logs.lines().find(|l| l.contains("session created")).expect("a session-created line");
    let id = id_of(created).unwrap_or_else(|| panic!("no request id: {created}"));
    assert!(
        lines.iter().any(|l| id_of(l).as_deref() == Some(id.as_str()) && l.contains("status=303")),
        "{logs}"
    );
    assert_no_capabilities(&logs, &sid, &token);
}

#[tokio::test]
async fn json_logs_have_a_line_per_request_and_no_capabilities() {
    let (server, base) = start("json");
    let (sid, token, requests) = exercise(&base).await;
    let logs = terminate(server);

    let mut per_request = Vec::new();
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        if value["fields"]["message"] == "finished processing request" {
            per_request.push(value);
        }
    }
    assert_eq!(per_request.len(), requests, "one line per request:\n{logs}");
    let mut statuses = Vec::new();
    for line in &per_request {
        let status = line["fields"]["status"].as_u64().unwrap_or_else(|| panic!("no status: {line}"));
        statuses.push(status);
        assert!(line["fields"]["latency_us"].is_u64(), "no latency: {line}");
        assert!(line.to_string().contains("\"route\""), "no route: {line}");
    }
    for status in [200, 303, 404, 422] {
        assert!(statuses.contains(&status), "no request logged with {status}: {statuses:?}");
    }
    let ids: std::collections::HashSet<String> = per_request
        .iter()
        .map(|line| {
            line["span"]["request_id"].as_str().unwrap_or_else(|| panic!("no request id: {line}")).to_owned()
        })
        .collect();
    assert_eq!(ids.len(), requests, "one id per request");
    assert_no_capabilities(&logs, &sid, &token);
}
