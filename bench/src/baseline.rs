//! The baseline: a bare axum server doing the least the app's routes
//! could do. `loadgen --serve-baseline --change-bytes N --event-bytes M`
//!
//! - `POST /change`: a fixed HTML fragment of N bytes (the size of the
//!   app's real change response); the form body is read and dropped.
//! - `GET /events/{topic}`: a bare SSE stream fed by a tokio broadcast
//!   channel, opening with the current id, as the app opens with the
//!   current state.
//! - `POST /publish/{topic}`: sends one event of M bytes (the size of the
//!   app's event) to the topic's streams; answers with its id.
//! - `GET /healthz`.
//!
//! No compression, tracing, metrics, security headers or timeouts: the
//! difference to the app is the app's own overhead. Like the app, it sets
//! TCP_NODELAY on every connection.

use std::collections::HashMap;
use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::broadcast;

struct Topic {
    sender: broadcast::Sender<Bytes>,
    last_id: u64,
}

struct Baseline {
    fragment: Bytes,
    event_bytes: usize,
    topics: Mutex<HashMap<String, Topic>>,
}

impl Baseline {
    fn topic<'a>(topics: &'a mut HashMap<String, Topic>, name: &str) -> &'a mut Topic {
        topics
            .entry(name.to_owned())
            .or_insert_with(|| Topic { sender: broadcast::channel(16).0, last_id: 0 })
    }

    /// One event of exactly `event_bytes` bytes (when that is enough for
    /// the fields themselves).
    fn event(&self, id: u64) -> Bytes {
        let head = format!("event: state\nid: {id}\ndata: ");
        let pad = self.event_bytes.saturating_sub(head.len() + 2);
        let mut out = String::with_capacity(head.len() + pad + 2);
        out.push_str(&head);
        out.extend(std::iter::repeat_n('x', pad));
        out.push_str("\n\n");
        Bytes::from(out)
    }
}

/// `--serve-baseline` entry point: serves on 127.0.0.1, port 0, until killed.
pub fn main(args: &[String]) -> ExitCode {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let (Some(change_bytes), Some(event_bytes)) = (value("--change-bytes"), value("--event-bytes")) else {
        eprintln!("usage: loadgen --serve-baseline --change-bytes N --event-bytes M");
        return ExitCode::from(2);
    };
    // The same runtime as the app's #[tokio::main]: multi-threaded, one
    // worker per CPU it may use.
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("baseline: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(change_bytes, event_bytes)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baseline: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(change_bytes: usize, event_bytes: usize) -> std::io::Result<()> {
    let fragment = format!("<p>{}</p>", "x".repeat(change_bytes.saturating_sub(7)));
    let state = Arc::new(Baseline {
        fragment: Bytes::from(fragment),
        event_bytes,
        topics: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route("/change", post(change))
        .route("/events/{topic}", get(events))
        .route("/publish/{topic}", post(publish))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    // The app's socket option: without it the kernel does less per small
    // write, and the comparison would include that instead of only the
    // app's own work.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    println!("loadgen-baseline listening on http://{}", axum::serve::Listener::local_addr(&listener)?);
    axum::serve(listener, app).await
}

async fn change(State(state): State<Arc<Baseline>>, _form: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], state.fragment.clone()).into_response()
}

async fn publish(State(state): State<Arc<Baseline>>, Path(topic): Path<String>) -> String {
    let mut topics = state.topics.lock().unwrap_or_else(|e| e.into_inner());
    let topic = Baseline::topic(&mut topics, &topic);
    topic.last_id += 1;
    let _ = topic.sender.send(state.event(topic.last_id));
    topic.last_id.to_string()
}

async fn events(State(state): State<Arc<Baseline>>, Path(topic): Path<String>) -> Response {
    let (mut receiver, current) = {
        let mut topics = state.topics.lock().unwrap_or_else(|e| e.into_inner());
        let topic = Baseline::topic(&mut topics, &topic);
        (topic.sender.subscribe(), state.event(topic.last_id))
    };
    let body = async_stream::stream! {
        yield Ok::<_, Infallible>(current);
        loop {
            match receiver.recv().await {
                Ok(event) => yield Ok(event),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    };
    let headers = [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-store")];
    (headers, Body::from_stream(body)).into_response()
}
