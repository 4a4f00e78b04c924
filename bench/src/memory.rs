//! Measurement 3: resident memory (VmRSS), each figure in a fresh process
//! so that memory freed by an earlier step cannot hide a later one's.

use std::time::Duration;

use crate::change::create_sessions;
use crate::fanout::Streams;
use crate::procs::Server;
use crate::{Fallible, Harness};

pub struct Figures {
    pub idle: f64,
    pub per_session: f64,
    pub per_stream_distinct: f64,
    pub per_stream_one_session: f64,
    pub baseline_idle: f64,
    pub baseline_per_stream: f64,
}

/// RSS once the allocator and the kernel have had `settle` to catch up.
async fn rss_after_settle(server: &mut Server, settle: Duration) -> Fallible<f64> {
    tokio::time::sleep(settle).await;
    server.check_alive()?;
    Ok(server.rss_bytes()? as f64)
}

/// One run of every memory figure.
pub async fn run(h: &Harness, sessions: usize, streams: usize, settle: Duration) -> Fallible<Figures> {
    // Idle, then per idle session.
    let mut app = h.start_app(&[]).await?;
    app.healthy(Duration::from_secs(5)).await?;
    let idle = rss_after_settle(&mut app, settle).await?;
    create_sessions(app.addr, sessions, 32).await?;
    let per_session = (rss_after_settle(&mut app, settle).await? - idle) / sessions as f64;
    app.stop().await;

    // Per stream, each stream on a session of its own (sessions made first).
    let mut app = h.start_app(&[]).await?;
    app.healthy(Duration::from_secs(5)).await?;
    let sids = create_sessions(app.addr, streams, 32).await?;
    let paths: Vec<String> = sids.iter().map(|s| format!("/s/{s}/events")).collect();
    let before = rss_after_settle(&mut app, settle).await?;
    let open = Streams::open(app.addr, &paths, streams).await?;
    let per_stream_distinct = (rss_after_settle(&mut app, settle).await? - before) / streams as f64;
    open.close().await;
    app.stop().await;

    // Per stream, all on one session.
    let mut app = h.start_app(&[]).await?;
    app.healthy(Duration::from_secs(5)).await?;
    let sid = create_sessions(app.addr, 1, 1).await?.remove(0);
    let before = rss_after_settle(&mut app, settle).await?;
    let open = Streams::open(app.addr, &[format!("/s/{sid}/events")], streams).await?;
    let per_stream_one_session = (rss_after_settle(&mut app, settle).await? - before) / streams as f64;
    open.close().await;
    app.stop().await;

    // The baseline: idle, and per stream on one topic.
    let mut base = h.start_baseline().await?;
    base.healthy(Duration::from_secs(5)).await?;
    let baseline_idle = rss_after_settle(&mut base, settle).await?;
    let open = Streams::open(base.addr, &["/events/memory".to_owned()], streams).await?;
    let baseline_per_stream = (rss_after_settle(&mut base, settle).await? - baseline_idle) / streams as f64;
    open.close().await;
    base.stop().await;

    Ok(Figures {
        idle,
        per_session,
        per_stream_distinct,
        per_stream_one_session,
        baseline_idle,
        baseline_per_stream,
    })
}
