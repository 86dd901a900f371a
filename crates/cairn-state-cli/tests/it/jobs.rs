//! `cairn job`: once per slot across processes, exit codes, --json, history, list and check.

use std::process::Stdio;

use crate::{assert_one_line_error, cairn_bin, wait_within, Env};

/// A period so long that no slot boundary falls inside a test.
const LONG: &str = "3650d";

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

#[test]
fn a_job_runs_once_per_slot_then_exits_0_saying_the_slot_is_done() {
    let env = Env::new();
    let out = env.ok(&["job", "run", "j", "--every", LONG, "--", "sh", "-c", "echo ran"], 0);
    assert_eq!(out, "ran\n");
    let (code, out, err) = env.run(&["job", "run", "j", "--every", LONG, "--", "sh", "-c", "echo ran"]);
    assert_eq!(code, 0);
    assert!(out.is_empty());
    assert_one_line_error(&err);
    assert!(err.contains("is already done; not running the command"), "{err}");
    let v = json(&env.ok(&["--json", "job", "run", "j", "--every", LONG, "--", "true"], 0));
    assert_eq!(v["ran"], false);
    assert_eq!(v["reason"], "done");
}

#[test]
fn the_command_sees_its_job_slot_and_a_run_id_for_cairn_step() {
    let env = Env::new();
    let out = env.ok(
        &[
            "job",
            "run",
            "j",
            "--every",
            "10m",
            "--",
            "sh",
            "-c",
            "echo $CAIRN_JOB $CAIRN_SLOT $CAIRN_SLOT_END $CAIRN_RUN",
        ],
        0,
    );
    let parts: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(parts.len(), 4, "{out}");
    assert_eq!(parts[0], "j");
    let start = cairn::parse_time(parts[1]).unwrap();
    let end = cairn::parse_time(parts[2]).unwrap();
    assert_eq!((start % 600_000, end - start), (0, 600_000));
    assert_eq!(parts[3], format!("job:j:{}", parts[1]));
}

#[test]
fn a_failed_run_exits_with_its_status_and_the_next_invocation_runs_again_unless_no_retry() {
    let env = Env::new();
    let (code, _, err) =
        env.run(&["job", "run", "j", "--every", LONG, "--", "sh", "-c", "echo bad >&2; exit 3"]);
    assert_eq!(code, 3);
    assert_eq!(err, "bad\n", "the command's stderr reaches the caller");
    assert_eq!(env.ok(&["job", "run", "j", "--every", LONG, "--", "echo", "again"], 0), "again\n");

    env.run(&["job", "run", "once", "--every", LONG, "--no-retry", "--", "false"]);
    let (code, out, _) =
        env.run(&["job", "run", "once", "--every", LONG, "--no-retry", "--", "echo", "again"]);
    assert_eq!((code, out.as_slice()), (0, b"".as_slice()));

    let h = env.ok(&["--json", "job", "history", "j"], 0);
    let runs: Vec<serde_json::Value> = h.lines().map(json).collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["outcome"], "succeeded");
    assert_eq!(runs[1]["outcome"], "failed");
    assert_eq!(runs[1]["status"], 3);
    assert_eq!(runs[1]["stderr_tail"], "bad");
}

#[test]
fn bad_schedules_exit_2_with_a_clear_error_and_create_nothing() {
    let env = Env::new();
    for args in [
        &["--every", "0s"][..],
        &["--every", "-5m"],
        &["--cron", "0 3 * *"],
        &["--cron", "0 99 * * *"],
        &["--cron", "0 3 * * *", "--tz", "Mars/Olympus"],
        &["--every", "1h", "--catch-up", "some"],
    ] {
        let mut all = vec!["job", "run", "j"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", "touch", "ran"]);
        let (code, _, err) = env.run(&all);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_one_line_error(&err);
        assert!(!env.path("ran").exists());
        assert!(!env.db().exists(), "{args:?}: nothing recorded");
    }
}

#[test]
fn check_exits_0_within_max_age_and_1_when_never_succeeded_and_list_shows_each_job() {
    let env = Env::new();
    env.run(&["job", "run", "bad", "--every", LONG, "--", "sh", "-c", "echo disk full >&2; exit 4"]);
    let (code, out, _) = env.run(&["job", "check", "bad", "--max-age", "1d"]);
    assert_eq!(code, 1);
    let line = String::from_utf8(out).unwrap();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("never succeeded") && line.contains("exit status 4: disk full"), "{line}");
    env.ok(&["job", "run", "good", "--cron", "0 3 * * *", "--tz", "Europe/Berlin", "--", "true"], 0);
    let line = env.ok(&["job", "check", "good", "--max-age", "1d"], 0);
    assert!(line.contains("last succeeded"), "{line}");
    let list: Vec<serde_json::Value> = env.ok(&["--json", "job", "list"], 0).lines().map(json).collect();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "bad");
    assert_eq!(list[0]["failed"], 1);
    assert_eq!(list[1]["schedule"], "cron 0 3 * * * Europe/Berlin");
    assert_eq!(list[1]["running"], false);
    assert!(list[1]["next_slot"].is_string());
}

#[test]
fn eight_processes_fired_at_once_run_the_command_once_for_the_slot() {
    let env = Env::new();
    let mut children: Vec<_> = (0..8)
        .map(|_| {
            std::process::Command::new(cairn_bin())
                .args(["job", "run", "j", "--every", LONG, "--", "sh", "-c", "echo $$ >> ran; sleep 0.2"])
                .env("CAIRN_DB", env.db())
                .current_dir(env.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in &mut children {
        assert!(wait_within(child, "cairn job run").success());
    }
    let ran = std::fs::read_to_string(env.path("ran")).unwrap();
    assert_eq!(ran.lines().count(), 1, "{ran}");
    let h = env.ok(&["--json", "job", "history", "j"], 0);
    assert_eq!(h.lines().count(), 1, "{h}");
}

#[test]
fn a_failed_slot_that_uses_cairn_step_resumes_at_its_failed_step() {
    let env = Env::new();
    let bin = cairn_bin();
    let script = format!(
        "{b} step fetch -- sh -c 'echo x >> fetched' && {b} step load -- sh -c 'test -f ok'",
        b = bin.display()
    );
    let (code, _, _) = env.run(&["job", "run", "j", "--every", LONG, "--", "sh", "-c", &script]);
    assert_eq!(code, 1, "the load step failed");
    std::fs::write(env.path("ok"), b"").unwrap();
    env.ok(&["job", "run", "j", "--every", LONG, "--", "sh", "-c", &script], 0);
    assert_eq!(
        std::fs::read_to_string(env.path("fetched")).unwrap(),
        "x\n",
        "fetch ran once: replayed the second time"
    );
    assert_eq!(env.ok(&["--json", "job", "history", "j"], 0).lines().count(), 2);
}

/// A cairn killed while its job runs: the job stays held while the command lives (others say
/// it is running elsewhere), then the next invocation runs the slot again and the killed run
/// is recorded as failed.
#[test]
fn a_killed_job_run_holds_the_job_while_its_command_lives_then_its_slot_runs_again() {
    let env = Env::new();
    let script = "echo $$ > cmd.tmp; mv cmd.tmp cmd.pid; while [ ! -e release ]; do sleep 0.01; done";
    let mut cairn =
        env.cairn_std().args(["job", "run", "j", "--every", LONG, "--", "sh", "-c", script]).spawn().unwrap();
    crate::wait_until("the command runs", || env.path("cmd.pid").exists());
    let v = json(&env.ok(&["--json", "job", "run", "j", "--every", LONG, "--", "touch", "ran"], 0));
    assert_eq!(v["reason"], "running");
    let list = json(&env.ok(&["--json", "job", "list"], 0));
    assert_eq!(list["running"], true);
    cairn.kill().unwrap(); // SIGKILL
    cairn.wait().unwrap();
    let v = json(&env.ok(&["--json", "job", "run", "j", "--every", LONG, "--", "touch", "ran"], 0));
    assert_eq!(v["reason"], "running", "held while the killed cairn's command lives");
    std::fs::write(env.path("release"), b"").unwrap();
    let pid: i32 = std::fs::read_to_string(env.path("cmd.pid")).unwrap().trim().parse().unwrap();
    crate::wait_until("the command is gone", || crate::memo_lock::gone(pid));
    env.ok(&["job", "run", "j", "--every", LONG, "--", "touch", "ran"], 0);
    assert!(env.path("ran").exists());
    let runs: Vec<serde_json::Value> =
        env.ok(&["--json", "job", "history", "j"], 0).lines().map(json).collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["outcome"], "failed");
    assert!(runs[1]["stderr_tail"].as_str().unwrap().contains("died"), "{}", runs[1]);
    let list = json(&env.ok(&["--json", "job", "list"], 0));
    assert_eq!((list["succeeded"].as_u64(), list["failed"].as_u64()), (Some(1), Some(1)));
}

#[test]
fn without_a_store_check_says_never_and_exits_1_list_is_empty_and_nothing_is_created() {
    let env = Env::new();
    let (code, out, _) = env.run(&["job", "check", "j", "--max-age", "1h"]);
    assert_eq!(code, 1);
    assert!(String::from_utf8(out).unwrap().contains("never succeeded"));
    assert_eq!(env.ok(&["job", "list"], 0), "");
    env.ok(&["job", "history", "j"], 1);
    assert!(!env.db().exists());
}
