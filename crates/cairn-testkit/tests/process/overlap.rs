//! Cron overlap and worker pools: several processes updating one file at once must never see
//! "database is locked" and never lose an update.

use cairn::{Error, Store};
use cairn_testkit::Running;

use crate::{child, heavy};

fn run_all(children: Vec<Running>) -> Vec<String> {
    let mut failures = Vec::new();
    for c in children {
        let (status, lines, stderr) = c.finish().expect("wait");
        if !status.success() || !lines.iter().any(|l| l == "DONE" || l.starts_with("DONE ")) {
            failures.push(format!("{status}: {stderr}"));
        }
    }
    failures
}

#[test]
fn n_processes_doing_m_read_modify_writes_lose_nothing_and_never_see_busy() -> Result<(), Error> {
    const N: usize = 8;
    const M: usize = 150;
    let _machine = heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("overlap.db");
    Store::open(&path)?; // the race on a brand-new file has its own test below
    let p = path.to_str().expect("utf-8");
    let m = M.to_string();
    let children: Vec<Running> = (0..N)
        .map(|i| {
            let mode = if i % 2 == 0 { "incr" } else { "rmw" };
            Running::spawn(child(), &["incr", "--db", p, "--key", "total", "--n", &m, "--mode", mode])
                .expect("spawn")
        })
        .collect();
    let failures = run_all(children);
    assert!(failures.is_empty(), "children failed: {failures:?}");
    let total = Store::open(&path)?.cache("overlap").get::<i64>("total")?;
    assert_eq!(total, Some((N * M) as i64));
    Ok(())
}

#[test]
fn k_processes_of_mixed_transactions_lose_nothing_and_never_see_busy_with_default_options(
) -> Result<(), Error> {
    const M: u64 = 1_000;
    // Sharing two cores with the crash torture, a writer can wait past the default 5 s busy
    // timeout: the very error this test rules out.
    let _machine = heavy();
    for k in [2u64, 4, 8, 16] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mixed.db");
        Store::open(&path)?;
        let p = path.to_str().expect("utf-8");
        let m = M.to_string();
        let started = std::time::Instant::now();
        let children: Vec<Running> = (0..k)
            .map(|w| {
                Running::spawn(child(), &["mixed", "--db", p, "--worker", &format!("w{w}"), "--n", &m])
                    .expect("spawn")
            })
            .collect();
        let failures = run_all(children);
        let secs = started.elapsed().as_secs_f64();
        assert!(failures.is_empty(), "K = {k}: children failed (a busy error would show here): {failures:?}");
        let store = Store::open(&path)?;
        assert_eq!(store.cache("mixed").get::<i64>("total")?, Some((k * M) as i64), "K = {k}: lost updates");
        assert_eq!(store.ledger("mixed").counts()?.done, k * M, "K = {k}: lost marks");
        for w in 0..k {
            assert_eq!(store.checkpoint(&format!("w{w}")).get::<u64>()?, Some(M - 1), "K = {k}, worker {w}");
            assert_eq!(store.cache("mixed").get::<u64>(&format!("w{w}/last"))?, Some(M - 1));
        }
        eprintln!(
            "mixed contention: K = {k:2}, {} transactions of 4 writes, each followed by 3 checked reads, in {secs:.2} s ({:.0} transactions/s), 0 busy errors, 0 lost",
            k * M,
            (k * M) as f64 / secs
        );
    }
    Ok(())
}

#[test]
fn processes_racing_to_create_the_same_new_file_all_succeed() -> Result<(), Error> {
    for round in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new/sub/fresh.db");
        let p = path.to_str().expect("utf-8");
        let children: Vec<Running> = (0..8)
            .map(|_| Running::spawn(child(), &["incr", "--db", p, "--key", "k", "--n", "1"]).expect("spawn"))
            .collect();
        let failures = run_all(children);
        assert!(failures.is_empty(), "round {round}: {failures:?}");
        let store = Store::open(&path)?;
        assert_eq!(store.cache("overlap").get::<i64>("k")?, Some(8));
        assert_eq!(store.journal_mode(), "wal");
    }
    Ok(())
}
