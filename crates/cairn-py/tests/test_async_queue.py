"""cairn.AsyncLedger as a work queue: the async twins of test_queue.py, test_queue_order.py and
test_controls.py, on both engines. Time is the manual clock's: nothing sleeps."""

from __future__ import annotations

import datetime
import subprocess
from typing import Any, Dict, List

import pytest

import cairn
from cairn.testing import ManualClock

UTC = datetime.timezone.utc
START = datetime.datetime(2020, 1, 1, tzinfo=UTC)  # the manual clock's default start


async def claim_ids(ledger: cairn.AsyncLedger) -> List[str]:
    """Claim everything claimable now; the ids in the order handed out."""
    out = []
    while (c := await ledger.claim_next(lease="1d", worker="w")) is not None:
        out.append(c.id)
    return out


async def drain(ledger: cairn.AsyncLedger) -> List[str]:
    """Claim and complete everything claimable now; the ids in the order handed out."""
    out = []
    while (c := await ledger.claim_next(lease="1d", worker="w")) is not None:
        out.append(c.id)
        await c.complete()
    return out


async def test_async_a_delayed_item_is_not_handed_out_before_it_is_due(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    q = any_aclocked.ledger("q")
    assert await q.enqueue_items([cairn.QueueItem("later", delay=60), cairn.QueueItem("now")]) == 2
    later = await q.item("later")
    assert later is not None and later.due == START + datetime.timedelta(seconds=60)
    assert await claim_ids(q) == ["now"]
    clock.advance(59.999)
    assert await claim_ids(q) == [], "not a millisecond early"
    clock.advance(0.001)
    assert await claim_ids(q) == ["later"]


async def test_async_not_before_and_delays_take_every_form(any_aclocked: cairn.AsyncStore, clock: ManualClock) -> None:
    q = any_aclocked.ledger("q")
    await q.enqueue_items(
        [
            cairn.QueueItem("dt", not_before=datetime.datetime(2020, 1, 1, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))),
            cairn.QueueItem("text", not_before="2020-01-01T00:00:30Z"),
            cairn.QueueItem("td", delay=datetime.timedelta(seconds=20)),
            cairn.QueueItem("str", delay="10s"),
            cairn.QueueItem("past", not_before="2019-12-31T23:00:00Z"),
        ]
    )
    due = {i.id: i.due for i in await q.list()}
    assert due == {
        "dt": START,
        "text": START + datetime.timedelta(seconds=30),
        "td": START + datetime.timedelta(seconds=20),
        "str": START + datetime.timedelta(seconds=10),
        "past": START - datetime.timedelta(hours=1),
    }
    assert await claim_ids(q) == ["past", "dt"], "handed out by due time first"
    clock.advance(30)
    assert await claim_ids(q) == ["str", "td", "text"]


async def test_async_enqueue_with_a_delay_holds_plain_ids_back_and_known_ids_are_skipped(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    q = any_aclocked.ledger("q")
    assert await q.enqueue(["a", "b"], delay="1m") == 2
    assert await q.enqueue_items([cairn.QueueItem("a", data="new data"), cairn.QueueItem("c")]) == 1
    assert await claim_ids(q) == ["c"]
    clock.advance(60)
    c = await q.claim_next(worker="w")
    assert c is not None and c.id == "a" and c.data is None, "the first queuing of a is kept"


@pytest.mark.parametrize(
    "data",
    ["text", 42, 2**70, 1.5, b"\x00\xff", bytearray(b"ba"), {"to": ["a@x"], "n": None}, [1, "two"], True],
    ids=repr,
)
async def test_async_data_comes_back_to_the_worker_with_its_type(any_astore: cairn.AsyncStore, data: Any) -> None:
    q = any_astore.ledger("q")
    await q.enqueue_items([cairn.QueueItem("job", data=data)])
    claim = await q.claim_next()
    assert claim is not None
    want = bytes(data) if isinstance(data, bytearray) else data
    assert claim.data == want and type(claim.data) is type(want)
    item = await q.item("job")
    assert item is not None and item.data == want and type(item.data) is type(want)


async def test_async_attempts_count_up_and_each_failure_doubles_the_backoff(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    q = any_aclocked.ledger("q", max_attempts=5, retry_delay=10)
    assert await q.retry_delay() == 10.0
    await q.enqueue_items([cairn.QueueItem("job", data={"page": 1})])
    for attempt in range(1, 5):
        claim = await q.claim_next(lease=60)
        assert claim is not None and claim.attempt == attempt and claim.data == {"page": 1}
        assert await claim.fail("timeout") is cairn.ItemState.PENDING
        item = await q.item("job")
        assert item is not None and item.due is not None and item.attempts == attempt
        wait = (item.due - datetime.datetime.fromtimestamp(clock.now(), UTC)).total_seconds()
        base = 10 * 2 ** (attempt - 1)
        assert base / 2 <= wait <= base
        clock.advance(wait - 0.001)
        assert await q.claim_next(lease=60) is None, "handed out before its backoff passed"
        clock.advance(0.001)
    last = await q.claim_next(lease=60)
    assert last is not None and last.attempt == 5
    assert await last.fail("timeout") is cairn.ItemState.FAILED
    assert await q.filter_new(["job"]) == []


async def test_async_a_zero_retry_delay_hands_a_failed_item_out_again_at_once(any_astore: cairn.AsyncStore) -> None:
    q = any_astore.ledger("q", retry_delay=0)
    await q.enqueue(["a"])
    first = await q.claim_next()
    assert first is not None
    with pytest.raises(ValueError):
        async with first:
            raise ValueError("boom")
    again = await q.claim_next()
    assert again is not None and again.id == "a" and again.attempt == 2


async def test_async_given_up_items_are_put_back_with_their_attempts_reset(any_astore: cairn.AsyncStore) -> None:
    q = any_astore.ledger("q", max_attempts=1)
    await q.enqueue(["a", "b", "c"])
    for _ in range(3):
        claim = await q.claim_next()
        assert claim is not None
        assert await claim.fail("upstream down") is cairn.ItemState.FAILED
    await q.mark_done("d")
    assert await q.retry(["a", "d", "unknown"]) == 1, "only given-up items"
    item = await q.item("a")
    assert item is not None and (item.state, item.attempts, item.error) == (cairn.ItemState.PENDING, 0, None)
    claim = await q.claim_next()
    assert claim is not None and claim.id == "a" and claim.attempt == 1
    assert await q.retry_all_failed() == 2
    assert await q.counts() == cairn.LedgerCounts(pending=2, claimed=1, done=1, failed=0)


async def test_async_prune_deletes_only_items_done_longer_ago(any_aclocked: cairn.AsyncStore, clock: ManualClock) -> None:
    q = any_aclocked.ledger("q")
    await q.mark_done("old")
    await q.fail("failing", "no")
    clock.advance("10d")
    await q.mark_done("recent")
    assert await q.prune_done("7d") == 1
    assert await q.filter_new(["old", "recent", "failing"]) == ["old", "failing"]
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        await q.prune_done(-1)


async def test_async_queue_operations_join_a_transaction_and_roll_back_with_it(any_astore: cairn.AsyncStore) -> None:
    with pytest.raises(RuntimeError):
        async with any_astore.transaction() as tx:
            assert await tx.ledger("q").enqueue_items([cairn.QueueItem("a", data=1)]) == 1
            raise RuntimeError("abort")
    assert await any_astore.ledger("q").item("a") is None
    async with any_astore.transaction() as tx:
        await tx.ledger("q").enqueue_items([cairn.QueueItem("a", data=1)])
        claim = await tx.ledger("q").claim_next()
        assert claim is not None and claim.data == 1
        await claim.complete("ok")
    assert await any_astore.ledger("q").result("a") == "ok"


async def test_async_a_cancelled_transaction_rolls_its_claims_back(astore: cairn.AsyncStore) -> None:
    import asyncio

    await astore.ledger("q").enqueue(["a"])
    inside = asyncio.Event()

    async def work() -> None:
        async with astore.transaction() as tx:
            claim = await tx.ledger("q").claim_next(worker="w")
            assert claim is not None
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(work())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    item = await astore.ledger("q").item("a")
    assert item is not None and (item.state, item.attempts) == (cairn.ItemState.PENDING, 0)


@pytest.mark.parametrize(
    "item, error, match",
    [
        (cairn.QueueItem("a", delay=1, not_before="2020-01-01T00:00:00Z"), cairn.InvalidInputError, "give one"),
        (cairn.QueueItem("a", not_before=datetime.datetime(2020, 1, 1)), cairn.InvalidInputError, "naive"),
        (cairn.QueueItem("a", data=object()), TypeError, "cannot store"),
        ("a", TypeError, "QueueItem"),
    ],
    ids=repr,
)
async def test_async_bad_queue_items_are_refused_before_anything_is_queued(
    astore: cairn.AsyncStore, item: Any, error: type, match: str
) -> None:
    q = astore.ledger("q")
    with pytest.raises(error, match=match):
        await q.enqueue_items([cairn.QueueItem("good"), item])
    assert await q.item("good") is None, "nothing of the batch was queued"


async def test_async_enqueue_refuses_one_str_for_its_ids(astore: cairn.AsyncStore) -> None:
    with pytest.raises(TypeError, match="not one str"):
        await astore.ledger("q").enqueue("abc", delay=1)


# ---- priority and groups (test_queue_order.py) -----------------------------------------------


async def test_async_higher_priorities_go_first_and_equal_ones_in_queue_order(any_aclocked: cairn.AsyncStore) -> None:
    q = any_aclocked.ledger("q")
    await q.enqueue(["a", "b"])
    await q.enqueue(["hi-1", "hi-2"], priority=5)
    await q.enqueue_items([cairn.QueueItem("top", priority=1000), cairn.QueueItem("low", priority=-1)])
    assert await drain(q) == ["top", "hi-1", "hi-2", "a", "b", "low"]


async def test_async_a_group_hands_out_one_item_at_a_time_in_queue_order(any_aclocked: cairn.AsyncStore) -> None:
    q = any_aclocked.ledger("q")
    await q.enqueue(["acme-1", "acme-2"], group="acme")
    await q.enqueue_items([cairn.QueueItem("bolt-1", group="bolt", priority=3)])
    first = await q.claim_next(lease="1m", worker="w1")
    second = await q.claim_next(lease="1m", worker="w2")
    assert first is not None and second is not None
    assert (first.id, second.id) == ("bolt-1", "acme-1")
    assert await q.claim_next(lease="1m", worker="w3") is None, "acme-2 waits for acme-1"
    await second.complete()
    assert await drain(q) == ["acme-2"]


async def test_async_a_priority_or_group_of_the_wrong_type_is_refused(any_aclocked: cairn.AsyncStore) -> None:
    q = any_aclocked.ledger("q")
    with pytest.raises(cairn.InvalidInputError, match="-1000 to 1000"):
        await q.enqueue_items([cairn.QueueItem("ok"), cairn.QueueItem("bad", priority=1001)])
    with pytest.raises(TypeError, match="priority must be an int"):
        await q.enqueue(["a"], priority=True)
    with pytest.raises(TypeError, match="group must be a str"):
        await q.enqueue(["a"], group=b"acme")  # type: ignore[arg-type]
    assert (await q.counts()).pending == 0


# ---- controls: cancel, snooze, pause (test_controls.py) --------------------------------------


async def test_async_a_cancelled_item_is_never_handed_out_and_its_holder_loses_the_claim(
    any_aclocked: cairn.AsyncStore,
) -> None:
    q = any_aclocked.ledger("q")
    await q.enqueue(["a", "b", "c"])
    held = await q.claim_next(worker="w1")
    assert held is not None and held.id == "a"
    assert await q.cancel("a") is True
    assert await q.cancel("a") is False, "cancelled already"
    assert await q.cancel_many(["b"]) == 1
    with pytest.raises(cairn.LeaseLostError):
        await held.complete()
    with pytest.raises(cairn.LeaseLostError):
        await held.snooze("1m")
    item = await q.item("a")
    assert item is not None and item.state is cairn.ItemState.CANCELLED
    nxt = await q.claim_next(worker="w2")
    assert nxt is not None and nxt.id == "c"
    assert await q.claim_next(worker="w2") is None
    counts = await q.counts()
    assert (counts.cancelled, counts.claimed, counts.paused, counts.paused_until) == (2, 1, False, None)
    assert [i.id for i in await q.list(state="cancelled")] == ["a", "b"]
    assert await q.len() == 3
    assert await q.retry_all_failed() == 0, "cancelled items are named to retry"
    assert await q.retry(["a"]) == 1
    again = await q.claim_next(worker="w2")
    assert again is not None and again.id == "a"


async def test_async_a_worker_block_on_a_cancelled_item_raises_lease_lost(any_aclocked: cairn.AsyncStore) -> None:
    q = any_aclocked.ledger("q")
    await q.enqueue(["a"])
    with pytest.raises(cairn.LeaseLostError):
        async with await q.take(worker="w1") as claim:
            await any_aclocked.ledger("q").cancel(claim.id)
    item = await q.item("a")
    assert item is not None and item.state is cairn.ItemState.CANCELLED


async def test_async_cancelling_an_unknown_or_done_item_raises_and_changes_nothing(
    any_aclocked: cairn.AsyncStore,
) -> None:
    q = any_aclocked.ledger("q")
    await q.enqueue(["a"])
    await q.mark_done("d")
    with pytest.raises(cairn.InvalidInputError, match="nothing cancelled"):
        await q.cancel_many(["a", "nope"])
    with pytest.raises(cairn.InvalidInputError, match="done already"):
        await q.cancel("d")
    assert (await q.counts()).cancelled == 0


async def test_async_snooze_puts_the_item_back_due_later_with_its_attempts(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    q = any_aclocked.ledger("q")
    await q.set_policy(retry_delay=0)
    await q.enqueue(["a"])
    first = await q.claim_next(worker="w")
    assert first is not None
    await first.fail("flaky")
    claim = await q.claim_next(worker="w")
    assert claim is not None and claim.attempt == 2
    await claim.snooze("10m")
    item = await q.item("a")
    assert item is not None and (item.state, item.attempts) == (cairn.ItemState.PENDING, 1)
    assert item.due == START + datetime.timedelta(minutes=10)
    assert await q.claim_next(worker="w") is None
    clock.advance(600)
    again = await q.claim_next(worker="w")
    assert again is not None and again.attempt == 2
    with pytest.raises(cairn.InvalidInputError):
        await again.snooze(0)
    item = await q.item("a")
    assert item is not None and item.state is cairn.ItemState.CLAIMED, "a bad snooze changes nothing"


async def test_async_pause_blocks_claims_until_resumed_or_its_end(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    q = any_aclocked.ledger("q")
    await q.enqueue(["a", "b", "c"])
    await q.pause()
    assert await q.is_paused() and await q.paused_until() is None
    assert (await q.counts()).paused is True
    assert await q.claim_next(worker="w") is None
    assert await q.claim("b", worker="w") is None
    assert await q.resume() is True
    assert await q.resume() is False
    a = await q.claim_next(worker="w", lease="1d")
    assert a is not None and a.id == "a"
    await q.pause(for_="1h")
    assert await q.paused_until() == START + datetime.timedelta(hours=1)
    assert await q.claim_next(worker="w") is None
    clock.advance(3600)
    assert not await q.is_paused()
    b = await q.claim_next(worker="w")
    assert b is not None and b.id == "b"
    await q.pause(until=START + datetime.timedelta(hours=2))
    assert await q.claim_next(worker="w") is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"for_": 0},
        {"until": "2001-01-01T00:00:00Z"},
        {"until": datetime.datetime(2099, 1, 1)},  # naive
        {"for_": "1h", "until": "2099-01-01T00:00:00Z"},
    ],
)
async def test_async_a_bad_pause_raises_and_changes_nothing(any_aclocked: cairn.AsyncStore, kwargs: Dict[str, Any]) -> None:
    q = any_aclocked.ledger("q")
    with pytest.raises(cairn.InvalidInputError):
        await q.pause(**kwargs)
    assert not await q.is_paused()


async def test_the_cli_sees_a_pause_and_a_cancel_made_from_an_async_store(cli: str, astore: cairn.AsyncStore) -> None:
    q = astore.ledger("q")
    await q.enqueue(["a", "b"])
    await q.cancel("a")
    await q.pause()
    out = subprocess.run([cli, "--db", astore.path, "-n", "q", "ledger", "count"], capture_output=True, timeout=60)
    assert out.returncode == 0
    assert b"cancelled\t1\n" in out.stdout and out.stdout.endswith(b"paused\tuntil-resumed\n")
    resumed = subprocess.run([cli, "--db", astore.path, "-n", "q", "ledger", "resume"], capture_output=True, timeout=60)
    assert resumed.returncode == 0
    assert not await q.is_paused()
