//! Cron overlap and worker pools: several processes updating one file at once must never see
//! "database is locked" and never lose an update.

use cairn::{Error, Store};
use cairn_testkit::Running;

use crate::child;

fn run_all(children: Vec<Running>) -> Vec<String> {
    let mut failures = Vec::new();
    for c in children {
        let (status, lines, stderr) = c.finish().expect("wait");
        if !status.success() || !lines.iter().any(|l| l == "DONE") {
            failures.push(format!("{status}: {stderr}"));
        }
    }
    failures
}

#[test]
fn n_processes_doing_m_read_modify_writes_lose_nothing_and_never_see_busy() -> Result<(), Error> {
    const N: usize = 8;
    const M: usize = 150;
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
