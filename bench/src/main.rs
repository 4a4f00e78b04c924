//! The benchmark harness: the app beside a bare-axum baseline, measured in
//! the same run, in alternating rounds, reported as medians and ratios.
//!
//! ```text
//! cargo run --release -p loadgen            # the full run, a few minutes
//! cargo run -p loadgen -- --smoke           # CI: every section once, small N
//! cargo run --release -p loadgen -- --only soak --soak 10m   # the soak alone
//! ```
//!
//! Prints a markdown table on stdout (progress on stderr) and exits
//! non-zero if any request failed or any view missed a change. See
//! BENCHMARKS.md for what each figure means and the latest results.
//!
//! Options: `--smoke`, `--app-bin PATH` (use this binary, don't build),
//! `--only change,instructions,fanout,memory,start,durable,browser,tabs,redis,soak,criterion`, `--no-browser`,
//! `--no-criterion`, `--no-instructions` (skip callgrind), `--no-diagnostics`,
//! `--soak DURATION` (the soak's length: 10 min unless given, 3 s in smoke
//! mode; the full run leaves the soak out unless this or `--only soak` is given).
//! `--conns N` (connections in the change round trip: 32 unless given).
//! `--tabs N,M` (tab counts in the tabs section: 10 unless given).
//! `--tabs-before-bin PATH` (the tabs section also measures that build of
//! the app, for a before/after). With `LOADGEN_UNPINNED=1` in the
//! environment nothing is pinned to a CPU.

mod baseline;
mod browser;
mod change;
mod client;
mod durable;
mod fanout;
mod instructions;
mod memory;
mod micro;
mod procs;
mod redis;
mod report;
mod soak;
mod start;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::change::{Target, VIEW, change_paths, create_sessions, median_over, median_ratio};
use crate::client::{Conn, get, post_form};
use crate::fanout::Channel;
use crate::procs::{Kind, Server, Spec};
use crate::report::{Report, Verdict};
use crate::stats::{fmt_bytes, fmt_ms, fmt_ratio, median, ms, quantile, sorted_durations, thousands};

pub type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub fn fail<T>(message: impl Into<String>) -> Fallible<T> {
    Err(message.into().into())
}

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// Limits lifted for these measurements, where one load generator is one
/// client with thousands of streams and sessions (the defaults: 10,000
/// streams in total, 64 per session, 100 readers per session, 256 per
/// client, 15,000 connections, 60 new sessions a minute per client).
const APP_ENV: [(&str, &str); 6] = [
    ("MAX_STREAMS", "100000"),
    ("MAX_STREAMS_PER_SESSION", "100000"),
    ("MAX_READERS_PER_SESSION", "100000"),
    ("MAX_STREAMS_PER_CLIENT", "100000"),
    ("MAX_CONNECTIONS", "100000"),
    ("NEW_SESSIONS_PER_MINUTE", "10000000"),
];

struct Options {
    smoke: bool,
    app_bin: Option<PathBuf>,
    /// Another build, measured beside this one in the tabs section.
    tabs_before_bin: Option<PathBuf>,
    only: Option<Vec<String>>,
    browser: bool,
    criterion: bool,
    instructions: bool,
    diagnostics: bool,
    /// The soak's length, when it runs.
    soak: Option<Duration>,
    /// Connections in the change round trip, when not the plan's.
    conns: Option<usize>,
    /// Tab counts for the tabs section, when not [`TABS`].
    tabs: Option<Vec<usize>>,
}

/// The soak's length when `--soak` does not say.
const SOAK: Duration = Duration::from_secs(600);

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let smoke = args.iter().any(|a| a == "--smoke");
        let mut options = Options {
            smoke,
            app_bin: None,
            tabs_before_bin: None,
            only: None,
            browser: !smoke,
            criterion: !smoke,
            instructions: !smoke,
            diagnostics: !smoke,
            soak: smoke.then_some(Duration::from_secs(3)),
            conns: None,
            tabs: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--smoke" => {}
                "--app-bin" => options.app_bin = Some(args.next().ok_or("--app-bin needs a path")?.into()),
                "--tabs-before-bin" => {
                    options.tabs_before_bin =
                        Some(args.next().ok_or("--tabs-before-bin needs a path")?.into())
                }
                "--only" => {
                    let list = args.next().ok_or("--only needs a list")?;
                    options.only = Some(list.split(',').map(str::to_owned).collect());
                }
                "--browser" => options.browser = true,
                "--no-browser" => options.browser = false,
                "--criterion" => options.criterion = true,
                "--no-criterion" => options.criterion = false,
                "--no-instructions" => options.instructions = false,
                "--no-diagnostics" => options.diagnostics = false,
                "--soak" => {
                    let text = args.next().ok_or("--soak needs a duration, such as 10m")?;
                    let length =
                        humantime::parse_duration(text).map_err(|e| format!("--soak {text}: {e}"))?;
                    options.soak = Some(length);
                }
                "--conns" => {
                    let text = args.next().ok_or("--conns needs a number, such as 256")?;
                    let conns = text.parse().ok().filter(|&n: &usize| n > 0);
                    options.conns = Some(conns.ok_or(format!("--conns {text}: not a positive number"))?);
                }
                "--tabs" => {
                    let text = args.next().ok_or("--tabs needs a list, such as 10,50")?;
                    let counts: Option<Vec<usize>> =
                        text.split(',').map(|n| n.trim().parse().ok().filter(|&n: &usize| n > 0)).collect();
                    options.tabs =
                        Some(counts.ok_or(format!("--tabs {text}: not a list of positive numbers"))?);
                }
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if options.soak.is_none()
            && options.only.as_ref().is_some_and(|only| only.iter().any(|s| s == "soak"))
        {
            options.soak = Some(SOAK);
        }
        Ok(options)
    }

    fn wants(&self, section: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.iter().any(|s| s == section))
    }
}

/// How big each measurement is.
struct Plan {
    sessions: usize,
    conns: usize,
    duration: Duration,
    warmup: Duration,
    rounds: usize,
    fanout_ns: Vec<usize>,
    fanout_changes: usize,
    fanout_rounds: usize,
    fanout_spacing: Duration,
    mem_sessions: usize,
    mem_streams: usize,
    mem_runs: usize,
    mem_settle: Duration,
    cold_starts: usize,
    browser_tries: usize,
}

impl Plan {
    fn new(smoke: bool) -> Self {
        if smoke {
            Plan {
                sessions: 50,
                conns: 4,
                duration: Duration::from_millis(400),
                warmup: Duration::from_millis(100),
                rounds: 1,
                fanout_ns: vec![1, 100],
                fanout_changes: 5,
                fanout_rounds: 1,
                fanout_spacing: Duration::from_millis(5),
                mem_sessions: 2_000,
                mem_streams: 200,
                mem_runs: 1,
                mem_settle: Duration::from_millis(50),
                cold_starts: 2,
                browser_tries: 5,
            }
        } else {
            Plan {
                sessions: 1_000,
                conns: 32,
                duration: Duration::from_secs(5),
                warmup: Duration::from_secs(1),
                rounds: 3,
                fanout_ns: vec![1, 100, 1_000, 10_000],
                fanout_changes: 30,
                fanout_rounds: 2,
                fanout_spacing: Duration::from_millis(20),
                mem_sessions: 100_000,
                mem_streams: 10_000,
                mem_runs: 2,
                mem_settle: Duration::from_millis(300),
                cold_starts: 10,
                browser_tries: 20,
            }
        }
    }

    /// The durable section's plan: this one's load, and its own store size.
    fn durable(&self, smoke: bool) -> durable::Plan {
        durable::Plan {
            sessions: self.sessions,
            conns: self.conns,
            duration: self.duration,
            warmup: self.warmup,
            rounds: self.rounds,
            stored: if smoke { 2_000 } else { 100_000 },
            starts: self.cold_starts,
        }
    }
}

/// Starts the servers under test.
pub struct Harness {
    app_bin: PathBuf,
    self_exe: PathBuf,
    scratch: PathBuf,
    change_bytes: usize,
    event_bytes: usize,
    spawned: AtomicUsize,
}

impl Harness {
    fn log(&self, what: &str) -> PathBuf {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        self.scratch.join(format!("{n:03}-{what}.log"))
    }

    /// The app (release binary; debug in smoke mode) with `APP_ENV` and
    /// `extra` settings, all others at their defaults.
    pub fn app_spec(&self, extra: &[(&str, &str)]) -> Spec {
        Spec {
            kind: Kind::App,
            program: self.app_bin.clone(),
            args: Vec::new(),
            env: APP_ENV.iter().chain(extra).map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            log: self.log("app"),
        }
    }

    /// This program again, as the bare axum baseline, its responses sized
    /// like the app's.
    pub fn baseline_spec(&self) -> Spec {
        Spec {
            kind: Kind::Baseline,
            program: self.self_exe.clone(),
            args: vec![
                "--serve-baseline".to_owned(),
                "--change-bytes".to_owned(),
                self.change_bytes.to_string(),
                "--event-bytes".to_owned(),
                self.event_bytes.to_string(),
            ],
            env: Vec::new(),
            log: self.log("baseline"),
        }
    }

    pub async fn start_app(&self, extra: &[(&str, &str)]) -> Fallible<Server> {
        Server::start(&self.app_spec(extra)).await
    }

    pub async fn start_baseline(&self) -> Fallible<Server> {
        Server::start(&self.baseline_spec()).await
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--serve-baseline") {
        return baseline::main(&args[1..]);
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("loadgen: {why}");
            }
            eprintln!(
                "usage: loadgen [--smoke] [--app-bin PATH] [--only change,instructions,fanout,memory,start,durable,browser,tabs,redis,soak,criterion] \
                 [--tabs-before-bin PATH] [--no-browser] [--no-criterion] [--no-instructions] [--no-diagnostics] [--soak DURATION]"
            );
            return ExitCode::from(2);
        }
    };
    // Before any thread exists, so every thread inherits both.
    let pinning = procs::pin_self();
    let nofile = procs::raise_nofile();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let report = runtime.block_on(run(&options, &pinning, nofile));
    eprintln!("loadgen: finished in {:.1} s", started.elapsed().as_secs_f64());
    if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn run(options: &Options, pinning: &str, nofile: u64) -> Report {
    let mut report = Report::default();
    let mut plan = Plan::new(options.smoke);
    if let Some(conns) = options.conns {
        plan.conns = conns;
    }
    // The app's crate: the workspace root, above this one.
    let manifest_dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default();
    let scratch = std::env::temp_dir().join(format!("loadgen-{}", std::process::id()));
    let header_line =
        format!("## weight-converter: {} benchmark run", if options.smoke { "smoke" } else { "full" });
    let mut header = vec![header_line, format!("\nApp source: {}.", app_source(options, &manifest_dir))];
    match set_up(options, &manifest_dir, &scratch).await {
        Ok(harness) => {
            header.extend(machine_lines(&harness, pinning, nofile, &plan));
            run_sections(&mut report, &harness, &plan, options, nofile, &manifest_dir).await;
        }
        Err((step, e)) => report.failure(step, e),
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!("{}", report.render(&header));
    report
}

fn app_source(options: &Options, manifest_dir: &Path) -> String {
    match &options.app_bin {
        Some(path) => format!("the given binary {}", path.display()),
        None => format!("built from {} at {}", manifest_dir.display(), git_state(manifest_dir)),
    }
}

/// The harness, on a private copy of the app and with the baseline sized
/// like it; on failure, the step that failed and why.
async fn set_up(
    options: &Options,
    manifest_dir: &Path,
    scratch: &Path,
) -> Result<Harness, (&'static str, Box<dyn std::error::Error + Send + Sync>)> {
    let mut harness = new_harness(options, manifest_dir, scratch).await.map_err(|e| ("setup", e))?;
    (harness.change_bytes, harness.event_bytes) =
        probe_sizes(&harness).await.map_err(|e| ("probing the app's response sizes", e))?;
    Ok(harness)
}

async fn new_harness(options: &Options, manifest_dir: &Path, scratch: &Path) -> Fallible<Harness> {
    std::fs::create_dir_all(scratch)?;
    let built = match &options.app_bin {
        Some(path) => path.clone(),
        None => build_app(manifest_dir, !options.smoke).await?,
    };
    // Run a private copy: others may rebuild target/ during the run.
    let app_bin = scratch.join("weight-converter");
    std::fs::copy(&built, &app_bin).map_err(|e| format!("copy {}: {e}", built.display()))?;
    Ok(Harness {
        app_bin,
        self_exe: std::env::current_exe()?,
        scratch: scratch.to_path_buf(),
        change_bytes: 0,
        event_bytes: 0,
        spawned: AtomicUsize::new(0),
    })
}

/// Each section the options ask for, in the table's order.
async fn run_sections(
    report: &mut Report,
    harness: &Harness,
    plan: &Plan,
    options: &Options,
    nofile: u64,
    manifest_dir: &Path,
) {
    if options.wants("change") {
        section(report, "change round trip", change_section(harness, plan, options)).await;
    }
    if options.wants("instructions") && options.instructions {
        section(report, "instructions per change", instructions_section(harness)).await;
    }
    if options.wants("fanout") {
        section(report, "fan-out", fanout_section(harness, plan, nofile)).await;
    }
    if options.wants("memory") {
        section(report, "memory", memory_section(harness, plan, nofile)).await;
    }
    if options.wants("start") {
        section(report, "start and first load", start_section(harness, plan)).await;
    }
    if options.wants("durable") {
        let durable = plan.durable(options.smoke);
        section(report, "durable", durable::section(harness, &durable)).await;
    }
    if options.wants("browser") || options.wants("start") && options.only.is_none() {
        if options.browser {
            section(report, "browser", browser_section(harness, plan)).await;
        } else {
            report.row(
                "4c",
                "Browser: Enter in Pounds → Kilograms shows it (median)",
                "–",
                "–",
                "–",
                "≤ 5 ms",
                Verdict::Skipped,
            );
        }
    }
    if options.wants("tabs") && options.browser {
        let counts = options.tabs.clone().unwrap_or_else(|| vec![TABS]);
        section(report, "tabs", tabs_section(harness, options.tabs_before_bin.as_deref(), &counts)).await;
    }
    if options.wants("redis") {
        let setup = redis::Setup { smoke: options.smoke, diagnostics: options.diagnostics, nofile };
        section(report, "redis", redis::section(harness, plan, setup)).await;
    }
    if let Some(length) = options.soak.filter(|_| options.wants("soak")) {
        section(report, "soak", soak_section(harness, length)).await;
    }
    if options.wants("criterion") && options.criterion {
        section(report, "criterion micro-benchmarks", criterion_section(manifest_dir)).await;
    }
}

/// Runs one section; its failure is recorded and the run goes on.
async fn section(report: &mut Report, name: &str, work: impl Future<Output = Fallible<Report>>) {
    eprintln!("loadgen: {name}…");
    let started = Instant::now();
    match work.await {
        Ok(part) => {
            report.rows.extend(part.rows);
            report.details.extend(part.details);
            report.failures.extend(part.failures);
        }
        Err(e) => report.failure(name, e),
    }
    eprintln!("loadgen: {name} took {:.1} s", started.elapsed().as_secs_f64());
}

/// `git describe --always --dirty` of the tree, or "an unknown commit".
fn git_state(dir: &Path) -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| format!("commit {}", String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| "an unknown commit".to_owned())
}

/// Builds the app binary (a no-op when it is up to date) and returns its path.
async fn build_app(manifest_dir: &Path, release: bool) -> Fallible<PathBuf> {
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| manifest_dir.join("target"), PathBuf::from);
    let bin = target_dir.join(if release { "release" } else { "debug" }).join("weight-converter");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Build on both CPUs, whatever this process is pinned to.
    let mut command = match procs::taskset() {
        Some(taskset) => {
            let mut c = tokio::process::Command::new(taskset);
            c.args(["-c", "0,1"]).arg(cargo);
            c
        }
        None => tokio::process::Command::new(cargo),
    };
    command.current_dir(manifest_dir).args(["build", "--quiet", "--bin", "weight-converter"]);
    if release {
        command.arg("--release");
    }
    match command.status().await {
        Ok(status) if status.success() => {}
        Ok(status) if bin.is_file() => {
            eprintln!("loadgen: cargo build exited with {status}; using {}", bin.display())
        }
        Ok(status) => return fail(format!("cargo build exited with {status}")),
        Err(e) if bin.is_file() => eprintln!("loadgen: cannot run cargo ({e}); using {}", bin.display()),
        Err(e) => return fail(format!("cannot run cargo to build the app: {e}")),
    }
    if !bin.is_file() {
        return fail(format!("{} does not exist", bin.display()));
    }
    Ok(bin)
}

/// The byte sizes of the app's real change response and event, which the
/// baseline then mimics.
async fn probe_sizes(h: &Harness) -> Fallible<(usize, usize)> {
    let app = h.start_app(&[]).await?;
    app.healthy(Duration::from_secs(10)).await?;
    let sid = create_sessions(app.addr, 1, 1).await?.remove(0);
    let mut conn = Conn::connect(app.addr).await?;
    let body = format!("lbs=1234.56&view={VIEW}");
    let response =
        conn.roundtrip(&post_form(&app.addr, &format!("/s/{sid}/widgets/lbs"), &body, ""), true).await?;
    if response.head.status != 200 || response.body.is_empty() {
        return fail(format!("the change answered {}: {}", response.head.status, response.text()));
    }
    let change_bytes = response.body.len();
    let mut stream = Conn::connect(app.addr).await?;
    stream.send(&get(&app.addr, &format!("/s/{sid}/events"), "")).await?;
    let head = stream.read_head().await?;
    if head.status != 200 {
        return fail(format!("the event stream answered {}", head.status));
    }
    let mut event_bytes = 0;
    while event_bytes == 0 {
        let mut chunk = Vec::new();
        if !stream.chunk(&mut |d: &[u8]| chunk.extend_from_slice(d)).await? {
            return fail("the event stream ended before its first event");
        }
        if chunk.starts_with(b"event: state") {
            event_bytes = chunk.len();
        }
    }
    drop(stream);
    app.stop().await;
    Ok((change_bytes, event_bytes))
}

fn machine_lines(h: &Harness, pinning: &str, nofile: u64, plan: &Plan) -> Vec<String> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?");
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cores = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let _ = cpus;
    vec![
        String::new(),
        format!(
            "Machine: {cores} CPUs ({}), Linux {}. {pinning}. Open files: {nofile}.",
            model.trim(),
            read("/proc/sys/kernel/osrelease").trim()
        ),
        format!(
            "App: `{}` (a copy) with the stream, connection and new-session limits lifted, other settings at their defaults \
             (RUST_LOG=info: one log line per request, to a file). Baseline: bare axum 0.8 in this example \
             (`--serve-baseline`), change fragment {} B, event {} B, the app's sizes.",
            h.app_bin.display(),
            h.change_bytes,
            h.event_bytes
        ),
        format!(
            "Change round trip: {} sessions, {} connections, {} s rounds, {} rounds each, alternating. \
             Fan-out: {} changes per round, {} rounds each, alternating; a fresh session per round.",
            plan.sessions,
            plan.conns,
            plan.duration.as_secs_f64(),
            plan.rounds,
            plan.fanout_changes,
            plan.fanout_rounds
        ),
    ]
}

// ------------------------------------------------------------------ 1. change

struct Contender {
    target: Target,
    results: Vec<change::RoundResult>,
}

impl Contender {
    fn on(name: &str, server: &Server, paths: Arc<Vec<String>>, extra_headers: &str) -> Self {
        let target = Target {
            name: name.into(),
            addr: server.addr,
            pid: server.pid,
            paths,
            extra_headers: extra_headers.into(),
        };
        Contender { target, results: Vec::new() }
    }
}

async fn change_section(h: &Harness, plan: &Plan, options: &Options) -> Fallible<Report> {
    let mut report = Report::default();
    let app = h.start_app(&[]).await?;
    let base = h.start_baseline().await?;
    app.healthy(Duration::from_secs(10)).await?;
    base.healthy(Duration::from_secs(10)).await?;
    let app_paths = change_paths(&create_sessions(app.addr, plan.sessions, 16).await?);
    let mut contenders = vec![
        Contender::on("app", &app, Arc::clone(&app_paths), ""),
        Contender::on("baseline", &base, Arc::new(vec!["/change".into()]), ""),
    ];
    let quiet = if options.diagnostics {
        Some(add_diagnostics(h, plan, &app, &app_paths, &mut contenders).await?)
    } else {
        None
    };
    for (i, c) in contenders.iter().enumerate() {
        change::round(&c.target, plan.conns, plan.warmup, 1000 + i as u64).await?;
    }
    let rss_before = app.rss_bytes()? as f64;
    measure_change_rounds(&mut contenders, plan, &mut report).await?;
    report.detail(rss_under_load(&app, rss_before, &contenders).await?);
    change_rows(&mut report, plan, &contenders);
    if let Some(quiet) = quiet {
        quiet.stop().await;
    }
    app.stop().await;
    base.stop().await;
    Ok(report)
}

/// Diagnostics: where the app's time goes. The same app with a browser's
/// Accept-Encoding, and a second app logging warnings only, which is
/// returned to be stopped after the rounds.
async fn add_diagnostics(
    h: &Harness,
    plan: &Plan,
    app: &Server,
    app_paths: &Arc<Vec<String>>,
    contenders: &mut Vec<Contender>,
) -> Fallible<Server> {
    let browser_encoding = "Accept-Encoding: gzip, deflate, br, zstd\r\n";
    let name = "app, browser's Accept-Encoding";
    contenders.push(Contender::on(name, app, Arc::clone(app_paths), browser_encoding));
    let quiet = h.start_app(&[("RUST_LOG", "warn")]).await?;
    quiet.healthy(Duration::from_secs(10)).await?;
    let sids = create_sessions(quiet.addr, plan.sessions, 16).await?;
    contenders.push(Contender::on("app, RUST_LOG=warn", &quiet, change_paths(&sids), ""));
    Ok(quiet)
}

/// The measured rounds, alternating between the contenders.
async fn measure_change_rounds(
    contenders: &mut [Contender],
    plan: &Plan,
    report: &mut Report,
) -> Fallible<()> {
    for round in 0..plan.rounds {
        for (i, c) in contenders.iter_mut().enumerate() {
            let result = change::round(&c.target, plan.conns, plan.duration, (round * 10 + i) as u64).await?;
            report.detail(format!(
                "change round {}: {}: {} req/s, p50 {}, p99 {}, server CPU {:.1} µs/change ({:.1} in the kernel; {} changes)",
                round + 1,
                c.target.name,
                thousands(result.rps()),
                fmt_ms(ms(result.p50())),
                fmt_ms(ms(result.p99())),
                result.cpu_us_per_change(),
                result.system_us_per_change(),
                thousands(result.requests as f64)
            ));
            c.results.push(result);
        }
    }
    Ok(())
}

/// Memory under load: does the app keep anything per request?
async fn rss_under_load(app: &Server, rss_before: f64, contenders: &[Contender]) -> Fallible<String> {
    let rss_after = app.rss_bytes()? as f64;
    let changes: u64 = contenders
        .iter()
        .filter(|c| c.target.pid == app.pid)
        .flat_map(|c| &c.results)
        .map(|r| r.requests)
        .sum();
    app_open_streams(app.addr).await?; // a scrape of /metrics
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(format!(
        "app RSS {} before the measured rounds, {} after {} more changes ({:.1} B per change), {} after one GET /metrics",
        fmt_bytes(rss_before),
        fmt_bytes(rss_after),
        thousands(changes as f64),
        (rss_after - rss_before) / changes.max(1) as f64,
        fmt_bytes(app.rss_bytes()? as f64)
    ))
}

fn rps(r: &change::RoundResult) -> f64 {
    r.rps()
}

fn cpu_per_change(r: &change::RoundResult) -> f64 {
    r.cpu_us_per_change()
}

/// The app against the baseline, then each diagnostic against the baseline.
fn change_rows(report: &mut Report, plan: &Plan, contenders: &[Contender]) {
    let (a, b) = (&contenders[0].results, &contenders[1].results);
    let p50 = |r: &change::RoundResult| ms(r.p50());
    let p99 = |r: &change::RoundResult| ms(r.p99());
    let label = format!("{} conns, {} sessions", plan.conns, thousands(plan.sessions as f64));
    let r = median_ratio(a, b, &rps);
    report.row(
        "1",
        format!("Change round trip: throughput ({label})"),
        format!("{} req/s", thousands(median_over(a, &rps).unwrap_or(0.0))),
        format!("{} req/s", thousands(median_over(b, &rps).unwrap_or(0.0))),
        fmt_ratio(r),
        "≥ 0.85×",
        Verdict::from_goal(r.map(|r| r >= 0.85)),
    );
    for (name, f) in [("p50", &p50 as &dyn Fn(&change::RoundResult) -> f64), ("p99", &p99)] {
        let r = median_ratio(a, b, f);
        report.row(
            "1",
            format!("Change round trip: {name} latency"),
            fmt_ms(median_over(a, f).unwrap_or(0.0)),
            fmt_ms(median_over(b, f).unwrap_or(0.0)),
            fmt_ratio(r),
            "≤ 1.25×",
            Verdict::from_goal(r.map(|r| r <= 1.25)),
        );
    }
    report.row(
        "1",
        "Change round trip: server CPU per change",
        format!("{:.1} µs", median_over(a, &cpu_per_change).unwrap_or(0.0)),
        format!("{:.1} µs", median_over(b, &cpu_per_change).unwrap_or(0.0)),
        fmt_ratio(median_ratio(a, b, &cpu_per_change)),
        "–",
        Verdict::Info,
    );
    for c in &contenders[2..] {
        diagnostic_row(report, c, b);
    }
}

fn diagnostic_row(report: &mut Report, diagnostic: &Contender, baseline: &[change::RoundResult]) {
    let d = &diagnostic.results;
    report.row(
        "1d",
        format!("Diagnostic, {}: throughput · CPU per change", diagnostic.target.name),
        format!(
            "{} req/s · {:.1} µs",
            thousands(median_over(d, &rps).unwrap_or(0.0)),
            median_over(d, &cpu_per_change).unwrap_or(0.0)
        ),
        "",
        format!(
            "{} · {}",
            fmt_ratio(median_ratio(d, baseline, &rps)),
            fmt_ratio(median_ratio(d, baseline, &cpu_per_change))
        ),
        "–",
        Verdict::Info,
    );
}

// ------------------------------------------------------------------ 2. fan-out

async fn app_open_streams(addr: std::net::SocketAddr) -> Fallible<u64> {
    let mut conn = Conn::connect(addr).await?;
    let metrics = conn.roundtrip(&get(&addr, "/metrics", ""), true).await?.text();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("weight_converter_open_streams "))
        .ok_or("no open_streams gauge")?;
    Ok(line.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()).ok_or("bad gauge")? as u64)
}

async fn fanout_section(h: &Harness, plan: &Plan, nofile: u64) -> Fallible<Report> {
    let mut report = Report::default();
    let mut app = h.start_app(&[]).await?;
    let mut base = h.start_baseline().await?;
    app.healthy(Duration::from_secs(10)).await?;
    base.healthy(Duration::from_secs(10)).await?;
    for &n in &plan.fanout_ns {
        if (n as u64) + 256 > nofile {
            report.failure(&format!("fan-out N={n}"), format!("the open-file limit {nofile} is too low"));
            continue;
        }
        let mut series = fanout::Series::default();
        for round in 0..plan.fanout_rounds {
            let on_app = fanout_once(&mut app, n, plan, round, &mut report).await?;
            let on_base = fanout_once(&mut base, n, plan, round, &mut report).await?;
            series.add_round(on_app, on_base);
        }
        fanout_rows(&mut report, n, series);
    }
    app.stop().await;
    base.stop().await;
    Ok(report)
}

/// `n` views of a fresh channel on `server`, then changes one at a time;
/// returns the sorted latencies, the warm-up change left out.
async fn fanout_once(
    server: &mut Server,
    n: usize,
    plan: &Plan,
    round: usize,
    report: &mut Report,
) -> Fallible<Vec<Duration>> {
    let channel = match server.kind {
        Kind::App => Channel::App { sid: create_sessions(server.addr, 1, 1).await?.remove(0) },
        Kind::Baseline => Channel::Baseline { topic: format!("n{n}r{round}") },
    };
    let measured = fanout::round(server, server.addr, &channel, n, plan, server.kind).await?;
    server.check_alive()?;
    if server.kind == Kind::App {
        app_streams_closed(server, n, report).await?;
    }
    let cpu = fanout_cpu(&measured, n);
    report.detail(format!(
        "fan-out N={n} round {}: {:?}: p50 {}, p99 {}, max {}; {cpu}; {} opened in {}",
        round + 1,
        server.kind,
        fmt_ms(ms(quantile(&measured.sorted, 0.5).unwrap_or_default())),
        fmt_ms(ms(quantile(&measured.sorted, 0.99).unwrap_or_default())),
        fmt_ms(ms(*measured.sorted.last().unwrap_or(&Duration::ZERO))),
        if n == 1 { "1 stream".to_owned() } else { format!("{} streams", thousands(n as f64)) },
        fmt_ms(ms(measured.opened_in))
    ));
    Ok(measured.sorted)
}

/// Server and load-generator CPU per change to `n` views, or that there
/// was too little to count.
fn fanout_cpu(measured: &fanout::Round, n: usize) -> String {
    let per_change = |cpu: f64| cpu * 1e6 / measured.changes as f64;
    let (server_us, client_us) = (per_change(measured.server_cpu), per_change(measured.client_cpu));
    // /proc counts CPU in 10 ms ticks: too coarse below ~100 ms.
    if measured.server_cpu >= 0.1 {
        format!(
            "CPU per change: server {}, load generator {} ({:.1} µs per view on the server)",
            fmt_ms(server_us / 1e3),
            fmt_ms(client_us / 1e3),
            server_us / n as f64
        )
    } else {
        "CPU too little to count".to_owned()
    }
}

/// The app must notice the closed streams (no leak); if it has not within
/// 10 s, that is recorded and the section goes on.
async fn app_streams_closed(app: &Server, n: usize, report: &mut Report) -> Fallible<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app_open_streams(app.addr).await? > 0 {
        if Instant::now() > deadline {
            let left = app_open_streams(app.addr).await?;
            report
                .failure(&format!("fan-out N={n}"), format!("{left} streams still open 10 s after closing"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The app in the app column, the baseline in the baseline one; a goal
/// for p99 at some view counts only.
fn fanout_rows(report: &mut Report, n: usize, series: fanout::Series) {
    let (app_all, base_all) = (sorted_durations(series.first), sorted_durations(series.second));
    let q = |s: &[Duration], p| ms(quantile(s, p).unwrap_or_default());
    let goal = match n {
        1_000 => Some(5.0),
        10_000 => Some(50.0),
        _ => None,
    };
    report.row(
        "2",
        format!("Fan-out, {}: p50 change → all views", views(n)),
        fmt_ms(q(&app_all, 0.5)),
        fmt_ms(q(&base_all, 0.5)),
        fmt_ratio(median(&series.p50_ratios)),
        "–",
        Verdict::Info,
    );
    let p99 = q(&app_all, 0.99);
    report.row(
        "2",
        format!("Fan-out, {}: p99 change → all views", views(n)),
        fmt_ms(p99),
        fmt_ms(q(&base_all, 0.99)),
        fmt_ratio(median(&series.p99_ratios)),
        goal.map_or_else(|| "–".to_owned(), |g| format!("≤ {g} ms")),
        goal.map_or(Verdict::Info, |g| Verdict::from_goal(Some(p99 <= g))),
    );
}

fn views(n: usize) -> String {
    if n == 1 { "1 view".to_owned() } else { format!("{} views", thousands(n as f64)) }
}

// ------------------------------------------------------------------ 3. memory

async fn soak_section(h: &Harness, length: Duration) -> Fallible<Report> {
    let mut report = Report::default();
    let soaked = soak::run(h, length).await?;
    let (before, early, late, after) = (soaked.idle_before, soaked.early, soaked.late, soaked.idle_after);
    let c = &soaked.counts;
    let n = soak::Counts::get;
    report.detail(format!(
        "soak ({}): {} changes, {} refused, {} to expired sessions, {} sessions made, {} streams opened and dropped, \
         {} connections dropped or abandoned mid-head; RSS peak {}",
        humantime::format_duration(length),
        thousands(n(&c.changes) as f64),
        thousands(n(&c.refused) as f64),
        thousands(n(&c.gone) as f64),
        thousands(n(&c.sessions) as f64),
        thousands(n(&c.streams) as f64),
        thousands(n(&c.dropped) as f64),
        fmt_bytes(soaked.peak_rss as f64),
    ));
    for (label, s) in [
        ("idle before", before),
        ("early in the load", early),
        ("end of the load", late),
        ("idle after", after),
    ] {
        report.detail(format!(
            "soak {label}: RSS {}, {} fds, {} threads, {} tasks, {} connections, {} streams, {} sessions",
            fmt_bytes(s.rss as f64),
            s.fds,
            s.threads,
            s.tasks,
            s.connections,
            s.streams,
            s.sessions
        ));
    }
    let title = format!("Soak ({})", humantime::format_duration(length));
    // Under load the figures move with how many streams happen to be open;
    // a leak shows as growth from early to late beyond that noise.
    let rss_ratio = late.rss as f64 / early.rss as f64;
    report.row(
        "10",
        format!("{title}: RSS under load, early → end"),
        format!("{} → {}", fmt_bytes(early.rss as f64), fmt_bytes(late.rss as f64)),
        "–",
        fmt_ratio(Some(rss_ratio)),
        "≤ 1.25×",
        Verdict::from_goal(Some(rss_ratio <= 1.25)),
    );
    let growth = soaked.peak_rss.saturating_sub(before.rss) as f64;
    let kept = after.rss.saturating_sub(before.rss) as f64;
    report.row(
        "10",
        format!("{title}: RSS idle, before → after (peak {})", fmt_bytes(soaked.peak_rss as f64)),
        format!("{} → {}", fmt_bytes(before.rss as f64), fmt_bytes(after.rss as f64)),
        "–",
        "–",
        "keeps < ½ of the peak's growth",
        Verdict::from_goal(Some(kept < growth / 2.0)),
    );
    for (what, was, is) in [
        ("open fds", before.fds, after.fds),
        ("threads", before.threads, after.threads),
        ("tasks", before.tasks, after.tasks),
        (
            "connections, streams, sessions",
            before.connections + before.streams + before.sessions,
            after.connections + after.streams + after.sessions,
        ),
    ] {
        report.row(
            "10",
            format!("{title}: {what}, idle before → after"),
            format!("{was} → {is}"),
            "–",
            "–",
            "the same",
            Verdict::from_goal(Some(is <= was)),
        );
    }
    Ok(report)
}

async fn memory_section(h: &Harness, plan: &Plan, nofile: u64) -> Fallible<Report> {
    let mut report = Report::default();
    if (plan.mem_streams as u64) + 256 > nofile {
        return fail(format!("the open-file limit {nofile} is too low for {} streams", plan.mem_streams));
    }
    let mut runs = Vec::new();
    for run in 0..plan.mem_runs {
        let f = memory::run(h, plan.mem_sessions, plan.mem_streams, plan.mem_settle).await?;
        report.detail(format!(
            "memory run {}: idle {}, {}/session, {}/stream (distinct sessions), {}/stream (one session); \
             baseline idle {}, {}/stream",
            run + 1,
            fmt_bytes(f.idle),
            fmt_bytes(f.per_session),
            fmt_bytes(f.per_stream_distinct),
            fmt_bytes(f.per_stream_one_session),
            fmt_bytes(f.baseline_idle),
            fmt_bytes(f.baseline_per_stream)
        ));
        runs.push(f);
    }
    let m =
        |f: &dyn Fn(&memory::Figures) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>()).unwrap_or(0.0);
    let idle = m(&|f| f.idle);
    let base_idle = m(&|f| f.baseline_idle);
    report.row(
        "3",
        "Memory: RSS at idle",
        fmt_bytes(idle),
        fmt_bytes(base_idle),
        fmt_ratio(Some(idle / base_idle)),
        "≤ 6 MB",
        Verdict::from_goal(Some(idle <= 6.0 * MIB)),
    );
    let per_session = m(&|f| f.per_session);
    report.row(
        "3",
        format!("Memory: per idle session (at {} sessions)", thousands(plan.mem_sessions as f64)),
        fmt_bytes(per_session),
        "–",
        "–",
        "≤ 1 KB",
        Verdict::from_goal(Some(per_session <= KIB)),
    );
    let base_stream = m(&|f| f.baseline_per_stream);
    for (what, value) in [
        ("each on its own session", m(&|f| f.per_stream_distinct)),
        ("all on one session", m(&|f| f.per_stream_one_session)),
    ] {
        report.row(
            "3",
            format!("Memory: per open stream ({} streams, {what})", thousands(plan.mem_streams as f64)),
            fmt_bytes(value),
            fmt_bytes(base_stream),
            fmt_ratio(Some(value / base_stream)),
            "≤ 16 KB",
            Verdict::from_goal(Some(value <= 16.0 * KIB)),
        );
    }
    Ok(report)
}

// ------------------------------------------------------------------ 4. start, first load, browser

async fn start_section(h: &Harness, plan: &Plan) -> Fallible<Report> {
    let mut report = Report::default();
    let mut app_times = Vec::new();
    let mut base_times = Vec::new();
    let mut ready_lines = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..plan.cold_starts {
        let a = start::cold_start(h, Kind::App).await?;
        let b = start::cold_start(h, Kind::Baseline).await?;
        ratios.push(ms(a.to_healthy) / ms(b.to_healthy));
        app_times.push(ms(a.to_healthy));
        ready_lines.push(ms(a.to_ready_line));
        base_times.push(ms(b.to_healthy));
    }
    let app_ms = median(&app_times).unwrap_or(0.0);
    report.detail(format!(
        "cold start: app {:?} ms (ready line after {} median), baseline {:?} ms",
        app_times.iter().map(|t| (t * 10.0).round() / 10.0).collect::<Vec<_>>(),
        fmt_ms(median(&ready_lines).unwrap_or(0.0)),
        base_times.iter().map(|t| (t * 10.0).round() / 10.0).collect::<Vec<_>>()
    ));
    report.row(
        "4a",
        format!("Cold start: spawn → /healthz 200 (median of {})", plan.cold_starts),
        fmt_ms(app_ms),
        fmt_ms(median(&base_times).unwrap_or(0.0)),
        fmt_ratio(median(&ratios)),
        "≤ 20 ms",
        Verdict::from_goal(Some(app_ms <= 20.0)),
    );

    let app = h.start_app(&[]).await?;
    app.healthy(Duration::from_secs(10)).await?;
    let load = start::first_load(app.addr, "br, gzip").await?;
    let gzip = start::first_load(app.addr, "gzip").await?;
    for r in load.resources.iter().chain(&load.extras) {
        report.detail(format!(
            "first load: {} → {} {}, {} B received (request {} B)",
            redact(&r.path),
            r.status,
            r.encoding,
            thousands(r.wire_bytes as f64),
            r.request_bytes
        ));
    }
    let total = load.total();
    let extras: usize = load.extras.iter().map(|r| r.wire_bytes).sum();
    report.detail(format!(
        "first load: total {} B with br, gzip; {} B with gzip only; the stream worker and the event stream's \
         head and first event add {} B (not counted)",
        thousands(total as f64),
        thousands(gzip.total() as f64),
        thousands(extras as f64)
    ));
    report.row(
        "4b",
        "First load: GET / + page + CSS/JS assets, br/gzip, bytes received (headers included)",
        format!("{} B", thousands(total as f64)),
        "–",
        "–",
        "≤ 22 KB",
        Verdict::from_goal(Some(total as f64 <= 22.0 * KIB)),
    );
    app.stop().await;
    Ok(report)
}

/// A path with its session and view ids replaced by placeholders.
fn redact(path: &str) -> String {
    let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
    let mut out = match path.strip_prefix("/s/") {
        Some(rest) => format!("/s/{{sid}}{}", &rest[rest.find('/').unwrap_or(rest.len())..]),
        None => path.to_owned(),
    };
    if let Some(query) = query {
        out.push_str(if query.starts_with("view=") { "?view={view}" } else { "?…" });
    }
    out
}

/// Tabs in the one browser, unless `--tabs` says: the issue's case of 10
/// tabs of 10 sessions.
const TABS: usize = 10;

/// Server memory per open page, at most (issue 14), in bytes.
const PAGE_MEMORY_GOAL: f64 = 30.0 * 1000.0;

/// One browser with `count` tabs, each a session of its own, for each
/// count: how many go live, what the server holds open for them, and the
/// server memory each page costs; for `before` too.
async fn tabs_section(h: &Harness, before: Option<&Path>, counts: &[usize]) -> Fallible<Report> {
    let mut report = Report::default();
    for &count in counts {
        tabs_measurement(h, before, count, &mut report).await?;
    }
    Ok(report)
}

async fn tabs_measurement(
    h: &Harness,
    before: Option<&Path>,
    tabs: usize,
    report: &mut Report,
) -> Fallible<()> {
    let mut builds = Vec::new();
    if let Some(before) = before {
        builds.push(("before", before.to_path_buf()));
    }
    builds.push(("this build", h.app_bin.clone()));
    let mut measured = Vec::new();
    for (name, program) in builds {
        let spec = Spec { program, ..h.app_spec(&[]) };
        let app = Server::start(&spec).await?;
        app.healthy(Duration::from_secs(10)).await?;
        let measurement = browser::tabs(&app, tabs, &h.scratch).await;
        app.stop().await;
        measured.push((name, measurement?));
    }
    let show = |pick: &dyn Fn(&browser::Tabs) -> String| {
        measured.iter().map(|(name, t)| format!("{name}: {}", pick(t))).collect::<Vec<_>>().join("; ")
    };
    let per_page = |t: &browser::Tabs| t.rss_after.saturating_sub(t.rss_before) as f64 / tabs as f64;
    let (_, now) = measured.last().ok_or("nothing measured")?;
    report.row(
        "11",
        format!("One browser, {tabs} tabs of {tabs} sessions: tabs live within 10 s"),
        format!("{}/{tabs}", now.live),
        "–",
        "–",
        format!("{tabs}/{tabs}"),
        Verdict::from_goal(Some(now.live == tabs)),
    );
    // One stream carries at most this many sessions (app.js); past it the
    // browser opens another.
    let streams = tabs.div_ceil(32);
    report.row(
        "11",
        "… connections / event streams the server holds for that browser",
        format!("{} / {}", now.connections, now.streams),
        "–",
        "–",
        format!("{streams} stream{}", if streams == 1 { "" } else { "s" }),
        Verdict::from_goal(Some(now.streams == streams as u64)),
    );
    report.row(
        "14",
        format!("… server memory per open page (RSS with the {tabs} tabs less idle, over {tabs})"),
        fmt_bytes(per_page(now)),
        "–",
        "–",
        "≤ 30 KB",
        Verdict::from_goal(Some(per_page(now) <= PAGE_MEMORY_GOAL)),
    );
    report.detail(format!(
        "{tabs} tabs: live {}; connections / streams {}; server RSS idle → with the tabs {}",
        show(&|t| format!("{}/{tabs}", t.live)),
        show(&|t| format!("{} / {}", t.connections, t.streams)),
        show(&|t| format!("{} → {}", fmt_bytes(t.rss_before as f64), fmt_bytes(t.rss_after as f64))),
    ));
    Ok(())
}

async fn browser_section(h: &Harness, plan: &Plan) -> Fallible<Report> {
    let mut report = Report::default();
    let app = h.start_app(&[]).await?;
    app.healthy(Duration::from_secs(10)).await?;
    let t = browser::measure(app.addr, plan.browser_tries, &h.scratch).await;
    let posts = widget_posts(app.addr).await;
    app.stop().await;
    let t = t?;
    browser_details(&mut report, &t);
    if let Ok(posts) = posts {
        report.detail(posts_per_enter(&t, posts));
    }
    browser_rows(&mut report, &t);
    Ok(report)
}

/// How many widget POSTs the app has answered (it counts requests by route).
async fn widget_posts(addr: std::net::SocketAddr) -> Fallible<f64> {
    let mut conn = Conn::connect(addr).await?;
    let metrics = conn.roundtrip(&get(&addr, "/metrics", ""), true).await?.text();
    let count = metrics
        .lines()
        .filter(|l| l.contains("_count") && l.contains("widgets") && l.contains("POST"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum::<f64>();
    Ok(count)
}

fn browser_details(report: &mut Report, t: &browser::Timings) {
    let mut sorted = t.enter_to_kg.clone();
    sorted.sort_by(f64::total_cmp);
    report.detail(format!(
        "browser: Enter → Kilograms changed, ms: {:?}; → next frame median {}; in-page fetch('/healthz') median {}",
        sorted.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>(),
        fmt_ms(median(&t.enter_to_frame).unwrap_or(0.0)),
        fmt_ms(median(&t.fetch_floor).unwrap_or(0.0))
    ));
    report.detail(format!(
        "browser: a scripted change event on Pounds (no key press) → Kilograms changed: median {}; the same \
         change posted from the page without htmx (medians): fetch {}, XMLHttpRequest {}, XMLHttpRequest with \
         progress listeners as htmx adds them {}; htmx.ajax from the form to htmx:beforeSwap {}",
        fmt_ms(median(&t.change_to_kg).unwrap_or(0.0)),
        fmt_ms(median(&t.fetch_post).unwrap_or(0.0)),
        fmt_ms(median(&t.xhr_post).unwrap_or(0.0)),
        fmt_ms(median(&t.xhr_upload_post).unwrap_or(0.0)),
        fmt_ms(median(&t.htmx_post).unwrap_or(0.0))
    ));
    report.detail(format!("browser: after Enter (medians): {}", phases_after_enter(t)));
}

/// Where the time goes, event by event: the median over tries of when each
/// first fired after Enter, earliest first.
fn phases_after_enter(t: &browser::Timings) -> String {
    let mut names: Vec<String> = t.phases.iter().flatten().map(|(n, _)| n.clone()).collect();
    names.sort();
    names.dedup();
    let mut phases: Vec<(f64, String)> = names
        .into_iter()
        .filter_map(|name| {
            let at: Vec<f64> =
                t.phases.iter().flatten().filter(|(n, _)| *n == name).map(|(_, v)| *v).collect();
            median(&at).map(|m| (m, format!("{name} {}", fmt_ms(m))))
        })
        .collect();
    phases.sort_by(|a, b| a.0.total_cmp(&b.0));
    phases.into_iter().map(|(_, p)| p).collect::<Vec<_>>().join(", ")
}

/// `posts`, the app's count of widget POSTs, per Enter press.
fn posts_per_enter(t: &browser::Timings, posts: f64) -> String {
    let enters = t.enter_to_kg.len() + 2;
    // The scripted changes and the bare POSTs went to the same route.
    let posts = posts
        - (t.change_to_kg.len()
            + t.fetch_post.len()
            + t.xhr_post.len()
            + t.xhr_upload_post.len()
            + t.htmx_post.len()) as f64;
    format!(
        "browser: {enters} Enter presses made {posts} widget POSTs ({:.1} per Enter)",
        posts / enters as f64
    )
}

fn browser_rows(report: &mut Report, t: &browser::Timings) {
    let med = median(&t.enter_to_kg).unwrap_or(f64::NAN);
    let floor = median(&t.fetch_floor).unwrap_or(f64::NAN);
    report.row(
        "4c",
        format!(
            "Browser: Enter in Pounds → Kilograms shows it (median of {}; baseline: in-page fetch of /healthz)",
            t.enter_to_kg.len()
        ),
        fmt_ms(med),
        fmt_ms(floor),
        fmt_ratio(Some(med / floor)),
        "≤ 5 ms",
        Verdict::from_goal(Some(med <= 5.0)),
    );
    let xhr = median(&t.xhr_post).unwrap_or(f64::NAN);
    report.row(
        "4d",
        "Browser: Enter → Kilograms beside the same POST as a bare XMLHttpRequest from the page (medians)",
        fmt_ms(med),
        fmt_ms(xhr),
        fmt_ratio(Some(med / xhr)),
        "≤ 2×",
        Verdict::from_goal(Some(med <= 2.0 * xhr)),
    );
}

// ------------------------------------------------------------------ 1i. instructions

/// Changes counted per server, after this many uncounted ones.
const COUNTED_CHANGES: usize = 2000;
const UNCOUNTED_CHANGES: usize = 200;

async fn instructions_section(harness: &Harness) -> Fallible<Report> {
    use instructions::per_change;
    let mut report = Report::default();
    let what = format!(
        "Change round trip: user-space instructions per change (callgrind; {} changes in a row on one connection)",
        thousands(COUNTED_CHANGES as f64)
    );
    if let Err(why) = instructions::tools() {
        report.row("1i", what, "–", "–", "–", "–", Verdict::Skipped);
        report.detail(format!("instructions: skipped: {why}"));
        return Ok(report);
    }
    let base = per_change(harness.baseline_spec(), UNCOUNTED_CHANGES, COUNTED_CHANGES).await?;
    for (label, extra) in [("", &[][..]), (", app with RUST_LOG=warn", &[("RUST_LOG", "warn")][..])] {
        let counted = per_change(harness.app_spec(extra), UNCOUNTED_CHANGES, COUNTED_CHANGES).await?;
        report.detail(format!("instructions{label}: app {counted:.0}, baseline {base:.0} per change"));
        report.row(
            "1i",
            format!("{what}{label}"),
            thousands(counted),
            thousands(base),
            fmt_ratio(Some(counted / base)),
            "–",
            Verdict::Info,
        );
    }
    Ok(report)
}

// ------------------------------------------------------------------ 5. criterion

async fn criterion_section(manifest_dir: &Path) -> Fallible<Report> {
    let mut report = Report::default();
    for bench in micro::run(manifest_dir).await? {
        report.detail(format!("criterion: {}: {}", bench.name, bench.estimate));
        report.row(
            "5",
            format!("Micro (criterion): {}", bench.name),
            bench.median,
            "–",
            "–",
            "–",
            Verdict::Info,
        );
    }
    Ok(report)
}
