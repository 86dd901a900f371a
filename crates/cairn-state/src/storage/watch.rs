//! Waiting for a ledger namespace to change: the engine's part of a blocking claim
//! (`crate::ledger::wait`). Each engine tells when another connection committed as cheaply as
//! it can (a file: inotify and `PRAGMA data_version`; a server: polling with backoff), and
//! reads what a waiter's next deadline is made of.

use std::time::Duration;

use crate::error::Result;

engine_ops! {
    /// Change detection for waiting claims.
    trait WatchOps {
        /// What a waiter's next deadline is computed from, in the namespace `ns`.
        fn ledger_wake(&self, ns: &str) -> Result<WakeRow>;
        /// A watcher of other connections' commits to this store.
        fn watcher(&self) -> Result<Watcher>;
    }
}

/// What a waiting claim reads between attempts: when the next item comes due, when the first
/// claim's lease runs out, and whether the namespace is paused. Compared from one read to the
/// next, it also tells an engine without notifications that the namespace changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WakeRow {
    /// The earliest `due` of a pending item (Unix ms).
    pub earliest_due: Option<i64>,
    /// The earliest lease expiry of a claimed item (Unix ms).
    pub earliest_expiry: Option<i64>,
    /// `cairn_ledger_ns.paused_until` (Unix ms; `None`: not paused).
    pub paused_until: Option<i64>,
    /// Claimed items (few: one per worker): a completion frees an item's group.
    pub claimed: i64,
    /// Some item is pending or claimed.
    pub active: bool,
}

impl WakeRow {
    /// The next time, after `now`, at which an item may become claimable without any other
    /// change: the end of a pause, else the next due time or lease expiry. Times already past
    /// are left out: an item due but not handed out is blocked (its group is busy) and waits
    /// for a change, not for the clock.
    pub(crate) fn next_event(&self, now: i64) -> Option<i64> {
        if let Some(until) = self.paused_until.filter(|&t| t > now) {
            return self.active.then_some(until);
        }
        [self.earliest_due, self.earliest_expiry].into_iter().flatten().filter(|&t| t > now).min()
    }
}

/// Waits for another connection's commit, or a time.
pub(crate) enum Watcher {
    /// A file's changes, told by the operating system where it can and checked with
    /// `PRAGMA data_version`.
    File(super::sqlite::watch::FileWatch),
    /// No notification: the waiter reads the namespace after each nap ([`WakeRow`] tells a
    /// change) with a backoff from `min` to `max`, back to `min` after a change.
    Poll { nap: Duration, min: Duration, max: Duration },
}

/// What [`Watcher::wait`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woke {
    /// Another connection committed.
    Changed,
    /// Nothing known: the time passed, or an engine that cannot tell napped.
    Unknown,
}

impl Watcher {
    /// A polling watcher napping from `min` to `max`.
    pub(crate) fn poll(min: Duration, max: Duration) -> Watcher {
        Watcher::Poll { nap: min, min, max }
    }

    /// Wait up to `max` for another connection's commit.
    pub(crate) fn wait(&mut self, max: Duration) -> Result<Woke> {
        match self {
            Watcher::File(w) => w.wait(max),
            Watcher::Poll { nap, max: cap, .. } => {
                std::thread::sleep((*nap).min(max));
                *nap = (*nap * 2).min(*cap);
                Ok(Woke::Unknown)
            }
        }
    }

    /// Start a new wait with a watcher kept from an earlier one.
    pub(crate) fn rearm(&mut self) {
        match self {
            Watcher::File(w) => w.rearm(),
            Watcher::Poll { nap, min, .. } => *nap = *min,
        }
    }

    /// The namespace changed: a polling watcher looks again soon.
    pub(crate) fn saw_change(&mut self) {
        if let Watcher::Poll { nap, min, .. } = self {
            *nap = *min;
        }
    }

    /// True if [`Watcher::wait`] reports commits ([`Woke::Changed`]); false for one that only
    /// naps, whose caller must read the namespace to find out.
    pub(crate) fn notifies(&self) -> bool {
        matches!(self, Watcher::File(_))
    }
}

#[cfg(test)]
mod tests {
    use super::WakeRow;

    fn row(due: Option<i64>, expiry: Option<i64>, paused: Option<i64>) -> WakeRow {
        WakeRow { earliest_due: due, earliest_expiry: expiry, paused_until: paused, claimed: 0, active: true }
    }

    #[test]
    fn the_next_event_is_the_earliest_future_due_time_or_lease_expiry() {
        assert_eq!(row(Some(150), Some(120), None).next_event(100), Some(120));
        assert_eq!(row(Some(150), None, None).next_event(100), Some(150));
        assert_eq!(row(None, None, None).next_event(100), None, "nothing comes due by itself");
    }

    #[test]
    fn a_due_item_not_handed_out_waits_for_a_change_not_for_the_clock() {
        // Due at 90 but not claimed (its group is busy): no deadline from it, so no spinning.
        assert_eq!(row(Some(90), None, None).next_event(100), None);
        assert_eq!(row(Some(90), Some(300), None).next_event(100), Some(300));
    }

    #[test]
    fn a_pause_puts_the_next_event_at_its_end() {
        assert_eq!(row(Some(90), None, Some(500)).next_event(100), Some(500));
        assert_eq!(
            row(Some(150), None, Some(500)).next_event(100),
            Some(500),
            "nothing before the pause ends"
        );
        assert_eq!(
            row(Some(150), None, Some(50)).next_event(100),
            Some(150),
            "a pause that ended is no pause"
        );
        let idle = WakeRow { active: false, ..row(None, None, Some(500)) };
        assert_eq!(idle.next_event(100), None, "an empty namespace waits for a change");
    }
}
