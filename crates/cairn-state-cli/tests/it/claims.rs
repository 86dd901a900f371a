//! Claims tied to a process with `--pid`: taken over at once when that process dies, while a
//! claim without `--pid` waits for its lease (each `cairn` command exits at once, so its own
//! pid says nothing about the worker).

use std::process::{Child, Command};

use crate::Env;

/// A stand-in for a worker's shell.
fn worker_shell() -> Child {
    Command::new("sleep").arg("3600").spawn().expect("spawn sleep")
}

fn end(mut shell: Child) {
    shell.kill().expect("kill");
    shell.wait().expect("reap"); // gone, not a zombie
}

#[test]
fn a_claim_tied_to_a_dead_pid_is_taken_over_at_once_and_its_worker_is_fenced_out() {
    let env = Env::new();
    env.ok(&["ledger", "enqueue", "a", "b"], 0);
    let shell = worker_shell();
    let pid = shell.id().to_string();
    assert_eq!(env.ok(&["ledger", "next", "--worker", "w1", "--lease", "1h", "--pid", &pid], 0), "a\n");
    env.ok(&["ledger", "claim", "b", "--worker", "w1", "--lease", "1h"], 0); // no --pid: lease only
    env.ok(&["ledger", "claim", "a", "--worker", "w2", "--lease", "1h"], 1); // its process lives
    end(shell);
    // An hour of lease left, but the process is gone: the next worker gets it now.
    assert_eq!(env.ok(&["ledger", "next", "--worker", "w2", "--lease", "1h"], 0), "a\n");
    env.ok(&["ledger", "claim", "b", "--worker", "w2", "--lease", "1h"], 1); // still its lease's
    env.ok(&["ledger", "done", "a", "--worker", "w1"], 1); // the dead worker's claim is fenced
    env.ok(&["ledger", "done", "a", "--worker", "w2"], 0);
}

#[test]
fn claiming_one_id_held_by_a_dead_pid_takes_it_over() {
    let env = Env::new();
    let shell = worker_shell();
    let pid = shell.id().to_string();
    env.ok(&["ledger", "claim", "x", "--worker", "w1", "--lease", "1h", "--pid", &pid], 0);
    env.ok(&["ledger", "claim", "x", "--worker", "w2", "--lease", "1h"], 1);
    end(shell);
    env.ok(&["ledger", "claim", "x", "--worker", "w2", "--lease", "1h"], 0);
}

#[test]
fn a_pid_that_runs_no_process_is_a_usage_error() {
    let env = Env::new();
    let shell = worker_shell();
    let pid = shell.id().to_string();
    end(shell);
    let (code, _, err) = env.run(&["ledger", "claim", "x", "--worker", "w", "--pid", &pid]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("no process with pid {pid}")), "{err}");
    env.ok(&["ledger", "claim", "x", "--worker", "w2"], 0); // nothing was claimed
}

/// A script whose `ledger done` lost its answer (a dropped connection to a server) runs it
/// again: the second run succeeds and changes nothing; another worker's still fails.
#[test]
fn done_again_by_the_same_worker_succeeds_and_another_workers_does_not() {
    let env = Env::new();
    env.ok(&["ledger", "claim", "a", "--worker", "w1"], 0);
    env.ok(&["ledger", "done", "a", "--worker", "w1"], 0);
    env.ok(&["ledger", "done", "a", "--worker", "w1"], 0);
    env.ok(&["ledger", "done", "a", "--worker", "w2"], 1);
    assert_eq!(env.ok(&["ledger", "count", "--state", "done"], 0), "1\n");
}

/// Issue 19.2 from a shell: a script's shell that dies holding its item (`--pid $$`) costs the
/// item an attempt, which `ledger next --json` shows; at the namespace's max attempts the item
/// is given up and the next worker gets the next item.
#[test]
fn a_claim_of_a_dead_shell_costs_an_attempt_and_the_last_gives_the_item_up() {
    let env = Env::new();
    env.ok(&["ledger", "policy", "--max-attempts", "2"], 0);
    env.ok(&["ledger", "enqueue", "poison", "next"], 0);
    for attempt in 1..=2 {
        let shell = worker_shell();
        let pid = shell.id().to_string();
        let out = env.ok(&["--json", "ledger", "next", "--worker", "w", "--lease", "1h", "--pid", &pid], 0);
        assert!(
            out.contains(r#""id":"poison""#) && out.contains(&format!(r#""attempt":{attempt}"#)),
            "{out}"
        );
        end(shell);
    }
    assert_eq!(env.ok(&["ledger", "next", "--worker", "w", "--lease", "1h"], 0), "next\n");
    assert_eq!(env.ok(&["ledger", "list", "--state", "failed"], 0), "poison\tfailed\t-\n");
    let item = env.ok(&["--json", "ledger", "list", "--state", "failed"], 0);
    assert!(item.contains("its claims were lost 2 times: the worker died or hung"), "{item}");
}
