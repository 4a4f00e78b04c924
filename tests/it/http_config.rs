//! Issue 2's configuration bullet, on the compiled binary: `PORT=0` picks a
//! free port, and when ready the server prints one line with
//! `http://HOST:PORT` and the real port, which then answers.

use crate::common;

use std::process::Stdio;

use common::binary::{self, STARTUP};

async fn get(url: &str) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(STARTUP)
        .build()
        .expect("client");
    client.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

#[tokio::test]
async fn port_0_from_the_environment_picks_a_free_port_and_prints_it() {
    // HOST is unset, so this also checks its default, 127.0.0.1.
    let mut server = binary::spawn(binary::command().env("PORT", "0").stderr(Stdio::null()));
    let (port, lines) = server.announced_port("127.0.0.1", STARTUP);
    assert_ne!(port, 0, "the printed port must be the real one: {lines:?}");
    assert_eq!(lines.iter().filter(|l| l.contains("http://")).count(), 1, "one line: {lines:?}");

    let base = format!("http://127.0.0.1:{port}");
    let health = get(&format!("{base}/healthz")).await;
    assert_eq!(health.status(), 200);
    let root = get(&format!("{base}/")).await;
    assert_eq!(root.status(), 303, "the printed address is this app");
    let location = root.headers()["location"].to_str().expect("ASCII").to_owned();
    assert!(location.starts_with("/s/"), "{location}");
}

#[tokio::test]
async fn flags_take_precedence_over_the_environment() {
    let mut command = binary::command();
    command.args(["--host", "127.0.0.1", "--port", "0"]).env("PORT", "8080").env("HOST", "127.0.0.2");
    let mut server = binary::spawn(command.stderr(Stdio::null()));
    let (port, lines) = server.announced_port("127.0.0.1", STARTUP);
    assert!(port != 0 && port != 8080, "--port 0 lost to PORT=8080: {lines:?}");
    let health = get(&format!("http://127.0.0.1:{port}/healthz")).await;
    assert_eq!(health.status(), 200);
}

/// All of 127.0.0.0/8 is loopback on Linux, so a HOST other than the
/// default can be tried without listening beyond this machine.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn host_from_the_environment_is_where_it_listens() {
    let mut server = binary::spawn(binary::command().env("HOST", "127.0.0.2").stderr(Stdio::null()));
    let (port, lines) = server.announced_port("127.0.0.2", STARTUP);
    assert_ne!(port, 0, "{lines:?}");
    assert_eq!(get(&format!("http://127.0.0.2:{port}/healthz")).await.status(), 200);
}

/// Issue 11, bug 4: a lifetime that would make every session a 404 at
/// once (or overflow the clock) stops the server at start-up, saying which
/// setting and why.
#[test]
fn nonsense_session_lifetimes_stop_the_server_at_start_up() {
    for (value, why) in [("0s", "at least 1s"), ("500ms", "at least 1s"), ("1000000years", "at most 1year")] {
        let output = binary::command()
            .env("SESSION_TTL", value)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run the weight-converter binary");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "SESSION_TTL={value}: {stderr}");
        assert!(stderr.contains("--session-ttl") && stderr.contains(why), "SESSION_TTL={value}: {stderr}");
    }
}

/// `METRICS_ADDR`: `/metrics` on a listener of its own, and no longer on
/// the app's port, which the public reaches.
#[tokio::test]
async fn metrics_addr_moves_metrics_to_their_own_listener() {
    let public = common::spawn_app().await;
    assert_eq!(public.get("/metrics").await.status, 200, "by default, on the app's port");
    assert_eq!(public.metrics_addr, None);

    let app = common::spawn_app_with(common::config(&["--metrics-addr", "127.0.0.1:0"])).await;
    let metrics = app.metrics_addr.expect("a metrics listener");
    assert_ne!(metrics.port(), app.addr.port());
    assert_eq!(app.get("/metrics").await.status, 404, "not on the public port");
    let sid = app.new_session().await;
    app.commit(&sid, "lbs", "1").await;
    let scraped = get(&format!("http://{metrics}/metrics")).await;
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(text.contains("weight_converter_changes_total 1"), "{text}");
    let elsewhere = get(&format!("http://{metrics}/")).await;
    assert_eq!(elsewhere.status(), 404, "the metrics listener serves nothing else");
}
