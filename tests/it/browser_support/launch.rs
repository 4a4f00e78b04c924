//! Headless Chromium under chromedriver: finding both programs, the flags
//! Chromium runs with, chromedriver on a port of its own until `/status`
//! says it is ready, and a WebDriver session on it.
//!
//! One file, compiled into the integration tests (`browser_support`) and
//! into the benchmark harness (`bench/src/browser.rs`, through `#[path]`),
//! so it uses only what both have: std, axum, fantoccini, http-body-util,
//! hyper-util, serde_json and tokio. It reports failures as text; the
//! tests panic with it, the harness fails the measurement.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value as Json, json};

/// The two programs a browser needs.
#[derive(Debug, Clone)]
pub struct Programs {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

pub const INSTALL_HINT: &str = "Install Debian's packages (`apt-get install chromium chromium-driver`, \
     which scripts/test.sh does for you), or point the CHROMIUM / CHROMEDRIVER environment \
     variables at the binaries.";

/// How long chromedriver gets to answer `/status` with `ready`.
const DRIVER_READY: Duration = Duration::from_secs(15);

/// Finds Chromium and chromedriver from `CHROMIUM` / `CHROMEDRIVER`, then
/// `/usr/bin`, then `PATH`; says which is missing, and how to get it.
pub fn locate_programs() -> Result<Programs, String> {
    locate_programs_from(std::env::var_os("CHROMIUM"), std::env::var_os("CHROMEDRIVER"))
}

/// [`locate_programs`] with the environment passed in, so the failure can
/// be tested without touching the process environment.
pub fn locate_programs_from(
    chromium: Option<OsString>,
    chromedriver: Option<OsString>,
) -> Result<Programs, String> {
    Ok(Programs {
        chromium: locate(
            "Chromium",
            "CHROMIUM",
            chromium,
            &["chromium", "chromium-browser", "google-chrome"],
        )?,
        chromedriver: locate("chromedriver", "CHROMEDRIVER", chromedriver, &["chromedriver"])?,
    })
}

fn locate(what: &str, var: &str, from_env: Option<OsString>, names: &[&str]) -> Result<PathBuf, String> {
    if let Some(path) = from_env.filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !is_executable(&path) {
            return Err(format!(
                "{var}={} is not an executable file, so {what} cannot run. {INSTALL_HINT}",
                path.display()
            ));
        }
        return Ok(path);
    }
    let mut candidates: Vec<PathBuf> = names.iter().map(|n| Path::new("/usr/bin").join(n)).collect();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            candidates.extend(names.iter().map(|n| dir.join(n)));
        }
    }
    candidates.into_iter().find(|p| is_executable(p)).ok_or_else(|| {
        format!(
            "{what} not found ({var} is unset; looked for {} in /usr/bin and PATH). {INSTALL_HINT}",
            names.join(", ")
        )
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Chromium's command line: headless, none of its own traffic (updates,
/// sync, QUIC) or first-run prompts, a `width`×`height` window and its
/// profile in `profile`.
pub fn chromium_args(profile: &Path, width: u32, height: u32) -> Vec<String> {
    let flags = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let mut args: Vec<String> = flags.iter().map(|flag| (*flag).to_owned()).collect();
    args.push(format!("--window-size={width},{height}"));
    args.push(format!("--user-data-dir={}", profile.display()));
    args
}

/// A chromedriver child process, shut down and killed on drop (also while
/// unwinding from a panic).
pub struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
    /// Whether it answered on its port: only then is the port its own.
    ready: bool,
}

impl Driver {
    /// Runs `command` (chromedriver, or a wrapper that runs it, such as
    /// taskset) with `--port={port}` and its output in `log`, through
    /// `spawn`, and waits until `/status` says it is ready. Fails, with
    /// what it printed, if it exits first (another process may have taken
    /// the port) or is not ready in time.
    pub async fn start(
        mut command: Command,
        port: u16,
        log: PathBuf,
        spawn: impl FnOnce(Command) -> std::io::Result<Child>,
    ) -> Result<Driver, String> {
        let out = std::fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("open {} twice: {e}", log.display()))?;
        command.arg(format!("--port={port}")).stdin(Stdio::null()).stdout(out).stderr(err);
        let program = PathBuf::from(command.get_program());
        let child =
            spawn(command).map_err(|e| format!("cannot start {}: {e}. {INSTALL_HINT}", program.display()))?;
        let mut driver = Driver { child, port, log, ready: false };
        match driver.wait_ready().await {
            Ok(()) => {
                driver.ready = true;
                Ok(driver)
            }
            Err(why) => Err(format!("{why}\n--- chromedriver output ---\n{}", driver.output())),
        }
    }

    /// `http://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// What chromedriver printed so far.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + DRIVER_READY;
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited early with {status}"));
            }
            match tokio::time::timeout(Duration::from_secs(2), status(self.port)).await {
                Ok(Ok(body)) if body["value"]["ready"] == json!(true) => return Ok(()),
                Ok(Ok(body)) => last = body.to_string(),
                Ok(Err(e)) => last = e,
                Err(_) => last = "no answer to /status within 2 s".to_owned(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("chromedriver not ready after {DRIVER_READY:?}: {last}"))
    }
}

/// chromedriver's answer to `GET /status`, as JSON.
async fn status(port: u16) -> Result<Json, String> {
    use http_body_util::{BodyExt as _, Empty};
    use hyper_util::client::legacy::Client as HttpClient;
    use hyper_util::client::legacy::connect::HttpConnector;
    let client = HttpClient::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<axum::body::Bytes>>(HttpConnector::new());
    let uri = format!("http://127.0.0.1:{port}/status").parse().map_err(|e| format!("{e}"))?;
    let response = client.get(uri).await.map_err(|e| e.to_string())?;
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("/status: {e}: {}", String::from_utf8_lossy(&body)))
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver's /shutdown ends its sessions; the kill makes sure
        // chromedriver itself is gone.
        if let Some(mut stream) = self
            .ready
            .then(|| {
                TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_millis(500))
                    .ok()
            })
            .flatten()
        {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ =
                stream.write_all(b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            let _ = stream.read(&mut [0u8; 256]);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session with `capabilities` on `driver`: five tries, half a
/// second apart, as Chromium can be slow to come up.
pub async fn connect(driver: &Driver, capabilities: Capabilities) -> Result<Client, String> {
    let mut last = String::new();
    for _ in 0..5 {
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities.clone());
        match builder.connect(&driver.url()).await {
            Ok(client) => return Ok(client),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "could not start a Chromium session: {last}\n--- chromedriver output ---\n{}",
        driver.output()
    ))
}
