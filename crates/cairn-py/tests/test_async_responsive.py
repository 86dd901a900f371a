"""The loop stays responsive (issue 22): a heartbeat task ticking every millisecond sees no gap
over 20 ms while 50 coroutines wait on a held lock, on a compute-once fill and on an empty
queue.

The gap bound is the issue's; nothing else about timing is asserted. The gap is the largest
interval between two consecutive heartbeat ticks once the first 100 ms (threads starting,
connections opening) have passed. What else makes gaps, and can make this test flaky on a
2-core machine loaded by other work: the operating system not scheduling the loop's thread
(an idle loop alone showed 8-14 ms gaps at a load average of 7), and the interpreter lock:
each time one of the store's threads comes back from the extension while the loop runs
Python, it waits the switch interval (5 ms) and then takes the lock from the loop, which gets
it back when that thread calls into the extension again; a few of those in a row within one
heartbeat interval, with 50 transactions' threads and two workers asking, reach 20 ms.

Each scenario is an ``async def scenario(store, path)`` that starts its 50 coroutines, waits
for them, and checks what they did; add one to SCENARIOS.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Awaitable, Callable, Dict, List

import pytest

import cairn

#: The issue's bound on the heartbeat's gap.
MAX_GAP = 0.020
#: The heartbeat's start, excluded from the measure.
WARM_UP = 0.100
#: How many coroutines use the store at once.
N = 50

Scenario = Callable[[cairn.AsyncStore, str], Awaitable[None]]


async def largest_gap_during(work: Awaitable[None]) -> float:
    """The largest gap between two ticks of a heartbeat sleeping 1 ms at a time, measured
    from `WARM_UP` after the heartbeat started until `work` ends. Asserts the heartbeat ticked."""
    stop = asyncio.Event()
    gaps: List[float] = []

    async def heartbeat() -> None:
        start = last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            if now - start > WARM_UP:
                gaps.append(now - last)
            last = now

    # The garbage the suite's earlier tests left is collected now, and what survives is kept out
    # of the collector's way (gc.freeze) while the heartbeat runs: a full collection of a heap
    # that 1,300 tests built stalls any thread that allocates for tens of milliseconds (34 ms
    # seen in CI, never with this file alone), which measures the suite, not the store.
    gc.collect()
    gc.freeze()
    beat = asyncio.create_task(heartbeat())
    try:
        await asyncio.sleep(WARM_UP)
        await work
    finally:
        stop.set()
        await beat
        gc.unfreeze()
    assert len(gaps) >= 20, f"the heartbeat ticked {len(gaps)} times while the work ran"
    return max(gaps)


async def held_lock(store: cairn.AsyncStore, path: str) -> None:
    """50 coroutines wait for a lock another store holds for 0.5 s, then take it in turn."""
    release = threading.Event()
    taken = threading.Event()

    def hold() -> None:
        with cairn.Store(path) as other, other.lock("nightly", ttl="1m", timeout=0):
            taken.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert await asyncio.to_thread(taken.wait, 5)
        got: List[int] = []

        async def one(w: int) -> None:
            async with store.lock("nightly", ttl="1m", timeout=30):
                got.append(w)

        waiting = asyncio.gather(*[one(w) for w in range(N)])
        await asyncio.sleep(0.5)
        assert got == []
        release.set()
        await waiting
        assert sorted(got) == list(range(N))
    finally:
        release.set()
        holder.join()


async def compute_once(store: cairn.AsyncStore, path: str) -> None:
    """50 coroutines ask for one missing key whose computation takes 0.5 s: one computes."""
    cache = store.cache("fill")
    calls: List[int] = []

    async def compute() -> str:
        calls.append(1)
        await asyncio.sleep(0.5)
        return "filled"

    got = await asyncio.gather(*[cache.get_or_set("k", compute, ttl="1h") for _ in range(N)])
    assert got == ["filled"] * N
    assert calls == [1]


async def empty_queue(store: cairn.AsyncStore, path: str) -> None:
    """50 workers wait on an empty queue; 10 items come after 0.3 s; every worker's loop ends
    0.5 s after its last item."""
    ledger = store.ledger("urls")
    done: List[str] = []

    async def worker(w: int) -> None:
        async for claim in ledger.claims(worker=f"w{w}", lease=60, wait=0.5):
            async with claim:
                done.append(claim.id)

    workers = asyncio.gather(*[worker(w) for w in range(N)])
    await asyncio.sleep(0.3)
    await ledger.enqueue([f"u{i}" for i in range(10)])
    await workers
    assert sorted(done) == sorted(f"u{i}" for i in range(10))


#: The waits the issue names. (Busy work is not among them: 50 coroutines each running
#: transactions keep 50 threads coming back from the extension, each waiting the interpreter's
#: switch interval to take the lock from the loop; on a loaded 2-core machine a few of those
#: in a row exceed 20 ms. See the module's docstring.)
SCENARIOS: Dict[str, Scenario] = {
    "a held lock": held_lock,
    "a compute-once fill": compute_once,
    "an empty queue": empty_queue,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_a_heartbeat_sees_no_gap_over_20_ms_while_50_coroutines_use_the_store(name: str, path: str) -> None:
    async with cairn.AsyncStore(path) as store:
        gap = await largest_gap_during(SCENARIOS[name](store, path))
    assert gap <= MAX_GAP, f"{name}: the loop stalled {gap * 1000:.1f} ms"
