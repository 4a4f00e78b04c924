//! Measurement 10: the soak. One server, for a set time, under a bounded
//! random mix of what real clients do: changes (good, refused, stepped,
//! to expired sessions), new sessions, event streams that connect and
//! drop, and connections abandoned half-way through a request head.
//!
//! It samples the server's RSS, open fds, threads and its own counts of
//! tasks, connections, streams and sessions when idle before the load,
//! early in the load and at its end, and idle again once every session
//! has expired. Flat means: the late sample is no bigger than the early
//! one (within a margin), and the idle counts come back exactly.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::change::XorShift;
use crate::client::{Conn, get, post_form};
use crate::procs::Server;
use crate::{Fallible, Harness, fail};

/// Short lifetimes, so that sessions and abandoned connections come and
/// go many times within the soak: a tenth of it, 2 to 20 s.
fn session_ttl(soak: Duration) -> Duration {
    Duration::from_secs((soak.as_secs() / 10).clamp(2, 20))
}
/// The most sessions the clients remember; older ones are left to expire.
const KNOWN_SESSIONS: usize = 2_000;
const CHANGERS: usize = 4;
const STREAMS_AT_ONCE: usize = 300;
const HALF_HEADS_AT_ONCE: usize = 50;

/// One reading of the server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub rss: u64,
    pub fds: u64,
    pub threads: u64,
    pub tasks: u64,
    pub connections: u64,
    pub streams: u64,
    pub sessions: u64,
}

pub struct Soaked {
    pub idle_before: Sample,
    pub early: Sample,
    pub late: Sample,
    pub idle_after: Sample,
    pub peak_rss: u64,
    pub counts: Counts,
}

/// What the clients did, by what the server answered.
#[derive(Default)]
pub struct Counts {
    pub changes: AtomicU64,
    pub refused: AtomicU64,
    pub gone: AtomicU64,
    pub sessions: AtomicU64,
    pub streams: AtomicU64,
    pub dropped: AtomicU64,
}

impl Counts {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

struct Shared {
    addr: SocketAddr,
    known: Mutex<VecDeque<String>>,
    counts: Counts,
    stop: AtomicBool,
    /// The first unexpected answer; it fails the soak.
    error: Mutex<Option<String>>,
}

impl Shared {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn pick(&self, rng: &mut XorShift) -> Option<String> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        (!known.is_empty()).then(|| known[(rng.next() % known.len() as u64) as usize].clone())
    }

    fn fail(&self, what: String) {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(what);
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub async fn run(h: &Harness, duration: Duration) -> Fallible<Soaked> {
    let ttl = session_ttl(duration);
    let (ttl_text, unchanged_text) = (format!("{}s", ttl.as_secs()), format!("{}s", ttl.as_secs() / 2));
    let settings = [
        ("SESSION_TTL", ttl_text.as_str()),
        ("UNCHANGED_SESSION_TTL", unchanged_text.as_str()),
        ("HEADER_TIMEOUT", "2s"),
        ("IDLE_TIMEOUT", "5s"),
    ];
    let mut app = h.start_app(&settings).await?;
    app.healthy(Duration::from_secs(5)).await?;
    let idle_before = sample(&app).await?;

    let shared = Arc::new(Shared {
        addr: app.addr,
        known: Mutex::new(VecDeque::with_capacity(KNOWN_SESSIONS)),
        counts: Counts::default(),
        stop: AtomicBool::new(false),
        error: Mutex::new(None),
    });
    let mut load = JoinSet::new();
    load.spawn(make_sessions(Arc::clone(&shared)));
    for seed in 0..CHANGERS as u64 {
        load.spawn(change(Arc::clone(&shared), seed + 1));
    }
    load.spawn(churn_streams(Arc::clone(&shared)));
    load.spawn(abandon_heads(Arc::clone(&shared)));

    // The early sample once the load has reached its steady state.
    let started = Instant::now();
    let warmup = (duration / 10).max(Duration::from_secs(1));
    let mut early = None;
    let mut peak_rss = 0;
    let mut samples = tokio::time::interval(Duration::from_millis(500));
    while started.elapsed() < duration && shared.running() {
        samples.tick().await;
        app.check_alive()?;
        peak_rss = peak_rss.max(app.rss_bytes()?);
        if early.is_none() && started.elapsed() >= warmup {
            early = Some(sample(&app).await?);
        }
    }
    let late = sample(&app).await?;
    shared.stop.store(true, Ordering::Relaxed);
    load.abort_all();
    while load.join_next().await.is_some() {}
    if let Some(error) = shared.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return fail(error);
    }

    // Idle again: every stream closed, every connection gone, and every
    // session expired and swept.
    let idle_after = settle(&app, &idle_before, ttl).await?;
    app.stop().await;
    let shared = Arc::into_inner(shared).ok_or("a load task outlived the soak")?;
    Ok(Soaked {
        idle_before,
        early: early.unwrap_or(late),
        late,
        idle_after,
        peak_rss,
        counts: shared.counts,
    })
}

/// Samples until the server is as idle as it was at the start (no
/// sessions, streams or extra connections), or the sessions' lifetime
/// and a bit have passed.
async fn settle(app: &Server, before: &Sample, ttl: Duration) -> Fallible<Sample> {
    let deadline = Instant::now() + ttl + Duration::from_secs(5);
    loop {
        let now = sample(app).await?;
        let quiet = now.sessions == before.sessions
            && now.streams == before.streams
            && now.connections == before.connections;
        if quiet || Instant::now() > deadline {
            // Memory is handed back by housekeeping, once a second.
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            return sample(app).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn sample(app: &Server) -> Fallible<Sample> {
    let mut conn = Conn::connect(app.addr).await?;
    let metrics = conn.roundtrip(&get(&app.addr, "/metrics", "Connection: close\r\n"), true).await?.text();
    let gauge = |name: &str| -> Fallible<u64> {
        let line = metrics
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .ok_or_else(|| format!("/metrics has no {name}"))?;
        Ok(line.split_whitespace().nth(1).ok_or("a gauge without a value")?.parse::<f64>()? as u64)
    };
    let count = |dir: String| -> Fallible<u64> { Ok(std::fs::read_dir(dir)?.count() as u64) };
    Ok(Sample {
        rss: app.rss_bytes()?,
        fds: count(format!("/proc/{}/fd", app.pid))?,
        threads: count(format!("/proc/{}/task", app.pid))?,
        tasks: gauge("weight_converter_tasks")?,
        // Less the connection this sample was read on.
        connections: gauge("weight_converter_open_connections")?.saturating_sub(1),
        streams: gauge("weight_converter_open_streams")?,
        sessions: gauge("weight_converter_sessions")?,
    })
}

/// A new session every 20 ms, remembered among the last few thousand.
async fn make_sessions(shared: Arc<Shared>) {
    let addr = shared.addr;
    let request = get(&addr, "/", "");
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while shared.running() {
        tick.tick().await;
        let answer = async {
            let mut conn = Conn::connect(addr).await?;
            conn.roundtrip(&request, false).await
        };
        match answer.await {
            Ok(r) if r.head.status == 303 => {
                let Some(sid) = r.head.header("location").and_then(|l| l.strip_prefix("/s/")) else {
                    return shared.fail("GET / redirected to no session".to_owned());
                };
                let mut known = shared.known.lock().unwrap_or_else(|e| e.into_inner());
                if known.len() == KNOWN_SESSIONS {
                    known.pop_front();
                }
                known.push_back(sid.to_owned());
                shared.counts.sessions.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => return shared.fail(format!("GET / answered {}", r.head.status)),
            Err(e) => return shared.fail(format!("GET /: {e}")),
        }
    }
}

/// Changes to random known sessions, some refused, some stepped, some
/// from htmx and some as plain forms; now and then the connection is
/// dropped and made again.
async fn change(shared: Arc<Shared>, seed: u64) {
    let addr = shared.addr;
    let mut rng = XorShift::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut conn = None;
    while shared.running() {
        let Some(sid) = shared.pick(&mut rng) else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let roll = rng.next();
        let (key, text, refused) = match roll % 10 {
            0 => ("lbs", "ten".to_owned(), true),
            1 => ("kg", "1e309".to_owned(), true),
            2 => ("kg", "1e308".to_owned(), true),
            3 => ("lbs", String::new(), false),
            n => (
                if n % 2 == 0 { "lbs" } else { "kg" },
                format!("{}.{:02}", roll % 100_000, roll % 100),
                false,
            ),
        };
        let step = match (roll >> 8) % 4 {
            0 => "&step=up",
            1 => "&step=down",
            _ => "",
        };
        let htmx = (roll >> 16).is_multiple_of(2);
        let (path, body) = (format!("/s/{sid}/widgets/{key}"), format!("{key}={text}{step}"));
        let request = if htmx { post_form(&addr, &path, &body, "") } else { plain_post(&addr, &path, &body) };
        if conn.is_none() {
            match Conn::connect(addr).await {
                Ok(c) => conn = Some(c),
                Err(e) => return shared.fail(format!("connect: {e}")),
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let status = match c.roundtrip(&request, false).await {
            Ok(r) => r.head.status,
            Err(e) => return shared.fail(format!("POST: {e}")),
        };
        let counts = &shared.counts;
        let expected = match (refused, htmx) {
            (true, _) => 422,
            (false, true) => 200,
            (false, false) => 303,
        };
        match status {
            _ if status == expected && refused => counts.refused.fetch_add(1, Ordering::Relaxed),
            _ if status == expected => counts.changes.fetch_add(1, Ordering::Relaxed),
            // Expired before this change: a session only lives while used.
            404 => counts.gone.fetch_add(1, Ordering::Relaxed),
            other => {
                return shared.fail(format!(
                    "POST {key}={text}{step} (htmx: {htmx}) answered {other}, expected {expected}"
                ));
            }
        };
        if (roll >> 24).is_multiple_of(100) {
            conn = None;
            counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A form POST as a browser without JavaScript sends it.
fn plain_post(host: &SocketAddr, path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Keeps up to `STREAMS_AT_ONCE` event streams open on random sessions,
/// each for a random 0.1–3 s, then drops it without a goodbye.
async fn churn_streams(shared: Arc<Shared>) {
    let mut rng = XorShift::new(0x5EED);
    let mut open = JoinSet::new();
    while shared.running() {
        while open.len() >= STREAMS_AT_ONCE {
            open.join_next().await;
        }
        let Some(sid) = shared.pick(&mut rng) else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let hold = Duration::from_millis(100 + rng.next() % 2_900);
        let shared = Arc::clone(&shared);
        open.spawn(async move {
            let addr = shared.addr;
            let request = get(&addr, &format!("/s/{sid}/events"), "Accept: text/event-stream\r\n");
            let opened = async {
                let mut conn = Conn::connect_with_buffer(addr, 4096).await?;
                conn.send(&request).await?;
                let head = conn.read_head().await?;
                Ok::<_, std::io::Error>((conn, head.status))
            };
            match opened.await {
                Ok((mut conn, 200)) => {
                    shared.counts.streams.fetch_add(1, Ordering::Relaxed);
                    let _ = tokio::time::timeout(hold, async {
                        while let Ok(true) = conn.chunk(&mut |_| {}).await {}
                    })
                    .await;
                }
                Ok((_, 404)) => {
                    shared.counts.gone.fetch_add(1, Ordering::Relaxed);
                }
                Ok((_, status)) => shared.fail(format!("GET /s/…/events answered {status}")),
                Err(e) => shared.fail(format!("GET /s/…/events: {e}")),
            }
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Connections that send part of a request head, then either leave at
/// once or stay silent until the server's header timeout cuts them.
async fn abandon_heads(shared: Arc<Shared>) {
    let mut rng = XorShift::new(0xDEAD);
    let mut held = JoinSet::new();
    const HEAD: &[u8] = b"POST /s/AAAAAAAAAAAAAAAAAAAAAA/widgets/lbs HTTP/1.1\r\nHost: soak\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\n\r\nlbs=1";
    while shared.running() {
        while held.len() >= HALF_HEADS_AT_ONCE {
            held.join_next().await;
        }
        let cut = (rng.next() % HEAD.len() as u64) as usize;
        let linger = rng.next().is_multiple_of(3);
        let addr = shared.addr;
        let counts = Arc::clone(&shared);
        held.spawn(async move {
            let Ok(mut tcp) = TcpStream::connect(addr).await else { return };
            let _ = tcp.write_all(&HEAD[..cut]).await;
            if linger {
                // Until the server gives up on it.
                let mut sink = [0u8; 256];
                let _ = tokio::time::timeout(
                    Duration::from_secs(10),
                    tokio::io::AsyncReadExt::read(&mut tcp, &mut sink),
                )
                .await;
            }
            counts.counts.dropped.fetch_add(1, Ordering::Relaxed);
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
