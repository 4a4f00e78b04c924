//! Measurement 4a/4b: cold start to ready, and the first page load over
//! the wire.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::client::{Conn, Response, get};
use crate::procs::Kind;
use crate::{Fallible, Harness, fail};

pub struct ColdStart {
    /// Spawn until `/healthz` answered 200.
    pub to_healthy: Duration,
    /// Spawn until the ready line was read.
    pub to_ready_line: Duration,
}

/// Spawns the server, waits for its ready line, then asks `/healthz`
/// until it answers 200. The clock starts just before the spawn (which
/// goes through `taskset`, an extra exec of well under a millisecond).
pub async fn cold_start(h: &Harness, kind: Kind) -> Fallible<ColdStart> {
    let started = Instant::now();
    let server = match kind {
        Kind::App => h.start_app(&[]).await?,
        Kind::Baseline => h.start_baseline().await?,
    };
    server.healthy(Duration::from_secs(5)).await?;
    let to_healthy = started.elapsed();
    let to_ready_line = server.ready_line_after;
    server.stop().await;
    Ok(ColdStart { to_healthy, to_ready_line })
}

/// One resource of the first load.
pub struct Fetched {
    pub path: String,
    pub status: u16,
    pub encoding: String,
    /// Response bytes received: status line, headers, body as sent
    /// (compressed) and chunk framing.
    pub wire_bytes: usize,
    /// Request bytes sent.
    pub request_bytes: usize,
}

pub struct FirstLoad {
    pub resources: Vec<Fetched>,
    /// Not in the total: fetched by the page's script, not its markup.
    pub extras: Vec<Fetched>,
}

impl FirstLoad {
    pub fn total(&self) -> usize {
        self.resources.iter().map(|r| r.wire_bytes).sum()
    }
}

/// Loads `GET /` (303), the page, then every `<link href>` and `<script
/// src>` asset, over one keep-alive connection as a browser would,
/// asking for `accept_encoding`.
pub async fn first_load(addr: SocketAddr, accept_encoding: &str) -> Fallible<FirstLoad> {
    let mut conn = Conn::connect(addr).await?;
    let headers = format!(
        "User-Agent: loadgen\r\nAccept: text/html,*/*;q=0.8\r\nAccept-Encoding: {accept_encoding}\r\n"
    );
    let mut resources = Vec::new();
    let (start, response) = fetch(&mut conn, addr, "/", &headers).await?;
    let location = response.head.header("location").map(str::to_owned);
    if start.status != 303 {
        return fail(format!("GET / answered {}", start.status));
    }
    let location = location.ok_or("no location on the 303")?;
    resources.push(start);
    let (page, _) = fetch(&mut conn, addr, &location, &headers).await?;
    if page.status != 200 {
        return fail(format!("GET {location} answered {}", page.status));
    }
    resources.push(page);
    // The counted page came compressed; read the asset names from an
    // uncompressed copy (same markup, another view id).
    let plain = conn.roundtrip(&get(&addr, &location, ""), true).await?;
    let html = plain.text();
    let assets = attribute_values(&html, &["<link ", "<script "], &["href=\"", "src=\""]);
    if assets.is_empty() {
        return fail("the page names no assets");
    }
    for asset in &assets {
        let (fetched, _) = fetch(&mut conn, addr, asset, &headers).await?;
        if fetched.status != 200 {
            return fail(format!("GET {asset} answered {}", fetched.status));
        }
        resources.push(fetched);
    }
    // What the page's script opens next: the shared worker (app.js
    // again, from the cache) and the event stream's head and first event.
    let mut extras = Vec::new();
    let events = attribute_values(&html, &["<main "], &["data-wc-events=\""]);
    let watch = attribute_values(&html, &["<main "], &["data-wc-watch=\""]);
    if let (Some(events), Some(label)) = (events.first(), watch.first()) {
        let (kind, id) = label.split_once(':').ok_or("a data-wc-watch without its kind")?;
        extras.push(first_event(addr, &format!("{events}?{kind}={id}"), &headers).await?);
    }
    Ok(FirstLoad { resources, extras })
}

async fn fetch(
    conn: &mut Conn,
    addr: SocketAddr,
    path: &str,
    headers: &str,
) -> Fallible<(Fetched, Response)> {
    let request = get(&addr, path, headers);
    let response = conn.roundtrip(&request, true).await?;
    let fetched = Fetched {
        path: path.to_owned(),
        status: response.head.status,
        encoding: response.head.header("content-encoding").unwrap_or("identity").to_owned(),
        wire_bytes: response.wire_bytes,
        request_bytes: request.len(),
    };
    Ok((fetched, response))
}

/// The head and first `state` event of an event stream, as bytes on the wire.
async fn first_event(addr: SocketAddr, path: &str, headers: &str) -> Fallible<Fetched> {
    let mut conn = Conn::connect(addr).await?;
    let request = get(&addr, path, &format!("{headers}Accept: text/event-stream\r\n"));
    conn.send(&request).await?;
    let head = conn.read_head().await?;
    let mut text = Vec::new();
    while !(text.windows(12).any(|w| w == b"event: state") && text.ends_with(b"\n\n")) {
        if !conn.chunk(&mut |d: &[u8]| text.extend_from_slice(d)).await? {
            break;
        }
    }
    Ok(Fetched {
        path: path.to_owned(),
        status: head.status,
        encoding: head.header("content-encoding").unwrap_or("identity").to_owned(),
        wire_bytes: conn.consumed(),
        request_bytes: request.len(),
    })
}

/// Values of `attrs` in tags starting with one of `tags`, in order.
fn attribute_values(html: &str, tags: &[&str], attrs: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some((at, tag)) =
        tags.iter().filter_map(|t| rest.find(t).map(|i| (i, *t))).min_by_key(|(i, _)| *i)
    {
        let after = &rest[at + tag.len()..];
        let end = after.find('>').unwrap_or(after.len());
        let inside = &after[..end];
        for attr in attrs {
            if let Some(start) = inside.find(attr) {
                let value = &inside[start + attr.len()..];
                if let Some(close) = value.find('"') {
                    out.push(value[..close].replace("&amp;", "&"));
                }
            }
        }
        rest = &after[end..];
    }
    out
}
