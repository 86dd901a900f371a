//! The helpers' own promises, which every other test here leans on: a bounded wait gives up
//! at its deadline (or at once when the child can print nothing more), a child that hangs is
//! killed at its deadline, instead of hanging the run; and the exclusive guard really keeps a
//! second holder out until the first lets go.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_testkit::{exclusive, try_exclusive, Running};

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

#[test]
fn finish_within_kills_a_child_that_outlives_its_deadline_and_says_what_it_printed() {
    let run = Running::spawn(Path::new("sh"), &["-c", "echo started; echo complaint >&2; exec sleep 600"])
        .expect("spawn sh");
    assert!(run.wait_for(Duration::from_secs(20), |l| l == "started"));
    let started = Instant::now();
    let err = run.finish_within(Duration::from_millis(300)).expect_err("the child sleeps for ten minutes");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "overran its deadline: {:?}", started.elapsed());
    let message = err.to_string();
    assert!(message.contains("started") && message.contains("complaint"), "{message}");
}

/// True while the thread `tid` of this process is inside the system call `nr`.
fn thread_in_syscall(tid: &str, nr: nix::libc::c_long) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
        .is_ok_and(|s| s.split_whitespace().next() == Some(nr.to_string().as_str()))
}

#[test]
fn an_exclusive_guard_keeps_another_thread_waiting_until_it_drops() {
    // A name of its own: the real heavy tests must not wait on this one, nor it on them.
    let name = format!("self-test-{}", std::process::id());
    let held = exclusive(&name).expect("lock");
    assert!(try_exclusive(&name).expect("try").is_none(), "a second open of the lock file got the lock too");

    let (tell, heard) = mpsc::channel::<String>();
    let waiter = {
        let name = name.clone();
        std::thread::spawn(move || {
            let me = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
            let tid = me.file_name().and_then(|t| t.to_str()).expect("a thread id").to_owned();
            tell.send(tid).expect("send");
            let guard = exclusive(&name).expect("lock");
            tell.send("acquired".into()).expect("send");
            guard
        })
    };
    let tid = heard.recv().expect("the waiter's thread id");
    // Let go only once the waiter sits inside flock(2): then its getting the lock proves
    // that the release, not luck, let it in.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !thread_in_syscall(&tid, nix::libc::SYS_flock) {
        if let Ok(msg) = heard.try_recv() {
            panic!("the waiter got the lock while it was held ({msg})");
        }
        assert!(Instant::now() < deadline, "the waiter never reached flock(2) in 20 s");
        std::thread::sleep(Duration::from_millis(1)); // pacing the poll
    }
    assert!(heard.try_recv().is_err(), "the waiter got the lock while it was held");
    drop(held);
    assert_eq!(heard.recv_timeout(Duration::from_secs(20)).as_deref(), Ok("acquired"));
    let second = waiter.join().expect("the waiter");
    assert!(try_exclusive(&name).expect("try").is_none(), "the waiter holds it now");
    drop(second);
    assert!(try_exclusive(&name).expect("try").is_some(), "free once both guards dropped");
    let _ = std::fs::remove_file(cairn_testkit::exclusive_lock_path(&name));
}
