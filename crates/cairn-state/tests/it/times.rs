//! Times, on both engines: cairn keeps and hands out times from year 1 to 9999 only
//! ([`cairn::EARLIEST_TIME_MILLIS`] to [`cairn::LATEST_TIME_MILLIS`]), whatever is asked of
//! it and whatever a row holds. A due time of `i64::MAX` (what `--not-before 10000y` stored)
//! made every `cairn ledger list` panic, and Python's `list()` raise, until the item went.

use std::time::Duration;

use cairn::{format_time, ErrorKind, QueueItem, EARLIEST_TIME_MILLIS, LATEST_TIME_MILLIS};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use crate::contract;
use crate::engines::{Engine, Fixture};

const RANGE: std::ops::RangeInclusive<i64> = EARLIEST_TIME_MILLIS..=LATEST_TIME_MILLIS;

contract! {
    /// A time out of range is refused when it is given, naming the item, and nothing of the
    /// batch is queued; a delay that reaches past the range is refused the same way. Times
    /// before 1970 are times like any other.
    fn a_due_time_out_of_range_is_refused_and_nothing_is_queued(f) {
        let l = f.store.ledger("q");
        let ten_thousand_years = Duration::from_secs(10_000 * 366 * 86_400);
        for item in [
            QueueItem::new("x").delay(ten_thousand_years),
            QueueItem::new("x").not_before_millis(LATEST_TIME_MILLIS + 1),
            QueueItem::new("x").not_before_millis(EARLIEST_TIME_MILLIS - 1),
            QueueItem::new("x").not_before_millis(i64::MAX),
        ] {
            let err = l.enqueue_items([QueueItem::new("fine"), item]).expect_err("out of range");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains("\"x\""), "names the item: {err}");
            assert!(err.to_string().contains("9999-12-31T23:59:59.999Z"), "says the range: {err}");
        }
        assert_eq!(l.counts()?.pending, 0, "nothing queued");
        l.enqueue_items([
            QueueItem::new("moon").not_before_millis(-14_182_940_000),
            QueueItem::new("last").not_before_millis(LATEST_TIME_MILLIS),
        ])?;
        assert_eq!(l.item("moon")?.expect("queued").due_millis, Some(-14_182_940_000));
        assert_eq!(l.claim_next("w", Duration::from_secs(60))?.expect("due long ago").id(), "moon");
        Ok(())
    }

    /// A lease or a lock of ten thousand years holds until the latest time cairn keeps.
    fn a_lease_or_lock_beyond_the_range_ends_at_the_latest_time(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a"])?;
        let forever = Duration::from_secs(u64::MAX);
        let claim = l.claim_next("w", forever)?.expect("a");
        assert_eq!(claim.lease_until_millis(), LATEST_TIME_MILLIS);
        assert_eq!(l.held_claim("a", "w")?.expect("held").lease_until_millis(), LATEST_TIME_MILLIS);
        let _guard = f.store.try_lock("job", forever)?.expect("free");
        let holder = f.store.lock_holder("job")?.expect("held");
        assert_eq!(holder.expires_at_millis, LATEST_TIME_MILLIS);
        Ok(())
    }

    /// Whatever integer a row holds where cairn keeps a time (written by hand, or by an
    /// earlier version), every reading operation works and hands out times in the range.
    fn stored_times_of_any_value_are_read_without_panic_and_handed_out_in_range(f) {
        let cases = match f.engine {
            Engine::Sqlite => 48,
            Engine::Postgres => 12,
        };
        let config = ProptestConfig { cases, source_file: Some(file!()), ..ProptestConfig::default() };
        let case = std::cell::Cell::new(0u32);
        let time = prop_oneof![
            Just(i64::MAX),
            Just(i64::MIN),
            Just(LATEST_TIME_MILLIS + 1),
            Just(EARLIEST_TIME_MILLIS - 1),
            Just(0i64),
            any::<i64>(),
        ];
        let outcome = TestRunner::new(config).run(&proptest::collection::vec(time, 8), |times| {
            case.set(case.get() + 1);
            one_case(f, &format!("t{}", case.get()), &times)
        });
        if let Err(e) = outcome {
            panic!("{e}");
        }
        Ok(())
    }
}

/// Items, a claim, a cache entry, a fill marker, a lock and a checkpoint in namespace `ns`,
/// their times overwritten with `times`, then read every way there is.
fn one_case(f: &Fixture, ns: &str, times: &[i64]) -> Result<(), TestCaseError> {
    let store = &f.store;
    let l = store.ledger(ns);
    let minute = Duration::from_secs(60);
    l.enqueue(["due", "claimed", "done"]).expect("enqueue");
    let held = l.claim("claimed", "w", minute).expect("claim").expect("free");
    l.mark_done("done").expect("mark");
    store.cache(ns).set("k", "v", minute).expect("set");
    let lock = format!("{ns}-lock");
    store.try_lock(&lock, minute).expect("lock").expect("free").into_held();
    store.checkpoint(ns).set("p").expect("checkpoint");
    let q = |s: &str| s.replace('\'', "''");
    let ns = q(ns);
    f.raw_execute(&format!(
        "UPDATE cairn_ledger SET due = {} WHERE ns = '{ns}' AND id = 'due';
         UPDATE cairn_ledger SET seq = {} WHERE ns = '{ns}' AND id = 'claimed';
         UPDATE cairn_ledger SET updated_at = {} WHERE ns = '{ns}';
         UPDATE cairn_cache SET expires_at = {} WHERE ns = '{ns}';
         UPDATE cairn_lock SET expires_at = {}, acquired_at = {} WHERE name = '{}';
         UPDATE cairn_checkpoint SET updated_at = {} WHERE job = '{ns}';",
        times[0],
        times[1],
        times[2],
        times[3],
        times[4],
        times[5],
        q(&lock),
        times[6],
    ));
    let check = |what: &str, t: i64| -> Result<(), TestCaseError> {
        prop_assert!(RANGE.contains(&t), "{}: {} is out of range", what, t);
        prop_assert!(!format_time(t).is_empty());
        Ok(())
    };
    for item in l.list(None, None, 10).expect("list") {
        check("updated_at", item.updated_at_millis)?;
        if let Some(due) = item.due_millis {
            check("due", due)?;
        }
    }
    for id in ["due", "claimed", "done"] {
        let item = l.item(id).expect("item").expect("there");
        check("item's updated_at", item.updated_at_millis)?;
    }
    if let Some(c) = l.held_claim("claimed", "w").expect("held_claim") {
        check("lease_until", c.lease_until_millis())?;
        let _ = l.extend(&c, minute);
    }
    l.counts().expect("counts");
    for c in l.claim_next_many("w2", minute, 5).expect("claim_next_many") {
        check("a new claim's lease_until", c.lease_until_millis())?;
    }
    let _ = l.complete(&held);
    let cache = store.cache(ns.as_str());
    let _ = cache.get::<String>("k").expect("get");
    cache.keys("").expect("keys");
    cache.stats().expect("stats");
    store.sweep().expect("sweep");
    for h in store.lock_holders(&lock, 1).expect("holders") {
        check("a lock's expiry", h.expires_at_millis)?;
    }
    store.checkpoint(ns.as_str()).get::<String>().expect("checkpoint");
    f.clock.advance(Duration::from_millis(1));
    Ok(())
}
