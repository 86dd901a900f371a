"""The ledger from Python: what is done, failures and retries, and claims with leases."""

from __future__ import annotations

import datetime

import pytest

import cairn
from cairn.testing import ManualClock


def test_filter_new_keeps_input_order_and_the_callers_own_objects(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("l")
    ledger.mark_done_many(["b", "7"])
    ids: list[str | int] = ["c", "b", 7, "a", 8]
    todo = ledger.filter_new(ids)
    assert todo == ["c", "a", 8]
    assert todo[2] is ids[4]
    assert ledger.filter_new(x for x in ["z", "b"]) == ["z"], "any iterable"
    assert ledger.filter_new([]) == []


def test_ints_are_ids_by_their_decimal_text(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("l")
    assert ledger.mark_done(42)
    assert "42" in ledger and 42 in ledger
    assert ledger.is_done("42")
    assert 4.2 not in ledger


def test_failures_retry_then_give_up_after_max_attempts(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("l", max_attempts=2)
    assert ledger.fail("x", "first") is cairn.ItemState.PENDING
    assert ledger.filter_new(["x"]) == ["x"], "a failed item still needs work"
    assert ledger.fail("x", ValueError("second")) == "failed"
    assert ledger.filter_new(["x"]) == [], "given up"
    item = ledger.item("x")
    assert item is not None
    assert (item.state, item.attempts, item.error) == (cairn.ItemState.FAILED, 2, "ValueError: second")
    assert ledger.counts() == cairn.LedgerCounts(pending=0, claimed=0, done=0, failed=1)
    ledger.mark_done("y")
    assert ledger.fail("y", "late") is cairn.ItemState.DONE, "a done item stays done"


def test_results_are_kept_with_their_type_and_the_first_one_wins(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("l")
    assert ledger.mark_done("a", result={"rows": 3})
    assert not ledger.mark_done("a", result={"rows": 4})
    assert ledger.result("a") == {"rows": 3}
    assert ledger.result("unknown", "none") == "none"
    item = ledger.item("a")
    assert item is not None and item.result == {"rows": 3} and item.state is cairn.ItemState.DONE
    assert isinstance(item.updated_at, datetime.datetime) and item.updated_at.tzinfo is not None
    assert ledger.item("never") is None


def test_each_marks_an_id_done_only_when_its_loop_body_finished(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("l")
    seen = []
    with pytest.raises(RuntimeError):
        for id in ledger.each(["a", "b", "c"]):
            seen.append(id)
            if id == "b":
                raise RuntimeError("b fails")
    assert seen == ["a", "b"]
    assert ledger.filter_new(["a", "b", "c"]) == ["b", "c"]
    assert list(ledger.each(["a", "b", "c"])) == ["b", "c"]
    assert ledger.filter_new(["a", "b", "c"]) == []


def test_claims_hand_each_queued_item_to_one_worker_in_order(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("q")
    assert ledger.enqueue(["1", "2", "3"]) == 3
    assert ledger.enqueue(["2", "4"]) == 1, "known ids are skipped"
    got = []
    while (claim := ledger.claim_next(lease=60, worker="w")) is not None:
        with claim:
            got.append(claim.id)
    assert got == ["1", "2", "3", "4"]
    assert ledger.counts().done == 4


def test_a_claim_block_that_raises_records_the_failure_and_the_item_comes_back_after_its_backoff(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    ledger = any_clocked.ledger("q", max_attempts=3)
    ledger.enqueue(["job"])
    claim = ledger.claim_next(lease=30)
    assert claim is not None
    with pytest.raises(KeyError):
        with claim:
            raise KeyError("missing field")
    item = ledger.item("job")
    assert item is not None
    assert item.state is cairn.ItemState.PENDING and item.attempts == 1
    assert "KeyError" in (item.error or "")
    assert ledger.claim_next(lease=30) is None, "waiting out its backoff (at most the 1 s default)"
    clock.advance(1)
    again = ledger.claim_next(lease=30)
    assert again is not None and again.id == "job"


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_ctrl_c_or_exit_in_a_claim_block_gives_the_item_back_without_spending_an_attempt(
    any_store: cairn.Store, stop: type[BaseException]
) -> None:
    """Issue 19.6: three Ctrl-Cs gave a good item up (each counted as a failed attempt)."""
    q = any_store.ledger("q", max_attempts=3)
    q.enqueue(["a"])
    for _ in range(5):
        claim = q.claim_next(worker="w")
        assert claim is not None and (claim.id, claim.attempt) == ("a", 1)
        with pytest.raises(stop):
            with claim:
                raise stop()
        item = q.item("a")
        assert item is not None and (item.state, item.attempts, item.worker) == (cairn.ItemState.PENDING, 0, None)
    claim = q.claim_next(worker="w")
    assert claim is not None
    with claim:
        pass
    assert q.is_done("a")


def test_release_gives_a_claim_back_and_refuses_one_taken_over(any_clocked: cairn.Store, clock: ManualClock) -> None:
    q = any_clocked.ledger("q")
    q.enqueue(["a"])
    slow = q.claim_next(lease=60, worker="slow")
    assert slow is not None
    clock.advance(120)
    fast = q.claim_next(lease=60, worker="fast")
    assert fast is not None and fast.id == "a"
    with pytest.raises(cairn.LeaseLostError):
        slow.release()
    fast.release()
    again = q.claim_next(lease=60, worker="w")
    assert again is not None and again.id == "a" and again.attempt == 2, "the lost claim counted, the release not"


def test_a_claim_completed_inside_its_block_is_not_completed_twice(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("q")
    ledger.enqueue(["a"])
    claim = ledger.claim_next()
    assert claim is not None
    with claim:
        claim.complete(result=7)
    assert ledger.result("a") == 7


def test_a_lease_that_ran_out_is_claimed_by_the_next_worker_and_extend_keeps_it(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    ledger = any_clocked.ledger("q")
    ledger.enqueue(["a", "b"])
    a = ledger.claim("a", lease=10, worker="w1")
    assert a is not None and a.worker == "w1"
    assert ledger.claim("a", lease=10, worker="w2") is None, "held"
    clock.advance(8)
    a.extend(10)
    clock.advance(8)
    assert ledger.claim("a", lease=10, worker="w2") is None, "extended"
    assert a.lease_until == datetime.datetime.fromtimestamp(clock.now() + 2, tz=datetime.timezone.utc)
    clock.advance(3)
    b = ledger.claim("a", lease=10, worker="w2")
    assert b is not None and b.token > a.token
    with pytest.raises(cairn.LeaseLostError):
        a.extend(10)
    held = ledger.held_claim("a", "w2")
    assert held is not None and held.token == b.token
    assert ledger.held_claim("a", "w1") is None


def test_claims_need_a_positive_lease(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("q")
    ledger.enqueue(["a"])
    with pytest.raises(cairn.InvalidInputError, match="lease"):
        ledger.claim_next(lease=0)
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        ledger.claim_next(lease=-5)


def test_list_pages_through_items_by_state(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("l")
    ledger.mark_done_many(["a", "b", "c"])
    ledger.fail("d", "no")
    assert [i.id for i in ledger.list(limit=2)] == ["a", "b"]
    assert [i.id for i in ledger.list(after="b")] == ["c", "d"]
    assert [i.id for i in ledger.list(state="pending")] == ["d"]
    assert [i.id for i in ledger.list(state=cairn.ItemState.DONE)] == ["a", "b", "c"]
    with pytest.raises(ValueError):
        ledger.list(state="finished")
    assert ledger.delete("a") and not ledger.delete("a")
    assert ledger.clear() == 3
    assert any_store.ledger_namespaces() == []


def test_complete_many_fences_each_claim_and_settles_them(any_clocked: cairn.Store, clock: ManualClock) -> None:
    ledger = any_clocked.ledger("q")
    ledger.enqueue(["a", "b", "c"])
    stale = ledger.claim_next(lease=5, worker="w0")
    assert stale is not None
    clock.advance(6)
    batch = ledger.claim_next_many(3, lease=60, worker="w1")
    assert [c.id for c in batch] == ["a", "b", "c"], "the lapsed claim is taken over first"
    assert ledger.complete_many([stale, *batch]) == [False, True, True, True]
    assert ledger.counts().done == 3
    with stale:
        pass  # settled by complete_many: leaving the block does not complete it again
    assert ledger.complete_many([]) == []
    with pytest.raises(TypeError):
        ledger.complete_many(["a"])  # type: ignore[list-item]


def test_claim_next_many_hands_out_a_batch_in_queue_order(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("q")
    ledger.enqueue(["a", "b", "c"])
    batch = ledger.claim_next_many(2, lease=60, worker="w")
    assert [c.id for c in batch] == ["a", "b"]
    assert [c.id for c in ledger.claim_next_many(5, worker="w2")] == ["c"]
    assert ledger.claim_next_many(5) == []
    for c in batch:
        with c:
            pass
    assert ledger.counts().done == 2
    with pytest.raises(cairn.InvalidInputError, match="n is -1"):
        ledger.claim_next_many(-1)
