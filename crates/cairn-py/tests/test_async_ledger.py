"""cairn.AsyncLedger and AsyncClaim: the async twins of test_ledger.py, test_ledger_loop.py and
test_ledger_policy.py, on both engines (same values, states and errors as the sync ledger)."""

from __future__ import annotations

import datetime
from typing import List, Union

import pytest

import cairn
from cairn.testing import ManualClock


async def test_async_filter_new_keeps_input_order_and_the_callers_own_objects(any_astore: cairn.AsyncStore) -> None:
    ledger = any_astore.ledger("l")
    assert await ledger.mark_done_many(["b", "7"]) == 2
    ids: List[Union[str, int]] = ["c", "b", 7, "a", 8]
    todo = await ledger.filter_new(ids)
    assert todo == ["c", "a", 8]
    assert todo[2] is ids[4]
    assert await ledger.filter_new(x for x in ["z", "b"]) == ["z"], "any iterable"
    assert await ledger.filter_new([]) == []


async def test_async_ints_are_ids_by_their_decimal_text(any_astore: cairn.AsyncStore) -> None:
    ledger = any_astore.ledger("l")
    assert await ledger.mark_done(42)
    assert await ledger.contains("42") and await ledger.contains(42)
    assert await ledger.is_done("42")
    assert not await ledger.contains(4.2)


async def test_async_failures_retry_then_give_up_after_max_attempts(any_astore: cairn.AsyncStore) -> None:
    ledger = any_astore.ledger("l", max_attempts=2)
    assert await ledger.fail("x", "first") is cairn.ItemState.PENDING
    assert await ledger.filter_new(["x"]) == ["x"], "a failed item still needs work"
    assert await ledger.fail("x", ValueError("second")) == "failed"
    assert await ledger.filter_new(["x"]) == [], "given up"
    item = await ledger.item("x")
    assert item is not None
    assert (item.state, item.attempts, item.error) == (cairn.ItemState.FAILED, 2, "ValueError: second")
    assert await ledger.counts() == cairn.LedgerCounts(pending=0, claimed=0, done=0, failed=1)
    await ledger.mark_done("y")
    assert await ledger.fail("y", "late") is cairn.ItemState.DONE, "a done item stays done"


async def test_async_results_are_kept_with_their_type_and_the_first_one_wins(any_astore: cairn.AsyncStore) -> None:
    ledger = any_astore.ledger("l")
    assert await ledger.mark_done("a", result={"rows": 3})
    assert not await ledger.mark_done("a", result={"rows": 4})
    assert await ledger.result("a") == {"rows": 3}
    assert await ledger.result("unknown", "none") == "none"
    item = await ledger.item("a")
    assert item is not None and item.result == {"rows": 3} and item.state is cairn.ItemState.DONE
    assert isinstance(item.updated_at, datetime.datetime) and item.updated_at.tzinfo is not None
    assert await ledger.item("never") is None


async def test_async_each_marks_an_id_done_only_when_its_loop_body_finished(any_astore: cairn.AsyncStore) -> None:
    ledger = any_astore.ledger("l")
    seen = []
    with pytest.raises(RuntimeError):
        async for id in ledger.each(["a", "b", "c"]):
            seen.append(id)
            if id == "b":
                raise RuntimeError("b fails")
    assert seen == ["a", "b"]
    assert await ledger.filter_new(["a", "b", "c"]) == ["b", "c"]
    assert [id async for id in ledger.each(["a", "b", "c"])] == ["b", "c"]
    assert await ledger.filter_new(["a", "b", "c"]) == []


async def test_async_claims_hand_each_queued_item_to_one_worker_in_order(any_astore: cairn.AsyncStore) -> None:
    ledger = any_astore.ledger("q")
    assert await ledger.enqueue(["1", "2", "3"]) == 3
    assert await ledger.enqueue(["2", "4"]) == 1, "known ids are skipped"
    got = []
    while (claim := await ledger.claim_next(lease=60, worker="w")) is not None:
        async with claim:
            got.append(claim.id)
    assert got == ["1", "2", "3", "4"]
    assert (await ledger.counts()).done == 4


async def test_async_a_claim_block_that_raises_records_the_failure_and_the_item_comes_back_after_its_backoff(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    ledger = any_aclocked.ledger("q", max_attempts=3)
    await ledger.enqueue(["job"])
    claim = await ledger.claim_next(lease=30)
    assert claim is not None
    with pytest.raises(KeyError):
        async with claim:
            raise KeyError("missing field")
    item = await ledger.item("job")
    assert item is not None
    assert item.state is cairn.ItemState.PENDING and item.attempts == 1
    assert "KeyError" in (item.error or "")
    assert await ledger.claim_next(lease=30) is None, "waiting out its backoff (at most the 1 s default)"
    clock.advance(1)
    again = await ledger.claim_next(lease=30)
    assert again is not None and again.id == "job"


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
async def test_async_ctrl_c_or_exit_in_a_claim_block_gives_the_item_back_without_spending_an_attempt(
    any_astore: cairn.AsyncStore, stop: type
) -> None:
    q = any_astore.ledger("q", max_attempts=3)
    await q.enqueue(["a"])
    for _ in range(5):
        claim = await q.claim_next(worker="w")
        assert claim is not None and (claim.id, claim.attempt) == ("a", 1)
        with pytest.raises(stop):
            async with claim:
                raise stop()
        item = await q.item("a")
        assert item is not None and (item.state, item.attempts, item.worker) == (cairn.ItemState.PENDING, 0, None)
    claim = await q.claim_next(worker="w")
    assert claim is not None
    async with claim:
        pass
    assert await q.is_done("a")


async def test_async_release_gives_a_claim_back_and_refuses_one_taken_over(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    q = any_aclocked.ledger("q")
    await q.enqueue(["a"])
    slow = await q.claim_next(lease=60, worker="slow")
    assert slow is not None
    clock.advance(120)
    fast = await q.claim_next(lease=60, worker="fast")
    assert fast is not None and fast.id == "a"
    with pytest.raises(cairn.LeaseLostError):
        await slow.release()
    await fast.release()
    again = await q.claim_next(lease=60, worker="w")
    assert again is not None and again.id == "a" and again.attempt == 2, "the lost claim counted, the release not"


async def test_async_a_claim_completed_inside_its_block_is_not_completed_twice(any_astore: cairn.AsyncStore) -> None:
    ledger = any_astore.ledger("q")
    await ledger.enqueue(["a"])
    claim = await ledger.claim_next()
    assert claim is not None
    async with claim:
        await claim.complete(result=7)
    assert await ledger.result("a") == 7


async def test_async_a_lease_that_ran_out_is_claimed_by_the_next_worker_and_extend_keeps_it(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    ledger = any_aclocked.ledger("q")
    await ledger.enqueue(["a", "b"])
    a = await ledger.claim("a", lease=10, worker="w1")
    assert a is not None and a.worker == "w1"
    assert await ledger.claim("a", lease=10, worker="w2") is None, "held"
    clock.advance(8)
    await a.extend(10)
    clock.advance(8)
    assert await ledger.claim("a", lease=10, worker="w2") is None, "extended"
    assert a.lease_until == datetime.datetime.fromtimestamp(clock.now() + 2, tz=datetime.timezone.utc)
    clock.advance(3)
    b = await ledger.claim("a", lease=10, worker="w2")
    assert b is not None and b.token > a.token
    with pytest.raises(cairn.LeaseLostError):
        await a.extend(10)
    held = await ledger.held_claim("a", "w2")
    assert held is not None and held.token == b.token
    assert await ledger.held_claim("a", "w1") is None


async def test_async_claims_need_a_positive_lease(any_astore: cairn.AsyncStore) -> None:
    ledger = any_astore.ledger("q")
    await ledger.enqueue(["a"])
    with pytest.raises(cairn.InvalidInputError, match="lease"):
        await ledger.claim_next(lease=0)
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        await ledger.claim_next(lease=-5)
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        await ledger.claim_next(lease=-5, wait=1)
    assert (await ledger.counts()).claimed == 0


async def test_async_list_pages_through_items_by_state(any_astore: cairn.AsyncStore) -> None:
    ledger = any_astore.ledger("l")
    await ledger.mark_done_many(["a", "b", "c"])
    await ledger.fail("d", "no")
    assert [i.id for i in await ledger.list(limit=2)] == ["a", "b"]
    assert [i.id for i in await ledger.list(after="b")] == ["c", "d"]
    assert [i.id for i in await ledger.list(state="pending")] == ["d"]
    assert [i.id for i in await ledger.list(state=cairn.ItemState.DONE)] == ["a", "b", "c"]
    with pytest.raises(ValueError):
        await ledger.list(state="finished")
    assert await ledger.delete("a") and not await ledger.delete("a")
    assert await ledger.clear() == 3
    assert await any_astore.ledger_namespaces() == []


async def test_async_complete_many_fences_each_claim_and_settles_them(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    ledger = any_aclocked.ledger("q")
    await ledger.enqueue(["a", "b", "c"])
    stale = await ledger.claim_next(lease=5, worker="w0")
    assert stale is not None
    clock.advance(6)
    batch = await ledger.claim_next_many(3, lease=60, worker="w1")
    assert [c.id for c in batch] == ["a", "b", "c"], "the lapsed claim is taken over first"
    assert await ledger.complete_many([stale, *batch]) == [False, True, True, True]
    assert (await ledger.counts()).done == 3
    async with stale:
        pass  # settled by complete_many: leaving the block does not complete it again
    assert await ledger.complete_many([]) == []
    with pytest.raises(TypeError):
        await ledger.complete_many(["a"])  # type: ignore[list-item]


async def test_async_claim_next_many_hands_out_a_batch_in_queue_order(any_astore: cairn.AsyncStore) -> None:
    ledger = any_astore.ledger("q")
    await ledger.enqueue(["a", "b", "c"])
    batch = await ledger.claim_next_many(2, lease=60, worker="w")
    assert [c.id for c in batch] == ["a", "b"]
    assert [c.id for c in await ledger.claim_next_many(5, worker="w2")] == ["c"]
    assert await ledger.claim_next_many(5) == []
    for c in batch:
        async with c:
            pass
    assert (await ledger.counts()).done == 2
    with pytest.raises(cairn.InvalidInputError, match="n is -1"):
        await ledger.claim_next_many(-1)


# ---- the ledger as a collection, and the worker loop (test_ledger_loop.py) -----------------


async def test_async_len_counts_every_item_and_iteration_yields_the_ids_in_order(any_astore: cairn.AsyncStore) -> None:
    ledger = any_astore.ledger("l")
    assert await ledger.len() == 0 and [i async for i in ledger] == []
    ids = [f"id-{i:04}" for i in range(1203)]
    await ledger.enqueue(ids[:1000])
    await ledger.mark_done_many(ids[1000:])
    await ledger.fail("id-0001", "boom")
    assert await ledger.len() == 1203
    assert [i async for i in ledger] == ids, "paged through, in id order"


async def test_async_claims_settles_each_item_and_an_exception_does_not_end_the_loop(
    any_astore: cairn.AsyncStore,
) -> None:
    q = any_astore.ledger("q", max_attempts=1)
    await q.enqueue(["a", "b", "c", "d"])
    seen = []
    async for claim in q.claims(lease=60, worker="w"):
        seen.append(claim.id)
        if claim.id == "d":
            continue  # settled without `async with`: completed when the loop moves on
        async with claim:
            if claim.id == "b":
                raise ValueError("bad input")
    assert seen == ["a", "b", "c", "d"]
    assert await q.counts() == cairn.LedgerCounts(pending=0, claimed=0, done=3, failed=1)
    failed = await q.item("b")
    assert failed is not None and failed.error == "ValueError: bad input"


async def test_async_claims_ending_on_an_unsettled_claim_records_a_failure(any_astore: cairn.AsyncStore) -> None:
    q = any_astore.ledger("q")
    await q.enqueue(["a", "b"])
    loop = q.claims(worker="w")
    async for claim in loop:
        break
    await loop.aclose()  # what the loop's finaliser does soon after a `break`
    item = await q.item("a")
    assert item is not None and item.state is cairn.ItemState.PENDING and item.attempts == 1
    assert item.error == "the worker loop ended before the item was settled"
    with pytest.raises(KeyboardInterrupt):
        async for claim in q.claims(worker="w"):
            async with claim:
                raise KeyboardInterrupt
    b = await q.item("b")
    assert b is not None and b.state is cairn.ItemState.PENDING and b.attempts == 0, "released, no attempt spent"


async def test_async_take_on_an_empty_queue_says_nothing_is_due(any_astore: cairn.AsyncStore) -> None:
    q = any_astore.ledger("jobs")
    with pytest.raises(cairn.NothingDueError, match="nothing is due in ledger 'jobs'") as err:
        async with await q.take(lease=60):
            pytest.fail("the body ran without a claim")
    assert isinstance(err.value, LookupError) and isinstance(err.value, cairn.Error)
    await q.enqueue_items([cairn.QueueItem("later", delay="1h")])
    with pytest.raises(cairn.NothingDueError):
        await q.take()
    await q.enqueue(["now"])
    async with await q.take(lease=60) as claim:
        assert claim.id == "now"
    assert await q.is_done("now")
    assert await q.claim_next() is None


async def test_async_integers_out_of_range_are_invalid_input_or_clamped(astore: cairn.AsyncStore) -> None:
    with pytest.raises(cairn.InvalidInputError, match="max_attempts is -1"):
        astore.ledger("l", max_attempts=-1)
    with pytest.raises(TypeError):
        astore.ledger("l", max_attempts="3")  # type: ignore[arg-type]
    ledger = astore.ledger("l")
    await ledger.enqueue(["a"])
    assert [i.id for i in await ledger.list(limit=2**70)] == ["a"], "a huge limit is no limit"
    assert [c.id for c in await ledger.claim_next_many(2**40, worker="w")] == ["a"]
    with pytest.raises(cairn.InvalidInputError, match="limit is -1"):
        await ledger.list(limit=-1)
    with pytest.raises(cairn.InvalidInputError, match="an id must not be empty"):
        await ledger.enqueue([""])


# ---- the namespace's policy (test_ledger_policy.py) ------------------------------------------


async def test_async_the_policy_given_to_store_ledger_holds_inside_a_transaction(any_astore: cairn.AsyncStore) -> None:
    queue = any_astore.ledger("q", max_attempts=10)
    await queue.enqueue(["poison"])
    for _ in range(9):
        async with any_astore.transaction() as tx:
            assert await tx.ledger("q").fail("poison", "boom") == cairn.ItemState.PENDING
    async with any_astore.transaction() as tx:
        assert await tx.ledger("q").fail("poison", "boom") == cairn.ItemState.FAILED
    assert await any_astore.ledger("q").max_attempts() == 10
    assert await any_astore.ledger("q").policy() == cairn.LedgerPolicy(max_attempts=10, retry_delay=None)


async def test_async_a_handle_without_settings_keeps_the_stored_policy_and_set_policy_changes_it(
    any_astore: cairn.AsyncStore,
) -> None:
    await any_astore.ledger("q", max_attempts=5, retry_delay="30s").policy()  # kept at its first call
    plain = any_astore.ledger("q")
    assert (await plain.max_attempts(), await plain.retry_delay()) == (5, 30.0)
    await plain.set_policy(max_attempts=None, retry_delay=None)
    assert await plain.policy() == cairn.LedgerPolicy(max_attempts=None, retry_delay=None)
    assert (await plain.max_attempts(), await plain.retry_delay()) == (
        cairn._cairn.DEFAULT_MAX_ATTEMPTS,
        cairn._cairn.DEFAULT_RETRY_DELAY,
    )


async def test_async_bad_retry_delays_are_refused_when_the_handle_is_made(any_astore: cairn.AsyncStore) -> None:
    assert await any_astore.ledger("q").retry_delay() == 1.0
    async with any_astore.transaction() as tx:
        assert await tx.ledger("q", retry_delay="2m").retry_delay() == 120.0
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        any_astore.ledger("q", retry_delay=-1)
    with pytest.raises(TypeError):
        any_astore.ledger("q", retry_delay=[1])  # type: ignore[arg-type]
    with pytest.raises(cairn.InvalidInputError):
        any_astore.ledger("q", retry_delay="soon")


async def test_a_ledger_made_before_the_store_opened_keeps_its_policy(path: str) -> None:
    store = cairn.AsyncStore(path)
    q = store.ledger("q", max_attempts=4)  # not open yet: made on the first call
    try:
        await q.enqueue(["a"])
        assert await q.policy() == cairn.LedgerPolicy(max_attempts=4, retry_delay=None)
    finally:
        await store.close()
    with cairn.Store(path) as s:
        assert s.ledger("q").max_attempts == 4


async def test_the_store_ledger_is_refused_inside_its_own_transaction(astore: cairn.AsyncStore) -> None:
    q = astore.ledger("q")
    await q.enqueue(["a"])
    async with astore.transaction() as tx:
        with pytest.raises(cairn.InvalidInputError, match="inside"):
            await q.claim_next(wait=1)
        with pytest.raises(cairn.InvalidInputError, match="inside"):
            await q.counts()
        claim = await tx.ledger("q").claim_next(worker="w")
        assert claim is not None and claim.id == "a"
        async with claim:
            pass
    assert await q.is_done("a")
