//! The deploy example (`deploy/`): Debian's nginx, run with the same
//! `nginx.conf` that docker-compose mounts, in front of two replicas on one
//! real Redis. Only the addresses in the file are replaced by the test's.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::binary::KillOnDrop;
use common::redis::RedisServer;
use common::sse::SseStream;
use common::{TestApp, spawn_app_with};

/// The spec: an event arrives through nginx within 1 s.
const FAN_OUT_BOUND: Duration = Duration::from_secs(1);

/// `deploy/nginx.conf` with the compose service addresses replaced; fails
/// if the file no longer has them, so the test cannot drift from it.
fn nginx_conf(replicas: [&TestApp; 2], listen: u16) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx.conf");
    let conf = std::fs::read_to_string(&path).expect("deploy/nginx.conf");
    let mut out = conf.clone();
    for (from, to) in [
        ("server app1:8080;", format!("server {};", replicas[0].addr)),
        ("server app2:8080;", format!("server {};", replicas[1].addr)),
        ("listen 8080;", format!("listen 127.0.0.1:{listen};")),
    ] {
        assert!(conf.contains(from), "deploy/nginx.conf no longer has {from:?}");
        out = out.replace(from, &to);
    }
    out
}

fn nginx_binary() -> &'static str {
    ["/usr/sbin/nginx", "nginx"].into_iter().find(|p| Path::new(p).exists()).unwrap_or("nginx")
}

/// Starts nginx in the foreground with `conf`, logs and pid in `dir`.
async fn start_nginx(conf: &str, dir: &Path, port: u16) -> KillOnDrop {
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write nginx.conf");
    let globals =
        format!("daemon off; master_process off; pid {0}/nginx.pid; error_log {0}/error.log;", dir.display());
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", &globals])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run nginx ({e}); ./scripts/test.sh installs Debian's nginx"));
    let nginx = KillOnDrop::new(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "nginx did not listen within 20 s: {log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nginx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_round_robin_over_two_replicas_serves_one_session() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let replica = || spawn_app_with(common::config(&["--redis-url", &url]));
    let (a, b) = (replica().await, replica().await);
    a.wait_until_ready().await;
    b.wait_until_ready().await;
    let dir = tempfile::Builder::new().prefix("wc-nginx-").tempdir().expect("a temporary directory");
    let port = common::free_port();
    let _nginx = start_nginx(&nginx_conf([&a, &b], port), dir.path(), port).await;
    let front = format!("http://127.0.0.1:{port}");
    let client = &a.client;

    let started = client.get(format!("{front}/")).send().await.expect("GET / through nginx");
    assert_eq!(started.status(), 303);
    let page = started.headers()["location"].to_str().unwrap().to_owned();
    let response = client.get(format!("{front}{page}")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let mut stream = SseStream::connect(client, &format!("{front}{page}/events"), None).await;
    assert_eq!(stream.expect_event().await.version(), 0);
    // And the one stream the page's app.js opens (`data-wc-events`), whose
    // events name their session on their first data line.
    let sid = page.strip_prefix("/s/").expect("/s/{sid}");
    let label = format!("s:{sid}");
    let mut shared = SseStream::connect(client, &format!("{front}/events?s={sid}"), None).await;
    let first = shared.expect_event().await;
    assert_eq!(first.data.split_once('\n').map(|(l, _)| l), Some(label.as_str()));
    for (version, lbs) in (1..=6).zip(["1", "2", "3", "4", "5", "6"]) {
        let response = client
            .post(format!("{front}{page}/widgets/lbs"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("HX-Request", "true")
            .body(format!("lbs={lbs}"))
            .send()
            .await
            .expect("POST through nginx");
        assert_eq!(response.status(), 200, "change {version}");
        // Read back through nginx: round robin sends reads to the other
        // replica and the next POST to the other one than this.
        for path in ["state.json", "fragments/state"] {
            let read = client.get(format!("{front}{page}/{path}")).send().await.unwrap();
            let text = read.text().await.unwrap();
            assert!(text.contains(&format!("{lbs}.0")), "read-your-writes of {path} through nginx: {text}");
        }
        let event =
            stream.next_event_within(FAN_OUT_BOUND).await.expect("an event within 1 s").expect("an event");
        assert_eq!(event.version(), version);
        let event =
            shared.next_event_within(FAN_OUT_BOUND).await.expect("an event within 1 s").expect("an event");
        let (named, markup) = event.data.split_once('\n').expect("a labelled event");
        assert_eq!(named, label, "change {version}");
        assert_eq!(common::sse::dump_pair(markup).0, lbs.parse::<f64>().unwrap(), "change {version}");
    }
    // Round robin, not sticky: both replicas applied changes.
    let changes = "weight_converter_changes_total";
    let (on_a, on_b) = (a.counter(changes), b.counter(changes));
    assert_eq!(on_a + on_b, 6);
    assert!(on_a > 0 && on_b > 0, "requests did not alternate: {on_a} on A, {on_b} on B");
}
