//! `cairn memo` and `cairn lock`: commands run once, replayed exactly, never overlapping.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use crate::{wait_until, wait_within, Env};

/// A command that counts its runs in `count` and prints the run number on stdout and stderr.
pub(crate) fn counting(status: i32) -> Vec<String> {
    let script = format!("echo x >> count; n=$(wc -l < count); printf 'out %s\\0\\377' $n; printf 'err %s' $n >&2; exit {status}");
    vec!["sh".into(), "-c".into(), script]
}

pub(crate) fn runs(env: &Env) -> usize {
    std::fs::read_to_string(env.path("count")).map_or(0, |s| s.lines().count())
}

pub(crate) fn memo(env: &Env, flags: &[&str], cmd: &[String]) -> (i32, Vec<u8>, String) {
    let mut args: Vec<&str> = vec!["memo"];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend(cmd.iter().map(String::as_str));
    env.run(&args)
}

#[test]
fn memo_replays_stdout_stderr_and_status_exactly_without_rerunning() {
    let env = Env::new();
    let first = memo(&env, &["--ttl", "1h"], &counting(0));
    assert_eq!(first, (0, b"out 1\0\xff".to_vec(), "err 1".into()));
    assert_eq!(memo(&env, &["--ttl", "1h"], &counting(0)), first);
    assert_eq!(runs(&env), 1);
}

#[test]
fn failures_are_rerun_unless_cache_failures_is_given() {
    let env = Env::new();
    assert_eq!(memo(&env, &[], &counting(3)).0, 3);
    assert_eq!(memo(&env, &[], &counting(3)).0, 3);
    assert_eq!(runs(&env), 2);
    let kept = memo(&env, &["--cache-failures"], &counting(3));
    assert_eq!(memo(&env, &["--cache-failures"], &counting(3)), kept);
    assert_eq!(runs(&env), 3);
    // Death by signal is reported as a shell does, and is a failure.
    let killed = memo(&env, &[], &["sh".into(), "-c".into(), "kill -9 $$".into()]);
    assert_eq!(killed.0, 137);
}

#[test]
fn the_key_is_the_command_line_and_directory_unless_given() {
    let env = Env::new();
    memo(&env, &[], &counting(0));
    memo(&env, &[], &[counting(0), vec!["extra-arg".into()]].concat());
    assert_eq!(runs(&env), 2);
    let elsewhere = env.path("sub");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = env.cairn().current_dir(&elsewhere).args(["memo", "--"]).args(counting(0)).output().unwrap();
    assert_eq!(out.stdout, b"out 1\0\xff", "a new directory is a new key (and its own count file)");
    // An explicit key is shared by different command lines.
    let a = memo(&env, &["--key", "k"], &counting(0));
    let b = memo(&env, &["--key", "k"], &["false".to_string()]);
    assert_eq!(a, b);
}

/// The cache entries of `cairn memo`'s results.
fn memo_entries(env: &Env) -> String {
    env.ok(&["-n", "memo", "cache", "list"], 0)
}

#[test]
fn an_expired_result_is_recomputed() {
    let env = Env::new();
    memo(&env, &["--ttl", "1ms"], &counting(0));
    // The stored result lives ttl + stale = 1 ms: watch it go rather than sleep and hope.
    wait_until("the 1 ms result expired", || memo_entries(&env).is_empty());
    assert_eq!(memo(&env, &["--ttl", "1ms"], &counting(0)).1, b"out 2\0\xff");
    assert_eq!(runs(&env), 2);
}

/// Wait until the wall clock, which cairn stamps results with, is past `t`: a result stored
/// before `t` is then at least 1 ms old. Its entry outlives that (it is kept for the stale
/// window), so the age cannot be watched from outside; the time it was stored can be bounded.
fn wait_until_past(t: SystemTime) {
    let past_t = || SystemTime::now().duration_since(t).is_ok_and(|d| d >= Duration::from_millis(2));
    wait_until("the wall clock passed the stored result's freshness", past_t);
}

#[test]
fn stale_results_are_served_while_one_background_run_refreshes_them() {
    let env = Env::new();
    let flags = ["--ttl", "1ms", "--stale", "1h"];
    memo(&env, &flags, &counting(0));
    wait_until_past(SystemTime::now());
    assert_eq!(memo(&env, &flags, &counting(0)).1, b"out 1\0\xff", "stale result served at once");
    wait_until("the background refresh ran", || runs(&env) == 2);
    wait_until("the refreshed result is stored", || {
        memo(&env, &["--ttl", "1h"], &counting(0)).1 == b"out 2\0\xff"
    });
    assert_eq!(runs(&env), 2);
}

#[test]
fn a_command_that_cannot_run_exits_127_or_126() {
    let env = Env::new();
    let (code, _, err) = env.run(&["memo", "--", "no-such-command-here"]);
    assert_eq!(code, 127);
    crate::assert_one_line_error(&err);
    let (code, _, _) = env.run(&["lock", "l", "--", "no-such-command-here"]);
    assert_eq!(code, 127);
    std::fs::write(env.path("script"), "#!/bin/sh\n").unwrap(); // not executable
    let (code, _, _) = env.run(&["memo", "--", env.path("script").to_str().unwrap()]);
    assert_eq!(code, 126);
}

#[test]
fn lock_runs_the_command_and_exits_with_its_status() {
    let env = Env::new();
    let (code, out, _) = env.run(&["lock", "job", "--", "sh", "-c", "echo inside; exit 5"]);
    assert_eq!((code, out.as_slice()), (5, &b"inside\n"[..]));
    // Released: the next run gets it at once.
    env.ok(&["lock", "job", "--no-wait", "--", "true"], 0);
}

#[test]
fn a_held_lock_exits_1_with_no_wait_and_after_the_wait() {
    let env = Env::new();
    env.ok(&["cache", "get", "init"], 1); // create the store
    let store = cairn::Store::open(env.db()).unwrap();
    let guard = store.try_lock("job", Duration::from_secs(60)).unwrap().unwrap();
    let (code, out, err) = env.run(&["lock", "job", "--no-wait", "--", "touch", "ran"]);
    assert_eq!((code, out.len()), (1, 0));
    assert!(err.contains("is held by pid"), "{err}");
    let (code, _, _) = env.run(&["lock", "job", "--wait", "100ms", "--", "touch", "ran"]);
    assert_eq!(code, 1);
    assert!(!env.path("ran").exists());
    drop(guard);
    env.ok(&["lock", "job", "--wait", "1s", "--", "touch", "ran"], 0);
    assert!(env.path("ran").exists());
}

/// `--ttl 1ms` was renewed every 1 ms, which let the lock lapse while the command ran, so a
/// second `cairn lock --no-wait` ran too. A TTL below 100ms is refused as a usage error,
/// before the lock is taken or the command run.
#[test]
fn lock_refuses_a_ttl_too_short_to_be_renewed() {
    let env = Env::new();
    let (code, _, err) = env.run(&["lock", "--ttl", "1ms", "job", "--", "touch", "ran"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at least 100ms"), "{err}");
    crate::assert_one_line_error(&err);
    assert!(!env.path("ran").exists());
    env.ok(&["lock", "--ttl", "100ms", "job", "--", "touch", "ran"], 0);
    assert!(env.path("ran").exists());
}

/// A lock lost while the command ran (cairn stopped past the TTL, and the lock taken over
/// meanwhile) used to end with the command's 0 and only a note: the script took unprotected
/// work for success. It exits 1, a lease lost, and says so.
#[test]
fn lock_lost_while_the_command_ran_exits_1() {
    let env = Env::new();
    env.ok(&["cache", "get", "init"], 1); // create the store
    let holder = hold(&env, "job", &["--ttl", "150ms"], "a");
    let pid = holder.id().to_string();
    let signal = |sig: &str| {
        assert!(std::process::Command::new("kill").args([sig, &pid]).status().unwrap().success());
    };
    let store = cairn::Options::new().busy_timeout(Duration::from_millis(300)).open(env.db()).unwrap();
    // Its renewals stop with it: the lock runs out, and is taken over. (Stopped in the middle
    // of a renewal, it would hold the file's write lock: then let it go on a moment.)
    signal("-STOP");
    let thief = loop {
        match store.try_lock("job", Duration::from_secs(60)) {
            Ok(Some(g)) => break g,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => {
                signal("-CONT");
                std::thread::sleep(Duration::from_millis(5));
                signal("-STOP");
            }
        }
    };
    signal("-CONT");
    // Its next renewal, due at once, finds the lock taken.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(env.path("release"), "").unwrap();
    let out = holder.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("was not held to the end"), "{err}");
    drop(thief);
}

/// A `cairn lock` of `name` with `flags` in the background, running a command that says it
/// started (file `started-TAG`) and holds until the file `release` appears (20 s at most).
fn hold(env: &Env, name: &str, flags: &[&str], tag: &str) -> std::process::Child {
    let script = format!(
        "touch started-{tag}; i=0; while [ ! -e release ] && [ $i -lt 2000 ]; do i=$((i+1)); sleep 0.01; done"
    );
    let mut args = vec!["lock", name];
    args.extend_from_slice(flags);
    args.extend(["--", "sh", "-c", &script]);
    let child = env.cairn_std().args(&args).spawn().unwrap();
    wait_until(&format!("holder {tag} runs"), || env.path(&format!("started-{tag}")).exists());
    child
}

#[test]
fn lock_max_lets_that_many_commands_run_at_once_and_holds_the_next() {
    let env = Env::new();
    env.ok(&["cache", "get", "init"], 1); // create the store
    let mut a = hold(&env, "pool", &["--max", "2"], "a");
    let mut b = hold(&env, "pool", &["--max", "2"], "b");
    let (code, _, err) = env.run(&["lock", "pool", "--max", "2", "--no-wait", "--", "touch", "ran"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("2 holders at most") && err.contains("by pids"), "{err}");
    assert!(!env.path("ran").exists());
    assert_eq!(holders(&env, "pool", 2), 2);
    std::fs::write(env.path("release"), "").unwrap();
    assert!(wait_within(&mut a, "holder a").success());
    assert!(wait_within(&mut b, "holder b").success());
    env.ok(&["lock", "pool", "--max", "2", "--no-wait", "--", "touch", "ran"], 0);
    assert!(env.path("ran").exists());
    assert_eq!(holders(&env, "pool", 2), 0, "all released");
}

#[test]
fn held_exit_sets_the_status_when_the_lock_is_held() {
    let env = Env::new();
    env.ok(&["cache", "get", "init"], 1);
    let store = cairn::Store::open(env.db()).unwrap();
    let guard = store.try_lock("job", Duration::from_secs(60)).unwrap().unwrap();
    let (code, _, _) = env.run(&["lock", "job", "--no-wait", "--held-exit", "75", "--", "touch", "ran"]);
    assert_eq!(code, 75);
    let (code, _, _) = env.run(&["lock", "job", "--wait", "10ms", "--held-exit", "0", "--", "touch", "ran"]);
    assert_eq!(code, 0, "0 is a valid choice: 'held is fine'");
    assert!(!env.path("ran").exists());
    drop(guard);
    let (code, _, _) = env.run(&["lock", "job", "--held-exit", "75", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "the command's own status when it ran");
    let (code, _, err) = env.run(&["lock", "job", "--held-exit", "256", "--", "true"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = env.run(&["lock", "job", "--max", "0", "--", "true"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_semaphore_slot_is_recovered_once_its_killed_cairns_command_is_gone() {
    let env = Env::new();
    env.ok(&["cache", "get", "init"], 1);
    let mut a = hold(&env, "pool", &["--max", "2", "--ttl", "1h"], "a");
    let mut b = hold(&env, "pool", &["--max", "2", "--ttl", "1h"], "b");
    let group_a = -i32::try_from(a.id()).unwrap(); // cairn_std starts a process group
    a.kill().unwrap(); // SIGKILL: its slot's row stays, its pid is gone, its command runs on
    a.wait().unwrap();
    env.ok(&["lock", "pool", "--max", "2", "--no-wait", "--", "touch", "ran"], 1);
    assert!(!env.path("ran").exists());
    kill(group_a); // the command, and the sleep it may be running
    let take = || env.run(&["lock", "pool", "--max", "2", "--no-wait", "--", "touch", "ran"]).0 == 0;
    wait_until("a's slot is free once its command is gone", take);
    assert!(env.path("ran").exists());
    std::fs::write(env.path("release"), "").unwrap();
    assert!(wait_within(&mut b, "holder b").success());
}

fn holders(env: &Env, name: &str, max: u32) -> usize {
    cairn::Store::open(env.db()).unwrap().lock_holders(name, max).unwrap().len()
}

fn holder(env: &Env, name: &str) -> Option<cairn::LockHolder> {
    cairn::Store::open(env.db()).unwrap().lock_holder(name).unwrap()
}

/// Issue 19.1: `cairn lock` killed with SIGKILL left its command running, and the next
/// `cairn lock --no-wait` took the lock at once (the holder's pid was gone) and ran beside it.
/// The lock stays held while the command, or anything it started, runs (here: after the
/// command's own shell is killed too, its background child), and is free at once after.
#[test]
fn a_killed_cairn_lock_holds_its_lock_until_its_command_and_its_children_are_gone() {
    let env = Env::new();
    let script =
        "(while [ ! -e release ]; do sleep 0.01; done) & echo $! > child.pid; echo $$ > cmd.tmp; mv cmd.tmp cmd.pid; wait";
    let mut cairn =
        env.cairn_std().args(["lock", "job", "--ttl", "1h", "--", "sh", "-c", script]).spawn().unwrap();
    wait_until("the command runs", || {
        env.path("child.pid").exists() && env.path("cmd.pid").exists() && holder(&env, "job").is_some()
    });
    cairn.kill().unwrap(); // SIGKILL
    cairn.wait().unwrap();
    let (code, _, err) = env.run(&["lock", "job", "--no-wait", "--", "touch", "ran"]);
    assert_eq!(code, 1, "taken while the killed cairn's command runs: {err}");
    let command = pid_of(&env.path("cmd.pid"));
    kill(command);
    wait_until("the command's shell is gone", || gone(command));
    let (code, _, err) = env.run(&["lock", "job", "--no-wait", "--", "touch", "ran"]);
    assert_eq!(code, 1, "taken while a child of the command runs: {err}");
    assert!(!env.path("ran").exists());
    let child = pid_of(&env.path("child.pid"));
    std::fs::write(env.path("release"), "").unwrap();
    wait_until("the command's child is gone", || gone(child));
    env.ok(&["lock", "job", "--no-wait", "--", "touch", "ran"], 0);
    assert!(env.path("ran").exists());
}

/// Issue 19.1, for memo: a `cairn memo` killed with SIGKILL left its command running, and
/// the next call of the same key ran the command a second time beside it. It now waits for
/// the first command to end (nobody stores its result: the killed cairn was to), then runs.
#[test]
fn a_killed_cairn_memo_keeps_its_run_until_its_command_is_gone() {
    let env = Env::new();
    let first = "echo $$ > cmd.pid; while [ ! -e release ]; do sleep 0.01; done; echo first >> runs";
    let mut cairn =
        env.cairn_std().args(["memo", "--key", "k", "--ttl", "1h", "--", "sh", "-c", first]).spawn().unwrap();
    wait_until("the first command runs", || env.path("cmd.pid").exists());
    cairn.kill().unwrap(); // SIGKILL
    cairn.wait().unwrap();
    let mut second = env
        .cairn_std()
        .args(["memo", "--key", "k", "--ttl", "1h", "--", "sh", "-c", "echo second >> runs"])
        .spawn()
        .unwrap();
    // It either runs its command at once (the bug), or finds the first run alive and waits,
    // sleeping between its looks at the store.
    wait_until("the second call runs its command or waits", || {
        env.path("runs").exists() || waiting_in_sleep(second.id())
    });
    assert!(!env.path("runs").exists(), "the command ran twice at once");
    std::fs::write(env.path("release"), "").unwrap();
    assert!(wait_within(&mut second, "the second memo").success());
    assert_eq!(std::fs::read_to_string(env.path("runs")).unwrap(), "first\nsecond\n");
}

/// The pid written in the file at `path` (by `echo $$`).
fn pid_of(path: &Path) -> i32 {
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

/// SIGKILL to process `pid`, or to process group `-pid`.
fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}

/// Gone, or a zombie nobody reaped yet (an orphan's, in a container whose init does not reap).
pub(crate) fn gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// Whether process `pid` is asleep in nanosleep (its wait loop), as `/proc/PID/wchan` says.
fn waiting_in_sleep(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.contains("nanosleep"))
}

#[test]
fn signals_sent_to_cairn_reach_the_command() {
    let env = Env::new();
    // Waits for the TERM in short sleeps (sh runs a trap between commands), 20 s at most.
    let script = "trap 'echo got-term > sig; exit 42' TERM; touch ready; i=0; \
                  while [ $i -lt 1000 ]; do i=$((i+1)); sleep 0.02; done; exit 9";
    let mut cairn = env.cairn_std().args(["lock", "job", "--", "sh", "-c", script]).spawn().unwrap();
    wait_until("the command runs", || env.path("ready").exists());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(cairn.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let status = wait_within(&mut cairn, "cairn lock, after its SIGTERM");
    assert_eq!(status.code(), Some(42), "the TERM never reached the command (9: it gave up waiting)");
    assert_eq!(std::fs::read_to_string(env.path("sig")).unwrap(), "got-term\n");
    assert!(holder(&env, "job").is_none(), "released after the command ended");
}

impl Env {
    /// A std `Command` for `cairn` (assert_cmd's cannot be spawned and killed).
    pub(crate) fn cairn_std(&self) -> std::process::Command {
        let mut c = std::process::Command::new(crate::cairn_bin());
        c.env("CAIRN_DB", self.db())
            .env_remove("XDG_STATE_HOME")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        c
    }
}
