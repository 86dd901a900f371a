//! A fixed count of one hot operation, for counting the instructions it costs: unlike a
//! timing, the count is the same on a busy machine as on an idle one, so two versions of the
//! library can be compared anywhere (docs/BENCHMARKS.md, "Instructions per operation").
//!
//! ```text
//! cargo build --release -p cairn-state --example hot_paths
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/hot_paths OP N
//! ```
//!
//! OP is `get_hit`, `get_miss`, `set` (a one-hour TTL, one transaction each), `mark` (a new id,
//! one transaction each), `claim` (claim the next queued item and complete it), `step` (a new
//! step of a held run recording a 100-byte result, one transaction each) or `step_replay`
//! (the recorded result of one of 1,000 steps of a finished run), `limit` (a rate limiter's slot
//! taken, at a rate no loop reaches) or `limit_refused` (one refused); N the count. The setup (a
//! store in a temporary directory, 1,000 cache entries of 100 bytes, a finished run of 1,000
//! steps, N queued items for `claim`) is the same for every N, so the cost of one operation is
//! the difference between the counts for two N, divided by the difference of the N.

use std::time::Duration;

use cairn::{Error, RunOptions, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(op), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse::<usize>().ok())) else {
        return Err(
            "usage: hot_paths get_hit|get_miss|set|mark|claim|step|step_replay|limit|limit_refused N".into(),
        );
    };
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("state.db"))?;
    let cache = store.cache("c");
    let value = "v".repeat(100);
    let ttl = Duration::from_secs(3600);
    let keys: Vec<String> = (0..1000).map(|i| format!("https://example.com/page/{i}")).collect();
    store.transaction(|tx| {
        for key in &keys {
            tx.cache("c").set(key, value.as_str(), ttl)?;
        }
        Ok::<_, Error>(())
    })?;
    let mut done = store.run_with("done", RunOptions::new().keep_alive(false))?;
    for i in 0..1000 {
        done.step(&format!("s{i}"), || Ok::<_, Error>(value.clone()))?;
    }
    done.finish()?;
    let replaying = store.take_run("done", &RunOptions::new())?;
    let step_names: Vec<String> = (0..1000).map(|i| format!("s{i}")).collect();
    let mut run = store.run_with("r", RunOptions::new().keep_alive(false))?;
    let ledger = store.ledger("l");
    let open = store.limiter("open", "1000000000/s".parse()?);
    let shut = store.limiter("shut", "1/d".parse()?);
    shut.try_acquire()?;
    if op == "claim" {
        ledger.enqueue((0..n).map(|i| format!("item-{i:09}")))?;
    }
    for i in 0..n {
        match op.as_str() {
            "get_hit" => {
                cache.get::<String>(&keys[i % keys.len()])?;
            }
            "get_miss" => {
                cache.get::<String>("absent")?;
            }
            "set" => cache.set(&keys[i % keys.len()], value.as_str(), ttl)?,
            "mark" => {
                ledger.mark_done(&format!("id-{i:09}"))?;
            }
            "claim" => {
                let claim = ledger.claim_next("w", Duration::from_secs(60))?.ok_or("the queue ran dry")?;
                ledger.complete(&claim)?;
            }
            "step" => {
                run.step(&format!("step-{i:09}"), || Ok::<_, Error>(value.clone()))?;
            }
            "step_replay" => {
                let name = &step_names[i % step_names.len()];
                store.replay_step::<String>(&replaying, name, "")?.ok_or("a recorded step")?;
            }
            "limit" => {
                open.try_acquire()?.then_some(()).ok_or("a slot at a rate no loop reaches")?;
            }
            "limit_refused" => {
                (!shut.try_acquire()?).then_some(()).ok_or("refused: the day's one slot is taken")?;
            }
            other => return Err(format!("unknown operation {other:?}").into()),
        }
    }
    Ok(())
}
