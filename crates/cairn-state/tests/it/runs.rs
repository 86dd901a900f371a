//! Durable runs on every engine: steps execute until they succeed once and replay after, one
//! attempt holds a run at a time, a stale attempt records nothing, drift is refused.

use std::cell::Cell;
use std::time::Duration;

use cairn::{ErrorKind, RunOptions, RunState, StepState, Value};

use crate::contract;
use crate::engines::Engine;

/// No background renewal: the tests move the clock past leases themselves.
fn manual() -> RunOptions {
    RunOptions::new().lease(Duration::from_secs(60)).keep_alive(false)
}

contract! {
    /// A step's result is recorded the first time it succeeds and replayed, with its type, to
    /// every later attempt without executing it; a failed step records its error and attempt,
    /// no result, and runs again; a repeated name is a step of its own (`name#2`).
    fn steps_execute_until_they_succeed_once_and_replay_after(f) {
        let calls = Cell::new(0);
        let count = || calls.set(calls.get() + 1);
        {
            let mut run = f.store.run_with("r", manual())?;
            assert_eq!(run.attempt(), 1);
            let pages: Vec<u8> = run.step("list", || { count(); Ok::<_, cairn::Error>(vec![1u8, 2, 3]) })?;
            assert_eq!(pages, [1, 2, 3]);
            assert_eq!(run.step("n", || { count(); Ok::<_, cairn::Error>(Value::Int(7)) })?, Value::Int(7));
            assert_eq!(run.step("n", || { count(); Ok::<_, cairn::Error>(Value::Int(8)) })?, Value::Int(8), "n#2");
            let failed = run.step::<String, cairn::Error>("upload", || { count(); Err(cairn::Error::InvalidInput("503 from the server".into())) });
            assert!(failed.is_err());
            run.fail("upload failed")?;
        }
        assert_eq!(calls.get(), 4);
        let info = f.store.runs().get("r")?.expect("the run");
        assert_eq!((info.state, info.attempts, info.error.as_deref()), (RunState::Failed, 1, Some("upload failed")));
        let names: Vec<(&str, StepState, u64)> = info.steps.iter().map(|s| (s.name.as_str(), s.state, s.attempts)).collect();
        assert_eq!(names, [("list", StepState::Done, 1), ("n", StepState::Done, 1), ("n#2", StepState::Done, 1), ("upload", StepState::Failed, 1)]);
        assert_eq!(info.steps[3].error.as_deref(), Some("invalid input: 503 from the server"));

        let mut run = f.store.run_with("r", manual())?;
        assert_eq!(run.attempt(), 2);
        let pages: Vec<u8> = run.step("list", || -> Result<Vec<u8>, cairn::Error> { panic!("replayed, not run") })?;
        assert_eq!(pages, [1, 2, 3]);
        assert_eq!(run.step("n", || -> Result<Value, cairn::Error> { panic!("replayed") })?, Value::Int(7));
        assert_eq!(run.step("n", || -> Result<Value, cairn::Error> { panic!("replayed") })?, Value::Int(8));
        let up: String = run.step("upload", || { count(); Ok::<_, cairn::Error>("sent".to_owned()) })?;
        assert_eq!(up, "sent");
        run.finish()?;
        assert_eq!(calls.get(), 5, "only the failed step ran again");
        let info = f.store.runs().get("r")?.expect("the run");
        assert_eq!((info.state, info.attempts, info.error), (RunState::Finished, 2, None));
        assert_eq!((info.steps[3].state, info.steps[3].attempts, info.steps[3].error.clone()), (StepState::Done, 2, None));

        // A finished run replays without being held, and refuses a step it never recorded.
        let mut again = f.store.run_with("r", manual())?;
        assert!(again.is_finished());
        let pages: Vec<u8> = again.step("list", || -> Result<Vec<u8>, cairn::Error> { panic!("replayed") })?;
        assert_eq!(pages, [1, 2, 3]);
        let err = again.step("new", || Ok::<_, cairn::Error>(1i64)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("cairn run reset r"), "{err}");
        Ok(())
    }

    /// One attempt at a time: a second one is RunHeld while the first lives; once its lease
    /// ran out another takes the run over, and the stale attempt can no longer record a step
    /// (LeaseLost), nor end the run.
    fn a_run_is_held_by_one_attempt_and_a_stale_one_records_nothing(f) {
        let mut first = f.store.run_with("r", manual())?;
        first.step("a", || Ok::<_, cairn::Error>(1i64))?;
        let other = f.reopen();
        let err = other.run_with("r", manual()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RunHeld);
        assert!(err.to_string().contains("pid ") && err.to_string().contains("is held by another attempt"), "{err}");
        assert_eq!(f.store.runs().get("r")?.expect("run").state, RunState::Running);

        f.clock.advance(Duration::from_secs(61));
        let mut second = other.run_with("r", manual())?;
        assert_eq!((second.attempt(), second.token()), (2, 2));
        assert_eq!(second.step("a", || -> Result<i64, cairn::Error> { panic!("replayed") })?, 1);

        let stale = first.step("b", || Ok::<_, cairn::Error>(2i64)).unwrap_err();
        assert_eq!(stale.kind(), ErrorKind::LeaseLost, "{stale}");
        assert_eq!(first.renew().unwrap_err().kind(), ErrorKind::LeaseLost);
        assert_eq!(first.finish().unwrap_err().kind(), ErrorKind::LeaseLost);
        let b: i64 = second.step("b", || Ok::<_, cairn::Error>(3))?;
        assert_eq!(b, 3, "the stale attempt's result was not recorded");
        second.finish()?;
        let info = f.store.runs().get("r")?.expect("run");
        assert_eq!((info.state, info.attempts), (RunState::Finished, 2));
        Ok(())
    }

    /// A recorded step asked for with another version is StepChanged, naming the reset command;
    /// a reset from it lets the new definition run.
    fn a_step_asked_for_with_another_version_is_refused_until_reset(f) {
        let mut run = f.store.run_with("deploy", manual())?;
        run.step_with_version("build", "1", || Ok::<_, cairn::Error>("v1".to_owned()))?;
        run.step("ship", || Ok::<_, cairn::Error>(true))?;
        run.finish()?;
        let mut run = f.store.run_with("deploy", manual())?;
        let err = run.step_with_version("build", "2", || Ok::<_, cairn::Error>("v2".to_owned())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StepChanged);
        assert!(err.to_string().contains("cairn run reset deploy --from build"), "{err}");
        drop(run);
        assert_eq!(f.store.runs().reset("deploy", Some("build"))?, 2, "build and what came after");
        let mut run = f.store.run_with("deploy", manual())?;
        assert!(!run.is_finished());
        let built: String = run.step_with_version("build", "2", || Ok::<_, cairn::Error>("v2".to_owned()))?;
        assert_eq!(built, "v2");
        run.finish()?;
        let err = f.store.runs().reset("deploy", Some("nope")).unwrap_err();
        assert!(err.to_string().contains("its steps: build"), "{err}");
        Ok(())
    }

    /// A process that takes a run for one step (the CLI's `cairn step`) reads a finished
    /// run's step with the run: it replays under the same version, is StepChanged under
    /// another, and a step the run never recorded is refused; another step is read apart. A run
    /// that is not finished is taken as ever, its steps read when asked for.
    fn a_run_taken_for_one_step_replays_it_as_a_step_does(f) {
        let mut run = f.store.run_with("deploy", manual())?;
        run.step_with_version("build", "1", || Ok::<_, cairn::Error>("v1".to_owned()))?;
        run.step("ship", || Ok::<_, cairn::Error>(true))?;
        run.finish()?;
        let held = f.store.take_run_for_step("deploy", &manual(), "build")?;
        assert!(held.is_finished());
        assert_eq!((held.attempt(), held.token()), (1, 1));
        assert_eq!(f.store.replay_step::<String>(&held, "build", "1")?.as_deref(), Some("v1"));
        let err = f.store.replay_step::<String>(&held, "build", "2").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StepChanged);
        assert!(err.to_string().contains("cairn run reset deploy --from build"), "{err}");
        assert_eq!(f.store.replay_step::<bool>(&held, "ship", "")?, Some(true), "read apart");
        let held = f.store.take_run_for_step("deploy", &manual(), "nope")?;
        let err = f.store.replay_step::<String>(&held, "nope", "").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("never recorded a step 'nope'"), "{err}");

        let mut open = f.store.run_with("open", manual())?;
        open.step("a", || Ok::<_, cairn::Error>(1i64))?;
        open.fail("stopped")?;
        let mut held = f.store.take_run_for_step("open", &manual(), "b")?;
        assert!(!held.is_finished());
        assert_eq!((held.attempt(), held.token()), (2, 2), "a new attempt, fenced as ever");
        assert_eq!(f.store.replay_step::<i64>(&held, "a", "")?, Some(1));
        let (b, seq) = held.next_step("b")?;
        assert_eq!(f.store.replay_step::<i64>(&held, &b, "")?, None);
        let started = f.store.now_millis();
        f.store.record_step(&held, &b, seq, "", started, Ok(&2i64))?;
        assert_eq!(f.store.replay_step::<i64>(&held, &b, "")?, Some(2), "read now, not when taken");
        let err = f.reopen().take_run_for_step("open", &manual(), "b").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RunHeld);
        Ok(())
    }

    /// step_tx commits the step's writes with its record: replayed, they are not written twice;
    /// from a stale attempt, they are rolled back with it.
    fn a_transactional_step_writes_exactly_once_and_not_at_all_when_stale(f) {
        let mut run = f.store.run_with("r", manual())?;
        let n: i64 = run.step_tx("count", |tx| tx.cache("c").incr("n", 1, None))?;
        assert_eq!(n, 1);
        run.fail("stop")?;
        let mut run = f.store.run_with("r", manual())?;
        let n: i64 = run.step_tx("count", |tx| tx.cache("c").incr("n", 1, None))?;
        assert_eq!((n, f.store.cache("c").get::<i64>("n")?), (1, Some(1)), "replayed, not written again");

        f.clock.advance(Duration::from_secs(61));
        let other = f.reopen();
        let mut newer = other.run_with("r", manual())?;
        let err = run.step_tx("again", |tx| tx.cache("c").incr("n", 10, None)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LeaseLost);
        assert_eq!(f.store.cache("c").get::<i64>("n")?, Some(1), "the stale step's write was rolled back");
        let m: i64 = newer.step_tx("again", |tx| tx.cache("c").incr("n", 10, None))?;
        assert_eq!(m, 11);
        newer.finish()?;
        Ok(())
    }

    /// A durable sleep records its wake time once: later attempts wait only what is left.
    fn a_durable_sleep_waits_only_what_is_left(f) {
        let mut run = f.store.run_with("r", manual())?;
        assert_eq!(run.sleep_no_wait("cool-down", Duration::from_secs(600))?, Some(Duration::from_secs(600)));
        drop(run);
        f.clock.advance(Duration::from_secs(599));
        let mut run = f.store.run_with("r", manual())?;
        assert_eq!(run.sleep_no_wait("cool-down", Duration::from_secs(600))?, Some(Duration::from_secs(1)));
        drop(run);
        f.clock.advance(Duration::from_secs(1));
        let mut run = f.store.run_with("r", manual())?;
        assert_eq!(run.sleep_no_wait("cool-down", Duration::from_secs(600))?, None);
        // The second sleep of the name is a sleep of its own, cool-down#2; one of no length
        // does not block on the manual clock.
        run.sleep("cool-down", Duration::ZERO)?;
        assert!(f.store.runs().get("r")?.expect("run").steps.iter().any(|s| s.name == "cool-down#2"));
        Ok(())
    }

    /// A run dropped without finish() is failed (the next attempt resumes it); list filters by
    /// state; forget and prune delete runs and their steps.
    fn operators_list_forget_and_prune_runs(f) {
        let mut a = f.store.run_with("a", manual())?;
        a.step("x", || Ok::<_, cairn::Error>(1i64))?;
        a.finish()?;
        let b = f.store.run_with("b", manual())?;
        drop(b);
        let _c = f.store.run_with("c", manual())?;
        let ids = |state| -> Result<Vec<String>, cairn::Error> {
            Ok(f.store.runs().list(state)?.into_iter().map(|r| r.id).collect())
        };
        assert_eq!(ids(None)?, ["a", "b", "c"]);
        assert_eq!(ids(Some(RunState::Finished))?, ["a"]);
        assert_eq!(ids(Some(RunState::Failed))?, ["b"]);
        assert_eq!(ids(Some(RunState::Running))?, ["c"]);
        assert_eq!(f.store.runs().get("b")?.expect("b").error.as_deref(), Some("the attempt ended without finishing"));
        assert_eq!(f.store.runs().forget("c").unwrap_err().kind(), ErrorKind::RunHeld, "held by a live attempt");
        f.clock.advance(Duration::from_secs(61));
        assert_eq!(ids(Some(RunState::Failed))?, ["b", "c"], "a lapsed attempt shows as failed");
        assert!(f.store.runs().forget("c")?);
        assert!(!f.store.runs().forget("c")?);
        f.clock.advance(Duration::from_secs(3600));
        assert_eq!(f.store.runs().prune(Duration::from_secs(3600))?, 1, "a, finished over an hour ago");
        assert_eq!(ids(None)?, ["b"]);
        Ok(())
    }

    /// A NUL byte in what a step or a run failed with is kept as U+FFFD, on every engine
    /// (PostgreSQL's text columns refuse NUL: the failure went unrecorded and the attempt
    /// stayed held), and a version holding one is refused before the step runs.
    fn a_nul_in_an_error_is_recorded_and_one_in_a_version_refused(f) {
        let mut run = f.store.run_with("r", manual())?;
        let failed = run.step::<String, cairn::Error>("x", || Err(cairn::Error::InvalidInput("a\0b".into())));
        assert!(failed.is_err());
        let ran = Cell::new(false);
        let err = run.step_with_version("y", "v\0x", || { ran.set(true); Ok::<_, cairn::Error>(1i64) }).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("NUL"), "{err}");
        assert!(!ran.get(), "refused before running");
        run.fail("gave up: a\0b")?;
        let info = f.store.runs().get("r")?.expect("the run");
        assert_eq!(info.error.as_deref(), Some("gave up: a\u{FFFD}b"));
        assert_eq!(info.steps[0].error.as_deref(), Some("invalid input: a\u{FFFD}b"));
        Ok(())
    }

    /// Run ids and step names are validated, and '#' is kept for repeated steps.
    fn bad_names_are_refused(f) {
        assert_eq!(f.store.run("").unwrap_err().kind(), ErrorKind::InvalidInput);
        let mut run = f.store.run_with("r", manual())?;
        let err = run.step("a#2", || Ok::<_, cairn::Error>(1i64)).unwrap_err();
        assert!(err.to_string().contains("'#'"), "{err}");
        assert_eq!(f.store.run_with("x", RunOptions::new().lease(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidInput);
        Ok(())
    }
}

/// A run held for a process that died is taken over at once on the same host, without
/// waiting for its lease; one held for a live process can be rejoined by that process's next
/// step (the CLI's case), keeping the attempt and its token.
#[test]
fn a_dead_holders_run_is_taken_at_once_and_a_live_one_can_be_rejoined(
) -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, _path, store, _clock) = crate::temp_store();
    let mut shell = std::process::Command::new("sleep").arg("30").spawn()?;
    let for_shell = manual().holder_pid(shell.id()).lease(Duration::from_secs(3600));
    let run = store.run_with("deploy", for_shell.clone())?;
    let token = run.token();
    run.detach()?;
    assert_eq!(store.run_with("deploy", manual()).unwrap_err().kind(), ErrorKind::RunHeld);
    let joined = store.run_with("deploy", for_shell.clone().rejoin(true))?;
    assert_eq!((joined.token(), joined.attempt()), (token, 1), "the same attempt");
    joined.detach()?;
    shell.kill()?;
    shell.wait()?;
    let taken = store.run_with("deploy", manual())?;
    assert_eq!(
        (taken.attempt(), taken.token()),
        (2, token + 1),
        "taken over at once, the lease of an hour notwithstanding"
    );
    let _ = Engine::Sqlite;
    Ok(())
}

/// Joining a finished run to replay it is a read: it works on a store opened read-only (no
/// write transaction, so no lock, commit or fsync per replaying process, as a memo replay).
#[test]
fn a_finished_run_replays_from_a_read_only_store() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, path, store, _clock) = crate::temp_store();
    let mut run = store.run_with("r", manual())?;
    run.step("a", || Ok::<_, cairn::Error>(7i64))?;
    run.finish()?;
    let reader = cairn::Options::new().read_only(true).open(&path)?;
    let mut again = reader.run_with("r", manual())?;
    assert!(again.is_finished());
    assert_eq!(again.step("a", || -> Result<i64, cairn::Error> { panic!("replayed, not run") })?, 7);
    let held = reader.take_run_for_step("r", &manual(), "a")?;
    assert_eq!(reader.replay_step::<i64>(&held, "a", "")?, Some(7), "one statement, read-only too");
    assert_eq!(
        reader.run_with("s", manual()).unwrap_err().kind(),
        ErrorKind::ReadOnly,
        "a new run is a write"
    );
    Ok(())
}

/// A run asked to be held for a process that is not running is refused at once, saying what
/// to give instead, and nothing is taken.
#[test]
fn a_run_held_for_a_pid_that_does_not_run_is_refused_saying_what_to_give(
) -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, _path, store, _clock) = crate::temp_store();
    let mut gone = std::process::Command::new("true").spawn()?;
    let pid = gone.id();
    gone.wait()?;
    let err = store.run_with("deploy", manual().holder_pid(pid)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains(&format!("no process with pid {pid}")) && err.to_string().contains("($$)"),
        "{err}"
    );
    assert!(store.runs().get("deploy")?.is_none(), "nothing taken");
    Ok(())
}
