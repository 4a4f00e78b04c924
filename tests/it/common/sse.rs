//! A small server-sent events client over reqwest, for tests.
//!
//! Frames are separated by blank lines; `data:` lines are joined with "\n";
//! comments (`: …`) and frames without data (a bare `retry:`) are noted but
//! not returned as events. Every read has a timeout, so a broken server
//! fails a test instead of hanging it.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

/// The bound on any single read: generous, only there to turn a hang into
/// a failure.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The definition of the international pound, in kilograms.
pub const KG_PER_LB: f64 = 0.45359237;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `event:`, or "message" when absent.
    pub event: String,
    /// This frame's own `id:` field, if it had one.
    pub id: Option<String>,
    pub data: String,
}

impl Event {
    /// The `id:` as the session version it carries.
    pub fn version(&self) -> u64 {
        let id = self.id.as_deref().unwrap_or_else(|| panic!("event without id: {self:?}"));
        id.parse().unwrap_or_else(|_| panic!("non-numeric id {id:?}"))
    }

    /// `(lbs, kg)` from the dump in the data.
    pub fn pair(&self) -> (f64, f64) {
        dump_pair(&self.data)
    }
}

/// `(lbs, kg)` as shown by the dump (`<span class="json-number">…</span>`,
/// widget order) in an HTML fragment.
pub fn dump_pair(html: &str) -> (f64, f64) {
    const OPEN: &str = r#"<span class="json-number">"#;
    let numbers: Vec<f64> = html
        .split(OPEN)
        .skip(1)
        .map(|rest| {
            let text = &rest[..rest.find("</span>").expect("closed json-number span")];
            text.parse().unwrap_or_else(|_| panic!("json-number {text:?} is not a number"))
        })
        .collect();
    assert_eq!(numbers.len(), 2, "expected one dump with lbs and kg in:\n{html}");
    (numbers[0], numbers[1])
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// True when lbs and kg come from the same change: either one was
/// converted from the other.
pub fn is_consistent(lbs: f64, kg: f64) -> bool {
    close(kg, lbs * KG_PER_LB) || close(lbs, kg / KG_PER_LB)
}

/// `(lbs, kg)` from `state.json`.
pub fn json_pair(json: &str) -> (f64, f64) {
    let value: serde_json::Value = serde_json::from_str(json).expect("state.json is JSON");
    let get = |key: &str| value[key].as_f64().unwrap_or_else(|| panic!("no number {key:?} in {json}"));
    (get("lbs"), get("kg"))
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// What one read of a stream came to.
enum Read {
    Event(Event),
    Ended,
    /// The caller's condition held before an event came.
    Stopped,
}

/// Why no event came.
#[derive(Debug)]
pub enum ReadError {
    TimedOut,
    Transport(String),
}

pub struct SseStream {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    body: Body,
    buf: Vec<u8>,
    ended: bool,
    // The frame being read.
    event: Option<String>,
    id: Option<String>,
    data: Option<String>,
    /// The last `retry:` value seen.
    pub retry: Option<u64>,
    /// How many events had been returned when `retry:` was first seen.
    pub retry_seen_after: Option<usize>,
    /// Comment lines seen so far (keep-alives).
    pub comments: usize,
    /// `ping` events seen so far (a multiplexed stream's keep-alives).
    pub pings: usize,
    /// Events returned so far.
    pub events: usize,
}

/// `GET url` with `Accept: text/event-stream`, plus a `Last-Event-ID` if
/// given. Returns the response whatever its status.
pub async fn get(client: &reqwest::Client, url: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = client.get(url).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    tokio::time::timeout(READ_TIMEOUT, request.send())
        .await
        .unwrap_or_else(|_| panic!("no response headers for GET {url} within {READ_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

impl SseStream {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            body: Box::pin(response.bytes_stream()),
            buf: Vec::new(),
            ended: false,
            event: None,
            id: None,
            data: None,
            retry: None,
            retry_seen_after: None,
            comments: 0,
            pings: 0,
            events: 0,
        }
    }

    /// Opens a stream that must answer 200 with `text/event-stream`.
    pub async fn connect(client: &reqwest::Client, url: &str, last_event_id: Option<&str>) -> Self {
        let response = get(client, url, last_event_id).await;
        assert_eq!(response.status(), 200, "GET {url}");
        let stream = Self::new(response);
        assert_eq!(stream.content_type(), "text/event-stream", "GET {url}");
        stream
    }

    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The next event, `None` once the stream has ended cleanly; panics on
    /// a transport error or after [`READ_TIMEOUT`].
    pub async fn next_event(&mut self) -> Option<Event> {
        match self.next_event_within(READ_TIMEOUT).await {
            Ok(event) => event,
            Err(ReadError::TimedOut) => panic!("no event within {READ_TIMEOUT:?}"),
            Err(ReadError::Transport(e)) => panic!("stream failed: {e}"),
        }
    }

    /// The next event, which must come.
    pub async fn expect_event(&mut self) -> Event {
        self.next_event().await.expect("the stream ended, but an event was expected")
    }

    /// Reads events until one has at least `version`; returns every event
    /// read, the last of which is that one.
    pub async fn read_until_version(&mut self, version: u64) -> Vec<Event> {
        let mut seen = Vec::new();
        loop {
            let event = match self.next_event_within(READ_TIMEOUT).await {
                Ok(Some(event)) => event,
                Ok(None) => panic!("stream ended before version {version}; read {seen:#?}"),
                Err(e) => panic!("{e:?} waiting for version {version}; last read {:?}", seen.last()),
            };
            let reached = event.version() >= version;
            seen.push(event);
            if reached {
                return seen;
            }
        }
    }

    /// The next event within `limit`: `Ok(None)` once the stream has ended.
    pub async fn next_event_within(&mut self, limit: Duration) -> Result<Option<Event>, ReadError> {
        match tokio::time::timeout(limit, self.read_event()).await {
            Ok(result) => result,
            Err(_) => Err(ReadError::TimedOut),
        }
    }

    /// Waits for `n` more keep-alives (comments, or `ping` events on a
    /// multiplexed stream) with no event between them: an idle stream stays
    /// open and says so.
    pub async fn expect_keep_alives(&mut self, n: usize) {
        let goal = self.comments + self.pings + n;
        let read = tokio::time::timeout(READ_TIMEOUT, self.read(|s| s.comments + s.pings >= goal)).await;
        match read {
            Ok(Ok(Read::Stopped)) => {}
            Ok(Ok(Read::Event(event))) => panic!("an event while idle: {event:?}"),
            Ok(Ok(Read::Ended)) => panic!("the stream ended while idle"),
            Ok(Err(e)) => panic!("stream failed while idle: {e:?}"),
            Err(_) => panic!("fewer than {n} keep-alives within {READ_TIMEOUT:?}"),
        }
    }

    async fn read_event(&mut self) -> Result<Option<Event>, ReadError> {
        match self.read(|_| false).await? {
            Read::Event(event) => Ok(Some(event)),
            Read::Ended | Read::Stopped => Ok(None),
        }
    }

    /// Reads up to the next event, the end of the stream, or the first line
    /// after which `stop` holds. Cancel-safe: all state lives in `self`
    /// between awaits.
    async fn read(&mut self, stop: impl Fn(&Self) -> bool) -> Result<Read, ReadError> {
        loop {
            while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line =
                    String::from_utf8(line).map_err(|e| ReadError::Transport(format!("not UTF-8: {e}")))?;
                let line = line.trim_end_matches('\n').trim_end_matches('\r');
                if let Some(event) = self.line(line) {
                    self.events += 1;
                    return Ok(Read::Event(event));
                }
                if stop(self) {
                    return Ok(Read::Stopped);
                }
            }
            if self.ended {
                return Ok(Read::Ended);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(ReadError::Transport(e.to_string())),
                None => self.ended = true,
            }
        }
    }

    /// Takes one line; returns an event when a blank line completes one.
    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let event = self.event.take();
            let id = self.id.take();
            // A multiplexed stream's keep-alive is an event (`ping`), so
            // that scripts see it; counted with the comments, not returned.
            if event.as_deref() == Some("ping") {
                self.data = None;
                self.pings += 1;
                return None;
            }
            return self.data.take().map(|data| Event {
                event: event.unwrap_or_else(|| "message".to_owned()),
                id,
                data,
            });
        }
        if line.starts_with(':') {
            self.comments += 1;
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "id" => self.id = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "retry" => {
                if let Ok(ms) = value.parse() {
                    self.retry = Some(ms);
                    self.retry_seen_after.get_or_insert(self.events);
                }
            }
            _ => {}
        }
        None
    }
}
