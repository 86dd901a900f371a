"""Waiting for work from coroutines: ``await ledger.claim_next(wait=...)``, ``async for claim
in ledger.claims(wait=...)`` and ``await ledger.wait_drained()`` woken by other connections and
processes (the sync Store, the CLI), never blocking the loop or a shared worker; cancellation
at random points leaving no claim held and no attempt spent. The async twins of
test_queue_wait.py, and what only an async waiter has. No timing is asserted."""

from __future__ import annotations

import asyncio
import datetime
import os
import random
import subprocess
import threading
from typing import List, Optional

import pytest

import cairn

#: Cancellations per engine in the random-point test (CAIRN_PY_ASYNC_CANCELS overrides).
CANCELS = int(os.environ.get("CAIRN_PY_ASYNC_CANCELS", "300"))


def busy_lanes(store: cairn.AsyncStore) -> int:
    """Lanes leased now (running a wait or a transaction), not idle."""
    runner = store._runner
    with runner._cv:
        return len(runner._lanes) - len(runner._idle_lanes)


async def eventually(check: "object", what: str) -> None:
    """Wait (on the loop, up to 60 s) until `check()` is true: a lane is given back by its
    thread just after the call that used it returns."""
    for _ in range(6000):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    pytest.fail(what)


async def test_async_claim_next_with_a_wait_is_woken_by_the_sync_stores_enqueue(
    any_astore: cairn.AsyncStore, location: str
) -> None:
    q = any_astore.ledger("q")

    def produce() -> None:
        with cairn.Store(location) as s:
            s.ledger("q").enqueue(["a"])

    waiting = asyncio.create_task(q.claim_next(lease=60, worker="waiter", wait=120))
    await asyncio.sleep(0.05)  # let it start waiting; the claim must come either way
    await asyncio.to_thread(produce)
    claim = await waiting
    assert claim is not None and claim.id == "a"
    await claim.complete()


async def test_async_claim_next_with_a_wait_is_woken_by_the_clis_enqueue(cli: str, astore: cairn.AsyncStore) -> None:
    q = astore.ledger("jobs")
    waiting = asyncio.create_task(q.claim_next(worker="waiter", wait=120))
    await asyncio.sleep(0.05)
    out = await asyncio.to_thread(
        subprocess.run, [cli, "--db", astore.path, "-n", "jobs", "ledger", "enqueue", "from-cli"], capture_output=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    claim = await waiting
    assert claim is not None and claim.id == "from-cli"
    async with claim:
        pass
    assert await q.is_done("from-cli")


async def test_async_claim_next_with_a_wait_returns_none_once_it_passes(any_astore: cairn.AsyncStore) -> None:
    q = any_astore.ledger("q")
    await q.enqueue(["tomorrow"], delay="1d")
    for wait in (0.05, "50ms", datetime.timedelta(milliseconds=50)):
        assert await q.claim_next(worker="w", wait=wait) is None
    assert await q.claim_next(worker="w") is None, "no wait: at once"
    await eventually(lambda: busy_lanes(any_astore) == 0, "the lanes were given back")


async def test_async_a_bad_wait_is_refused_before_anything_is_claimed(astore: cairn.AsyncStore) -> None:
    q = astore.ledger("q")
    await q.enqueue(["a"])
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        await q.claim_next(worker="w", wait=-1)
    with pytest.raises(TypeError):
        await q.claim_next(worker="w", wait=True)
    with pytest.raises(cairn.InvalidInputError):
        await q.wait_drained(timeout="soon")
    assert (await q.counts()).pending == 1


async def test_async_wait_drained_is_true_once_the_workers_are_done_and_false_at_its_timeout(
    any_astore: cairn.AsyncStore,
) -> None:
    q = any_astore.ledger("q")
    assert await q.wait_drained(timeout=0) is True
    await q.enqueue(["a", "b"])
    assert await q.wait_drained(timeout=0.05) is False

    async def work() -> None:
        await asyncio.sleep(0.05)
        async for claim in q.claims(worker="w"):
            async with claim:
                await asyncio.sleep(0.01)

    worker = asyncio.create_task(work())
    drains = await asyncio.gather(q.wait_drained(), q.wait_drained(timeout=120))
    await worker
    assert drains == [True, True]
    assert (await q.counts()).done == 2


async def test_async_claims_with_a_wait_takes_items_queued_while_it_waits(any_astore: cairn.AsyncStore) -> None:
    q = any_astore.ledger("q")

    async def produce() -> None:
        await asyncio.sleep(0.05)
        await q.enqueue(["x", "y"])

    producer = asyncio.create_task(produce())
    got = []
    async for c in q.claims(worker="w", wait=0.5):
        got.append(c.id)
    await producer
    assert got == ["x", "y"]
    assert (await q.counts()).done == 2


async def test_async_waiting_inside_a_transaction_is_refused(astore: cairn.AsyncStore) -> None:
    async with astore.transaction() as tx:
        with pytest.raises(cairn.InvalidInputError, match="inside a transaction"):
            await tx.ledger("q").claim_next(worker="w", wait=1)
        with pytest.raises(cairn.InvalidInputError, match="inside a transaction"):
            await tx.ledger("q").wait_drained(timeout=1)
        with pytest.raises(cairn.InvalidInputError, match="inside"):
            await astore.ledger("q").wait_drained(timeout=1)


async def test_a_waiting_claim_leaves_the_only_shared_worker_free(path: str) -> None:
    async with cairn.AsyncStore(path, workers=1) as store:
        q = store.ledger("q")
        waiting = asyncio.create_task(q.claim_next(worker="w", wait=None))
        draining = asyncio.create_task(store.ledger("other").wait_drained())  # drained: returns
        assert await draining is True
        await store.cache("c").set("k", 1)
        assert await store.cache("c").get("k") == 1, "the worker answers while the claim waits"
        await q.enqueue(["a"])
        claim = await waiting
        assert claim is not None and claim.id == "a"


async def test_fifty_waiting_coroutines_share_one_lane_and_each_gets_an_item(any_astore: cairn.AsyncStore, location: str) -> None:
    q = any_astore.ledger("q")
    waiters = [asyncio.create_task(q.claim_next(worker=f"w{i}", wait=120)) for i in range(50)]
    await eventually(lambda: busy_lanes(any_astore) == 1, "one waiter entered the library")
    await asyncio.sleep(0.1)  # the others had time to take a lane each, if they would
    assert busy_lanes(any_astore) == 1, "one waits in the library; the others queue on the loop"

    def produce() -> None:
        with cairn.Store(location) as s:
            s.ledger("q").enqueue([f"item-{i}" for i in range(50)])

    await asyncio.to_thread(produce)
    claims = await asyncio.gather(*waiters)
    assert sorted(c.id for c in claims if c is not None) == sorted(f"item-{i}" for i in range(50))
    assert (await q.counts()).claimed == 50
    await eventually(lambda: busy_lanes(any_astore) == 0, "the lane was given back")


async def test_a_cancelled_wait_stops_the_library_wait_and_gives_its_lane_back(any_astore: cairn.AsyncStore) -> None:
    q = any_astore.ledger("q")
    for call in (lambda: q.claim_next(worker="w", wait=None), lambda: q.wait_drained()):
        await q.enqueue(["later"], delay="1h")
        task = asyncio.create_task(call())
        await eventually(lambda: busy_lanes(any_astore) == 1, "the wait entered the library")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: busy_lanes(any_astore) == 0, "the lane was given back")
        assert (await q.counts()).claimed == 0
    # The next waiter is not stuck behind the cancelled one.
    await q.enqueue(["now"])
    claim = await q.claim_next(worker="w", wait=5)
    assert claim is not None and claim.id == "now"


async def test_a_waiter_queued_behind_another_still_times_out(astore: cairn.AsyncStore) -> None:
    q = astore.ledger("q")
    first = asyncio.create_task(q.claim_next(worker="w1", wait=None))
    await eventually(lambda: busy_lanes(astore) == 1, "the first waits in the library")
    assert await q.claim_next(worker="w2", wait=0.05) is None
    queued = asyncio.create_task(q.claim_next(worker="w3", wait=60))
    await asyncio.sleep(0.02)
    queued.cancel()  # cancelled while queued on the loop: nothing held, the lock not taken
    with pytest.raises(asyncio.CancelledError):
        await queued
    await q.enqueue(["a"])
    claim = await first
    assert claim is not None and claim.id == "a"


@pytest.mark.parametrize("where", ["in the body", "before the body"])
async def test_a_cancelled_claims_loop_gives_its_claim_back_without_spending_an_attempt(
    any_astore: cairn.AsyncStore, where: str
) -> None:
    q = any_astore.ledger("q")
    await q.enqueue(["a"])
    inside = asyncio.Event()

    async def work() -> None:
        async for claim in q.claims(worker="w", wait=60):
            if where == "in the body":
                async with claim:
                    inside.set()
                    await asyncio.sleep(60)
            else:
                inside.set()  # not settled: the loop ends on it when the task is cancelled
                await asyncio.sleep(60)

    task = asyncio.create_task(work())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    del task
    item: Optional[cairn.Item] = None
    for _ in range(6000):  # the loop's finaliser runs soon after, on the loop
        item = await q.item("a")
        if item is not None and item.state is not cairn.ItemState.CLAIMED:
            break
        await asyncio.sleep(0.01)
    assert item is not None and (item.state, item.attempts) == (cairn.ItemState.PENDING, 0)


async def test_cancelling_claims_at_random_points_leaves_none_held_and_no_attempt_spent(
    any_astore: cairn.AsyncStore, location: str
) -> None:
    """Tasks claim (with and without a wait, from a full or an empty queue, while another
    connection enqueues) and work under ``async with claim``; each is cancelled at a random
    moment. After each: nothing claimed. At the end: no attempt spent on any item, every item
    pending or done, and each done one done once."""
    seed = int(os.environ.get("CAIRN_PY_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    q = any_astore.ledger("q", max_attempts=1)  # one spent attempt would give an item up
    other = await asyncio.to_thread(cairn.Store, location)
    completed: List[str] = []
    n = 0
    try:
        for i in range(CANCELS):
            mode = rng.choice(["full", "empty", "enqueue-during"])
            if mode == "full":
                n += 1
                await q.enqueue([f"i{n}"])

            async def work() -> None:
                if rng.random() < 0.5:
                    claim = await q.claim_next(worker="w", lease=60, wait=rng.choice([0, 5, None]))
                else:
                    claim = await q.take(worker="w", lease=60) if mode == "full" else await q.claim_next(worker="w", wait=5)
                if claim is None:
                    return
                async with claim:
                    await asyncio.sleep(rng.choice([0, 0, 0.001, 0.003]))
                completed.append(claim.id)

            task = asyncio.create_task(work())
            if mode == "enqueue-during":
                n += 1
                await asyncio.sleep(rng.uniform(0, 0.002))
                await asyncio.to_thread(other.ledger("q").enqueue, [f"i{n}"])
            await asyncio.sleep(rng.choice([0, 0, rng.uniform(0, 0.003), rng.uniform(0, 0.02)]))
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            counts = await q.counts()
            assert counts.claimed == 0, f"seed {seed}, round {i} ({mode}): {counts}"
        items = await q.list(limit=10 * CANCELS)
        assert {i.state for i in items} <= {cairn.ItemState.PENDING, cairn.ItemState.DONE}, f"seed {seed}"
        assert all(i.attempts == 0 for i in items), f"seed {seed}: {[i for i in items if i.attempts]}"
        done = sorted(i.id for i in items if i.state is cairn.ItemState.DONE)
        assert sorted(set(completed)) == sorted(completed), f"seed {seed}: an item completed twice"
        assert set(completed) <= set(done), f"seed {seed}"
        assert len(items) == n
        await eventually(lambda: busy_lanes(any_astore) == 0, "every lane was given back")
    finally:
        await asyncio.to_thread(other.close)


async def test_a_waiting_claim_is_woken_by_a_thread_of_another_loop(path: str) -> None:
    """Two AsyncStores on one file, each on its own loop and thread: a wait on one sees the
    other's enqueue."""
    async with cairn.AsyncStore(path) as store:
        waiting = asyncio.create_task(store.ledger("q").claim_next(worker="w", wait=120))

        def other_loop() -> None:
            async def produce() -> None:
                async with cairn.AsyncStore(path) as s:
                    await s.ledger("q").enqueue(["from-other-loop"])

            asyncio.run(produce())

        t = threading.Thread(target=other_loop)
        t.start()
        claim = await waiting
        await asyncio.to_thread(t.join)
        assert claim is not None and claim.id == "from-other-loop"


async def test_closing_the_store_ends_its_waits_with_closed_error(any_astore: cairn.AsyncStore) -> None:
    """A wait without a limit held its lane's connection, and close() waited for it forever."""
    q = any_astore.ledger("q")
    await q.enqueue(["later"], delay="1h")
    waits = [
        asyncio.create_task(q.claim_next(worker="w", wait=None)),
        asyncio.create_task(q.claim_next(worker="w2", wait=None)),  # queued behind the first
        asyncio.create_task(q.wait_drained()),
    ]
    await eventually(lambda: busy_lanes(any_astore) == 2, "a claim and a drain wait in the library")
    await any_astore.close()
    for w in waits:
        with pytest.raises(cairn.ClosedError):
            await w
