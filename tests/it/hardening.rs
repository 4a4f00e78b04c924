//! Slow, idle, oversized and too many connections, and shutdown whatever
//! clients hold (issue 10), over raw TCP against the real server.

use crate::common;

use std::time::Duration;

use common::binary;
use common::{TestApp, spawn_app_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weight_converter::session::{Cas, ReadToken, SessionId, Snapshot, StoreError, StoreLimits, Swap};

/// Generous: only there to turn a connection that is never cut into a failure.
const CUT_BOUND: Duration = Duration::from_secs(10);

async fn app_with(flags: &[&str]) -> TestApp {
    spawn_app_with(common::config(flags)).await
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(CUT_BOUND, tcp.read_to_end(&mut got))
        .await
        .expect("the server closes the connection")
        .expect("read until closed");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_half_sent_request_head_is_cut_after_the_header_timeout() {
    let app = app_with(&["--header-timeout", "300ms"]).await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert_eq!(read_to_close(&mut tcp).await, "");
    // And one that sends nothing at all.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(read_to_close(&mut silent).await, "");
    assert_eq!(app.counter(r#"weight_converter_connections_cut_total{reason="header_timeout"}"#), 2);
}

/// `METRICS_ADDR` is served with the same limits as the app: a slow head
/// is cut there too, and past its own small cap connections are closed.
#[tokio::test]
async fn the_metrics_listener_has_the_apps_limits() {
    let app = app_with(&["--header-timeout", "300ms", "--metrics-addr", "127.0.0.1:0"]).await;
    let metrics = app.metrics_addr.expect("a metrics listener");
    let mut tcp = TcpStream::connect(metrics).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert_eq!(read_to_close(&mut tcp).await, "");
    assert_eq!(app.counter(r#"weight_converter_connections_cut_total{reason="header_timeout"}"#), 1);
    // Sixteen idle connections fill it; the seventeenth is closed at once.
    let mut held = Vec::new();
    for _ in 0..16 {
        let mut tcp = TcpStream::connect(metrics).await.unwrap();
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut head = [0; 12];
        tcp.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(tcp);
    }
    let mut past = TcpStream::connect(metrics).await.unwrap();
    assert_eq!(read_to_close(&mut past).await, "");
    assert_eq!(
        app.counter(r#"weight_converter_connections_refused_total{reason="too_many_connections"}"#),
        1
    );
    // The app's own port is not touched by it.
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = app_with(&["--idle-timeout", "300ms"]).await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_to_close(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert_eq!(app.counter(r#"weight_converter_connections_cut_total{reason="idle_timeout"}"#), 1);
    assert_eq!(app.counter(r#"weight_converter_connections_cut_total{reason="header_timeout"}"#), 0);
}

#[tokio::test]
async fn an_event_stream_outlives_the_idle_and_header_timeouts() {
    let app =
        app_with(&["--idle-timeout", "200ms", "--header-timeout", "200ms", "--sse-keep-alive", "100ms"])
            .await;
    let sid = app.new_session().await;
    let mut stream =
        common::sse::SseStream::connect(&app.client, &app.url(&format!("/s/{sid}/events")), None).await;
    assert_eq!(stream.expect_event().await.version(), 0);
    // Past both limits (five keep-alives, 100 ms apart), the stream is
    // still open, and idle.
    stream.expect_keep_alives(5).await;
    app.commit(&sid, "lbs", "1").await;
    assert_eq!(stream.expect_event().await.version(), 1);
}

#[tokio::test]
async fn a_request_head_over_32_kib_is_431() {
    let app = app_with(&[]).await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", "a".repeat(40 * 1024));
    // The server may stop reading once it has seen enough to refuse.
    let _ = tcp.write_all(head.as_bytes()).await;
    let answer = read_to_close(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    app.wait_for_counter(r#"weight_converter_connection_errors_total{kind="head_too_large"}"#, 1).await;
    // Just under the limit is fine.
    let reply = app.get_with("/healthz", &[("x-pad", &"b".repeat(30 * 1024))]).await;
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn metrics_count_open_connections() {
    let app = app_with(&[]).await;
    let mut held = TcpStream::connect(app.addr).await.unwrap();
    held.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 12];
    held.read_exact(&mut buf).await.unwrap();
    // This connection and the one the metrics are asked on.
    let metrics = app.get("/metrics").await.body;
    assert!(metrics.contains("weight_converter_open_connections 2\n"), "{metrics}");
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_are_closed_at_once() {
    let app = app_with(&["--max-connections", "2"]).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(app.addr).await.unwrap();
        // A whole request and its answer: the connection is surely counted.
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 12];
        tcp.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(tcp);
    }
    assert_eq!(app.ctx.open_connections.load(std::sync::atomic::Ordering::Relaxed), 2);
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(read_to_close(&mut third).await, "", "closed without an answer");
    assert_eq!(
        app.counter(r#"weight_converter_connections_refused_total{reason="too_many_connections"}"#),
        1
    );
    // Once one leaves, a new client gets in.
    drop(held.pop());
    let deadline = std::time::Instant::now() + CUT_BOUND;
    loop {
        let mut tcp = TcpStream::connect(app.addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        if read_to_close(&mut tcp).await.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no room after a connection left");
    }
}

#[tokio::test]
async fn sigterm_ends_the_process_within_the_grace_period_whatever_clients_hold() {
    let (mut server, address) =
        binary::start(binary::command().env("RUST_LOG", "warn").env("SHUTDOWN_GRACE", "1s"));
    let addr = address.trim_start_matches("http://").to_owned();
    // A half-sent head, an idle connection and an open event stream.
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"POST /s/x/widgets/lbs HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let _idle = TcpStream::connect(&addr).await.unwrap();
    let client = reqwest::Client::new();
    let page = client.get(format!("{address}/")).send().await.unwrap();
    let sid = page.url().path().trim_start_matches("/s/").to_owned();
    let mut stream =
        common::sse::SseStream::connect(&client, &format!("{address}/s/{sid}/events"), None).await;
    assert_eq!(stream.expect_event().await.version(), 0);

    server.sigterm();
    // The grace period plus a generous margin for a loaded machine.
    let status = server.exit_within(Duration::from_secs(4)).expect("exited within the grace period");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(stream.next_event().await.is_none(), "the stream ended cleanly");
}

/// An HTTP client whose connections come from `source` (127.0.0.2, …), so
/// one test can act as several clients.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// `GET url` as an event stream; the status, keeping the stream open.
async fn open_stream(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client.get(url).header("accept", "text/event-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("GET events")
}

#[tokio::test]
async fn one_client_at_its_stream_cap_leaves_room_for_others() {
    let app = app_with(&["--max-streams-per-client", "3"]).await;
    let (greedy, other) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    let mut held = Vec::new();
    for _ in 0..3 {
        let sid = app.new_session().await;
        let response = open_stream(&greedy, &app.url(&format!("/s/{sid}/events")), &[]).await;
        assert_eq!(response.status(), 200);
        held.push(response);
    }
    let sid = app.new_session().await;
    let refused = open_stream(&greedy, &app.url(&format!("/s/{sid}/events")), &[]).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    assert!(refused.text().await.unwrap().contains("too many live views"));
    assert_eq!(open_stream(&other, &app.url(&format!("/s/{sid}/events")), &[]).await.status(), 200);
    // A claimed X-Forwarded-For from an untrusted peer changes nothing.
    let url = app.url(&format!("/s/{sid}/events"));
    let forged = open_stream(&greedy, &url, &[("x-forwarded-for", "198.51.100.1")]).await;
    assert_eq!(forged.status(), 503);
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_told_apart_by_x_forwarded_for() {
    let app = app_with(&["--max-streams-per-client", "1", "--trusted-proxies", "127.0.0.1/32"]).await;
    let proxy = client_from("127.0.0.1");
    let sid = app.new_session().await;
    let url = app.url(&format!("/s/{sid}/events"));
    let first = open_stream(&proxy, &url, &[("x-forwarded-for", "198.51.100.1")]).await;
    assert_eq!(first.status(), 200);
    let again = open_stream(&proxy, &url, &[("x-forwarded-for", "6.6.6.6, 198.51.100.1")]).await;
    assert_eq!(again.status(), 503, "the proxy appended the same client");
    let second = open_stream(&proxy, &url, &[("x-forwarded-for", "198.51.100.2")]).await;
    assert_eq!(second.status(), 200);
}

#[tokio::test]
async fn a_hundred_read_only_viewers_fit_and_never_lock_the_owner_out() {
    let app = app_with(&[]).await;
    let sid = app.new_session().await;
    let page = app.page(&sid).await;
    let at = page.find("href=\"/v/").expect("a read-only link") + "href=\"".len();
    let link = &page[at..at + page[at..].find('"').unwrap()];
    let viewers = client_from("127.0.0.2");
    let mut held = Vec::new();
    for _ in 0..100 {
        let response = open_stream(&viewers, &app.url(&format!("{link}/events")), &[]).await;
        assert_eq!(response.status(), 200);
        held.push(response);
    }
    let refused = open_stream(&viewers, &app.url(&format!("{link}/events")), &[]).await;
    assert_eq!(refused.status(), 503, "the 101st viewer");
    let owner = open_stream(&app.client, &app.url(&format!("/s/{sid}/events")), &[]).await;
    assert_eq!(owner.status(), 200, "the owner's view opens whatever the viewers hold");
}

#[tokio::test]
async fn one_client_looping_get_slash_is_slowed_and_others_still_start_sessions() {
    let app = app_with(&["--new-sessions-per-minute", "5"]).await;
    let (flooder, other) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    for _ in 0..5 {
        assert_eq!(flooder.get(app.url("/")).send().await.unwrap().status(), 303);
    }
    let refused = common::checks::Reply::read(flooder.get(app.url("/")).send().await.unwrap()).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let wait: u64 = refused.header("retry-after").parse().expect("seconds");
    assert!((1..=13).contains(&wait), "Retry-After {wait}");
    common::checks::assert_error_page(&refused, "429");
    assert_eq!(other.get(app.url("/")).send().await.unwrap().status(), 303, "another client");
}

#[tokio::test]
async fn another_site_cannot_start_sessions_except_by_a_link() {
    let app = app_with(&[]).await;
    let image =
        [("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "no-cors"), ("sec-fetch-dest", "image")];
    let reply = common::checks::Reply::read(app.get_with("/", &image).await).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    common::checks::assert_error_page(&reply, "cross-site image");
    let link =
        [("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "document")];
    assert_eq!(app.get_with("/", &link).await.status(), 303);
    assert_eq!(app.counter("weight_converter_sessions_created_total"), 1);
}

/// The stream a fragment's `app.js` opens, and where its first form posts.
fn fragment_urls(body: &str) -> (String, String) {
    let tags = common::html::start_tags(body);
    let root = tags.iter().find(|t| t.has("data-wc-watch")).unwrap_or_else(|| panic!("no live root: {body}"));
    let form = tags.iter().find(|t| t.name == "form").unwrap_or_else(|| panic!("no form: {body}"));
    (root.attr("data-wc-events").unwrap_or("").to_owned(), form.attr("hx-post").unwrap_or("").to_owned())
}

#[tokio::test]
async fn behind_a_trusted_proxy_fragment_urls_follow_x_forwarded_proto_and_host() {
    let app = app_with(&["--trusted-proxies", "127.0.0.1/32"]).await;
    let sid = app.new_session().await;
    let path = format!("/s/{sid}/fragments/converter");
    let forwarded = [("x-forwarded-proto", "https"), ("x-forwarded-host", "weights.example.com")];
    let body = app.get_with(&path, &forwarded).await.text().await.unwrap();
    let want = (
        "https://weights.example.com/events".to_owned(),
        format!("https://weights.example.com/s/{sid}/widgets/lbs"),
    );
    assert_eq!(fragment_urls(&body), want, "{body}");
    // From a peer that is not a trusted proxy, the headers are ignored.
    let untrusted = client_from("127.0.0.2");
    let mut request = untrusted.get(app.url(&path));
    for (name, value) in forwarded {
        request = request.header(name, value);
    }
    let body = request.send().await.unwrap().text().await.unwrap();
    assert!(!body.contains("weights.example.com"), "{body}");
    let want = (format!("http://{}/events", app.addr), format!("http://{}/s/{sid}/widgets/lbs", app.addr));
    assert_eq!(fragment_urls(&body), want, "{body}");
}

/// The in-memory store, with a bug: resolving a read token panics.
struct PanicsOnReadTokens(weight_converter::session::MemoryStore);

#[async_trait::async_trait]
impl weight_converter::session::Backend for PanicsOnReadTokens {
    async fn create(&self) -> Result<SessionId, StoreError> {
        self.0.create().await
    }
    async fn get(&self, id: &SessionId) -> Result<Option<(Snapshot, ReadToken)>, StoreError> {
        self.0.get(id).await
    }
    async fn by_token(&self, _: &ReadToken) -> Result<Option<(SessionId, Snapshot)>, StoreError> {
        panic!("a bug in the store")
    }
    async fn compare_and_set(&self, id: &SessionId, swap: Swap<'_>) -> Result<Cas, StoreError> {
        self.0.compare_and_set(id, swap).await
    }
    async fn peek(&self, ids: &[SessionId]) -> Result<Vec<Option<Snapshot>>, StoreError> {
        self.0.peek(ids).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
    fn session_count(&self) -> Option<usize> {
        self.0.session_count()
    }
    fn sweep_expired(&self) -> usize {
        self.0.sweep_expired()
    }
}

#[tokio::test]
async fn a_panic_in_a_handler_answers_500_and_the_server_goes_on() {
    let ttl = Duration::from_secs(60);
    let limits = StoreLimits { max_sessions: 10, ttl, unchanged_ttl: ttl };
    let backend =
        std::sync::Arc::new(PanicsOnReadTokens(weight_converter::session::MemoryStore::new(limits)));
    let app = common::spawn_app_on(common::config(&[]), backend).await;
    let sid = app.new_session().await;
    let reply = app.get(&format!("/v/{}", ReadToken::random().as_str())).await;
    assert_eq!(reply.status, 500, "{}", reply.body);
    common::checks::assert_error_page(&reply, "after a panic");
    assert!(reply.body.contains("Something went wrong on our side"), "{}", reply.body);
    // Everyone else is still served.
    app.commit(&sid, "lbs", "10").await;
    assert_eq!(app.state_json(&sid).await, r#"{"lbs":10.0,"kg":4.5359237}"#);
}

/// The resident size of a process, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a size in kB")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_comes_back_after_streams_close_and_sessions_expire() {
    // Enough that what they hold (tens of MiB) dwarfs the allocator's
    // own slack.
    const SESSIONS: usize = 10_000;
    const STREAMS: usize = 2_000;
    // This test holds thousands of sockets itself.
    rlimit::increase_nofile_limit(u64::MAX).expect("raise the open-file limit");
    let mut command = binary::command();
    command.env("RUST_LOG", "warn");
    command.env("SESSION_TTL", "5s").env("UNCHANGED_SESSION_TTL", "5s");
    command.env("NEW_SESSIONS_PER_MINUTE", "100000000").env("MAX_STREAMS_PER_CLIENT", "100000");
    let (server, base_url) = binary::start(&mut command);
    let addr = base_url.trim_start_matches("http://").to_owned();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let new_session = || async {
        let response = client.get(format!("{base_url}/")).send().await.expect("GET /");
        response.headers()["location"].to_str().unwrap().to_owned()
    };
    for _ in 0..100 {
        new_session().await;
    }
    let base = rss_kib(server.id());

    for _ in 0..(SESSIONS - STREAMS) / 8 {
        futures_util::future::join_all((0..8).map(|_| new_session())).await;
    }
    // Each stream on a session of its own, made just before, so none has
    // expired before its stream opens.
    let mut streams = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        let page = new_session().await;
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(format!("GET {page}/events HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        streams.push(tcp);
    }
    let peak = rss_kib(server.id());
    drop(streams);

    // Generous: "within seconds" on a loaded machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let target = base + (peak - base) / 2;
    loop {
        let now = rss_kib(server.id());
        if now <= target {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "RSS stayed at {now} KiB: idle {base} KiB, peak {peak} KiB, want at most {target} KiB"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
