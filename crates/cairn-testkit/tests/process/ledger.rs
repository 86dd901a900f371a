//! Resumable jobs under kill -9: the ledger, its checkpoint and the work they record stay in
//! step, and every item is done exactly once; several workers share one queue through claims,
//! one of them dies holding leases, and nothing is lost or done twice; a crashed lock holder
//! is recovered at once.

use std::collections::HashMap;
use std::time::Duration;

use cairn::{Error, Store};
use cairn_testkit::{env_count, Rng, Running};

use crate::{child, heavy};

fn ids_after(lines: &[String], prefix: &str) -> Vec<String> {
    lines.iter().filter_map(|l| l.strip_prefix(prefix).map(str::to_owned)).collect()
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
    const N: usize = 300;
    // Four workers on 400 ms leases: a starved worker loses its leases to the others.
    let _machine = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    let store = Store::open(&path)?;
    // Leases lost by starved workers count attempts: more than the default 3 may land on one
    // item here, where every item must end done.
    store.ledger("queue").set_policy(cairn::LedgerPolicy { max_attempts: Some(1000), retry_delay: None })?;
    store.ledger("queue").enqueue((0..N).map(|i| format!("item-{i:03}")))?;
    let p = path.to_str().expect("utf-8");
    let spawn = |w: &str| {
        Running::spawn(
            child(),
            &["claim-worker", "--db", p, "--worker", w, "--lease-ms", "400", "--work-ms", "3"],
        )
        .expect("spawn")
    };
    let victim = spawn("victim");
    let others: Vec<Running> = ["w1", "w2", "w3"].into_iter().map(spawn).collect();
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
    let mut done: HashMap<String, usize> = HashMap::new();
    for id in ids_after(&victim_lines, "DONE ") {
        *done.entry(id).or_default() += 1;
    }
    for w in others {
        let (status, lines, stderr) = w.finish().expect("wait");
        assert!(status.success(), "{stderr}");
        for id in ids_after(&lines, "DONE ") {
            *done.entry(id).or_default() += 1;
        }
    }
    let counts = store.ledger("queue").counts()?;
    assert_eq!(counts.done, N as u64, "{counts:?}");
    assert_eq!(done.len(), N, "every item reported done");
    assert!(done.values().all(|&n| n == 1), "an item was completed twice");
    for i in 0..N {
        let id = format!("item-{i:03}");
        assert_eq!(store.cache("work").get::<i64>(&id)?, Some(1), "{id}");
    }
    if let Some(id) = held {
        let item = store.ledger("queue").item(&id)?.expect("known");
        assert_ne!(item.worker.as_deref(), Some("victim"), "{id} was finished by a survivor");
        eprintln!("the victim died holding {id}; it was re-claimed and completed by another worker");
    }
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
