//! Compute-once across processes: when several processes miss one key together, one computes
//! and the others wait for its value; a crashed computer does not block them for ever.

use std::path::Path;
use std::time::Duration;

use cairn::Error;
use cairn_testkit::{wait_until, Running};

use crate::child;

/// A store in a temporary directory, and its path.
fn setup() -> Result<(tempfile::TempDir, String), Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    cairn::Store::open(&db)?;
    Ok((dir, db.to_str().expect("utf-8").to_owned()))
}

/// A temporary directory, and the log file in it in which each computation writes a line.
fn computation_log() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("computations.log");
    (dir, log)
}

fn computations(log: &Path) -> usize {
    std::fs::read_to_string(log).map(|s| s.lines().count()).unwrap_or(0)
}

#[test]
fn processes_missing_one_key_together_compute_it_once_and_share_the_value() -> Result<(), Error> {
    let (_dir, db) = setup()?;
    six_processes_missing_one_key_compute_it_once(&db);
    Ok(())
}

#[test]
fn a_computing_process_killed_mid_computation_is_taken_over_at_once_on_the_same_host() -> Result<(), Error> {
    let (_dir, db) = setup()?;
    a_killed_computer_is_taken_over_at_once(&db);
    Ok(())
}

/// Six processes miss the key of the store at `db` together: one computes (writing a line to
/// a log), the five others wait for it, and all six get the same value. Shared with the
/// PostgreSQL tests (`db` a URL there).
pub(crate) fn six_processes_missing_one_key_compute_it_once(db: &str) {
    let (_dir, log) = computation_log();
    let log = log.as_path();
    let log_s = log.to_str().expect("utf-8");
    // The computation lasts until its stdin closes, so that it overlaps every other process
    // for certain: a fixed computing time let late starters find the value stored and pass
    // without any overlap.
    let mut children: Vec<Running> = (0..6)
        .map(|_| {
            Running::spawn(child(), &["stampede", "--db", db, "--key", "k", "--log", log_s, "--ms", "stdin"])
                .expect("spawn")
        })
        .collect();
    wait_until("one process computes", || computations(log) == 1);
    let waiting = || children.iter().filter(|c| c.lines().iter().any(|l| l == "WAITING")).count();
    wait_until("the five others wait for it", || waiting() == 5);
    for c in &mut children {
        c.close_stdin();
    }
    let mut values = Vec::new();
    for c in children {
        let (status, lines, stderr) = c.finish().expect("wait");
        assert!(status.success(), "{stderr}");
        values.extend(lines.into_iter().filter_map(|l| l.strip_prefix("VALUE ").map(str::to_owned)));
    }
    assert_eq!(computations(log), 1, "the computation ran more than once");
    assert_eq!(values.len(), 6);
    assert!(values.windows(2).all(|w| w[0] == w[1]), "processes saw different values: {values:?}");
}

/// A process computing the key dies (SIGKILL) holding a fill marker with a minute's lease:
/// the waiters that come next take over at once, on the same host, and compute exactly once.
pub(crate) fn a_killed_computer_is_taken_over_at_once(db: &str) {
    let (_dir, log) = computation_log();
    let log = log.as_path();
    let log_s = log.to_str().expect("utf-8");
    let args = |ms: &'static str| {
        ["stampede", "--db", db, "--key", "k", "--log", log_s, "--ms", ms, "--fill-ms", "60000"]
    };
    let doomed = Running::spawn(child(), &args("60000")).expect("spawn");
    let started = std::time::Instant::now();
    wait_until("the first process computes", || computations(log) == 1);
    doomed.kill().expect("kill");
    let waiters: Vec<Running> =
        (0..3).map(|_| Running::spawn(child(), &args("50")).expect("spawn")).collect();
    for w in waiters {
        let (status, lines, stderr) = w.finish().expect("wait");
        assert!(status.success(), "{stderr}");
        assert!(lines.iter().any(|l| l.starts_with("VALUE ")), "{lines:?}");
    }
    assert_eq!(computations(log), 2, "one doomed computation, then exactly one takeover");
    // The doomed marker's lease runs a minute: only noticing the dead pid frees it sooner.
    assert!(started.elapsed() < Duration::from_secs(30), "the waiters sat out the lease");
}
