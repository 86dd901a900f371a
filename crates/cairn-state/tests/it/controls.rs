//! Queue controls on every engine: cancel, snooze, pause and resume.

use std::time::Duration;

use cairn::{Clock, ErrorKind, ItemState, Pause, QueueItem};

use crate::contract;

const LEASE: Duration = Duration::from_secs(60);

contract! {
    fn a_cancelled_item_is_never_handed_out_whatever_state_it_was_in(f) {
        let l = f.store.ledger("q").max_attempts(1);
        l.enqueue_items([
            QueueItem::new("pending"),
            QueueItem::new("claimed"),
            QueueItem::new("failed"),
            QueueItem::new("delayed").delay(Duration::from_secs(30)),
            QueueItem::new("left"),
        ])?;
        let claimed = l.claim("claimed", "w1", LEASE)?.expect("free");
        let failing = l.claim("failed", "w1", LEASE)?.expect("free");
        assert_eq!(l.fail_claim(&failing, "boom")?, ItemState::Failed);
        assert_eq!(l.cancel_many(["pending", "claimed", "failed", "delayed"])?, 4);
        assert!(!l.cancel("pending")?, "cancelled already: no change");
        for id in ["pending", "claimed", "failed", "delayed"] {
            assert_eq!(l.item(id)?.expect("known").state, ItemState::Cancelled, "{id}");
            assert!(l.claim(id, "w2", LEASE)?.is_none(), "{id} is not claimable by id");
        }
        f.clock.advance(Duration::from_secs(120)); // the delay and the lease run out
        let next = l.claim_next_many("w2", LEASE, 10)?;
        assert_eq!(next.iter().map(|c| c.id()).collect::<Vec<_>>(), ["left"]);
        assert!(l.claim_next("w3", LEASE)?.is_none());
        let c = l.counts()?;
        assert_eq!((c.pending, c.claimed, c.done, c.failed, c.cancelled), (0, 1, 0, 0, 4));
        let listed = l.list(Some(ItemState::Cancelled), None, 10)?;
        assert_eq!(listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["claimed", "delayed", "failed", "pending"]);
        assert_eq!(l.filter_new(["pending", "left", "new"])?, ["left", "new"], "a cancelled item needs no work");
        assert_eq!(l.fail("pending", "late")?, ItemState::Cancelled, "a failure without a claim leaves it cancelled");
        drop(claimed);
        Ok(())
    }

    fn the_holder_of_a_cancelled_item_loses_its_claim(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a", "b", "c", "d"])?;
        let a = l.claim_next("w1", LEASE)?.expect("a");
        let b = l.claim_next("w1", LEASE)?.expect("b");
        let c = l.claim_next("w1", LEASE)?.expect("c");
        let d = l.claim_next("w1", LEASE)?.expect("d");
        let other = f.reopen();
        assert_eq!(other.ledger("q").cancel_many(["a", "b", "c", "d"])?, 4);
        assert_eq!(l.complete(&a).unwrap_err().kind(), ErrorKind::LeaseLost);
        assert_eq!(l.fail_claim(&b, "x").unwrap_err().kind(), ErrorKind::LeaseLost);
        assert_eq!(l.extend(&c, LEASE).unwrap_err().kind(), ErrorKind::LeaseLost);
        assert_eq!(l.release(&d).unwrap_err().kind(), ErrorKind::LeaseLost);
        assert_eq!(l.snooze(&d, LEASE).unwrap_err().kind(), ErrorKind::LeaseLost);
        assert_eq!(l.complete_many(std::slice::from_ref(&a))?, [false]);
        assert!(l.held_claim("a", "w1")?.is_none(), "a shell worker finds no claim to complete");
        for id in ["a", "b", "c", "d"] {
            assert_eq!(l.item(id)?.expect("known").state, ItemState::Cancelled, "{id}");
        }
        Ok(())
    }

    fn retry_brings_cancelled_items_back_to_the_queue(f) {
        let l = f.store.ledger("q").max_attempts(1);
        l.enqueue(["a", "b", "x"])?;
        let x = l.claim("x", "w", LEASE)?.expect("x");
        assert_eq!(l.fail_claim(&x, "boom")?, ItemState::Failed);
        let a = l.claim_next("w", LEASE)?.expect("a");
        l.cancel_many(["a", "b"])?;
        assert_eq!(l.retry_all_failed()?, 1, "only the given-up item: cancelled ones are named");
        assert_eq!(l.item("a")?.expect("known").state, ItemState::Cancelled);
        assert_eq!(l.retry(["a", "b"])?, 2);
        let ids: Vec<String> = l.claim_next_many("w2", LEASE, 10)?.iter().map(|c| c.id().to_owned()).collect();
        assert_eq!(ids, ["x", "a", "b"]);
        assert_eq!(l.complete(&a).unwrap_err().kind(), ErrorKind::LeaseLost, "the old claim stays fenced");
        Ok(())
    }

    fn cancelling_an_unknown_or_done_item_is_refused_and_changes_nothing(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a", "b"])?;
        l.mark_done("b")?;
        let err = l.cancel_many(["a", "nope"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("\"nope\""), "{err}");
        let err = l.cancel_many(["a", "b"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("done already"), "{err}");
        assert_eq!(l.item("a")?.expect("known").state, ItemState::Pending, "all or nothing");
        assert!(f.store.transaction(|tx| tx.ledger("q").cancel_many(["a", "nope"])).is_err());
        assert_eq!(l.item("a")?.expect("known").state, ItemState::Pending, "inside a transaction too");
        assert_eq!(l.counts()?.cancelled, 0);
        Ok(())
    }

    fn a_snoozed_item_comes_back_after_its_delay_with_its_attempts(f) {
        let l = f.store.ledger("q").retry_delay(Duration::ZERO);
        l.enqueue(["a", "b"])?;
        let a = l.claim_next("w1", LEASE)?.expect("a");
        l.fail_claim(&a, "flaky")?;
        let a = l.claim("a", "w1", LEASE)?.expect("a again");
        assert_eq!(a.attempt(), 2);
        l.snooze(&a, Duration::from_secs(600))?;
        assert_eq!(l.complete(&a).unwrap_err().kind(), ErrorKind::LeaseLost, "the claim ended");
        let item = l.item("a")?.expect("known");
        assert_eq!((item.state, item.attempts), (ItemState::Pending, 1));
        assert_eq!(item.due_millis, Some(f.clock.now_millis() + 600_000));
        let b = l.claim_next("w2", LEASE)?.expect("b first");
        assert_eq!(b.id(), "b");
        l.complete(&b)?;
        assert!(l.claim_next("w2", LEASE)?.is_none(), "a is not due yet");
        f.clock.advance(Duration::from_secs(600));
        let again = l.claim_next("w2", LEASE)?.expect("due");
        assert_eq!((again.id(), again.attempt()), ("a", 2));
        Ok(())
    }

    fn a_bad_snooze_is_refused_and_changes_nothing(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a"])?;
        let a = l.claim_next("w1", LEASE)?.expect("a");
        assert_eq!(l.snooze(&a, Duration::ZERO).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(l.item("a")?.expect("known").state, ItemState::Claimed);
        l.complete(&a)?;
        assert_eq!(l.snooze(&a, LEASE).unwrap_err().kind(), ErrorKind::LeaseLost, "done: no claim to snooze");
        assert_eq!(l.item("a")?.expect("known").state, ItemState::Done);
        Ok(())
    }

    fn a_paused_namespace_hands_nothing_out_until_resumed(f) {
        let l = f.store.ledger("q");
        let other = f.reopen();
        l.enqueue(["a", "b", "c"])?;
        let held = l.claim_next("w1", Duration::from_secs(10))?.expect("a");
        other.ledger("q").pause(None)?;
        assert_eq!(l.paused()?, Some(Pause::UntilResumed));
        assert!(l.claim_next("w2", LEASE)?.is_none());
        assert!(l.claim_next_many("w2", LEASE, 5)?.is_empty());
        assert!(l.claim("b", "w2", LEASE)?.is_none(), "nor by id");
        assert!(l.claim("a", "w1", LEASE)?.is_some(), "but a worker renews the claim it holds");
        assert!(f.store.ledger("other").claim_next("w2", LEASE)?.is_none(), "another namespace is not paused (and empty)");
        f.clock.advance(Duration::from_secs(3600)); // the claim on a runs out: still nothing
        assert!(l.claim_next("w2", LEASE)?.is_none(), "an expired claim is not taken over either");
        let c = l.counts()?;
        assert_eq!((c.pending, c.paused), (3, Some(Pause::UntilResumed)));
        assert!(other.ledger("q").resume()?);
        assert!(!l.resume()?, "not paused any more");
        assert_eq!(l.paused()?, None);
        assert_eq!(l.counts()?.paused, None);
        assert_eq!(l.claim_next("w2", LEASE)?.expect("the expired claim").id(), "a");
        drop(held);
        Ok(())
    }

    fn a_pause_with_an_end_lifts_itself_on_the_clock(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a", "b"])?;
        let now = f.clock.now_millis();
        l.pause(Some(now + 60_000))?;
        assert_eq!(l.paused()?, Some(Pause::Until(now + 60_000)));
        assert_eq!(l.counts()?.paused, Some(Pause::Until(now + 60_000)));
        assert!(l.claim_next("w", LEASE)?.is_none());
        f.clock.advance(Duration::from_secs(59));
        assert!(l.claim_next("w", LEASE)?.is_none());
        f.clock.advance(Duration::from_secs(1));
        assert_eq!(l.paused()?, None);
        assert_eq!(l.claim_next("w", LEASE)?.expect("a").id(), "a");
        l.pause_for(Duration::from_secs(30))?;
        assert!(l.claim("b", "w", LEASE)?.is_none());
        f.clock.advance(Duration::from_secs(30));
        assert_eq!(l.claim_next("w", LEASE)?.expect("b").id(), "b");
        Ok(())
    }

    fn a_bad_pause_is_refused_and_changes_nothing(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a"])?;
        let now = f.clock.now_millis();
        assert_eq!(l.pause(Some(now)).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(l.pause(Some(now - 1)).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(l.pause_for(Duration::ZERO).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(l.paused()?, None);
        assert!(l.claim_next("w", LEASE)?.is_some());
        Ok(())
    }

    fn pause_and_resume_keep_the_namespace_policy(f) {
        let l = f.store.ledger("q");
        l.set_policy(cairn::LedgerPolicy { max_attempts: Some(7), retry_delay: None })?;
        l.pause(None)?;
        l.resume()?;
        assert_eq!(l.policy()?.max_attempts, Some(7));
        l.set_policy(cairn::LedgerPolicy::default())?;
        Ok(())
    }

    fn a_batch_cancels_snoozes_pauses_and_resumes_all_or_nothing(f) {
        let l = f.store.ledger("q");
        l.enqueue(["a", "b", "c"])?;
        let b = l.claim("b", "w1", LEASE)?.expect("b");
        let ops = r#"{"op":"cancel","id":"a"}
{"op":"snooze","id":"b","worker":"w1","for":"10m"}
{"op":"pause","for":"1h"}"#;
        assert_eq!(f.store.apply_batch(&cairn::Batch::parse(ops.as_bytes(), "q")?)?, 3);
        assert_eq!(l.item("a")?.expect("known").state, ItemState::Cancelled);
        assert_eq!(l.complete(&b).unwrap_err().kind(), ErrorKind::LeaseLost, "snoozed: the claim ended");
        assert_eq!(l.item("b")?.expect("known").due_millis, Some(f.clock.now_millis() + 600_000));
        assert_eq!(l.paused()?, Some(Pause::Until(f.clock.now_millis() + 3_600_000)));
        // A line that fails (an unknown id) undoes the resume before it.
        let ops = "{\"op\":\"resume\"}\n{\"op\":\"cancel\",\"id\":\"nope\"}";
        let err = f.store.apply_batch(&cairn::Batch::parse(ops.as_bytes(), "q")?).unwrap_err();
        assert!(err.to_string().contains("batch line 2"), "{err}");
        assert!(l.paused()?.is_some());
        // A snooze of a claim not held fails the batch as a lost claim.
        let ops = "{\"op\":\"resume\"}\n{\"op\":\"snooze\",\"id\":\"c\",\"worker\":\"w9\",\"for\":\"1m\"}";
        let err = f.store.apply_batch(&cairn::Batch::parse(ops.as_bytes(), "q")?).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LeaseLost);
        assert!(l.paused()?.is_some());
        let ops = r#"{"op":"pause"}"#;
        f.store.apply_batch(&cairn::Batch::parse(ops.as_bytes(), "q")?)?;
        assert_eq!(l.paused()?, Some(Pause::UntilResumed));
        f.store.apply_batch(&cairn::Batch::parse(r#"{"op":"resume"}"#.as_bytes(), "q")?)?;
        assert_eq!(l.paused()?, None);
        Ok(())
    }
}
