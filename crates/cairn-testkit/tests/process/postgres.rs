//! The multi-process tests, on a store on a PostgreSQL server: claim workers draining one
//! queue, a worker killed holding claims (taken over at once on the same host, or after the
//! lease, and fenced), compute-once across processes, two processes migrating one scope, and
//! the server ending a child's connection in the middle of a transaction.
//!
//! Each test runs on a fresh schema of the server named by `CAIRN_TEST_PG`
//! ([`cairn_testkit::postgres`]), dropped when it ends; users' tables go to a second schema of
//! its own (`search_path` in the URL). Without a server the tests say so and skip, which
//! `CAIRN_NO_SKIP` turns into failures (`.ci/run` starts the server).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cairn::{Error, ErrorKind, ManualClock, Options, Store};
use cairn_testkit::postgres::{test_schema, TestSchema};
use cairn_testkit::Running;

use crate::dead_holder::{a_poison_item_is_given_up_after_its_max_attempts, claim_in_child};
use crate::ledger::{
    claim_worker, every_item_done_once, four_workers_one_killed_holding_a_claim_complete_every_item_once,
    ids_after,
};
use crate::{child, heavy};

/// The store of the test's schema, opened as the children open it (its URL,
/// [`TestSchema::app_url`]: users' tables go to the schema beside it).
fn open_store(pg: &TestSchema) -> Result<Store, Error> {
    Store::open(pg.app_url())
}

/// The server's clock, in Unix milliseconds.
fn now_millis(pg: &TestSchema) -> i64 {
    pg.query_i64("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8", &[])
}

/// The number a child printed after `prefix` (a backend pid after `OPEN `).
fn number_after(run: &Running, prefix: &str) -> i32 {
    assert!(
        run.wait_for(Duration::from_secs(20), |l| l.starts_with(prefix)),
        "no {prefix:?} line: {:?}",
        run.lines()
    );
    let lines = run.lines();
    let n = lines.iter().find_map(|l| l.strip_prefix(prefix)).expect("the line");
    n.trim().parse().unwrap_or_else(|_| panic!("{prefix}{n}"))
}

#[test]
fn claim_workers_on_postgres_drain_one_queue_doing_every_item_exactly_once() -> Result<(), Error> {
    let Some(pg) = test_schema() else { return Ok(()) };
    let _machine = heavy();
    let ids: Vec<String> = (0..200).map(|i| format!("item-{i:03}")).collect();
    let store = open_store(&pg)?;
    store.ledger("queue").enqueue(&ids)?;
    let url = pg.app_url();
    let workers: Vec<Running> = (0..4).map(|w| claim_worker(&url, &format!("w{w}"), "60000", "2")).collect();
    let mut reported: HashMap<String, usize> = HashMap::new();
    let mut busy = 0;
    for w in workers {
        let (status, lines, stderr) = w.finish().expect("wait");
        assert!(status.success(), "{stderr}");
        assert!(ids_after(&lines, "LOST ").is_empty(), "a live worker lost a claim: {lines:?}");
        busy += usize::from(lines.iter().any(|l| l.starts_with("DONE ")));
        for id in ids_after(&lines, "DONE ") {
            *reported.entry(id).or_default() += 1;
        }
    }
    every_item_done_once(&store, &ids, &reported)?;
    eprintln!("{busy} of 4 workers completed items");
    Ok(())
}

#[test]
fn four_workers_on_postgres_one_killed_holding_a_claim_complete_every_item_exactly_once() -> Result<(), Error>
{
    let Some(pg) = test_schema() else { return Ok(()) };
    let _machine = heavy();
    let ids: Vec<String> = (0..200).map(|i| format!("item-{i:03}")).collect();
    let store = open_store(&pg)?;
    store.ledger("queue").enqueue(&ids)?;
    // An hour's lease: only the dead-holder check can hand the victim's item out in time.
    four_workers_one_killed_holding_a_claim_complete_every_item_once(
        &store,
        &pg.app_url(),
        &ids,
        ("3600000", "2"),
        Duration::from_secs(120),
    )
}

/// A worker killed holding an hour-long claim on this host: its item is handed out at once
/// (its process is known dead). A claim made "lease only" by another killed worker waits for
/// its lease, then goes too. The dead workers' claims are fenced: completing them (as a zombie
/// of the same worker would) is `LeaseLost`.
#[test]
fn a_killed_workers_claims_on_postgres_go_at_once_or_after_their_lease_and_are_fenced() -> Result<(), Error> {
    let Some(pg) = test_schema() else { return Ok(()) };
    let store = open_store(&pg)?;
    let ledger = store.ledger("q");
    ledger.enqueue(["a", "b", "c"])?;
    let url = pg.app_url();
    let (victim, held) = claim_in_child(&url, "victim", false);
    let (bystander, other) = claim_in_child(&url, "bystander", true);
    assert_eq!((held.as_str(), other.as_str()), ("a", "b"));
    let zombie_a = ledger.held_claim("a", "victim")?.expect("the victim's claim");
    let zombie_b = ledger.held_claim("b", "bystander")?.expect("the bystander's claim");
    assert!(ledger.claim("a", "me", Duration::from_secs(60))?.is_none(), "held by a live worker");
    victim.kill().expect("kill");
    bystander.kill().expect("kill");
    let first = ledger.claim_next("me", Duration::from_secs(60))?.expect("the dead worker's item");
    assert_eq!(first.id(), "a");
    let second = ledger.claim_next("me", Duration::from_secs(60))?.expect("the pending item");
    assert_eq!(second.id(), "c");
    assert!(ledger.claim_next("me", Duration::from_secs(60))?.is_none(), "b waits for its lease");
    assert_eq!(ledger.complete(&zombie_a).unwrap_err().kind(), ErrorKind::LeaseLost);
    ledger.complete(&first)?;
    ledger.complete(&second)?;
    assert!(ledger.held_claim("a", "victim")?.is_none());

    // An hour and a second later on the server's timeline (a clock set there, not a sleep).
    let later = Options::new().clock(ManualClock::new(now_millis(&pg) + 3_601_000)).open(&url)?;
    let b = later.ledger("q").claim_next("me", Duration::from_secs(60))?.expect("b, its lease run out");
    assert_eq!(b.id(), "b");
    assert!(b.token() > zombie_b.token());
    assert_eq!(later.ledger("q").complete(&zombie_b).unwrap_err().kind(), ErrorKind::LeaseLost);
    later.ledger("q").complete(&b)?;
    assert_eq!(ledger.counts()?.done, 3);
    Ok(())
}

/// The poison item of `dead_holder.rs`, its workers on a server.
#[test]
fn a_poison_item_that_kills_every_worker_on_postgres_is_given_up_after_its_max_attempts() -> Result<(), Error>
{
    let Some(pg) = test_schema() else { return Ok(()) };
    let store = open_store(&pg)?;
    a_poison_item_is_given_up_after_its_max_attempts(&pg.app_url(), &store)
}

/// The server ends a child's connection while the child is inside a transaction that wrote a
/// cache entry, a ledger mark and a checkpoint: the child's transaction fails as
/// `Unavailable`, nothing of it is visible, and the child's next write (on a new connection)
/// works.
#[test]
fn a_connection_ended_by_the_server_mid_transaction_loses_the_transaction_and_says_unavailable(
) -> Result<(), Error> {
    let Some(pg) = test_schema() else { return Ok(()) };
    let store = open_store(&pg)?;
    let mut run =
        Running::spawn(child(), &["conn-wait", "--db", &pg.app_url(), "--in-tx", "1"]).expect("spawn");
    let pid = number_after(&run, "OPEN ");
    assert_eq!(store.cache("c").get::<String>("k")?, None, "nothing is seen before the commit");
    pg.end_backend(pid);
    run.close_stdin();
    let (status, lines, stderr) = run.finish().expect("wait");
    assert!(status.success(), "{stderr}");
    let tx = lines.iter().find_map(|l| l.strip_prefix("TX ")).expect("the transaction's outcome");
    assert!(tx.starts_with("FAILED Unavailable: "), "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("AFTER ok"), "{lines:?}");
    assert_eq!(store.cache("c").get::<String>("k")?, None);
    assert_eq!(store.cache("c").get::<String>("k2")?, None);
    assert!(!store.ledger("l").is_done("1")?);
    assert_eq!(store.checkpoint("j").get::<String>()?, None);
    assert_eq!(store.cache("c").get::<String>("after")?.as_deref(), Some("after"));
    Ok(())
}

/// The server ends a child's idle connection (no transaction open): its next write connects
/// again and works; nothing was lost.
#[test]
fn a_connection_ended_by_the_server_between_operations_is_opened_again_by_the_next_one() -> Result<(), Error>
{
    let Some(pg) = test_schema() else { return Ok(()) };
    let store = open_store(&pg)?;
    let mut run =
        Running::spawn(child(), &["conn-wait", "--db", &pg.app_url(), "--in-tx", "0"]).expect("spawn");
    let pid = number_after(&run, "OPEN ");
    pg.end_backend(pid);
    run.close_stdin();
    let (status, lines, stderr) = run.finish().expect("wait");
    assert!(status.success(), "{stderr}");
    assert_eq!(lines[1..], ["NEXT ok", "AFTER ok"], "{lines:?}");
    assert_eq!(store.cache("c").get::<String>("k")?.as_deref(), Some("before"));
    assert_eq!(store.cache("c").get::<String>("k2")?.as_deref(), Some("next"));
    Ok(())
}

#[test]
fn processes_missing_one_key_on_postgres_compute_it_once_and_share_the_value() -> Result<(), Error> {
    let Some(pg) = test_schema() else { return Ok(()) };
    open_store(&pg)?;
    crate::stampede::six_processes_missing_one_key_compute_it_once(&pg.app_url());
    Ok(())
}

#[test]
fn a_process_killed_computing_on_postgres_is_taken_over_at_once_on_the_same_host() -> Result<(), Error> {
    let Some(pg) = test_schema() else { return Ok(()) };
    open_store(&pg)?;
    crate::stampede::a_killed_computer_is_taken_over_at_once(&pg.app_url());
    Ok(())
}

/// Two processes migrate one scope at once: the second waits on the scope's lock while the
/// first is inside step 1 (seen waiting in `pg_locks`), then each step is applied once, by
/// one of them.
#[test]
fn two_processes_migrating_one_scope_on_postgres_apply_each_step_once() -> Result<(), Error> {
    let Some(pg) = test_schema() else { return Ok(()) };
    let store = open_store(&pg)?;
    let url = pg.app_url();
    let spawn = |hold: &str| {
        Running::spawn(child(), &["migrate-scope", "--db", &url, "--scope", "app", "--hold-step", hold])
            .expect("spawn")
    };
    let mut first = spawn("1");
    assert!(first.wait_for(Duration::from_secs(20), |l| l == "STEP 1"), "{:?}", first.lines());
    let second = spawn("0");
    let pid = number_after(&second, "OPEN ");
    let waiting = || {
        pg.query_i64(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = $1",
            &[&pid],
        )
    };
    let until = Instant::now() + Duration::from_secs(20);
    while waiting() == 0 {
        assert!(
            Instant::now() < until,
            "the second process never waited for the first: {:?}",
            second.lines()
        );
        std::thread::sleep(Duration::from_millis(5)); // pacing the poll
    }
    first.close_stdin();
    let mut applied: Vec<i64> = Vec::new();
    for run in [first, second] {
        let (status, lines, stderr) = run.finish().expect("wait");
        assert!(status.success(), "{stderr}");
        let line = lines.iter().find_map(|l| l.strip_prefix("APPLIED")).expect("a report");
        applied.extend(line.split_whitespace().map(|k| k.parse::<i64>().expect("a step")));
    }
    applied.sort_unstable();
    assert_eq!(applied, [1, 2, 3, 4], "each step applied by one process");
    let rows = store.query("SELECT step FROM migrated ORDER BY step", &[])?;
    let steps: Vec<i64> = rows
        .iter()
        .map(|r| match r[0] {
            cairn::SqlValue::Integer(k) => k,
            ref other => panic!("a step: {other:?}"),
        })
        .collect();
    assert_eq!(steps, [1, 2, 3, 4], "each step ran once");
    Ok(())
}
