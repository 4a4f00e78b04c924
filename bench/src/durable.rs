//! Measurement 12: sessions on disk (`DATA_DIR`) beside the in-memory
//! store, in the same run: change throughput and latency at the change
//! section's load, durable commits (fsyncs) per change from the app's own
//! counters, and start-up with many stored sessions.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::change::{self, Target, change_paths, create_sessions, median_over, median_ratio};
use crate::client::{Conn, get};
use crate::procs::{Server, Spec};
use crate::report::{Report, Verdict};
use crate::stats::{fmt_bytes, fmt_ms, fmt_ratio, median, ms, thousands};
use crate::{Fallible, Harness, fail};

/// How big this section's measurements are.
pub struct Plan {
    pub sessions: usize,
    pub conns: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub rounds: usize,
    /// Sessions stored before the start-up is timed.
    pub stored: usize,
    pub starts: usize,
}

/// A counter or gauge from the app's `/metrics`.
async fn metric(addr: SocketAddr, name: &str) -> Fallible<f64> {
    let mut conn = Conn::connect(addr).await?;
    let text = conn.roundtrip(&get(&addr, "/metrics", "Connection: close\r\n"), true).await?.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no {name} in /metrics").into())
}

fn target(name: &str, server: &Server, sids: &[String]) -> Target {
    Target {
        name: name.into(),
        addr: server.addr,
        pid: server.pid,
        paths: change_paths(sids),
        extra_headers: String::new(),
    }
}

pub async fn section(h: &Harness, plan: &Plan) -> Fallible<Report> {
    let mut report = Report::default();
    let data = h.scratch.join("data-dir");
    let _ = std::fs::remove_dir_all(&data);
    let data_env = data.to_string_lossy().into_owned();
    let disk_spec = h.app_spec(&[("DATA_DIR", &data_env)]);
    let throughput = measure_throughput(h, plan, &disk_spec, &mut report).await?;
    throughput_rows(&mut report, plan, &throughput);
    // Start-up with many stored sessions: fill, stop, then time starts.
    let _ = std::fs::remove_dir_all(&data);
    let stored = fill(&disk_spec, &data, plan.stored, &mut report).await?;
    let startup = measure_startup(&disk_spec, plan.starts).await?;
    startup_rows(&mut report, plan, stored, &startup);
    Ok(report)
}

/// The measured rounds on each store, and the disk store's own counters
/// over them.
struct Throughput {
    memory: Vec<change::RoundResult>,
    disk: Vec<change::RoundResult>,
    commits: f64,
    writes: f64,
}

/// Throughput and latency, alternating rounds, same load as section 1.
async fn measure_throughput(
    h: &Harness,
    plan: &Plan,
    disk_spec: &Spec,
    report: &mut Report,
) -> Fallible<Throughput> {
    let memory = h.start_app(&[]).await?;
    let disk = Server::start(disk_spec).await?;
    memory.healthy(Duration::from_secs(10)).await?;
    disk.healthy(Duration::from_secs(10)).await?;
    let targets = [
        target("in memory", &memory, &create_sessions(memory.addr, plan.sessions, 16).await?),
        target("DATA_DIR", &disk, &create_sessions(disk.addr, plan.sessions, 16).await?),
    ];
    for (i, t) in targets.iter().enumerate() {
        change::round(t, plan.conns, plan.warmup, 2000 + i as u64).await?;
    }
    let commits_before = metric(disk.addr, "weight_converter_store_commits_total").await?;
    let writes_before = metric(disk.addr, "weight_converter_store_writes_total").await?;
    let mut results: [Vec<change::RoundResult>; 2] = [Vec::new(), Vec::new()];
    for round in 0..plan.rounds {
        for (i, t) in targets.iter().enumerate() {
            let r = change::round(t, plan.conns, plan.duration, 3000 + (round * 10 + i) as u64).await?;
            report.detail(format!(
                "DATA_DIR round {}: {}: {} req/s, p50 {}, p99 {}",
                round + 1,
                t.name,
                thousands(r.rps()),
                fmt_ms(ms(r.p50())),
                fmt_ms(ms(r.p99()))
            ));
            results[i].push(r);
        }
    }
    let commits = metric(disk.addr, "weight_converter_store_commits_total").await? - commits_before;
    let writes = metric(disk.addr, "weight_converter_store_writes_total").await? - writes_before;
    memory.stop().await;
    disk.stop().await;
    let [memory, disk] = results;
    Ok(Throughput { memory, disk, commits, writes })
}

/// DATA_DIR in the app column, the in-memory store in the baseline one.
fn throughput_rows(report: &mut Report, plan: &Plan, t: &Throughput) {
    let rps = |r: &change::RoundResult| r.rps();
    let label = format!("{} conns, {} sessions", plan.conns, thousands(plan.sessions as f64));
    let r = median_ratio(&t.disk, &t.memory, &rps);
    report.row(
        "12",
        format!("DATA_DIR: change throughput ({label}), beside in memory"),
        format!("{} req/s", thousands(median_over(&t.disk, &rps).unwrap_or(0.0))),
        format!("{} req/s", thousands(median_over(&t.memory, &rps).unwrap_or(0.0))),
        fmt_ratio(r),
        "≥ 0.5×",
        Verdict::from_goal(r.map(|r| r >= 0.5)),
    );
    for (name, f) in [
        ("p50", &(|r: &change::RoundResult| ms(r.p50())) as &dyn Fn(&change::RoundResult) -> f64),
        ("p99", &|r: &change::RoundResult| ms(r.p99())),
    ] {
        report.row(
            "12",
            format!("DATA_DIR: change {name} latency"),
            fmt_ms(median_over(&t.disk, f).unwrap_or(0.0)),
            fmt_ms(median_over(&t.memory, f).unwrap_or(0.0)),
            fmt_ratio(median_ratio(&t.disk, &t.memory, f)),
            "–",
            Verdict::Info,
        );
    }
    let per_fsync = (t.commits > 0.0).then(|| t.writes / t.commits);
    report.row(
        "12",
        "DATA_DIR: changes per fsync under that load",
        per_fsync.map_or("–".into(), |v| format!("{v:.1}")),
        "–",
        "–",
        "≥ 8",
        Verdict::from_goal(per_fsync.map(|v| v >= 8.0)),
    );
    report.detail(format!(
        "DATA_DIR: {} durable commits for {} writes in the measured rounds",
        thousands(t.commits),
        thousands(t.writes)
    ));
}

/// Stores `wanted` sessions in the store at `data`, and stops its app;
/// fails unless it then holds that many.
async fn fill(spec: &Spec, data: &Path, wanted: usize, report: &mut Report) -> Fallible<usize> {
    let filling = Server::start(spec).await?;
    filling.healthy(Duration::from_secs(10)).await?;
    let filled = Instant::now();
    create_sessions(filling.addr, wanted, 32).await?;
    let stored = metric(filling.addr, "weight_converter_sessions").await? as usize;
    report.detail(format!(
        "DATA_DIR: {} sessions stored in {:.1} s; file {}",
        thousands(stored as f64),
        filled.elapsed().as_secs_f64(),
        fmt_bytes(std::fs::metadata(data.join("sessions.redb")).map_or(0, |m| m.len()) as f64)
    ));
    filling.stop().await;
    if stored != wanted {
        return fail(format!("stored {stored} sessions, not {wanted}"));
    }
    Ok(stored)
}

/// Starts on the stored sessions: spawn to `/healthz` 200 in ms, after a
/// clean stop and after a crash, and the RSS once healthy.
struct Startup {
    to_healthy: Vec<f64>,
    rss: Vec<f64>,
    after_crash: Vec<f64>,
}

async fn measure_startup(spec: &Spec, n: usize) -> Fallible<Startup> {
    let (to_healthy, rss) = starts(spec, n).await?;
    // After a crash redb checks the file before it opens it.
    let mut after_crash = Vec::new();
    for _ in 0..n.min(3) {
        let server = Server::start(spec).await?;
        server.healthy(Duration::from_secs(10)).await?;
        server.crash().await;
        let (times, _) = starts(spec, 1).await?;
        after_crash.extend(times);
    }
    Ok(Startup { to_healthy, rss, after_crash })
}

fn startup_rows(report: &mut Report, plan: &Plan, stored: usize, startup: &Startup) {
    let started = median(&startup.to_healthy);
    report.row(
        "12",
        format!(
            "DATA_DIR: start to healthy with {} stored sessions (median of {})",
            thousands(stored as f64),
            plan.starts
        ),
        fmt_ms(started.unwrap_or(0.0)),
        "–",
        "–",
        "≤ 200 ms",
        Verdict::from_goal(started.map(|t| t <= 200.0)),
    );
    report.row(
        "12",
        format!(
            "DATA_DIR: start to healthy after a SIGKILL, {} stored sessions (median of {})",
            thousands(stored as f64),
            startup.after_crash.len()
        ),
        fmt_ms(median(&startup.after_crash).unwrap_or(0.0)),
        "–",
        "–",
        "–",
        Verdict::Info,
    );
    report.row(
        "12",
        format!("DATA_DIR: RSS once healthy with {} stored sessions", thousands(stored as f64)),
        fmt_bytes(median(&startup.rss).unwrap_or(0.0)),
        "–",
        "–",
        "–",
        Verdict::Info,
    );
}

/// `n` starts on the stored sessions: spawn to `/healthz` 200, in ms, and
/// the RSS then.
async fn starts(spec: &Spec, n: usize) -> Fallible<(Vec<f64>, Vec<f64>)> {
    let (mut times, mut rss) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let started = Instant::now();
        let server = Server::start(spec).await?;
        server.healthy(Duration::from_secs(10)).await?;
        times.push(ms(started.elapsed()));
        rss.push(server.rss_bytes()? as f64);
        server.stop().await;
    }
    Ok((times, rss))
}
