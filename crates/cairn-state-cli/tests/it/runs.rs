//! `cairn step` and `cairn run`: a script's steps run once and replay on its re-runs, a
//! failed step is retried, a live script holds its run against another, a changed command is
//! refused, and the operators' commands (status, list, reset, forget, prune, finish, sleep).

use std::process::{Command, Output, Stdio};

use crate::{assert_one_line_error, cairn_bin, output_within, Env};

/// Run `script` with `sh` as a script of run `run` (`$C` is cairn). It ends with `exit $?`, so
/// that no shell runs its last `cairn` in its own place (a step's holder is its parent shell).
pub(crate) fn script_at(env: &Env, db: &str, run: &str, script: &str) -> Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("{script}\nexit $?"))
        .env("C", cairn_bin())
        .env("CAIRN_DB", db)
        .env("CAIRN_RUN", run)
        .env_remove("CAIRN_NS")
        .env_remove("XDG_STATE_HOME")
        .current_dir(env.dir.path())
        .stdin(Stdio::null());
    output_within(&mut c, "a script")
}

fn script(env: &Env, run: &str, script: &str) -> Output {
    script_at(env, &env.db().display().to_string(), run, script)
}

fn side(env: &Env) -> String {
    std::fs::read_to_string(env.path("side")).unwrap_or_default()
}

const DEPLOY: &str = r#"
$C step build -- sh -c 'echo build >> side; echo built; echo warn >&2' || exit $?
$C step upload -- sh -c 'echo upload >> side; test -e upload-ok || exit 3; echo uploaded' || exit $?
$C step notify -- sh -c 'echo notify >> side; echo notified' || exit $?
$C run finish
"#;

#[test]
fn a_three_step_script_run_again_replays_its_steps_without_running_them() {
    let env = Env::new();
    std::fs::write(env.path("upload-ok"), b"").unwrap();
    let first = script(&env, "deploy-1", DEPLOY);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let second = script(&env, "deploy-1", DEPLOY);
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    assert_eq!(side(&env), "build\nupload\nnotify\n", "each command ran once");
    assert_eq!(first.stdout, b"built\nuploaded\nnotified\n");
    assert_eq!(second.stdout, first.stdout, "the replay prints what the run printed");
    assert_eq!(second.stderr, b"warn\n");
    assert!(env.ok(&["run", "status", "deploy-1"], 0).starts_with("deploy-1\tfinished\t"));
}

#[test]
fn a_failing_step_exits_with_its_status_and_the_next_run_of_the_script_retries_it() {
    let env = Env::new();
    let first = script(&env, "deploy-1", DEPLOY);
    assert_eq!(first.status.code(), Some(3), "the step's status: {first:?}");
    assert_eq!(side(&env), "build\nupload\n");
    let status = env.ok(&["run", "status", "deploy-1"], 1);
    assert!(status.contains("upload\tfailed\t1 attempt\t"), "{status}");
    std::fs::write(env.path("upload-ok"), b"").unwrap();
    let second = script(&env, "deploy-1", DEPLOY);
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    assert_eq!(side(&env), "build\nupload\nupload\nnotify\n", "build replayed, upload retried");
    assert_eq!(second.stdout, b"built\nuploaded\nnotified\n");
}

#[test]
fn a_run_held_for_a_live_pid_refuses_another_scripts_step_with_exit_1_or_held_exit() {
    let env = Env::new();
    let mut holder = Command::new("sleep").arg("600").spawn().unwrap();
    let pid = holder.id().to_string();
    let db = env.db().display().to_string();
    env.cairn().args(["step", "first", "--run", "r", "--pid", &pid, "--", "true"]).assert().success();
    let other = script(&env, "r", "$C step second -- touch ran");
    assert_eq!(other.status.code(), Some(1), "{other:?}");
    assert_one_line_error(&String::from_utf8_lossy(&other.stderr));
    let other = script(&env, "r", "$C step second --held-exit 75 -- touch ran");
    assert_eq!(other.status.code(), Some(75));
    assert!(!env.path("ran").exists(), "nothing ran while the run was held");
    holder.kill().unwrap();
    holder.wait().unwrap();
    let after = script_at(&env, &db, "r", "$C step second -- touch ran");
    assert_eq!(after.status.code(), Some(0), "a dead holder's run is taken over: {after:?}");
    assert!(env.path("ran").exists());
}

#[test]
fn a_changed_command_exits_7_naming_the_reset_command_and_runs_nothing() {
    let env = Env::new();
    assert_eq!(script(&env, "r", "$C step build -- echo one").status.code(), Some(0));
    let changed = script(&env, "r", "$C step build -- sh -c 'touch ran; echo two'");
    assert_eq!(changed.status.code(), Some(7));
    let err = String::from_utf8_lossy(&changed.stderr);
    assert_one_line_error(&err);
    assert!(err.contains("cairn run reset r --from build"), "{err}");
    assert!(changed.stdout.is_empty() && !env.path("ran").exists());
}

#[test]
fn reset_from_a_step_runs_it_and_the_later_ones_again_but_not_the_earlier_ones() {
    let env = Env::new();
    std::fs::write(env.path("upload-ok"), b"").unwrap();
    assert_eq!(script(&env, "d", DEPLOY).status.code(), Some(0));
    assert_eq!(env.ok(&["run", "reset", "d", "--from", "upload"], 0), "2\n");
    assert!(env.ok(&["run", "status", "d"], 1).starts_with("d\tfailed\t"));
    let again = script(&env, "d", DEPLOY);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert_eq!(side(&env), "build\nupload\nnotify\nupload\nnotify\n");
    assert_eq!(again.stdout, b"built\nuploaded\nnotified\n");
    assert_eq!(env.ok(&["run", "reset", "d"], 0), "3\n", "every step");
}

#[test]
fn reset_of_an_unknown_step_is_refused_naming_the_steps_there_are() {
    let env = Env::new();
    assert_eq!(script(&env, "d", "$C step build -- true").status.code(), Some(0));
    let (code, _, err) = env.run(&["run", "reset", "d", "--from", "nope"]);
    assert_ne!(code, 0);
    assert_one_line_error(&err);
    assert!(err.contains("its steps: build"), "{err}");
}

#[test]
fn forget_deletes_the_run_and_its_kept_output_and_exits_1_for_an_unknown_run() {
    let env = Env::new();
    assert_eq!(script(&env, "d", "$C step build -- echo built\n$C run finish").status.code(), Some(0));
    assert_eq!(output_keys(&env), 1);
    env.ok(&["run", "forget", "d"], 0);
    assert_eq!(output_keys(&env), 0, "its output went with it");
    env.ok(&["run", "forget", "d"], 1);
    env.ok(&["run", "status", "d"], 1);
    let again = script(&env, "d", "$C step build -- sh -c 'echo ran >> side'");
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(side(&env), "ran\n", "the id started afresh");
}

/// How many command outputs the store keeps.
fn output_keys(env: &Env) -> usize {
    let store = cairn::Store::open(env.db()).unwrap();
    let keys = store.cache("cairn.run-output").keys("").unwrap();
    keys.len()
}

#[test]
fn prune_deletes_the_runs_finished_before_the_duration_with_their_output() {
    let env = Env::new();
    assert_eq!(script(&env, "old", "$C step a -- echo a\n$C run finish").status.code(), Some(0));
    assert_eq!(script(&env, "open", "$C step a -- echo a").status.code(), Some(0));
    assert_eq!(env.ok(&["run", "prune", "--finished-before", "30d"], 0), "0\n");
    assert_eq!(env.ok(&["run", "prune", "--finished-before", "0s"], 0), "1\n");
    env.ok(&["run", "status", "old"], 1);
    env.ok(&["run", "status", "open"], 1);
    assert_eq!(output_keys(&env), 1, "the unfinished run's output stays");
}

#[test]
fn list_shows_each_runs_state_and_filters_by_state() {
    let env = Env::new();
    assert_eq!(script(&env, "done", "$C step a -- true\n$C run finish").status.code(), Some(0));
    assert_eq!(script(&env, "stopped", "$C step a -- false").status.code(), Some(1));
    let all = env.ok(&["run", "list"], 0);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 2, "{all}");
    assert!(lines[0].starts_with("done\tfinished\t1 attempt\t"), "{all}");
    assert!(lines[1].starts_with("stopped\tfailed\t1 attempt\t"), "{all}");
    assert!(env.ok(&["run", "list", "--state", "finished"], 0).starts_with("done\t"));
    let failed = env.ok(&["run", "list", "--state", "failed"], 0);
    assert_eq!(failed.lines().count(), 1);
    assert!(failed.starts_with("stopped\t"));
    assert_eq!(env.ok(&["run", "list", "--state", "running"], 0), "");
    let (code, _, err) = env.run(&["run", "list", "--state", "lost"]);
    assert_eq!(code, 2);
    assert_one_line_error(&err);
}

#[test]
fn status_json_carries_the_run_and_its_steps_as_the_help_documents() {
    let env = Env::new();
    assert_eq!(script(&env, "d", "$C step a -- true\n$C step b -- false").status.code(), Some(1));
    let out = env.ok(&["--json", "run", "status", "d"], 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for field in [
        "id",
        "state",
        "attempts",
        "error",
        "holder",
        "lease_until_ms",
        "started_at_ms",
        "updated_at_ms",
        "finished_at_ms",
        "steps",
    ] {
        assert!(v.get(field).is_some(), "{field} in {out}");
    }
    assert_eq!(v["state"], "failed");
    assert_eq!(v["steps"][0]["name"], "a");
    assert_eq!(v["steps"][0]["state"], "done");
    assert_eq!(v["steps"][1]["state"], "failed");
    assert_eq!(v["steps"][1]["error"], "the command exited with status 1");
    for field in ["attempts", "started_at_ms", "finished_at_ms", "version"] {
        assert!(v["steps"][0].get(field).is_some(), "{field} in {out}");
    }
}

#[test]
fn status_of_an_unknown_run_exits_1_and_says_so() {
    let env = Env::new();
    let (code, out, err) = env.run(&["run", "status", "nope"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("there is no run 'nope'"), "{err}");
}

#[test]
fn after_finish_recorded_steps_replay_and_a_step_never_recorded_is_refused() {
    let env = Env::new();
    let s = "$C step a -- sh -c 'echo a >> side; echo out'\n$C run finish";
    assert_eq!(script(&env, "d", s).status.code(), Some(0));
    let replay = script(&env, "d", "$C step a -- sh -c 'echo a >> side; echo out'");
    assert_eq!(replay.status.code(), Some(0));
    assert_eq!(replay.stdout, b"out\n");
    let new = script(&env, "d", "$C step b -- touch ran");
    assert_ne!(new.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&new.stderr).contains("cairn run reset d"), "{new:?}");
    assert!(!env.path("ran").exists());
    let changed = script(&env, "d", "$C step a -- sh -c 'touch ran; echo other'");
    assert_eq!(changed.status.code(), Some(7), "a finished run's step under another command: {changed:?}");
    assert!(String::from_utf8_lossy(&changed.stderr).contains("cairn run reset d --from a"), "{changed:?}");
    assert!(changed.stdout.is_empty() && !env.path("ran").exists());
    assert_eq!(side(&env), "a\n");
}

#[test]
fn the_command_gets_cairn_run_and_cairn_step_in_its_environment() {
    let env = Env::new();
    let out = script(&env, "d", r#"$C step show -- sh -c 'echo "$CAIRN_RUN $CAIRN_STEP"'"#);
    assert_eq!(out.stdout, b"d show\n");
}

#[test]
fn sleep_no_wait_exits_1_while_not_over_and_0_once_over() {
    let env = Env::new();
    let s = "$C run sleep nap 1h --no-wait";
    let first = script(&env, "d", s);
    assert_eq!(first.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&first.stderr).contains("left"), "{first:?}");
    assert_eq!(script(&env, "d", s).status.code(), Some(1), "still not over on the next run");
    assert_eq!(script(&env, "d", "$C run sleep none 0s --no-wait").status.code(), Some(0));
    assert_eq!(script(&env, "d", "$C run sleep none 0s").status.code(), Some(0));
    let status = env.ok(&["run", "status", "d"], 1);
    assert!(status.contains("nap\tdone") && status.contains("none\tdone"), "{status}");
}

#[test]
fn replay_is_byte_exact_for_stdout_and_stderr_larger_than_1_mib() {
    let env = Env::new();
    let big: Vec<u8> = (0..(3 << 19) as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(env.path("big"), &big).unwrap();
    let s = r#"$C step big -- sh -c 'echo x >> side; cat big; printf "e\000rr\n" >&2; cat big >&2'"#;
    let first = script(&env, "d", s);
    let second = script(&env, "d", s);
    assert_eq!(side(&env), "x\n", "ran once");
    for out in [&first, &second] {
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stdout == big, "stdout is the file, byte for byte");
        assert_eq!(out.stderr.len(), 5 + big.len());
        assert!(out.stderr[..5] == *b"e\0rr\n" && out.stderr[5..] == big[..]);
    }
    assert!(first.stderr == second.stderr, "stderr replayed byte for byte");
}

#[test]
fn every_run_subcommand_refuses_a_namespace() {
    let env = Env::new();
    let (code, _, err) = env.run(&["-n", "x", "run", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("runs have no namespace"), "{err}");
}

/// Operators see what each command step printed: `run status` shows the first lines of a
/// done step's output and the last lines of a failed step's error output under it (and
/// `--json` as "output"), bounded whatever the output's size; the failed step's output is not
/// kept otherwise.
#[test]
fn status_shows_the_head_of_a_done_steps_output_and_the_tail_of_a_failed_ones_errors() {
    let env = Env::new();
    let out = script(
        &env,
        "r",
        r#"
$C step list -- sh -c 'seq 1 100000' > /dev/null || exit $?
$C step push -- sh -c 'echo pushing; seq 1 50 >&2; echo "error: 503 from the registry" >&2; exit 4' || exit $?
"#,
    );
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let status = env.ok(&["run", "status", "r"], 1);
    let lines: Vec<&str> = status.lines().collect();
    let list = lines.iter().position(|l| l.starts_with("  list\tdone")).expect("the list step");
    let shown: Vec<&str> =
        lines[list + 1..].iter().take_while(|l| l.starts_with("      | ")).copied().collect();
    assert_eq!(shown, (1..=10).map(|i| format!("      | {i}")).collect::<Vec<_>>(), "{status}");
    let push =
        lines.iter().position(|l| l.starts_with("  push\tfailed\t1 attempt\t")).expect("the push step");
    let tail: Vec<&str> =
        lines[push + 1..].iter().take_while(|l| l.starts_with("      | ")).copied().collect();
    assert_eq!(tail.len(), 10, "{status}");
    assert_eq!(tail[9], "      | error: 503 from the registry", "{status}");
    let (code, json, _) = env.run(&["--json", "run", "status", "r"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert!(v["steps"][0]["output"].as_str().unwrap().starts_with("1\n2\n3\n"), "{v}");
    assert!(v["steps"][1]["output"].as_str().unwrap().ends_with("error: 503 from the registry"), "{v}");
}

/// `--wait` waits for the process holding the run to let it go instead of exiting 1 at once:
/// once the holder (here a `sleep 1`) exits, its run is taken over and the step runs.
#[test]
fn a_step_with_wait_runs_once_the_live_holder_is_gone() {
    let env = Env::new();
    let mut holder = Command::new("sleep").arg("1").spawn().unwrap();
    let pid = holder.id().to_string();
    env.cairn().args(["step", "first", "--run", "r", "--pid", &pid, "--", "true"]).assert().success();
    let waited = script(&env, "r", "$C step second --wait 5m -- touch ran");
    assert_eq!(waited.status.code(), Some(0), "{waited:?}");
    assert!(env.path("ran").exists(), "the step ran once the holder was gone");
    holder.wait().unwrap();
}

/// A variable named with `--env` is part of the step's definition: the same value replays,
/// another one exits 7 naming the reset, as a changed command does.
#[test]
fn a_step_whose_env_input_changed_exits_7_and_the_same_value_replays() {
    let env = Env::new();
    let step = "$C step build --env TAG -- sh -c 'echo build >> side; echo \"tag $TAG\"'";
    let first = script(&env, "r", &format!("export TAG=v1; {step}"));
    assert_eq!((first.status.code(), first.stdout.as_slice()), (Some(0), &b"tag v1\n"[..]), "{first:?}");
    let same = script(&env, "r", &format!("export TAG=v1; {step}"));
    assert_eq!((same.status.code(), same.stdout.as_slice()), (Some(0), &b"tag v1\n"[..]), "{same:?}");
    let changed = script(&env, "r", &format!("export TAG=v2; {step}"));
    assert_eq!(changed.status.code(), Some(7), "{changed:?}");
    assert!(String::from_utf8_lossy(&changed.stderr).contains("cairn run reset r --from build"));
    let unset = script(&env, "r", &format!("unset TAG; {step}"));
    assert_eq!(unset.status.code(), Some(7), "unset is a value of its own: {unset:?}");
    assert_eq!(side(&env), "build\n", "the command ran once");
}

/// `bash -c 'cairn step a ... && cairn step b ...'` replaces itself with its last command,
/// which then finds the run held under the shell's name, its own: it is the script and goes
/// on. Before, every such script stopped at its second step with exit 1, on every re-run.
#[test]
fn a_shell_that_execs_its_last_step_goes_on_with_it() {
    let env = Env::new();
    let run = || {
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(r#""$C" step a -- echo a && "$C" step b -- echo b"#)
            .env("C", cairn_bin())
            .env("CAIRN_DB", env.db())
            .env("CAIRN_RUN", "r")
            .env_remove("CAIRN_NS")
            .current_dir(env.dir.path());
        output_within(&mut c, "bash -c")
    };
    for attempt in 0..2 {
        let out = run();
        assert_eq!(out.status.code(), Some(0), "attempt {attempt}: {out:?}");
        assert_eq!(out.stdout, b"a\nb\n");
    }
}

/// A script's shell killed while one of its steps runs leaves the run held until the step's
/// command ends: a re-run meanwhile is refused (exit 1) instead of starting the same step a
/// second time beside it, and once the orphaned command is done its step replays.
#[test]
fn a_step_still_running_after_its_shell_was_killed_keeps_the_run_held() {
    let env = Env::new();
    let step = r#"$C step deploy -- sh -c 'echo start >> side; while [ ! -e go ]; do sleep 0.01; done; echo end >> side'"#;
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(format!("{step}\nexit $?"))
        .env("C", cairn_bin())
        .env("CAIRN_DB", env.db())
        .env("CAIRN_RUN", "r")
        .env_remove("CAIRN_NS")
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut shell = shell.spawn().unwrap();
    crate::wait_until("the step's command starts", || side(&env) == "start\n");
    shell.kill().unwrap();
    shell.wait().unwrap();
    let again = script(&env, "r", step);
    assert_eq!(again.status.code(), Some(1), "held by the killed shell's running step: {again:?}");
    assert_eq!(side(&env), "start\n", "not started twice");
    std::fs::write(env.path("go"), b"").unwrap();
    crate::wait_until("the orphaned step is recorded", || {
        env.run(&["run", "status", "r"]).1.windows(11).any(|w| w == b"deploy\tdone")
    });
    let last = script(&env, "r", step);
    assert_eq!(last.status.code(), Some(0), "{last:?}");
    assert_eq!(side(&env), "start\nend\n", "the step ran once");
}

/// Steps of one script run side by side get positions of their own (in the order they end),
/// so a reset from one of them keeps the others; before, they shared one position and a reset
/// from the last forgot them all.
#[test]
fn steps_run_side_by_side_get_positions_of_their_own() {
    let env = Env::new();
    // c ends once b is recorded (its position taken), so that c's is the later one.
    let both = r#"$C step a -- sh -c 'echo a >> side'; $C step b -- sh -c 'while [ ! -s side ]; do sleep 0.01; done; echo b >> side' & $C step c -- sh -c 'while ! "$C" run status | grep -q "^  b.done"; do sleep 0.01; done; echo c >> side' & wait"#;
    let out = script(&env, "r", both);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    env.ok(&["run", "reset", "r", "--from", "c"], 0);
    let status = env.ok(&["run", "status", "r"], 1);
    let done: Vec<&str> = status
        .lines()
        .filter(|l| l.contains("\tdone\t"))
        .map(|l| l.trim().split('\t').next().unwrap_or(""))
        .collect();
    assert_eq!(done, ["a", "b"], "{status}");
}

/// The same step run twice side by side by one script: the one recorded second is told so
/// (not that its lease ran out), and the first one's output stays and replays.
#[test]
fn the_same_step_run_side_by_side_keeps_the_output_of_the_one_recorded() {
    let env = Env::new();
    let first = r#"$C step same -- sh -c 'echo one; echo x >> side; while [ $(wc -l < side) -lt 2 ]; do sleep 0.01; done'"#;
    let second = r#"$C step same -- sh -c 'echo x >> side; while [ $(wc -l < side) -lt 2 ]; do sleep 0.01; done; sleep 0.2; echo two'"#;
    let out = script(&env, "r", &format!("{first} & {second}; wait"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("recorded meanwhile by another process of this script"), "{err}");
    assert!(!err.contains("lease"), "{err}");
    let replay = script(&env, "r", first);
    assert_eq!(replay.status.code(), Some(0), "{replay:?}");
    assert_eq!(replay.stdout, b"one\n", "the recorded step's output replays");
}

/// A SIGTERM sent to `cairn step` reaches its command, as it does for `cairn lock`: the
/// command ends, and the step is recorded as failed with its status, instead of cairn dying
/// alone and leaving the command running with nothing recorded.
#[test]
fn a_sigterm_to_cairn_step_reaches_its_command_and_the_failure_is_recorded() {
    let env = Env::new();
    let mut step = Command::new(cairn_bin());
    step.env("CAIRN_DB", env.db())
        .env_remove("CAIRN_NS")
        .env_remove("CAIRN_RUN")
        .current_dir(env.dir.path())
        .args(["step", "--run", "r", "long", "--", "sh", "-c"])
        .arg("trap 'exit 143' TERM; echo started > side; while :; do sleep 0.01; done")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = step.spawn().unwrap();
    crate::wait_until("the command starts", || side(&env) == "started\n");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = crate::wait_within(&mut child, "cairn step");
    assert_eq!(status.code(), Some(143), "the command's status");
    let shown = env.ok(&["run", "status", "r"], 1);
    assert!(shown.contains("long\tfailed\t1 attempt"), "{shown}");
    assert!(shown.contains("status 143"), "{shown}");
}

/// A run id and a step name each valid alone but too long together are refused naming both,
/// before anything runs; before, the message spoke of a key the user never gave.
#[test]
fn a_run_id_and_step_name_too_long_together_are_refused_naming_both() {
    let env = Env::new();
    let (id, name) = ("r".repeat(3000), "s".repeat(3000));
    let (code, _, err) = env.run(&["step", "--run", &id, &name, "--", "sh", "-c", "echo ran > side"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the run id (3000 bytes) and the step name (3000 bytes)"), "{err}");
    assert_one_line_error(&err);
    assert_eq!(side(&env), "", "nothing ran");
}
