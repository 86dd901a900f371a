//! Priority and groups (issue 20), on both engines: the order items are handed out in, and
//! that every write ending a group's item lets the group's next one go.

use std::time::Duration;

use cairn::{Batch, Claim, ErrorKind, ItemState, Ledger, QueueItem, PRIORITY_RANGE};

use crate::contract;

const LEASE: Duration = Duration::from_secs(60);

fn next(l: &Ledger<'_>, worker: &str) -> Result<Option<Claim>, cairn::Error> {
    l.claim_next(worker, LEASE)
}

fn next_id(l: &Ledger<'_>, worker: &str) -> Result<Option<String>, cairn::Error> {
    Ok(next(l, worker)?.map(|c| c.id().to_owned()))
}

/// Claims (and completes) everything due, in order: the ids as handed out.
fn drain(l: &Ledger<'_>) -> Result<Vec<String>, cairn::Error> {
    let mut ids = Vec::new();
    while let Some(c) = next(l, "w")? {
        ids.push(c.id().to_owned());
        l.complete(&c)?;
    }
    Ok(ids)
}

fn g(id: &str, group: &str) -> QueueItem {
    QueueItem::new(id).group(group)
}

contract! {
    /// Higher priorities first; equal ones by due time, then in queue order; negative ones
    /// after the default.
    fn higher_priorities_are_handed_out_first_and_equal_ones_by_due_then_queue_order(f) {
        let l = f.store.ledger("q");
        l.enqueue_items([
            QueueItem::new("low").priority(-5),
            QueueItem::new("a0"),
            QueueItem::new("hi-late").priority(7).delay(Duration::from_millis(10)),
            QueueItem::new("hi").priority(7),
            QueueItem::new("b0"),
            QueueItem::new("top").priority(1000),
            QueueItem::new("hi2").priority(7),
        ])?;
        f.clock.advance(Duration::from_millis(10));
        assert_eq!(drain(&l)?, ["top", "hi", "hi2", "hi-late", "a0", "b0", "low"]);
        // And the same with claims in batches.
        l.enqueue_items([QueueItem::new("x"), QueueItem::new("y").priority(2), QueueItem::new("z").priority(1)])?;
        let batch = l.claim_next_many("w", LEASE, 3)?;
        assert_eq!(batch.iter().map(Claim::id).collect::<Vec<_>>(), ["y", "z", "x"]);
        Ok(())
    }

    /// A high priority does not make an item due: it waits for its time, and the lower ones
    /// due meanwhile go first.
    fn a_delayed_high_priority_item_is_not_handed_out_before_it_is_due(f) {
        let l = f.store.ledger("q");
        l.enqueue_items([QueueItem::new("later").priority(100).delay(Duration::from_secs(30)), QueueItem::new("now")])?;
        assert_eq!(next_id(&l, "w")?.as_deref(), Some("now"));
        assert_eq!(next_id(&l, "w")?, None, "not due yet, whatever its priority");
        f.clock.advance(Duration::from_secs(30));
        assert_eq!(next_id(&l, "w")?.as_deref(), Some("later"));
        Ok(())
    }

    /// A failed, released or lapsed item keeps its priority when it is queued again.
    fn an_item_queued_again_keeps_its_priority(f) {
        let l = f.store.ledger("q").retry_delay(Duration::from_millis(1));
        l.enqueue_items([QueueItem::new("hi").priority(5)])?;
        let c = next(&l, "w")?.expect("queued");
        l.fail_claim(&c, "boom")?;
        l.enqueue(["plain"])?;
        f.clock.advance(Duration::from_secs(1));
        let c = next(&l, "w")?.expect("retried");
        assert_eq!(c.id(), "hi", "a retry keeps its priority");
        l.release(&c)?;
        let c = next(&l, "w")?.expect("released");
        assert_eq!(c.id(), "hi", "a release keeps its priority");
        f.clock.advance(LEASE);
        l.enqueue_items([QueueItem::new("mid").priority(3)])?;
        assert_eq!(next_id(&l, "w2")?.as_deref(), Some("hi"), "a lapsed claim is taken over first");
        assert_eq!(next_id(&l, "w")?.as_deref(), Some("mid"));
        Ok(())
    }

    /// A priority out of range is refused with the range in the message, and nothing of the
    /// batch is queued.
    fn a_priority_out_of_range_or_an_empty_group_is_refused_and_changes_nothing(f) {
        let l = f.store.ledger("q");
        for bad in [PRIORITY_RANGE.end() + 1, PRIORITY_RANGE.start() - 1, i64::MAX] {
            let err = l.enqueue_items([QueueItem::new("ok"), QueueItem::new("bad").priority(bad)]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains("-1000 to 1000"), "{err}");
        }
        let err = l.enqueue_items([QueueItem::new("ok"), g("bad", "")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert_eq!(l.counts()?.pending, 0, "nothing queued");
        l.enqueue_items([QueueItem::new("edge").priority(*PRIORITY_RANGE.start())])?;
        assert_eq!(l.counts()?.pending, 1);
        Ok(())
    }

    /// One item of a group at a time, in queue order, while other groups and ungrouped items
    /// go on; the items waiting count and list as pending.
    fn a_group_hands_out_one_item_at_a_time_in_queue_order_beside_other_groups(f) {
        let l = f.store.ledger("q");
        l.enqueue_items([
            g("a1", "alice").priority(5),
            g("a2", "alice").priority(9),
            g("b1", "bob"),
            QueueItem::new("free"),
            g("a3", "alice"),
            g("b2", "bob"),
        ])?;
        assert_eq!(l.counts()?.pending, 6, "waiting items count as pending");
        assert_eq!(l.item("a3")?.expect("queued").state, ItemState::Pending);
        assert_eq!(l.list(Some(ItemState::Pending), None, 10)?.len(), 6);
        let a1 = next(&l, "w1")?.expect("a1");
        assert_eq!(a1.id(), "a1", "the group's first, by its priority among heads");
        let b1 = next(&l, "w2")?.expect("b1");
        assert_eq!(b1.id(), "b1");
        assert_eq!(next_id(&l, "w3")?.as_deref(), Some("free"));
        assert_eq!(next_id(&l, "w4")?, None, "a2 and b2 wait behind a1 and b1");
        assert!(l.claim("a2", "w4", LEASE)?.is_none(), "not claimable by id either");
        l.complete(&b1)?;
        assert_eq!(next_id(&l, "w4")?.as_deref(), Some("b2"));
        l.complete(&a1)?;
        let a2 = next(&l, "w5")?.expect("a2");
        assert_eq!(a2.id(), "a2", "in queue order within the group, whatever the priorities");
        assert_eq!(next_id(&l, "w6")?, None);
        l.complete(&a2)?;
        assert_eq!(next_id(&l, "w6")?.as_deref(), Some("a3"));
        Ok(())
    }

    /// Every way an item leaves its group lets the next one go: completed, given up (by a
    /// failure or by losing its last lease), marked done, deleted. A failure to be retried, a
    /// release and a takeover keep the item first in its group.
    fn every_write_that_ends_a_groups_item_lets_the_next_one_go(f) {
        let l = f.store.ledger("q").max_attempts(2).retry_delay(Duration::from_millis(1));
        let ids: Vec<String> = (1..=8).map(|i| format!("i{i}")).collect();
        l.enqueue_items(ids.iter().map(|id| g(id, "k")))?;
        // Completed.
        let c = next(&l, "w")?.expect("i1");
        l.complete(&c)?;
        // Failed for a retry: stays first; given up on the second failure: the next goes.
        let c = next(&l, "w")?.expect("i2");
        assert_eq!(c.id(), "i2");
        assert_eq!(l.fail_claim(&c, "x")?, ItemState::Pending);
        f.clock.advance(Duration::from_secs(1));
        let c = next(&l, "w")?.expect("i2 again");
        assert_eq!(c.id(), "i2", "a retry stays first in its group");
        assert_eq!(l.fail_claim(&c, "x")?, ItemState::Failed);
        // Released: stays first.
        let c = next(&l, "w")?.expect("i3");
        assert_eq!(c.id(), "i3");
        l.release(&c)?;
        let c = next(&l, "w")?.expect("i3 again");
        assert_eq!(c.id(), "i3", "a released item stays first in its group");
        // Its lease lapses: another worker takes it over, and the group stays held.
        f.clock.advance(LEASE);
        let c = next(&l, "w2")?.expect("taken over");
        assert_eq!((c.id(), c.attempt()), ("i3", 2));
        assert_eq!(next_id(&l, "w3")?, None, "the takeover holds the group");
        // Lapses again at its last attempt: given up by the next claim, which gets i4.
        f.clock.advance(LEASE);
        assert_eq!(next_id(&l, "w3")?.as_deref(), Some("i4"));
        assert_eq!(l.item("i3")?.expect("known").state, ItemState::Failed);
        // Marked done without a claim while claimed.
        assert!(l.mark_done("i4")?);
        // Deleted while pending (not claimed).
        assert!(l.delete("i5")?);
        // Failed without a claim until given up.
        assert_eq!(l.fail("i6", "x")?, ItemState::Pending);
        assert_eq!(l.fail("i6", "x")?, ItemState::Failed);
        assert_eq!(next_id(&l, "w")?.as_deref(), Some("i7"));
        // A given-up item retried re-enters the group at its back.
        assert_eq!(l.retry(["i2"])?, 1);
        assert_eq!(next_id(&l, "w")?, None, "i7 holds the group");
        f.clock.advance(LEASE);
        f.clock.advance(LEASE); // i7 lapses twice: given up on the way
        let c = next(&l, "w")?.expect("i7 taken over");
        assert_eq!(c.id(), "i7");
        f.clock.advance(LEASE);
        assert_eq!(next_id(&l, "w")?.as_deref(), Some("i8"));
        assert!(l.mark_done("i8")?);
        assert_eq!(next_id(&l, "w")?.as_deref(), Some("i2"), "the retried item, last in its group");
        Ok(())
    }

    /// A waiting item (not its group's first) marked done, failed or deleted stays out of the
    /// way: the group's first still holds it, and the rest keep their order.
    fn writes_to_a_waiting_item_leave_its_group_in_order(f) {
        let l = f.store.ledger("q").max_attempts(3);
        l.enqueue_items([g("1", "k"), g("2", "k"), g("3", "k"), g("4", "k"), g("5", "k")])?;
        assert!(l.mark_done("2")?);
        assert!(l.delete("3")?);
        assert_eq!(l.fail("4", "x")?, ItemState::Pending, "still pending (waiting)");
        f.clock.advance(Duration::from_secs(3600)); // past its backoff
        assert_eq!(drain(&l)?, ["1", "5", "4"], "4 went to the back of its group when it failed");
        Ok(())
    }

    /// Enqueued in separate calls, a group still hands out one at a time; items queued into a
    /// group whose items are all finished start it again.
    fn a_group_emptied_and_queued_into_again_starts_over(f) {
        let l = f.store.ledger("q");
        l.enqueue_items([g("a", "k")])?;
        l.enqueue_items([g("b", "k")])?;
        let a = next(&l, "w")?.expect("a");
        assert_eq!(next_id(&l, "w")?, None);
        l.complete(&a)?;
        assert_eq!(drain(&l)?, ["b"]);
        l.enqueue_items([g("c", "k"), g("d", "k")])?;
        assert_eq!(next_id(&l, "w")?.as_deref(), Some("c"));
        assert_eq!(next_id(&l, "w")?, None);
        Ok(())
    }

    /// Completing claims in a batch, and marking many done, each let their groups go on;
    /// batches of claims take one item per group.
    fn batch_writes_let_each_group_go_on(f) {
        let l = f.store.ledger("q");
        l.enqueue_items([g("a1", "a"), g("a2", "a"), g("b1", "b"), g("b2", "b"), g("c1", "c"), g("c2", "c")])?;
        let batch = l.claim_next_many("w", LEASE, 10)?;
        assert_eq!(batch.iter().map(Claim::id).collect::<Vec<_>>(), ["a1", "b1", "c1"]);
        assert_eq!(l.complete_many(&batch[..2])?, [true, true]);
        let batch2 = l.claim_next_many("w", LEASE, 10)?;
        assert_eq!(batch2.iter().map(Claim::id).collect::<Vec<_>>(), ["a2", "b2"]);
        assert_eq!(l.mark_done_many(["c1"])?, 1);
        assert_eq!(next_id(&l, "w")?.as_deref(), Some("c2"));
        Ok(())
    }

    /// Clearing and pruning leave nothing stuck: items queued after a clear start their group
    /// afresh.
    fn a_cleared_queue_starts_its_groups_afresh(f) {
        let l = f.store.ledger("q");
        l.enqueue_items([g("a", "k"), g("b", "k")])?;
        next(&l, "w")?.expect("a");
        l.clear()?;
        l.enqueue_items([g("c", "k")])?;
        assert_eq!(next_id(&l, "w")?.as_deref(), Some("c"));
        Ok(())
    }

    /// `cairn batch`'s enqueue takes a priority, a group, data and a delay; a priority out of
    /// range names its line and applies nothing.
    fn a_batch_queues_items_with_their_priority_and_group(f) {
        let batch = Batch::parse(
            r#"{"op":"enqueue","ns":"q","id":"a","group":"k"}
{"op":"enqueue","ns":"q","id":"b","group":"k","priority":9}
{"op":"enqueue","ns":"q","id":"c","priority":5,"data":{"x":1}}
{"op":"enqueue","ns":"q","id":"d","delay":"1h","priority":1000}"#
                .as_bytes(),
            "default",
        )?;
        assert_eq!(f.store.apply_batch(&batch)?, 4);
        let l = f.store.ledger("q");
        assert_eq!(drain(&l)?, ["c", "a", "b"], "d is not due; b waits for a, then goes first");
        let bad = Batch::parse(
            r#"{"op":"enqueue","ns":"q","id":"e"}
{"op":"enqueue","ns":"q","id":"f","priority":1001}"#
                .as_bytes(),
            "default",
        )?;
        let err = f.store.apply_batch(&bad).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(l.item("e")?.is_none(), "nothing applied");
        Ok(())
    }
}

contract! {
    /// Cancelling a group's claimed or pending head lets the group's next item in (its holder
    /// fenced); a cancelled waiting item is skipped; a cancelled item retried re-enters its
    /// group at the back; a paused queue hands no group's item out.
    fn cancel_pause_and_retry_keep_a_group_moving_in_order(f) {
        let l = f.store.ledger("q");
        l.enqueue_items([g("1", "k"), g("2", "k"), g("3", "k"), g("4", "k"), g("5", "k")])?;
        let c = next(&l, "w")?.expect("1");
        assert_eq!(c.id(), "1");
        assert!(l.cancel("1")?, "the claimed head");
        assert_eq!(l.complete(&c).unwrap_err().kind(), ErrorKind::LeaseLost, "its holder is fenced");
        assert!(l.cancel("3")?, "a waiting item");
        assert_eq!(l.item("3")?.expect("known").state, ItemState::Cancelled);
        assert!(l.cancel("2")?, "the pending head, before anyone claimed it");
        let c = next(&l, "w")?.expect("4");
        assert_eq!(c.id(), "4", "the group went on past every cancelled item");
        assert_eq!(next_id(&l, "w2")?, None, "4 holds the group");
        assert_eq!(l.retry(["1"])?, 1, "a cancelled item retried");
        l.pause(None)?;
        l.complete(&c)?;
        assert_eq!(next_id(&l, "w")?, None, "paused: 5 stays queued");
        l.resume()?;
        assert_eq!(drain(&l)?, ["5", "1"], "the retried item at the back of its group");
        assert!(l.wait_drained(Some(Duration::ZERO))?, "nothing left queued or claimed");
        Ok(())
    }
}
