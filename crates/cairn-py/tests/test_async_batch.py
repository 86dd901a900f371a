"""cairn.AsyncStore's bursts: concurrent cache gets and sets outside transactions run in
batches on the workers (one call of the extension for a run of gets; the sets of a run
committed together), with the semantics of one call each: each its own answer or error, each
set committed before its await returns, one bad value failing alone."""

from __future__ import annotations

import asyncio
from typing import Any, List

import pytest

import cairn


async def test_a_bad_value_among_a_thousand_concurrent_sets_fails_alone(any_astore: cairn.AsyncStore) -> None:
    c = any_astore.cache("burst")
    values: List[Any] = [f"v{i}" for i in range(1000)]
    values[417] = object()  # no value cairn stores: refused before any transaction
    got = await asyncio.gather(*[c.set(f"k{i}", v) for i, v in enumerate(values)], return_exceptions=True)
    assert isinstance(got[417], TypeError)
    assert "cannot store a value of type object" in str(got[417])
    assert [g for i, g in enumerate(got) if i != 417] == [None] * 999
    stored = await c.get_many([f"k{i}" for i in range(1000)], default="missing")
    assert stored[417] == "missing"
    assert [s for i, s in enumerate(stored) if i != 417] == [v for i, v in enumerate(values) if i != 417]


async def test_a_set_refused_inside_the_group_transaction_fails_alone_and_the_others_commit(
    any_astore: cairn.AsyncStore,
) -> None:
    # Too big for the namespace's bound: refused by the library inside the transaction the
    # group shares, so the group rolls back and each set runs again alone.
    c = any_astore.cache("bounded")
    await c.set_limits(max_bytes=10_000)
    values = ["small"] * 200
    values[3] = "x" * 20_000
    got = await asyncio.gather(*[c.set(f"k{i}", v) for i, v in enumerate(values)], return_exceptions=True)
    assert isinstance(got[3], cairn.InvalidInputError)
    assert "cannot fit in namespace 'bounded'" in str(got[3])
    assert [g for i, g in enumerate(got) if i != 3] == [None] * 199
    assert await c.get("k3") is None
    assert await c.get_many([f"k{i}" for i in range(200) if i != 3]) == ["small"] * 199


async def test_a_bad_key_among_concurrent_gets_raises_what_a_sync_get_raises_and_the_others_answer(
    any_astore: cairn.AsyncStore,
) -> None:
    c = any_astore.cache("keys")
    await c.set_many({f"k{i}": i for i in range(100)})
    keys: List[Any] = [f"k{i}" for i in range(100)]
    keys[10] = "bad\x00key"  # refused by the library, for this key alone
    keys[20] = 20  # not a str: the whole run's call refuses it, then each get runs alone
    got = await asyncio.gather(*[c.get(k, default=-1) for k in keys], return_exceptions=True)
    assert isinstance(got[10], cairn.InvalidInputError)
    assert isinstance(got[20], TypeError)
    assert [g for i, g in enumerate(got) if i not in (10, 20)] == [i for i in range(100) if i not in (10, 20)]


async def test_each_get_of_a_burst_gets_its_own_default_and_counts_its_hit_or_miss(path: str) -> None:
    # Two workers (concurrent runs may go to either): flush_stats writes both's counts.
    async with cairn.AsyncStore(path, workers=2) as astore:
        c = astore.cache("counted")
        await c.set_many({f"k{i}": i for i in range(0, 600, 2)})  # even keys only
        got = await asyncio.gather(*[c.get(f"k{i}", default=("none", i)) for i in range(600)])
        assert got == [i if i % 2 == 0 else ("none", i) for i in range(600)]
        await astore.flush_stats()
        stats = await c.stats()
        assert (stats.hits, stats.misses) == (300, 300)


async def test_every_set_of_a_burst_is_committed_when_its_await_returns(path: str) -> None:
    async with cairn.AsyncStore(path) as a:
        c = a.cache("durable")
        other = cairn.Store(path)  # another connection: sees only what is committed
        try:
            seen: List[Any] = []

            async def set_then_look(i: int) -> None:
                await c.set(f"k{i}", i, ttl="1h")
                seen.append(other.cache("durable").get(f"k{i}"))

            await asyncio.gather(*[set_then_look(i) for i in range(300)])
            assert sorted(seen) == list(range(300))
        finally:
            other.close()


async def test_gets_and_sets_interleaved_in_one_burst_see_the_writes_awaited_before_them(
    any_astore: cairn.AsyncStore,
) -> None:
    c = any_astore.cache("order")

    async def one(i: int) -> Any:
        await c.set(f"k{i}", i)
        await c.set(f"k{i}", i + 1000)
        return await c.get(f"k{i}")

    assert await asyncio.gather(*[one(i) for i in range(500)]) == [i + 1000 for i in range(500)]


async def test_calls_made_just_before_close_still_run(path: str) -> None:
    a = cairn.AsyncStore(path)
    await a.open()
    c = a.cache("late")
    futs = [c.set(f"k{i}", i) for i in range(50)]  # handed to the workers at the end of this step
    await a.close()
    assert all(f.done() for f in futs)
    assert [f.result() for f in futs] == [None] * 50  # type: ignore[attr-defined]
    with cairn.Store(path) as s:
        assert s.cache("late").get_many([f"k{i}" for i in range(50)]) == list(range(50))


async def test_the_handles_of_a_transaction_still_run_in_it_one_by_one(astore: cairn.AsyncStore) -> None:
    with pytest.raises(RuntimeError):
        async with astore.transaction() as tx:
            c = tx.cache("tx")
            await asyncio.gather(*[c.set(f"k{i}", i) for i in range(100)])
            assert await asyncio.gather(*[c.get(f"k{i}") for i in range(100)]) == list(range(100))
            raise RuntimeError("roll back")
    assert await astore.cache("tx").get("k0") is None
