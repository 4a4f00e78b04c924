//! Measurement 1: the change round trip. K keep-alive connections each
//! POST `lbs=<value>` (as htmx does) to random sessions for D seconds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{Conn, get, post_form};
use crate::procs::cpu_split;
use crate::stats::{median, quantile};
use crate::{Fallible, fail};

/// A valid view id (22 base64url characters of 16 zero bytes): the page
/// sends its view id with every change, so the app also does the
/// "don't echo this view" bookkeeping it does for real pages.
pub const VIEW: &str = "AAAAAAAAAAAAAAAAAAAAAA";

/// What to hit, and how.
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
    pub pid: u32,
    /// Request paths to choose from at random (one per session).
    pub paths: Arc<Vec<String>>,
    /// Extra request header lines, each ending in CRLF.
    pub extra_headers: String,
}

pub struct RoundResult {
    pub requests: u64,
    pub secs: f64,
    pub latencies: Vec<Duration>,
    pub cpu_seconds: f64,
    /// The part of `cpu_seconds` spent in the kernel.
    pub system_seconds: f64,
}

impl RoundResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
    pub fn p50(&self) -> Duration {
        quantile(&self.latencies, 0.50).unwrap_or_default()
    }
    pub fn p99(&self) -> Duration {
        quantile(&self.latencies, 0.99).unwrap_or_default()
    }
    /// Server kernel CPU per change, in µs.
    pub fn system_us_per_change(&self) -> f64 {
        self.system_seconds * 1e6 / self.requests.max(1) as f64
    }
    /// Server CPU per change, in µs.
    pub fn cpu_us_per_change(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.requests.max(1) as f64
    }
}

/// The median over rounds of one figure of each.
pub fn median_over(rounds: &[RoundResult], figure: &dyn Fn(&RoundResult) -> f64) -> Option<f64> {
    median(&rounds.iter().map(figure).collect::<Vec<_>>())
}

/// The median of the per-round ratios of one figure, `a`'s to `b`'s.
pub fn median_ratio(
    a: &[RoundResult],
    b: &[RoundResult],
    figure: &dyn Fn(&RoundResult) -> f64,
) -> Option<f64> {
    median(&a.iter().zip(b).map(|(x, y)| figure(x) / figure(y)).collect::<Vec<_>>())
}

/// The change path of each session.
pub fn change_paths(sids: &[String]) -> Arc<Vec<String>> {
    Arc::new(sids.iter().map(|s| format!("/s/{s}/widgets/lbs")).collect())
}

/// Starts `n` sessions (`GET /` → 303 `/s/{sid}`) over `conns` connections.
pub async fn create_sessions(addr: SocketAddr, n: usize, conns: usize) -> Fallible<Vec<String>> {
    let conns = conns.clamp(1, n.max(1));
    let mut tasks = Vec::new();
    for i in 0..conns {
        let share = n / conns + usize::from(i < n % conns);
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            let request = get(&addr, "/", "");
            let mut sids = Vec::with_capacity(share);
            for _ in 0..share {
                let response = conn.roundtrip(&request, false).await?;
                let location = response.head.header("location").unwrap_or_default();
                match (response.head.status, location.strip_prefix("/s/")) {
                    (303, Some(sid)) if !sid.is_empty() => sids.push(sid.to_owned()),
                    (status, _) => return fail(format!("GET / answered {status}, location {location:?}")),
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(sids)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

struct ConnResult {
    requests: u64,
    latencies: Vec<Duration>,
    error: Option<String>,
}

/// One round: `conns` connections posting for `duration`. Any answer but
/// 200, or any connection error, fails the round.
pub async fn round(target: &Target, conns: usize, duration: Duration, salt: u64) -> Fallible<RoundResult> {
    let cpu_before = cpu_split(target.pid)?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for task in 0..conns {
        let (addr, paths, extra) = (target.addr, Arc::clone(&target.paths), target.extra_headers.clone());
        let total = conns as u64;
        tasks.push(tokio::spawn(async move {
            let mut out = ConnResult { requests: 0, latencies: Vec::with_capacity(1 << 16), error: None };
            let mut conn = match Conn::connect(addr).await {
                Ok(conn) => conn,
                Err(e) => {
                    out.error = Some(format!("connect: {e}"));
                    return out;
                }
            };
            let mut rng = XorShift::new(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (task as u64 + 1));
            let mut n = 0u64;
            while Instant::now() < deadline {
                // Unique over all connections and rounds, so each post is a
                // real change: 1234.56 lb and so on.
                let v = (salt.wrapping_mul(7_919_993) + n * total + task as u64) % 100_000_000;
                n += 1;
                let body = format!("lbs={}.{:02}&view={VIEW}", v / 100, v % 100);
                let path = &paths[(rng.next() % paths.len() as u64) as usize];
                let request = post_form(&addr, path, &body, &extra);
                let sent = Instant::now();
                match conn.roundtrip(&request, false).await {
                    Ok(r) if r.head.status == 200 => {
                        out.latencies.push(sent.elapsed());
                        out.requests += 1;
                    }
                    Ok(r) => {
                        out.error = Some(format!("POST {path} answered {} (expected 200)", r.head.status));
                        return out;
                    }
                    Err(e) => {
                        out.error = Some(format!("POST {path}: {e}"));
                        return out;
                    }
                }
            }
            out
        }));
    }
    let mut result =
        RoundResult { requests: 0, secs: 0.0, latencies: Vec::new(), cpu_seconds: 0.0, system_seconds: 0.0 };
    let mut errors = Vec::new();
    for task in tasks {
        let r = task.await?;
        result.requests += r.requests;
        result.latencies.extend(r.latencies);
        errors.extend(r.error);
    }
    result.secs = started.elapsed().as_secs_f64();
    let cpu_after = cpu_split(target.pid)?;
    result.cpu_seconds = (cpu_after.0 + cpu_after.1) - (cpu_before.0 + cpu_before.1);
    result.system_seconds = cpu_after.1 - cpu_before.1;
    result.latencies.sort();
    if let Some(first) = errors.first() {
        return fail(format!(
            "{}: {} of {conns} connections failed; first: {first}",
            target.name,
            errors.len()
        ));
    }
    if result.requests == 0 {
        return fail(format!("{}: no request completed", target.name));
    }
    Ok(result)
}

/// A tiny PRNG for picking sessions; no crate needed.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
