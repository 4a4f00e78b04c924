//! Log lines on stderr, as text or JSON, filtered by `RUST_LOG` (default
//! `info`: one line per request with its route, status and latency).
//!
//! A request only appends its formatted line to a bounded buffer in
//! memory; a background thread writes the buffer out every
//! [`FLUSH_EVERY`]. `tracing-appender`'s non-blocking writer wakes its
//! thread for every line instead: a futex wake and a context switch per
//! request, which on two cores cost about a quarter of the server's CPU
//! per change (BENCHMARKS.md). When the buffer is full, lines are dropped
//! and counted rather than queued without bound, and a line says how many.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How stale a log line can get before it reaches stderr.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Log text held between two flushes: at 40,000 requests a second, about
/// 150 ms of lines.
const BUFFER_LIMIT: usize = 1 << 20;

/// Starts logging. Keep the guard alive: dropping it writes the rest.
pub fn init_logs(format: &str) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = io::IsTerminal::is_terminal(&io::stderr());
    let (sink, guard) = LogBuffer::start(io::stderr(), BUFFER_LIMIT, FLUSH_EVERY);
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(sink).with_ansi(colour);
    if format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    guard
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
