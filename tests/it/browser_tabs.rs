//! Any number of tabs and sessions in one browser (issue 11): one event
//! stream serves them all, with or without SharedWorker, and every view
//! says when it is not live.

use crate::browser_support;
use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use browser_support::{Browser, Options, WAIT, wait_for, wait_for_streams, with_browser};
use common::{TestApp, spawn_app_with};
use fantoccini::wd::WindowHandle;
use serde_json::json;
use weight_converter::Config;

const LBS: &str = "[data-part=lbs]";
const KG: &str = "[data-part=kg]";
const DUMP: &str = "[data-part=state]";
const STATUS: &str = "[data-wc-status]";

/// How long a tab may take to load and go live (the figure).
const TAB_LOAD: Duration = Duration::from_secs(5);

/// Opens a tab at `url` and waits until it is live, within [`TAB_LOAD`].
/// `before_scripts` runs in the tab before any of the page's scripts.
async fn open_tab(b: &Browser, url: &str, before_scripts: Option<&str>) -> WindowHandle {
    let handle = b.client.new_window(true).await.expect("new tab").handle;
    b.switch_to(&handle).await;
    if let Some(source) = before_scripts {
        b.cdp("Page.addScriptToEvaluateOnNewDocument", json!({ "source": source })).await;
    }
    let started = Instant::now();
    // A hung load (the 7th connection to one host) fails here.
    tokio::time::timeout(TAB_LOAD, b.client.goto(url))
        .await
        .expect("the tab hung while loading")
        .expect("load the tab");
    b.wait_live().await;
    assert!(started.elapsed() < TAB_LOAD, "a tab took {:?} to load and go live", started.elapsed());
    handle
}

/// The session id in the current tab's URL.
async fn session_of(b: &Browser, app: &TestApp) -> String {
    let url = b.current_url().await;
    url.strip_prefix(&app.url("/s/")).unwrap_or_else(|| panic!("not a session page: {url}")).to_owned()
}

/// Waits until the page's view says it is `live` (`true`, `false`, `gone`).
async fn wait_for_view(b: &Browser, live: &str) {
    wait_for(format!("the view to be live={live}"), WAIT, || async {
        let now = b
            .client
            .execute("return document.querySelector('[data-wc-watch]').getAttribute('data-wc-live');", vec![])
            .await?;
        Ok((now == json!(live)).then_some(()))
    })
    .await;
}

/// Opens `n` tabs at `/` (a session each); changes each session from
/// outside the browser and checks that its tab shows it; returns the tabs
/// and their sessions.
async fn tabs_of_new_sessions(
    b: &Browser,
    app: &TestApp,
    n: usize,
    before_scripts: Option<&str>,
) -> Vec<(WindowHandle, String)> {
    let mut tabs = Vec::new();
    for _ in 0..n {
        let tab = open_tab(b, &app.url("/"), before_scripts).await;
        tabs.push((tab, session_of(b, app).await));
    }
    for (i, (tab, sid)) in tabs.iter().enumerate() {
        app.commit(sid, "lbs", &format!("{}", i + 1)).await;
        b.switch_to(tab).await;
        b.wait_text_contains(DUMP, &format!("\"lbs\": {}.0", i + 1)).await;
    }
    tabs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_tabs_of_ten_sessions_load_and_update_on_one_stream() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let tabs = tabs_of_new_sessions(&b, &app, 10, None).await;
        let sessions: std::collections::HashSet<_> = tabs.iter().map(|(_, sid)| sid).collect();
        assert_eq!(sessions.len(), 10, "each tab at / is a session of its own");
        wait_for_streams(&app, 1).await;
        assert_eq!(app.ctx.fan_out.subscriptions(), 10);
        // Each tab shows its own session only.
        for (i, (tab, _)) in tabs.iter().enumerate() {
            b.switch_to(tab).await;
            assert_eq!(b.value(LBS).await.unwrap(), format!("{}.00", i + 1));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_tabs_of_one_session_all_load_and_update() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        let (url, _sid) = b.open_new_session(&app).await;
        b.wait_live().await;
        let mut tabs = vec![b.window().await];
        for _ in 1..10 {
            tabs.push(open_tab(&b, &url, None).await);
        }
        wait_for_streams(&app, 1).await;
        assert_eq!(app.ctx.fan_out.subscriptions(), 1);

        b.switch_to(&tabs[0]).await;
        b.commit(LBS, "10").await;
        for (i, tab) in tabs.iter().enumerate().skip(1) {
            b.switch_to(tab).await;
            wait_for(format!("tab {i} to update"), WAIT, || async {
                Ok((b.value(KG).await? == "4.54" && b.text(DUMP).await?.contains("4.5359237")).then_some(()))
            })
            .await;
        }
    })
    .await;
}

/// Opens 8 tabs of new sessions (more than the browser's 6 connections
/// per host) with `before_scripts`; they share one stream through an
/// elected leader tab; closing it, the others still update.
async fn tabs_elect_a_leader(b: &Browser, app: &TestApp, before_scripts: &str) {
    let tabs = tabs_of_new_sessions(b, app, 8, Some(before_scripts)).await;
    let (tab, _) = &tabs[0];
    b.switch_to(tab).await;
    assert_eq!(b.js("return typeof window.SharedWorker;", vec![]).await, json!("undefined"));
    wait_for_streams(app, 1).await;

    // The first tab leads; close it, and the others still update.
    b.client.close_window().await.expect("close the leading tab");
    for (tab, sid) in &tabs[1..] {
        app.commit(sid, "kg", "1").await;
        b.switch_to(tab).await;
        b.wait_value(LBS, "2.20").await;
    }
    wait_for_streams(app, 1).await;
    assert_eq!(app.ctx.fan_out.subscriptions(), 7);
}

const HIDE_SHARED_WORKER: &str = "delete window.SharedWorker; window.SharedWorker = undefined;";

/// Where SharedWorker is missing (Chrome on Android), the tabs elect a
/// leader with Web Locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_shared_worker_tabs_still_load_and_update_on_one_stream() {
    let app = common::spawn_app().await;
    with_browser(Options::default(), |b| async move {
        tabs_elect_a_leader(&b, &app, HIDE_SHARED_WORKER).await;
    })
    .await;
}

/// Over plain HTTP from another machine the page is no secure context, so
/// it has no Web Locks either: the tabs elect their leader by message.
/// The server listens on this machine's own non-loopback address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_shared_worker_or_web_locks_tabs_elect_a_leader_by_message() {
    let host = common::non_loopback_address().to_string();
    let app = spawn_app_with(common::config(&["--host", &host])).await;
    with_browser(Options::default(), |b| async move {
        b.goto(&app.url("/healthz")).await;
        let context = b.js("return [window.isSecureContext, typeof navigator.locks];", vec![]).await;
        assert_eq!(context, json!([false, "undefined"]), "{} is an insecure context", app.base);
        tabs_elect_a_leader(&b, &app, HIDE_SHARED_WORKER).await;
    })
    .await;
}

/// A page that shows more sessions than one stream may carry (32): the
/// state fragments of 33 sessions, added to one tab after it loaded. The
/// browser opens a second stream for the 33rd, and every view updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_sessions_than_one_stream_carries_get_a_second_stream() {
    let app = common::spawn_app().await;
    let mut sessions = Vec::new();
    let mut fragments = String::new();
    for _ in 0..33 {
        let sid = app.new_session().await;
        fragments.push_str(&app.get(&format!("/s/{sid}/fragments/state")).await.body);
        sessions.push(sid);
    }
    with_browser(Options::default(), |b| async move {
        b.goto(&app.url("/healthz")).await;
        b.goto(&app.url("/")).await;
        b.wait_live().await;
        b.js(
            "const box = document.createElement('div'); box.id = 'many'; box.innerHTML = arguments[0];\
              document.body.append(box);",
            vec![json!(fragments)],
        )
        .await;
        b.wait_live().await;
        wait_for_streams(&app, 2).await;
        assert_eq!(app.ctx.fan_out.subscriptions(), 34, "33 sessions and the page's own");
        for (i, sid) in sessions.iter().enumerate() {
            app.commit(sid, "lbs", &format!("{}", i + 1)).await;
        }
        let want: Vec<String> = (1..=33).map(|i| format!("\"lbs\": {i}.0")).collect();
        wait_for("all 33 views to update", WAIT, || async {
            let shown = b.client.execute(
                "return [...document.querySelectorAll('#many [data-part=state]')].map(p => p.textContent);",
                vec![],
            );
            let shown: Vec<String> = serde_json::from_value(shown.await?).unwrap_or_default();
            Ok((shown.len() == 33 && shown.iter().zip(&want).all(|(s, w)| s.contains(w.as_str())))
                .then_some(()))
        })
        .await;
    })
    .await;
}

fn on_redis(url: String, port: u16) -> Config {
    common::config(&["--redis-url", &url, "--port", &port.to_string()])
}

/// The server stops with a page open: the page says it is not live. The
/// session changes through another replica meanwhile; once a replica is
/// back where the page came from, the page shows the current state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_says_when_it_is_not_live_and_catches_up_on_another_replica() {
    let redis = common::redis::RedisServer::start().await;
    let first = spawn_app_with(on_redis(redis.url(), 0)).await;
    first.wait_until_ready().await;
    let port = first.addr.port();
    with_browser(Options::default(), |b| async move {
        let (_, sid) = b.open_new_session(&first).await;
        b.wait_live().await;
        assert_eq!(b.text(STATUS).await.unwrap(), "");

        first.shut_down().await.expect("the first replica stops");
        wait_for_view(&b, "false").await;
        assert_eq!(b.text(STATUS).await.unwrap(), "Reconnecting…");

        let other = spawn_app_with(on_redis(redis.url(), 0)).await;
        other.wait_until_ready().await;
        other.commit(&sid, "lbs", "10").await;
        let back = spawn_app_with(on_redis(redis.url(), port)).await;
        back.wait_until_ready().await;

        b.wait_live().await;
        b.wait_value(KG, "4.54").await;
        b.wait_value(LBS, "10.00").await;
        b.wait_text_contains(DUMP, "4.5359237").await;
        assert_eq!(b.text(STATUS).await.unwrap(), "", "the status clears once caught up");
    })
    .await;
}

/// The server comes back without the session (an in-memory store
/// restarted): the page says so and links to a new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_session_is_gone_says_so_and_links_to_a_new_one() {
    let first = common::spawn_app().await;
    let port = first.addr.port();
    with_browser(Options::default(), |b| async move {
        let (old_url, _) = b.open_new_session(&first).await;
        b.wait_live().await;
        first.shut_down().await.expect("the server stops");
        wait_for_view(&b, "false").await;

        let back = spawn_app_with(common::config(&["--port", &port.to_string()])).await;
        wait_for_view(&b, "gone").await;
        assert_eq!(b.text(STATUS).await.unwrap(), "This session has ended. Start a new session");

        b.click(&format!("{STATUS} a")).await;
        wait_for("a new session", WAIT, || async {
            let url = b.client.current_url().await?.to_string();
            Ok((url.starts_with(&back.url("/s/")) && url != old_url).then_some(()))
        })
        .await;
        b.wait_live().await;
        b.wait_value(LBS, "0.00").await;
    })
    .await;
}

/// A TCP proxy in front of the app whose open connections can be made to
/// go silent (nothing forwarded, nothing closed), as when a network
/// changes under a browser, and later closed; connections made after the
/// silence pass.
struct SilentableProxy {
    addr: std::net::SocketAddr,
    /// Connections accepted before the latest value go silent.
    silence: Arc<tokio::sync::watch::Sender<u64>>,
    /// Silent connections close once this turns true.
    close: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Waits until the watched value passes `test` (or its sender is gone).
async fn until<T: Copy>(watch: &mut tokio::sync::watch::Receiver<T>, test: impl Fn(T) -> bool) {
    loop {
        let now = *watch.borrow_and_update();
        if test(now) || watch.changed().await.is_err() {
            return;
        }
    }
}

impl SilentableProxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let silence = Arc::new(tokio::sync::watch::Sender::new(0u64));
        let close = Arc::new(tokio::sync::watch::Sender::new(false));
        let (silence_all, close_all) = (Arc::clone(&silence), Arc::clone(&close));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { continue };
                let mut silenced = silence_all.subscribe();
                let born = *silenced.borrow_and_update();
                let mut closed = close_all.subscribe();
                tokio::spawn(async move {
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = until(&mut silenced, move |epoch| epoch > born) => {
                            // Both ends stay open, and nothing passes.
                            until(&mut closed, |close| close).await;
                        }
                    }
                });
            }
        });
        Self { addr, silence, close }
    }

    fn silence_open_connections(&self) {
        self.silence.send_modify(|epoch| *epoch += 1);
    }

    /// Closes the silent connections, as the system eventually does with a
    /// dead network's.
    fn close_silent_connections(&self) {
        self.close.send_replace(true);
    }
}

/// A stream that goes silent without an error is noticed (its pings stop):
/// the page says it is not live, opens a new stream and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_goes_silent_is_noticed_and_replaced() {
    let app = spawn_app_with(common::config(&["--sse-keep-alive", "500ms"])).await;
    let proxy = SilentableProxy::start(app.addr).await;
    with_browser(Options::default(), |b| async move {
        let sid = app.new_session().await;
        b.goto(&format!("http://{}/s/{sid}", proxy.addr)).await;
        b.wait_live().await;
        proxy.silence_open_connections();
        app.commit(&sid, "lbs", "10").await;
        // Two missed pings and a margin, checked every 5 s: well within 20 s.
        let status = async {
            wait_for("the page to say it is not live", Duration::from_secs(20), || async {
                let text = b.text(STATUS).await?;
                Ok((text == "Reconnecting…").then_some(()))
            })
            .await
        };
        status.await;
        // The browser's old connections are dead; a new stream, over a new
        // connection, catches the page up.
        proxy.close_silent_connections();
        wait_for("the page to catch up", Duration::from_secs(20), || async {
            Ok((b.value(KG).await? == "4.54" && b.text(STATUS).await?.is_empty()).then_some(()))
        })
        .await;
    })
    .await;
}
