//! Sessions under `DATA_DIR` (issue 12): the real binary, killed with
//! SIGKILL and started again on the same folder.

use crate::browser_support;
use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::binary::{self, KillOnDrop, STARTUP};
use common::sse::json_pair;

/// A folder of its own per test for the server to make, inside a
/// temporary one that is removed afterwards.
struct DataDir {
    _parent: tempfile::TempDir,
    path: PathBuf,
}

impl DataDir {
    fn new(name: &str) -> Self {
        let parent = tempfile::Builder::new()
            .prefix(&format!("wc-data-{name}-"))
            .tempdir()
            .expect("a temporary directory");
        let path = parent.path().join("data");
        Self { _parent: parent, path }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// The binary on `dir`, with extra settings, its logs kept from the test's
/// output.
fn command(dir: &Path, extra: &[(&str, &str)]) -> std::process::Command {
    let mut command = binary::command();
    command.env("DATA_DIR", dir).envs(extra.iter().copied()).stderr(std::process::Stdio::piped());
    command
}

/// The server on a free port, on `dir`, with extra settings.
fn start(dir: &Path, extra: &[(&str, &str)]) -> (KillOnDrop, String) {
    binary::start(command(dir, extra).env("RUST_LOG", "warn"))
}

/// Starts the binary on `dir` with `extra`, expecting it to refuse to
/// start: its exit status and what it said.
fn refused(dir: &Path, extra: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut server = binary::spawn(&mut command(dir, extra));
    let status = server.exit_within(STARTUP).expect("the server should refuse to start");
    (status, server.stderr())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

async fn new_session(client: &reqwest::Client, base: &str) -> String {
    let response = client.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().expect("location").to_owned();
    location.strip_prefix("/s/").expect("/s/{sid}").to_owned()
}

/// An htmx change; `Err` once the server is gone.
async fn change(client: &reqwest::Client, base: &str, sid: &str, lbs: u64) -> Result<u16, reqwest::Error> {
    let response = client
        .post(format!("{base}/s/{sid}/widgets/lbs"))
        .header("HX-Request", "true")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("lbs={lbs}"))
        .send()
        .await?;
    let status = response.status().as_u16();
    response.bytes().await?;
    Ok(status)
}

async fn state(client: &reqwest::Client, base: &str, sid: &str) -> (u16, String) {
    let response = client.get(format!("{base}/s/{sid}/state.json")).send().await.expect("state");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The version a page shows (`data-version` of its dump).
async fn version(client: &reqwest::Client, base: &str, sid: &str) -> u64 {
    let page = client.get(format!("{base}/s/{sid}")).send().await.expect("page").text().await.expect("body");
    let dump = common::html::part(&page, "pre", "state").expect("the dump");
    dump.attr("data-version").and_then(|v| v.parse().ok()).expect("a version")
}

/// `writers` sessions, each changed by its own writer, lbs = 1, 2, 3…;
/// SIGKILL once `changes` have been acknowledged in all. After a restart,
/// each session holds its last acknowledged change, or the one that was
/// in flight, and the next change continues the version sequence.
async fn kill_after(name: &str, writers: usize, changes: u64) {
    let dir = DataDir::new(name);
    let (mut server, base) = start(dir.path(), &[]);
    let client = client();
    let mut sessions = Vec::new();
    for _ in 0..writers {
        sessions.push(new_session(&client, &base).await);
    }
    let total = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = sessions
        .iter()
        .map(|sid| {
            let (client, base, sid) = (client.clone(), base.clone(), sid.clone());
            let (total, stop) = (Arc::clone(&total), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut acknowledged = 0;
                while !stop.load(Ordering::Relaxed) {
                    match change(&client, &base, &sid, acknowledged + 1).await {
                        Ok(200) => {
                            acknowledged += 1;
                            total.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(status) => panic!("a change answered {status}"),
                        Err(_) => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    while total.load(Ordering::Relaxed) < changes {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.push(task.await.expect("writer"));
    }
    assert!(acknowledged.iter().sum::<u64>() >= changes);

    let (_server, base) = start(dir.path(), &[]);
    for (sid, acked) in sessions.iter().zip(&acknowledged) {
        let (status, json) = state(&client, &base, sid).await;
        assert_eq!(status, 200, "a session was lost: {json}");
        let lbs = json_pair(&json).0;
        assert!(lbs == *acked as f64 || lbs == (*acked + 1) as f64, "acknowledged {acked}, stored {json}");
        let stored = version(&client, &base, sid).await;
        assert_eq!(stored, lbs as u64, "the version counts the changes");
        assert_eq!(change(&client, &base, sid, 1_000_000).await.expect("change"), 200);
        assert_eq!(version(&client, &base, sid).await, stored + 1, "the sequence goes on");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_loses_no_acknowledged_change() {
    kill_after("one-writer", 1, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_with_16_concurrent_writers_loses_no_acknowledged_change() {
    kill_after("sixteen-writers", 16, 800).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_links_survive_a_restart() {
    let dir = DataDir::new("tokens");
    let client = client();
    let (sid, token) = {
        let (mut server, base) = start(dir.path(), &[]);
        let sid = new_session(&client, &base).await;
        assert_eq!(change(&client, &base, &sid, 10).await.expect("change"), 200);
        let page =
            client.get(format!("{base}/s/{sid}")).send().await.expect("page").text().await.expect("body");
        let token = common::checks::read_token(&page);
        server.terminate(Duration::from_secs(10));
        (sid, token)
    };
    let (_server, base) = start(dir.path(), &[]);
    let read = client.get(format!("{base}/v/{token}/state.json")).send().await.expect("read-only");
    assert_eq!(read.status(), 200);
    assert_eq!(read.text().await.expect("body"), r#"{"lbs":10.0,"kg":4.5359237}"#);
    assert_eq!(state(&client, &base, &sid).await, (200, r#"{"lbs":10.0,"kg":4.5359237}"#.to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_folder_is_refused() {
    let dir = DataDir::new("twice");
    let (_first, base) = start(dir.path(), &[]);
    let client = client();
    let sid = new_session(&client, &base).await;
    assert_eq!(change(&client, &base, &sid, 7).await.expect("change"), 200);
    let (status, stderr) = refused(dir.path(), &[]);
    assert!(!status.success());
    assert!(stderr.contains("DATA_DIR") && stderr.contains("in use by another process"), "{stderr}");
    // The first goes on, its data intact.
    assert_eq!(state(&client, &base, &sid).await, (200, r#"{"lbs":7.0,"kg":3.17514659}"#.to_owned()));
}

#[test]
fn a_damaged_store_file_is_a_clear_error() {
    let dir = DataDir::new("damaged");
    std::fs::create_dir_all(dir.path()).expect("folder");
    let garbage: Vec<u8> = (0..64 * 1024).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(dir.path().join("sessions.redb"), garbage).expect("write garbage");
    let (status, stderr) = refused(dir.path(), &[]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("DATA_DIR") && stderr.contains("damaged"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_data_dir_that_is_a_file_or_cannot_be_made_is_a_clear_error() {
    let dir = DataDir::new("file");
    std::fs::write(dir.path(), b"not a folder").expect("write a file");
    let (status, stderr) = refused(dir.path(), &[]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains(&format!("DATA_DIR {} is not a folder", dir.path().display())), "{stderr}");

    let inside_a_file = DataDir::new("inside-file");
    std::fs::write(inside_a_file.path(), b"x").expect("write a file");
    let (status, stderr) = refused(&inside_a_file.path().join("sessions"), &[]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("DATA_DIR") && stderr.contains("cannot be created"), "{stderr}");
}

#[test]
fn data_dir_and_redis_url_together_are_refused_by_name() {
    let dir = DataDir::new("both");
    let (status, stderr) = refused(dir.path(), &[("REDIS_URL", "redis://127.0.0.1:1/")]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("REDIS_URL (--redis-url) and DATA_DIR (--data-dir) are both set"), "{stderr}");
    assert!(!dir.path().exists(), "nothing is created");
}

#[test]
fn an_empty_data_dir_is_unset() {
    let (mut server, _) = binary::start(binary::command().env("DATA_DIR", "").env("RUST_LOG", "warn"));
    server.terminate(Duration::from_secs(10));
}

/// A tmpfs of `size`, mounted for the test and unmounted after it.
struct SmallDisk(DataDir);

impl SmallDisk {
    fn mount(name: &str, size: &str) -> Self {
        let dir = DataDir::new(name);
        std::fs::create_dir_all(dir.path()).expect("mount point");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            mounted.success(),
            "a full disk is simulated with a small tmpfs: this test needs root to mount one"
        );
        Self(dir)
    }

    /// A tmpfs nothing can write to, not even root.
    fn read_only(name: &str) -> Self {
        let disk = Self::mount(name, "1m");
        let status = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(disk.0.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remount read-only");
        disk
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remount");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_loses_nothing_stored() {
    let disk = SmallDisk::mount("full", "512k");
    let (_server, base) = start(disk.0.path(), &[("NEW_SESSIONS_PER_MINUTE", "1000000")]);
    let client = client();
    let first = new_session(&client, &base).await;
    assert_eq!(change(&client, &base, &first, 10).await.expect("change"), 200);
    // Fill the disk with new sessions until a write fails.
    let mut refused = None;
    for _ in 0..200_000 {
        let response = client.get(format!("{base}/")).send().await.expect("GET /");
        if response.status() != 303 {
            refused = Some(response.status().as_u16());
            break;
        }
    }
    assert_eq!(refused, Some(503), "the disk never filled");
    let ready = client.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.expect("body"), "session store unavailable\n");
    // What was stored before is intact and readable.
    assert_eq!(state(&client, &base, &first).await, (200, r#"{"lbs":10.0,"kg":4.5359237}"#.to_owned()));

    // Room again: ready, and changes go on from where they were.
    disk.resize("64m");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client.get(format!("{base}/readyz")).send().await.expect("readyz").status() != 200 {
        assert!(std::time::Instant::now() < deadline, "not ready again once there was room");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(change(&client, &base, &first, 12).await.expect("change"), 200);
    assert_eq!(state(&client, &base, &first).await, (200, r#"{"lbs":12.0,"kg":5.44310844}"#.to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_after_a_crash_and_restart_shows_the_same_values() {
    let dir = DataDir::new("browser");
    let port = common::free_port().to_string();
    let settings = [("PORT", port.as_str())];
    let (mut server, base) = start(dir.path(), &settings);
    browser_support::with_browser(browser_support::Options::default(), |b| async move {
        b.goto(&format!("{base}/")).await;
        b.wait_live().await;
        let url = b.current_url().await;
        b.commit("[data-part=lbs]", "10").await;
        b.wait_value("[data-part=kg]", "4.54").await;
        b.wait_text_contains("[data-part=state]", "4.5359237").await;

        server.kill();
        let (_again, _) = start(dir.path(), &settings);
        b.client.refresh().await.expect("reload");
        b.wait_htmx().await;
        assert_eq!(b.current_url().await, url);
        b.wait_value("[data-part=lbs]", "10.00").await;
        b.wait_value("[data-part=kg]", "4.54").await;
        b.wait_text_contains("[data-part=state]", "4.5359237").await;
        b.wait_live().await;
    })
    .await;
}

#[test]
fn a_data_dir_that_is_not_writable_is_a_clear_error() {
    let disk = SmallDisk::read_only("read-only");
    let (status, stderr) = refused(disk.0.path(), &[]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains(&format!("DATA_DIR {} is not writable", disk.0.path().display())), "{stderr}");
}
