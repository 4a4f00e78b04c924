//! Prometheus metrics for `/metrics`.
//!
//! Each app owns its recorder instead of installing a global one, so
//! several apps (tests) in one process keep separate counts.

use std::time::Duration;

use metrics::{Counter, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// Request latency buckets, in seconds: 50 µs to 10 s.
const LATENCY_BUCKETS: &[f64] =
    &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0];

/// Why input was refused, as a metric label.
#[derive(Debug, Clone, Copy)]
pub enum Rejection {
    NotANumber,
    TooLarge,
    Overflow,
}

impl Rejection {
    fn label(self) -> &'static str {
        match self {
            Self::NotANumber => "not_a_number",
            Self::TooLarge => "too_large",
            Self::Overflow => "overflow",
        }
    }
}

/// What `/metrics` reports as it is right now.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    /// `None` where the store cannot count them cheaply (Redis).
    pub sessions: Option<usize>,
    /// Event-stream responses; one may carry several sessions.
    pub open_streams: usize,
    /// Sessions watched, summed over the open streams.
    pub subscriptions: usize,
    pub watched_sessions: usize,
    pub open_connections: usize,
    /// Tasks alive on the runtime: one per connection and stream, plus a
    /// fixed few. A count that only grows is a leak.
    pub tasks: usize,
    /// Under `DATA_DIR`: durable commits (fsyncs), and the writes in them.
    pub durable: Option<crate::session::DurableCommits>,
}

pub struct Metrics {
    recorder: PrometheusRecorder,
    changes: Counter,
    sessions_created: Counter,
    /// Event frames rendered, for writers and for readers.
    frames_rendered: [Counter; 2],
}

const META: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let describe = |name: &'static str, help: &'static str| {
            recorder.describe_gauge(name.into(), None, help.into());
        };
        describe("weight_converter_sessions", "Live sessions.");
        describe("weight_converter_open_streams", "Open event streams.");
        describe("weight_converter_subscriptions", "Sessions watched, summed over the open event streams.");
        describe("weight_converter_watched_sessions", "Sessions with at least one open stream.");
        describe("weight_converter_open_connections", "Open client connections.");
        describe("weight_converter_tasks", "Tasks alive on the async runtime.");
        recorder.describe_counter(
            "weight_converter_store_commits_total".into(),
            None,
            "Durable commits to the session store on disk, one fsync each.".into(),
        );
        recorder.describe_counter(
            "weight_converter_store_writes_total".into(),
            None,
            "New sessions and changes made durable by those commits.".into(),
        );
        recorder.describe_counter(
            "weight_converter_changes_total".into(),
            None,
            "Changes applied to sessions.".into(),
        );
        recorder.describe_counter(
            "weight_converter_rejected_inputs_total".into(),
            None,
            "Inputs refused, by reason.".into(),
        );
        recorder.describe_histogram(
            "weight_converter_request_duration_seconds".into(),
            Some(metrics::Unit::Seconds),
            "Time to answer a request, by route and status (event streams: time to open).".into(),
        );
        let changes = recorder.register_counter(&Key::from_name("weight_converter_changes_total"), &META);
        let sessions_created =
            recorder.register_counter(&Key::from_name("weight_converter_sessions_created_total"), &META);
        recorder.describe_counter(
            "weight_converter_frames_rendered_total".into(),
            None,
            "Event frames rendered, by audience: one per version per audience, shared by every view.".into(),
        );
        let frames_rendered = ["writer", "reader"].map(|audience| {
            let key = Key::from_parts(
                "weight_converter_frames_rendered_total",
                vec![Label::new("audience", audience)],
            );
            recorder.register_counter(&key, &META)
        });
        Self { recorder, changes, sessions_created, frames_rendered }
    }

    pub fn change_applied(&self) {
        self.changes.increment(1);
    }

    fn count(&self, name: &'static str, label: &'static str, value: &'static str) {
        let key = Key::from_parts(name, vec![Label::new(label, value)]);
        self.recorder.register_counter(&key, &META).increment(1);
    }

    /// A connection closed at once, past a cap.
    pub fn connection_refused(&self, reason: &'static str) {
        self.count("weight_converter_connections_refused_total", "reason", reason);
    }

    /// A connection cut for taking too long over a phase.
    pub fn connection_cut(&self, reason: &'static str) {
        self.count("weight_converter_connections_cut_total", "reason", reason);
    }

    /// A connection that ended with an HTTP error hyper answered itself.
    pub fn connection_error(&self, kind: &'static str) {
        self.count("weight_converter_connection_errors_total", "kind", kind);
    }

    pub fn accept_failed(&self) {
        self.recorder
            .register_counter(&Key::from_name("weight_converter_accept_errors_total"), &META)
            .increment(1);
    }

    /// `audience` is the index of `Audience` (writer 0, reader 1).
    pub fn frame_rendered(&self, audience: usize) {
        if let Some(counter) = self.frames_rendered.get(audience) {
            counter.increment(1);
        }
    }

    pub fn session_created(&self) {
        self.sessions_created.increment(1);
    }

    pub fn input_rejected(&self, why: Rejection) {
        self.count("weight_converter_rejected_inputs_total", "reason", why.label());
    }

    /// `route` is a route pattern (or `<unmatched>`), never a raw path, so
    /// the label sets stay few.
    pub fn request_served(&self, route: &str, method: &http::Method, status: u16, took: Duration) {
        // Clients may send any method name; only known ones become labels.
        let method = match *method {
            http::Method::GET => "GET",
            http::Method::HEAD => "HEAD",
            http::Method::POST => "POST",
            http::Method::OPTIONS => "OPTIONS",
            _ => "other",
        };
        // The recorder's registry finds the histogram by the key's hash,
        // under a shared read lock; the labels are few, so the set stays
        // bounded by the routes, methods and statuses.
        let labels = vec![
            Label::new("route", route.to_owned()),
            Label::new("method", method),
            Label::new("status", status.to_string()),
        ];
        let key = Key::from_parts("weight_converter_request_duration_seconds", labels);
        let histogram = self.recorder.register_histogram(&key, &META);
        histogram.record(took.as_secs_f64());
    }

    /// Folds recorded samples into the histograms' buckets. Without it,
    /// samples pile up until the next scrape: call it every second or so.
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    /// The Prometheus text, with the gauges as read at this moment.
    pub fn render(&self, gauges: &Gauges) -> String {
        for (name, value) in [
            ("weight_converter_sessions", gauges.sessions),
            ("weight_converter_open_streams", Some(gauges.open_streams)),
            ("weight_converter_subscriptions", Some(gauges.subscriptions)),
            ("weight_converter_watched_sessions", Some(gauges.watched_sessions)),
            ("weight_converter_open_connections", Some(gauges.open_connections)),
            ("weight_converter_tasks", Some(gauges.tasks)),
        ] {
            if let Some(value) = value {
                self.recorder.register_gauge(&Key::from_name(name), &META).set(value as f64);
            }
        }
        if let Some(durable) = gauges.durable {
            for (name, value) in [
                ("weight_converter_store_commits_total", durable.commits),
                ("weight_converter_store_writes_total", durable.writes),
            ] {
                self.recorder.register_counter(&Key::from_name(name), &META).absolute(value);
            }
        }
        self.recorder.handle().render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
