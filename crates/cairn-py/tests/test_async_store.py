"""cairn.AsyncStore: the store, its cache and checkpoints and transactions from coroutines
(the async twins of test_cache.py and test_transaction.py's core cases)."""

from __future__ import annotations

import asyncio
import threading

import pytest

import cairn


async def test_async_cache_values_keep_their_type_and_ttl_on_each_engine(any_astore: cairn.AsyncStore) -> None:
    c = any_astore.cache("pages")
    values = ["s", 7, 1.5, True, None, b"\x00\xff", [1, "a"], {"k": [None]}]
    for i, v in enumerate(values):
        await c.set(f"k{i}", v, ttl="1h")
    assert [await c.get(f"k{i}") for i in range(len(values))] == values
    assert await c.get("missing", "dflt") == "dflt"
    assert await c.add("k0", "other") is False
    assert await c.incr("n", 5) == 5
    assert await c.decr("n") == 4
    assert await c.delete("k0") is True
    assert await c.contains("k0") is False
    assert await c.keys("k1") == ["k1"]
    assert await c.len() == len(values)  # k0 gone, n added


async def test_a_thousand_concurrent_gets_and_sets_each_get_their_own_answer(astore: cairn.AsyncStore) -> None:
    c = astore.cache("many")
    await asyncio.gather(*[c.set(f"k{i}", i) for i in range(1000)])
    got = await asyncio.gather(*[c.get(f"k{i}") for i in range(1000)])
    assert got == list(range(1000))


async def test_values_written_by_an_async_store_read_back_from_the_sync_store(path: str) -> None:
    async with cairn.AsyncStore(path) as a:
        await a.cache("x").set("k", {"from": "async"})
        await a.checkpoint("job").set([1, 2])
    with cairn.Store(path) as s:
        assert s.cache("x").get("k") == {"from": "async"}
        assert s.checkpoint("job").get() == [1, 2]


async def test_a_transaction_commits_together_and_rolls_back_on_an_exception(any_astore: cairn.AsyncStore) -> None:
    async with any_astore.transaction() as tx:
        await tx.cache("c").set("a", 1)
        await tx.checkpoint("j").set("pos-1")
    with pytest.raises(ValueError):
        async with any_astore.transaction() as tx:
            await tx.cache("c").set("a", 2)
            await tx.checkpoint("j").set("pos-2")
            raise ValueError("boom")
    assert await any_astore.cache("c").get("a") == 1
    assert await any_astore.checkpoint("j").get() == "pos-1"


async def test_a_cancelled_task_inside_a_transaction_rolls_it_back_and_frees_the_file(astore: cairn.AsyncStore) -> None:
    started = asyncio.Event()

    async def writer() -> None:
        async with astore.transaction() as tx:
            await tx.cache("c").set("half", "written")
            started.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await astore.cache("c").get("half") is None
    # The write lock is free: another transaction begins at once.
    async with astore.transaction() as tx:
        await tx.cache("c").set("after", 1)
    assert await astore.cache("c").get("after") == 1


async def test_the_stores_own_handles_inside_a_transaction_are_refused_at_once(astore: cairn.AsyncStore) -> None:
    async with astore.transaction() as tx:
        with pytest.raises(cairn.InvalidInputError, match="tx.cache"):
            await astore.cache("c").set("k", 1)
        await tx.cache("c").set("k", 2)
    assert await astore.cache("c").get("k") == 2


async def test_a_transactions_handles_after_its_end_are_refused(astore: cairn.AsyncStore) -> None:
    async with astore.transaction() as tx:
        pass
    with pytest.raises(cairn.InvalidInputError, match="not open"):
        tx.cache("c")


async def test_work_runs_on_the_stores_threads_not_the_loop_nor_its_default_executor(astore: cairn.AsyncStore) -> None:
    seen: list[str] = []
    await astore._submit(lambda: seen.append(threading.current_thread().name))
    assert seen and seen[0].startswith("cairn-async-"), seen
    assert seen[0] != threading.current_thread().name


async def test_a_store_that_cannot_open_raises_at_the_first_await(tmp_path: object) -> None:
    s = cairn.AsyncStore("/proc/version")
    with pytest.raises(cairn.Error):
        await s.cache("c").get("k")
    await s.close()


async def test_handles_made_before_the_store_opens_forward_every_call_once_it_is(path: str) -> None:
    """A handle made before the store is open has no sync handle yet: its first call opens
    the store and makes it, for the cache's forwarded methods and the checkpoint's alike."""
    s = cairn.AsyncStore(path)
    c, ck = s.cache("early"), s.checkpoint("early-job")
    assert await c.incr("n", 2) == 2
    assert await c.add("k", "v") is True
    assert await ck.get("none yet") == "none yet"
    await ck.set({"at": 1})
    assert (await c.keys(), await ck.get()) == (["k", "n"], {"at": 1})
    await s.close()


async def test_a_closed_store_refuses_calls_and_closing_twice_is_fine(path: str) -> None:
    s = cairn.AsyncStore(path)
    await s.cache("c").set("k", 1)
    await s.close()
    await s.close()
    assert s.closed
    with pytest.raises(cairn.ClosedError):
        await s.cache("c").get("k")


# ---- compute once: get_or_set and memoize -------------------------------------------------------


async def test_get_or_set_computes_once_for_fifty_tasks_and_all_get_the_value(any_astore: cairn.AsyncStore) -> None:
    calls = 0
    gate = asyncio.Event()

    async def compute() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"n": 1}

    c = any_astore.cache("fill")
    tasks = [asyncio.create_task(c.get_or_set("k", compute, ttl="1h")) for _ in range(50)]
    await asyncio.sleep(0.05)
    gate.set()
    assert await asyncio.gather(*tasks) == [{"n": 1}] * 50
    assert calls == 1
    stats = await c.stats()
    assert stats.entries == 1


async def test_get_or_set_takes_a_sync_callable_or_one_returning_a_coroutine(astore: cairn.AsyncStore) -> None:
    async def fetch(url: str) -> str:
        return f"<{url}>"

    c = astore.cache("pages")
    assert await c.get_or_set("a", lambda: fetch("a")) == "<a>"
    assert await c.get_or_set("b", lambda: (1, 2)) == [1, 2]  # as stored: a tuple reads back as a list
    assert await c.get("b") == [1, 2]


async def test_a_failing_or_cancelled_computation_stores_nothing_and_the_next_caller_computes(
    any_astore: cairn.AsyncStore,
) -> None:
    c = any_astore.cache("fill")

    async def boom() -> int:
        raise KeyError("upstream down")

    with pytest.raises(KeyError):
        await c.get_or_set("k", boom)
    started = asyncio.Event()

    async def slow() -> int:
        started.set()
        await asyncio.sleep(3600)
        return 0

    task = asyncio.create_task(c.get_or_set("k", slow))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The marker went with the cancellation: the next caller computes at once, not after the
    # fill timeout.
    assert await asyncio.wait_for(c.get_or_set("k", lambda: 7), timeout=10) == 7


async def test_a_waiting_task_computes_when_the_first_ones_computation_fails(astore: cairn.AsyncStore) -> None:
    c = astore.cache("fill")
    first_started = asyncio.Event()

    async def fails() -> int:
        first_started.set()
        await asyncio.sleep(0.02)
        raise RuntimeError("first fails")

    first = asyncio.create_task(c.get_or_set("k", fails))
    await first_started.wait()
    second = asyncio.create_task(c.get_or_set("k", lambda: "second"))
    with pytest.raises(RuntimeError):
        await first
    assert await second == "second"


async def test_get_or_set_asked_again_by_its_own_computation_is_refused(astore: cairn.AsyncStore) -> None:
    c = astore.cache("fill")

    async def recurse() -> int:
        return await c.get_or_set("k", recurse)

    with pytest.raises(cairn.InvalidInputError, match="its own computation"):
        await c.get_or_set("k", recurse)
    assert await asyncio.wait_for(c.get_or_set("k", lambda: 1), timeout=10) == 1


async def test_an_async_fill_waits_for_a_sync_store_computing_the_same_key(path: str) -> None:
    import threading as th

    computing = th.Event()
    release = th.Event()
    sync = cairn.Store(path)

    def sync_fill() -> None:
        def compute() -> str:
            computing.set()
            release.wait(30)
            return "from sync"

        sync.cache("c").get_or_set("k", compute)

    t = th.Thread(target=sync_fill)
    t.start()
    try:
        assert await asyncio.to_thread(computing.wait, 30)
        async with cairn.AsyncStore(path) as a:
            waiter = asyncio.create_task(a.cache("c").get_or_set("k", lambda: "from async"))
            await asyncio.sleep(0.1)
            assert not waiter.done(), "waits for the sync store's computation"
            release.set()
            assert await asyncio.wait_for(waiter, timeout=30) == "from sync"
    finally:
        release.set()
        t.join()
        sync.close()


async def test_get_or_set_inside_a_transaction_computes_and_stores_in_it(astore: cairn.AsyncStore) -> None:
    with pytest.raises(ValueError):
        async with astore.transaction() as tx:
            assert await tx.cache("c").get_or_set("k", lambda: 1) == 1
            raise ValueError("roll back")
    assert await astore.cache("c").get("k") is None
    async with astore.transaction() as tx:
        assert await tx.cache("c").get_or_set("k", lambda: 2) == 2
        assert await tx.cache("c").get_or_set("k", lambda: 3) == 2
    assert await astore.cache("c").get("k") == 2


async def test_memoize_decorates_a_coroutine_function_computed_once(any_astore: cairn.AsyncStore) -> None:
    calls: list[str] = []

    @any_astore.memoize(ttl="1h")
    async def rate(currency: str) -> float:
        calls.append(currency)
        await asyncio.sleep(0.01)
        return 1.08

    assert await asyncio.gather(*[rate("EUR") for _ in range(20)]) == [1.08] * 20
    assert await rate("USD") == 1.08
    assert calls == ["EUR", "USD"]
    assert await rate.invalidate("EUR") is True
    assert await rate("EUR") == 1.08
    assert calls == ["EUR", "USD", "EUR"]
    assert rate.cache_key("EUR").endswith(':{"currency":"EUR"}')


async def test_memoize_keys_match_the_sync_stores_so_both_share_results(path: str) -> None:
    def plain(x: int) -> int:
        return x * 2

    with cairn.Store(path) as s:
        sync_key = s.memoize(plain).cache_key(4)
    async with cairn.AsyncStore(path) as a:
        assert a.memoize(plain).cache_key(4) == sync_key


async def test_memoize_inside_a_transaction_joins_it(astore: cairn.AsyncStore) -> None:
    @astore.memoize
    async def f(x: int) -> int:
        return x + 1

    with pytest.raises(ValueError):
        async with astore.transaction():
            assert await f(1) == 2
            raise ValueError("roll back")
    assert await astore.cache("memoize").keys() == []


# ---- cancellation at random points ----------------------------------------------------------------


async def test_cancelling_transactions_at_random_points_never_leaves_a_partial_write_or_a_held_lock(
    path: str,
) -> None:
    import random

    rng = random.Random(22)
    rounds = 300
    committed = 0
    async with cairn.AsyncStore(path, busy_timeout=2.0) as store:

        async def writer(i: int) -> None:
            async with store.transaction() as tx:
                await tx.cache("c").set("a", i)
                await asyncio.sleep(0)
                await tx.cache("c").set("b", i)
                await tx.checkpoint("pos").set(i)

        for i in range(1, rounds + 1):
            task = asyncio.create_task(writer(i))
            # Anywhere from before BEGIN to after COMMIT.
            for _ in range(rng.randrange(0, 8)):
                await asyncio.sleep(0)
            if rng.random() < 0.5:
                await asyncio.sleep(rng.uniform(0, 0.002))
            task.cancel()
            try:
                await task
                committed += 1
            except asyncio.CancelledError:
                pass
            a, b, pos = await asyncio.gather(
                store.cache("c").get("a"), store.cache("c").get("b"), store.checkpoint("pos").get()
            )
            assert a == b == pos, f"round {i}: a={a} b={b} checkpoint={pos}: half a transaction"
        # Nothing held: a sync store on the file writes at once.
        with cairn.Store(path, busy_timeout=0.5) as other:
            other.cache("c").set("free", True)
    # Both outcomes happened, so the cancellations did land at different points.
    assert 0 < committed < rounds, committed
