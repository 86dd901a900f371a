//! The bug this guards against: a process killed in the middle of a multi-statement
//! transaction leaving part of it behind (a ledger mark without its checkpoint, half a cache
//! update), or a commit the process saw succeed going missing. The child runs transactions of
//! four statements and prints `COMMIT i` after each; we SIGKILL it at random moments (during
//! open, mid-transaction, mid-commit), reopen, and check every invariant.

use std::time::Duration;

use cairn::{Error, Store};
use cairn_testkit::{env_count, Rng, Running};

use crate::child;

/// Checks the file after a kill (or a fault); returns how many transactions it holds.
pub(crate) fn verify(path: &std::path::Path, reported: &[i64]) -> Result<i64, Error> {
    let store = Store::open(path)?;
    assert_eq!(store.integrity_check()?, vec!["ok"], "integrity_check after a kill");
    let c = store.cache("crash");
    let count = c.get::<i64>("count")?.unwrap_or(0);
    if count > 0 {
        assert_eq!(c.get::<i64>("last")?, Some(count - 1), "last and count disagree: a partial transaction");
    }
    for &i in reported {
        assert!(i < count, "transaction {i} was reported committed but the file holds only {count}");
    }
    // All of each transaction or none of it: exactly the pairs 0..count, whole.
    let keys = c.keys("")?;
    assert_eq!(keys.len() as i64, 2 * count + 2 * i64::from(count > 0), "stray or missing keys");
    for i in 0..count {
        let a = c.get::<Vec<u8>>(&format!("{i}/a"))?.unwrap_or_else(|| panic!("{i}/a missing"));
        let b = c.get::<Vec<u8>>(&format!("{i}/b"))?.unwrap_or_else(|| panic!("{i}/b missing"));
        let size = 16 + ((i as usize * 7919) % 4000);
        let byte = (i % 251) as u8;
        assert!(a.len() == size && a.iter().all(|&x| x == byte), "{i}/a is torn");
        assert!(b.len() == size / 2 + 1 && b.iter().all(|&x| x == byte), "{i}/b is torn");
    }
    Ok(count)
}

#[test]
fn sigkill_at_random_points_never_loses_a_reported_commit_or_leaves_half_a_transaction() -> Result<(), Error>
{
    let kills = env_count("CAIRN_CRASH_KILLS", 200);
    let seed = Rng::seed_from_env();
    eprintln!("crash test: {kills} kills, CAIRN_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reported_total = 0usize;
    let mut inside_tx = 0usize;
    for round in 0..kills {
        // A fresh file every 100 kills keeps each check's cost bounded, so that a long run
        // (thousands of kills) grows linearly; each file still takes 100 kills in a row.
        let path = dir.path().join(format!("crash-{}.db", round / 100));
        let path_s = path.to_str().expect("utf-8 path");
        let run =
            Running::spawn(child(), &["crash-writer", "--db", path_s, "--size-cap", "4000"]).expect("spawn");
        // Most kills land mid-stream; some during start-up and open.
        let delay = if rng.below(5) == 0 { rng.below(8) } else { 5 + rng.below(40) };
        std::thread::sleep(Duration::from_millis(delay));
        let lines = run.kill().expect("kill");
        let reported: Vec<i64> =
            lines.iter().filter_map(|l| l.strip_prefix("COMMIT ")).filter_map(|n| n.parse().ok()).collect();
        reported_total += reported.len();
        if lines.last().is_some_and(|l| l.starts_with("BEGIN ")) {
            inside_tx += 1;
        }
        let count = verify(&path, &reported).unwrap_or_else(|e| panic!("round {round} (seed {seed}): {e}"));
        if round % 25 == 0 {
            eprintln!("round {round}: {count} transactions on file");
        }
    }
    eprintln!(
        "crash test: {kills} kills survived ({inside_tx} inside a transaction), {reported_total} reported commits all present"
    );
    assert!(reported_total > 0, "the child never committed: the test exercised nothing");
    assert!(inside_tx > 0 || kills < 20, "no kill landed inside a transaction: the kill points are off");
    Ok(())
}
