//! `ledger next --wait` and `ledger wait`: workers that block instead of polling, run as real
//! processes.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{cairn_bin, output_within, wait_within, Env};

/// bash running `script` in the store's directory with `cairn` on the PATH, in its own
/// process group.
fn bash(env: &Env, script: &str) -> Command {
    let bin_dir = cairn_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(format!("set -u\n{script}"))
        .env("PATH", path)
        .env("CAIRN_DB", env.db())
        .env_remove("CAIRN_NS")
        .env_remove("CAIRN_DURABILITY")
        .current_dir(env.dir.path())
        .process_group(0);
    c
}

#[test]
fn eight_shell_workers_waiting_with_next_drain_a_slow_producers_queue_each_item_once() {
    const ITEMS: usize = 60;
    let env = Env::new();
    // Each worker claims with a wait, logs the item and completes it; once no item came for
    // 3 s (the producer is done), `next` exits 1 and the worker stops.
    let script = format!(
        r#"
for w in 1 2 3 4 5 6 7 8; do
  ( while id=$(cairn ledger next --worker "w$w" --lease 1h --wait 3s); do
      echo "$id" >> "done-$w.log"
      cairn ledger done "$id" --worker "w$w" || exit 3
    done ) &
done
for i in $(seq 1 {ITEMS}); do cairn ledger enqueue "item-$i"; sleep 0.02; done
cairn ledger wait --timeout 60s || exit 4
wait
"#
    );
    let out = output_within(&mut bash(&env, &script), "8 waiting workers");
    assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let mut all = Vec::new();
    for w in 1..=8 {
        let log = std::fs::read_to_string(env.path(&format!("done-{w}.log"))).unwrap_or_default();
        all.extend(log.lines().map(str::to_owned));
    }
    all.sort();
    let mut expected: Vec<String> = (1..=ITEMS).map(|i| format!("item-{i}")).collect();
    expected.sort();
    assert_eq!(all, expected, "each item handed out exactly once");
    assert_eq!(env.ok(&["ledger", "count", "--state", "done"], 0), format!("{ITEMS}\n"));
}

#[test]
fn ledger_wait_exits_0_once_drained_and_1_at_its_timeout() {
    let env = Env::new();
    env.ok(&["ledger", "wait", "--timeout", "0s"], 0); // nothing was ever queued
    env.ok(&["ledger", "enqueue", "a"], 0);
    env.ok(&["ledger", "wait", "--timeout", "50ms"], 1);
    let mut waiter = bash(&env, "cairn ledger wait --timeout 60s").spawn().unwrap();
    assert_eq!(env.ok(&["ledger", "next", "--worker", "w"], 0), "a\n");
    env.ok(&["ledger", "wait", "--timeout", "10ms"], 1); // claimed is not drained
    env.ok(&["ledger", "done", "a", "--worker", "w"], 0);
    assert_eq!(wait_within(&mut waiter, "ledger wait").code(), Some(0));
}

#[test]
fn next_with_a_wait_exits_1_when_it_passes_and_prints_what_next_prints() {
    let env = Env::new();
    env.ok(&["ledger", "next", "--worker", "w", "--wait", "30ms"], 1);
    let mut waiter =
        bash(&env, "cairn ledger next --worker w --wait 60s --json > claim.json").spawn().unwrap();
    env.ok(&["ledger", "enqueue", "b"], 0);
    assert_eq!(wait_within(&mut waiter, "next --wait").code(), Some(0));
    let claim: serde_json::Value = serde_json::from_slice(&crate::read(&env.path("claim.json"))).unwrap();
    assert_eq!((claim["id"].as_str(), claim["attempt"].as_u64()), (Some("b"), Some(1)), "{claim}");
}

#[test]
fn a_waiting_next_or_wait_ends_at_once_on_sigint_or_sigterm() {
    let env = Env::new();
    env.ok(&["ledger", "enqueue", "later", "--not-before", "1h"], 0);
    for (args, signal) in [
        (&["ledger", "next", "--worker", "w", "--wait", "1h"][..], Signal::SIGTERM),
        (&["ledger", "next", "--worker", "w", "--wait", "1h"][..], Signal::SIGINT),
        (&["ledger", "wait"][..], Signal::SIGTERM),
    ] {
        let mut child = Command::new(cairn_bin())
            .args(args)
            .env("CAIRN_DB", env.db())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200)); // let it begin to wait
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = wait_within(&mut child, "a signalled wait");
        assert_eq!(status.signal(), Some(signal as i32), "{args:?}: {status:?}");
    }
    assert_eq!(env.ok(&["ledger", "count", "--state", "claimed"], 0), "0\n", "nothing left claimed");
}
