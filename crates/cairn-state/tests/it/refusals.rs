//! Values that would switch a guarantee off are refused with `InvalidInput` and a message that
//! gives the valid range, never clamped or accepted silently; on both engines.

use std::time::Duration;

use cairn::{Error, ErrorKind, Options};

use crate::contract;

fn refused(result: Result<impl std::fmt::Debug, Error>, says: &str) {
    let err = result.expect_err("must be refused");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(says), "{err}");
}

contract! {
    fn a_zero_lock_ttl_is_refused_everywhere_a_lock_is_taken_or_renewed(f) {
        let store = &f.store;
        refused(
            store.try_lock("l", Duration::ZERO).map(|g| g.is_some()),
            "a lock TTL of 0s gives no mutual exclusion",
        );
        refused(
            store.lock("l", Duration::from_micros(500), Duration::ZERO).map(|g| g.is_some()),
            "at least 1ms",
        );
        let guard = store.try_lock("l", Duration::from_secs(60))?.expect("free");
        refused(guard.renew(Duration::ZERO), "a lock TTL of 0s");
        // The good hold is still in force.
        assert!(store.lock_holder("l")?.is_some());
        Ok(())
    }

    fn a_zero_claim_lease_is_refused_for_claim_claim_next_and_extend(f) {
        let ledger = f.store.ledger("q");
        ledger.enqueue(["a"])?;
        refused(ledger.claim("a", "w", Duration::ZERO), "a claim lease of 0s gives no exclusion");
        refused(ledger.claim_next("w", Duration::ZERO), "at least 1ms");
        let claim = ledger.claim("a", "w", Duration::from_secs(60))?.expect("free");
        refused(ledger.extend(&claim, Duration::ZERO), "a claim lease of 0s");
        assert!(ledger.claim("a", "other", Duration::from_secs(60))?.is_none(), "the claim still excludes");
        Ok(())
    }

    fn max_attempts_of_zero_is_refused_instead_of_raised_to_one(f) {
        let ledger = f.store.ledger("q").max_attempts(0);
        refused(ledger.fail("a", "boom"), "max_attempts must be at least 1");
        refused(ledger.mark_done("a"), "max_attempts must be at least 1");
        assert!(f.store.ledger("q").item("a")?.is_none(), "nothing was recorded");
        Ok(())
    }

    /// Refused before anything is created: no file, no schema.
    fn busy_and_fill_timeouts_outside_their_range_are_refused_at_open(f) {
        let (options, location) = f.sibling("refused");
        refused(
            options.clone().busy_timeout(Duration::from_secs(25 * 3600)).open(&location),
            "a busy timeout is at most 24h",
        );
        refused(options.clone().fill_timeout(Duration::ZERO).open(&location), "a fill timeout of 0s");
        assert!(!f.sibling_exists("refused"), "a refused open creates nothing");
        // The edges of the ranges are fine.
        assert!(f.options().busy_timeout(Duration::ZERO).open(&f.location).is_ok());
        assert!(f.options().busy_timeout(Duration::from_secs(24 * 3600)).open(&f.location).is_ok());
        assert!(f.options().fill_timeout(Duration::from_millis(1)).open(&f.location).is_ok());
        Ok(())
    }

    fn a_ttl_under_a_millisecond_is_refused_with_the_way_it_was_written(f) {
        refused(
            f.store.cache("c").set("k", "v", Duration::from_micros(500)),
            "a TTL of 500us would expire the entry at once",
        );
        refused(f.store.cache("c").set("k", "v", Duration::ZERO), "a TTL of 0s");
        Ok(())
    }
}

/// SQLite only: the same refusals for a private in-memory store, which has no file to create.
#[test]
fn timeouts_outside_their_range_are_refused_for_an_in_memory_store_too() {
    refused(Options::new().busy_timeout(Duration::from_secs(25 * 3600)).open_in_memory(), "at most 24h");
    assert!(Options::new().busy_timeout(Duration::ZERO).open_in_memory().is_ok());
    assert!(Options::new().busy_timeout(Duration::from_secs(24 * 3600)).open_in_memory().is_ok());
    assert!(Options::new().fill_timeout(Duration::from_millis(1)).open_in_memory().is_ok());
}
