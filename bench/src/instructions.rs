//! Measurement 1i: user-space instructions per change, counted by
//! valgrind's callgrind. Unlike seconds, the counts repeat on a noisy
//! machine, so a change to the code shows up even when req/s cannot tell.
//!
//! Each server runs under `valgrind --tool=callgrind`. After a warm-up,
//! the counters are zeroed (`callgrind_control -z`), `n` changes are
//! POSTed one at a time over one keep-alive connection, and the counters
//! are dumped (`callgrind_control -d`). Kernel work is not counted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::change::VIEW;
use crate::client::{Conn, get, post_form};
use crate::procs::{Kind, Server, Spec, which};
use crate::{Fallible, fail};

/// Where callgrind is, or why it cannot run.
pub fn tools() -> Result<(PathBuf, PathBuf), String> {
    let valgrind = which("valgrind").ok_or("valgrind not found (apt-get install valgrind)")?;
    let control = which("callgrind_control").ok_or("callgrind_control not found")?;
    Ok((valgrind, control))
}

/// Instructions per change for the server `spec` describes, run under
/// callgrind, over `n` changes after `warmup`.
pub async fn per_change(spec: Spec, warmup: usize, n: usize) -> Fallible<f64> {
    let (valgrind, control) = tools()?;
    // One file per run (the log's numbered name): a dump left by an
    // earlier run must never be read as this one's.
    let out = spec.log.with_extension("callgrind");
    let mut args = vec![
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", out.display()),
        spec.program.display().to_string(),
    ];
    args.extend(spec.args);
    let kind = spec.kind;
    let running = Server::start(&Spec { program: valgrind, args, ..spec }).await?;
    let counted = async {
        running.healthy(Duration::from_secs(30)).await?;
        let mut conn = Conn::connect(running.addr).await?;
        let path = change_path(&mut conn, running.addr, kind).await?;
        post_changes(&mut conn, running.addr, &path, 0, warmup).await?;
        callgrind_control(&control, "-z", running.pid).await?;
        post_changes(&mut conn, running.addr, &path, warmup, n).await?;
        callgrind_control(&control, "-d", running.pid).await?;
        let dump = PathBuf::from(format!("{}.1", out.display()));
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(total_instructions(&dump).await? as f64 / n as f64)
    };
    let result = counted.await.map_err(|e| format!("{e}; valgrind said: {}", running.log_tail()).into());
    running.stop().await;
    result
}

/// The app's widget route on a new session, or the baseline's `/change`.
async fn change_path(conn: &mut Conn, addr: SocketAddr, kind: Kind) -> Fallible<String> {
    if kind == Kind::Baseline {
        return Ok("/change".to_owned());
    }
    let response = conn.roundtrip(&get(&addr, "/", ""), false).await?;
    match response.head.header("location") {
        Some(location) if response.head.status == 303 => Ok(format!("{location}/widgets/lbs")),
        _ => fail(format!("GET / answered {}", response.head.status)),
    }
}

/// `count` changes, each a new value, each answered 200.
async fn post_changes(
    conn: &mut Conn,
    addr: SocketAddr,
    path: &str,
    from: usize,
    count: usize,
) -> Fallible<()> {
    for i in from..from + count {
        let request = post_form(&addr, path, &format!("lbs={i}.5&view={VIEW}"), "");
        let response = conn.roundtrip(&request, false).await?;
        if response.head.status != 200 {
            return fail(format!("POST {path} answered {}", response.head.status));
        }
    }
    Ok(())
}

async fn callgrind_control(control: &Path, what: &str, pid: u32) -> Fallible<()> {
    // vgdb names its pipes after $HOST, and the servers run with
    // HOST=127.0.0.1 (the app's listen address): look for the same names.
    let out = tokio::process::Command::new(control)
        .args([what, &pid.to_string()])
        .env("HOST", "127.0.0.1")
        .output()
        .await?;
    // It exits 0 even when it found no such process; "OK." says it did.
    let said = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && said.contains("OK.") {
        Ok(())
    } else {
        fail(format!(
            "callgrind_control {what} {pid}: {} {said} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The dump's total: its `summary:` (or `totals:`) line. The dump is
/// written after `callgrind_control` returns, so wait for it.
async fn total_instructions(dump: &Path) -> Fallible<u64> {
    for _ in 0..100 {
        let text = std::fs::read_to_string(dump).unwrap_or_default();
        let total =
            text.lines().find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")));
        if let Some(total) = total {
            return Ok(total.trim().parse()?);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fail(format!("{}: no callgrind dump with a total within 10 s", dump.display()))
}
