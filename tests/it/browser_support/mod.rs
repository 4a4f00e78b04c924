//! Headless Chromium for browser tests, through chromedriver and fantoccini.
//!
//! [`with_browser`] runs a test body in a fresh tab of a headless Chromium
//! with a chromedriver of its own, and always closes the WebDriver session
//! afterwards, also when the body panics or hangs. Chromiums are kept for
//! the next test (see [`Chromium`]). A missing browser or driver is a loud
//! failure, never a skip.

use std::ffi::OsString;
use std::fmt::Display;
use std::future::Future;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use base64::Engine as _;
use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::key::Key;
use fantoccini::wd::{Capabilities, WindowHandle};
use fantoccini::{Client, Locator};
use futures_util::FutureExt as _;
use serde_json::{Value as Json, json};
use tokio::sync::Semaphore;

/// Finding Chromium and chromedriver, starting them and a session: shared
/// with the benchmark harness.
mod launch;

use launch::{Driver, INSTALL_HINT, Programs};

/// Browsers running at once, across all tests of this binary. Each is a
/// whole Chromium; two cores do not carry more without flaky timings.
static BROWSERS: Semaphore = Semaphore::const_new(2);

/// The longest a whole test body may take before it fails as hung.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest the tidying after a test (a fresh tab, the session's
/// close) may take.
const CLEAN_UP: Duration = Duration::from_secs(15);
/// How long a `wait_*` helper polls by default.
pub const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- locating

/// Finds Chromium and chromedriver (see [`launch::locate_programs`]).
/// Panics with a clear message if either is missing: a browser test that
/// cannot find its browser must fail.
pub fn locate_programs() -> Programs {
    launch::locate_programs().unwrap_or_else(|why| panic!("BROWSER TEST FAILED: {why}"))
}

/// [`locate_programs`] with the environment passed in, so the failure can
/// be tested without touching the process environment.
pub fn locate_programs_from(chromium: Option<OsString>, chromedriver: Option<OsString>) -> Programs {
    launch::locate_programs_from(chromium, chromedriver)
        .unwrap_or_else(|why| panic!("BROWSER TEST FAILED: {why}"))
}

// ---------------------------------------------------------------- options

/// How to start the browser.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `false` turns JavaScript off through Chrome's content settings.
    pub javascript: bool,
    pub width: u32,
    pub height: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self { javascript: true, width: 1280, height: 900 }
    }
}

impl Options {
    pub fn without_javascript() -> Self {
        Self { javascript: false, ..Self::default() }
    }
}

/// The WebDriver session's capabilities: it attaches to a running Chromium
/// (see [`Chromium`]) rather than starting one.
fn capabilities(debugger: &str) -> Capabilities {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "debuggerAddress": debugger },
        "goog:loggingPrefs": { "browser": "ALL" },
        "pageLoadStrategy": "normal",
        "unhandledPromptBehavior": "dismiss",
    });
    match caps {
        Json::Object(map) => map,
        _ => unreachable!(),
    }
}

// ---------------------------------------------------------------- processes

/// Where the browser processes are started from: one thread that lives as
/// long as the test binary. Each child is told to die with the thread
/// that started it (`PR_SET_PDEATHSIG`), so Chromiums kept between tests
/// end with the binary, however it ends, and none with the test that
/// happened to start it.
fn spawn(mut command: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt as _;
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("browser-spawner".into())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("start the browser spawner thread");
        Mutex::new(requests)
    });
    let (reply, answer) = mpsc::channel();
    spawner.lock().unwrap_or_else(|e| e.into_inner()).send((command, reply)).expect("spawner thread");
    answer.recv().expect("spawner thread")
}

/// chromedriver on a free port, its output in `dir`, once it is ready;
/// on another port if it exits early (something else took the port).
async fn start_driver(chromedriver: &Path, dir: &Path) -> Driver {
    let mut last = String::new();
    for attempt in 0..3 {
        let log = dir.join(format!("chromedriver-{attempt}.log"));
        match Driver::start(Command::new(chromedriver), crate::common::free_port(), log, spawn).await {
            Ok(driver) => return driver,
            Err(why) => last = why,
        }
    }
    panic!("BROWSER TEST FAILED: chromedriver never became ready: {last}");
}

/// A headless Chromium with a fresh profile and a chromedriver beside it,
/// both killed on drop. Tests with the default [`Options`] share them: one
/// test at a time, each in a fresh tab, with cookies and cache cleared
/// between (see [`with_browser`]). Starting a Chromium costs more CPU
/// than most browser tests' bodies.
struct Chromium {
    process: Child,
    driver: Driver,
    /// `127.0.0.1:PORT` of its DevTools endpoint.
    debugger: String,
    /// Holds the profile and the logs.
    _dir: tempfile::TempDir,
}

/// Chromiums free for the next test; never more than [`BROWSERS`].
static IDLE: Mutex<Vec<Chromium>> = Mutex::new(Vec::new());

impl Chromium {
    async fn start(programs: &Programs, options: &Options) -> Chromium {
        let dir = tempfile::Builder::new().prefix("wc-browser-").tempdir().expect("a temporary directory");
        let profile = dir.path().join("profile");
        if !options.javascript {
            // As chromedriver writes `prefs`: into the profile, before start.
            let prefs = json!({ "profile": { "managed_default_content_settings": { "javascript": 2 } } });
            std::fs::create_dir_all(profile.join("Default")).expect("profile dir");
            std::fs::write(profile.join("Default/Preferences"), prefs.to_string()).expect("preferences");
        }
        let log = std::fs::File::create(dir.path().join("chromium.log")).expect("chromium log file");
        let mut command = Command::new(&programs.chromium);
        command
            .args(launch::chromium_args(&profile, options.width, options.height))
            .args(["--remote-debugging-port=0", "about:blank"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("chromium log file"))
            .stderr(log);
        let mut process = spawn(command).unwrap_or_else(|e| {
            panic!("BROWSER TEST FAILED: cannot start {}: {e}. {INSTALL_HINT}", programs.chromium.display())
        });
        // Chromium names the port it took in the profile, once it listens.
        let port_file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            let written = std::fs::read_to_string(&port_file).unwrap_or_default();
            if let Some(port) = written.lines().next().and_then(|l| l.trim().parse::<u16>().ok()) {
                break port;
            }
            let exited = process.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let _ = process.kill();
                let log = std::fs::read_to_string(dir.path().join("chromium.log")).unwrap_or_default();
                panic!("BROWSER TEST FAILED: Chromium did not start ({exited:?}):\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let driver = start_driver(&programs.chromedriver, dir.path()).await;
        Chromium { process, driver, debugger: format!("127.0.0.1:{port}"), _dir: dir }
    }

    /// A WebDriver session on this Chromium, in its one tab.
    async fn session(&self, options: &Options) -> Client {
        let client = launch::connect(&self.driver, capabilities(&self.debugger))
            .await
            .unwrap_or_else(|why| panic!("BROWSER TEST FAILED: {why}"));
        let tab = client.windows().await.ok().and_then(|w| w.into_iter().next());
        if let Some(tab) = tab {
            client.switch_to_window(tab).await.expect("switch to the tab");
        }
        client.set_window_size(options.width, options.height).await.expect("set the window size");
        client
    }

    /// Leaves nothing of a test behind for the next: one blank tab, no
    /// cookies, an empty cache. Each test's server has a port of its own,
    /// so its origin's storage and workers are its own anyway.
    async fn reset(browser: &Browser) -> Result<(), String> {
        let client = &browser.client;
        let fresh = client.new_window(true).await.map_err(|e| e.to_string())?.handle;
        for window in client.windows().await.map_err(|e| e.to_string())? {
            if window != fresh {
                client.switch_to_window(window).await.map_err(|e| e.to_string())?;
                client.close_window().await.map_err(|e| e.to_string())?;
            }
        }
        client.switch_to_window(fresh).await.map_err(|e| e.to_string())?;
        for cmd in ["Network.clearBrowserCookies", "Network.clearBrowserCache"] {
            browser.try_cdp(cmd, json!({})).await?;
        }
        Ok(())
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

// ---------------------------------------------------------------- the harness

/// Runs `body` in a fresh tab of a headless Chromium: one kept from an
/// earlier test when `options` are the default ones, else a new one. The
/// WebDriver session is closed whatever happens; a panic in the body is
/// resumed afterwards, and a body that runs past [`TEST_TIMEOUT`] fails.
/// A Chromium whose test failed is not used again.
pub async fn with_browser<F, Fut>(options: Options, body: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = ()>,
{
    let programs = locate_programs();
    let _permit = BROWSERS.acquire().await.expect("browser semaphore");
    let started = Instant::now();
    let shared = options == Options::default();
    let kept = if shared { IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop() } else { None };
    let chromium = match kept {
        Some(chromium) => chromium,
        None => Chromium::start(&programs, &options).await,
    };
    let client = chromium.session(&options).await;
    let browser = Browser { client: client.clone(), driver: chromium.driver.url() };

    let ready = started.elapsed();
    let outcome =
        AssertUnwindSafe(tokio::time::timeout(TEST_TIMEOUT, body(browser.clone()))).catch_unwind().await;
    let ran = started.elapsed() - ready;

    let passed = matches!(outcome, Ok(Ok(())));
    // Print what the page logged, to help read a failure.
    if !passed && let Ok(log) = browser.console_log().await {
        for entry in log {
            eprintln!("browser console: {entry}");
        }
    }
    // Bounded, as the body is: a browser that hangs here is not kept.
    let reset = if shared && passed {
        let reset = tokio::time::timeout(CLEAN_UP, Chromium::reset(&browser)).await;
        reset.unwrap_or_else(|_| Err(format!("no reset within {CLEAN_UP:?}")))
    } else {
        Err("not kept".into())
    };
    match tokio::time::timeout(CLEAN_UP, client.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("closing the WebDriver session failed: {e}"),
        Err(_) => eprintln!("closing the WebDriver session took over {CLEAN_UP:?}"),
    }
    match reset {
        Ok(()) => IDLE.lock().unwrap_or_else(|e| e.into_inner()).push(chromium),
        Err(why) => {
            if passed && shared {
                eprintln!("not keeping the browser: {why}");
            }
            drop(chromium);
        }
    }
    eprintln!(
        "browser timings of {}: start {} ms, body {} ms, stop {} ms",
        std::thread::current().name().unwrap_or("a test"),
        ready.as_millis(),
        ran.as_millis(),
        (started.elapsed() - ready - ran).as_millis()
    );
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("browser test timed out after {TEST_TIMEOUT:?}"),
        Err(panic) => resume_unwind(panic),
    }
}

/// Polls `probe` until it yields `Some`, for up to `timeout`. Errors a page
/// in flux produces (a stale element after an out-of-band swap, an element
/// not there yet, a script run during navigation) count as "not yet".
/// Panics with `what` and the last observation on timeout.
pub async fn wait_for<T, F, Fut>(what: impl Display, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, CmdError>>,
{
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match probe().await {
            Ok(Some(value)) => return value,
            Ok(None) => last = "condition not met".to_owned(),
            Err(e) if is_transient(&e) => last = format!("transient: {e}"),
            Err(e) => panic!("waiting for {what}: {e}"),
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what} (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the server has exactly `n` event streams open (a browser
/// needs one, however many tabs and sessions it shows).
pub async fn wait_for_streams(app: &crate::common::TestApp, n: usize) {
    wait_for(format!("{n} open event streams"), WAIT, || async {
        Ok((app.ctx.fan_out.open_streams() == n).then_some(()))
    })
    .await;
}

fn is_transient(e: &CmdError) -> bool {
    e.is_stale_element_reference()
        || e.is_no_such_element()
        || e.is_javascript_error()
        || e.is_element_not_interactable()
        || matches!(e, CmdError::Standard(w) if w.message.contains("detached") || w.message.contains("navigat"))
}

// ---------------------------------------------------------------- the page

/// A WebDriver session with helpers for this app's page.
#[derive(Clone)]
pub struct Browser {
    pub client: Client,
    /// chromedriver's base URL, ending in `/`.
    driver: String,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Opens `/`, follows its redirect to a new session and waits for
    /// htmx. Returns the session page's URL and id.
    pub async fn open_new_session(&self, app: &crate::common::TestApp) -> (String, String) {
        self.goto(&app.url("/")).await;
        let url = self.current_url().await;
        let sid = url
            .strip_prefix(&app.url("/s/"))
            .unwrap_or_else(|| panic!("/ should lead to /s/{{sid}}, got {url}"))
            .to_owned();
        self.wait_htmx().await;
        (url, sid)
    }

    pub async fn current_url(&self) -> String {
        self.client.current_url().await.expect("current url").to_string()
    }

    pub async fn find(&self, css: &str) -> Result<Element, CmdError> {
        self.client.find(Locator::Css(css)).await
    }

    /// An input's current `value` property.
    pub async fn value(&self, css: &str) -> Result<String, CmdError> {
        Ok(self.find(css).await?.prop("value").await?.unwrap_or_default())
    }

    /// An element's text, as the user sees it.
    pub async fn text(&self, css: &str) -> Result<String, CmdError> {
        self.find(css).await?.text().await
    }

    /// Runs a script in the current window; CSP does not apply to it.
    pub async fn js(&self, script: &str, args: Vec<Json>) -> Json {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until the input's value is exactly `expected`.
    pub async fn wait_value(&self, css: &str, expected: &str) {
        wait_for(format!("{css} to hold {expected:?}"), WAIT, || async {
            let value = self.value(css).await?;
            Ok((value == expected).then_some(()))
        })
        .await
    }

    /// Waits until the element's text contains `needle`.
    pub async fn wait_text_contains(&self, css: &str, needle: &str) {
        wait_for(format!("{css} to contain {needle:?}"), WAIT, || async {
            let text = self.text(css).await?;
            Ok(text.contains(needle).then_some(()))
        })
        .await
    }

    /// Waits until every live view on the page has caught up with its
    /// session over the event stream (app.js marks it `data-wc-live`).
    pub async fn wait_live(&self) {
        wait_for("every view to be live", WAIT, || async {
            let live = self
                .client
                .execute(
                    "const views = [...document.querySelectorAll('[data-wc-watch]')];\
                     return views.length > 0 && views.every(v => v.getAttribute('data-wc-live') === 'true');",
                    vec![],
                )
                .await?;
            Ok((live == json!(true)).then_some(()))
        })
        .await
    }

    /// Waits until no htmx request is in flight (htmx marks the element
    /// that sent one with `htmx-request`, and unmarks it in the same task
    /// that handles the answer).
    pub async fn wait_htmx_idle(&self) {
        wait_for("htmx's requests to finish", WAIT, || async {
            let busy =
                self.client.execute("return !!document.querySelector('.htmx-request');", vec![]).await?;
            Ok((busy == json!(false)).then_some(()))
        })
        .await
    }

    /// Waits until htmx has loaded and processed the page.
    pub async fn wait_htmx(&self) {
        wait_for("htmx to load", WAIT, || async {
            let ready = self
                .client
                .execute(
                    "return document.readyState === 'complete' && !!window.htmx && \
                     !!document.querySelector('form.widget')['htmx-internal-data'];",
                    vec![],
                )
                .await?;
            Ok((ready == json!(true)).then_some(()))
        })
        .await
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.unwrap_or_else(|e| panic!("find {css}: {e}")).click().await.expect("click");
    }

    /// Clicks into a text field, selects everything in it and types `text`
    /// over it, without committing.
    pub async fn type_over(&self, css: &str, text: &str) {
        let field = self.find(css).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        field.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
        // Ctrl+A, then NULL to release Ctrl before typing.
        let select_all = format!("{}a{}", char::from(Key::Control), char::from(Key::Null));
        field.send_keys(&select_all).await.expect("select all");
        field.send_keys(text).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Types `text` over a field and presses Enter.
    pub async fn commit(&self, css: &str, text: &str) {
        self.type_over(css, text).await;
        self.press(css, Key::Enter).await;
    }

    pub async fn press(&self, css: &str, key: Key) {
        let field = self.find(css).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        field.send_keys(&char::from(key).to_string()).await.unwrap_or_else(|e| panic!("press {key:?}: {e}"));
    }

    /// The id of the focused element, if any.
    /// What the focused element shows (`data-part`: `lbs`, `kg`), if anything.
    pub async fn focused_part(&self) -> Option<String> {
        self.js(
            "return document.activeElement ? document.activeElement.getAttribute('data-part') : null;",
            vec![],
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    // ------------------------------------------------------------ windows

    pub async fn window(&self) -> WindowHandle {
        self.client.window().await.expect("current window")
    }

    /// Opens a new window, switches to it and loads `url` there.
    pub async fn open_window(&self, url: &str) -> WindowHandle {
        let handle = self.client.new_window(false).await.expect("new window").handle;
        self.switch_to(&handle).await;
        self.goto(url).await;
        handle
    }

    pub async fn switch_to(&self, window: &WindowHandle) {
        self.client.switch_to_window(window.clone()).await.expect("switch window");
    }

    // ------------------------------------------------------------ chromedriver extras

    /// A chromedriver-specific command under `/session/{id}/`, which
    /// fantoccini does not model: sent over plain HTTP.
    async fn goog(&self, path: &str, body: Json) -> Result<Json, String> {
        let session = self.client.session_id().await.map_err(|e| e.to_string())?.ok_or("no session")?;
        let response = reqwest::Client::new()
            .post(format!("{}session/{session}/{path}", self.driver))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let mut json: Json = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if !status.is_success() {
            return Err(format!("{status}: {text}"));
        }
        Ok(json["value"].take())
    }

    /// Runs a Chrome DevTools Protocol command in the current window.
    pub async fn cdp(&self, cmd: &str, params: Json) -> Json {
        self.try_cdp(cmd, params).await.unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }

    async fn try_cdp(&self, cmd: &str, params: Json) -> Result<Json, String> {
        self.goog("goog/cdp/execute", json!({ "cmd": cmd, "params": params })).await
    }

    /// Browser console entries since the last call (chromedriver's log).
    pub async fn console_log(&self) -> Result<Vec<Json>, String> {
        let log = self.goog("se/log", json!({ "type": "browser" })).await?;
        Ok(log.as_array().cloned().unwrap_or_default())
    }

    /// Console entries of level SEVERE, apart from the expected ones
    /// (`allowed` substrings, such as an intentional 422).
    pub async fn console_errors(&self, allowed: &[&str]) -> Vec<String> {
        self.console_log()
            .await
            .expect("read the browser log")
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .filter(|m| !m.contains("favicon.ico") && !allowed.iter().any(|a| m.contains(a)))
            .collect()
    }

    /// Saves a PNG of the whole page, beyond the viewport, as the test
    /// artefact `target/screenshots/{name}`, checks it is one, and
    /// returns where it is.
    pub async fn screenshot_artefact(&self, name: &str) -> PathBuf {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().expect("content width").ceil();
        let height = size["height"].as_f64().expect("content height").ceil();
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 },
                }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write screenshot");
        let png = std::fs::read(&path).expect("read the screenshot back");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        assert!(png.len() > 10_000, "suspiciously small screenshot: {} bytes", png.len());
        eprintln!("screenshot: {}", path.display());
        path
    }
}
