//! Durable runs under SIGKILL (issue 24). The bug this guards against: a step recorded and
//! then executed again by a later attempt, a recorded value that is not the one its last
//! execution returned (an older execution's, or a stale attempt's written over a newer one),
//! a `step_tx` whose writes land twice or without its record, and a holder that lost the run
//! still recording steps.
//!
//! A `run-steps` child runs 100 steps, each appending its name and an execution id to a side
//! file (synced) before returning a value naming that execution; every fifth is a `step_tx`
//! that bumps a counter and marks a ledger id with its record. The harness SIGKILLs it at
//! random moments (start-up, mid-step, mid-record) and starts it again until the run is
//! finished, then checks the side file against the store. `CAIRN_RUN_KILLS` kills per engine
//! (200 by default; thousands on demand); `CAIRN_SEED` replays a run.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn::{Error, ErrorKind, RunState, StepState, Store};
use cairn_testkit::postgres::test_schema;
use cairn_testkit::{env_count, Rng, Running};

use super::kill;
use crate::child;

/// Steps per run.
const STEPS: u64 = 100;

/// The steps that are `step_tx` (as `cairn-child` decides): every fifth.
fn is_tx_step(i: u64) -> bool {
    i % 5 == 4
}

fn step_name(i: u64) -> String {
    format!("s{i:03}")
}

/// What the torture went through on one engine.
#[derive(Debug, Default)]
struct Tally {
    kills: u64,
    /// Kills that landed while a step executed or was being recorded.
    mid_step: u64,
    /// Runs taken to the end and checked.
    runs: u64,
    /// Executions that did not count: killed after the side file had them, before their record.
    re_executions: u64,
}

/// The torture on the store at `db` (a file or a PostgreSQL URL), with side files in `dir`.
fn torture(db: &str, dir: &Path, engine: &str) {
    let kills = env_count("CAIRN_RUN_KILLS", 200);
    let seed = Rng::seed_from_env();
    eprintln!("run torture ({engine}): {kills} kills, CAIRN_SEED={seed}");
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let mut tally = Tally::default();
    while tally.kills < kills {
        tally.runs += 1;
        let id = format!("run-{}", tally.runs);
        let log = dir.join(format!("{id}.log"));
        let log = log.to_str().expect("utf-8 path");
        // Every value a child saw a step return, checked against the record at the end.
        let mut returned: HashMap<String, Vec<String>> = HashMap::new();
        let mut kills_in_a_row_without_progress = 0;
        loop {
            let args = ["run-steps", "--db", db, "--run", &id, "--log", log];
            let running = Running::spawn(child(), &args).expect("spawn");
            if rng.below(5) == 0 {
                std::thread::sleep(Duration::from_millis(rng.below(8)));
            } else {
                // After a random number of the attempt's executions (replays go by fast),
                // then a little longer, to land inside what follows.
                let executions = 1 + rng.below(25) as usize;
                running.wait_until(Duration::from_secs(20), |l| {
                    l.iter().filter(|l| l.starts_with("BEGIN ")).count() >= executions
                });
                std::thread::sleep(Duration::from_micros(rng.below(3000)));
            }
            let lines = kill(running);
            for line in &lines {
                if let Some((name, value)) = line.strip_prefix("STEP ").and_then(|l| l.split_once(' ')) {
                    returned.entry(name.to_owned()).or_default().push(value.to_owned());
                }
            }
            if lines.iter().any(|l| l == "FINISHED") {
                break;
            }
            tally.kills += 1;
            if lines.last().is_some_and(|l| l.starts_with("BEGIN ")) {
                tally.mid_step += 1;
            }
            let progressed = lines.iter().any(|l| l.starts_with("BEGIN "));
            kills_in_a_row_without_progress =
                if progressed { 0 } else { kills_in_a_row_without_progress + 1 };
            assert!(
                kills_in_a_row_without_progress < 200,
                "{id}: 200 attempts in a row executed nothing (CAIRN_SEED={seed})"
            );
        }
        tally.re_executions += verify(db, &id, Path::new(log), &returned)
            .unwrap_or_else(|e| panic!("{id} (CAIRN_SEED={seed}): {e}"));
    }
    eprintln!(
        "run torture ({engine}): {} kills survived ({} mid-step) over {} runs of {STEPS} steps, \
         {} executions killed before their record and run again, in {:.0?}",
        tally.kills,
        tally.mid_step,
        tally.runs,
        tally.re_executions,
        started.elapsed()
    );
    assert!(tally.mid_step > 0 || tally.kills < 20, "no kill landed mid-step: the kill points are off");
}

/// The side file of run `id`: each step's executions, in order.
fn executions(log: &Path) -> HashMap<String, Vec<String>> {
    let mut by_step: HashMap<String, Vec<String>> = HashMap::new();
    for line in std::fs::read_to_string(log).expect("the side file").lines() {
        let (name, exec) = line.split_once(' ').unwrap_or_else(|| panic!("a torn side-file line {line:?}"));
        by_step.entry(name.to_owned()).or_default().push(exec.to_owned());
    }
    by_step
}

/// Checks a finished run against its side file and the values its children saw returned;
/// returns how many executions were superseded (killed before their record).
fn verify(db: &str, id: &str, log: &Path, returned: &HashMap<String, Vec<String>>) -> Result<u64, Error> {
    let store = Store::open(db)?;
    if store.journal_mode() != "postgres" {
        assert_eq!(store.integrity_check()?, vec!["ok"], "integrity_check");
    }
    let info = store.runs().get(id)?.expect("the run is there");
    assert_eq!(info.state, RunState::Finished, "{id}: {info:?}");
    assert_eq!(info.steps.len() as u64, STEPS, "{id}: steps recorded");
    assert!(info.steps.iter().all(|s| s.state == StepState::Done), "{id}: a step not done: {info:?}");
    let executed = executions(log);
    // Joined once finished, the run replays every step: a step it would execute is a failure.
    let mut replay = store.run(id)?;
    assert!(replay.is_finished());
    let mut superseded = 0;
    for i in 0..STEPS {
        let name = step_name(i);
        let recorded: String =
            replay.step(&name, || Err(Error::InvalidInput(format!("{name} executed in a finished run"))))?;
        let runs = executed.get(&name).map_or(&[][..], Vec::as_slice);
        let last = runs.last().unwrap_or_else(|| panic!("{id}: {name} recorded but never executed"));
        // The record is the last execution's: one after it (a recorded step executed again)
        // or an older one's value would differ.
        assert_eq!(recorded, format!("{name} by {last}"), "{id}: {name} executed {runs:?}");
        superseded += runs.len() as u64 - 1;
        for seen in returned.get(&name).into_iter().flatten() {
            assert_eq!(seen, &recorded, "{id}: {name} returned a value other than its record");
        }
    }
    replay.finish()?;
    let tx_steps = (0..STEPS).filter(|&i| is_tx_step(i)).count() as i64;
    assert_eq!(
        store.cache("torture").get::<i64>(id)?,
        Some(tx_steps),
        "{id}: the step_tx counter counts each step_tx once"
    );
    let ledger = store.ledger("torture");
    for i in (0..STEPS).filter(|&i| is_tx_step(i)) {
        assert!(ledger.is_done(&format!("{id}/{}", step_name(i)))?, "{id}: {} not marked", step_name(i));
    }
    Ok(superseded)
}

#[test]
fn sigkill_at_random_points_of_a_100_step_run_never_executes_a_recorded_step_again_or_applies_a_step_tx_twice(
) {
    let _machine = crate::heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("runs.db");
    torture(db.to_str().expect("utf-8 path"), dir.path(), "SQLite");
}

#[test]
fn sigkill_at_random_points_of_a_100_step_run_on_postgres_never_executes_a_recorded_step_again_or_applies_a_step_tx_twice(
) {
    let Some(pg) = test_schema() else { return };
    let _machine = crate::heavy();
    let dir = tempfile::tempdir().expect("tempdir");
    torture(&pg.url(), dir.path(), "PostgreSQL");
}

/// Send `signal` to the child that printed `pid`.
fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("signal the child");
}

/// A holder stopped (alive, so not taken over at once) past its lease: another attempt takes
/// the run over and records steps; resumed, the stale holder's steps are refused, a plain one
/// and a `step_tx` alike, and the new holder's run ends with none of their values or writes.
fn stale_holder(db: &str, dir: &Path) {
    let log = dir.join("stale.log");
    let log = log.to_str().expect("utf-8 path");
    let id = "stale";
    let mut a = Running::spawn(
        child(),
        &["run-stale", "--db", db, "--run", id, "--log", log, "--lease-ms", "300", "--late", "10,14"],
    )
    .expect("spawn A");
    assert!(a.wait_for(Duration::from_secs(20), |l| l.starts_with("HELD ")), "A: {:?}", a.lines());
    let pid: i32 = a.lines().iter().find_map(|l| l.strip_prefix("HELD ")?.parse().ok()).expect("A's pid");
    signal(pid, nix::sys::signal::Signal::SIGSTOP);
    let b =
        Running::spawn(child(), &["run-steps", "--db", db, "--run", id, "--log", log, "--pause-after", "10"])
            .expect("spawn B");
    assert!(
        b.wait_for(Duration::from_secs(20), |l| l == "PAUSED"),
        "B never took the run over: {:?}",
        b.lines()
    );
    signal(pid, nix::sys::signal::Signal::SIGCONT);
    a.close_stdin();
    let (status, a_lines, stderr) = a.finish().expect("A");
    assert!(status.success(), "A: {status} {stderr}");
    let lost = format!("{:?}", ErrorKind::LeaseLost);
    assert_eq!(
        a_lines.iter().filter(|l| l.starts_with("LATE ")).collect::<Vec<_>>(),
        [&format!("LATE s010 {lost}"), &format!("LATE s014 {lost}")],
        "the stale holder's late steps"
    );
    let (status, b_lines, stderr) = b.finish().expect("B");
    assert!(status.success() && b_lines.last().is_some_and(|l| l == "FINISHED"), "B: {status} {stderr}");
    let mut returned: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in b_lines.iter().filter_map(|l| l.strip_prefix("STEP ")?.split_once(' ')) {
        returned.entry(name.to_owned()).or_default().push(value.to_owned());
    }
    // A's step 0 is recorded and replayed to B; A's late executions are in the side file
    // before B's, whose records they are not; the step_tx counter counts B's s014 alone.
    verify(db, id, Path::new(log), &returned).expect("verify");
    let executed = executions(Path::new(log));
    let a_exec = &executed["s000"][0];
    for late in ["s010", "s014"] {
        assert_eq!(executed[late].len(), 2, "{late}: A's refused execution, then B's: {:?}", executed[late]);
        assert_eq!(&executed[late][0], a_exec, "{late}: A executed it first");
    }
}

#[test]
fn a_stopped_holder_whose_run_was_taken_over_gets_lease_lost_for_its_late_steps_and_records_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("runs.db");
    stale_holder(db.to_str().expect("utf-8 path"), dir.path());
}

#[test]
fn a_stopped_holder_whose_run_was_taken_over_on_postgres_gets_lease_lost_for_its_late_steps_and_records_nothing(
) {
    let Some(pg) = test_schema() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    stale_holder(&pg.url(), dir.path());
}
