//! Scale-out: replicas that share sessions through a real Redis (issue 9).
//! Each test starts its own redis-server on a Unix socket in a temporary
//! directory, and its replicas in-process on port 0 (or as processes,
//! where one must be killed).

use crate::common;

use std::time::Duration;

use common::binary::{self, STARTUP};
use common::checks::{Reply, assert_update};
use common::html;
use common::redis::RedisServer;
use common::sse::{SseStream, is_consistent, json_pair};
use common::{TestApp, spawn_app_with};
use futures_util::future::join_all;
use weight_converter::Config;
use weight_converter::session::ViewId;

/// The spec: a change reaches every view on every replica within 1 s.
const FAN_OUT_BOUND: Duration = Duration::from_secs(1);
/// The spec: with Redis down, changes and page loads answer within 2 s.
/// Generous on top, so a loaded machine does not fail the test.
const OUTAGE_ANSWER_BOUND: Duration = Duration::from_secs(3);

/// Settings for a replica on `redis`, and any `flags` more.
fn config_with(redis: &RedisServer, flags: &[&str]) -> Config {
    let url = redis.url();
    common::config(&[&["--redis-url", url.as_str()], flags].concat())
}

fn config(redis: &RedisServer) -> Config {
    config_with(redis, &[])
}

/// A replica on `redis`, once Redis has acknowledged its subscription.
async fn replica_with(config: Config) -> TestApp {
    let app = spawn_app_with(config).await;
    app.wait_until_ready().await;
    app
}

/// Two replicas of one app on one Redis, both subscribed.
async fn two_replicas(redis: &RedisServer) -> (TestApp, TestApp) {
    let a = replica_with(config(redis)).await;
    let b = replica_with(config(redis)).await;
    assert_eq!(redis.subscribers("wc:changes").await, 2, "one subscription per replica");
    (a, b)
}

async fn events(app: &TestApp, path: &str) -> SseStream {
    SseStream::connect(&app.client, &app.url(path), None).await
}

/// The read-only link the page shows: `/v/{token}`.
fn read_link(page: &str) -> String {
    let at = page.find("href=\"/v/").expect("a read-only link on the page") + "href=\"".len();
    let end = at + page[at..].find('"').expect("a closed href");
    page[at..end].to_owned()
}

/// Commits `key=value` as htmx would, from `view` if given.
async fn htmx_commit(app: &TestApp, sid: &str, key: &str, value: &str, view: Option<&ViewId>) -> Reply {
    let mut pairs = vec![(key, value)];
    if let Some(view) = view {
        pairs.push(("view", view.as_str()));
    }
    app.post_form(sid, key, &pairs, true).await
}

#[tokio::test]
async fn a_session_made_on_one_replica_works_on_another() {
    let redis = RedisServer::start().await;
    let (a, b) = two_replicas(&redis).await;
    let sid = a.new_session().await;
    b.page(&sid).await;
    // Read-your-writes: once A has answered 200, B shows the change at once.
    let reply = htmx_commit(&a, &sid, "lbs", "10", None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(b.state_json(&sid).await, r#"{"lbs":10.0,"kg":4.5359237}"#);
    let reply = htmx_commit(&b, &sid, "kg", "1", None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(a.state_json(&sid).await, r#"{"lbs":2.2046226218487757,"kg":1.0}"#);
    assert_eq!((a.version(&sid).await, b.version(&sid).await), (2, 2));
    // The fragments and the no-JS form work on either.
    assert_eq!(b.get(&format!("/s/{sid}/fragments/converter")).await.status, 200);
    b.commit(&sid, "lbs", "3").await;
    assert_eq!(json_pair(&a.state_json(&sid).await).0, 3.0);
}

#[tokio::test]
async fn a_change_on_one_replica_reaches_views_on_another() {
    let redis = RedisServer::start().await;
    let (a, b) = two_replicas(&redis).await;
    let sid = a.new_session().await;
    let view = ViewId::random();
    let mut plain = events(&b, &format!("/s/{sid}/events")).await;
    let mut own = events(&b, &format!("/s/{sid}/events?view={}", view.as_str())).await;
    assert_eq!(plain.expect_event().await.version(), 0);
    assert_eq!(own.expect_event().await.version(), 0);

    // Made on A by the view that streams from B: B's other views get it,
    // and the view that made it is not echoed.
    assert_eq!(htmx_commit(&a, &sid, "lbs", "10", Some(&view)).await.status, 200);
    let event =
        plain.next_event_within(FAN_OUT_BOUND).await.expect("the change within 1 s").expect("an event");
    assert_eq!((event.event.as_str(), event.version(), event.pair()), ("state", 1, (10.0, 4.5359237)));
    assert_eq!(htmx_commit(&a, &sid, "kg", "2", None).await.status, 200);
    let event = own.next_event_within(FAN_OUT_BOUND).await.expect("the change within 1 s").expect("an event");
    assert_eq!(event.version(), 2, "the view's own change (version 1) was echoed to it");
    assert_eq!(plain.expect_event().await.version(), 2);
}

#[tokio::test]
async fn read_only_links_work_across_replicas() {
    let redis = RedisServer::start().await;
    let (a, b) = two_replicas(&redis).await;
    let sid = a.new_session().await;
    let link = read_link(&a.page(&sid).await);
    let page = b.get(&link).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(&sid), "the read-only page shows the session id");
    let mut stream = events(&b, &format!("{link}/events")).await;
    assert_eq!(stream.expect_event().await.version(), 0);
    // And the one stream the page's app.js opens for it.
    let token = link.strip_prefix("/v/").expect("/v/{token}");
    let mut shared = events(&b, &format!("/events?v={token}")).await;
    let label = format!("v:{token}");
    assert_eq!(shared.expect_event().await.data.split_once('\n').map(|(l, _)| l), Some(label.as_str()));
    a.commit(&sid, "lbs", "10").await;
    let event =
        stream.next_event_within(FAN_OUT_BOUND).await.expect("the change within 1 s").expect("an event");
    assert_eq!((event.version(), event.pair()), (1, (10.0, 4.5359237)));
    assert!(!event.data.contains(&sid), "a read-only event shows the session id");
    let event =
        shared.next_event_within(FAN_OUT_BOUND).await.expect("the change within 1 s").expect("an event");
    let (named, markup) = event.data.split_once('\n').expect("a labelled event");
    assert_eq!((named, common::sse::dump_pair(markup)), (label.as_str(), (10.0, 4.5359237)));
    assert!(!event.data.contains(&sid), "a read-only event shows the session id");
    assert_eq!(b.get(&format!("{link}/state.json")).await.body, r#"{"lbs":10.0,"kg":4.5359237}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_writers_over_two_replicas_lose_nothing() {
    const WRITERS: usize = 60;
    const CHANGES_EACH: usize = 5;
    let redis = RedisServer::start().await;
    let (a, b) = two_replicas(&redis).await;
    let sid = a.new_session().await;
    let replicas = [&a, &b];
    let writers = (0..WRITERS).map(|writer| {
        let (app, sid) = (replicas[writer % 2], sid.as_str());
        async move {
            for change in 0..CHANGES_EACH {
                // Every value is new, so every change is applied.
                let value = (writer * CHANGES_EACH + change + 1).to_string();
                let reply = htmx_commit(app, sid, "lbs", &value, None).await;
                assert_eq!(reply.status, 200, "writer {writer}, change {change}: {}", reply.body);
            }
        }
    });
    join_all(writers).await;
    assert_eq!(a.version(&sid).await, (WRITERS * CHANGES_EACH) as u64);
    let (lbs, kg) = json_pair(&b.state_json(&sid).await);
    assert!(is_consistent(lbs, kg), "torn pair: lbs {lbs}, kg {kg}");
}

#[tokio::test]
async fn a_redis_crash_answers_503_loses_nothing_acknowledged_and_views_catch_up() {
    let mut redis = RedisServer::start().await;
    let a = replica_with(config(&redis)).await;
    let b = replica_with(config(&redis)).await;
    let sid = a.new_session().await;
    for value in ["1", "2", "3"] {
        assert_eq!(htmx_commit(&b, &sid, "lbs", value, None).await.status, 200);
    }
    let mut view = events(&a, &format!("/s/{sid}/events")).await;
    assert_eq!(view.expect_event().await.version(), 3);

    redis.kill();
    let during = tokio::time::timeout(OUTAGE_ANSWER_BOUND, htmx_commit(&b, &sid, "lbs", "99", None))
        .await
        .expect("a change answers while Redis is down");
    assert_eq!(during.status, 503, "{}", during.body);
    assert_eq!(during.header("retry-after"), "2");
    // The message goes under the field, which keeps what was typed.
    assert_update(&during.body, &[("p", "lbs-msg")], "a change while Redis is down");
    let message = html::part(&during.body, "p", "lbs-msg").expect("checked above");
    assert_eq!((message.attr("role"), message.attr("data-version")), (Some("alert"), None), "{message:?}");
    assert!(html::text(&during.body, &message).contains("cannot reach its session store"), "{}", during.body);
    let page = tokio::time::timeout(OUTAGE_ANSWER_BOUND, a.get(&format!("/s/{sid}")))
        .await
        .expect("a page load answers while Redis is down");
    assert_eq!(page.status, 503);
    assert!(page.body.contains("Temporarily unavailable"), "{}", page.body);
    assert_eq!(page.header("retry-after"), "2");
    assert_eq!(a.get("/readyz").await.status, 503);
    assert_eq!(a.get("/healthz").await.status, 200);
    // The open view's stream ends: it could not hear other replicas'
    // changes, and must not look live. A new one is refused for now.
    let ended = view.next_event_within(OUTAGE_ANSWER_BOUND).await.expect("the stream ends in time");
    assert!(ended.is_none(), "an event while Redis was down: {ended:?}");
    let refused = a.get(&format!("/s/{sid}/events")).await;
    assert_eq!((refused.status, refused.header("retry-after")), (503, "2"), "{}", refused.body);

    redis.restart().await;
    a.wait_until_ready().await;
    b.wait_until_ready().await;
    assert_eq!(a.state_json(&sid).await, r#"{"lbs":3.0,"kg":1.36077711}"#, "an acknowledged change was lost");
    assert_eq!(a.version(&sid).await, 3, "the refused change was applied");
    // The view reconnects, catches up, and goes on.
    let mut view = events(&a, &format!("/s/{sid}/events")).await;
    assert_eq!(view.expect_event().await.version(), 3);
    assert_eq!(htmx_commit(&b, &sid, "lbs", "4", None).await.status, 200);
    let event = view.next_event_within(FAN_OUT_BOUND).await.expect("the view catches up").expect("an event");
    assert_eq!((event.version(), event.pair().0), (4, 4.0));
}

#[tokio::test]
async fn a_stalled_redis_answers_503_instead_of_hanging() {
    let redis = RedisServer::start().await;
    let app = replica_with(config(&redis)).await;
    let sid = app.new_session().await;
    assert_eq!(htmx_commit(&app, &sid, "lbs", "1", None).await.status, 200);
    redis.pause();
    let during = tokio::time::timeout(OUTAGE_ANSWER_BOUND, htmx_commit(&app, &sid, "lbs", "2", None))
        .await
        .expect("a change answers while Redis is stalled");
    assert_eq!((during.status, during.header("retry-after")), (503, "2"), "{}", during.body);
    let page = tokio::time::timeout(OUTAGE_ANSWER_BOUND, app.get(&format!("/s/{sid}")))
        .await
        .expect("a page load answers while Redis is stalled");
    assert_eq!(page.status, 503);
    let ready = tokio::time::timeout(OUTAGE_ANSWER_BOUND, app.get("/readyz")).await.expect("/readyz answers");
    assert_eq!(ready.status, 503);
    redis.resume();
    app.wait_until_ready().await;
    assert_eq!(json_pair(&app.state_json(&sid).await).0, 1.0, "the refused change was applied");
    assert_eq!(htmx_commit(&app, &sid, "lbs", "3", None).await.status, 200);
}

#[tokio::test]
async fn a_killed_replica_leaves_its_sessions_to_the_others() {
    let redis = RedisServer::start().await;
    let start = || binary::spawn(binary::command().env("REDIS_URL", redis.url()).env("RUST_LOG", "warn"));
    let mut a = start();
    let mut b = start();
    let (a_base, b_base) = (a.ready_address(STARTUP), b.ready_address(STARTUP));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let started = client.get(format!("{a_base}/")).send().await.expect("GET / on A");
    assert_eq!(started.status(), 303);
    let page = started.headers()["location"].to_str().unwrap().to_owned();
    let post = |base: &str, value: &str| {
        client
            .post(format!("{base}{page}/widgets/lbs"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("lbs={value}"))
            .send()
    };
    assert_eq!(post(&a_base, "10").await.expect("POST on A").status(), 303);

    drop(a); // SIGKILL
    let state = client.get(format!("{b_base}{page}/state.json")).send().await.expect("B answers");
    assert_eq!(state.text().await.unwrap(), r#"{"lbs":10.0,"kg":4.5359237}"#);
    assert_eq!(post(&b_base, "20").await.expect("POST on B").status(), 303);
    let state = client.get(format!("{b_base}{page}/state.json")).send().await.expect("B answers");
    assert_eq!(state.text().await.unwrap(), r#"{"lbs":20.0,"kg":9.0718474}"#);
    assert_eq!(b.exit_within(Duration::ZERO), None, "B is still serving");
}

#[tokio::test]
async fn sessions_expire_in_redis_and_leave_no_keys() {
    let redis = RedisServer::start().await;
    let app = replica_with(config_with(&redis, &["--session-ttl", "1s"])).await;
    let sid = app.new_session().await;
    let token = read_link(&app.page(&sid).await)["/v/".len()..].to_owned();
    app.commit(&sid, "lbs", "10").await;
    assert_eq!(redis.keys().await, {
        let mut keys = vec![format!("wc:s:{sid}"), format!("wc:t:{token}")];
        keys.sort();
        keys
    });
    for key in [format!("wc:s:{sid}"), format!("wc:t:{token}")] {
        let ttl: i64 = redis.query(&["PTTL", &key]).await;
        assert!((1..=1000).contains(&ttl), "{key} expires in {ttl} ms");
    }
    // Gone once idle past the TTL, as Redis expires it. Watched in Redis:
    // asking the app would count as use and keep the session alive.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !redis.keys().await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the session never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.get(&format!("/s/{sid}/state.json")).await.status, 404);
    assert_eq!(app.get(&format!("/v/{token}")).await.status, 404);
    assert_eq!(redis.keys().await, Vec::<String>::new());
}

#[tokio::test]
async fn unknown_ids_create_no_keys() {
    let redis = RedisServer::start().await;
    let app = replica_with(config(&redis)).await;
    let sid = "AAAAAAAAAAAAAAAAAAAAAA";
    let token = "BBBBBBBBBBBBBBBBBBBBBA";
    for path in [
        format!("/s/{sid}"),
        format!("/s/{sid}/state.json"),
        format!("/s/{sid}/events"),
        format!("/s/{sid}/fragments/converter"),
        format!("/s/{sid}/fragments/state"),
        format!("/v/{token}"),
        format!("/v/{token}/state.json"),
        format!("/v/{token}/events"),
        format!("/v/{token}/fragments/state"),
    ] {
        assert_eq!(app.get(&path).await.status, 404, "GET {path}");
    }
    assert_eq!(htmx_commit(&app, sid, "lbs", "1", None).await.status, 404);
    assert_eq!(app.post_form(sid, "lbs", &[("lbs", "1")], false).await.status, 404);
    assert_eq!(redis.keys().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_replica_started_before_redis_becomes_ready_when_redis_comes() {
    let mut redis = RedisServer::start().await;
    redis.kill();
    let app = spawn_app_with(config(&redis)).await;
    let reply = app.get("/readyz").await;
    assert_eq!((reply.status, reply.body.as_str()), (503, "session store unavailable\n"));
    assert_eq!(app.client.get(app.url("/")).send().await.unwrap().status(), 503);
    redis.restart().await;
    app.wait_until_ready().await;
    let sid = app.new_session().await;
    assert_eq!(app.state_json(&sid).await, r#"{"lbs":0.0,"kg":0.0}"#);
}

/// Frames rendered so far by `app`: (writer, reader).
fn frames_rendered(app: &TestApp) -> (u64, u64) {
    let count = |audience: &str| {
        app.counter(&format!(r#"weight_converter_frames_rendered_total{{audience="{audience}"}}"#))
    };
    (count("writer"), count("reader"))
}

#[tokio::test]
async fn each_replica_renders_each_version_once_per_audience() {
    let redis = RedisServer::start().await;
    let (a, b) = two_replicas(&redis).await;
    let sid = a.new_session().await;
    let link = read_link(&a.page(&sid).await);
    let mut on_b = Vec::new();
    for path in [format!("/s/{sid}/events"), format!("{link}/events")] {
        for _ in 0..3 {
            on_b.push(events(&b, &path).await);
        }
    }
    let mut on_a = events(&a, &format!("/s/{sid}/events")).await;
    for stream in on_b.iter_mut().chain([&mut on_a]) {
        assert_eq!(stream.expect_event().await.version(), 0);
    }
    let (a_before, b_before) = (frames_rendered(&a), frames_rendered(&b));
    for (version, value) in [(1, "1"), (2, "2")] {
        assert_eq!(htmx_commit(&a, &sid, "lbs", value, None).await.status, 200);
        for stream in on_b.iter_mut().chain([&mut on_a]) {
            assert_eq!(stream.expect_event().await.version(), version);
        }
    }
    let (a_after, b_after) = (frames_rendered(&a), frames_rendered(&b));
    assert_eq!((b_after.0 - b_before.0, b_after.1 - b_before.1), (2, 2), "B: once per version per audience");
    assert_eq!((a_after.0 - a_before.0, a_after.1 - a_before.1), (2, 0), "A has writer views only");
}

#[tokio::test]
async fn sessions_never_changed_expire_sooner_in_redis() {
    let redis = RedisServer::start().await;
    let app = replica_with(config_with(&redis, &["--unchanged-session-ttl", "2s"])).await;
    let sid = app.new_session().await;
    let key = format!("wc:s:{sid}");
    let untouched: i64 = redis.query(&["PTTL", &key]).await;
    assert!((1..=2000).contains(&untouched), "a new session expires in {untouched} ms");
    app.commit(&sid, "lbs", "1").await;
    let changed: i64 = redis.query(&["PTTL", &key]).await;
    assert!(changed > 2000, "a changed session expires in {changed} ms, not the full SESSION_TTL");
}
