//! The shell idioms cairn exists for, run by bash against the real binary, with kills.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{cairn_bin, output_within, wait_until, wait_within, Env};

/// bash running `script` in the store's directory, with `cairn` on the PATH and the store
/// chosen by CAIRN_DB, in its own process group so the whole pipeline can be killed.
fn bash(env: &Env, script: &str) -> Command {
    let bin_dir = cairn_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(format!("set -u\n{script}"))
        .env("PATH", path)
        .env("CAIRN_DB", env.db())
        .env_remove("CAIRN_NS")
        .env_remove("CAIRN_MEMO_TTL")
        .env_remove("CAIRN_DURABILITY")
        .current_dir(env.dir.path())
        .process_group(0);
    c
}

fn run_bash(env: &Env, script: &str) -> String {
    let out = output_within(&mut bash(env, script), "a bash script");
    assert!(out.status.success(), "script failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn lines(env: &Env, name: &str) -> Vec<String> {
    std::fs::read_to_string(env.path(name)).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[test]
fn the_filter_mark_loop_resumes_after_a_kill_without_redoing_done_work() {
    let env = Env::new();
    let script = "seq 1 300 | cairn ledger filter | while read -r id; do echo \"$id\" >> work.log; cairn ledger mark \"$id\"; done";
    let mut first = bash(&env, script).stdout(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(&env, "work.log").len() < 40 {
        assert!(Instant::now() < deadline, "the loop never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The whole pipeline dies at once, as a reboot or an OOM kill would do it.
    kill(Pid::from_raw(-(first.id() as i32)), Signal::SIGKILL).unwrap();
    first.wait().unwrap();
    let before = lines(&env, "work.log").len();
    assert!(before < 300, "killed too late to test resuming");

    run_bash(&env, script);
    assert_eq!(run_bash(&env, "cairn ledger count --state done"), "300\n");
    let work = lines(&env, "work.log");
    let mut seen = std::collections::HashMap::new();
    for id in &work {
        *seen.entry(id.clone()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 300, "every id was worked on");
    let redone: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    // Only the item in flight at the kill (worked, not yet marked) may be worked twice.
    assert!(redone.len() <= 1, "redone: {redone:?}");
    // A third run has nothing to do.
    run_bash(&env, script);
    assert_eq!(lines(&env, "work.log").len(), work.len());
}

#[test]
fn memo_replays_what_the_command_printed_and_its_status() {
    let env = Env::new();
    let out = run_bash(
        &env,
        r#"cmd() { echo "run" >> runs; echo "to stdout"; echo "to stderr" >&2; return 4; }
           export -f cmd
           direct_out=$(bash -c cmd 2>direct_err); direct=$?
           for i in 1 2 3; do
             got_out=$(cairn memo --ttl 1h --cache-failures -- bash -c cmd 2>got_err); got=$?
             [ "$got_out" = "$direct_out" ] && [ "$got" = "$direct" ] && cmp -s got_err direct_err || echo "MISMATCH $i"
           done
           wc -l < runs"#,
    );
    assert_eq!(out, "2\n", "one direct run and one memo run, then replays");
}

#[test]
fn two_overlapping_no_wait_locks_run_one_command() {
    let env = Env::new();
    let out = run_bash(
        &env,
        // File handshakes (polled every 10 ms), each given up after 20 s.
        r#"await_file() { timeout 20 sh -c "until [ -e $1 ]; do sleep 0.01; done"; }
           export -f await_file
           cairn lock nightly --no-wait -- bash -c 'touch held; await_file release && echo first' > first.out &
           await_file held || echo "the first command never ran"
           cairn lock nightly --no-wait -- echo second; echo "second exit $?"
           touch release; wait $!; echo "first exit $?"
           cat first.out
           cairn lock nightly --no-wait -- echo third"#,
    );
    assert_eq!(out, "second exit 1\nfirst exit 0\nfirst\nthird\n");
}

/// True while process `pid` sits in read(2) on its stdin: blocked there, since a read of
/// data already in the pipe returns at once.
fn reading_stdin(pid: u32) -> bool {
    let call = match std::fs::read_to_string(format!("/proc/{pid}/syscall")) {
        Ok(call) => call,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            panic!("/proc/{pid}/syscall: {e}: this test needs to see a child's system call (ptrace access)")
        }
        Err(_) => return false,
    };
    let mut fields = call.split_whitespace();
    fields.next() == Some(nix::libc::SYS_read.to_string().as_str()) && fields.next() == Some("0x0")
}

#[test]
fn a_batch_killed_mid_stream_applies_nothing() {
    let env = Env::new();
    env.ok(&["cache", "set", "before", "1"], 0);
    // Two complete lines, then the feed stalls; cairn is killed while it waits for more.
    let mut cairn = env.cairn_std().args(["batch"]).stdin(Stdio::piped()).spawn().unwrap();
    let mut feed = cairn.stdin.take().unwrap();
    feed.write_all(b"{\"op\":\"set\",\"key\":\"a\",\"value\":\"1\"}\n{\"op\":\"mark\",\"id\":\"x\"}\n")
        .unwrap();
    // Blocked reading with both lines written means it has read them all: kill it then, not
    // after a sleep that on a slow machine may end before cairn even started.
    wait_until("cairn read both lines and waits for more", || reading_stdin(cairn.id()));
    cairn.kill().unwrap();
    let status = cairn.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");
    drop(feed);
    env.ok(&["cache", "get", "a"], 1);
    env.ok(&["ledger", "has", "x"], 1);
    assert_eq!(env.ok(&["cache", "get", "before"], 0), "1");
    env.ok(&["doctor"], 0);
}

#[test]
fn a_batch_killed_at_any_moment_is_all_or_nothing() {
    let env = Env::new();
    run_bash(&env, "cairn cache get init || true");
    let lines_per_batch = 200;
    for round in 0..20u64 {
        let mut child = env.cairn_std().args(["batch"]).stdin(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..lines_per_batch {
            writeln!(stdin, r#"{{"op":"set","ns":"r{round}","key":"k{i}","value":"v"}}"#).unwrap();
        }
        drop(stdin); // end of input: cairn now writes
                     // Varied kill points, from before the transaction to after the commit.
        std::thread::sleep(Duration::from_micros((round * 7919) % 40_000));
        let _ = child.kill();
        child.wait().unwrap();
        let keys = env.ok(&["-n", &format!("r{round}"), "cache", "list"], 0);
        let n = keys.lines().count();
        assert!(n == 0 || n == lines_per_batch, "round {round}: {n} of {lines_per_batch} keys applied");
    }
    assert_eq!(run_bash(&env, "cairn doctor > /dev/null; echo $?"), "0\n");
}

#[test]
fn eight_concurrent_incr_loops_add_up_exactly() {
    let env = Env::new();
    let out = run_bash(
        &env,
        r#"for w in 1 2 3 4 5 6 7 8; do
             ( for i in $(seq 1 25); do cairn cache incr hits > /dev/null || echo "FAILED $?"; done ) &
           done
           wait
           cairn cache get hits"#,
    );
    assert_eq!(out, "200");
}

/// Cache misses recorded in the `memo` namespace, by every process.
fn memo_misses(env: &Env) -> u64 {
    cairn::Store::open(env.db()).unwrap().cache("memo").stats().unwrap().misses
}

#[test]
fn overlapping_identical_memo_calls_run_the_command_once() {
    let env = Env::new();
    // What one call records: it misses, and counts its misses when it takes the write lock
    // to claim the computation or to find it claimed.
    env.ok(&["memo", "--key", "calibrate", "--", "true"], 0);
    let per_call = memo_misses(&env);
    assert!(per_call > 0, "a first call recorded no miss");
    // The command holds until released, so that the six calls overlap it for certain.
    let command = "echo x >> runs; timeout 20 sh -c 'until [ -e release ]; do sleep 0.01; done' && echo done";
    let mut calls: Vec<_> = (1..=6)
        .map(|i| {
            let out = std::fs::File::create(env.path(&format!("out.{i}"))).unwrap();
            env.cairn_std()
                .args(["memo", "--ttl", "1h", "--", "sh", "-c", command])
                .stdout(out)
                .spawn()
                .unwrap()
        })
        .collect();
    wait_until("one call runs the command", || !lines(&env, "runs").is_empty());
    // Release it only once every other call has missed too and waits for it: a sleep here
    // would let late starters find the result stored, and pass without any overlap.
    wait_until("all six calls missed", || memo_misses(&env) == 7 * per_call);
    std::fs::write(env.path("release"), "").unwrap();
    for (i, call) in calls.iter_mut().enumerate() {
        assert!(wait_within(call, "cairn memo").success(), "call {}", i + 1);
        assert_eq!(lines(&env, &format!("out.{}", i + 1)), ["done"], "call {}", i + 1);
    }
    assert_eq!(lines(&env, "runs").len(), 1, "the command ran more than once");
    assert_eq!(memo_misses(&env), 7 * per_call, "a call missed again after the result was stored");
}

#[test]
fn a_backup_taken_while_other_processes_write_is_consistent() {
    let env = Env::new();
    let out = run_bash(
        &env,
        r#"cairn cache set n 0
           writer() { for i in $(seq 1 60); do
               printf '%s\n' '{"op":"incr","key":"n"}' "{\"op\":\"mark\",\"id\":\"$1-$i\"}" | cairn batch || echo "WRITE FAILED"
             done; }
           writer a & writer b &
           for k in 1 2 3; do cairn backup "copy-$k.db" || echo "BACKUP FAILED"; done
           wait
           for k in 1 2 3; do
             n=$(cairn --db "copy-$k.db" cache get n)
             done=$(cairn --db "copy-$k.db" ledger count --state done)
             # Each batch adds 1 to n and marks one id in one transaction: a consistent copy
             # shows them equal, whenever it was taken.
             [ "$n" = "$done" ] || echo "INCONSISTENT copy-$k: n=$n done=$done"
             cairn --db "copy-$k.db" doctor > /dev/null || echo "DOCTOR copy-$k"
           done
           cairn cache get n"#,
    );
    assert_eq!(out, "120");
}
