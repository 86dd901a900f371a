//! The cost of issue 20's queue order on the claim rate: one worker claims and completes a
//! queue of `--items` items, plain, with priorities, and in groups (many small ones, and a few
//! large ones, where most items wait behind their group's head), on a SQLite file and, with
//! `--url`, on PostgreSQL. Prints claims (each completed) per second, the median of `--rounds`.
//!
//! ```text
//! cairn-queue-order --dir DIR [--url postgres://...] [--items 10000] [--groups 1000] [--rounds 3]
//!                   [--shapes plain,priority,groups,10-groups]
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn::{QueueItem, Store};

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

const LEASE: Duration = Duration::from_secs(600);

/// The items of one shape of queue.
fn items(shape: &str, n: usize, groups: usize) -> Vec<QueueItem> {
    (0..n)
        .map(|i| {
            let item = QueueItem::new(format!("i{i:08}"));
            match shape {
                "plain" => item,
                // Spread over 21 levels, so that the queue holds every priority at once.
                "priority" => item.priority(i as i64 % 21 - 10),
                "groups" => item.group(format!("g{}", i % groups)),
                // Ten groups: nine of every ten items wait behind their group's head.
                "10-groups" => item.group(format!("g{}", i % 10)),
                _ => unreachable!("a shape named below"),
            }
        })
        .collect()
}

/// Claims per second, draining a queue of this shape with one worker. Each run has a namespace
/// of its own: on PostgreSQL, the dead index entries an earlier run left (until autovacuum)
/// would otherwise slow the runs after it.
fn drain(store: &Store, shape: &str, round: usize, n: usize, groups: usize) -> Res<f64> {
    let ns = format!("bench-{shape}-{round}-{}", std::process::id());
    let q = store.ledger(&ns);
    q.enqueue_items(items(shape, n, groups))?;
    let start = Instant::now();
    let mut done = 0;
    while let Some(c) = q.claim_next("w", LEASE)? {
        q.complete(&c)?;
        done += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    if done != n {
        return Err(format!("{shape}: drained {done} of {n}").into());
    }
    q.clear()?;
    Ok(n as f64 / secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The shapes take turns, round after round, so that a change in the machine's load shows in
/// every shape rather than in one.
fn run(engine: &str, store: &Store, shapes: &[&str], n: usize, groups: usize, rounds: usize) -> Res {
    let mut rates: HashMap<&str, Vec<f64>> = HashMap::new();
    for round in 0..rounds {
        for &shape in shapes {
            rates.entry(shape).or_default().push(drain(store, shape, round, n, groups)?);
        }
    }
    let mut plain = 0.0;
    for &shape in shapes {
        let rate = median(rates.remove(shape).unwrap_or_default());
        if shape == "plain" {
            plain = rate;
        }
        println!(
            "{engine}\t{shape}\t{n} items\t{rate:.0} claims/s\t{:+.1}% vs plain",
            (rate / plain - 1.0) * 100.0
        );
    }
    Ok(())
}

fn main() -> Res {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts: HashMap<&str, &str> =
        args.chunks(2).filter_map(|p| Some((p[0].trim_start_matches("--"), p.get(1)?.as_str()))).collect();
    let num = |name: &str, default: usize| opts.get(name).map_or(Ok(default), |v| v.parse());
    let (n, groups, rounds) = (num("items", 10_000)?, num("groups", 1_000)?.max(1), num("rounds", 3)?.max(1));
    let shapes: Vec<&str> =
        opts.get("shapes").unwrap_or(&"plain,priority,groups,10-groups").split(',').collect();
    if let Some(bad) = shapes.iter().find(|s| !["plain", "priority", "groups", "10-groups"].contains(s)) {
        return Err(format!("unknown shape {bad}: plain, priority, groups or 10-groups").into());
    }
    let dir = PathBuf::from(opts.get("dir").ok_or("--dir is required")?);
    let file = dir.join("queue-order.db");
    let _ = std::fs::remove_file(&file);
    run("sqlite", &Store::open(&file)?, &shapes, n, groups, rounds)?;
    if let Some(url) = opts.get("url") {
        let schema = format!("queue_order_{}", std::process::id());
        let mut admin = postgres::Client::connect(url, postgres::NoTls)?;
        admin.batch_execute(&format!("CREATE SCHEMA {schema}"))?;
        let sep = if url.contains('?') { '&' } else { '?' };
        let result = Store::open(format!("{url}{sep}cairn_schema={schema}"))
            .map_err(Into::into)
            .and_then(|store| run("postgres", &store, &shapes, n, groups, rounds));
        admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))?;
        result?;
    }
    Ok(())
}
