//! Rate limiters: the contract on every engine (on the manual clock), the bound as a property
//! over random times, and the server's clock on PostgreSQL.

use std::time::Duration;

use cairn::{Clock, ErrorKind, ManualClock, Options, Rate, MAX_BURST};
use proptest::prelude::*;

use crate::contract;
use crate::engines::{fixture, Engine};

fn rate(text: &str) -> Rate {
    text.parse().expect("a rate")
}

const MS: fn(u64) -> Duration = Duration::from_millis;

contract! {
    fn a_burst_is_taken_at_once_then_the_next_slot_after_exactly_one_interval(f) {
        let api = f.store.limiter("api", rate("10/s")).burst(3);
        for i in 0..3 {
            assert!(api.try_acquire()?, "slot {i} of the burst");
        }
        let refused = api.take()?;
        assert!(!refused.taken());
        assert_eq!(refused.retry_after(), Some(MS(100)), "the burst's first slot frees one interval later");
        f.clock.advance(MS(99));
        assert_eq!(api.take()?.retry_after(), Some(MS(1)), "exact, to the millisecond");
        f.clock.advance(MS(1));
        let taken = api.take()?;
        assert!(taken.taken());
        assert_eq!(taken.retry_after(), None);
        assert_eq!(taken.at_micros(), 1_700_000_000_100 * 1000, "decided on the store's clock");
        assert!(!api.try_acquire()?);
        Ok(())
    }

    fn a_quiet_spell_refills_the_burst_and_no_more(f) {
        let api = f.store.limiter("api", rate("5/s")).burst(4);
        while api.try_acquire()? {}
        f.clock.advance(Duration::from_secs(60));
        let mut taken = 0;
        while api.try_acquire()? {
            taken += 1;
        }
        assert_eq!(taken, 4, "a minute's quiet gives the burst back, not 300 slots");
        f.clock.advance(MS(400));
        assert!(api.try_acquire()?, "then one slot per 200ms");
        assert!(api.try_acquire()?);
        assert!(!api.try_acquire()?);
        Ok(())
    }

    fn the_default_burst_of_one_spaces_every_slot(f) {
        let api = f.store.limiter("api", rate("2/s"));
        assert!(api.try_acquire()?);
        assert_eq!(api.take()?.retry_after(), Some(MS(500)));
        Ok(())
    }

    fn names_are_independent_and_handles_share_a_name(f) {
        let a = f.store.limiter("a", rate("1/min"));
        let b = f.store.limiter("b", rate("1/min"));
        assert!(a.try_acquire()?);
        assert!(b.try_acquire()?, "another name has its own slots");
        let other = f.reopen();
        let a2 = other.limiter("a", rate("1/min"));
        let refused = a2.take()?;
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(60)), "another process sees the slot taken");
        assert!(other.limiter("c", rate("1/min")).try_acquire()?);
        Ok(())
    }

    fn acquire_sleeps_exactly_until_the_next_slot_or_gives_up_at_once(f) {
        let api = f.store.limiter("api", rate("4/s"));
        assert!(api.acquire(None)?);
        let before = f.clock.now_millis();
        assert!(!api.acquire(Some(MS(249)))?, "the next slot is 250ms away");
        assert_eq!(f.clock.now_millis(), before, "no sleep in vain");
        assert!(api.acquire(Some(MS(250)))?);
        assert_eq!(f.clock.now_millis(), before + 250, "slept the retry-after, on the store's clock");
        assert!(api.acquire(None)?);
        assert_eq!(f.clock.now_millis(), before + 500);
        Ok(())
    }

    fn bad_limiters_are_refused_and_write_nothing(f) {
        for (limiter, says) in [
            (f.store.limiter("api", rate("10/s")).burst(0), "burst is 1 to"),
            (f.store.limiter("api", rate("10/s")).burst(MAX_BURST + 1), "burst is 1 to"),
            (f.store.limiter("", rate("10/s")), "must not be empty"),
            (f.store.limiter("api", rate("1/30d")).burst(10_000), "century"),
        ] {
            for e in [limiter.take().unwrap_err(), limiter.acquire(None).unwrap_err()] {
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                assert!(e.to_string().contains(says), "{e}");
            }
        }
        assert_eq!(f.raw_i64("SELECT count(*) FROM cairn_limit"), 0);
        Ok(())
    }

    fn a_clock_that_goes_back_never_lets_more_through(f) {
        let api = f.store.limiter("api", rate("10/s"));
        assert!(api.try_acquire()?);
        f.clock.set_millis(1_700_000_000_000 - 5_000);
        assert_eq!(api.take()?.retry_after(), Some(Duration::from_millis(5_100)), "judged on the kept time");
        Ok(())
    }
}

/// On PostgreSQL without a clock of the store's own, the statement reads the server's clock:
/// decisions are on the server's timeline, whatever this host's clock says.
#[test]
fn on_postgresql_the_servers_clock_decides() -> Result<(), cairn::Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let store = Options::new().schema(f.schema().expect("a schema")).open(&f.location)?;
    let api = store.limiter("api", rate("1/min")).burst(2);
    let server_before = f.raw_i64("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint");
    let first = api.take()?;
    assert!(first.taken() && api.try_acquire()?);
    let refused = api.take()?;
    let server_after = f.raw_i64("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint");
    assert!((server_before..=server_after).contains(&first.at_micros()), "the server's time");
    let wait = refused.retry_after().expect("refused");
    assert!(wait > Duration::from_secs(59) && wait <= Duration::from_secs(60), "{wait:?}");
    // A store on a manual clock far from the server's shares the row but not the timeline;
    // what matters here is that the server's store ignored its host's clock entirely.
    Ok(())
}

/// For grants at `times` (µs, any order), the most slots in any window: every pair `i < j` of
/// the sorted times bounds a window holding at least `j - i + 1` of them.
fn assert_bound(times: &mut [i64], count: u64, period_us: i64, burst: u32) -> Result<(), TestCaseError> {
    times.sort_unstable();
    for i in 0..times.len() {
        for j in i..times.len() {
            let n = i128::try_from(j - i + 1).unwrap_or(i128::MAX);
            let w = i128::from(times[j] - times[i]);
            // n <= count × w / period + burst, in integers.
            prop_assert!(
                (n - i128::from(burst)) * i128::from(period_us) <= w * i128::from(count),
                "{n} slots within {w}µs at {count} per {period_us}µs, burst {burst}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The bound, for any times callers come at (even out of order, as a clock stepped back
    /// would give): in any window of length W, at most rate × W + burst slots.
    #[test]
    fn no_window_ever_holds_more_than_rate_times_its_length_plus_the_burst(
        count in 1u64..20,
        period_ms in 1u64..3_000,
        burst in 1u32..6,
        times in proptest::collection::vec(0i64..20_000, 1..150),
        sorted in any::<bool>(),
    ) {
        let clock = ManualClock::new(1_700_000_000_000);
        let store = Options::new().clock(clock.clone()).open_in_memory().expect("store");
        let lim = store.limiter("p", Rate::new(count, Duration::from_millis(period_ms)).expect("rate")).burst(burst);
        let mut times = times;
        if sorted {
            times.sort_unstable();
        }
        let mut granted = Vec::new();
        for t in times {
            clock.set_millis(1_700_000_000_000 + t);
            let d = lim.take().expect("take");
            if d.taken() {
                granted.push(d.at_micros());
            }
        }
        prop_assert!(!granted.is_empty(), "the first caller always gets a slot");
        let period_us = i64::try_from(period_ms * 1000).expect("fits");
        assert_bound(&mut granted, count, period_us, burst)?;
    }
}
