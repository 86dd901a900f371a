#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Whole-process timings of the `cairn` binary, next to the tools a script would otherwise
//! call: `sqlite3` for a lookup, `bkt` for replaying a cached command. Each iteration spawns a
//! process and waits for it, so the figures include start-up, opening the store and exit.
//! A comparison tool that is not installed is skipped with a note.
//!
//! `cargo bench -p cairn-state-cli --bench cli`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

fn cairn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
}

fn on_path(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|f| f.is_file()));
    if found.is_none() {
        eprintln!("note: {tool} is not installed; its comparison is skipped");
    }
    found
}

fn run(cmd: &mut Command) {
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
    assert!(status.success(), "{cmd:?} failed");
}

fn get(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    run(cairn().arg("--db").arg(&db).args(["cache", "set", "greeting", "hello"]));
    let mut g = c.benchmark_group("cache_get_process");
    g.bench_function("cairn cache get", |b| {
        b.iter(|| run(cairn().arg("--db").arg(&db).args(["cache", "get", "greeting"])))
    });
    if let Some(sqlite3) = on_path("sqlite3") {
        let sql = "SELECT value FROM cairn_cache WHERE ns = 'default' AND key = 'greeting'";
        g.bench_function("sqlite3 SELECT", |b| b.iter(|| run(Command::new(&sqlite3).arg(&db).arg(sql))));
    }
    g.finish();
}

fn memo(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let memo = || {
        let mut cmd = cairn();
        cmd.arg("--db").arg(&db).args(["memo", "--ttl", "1h", "--", "echo", "hello"]);
        cmd
    };
    run(&mut memo());
    let mut g = c.benchmark_group("memo_replay_process");
    g.bench_function("cairn memo", |b| b.iter(|| run(&mut memo())));
    if let Some(bkt) = on_path("bkt") {
        let cache_dir = dir.path().join("bkt");
        let bkt_cmd = || {
            let mut cmd = Command::new(&bkt);
            cmd.arg("--cache-dir").arg(&cache_dir).args(["--ttl", "1h", "--", "echo", "hello"]);
            cmd
        };
        run(&mut bkt_cmd());
        g.bench_function("bkt", |b| b.iter(|| run(&mut bkt_cmd())));
    }
    g.finish();
}

fn filter(c: &mut Criterion) {
    const DONE: usize = 1_000_000;
    const INPUT: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    fill_ledger(&db, DONE);
    // Half of the input is done already, half is new, interleaved.
    let input: String = (0..INPUT)
        .map(|i| if i % 2 == 0 { format!("item-{}\n", i * 7) } else { format!("new-{i}\n") })
        .collect();
    let mut g = c.benchmark_group("ledger_filter_process");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("100k ids against 1M done", |b| {
        b.iter(|| {
            let mut child = cairn()
                .arg("--db")
                .arg(&db)
                .args(["ledger", "filter"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let feed = input.clone();
            let writer = std::thread::spawn(move || stdin.write_all(feed.as_bytes()));
            let out = child.wait_with_output().unwrap();
            writer.join().unwrap().unwrap();
            assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), INPUT / 2);
        })
    });
    g.finish();
}

fn fill_ledger(db: &Path, n: usize) {
    let store = cairn::Store::open(db).unwrap();
    let ledger = store.ledger("default");
    let ids: Vec<String> = (0..n).map(|i| format!("item-{i}")).collect();
    for chunk in ids.chunks(50_000) {
        ledger.mark_done_many(chunk).unwrap();
    }
}

criterion_group!(benches, get, memo, filter);
criterion_main!(benches);
