//! Injectable time, so expiry and leases are tested without sleeping.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time, in milliseconds since the Unix epoch.
///
/// Expiry times are stored as such timestamps, so every process sharing a file must agree on
/// the time: the default [`SystemClock`] does. Tests use [`ManualClock`].
pub trait Clock: Debug + Send + Sync {
    /// The current time in milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;

    /// The current time in microseconds since the Unix epoch, for what paces at finer steps
    /// than a millisecond (a rate limiter). Default: [`Clock::now_millis`] in microseconds.
    fn now_micros(&self) -> i64 {
        self.now_millis().saturating_mul(1000)
    }

    /// Wait for `d`. cairn calls this only while polling for another process (a cache fill in
    /// progress), so a manual clock can move time forward instead of blocking.
    fn sleep(&self, d: Duration);
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        // A clock before 1970 reads as 0 rather than failing: expiry is then conservative.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn now_micros(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A server's clock: its time read once (at open), then advanced by this host's monotonic
/// clock, so that every host sharing a store on a server judges leases on the server's
/// timeline, whatever its own wall clock says, and a step of that wall clock cannot move it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerClock {
    at_open: i64,
    opened: std::time::Instant,
}

impl ServerClock {
    pub(crate) fn new(server_millis: i64) -> Self {
        ServerClock { at_open: server_millis, opened: std::time::Instant::now() }
    }
}

impl Clock for ServerClock {
    fn now_millis(&self) -> i64 {
        self.at_open.saturating_add(duration_millis(self.opened.elapsed()))
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock that moves only when told to: for tests of expiry and leases.
///
/// Clones share the same time. [`Clock::sleep`] advances it, so code that polls makes
/// progress without real waiting.
///
/// ```
/// use cairn::{ManualClock, Options};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(1_000_000);
/// let store = Options::new().clock(clock.clone()).open_in_memory()?;
/// let cache = store.cache("ns");
/// cache.set("k", "v", Duration::from_secs(60))?;
/// clock.advance(Duration::from_secs(61));
/// assert_eq!(cache.get::<String>("k")?, None);
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock that reads `millis` milliseconds since the epoch.
    pub fn new(millis: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(millis)))
    }

    /// Move time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(duration_millis(d), Ordering::SeqCst);
    }

    /// Set the time.
    pub fn set_millis(&self, millis: i64) {
        self.0.store(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    fn sleep(&self, d: Duration) {
        self.advance(d.max(Duration::from_millis(1)));
        std::thread::yield_now();
    }
}

/// The earliest time cairn keeps or shows, 0001-01-01T00:00:00.000Z, in Unix milliseconds:
/// where RFC 3339 years (written with four digits) and Python's `datetime` both can go.
pub const EARLIEST_TIME_MILLIS: i64 = -62_135_596_800_000;

/// The latest time cairn keeps or shows, 9999-12-31T23:59:59.999Z, in Unix milliseconds. A
/// deadline further away (a TTL or a lease of ten thousand years) is kept as this time.
pub const LATEST_TIME_MILLIS: i64 = 253_402_300_799_999;

/// A duration in whole milliseconds, saturating: a TTL of centuries means "practically never".
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `now + d`, at most [`LATEST_TIME_MILLIS`] (unless now is later still): a TTL or a lease
/// of ten thousand years means "practically never", kept as a time every reader can show.
pub(crate) fn deadline(now: i64, d: Duration) -> i64 {
    now.saturating_add(duration_millis(d)).min(LATEST_TIME_MILLIS.max(now))
}

/// A stored time as the API hands it out: within [`EARLIEST_TIME_MILLIS`] and
/// [`LATEST_TIME_MILLIS`], whatever the row holds (one written by hand, or by a version that
/// kept a far deadline as `i64::MAX`).
pub(crate) fn shown_time(millis: i64) -> i64 {
    millis.clamp(EARLIEST_TIME_MILLIS, LATEST_TIME_MILLIS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let c = ManualClock::new(10);
        let c2 = c.clone();
        assert_eq!(c.now_millis(), 10);
        c.advance(Duration::from_millis(5));
        assert_eq!(c2.now_millis(), 15);
        c2.sleep(Duration::from_millis(3));
        assert_eq!(c.now_millis(), 18);
    }

    #[test]
    fn huge_durations_saturate_instead_of_overflowing() {
        assert_eq!(duration_millis(Duration::from_secs(u64::MAX)), i64::MAX);
        assert_eq!(duration_millis(Duration::from_millis(1500)), 1500);
    }

    /// A TTL or lease of ten thousand years ends at the latest time cairn keeps, not at an
    /// integer no date type can show (every reader of `ledger list` used to panic on it).
    #[test]
    fn a_deadline_beyond_the_latest_time_is_kept_as_the_latest_time() {
        let now = 1_700_000_000_000;
        assert_eq!(deadline(now, Duration::from_secs(u64::MAX)), LATEST_TIME_MILLIS);
        assert_eq!(deadline(now, Duration::from_secs(10_000 * 366 * 86_400)), LATEST_TIME_MILLIS);
        assert_eq!(deadline(now, Duration::from_millis(1500)), now + 1500);
        assert_eq!(deadline(LATEST_TIME_MILLIS - 1, Duration::from_millis(5)), LATEST_TIME_MILLIS);
    }

    /// 0001-01-01 and 9999-12-31T23:59:59.999, computed from days: 719,162 days before 1970
    /// and 2,932,897 after it.
    #[test]
    fn the_time_range_runs_from_year_1_to_the_end_of_year_9999() {
        assert_eq!(EARLIEST_TIME_MILLIS, -719_162 * 86_400_000);
        assert_eq!(LATEST_TIME_MILLIS, 2_932_897 * 86_400_000 - 1);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_millis() > 1_577_836_800_000);
    }
}
