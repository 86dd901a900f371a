"""AsyncStore locks: the async twins of test_lock.py and test_lock_polish.py, cancellation at
random points (inside the block, while waiting) leaving nothing held, a sync Store or the CLI
holding the lock, and fifty waiters that do not flood the database with tries."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
from typing import Any, List

import pytest

import cairn
import cairn._aio_lock as aio_lock
from cairn.testing import ManualClock

DEADLINE = 60.0


async def test_a_held_lock_refuses_a_second_holder_until_released(location: str) -> None:
    async with cairn.AsyncStore(location) as a, cairn.AsyncStore(location) as b:
        async with a.lock("nightly", ttl="10m", timeout=0) as lk:
            assert lk.held
            holder = await b.lock_holder("nightly")
            assert holder is not None and holder.pid == os.getpid()
            with pytest.raises(cairn.LockHeldError, match="'nightly' is held by this process .* not free at once"):
                async with b.lock("nightly", timeout=0):
                    pass
            with pytest.raises(TimeoutError):
                async with a.lock("nightly", timeout=0):
                    pass  # not re-entrant, even in the same store
        assert not lk.held
        assert await b.lock_holder("nightly") is None
        async with b.lock("nightly", timeout=0):
            pass


async def test_acquire_waits_up_to_its_timeout_and_release_says_if_it_held(astore: cairn.AsyncStore) -> None:
    holder = astore.lock("x", ttl=60)
    assert await holder.acquire(timeout=0)
    other = astore.lock("x", ttl=60)
    assert await other.acquire(timeout=0.2) is False
    assert await holder.release() is True
    assert await holder.release() is False, "not held any more"
    assert await other.acquire(timeout=0)
    with pytest.raises(cairn.InvalidInputError, match="already holds"):
        await other.acquire(timeout=0)
    assert await other.release()


async def test_a_waiting_acquire_takes_the_lock_once_the_holder_releases_it(any_astore: cairn.AsyncStore) -> None:
    holder = any_astore.lock("x")
    assert await holder.acquire(timeout=0)
    waiter = asyncio.create_task(any_astore.lock("x").acquire(timeout=DEADLINE))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await holder.release()
    assert await asyncio.wait_for(waiter, DEADLINE) is True


async def test_a_lock_past_its_ttl_is_free_and_the_late_holder_learns_it_lost_it(
    location: str, clock: ManualClock
) -> None:
    async with cairn.AsyncStore(location, clock=clock) as store:
        lk = store.lock("x", ttl=10, keep_alive=False)
        assert await lk.acquire(timeout=0)
        clock.advance(11)
        other = store.lock("x", ttl=10, keep_alive=False)
        assert await other.acquire(timeout=0), "expired"
        with pytest.raises(cairn.LeaseLostError):
            await lk.renew()
        assert await lk.release() is False
        await other.release()


async def test_the_library_keeps_a_held_lock_renewed(any_astore: cairn.AsyncStore) -> None:
    async with any_astore.lock("x", ttl=0.3):
        first = await any_astore.lock_holder("x")
        assert first is not None
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            now = await any_astore.lock_holder("x")
            assert now is not None, "the lock lapsed although its keep-alive runs"
            if now.expires_at > first.expires_at:
                break
            assert asyncio.get_running_loop().time() < deadline, "never renewed"
            await asyncio.sleep(0.05)
    assert await any_astore.lock_holder("x") is None


async def test_a_lock_of_max_holders_admits_that_many_and_names_them_when_full(location: str) -> None:
    async with cairn.AsyncStore(location) as a, cairn.AsyncStore(location) as b:
        async with a.lock("pool", max=2, timeout=0), b.lock("pool", max=2, timeout=0):
            assert [h.slot for h in await b.lock_holders("pool", max=2)] == [0, 1]
            with pytest.raises(cairn.LockHeldError, match="held by its 2 holders at most"):
                async with b.lock("pool", max=2, timeout=0):
                    pass
            with pytest.raises(cairn.LockHeldError):
                async with b.lock("pool", timeout=0):
                    pass  # a plain lock is slot 0
            async with b.lock("pool", max=3, timeout=0) as third:
                assert third.held
        assert await b.lock_holders("pool", max=3) == []
        with pytest.raises(cairn.InvalidInputError, match="1 to"):
            async with a.lock("pool", max=0, timeout=0):
                pass


async def test_lock_arguments_are_checked(astore: cairn.AsyncStore) -> None:
    with pytest.raises(cairn.InvalidInputError, match="lock TTL of 0s"):
        async with astore.lock("x", ttl=0):
            pass
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        astore.lock("x", timeout=-1)
    with pytest.raises(TypeError):
        astore.lock("x", timeout=[1])  # type: ignore[arg-type]
    with pytest.raises(cairn.InvalidInputError, match="lock name"):
        async with astore.lock("", timeout=0):
            pass
    with pytest.raises(cairn.InvalidInputError, match="not held"):
        await astore.lock("x").renew()
    assert await astore.lock_holder("x") is None, "nothing was left held by the refusals"


async def test_a_lock_decorates_a_coroutine_function_holding_it_for_each_call(astore: cairn.AsyncStore) -> None:
    @astore.lock("job", timeout=0)
    async def job(x: int) -> int:
        holder = await astore.lock_holder("job")
        assert holder is not None and holder.pid == os.getpid()
        return x * 2

    assert await job(21) == 42
    assert await job(1) == 2, "released after each call"
    assert await astore.lock_holder("job") is None
    assert job.__name__ == "job"
    async with astore.lock("job", timeout=0):
        with pytest.raises(cairn.LockHeldError):
            await job(1)
    with pytest.raises(TypeError, match="coroutine functions"):
        astore.lock("job")(lambda: None)


async def test_decorated_calls_from_many_tasks_take_turns(any_astore: cairn.AsyncStore) -> None:
    inside = 0
    most = 0

    @any_astore.lock("turns")
    async def work() -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.005)
        inside -= 1

    await asyncio.gather(*[work() for _ in range(8)])
    assert most == 1


async def test_a_lock_of_max_holders_lets_that_many_tasks_in_at_once(any_astore: cairn.AsyncStore) -> None:
    inside = 0
    most = 0

    full = asyncio.Event()

    async def work() -> None:
        nonlocal inside, most
        async with any_astore.lock("pool", max=3, timeout=DEADLINE):
            inside += 1
            most = max(most, inside)
            if inside == 3:
                full.set()
            await asyncio.wait_for(full.wait(), DEADLINE)  # the first three meet inside
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*[work() for _ in range(12)])
    assert most == 3
    assert await any_astore.lock_holders("pool", max=3) == []


async def test_cancelling_a_task_inside_the_block_at_random_points_releases_the_lock(
    any_astore: cairn.AsyncStore,
) -> None:
    rng = random.Random(22)
    entered = 0
    for i in range(200):
        inside = asyncio.Event()

        async def hold() -> None:
            nonlocal entered
            async with any_astore.lock("cancel-me", ttl="10m", timeout=DEADLINE):
                entered += 1
                inside.set()
                await asyncio.sleep(rng.random() * 0.002)
                await any_astore.lock_holder("cancel-me")  # a store call inside the block
                await asyncio.sleep(3600)

        task = asyncio.create_task(hold())
        if rng.random() < 0.5:
            await asyncio.wait_for(inside.wait(), DEADLINE)  # inside the block, or its store call
        # Else anywhere: before the try, during it, as it returns.
        for _ in range(rng.randrange(0, 12)):
            await asyncio.sleep(0)
        if rng.random() < 0.3:
            await asyncio.sleep(rng.random() * 0.003)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # A lock taken as the cancellation arrived is given back by a thread of its own.
        await wait_free(any_astore, "cancel-me", f"round {i}")
    assert 0 < entered < 200, "the cancellations landed both inside the block and before it"


async def test_cancelling_waiting_tasks_at_random_points_leaves_nothing_held(any_astore: cairn.AsyncStore) -> None:
    rng = random.Random(7)
    won = 0
    for i in range(150):
        held = any_astore.lock("busy")
        # A try queued by a waiter cancelled in the last round may still run (and give the lock
        # straight back): wait for it rather than fail at once.
        assert await held.acquire(timeout=DEADLINE)
        locks = [any_astore.lock("busy") for _ in range(5)]
        waiters = [asyncio.create_task(lk.acquire(timeout=DEADLINE)) for lk in locks]
        for _ in range(rng.randrange(0, 8)):
            await asyncio.sleep(0)
        if rng.random() < 0.5:
            await held.release()  # the waiters race for it while being cancelled
        for _ in range(rng.randrange(0, 8)):
            await asyncio.sleep(0)
        for w in waiters:
            w.cancel()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        # Only a waiter whose acquire returned True (it finished before its cancellation) holds
        # the lock, through its Lock object; a cancelled one holds nothing.
        for lk, r in zip(locks, results):
            assert lk.held == (r is True), (i, results)
            if lk.held:
                won += 1
                await lk.release()
        await held.release()
        await wait_free(any_astore, "busy", f"round {i}")
    # The store's queue of waiters was not left blocked by a cancelled one.
    async with any_astore.lock("busy", timeout=5):
        pass
    assert won < 150


async def wait_free(astore: cairn.AsyncStore, name: str, why: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while await astore.lock_holder(name) is not None:
        assert asyncio.get_running_loop().time() < deadline, f"{name} still held: {why}"
        await asyncio.sleep(0.001)


async def test_a_lock_held_by_a_sync_store_makes_the_async_waiter_wait_and_its_release_wakes_it(
    location: str, any_astore: cairn.AsyncStore
) -> None:
    sync = cairn.Store(location)
    try:
        held = sync.lock("shared", timeout=0)
        assert held.acquire()
        waiter = asyncio.create_task(any_astore.lock("shared").acquire(timeout=DEADLINE))
        await asyncio.sleep(0.05)
        assert not waiter.done(), "waits while the sync store holds it"
        assert held.release()
        assert await asyncio.wait_for(waiter, DEADLINE) is True
        holder = sync.lock_holder("shared")
        assert holder is not None and holder.pid == os.getpid()
        with pytest.raises(cairn.LockHeldError):
            with sync.lock("shared", timeout=0):
                pass
    finally:
        sync.close()


async def test_a_lock_held_by_the_cli_makes_the_async_waiter_wait_until_the_command_ends(
    cli: str, location: str, any_astore: cairn.AsyncStore
) -> None:
    with subprocess.Popen(
        [cli, "--db", location, "lock", "cron", "--", "sh", "-c", "echo held; read line"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            await cli_holds(proc, any_astore)
        finally:
            if proc.poll() is None:
                proc.kill()


async def cli_holds(proc: "subprocess.Popen[str]", any_astore: cairn.AsyncStore) -> None:
    """The CLI (`proc`) holds the lock "cron" until a line comes on its stdin."""
    assert proc.stdout is not None and proc.stdin is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), DEADLINE)
    assert line.strip() == "held"
    holder = await any_astore.lock_holder("cron")
    assert holder is not None and holder.pid == proc.pid
    with pytest.raises(cairn.LockHeldError, match=f"process {proc.pid}"):
        async with any_astore.lock("cron", timeout=0):
            pass
    waiter = asyncio.create_task(any_astore.lock("cron").acquire(timeout=DEADLINE))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    proc.stdin.write("done\n")
    proc.stdin.flush()
    assert await asyncio.wait_for(waiter, DEADLINE) is True
    assert await asyncio.wait_for(asyncio.to_thread(proc.wait), DEADLINE) == 0


async def test_fifty_waiters_on_one_held_lock_queue_in_memory_and_only_one_polls(
    any_astore: cairn.AsyncStore, location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: List[str] = []
    real_try = aio_lock._try

    def counting_try(*args: Any) -> Any:
        tries.append(args[1])
        return real_try(*args)

    monkeypatch.setattr(aio_lock, "_try", counting_try)
    sync = cairn.Store(location)
    try:
        held = sync.lock("hot", timeout=0)
        assert held.acquire()
        order: List[int] = []

        async def wait(n: int) -> None:
            async with any_astore.lock("hot", timeout=DEADLINE):
                order.append(n)

        waiters = [asyncio.create_task(wait(n)) for n in range(50)]
        # Let them wait a while: the one polling naps 2 ms doubling to 100 ms.
        while len(tries) < 8:
            await asyncio.sleep(0.01)
        polled = len(tries)
        assert held.release()
        await asyncio.wait_for(asyncio.gather(*waiters), DEADLINE)
        assert sorted(order) == list(range(50))
        # Fifty pollers would each have tried about as often as the one did while it was
        # held; queued, each of the others tried when its turn came and once more as the
        # one before it released (a release in this store wakes the next in line).
        assert len(tries) <= polled + 2 * 50 + 10, (polled, len(tries))
        assert order == list(range(50)), "they got it in the order they asked"
    finally:
        sync.close()



async def test_a_lock_left_held_in_this_store_is_taken_by_its_waiter_once_expired(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    forgotten = any_aclocked.lock("left", ttl=10, keep_alive=False)
    assert await forgotten.acquire(timeout=0)  # and never released
    got = asyncio.create_task(any_aclocked.lock("left", ttl=10).acquire(timeout=DEADLINE))
    others = [asyncio.create_task(any_aclocked.lock("left", ttl=10).acquire(timeout=DEADLINE)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not got.done()
    clock.advance(11)
    assert await asyncio.wait_for(got, DEADLINE) is True, "the queue is not held up by the forgotten holder"
    for o in others:
        o.cancel()
    await asyncio.gather(*others, return_exceptions=True)
