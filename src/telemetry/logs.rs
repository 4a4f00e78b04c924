//! Log lines on stderr, as text or JSON, filtered by `RUST_LOG` (default
//! `info`: one line per request with its route, status and latency).
//!
//! A request only appends its formatted line to a bounded buffer in
//! memory; a background thread writes the buffer out every
//! [`FLUSH_EVERY`]. `tracing-appender`'s non-blocking writer wakes its
//! thread for every line instead, with its syscalls and a context switch
//! on the request's core (measured in BENCHMARKS.md). When the buffer is full, lines are
//! dropped and counted rather than queued without bound, and a line says
//! how many.

use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// How stale a log line can get before it reaches stderr.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Log text held between two flushes: far more than a busy server writes
/// in [`FLUSH_EVERY`].
const BUFFER_LIMIT: usize = 1 << 20;

/// Starts logging. Keep the guard alive: dropping it writes the rest.
pub fn init_logs(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (sink, guard) = LogBuffer::start(io::stderr(), BUFFER_LIMIT, FLUSH_EVERY);
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(sink).with_ansi(false);
    if format == LogFormat::Json {
        logs.json().init();
    } else {
        logs.event_format(TextLine).init();
    }
    log_panics();
    guard
}

/// Panics go to the log, with where they happened; the request that
/// panicked gets a 500 and the server goes on (see `routes`).
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(location = location.as_deref().unwrap_or("unknown"), "panic: {message}");
    }));
}

/// The text format, in the shape of `tracing-subscriber`'s default:
/// `2026-11-26T02:47:42.123456Z  INFO target: message key=value …`.
/// Written directly: the default's styling and time formatting cost about
/// twice as much per request (BENCHMARKS.md). The fields of the spans
/// around the event (a request's id) follow its own.
struct TextLine;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(match *meta.level() {
            Level::ERROR => " ERROR ",
            Level::WARN => "  WARN ",
            Level::INFO => "  INFO ",
            Level::DEBUG => " DEBUG ",
            Level::TRACE => " TRACE ",
        })?;
        writer.write_str(meta.target())?;
        writer.write_char(':')?;
        let mut fields = Fields { out: &mut writer, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        for span in ctx.event_scope().into_iter().flat_map(|scope| scope.from_root()) {
            if let Some(formatted) = span.extensions().get::<FormattedFields<N>>()
                && !formatted.is_empty()
            {
                writer.write_char(' ')?;
                writer.write_str(formatted)?;
            }
        }
        writer.write_char('\n')
    }
}

/// Writes each field as ` name=value` (the message bare), with control
/// characters escaped so no value can start a forged line.
struct Fields<'w, 'a> {
    out: &'w mut Writer<'a>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// Writes ` name=` (or just ` ` for the message), then the value.
    fn write(&mut self, field: &Field, value: impl FnOnce(&mut NoControl<'_, Writer<'_>>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let out = &mut NoControl(&mut *self.out);
        self.result = (|| {
            out.0.write_char(' ')?;
            if field.name() != "message" {
                out.0.write_str(field.name())?;
                out.0.write_char('=')?;
            }
            value(out)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write(field, |out| out.0.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write(field, |out| out.0.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write(field, |out| out.0.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, |out| out.write_str(value));
        } else {
            self.write(field, |out| write!(out, "{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, |out| write!(out, "{value:?}"));
    }
}

/// Passes text through, writing control characters (a newline, an
/// escape sequence) as Rust escapes.
struct NoControl<'w, W>(&'w mut W);

impl<W: fmt::Write> fmt::Write for NoControl<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if !text.bytes().any(|b| b.is_ascii_control()) {
            return self.0.write_str(text);
        }
        for c in text.chars() {
            if c.is_ascii_control() {
                write!(self.0, "{}", c.escape_default())?;
            } else {
                self.0.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// RFC 3339 in UTC with microseconds: `2026-11-26T02:47:42.123456Z`.
fn write_timestamp(out: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let second_of_day = seconds % 86_400;
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_micros()
    )
}

/// The Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Lines waiting for the next flush.
#[derive(Default)]
struct Pending {
    text: Mutex<Vec<u8>>,
    dropped: AtomicU64,
}

/// Where log lines go: a cheap handle to the shared buffer.
#[derive(Clone)]
pub struct LogBuffer {
    pending: Arc<Pending>,
    limit: usize,
}

impl LogBuffer {
    /// A buffer of at most `limit` bytes, flushed to `out` every `interval`
    /// by a thread of its own, and once more when the guard is dropped.
    fn start<W: Write + Send + 'static>(out: W, limit: usize, interval: Duration) -> (Self, LogGuard) {
        let pending = Arc::new(Pending::default());
        let (stop, stopped) = mpsc::channel();
        let flusher = Flusher { pending: Arc::clone(&pending), out, spare: Vec::new(), interval };
        let thread = std::thread::Builder::new()
            .name("log-flusher".into())
            .spawn(move || flusher.run(&stopped))
            .map_err(|e| eprintln!("weight-converter: no log thread ({e}); logs are dropped"))
            .ok();
        (Self { pending, limit }, LogGuard { stop: Some(stop), thread })
    }

    /// Appends one whole line, or drops it if the buffer is full.
    fn append(&self, line: &[u8]) {
        let mut text = self.pending.text.lock().unwrap_or_else(PoisonError::into_inner);
        if text.len() + line.len() <= self.limit {
            text.extend_from_slice(line);
        } else {
            drop(text);
            self.pending.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Write for LogBuffer {
    /// The formatter hands over each event as one complete line.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

struct Flusher<W> {
    pending: Arc<Pending>,
    out: W,
    /// Swapped with the pending text, so requests never wait on `out`.
    spare: Vec<u8>,
    interval: Duration,
}

impl<W: Write> Flusher<W> {
    fn run(mut self, stopped: &mpsc::Receiver<()>) {
        loop {
            let last = !matches!(stopped.recv_timeout(self.interval), Err(RecvTimeoutError::Timeout));
            self.flush();
            if last {
                return;
            }
        }
    }

    fn flush(&mut self) {
        {
            let mut text = self.pending.text.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut *text, &mut self.spare);
        }
        let dropped = self.pending.dropped.swap(0, Ordering::Relaxed);
        // Nowhere left to report a failing stderr, so errors are ignored.
        let _ = self.out.write_all(&self.spare);
        if dropped > 0 {
            let _ =
                writeln!(self.out, "weight-converter: {dropped} log lines dropped: the log buffer was full");
        }
        let _ = self.out.flush();
        self.spare.clear();
    }
}

/// Stops the flusher after one last flush.
pub struct LogGuard {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `out` the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn lines_reach_the_output_and_the_rest_is_written_on_drop() {
        let out = Captured::default();
        let (mut sink, guard) = LogBuffer::start(out.clone(), 1024, Duration::from_millis(10));
        sink.write_all(b"first\n").unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(out.text(), "first\n", "flushed without being asked");
        sink.write_all(b"second\n").unwrap();
        drop(guard);
        assert_eq!(out.text(), "first\nsecond\n");
    }

    #[test]
    fn timestamps_are_rfc_3339_in_utc() {
        let at = |seconds: u64, micros: u32| {
            let mut text = String::new();
            let time = SystemTime::UNIX_EPOCH + Duration::new(seconds, micros * 1000);
            write_timestamp(&mut text, time).unwrap();
            text
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_795_660_062, 123_456), "2026-11-26T02:27:42.123456Z");
        assert_eq!(at(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
    }

    #[test]
    fn control_characters_cannot_forge_a_line() {
        let mut text = String::new();
        write!(NoControl(&mut text), "route=/x\n2026-01-01T00:00:00Z  INFO forged\u{1b}[31m").unwrap();
        assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text}");
        assert!(text.contains("\\n2026") && text.contains("\\u{1b}"), "{text}");
    }

    #[test]
    fn a_full_buffer_drops_whole_lines_and_says_how_many() {
        let out = Captured::default();
        // No flush before the drop: only the limit decides.
        let (mut sink, guard) = LogBuffer::start(out.clone(), 10, Duration::from_secs(3600));
        for line in ["12345\n", "67890\n", "abcde\n", "x\n"] {
            sink.write_all(line.as_bytes()).unwrap();
        }
        drop(guard);
        let text = out.text();
        assert!(text.starts_with("12345\nx\n"), "{text}");
        assert!(text.contains("2 log lines dropped"), "{text}");
    }
}
