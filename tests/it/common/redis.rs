//! A real `redis-server` of the test's own: a Unix socket in a temporary
//! directory, TCP off (`--port 0`, so no port can clash with a Redis that
//! happens to run here), and append-only with fsync on every write, as the
//! README recommends. It can be killed with SIGKILL and started again on
//! the same directory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Generous: only there to turn a Redis that never starts into a failure.
const STARTUP: Duration = Duration::from_secs(20);

pub struct RedisServer {
    dir: TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a fresh, empty server and waits until it answers PING.
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("wc-redis-").tempdir().expect("a temporary directory");
        let mut server = Self { dir, child: None };
        server.restart().await;
        server
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// What the app's `REDIS_URL` should be.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Starts the server on the same directory (after [`kill`](Self::kill)),
    /// so it replays its append-only file, and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args(["--unixsocketperm", "700", "--dir"])
            .arg(self.dir.path())
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .args(["--maxmemory-policy", "noeviction", "--daemonize", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); ./scripts/test.sh installs Debian's redis-server")
            });
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP;
        loop {
            if self.ping().await {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not answer PING within {STARTUP:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, as a crash would: no chance to write anything more.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("redis-server is running");
        child.kill().expect("kill -9 redis-server");
        child.wait().expect("reap redis-server");
    }

    /// SIGSTOP: the server keeps its connections but answers nothing, as
    /// a stalled or partitioned Redis would.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server is running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else { return false };
        let Ok(mut connection) = client.get_multiplexed_async_connection().await else { return false };
        redis::cmd("PING").query_async::<String>(&mut connection).await.is_ok()
    }

    /// Runs one command against the server.
    pub async fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let client = redis::Client::open(self.url()).expect("the test Redis URL");
        let mut connection =
            client.get_multiplexed_async_connection().await.expect("connect to the test Redis");
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query_async(&mut connection).await.unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Every key in the server, sorted.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.query(&["KEYS", "*"]).await;
        keys.sort();
        keys
    }

    /// How many connections are subscribed to `channel`: one per replica.
    pub async fn subscribers(&self, channel: &str) -> u64 {
        let reply: (String, u64) = self.query(&["PUBSUB", "NUMSUB", channel]).await;
        reply.1
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
