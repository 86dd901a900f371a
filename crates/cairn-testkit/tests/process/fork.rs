//! cairn's idea of "this process" after a fork. A child forked after its parent took a lock
//! once wrote the parent's pid into its own lock rows; when the parent exited, other processes
//! judged the child's lock "held by a dead process" and took it over while the child worked.

use std::time::{Duration, Instant};

use cairn::{Error, Store};
use cairn_testkit::Running;

use crate::child;

/// Exited: no such process, or a zombie its parent (here, the test) has not reaped.
fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |s| s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
}

fn wait_gone(pid: u32) {
    let until = Instant::now() + Duration::from_secs(20);
    while !gone(pid) {
        assert!(Instant::now() < until, "process {pid} did not exit within 20 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_forked_childs_lock_names_the_child_and_outlives_its_parent() -> Result<(), Error> {
    if !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("SKIP: no /proc here; without it no holder is ever judged dead, so this cannot go wrong");
        return Ok(());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fork.db");
    let p = path.to_str().expect("utf-8");
    let mut run = Running::spawn(child(), &["fork-lock", "--db", p]).expect("spawn");
    assert!(
        run.wait_for(Duration::from_secs(20), |l| l.starts_with("CHILD ")),
        "no CHILD line: {:?}",
        run.lines()
    );
    assert!(run.wait_for(Duration::from_secs(20), |l| l.starts_with("PARENT ")), "no PARENT line");
    let lines = run.lines();
    let field = |prefix: &str, i: usize| -> u32 {
        let line = lines.iter().find_map(|l| l.strip_prefix(prefix)).expect("line");
        line.split(' ').nth(i).and_then(|v| v.parse().ok()).expect("number")
    };
    let (parent, child_pid, holder) = (field("PARENT ", 0), field("CHILD ", 0), field("CHILD ", 1));
    assert_ne!(child_pid, parent);
    assert_eq!(holder, child_pid, "the child's lock row names pid {holder}, not the child {child_pid}");

    wait_gone(parent);
    let store = Store::open(&path)?;
    assert!(
        store.try_lock("child", Duration::from_secs(60))?.is_none(),
        "the lock of a live child was taken over once its parent exited"
    );
    run.close_stdin(); // the child aborts, leaving its lock row behind
    wait_gone(child_pid);
    assert!(
        store.try_lock("child", Duration::from_secs(60))?.is_some(),
        "a dead child's lock is recovered at once"
    );
    Ok(())
}
