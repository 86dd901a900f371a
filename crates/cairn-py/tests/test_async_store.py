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


async def test_a_closed_store_refuses_calls_and_closing_twice_is_fine(path: str) -> None:
    s = cairn.AsyncStore(path)
    await s.cache("c").set("k", 1)
    await s.close()
    await s.close()
    assert s.closed
    with pytest.raises(cairn.ClosedError):
        await s.cache("c").get("k")
