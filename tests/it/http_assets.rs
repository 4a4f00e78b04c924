//! Issue 2's `/assets/…` and header bullets, on the real server over HTTP:
//! pinned htmx (the one vendored script) and our own `app.js`, served
//! compiled-in with the right type, compression and caching; `app.js`
//! under its stable name too, and under the policy it runs by as the
//! stream's shared worker; and the security headers and CSP-clean htmx
//! configuration on every page.

use crate::common;

use common::checks::{Reply, assert_no_store, assert_security_headers, assert_subresource_headers, header};
use common::html;
use common::{TestApp, spawn_app};

/// A year, give or take: what "long-lived" means for versioned names.
const LONG: u64 = 30 * 24 * 60 * 60;

/// Every `/assets/…` URL the page refers to, in document order.
fn asset_urls(page: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for tag in html::start_tags(page) {
        for value in tag.attrs.values() {
            if value.starts_with("/assets/") && !urls.contains(value) {
                urls.push(value.clone());
            }
        }
    }
    urls
}

async fn page_of_new_session(app: &TestApp) -> (String, String) {
    let sid = app.new_session().await;
    let page = app.page(&sid).await;
    (sid, page)
}

/// The worker's policy: `app.js` run as a SharedWorker only connects back.
const WORKER_CSP: &str = "default-src 'none'; connect-src 'self'";
/// What names that carry a version or content hash are cached for.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The stable `/assets/app.js`, for other sites' pages: briefly.
const REVALIDATE: &str = "public, max-age=300";

/// `/assets/app.XXXXXXXX.js`: the page's own script, by content hash.
fn is_hashed_app_js(url: &str) -> bool {
    url.strip_prefix("/assets/app.")
        .and_then(|rest| rest.strip_suffix(".js"))
        .is_some_and(|hash| hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The page's `<script src>`s, in document order.
fn scripts(page: &str) -> Vec<String> {
    html::tags(page, "script").iter().filter_map(|s| s.attr("src").map(str::to_owned)).collect()
}

#[tokio::test]
async fn the_page_loads_pinned_htmx_2_then_app_js_and_nothing_else() {
    let app = spawn_app().await;
    let (_, page) = page_of_new_session(&app).await;
    let scripts = scripts(&page);
    assert_eq!(scripts.len(), 2, "htmx and app.js only: {scripts:?}");
    assert_eq!(scripts[0], "/assets/htmx-2.0.11.min.js", "{scripts:?}");
    assert!(is_hashed_app_js(&scripts[1]), "app.js by its content hash, after htmx: {scripts:?}");
    for script in html::tags(&page, "script") {
        assert!(script.has("defer"), "{script:?}");
    }
    let sheets: Vec<String> = html::tags(&page, "link")
        .iter()
        .filter(|l| l.attr("rel") == Some("stylesheet"))
        .filter_map(|l| l.attr("href").map(str::to_owned))
        .collect();
    assert_eq!(sheets.len(), 1, "{sheets:?}");
    assert!(sheets[0].starts_with("/assets/app.") && sheets[0].ends_with(".css"), "{sheets:?}");

    let htmx = app.get(&scripts[0]).await;
    assert_eq!(htmx.status, 200);
    assert!(htmx.body.contains("version:\"2.0.11\""), "the served htmx is not 2.0.11");
    let own = app.get(&scripts[1]).await;
    assert_eq!(own.status, 200);
    assert!(own.body.contains("data-wc-watch"), "the served app.js is not ours");
}

#[tokio::test]
async fn the_sse_extension_and_the_separate_stream_worker_are_gone() {
    let app = spawn_app().await;
    let (_, page) = page_of_new_session(&app).await;
    for gone in ["htmx-ext-sse", "stream-worker", "sse-connect", "hx-ext", "data-stream-worker"] {
        assert!(!page.contains(gone), "the page still names {gone}: {page}");
    }
    for path in [
        "/assets/htmx-ext-sse-2.2.4.min.js",
        "/assets/htmx-ext-sse-2.2.4.LICENSE",
        "/assets/stream-worker.js",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert!(reply.content_type().starts_with("text/html"), "{path}: {}", reply.content_type());
    }
}

#[tokio::test]
async fn every_referenced_asset_is_served_with_its_type_and_a_long_immutable_cache() {
    let app = spawn_app().await;
    let (_, page) = page_of_new_session(&app).await;
    let urls = asset_urls(&page);
    assert_eq!(urls.len(), 3, "htmx, app.js and the stylesheet: {urls:?}");
    for url in urls {
        let reply = app.get(&url).await;
        assert_eq!(reply.status, 200, "{url}");
        assert!(!reply.body.is_empty(), "{url} is empty");
        let content_type = reply.content_type();
        let want = if url.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(url.ends_with(".css") || url.ends_with(".js"), "unexpected asset {url}");
        assert!(content_type.starts_with(want), "{url}: Content-Type {content_type}, want {want}");
        assert!(reply.headers.get("content-encoding").is_none(), "{url}: compressed though not asked");

        let cache = reply.header("cache-control");
        assert_eq!(cache, IMMUTABLE, "{url}");
        let directives: Vec<String> = cache.split(',').map(|d| d.trim().to_ascii_lowercase()).collect();
        let max_age = directives
            .iter()
            .find_map(|d| d.strip_prefix("max-age="))
            .and_then(|age| age.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{url}: no max-age in {cache}"));
        assert!(max_age >= LONG, "{url}: max-age {max_age} is not long-lived");
        assert!(directives.iter().any(|d| d == "immutable"), "{url}: not immutable: {cache}");
        assert!(!directives.iter().any(|d| d == "no-store" || d == "no-cache"), "{url}: {cache}");
        assert_subresource_headers(&reply.headers, &url);
        // Only app.js runs as a worker, under its own policy.
        let csp = reply.headers.get("content-security-policy").map(|v| v.to_str().expect("ASCII CSP"));
        let want = is_hashed_app_js(&url).then_some(WORKER_CSP);
        assert_eq!(csp, want, "{url}");
    }
}

#[tokio::test]
async fn app_js_is_also_served_under_a_stable_name_for_other_sites() {
    let app = spawn_app().await;
    let (_, page) = page_of_new_session(&app).await;
    let hashed_url = scripts(&page).into_iter().find(|s| is_hashed_app_js(s)).expect("the page's app.js");
    let hashed = app.get(&hashed_url).await;
    let stable = app.get("/assets/app.js").await;
    assert_eq!(stable.status, 200);
    assert_eq!(stable.body, hashed.body, "the same script under both names");
    assert!(stable.content_type().starts_with("text/javascript"), "{}", stable.content_type());
    // Its content changes with every release, so it is cached briefly.
    assert_eq!(stable.header("cache-control"), REVALIDATE);
    assert_eq!(hashed.header("cache-control"), IMMUTABLE, "{hashed_url}");
    for (url, reply) in [("/assets/app.js", &stable), (hashed_url.as_str(), &hashed)] {
        assert_eq!(reply.header("content-security-policy"), WORKER_CSP, "{url}");
        assert!(reply.header("vary").to_ascii_lowercase().contains("accept-encoding"), "{url}");
        assert_subresource_headers(&reply.headers, url);
    }
    // Compressed like the rest, with the same cache policy.
    for accept in ["gzip", "br"] {
        let response = app.get_with("/assets/app.js", &[("accept-encoding", accept)]).await;
        assert_eq!(response.status(), 200, "{accept}");
        assert_eq!(header(response.headers(), "content-encoding"), accept);
        assert_eq!(header(response.headers(), "cache-control"), REVALIDATE, "{accept}");
        assert_eq!(header(response.headers(), "content-security-policy"), WORKER_CSP, "{accept}");
        let body = response.bytes().await.expect("body");
        assert!(body.len() < stable.body.len(), "{accept}: {} bytes compressed", body.len());
    }
}

#[tokio::test]
async fn assets_are_compressed_for_clients_that_accept_it() {
    let app = spawn_app().await;
    let (_, page) = page_of_new_session(&app).await;
    for url in asset_urls(&page) {
        let plain = app.get(&url).await.body.len();
        for (accept, want) in [("gzip", "gzip"), ("br", "br"), ("gzip, deflate, br", "br")] {
            let response = app.get_with(&url, &[("accept-encoding", accept)]).await;
            assert_eq!(response.status(), 200, "{url} ({accept})");
            let encoding = header(response.headers(), "content-encoding").to_owned();
            assert_eq!(encoding, want, "{url} ({accept}): the smallest the client takes");
            let vary = header(response.headers(), "vary").to_ascii_lowercase();
            assert!(vary.contains("accept-encoding"), "{url}: Vary {vary}");
            let cache = header(response.headers(), "cache-control").to_owned();
            assert!(cache.contains("immutable"), "{url} ({accept}): {cache}");
            let body = response.bytes().await.expect("body");
            if encoding == "gzip" {
                assert_eq!(body.get(..2), Some(&[0x1f, 0x8b][..]), "{url}: not gzip data");
            }
            assert!(body.len() < plain, "{url} ({accept}): {} bytes compressed, {plain} plain", body.len());
        }
    }
}

/// Pages go out gzip-compressed to a browser (brotli is kept for the
/// assets, compressed at build time), and as they are to a client that
/// takes neither.
#[tokio::test]
async fn pages_are_gzip_compressed_for_browsers() {
    let app = spawn_app().await;
    let (sid, _) = page_of_new_session(&app).await;
    let url = format!("/s/{sid}");
    let response = app.get_with(&url, &[("accept-encoding", "gzip, deflate, br, zstd")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(response.headers(), "content-encoding"), "gzip");
    assert!(header(response.headers(), "vary").to_ascii_lowercase().contains("accept-encoding"));
    let gzipped = response.bytes().await.expect("body");
    let mut html = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut html)
        .expect("gzip data");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(gzipped.len() < html.len() / 2, "{} bytes gzipped, {} plain", gzipped.len(), html.len());

    let response = app.get_with(&url, &[("accept-encoding", "br")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("content-encoding"), None, "not compressed as it goes out");
}

#[tokio::test]
async fn unknown_assets_are_404() {
    let app = spawn_app().await;
    for path in [
        "/assets/htmx-1.9.12.min.js",
        "/assets/htmx-2.0.10.min.js",
        "/assets/htmx.js",
        "/assets/app.css",
        "/assets/app.00000000.js",
        "/assets/APP.JS",
        "/assets/nope.css",
        "/assets/",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert!(reply.content_type().starts_with("text/html"), "{path}: {}", reply.content_type());
        assert_security_headers(&reply.headers, path);
    }
}

// ---- Headers on every response --------------------------------------------------

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let (sid, page) = page_of_new_session(&app).await;
    let mut replies: Vec<(String, Reply)> = Vec::new();
    for path in [
        "/".to_owned(),
        format!("/s/{sid}"),
        format!("/s/{sid}/state.json"),
        format!("/s/{sid}/fragments/state"),
        "/healthz".to_owned(),
        "/nope".to_owned(),
        "/s/AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
    ] {
        replies.push((format!("GET {path}"), app.get(&path).await));
    }
    for url in asset_urls(&page) {
        assert_subresource_headers(&app.get(&url).await.headers, &url);
    }
    for (what, pairs, htmx) in [
        ("POST htmx 200", vec![("lbs", "1")], true),
        ("POST plain 303", vec![("lbs", "2")], false),
        ("POST 422", vec![("lbs", "x")], true),
        ("POST 422 page", vec![("lbs", "x")], false),
        ("POST 400", vec![("lbs", "1"), ("step", "x")], true),
    ] {
        replies.push((what.to_owned(), app.post_form(&sid, "lbs", &pairs, htmx).await));
    }
    replies
        .push(("POST 413".to_owned(), app.post_form(&sid, "lbs", &[("x", &"x".repeat(5000))], true).await));
    for (what, reply) in &replies {
        // The policy governs documents: every HTML answer carries it.
        if is_html(reply) {
            assert_security_headers(&reply.headers, what);
        } else {
            assert_subresource_headers(&reply.headers, what);
        }
    }
    // Pages, fragments, errors and the htmx answers are HTML.
    let html = replies.iter().filter(|(_, r)| is_html(r)).count();
    assert!(html >= 9, "{html} HTML answers");
}

#[tokio::test]
async fn session_responses_are_never_cached() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let mut replies = vec![
        ("GET /", app.get("/").await),
        ("page", app.get(&format!("/s/{sid}")).await),
        ("state.json", app.get(&format!("/s/{sid}/state.json")).await),
        ("fragment", app.get(&format!("/s/{sid}/fragments/state")).await),
        ("unknown session", app.get("/s/AAAAAAAAAAAAAAAAAAAAAA").await),
    ];
    replies.push(("POST htmx", app.post_form(&sid, "lbs", &[("lbs", "1")], true).await));
    replies.push(("POST plain", app.post_form(&sid, "lbs", &[("lbs", "2")], false).await));
    replies.push(("POST 422", app.post_form(&sid, "lbs", &[("lbs", "x")], false).await));
    for (what, reply) in &replies {
        assert_no_store(&reply.headers, what);
    }
}

#[tokio::test]
async fn the_page_needs_no_inline_script_or_style() {
    let app = spawn_app().await;
    let (_, page) = page_of_new_session(&app).await;
    for script in html::tags(&page, "script") {
        assert!(script.has("src"), "inline script, which the CSP blocks: {script:?}");
        assert!(html::inner_html(&page, &script).trim().is_empty(), "inline script body: {script:?}");
    }
    assert!(html::tags(&page, "style").is_empty(), "a <style> element, which the CSP blocks");
    for tag in html::start_tags(&page) {
        assert!(!tag.has("style"), "a style attribute, which the CSP blocks: {tag:?}");
        for name in tag.attrs.keys() {
            assert!(!name.starts_with("on"), "an inline handler, which the CSP blocks: {tag:?}");
        }
        for (name, value) in &tag.attrs {
            assert!(!value.trim_start().starts_with("javascript:"), "{name}={value:?}");
        }
    }
}

// ---- htmx's configuration ----------------------------------------------------------

/// Whether an htmx `responseHandling` code pattern matches a status, as
/// htmx's unanchored `RegExp.test` would. Patterns use digits, `.` and
/// `[…]` classes only.
fn code_matches(pattern: &str, status: &str) -> bool {
    let mut atoms: Vec<Box<dyn Fn(char) -> bool>> = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '.' => atoms.push(Box::new(|_| true)),
            '[' => {
                let class: String = chars.by_ref().take_while(|&c| c != ']').collect();
                atoms.push(Box::new(move |c| class.contains(c)));
            }
            c => atoms.push(Box::new(move |d| d == c)),
        }
    }
    let status: Vec<char> = status.chars().collect();
    (0..=status.len().saturating_sub(atoms.len())).any(|start| {
        atoms.len() <= status.len() && atoms.iter().zip(&status[start..]).all(|(atom, &c)| atom(c))
    })
}

#[tokio::test]
async fn htmx_runs_without_eval_or_inline_styles_and_leaves_answers_to_app_js() {
    let app = spawn_app().await;
    let (_, page) = page_of_new_session(&app).await;
    let meta = html::tags(&page, "meta").into_iter().find(|m| m.attr("name") == Some("htmx-config"));
    let meta = meta.expect("<meta name=htmx-config>");
    let content = meta.attr("content").expect("content");
    let mut config: serde_json::Value =
        serde_json::from_str(content).unwrap_or_else(|e| panic!("htmx-config is not JSON ({e}): {content}"));
    // htmx 2's own list, when the page gives none.
    let defaults = serde_json::json!([
        {"code": "204", "swap": false},
        {"code": "[23]..", "swap": true},
        {"code": "[45]..", "swap": false, "error": true},
    ]);
    let handling = config.as_object_mut().expect("an object").remove("responseHandling").unwrap_or(defaults);
    let want = serde_json::json!({
        "allowEval": false,
        "allowScriptTags": false,
        "includeIndicatorStyles": false,
        "historyCacheSize": 0,
    });
    assert_eq!(config, want, "{content}");

    // htmx swaps nothing: every form says hx-swap="none", and app.js
    // applies every answer (the update, a refusal, an error's message
    // line) to the view that posted, by its parts.
    let forms = html::tags(&page, "form");
    assert_eq!(forms.len(), 2, "{forms:?}");
    for form in forms {
        assert_eq!(form.attr("hx-swap"), Some("none"), "{form:?}");
    }
    // htmx uses the first entry whose code matches.
    let handling = handling.as_array().unwrap_or_else(|| panic!("responseHandling is a list: {content}"));
    let first_match = |status: &str| {
        let entry = handling
            .iter()
            .find(|entry| entry["code"].as_str().is_some_and(|code| code_matches(code, status)))
            .unwrap_or_else(|| panic!("no responseHandling entry for {status}: {content}"));
        (entry["swap"].as_bool() == Some(true), entry["error"].as_bool() == Some(true))
    };
    assert_eq!(first_match("204"), (false, false), "{content}");
    for status in ["200", "303"] {
        assert_eq!(first_match(status), (true, false), "{status}: {content}");
    }
    // A refusal is an answer, not an error; the others are errors.
    assert_eq!(first_match("422"), (false, false), "{content}");
    for status in ["400", "404", "413", "500", "503"] {
        assert_eq!(first_match(status), (false, true), "{status}: {content}");
    }
}

#[tokio::test]
async fn app_js_runs_as_the_stream_worker_under_its_own_strict_policy() {
    // The page's app.js is the SharedWorker's script too: the worker runs
    // under the policy served with it.
    let app = spawn_app().await;
    let (_, page) = page_of_new_session(&app).await;
    let worker = scripts(&page).into_iter().find(|s| is_hashed_app_js(s)).expect("the page's app.js");
    let reply = app.get(&worker).await;
    assert_eq!(reply.status, 200, "{worker}");
    assert_eq!(reply.header("content-security-policy"), WORKER_CSP);
    assert_subresource_headers(&reply.headers, &worker);
}

fn is_html(reply: &Reply) -> bool {
    reply
        .headers
        .get("content-type")
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"))
}
