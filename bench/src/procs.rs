//! Child servers (the app and the baseline), CPU pinning, file limits, and
//! what `/proc` says about a process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::{Conn, get};
use crate::{Fallible, fail};

/// The CPU the servers run on, and the one the load generator runs on.
pub const SERVER_CPU: &str = "0";
pub const CLIENT_CPU: &str = "1";

/// `LOADGEN_UNPINNED=1` runs every process on both CPUs: contention
/// between the servers (the app and redis-server, say) only shows so.
pub fn unpinned() -> bool {
    std::env::var_os("LOADGEN_UNPINNED").is_some_and(|v| v == "1")
}

/// `taskset`, unless the run is unpinned.
pub fn taskset() -> Option<&'static Path> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND.get_or_init(|| if unpinned() { None } else { which("taskset") }).as_deref()
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Pins every thread of this process to the load generator's CPU. Call
/// before any runtime threads exist; children inherit the mask.
pub fn pin_self() -> String {
    let Some(taskset) = taskset() else {
        return if unpinned() { "not pinned (LOADGEN_UNPINNED=1)" } else { "not pinned (no taskset)" }
            .to_owned();
    };
    let pid = std::process::id().to_string();
    match std::process::Command::new(taskset).args(["-a", "-p", "-c", CLIENT_CPU, &pid]).output() {
        Ok(out) if out.status.success() => {
            format!("load generator on CPU {CLIENT_CPU}, servers on CPU {SERVER_CPU}")
        }
        Ok(out) => format!("not pinned: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => format!("not pinned: {e}"),
    }
}

/// Raises this process's open-file limit as far as allowed (children
/// inherit it). Returns the soft limit in force afterwards.
pub fn raise_nofile() -> u64 {
    let pid = std::process::id().to_string();
    if let Some(prlimit) = which("prlimit") {
        // Root may raise the hard limit too; otherwise take the hard one.
        let hard = nofile_limits().1;
        for want in [65_536, hard] {
            let arg = format!("--nofile={want}:{want}");
            let ok = std::process::Command::new(&prlimit)
                .args(["--pid", &pid, &arg])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                break;
            }
        }
    }
    nofile_limits().0
}

/// (soft, hard) from /proc/self/limits.
fn nofile_limits() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = text.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default();
    let mut nums = line.split_whitespace().filter_map(|w| w.parse::<u64>().ok());
    (nums.next().unwrap_or(1024), nums.next().unwrap_or(1024))
}

/// Clock ticks per second, for /proc/PID/stat.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds a process has used so far.
pub fn cpu_seconds(pid: u32) -> Fallible<f64> {
    let (user, system) = cpu_split(pid)?;
    Ok(user + system)
}

/// (user, system) CPU seconds a process has used so far.
pub fn cpu_split(pid: u32) -> Fallible<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').ok_or("malformed /proc/PID/stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let utime: f64 = fields.get(11).ok_or("short /proc/PID/stat")?.parse()?;
    let stime: f64 = fields.get(12).ok_or("short /proc/PID/stat")?.parse()?;
    Ok((utime / clock_ticks(), stime / clock_ticks()))
}

/// Resident set size in bytes (VmRSS).
pub fn rss_bytes(pid: u32) -> Fallible<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS")?;
    let kb: u64 = line.split_whitespace().nth(1).ok_or("malformed VmRSS")?.parse()?;
    Ok(kb * 1024)
}

/// Which server a child is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    App,
    Baseline,
}

/// How to start one server.
#[derive(Clone)]
pub struct Spec {
    pub kind: Kind,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

/// A running server, killed when dropped.
pub struct Server {
    pub kind: Kind,
    pub pid: u32,
    pub addr: SocketAddr,
    /// From spawning until the ready line.
    pub ready_line_after: Duration,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Spawns the server on the server CPU with PORT=0 and waits for its
    /// ready line (`… listening on http://HOST:PORT`).
    pub async fn start(spec: &Spec) -> Fallible<Server> {
        let started = Instant::now();
        let mut command = match taskset() {
            Some(taskset) => {
                let mut c = Command::new(taskset);
                c.args(["-c", SERVER_CPU]).arg(&spec.program);
                c
            }
            None => Command::new(&spec.program),
        };
        let log = std::fs::File::create(&spec.log)?;
        command
            .args(&spec.args)
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        let mut child =
            command.spawn().map_err(|e| format!("cannot start {}: {e}", spec.program.display()))?;
        let pid = child.id().ok_or("the server exited at once")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.split("listening on http://").nth(1) {
                    return Ok::<_, std::io::Error>(Some(url.trim().to_owned()));
                }
            }
            Ok(None)
        })
        .await;
        let ready_line_after = started.elapsed();
        let addr = match ready {
            Ok(Ok(Some(addr))) => {
                addr.parse::<SocketAddr>().map_err(|e| format!("bad address {addr:?}: {e}"))?
            }
            Ok(Ok(None)) => {
                return fail(format!(
                    "{} exited before its ready line: {}",
                    spec.program.display(),
                    tail(&spec.log)
                ));
            }
            Ok(Err(e)) => return fail(format!("reading the ready line: {e}")),
            Err(_) => return fail(format!("no ready line within 20 s: {}", tail(&spec.log))),
        };
        // Nothing else is printed on stdout, but never let a full pipe
        // block the server.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server { kind: spec.kind, pid, addr, ready_line_after, child, log: spec.log.clone() })
    }

    /// Waits until `/healthz` answers 200.
    pub async fn healthy(&self, within: Duration) -> Fallible<()> {
        // Polled fast: the cold-start figure is measured with it.
        self.answers_ok("/healthz", within, Duration::from_micros(200)).await
    }

    /// Waits until `/readyz` answers 200: the store answers and, with
    /// Redis, the replica's change subscription is acknowledged.
    pub async fn ready(&self, within: Duration) -> Fallible<()> {
        self.answers_ok("/readyz", within, Duration::from_millis(5)).await
    }

    /// Polls `GET path` on fresh connections, `every` apart, until it
    /// answers 200.
    async fn answers_ok(&self, path: &str, within: Duration, every: Duration) -> Fallible<()> {
        let deadline = Instant::now() + within;
        let request = get(&self.addr, path, "");
        loop {
            let answer = async {
                let mut conn = Conn::connect(self.addr).await?;
                conn.roundtrip(&request, true).await
            };
            match answer.await {
                Ok(r) if r.head.status == 200 => return Ok(()),
                Ok(r) if Instant::now() > deadline => {
                    return fail(format!("{path} answered {}: {}", r.head.status, r.text().trim()));
                }
                Err(e) if Instant::now() > deadline => return fail(format!("{path}: {e}")),
                _ => tokio::time::sleep(every).await,
            }
        }
    }

    pub fn cpu_seconds(&self) -> Fallible<f64> {
        cpu_seconds(self.pid)
    }

    pub fn rss_bytes(&self) -> Fallible<u64> {
        rss_bytes(self.pid)
    }

    /// The end of the server's log, to explain a failure.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Fails if the server has exited (crashed) meanwhile.
    pub fn check_alive(&mut self) -> Fallible<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => fail(format!("{:?} server exited with {status}: {}", self.kind, self.log_tail())),
        }
    }

    /// SIGTERM (both servers shut down gracefully on it), then SIGKILL
    /// if it is still running after 3 s.
    pub async fn stop(mut self) {
        terminate(&mut self.child, self.pid, Duration::from_secs(3)).await;
    }

    /// SIGKILL, as a crash would; reaps it.
    pub async fn crash(mut self) {
        let _ = self.child.kill().await;
    }
}

/// SIGTERM, then SIGKILL if `child` is still running after `grace`; reaps it.
pub async fn terminate(child: &mut tokio::process::Child, pid: u32, grace: Duration) {
    if let Ok(None) = child.try_wait() {
        let terminated = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if terminated && tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
