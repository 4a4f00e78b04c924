//! Warnings that a flood could repeat thousands of times a second (refused
//! connections, accept errors): the first is logged at once, then at most
//! one a second, saying how many were left out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_secs(1);

pub struct RateLimitedLog {
    what: &'static str,
    state: Mutex<State>,
}

struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    pub const fn new(what: &'static str) -> Self {
        Self { what, state: Mutex::new(State { last: None, suppressed: 0 }) }
    }

    pub fn warn(&self, detail: &str) {
        if let Some(suppressed) = self.due(Instant::now()) {
            tracing::warn!(detail, suppressed, "{}", self.what);
        }
    }

    /// `Some(how many were left out since the last one)` when a line is due.
    fn due(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.last.is_some_and(|last| now < last + EVERY) {
            state.suppressed += 1;
            return None;
        }
        state.last = Some(now);
        Some(std::mem::take(&mut state.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_counting_the_rest() {
        let log = RateLimitedLog::new("x");
        let t = Instant::now();
        assert_eq!(log.due(t), Some(0));
        assert_eq!(log.due(t + Duration::from_millis(10)), None);
        assert_eq!(log.due(t + Duration::from_millis(20)), None);
        assert_eq!(log.due(t + EVERY + Duration::from_millis(1)), Some(2));
    }
}
