"""The loop stays responsive while coroutines wait for work (issue 22): a heartbeat task
ticking every millisecond, N coroutines waiting in ``claim_next(wait=None)`` on an empty queue,
then another connection enqueuing N items, then N waiters cancelled. Prints the heartbeat's
largest gap, the threads in use, and how long the wake-up and the cancellation took; then the
claim-and-complete rate of 20 coroutines against the sync Store's on one thread.

    target/py-venv/bin/python bench/compare/async_queue_wait.py [LOCATION] [N]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
from typing import List

import cairn


async def measure(loc: str, n: int) -> None:
    async with cairn.AsyncStore(loc) as store:
        q = store.ledger("bench-wait")
        await q.clear()
        gaps: List[float] = []
        stop = False

        async def heartbeat() -> None:
            last = time.perf_counter()
            while not stop:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        hb = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.1)
        gaps.clear()
        waiters = [asyncio.create_task(q.claim_next(worker=f"w{i}", wait=None)) for i in range(n)]
        await asyncio.sleep(2.0)
        threads = threading.active_count()
        t0 = time.perf_counter()
        await asyncio.to_thread(lambda: cairn.Store(loc).ledger("bench-wait").enqueue([f"i{i}" for i in range(n)]))
        claims = await asyncio.gather(*waiters)
        woke = time.perf_counter() - t0
        waiters = [asyncio.create_task(q.claim_next(worker=f"w{i}", wait=None)) for i in range(n)]
        await asyncio.sleep(0.5)
        t1 = time.perf_counter()
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        cancelled = time.perf_counter() - t1
        stop = True
        await hb
        gaps.sort()
        print(
            f"{n} waiters: heartbeat max gap {gaps[-1] * 1000:.1f} ms (p99 {gaps[int(len(gaps) * 0.99)] * 1000:.1f} ms); "
            f"threads {threads}; {sum(c is not None for c in claims)} woken and claimed in {woke * 1000:.0f} ms; "
            f"{n} waits cancelled in {cancelled * 1000:.0f} ms; claimed left {(await q.counts()).claimed - n}"
        )
        await q.clear()
        await q.enqueue([f"t{i}" for i in range(1000)])
        t0 = time.perf_counter()

        async def work(i: int) -> int:
            done = 0
            async for c in q.claims(worker=f"w{i}"):
                async with c:
                    done += 1
            return done

        total = sum(await asyncio.gather(*(work(i) for i in range(20))))
        dt = time.perf_counter() - t0
        print(f"AsyncStore, 20 coroutines: {total} claims completed at {total / dt:.0f}/s")
    with cairn.Store(loc) as s:
        sq = s.ledger("bench-wait")
        sq.clear()
        sq.enqueue([f"t{i}" for i in range(1000)])
        t0 = time.perf_counter()
        total = 0
        for c in sq.claims(worker="w"):
            with c:
                total += 1
        dt = time.perf_counter() - t0
        print(f"sync Store, one thread: {total} claims completed at {total / dt:.0f}/s")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        location = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else f"{d}/state.db"
        asyncio.run(measure(location, int(sys.argv[2]) if len(sys.argv) > 2 else 50))
