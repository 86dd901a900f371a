//! `cairn ledger` and `cairn checkpoint`.

use crate::{assert_one_line_error, wait_until, Env};

#[test]
fn mark_has_and_filter_keep_input_order() {
    let env = Env::new();
    env.ok(&["ledger", "mark", "b", "d"], 0);
    env.ok(&["ledger", "has", "b"], 0);
    env.ok(&["ledger", "has", "c"], 1);
    let (code, out, _) = env.run_stdin(&["ledger", "filter"], b"e\nd\nc\r\n\nb\na\n");
    assert_eq!((code, String::from_utf8(out).unwrap().as_str()), (0, "e\nc\na\n"));
}

#[test]
fn mark_from_stdin_commits_large_inputs() {
    let env = Env::new();
    let ids: String = (0..25_000).map(|i| format!("id-{i}\n")).collect();
    let (code, out, err) = env.run_stdin(&["ledger", "mark", "-"], ids.as_bytes());
    assert_eq!((code, out.len()), (0, 0), "{err}");
    assert_eq!(env.ok(&["ledger", "count", "--state", "done"], 0), "25000\n");
    let (_, left, _) = env.run_stdin(&["ledger", "filter"], b"id-0\nid-24999\nnew\n");
    assert_eq!(left, b"new\n");
}

#[test]
fn stdin_ids_that_are_not_utf8_are_usage_errors_naming_the_line() {
    let env = Env::new();
    let (code, _, err) = env.run_stdin(&["ledger", "mark", "-"], b"ok\n\xff\xfe\n");
    assert_eq!(code, 2);
    assert!(err.contains("stdin line 2"), "{err}");
    let (code, _, _) = env.run(&["ledger", "mark", "-", "extra"]);
    assert_eq!(code, 2);
}

/// Issue 25.2: `ledger fail` and `batch` gave items up after 3 attempts whatever the workers
/// of the namespace used; the namespace's policy now says, and `fail` may still override it.
#[test]
fn the_namespace_policy_is_what_fail_and_batch_apply_unless_overridden() {
    let env = Env::new();
    assert_eq!(
        env.ok(&["-n", "q", "ledger", "policy"], 0),
        "max_attempts\t3\tdefault\nretry_delay\t1s\tdefault\n"
    );
    let set = env.ok(&["-n", "q", "ledger", "policy", "--max-attempts", "5", "--retry-delay", "0s"], 0);
    assert_eq!(set, "max_attempts\t5\tset\nretry_delay\t0s\tset\n");
    // An option not given keeps its value.
    env.ok(&["-n", "q", "ledger", "policy", "--retry-delay", "90s"], 0);
    let json = env.ok(&["--json", "-n", "q", "ledger", "policy"], 0);
    assert!(json.contains(r#""max_attempts":5"#) && json.contains(r#""retry_delay_ms":90000"#), "{json}");
    for _ in 0..3 {
        assert_eq!(env.ok(&["-n", "q", "ledger", "fail", "x", "--error", "boom"], 0), "pending\n");
    }
    let (code, _, err) = env.run_stdin(&["batch"], br#"{"op":"fail","ns":"q","id":"x","error":"boom"}"#);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.ok(&["-n", "q", "ledger", "list", "--state", "pending"], 0).lines().count(), 1, "4 of 5");
    assert_eq!(env.ok(&["-n", "q", "ledger", "fail", "x", "--error", "boom"], 0), "failed\n");
    assert_eq!(
        env.ok(&["-n", "q", "ledger", "fail", "y", "--error", "bad", "--max-attempts", "1"], 0),
        "failed\n"
    );
    env.ok(&["-n", "q", "ledger", "policy", "--reset"], 0);
    assert!(env.ok(&["-n", "q", "ledger", "policy"], 0).starts_with("max_attempts\t3\tdefault\n"));
    let (code, _, _) = env.run(&["-n", "q", "ledger", "policy", "--max-attempts", "0"]);
    assert_eq!(code, 2, "at least 1");
}

#[test]
fn claims_are_won_by_one_worker_and_completed_only_by_it() {
    let env = Env::new();
    env.ok(&["ledger", "claim", "job", "--worker", "w1", "--lease", "10m"], 0);
    env.ok(&["ledger", "claim", "job", "--worker", "w2"], 1);
    let (code, _, err) = env.run(&["ledger", "done", "job", "--worker", "w2"]);
    assert_eq!(code, 1);
    assert!(err.contains("worker w1 holds it"), "{err}");
    env.ok(&["ledger", "done", "job", "--worker", "w1"], 0);
    env.ok(&["ledger", "has", "job"], 0);
    env.ok(&["ledger", "claim", "job", "--worker", "w2"], 1); // done
    env.ok(&["ledger", "done", "never", "--worker", "w1"], 1);
}

#[test]
fn a_lapsed_lease_taken_over_by_another_worker_is_lost() {
    let env = Env::new();
    env.ok(&["ledger", "claim", "x", "--worker", "w1", "--lease", "1ms"], 0);
    // Real time must pass the lease: watch the ledger show it lapsed rather than sleep.
    wait_until("the 1 ms lease lapsed", || env.ok(&["ledger", "list"], 0) == "x\tpending\t-\n");
    env.ok(&["ledger", "claim", "x", "--worker", "w2"], 0);
    assert_eq!(env.ok(&["ledger", "list"], 0), "x\tclaimed\t-\n");
    env.ok(&["ledger", "done", "x", "--worker", "w1"], 1);
    env.ok(&["ledger", "fail", "x", "--worker", "w1", "--error", "late"], 1);
    env.ok(&["ledger", "done", "x", "--worker", "w2"], 0);
}

#[test]
fn failures_retry_then_give_up_and_counts_and_lists_show_it() {
    let env = Env::new();
    assert_eq!(env.ok(&["ledger", "fail", "f", "--error", "boom", "--max-attempts", "2"], 0), "pending\n");
    assert_eq!(env.ok(&["ledger", "fail", "f", "--error", "boom", "--max-attempts", "2"], 0), "failed\n");
    env.ok(&["ledger", "mark", "d1", "d2"], 0);
    env.ok(&["ledger", "claim", "c", "--worker", "w"], 0);
    assert_eq!(env.ok(&["ledger", "count"], 0), "pending\t0\nclaimed\t1\ndone\t2\nfailed\t1\ncancelled\t0\n");
    assert_eq!(
        env.ok(&["--json", "ledger", "count"], 0),
        "{\"cancelled\":0,\"claimed\":1,\"done\":2,\"failed\":1,\"paused\":false,\"pending\":0}\n"
    );
    assert_eq!(env.ok(&["ledger", "list"], 0), "c\tclaimed\t-\nd1\tdone\t-\nd2\tdone\t-\nf\tfailed\t-\n");
    assert_eq!(env.ok(&["ledger", "list", "--state", "done", "--limit", "1"], 0), "d1\tdone\t-\n");
    let json = env.ok(&["--json", "ledger", "list", "--state", "failed"], 0);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["attempts"].as_u64(), v["error"].as_str()),
        (Some("f"), Some(2), Some("boom"))
    );
    // A failed item is not handed out again by filter.
    let (_, out, _) = env.run_stdin(&["ledger", "filter"], b"f\nnew\n");
    assert_eq!(out, b"new\n");
}

#[test]
fn enqueue_and_next_hand_items_out_in_order() {
    let env = Env::new();
    let (code, _, _) = env.run_stdin(&["ledger", "enqueue", "-"], b"q1\nq2\n");
    assert_eq!(code, 0);
    assert_eq!(env.ok(&["ledger", "next", "--worker", "w"], 0), "q1\n");
    assert_eq!(env.ok(&["ledger", "next", "--worker", "w"], 0), "q2\n");
    env.ok(&["ledger", "next", "--worker", "w"], 1);
}

#[test]
fn forget_and_reset_remove_items() {
    let env = Env::new();
    env.ok(&["ledger", "mark", "a", "b", "c"], 0);
    env.ok(&["ledger", "forget", "a"], 0);
    env.ok(&["ledger", "forget", "a"], 1);
    env.ok(&["ledger", "has", "a"], 1);
    assert_eq!(env.ok(&["ledger", "reset"], 0), "2\n");
    assert_eq!(env.ok(&["ledger", "count", "--state", "done"], 0), "0\n");
}

#[test]
fn checkpoints_store_exact_bytes_from_an_argument_or_stdin() {
    let env = Env::new();
    env.ok(&["checkpoint", "get", "export"], 1);
    env.ok(&["checkpoint", "set", "export", "2024-06-01T00:00:00Z"], 0);
    assert_eq!(env.ok(&["checkpoint", "get", "export"], 0), "2024-06-01T00:00:00Z");
    let (code, _, _) = env.run_stdin(&["checkpoint", "set", "export"], b"page=7\n");
    assert_eq!(code, 0);
    assert_eq!(env.ok(&["checkpoint", "get", "export"], 0), "page=7\n");
    env.ok(&["checkpoint", "del", "export"], 0);
    env.ok(&["checkpoint", "del", "export"], 1);
    env.ok(&["checkpoint", "get", "export"], 1);
}

#[test]
fn json_lines_queue_items_whose_data_next_hands_out_with_the_attempt() {
    let env = Env::new();
    let lines = br#"{"id": "r1", "data": {"url": "https://example.com", "n": [1, 2]}}
{"id": "r2", "data": "plain text"}

{"id": 7}
{"id": "r1", "data": "a repeated id is skipped"}
"#;
    let (code, out, err) = env.run_stdin(&["--json", "ledger", "enqueue"], lines);
    assert_eq!((code, String::from_utf8(out).unwrap().as_str()), (0, "{\"queued\":3}\n"), "{err}");
    let next = |worker: &str| -> serde_json::Value {
        serde_json::from_str(&env.ok(&["--json", "ledger", "next", "--worker", worker], 0)).unwrap()
    };
    let r1 = next("w");
    assert_eq!((&r1["id"], &r1["attempt"], &r1["data_kind"]), (&"r1".into(), &1.into(), &"json".into()));
    assert_eq!(r1["data"], serde_json::json!({"url": "https://example.com", "n": [1, 2]}));
    let r2 = next("w");
    assert_eq!((&r2["data"], &r2["data_kind"]), (&"plain text".into(), &"text".into()));
    let seven = next("w");
    assert_eq!((&seven["id"], &seven["data"]), (&"7".into(), &serde_json::Value::Null));
    env.ok(&["ledger", "next", "--worker", "w"], 1);
}

#[test]
fn json_enqueue_takes_dash_for_stdin_as_every_other_command_does() {
    let env = Env::new();
    let lines = b"{\"id\": \"a\", \"data\": 1}\n{\"id\": \"b\"}\n";
    let (code, out, err) = env.run_stdin(&["--json", "ledger", "enqueue", "-"], lines);
    assert_eq!((code, String::from_utf8(out).unwrap().as_str()), (0, "{\"queued\":2}\n"), "{err}");
    assert_eq!(env.ok(&["ledger", "count", "--state", "pending"], 0), "2\n");
    let (code, _, err) = env.run_stdin(&["--json", "ledger", "enqueue", "-", "c"], b"");
    assert!(code == 2 && err.contains("give no ids"), "{err}");
}

#[test]
fn malformed_json_items_are_usage_errors_naming_the_line_and_queue_nothing() {
    let env = Env::new();
    for (input, want) in [
        (&b"{\"id\": \"a\"}\nnot json\n"[..], "stdin line 2: not JSON"),
        (b"{\"id\": \"a\", \"dta\": 1}\n", "unknown field \"dta\""),
        (b"[\"a\"]\n", "not a JSON object"),
        (b"{\"data\": 1}\n", "no \"id\""),
        (b"{\"id\": \"\"}\n", "non-empty string"),
        (b"{\"id\": \"a\", \"not_before\": \"someday\"}\n", "neither a delay"),
    ] {
        let (code, _, err) = env.run_stdin(&["--json", "ledger", "enqueue"], input);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(want), "{err}");
    }
    assert_eq!(env.ok(&["ledger", "count", "--state", "pending"], 0), "0\n");
    let (code, _, err) = env.run_stdin(&["--json", "ledger", "enqueue", "a"], b"");
    assert!(code == 2 && err.contains("give no ids"), "{err}");
    let (code, _, err) = env.run(&["ledger", "enqueue"]);
    assert!(code == 2 && err.contains("--json"), "{err}");
}

/// A bad line after a full batch says that the items before it were queued, and that
/// running the input again once fixed is safe; before, it said only that the line was bad.
#[test]
fn a_bad_json_line_after_a_batch_says_the_items_before_it_were_queued() {
    let env = Env::new();
    let mut input: Vec<u8> =
        (0..10_001).flat_map(|i| format!("{{\"id\": \"n{i}\"}}\n").into_bytes()).collect();
    input.extend_from_slice(b"bad\n");
    let (code, _, err) = env.run_stdin(&["--json", "ledger", "enqueue"], &input);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("stdin line 10002: not JSON"), "{err}");
    assert!(err.contains("the 10000 items before it were queued already"), "{err}");
    assert_eq!(env.ok(&["ledger", "count", "--state", "pending"], 0), "10000\n");
}

#[test]
fn delayed_items_are_not_handed_out_before_their_time_and_list_shows_it() {
    let env = Env::new();
    env.ok(&["ledger", "enqueue", "--not-before", "1h", "later"], 0);
    env.ok(&["ledger", "enqueue", "--not-before", "2000-01-01T01:00:00+01:00", "past"], 0);
    let (code, _, _) = env.run_stdin(
        &["--json", "ledger", "enqueue"],
        br#"{"id": "dated", "not_before": "2999-01-01T00:00:00Z"}"#,
    );
    assert_eq!(code, 0);
    assert_eq!(env.ok(&["ledger", "next", "--worker", "w"], 0), "past\n");
    env.ok(&["ledger", "next", "--worker", "w"], 1);
    let list = env.ok(&["ledger", "list"], 0);
    let lines: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines[0], ["dated", "pending", "2999-01-01T00:00:00.000Z"]);
    assert_eq!(lines[2], ["past", "claimed", "-"]);
    let due = cairn::parse_time(lines[1][2]).expect("an RFC 3339 due time");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((now + 3_500_000..=now + 3_600_000).contains(&due), "due in about an hour: {}", lines[1][2]);
    let (code, _, err) = env.run(&["ledger", "enqueue", "--not-before", "2026-12-01 09:00", "x"]);
    assert!(code == 2 && err.contains("RFC 3339"), "{err}");
}

/// `--not-before 5M` said only "neither a delay nor an RFC 3339 time", hiding why the delay was
/// refused; a number with a unit is a delay, and its own message (M could mean months) is
/// what the user needs. Nothing is queued.
#[test]
fn a_not_before_with_a_refused_unit_says_why_the_unit_is_refused() {
    let env = Env::new();
    let (code, _, err) = env.run(&["ledger", "enqueue", "--not-before", "5M", "x"]);
    assert_eq!(code, 2, "{err}");
    assert_one_line_error(&err);
    assert!(err.contains("M could mean minutes or months: write m or min for minutes"), "{err}");
    let (code, _, err) = env.run(&["ledger", "enqueue", "--not-before", "3 months", "x"]);
    assert!(code == 2 && err.contains("months and years are not durations"), "{err}");
    // Neither a number with a unit nor a date: both forms are explained.
    let (code, _, err) = env.run(&["ledger", "enqueue", "--not-before", "tomorrow", "x"]);
    assert!(code == 2 && err.contains("neither a delay"), "{err}");
    assert_eq!(env.ok(&["ledger", "count", "--state", "pending"], 0), "0\n", "nothing queued");
}

/// `--not-before 10000y` used to queue an item due at `i64::MAX`, and every `ledger list`
/// after it panicked (exit 101) until the item was deleted; dates before 1970 were refused as
/// malformed. A time out of range is refused when given; one an earlier version stored is
/// listed as the latest time cairn keeps.
#[test]
fn a_not_before_out_of_range_is_refused_and_one_stored_earlier_is_listed() {
    let env = Env::new();
    // 600,000 weeks: some 11,500 years (weeks parse in every version of the duration grammar).
    for not_before in ["600000w", "10000-01-01T00:00:00Z", "0000-12-31T00:00:00Z"] {
        let (code, _, err) = env.run(&["ledger", "enqueue", "--not-before", not_before, "x"]);
        assert_eq!(code, 2, "{not_before}: {err}");
        assert_one_line_error(&err);
        assert!(err.contains("out of range") && err.contains("9999-12-31T23:59:59.999Z"), "{err}");
    }
    let (code, _, err) =
        env.run_stdin(&["--json", "ledger", "enqueue"], br#"{"id": "x", "not_before": "600000w"}"#);
    assert!(code == 2 && err.contains("out of range"), "{err}");
    assert_eq!(env.ok(&["ledger", "count", "--state", "pending"], 0), "0\n", "nothing queued");
    env.ok(&["ledger", "enqueue", "--not-before", "1969-07-20T20:17:40Z", "moon"], 0);
    assert_eq!(env.ok(&["ledger", "list"], 0), "moon\tpending\t1969-07-20T20:17:40.000Z\n");
    env.ok(&["ledger", "enqueue", "later"], 0);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute(
        "UPDATE cairn_ledger SET due = ?1, updated_at = ?2 WHERE id = 'later'",
        [i64::MAX, i64::MIN],
    )
    .unwrap();
    drop(conn);
    assert_eq!(
        env.ok(&["ledger", "list", "--state", "pending"], 0),
        "later\tpending\t9999-12-31T23:59:59.999Z\nmoon\tpending\t1969-07-20T20:17:40.000Z\n"
    );
    let json = env.ok(&["--json", "ledger", "list"], 0);
    let later: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(later["due"], "9999-12-31T23:59:59.999Z", "{json}");
    assert_eq!(later["updated_at_ms"], cairn::EARLIEST_TIME_MILLIS, "{json}");
}

#[test]
fn a_failed_item_waits_out_its_retry_delay_and_retry_puts_given_up_items_back() {
    let env = Env::new();
    env.ok(&["ledger", "enqueue", "slow", "quick"], 0);
    env.ok(&["ledger", "next", "--worker", "w"], 0);
    let out = env
        .ok(&["--json", "ledger", "fail", "slow", "--worker", "w", "--error", "e", "--retry-delay", "1h"], 0);
    let failed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(failed["state"], "pending");
    assert!(failed["due_ms"].as_i64().is_some(), "{out}");
    assert_eq!(env.ok(&["ledger", "next", "--worker", "w"], 0), "quick\n", "slow waits out its backoff");
    env.ok(&["ledger", "fail", "quick", "--worker", "w", "--error", "e", "--retry-delay", "0s"], 0);
    assert_eq!(env.ok(&["ledger", "next", "--worker", "w"], 0), "quick\n", "no delay: at once");
    let attempt: serde_json::Value =
        serde_json::from_str(env.ok(&["--json", "ledger", "list"], 0).lines().next().unwrap()).unwrap();
    assert_eq!(attempt["attempts"], 1);

    env.ok(&["ledger", "fail", "a", "--error", "bad", "--max-attempts", "1"], 0);
    env.ok(&["ledger", "fail", "b", "--error", "bad", "--max-attempts", "1"], 0);
    assert_eq!(env.ok(&["ledger", "retry", "a", "quick"], 0), "1\n", "only given-up items");
    assert_eq!(env.ok(&["ledger", "count", "--state", "failed"], 0), "1\n");
    assert_eq!(env.ok(&["ledger", "retry", "--all-failed"], 0), "1\n");
    assert_eq!(env.ok(&["ledger", "count", "--state", "failed"], 0), "0\n");
    let (code, _, _) = env.run(&["ledger", "retry"]);
    assert_eq!(code, 2, "ids or --all-failed");
    let (code, _, _) = env.run(&["ledger", "retry", "a", "--all-failed"]);
    assert_eq!(code, 2, "not both");
}

#[test]
fn prune_removes_old_done_items_and_its_help_warns_that_reruns_forget_them() {
    let env = Env::new();
    env.ok(&["ledger", "mark", "a", "b"], 0);
    env.ok(&["ledger", "enqueue", "c"], 0);
    assert_eq!(env.ok(&["ledger", "prune", "--done-before", "1h"], 0), "0\n", "done too recently");
    assert_eq!(env.ok(&["ledger", "prune", "--done-before", "0s"], 0), "2\n");
    env.ok(&["ledger", "has", "a"], 1);
    assert_eq!(env.ok(&["ledger", "count", "--state", "pending"], 0), "1\n");
    let help = env.ok(&["ledger", "prune", "--help"], 0);
    assert!(help.contains("A re-run no longer skips a pruned id"), "{help}");
    let (code, _, _) = env.run(&["ledger", "prune"]);
    assert_eq!(code, 2, "--done-before is required");
}
