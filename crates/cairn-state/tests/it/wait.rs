//! Waiting claims and waiting for a namespace to drain, on both engines: woken by another
//! handle's commit, by a delayed item coming due on the (manual) clock, and ending at the
//! timeout. No timing is asserted: a broken wake-up shows as the safety limit's failure.

use std::time::{Duration, Instant};

use cairn::{Clock, Error, ErrorKind, QueueItem};

use crate::contract;

const MIN: Duration = Duration::from_secs(60);

/// A `stop` for the waits that ends them after 30 s of real time, so that a waiter that is
/// never woken fails its test instead of hanging it.
fn safety() -> impl FnMut() -> bool {
    let started = Instant::now();
    move || started.elapsed() > Duration::from_secs(30)
}

contract! {
    fn a_waiting_claim_wakes_on_another_handles_enqueue(f) {
        let other = f.reopen();
        let producer = std::thread::spawn(move || -> Result<u64, Error> {
            std::thread::sleep(Duration::from_millis(50));
            other.ledger("q").enqueue(["a"])
        });
        // The manual clock stands still: only the other handle's commit can end this wait.
        let claim = f.store.ledger("q").claim_next_wait_or_stop("w1", MIN, Some(MIN), &mut safety())?;
        assert_eq!(producer.join().expect("producer")?, 1);
        assert_eq!(claim.expect("woken by the enqueue").id(), "a");
        Ok(())
    }

    fn a_waiting_claim_wakes_when_a_delayed_item_comes_due(f) {
        let l = f.store.ledger("q");
        l.enqueue_items([QueueItem::new("later").delay(Duration::from_secs(10))])?;
        let due = f.clock.now_millis() + 10_000;
        let clock = f.clock.clone();
        let mover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            clock.advance(Duration::from_secs(10));
        });
        let claim = l.claim_next_wait_or_stop("w1", MIN, Some(Duration::from_secs(3600)), &mut safety())?;
        mover.join().expect("mover");
        assert_eq!(claim.expect("due at its time").id(), "later");
        assert!(f.clock.now_millis() >= due, "not handed out before it was due");
        Ok(())
    }

    fn a_waiting_claim_gives_up_when_its_wait_passes(f) {
        let l = f.store.ledger("q");
        l.enqueue_items([QueueItem::new("tomorrow").delay(Duration::from_secs(86_400))])?;
        let clock = f.clock.clone();
        let mover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            clock.advance(Duration::from_secs(6));
        });
        let claim = l.claim_next_wait_or_stop("w1", MIN, Some(Duration::from_secs(5)), &mut safety())?;
        mover.join().expect("mover");
        assert!(claim.is_none());
        assert_eq!(l.counts()?.pending, 1, "the delayed item stays queued");
        // A zero wait is one attempt.
        assert!(l.claim_next_wait("w1", MIN, Duration::ZERO)?.is_none());
        Ok(())
    }

    fn wait_drained_is_true_after_the_last_completion_and_false_at_its_timeout(f) {
        let l = f.store.ledger("q");
        assert!(l.wait_drained(Some(Duration::ZERO))?, "an empty namespace is drained");
        l.enqueue(["a", "b"])?;
        assert!(!l.wait_drained(Some(Duration::ZERO))?, "two items queued");
        let worker = f.reopen();
        let handle = std::thread::spawn(move || -> Result<(), Error> {
            let q = worker.ledger("q");
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(20));
                let claim = q.claim_next("w1", MIN)?.expect("queued");
                q.complete(&claim)?;
            }
            Ok(())
        });
        assert!(l.wait_drained_or_stop(Some(MIN), &mut safety())?, "drained by the other handle");
        handle.join().expect("worker")?;
        assert_eq!(l.counts()?.done, 2);

        l.enqueue(["c"])?;
        let clock = f.clock.clone();
        let mover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            clock.advance(Duration::from_secs(2));
        });
        assert!(!l.wait_drained_or_stop(Some(Duration::from_secs(1)), &mut safety())?, "c is still queued");
        mover.join().expect("mover");
        Ok(())
    }

    fn a_waiting_claim_takes_over_a_claim_when_its_lease_runs_out(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a"])?;
        let first = l.holder(cairn::ClaimHolder::LeaseOnly).claim_next("w1", Duration::from_secs(5))?.expect("a");
        let clock = f.clock.clone();
        let mover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            clock.advance(Duration::from_secs(5));
        });
        let claim = l.claim_next_wait_or_stop("w2", MIN, Some(Duration::from_secs(3600)), &mut safety())?;
        mover.join().expect("mover");
        let claim = claim.expect("taken over at the lease's end");
        assert_eq!((claim.id(), claim.attempt()), ("a", 2));
        assert!(claim.token() > first.token());
        Ok(())
    }

    fn waiting_is_refused_inside_a_transaction(f) {
        let err = f.store.transaction(|tx| tx.ledger("q").claim_next_wait("w1", MIN, Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = f.store.transaction(|tx| tx.ledger("q").wait_drained(None)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = f.store.ledger("q").claim_next_wait("w1", Duration::ZERO, Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "a zero lease: {err}");
        Ok(())
    }
}

contract! {
    fn a_waiting_claim_takes_over_the_claim_of_a_process_that_died(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a"])?;
        let mut shell = std::process::Command::new("sleep").arg("3600").spawn().expect("spawn sleep");
        let pid = shell.id();
        let held = l.holder(cairn::ClaimHolder::Process(pid)).claim_next("w1", Duration::from_secs(3600));
        shell.kill().expect("kill");
        shell.wait().expect("reap");
        held?.expect("a");
        // Nothing is committed when a process dies, and the lease has an hour left: the waiter
        // finds the dead holder by looking again while items are claimed.
        let claim = l.claim_next_wait_or_stop("w2", MIN, Some(Duration::from_secs(3600)), &mut safety())?;
        assert_eq!(claim.expect("taken over").id(), "a");
        Ok(())
    }
}

contract! {
    fn the_earliest_due_item_wakes_the_waiter_whatever_its_priority(f) {
        let l = f.store.ledger("q");
        l.enqueue_items([
            QueueItem::new("soon").delay(Duration::from_secs(10)),
            QueueItem::new("late").delay(Duration::from_secs(3600)),
        ])?;
        // A higher priority on the later item: the queue index orders by priority first.
        f.raw_execute("UPDATE cairn_ledger SET priority = 5 WHERE id = 'late'");
        let clock = f.clock.clone();
        let mover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            clock.advance(Duration::from_secs(10));
        });
        let claim = l.claim_next_wait_or_stop("w1", MIN, Some(Duration::from_secs(7200)), &mut safety())?;
        mover.join().expect("mover");
        assert_eq!(claim.expect("woken at the first due time").id(), "soon");
        Ok(())
    }
}

#[test]
fn a_store_that_waited_still_removes_its_wal_when_closed() -> Result<(), Error> {
    let (_dir, path, store, _clock) = crate::temp_store();
    store.ledger("q").enqueue(["a"])?;
    let claim = store.ledger("q").claim_next("w", MIN)?.expect("a");
    store.ledger("q").complete(&claim)?;
    // Stopped after a few slices: the wait got as far as its watcher.
    let mut slices = 0;
    assert!(store
        .ledger("q")
        .claim_next_wait_or_stop("w", MIN, None, &mut || {
            slices += 1;
            slices > 2
        })?
        .is_none());
    drop(store);
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    assert!(!std::path::Path::new(&wal).exists(), "the watcher's connection closed first");
    Ok(())
}

contract! {
    fn a_bounded_wait_ends_in_real_time_though_the_manual_clock_stands_still(f) {
        let l = f.store.ledger("q");
        l.enqueue_items([QueueItem::new("tomorrow").delay(Duration::from_secs(86_400))])?;
        // Nobody moves the clock: the wait still ends.
        assert!(l.claim_next_wait_or_stop("w1", MIN, Some(Duration::from_millis(50)), &mut safety())?.is_none());
        assert!(!l.wait_drained_or_stop(Some(Duration::from_millis(50)), &mut safety())?);
        Ok(())
    }
}

contract! {
    fn a_waiting_claim_on_a_paused_queue_wakes_when_the_pause_ends(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a"])?;
        l.pause_for(Duration::from_secs(30))?;
        let pause_ends = f.clock.now_millis() + 30_000;
        let clock = f.clock.clone();
        let mover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            clock.advance(Duration::from_secs(30));
        });
        let claim = l.claim_next_wait_or_stop("w1", MIN, Some(Duration::from_secs(3600)), &mut safety())?;
        mover.join().expect("mover");
        assert_eq!(claim.expect("handed out once the pause ended").id(), "a");
        assert!(f.clock.now_millis() >= pause_ends, "nothing handed out while paused");
        Ok(())
    }

    fn a_waiting_claim_on_a_queue_paused_until_resumed_wakes_on_another_handles_resume(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a"])?;
        l.pause(None)?;
        let other = f.reopen();
        let resumer = std::thread::spawn(move || -> Result<bool, Error> {
            std::thread::sleep(Duration::from_millis(50));
            other.ledger("q").resume()
        });
        // The manual clock stands still: only the other handle's resume can end this wait.
        let claim = l.claim_next_wait_or_stop("w1", MIN, Some(MIN), &mut safety())?;
        assert!(resumer.join().expect("resumer")?, "it was paused");
        assert_eq!(claim.expect("woken by the resume").id(), "a");
        Ok(())
    }

    fn a_paused_queue_with_a_bounded_wait_hands_nothing_out_and_keeps_its_item(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a"])?;
        l.pause(None)?;
        assert!(l.claim_next_wait_or_stop("w1", MIN, Some(Duration::from_millis(50)), &mut safety())?.is_none());
        assert_eq!(l.counts()?.pending, 1);
        Ok(())
    }
}
