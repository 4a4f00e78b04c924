//! Runs the release binary exactly as the container image does: the static
//! build from `scripts/build-static.sh` (the Dockerfile's own build step),
//! the image's entrypoint and environment, a non-root user, and its
//! health check. No image can be built on the test machines, so this is
//! the next best thing.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::binary::{KillOnDrop, port_in};

/// The image's `USER`.
const IMAGE_USER: &str = "65532";

/// The static binary, built by `scripts/build-static.sh` (the Dockerfile's
/// own build step) and named by `WEIGHT_CONVERTER_STATIC_BIN`, as the
/// test command does. Its release build is too long to hide inside
/// `cargo test`, so without it this test fails, saying how to get it.
fn static_binary() -> PathBuf {
    let Some(path) = std::env::var_os("WEIGHT_CONVERTER_STATIC_BIN") else {
        panic!(
            "CONTAINER TEST FAILED: no static binary. Run the README's test command \
             (scripts/test.sh), or build it with `scripts/build-static.sh` and set \
             WEIGHT_CONVERTER_STATIC_BIN to the path it prints."
        )
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
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

/// The image's `ENV`, with a free port instead of 8080 and a folder of
/// the test's, owned as the image's `/data` is, instead of `/data`.
fn image_env<'a>(command: &'a mut Command, port: u16, data: &Path) -> &'a mut Command {
    command
        .env_clear()
        .env("HOST", "0.0.0.0")
        .env("PORT", port.to_string())
        .env("DATA_DIR", data)
        .env("RUST_LOG", "info")
}

/// The image's `/data`: a folder its user owns.
fn data_folder() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wc-image-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the data folder");
    // As root (CI), hand it to the image's user; otherwise it is ours already.
    let _ = Command::new("chown").arg(format!("{IMAGE_USER}:{IMAGE_USER}")).arg(&dir).status();
    dir
}

/// One HTTP/1.1 request, and the whole answer as text.
fn http(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

fn start(binary: &PathBuf, data: &Path) -> (KillOnDrop, u16) {
    let mut command = as_image_user(binary);
    image_env(&mut command, 0, data).stdout(Stdio::piped()).stderr(Stdio::null());
    let (server, address) = common::binary::start(&mut command);
    let port = port_in(&address).unwrap_or_else(|| panic!("no port in ready line {address:?}"));
    assert!(address.contains(&format!("http://0.0.0.0:{port}")), "{address:?}");
    (server, port)
}

#[test]
fn the_binary_runs_as_the_image_would() {
    let binary = static_binary();
    let size = std::fs::metadata(&binary).expect("static binary exists").len();
    // The image is this one file on scratch.
    assert!(size < 20 * 1024 * 1024, "binary is {size} bytes; the image must stay well under 20 MB");

    let data = data_folder();
    let (mut server, port) = start(&binary, &data);

    // The HEALTHCHECK: the binary's own subcommand, same user and env.
    let health =
        image_env(&mut as_image_user(&binary), port, &data).arg("healthcheck").status().expect("healthcheck");
    assert!(health.success(), "healthcheck failed against a running server");

    // A session and a change, kept in the volume.
    let started = http(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let sid = started
        .lines()
        .find_map(|l| l.strip_prefix("location: /s/"))
        .unwrap_or_else(|| panic!("no session: {started}"))
        .trim()
        .to_owned();
    let body = "lbs=10";
    let changed = http(
        port,
        &format!(
            "POST /s/{sid}/widgets/lbs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(changed.starts_with("HTTP/1.1 303"), "{changed}");

    // SIGTERM: exits 0, promptly.
    server.terminate(Duration::from_secs(2));

    // Started again on the same volume, the session is there.
    let (mut again, port) = start(&binary, &data);
    let state =
        http(port, &format!("GET /s/{sid}/state.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    assert!(state.ends_with(r#"{"lbs":10.0,"kg":4.5359237}"#), "{state}");
    again.terminate(Duration::from_secs(2));
    let _ = std::fs::remove_dir_all(&data);

    // With nothing listening, the health check fails.
    let health = image_env(&mut as_image_user(&binary), port, &data)
        .arg("healthcheck")
        .stderr(Stdio::null())
        .status()
        .expect("healthcheck");
    assert!(!health.success(), "healthcheck passed with no server");
}
