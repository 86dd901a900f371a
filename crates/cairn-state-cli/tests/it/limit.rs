//! `cairn limit`: a command run once a shared rate limit has a slot, and `limit take`.

use crate::{assert_one_line_error, wait_until, wait_within, Env};

#[test]
fn take_exits_0_with_a_slot_then_1_saying_when_the_next_frees() {
    let env = Env::new();
    env.ok(&["limit", "take", "api", "--rate", "1/h", "--burst", "2"], 0);
    env.ok(&["limit", "take", "api", "--rate", "1/h", "--burst", "2"], 0);
    let (code, out, err) = env.run(&["limit", "take", "api", "--rate", "1/h", "--burst", "2"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "stdout carries data only");
    assert_one_line_error(&err);
    assert!(err.contains("limit 'api' has no free slot; the next frees in 59m 59s"), "{err}");
}

#[test]
fn take_with_json_prints_whether_taken_and_the_retry_after_in_ms() {
    let env = Env::new();
    let taken = env.ok(&["--json", "limit", "take", "api", "--rate", "1/min"], 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&taken).unwrap(),
        serde_json::json!({"taken": true})
    );
    let (code, out, err) = env.run(&["limit", "take", "api", "--rate", "1/min", "--json"]);
    assert_eq!(code, 1);
    assert!(err.is_empty(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["taken"], false);
    let ms = v["retry_after_ms"].as_u64().unwrap();
    assert!((59_000..=60_000).contains(&ms), "{ms}");
}

#[test]
fn limit_runs_the_command_and_exits_with_its_status() {
    let env = Env::new();
    let (code, out, _) = env.run(&["limit", "api", "--rate", "10/s", "--", "sh", "-c", "echo ran; exit 3"]);
    assert_eq!((code, out.as_slice()), (3, b"ran\n".as_slice()));
    env.ok(&["limit", "api", "--rate", "10/s", "--", "true"], 0); // waits its 100ms
}

#[test]
fn no_slot_within_wait_exits_1_or_held_exit_without_running_the_command() {
    let env = Env::new();
    env.ok(&["limit", "take", "api", "--rate", "1/h"], 0);
    let (code, _, err) = env.run(&["limit", "api", "--rate", "1/h", "--wait", "1s", "--", "touch", "ran"]);
    assert_eq!(code, 1);
    assert_one_line_error(&err);
    assert!(err.contains("limit 'api' had no free slot within 1s; not running the command"), "{err}");
    let (code, _, _) = env.run(&[
        "limit",
        "api",
        "--rate",
        "1/h",
        "--wait",
        "0s",
        "--held-exit",
        "75",
        "--",
        "touch",
        "ran",
    ]);
    assert_eq!(code, 75);
    assert!(!env.path("ran").exists());
}

#[test]
fn bad_rates_and_bursts_are_usage_errors_that_create_nothing() {
    let env = Env::new();
    for (args, says) in [
        (vec!["limit", "take", "api", "--rate", "0/s"], "lets nothing through"),
        (vec!["limit", "take", "api", "--rate", "-3/s"], "negative"),
        (vec!["limit", "take", "api", "--rate", "3/0s"], "no period"),
        (vec!["limit", "take", "api", "--rate", "fast"], "no '/'"),
        (vec!["limit", "take", "api", "--rate", "1/s", "--burst", "0"], "--burst"),
        (vec!["limit", "take", "", "--rate", "1/s"], "must not be empty"),
        (vec!["limit", "api", "--rate", "1/fortnight", "--", "true"], "not a period"),
        (vec!["limit", "api", "--rate", "1/s"], "<CMD>"),
        (vec!["-n", "jobs", "limit", "take", "api", "--rate", "1/s"], "no namespace"),
    ] {
        let (code, _, err) = env.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_one_line_error(&err);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!env.db().exists(), "nothing was created");
}

#[test]
fn signals_sent_to_cairn_limit_reach_the_command() {
    let env = Env::new();
    let script = "trap 'echo got-term > sig; exit 42' TERM; touch ready; i=0; \
                  while [ $i -lt 1000 ]; do i=$((i+1)); sleep 0.02; done; exit 9";
    let mut cairn =
        env.cairn_std().args(["limit", "job", "--rate", "1/s", "--", "sh", "-c", script]).spawn().unwrap();
    wait_until("the command runs", || env.path("ready").exists());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(cairn.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let status = wait_within(&mut cairn, "cairn limit, after its SIGTERM");
    assert_eq!(status.code(), Some(42), "the TERM never reached the command (9: it gave up waiting)");
    assert_eq!(std::fs::read_to_string(env.path("sig")).unwrap(), "got-term\n");
}
