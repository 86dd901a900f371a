//! `cairn ledger` and `cairn checkpoint`.

use crate::{wait_until, Env};

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
    wait_until("the 1 ms lease lapsed", || env.ok(&["ledger", "list"], 0) == "x\tpending\n");
    env.ok(&["ledger", "claim", "x", "--worker", "w2"], 0);
    assert_eq!(env.ok(&["ledger", "list"], 0), "x\tclaimed\n");
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
    assert_eq!(env.ok(&["ledger", "count"], 0), "pending\t0\nclaimed\t1\ndone\t2\nfailed\t1\n");
    assert_eq!(
        env.ok(&["--json", "ledger", "count"], 0),
        "{\"claimed\":1,\"done\":2,\"failed\":1,\"pending\":0}\n"
    );
    assert_eq!(env.ok(&["ledger", "list"], 0), "c\tclaimed\nd1\tdone\nd2\tdone\nf\tfailed\n");
    assert_eq!(env.ok(&["ledger", "list", "--state", "done", "--limit", "1"], 0), "d1\tdone\n");
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
