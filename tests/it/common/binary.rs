//! Runs a compiled server as a child process: a clean environment, a guard
//! that kills and reaps it however the test ends, its ready line
//! (`weight-converter listening on http://HOST:PORT`) and SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Generous: only there to turn a hang at startup into a failure.
pub const STARTUP: Duration = Duration::from_secs(20);

/// How often an exit is polled for.
const POLL: Duration = Duration::from_millis(20);

/// Every variable the binary reads its settings from, as its own argument
/// definitions name them, and `RUST_LOG`: cleared, so the test's own
/// environment cannot change what is being tested.
pub fn settings() -> Vec<String> {
    use clap::CommandFactory;
    let mut names: Vec<String> = weight_converter::Config::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    names.push("RUST_LOG".to_owned());
    names
}

/// The `weight-converter` binary with [`settings`] removed from its
/// environment (but `RUST_LOG` with `TEST_LOG`), on a free port (`PORT=0`,
/// unless the test sets `PORT` or `--port`), stdin closed, stdout piped
/// for [`KillOnDrop`] to read, and its logs on the test's stderr with
/// `TEST_LOG`, else dropped. A test that reads the logs pipes stderr itself.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weight-converter"));
    for name in settings() {
        if !(name == "RUST_LOG" && super::test_log()) {
            command.env_remove(name);
        }
    }
    let logs = if super::test_log() { Stdio::inherit() } else { Stdio::null() };
    command.env("PORT", "0").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(logs);
    command
}

/// Runs `command` (made by [`command`], or another server's with stdout
/// piped), killed and reaped however the test ends.
pub fn spawn(command: &mut Command) -> KillOnDrop {
    let child = command.spawn().unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
    KillOnDrop::new(child)
}

/// [`spawn`], then waits up to [`STARTUP`] for the ready line: the running
/// server and its address, `http://HOST:PORT`.
pub fn start(command: &mut Command) -> (KillOnDrop, String) {
    let mut server = spawn(command);
    let address = server.ready_address(STARTUP);
    (server, address)
}

/// The port at the end of the address in a ready line.
pub fn port_in(line: &str) -> Option<u16> {
    address_in(line)?.rsplit(':').next()?.parse().ok()
}

/// `http://HOST:PORT`, from a ready line.
pub fn address_in(line: &str) -> Option<&str> {
    line.find("http://").map(|at| line[at..].trim())
}

/// A running child, killed and reaped however the test ends. Its stdout,
/// when piped, is read line by line for as long as the guard lives, so the
/// child never blocks on a full pipe; its stderr, when piped, is collected.
pub struct KillOnDrop {
    child: Child,
    lines: Option<mpsc::Receiver<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl KillOnDrop {
    pub fn new(mut child: Child) -> Self {
        let lines = child.stdout.take().map(|stdout| {
            let (send, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
            lines
        });
        let stderr = child.stderr.take().map(|mut stderr| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            })
        });
        Self { child, lines, stderr }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for a line of stdout containing `needle`; returns
    /// it and every line printed up to it.
    pub fn line_with(&mut self, needle: &str, limit: Duration) -> (String, Vec<String>) {
        let lines = self.lines.as_ref().expect("the child's stdout is piped");
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let line = match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => line,
                Err(e) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!("no line with {needle:?} ({e}; exit status {status:?}); printed: {seen:?}")
                }
            };
            seen.push(line.clone());
            if line.contains(needle) {
                return (line, seen);
            }
        }
    }

    /// The ready line, `weight-converter listening on http://HOST:PORT`.
    pub fn ready_line(&mut self, limit: Duration) -> String {
        self.line_with("http://", limit).0
    }

    /// The address in the ready line, `http://HOST:PORT`.
    pub fn ready_address(&mut self, limit: Duration) -> String {
        let line = self.ready_line(limit);
        address_in(&line).expect("an http:// address").to_owned()
    }

    /// Waits for the line announcing `http://{host}:PORT`; returns the port
    /// and every line printed up to it.
    pub fn announced_port(&mut self, host: &str, limit: Duration) -> (u16, Vec<String>) {
        let (line, seen) = self.line_with(&format!("http://{host}:"), limit);
        let port = port_in(&line).unwrap_or_else(|| panic!("no port in {line:?}"));
        (port, seen)
    }

    /// SIGKILL, as a crash or the OOM killer would, and waits for the end.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let pid = self.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(kill.success(), "kill -TERM {pid}");
    }

    /// The exit status, if the child exits within `bound`.
    pub fn exit_within(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM, which must end the child with status 0 within `bound`.
    pub fn terminate(&mut self, bound: Duration) {
        self.sigterm();
        let status =
            self.exit_within(bound).unwrap_or_else(|| panic!("still running {bound:?} after SIGTERM"));
        assert!(status.success(), "exit status after SIGTERM: {status}");
    }

    /// Everything the child wrote to its piped stderr; waits for it to close.
    pub fn stderr(&mut self) -> String {
        self.stderr.take().expect("the child's stderr is piped").join().expect("stderr text")
    }
}
