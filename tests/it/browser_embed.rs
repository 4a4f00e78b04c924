//! Embedding across origins (issues 4 and 11): a host page on another
//! port embeds two converters and their state fragments; they stay live
//! with the app's own page and apart from each other.

use crate::browser_support;
use crate::common;

use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use browser_support::{Browser, Options, WAIT, wait_for, wait_for_streams, with_browser};
use common::{TestApp, spawn_app_with};

const LBS: &str = "[data-part=lbs]";
const KG: &str = "[data-part=kg]";
const DUMP: &str = "[data-part=state]";

/// `css` inside the host page's section `which` (`first`, `second`).
fn within(which: &str, css: &str) -> String {
    format!("#{which} {css}")
}

/// The README's example host page, served from its own port: another origin.
struct HostSite {
    origin: String,
    listener: Option<tokio::net::TcpListener>,
}

impl HostSite {
    async fn bind() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind host site");
        let port = listener.local_addr().expect("host address").port();
        Self { origin: format!("http://127.0.0.1:{port}"), listener: Some(listener) }
    }

    /// Serves `examples/embed.html` for the app at `app_origin`, showing
    /// session `first` in its first section and `second` in the other.
    fn serve(&mut self, app_origin: &str, first: &str, second: &str) {
        let page = include_str!("../../examples/embed.html")
            .replace("__APP__", app_origin)
            .replace("__SESSION__", first)
            .replace("__SECOND__", second);
        let router = Router::new().route("/", get(move || async move { Html(page) }));
        let listener = self.listener.take().expect("served once");
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
}

async fn app_allowing(origins: Vec<String>) -> TestApp {
    spawn_app_with(common::config(&["--allow-origins", &origins.join(",")])).await
}

/// Waits until the host page shows its four fragments, all live.
async fn wait_for_fragments(b: &Browser) {
    wait_for("four fragments on the host page", WAIT, || async {
        let count =
            b.client.execute("return document.querySelectorAll('[data-wc-watch]').length;", vec![]).await?;
        Ok((count == serde_json::json!(4)).then_some(()))
    })
    .await;
    b.wait_live().await;
    // Each said "Connecting…" until app.js connected it; now none does.
    let said = b
        .js("return [...document.querySelectorAll('[data-wc-status]')].map(p => p.textContent);", vec![])
        .await;
    assert_eq!(said, serde_json::json!(["", "", "", ""]), "live fragments say nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_converter_and_the_app_page_stay_in_step() {
    let mut host = HostSite::bind().await;
    let app = app_allowing(vec![host.origin.clone()]).await;
    let other = app.new_session().await;
    with_browser(Options::default(), |b| async move {
        let main_window = b.window().await;
        let (_, sid) = b.open_new_session(&app).await;
        b.wait_live().await;
        host.serve(&app.base, &sid, &other);

        let host_window = b.open_window(&format!("{}/", host.origin)).await;
        b.wait_text_contains("h1", "Our dashboard").await;
        wait_for_fragments(&b).await;
        b.wait_value(&within("first", LBS), "0.00").await;

        // Typing in the embedded converter updates the host page and the app's page.
        b.commit(&within("first", LBS), "10").await;
        b.wait_value(&within("first", KG), "4.54").await;
        b.wait_text_contains(&within("first", DUMP), "4.5359237").await;
        b.switch_to(&main_window).await;
        b.wait_value(KG, "4.54").await;
        b.wait_text_contains(DUMP, "4.5359237").await;

        // And the reverse: the app's page updates the embed, both fragments.
        b.commit(KG, "1").await;
        b.wait_value(LBS, "2.20").await;
        b.switch_to(&host_window).await;
        b.wait_value(&within("first", LBS), "2.20").await;
        b.wait_text_contains(&within("first", DUMP), "2.2046226218").await;
        assert_eq!(app.state_json(&sid).await, r#"{"lbs":2.2046226218487757,"kg":1.0}"#);
        // One stream for the app's tab (its shared worker), one for the
        // host page's four fragments of two sessions.
        wait_for_streams(&app, 2).await;
        assert_eq!(app.ctx.fan_out.subscriptions(), 3, "the app's session twice, the other once");
    })
    .await;
}

/// Issue 11: two sessions side by side on another site's page: no ids
/// clash, each stays live, and a change in one never touches the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_embedded_sessions_stay_live_and_apart() {
    let mut host = HostSite::bind().await;
    let app = app_allowing(vec![host.origin.clone()]).await;
    let (first, second) = (app.new_session().await, app.new_session().await);
    host.serve(&app.base, &first, &second);
    with_browser(Options::default(), |b| async move {
        b.goto(&format!("{}/", host.origin)).await;
        wait_for_fragments(&b).await;
        let ids = b
            .js(
                "const ids = [...document.querySelectorAll('[id]')].map(e => e.id);\
                 return ids.length - new Set(ids).size;",
                vec![],
            )
            .await;
        assert_eq!(ids, serde_json::json!(0), "element ids clash");

        // First, typed in the page.
        b.commit(&within("first", LBS), "10").await;
        b.wait_text_contains(&within("first", DUMP), r#""kg": 4.5359237"#).await;
        // Second, changed elsewhere: it arrives over the stream.
        app.commit(&second, "kg", "1").await;
        b.wait_value(&within("second", LBS), "2.20").await;
        b.wait_text_contains(&within("second", DUMP), r#""lbs": 2.2046226218487757"#).await;

        // Neither touched the other.
        assert_eq!(b.value(&within("first", KG)).await.unwrap(), "4.54");
        assert!(b.text(&within("first", DUMP)).await.unwrap().contains(r#""kg": 4.5359237"#));
        assert!(b.text(&within("second", DUMP)).await.unwrap().contains(r#""kg": 1.0"#));
        assert_eq!(app.state_json(&first).await, r#"{"lbs":10.0,"kg":4.5359237}"#);
        assert_eq!(app.state_json(&second).await, r#"{"lbs":2.2046226218487757,"kg":1.0}"#);

        // The reverse way round: second typed in, first changed elsewhere.
        b.commit(&within("second", KG), "2").await;
        b.wait_value(&within("second", LBS), "4.41").await;
        app.commit(&first, "lbs", "20").await;
        b.wait_value(&within("first", KG), "9.07").await;
        assert_eq!(b.value(&within("second", KG)).await.unwrap(), "2.00");
        assert_eq!(b.value(&within("first", LBS)).await.unwrap(), "20.00");
        wait_for_streams(&app, 1).await;
    })
    .await;
}

/// Two converters of one session on one page update each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_converters_of_one_session_on_one_page_stay_in_step() {
    let mut host = HostSite::bind().await;
    let app = app_allowing(vec![host.origin.clone()]).await;
    let sid = app.new_session().await;
    host.serve(&app.base, &sid, &sid);
    with_browser(Options::default(), |b| async move {
        b.goto(&format!("{}/", host.origin)).await;
        wait_for_fragments(&b).await;
        b.commit(&within("first", LBS), "10").await;
        b.wait_value(&within("second", KG), "4.54").await;
        b.wait_value(&within("second", LBS), "10.00").await;
        b.wait_text_contains(&within("second", DUMP), "4.5359237").await;
        b.commit(&within("second", KG), "1").await;
        b.wait_value(&within("first", LBS), "2.20").await;
        b.wait_text_contains(&within("first", DUMP), "2.2046226218").await;
        // Each converter's label names its own field.
        let labelled = b
            .js(
                "return [...document.querySelectorAll('label')].every(l => \
                   l.control && l.control.closest('.wc-embed') === l.closest('.wc-embed'));",
                vec![],
            )
            .await;
        assert_eq!(labelled, serde_json::json!(true));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_is_not_allowed_gets_nothing() {
    let mut host = HostSite::bind().await;
    let app = app_allowing(Vec::new()).await;
    let sid = app.new_session().await;
    host.serve(&app.base, &sid, &sid);
    let before = app.state_json(&sid).await;
    with_browser(Options::default(), |b| async move {
        b.goto(&format!("{}/", host.origin)).await;
        b.wait_text_contains("h1", "Our dashboard").await;
        // htmx tries the load and the browser refuses the answer (htmx is
        // done with it once no element is `.htmx-request`): the host page
        // stays as it was, with no half-working converter in it.
        wait_for("htmx to give up on the cross-origin load", Duration::from_secs(10), || async {
            let failed = b
                .client
                .execute(
                    "return !!window.htmx && document.readyState === 'complete' && \
                     performance.getEntriesByType('resource').some(e => e.name.includes('/fragments/converter')) && \
                     !document.querySelector('.htmx-request');",
                    vec![],
                )
                .await?;
            Ok((failed == serde_json::json!(true)).then_some(()))
        })
        .await;
        assert!(b.find(LBS).await.is_err(), "no converter may appear on a page that is not allowed");
        assert!(b.find("form").await.is_err());
        assert!(b.text("body").await.expect("body").contains("Loading"));
    })
    .await;
    assert_eq!(app.state_json(&sid).await, before, "nothing changed");
}
