//! Live sync over raw HTTP/SSE against the real server (issue 3).

use crate::common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use common::binary;
use common::checks::assert_update;
use common::html;
use common::sse::{self, Event, READ_TIMEOUT, SseStream, dump_pair, is_consistent, json_pair};
use common::{TestApp, spawn_app, spawn_app_with};
use futures_util::future::join_all;
use weight_converter::session::ViewId;

/// Long enough that a change that was going to arrive would have; used
/// only to check that something does *not* arrive.
/// What the spec allows for shutting down with streams open.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(2);

fn events_url(base: &str, sid: &str, view: Option<&ViewId>) -> String {
    match view {
        Some(view) => format!("{base}/s/{sid}/events?view={}", view.as_str()),
        None => format!("{base}/s/{sid}/events"),
    }
}

async fn open(app: &TestApp, sid: &str, view: Option<&ViewId>) -> SseStream {
    SseStream::connect(&app.client, &events_url(&app.base, sid, view), None).await
}

/// Opens a stream and reads its snapshot, which must be at `version`.
async fn open_at(app: &TestApp, sid: &str, view: Option<&ViewId>, version: u64) -> SseStream {
    let mut stream = open(app, sid, view).await;
    let snapshot = stream.expect_event().await;
    assert_eq!((snapshot.event.as_str(), snapshot.version()), ("state", version));
    stream
}

/// Commits `key=value` as htmx would, from `view`; returns the status and body.
async fn commit(
    client: &reqwest::Client,
    base: &str,
    sid: &str,
    key: &str,
    value: &str,
    view: Option<&ViewId>,
) -> (u16, String) {
    let mut body = format!("{key}={value}");
    if let Some(view) = view {
        body.push_str("&view=");
        body.push_str(view.as_str());
    }
    let request = client
        .post(format!("{base}/s/{sid}/widgets/{key}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("HX-Request", "true")
        .body(body)
        .send();
    let response = tokio::time::timeout(READ_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| panic!("POST {key}={value}: no response within {READ_TIMEOUT:?}"))
        .expect("POST widget");
    let status = response.status().as_u16();
    let text = tokio::time::timeout(READ_TIMEOUT, response.text())
        .await
        .expect("POST body in time")
        .expect("POST body");
    (status, text)
}

/// A commit that must be accepted (200); returns the response body.
async fn change(app: &TestApp, sid: &str, key: &str, value: &str, view: Option<&ViewId>) -> String {
    let (status, body) = commit(&app.client, &app.base, sid, key, value, view).await;
    assert_eq!(status, 200, "POST {key}={value}: {body}");
    body
}

/// The `data-version` of the dump in an HTML fragment.
fn dump_version(markup: &str) -> u64 {
    let dump = html::part(markup, "pre", "state").unwrap_or_else(|| panic!("no dump in:\n{markup}"));
    dump.attr("data-version").expect("dump has data-version").parse().expect("numeric data-version")
}

/// What a writer's event holds: every field, its message line, the dump.
const WRITER_PARTS: [(&str, &str); 5] =
    [("input", "lbs"), ("p", "lbs-msg"), ("input", "kg"), ("p", "kg-msg"), ("pre", "state")];
/// What a reader's event holds: the values and the dump.
const READER_PARTS: [(&str, &str); 3] = [("output", "lbs"), ("output", "kg"), ("pre", "state")];

fn assert_event_consistent(event: &Event) {
    let (lbs, kg) = event.pair();
    assert!(is_consistent(lbs, kg), "torn pair lbs={lbs} kg={kg} in event {}", event.version());
}

/// One gauge from `/metrics`.
async fn gauge(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let response = tokio::time::timeout(READ_TIMEOUT, client.get(format!("{base}/metrics")).send())
        .await
        .expect("metrics in time");
    let text = response.expect("GET /metrics").text().await.expect("metrics body");
    common::metrics::sample(&text, name).unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

const OPEN_STREAMS: &str = "weight_converter_open_streams";

/// Polls the open-streams gauge until it reads `want`; generous, since the
/// server may only notice a departed client on its next write.
async fn wait_for_open_streams(app: &TestApp, want: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = gauge(&app.client, &app.base, OPEN_STREAMS).await;
        if now == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{OPEN_STREAMS} stuck at {now}, expected {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_snapshot_comes_first_and_ids_grow_by_one_per_change() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    change(&app, &sid, "lbs", "1", None).await;
    change(&app, &sid, "kg", "2", None).await;
    change(&app, &sid, "lbs", "3", None).await;
    let state = json_pair(&app.state_json(&sid).await);

    // Whatever Last-Event-ID says, the current state comes first.
    let url = events_url(&app.base, &sid, None);
    let mut streams = Vec::new();
    for last_event_id in [None, Some("999"), Some("0"), Some("2")] {
        let mut stream = SseStream::connect(&app.client, &url, last_event_id).await;
        let first = stream.expect_event().await;
        assert_eq!(first.event, "state", "Last-Event-ID {last_event_id:?}");
        assert_eq!(first.version(), 3, "Last-Event-ID {last_event_id:?}");
        assert_eq!(first.pair(), state, "Last-Event-ID {last_event_id:?}");
        assert!(stream.retry.is_some_and(|ms| ms > 0), "no retry: before the snapshot");
        assert_eq!(stream.retry_seen_after, Some(0), "retry: comes before the first event");
        assert_eq!(
            stream.headers.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "an event stream must not be cached"
        );
        streams.push(stream);
    }

    // One event per applied change, ids up by one each time.
    for (i, lbs) in ["10", "11", "12"].into_iter().enumerate() {
        change(&app, &sid, "lbs", lbs, None).await;
        for stream in &mut streams {
            let event = stream.expect_event().await;
            assert_eq!(event.version(), 4 + i as u64);
            assert_eq!(event.pair().0, lbs.parse::<f64>().unwrap());
            assert_event_consistent(&event);
        }
    }
    // Neither an unchanged value nor refused input is a change: the next
    // event is the next applied change, one id further.
    change(&app, &sid, "lbs", "12", None).await;
    let (status, _) = commit(&app.client, &app.base, &sid, "lbs", "abc", None).await;
    assert_eq!(status, 422);
    change(&app, &sid, "kg", "20", None).await;
    for stream in &mut streams {
        let event = stream.expect_event().await;
        assert_eq!(event.version(), 7);
        assert_eq!(event.pair().1, 20.0);
    }
}

#[tokio::test]
async fn unknown_and_malformed_sessions_get_404() {
    let app = spawn_app().await;
    // Well formed (128 zero bits) but never issued; then malformed ones.
    for sid in ["AAAAAAAAAAAAAAAAAAAAAA", "nope", "AAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAAAAA"] {
        let response = sse::get(&app.client, &events_url(&app.base, sid, None), None).await;
        assert_eq!(response.status(), 404, "sid {sid:?}");
    }
    // Refused streams hold nothing.
    assert_eq!(gauge(&app.client, &app.base, OPEN_STREAMS).await, 0.0);
}

#[tokio::test]
async fn twenty_views_all_get_a_change() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let mut views = join_all((0..20).map(|_| open_at(&app, &sid, None, 0))).await;
    change(&app, &sid, "lbs", "42", None).await;
    let events = join_all(views.iter_mut().map(SseStream::expect_event)).await;
    for event in events {
        assert_eq!(event.version(), 1);
        assert_eq!(event.pair(), (42.0, 42.0 * sse::KG_PER_LB));
    }
}

#[tokio::test]
async fn no_change_leaks_to_another_session() {
    let app = spawn_app().await;
    let (a, b) = (app.new_session().await, app.new_session().await);
    let mut on_a = vec![open_at(&app, &a, None, 0).await, open_at(&app, &a, None, 0).await];
    let mut on_b = vec![open_at(&app, &b, None, 0).await, open_at(&app, &b, None, 0).await];

    change(&app, &a, "lbs", "5", None).await;
    for stream in &mut on_a {
        assert_eq!(stream.expect_event().await.pair().0, 5.0);
    }

    // B's views' next event is B's own first change: A's never came between.
    change(&app, &b, "kg", "7", None).await;
    for stream in &mut on_b {
        let event = stream.expect_event().await;
        assert_eq!((event.version(), event.pair().1), (1, 7.0), "B's own change, not A's");
    }
    change(&app, &a, "lbs", "6", None).await;
    for stream in &mut on_a {
        let event = stream.expect_event().await;
        assert_eq!((event.version(), event.pair().0), (2, 6.0), "A's next change, not B's");
    }
}

/// Events are updates, the same for every view of a session: parts named
/// by `data-part`, at the event's version, and no element ids.
#[tokio::test]
async fn events_carry_the_parts_every_view_has_and_no_ids() {
    let app = spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    let mut writer = open_at(&app, &sid, None, 0).await;
    let mut reader = SseStream::connect(&app.client, &format!("{}/v/{token}/events", app.base), None).await;
    let mut shared =
        SseStream::connect(&app.client, &format!("{}/events?s={sid}&v={token}", app.base), None).await;
    let first = reader.expect_event().await;
    assert_update(&first.data, &READER_PARTS, "the reader's snapshot");
    for _ in 0..2 {
        shared.expect_event().await;
    }
    let view = ViewId::random();
    change(&app, &sid, "lbs", "10", Some(&view)).await;

    let event = writer.expect_event().await;
    assert_update(&event.data, &WRITER_PARTS, "a writer's event");
    for tag in html::all_parts(&event.data) {
        assert_eq!(tag.attr("data-version"), Some("1"), "{tag:?}");
    }
    let lbs = html::part(&event.data, "input", "lbs").expect("lbs");
    assert_eq!((lbs.attr("name"), lbs.attr("value")), (Some("lbs"), Some("10.00")));
    // The dump names the view that made the change, so that view can
    // skip it on a stream it shares.
    let dump = html::part(&event.data, "pre", "state").expect("the dump");
    assert_eq!(dump.attr("data-origin"), Some(view.as_str()), "{dump:?}");

    let event = reader.expect_event().await;
    assert_update(&event.data, &READER_PARTS, "a reader's event");
    let kg = html::part(&event.data, "output", "kg").expect("kg");
    assert_eq!(html::text(&event.data, &kg), "4.54");
    // A reader learns nothing of the writers: no view ids either.
    assert!(!event.data.contains("data-origin") && !event.data.contains(view.as_str()), "{}", event.data);

    // The shared stream: the same HTML after the line naming the session.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = shared.expect_event().await;
        let (label, markup) = event.data.split_once('\n').expect("a labelled event");
        let parts: &[(&str, &str)] = if label.starts_with("s:") { &WRITER_PARTS } else { &READER_PARTS };
        assert_update(markup, parts, label);
        seen.push(label.to_owned());
    }
    seen.sort();
    assert_eq!(seen, [format!("s:{sid}"), format!("v:{token}")]);
}

#[tokio::test]
async fn a_view_is_not_echoed_its_own_change() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let (x, y) = (ViewId::random(), ViewId::random());
    let mut sx = open_at(&app, &sid, Some(&x), 0).await;
    let mut sy = open_at(&app, &sid, Some(&y), 0).await;
    let mut plain = open_at(&app, &sid, None, 0).await;

    // X's change reaches Y and an unnamed view, but not X.
    change(&app, &sid, "lbs", "5", Some(&x)).await;
    assert_eq!(sy.expect_event().await.version(), 1);
    assert_eq!(plain.expect_event().await.version(), 1);

    // Y's change reaches X, as X's next event: version 1 was not echoed to it.
    // The next one, from nobody in particular, reaches all.
    change(&app, &sid, "lbs", "6", Some(&y)).await;
    let event = sx.expect_event().await;
    assert_eq!((event.version(), event.pair().0), (2, 6.0), "X was echoed its own change");
    assert_eq!(plain.expect_event().await.version(), 2);
    change(&app, &sid, "lbs", "7", None).await;
    for stream in [&mut sx, &mut sy, &mut plain] {
        let event = stream.expect_event().await;
        assert_eq!((event.version(), event.pair().0), (3, 7.0));
    }
}

#[tokio::test]
async fn a_reconnecting_view_catches_up() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let view = ViewId::random();
    // Another view stays open throughout, so the session's channel lives on.
    let mut other = open_at(&app, &sid, None, 0).await;
    let mut stream = open_at(&app, &sid, Some(&view), 0).await;
    change(&app, &sid, "lbs", "1", None).await;
    assert_eq!(stream.expect_event().await.version(), 1);
    drop(stream);

    change(&app, &sid, "lbs", "2", None).await;
    change(&app, &sid, "kg", "3", None).await;
    // The newest change is the reconnecting view's own (say, posted just
    // before its stream dropped): the snapshot must come all the same.
    change(&app, &sid, "lbs", "4", Some(&view)).await;
    assert_eq!(other.read_until_version(4).await.last().map(Event::version), Some(4));
    let state = json_pair(&app.state_json(&sid).await);

    let url = events_url(&app.base, &sid, Some(&view));
    let mut stream = SseStream::connect(&app.client, &url, Some("1")).await;
    let first = stream.expect_event().await;
    assert_eq!((first.version(), first.pair()), (4, state), "the newest state comes first");
    change(&app, &sid, "kg", "5", None).await;
    assert_eq!(stream.expect_event().await.version(), 5, "and it is live again");
}

#[tokio::test]
async fn sixty_concurrent_writers_converge_without_a_torn_pair() {
    const WRITERS: usize = 60;
    const POSTS_EACH: usize = 2;
    const CHANGES: u64 = (WRITERS * POSTS_EACH) as u64;

    let app = spawn_app().await;
    let sid = app.new_session().await;
    let mut views = Vec::new();
    for i in 0..6 {
        // Some views have an id of their own, none of which writes.
        let view = (i % 2 == 0).then(ViewId::random);
        views.push(open_at(&app, &sid, view.as_ref(), 0).await);
    }
    let readers: Vec<_> = views
        .into_iter()
        .map(|mut stream| tokio::spawn(async move { stream.read_until_version(CHANGES).await }))
        .collect();

    // Every value is distinct, and pounds typed (< 1000) never meet pounds
    // converted from kilograms typed (> 11000), nor the other way round, so
    // every POST is an applied change.
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (client, base, sid) = (app.client.clone(), app.base.clone(), sid.clone());
            tokio::spawn(async move {
                let view = ViewId::random();
                let mut versions = Vec::new();
                for j in 0..POSTS_EACH {
                    let n = i * POSTS_EACH + j;
                    let (key, value) = if (i + j) % 2 == 0 {
                        ("lbs", format!("{n}.5"))
                    } else {
                        ("kg", format!("{}.25", 5000 + n))
                    };
                    let (status, body) = commit(&client, &base, &sid, key, &value, Some(&view)).await;
                    assert_eq!(status, 200, "POST {key}={value}: {body}");
                    let (lbs, kg) = dump_pair(&body);
                    assert!(is_consistent(lbs, kg), "torn pair lbs={lbs} kg={kg} in a POST response");
                    versions.push(dump_version(&body));
                }
                versions
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for writer in join_all(writers).await {
        versions.extend(writer.expect("writer task"));
    }
    // Applied one at a time: each response saw its own version.
    assert_eq!(versions, (1..=CHANGES).collect(), "every change applied once, in some order");

    let state = json_pair(&app.state_json(&sid).await);
    for reader in join_all(readers).await {
        let events = reader.expect("reader task");
        for pair in events.windows(2) {
            assert!(pair[0].version() < pair[1].version(), "ids go forward");
        }
        events.iter().for_each(assert_event_consistent);
        let last = events.last().expect("an event");
        assert_eq!((last.version(), last.pair()), (CHANGES, state), "every view ends on the final state");
    }
}

#[tokio::test]
async fn three_hundred_dropped_streams_leak_nothing() {
    let app = spawn_app().await;
    let sessions: Vec<String> = join_all((0..10).map(|_| app.new_session())).await;

    // The gauge does count streams.
    let stream = open_at(&app, &sessions[0], None, 0).await;
    assert_eq!(gauge(&app.client, &app.base, OPEN_STREAMS).await, 1.0);
    drop(stream);

    let tasks = sessions.iter().enumerate().map(|(t, sid)| {
        let (client, url) = (app.client.clone(), events_url(&app.base, sid, None));
        tokio::spawn(async move {
            for cycle in 0..30 {
                let mut stream = SseStream::connect(&client, &url, None).await;
                // Most read the snapshot first; some leave straight after
                // the headers.
                if (t + cycle) % 3 != 0 {
                    assert_eq!(stream.expect_event().await.version(), 0);
                }
            }
        })
    });
    for task in join_all(tasks).await {
        task.expect("connect/disconnect task");
    }
    wait_for_open_streams(&app, 0.0).await;
    assert_eq!(gauge(&app.client, &app.base, "weight_converter_watched_sessions").await, 0.0);
    // And streams still work.
    let mut stream = open_at(&app, &sessions[0], None, 0).await;
    change(&app, &sessions[0], "lbs", "1", None).await;
    assert_eq!(stream.expect_event().await.version(), 1);
}

#[tokio::test]
async fn graceful_shutdown_with_streams_open_is_quick() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let mut streams = join_all((0..5).map(|_| open_at(&app, &sid, None, 0))).await;
    let stopped = tokio::time::timeout(SHUTDOWN_BOUND, app.shut_down()).await;
    stopped.expect("shut_down() must return within 2 s with streams open").expect("clean shutdown");
    for stream in &mut streams {
        let end = stream.next_event_within(READ_TIMEOUT).await;
        assert!(matches!(end, Ok(None)), "the stream ends cleanly, got {end:?}");
    }
}

#[tokio::test]
async fn sigterm_with_streams_open_exits_quickly() {
    // The guard kills the child however the test ends, and keeps draining
    // stdout so logging never blocks on a full pipe.
    let mut command = binary::command();
    command.env("HOST", "127.0.0.1").env("RUST_LOG", "warn").stderr(Stdio::inherit());
    let (mut server, base) = binary::start(&mut command);

    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(response.status(), 303);
    let sid = response.headers()["location"].to_str().unwrap().strip_prefix("/s/").unwrap().to_owned();
    let url = events_url(&base, &sid, None);
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = SseStream::connect(&client, &url, None).await;
        assert_eq!(stream.expect_event().await.version(), 0);
        streams.push(stream);
    }

    server.sigterm();
    let status = server
        .exit_within(SHUTDOWN_BOUND)
        .expect("the server must exit within 2 s of SIGTERM with streams open");
    assert!(status.success(), "exit status {status}");
    for stream in &mut streams {
        let end = stream.next_event_within(READ_TIMEOUT).await;
        assert!(matches!(end, Ok(None)), "the stream ends cleanly, got {end:?}");
    }
}

#[tokio::test]
async fn past_either_cap_a_stream_gets_503_with_retry_after() {
    let app = spawn_app_with(common::config(&["--max-streams-per-session", "2", "--max-streams", "3"])).await;
    let (a, b) = (app.new_session().await, app.new_session().await);

    let assert_busy = |response: reqwest::Response, which: &str| {
        assert_eq!(response.status(), 503, "{which}");
        let retry_after =
            response.headers().get("retry-after").unwrap_or_else(|| panic!("{which}: no Retry-After"));
        let seconds: u64 = retry_after.to_str().unwrap().parse().expect("Retry-After in seconds");
        assert!(seconds > 0, "{which}: Retry-After {seconds}");
    };

    let a1 = open_at(&app, &a, None, 0).await;
    let _a2 = open_at(&app, &a, None, 0).await;
    assert_busy(
        sse::get(&app.client, &events_url(&app.base, &a, None), None).await,
        "3rd stream on a session",
    );

    let mut b1 = open_at(&app, &b, None, 0).await;
    assert_busy(sse::get(&app.client, &events_url(&app.base, &b, None), None).await, "4th stream in total");
    assert_eq!(gauge(&app.client, &app.base, OPEN_STREAMS).await, 3.0, "refused streams hold nothing");

    // The open ones are unharmed, and a freed place can be taken again.
    change(&app, &b, "lbs", "1", None).await;
    assert_eq!(b1.expect_event().await.version(), 1);
    drop(a1);
    wait_for_open_streams(&app, 2.0).await;
    open_at(&app, &b, None, 1).await;
}

#[tokio::test]
async fn a_lagging_view_gets_the_latest_state_and_blocks_no_one() {
    const CHANGES: u64 = 200;
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let mut lagging = open_at(&app, &sid, None, 0).await;
    let mut other = open_at(&app, &sid, None, 0).await;
    let other = tokio::spawn(async move { other.read_until_version(CHANGES).await });

    // Nobody reads `lagging` while these are made.
    for n in 1..=CHANGES {
        let (key, value) =
            if n % 2 == 0 { ("lbs", format!("{n}.5")) } else { ("kg", format!("{}.25", 5000 + n)) };
        change(&app, &sid, key, &value, None).await;
    }
    let seen = other.await.expect("the other view's reader");
    assert_eq!(seen.last().map(Event::version), Some(CHANGES), "the other view kept up");

    let state = json_pair(&app.state_json(&sid).await);
    let events = lagging.read_until_version(CHANGES).await;
    for pair in events.windows(2) {
        assert!(pair[0].version() < pair[1].version(), "ids go forward");
    }
    events.iter().for_each(assert_event_consistent);
    let last = events.last().unwrap();
    assert_eq!((last.version(), last.pair()), (CHANGES, state), "the lagging view reaches the latest state");

    // Still live, not dropped.
    change(&app, &sid, "lbs", "1", None).await;
    assert_eq!(lagging.expect_event().await.version(), CHANGES + 1);
}

#[tokio::test]
async fn an_idle_stream_sends_keep_alive_comments() {
    let app = spawn_app_with(common::config(&["--sse-keep-alive", "100ms"])).await;
    let sid = app.new_session().await;
    let mut stream = open(&app, &sid, None).await;
    stream.expect_event().await;
    // Nothing changes; the stream stays open and comments keep coming.
    stream.expect_keep_alives(2).await;
    assert_eq!(stream.pings, 0, "keep-alives here are comments");
}

#[tokio::test]
async fn a_stream_outlives_the_request_timeout() {
    // REQUEST_TIMEOUT bounds the wait for a response to start; an event
    // stream has started, and must go on as long as its viewer stays.
    let app = spawn_app_with(common::config(&["--request-timeout", "300ms"])).await;
    let sid = app.new_session().await;
    let mut stream = open_at(&app, &sid, None, 0).await;
    common::let_time_pass(10 * Duration::from_millis(300)).await;
    change(&app, &sid, "lbs", "10", None).await;
    let event = stream.expect_event().await;
    assert_eq!((event.event.as_str(), event.version()), ("state", 1));
    assert!(dump_pair(&event.data).0 == 10.0, "{}", event.data);
}

#[tokio::test]
async fn streams_end_when_their_session_expires_or_is_evicted() {
    // A view of a session that is gone must not stay open showing a state
    // that no longer exists; another session's view goes on.
    let ttl = Duration::from_secs(3600);
    let config = common::config(&["--session-ttl", "1h", "--idle-timeout", "10h", "--max-sessions", "2"]);
    let app = spawn_app_with(config).await;
    let (expiring, evicted) = (app.new_session().await, app.new_session().await);
    let mut expiring_view = open_at(&app, &expiring, None, 0).await;
    let mut evicted_view = open_at(&app, &evicted, None, 0).await;

    // A third session pushes out the least recently used one.
    change(&app, &expiring, "lbs", "1", None).await;
    let survivor = app.new_session().await;
    let mut survivor_view = open_at(&app, &survivor, None, 0).await;
    let ended = evicted_view.next_event_within(Duration::from_millis(2000)).await;
    assert!(
        matches!(ended, Ok(None)),
        "the evicted session's stream must end: {:?}",
        ended.map(|e| e.is_some())
    );

    // Kept busy, the survivor outlives the TTL; the idle one expires.
    assert_eq!(expiring_view.expect_event().await.version(), 1);
    for value in ["2", "3", "4", "5", "6"] {
        change(&app, &survivor, "lbs", value, None).await;
        common::let_time_pass(ttl / 4).await;
    }
    let ended = expiring_view.next_event_within(Duration::from_secs(3)).await;
    assert!(
        matches!(ended, Ok(None)),
        "the expired session's stream must end: {:?}",
        ended.map(|e| e.is_some())
    );
    assert_eq!(survivor_view.read_until_version(5).await.pop().map(|e| e.version()), Some(5));
    change(&app, &survivor, "lbs", "7", None).await;
    assert_eq!(survivor_view.expect_event().await.version(), 6);
    wait_for_open_streams(&app, 1.0).await;
}

// ---- one stream for several sessions (issue 11) ----------------------------------------

/// The session an event of a multiplexed stream is for (its first data
/// line), and the rest of its data.
fn labelled(event: &Event) -> (&str, &str) {
    event.data.split_once('\n').unwrap_or((event.data.as_str(), ""))
}

async fn open_multiplexed(app: &TestApp, query: &str) -> SseStream {
    let stream = SseStream::connect(&app.client, &format!("{}/events?{query}", app.base), None).await;
    assert_eq!(stream.status, 200, "GET /events?{query}");
    assert_eq!(stream.content_type(), "text/event-stream");
    stream
}

#[tokio::test]
async fn one_stream_carries_several_sessions_each_event_naming_its_own() {
    let app = spawn_app().await;
    let (a, b) = (app.new_session().await, app.new_session().await);
    let (c, token) = app.session_and_token().await;
    change(&app, &c, "lbs", "10", None).await;
    let mut stream = open_multiplexed(&app, &format!("s={a}&s={b}&v={token}")).await;

    // It opens with each session's current state, in the order asked.
    let mut opening = Vec::new();
    for _ in 0..3 {
        let event = stream.expect_event().await;
        assert_eq!(event.event, "state");
        assert_eq!(event.id, None, "versions differ per session: no stream-wide id");
        let (label, html) = labelled(&event);
        opening.push((label.to_owned(), dump_pair(html)));
    }
    let want = [
        (format!("s:{a}"), (0.0, 0.0)),
        (format!("s:{b}"), (0.0, 0.0)),
        (format!("v:{token}"), (10.0, 4.5359237)),
    ];
    assert_eq!(opening, want);
    assert_eq!(gauge(&app.client, &app.base, OPEN_STREAMS).await, 1.0, "one stream");
    assert_eq!(gauge(&app.client, &app.base, "weight_converter_subscriptions").await, 3.0);

    // Each change arrives once, named for its own session only.
    change(&app, &b, "kg", "1", None).await;
    let event = stream.expect_event().await;
    assert_eq!(labelled(&event).0, format!("s:{b}"));
    assert_eq!(dump_pair(labelled(&event).1).1, 1.0);
    change(&app, &c, "lbs", "20", None).await;
    let event = stream.expect_event().await;
    let (label, html) = labelled(&event);
    assert_eq!((label, dump_pair(html)), (format!("v:{token}").as_str(), (20.0, 9.0718474)));
    // A read-only view's events never show the session id.
    assert!(!event.data.contains(&c), "the session id leaked to a read-only view: {}", event.data);
    // Not twice: the next event is the next change.
    change(&app, &b, "kg", "2", None).await;
    let event = stream.expect_event().await;
    assert_eq!((labelled(&event).0, dump_pair(labelled(&event).1).1), (format!("s:{b}").as_str(), 2.0));
}

#[tokio::test]
async fn a_multiplexed_stream_says_which_sessions_are_gone_and_keeps_the_rest() {
    let ttl = Duration::from_secs(3600);
    let app = spawn_app_with(common::config(&["--session-ttl", "1h", "--idle-timeout", "10h"])).await;
    let (kept, expiring) = (app.new_session().await, app.new_session().await);
    let unknown = weight_converter::session::SessionId::random();
    let unknown = unknown.as_str();
    let mut stream = open_multiplexed(&app, &format!("s={kept}&s={unknown}&s={expiring}")).await;
    let gone = stream.expect_event().await;
    assert_eq!((gone.event.as_str(), gone.data.as_str()), ("gone", format!("s:{unknown}").as_str()));
    for sid in [&kept, &expiring] {
        assert_eq!(labelled(&stream.expect_event().await).0, format!("s:{sid}"));
    }
    // Kept busy, one outlives the TTL; the other expires and is named gone.
    let value = 2;
    change(&app, &kept, "lbs", "1", None).await;
    common::let_time_pass(ttl * 3 / 4).await;
    change(&app, &kept, "lbs", "2", None).await;
    common::let_time_pass(ttl / 2).await;
    let mut events = Vec::new();
    let expiring_gone = ("gone".to_owned(), format!("s:{expiring}"));
    while !events.contains(&expiring_gone) {
        let event = stream.expect_event().await;
        events.push((event.event.clone(), labelled(&event).0.to_owned()));
    }
    let kept_state = ("state".to_owned(), format!("s:{kept}"));
    assert_eq!(events.iter().filter(|e| **e == kept_state).count(), value, "{events:?}");
    assert_eq!(
        events.iter().filter(|e| e.1 == format!("s:{expiring}")).collect::<Vec<_>>(),
        [&("gone".to_owned(), format!("s:{expiring}"))]
    );
    // The stream goes on for the session that is left.
    change(&app, &kept, "lbs", "0.5", None).await;
    assert_eq!(labelled(&stream.expect_event().await).0, format!("s:{kept}"));
    assert_eq!(gauge(&app.client, &app.base, "weight_converter_subscriptions").await, 1.0);
}

#[tokio::test]
async fn a_multiplexed_stream_refuses_bad_lists_with_400() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let many: Vec<String> = (0..33).map(|_| format!("s={sid}x")).collect();
    let distinct: Vec<String> =
        (0..33).map(|_| format!("s={}", weight_converter::session::SessionId::random().as_str())).collect();
    for (query, why) in [
        (String::new(), "at least one session"),
        ("s=nonsense".to_owned(), "not a session id"),
        (format!("s={sid}&view=x"), "only s= and v="),
        (many.join("&"), "not a session id"),
        (distinct.join("&"), "at most 32 sessions"),
    ] {
        let reply = app.get(&format!("/events?{query}")).await;
        assert_eq!(reply.status, 400, "?{query}");
        assert!(reply.body.contains(why), "?{query}: {}", reply.body);
    }
    assert_eq!(gauge(&app.client, &app.base, OPEN_STREAMS).await, 0.0);
}

#[tokio::test]
async fn a_session_with_too_many_views_waits_and_the_others_on_its_stream_go_on() {
    let app = spawn_app_with(common::config(&["--max-streams-per-session", "1"])).await;
    let (crowded, other) = (app.new_session().await, app.new_session().await);
    let mut first = open_multiplexed(&app, &format!("s={crowded}")).await;
    assert_eq!(labelled(&first.expect_event().await).0, format!("s:{crowded}"));
    let mut stream = open_multiplexed(&app, &format!("s={crowded}&s={other}")).await;
    let busy = stream.expect_event().await;
    assert_eq!((busy.event.as_str(), busy.data.as_str()), ("busy", format!("s:{crowded}").as_str()));
    assert_eq!(labelled(&stream.expect_event().await).0, format!("s:{other}"));
    app.commit(&other, "lbs", "10").await;
    let event = stream.expect_event().await;
    let (label, html) = labelled(&event);
    assert_eq!((label, dump_pair(html)), (format!("s:{other}").as_str(), (10.0, 4.5359237)));
    assert_eq!(app.ctx.fan_out.subscriptions(), 2, "the busy session is not watched twice");
}

#[tokio::test]
async fn an_idle_multiplexed_stream_sends_ping_events_scripts_can_see() {
    let app = spawn_app_with(common::config(&["--sse-keep-alive", "100ms"])).await;
    let sid = app.new_session().await;
    let mut stream = open_multiplexed(&app, &format!("s={sid}")).await;
    assert_eq!(labelled(&stream.expect_event().await).0, format!("s:{sid}"));
    // One ping opens the stream (saying how often they come), then one per interval.
    stream.expect_keep_alives(3).await;
    assert_eq!(stream.comments, 0, "keep-alives here are events, not comments");
}
