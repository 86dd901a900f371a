"""AsyncStore durable runs: the async twins of test_runs.py (steps of coroutine functions and
plain ones, step_tx with an AsyncTransaction, the step decorator, durable sleeps, the runs'
operations), the wait for a held run on the loop, and cancellation."""

from __future__ import annotations

import asyncio
import random
from typing import Any, Dict, List

import pytest

import cairn

DEADLINE = 60.0


async def test_finished_steps_replay_and_a_failed_one_runs_again(any_astore: cairn.AsyncStore) -> None:
    calls: List[str] = []

    async def fetch(page: int) -> Dict[str, Any]:
        calls.append(f"fetch-{page}")
        await asyncio.sleep(0)
        if page == 2 and calls.count("fetch-2") == 1:
            raise ConnectionError("503")
        return {"page": page, "rows": [page, page * 2]}

    with pytest.raises(ConnectionError):
        async with any_astore.run("backfill") as run:
            assert run.attempt == 1
            pages = await run.step("list", lambda: [1, 2, 3])  # a plain callable
            for p in pages:
                await run.step("fetch", fetch, p)
    info = await any_astore.runs().get("backfill")
    assert info is not None and info.state == "failed" and info.error == "ConnectionError: 503"
    assert [(s.name, s.state) for s in info.steps] == [("list", "done"), ("fetch", "done"), ("fetch#2", "failed")]

    async with any_astore.run("backfill") as run:
        assert run.attempt == 2
        pages = await run.step("list", lambda: pytest.fail("replayed, not run"))
        got = [await run.step("fetch", fetch, p) for p in pages]
    assert got == [{"page": p, "rows": [p, p * 2]} for p in (1, 2, 3)]
    assert calls == ["fetch-1", "fetch-2", "fetch-2", "fetch-3"], "only the failed step and the new one ran"
    info = await any_astore.runs().get("backfill")
    assert info is not None and info.state == "finished" and info.attempts == 2
    assert [s.attempts for s in info.steps] == [1, 1, 2, 1]

    async with any_astore.run("backfill") as run:
        assert run.finished
        assert await run.step("list", lambda: pytest.fail("replayed")) == [1, 2, 3]
        with pytest.raises(cairn.InvalidInputError, match="cairn run reset backfill"):
            await run.step("new-step", lambda: 1)


async def test_steps_started_at_once_are_named_in_call_order_and_replay_so(any_astore: cairn.AsyncStore) -> None:
    async def fetch(page: int) -> int:
        await asyncio.sleep(random.random() * 0.01)  # they finish in any order
        return page * 10

    for attempt in (1, 2):
        async with any_astore.run("fan-out") as run:
            got = await asyncio.gather(*[run.step("fetch", fetch, p) for p in range(8)])
            assert got == [p * 10 for p in range(8)], attempt
    info = await any_astore.runs().get("fan-out")
    assert info is not None
    assert [s.name for s in info.steps] == ["fetch"] + [f"fetch#{n}" for n in range(2, 9)]
    assert all(s.attempts == 1 for s in info.steps), "the second attempt replayed them all"


async def test_a_second_attempt_is_refused_while_one_holds_the_run(any_astore: cairn.AsyncStore) -> None:
    async with any_astore.run("deploy") as run:
        await run.step("build", lambda: "ok")
        with pytest.raises(cairn.RunHeldError, match="is held by another attempt") as err:
            async with any_astore.run("deploy"):
                pytest.fail("a second attempt ran")
        assert isinstance(err.value, cairn.LockHeldError) and isinstance(err.value, TimeoutError)
    info = await any_astore.runs().get("deploy")
    assert info is not None and info.state == "finished"


async def test_a_waiting_attempt_waits_on_the_loop_and_takes_the_run_once_it_is_free(
    location: str, any_astore: cairn.AsyncStore
) -> None:
    with cairn.Store(location) as sync:
        with sync.run("deploy") as held:
            held.step("build", lambda: "v1")

            async def second() -> int:
                async with any_astore.run("deploy", wait=DEADLINE) as run:
                    return run.attempt

            waiter = asyncio.create_task(second())
            ticks = 0
            for _ in range(20):
                await asyncio.sleep(0.005)
                ticks += 1
            assert not waiter.done(), "waits while the sync store's attempt holds the run"
            with pytest.raises(cairn.RunHeldError):
                async with any_astore.run("deploy", wait=0.05):
                    pass
        # The sync block finished the run: the waiter joins it finished.
        assert await asyncio.wait_for(waiter, DEADLINE) == 1


async def test_a_changed_version_is_refused_until_the_run_is_reset(any_astore: cairn.AsyncStore) -> None:
    async with any_astore.run("deploy") as run:
        await run.step("build", lambda: "v1", version="1")
    with pytest.raises(cairn.StepChangedError, match="cairn run reset deploy --from build") as err:
        async with any_astore.run("deploy") as run:
            await run.step("build", lambda: "v2", version="2")
    assert isinstance(err.value, ValueError)
    assert await any_astore.runs().reset("deploy", from_step="build") == 1
    async with any_astore.run("deploy") as run:
        assert await run.step("build", lambda: "v2", version="2") == "v2"


async def test_step_tx_writes_with_its_record_exactly_once(any_astore: cairn.AsyncStore) -> None:
    async def count(tx: cairn.AsyncTransaction) -> int:
        return await tx.cache("c").incr("n")

    for _ in range(3):
        async with any_astore.run("mark") as run:
            n = await run.step_tx("count", count)
            await run.step_tx("mark", lambda tx: tx.checkpoint("pages").set("all"))  # gives an awaitable
    assert n == 1 and await any_astore.cache("c").get("n") == 1
    assert await any_astore.checkpoint("pages").get() == "all"


async def test_a_failed_step_tx_rolls_its_writes_back_and_runs_again(any_astore: cairn.AsyncStore) -> None:
    async def half(tx: cairn.AsyncTransaction) -> None:
        await tx.cache("c").set("half", "written")
        raise RuntimeError("after the write")

    with pytest.raises(RuntimeError):
        async with any_astore.run("r") as run:
            await run.step_tx("write", half)
    assert await any_astore.cache("c").get("half") is None
    info = await any_astore.runs().get("r")
    assert info is not None and [(s.name, s.state) for s in info.steps] == [("write", "failed")]

    async def whole(tx: cairn.AsyncTransaction) -> str:
        await tx.cache("c").set("half", "whole")
        return "ok"

    async with any_astore.run("r") as run:
        assert await run.step_tx("write", whole) == "ok"
    assert await any_astore.cache("c").get("half") == "whole"


async def test_the_step_decorator_is_a_step_inside_a_run_and_a_plain_call_outside(
    any_astore: cairn.AsyncStore,
) -> None:
    calls: List[int] = []

    @any_astore.step(version=2)
    async def fetch(page: int) -> str:
        calls.append(page)
        return f"page {page}"

    assert await fetch(7) == "page 7"
    for _ in range(2):
        async with any_astore.run("crawl"):
            assert [await fetch(1), await fetch(1)] == ["page 1", "page 1"]
    assert calls == [7, 1, 1], "two steps (fetch, fetch#2) ran once each"
    info = await any_astore.runs().get("crawl")
    assert info is not None
    name = fetch.__qualname__.replace("<locals>.", "")
    assert [(s.name, s.version) for s in info.steps] == [(name, "2"), (f"{name}#2", "2")]

    @any_astore.step
    async def plain() -> int:
        return 1

    async with any_astore.run("tasks"):
        # Tasks started inside the block are inside the run too (the context is copied).
        assert await asyncio.create_task(plain()) == 1
    info = await any_astore.runs().get("tasks")
    assert info is not None and len(info.steps) == 1
    with pytest.raises(TypeError, match="coroutine functions"):
        any_astore.step(lambda: 1)


async def test_a_durable_sleep_is_not_slept_again(any_astore: cairn.AsyncStore) -> None:
    async with any_astore.run("r") as run:
        left = await run.sleep("cool-down", "1h", wait=False)
        assert left is not None and 3500 < left <= 3600
        assert await run.sleep("short", 0) is None
    async with any_astore.run("r2") as run:
        await run.sleep("brief", 0.05)  # slept on the loop
    async with any_astore.run("r2") as run:
        assert await run.sleep("brief", 0.05, wait=False) is None, "its time has passed"


async def test_runs_list_forget_and_prune(any_astore: cairn.AsyncStore) -> None:
    async with any_astore.run("a") as run:
        await run.step("x", lambda: 1)
    with pytest.raises(RuntimeError):
        async with any_astore.run("b"):
            raise RuntimeError("boom")
    runs = any_astore.runs()
    assert [(r.id, r.state) for r in await runs.list()] == [("a", "finished"), ("b", "failed")]
    assert [r.id for r in await runs.list("failed")] == ["b"]
    assert await runs.forget("b") and not await runs.forget("b")
    assert await runs.prune("1h") == 0, "a finished just now"
    with pytest.raises(cairn.InvalidInputError):
        await runs.list("sleeping")


async def test_a_step_result_must_be_a_value_and_a_run_object_is_used_once(astore: cairn.AsyncStore) -> None:
    with pytest.raises(TypeError):
        async with astore.run("r") as run:
            await run.step("obj", lambda: object())
    run = astore.run("r2")
    async with run:
        pass
    with pytest.raises(cairn.InvalidInputError, match="used once"):
        async with run:
            pass
    with pytest.raises(cairn.InvalidInputError, match="'#'"):
        async with astore.run("r3") as r3:
            await r3.step("a#b", lambda: 1)


async def test_a_sync_store_sees_the_async_runs_steps_and_resumes_them(
    location: str, any_astore: cairn.AsyncStore
) -> None:
    with pytest.raises(KeyError):
        async with any_astore.run("shared") as run:
            await run.step("one", lambda: 1)
            raise KeyError("stop")
    with cairn.Store(location) as sync:
        with sync.run("shared") as srun:
            assert srun.step("one", lambda: pytest.fail("replayed")) == 1
            assert srun.step("two", lambda: 2) == 2
        info = sync.runs().get("shared")
        assert info is not None and info.state == "finished" and info.attempts == 2


async def test_cancelling_a_task_inside_a_run_records_the_attempt_failed_and_the_next_resumes(
    any_astore: cairn.AsyncStore,
) -> None:
    rng = random.Random(3)
    started = 0
    for i in range(60):
        first_done = asyncio.Event()

        async def work() -> None:
            nonlocal started
            async with any_astore.run(f"r{i}") as run:
                started += 1
                await run.step("first", lambda: "a")
                first_done.set()
                await run.step("slow", asyncio.sleep, 3600)

        task = asyncio.create_task(work())
        inside = rng.random() < 0.5
        if inside:
            await asyncio.wait_for(first_done.wait(), DEADLINE)
        for _ in range(rng.randrange(0, 10)):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        if inside:
            info = await any_astore.runs().get(f"r{i}")
            assert info is not None and info.state == "failed" and info.error == "CancelledError", info
            # Cancelled in the slow step (failed), or as it was being looked up (not begun).
            assert [(s.name, s.state) for s in info.steps] in (
                [("first", "done"), ("slow", "failed")],
                [("first", "done")],
            )
        # Nothing is left held: the next attempt takes the run at once (a run taken as the
        # cancellation came is given back by a thread of its own: wait a little for it).
        async with any_astore.run(f"r{i}", wait=DEADLINE) as run:
            assert await run.step("first", lambda: "b") in ("a", "b")
            assert await run.step("slow", lambda: "done") == "done"
        info = await any_astore.runs().get(f"r{i}")
        assert info is not None and info.state == "finished"
    assert started > 0


async def test_many_waiters_for_a_held_run_queue_in_memory_and_only_one_polls(
    location: str, any_astore: cairn.AsyncStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cairn._aio_run as aio_run

    tries: List[str] = []
    real_take = aio_run._take

    def counting_take(*args: Any) -> Any:
        tries.append(args[1])
        return real_take(*args)

    monkeypatch.setattr(aio_run, "_take", counting_take)
    attempts: List[int] = []
    built: List[int] = []

    async def second() -> None:
        async with any_astore.run("deploy", wait=DEADLINE) as run:
            attempts.append(run.attempt)
            await run.step("build", lambda: built.append(1) or "v2")

    with cairn.Store(location) as sync:
        with pytest.raises(RuntimeError):
            with sync.run("deploy"):
                waiters = [asyncio.create_task(second()) for _ in range(20)]
                await asyncio.sleep(0.5)  # they wait while it is held (no clock to move: real time)
                polled = len(tries)
                raise RuntimeError("the held attempt fails: the waiters take the run in turn")
    await asyncio.wait_for(asyncio.gather(*waiters), DEADLINE)
    # The first in line took attempt 2 and finished the run; the others joined it finished.
    assert attempts == [2] * 20 and built == [1]
    # Each tried once, then the first in line alone, napping 20 ms doubling: a handful of
    # tries in half a second, where twenty pollers would have made twenty times as many.
    assert polled <= 20 + 10, polled


async def test_a_nested_decorated_step_is_a_plain_call_and_does_not_shift_later_names(
    any_astore: cairn.AsyncStore,
) -> None:
    """A step taken by a step's function (awaited in its task, or in a task it started) is a
    plain call, not recorded: on resume the outer step replays without calling it, and a later
    top-level `fetch(1)` must still get page 1 (it used to be named `fetch` and get page 0's)."""
    calls: List[int] = []

    @any_astore.step()
    async def fetch(page: int) -> str:
        calls.append(page)
        return f"page-{page}"

    @any_astore.step()
    async def summary() -> str:
        nested = await asyncio.gather(fetch(10), fetch(11))  # tasks started inside the step
        return await fetch(0) + "+summary" + str(len(nested))

    with pytest.raises(RuntimeError):
        async with any_astore.run("r"):
            assert await summary() == "page-0+summary2"
            assert await fetch(1) == "page-1"
            raise RuntimeError("the attempt dies")
    async with any_astore.run("r"):
        assert await summary() == "page-0+summary2"
        assert await fetch(1) == "page-1"
    assert calls == [10, 11, 0, 1], "the second attempt replays only"
    info = await any_astore.runs().get("r")
    assert info is not None
    name = fetch.__qualname__.replace("<locals>.", "")
    assert [s.name for s in info.steps] == [summary.__qualname__.replace("<locals>.", ""), name]

    # run.step inside a step's function (a plain one and a coroutine one) is a plain call too,
    # and inside a step_tx's function.
    async with any_astore.run("r2") as run:

        async def outer() -> int:
            return await run.step("inner", lambda: 1) + len(await run.step("inner", fetch, 2))

        assert await run.step("outer", outer) == 7
        assert await run.step_tx("w", lambda tx: run.step("inner", lambda: 5)) == 5
    info = await any_astore.runs().get("r2")
    assert info is not None and [s.name for s in info.steps] == ["outer", "w"]


async def test_step_tx_inside_a_step_is_refused_before_it_writes(any_astore: cairn.AsyncStore) -> None:
    async def outer(run: cairn.AsyncRun) -> int:
        return await run.step_tx("write", lambda tx: tx.cache("c").incr("n"))

    with pytest.raises(cairn.InvalidInputError, match="inside another step"):
        async with any_astore.run("r") as run:
            await run.step("outer", outer, run)
    assert await any_astore.cache("c").get("n") is None
    info = await any_astore.runs().get("r")
    assert info is not None and [(s.name, s.state) for s in info.steps] == [("outer", "failed")]


async def test_a_durable_sleep_inside_a_step_is_refused(any_astore: cairn.AsyncStore) -> None:
    async def outer(run: cairn.AsyncRun) -> None:
        await run.sleep("nap", "1ms")

    with pytest.raises(cairn.InvalidInputError, match="inside another step"):
        async with any_astore.run("r") as run:
            await run.step("outer", outer, run)
    info = await any_astore.runs().get("r")
    assert info is not None and [(s.name, s.state) for s in info.steps] == [("outer", "failed")]


async def test_a_step_after_the_runs_block_ended_is_refused_before_it_runs(any_astore: cairn.AsyncStore) -> None:
    """It used to call the function, then report a lease 'taken over'."""
    async with any_astore.run("r") as run:
        await run.step("a", lambda: 1)
    calls: List[int] = []
    with pytest.raises(cairn.InvalidInputError, match="block has ended"):
        await run.step("late", lambda: calls.append(1))
    with pytest.raises(cairn.InvalidInputError, match="block has ended"):
        await run.step_tx("late", lambda tx: calls.append(1))
    with pytest.raises(cairn.InvalidInputError, match="block has ended"):
        await run.sleep("late", "1s")
    assert calls == [] and run.attempt == 1
    info = await any_astore.runs().get("r")
    assert info is not None and info.state == "finished" and [s.name for s in info.steps] == ["a"]


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no text for this one")


async def test_an_exception_whose_str_raises_still_releases_the_run(any_astore: cairn.AsyncStore) -> None:
    """Recorded by its type's name; the run is released and the exception propagates as
    itself (the block's exit used to raise str()'s ValueError and leave the run held)."""

    async def bad() -> None:
        raise _Unprintable()

    with pytest.raises(_Unprintable):
        async with any_astore.run("r") as run:
            await run.step("bad", bad)
    info = await any_astore.runs().get("r")
    assert info is not None and info.state == "failed" and info.error == "_Unprintable"
    assert info.steps[0].state == "failed" and info.steps[0].error == "_Unprintable"
    async with any_astore.run("r", wait=0) as run:
        assert await run.step("bad", lambda: "ok") == "ok"
