//! Values that would switch a guarantee off are refused with `InvalidInput` and a message that
//! gives the valid range, never clamped or accepted silently.

use std::time::Duration;

use cairn::{Error, ErrorKind, Options, Store};

fn refused(result: Result<impl std::fmt::Debug, Error>, says: &str) {
    let err = result.expect_err("must be refused");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(says), "{err}");
}

#[test]
fn a_zero_lock_ttl_is_refused_everywhere_a_lock_is_taken_or_renewed() -> Result<(), Error> {
    let store = Store::open_in_memory()?;
    refused(
        store.try_lock("l", Duration::ZERO).map(|g| g.is_some()),
        "a lock TTL of 0s gives no mutual exclusion",
    );
    refused(store.lock("l", Duration::from_micros(500), Duration::ZERO).map(|g| g.is_some()), "at least 1ms");
    let guard = store.try_lock("l", Duration::from_secs(60))?.expect("free");
    refused(guard.renew(Duration::ZERO), "a lock TTL of 0s");
    // The good hold is still in force.
    assert!(store.lock_holder("l")?.is_some());
    Ok(())
}

#[test]
fn a_zero_claim_lease_is_refused_for_claim_claim_next_and_extend() -> Result<(), Error> {
    let store = Store::open_in_memory()?;
    let ledger = store.ledger("q");
    ledger.enqueue(["a"])?;
    refused(ledger.claim("a", "w", Duration::ZERO), "a claim lease of 0s gives no exclusion");
    refused(ledger.claim_next("w", Duration::ZERO), "at least 1ms");
    let claim = ledger.claim("a", "w", Duration::from_secs(60))?.expect("free");
    refused(ledger.extend(&claim, Duration::ZERO), "a claim lease of 0s");
    assert!(ledger.claim("a", "other", Duration::from_secs(60))?.is_none(), "the claim still excludes");
    Ok(())
}

#[test]
fn max_attempts_of_zero_is_refused_instead_of_raised_to_one() -> Result<(), Error> {
    let store = Store::open_in_memory()?;
    let ledger = store.ledger("q").max_attempts(0);
    refused(ledger.fail("a", "boom"), "max_attempts must be at least 1");
    refused(ledger.mark_done("a"), "max_attempts must be at least 1");
    assert!(store.ledger("q").item("a")?.is_none(), "nothing was recorded");
    Ok(())
}

#[test]
fn busy_and_fill_timeouts_outside_their_range_are_refused_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    refused(
        Options::new().busy_timeout(Duration::from_secs(25 * 3600)).open(&path),
        "a busy timeout is at most 24h",
    );
    refused(Options::new().busy_timeout(Duration::from_secs(25 * 3600)).open_in_memory(), "at most 24h");
    refused(Options::new().fill_timeout(Duration::ZERO).open(&path), "a fill timeout of 0s");
    assert!(!path.exists(), "a refused open creates nothing");
    // The edges of the ranges are fine.
    assert!(Options::new().busy_timeout(Duration::ZERO).open_in_memory().is_ok());
    assert!(Options::new().busy_timeout(Duration::from_secs(24 * 3600)).open_in_memory().is_ok());
    assert!(Options::new().fill_timeout(Duration::from_millis(1)).open_in_memory().is_ok());
}

#[test]
fn a_ttl_under_a_millisecond_is_refused_with_the_way_it_was_written() -> Result<(), Error> {
    let store = Store::open_in_memory()?;
    refused(
        store.cache("c").set("k", "v", Duration::from_micros(500)),
        "a TTL of 500us would expire the entry at once",
    );
    refused(store.cache("c").set("k", "v", Duration::ZERO), "a TTL of 0s");
    Ok(())
}
