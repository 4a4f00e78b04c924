//! Embedding across origins (issue 4): a host page on another port embeds
//! the converter and state fragments; both stay live with the app's own page.

mod browser_support;
mod common;

use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use browser_support::{Options, wait_for, with_browser};
use common::{TestApp, spawn_app_with};
use weight_converter::Config;

const LBS: &str = "#wc-lbs";
const KG: &str = "#wc-kg";
const DUMP: &str = "#wc-state";

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

    /// Serves `examples/embed.html` for the app at `app_origin` and `session`.
    fn serve(&mut self, app_origin: &str, session: &str) {
        let page = include_str!("../examples/embed.html")
            .replace("__APP__", app_origin)
            .replace("__SESSION__", session);
        let router = Router::new().route("/", get(move || async move { Html(page) }));
        let listener = self.listener.take().expect("served once");
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
}

async fn app_allowing(origins: Vec<String>) -> TestApp {
    let mut config = Config::for_tests();
    config.allow_origins = origins;
    spawn_app_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_converter_and_the_app_page_stay_in_step() {
    let mut host = HostSite::bind().await;
    let app = app_allowing(vec![host.origin.clone()]).await;
    with_browser(Options::default(), |b| async move {
        let main_window = b.window().await;
        let (_, sid) = b.open_new_session(&app).await;
        b.wait_live().await;
        host.serve(&app.base, &sid);

        let host_window = b.open_window(&format!("{}/", host.origin)).await;
        b.wait_text_contains("h1", "Our dashboard").await;
        // The fragment arrives, and its stream opens.
        b.wait_value(LBS, "0.00").await;
        b.wait_live().await;

        // Typing in the embedded converter updates the host page and the app's page.
        b.commit(LBS, "10").await;
        b.wait_value(KG, "4.54").await;
        b.wait_text_contains(DUMP, "4.5359237").await;
        b.switch_to(&main_window).await;
        b.wait_value(KG, "4.54").await;
        b.wait_text_contains(DUMP, "4.5359237").await;

        // And the reverse: the app's page updates the embed, both fragments.
        b.commit(KG, "1").await;
        b.wait_value(LBS, "2.20").await;
        b.switch_to(&host_window).await;
        b.wait_value(LBS, "2.20").await;
        b.wait_text_contains(DUMP, "2.2046226218").await;
        let streams: i64 = b
            .js("return document.querySelectorAll('[sse-connect]').length;", vec![])
            .await
            .as_i64()
            .unwrap_or(-1);
        assert_eq!(streams, 1, "the state fragment shares the converter's stream");
        assert_eq!(app.state_json(&sid).await, r#"{"lbs":2.2046226218487757,"kg":1.0}"#);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_is_not_allowed_gets_nothing() {
    let mut host = HostSite::bind().await;
    let app = app_allowing(Vec::new()).await;
    let sid = app.new_session().await;
    host.serve(&app.base, &sid);
    let before = app.state_json(&sid).await;
    with_browser(Options::default(), |b| async move {
        b.goto(&format!("{}/", host.origin)).await;
        b.wait_text_contains("h1", "Our dashboard").await;
        // htmx tries the load and the browser refuses the answer: the host
        // page stays as it was, with no half-working converter in it.
        wait_for("htmx to give up on the cross-origin load", Duration::from_secs(10), || async {
            let failed = b
                .client
                .execute(
                    "return !!window.htmx && document.readyState === 'complete' && \
                     performance.getEntriesByType('resource').some(e => e.name.includes('/fragments/converter'));",
                    vec![],
                )
                .await?;
            Ok((failed == serde_json::json!(true)).then_some(()))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(b.find(LBS).await.is_err(), "no converter may appear on a page that is not allowed");
        assert!(b.find("form").await.is_err());
        assert!(b.text("body").await.expect("body").contains("Loading"));
    })
    .await;
    assert_eq!(app.state_json(&sid).await, before, "nothing changed");
}
