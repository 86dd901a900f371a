//! Rate limits shared by every process (and host) using a store: "this API takes 10 calls a
//! second, across all my workers".
//!
//! The algorithm is GCRA (the generic cell rate algorithm): each name keeps one timestamp, its
//! theoretical arrival time `tat`. With `T` the interval between slots (the rate's period over
//! its count) and a burst of `B`, a caller at time `now` takes a slot if `tat - T·(B-1) <= now`,
//! moving `tat` to `max(tat, now) + T`; otherwise the next slot frees at `tat - T·(B-1)`, exactly.
//! One statement decides and records it, so it is atomic whoever else asks at the same moment,
//! holds nothing between calls, and a process killed at any point leaves nothing to recover.
//!
//! **The guarantee**: in any window of time of length `W`, at most `rate × W + B` slots are
//! handed out (for `k` slots in a window, `tat` moved by `k·T` while every one of them found
//! `tat` at most `T·(B-1)` ahead of its time, so `(k-1)·T <= W + T·(B-1)`). Time is the store's
//! clock on a file (all its processes share one host's clock) and the server's clock on
//! PostgreSQL, read by the statement itself, so hosts whose clocks disagree still share one
//! timeline. And no slot is lost: a steady demand gets the whole rate.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::names::validate_name;
use crate::storage::{LimitOps, LimitRow};
use crate::store::Store;

/// The largest burst a limiter takes.
pub const MAX_BURST: u32 = 1_000_000;

/// The longest a limiter may look ahead (`interval × burst`): a century, in microseconds. Far
/// beyond any real limit, and far from the end of a 64-bit count of microseconds.
const MAX_SPAN_MICROS: i64 = 100 * 366 * 86_400 * 1_000_000;

/// A rate: `count` slots per `period`. Written `N/s`, `N/min`, `N/h`, `N/d`, or `N/DUR` with a
/// duration in [`parse_duration`](crate::parse_duration)'s grammar (`5/10s`, `100/15min`).
///
/// Time is counted in microseconds, so the interval between slots is `period / count` rounded
/// up to a whole microsecond: `3/s` is one slot every 333,334 µs, and a rate above
/// 1,000,000/s acts as 1,000,000/s (the rounding only ever slows a limit down, never lets more
/// through).
///
/// ```
/// use cairn::Rate;
/// use std::time::Duration;
///
/// let r: Rate = "10/s".parse()?;
/// assert_eq!((r.count(), r.period()), (10, Duration::from_secs(1)));
/// assert_eq!("5/10s".parse::<Rate>()?.period(), Duration::from_secs(10));
/// assert_eq!("100/min".parse::<Rate>()?.to_string(), "100/min");
/// assert_eq!(Rate::new(3, Duration::from_secs(3600))?.to_string(), "3/h");
/// for bad in ["0/s", "-1/s", "10/0s", "10", "ten/s", "1.5/s", "10/M"] {
///     assert!(bad.parse::<Rate>().is_err(), "{bad}");
/// }
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    count: u64,
    period: Duration,
}

impl Rate {
    /// `count` slots per `period`. Refused: a count of 0 (nothing would pass), a period of 0,
    /// and an interval between slots longer than a century.
    pub fn new(count: u64, period: Duration) -> Result<Rate> {
        if count == 0 {
            return Err(Error::invalid("a rate of 0 per period lets nothing through: give at least 1"));
        }
        if period.is_zero() {
            return Err(Error::invalid(format!(
                "a rate of {count} per 0s has no period: give one, e.g. {count}/s"
            )));
        }
        let rate = Rate { count, period };
        if rate.interval_micros() > MAX_SPAN_MICROS {
            return Err(Error::invalid(format!(
                "a rate of {rate} leaves more than a century between slots: give a shorter period"
            )));
        }
        Ok(rate)
    }

    /// How many slots per period.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The interval between slots in microseconds, rounded up, at least 1.
    pub(crate) fn interval_micros(&self) -> i64 {
        let nanos = self.period.as_nanos();
        let per = u128::from(self.count) * 1000;
        i64::try_from(nanos.div_ceil(per).max(1)).unwrap_or(i64::MAX)
    }
}

impl std::fmt::Display for Rate {
    /// `N/s`, `N/min`, `N/h`, `N/d`, else `N/DUR` (`5/10s`): text [`Rate`]'s parser reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.period {
            p if p == Duration::from_secs(1) => "s".to_owned(),
            p if p == Duration::from_secs(60) => "min".to_owned(),
            p if p == Duration::from_secs(3600) => "h".to_owned(),
            p if p == Duration::from_secs(86_400) => "d".to_owned(),
            p => crate::duration::format_duration(p).replace(' ', ""),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl std::str::FromStr for Rate {
    type Err = Error;

    /// `N/UNIT` or `N/DUR`: see [`Rate`].
    fn from_str(text: &str) -> Result<Rate> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid rate {text:?} ({why}): write a count per period, e.g. 10/s, 100/min, 5000/h, 1/d or 5/10s"
            ))
        };
        let (count, per) = text.split_once('/').ok_or_else(|| bad("no '/'"))?;
        let (count, per) = (count.trim(), per.trim());
        if count.starts_with('-') {
            return Err(bad("a count cannot be negative"));
        }
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("{count:?} is not a whole number")));
        }
        let count: u64 = count.parse().map_err(|_| bad("the count is too large"))?;
        // A unit alone (`s`, `min`) is one of it; anything else is a duration (`10s`).
        let period = if per.starts_with(|c: char| c.is_ascii_digit()) {
            crate::duration::parse_duration(per)
        } else {
            crate::duration::parse_duration(&format!("1{per}"))
        }
        .map_err(|_| {
            bad(&format!("{per:?} is not a period: give a unit (s, min, h, d) or a duration (10s)"))
        })?;
        Rate::new(count, period).map_err(|e| match e {
            Error::InvalidInput(why) => bad(&why),
            other => other,
        })
    }
}

/// What [`Limiter::take`] decided: a slot taken, or when the next one frees.
///
/// ```
/// use cairn::{ManualClock, Options};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(1_700_000_000_000);
/// let store = Options::new().clock(clock).open_in_memory()?;
/// let mail = store.limiter("smtp", "6/min".parse()?);
/// let first = mail.take()?;
/// assert!(first.taken() && first.retry_after().is_none());
/// assert_eq!(first.at_micros(), 1_700_000_000_000_000);
/// assert_eq!(mail.take()?.retry_after(), Some(Duration::from_secs(10)));
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    taken: bool,
    retry_after: Duration,
    at_micros: i64,
}

impl Decision {
    /// True if a slot was taken.
    pub fn taken(&self) -> bool {
        self.taken
    }

    /// `None` if a slot was taken; else how long until the next one frees (exact, as of the
    /// decision, unless another caller takes it first).
    pub fn retry_after(&self) -> Option<Duration> {
        (!self.taken).then_some(self.retry_after)
    }

    /// When the decision was made, in microseconds since the Unix epoch, on the limiter's
    /// timeline: the store's clock on a file, the server's on PostgreSQL. The bound holds for
    /// the slots' times on this timeline.
    pub fn at_micros(&self) -> i64 {
        self.at_micros
    }
}

/// A rate limit shared by every process (and host) using the store, from [`Store::limiter`]:
/// at most `rate × W + burst` slots in any window of length `W` (the guarantee and how it is
/// kept are in [`Store::limiter`]'s documentation).
///
/// Every caller of one name should give the same rate and burst; a caller giving others judges
/// the name's one timestamp by its own.
///
/// ```
/// use cairn::Store;
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path().join("state.db"))?;
/// let api = store.limiter("github", "5000/h".parse()?).burst(100);
/// if api.acquire(Some(Duration::from_secs(30)))? {
///     // the call
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Limiter<'s> {
    store: &'s Store,
    name: String,
    rate: Rate,
    burst: u32,
}

impl Store {
    /// The rate limit `name`: at most `rate`, across every process (and host) using this
    /// store, with a burst of 1 unless [`Limiter::burst`] says more.
    ///
    /// The guarantee: in any window of time of length `W`, at most `rate × W + burst` slots
    /// are handed out; a steady demand gets the whole rate (no slot is lost while callers wait
    /// for it). Each take is one atomic statement on one row per name (GCRA), on the server's
    /// clock on PostgreSQL; nothing is held between calls, so a killed process leaves nothing
    /// behind. The burst is how many slots may be taken at once after a quiet spell (the
    /// default, 1, spaces every slot by the interval).
    ///
    /// ```
    /// use cairn::{ManualClock, Options, Rate};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let store = Options::new().clock(clock.clone()).open_in_memory()?;
    /// let api = store.limiter("api", "10/s".parse::<Rate>()?).burst(2);
    /// assert!(api.try_acquire()? && api.try_acquire()?); // the burst
    /// let refused = api.take()?;
    /// assert_eq!(refused.retry_after(), Some(Duration::from_millis(100)));
    /// clock.advance(Duration::from_millis(100));
    /// assert!(api.try_acquire()?);
    /// assert!(api.acquire(None)?); // waits (on this clock, moves it) for the next slot
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn limiter(&self, name: &str, rate: Rate) -> Limiter<'_> {
        Limiter { store: self, name: name.to_owned(), rate, burst: 1 }
    }
}

impl Limiter<'_> {
    /// Let up to `n` slots be taken at once after a quiet spell (default 1); the bound in any
    /// window grows by it. 1 to [`MAX_BURST`]; others are refused when a slot is asked for.
    #[must_use]
    pub fn burst(mut self, n: u32) -> Self {
        self.burst = n;
        self
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Take a slot if one is free now; else say when the next one frees. Never waits (beyond
    /// the store's busy timeout for its write lock).
    pub fn take(&self) -> Result<Decision> {
        let (interval, tolerance) = self.validate()?;
        let store = self.store;
        let row: LimitRow = store.write_one(|s| {
            // Read under the write lock on a file, so slots' times follow the order they are
            // taken in.
            let now = (!s.time_from_server()).then(|| s.clock.now_micros());
            s.engine.limit_take(&self.name, interval, tolerance, now)
        })?;
        let retry_after = match (row.taken, row.tat) {
            (true, _) => Duration::ZERO,
            // At least a microsecond: a refusal never says "now".
            (false, Some(tat)) => micros(tat.saturating_sub(tolerance).saturating_sub(row.now).max(1)),
            // The name appeared between the statement's snapshot and its write: ask again.
            (false, None) => micros(1),
        };
        Ok(Decision { taken: row.taken, retry_after, at_micros: row.now })
    }

    /// Take a slot if one is free now; false at once otherwise.
    pub fn try_acquire(&self) -> Result<bool> {
        Ok(self.take()?.taken())
    }

    /// Take a slot, sleeping (on the store's clock) until one frees; false if none can be had
    /// within `timeout` (`None`: no limit). The wait is the exact time to the next slot, so it
    /// makes no needless attempts; when that time is beyond the timeout, false comes at once
    /// rather than after sleeping in vain.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        let clock = &self.store.clock;
        let give_up = timeout.map(|t| clock.now_micros().saturating_add(micros_of(t)));
        loop {
            let Some(wait) = self.take()?.retry_after() else {
                return Ok(true);
            };
            if let Some(give_up) = give_up {
                let left = give_up.saturating_sub(clock.now_micros());
                if micros_of(wait) > left {
                    return Ok(false);
                }
            }
            clock.sleep(wait);
        }
    }

    /// The interval and the tolerance, in microseconds, once the name and burst are checked.
    fn validate(&self) -> Result<(i64, i64)> {
        validate_name("limiter name", &self.name, crate::MAX_KEY_BYTES)?;
        if self.burst == 0 || self.burst > MAX_BURST {
            return Err(Error::invalid(format!(
                "a limiter's burst is 1 to {MAX_BURST} slots; {} was asked",
                self.burst
            )));
        }
        let interval = self.rate.interval_micros();
        match interval.checked_mul(i64::from(self.burst)) {
            Some(span) if span <= MAX_SPAN_MICROS => Ok((interval, span - interval)),
            _ => Err(Error::invalid(format!(
                "a rate of {} with a burst of {} looks more than a century ahead: give a smaller burst",
                self.rate, self.burst
            ))),
        }
    }
}

fn micros(n: i64) -> Duration {
    Duration::from_micros(u64::try_from(n).unwrap_or(0))
}

fn micros_of(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_every_documented_form() -> Result<()> {
        let s = Duration::from_secs;
        for (text, count, period) in [
            ("10/s", 10, s(1)),
            ("10/sec", 10, s(1)),
            ("100/min", 100, s(60)),
            ("5000/h", 5000, s(3600)),
            ("1/d", 1, s(86_400)),
            ("5/10s", 5, s(10)),
            (" 3 / 1h30m ", 3, s(5400)),
            ("1/500ms", 1, Duration::from_millis(500)),
        ] {
            let r: Rate = text.parse()?;
            assert_eq!((r.count(), r.period()), (count, period), "{text}");
            assert_eq!(r.to_string().parse::<Rate>()?, r, "{text} prints as text that parses back");
        }
        Ok(())
    }

    #[test]
    fn bad_rates_say_what_is_wrong() {
        for (text, says) in [
            ("0/s", "lets nothing through"),
            ("-5/s", "negative"),
            ("10/0s", "no period"),
            ("10", "no '/'"),
            ("ten/s", "not a whole number"),
            ("1.5/s", "not a whole number"),
            ("10/fortnight", "not a period"),
            ("10/", "not a period"),
            ("1/50000d", "century"),
            ("99999999999999999999999/s", "too large"),
        ] {
            let e = text.parse::<Rate>().expect_err(text);
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_interval_is_rounded_up_to_a_microsecond() -> Result<()> {
        assert_eq!("10/s".parse::<Rate>()?.interval_micros(), 100_000);
        assert_eq!("3/s".parse::<Rate>()?.interval_micros(), 333_334);
        assert_eq!("1000000000/s".parse::<Rate>()?.interval_micros(), 1);
        Ok(())
    }
}
