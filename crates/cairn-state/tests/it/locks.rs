//! Named locks held as plain data, kept alive by the library, and a guard whose drop never
//! stalls on a busy store: on both engines, but for the refusal of an in-memory store's
//! keep-alive (a SQLite-only kind of store).

use std::time::{Duration, Instant};

use cairn::{Error, ErrorKind, ManualClock, Options, Store};

use crate::contract;
use crate::engines::Engine;

fn wait_until(what: &str, mut done: impl FnMut() -> Result<bool, Error>) -> Result<(), Error> {
    let until = Instant::now() + Duration::from_secs(20);
    while !done()? {
        assert!(Instant::now() < until, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

fn now_ms(clock: &ManualClock) -> i64 {
    use cairn::Clock;
    clock.now_millis()
}

contract! {
    fn a_held_lock_is_renewed_and_released_through_another_store_of_the_process(f) {
        let (a, b) = (f.reopen(), f.reopen());
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

    fn keep_alive_renews_a_lock_past_its_ttl_and_says_when_it_was_lost(f) {
        let clock = &f.clock;
        let (store, other) = (f.reopen(), f.reopen());
        let ttl = Duration::from_millis(150);
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

    /// A guard dropped while another process holds what its release must write (the write
    /// lock of a SQLite file; the lock's row on a server) gives up after a moment instead of
    /// waiting the whole busy timeout (here an hour: without the bound this test would hang),
    /// and the store's own busy timeout is untouched afterwards.
    fn dropping_a_guard_on_a_busy_store_does_not_wait_the_busy_timeout(f) {
        let store = f.options().busy_timeout(Duration::from_secs(3600)).open(&f.location)?;
        let other = f.reopen();
        let guard = store.try_lock("job", Duration::from_secs(60))?.expect("free");
        match f.engine {
            Engine::Sqlite => other.begin_transaction()?, // holds the write lock
            Engine::Postgres => f
                .server()
                .batch_execute("BEGIN; SELECT 1 FROM cairn_lock WHERE name = 'job' FOR UPDATE")
                .expect("lock the row"),
        }
        drop(guard);
        match f.engine {
            Engine::Sqlite => other.rollback_transaction(),
            Engine::Postgres => f.server().batch_execute("ROLLBACK").expect("rollback"),
        }
        assert!(
            other.lock_holder("job")?.is_some(),
            "the release could not run, so the lock stays until its TTL"
        );
        assert_eq!(store.busy_timeout(), Duration::from_secs(3600), "the store's own busy timeout is back");
        store.cache("c").set("k", "v", None)?;
        Ok(())
    }
}

/// A lock kept alive with a TTL of a few milliseconds was renewed every max(TTL/3, 1 ms), the
/// TTL itself, so it lapsed between renewals and another process took it while the work
/// ran. Below `MIN_KEEP_ALIVE_TTL` keeping it alive is refused, saying the least to give.
#[test]
fn keep_alive_refuses_a_ttl_too_short_to_be_renewed_in_time() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("state.db"))?;
    let guard = store.try_lock("x", Duration::from_millis(1))?.expect("free");
    for ttl in [Duration::from_millis(1), Duration::from_millis(99)] {
        let err = guard.keep_alive(ttl).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("at least 100ms"), "{err}");
    }
    assert_eq!(cairn::MIN_KEEP_ALIVE_TTL, Duration::from_millis(100));
    guard.keep_alive(cairn::MIN_KEEP_ALIVE_TTL)?.stop()?;
    Ok(())
}

/// SQLite only: an in-memory store is private to its handle, so no renewer can reach it.
#[test]
fn keep_alive_is_refused_for_an_in_memory_store() -> Result<(), Error> {
    let store = Store::open_in_memory()?;
    let guard = store.try_lock("x", Duration::from_secs(1))?.expect("free");
    assert_eq!(guard.keep_alive(Duration::from_secs(1)).unwrap_err().kind(), ErrorKind::InvalidInput);
    Ok(())
}

/// PostgreSQL only (the schema named in the URL, `?cairn_schema=`): the renewer of a kept-alive
/// lock opens the store again by its shown location, which carries neither the URL's schema
/// (nor its password), so it renews in the default schema `cairn` instead and reports the lock
/// lost while it is still held.
#[test]
fn keep_alive_renews_a_lock_of_a_store_whose_schema_is_given_in_the_url() -> Result<(), Error> {
    let Some(f) = crate::engines::fixture(Engine::Postgres) else { return Ok(()) };
    let schema: String = f.server().query_one("SELECT current_schema()::text", &[]).expect("schema").get(0);
    let url = format!("{}&cairn_schema={schema}", f.location);
    let store = Options::new().clock(f.clock.clone()).open(&url)?;
    let ttl = Duration::from_millis(150);
    let guard = store.try_lock("job", ttl)?.expect("free");
    let renewing = guard.keep_alive(ttl)?;
    f.clock.advance(Duration::from_secs(600));
    let now = f.clock.clone();
    wait_until("a renewal", || {
        Ok(renewing.lost() || store.lock_holder("job")?.is_some_and(|h| h.expires_at_millis > now_ms(&now)))
    })?;
    assert!(!renewing.lost(), "the renewer lost a lock that nobody took");
    renewing.stop()?;
    Ok(())
}
