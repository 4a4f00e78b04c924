//! Runs the release binary exactly as the container image does: the static
//! build from `scripts/build-static.sh` (the Dockerfile's own build step),
//! the image's entrypoint and environment, a non-root user, and its
//! health check. No image can be built on the test machines, so this is
//! the next best thing.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::binary::{KillOnDrop, STARTUP, port_in};

/// The image's `USER`.
const IMAGE_USER: &str = "65532";

/// The static binary: `WEIGHT_CONVERTER_STATIC_BIN` (set by
/// `scripts/test.sh`), or built here with the Dockerfile's script.
fn static_binary() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(path) = std::env::var_os("WEIGHT_CONVERTER_STATIC_BIN") {
        return root.join(path);
    }
    let out = Command::new(root.join("scripts/build-static.sh"))
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/build-static.sh");
    assert!(out.status.success(), "scripts/build-static.sh failed");
    root.join(String::from_utf8(out.stdout).expect("utf-8 path").trim())
}

/// As the image: `USER 65532:65532` when we are root (CI is), else ourselves.
fn as_image_user(binary: &PathBuf) -> Command {
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if is_root {
        let mut command = Command::new("setpriv");
        command.args(["--reuid", IMAGE_USER, "--regid", IMAGE_USER, "--clear-groups", "--"]).arg(binary);
        command
    } else {
        Command::new(binary)
    }
}

/// The image's `ENV`, with a free port instead of 8080.
fn image_env(command: &mut Command, port: u16) -> &mut Command {
    command.env_clear().env("HOST", "0.0.0.0").env("PORT", port.to_string()).env("RUST_LOG", "info")
}

#[test]
fn the_binary_runs_as_the_image_would() {
    let binary = static_binary();
    let size = std::fs::metadata(&binary).expect("static binary exists").len();
    // The image is this one file on scratch.
    assert!(size < 20 * 1024 * 1024, "binary is {size} bytes; the image must stay well under 20 MB");

    let server = image_env(&mut as_image_user(&binary), 0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the binary");
    let mut server = KillOnDrop::new(server);
    let line = server.ready_line(STARTUP);
    let port = port_in(&line).unwrap_or_else(|| panic!("no port in ready line {line:?}"));
    assert!(line.contains(&format!("http://0.0.0.0:{port}")), "{line:?}");

    // The HEALTHCHECK: the binary's own subcommand, same user and env.
    let health =
        image_env(&mut as_image_user(&binary), port).arg("healthcheck").status().expect("healthcheck");
    assert!(health.success(), "healthcheck failed against a running server");

    // SIGTERM: exits 0, promptly.
    server.terminate(Duration::from_secs(2));

    // With nothing listening, the health check fails.
    let health = image_env(&mut as_image_user(&binary), port)
        .arg("healthcheck")
        .stderr(Stdio::null())
        .status()
        .expect("healthcheck");
    assert!(!health.success(), "healthcheck passed with no server");
}
