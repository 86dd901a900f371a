//! Resumable jobs under kill -9: the ledger, its checkpoint and the work they record stay in
//! step, and every item is done exactly once; several workers share one queue through claims,
//! one of them dies holding leases, and nothing is lost or done twice; a crashed lock holder
//! is recovered at once.

use std::collections::HashMap;
use std::time::Duration;

use cairn::{Error, Store};
use cairn_testkit::{env_count, Rng, Running, CHILD_TIMEOUT};

use crate::{child, heavy};

/// The ids a child printed after `prefix` (`DONE `, `LOST `), one a line.
pub(crate) fn ids_after(lines: &[String], prefix: &str) -> Vec<String> {
    lines.iter().filter_map(|l| l.strip_prefix(prefix).map(str::to_owned)).collect()
}

/// A `claim-worker` child on the queue `queue` of the store at `db` (a file or a URL): it claims
/// items for `worker` with leases of `lease_ms`, works `work_ms` on each (recording it in cache
/// `work`), completes it, and prints `CLAIMED`, `DONE` and `LOST` lines, until the queue is empty.
pub(crate) fn claim_worker(db: &str, worker: &str, lease_ms: &str, work_ms: &str) -> Running {
    Running::spawn(
        child(),
        &["claim-worker", "--db", db, "--worker", worker, "--lease-ms", lease_ms, "--work-ms", work_ms],
    )
    .expect("spawn")
}

/// Every item done once: each reported once, counted done, and its work recorded once.
pub(crate) fn every_item_done_once(
    store: &Store,
    ids: &[String],
    reported: &HashMap<String, usize>,
) -> Result<(), Error> {
    let counts = store.ledger("queue").counts()?;
    assert_eq!(counts.done, ids.len() as u64, "{counts:?}");
    assert_eq!(reported.len(), ids.len(), "every item reported done");
    assert!(reported.values().all(|&n| n == 1), "an item was completed twice");
    for id in ids {
        assert_eq!(store.cache("work").get::<i64>(id)?, Some(1), "{id}");
    }
    Ok(())
}

#[test]
fn a_job_killed_again_and_again_finishes_with_every_item_done_exactly_once() -> Result<(), Error> {
    // Sized so that the kills, not the job, end the loop: about 150 items a run.
    const N: u64 = 10_000;
    let _machine = heavy();
    let kills = env_count("CAIRN_JOB_KILLS", 40);
    let seed = Rng::seed_from_env();
    eprintln!("job kill test: up to {kills} kills, CAIRN_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("job.db");
    let p = path.to_str().expect("utf-8");
    let n = N.to_string();
    let mut reported: HashMap<String, usize> = HashMap::new();
    let mut killed = 0;
    loop {
        let run = Running::spawn(child(), &["ledger-job", "--db", p, "--n", &n]).expect("spawn");
        let finished = if killed < kills {
            std::thread::sleep(Duration::from_millis(3 + rng.below(30))); // a random kill moment
            let lines = run.kill().expect("kill");
            killed += 1;
            let fin = lines.iter().any(|l| l == "FINISHED");
            for id in ids_after(&lines, "DONE ") {
                *reported.entry(id).or_default() += 1;
            }
            fin
        } else {
            let (status, lines, stderr) = run.finish().expect("wait");
            assert!(status.success(), "{stderr}");
            for id in ids_after(&lines, "DONE ") {
                *reported.entry(id).or_default() += 1;
            }
            true
        };
        // After every run, killed or not: the checkpoint, the marks and the work agree.
        let store = Store::open(&path)?;
        assert_eq!(store.integrity_check()?, vec!["ok"]);
        let done = store.ledger("job").counts()?.done;
        let checkpoint = store.checkpoint("job").get::<u64>()?.unwrap_or(0);
        assert_eq!(checkpoint, done, "checkpoint and ledger disagree after kill {killed}");
        let work = store.cache("work");
        for i in 0..N {
            let id = i.to_string();
            let times = work.get::<i64>(&id)?.unwrap_or(0);
            let is_done = store.ledger("job").is_done(&id)?;
            assert_eq!(times, i64::from(is_done), "item {i}: work recorded {times} times, done: {is_done}");
        }
        if finished {
            break;
        }
    }
    let store = Store::open(&path)?;
    assert_eq!(store.ledger("job").counts()?.done, N, "items missing");
    // A kill between a commit and its DONE line loses the report, never the commit: the
    // work counters (checked above after every run) prove each item ran exactly once.
    assert!(reported.values().all(|&n| n == 1), "an item was reported done twice");
    assert!(reported.len() as u64 <= N);
    eprintln!(
        "job kill test: {killed} kills, {N} items each done exactly once ({} completions reported before a kill)",
        reported.len()
    );
    Ok(())
}

#[test]
fn four_workers_one_killed_holding_leases_complete_every_item_exactly_once() -> Result<(), Error> {
    // Four workers on 400 ms leases: a starved worker loses its leases to the others.
    let _machine = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let store = Store::open(&path)?;
    let ids: Vec<String> = (0..300).map(|i| format!("item-{i:03}")).collect();
    store.ledger("queue").enqueue(&ids)?;
    four_workers_one_killed_holding_a_claim_complete_every_item_once(
        &store,
        path.to_str().expect("utf-8"),
        &ids,
        ("400", "3"),
        CHILD_TIMEOUT,
    )
}

/// Four claim workers (leases of `lease_ms`, `work_ms` of work an item) drain the queue `queue`
/// of `store`, at `db` (a file or a URL), holding `ids`; one of them, the victim, is killed
/// while it holds a claim. The three others, each given `survivors_within` to finish, complete
/// every item exactly once, the victim's held one included. Shared with the PostgreSQL tests.
pub(crate) fn four_workers_one_killed_holding_a_claim_complete_every_item_once(
    store: &Store,
    db: &str,
    ids: &[String],
    (lease_ms, work_ms): (&str, &str),
    survivors_within: Duration,
) -> Result<(), Error> {
    // Leases lost by starved workers count attempts: more than the default 3 may land on one
    // item here, where every item must end done.
    store.ledger("queue").set_policy(cairn::LedgerPolicy { max_attempts: Some(1000), retry_delay: None })?;
    let victim = claim_worker(db, "victim", lease_ms, work_ms);
    let others: Vec<Running> =
        ["w1", "w2", "w3"].into_iter().map(|w| claim_worker(db, w, lease_ms, work_ms)).collect();
    // Kill the victim while it holds a claim: after a CLAIMED line not followed by its DONE.
    assert!(victim.wait_for(Duration::from_secs(20), |l| l.starts_with("DONE ")), "the victim never worked");
    let holding = |lines: &[String]| lines.last().is_some_and(|l| l.starts_with("CLAIMED "));
    assert!(
        victim.wait_until(Duration::from_secs(20), holding),
        "the victim was never caught holding a claim in 20 s (it ran out of items, or died): {:?}",
        victim.lines().last()
    );
    let victim_lines = victim.kill().expect("kill");
    let held = victim_lines.iter().rev().find_map(|l| l.strip_prefix("CLAIMED ")).map(str::to_owned);
    let mut reported: HashMap<String, usize> = HashMap::new();
    for id in ids_after(&victim_lines, "DONE ") {
        *reported.entry(id).or_default() += 1;
    }
    for w in others {
        let (status, lines, stderr) = w.finish_within(survivors_within).expect("the survivors finish");
        assert!(status.success(), "{stderr}");
        for id in ids_after(&lines, "DONE ") {
            *reported.entry(id).or_default() += 1;
        }
    }
    let held = held.expect("the victim held a claim");
    let item = store.ledger("queue").item(&held)?.expect("known");
    if item.state == cairn::ItemState::Done
        && item.worker.as_deref() == Some("victim")
        && !reported.contains_key(&held)
    {
        // The kill landed between the victim's commit of the item and its DONE line (the window
        // is one print): the item is done once, by the victim, which did not live to say so.
        // Not a loss, and not the takeover this test is after: count it as the victim's.
        eprintln!("the victim completed {held} just before the kill, without reporting it");
        reported.insert(held, 1);
        return every_item_done_once(store, ids, &reported);
    }
    every_item_done_once(store, ids, &reported)?;
    assert_ne!(item.worker.as_deref(), Some("victim"), "{held} was finished by a survivor");
    eprintln!("the victim died holding {held}; it was re-claimed and completed by another worker");
    Ok(())
}

#[test]
fn a_second_process_sees_a_lock_held_and_a_killed_holder_is_recovered_at_once() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lock.db");
    Store::open(&path)?;
    let p = path.to_str().expect("utf-8");
    let args = ["lock-hold", "--db", p, "--name", "nightly", "--ttl-ms", "3600000"];
    let holder = Running::spawn(child(), &args).expect("spawn");
    assert!(holder.wait_for(Duration::from_secs(20), |l| l == "LOCKED"));
    let (status, lines, _) = Running::spawn(child(), &args).expect("spawn").finish().expect("wait");
    assert_eq!(
        (status.code(), lines),
        (Some(1), vec!["HELD".to_string()]),
        "the second process must see it held"
    );
    holder.kill().expect("kill");
    // The hold had an hour to run: only the dead pid can free it this soon.
    let store = Store::open(&path)?;
    let guard = store.try_lock("nightly", Duration::from_secs(60))?;
    assert!(guard.is_some(), "the dead holder's lock was not recovered");
    Ok(())
}
