//! Giving freed memory back to the system. glibc's allocator keeps the
//! pages it has freed mapped, so after thousands of streams close and
//! sessions expire the process would stay at its peak size for good. After
//! a large drop, `malloc_trim` hands the free pages back.

/// Sessions, streams and connections freed since the last trim before
/// trimming again: enough that a trim (a walk over the heap) stays rare in
/// steady churn.
const FREED_BEFORE_TRIM: usize = 1_000;
/// A smaller load that has fallen to half or less of its peak is also
/// trimmed once it has dropped by this many, so a server that goes quiet
/// after a modest burst comes back down too.
const HALVED_BY_AT_LEAST: usize = 100;

/// Watches how many sessions and streams are live, and trims after drops.
#[derive(Default)]
pub struct Reclaimer {
    last_live: usize,
    freed: usize,
    /// The most live at once since the last trim.
    peak: usize,
}

impl Reclaimer {
    /// Call now and then with the number of live sessions, open streams and
    /// open connections.
    /// Returns whether it trimmed.
    pub fn observe(&mut self, live: usize) -> bool {
        self.freed += self.last_live.saturating_sub(live);
        self.last_live = live;
        self.peak = self.peak.max(live);
        let halved = live <= self.peak / 2 && self.peak - live >= HALVED_BY_AT_LEAST;
        if self.freed < FREED_BEFORE_TRIM && !halved {
            return false;
        }
        self.freed = 0;
        self.peak = live;
        trim();
        true
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim has no preconditions; it only returns free memory
    // to the system and never touches memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_enough_was_freed_not_on_growth() {
        let mut reclaimer = Reclaimer::default();
        assert!(!reclaimer.observe(5_000), "growth frees nothing");
        assert!(!reclaimer.observe(4_500));
        assert!(reclaimer.observe(4_000), "1,000 freed in all");
        assert!(!reclaimer.observe(3_999));
        assert!(!reclaimer.observe(10_000));
    }

    #[test]
    fn trims_when_a_modest_load_has_halved() {
        let mut reclaimer = Reclaimer::default();
        assert!(!reclaimer.observe(800));
        assert!(!reclaimer.observe(500), "not yet half");
        assert!(reclaimer.observe(400), "half of the peak, 400 freed");
        assert!(reclaimer.observe(0), "the peak starts again from 400, and 0 is half of it");
        assert!(!reclaimer.observe(50));
        assert!(!reclaimer.observe(0), "too small a drop to be worth a walk over the heap");
    }
}
