//! `enqueue --priority` and `--group` (and their JSON-lines fields), and groups held one at a
//! time by real worker processes.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;

use crate::{cairn_bin, Env};

#[test]
fn priority_and_group_options_order_what_next_hands_out() {
    let env = Env::new();
    env.ok(&["ledger", "enqueue", "plain"], 0);
    env.ok(&["ledger", "enqueue", "--priority", "-3", "low"], 0);
    env.ok(&["ledger", "enqueue", "--priority", "10", "--group", "acme", "acme-1", "acme-2"], 0);
    env.ok(&["ledger", "enqueue", "--priority", "5", "urgent"], 0);
    let next = |w: &str| env.ok(&["ledger", "next", "--worker", w], 0);
    assert_eq!(next("w1"), "acme-1\n");
    assert_eq!(next("w2"), "urgent\n", "acme-2 waits for acme-1, whatever its priority");
    assert_eq!(next("w3"), "plain\n");
    assert_eq!(next("w4"), "low\n");
    env.ok(&["ledger", "next", "--worker", "w5"], 1);
    assert_eq!(env.ok(&["ledger", "count", "--state", "pending"], 0), "1\n", "a waiting item is pending");
    env.ok(&["ledger", "done", "acme-1", "--worker", "w1"], 0);
    assert_eq!(next("w5"), "acme-2\n");
}

#[test]
fn json_lines_take_a_priority_and_a_group_over_the_options() {
    let env = Env::new();
    let lines = br#"{"id": "a", "group": "g"}
{"id": "b"}
{"id": "c", "priority": 9, "group": "solo"}
{"id": "d", "priority": -1}
"#;
    let (code, out, err) = env.run_stdin(&["--json", "ledger", "enqueue", "--group", "h"], lines);
    assert_eq!((code, String::from_utf8(out).unwrap().as_str()), (0, "{\"queued\":4}\n"), "{err}");
    let next = |w: &str| env.ok(&["ledger", "next", "--worker", w], 0);
    // c (9, its own group) first; then a (group g) and b (group h, from --group); d (group h)
    // waits for b.
    assert_eq!([next("w1"), next("w2"), next("w3")], ["c\n", "a\n", "b\n"]);
    env.ok(&["ledger", "next", "--worker", "w4"], 1);
    env.ok(&["ledger", "done", "b", "--worker", "w3"], 0);
    assert_eq!(next("w4"), "d\n");
}

#[test]
fn a_bad_priority_or_group_is_refused_and_queues_nothing() {
    let env = Env::new();
    for args in [
        &["ledger", "enqueue", "--priority", "1001", "a"][..],
        &["ledger", "enqueue", "--priority", "-1001", "a", "b"],
        &["ledger", "enqueue", "--priority", "x", "a"],
        &["ledger", "enqueue", "--group", "", "a"],
    ] {
        let (code, _, err) = env.run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    let (_, _, err) = env.run(&["ledger", "enqueue", "--priority", "1001", "a"]);
    assert!(err.contains("-1000 to 1000"), "{err}");
    for (input, want) in [
        (&b"{\"id\": \"a\", \"priority\": 1.5}\n"[..], "\"priority\" must be an integer"),
        (b"{\"id\": \"a\", \"priority\": 5000}\n", "-1000 to 1000"),
        (b"{\"id\": \"a\", \"group\": \"\"}\n", "\"group\" must be a non-empty string"),
        (b"{\"id\": \"a\", \"group\": [1]}\n", "\"group\" must be a non-empty string"),
    ] {
        let (code, _, err) = env.run_stdin(&["--json", "ledger", "enqueue"], input);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(want), "{err}");
    }
    assert_eq!(env.ok(&["ledger", "count", "--state", "pending"], 0), "0\n");
}

/// Four shell workers (`next`, some work, `done`, in a loop) drain three groups of six items
/// and six ungrouped ones from one file. Each records when it worked on an item (after its
/// claim, before its `done`): no two items of a group overlap, each group runs in queue order,
/// and every item is worked on exactly once.
#[test]
fn worker_processes_never_work_on_two_items_of_one_group_at_once() {
    let env = Env::new();
    let (groups, per_group) = (3, 6);
    let mut lines = String::new();
    for i in 0..per_group {
        for g in 0..groups {
            lines.push_str(&format!("{{\"id\": \"g{g}-{i}\", \"group\": \"g{g}\"}}\n"));
        }
        lines.push_str(&format!("{{\"id\": \"free-{i}\"}}\n"));
    }
    let total = groups * per_group + per_group;
    let (code, _, err) = env.run_stdin(&["--json", "ledger", "enqueue"], lines.as_bytes());
    assert_eq!(code, 0, "{err}");
    let script = r#"
        while :; do
            if id=$("$CAIRN" ledger next --worker "$W" --lease 1m); then
                start=$(date +%s%N)
                sleep 0.02
                end=$(date +%s%N)
                echo "$id $start $end" >> "$LOG"
                "$CAIRN" ledger done "$id" --worker "$W" || exit 3
            elif [ "$("$CAIRN" ledger count --state done)" = "$TOTAL" ]; then
                exit 0
            else
                sleep 0.01
            fi
        done
    "#;
    let workers: Vec<_> = (0..4)
        .map(|w| {
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .env("CAIRN", cairn_bin())
                .env("CAIRN_DB", env.db())
                .env_remove("CAIRN_NS")
                .env("W", format!("w{w}"))
                .env("LOG", env.path(&format!("log{w}")))
                .env("TOTAL", total.to_string())
                .spawn()
                .expect("spawn a worker")
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().expect("worker").success(), "a worker failed");
    }
    let mut seen = HashSet::new();
    let mut by_group: BTreeMap<String, Vec<(u128, u128, usize)>> = BTreeMap::new();
    for w in 0..4 {
        let log = std::fs::read_to_string(env.path(&format!("log{w}"))).unwrap_or_default();
        for line in log.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let (id, start, end) = (f[0], f[1].parse().unwrap(), f[2].parse().unwrap());
            assert!(seen.insert(id.to_owned()), "{id} worked on twice");
            if let Some((g, i)) = id.split_once('-').filter(|(g, _)| g.starts_with('g')) {
                by_group.entry(g.to_owned()).or_default().push((start, end, i.parse().unwrap()));
            }
        }
    }
    assert_eq!(seen.len(), total, "every item once");
    for (g, mut runs) in by_group {
        runs.sort();
        let order: Vec<usize> = runs.iter().map(|r| r.2).collect();
        assert_eq!(order, (0..per_group).collect::<Vec<_>>(), "group {g} in queue order");
        for pair in runs.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "group {g}: items {} and {} overlapped", pair[0].2, pair[1].2);
        }
    }
}
