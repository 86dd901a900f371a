//! Cache writes: the child runs transactions of four statements (two values of varying size,
//! a counter, a `last` marker) and prints `COMMIT i` after each.

use std::path::Path;

use cairn::{Error, Store};
use cairn_testkit::{Rng, Running};

use super::{await_kill_point, kill, numbers_after, Tally, Workload};
use crate::child;

/// Checks the file after a kill (or a fault); returns how many transactions it holds.
pub(crate) fn verify(path: &Path, reported: &[i64]) -> Result<i64, Error> {
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

#[derive(Default)]
pub(super) struct CacheWriter {
    kills_on_file: u64,
    /// The highest transaction reported on the current file, in any round: a later kill's
    /// recovery must not lose it either.
    highest: Option<i64>,
}

impl Workload for CacheWriter {
    fn name(&self) -> &'static str {
        "cache writes"
    }

    fn start_file(&mut self, _: &Path, _: u64) -> Result<(), Error> {
        *self = CacheWriter::default();
        Ok(())
    }

    fn round(&mut self, path: &Path, rng: &mut Rng, tally: &mut Tally) -> Result<bool, Error> {
        let p = path.to_str().expect("utf-8 path");
        let run = Running::spawn(child(), &["crash-writer", "--db", p, "--size-cap", "4000"]).expect("spawn");
        await_kill_point(rng, &run, "READY", 40);
        let lines = kill(run);
        self.kills_on_file += 1;
        tally.kills += 1;
        let reported: Vec<i64> = numbers_after(&lines, "COMMIT ").into_iter().map(|n| n as i64).collect();
        tally.reported += reported.len() as u64;
        self.highest = self.highest.max(reported.iter().copied().max());
        if lines.last().is_some_and(|l| l.starts_with("BEGIN ")) {
            tally.mid_work += 1;
        }
        verify(path, self.highest.as_slice())?;
        // A fresh file every 100 kills keeps each check's cost bounded, so that a long run
        // grows linearly; each file still takes 100 kills in a row.
        Ok(self.kills_on_file == 100)
    }
}
