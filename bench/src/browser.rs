//! Measurement 4c: in headless Chromium, from Enter in Pounds until
//! Kilograms shows the result, timed inside the page.
//!
//! Before each try a script (run through WebDriver, so the page's CSP does
//! not apply) records `performance.now()` at the Enter keydown and installs
//! a MutationObserver that records the time at which Kilograms first holds
//! a new value. WebDriver's own latency is outside both timestamps.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, Locator};
use serde_json::{Value as Json, json};

use crate::client::{Conn, get};
use crate::{Fallible, fail};

/// Finding Chromium and chromedriver, starting them and a session: the
/// browser tests' own launcher.
#[path = "../../tests/it/browser_support/launch.rs"]
mod launch;

pub struct Timings {
    /// Per try: when each page event first fired after Enter, in ms.
    pub phases: Vec<Vec<(String, f64)>>,
    /// Enter → Kilograms changed (MutationObserver), per try, in ms.
    pub enter_to_kg: Vec<f64>,
    /// Enter → the next animation frame after that, per try, in ms.
    pub enter_to_frame: Vec<f64>,
    /// `fetch('/healthz')` from the page, per try, in ms: the floor any
    /// request from this browser to this server pays.
    pub fetch_floor: Vec<f64>,
    /// The same change as Enter makes, posted from the page without htmx,
    /// per try, in ms: with `fetch`, and with `XMLHttpRequest` (what htmx
    /// uses). Both read the whole response; neither touches the page.
    pub fetch_post: Vec<f64>,
    pub xhr_post: Vec<f64>,
    /// `XMLHttpRequest` with progress listeners on it and its upload, as
    /// htmx registers them.
    pub xhr_upload_post: Vec<f64>,
    /// `htmx.ajax` from the form, to its `htmx:beforeSwap`.
    pub htmx_post: Vec<f64>,
    /// A `change` event dispatched on Pounds by a script (no key press, so
    /// no WebDriver input on the page's main thread) → Kilograms changed,
    /// per try, in ms: htmx, the server and the swap alone.
    pub change_to_kg: Vec<f64>,
}

const ARM: &str = r#"
const lbs = document.querySelector('input[data-part=lbs]');
const before = document.querySelector('input[data-part=kg]').value;
const bench = window.__wcBench = { start: null, ms: null, frame: null, phases: {} };
if (!window.__wcPhases) {
  window.__wcPhases = true;
  ['change', 'submit', 'htmx:configRequest', 'htmx:beforeSend', 'htmx:afterRequest', 'htmx:beforeSwap',
   'htmx:afterSettle'].forEach((name) => {
    document.addEventListener(name, () => {
      const b = window.__wcBench;
      if (b && b.start !== null && !(name in b.phases)) b.phases[name] = performance.now() - b.start;
    }, true);
  });
}
const onKey = (e) => {
  if (e.key === 'Enter' && bench.start === null) {
    bench.start = performance.now();
    requestAnimationFrame(() => { bench.phases['first frame'] = performance.now() - bench.start; });
    lbs.removeEventListener('keydown', onKey, true);
  }
};
lbs.addEventListener('keydown', onKey, true);
const seen = new MutationObserver(() => {
  if (bench.start === null || bench.ms !== null) return;
  const kg = document.querySelector('input[data-part=kg]');
  if (kg && kg.value !== before) {
    bench.ms = performance.now() - bench.start;
    seen.disconnect();
    requestAnimationFrame(() => { bench.frame = performance.now() - bench.start; });
  }
});
seen.observe(document.documentElement, { subtree: true, attributes: true, childList: true, characterData: true });
return before;
"#;

/// Resolves once the page has rendered what came before: two animation
/// frames, the second starting after the first was painted.
const RENDERED: &str = r#"
const done = arguments[arguments.length - 1];
requestAnimationFrame(() => requestAnimationFrame(() => done(true)));
"#;

const FETCH: &str = r#"
const done = arguments[arguments.length - 1];
const t = performance.now();
fetch('/healthz', { cache: 'no-store' }).then(r => r.text()).then(() => done(performance.now() - t), e => done(String(e)));
"#;

/// Posts a change to Pounds as htmx would (same URL, headers and body),
/// with `fetch` or `XMLHttpRequest`; resolves to the round trip in ms.
const POST: &str = r#"
const [how, value, done] = arguments;
const form = document.querySelector('form.widget');
const body = new URLSearchParams({ lbs: value, view: form.querySelector('[name=view]').value }).toString();
const headers = { 'content-type': 'application/x-www-form-urlencoded', 'hx-request': 'true' };
const t = performance.now();
if (how === 'htmx') {
  // htmx's own request from the same form, timed to its beforeSwap.
  document.addEventListener('htmx:beforeSwap', () => done(performance.now() - t), { once: true });
  htmx.ajax('POST', form.action, { source: form, values: { lbs: value }, swap: 'none' });
} else if (how === 'fetch') {
  fetch(form.action, { method: 'POST', headers, body }).then(r => r.text())
    .then(() => done(performance.now() - t), e => done(String(e)));
} else {
  const xhr = new XMLHttpRequest();
  if (how === 'xhr-upload') {
    // As htmx does: progress listeners on the request and its upload.
    for (const target of [xhr, xhr.upload])
      for (const name of ['loadstart', 'loadend', 'progress', 'abort']) target.addEventListener(name, () => {});
  }
  xhr.open('POST', form.action);
  for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
  xhr.onload = () => done(performance.now() - t);
  xhr.onerror = () => done('xhr failed');
  xhr.send(body);
}
"#;

/// Adds the last widget POST's resource timing (request start, first and
/// last response byte, relative to Enter) to the phases; returns the bench.
const RESOURCE_TIMING: &str = r#"
const b = window.__wcBench;
const post = performance.getEntriesByType('resource').filter(e => e.name.includes('/widgets/')).pop();
if (post && post.startTime >= b.start) {
  b.phases['POST fetch start (resource timing)'] = post.fetchStart - b.start;
  if (post.connectEnd > post.connectStart) {
    b.phases['POST connect start (resource timing)'] = post.connectStart - b.start;
    b.phases['POST connected (resource timing)'] = post.connectEnd - b.start;
  }
  b.phases['POST sent (resource timing)'] = post.requestStart - b.start;
  b.phases['POST first byte (resource timing)'] = post.responseStart - b.start;
  b.phases['POST last byte (resource timing)'] = post.responseEnd - b.start;
}
performance.clearResourceTimings();
return b;
"#;

/// After ARM: commits a value the way Enter does, with a `change` event,
/// but dispatched from the page.
const SCRIPTED_CHANGE: &str = r#"
const lbs = document.querySelector('input[data-part=lbs]');
lbs.value = arguments[0];
// As typing would: app.js drops a commit with nothing typed since the last.
lbs.dispatchEvent(new Event('input', { bubbles: true }));
window.__wcBench.start = performance.now();
lbs.dispatchEvent(new Event('change', { bubbles: true }));
"#;

/// Runs `tries` timed commits (after two untimed ones) against the app at `addr`.
pub async fn measure(addr: SocketAddr, tries: usize, scratch: &Path) -> Fallible<Timings> {
    with_chromium(scratch, "normal", async |client| run(client, addr, tries).await).await
}

/// What one browser holds open with `tabs` tabs, each opened at `/` (a
/// session each), and what that costs the server.
pub struct Tabs {
    /// Tabs that loaded and went live within [`TAB_DEADLINE`].
    pub live: usize,
    /// The server's open connections and event streams, by its metrics.
    pub connections: u64,
    pub streams: u64,
    /// The server's RSS before the first tab and with all of them open.
    pub rss_before: u64,
    pub rss_after: u64,
}

/// How long the tabs get to load and go live, all together.
const TAB_DEADLINE: Duration = Duration::from_secs(10);

/// Whether a page is loaded and its view is live; written for both the
/// current front end (`data-wc-live`) and the one before it (htmx's SSE
/// extension, one stream per session), so one harness measures both.
const LIVE: &str = r#"
if (document.readyState !== 'complete') return false;
const view = document.querySelector('[data-wc-watch]');
if (view) return view.getAttribute('data-wc-live') === 'true';
const el = document.querySelector('[sse-connect]');
const data = el && el['htmx-internal-data'];
return !!(data && data.sseEventSource && data.sseEventSource.readyState === 1);
"#;

pub async fn tabs(server: &crate::procs::Server, tabs: usize, scratch: &Path) -> Fallible<Tabs> {
    let addr = server.addr;
    let rss_before = server.rss_bytes()?;
    // Navigation does not wait for the load: a tab that cannot get a
    // connection must not hold up the others.
    with_chromium(scratch, "none", async |client| {
        let mut handles = Vec::new();
        for _ in 0..tabs {
            let handle = client.new_window(true).await?.handle;
            client.switch_to_window(handle.clone()).await?;
            client.goto(&format!("http://{addr}/")).await?;
            handles.push(handle);
        }
        let deadline = Instant::now() + TAB_DEADLINE;
        let mut live = 0;
        for handle in &handles {
            client.switch_to_window(handle.clone()).await?;
            while Instant::now() < deadline {
                if client.execute(LIVE, vec![]).await.is_ok_and(|v| v == json!(true)) {
                    live += 1;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Let streams the pages switched away from close.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let metrics = {
            let mut conn = Conn::connect(addr).await?;
            conn.roundtrip(&get(&addr, "/metrics", "Connection: close\r\n"), true).await?.text()
        };
        let gauge = |name: &str| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(Tabs {
            live,
            // Less the connection that asked.
            connections: gauge("weight_converter_open_connections").saturating_sub(1),
            streams: gauge("weight_converter_open_streams"),
            rss_before,
            rss_after: server.rss_bytes()?,
        })
    })
    .await
}

/// A Chromium session for `body`, closed (and chromedriver stopped)
/// whatever happens, within 180 s.
async fn with_chromium<T>(
    scratch: &Path,
    page_load: &str,
    body: impl AsyncFnOnce(&Client) -> Fallible<T>,
) -> Fallible<T> {
    let programs = launch::locate_programs()?;
    let profile = scratch.join("chromium-profile");
    std::fs::create_dir_all(&profile)?;
    // Chromium gets both CPUs, as a user's browser would, rather than the
    // load generator's one.
    let command = match crate::procs::taskset() {
        Some(taskset) => {
            let mut command = Command::new(taskset);
            command.args(["-c", "0,1"]).arg(&programs.chromedriver);
            command
        }
        None => Command::new(&programs.chromedriver),
    };
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = scratch.join("chromedriver.log");
    let driver = launch::Driver::start(command, port, log, |mut command| command.spawn()).await?;
    let outcome = async {
        let caps = capabilities(&programs.chromium, &profile, page_load);
        let client = launch::connect(&driver, caps).await?;
        let timed = tokio::time::timeout(Duration::from_secs(180), body(&client)).await;
        // Always close the session, or Chromium processes stay behind.
        let _ = client.close().await;
        match timed {
            Ok(result) => result,
            Err(_) => fail("the browser measurement took over 180 s"),
        }
    }
    .await;
    // chromedriver's /shutdown, and a kill if that is not enough.
    drop(driver);
    let _ = std::fs::remove_dir_all(&profile);
    outcome
}

async fn run(client: &Client, addr: SocketAddr, tries: usize) -> Fallible<Timings> {
    client.goto(&format!("http://{addr}/")).await?;
    wait("htmx and the event stream", async || {
        let ready = client
            .execute(
                "const view = document.querySelector('[data-wc-watch]');\
                 return document.readyState === 'complete' && !!window.htmx &&\
                 !!view && view.getAttribute('data-wc-live') === 'true' &&\
                 !!document.querySelector('form.widget')['htmx-internal-data'];",
                vec![],
            )
            .await?;
        Ok(ready == json!(true))
    })
    .await?;

    let mut timings = Timings {
        phases: Vec::new(),
        enter_to_kg: Vec::new(),
        enter_to_frame: Vec::new(),
        fetch_floor: Vec::new(),
        fetch_post: Vec::new(),
        xhr_post: Vec::new(),
        xhr_upload_post: Vec::new(),
        htmx_post: Vec::new(),
        change_to_kg: Vec::new(),
    };
    let select_all = format!("{}a{}", char::from(Key::Control), char::from(Key::Null));
    for i in 0..tries + 2 {
        let value = format!("{}.{}", 20 + 3 * i, i % 10);
        client.execute(ARM, vec![]).await?;
        let field = client.find(Locator::Css("input[data-part=lbs]")).await?;
        // Typed, then Enter once the page has shown what was typed, as a
        // person presses it: not in the same instant, with the typing's
        // own frame still to come.
        field.send_keys(&format!("{select_all}{value}")).await?;
        client.execute_async(RENDERED, vec![]).await?;
        field.send_keys(&char::from(Key::Enter).to_string()).await?;
        let mut result = Json::Null;
        wait(format!("Kilograms to change after Pounds = {value}"), async || {
            result = client.execute("return window.__wcBench;", vec![]).await?;
            Ok(result["frame"].is_number())
        })
        .await?;
        if i >= 2 {
            // The network's share, from the browser's own resource timing.
            result = client.execute(RESOURCE_TIMING, vec![]).await?;
            timings.enter_to_kg.push(result["ms"].as_f64().ok_or("no timing")?);
            timings.enter_to_frame.push(result["frame"].as_f64().ok_or("no timing")?);
            let phases = result["phases"].as_object().map(|p| {
                p.iter().filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v))).collect::<Vec<_>>()
            });
            timings.phases.push(phases.unwrap_or_default());
        }
        // Let the change settle (the page's own follow-ups) before the next.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for i in 0..tries {
        let value = format!("{}.{}", 300 + 3 * i, i % 10);
        client.execute(ARM, vec![]).await?;
        client.execute(SCRIPTED_CHANGE, vec![json!(value)]).await?;
        let mut result = Json::Null;
        wait(format!("Kilograms to change after a scripted change to {value}"), async || {
            result = client.execute("return window.__wcBench;", vec![]).await?;
            Ok(result["frame"].is_number())
        })
        .await?;
        timings.change_to_kg.push(result["ms"].as_f64().ok_or("no timing")?);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for _ in 0..tries {
        let ms = client.execute_async(FETCH, vec![]).await?;
        timings.fetch_floor.push(ms.as_f64().ok_or_else(|| format!("fetch failed: {ms}"))?);
    }
    for i in 0..tries {
        for (how, into) in [
            ("fetch", &mut timings.fetch_post),
            ("xhr", &mut timings.xhr_post),
            ("xhr-upload", &mut timings.xhr_upload_post),
            ("htmx", &mut timings.htmx_post),
        ] {
            let value = format!("{}.{}", 500 + i, i % 10);
            // Paced like the commits above: an idle gap before each.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let ms = client.execute_async(POST, vec![json!(how), json!(value)]).await?;
            into.push(ms.as_f64().ok_or_else(|| format!("{how} POST failed: {ms}"))?);
        }
    }
    Ok(timings)
}

async fn wait(
    what: impl std::fmt::Display,
    mut probe: impl AsyncFnMut() -> Result<bool, fantoccini::error::CmdError>,
) -> Fallible<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match probe().await {
            Ok(true) => return Ok(()),
            Ok(false) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Ok(false) => return fail(format!("timed out waiting for {what}")),
            Err(e) => return fail(format!("waiting for {what}: {e}")),
        }
    }
}

/// A session in which chromedriver starts `chromium` itself, with the
/// shared flags and `profile`, loading pages by `page_load`.
fn capabilities(chromium: &Path, profile: &Path, page_load: &str) -> Capabilities {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium.to_string_lossy(),
            "args": launch::chromium_args(profile, 1280, 900),
        },
        "pageLoadStrategy": page_load,
    });
    let Json::Object(caps) = caps else { unreachable!() };
    caps
}
