#![allow(missing_docs)] // criterion_group! generates undocumented items
//! The cache next to its floor: the same operation on raw rusqlite, with cached prepared
//! statements, the same pragmas (WAL, synchronous=NORMAL, busy timeout) and the schema a
//! careful engineer would write by hand for a TTL cache (primary key on (ns, key), a partial
//! index on expiry). Both run in the same process, on the same disk, in the same run, so
//! their ratio holds on a noisy machine.
//!
//! Run: `cargo bench -p cairn-state --bench cache`

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn::{CacheLimits, Error, Eviction, Store};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rusqlite::{params, Connection};

const KEYS: usize = 10_000;
const TTL: Duration = Duration::from_secs(3600);

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("https://example.com/page/{i}")).collect()
}

fn value() -> Vec<u8> {
    vec![b'x'; 100]
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The hand-written floor.
struct Raw(Connection);

impl Raw {
    fn open(path: &std::path::Path) -> Raw {
        let c = Connection::open(path).expect("open");
        c.busy_timeout(Duration::from_secs(5)).expect("busy");
        c.pragma_update(None, "journal_mode", "WAL").expect("wal");
        c.pragma_update(None, "synchronous", "NORMAL").expect("sync");
        c.execute_batch(
            "CREATE TABLE kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, expires_at INTEGER,
                              PRIMARY KEY (ns, key));
             CREATE INDEX kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;",
        )
        .expect("schema");
        Raw(c)
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT value FROM kv WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
            )
            .expect("prepare");
        let mut rows = st.query(params!["bench", key, now_ms()]).expect("query");
        rows.next().expect("row").map(|r| r.get(0).expect("value"))
    }

    fn set(&self, key: &str, value: &[u8]) {
        let mut st = self
            .0
            .prepare_cached(
                "INSERT INTO kv (ns, key, value, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            )
            .expect("prepare");
        st.execute(params!["bench", key, value, now_ms() + TTL.as_millis() as i64]).expect("upsert");
    }
}

fn setup() -> (tempfile::TempDir, Store, Raw, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("cairn.db")).expect("open");
    let raw = Raw::open(&dir.path().join("raw.db"));
    let keys = keys();
    let v = value();

    store
        .transaction(|tx| {
            for k in &keys {
                tx.cache("bench").set(k, &v, TTL)?;
            }
            Ok::<_, Error>(())
        })
        .expect("fill");
    raw.0.execute_batch("BEGIN").expect("begin");
    for k in &keys {
        raw.set(k, &v);
    }
    raw.0.execute_batch("COMMIT").expect("commit");
    (dir, store, raw, keys)
}

fn single_ops(c: &mut Criterion) {
    let (_dir, store, raw, keys) = setup();
    let v = value();
    let cache = store.cache("bench");
    let misses: Vec<String> = (0..KEYS).map(|i| format!("https://example.com/missing/{i}")).collect();

    let mut g = c.benchmark_group("get_hit");
    let mut i = 0;
    g.bench_function("cairn", |b| {
        b.iter(|| {
            i = (i + 7) % KEYS;
            black_box(cache.get::<Vec<u8>>(&keys[i]).expect("get").expect("hit"))
        })
    });
    g.bench_function("raw_rusqlite", |b| {
        b.iter(|| {
            i = (i + 7) % KEYS;
            black_box(raw.get(&keys[i]).expect("hit"))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("get_miss");
    g.bench_function("cairn", |b| {
        b.iter(|| {
            i = (i + 7) % KEYS;
            black_box(cache.get::<Vec<u8>>(&misses[i]).expect("get"))
        })
    });
    g.bench_function("raw_rusqlite", |b| {
        b.iter(|| {
            i = (i + 7) % KEYS;
            black_box(raw.get(&misses[i]))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("set");
    g.bench_function("cairn", |b| {
        b.iter(|| {
            i = (i + 7) % KEYS;
            cache.set(&keys[i], &v, TTL).expect("set")
        })
    });
    g.bench_function("raw_rusqlite", |b| {
        b.iter(|| {
            i = (i + 7) % KEYS;
            raw.set(&keys[i], &v)
        })
    });
    g.finish();
}

fn batch(c: &mut Criterion) {
    let (_dir, store, raw, keys) = setup();
    let v = value();
    let mut g = c.benchmark_group("set_10k_in_one_transaction");
    g.sample_size(20);
    g.bench_function("cairn", |b| {
        b.iter_batched(
            || (),
            |()| {
                store
                    .transaction(|tx| {
                        let cache = tx.cache("bench");
                        for k in &keys {
                            cache.set(k, &v, TTL)?;
                        }
                        Ok::<_, Error>(())
                    })
                    .expect("batch")
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("raw_rusqlite", |b| {
        b.iter(|| {
            raw.0.execute_batch("BEGIN IMMEDIATE").expect("begin");
            for k in &keys {
                raw.set(k, &v);
            }
            raw.0.execute_batch("COMMIT").expect("commit");
        })
    });
    g.finish();
}

/// What least-recently-used eviction costs a hit: each hit records its use, a small write
/// transaction, against the plain read of a least-recently-stored namespace.
fn lru_hit(c: &mut Criterion) {
    let (_dir, store, _raw, keys) = setup();
    let lru = CacheLimits {
        max_entries: Some(1_000_000),
        eviction: Eviction::LeastRecentlyUsed,
        ..Default::default()
    };
    store.cache("bench").set_limits(lru).expect("limits");
    let cache = store.cache("bench");
    let mut i = 0;
    let mut g = c.benchmark_group("get_hit_lru");
    g.bench_function("cairn_lru", |b| {
        b.iter(|| {
            i = (i + 7) % KEYS;
            black_box(cache.get::<Vec<u8>>(&keys[i]).expect("get").expect("hit"))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4))
}

criterion_group! { name = benches; config = config(); targets = single_ops, batch, lru_hit }
criterion_main!(benches);
