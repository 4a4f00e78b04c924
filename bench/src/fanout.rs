//! Measurement 2: fan-out. N event streams on one session, then changes
//! one at a time: the time from sending the POST until the last of the N
//! views has the event with the change's id.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::client::{Conn, SseIds, get, post_form};
use crate::procs::{Server, cpu_seconds};
use crate::stats::{ms, quantile, sorted_durations};
use crate::{Fallible, Plan, fail};

/// Streams are opened this many at a time, so the listen backlog never
/// overflows (which would cost a one-second SYN retry).
const CONNECTING_AT_ONCE: usize = 128;
/// How long one change may take to reach every view before it counts as
/// never received.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Default)]
struct Tracker {
    n: usize,
    ready: AtomicUsize,
    initial_id: AtomicU64,
    /// The id the driver waits for; `u64::MAX` while none.
    target: AtomicU64,
    got: AtomicUsize,
    done_at: Mutex<Option<Instant>>,
    done: Notify,
    all_ready: Notify,
    closing: AtomicBool,
    errors: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl Tracker {
    fn on_id(&self, last: &mut Option<u64>, id: u64) {
        match *last {
            None => {
                self.initial_id.fetch_max(id, Ordering::Relaxed);
                if self.ready.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
                    self.all_ready.notify_one();
                }
                *last = Some(id);
            }
            Some(previous) => {
                let target = self.target.load(Ordering::Acquire);
                if id >= target && previous < target && self.got.fetch_add(1, Ordering::AcqRel) + 1 == self.n
                {
                    *self.done_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    self.done.notify_one();
                }
                *last = Some(previous.max(id));
            }
        }
    }

    fn fail(&self, error: String) {
        if self.closing.load(Ordering::Acquire) {
            return;
        }
        self.errors.fetch_add(1, Ordering::AcqRel);
        self.first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(error);
        // Wake whoever waits, so a failure is reported at once.
        self.all_ready.notify_one();
        self.done.notify_one();
    }

    fn check(&self) -> Fallible<()> {
        let errors = self.errors.load(Ordering::Acquire);
        if errors == 0 {
            return Ok(());
        }
        let first = self.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default();
        fail(format!("{errors} of {} streams failed; first: {first}", self.n))
    }
}

/// N open event streams.
pub struct Streams {
    tracker: Arc<Tracker>,
    tasks: Vec<JoinHandle<()>>,
    pub opened_in: Duration,
}

impl Streams {
    /// Opens `n` streams, stream `i` on `paths[i % paths.len()]`, and
    /// waits until each has its opening event.
    pub async fn open(addr: SocketAddr, paths: &[String], n: usize) -> Fallible<Streams> {
        let targets: Vec<(SocketAddr, String)> = paths.iter().map(|p| (addr, p.clone())).collect();
        Self::open_at(&targets, n).await
    }

    /// Like [`Self::open`], but stream `i` goes to the (server, path) in
    /// `targets[i % targets.len()]`: one tracker over several servers.
    pub async fn open_at(targets: &[(SocketAddr, String)], n: usize) -> Fallible<Streams> {
        let tracker = Arc::new(Tracker { n, target: AtomicU64::new(u64::MAX), ..Tracker::default() });
        let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
        let requests: Vec<(SocketAddr, Arc<Vec<u8>>)> = targets
            .iter()
            .map(|(addr, p)| (*addr, Arc::new(get(addr, p, "Accept: text/event-stream\r\n"))))
            .collect();
        if requests.is_empty() {
            return fail("no stream path");
        }
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let (addr, request) = &requests[i % requests.len()];
            let (addr, request) = (*addr, Arc::clone(request));
            let (tracker, gate) = (Arc::clone(&tracker), Arc::clone(&gate));
            tasks.push(tokio::spawn(async move {
                if let Err(e) = read_stream(addr, &request, &tracker, &gate).await {
                    tracker.fail(e.to_string());
                }
            }));
        }
        let mut streams = Streams { tracker, tasks, opened_in: Duration::ZERO };
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            while streams.tracker.ready.load(Ordering::Acquire) < n
                && streams.tracker.errors.load(Ordering::Acquire) == 0
            {
                streams.tracker.all_ready.notified().await;
            }
        })
        .await;
        streams.tracker.check()?;
        if waited.is_err() {
            let ready = streams.tracker.ready.load(Ordering::Acquire);
            return fail(format!("only {ready} of {n} streams opened within 60 s"));
        }
        streams.opened_in = started.elapsed();
        Ok(streams)
    }

    /// The id every stream opened with (the session's version).
    pub fn initial_id(&self) -> u64 {
        self.tracker.initial_id.load(Ordering::Acquire)
    }

    /// Arms the wait for `id`; [`Self::delivered`] then waits for it.
    fn arm(&self, id: u64) {
        self.tracker.got.store(0, Ordering::Release);
        *self.tracker.done_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.tracker.target.store(id, Ordering::Release);
    }

    /// When the last stream got the armed id.
    async fn delivered(&self) -> Fallible<Instant> {
        let waited = tokio::time::timeout(DELIVERY_TIMEOUT, async {
            loop {
                if let Some(at) = *self.tracker.done_at.lock().unwrap_or_else(|e| e.into_inner()) {
                    return at;
                }
                if self.tracker.errors.load(Ordering::Acquire) > 0 {
                    return Instant::now();
                }
                self.tracker.done.notified().await;
            }
        })
        .await;
        self.tracker.check()?;
        match waited {
            Ok(at) => Ok(at),
            Err(_) => {
                let (got, n) = (self.tracker.got.load(Ordering::Acquire), self.tracker.n);
                let id = self.tracker.target.load(Ordering::Acquire);
                fail(format!("only {got} of {n} views received change {id} within {DELIVERY_TIMEOUT:?}"))
            }
        }
    }

    /// Closes every stream.
    pub async fn close(self) {
        self.tracker.closing.store(true, Ordering::Release);
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn read_stream(addr: SocketAddr, request: &[u8], tracker: &Tracker, gate: &Semaphore) -> Fallible<()> {
    let permit = gate.acquire().await?;
    let mut conn = Conn::connect_with_buffer(addr, 4096).await.map_err(|e| format!("connect: {e}"))?;
    conn.send(request).await?;
    let head = conn.read_head().await?;
    if head.status != 200 || !head.chunked {
        return fail(format!("the stream answered {} (chunked: {})", head.status, head.chunked));
    }
    drop(permit);
    let mut scan = SseIds::default();
    let mut last = None;
    loop {
        let more =
            conn.chunk(&mut |data: &[u8]| scan.feed(data, &mut |id| tracker.on_id(&mut last, id))).await?;
        if !more {
            return fail("the server ended the stream");
        }
    }
}

/// Which server, and where its streams and changes go.
pub enum Channel {
    /// `/s/{sid}/events`, changed through `/s/{sid}/widgets/lbs`.
    App { sid: String },
    /// `/events/{topic}`, changed through `/publish/{topic}`.
    Baseline { topic: String },
}

impl Channel {
    pub fn events_path(&self) -> String {
        match self {
            Self::App { sid } => format!("/s/{sid}/events"),
            Self::Baseline { topic } => format!("/events/{topic}"),
        }
    }
}

/// One round on one side: `n` views, then changes one at a time.
pub struct Round {
    /// The latencies, sorted, the warm-up change left out.
    pub sorted: Vec<Duration>,
    /// Changes made, the warm-up one included: what the CPU went on.
    pub changes: usize,
    /// CPU seconds the views' server used over all the changes.
    pub server_cpu: f64,
    /// CPU seconds this load generator used over all the changes.
    pub client_cpu: f64,
    /// How long the views took to open.
    pub opened_in: Duration,
}

/// `n` views of `channel` on `views`, then one change to warm up and
/// `plan.fanout_changes` more, made on `writer`; the views are closed
/// after. A failed change fails with `label` and `n`.
pub async fn round(
    views: &Server,
    writer: SocketAddr,
    channel: &Channel,
    n: usize,
    plan: &Plan,
    label: impl std::fmt::Debug,
) -> Fallible<Round> {
    let streams = Streams::open(views.addr, &[channel.events_path()], n).await?;
    let opened_in = streams.opened_in;
    let changes = plan.fanout_changes + 1;
    let measured = measure(writer, views.pid, channel, &streams, changes, plan.fanout_spacing).await;
    streams.close().await;
    let measured = measured.map_err(|e| format!("{label:?}, N={n}: {e}"))?;
    let mut latencies = measured.latencies;
    latencies.remove(0);
    Ok(Round {
        sorted: sorted_durations(latencies),
        changes,
        server_cpu: measured.server_cpu,
        client_cpu: measured.client_cpu,
        opened_in,
    })
}

/// Every round's latencies at one view count on two sides, measured in
/// turn, and the per-round ratios of their quantiles, first over second.
#[derive(Default)]
pub struct Series {
    pub first: Vec<Duration>,
    pub second: Vec<Duration>,
    pub p50_ratios: Vec<f64>,
    pub p99_ratios: Vec<f64>,
}

impl Series {
    /// One round's sorted latencies on each side.
    pub fn add_round(&mut self, first: Vec<Duration>, second: Vec<Duration>) {
        let q = |s: &[Duration], p| ms(quantile(s, p).unwrap_or_default());
        self.p50_ratios.push(q(&first, 0.5) / q(&second, 0.5));
        self.p99_ratios.push(q(&first, 0.99) / q(&second, 0.99));
        self.first.extend(first);
        self.second.extend(second);
    }
}

/// What a series of changes took.
pub struct Measured {
    /// Per change: from sending the POST until the last view had it.
    pub latencies: Vec<Duration>,
    /// CPU seconds the server used over the whole series.
    pub server_cpu: f64,
    /// CPU seconds this load generator used over the whole series.
    pub client_cpu: f64,
}

/// Makes `changes` changes one after another, each once every view has
/// the one before, `spacing` apart.
pub async fn measure(
    addr: SocketAddr,
    server_pid: u32,
    channel: &Channel,
    streams: &Streams,
    changes: usize,
    spacing: Duration,
) -> Fallible<Measured> {
    let mut conn = Conn::connect(addr).await?;
    let server_before = cpu_seconds(server_pid)?;
    let client_before = cpu_seconds(std::process::id())?;
    let mut expected = streams.initial_id();
    let mut latencies = Vec::with_capacity(changes);
    for i in 0..changes {
        expected += 1;
        let request = match channel {
            Channel::App { sid } => {
                post_form(&addr, &format!("/s/{sid}/widgets/lbs"), &format!("lbs={}", 1000 + i), "")
            }
            Channel::Baseline { topic } => post_form(&addr, &format!("/publish/{topic}"), "", ""),
        };
        streams.arm(expected);
        let sent = Instant::now();
        let response = conn.roundtrip(&request, true).await?;
        if response.head.status != 200 {
            return fail(format!("the change answered {}: {}", response.head.status, response.text()));
        }
        let version = match channel {
            Channel::App { .. } => response
                .text()
                .split("data-version=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .and_then(|v| v.parse::<u64>().ok()),
            Channel::Baseline { .. } => response.text().trim().parse().ok(),
        };
        if version != Some(expected) {
            return fail(format!("the change made version {version:?}, expected {expected}"));
        }
        let at = streams.delivered().await?;
        latencies.push(at.saturating_duration_since(sent));
        tokio::time::sleep(spacing).await;
    }
    Ok(Measured {
        latencies,
        server_cpu: cpu_seconds(server_pid)? - server_before,
        client_cpu: cpu_seconds(std::process::id())? - client_before,
    })
}
