//! The helpers' own promises, which every other test here leans on: a bounded wait gives up
//! at its deadline (or at once when the child can print nothing more) instead of hanging the
//! run.

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_testkit::Running;

/// A child that prints `READY`, then echoes its stdin (nothing) until that closes.
fn ready_then_wait() -> Running {
    Running::spawn(Path::new("sh"), &["-c", "echo READY; exec cat"]).expect("spawn sh")
}

#[test]
fn wait_until_returns_false_at_its_deadline_when_the_lines_never_satisfy_it() {
    let run = ready_then_wait();
    assert!(run.wait_until(Duration::from_secs(20), |l| l.last().is_some_and(|l| l == "READY")));
    let started = Instant::now();
    let never = run.wait_until(Duration::from_millis(300), |l| l.last().is_some_and(|l| l == "NEVER"));
    let waited = started.elapsed();
    assert!(!never, "the predicate never held, yet the wait said it did");
    assert!(waited >= Duration::from_millis(300), "gave up after {waited:?}, before its deadline");
    assert!(waited < Duration::from_secs(20), "overran its 300 ms deadline: {waited:?}");
    assert!(!run.wait_for(Duration::from_millis(50), |l| l == "NEVER"));
}

#[test]
fn wait_until_gives_up_at_once_when_the_child_closed_its_output() {
    let run = Running::spawn(Path::new("sh"), &["-c", "echo only"]).expect("spawn sh");
    let started = Instant::now();
    assert!(!run.wait_until(Duration::from_secs(600), |l| l.iter().any(|l| l == "NEVER")));
    // Ten minutes was the deadline: only noticing the end of the output returns this soon.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited {:?} on a finished child",
        started.elapsed()
    );
    assert_eq!(run.lines(), vec!["only".to_string()]);
}
