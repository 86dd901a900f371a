#![allow(missing_docs)] // criterion_group! generates undocumented items
//! The ledger: marks next to raw rusqlite inserts into a processed-ids table (the floor), and
//! lookups against ledgers of 10 thousand, 1 million and 10 million ids, to show the cost
//! stays flat as the ledger grows. Prints the bytes on disk per id.
//!
//! Run: `cargo bench -p cairn-state --bench ledger` (building the 10M ledger takes a while;
//! `CAIRN_BENCH_MAX_IDS=1000000` stops at 1M).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn::Store;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rusqlite::{params, Connection};

fn id(i: u64) -> String {
    format!("item-{i:09}")
}

/// A spread of indices below `n`, so lookups do not walk the B-tree in order.
fn scatter(k: u64, n: u64) -> u64 {
    k.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The floor: the processed-ids table a careful engineer would write, with the same pragmas.
fn raw(path: &std::path::Path) -> Connection {
    let c = Connection::open(path).expect("open");
    c.busy_timeout(Duration::from_secs(5)).expect("busy");
    c.pragma_update(None, "journal_mode", "WAL").expect("wal");
    c.pragma_update(None, "synchronous", "NORMAL").expect("sync");
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS done (ns TEXT NOT NULL, id TEXT NOT NULL, done_at INTEGER NOT NULL,
                                          PRIMARY KEY (ns, id)) WITHOUT ROWID;",
    )
    .expect("schema");
    c
}

fn raw_mark(c: &Connection, id: &str) {
    c.prepare_cached("INSERT OR IGNORE INTO done (ns, id, done_at) VALUES ('bench', ?1, ?2)")
        .expect("prepare")
        .execute(params![id, now_ms()])
        .expect("insert");
}

fn marks(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("cairn.db")).expect("open");
    let floor = raw(&dir.path().join("raw.db"));
    let ledger = store.ledger("bench");
    let next = AtomicU64::new(0);
    let fresh = || id(next.fetch_add(1, Ordering::Relaxed));

    let mut g = c.benchmark_group("mark_single");
    g.bench_function("cairn", |b| b.iter(|| ledger.mark_done(&fresh()).expect("mark")));
    g.bench_function("raw_rusqlite", |b| b.iter(|| raw_mark(&floor, &fresh())));
    g.finish();

    let mut g = c.benchmark_group("mark_batch_1000");
    g.sample_size(30);
    g.bench_function("cairn", |b| {
        b.iter(|| {
            let ids: Vec<String> = (0..1000).map(|_| fresh()).collect();
            ledger.mark_done_many(&ids).expect("marks")
        })
    });
    g.bench_function("raw_rusqlite", |b| {
        b.iter(|| {
            let ids: Vec<String> = (0..1000).map(|_| fresh()).collect();
            floor.execute_batch("BEGIN IMMEDIATE").expect("begin");
            for i in &ids {
                raw_mark(&floor, i);
            }
            floor.execute_batch("COMMIT").expect("commit");
        })
    });
    g.finish();
}

fn lookups(c: &mut Criterion) {
    let max: u64 =
        std::env::var("CAIRN_BENCH_MAX_IDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let store = Store::open(&path).expect("open");
    let ledger = store.ledger("bench");
    let mut have = 0u64;
    let mut g = c.benchmark_group("ledger_size");
    g.sample_size(50);
    for size in [10_000u64, 1_000_000, 10_000_000].into_iter().filter(|&s| s <= max) {
        while have < size {
            let upto = (have + 100_000).min(size);
            ledger.mark_done_many((have..upto).map(id)).expect("fill");
            have = upto;
        }
        report_size(&store, &path, size);
        let mut k = 0u64;
        g.bench_with_input(BenchmarkId::new("is_done", size), &size, |b, &n| {
            b.iter(|| {
                k += 1;
                black_box(ledger.is_done(&id(scatter(k, n))).expect("lookup"))
            })
        });
        // A batch of 10,000 ids, half of them done.
        let batch: Vec<String> =
            (0..10_000u64).map(|j| id(if j % 2 == 0 { scatter(j, size) } else { size + j })).collect();
        g.bench_with_input(BenchmarkId::new("filter_new_10k", size), &size, |b, _| {
            b.iter(|| black_box(ledger.filter_new(batch.iter().map(String::as_str)).expect("filter").len()))
        });
    }
    g.finish();
}

fn report_size(store: &Store, path: &std::path::Path, ids: u64) {
    // A checkpoint folds the WAL into the file, so its size is the ledger's.
    let conn = Connection::open(path).expect("open");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let done = store.ledger("bench").counts().expect("counts").done;
    println!(
        "ledger of {ids} ids ({done} done): {bytes} bytes on disk, {:.1} bytes per id",
        bytes as f64 / ids as f64
    );
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4))
}

criterion_group! { name = benches; config = config(); targets = marks, lookups }
criterion_main!(benches);
