//! `cairn memo`'s inputs and outputs: what makes a new key (a named environment variable, a
//! file's modification time, stdin), forcing and forgetting a result, output passed on while
//! the command still runs, and memory that stays small whatever the output.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::memo_lock::{counting, memo, runs};
use crate::{wait_until, wait_within, Env};

/// `cmd` as `memo` flags then `--` then the command.
fn args<'a>(flags: &[&'a str], cmd: &'a [String]) -> Vec<&'a str> {
    let mut a: Vec<&str> = vec!["memo"];
    a.extend_from_slice(flags);
    a.push("--");
    a.extend(cmd.iter().map(String::as_str));
    a
}

#[test]
fn force_runs_the_command_even_when_fresh_and_stores_the_new_result() {
    let env = Env::new();
    assert_eq!(memo(&env, &["--ttl", "1h"], &counting(0)).1, b"out 1\0\xff");
    assert_eq!(memo(&env, &["--ttl", "1h", "--force"], &counting(0)).1, b"out 2\0\xff");
    assert_eq!(
        memo(&env, &["--ttl", "1h"], &counting(0)).1,
        b"out 2\0\xff",
        "the forced run's result is kept"
    );
    assert_eq!(runs(&env), 2);
}

#[test]
fn a_named_environment_variable_is_part_of_the_key() {
    let env = Env::new();
    let cmd = vec!["sh".into(), "-c".into(), "echo x >> count; echo \"region=$REGION\"".into()];
    let run = |value: Option<&str>| {
        let mut c = env.cairn();
        match value {
            Some(v) => c.env("REGION", v),
            None => c.env_remove("REGION"),
        };
        let out = c.args(args(&["--ttl", "1h", "--env", "REGION"], &cmd)).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(Some("eu")), "region=eu\n");
    assert_eq!(run(Some("eu")), "region=eu\n");
    assert_eq!(runs(&env), 1, "the same value: replayed");
    assert_eq!(run(Some("us")), "region=us\n", "a new value is a miss, never a wrong replay");
    assert_eq!(run(None), "region=\n", "so is an unset variable");
    assert_eq!(run(Some("")), "region=\n", "and an empty one");
    assert_eq!(runs(&env), 4);
}

#[test]
fn a_named_files_modification_time_is_part_of_the_key() {
    let env = Env::new();
    let input = env.path("input.csv");
    std::fs::write(&input, "a,b\n").unwrap();
    let cmd = vec!["sh".into(), "-c".into(), "echo x >> count; cat input.csv".into()];
    let flags = ["--ttl", "1h", "--modtime", "input.csv"];
    assert_eq!(env.ok(&args(&flags, &cmd), 0), "a,b\n");
    assert_eq!(env.ok(&args(&flags, &cmd), 0), "a,b\n");
    assert_eq!(runs(&env), 1);
    std::fs::write(&input, "c,d\n").unwrap();
    let file = std::fs::File::options().write(true).open(&input).unwrap();
    file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000)).unwrap();
    assert_eq!(env.ok(&args(&flags, &cmd), 0), "c,d\n", "a changed file is a miss");
    std::fs::remove_file(&input).unwrap();
    env.ok(&args(&flags, &cmd), 1);
    assert_eq!(runs(&env), 3, "and a missing one");
}

#[test]
fn stdin_is_part_of_the_key_and_still_reaches_the_command() {
    let env = Env::new();
    let cmd = vec!["sh".into(), "-c".into(), "echo x >> count; cat".into()];
    let flags = ["--ttl", "1h"];
    let run = |flags: &[&str], input: &[u8]| {
        let (code, out, err) = env.run_stdin(&args(flags, &cmd), input);
        assert_eq!(code, 0, "{err}");
        out
    };
    assert_eq!(run(&flags, b"hi\n"), b"hi\n");
    assert_eq!(run(&flags, b"bye\n"), b"bye\n", "another input is another result, not hi's replayed");
    assert_eq!(run(&flags, b"hi\n"), b"hi\n");
    assert_eq!(runs(&env), 2);
    let ignoring = ["--ttl", "1h", "--ignore-stdin"];
    assert_eq!(run(&ignoring, b"one\n"), b"one\n", "still read by the command");
    assert_eq!(run(&ignoring, b"two\n"), b"one\n", "the caller said stdin does not matter");
    assert_eq!(runs(&env), 3);
}

#[test]
fn a_large_stdin_reaches_the_command_whole() {
    let env = Env::new();
    let input: Vec<u8> = (0..3 * 1024 * 1024 + 5).map(|i| (i % 253) as u8).collect();
    let (code, out, err) = env.run_stdin(&["memo", "--", "cat"], &input);
    assert_eq!(code, 0, "{err}");
    assert!(out == input, "{} bytes back of {}", out.len(), input.len());
    let (_, again, _) = env.run_stdin(&["memo", "--", "cat"], &input);
    assert!(again == input, "replayed");
}

#[test]
fn forget_drops_the_stored_result_and_exits_1_when_there_is_none() {
    let env = Env::new();
    memo(&env, &["--ttl", "1h"], &counting(0));
    let (code, out, _) = memo(&env, &["--forget"], &counting(0));
    assert_eq!((code, out.len()), (0, 0), "forgotten, not run");
    assert_eq!(runs(&env), 1);
    assert_eq!(memo(&env, &["--forget"], &counting(0)).0, 1, "nothing left to forget");
    assert_eq!(memo(&env, &["--ttl", "1h"], &counting(0)).1, b"out 2\0\xff");
    assert_eq!(memo(&env, &["--forget", "--force"], &counting(0)).0, 2, "usage error");
}

#[test]
fn cairn_memo_ttl_gives_the_default_ttl_and_a_bad_one_is_a_usage_error() {
    let env = Env::new();
    let cmd = counting(0);
    let (code, _, err) = {
        let out = env.cairn().env("CAIRN_MEMO_TTL", "soon").args(args(&[], &cmd)).output().unwrap();
        (out.status.code(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(code, Some(2));
    crate::assert_one_line_error(&err);
    let run =
        |flags: &[&str]| env.cairn().env("CAIRN_MEMO_TTL", "1ms").args(args(flags, &cmd)).output().unwrap();
    assert!(run(&[]).status.success());
    wait_until("the 1 ms result expired", || env.ok(&["-n", "memo", "cache", "list"], 0).is_empty());
    assert_eq!(run(&[]).stdout, b"out 2\0\xff", "CAIRN_MEMO_TTL=1ms: expired, run again");
    assert_eq!(run(&["--ttl", "1h"]).stdout, b"out 3\0\xff");
    assert_eq!(run(&["--ttl", "1h"]).stdout, b"out 3\0\xff", "--ttl wins over CAIRN_MEMO_TTL");
    assert_eq!(runs(&env), 3);
}

/// The command prints a line, then holds until the test has seen that line: only a memo that
/// passes output on as it comes lets the test see it before the command exits.
#[test]
fn on_a_miss_output_reaches_the_caller_while_the_command_still_runs() {
    let env = Env::new();
    let script = "echo first; echo err-first >&2; i=0; while [ ! -e go ] && [ $i -lt 2000 ]; do i=$((i+1)); sleep 0.01; done; \
                  [ -e go ] || { echo 'never released' >&2; exit 9; }; echo second";
    let cmd = vec!["sh".into(), "-c".into(), script.into()];
    let mut child =
        env.cairn_std().args(args(&["--ttl", "1h"], &cmd)).stdout(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let first =
        rx.recv_timeout(Duration::from_secs(20)).expect("the first line while the command still runs");
    assert_eq!(first, "first");
    std::fs::write(env.path("go"), "").unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap(), "second");
    assert!(wait_within(&mut child, "cairn memo").success());
    reader.join().unwrap();
    let (code, out, err) = env.run(&args(&["--ttl", "1h"], &cmd));
    assert_eq!((code, out.as_slice(), err.as_str()), (0, &b"first\nsecond\n"[..], "err-first\n"), "replayed");
}

/// Peak resident memory of a `cairn memo` process printing `bytes` of output (miss, then
/// hit), watched through /proc while it runs.
fn peak_kib(env: &Env, bytes: u64) -> (u64, u64) {
    let cmd = vec!["head".into(), "-c".into(), bytes.to_string(), "/dev/zero".into()];
    // A process that ends before the first sample (a small output, a loaded machine) has
    // shown nothing: it is run again, the miss forced so that it records again.
    let sampled = |first: &[&str], again: &[&str]| {
        let mut peak = one_peak(env, first, &cmd);
        for _ in 0..50 {
            if peak > 0 {
                break;
            }
            peak = one_peak(env, again, &cmd);
        }
        peak
    };
    let miss = sampled(&["--ttl", "1h"], &["--ttl", "1h", "--force"]);
    let hit = sampled(&["--ttl", "1h"], &["--ttl", "1h"]);
    (miss, hit)
}

/// The highest VmHWM sampled while one `cairn memo` ran; 0 if it ended before a sample.
fn one_peak(env: &Env, flags: &[&str], cmd: &[String]) -> u64 {
    let mut child = env.cairn_std().args(args(flags, cmd)).spawn().unwrap();
    let status = format!("/proc/{}/status", child.id());
    let deadline = std::time::Instant::now() + crate::COMMAND_TIMEOUT;
    let mut peak = 0;
    loop {
        let hwm = std::fs::read_to_string(&status).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        });
        peak = peak.max(hwm.unwrap_or(0));
        if child.try_wait().unwrap().is_some() {
            return peak;
        }
        assert!(std::time::Instant::now() < deadline, "cairn memo ran past {:?}", crate::COMMAND_TIMEOUT);
        std::thread::sleep(Duration::from_millis(2)); // pacing the poll
    }
}

/// A miss used to hold about 4 times the output in memory and a hit 2.4 times; output is now
/// recorded and replayed a chunk (about 1 MiB) at a time.
#[test]
fn memory_stays_small_whatever_the_output() {
    let env = Env::new();
    env.ok(&["cache", "get", "init"], 1);
    let (small_miss, small_hit) = peak_kib(&env, 10);
    let (big_miss, big_hit) = peak_kib(&env, 96 * 1024 * 1024);
    assert!(small_miss > 0 && small_hit > 0, "VmHWM was read");
    for (what, small, big) in [("miss", small_miss, big_miss), ("hit", small_hit, big_hit)] {
        assert!(
            big < small + 16 * 1024,
            "{what}: 96 MiB of output peaked at {big} KiB, 10 bytes at {small} KiB"
        );
    }
}

/// A SIGTERM sent to `cairn memo` while its command runs reaches the command (which ends by
/// its own trap here) instead of leaving it running orphaned; nothing is kept for the key.
#[test]
fn a_sigterm_to_cairn_memo_reaches_its_command() {
    let env = Env::new();
    let mut memo = std::process::Command::new(crate::cairn_bin());
    memo.env("CAIRN_DB", env.db())
        .env_remove("CAIRN_NS")
        .current_dir(env.dir.path())
        .args(["memo", "--ttl", "1h", "--", "sh", "-c"])
        .arg("trap 'echo got-term >> side; exit 143' TERM; echo started > side; while :; do sleep 0.01; done")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = memo.spawn().unwrap();
    let side = || std::fs::read_to_string(env.path("side")).unwrap_or_default();
    wait_until("the command starts", || side() == "started\n");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(wait_within(&mut child, "cairn memo").code(), Some(143));
    assert_eq!(side(), "started\ngot-term\n", "the command got the signal");
}
