//! Workers sharing one queue through claims: three `claim-worker` processes claim items with
//! leases, work, and complete each claim together with the item's work counter; each worker
//! is SIGKILLed at its own random moment, often while it holds a claim. Dead workers' claims
//! are taken over (at once: their pids are gone), live workers whose lease ran out are fenced
//! off, and the queue drains over the rounds with every item done exactly once.

use std::collections::HashMap;
use std::path::Path;

use cairn::{Error, LedgerPolicy, Store};
use cairn_testkit::{Rng, Running};

use super::{await_kill_point, kill, Tally, Workload};
use crate::child;

/// Items per queue: a few rounds' worth for three workers.
const ITEMS: usize = 300;
const WORKERS: usize = 3;

#[derive(Default)]
pub(super) struct Claims {
    /// How often each item was reported done on the current file, over all rounds.
    reported: HashMap<String, u32>,
}

impl Workload for Claims {
    fn name(&self) -> &'static str {
        "worker claims"
    }

    fn start_file(&mut self, path: &Path, _: u64) -> Result<(), Error> {
        self.reported.clear();
        let store = Store::open(path)?;
        let queue = store.ledger("queue");
        // Every kill and every lapsed 20 ms lease here costs the item it held an attempt, and
        // one item can be caught by more than the default 3 of them; giving it up is not what
        // this workload checks (the children read this policy from the file).
        queue.set_policy(LedgerPolicy { max_attempts: Some(u32::MAX), ..LedgerPolicy::default() })?;
        queue.enqueue((0..ITEMS).map(|i| format!("item-{i:03}")))?;
        Ok(())
    }

    fn round(&mut self, path: &Path, rng: &mut Rng, tally: &mut Tally) -> Result<bool, Error> {
        let p = path.to_str().expect("utf-8 path");
        // Leases from very short (live workers lose them and must be fenced off) to long
        // (only the dead-pid takeover frees them).
        let lease = ["20", "300", "60000"][rng.below(3) as usize];
        let workers: Vec<Running> = (0..WORKERS)
            .map(|w| {
                let name = format!("w{w}");
                let args =
                    ["claim-worker", "--db", p, "--worker", &name, "--lease-ms", lease, "--work-ms", "2"];
                Running::spawn(child(), &args).expect("spawn")
            })
            .collect();
        for worker in workers {
            await_kill_point(rng, &worker, "READY", 60);
            let lines = kill(worker);
            if !lines.iter().any(|l| l == "IDLE") {
                tally.kills += 1;
            }
            if lines.last().is_some_and(|l| l.starts_with("CLAIMED ")) {
                tally.mid_work += 1;
            }
            for id in lines.iter().filter_map(|l| l.strip_prefix("DONE ")) {
                *self.reported.entry(id.to_owned()).or_default() += 1;
                tally.reported += 1;
            }
        }
        verify(path, &self.reported)
    }
}

/// Checks a queue's file; returns whether every item is done.
fn verify(path: &Path, reported: &HashMap<String, u32>) -> Result<bool, Error> {
    let store = Store::open(path)?;
    assert_eq!(store.integrity_check()?, vec!["ok"], "integrity_check after a kill");
    let ledger = store.ledger("queue");
    let counts = ledger.counts()?;
    assert_eq!(
        counts.done + counts.pending + counts.claimed,
        ITEMS as u64,
        "items lost or failed: {counts:?}"
    );
    let work = store.cache("work");
    for i in 0..ITEMS {
        let id = format!("item-{i:03}");
        let done = ledger.is_done(&id)?;
        let times = work.get::<i64>(&id)?.unwrap_or(0);
        assert_eq!(times, i64::from(done), "{id}: worked on {times} times, done: {done}");
        let told = reported.get(&id).copied().unwrap_or(0);
        assert!(told <= 1, "{id} was reported completed {told} times");
        assert!(told == 0 || done, "{id} was reported completed but is not done");
    }
    Ok(counts.done == ITEMS as u64)
}
