//! A private redis-server for the benchmark, and a tiny RESP2 client to
//! ask it things (PING, INFO, PUBSUB, MONITOR) over its Unix socket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::procs::{SERVER_CPU, taskset, terminate, which};
use crate::{Fallible, fail};

/// Debian's redis-server, else whichever is on PATH.
pub fn program() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin/redis-server");
    if debian.is_file() { Some(debian) } else { which("redis-server") }
}

/// A running redis-server, killed when dropped.
pub struct RedisServer {
    pub pid: u32,
    pub socket: PathBuf,
    pub dir: PathBuf,
    child: Child,
}

impl RedisServer {
    /// Starts redis-server in `dir` (made afresh) on the servers' CPU, on
    /// a Unix socket only: `--port 0` turns TCP off, so this can never
    /// meet a Redis someone runs on 6379. `appendfsync` is `always` (every
    /// acknowledged write on disk, as the app requires) or, for a
    /// diagnostic, `everysec`. Nothing is evicted. Waits until PING answers.
    pub async fn start(program: &Path, dir: &Path, appendfsync: &str) -> Fallible<RedisServer> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let socket = dir.join("redis.sock");
        let log = std::fs::File::create(dir.join("redis.log"))?;
        let mut command = match taskset() {
            Some(taskset) => {
                let mut c = Command::new(taskset);
                c.args(["-c", SERVER_CPU]).arg(program);
                c
            }
            None => Command::new(program),
        };
        command
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir)
            .args(["--appendonly", "yes", "--appendfsync", appendfsync, "--save", ""])
            .args(["--maxmemory-policy", "noeviction"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command.spawn().map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let pid = child.id().ok_or("redis-server exited at once")?;
        let mut server = RedisServer { pid, socket, dir: dir.to_owned(), child };
        server.wait_for_pong(Duration::from_secs(10)).await?;
        Ok(server)
    }

    async fn wait_for_pong(&mut self, within: Duration) -> Fallible<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return fail(format!("redis-server exited with {status}: {}", self.log_tail()));
            }
            let pong = async { self.connect().await?.command(&["PING"]).await?.text() };
            match pong.await {
                Ok(answer) if answer == "PONG" => return Ok(()),
                Ok(answer) => return fail(format!("PING answered {answer:?}")),
                Err(e) if Instant::now() > deadline => {
                    return fail(format!("no PONG within {within:?}: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    /// What the app takes as `REDIS_URL`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    pub async fn connect(&self) -> Fallible<Resp> {
        Resp::connect(&self.socket).await
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// SIGTERM (redis-server flushes the AOF and exits), then SIGKILL if
    /// it is still running after 5 s; then removes its directory.
    pub async fn stop(mut self) {
        terminate(&mut self.child, self.pid, Duration::from_secs(5)).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One RESP2 reply. Arrays hold scalars only: nothing asked here nests.
#[derive(Debug)]
pub enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    /// The text of a status or bulk reply; a Redis error as an error.
    pub fn text(self) -> Fallible<String> {
        match self {
            Reply::Status(text) => Ok(text),
            Reply::Bulk(Some(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Reply::Error(e) => fail(format!("Redis answered an error: {e}")),
            other => fail(format!("expected text from Redis, got {other:?}")),
        }
    }
}

/// One connection to Redis, commands sent one at a time.
pub struct Resp {
    stream: BufReader<UnixStream>,
}

impl Resp {
    pub async fn connect(socket: &Path) -> Fallible<Resp> {
        Ok(Resp { stream: BufReader::new(UnixStream::connect(socket).await?) })
    }

    pub async fn command(&mut self, args: &[&str]) -> Fallible<Reply> {
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        self.reply().await
    }

    /// Reads the next reply (after MONITOR, the next monitored command).
    pub async fn reply(&mut self) -> Fallible<Reply> {
        let line = self.line().await?;
        let Some(count) = line.strip_prefix('*') else { return self.scalar(line).await };
        let count: i64 = count.parse().map_err(|_| format!("bad array header {line:?}"))?;
        let mut items = Vec::new();
        for _ in 0..count.max(0) {
            let line = self.line().await?;
            items.push(self.scalar(line).await?);
        }
        Ok(Reply::Array(items))
    }

    async fn scalar(&mut self, line: String) -> Fallible<Reply> {
        let (Some(kind), Some(rest)) = (line.get(..1), line.get(1..)) else {
            return fail(format!("unexpected reply {line:?}"));
        };
        match kind {
            "+" => Ok(Reply::Status(rest.to_owned())),
            "-" => Ok(Reply::Error(rest.to_owned())),
            ":" => Ok(Reply::Integer(rest.parse().map_err(|_| format!("bad integer {line:?}"))?)),
            "$" => {
                let len: i64 = rest.parse().map_err(|_| format!("bad bulk header {line:?}"))?;
                let Ok(len) = usize::try_from(len) else { return Ok(Reply::Bulk(None)) };
                let mut bytes = vec![0; len + 2];
                self.stream.read_exact(&mut bytes).await?;
                bytes.truncate(len);
                Ok(Reply::Bulk(Some(bytes)))
            }
            _ => fail(format!("unexpected reply {line:?}")),
        }
    }

    /// One CRLF-terminated line, without the CRLF.
    async fn line(&mut self) -> Fallible<String> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return fail("Redis closed the connection");
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// Calls per command since the server started (`INFO commandstats`). On
/// Redis 7 these count the commands scripts run as well as those clients
/// send.
pub async fn command_calls(conn: &mut Resp) -> Fallible<BTreeMap<String, u64>> {
    let info = conn.command(&["INFO", "commandstats"]).await?.text()?;
    Ok(info
        .lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|field| field.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect())
}

/// The append-only file's size in bytes (`INFO persistence`).
pub async fn aof_size(conn: &mut Resp) -> Fallible<u64> {
    let info = conn.command(&["INFO", "persistence"]).await?.text()?;
    let size = info.lines().find_map(|l| l.strip_prefix("aof_current_size:"));
    Ok(size.and_then(|v| v.trim().parse().ok()).ok_or("INFO persistence has no aof_current_size")?)
}

/// What MONITOR saw, per command name (lower case): commands as clients
/// sent them (each one round trip when not pipelined), and as scripts
/// ran them.
#[derive(Default)]
pub struct Monitored {
    pub sent: BTreeMap<String, u64>,
    pub scripted: BTreeMap<String, u64>,
}

impl Monitored {
    /// `1700000000.123456 [0 lua] "HSET" "key" …` for a script's command,
    /// `[0 unix:/path/redis.sock]` or `[0 127.0.0.1:port]` for a client's.
    fn count(&mut self, line: &str) {
        let Some((origin, rest)) = line.split_once("] ") else { return };
        let name = rest.split('"').nth(1).unwrap_or_default().to_ascii_lowercase();
        let counts = if origin.ends_with(" lua") { &mut self.scripted } else { &mut self.sent };
        *counts.entry(name).or_default() += 1;
    }
}

/// Ends the monitoring: the first monitored line holding it is the last.
const END_MARKER: &str = "loadgen-monitor-end";

/// A MONITOR connection counting every command until [`Monitor::finish`].
pub struct Monitor {
    task: JoinHandle<Fallible<Monitored>>,
}

impl Monitor {
    pub async fn start(redis: &RedisServer) -> Fallible<Monitor> {
        let mut conn = redis.connect().await?;
        conn.command(&["MONITOR"]).await?.text()?;
        let task = tokio::spawn(async move {
            let mut seen = Monitored::default();
            loop {
                let line = conn.reply().await?.text()?;
                if line.contains(END_MARKER) {
                    return Ok(seen);
                }
                seen.count(&line);
            }
        });
        Ok(Monitor { task })
    }

    /// Sends the end marker (an ECHO) and returns what was seen before it.
    pub async fn finish(self, redis: &RedisServer) -> Fallible<Monitored> {
        redis.connect().await?.command(&["ECHO", END_MARKER]).await?.text()?;
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(joined) => joined?,
            Err(_) => fail("MONITOR did not show the end marker within 10 s"),
        }
    }
}

/// Subscribers of a pub/sub channel (`PUBSUB NUMSUB`).
pub async fn subscribers(conn: &mut Resp, channel: &str) -> Fallible<i64> {
    match conn.command(&["PUBSUB", "NUMSUB", channel]).await? {
        Reply::Array(items) => match items.get(1) {
            Some(Reply::Integer(n)) => Ok(*n),
            other => fail(format!("PUBSUB NUMSUB answered {other:?}")),
        },
        other => fail(format!("PUBSUB NUMSUB answered {other:?}")),
    }
}
