//! Starts the real server on a free port, in-process, for each test.

use std::net::SocketAddr;

use std::sync::Arc;

use clap::Parser;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weight_converter::session::Backend;
use weight_converter::{AppContext, Config, Server};

pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when `METRICS_ADDR` gives it a listener.
    pub metrics_addr: Option<SocketAddr>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub ctx: Arc<AppContext>,
    /// A client that does not follow redirects, so tests see the 303s.
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(config(&[])).await
}

/// The app's settings as an operator gives them (`&["--session-ttl",
/// "1h"]`), through its own parser, so a test sets nothing a user could
/// not; on port 0 unless `--port` is given. Settings in the environment
/// would be read too, so a test fails if any is set.
pub fn config(flags: &[&str]) -> Config {
    for name in binary::settings().iter().filter(|name| *name != "RUST_LOG") {
        assert!(
            std::env::var_os(name).is_none(),
            "unset {name}: the in-process servers of the tests would read it"
        );
    }
    let port: &[&str] = if flags.contains(&"--port") { &[] } else { &["--port", "0"] };
    let args = ["weight-converter"].iter().chain(port).chain(flags);
    Config::try_parse_from(args).unwrap_or_else(|e| panic!("settings {flags:?}: {e}"))
}

pub async fn spawn_app_with(config: Config) -> TestApp {
    serve(Server::bind(config).await.expect("bind a free port"))
}

/// The app on a backend of the test's choosing.
pub async fn spawn_app_on(config: Config, backend: Arc<dyn Backend>) -> TestApp {
    serve(Server::bind_with(config, backend).await.expect("bind a free port"))
}

fn serve(server: Server) -> TestApp {
    show_logs_if_asked();
    let addr = server.local_addr().expect("local address");
    let metrics_addr = server.metrics_addr();
    let ctx = server.context();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client");
    TestApp {
        addr,
        metrics_addr,
        base: format!("http://{addr}"),
        ctx,
        client,
        stop: Some(stop),
        served: Some(served),
    }
}

/// Whether `TEST_LOG` asks for the server's logs.
pub fn test_log() -> bool {
    std::env::var_os("TEST_LOG").is_some_and(|v| !v.is_empty() && v != "0")
}

/// With `TEST_LOG`, in-process servers log through libtest's capture, so a
/// failing test shows its own server's lines (`RUST_LOG`, default `info`).
fn show_logs_if_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if test_log() {
        ONCE.call_once(|| {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        });
    }
}

impl TestApp {
    /// `GET /` and follow its 303 by hand: the new session's id.
    pub async fn new_session(&self) -> String {
        let response = self.client.get(format!("{}/", self.base)).send().await.expect("GET /");
        assert_eq!(response.status(), 303);
        let location = response.headers()["location"].to_str().expect("ascii location");
        location.strip_prefix("/s/").expect("location is /s/{sid}").to_owned()
    }

    /// Waits until `/readyz` answers 200: with Redis, that means the store
    /// answers and Redis has acknowledged this replica's subscription.
    pub async fn wait_until_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let response = self.client.get(self.url("/readyz")).send().await.expect("GET /readyz");
            if response.status() == 200 {
                return;
            }
            let why = response.text().await.unwrap_or_default();
            assert!(std::time::Instant::now() < deadline, "not ready within 20 s: {why}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// A counter's value, or the sum of the counters `series` selects (see
    /// [`metrics::sample`]): `weight_converter_changes_total`, or
    /// `weight_converter_connections_cut_total{reason="idle_timeout"}`;
    /// 0 when it was never incremented.
    pub fn counter(&self, series: &str) -> u64 {
        metrics::sample(&self.ctx.metrics.render(&Default::default()), series).unwrap_or(0)
    }

    /// Waits until `series` reaches `at_least`: for a server-side event
    /// that nothing else shows, such as a connection it cut.
    pub async fn wait_for_counter(&self, series: &str, at_least: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.counter(series) < at_least {
            assert!(std::time::Instant::now() < deadline, "{series} stayed below {at_least}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET /s/{sid}/state.json` as text.
    pub async fn state_json(&self, sid: &str) -> String {
        let response =
            self.client.get(self.url(&format!("/s/{sid}/state.json"))).send().await.expect("GET state");
        assert_eq!(response.status(), 200);
        response.text().await.expect("state body")
    }

    /// Posts `key=value` as htmx would (or as a plain form with `htmx: false`).
    pub async fn post_widget(&self, sid: &str, key: &str, body: &str, htmx: bool) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(&format!("/s/{sid}/widgets/{key}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if htmx {
            request = request.header("HX-Request", "true");
        }
        request.send().await.expect("POST widget")
    }

    /// Graceful shutdown, as on SIGTERM; resolves when the server has exited.
    pub async fn shut_down(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.served.take() {
            Some(served) => served.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A server-sent events client for the stream tests.
pub mod sse;

/// The compiled binary as a child process, for the tests that start it.
pub mod binary;
/// Requests and checks shared by the HTTP tests.
pub mod checks;
/// Just enough HTML reading for the HTTP tests.
pub mod html;
/// Samples read out of `/metrics` text.
pub mod metrics;
/// A real redis-server per test.
pub mod redis;

/// Moves the runtime's clock on by `by` at once, as if that much time had
/// passed: the stores' idle TTLs and the server's own timers (its
/// housekeeping) see it, with no real waiting. Only in a current-thread
/// test (`#[tokio::test]`), whose in-process server shares the clock.
/// Connections idle past `idle_timeout` are cut on the way, so a test that
/// lets more time pass keeps `idle_timeout` longer.
pub async fn let_time_pass(by: std::time::Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// This machine's own address on its default route: not loopback, so a
/// browser that loads a page from it is not in a secure context. Fails
/// loudly where the machine has no such address.
pub fn non_loopback_address() -> std::net::IpAddr {
    // Connecting a UDP socket sends nothing; it only picks the route.
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    socket.connect("192.0.2.1:9").expect("this machine needs a default route for this test");
    let ip = socket.local_addr().expect("the route's local address").ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "no non-loopback address: {ip}");
    ip
}

/// A port on 127.0.0.1 that was free a moment ago, for a child process
/// that must be told its port (nginx, chromedriver, the binary started
/// twice on one port). Something else may take it first: a caller that
/// cannot afford that retries, or uses port 0.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("the listener's address").port()
}
