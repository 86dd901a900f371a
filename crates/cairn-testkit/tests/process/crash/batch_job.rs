//! Batched ledger marks with their checkpoint: a resumable job marks ids in batches of 1 to
//! 300, each batch's marks, one work counter per id and the checkpoint in one transaction.
//! After any kill the ledger must hold exactly the ids before the checkpoint, each worked on
//! once, and every batch the child reported.

use std::path::Path;

use cairn::{Error, ItemState, Store};
use cairn_testkit::{Rng, Running};

use super::{await_kill_point, kill, numbers_after, Tally, Workload};
use crate::child;

/// Ids per file: about fifteen kills' worth of work, so that files turn over and each check
/// stays cheap.
const IDS: u64 = 20_000;

#[derive(Default)]
pub(super) struct BatchJob {
    /// The end of the last batch reported on the current file, in any round.
    reported_end: u64,
}

impl Workload for BatchJob {
    fn name(&self) -> &'static str {
        "batched marks"
    }

    fn start_file(&mut self, _: &Path, _: u64) -> Result<(), Error> {
        *self = BatchJob::default();
        Ok(())
    }

    fn round(&mut self, path: &Path, rng: &mut Rng, tally: &mut Tally) -> Result<bool, Error> {
        let p = path.to_str().expect("utf-8 path");
        let ids = IDS.to_string();
        let run = Running::spawn(child(), &["batch-job", "--db", p, "--n", &ids, "--max-batch", "300"])
            .expect("spawn");
        await_kill_point(rng, &run, "RESUME", 40);
        let lines = kill(run);
        if !lines.iter().any(|l| l == "FINISHED") {
            tally.kills += 1;
        }
        let ends = numbers_after(&lines, "BATCH ");
        tally.reported += ends.len() as u64;
        self.reported_end = self.reported_end.max(ends.into_iter().max().unwrap_or(0));
        if lines.last().is_some_and(|l| l.starts_with("BEGIN ")) {
            tally.mid_work += 1;
        }
        Ok(verify(path, self.reported_end)? == IDS)
    }
}

/// Checks a batch job's file; returns its checkpoint.
fn verify(path: &Path, reported_end: u64) -> Result<u64, Error> {
    let store = Store::open(path)?;
    assert_eq!(store.integrity_check()?, vec!["ok"], "integrity_check after a kill");
    let checkpoint = store.checkpoint("batch").get::<u64>()?.unwrap_or(0);
    assert!(
        reported_end <= checkpoint,
        "the batch ending at {reported_end} was reported committed but the checkpoint is {checkpoint}"
    );
    // Marks and checkpoint in step: the done ids are exactly 0..checkpoint.
    let mut done: Vec<u64> = store
        .ledger("batch")
        .list(Some(ItemState::Done), None, usize::MAX)?
        .iter()
        .map(|item| item.id.parse().expect("numeric id"))
        .collect();
    done.sort_unstable();
    assert!(
        done.len() as u64 == checkpoint && done.iter().copied().eq(0..checkpoint),
        "{} ids done but the checkpoint is {checkpoint}: a batch was partly applied",
        done.len()
    );
    // Each done id worked on exactly once, and nothing else worked on.
    let work = store.cache("work");
    let keys = work.keys("")?;
    assert_eq!(keys.len() as u64, checkpoint, "work recorded for ids that are not done");
    for id in keys {
        assert_eq!(work.get::<i64>(&id)?, Some(1), "id {id}: work recorded more than once");
    }
    Ok(checkpoint)
}
