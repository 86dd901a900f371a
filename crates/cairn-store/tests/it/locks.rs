//! Named locks held as plain data, kept alive by the library, and a guard whose drop never
//! stalls on a busy store.

use std::time::{Duration, Instant};

use cairn::{Error, ErrorKind, ManualClock, Options, Store};

fn wait_until(what: &str, mut done: impl FnMut() -> Result<bool, Error>) -> Result<(), Error> {
    let until = Instant::now() + Duration::from_secs(20);
    while !done()? {
        assert!(Instant::now() < until, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

#[test]
fn a_held_lock_is_renewed_and_released_through_another_store_of_the_process() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let (a, b) = (Store::open(&path)?, Store::open(&path)?);
    let held = a.try_lock("job", Duration::from_secs(60))?.expect("free").into_held();
    assert_eq!(held.name(), "job");
    drop(a); // the hold outlives the handle that took it
    assert!(b.try_lock("job", Duration::from_secs(60))?.is_none(), "still held");
    b.renew_lock(&held, Duration::from_secs(120))?;
    assert!(b.release_lock(&held)?);
    assert!(!b.release_lock(&held)?, "already released");
    let err = b.renew_lock(&held, Duration::from_secs(60)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    assert!(b.try_lock("job", Duration::from_secs(60))?.is_some());
    Ok(())
}

#[test]
fn keep_alive_renews_a_lock_past_its_ttl_and_says_when_it_was_lost() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let clock = ManualClock::new(1_000_000_000);
    let store = Options::new().clock(clock.clone()).open(&path)?;
    let other = Options::new().clock(clock.clone()).open(&path)?;
    let ttl = Duration::from_millis(60);
    let guard = store.try_lock("job", ttl)?.expect("free");
    let renewing = guard.keep_alive(ttl)?;
    // Far past the TTL on the shared clock: only a renewal made since can keep it held.
    clock.advance(Duration::from_secs(600));
    let now = clock.clone();
    wait_until("a renewal", || {
        Ok(store.lock_holder("job")?.is_some_and(|h| h.expires_at_millis > now_ms(&now)))
    })?;
    assert!(other.try_lock("job", ttl)?.is_none(), "renewed, so still held");
    assert!(!renewing.lost());
    renewing.stop()?;

    // Taken over behind its back: the next renewal finds it lost.
    let renewing = guard.keep_alive(ttl)?;
    let held = guard.into_held();
    assert!(other.release_lock(&held)?);
    let thief = other.try_lock("job", Duration::from_secs(600))?.expect("free now");
    wait_until("the loss noticed", || Ok(renewing.lost()))?;
    assert_eq!(renewing.stop().unwrap_err().kind(), ErrorKind::LeaseLost);
    drop(thief);
    Ok(())
}

fn now_ms(clock: &ManualClock) -> i64 {
    use cairn::Clock;
    clock.now_millis()
}

#[test]
fn keep_alive_is_refused_for_an_in_memory_store() -> Result<(), Error> {
    let store = Store::open_in_memory()?;
    let guard = store.try_lock("x", Duration::from_secs(1))?.expect("free");
    assert_eq!(guard.keep_alive(Duration::from_secs(1)).unwrap_err().kind(), ErrorKind::InvalidInput);
    Ok(())
}

/// A guard dropped while another process holds the store's write lock gives up after a
/// moment instead of waiting the whole busy timeout (here an hour: without the bound this test
/// would hang), and the store's own busy timeout is untouched afterwards.
#[test]
fn dropping_a_guard_on_a_busy_store_does_not_wait_the_busy_timeout() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = Options::new().busy_timeout(Duration::from_secs(3600)).open(&path)?;
    let other = Store::open(&path)?;
    let guard = store.try_lock("job", Duration::from_secs(60))?.expect("free");
    other.begin_transaction()?; // holds the write lock
    drop(guard);
    other.rollback_transaction();
    assert!(
        other.lock_holder("job")?.is_some(),
        "the release could not run, so the lock stays until its TTL"
    );
    assert_eq!(store.busy_timeout(), Duration::from_secs(3600), "the store's own busy timeout is back");
    store.cache("c").set("k", "v", None)?;
    Ok(())
}
