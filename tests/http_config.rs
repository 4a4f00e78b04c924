//! Issue 2's configuration bullet, on the compiled binary: `PORT=0` picks a
//! free port, and when ready the server prints one line with
//! `http://HOST:PORT` and the real port, which then answers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous: only there to turn a hang into a failure.
const STARTUP: Duration = Duration::from_secs(20);

/// Settings the binary reads from the environment; cleared so the test's
/// own environment cannot change what is being tested.
const SETTINGS: [&str; 11] = [
    "HOST",
    "PORT",
    "SESSION_TTL",
    "MAX_SESSIONS",
    "MAX_STREAMS",
    "MAX_STREAMS_PER_SESSION",
    "REQUEST_TIMEOUT",
    "PUBLIC_URL",
    "ALLOW_ORIGINS",
    "FRAME_ANCESTORS",
    "LOG_FORMAT",
];

/// The running binary; killed and reaped however the test ends.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weight-converter"));
    for name in SETTINGS {
        command.env_remove(name);
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("start the weight-converter binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    Running { child, lines }
}

impl Running {
    /// Waits for the line announcing `http://{host}:PORT`; returns the port
    /// and every line printed up to it.
    fn announced_port(&mut self, host: &str) -> (u16, Vec<String>) {
        let prefix = format!("http://{host}:");
        let mut seen = Vec::new();
        loop {
            let line = match self.lines.recv_timeout(STARTUP) {
                Ok(line) => line,
                Err(e) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!("no line with {prefix}PORT ({e}; exit status {status:?}); printed: {seen:?}")
                }
            };
            seen.push(line.clone());
            if let Some(at) = line.find(&prefix) {
                let digits: String =
                    line[at + prefix.len()..].chars().take_while(char::is_ascii_digit).collect();
                let port = digits.parse().unwrap_or_else(|_| panic!("no port in {line:?}"));
                return (port, seen);
            }
        }
    }
}

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
    let mut server = start(&[], &[("PORT", "0")]);
    let (port, lines) = server.announced_port("127.0.0.1");
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
    let mut server =
        start(&["--host", "127.0.0.1", "--port", "0"], &[("PORT", "8080"), ("HOST", "127.0.0.2")]);
    let (port, lines) = server.announced_port("127.0.0.1");
    assert!(port != 0 && port != 8080, "--port 0 lost to PORT=8080: {lines:?}");
    let health = get(&format!("http://127.0.0.1:{port}/healthz")).await;
    assert_eq!(health.status(), 200);
}

/// All of 127.0.0.0/8 is loopback on Linux, so a HOST other than the
/// default can be tried without listening beyond this machine.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn host_from_the_environment_is_where_it_listens() {
    let mut server = start(&[], &[("PORT", "0"), ("HOST", "127.0.0.2")]);
    let (port, lines) = server.announced_port("127.0.0.2");
    assert_ne!(port, 0, "{lines:?}");
    assert_eq!(get(&format!("http://127.0.0.2:{port}/healthz")).await.status(), 200);
}
