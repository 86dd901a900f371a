#![allow(missing_docs)]
//! Queue throughput with real worker processes: K `cairn-child claim-worker` processes share
//! one queue of 20,000 items, each claim followed by a completion (two write transactions per
//! item, no simulated work). Three rounds per K; the median is reported.
//!
//! Run: `cargo bench -p cairn-testkit --bench claims`

use std::time::Instant;

use cairn::Store;
use cairn_testkit::Running;

const ITEMS: usize = 20_000;

fn round(workers: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queue.db");
    Store::open(&path)
        .expect("open")
        .ledger("queue")
        .enqueue((0..ITEMS).map(|i| format!("item-{i:06}")))
        .expect("enqueue");
    let p = path.to_str().expect("utf-8");
    let bin = env!("CARGO_BIN_EXE_cairn-child");
    let started = Instant::now();
    let children: Vec<Running> = (0..workers)
        .map(|w| {
            Running::spawn(
                bin.as_ref(),
                &["claim-worker", "--db", p, "--worker", &format!("w{w}"), "--work-ms", "0"],
            )
            .expect("spawn")
        })
        .collect();
    for c in children {
        let (status, _, stderr) = c.finish().expect("wait");
        assert!(status.success(), "{stderr}");
    }
    let secs = started.elapsed().as_secs_f64();
    let store = Store::open(&path).expect("open");
    assert_eq!(store.ledger("queue").counts().expect("counts").done, ITEMS as u64, "items lost");
    ITEMS as f64 / secs
}

fn main() {
    // `cargo test --benches` runs bench targets with --test-style flags: do nothing then.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    println!("claim + complete throughput, {ITEMS} items, each worker a separate process");
    for workers in [1, 4] {
        let mut rates: Vec<f64> = (0..3).map(|_| round(workers)).collect();
        rates.sort_by(f64::total_cmp);
        println!(
            "claims/{workers}_processes: median {:.0} items/s (rounds: {})",
            rates[1],
            rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
        );
    }
}
