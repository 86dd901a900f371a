//! PostgreSQL only: what a server adds to a store's life. The server may end a store's
//! connection at any moment (a restart, `pg_terminate_backend`, a pooler). Outside a
//! transaction nothing is lost and the next operation connects again; inside one, the
//! transaction is lost whole, reported as `Unavailable`, and nothing of it is visible. (The
//! same with a child process killed mid-transaction is in cairn-testkit's `postgres.rs`.)

use std::time::{Duration, Instant};

use cairn::{Error, ErrorKind, SqlValue, Store};

use crate::engines::{fixture, Engine};

/// The server process behind `store`'s connection.
fn backend_pid(store: &Store) -> Result<i32, Error> {
    match store.query("SELECT pg_backend_pid()", &[])?.first().and_then(|r| r.first()) {
        Some(SqlValue::Integer(pid)) => Ok(i32::try_from(*pid).expect("a pid")),
        other => panic!("pg_backend_pid() gave {other:?}"),
    }
}

/// The first operation after the kill is the one that finds the connection gone: it must
/// connect again and run, not fail (nothing was in flight, so nothing can be lost or doubled).
#[test]
fn a_connection_killed_outside_a_transaction_is_opened_again_by_the_next_operation() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let store = f.reopen();
    store.cache("c").set("k", "before", None)?;
    let pid = backend_pid(&store)?;
    f.pg().end_backend(pid);
    assert_eq!(
        store.cache("c").get::<String>("k")?.as_deref(),
        Some("before"),
        "a read right after the kill"
    );
    store.cache("c").set("k", "after", None)?;
    assert_eq!(f.store.cache("c").get::<String>("k")?.as_deref(), Some("after"));
    assert_ne!(backend_pid(&store)?, pid, "a new connection");
    // And a write as the first operation after a kill.
    f.pg().end_backend(backend_pid(&store)?);
    store.ledger("l").mark_done("x")?;
    assert!(f.store.ledger("l").is_done("x")?);
    Ok(())
}

#[test]
fn a_connection_killed_inside_a_transaction_loses_it_whole_as_unavailable() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let store = f.reopen();
    let outcome = store.transaction(|tx| {
        tx.cache("c").set("k", "half", None)?;
        tx.ledger("l").mark_done("1")?;
        f.pg().end_backend(backend_pid(&store)?);
        tx.checkpoint("j").set("p")
    });
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("nothing of it was committed"), "{err}");
    assert_eq!(f.store.cache("c").get::<String>("k")?, None);
    assert!(!f.store.ledger("l").is_done("1")?);
    assert_eq!(f.store.checkpoint("j").get::<String>()?, None);
    store.cache("c").set("k", "next", None)?; // the store goes on, on a new connection
    assert_eq!(f.store.cache("c").get::<String>("k")?.as_deref(), Some("next"));
    Ok(())
}

/// Killed between the last write and the commit of an explicit transaction: the commit fails
/// as `Unavailable` (cairn cannot know whether the server got it, and says so), nothing is
/// visible, and after the rollback the store connects again.
#[test]
fn a_connection_killed_before_an_explicit_commit_fails_the_commit_and_keeps_nothing() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let store = f.reopen();
    store.begin_transaction()?;
    let tx = store.current_transaction().expect("open");
    tx.cache("c").set("k", "half", None)?;
    tx.ledger("l").mark_done("1")?;
    let pid = backend_pid(&store)?;
    f.pg().end_backend(pid);
    let err = store.commit_transaction().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(f.store.cache("c").get::<String>("k")?, None);
    assert!(!f.store.ledger("l").is_done("1")?);
    store.rollback_transaction(); // nothing open any more: nothing happens
    store.cache("c").set("k", "next", None)?;
    assert_eq!(f.store.cache("c").get::<String>("k")?.as_deref(), Some("next"));
    Ok(())
}

/// The server's own words reach the one-line message (the driver alone says "db error"); an
/// unknown table in the user's statement is the statement's fault (`Error::Sql`).
#[test]
fn a_server_error_says_what_the_server_said() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let err = f.store.query("SELECT * FROM no_such_table", &[]).unwrap_err();
    assert!(matches!(err, Error::Sql { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    assert!(text.contains("relation \"no_such_table\" does not exist") && text.contains("42P01"), "{text}");
    Ok(())
}

/// A completion outside a transaction is one statement sent on its own: it must still give
/// up on a row another session holds after the busy timeout (it carries its own lock_timeout),
/// as Busy, and leave the session's settings as they were.
#[test]
fn a_completion_on_its_own_waits_for_a_held_row_no_longer_than_the_busy_timeout() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let store = f.options().busy_timeout(Duration::from_millis(300)).open(&f.location)?;
    let l = store.ledger("q");
    l.enqueue(["a"])?;
    let claim = l.claim_next("w", Duration::from_secs(600))?.expect("a");
    let schema = f.schema().expect("a PostgreSQL fixture").to_owned();
    f.server()
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM \"{schema}\".cairn_ledger WHERE ns = 'q' AND id = 'a' FOR UPDATE"
        ))
        .expect("hold the row");
    let started = Instant::now();
    let err = l.complete(&claim).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "waited {:?}", started.elapsed());
    f.server().batch_execute("ROLLBACK").expect("let the row go");
    l.complete(&claim)?;
    assert!(l.is_done("a")?);
    let timeout = store.query("SELECT current_setting('lock_timeout')", &[])?;
    assert_eq!(timeout, [[SqlValue::Text("0".into())]], "the session's setting is untouched");
    Ok(())
}

/// A completion is safe to send twice, so outside a transaction it survives a connection
/// the server dropped while the worker was busy with the item.
#[test]
fn a_completion_after_the_server_dropped_the_connection_goes_through() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let store = f.reopen();
    let l = store.ledger("q");
    l.enqueue(["a", "b"])?;
    let a = l.claim_next("w", Duration::from_secs(600))?.expect("a");
    f.pg().end_backend(backend_pid(&store)?);
    l.complete(&a)?;
    let b = l.claim_next("w", Duration::from_secs(600))?.expect("b");
    f.pg().end_backend(backend_pid(&store)?);
    l.extend(&b, Duration::from_secs(900))?;
    l.complete(&b)?;
    assert_eq!(f.store.ledger("q").counts()?.done, 2);
    Ok(())
}

/// The same for a batch: `complete_many` is sent again on a new connection, and each claim
/// is answered.
#[test]
fn a_batch_completion_after_the_server_dropped_the_connection_goes_through() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let store = f.reopen();
    let l = store.ledger("q");
    l.enqueue(["a", "b", "c"])?;
    let batch = l.claim_next_many("w", Duration::from_secs(600), 3)?;
    f.pg().end_backend(backend_pid(&store)?);
    assert_eq!(l.complete_many(&batch)?, [true, true, true]);
    assert_eq!(f.store.ledger("q").counts()?.done, 3);
    Ok(())
}

/// A batch of many keys locks its namespace instead of each key: 20,000 per-key advisory
/// locks in one transaction would overflow the server's lock table ("out of shared memory").
#[test]
fn twenty_thousand_ids_marked_in_one_call_do_not_overflow_the_lock_table() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let l = f.store.ledger("big");
    let ids: Vec<String> = (0..20_000).map(|i| format!("id-{i}")).collect();
    assert_eq!(l.mark_done_many(&ids)?, 20_000);
    assert_eq!(l.enqueue((0..20_000).map(|i| format!("q-{i}")))?, 20_000);
    assert_eq!(l.retry(&ids)?, 0, "none of them failed");
    let other = f.reopen();
    f.store.transaction(|tx| {
        tx.ledger("big").mark_done_many(&ids[..100])?;
        // Another store writing one key of the namespace waits for the batch's namespace lock,
        // so it cannot slip in before this transaction ends; a key of another namespace can.
        other.ledger("elsewhere").mark_done("x").map(drop)
    })?;
    assert!(other.ledger("big").is_done("id-0")?);
    Ok(())
}

/// Issue 19.5: each key a transaction wrote took an advisory lock of its own, so a Python
/// transaction or `cairn batch` of ~13,000 keys ran the server's shared lock table out ("out
/// of shared memory"), and failed other sessions' transactions meanwhile. Past a bound the
/// transaction locks each namespace it writes whole instead; other namespaces stay writable.
#[test]
fn a_transaction_writing_thousands_of_keys_one_by_one_holds_a_bounded_number_of_locks() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let pid = backend_pid(&f.store)?;
    let other = f.reopen();
    let held = f.store.transaction(|tx| {
        let (ledger, cache) = (tx.ledger("big"), tx.cache("many"));
        for i in 0..1_500 {
            ledger.mark_done(&format!("id-{i}"))?;
            cache.set(&format!("k-{i}"), i, None)?;
        }
        other.ledger("elsewhere").mark_done("x")?;
        Ok(f.raw_i64(&format!("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = {pid}")))
    })?;
    assert!(held <= 300, "one transaction held {held} advisory locks");
    assert_eq!(other.ledger("big").counts()?.done, 1_500);
    assert!(other.cache("many").contains("k-1499")?);
    Ok(())
}

/// PostgreSQL only, as a file has no functions or types of its own: a schema holding only a
/// function, an enum type, a domain or a range type is another application's, refused and left
/// as it was (it used to be taken as empty, because only its relations were counted, and
/// cairn's tables were written beside them).
#[test]
fn a_schema_of_functions_types_or_domains_is_refused_as_foreign() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let Some(base) = f.schema() else { return Ok(()) };
    for (name, ddl) in [
        ("fn", "CREATE FUNCTION {s}.answer() RETURNS int LANGUAGE sql AS 'SELECT 42'"),
        ("enum", "CREATE TYPE {s}.mood AS ENUM ('ok', 'not ok')"),
        ("domain", "CREATE DOMAIN {s}.positive AS int CHECK (VALUE > 0)"),
        ("range", "CREATE TYPE {s}.span AS RANGE (subtype = int4)"),
    ] {
        let (options, location) = f.sibling(name);
        let schema = format!("\"{base}_{name}\"");
        f.raw_execute(&format!("CREATE SCHEMA {schema}; {}", ddl.replace("{s}", &schema)));
        let relations = || {
            f.raw_i64(&format!(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = '{base}_{name}'"
            ))
        };
        let err = options.open(&location).expect_err("another application's schema");
        assert_eq!(err.kind(), ErrorKind::ForeignDatabase, "{name}: {err}");
        assert!(err.to_string().contains("another application"), "{name}: {err}");
        assert_eq!(relations(), 0, "{name}: cairn wrote its tables beside the other application's");
    }
    Ok(())
}

/// A schema of version 1 (before ledger policies: version 2 adds `cairn_ledger_ns`) opens at
/// version 2 with its items as they were and the default policy until one is set.
#[test]
fn a_version_1_schema_is_brought_to_the_latest_with_its_items_the_default_ledger_policy_and_runs(
) -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let q = f.store.ledger("q");
    q.enqueue(["a", "b"])?;
    let a = q.claim_next("w", Duration::from_secs(60))?.expect("a");
    // Version 1 exactly: what versions 2 to 5 added taken away, the version put back.
    f.raw_execute("DROP TABLE cairn_limit");
    f.raw_execute("DROP TABLE cairn_job_run");
    f.raw_execute("DROP TABLE cairn_job");
    f.raw_execute("DROP INDEX cairn_ledger_group");
    f.raw_execute("DROP INDEX cairn_ledger_queue");
    f.raw_execute("ALTER TABLE cairn_ledger DROP COLUMN priority, DROP COLUMN grp");
    f.raw_execute(
        "CREATE INDEX cairn_ledger_queue ON cairn_ledger (ns, state, due, seq) INCLUDE (holder) WHERE seq IS NOT NULL",
    );
    f.raw_execute("DROP TABLE cairn_ledger_ns");
    f.raw_execute("DROP TABLE cairn_run");
    f.raw_execute("DROP TABLE cairn_step");
    f.set_cairn_version(1);
    let store = f.reopen();
    assert_eq!(f.cairn_version(), Engine::Postgres.cairn_schema_version());
    let mut run = store.run("r")?;
    assert_eq!(run.step("s", || Ok::<_, Error>(1i64))?, 1, "version 3's runs work");
    run.finish()?;
    let q = store.ledger("q");
    assert_eq!(q.policy()?, cairn::LedgerPolicy::default());
    assert_eq!(q.item("a")?.map(|i| i.state), Some(cairn::ItemState::Claimed));
    q.set_policy(cairn::LedgerPolicy { max_attempts: Some(1), retry_delay: None })?;
    assert_eq!(q.fail_claim(&a, "x")?, cairn::ItemState::Failed);
    assert_eq!(q.claim_next("w", Duration::from_secs(60))?.map(|c| c.id().to_owned()).as_deref(), Some("b"));
    Ok(())
}

/// A size-limited namespace written by several stores at once, with entries that expire while
/// they write: every write path (set, add, incr, delete, sweep, clear, and the amortized sweep
/// after a commit) must lock the namespace's row before any entry, or two of them wait on each
/// other in a circle and the server ends one with `deadlock detected`, which surfaced as a
/// false `Busy` ("still locked ... after waiting 30s") after about a second.
#[test]
fn concurrent_writers_of_a_bounded_namespace_with_short_ttls_never_deadlock() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    f.store.cache("b").set_limits(cairn::CacheLimits { max_entries: Some(1_000), ..Default::default() })?;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4u64)
            .map(|w| {
                let store =
                    f.options().busy_timeout(Duration::from_secs(30)).open(&f.location).expect("open");
                let clock = f.clock.clone();
                scope.spawn(move || {
                    let c = store.cache("b");
                    let mut failed = Vec::new();
                    for i in 0..150u64 {
                        let key = format!("k{}", (i * 7 + w * 3) % 21);
                        let ttl = Some(Duration::from_millis(5));
                        let r = match i % 10 {
                            0 => c.delete(&key).map(drop),
                            1 => c.add(&key, "x", ttl).map(drop),
                            2 => c.incr(&format!("n{}", i % 3), 1, ttl).map(drop),
                            3 if w == 0 => c.sweep().map(drop),
                            4 if w == 1 => store.sweep().map(drop),
                            5 if w == 2 && i % 50 == 5 => c.clear().map(drop),
                            _ => c.set(&key, "x", ttl),
                        };
                        if let Err(e) = r {
                            failed.push(format!("worker {w}, op {i}: {e}"));
                        }
                        clock.advance(Duration::from_millis(3));
                    }
                    failed
                })
            })
            .collect();
        workers.into_iter().flat_map(|h| h.join().expect("a worker panicked")).collect()
    });
    assert!(failures.is_empty(), "{} writes failed, first: {:?}", failures.len(), failures.first());
    // The sizes kept for the bound still add up: with every entry expired and swept, none.
    f.clock.advance(Duration::from_secs(1));
    f.store.cache("b").sweep()?;
    assert_eq!(f.store.cache("b").stats()?.entries, 0);
    Ok(())
}

/// A one-operation cache write that the server ends to break a deadlock (nothing of it was
/// committed) is run again instead of failing. The deadlock is made on purpose: a transaction
/// rewrites a key of a namespace while it is unbounded, another store bounds it (locking the
/// namespace's row, then waiting for that key), and the transaction then sets the bounds too
/// (waiting for the row). The server ends the first waiter, the `set_limits`, which runs again
/// once the transaction committed.
#[test]
fn a_cache_write_ended_by_the_server_in_a_deadlock_is_run_again() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    let other = f.options().busy_timeout(Duration::from_secs(30)).open(&f.location)?;
    let bounded = cairn::CacheLimits { max_entries: Some(10), ..Default::default() };
    f.store.cache("b").set("k", "before", None)?;
    let theirs = std::thread::scope(|scope| {
        f.store
            .transaction(|tx| {
                tx.cache("b").set("k", "v", None)?;
                let h = scope.spawn(move || other.cache("b").set_limits(bounded));
                // Let the other store lock the namespace's row and wait for "k".
                std::thread::sleep(Duration::from_millis(300));
                tx.cache("b")
                    .set_limits(cairn::CacheLimits { max_entries: Some(20), ..Default::default() })?;
                Ok::<_, Error>(h)
            })
            .map(|h| h.join().expect("the other writer panicked"))
    })?;
    theirs?;
    assert_eq!(f.store.cache("b").limits()?.max_entries, Some(10), "the rerun set its bounds last");
    Ok(())
}

/// Keys, ids and names are allowed up to `MAX_KEY_BYTES` (4096), but a server indexes at most
/// about 2,700 bytes of one: a longer one failed as an internal error quoting the server
/// ("index row size ... exceeds btree version 4 maximum 2704"). It is invalid input that says
/// the server's limit; a key within it still works.
#[test]
fn a_key_longer_than_the_server_can_index_is_invalid_input_naming_the_limit() -> Result<(), Error> {
    let Some(f) = fixture(Engine::Postgres) else { return Ok(()) };
    // Text that compresses poorly, as a real key (a URL, a hash) does: a xorshift's digits.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let long: String = (0..3_500)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[(x % 62) as usize])
        })
        .collect();
    assert!(long.len() <= cairn::MAX_KEY_BYTES);
    let refused = |r: Result<(), Error>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
        assert!(e.to_string().contains("about 2,700 bytes"), "{what}: {e}");
    };
    refused(f.store.cache("c").set(&long, "v", None), "a cache key");
    refused(f.store.ledger("q").mark_done(&long).map(drop), "a ledger id");
    refused(f.store.try_lock(&long, Duration::from_secs(60)).map(drop), "a lock name");
    refused(f.store.checkpoint(&long).set("v").map(drop), "a checkpoint name");
    let rate = cairn::Rate::new(5, Duration::from_secs(1))?;
    refused(f.store.limiter(&long, rate).take().map(drop), "a limiter name");
    // The store is still usable, and a key within the server's limit works.
    let shorter = &long[..2_000];
    f.store.cache("c").set(shorter, "v", None)?;
    assert_eq!(f.store.cache("c").get::<String>(shorter)?.as_deref(), Some("v"));
    Ok(())
}
