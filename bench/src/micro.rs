//! Measurement 5: the criterion micro-benchmarks in `benches/render.rs`,
//! run once, their median estimates read from criterion's output.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use crate::procs::{SERVER_CPU, taskset};
use crate::{Fallible, fail};

pub struct Bench {
    pub name: String,
    /// `[low median high]` as criterion prints it.
    pub estimate: String,
    pub median: String,
}

fn cargo(manifest_dir: &Path, cpus: &str) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = match taskset() {
        Some(taskset) => {
            let mut c = Command::new(taskset);
            c.args(["-c", cpus]).arg(cargo);
            c
        }
        None => Command::new(cargo),
    };
    command.current_dir(manifest_dir).stdin(Stdio::null());
    command
}

pub async fn run(manifest_dir: &Path) -> Fallible<Vec<Bench>> {
    // Build on both CPUs, then measure on the server's CPU alone.
    let built = cargo(manifest_dir, "0,1")
        .args(["bench", "--bench", "render", "--no-run", "--quiet"])
        .stdout(Stdio::null())
        .status()
        .await?;
    if !built.success() {
        return fail("cargo bench --no-run failed");
    }
    let output = cargo(manifest_dir, SERVER_CPU)
        .args(["bench", "--bench", "render", "--quiet", "--"])
        .args(["--warm-up-time", "1", "--measurement-time", "3", "--noplot"])
        .stderr(Stdio::null())
        .output()
        .await?;
    if !output.status.success() {
        return fail(format!("cargo bench --bench render exited with {}", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let benches = parse(&text);
    if benches.is_empty() {
        return fail(format!("no estimates in criterion's output:\n{text}"));
    }
    Ok(benches)
}

/// Criterion prints `name  time:   [low median high]`, the name on a line
/// of its own when it is long.
fn parse(text: &str) -> Vec<Bench> {
    let mut benches = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        let (before, estimate) = match line.split_once("time:") {
            Some((before, after)) => (before.trim(), after.trim()),
            None => {
                if !line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
                    name = line.trim().to_owned();
                }
                continue;
            }
        };
        if !before.is_empty() {
            name = before.to_owned();
        }
        let inner = estimate.trim_start_matches('[').trim_end_matches(']');
        let parts: Vec<&str> = inner.split_whitespace().collect();
        let median = if parts.len() == 6 { format!("{} {}", parts[2], parts[3]) } else { inner.to_owned() };
        benches.push(Bench { name: name.clone(), estimate: estimate.to_owned(), median });
    }
    benches
}
