"""Type-checked with `mypy --strict` by scripts/test-python: the public API as a user would
write it, so that a wrong annotation or a missing py.typed shows up there. Also run by the
suite (test_typing.py), so that it is correct Python too."""

from __future__ import annotations

import asyncio
import datetime
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Type

import cairn
from cairn.testing import ManualClock


def exercise(tmp: Path) -> None:
    clock = ManualClock()
    store: cairn.Store = cairn.Store(tmp / "state.db", busy_timeout=5.0, durability="full", clock=clock)

    pages: cairn.Cache = store.cache("pages")
    pages.set("home", "<html>", ttl=datetime.timedelta(hours=1))
    pages.set("about", b"raw", ttl="5m")
    pages["counter"] = 1
    body: Any = pages.get("home", default="")
    missing: Optional[str] = pages.get("nope")
    runs: int = pages.incr("runs", by=2, ttl=60)
    keys: List[str] = pages.keys(prefix="h")
    fresh: bool = "home" in pages and pages.add("x", {"a": [1]}) and pages.touch("x", 10.5)
    stats: cairn.CacheStats = pages.stats()
    rate: Optional[float] = stats.hit_rate
    doubled: Dict[str, int] = pages.get_or_set("report", lambda: {"n": 2}, ttl=3600)
    del pages["counter"]
    removed: int = pages.sweep() + pages.clear()

    @store.memoize(ttl="1h")
    def fetch(url: str) -> str:
        return url.upper()

    shout: str = fetch("a")
    forgot: bool = fetch.invalidate("a")
    fetch_key: str = fetch.cache_key(url="a")

    @store.memoize
    def forever(n: int) -> List[int]:
        return [n]

    listed: List[int] = forever(1)

    @store.lock("typed", timeout=0)
    def locked_job(n: int) -> int:
        return n

    locked_result: int = locked_job(1)
    entries: int = len(store.cache("c"))
    many: List[Any] = store.cache("c").get_many(["a"])
    for work in store.ledger("jobs").claims(lease="1m", wait=0):
        with work:
            pass

    ledger: cairn.Ledger = store.ledger("jobs", max_attempts=5)
    todo: List[str] = ledger.filter_new(["a", "b"])
    mixed: List[cairn.Id] = ledger.filter_new(["a", 1])
    newly: bool = ledger.mark_done("a", result={"rows": 3})
    done: bool = ledger.is_done("a") and "a" in ledger
    state: cairn.ItemState = ledger.fail("b", ValueError("bad"))
    queued: int = ledger.enqueue(["c", "d"])
    claim: Optional[cairn.Claim] = ledger.claim_next(lease=30)
    if claim is not None:
        with claim:
            until: datetime.datetime = claim.lease_until
    for id in ledger.each(["e"]):
        print(id)
    counts: cairn.LedgerCounts = ledger.counts()
    item: Optional[cairn.Item] = ledger.item("a")

    queue: cairn.Ledger = store.ledger("emails", max_attempts=5, retry_delay="30s")
    items: List[cairn.QueueItem] = [
        cairn.QueueItem("m1", data={"to": "a@example.com"}),
        cairn.QueueItem("m2", delay=datetime.timedelta(minutes=5)),
        cairn.QueueItem(3, not_before=datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)),
        cairn.QueueItem("m4", data=b"raw", not_before="2030-01-01T00:00:00Z"),
    ]
    added: int = queue.enqueue_items(items) + queue.enqueue(["m5"], delay=60)
    job: Optional[cairn.Claim] = queue.claim_next(lease="1m")
    if job is not None:
        payload: Any = job.data
        attempt: int = job.attempt
        job.fail("smtp down")
    base: float = queue.retry_delay
    back: int = queue.retry(["m1"]) + queue.retry_all_failed() + queue.prune_done("30d")
    if item is not None:
        due: Optional[datetime.datetime] = item.due
        carried: Any = item.data

    with store.transaction() as tx:
        tx.cache("pages").set("k", 1)
        tx.ledger("jobs").mark_done("z")
        tx.checkpoint("export").set({"page": 2})
    position: Any = store.checkpoint("export").get(default={})

    with store.lock("nightly", ttl=600, timeout=0) as lock:
        held: bool = lock.held
    holder: Optional[cairn.LockHolder] = store.lock_holder("nightly")

    report: cairn.MigrationReport = store.migrate("app", ["CREATE TABLE t (a INTEGER)"])
    store.execute("INSERT INTO t VALUES (?1)", [1])
    rows: List[Any] = store.query("SELECT a FROM t")
    own: cairn.MigrationReport = cairn.migrate_file(tmp / "app.db", ["CREATE TABLE u (a)"])
    status: cairn.MigrationStatus = cairn.migration_status_of_file(tmp / "app.db", tmp)

    try:
        store.cache("").get("k")
    except cairn.InvalidInputError as e:
        message: str = str(e)
    except cairn.Error:
        raise
    nightly = store.job("nightly", cron="0 3 * * *", tz="Europe/Berlin", catch_up="all", retry=False)

    @store.job("hourly", every="1h")
    def hourly(slot: cairn.Slot) -> None:
        print(slot.start.isoformat(), slot.end.isoformat())

    ran: bool = nightly.run(lambda slot: None) or hourly()
    runs_of: List[cairn.JobRun] = nightly.history(limit=5)
    duration: Optional[float] = runs_of[0].duration if runs_of else None
    healthy: bool = nightly.check("1d")
    why: str = nightly.health("1d").message
    names: List[str] = [j.name for j in store.jobs()]
    del (ran, duration, healthy, why, names)
    store.close()

    blocking: Type[RuntimeWarning] = cairn.BlockingCallWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error", blocking)

    try:
        cairn.Store("postgres://worker@127.0.0.1:1/jobs", schema="jobs", busy_timeout=1)
    except cairn.UnavailableError as e:
        maybe: bool = e.maybe_committed
    del (body, missing, runs, keys, fresh, rate, doubled, removed, shout, todo, mixed, newly, done, state)
    del (queued, counts, item, position, holder, report, rows, own, status, maybe, added, base, back)


async def exercise_async(tmp: Path) -> None:
    """The asyncio API as a user would write it (cairn.AsyncStore)."""
    async with cairn.AsyncStore(tmp / "async.db", busy_timeout=5.0, workers=2) as store:
        opened: cairn.AsyncStore = await store.open()
        pages: cairn.AsyncCache = store.cache("pages")
        await pages.set("home", "<html>", ttl="1h")
        body: Any = await pages.get("home", default="")
        n: int = await pages.incr("hits")
        keys: List[str] = await pages.keys(prefix="h")
        there: bool = await pages.contains("home") and await pages.add("x", 1) and await pages.delete("x")
        stats: cairn.CacheStats = await pages.stats()

        async def fetch_report() -> Dict[str, int]:
            return {"n": 2}

        report: Dict[str, int] = await pages.get_or_set("report", fetch_report, ttl=3600)
        report2: Dict[str, int] = await pages.get_or_set("report2", lambda: {"n": 3})
        cp: cairn.AsyncCheckpoint = store.checkpoint("crawl")
        async with store.transaction() as tx:
            txn: cairn.AsyncTransaction = tx
            await tx.cache("pages").set("k", 1)
            await tx.checkpoint("crawl").set({"last": "k"})
            changed: List[Tuple[Any, ...]] = await tx.query("SELECT 1")
        position: Any = await cp.get()

        @store.memoize(ttl="1h")
        async def rate(currency: str) -> float:
            return 1.08

        eur: float = await rate("EUR")
        forgot: bool = await rate.invalidate("EUR")
        key: str = rate.cache_key("EUR")
        swept: int = await store.sweep()
        namespaces: List[str] = await store.cache_namespaces()
        sync: cairn.Store = store.sync
        del (opened, body, n, keys, there, stats, report, report2, txn, changed, position, eur, forgot, key)
        del (swept, namespaces, sync)
async def exercise_async_ledger(tmp: Path) -> None:
    """Every call of cairn.AsyncLedger and cairn.AsyncClaim, typed."""
    async with cairn.AsyncStore(tmp / "async-ledger.db") as store:
        urls: cairn.AsyncLedger = store.ledger("urls", max_attempts=5, retry_delay="30s")
        new: List[str] = await urls.filter_new(["a", "b"])
        ints: List[int] = await urls.filter_new([1, 2])
        marked: bool = await urls.mark_done("a", result={"rows": 1})
        many: int = await urls.mark_done_many(["x", "y"])
        done: bool = await urls.is_done("a")
        has: bool = await urls.contains("a")
        size: int = await urls.len()
        ids: List[str] = [id async for id in urls]
        each: List[str] = [id async for id in urls.each(["c", "d"])]
        result: object = await urls.result("a", None)
        item: Optional[cairn.Item] = await urls.item("a")
        state: cairn.ItemState = await urls.fail("e", ValueError("boom"))
        queued: int = await urls.enqueue(["f", "g"], delay="1s", priority=5, group="g1")
        queued += await urls.enqueue_items([cairn.QueueItem("h", data={"k": 1}, not_before="2020-01-01T00:00:00Z")])
        back: int = await urls.retry(["e"]) + await urls.retry_all_failed()
        pruned: int = await urls.prune_done("30d")
        policy: cairn.LedgerPolicy = await urls.policy()
        await urls.set_policy(max_attempts=None, retry_delay=None)
        attempts: int = await urls.max_attempts()
        delay: float = await urls.retry_delay()
        claim: Optional[cairn.AsyncClaim] = await urls.claim_next(lease=60, worker="w1", wait="10ms")
        if claim is not None:
            async with claim:
                await claim.extend("5m")
                print(claim.id, claim.worker, claim.token, claim.lease_until, claim.attempt, claim.data)
        one: Optional[cairn.AsyncClaim] = await urls.claim("g", lease=60)
        if one is not None:
            await one.snooze("1m")
        batch: List[cairn.AsyncClaim] = await urls.claim_next_many(2, lease=60)
        settled: List[bool] = await urls.complete_many(batch)
        held: Optional[cairn.AsyncClaim] = await urls.held_claim("f", "w1")
        async for c in urls.claims(worker="w1", lease=60, wait="10ms"):
            async with c:
                pass
        try:
            taken: cairn.AsyncClaim = await urls.take(lease=60)
            fell: cairn.ItemState = await taken.fail("no")
            await taken.release()
            await taken.complete()
        except (cairn.NothingDueError, cairn.LeaseLostError):
            pass
        drained: bool = await urls.wait_drained(timeout="10ms")
        counts: cairn.LedgerCounts = await urls.counts()
        await urls.enqueue(["k"])
        cancelled: bool = await urls.cancel("k")
        cancelled_n: int = await urls.cancel_many([])
        await urls.pause(for_="1h")
        paused: bool = await urls.is_paused()
        until: Optional[datetime.datetime] = await urls.paused_until()
        resumed: bool = await urls.resume()
        page: List[cairn.Item] = await urls.list(state="done", after=None, limit=10)
        deleted: bool = await urls.delete("a")
        cleared: int = await urls.clear()
        async with store.transaction() as tx:
            in_tx: bool = await tx.ledger("urls").mark_done("z")
        del (new, ints, marked, many, done, has, size, ids, each, result, item, state, queued, back, pruned)
        del (policy, attempts, delay, settled, held, drained, counts, cancelled, cancelled_n, paused, until)
        del (resumed, page, deleted, cleared, in_tx)


async def exercise_async_locks_limits_runs_jobs(tmp: Path) -> None:
    """AsyncStore's locks, limiters, durable runs and jobs (issue 22, part b)."""
    async with cairn.AsyncStore(tmp / "async-b.db") as store:
        lock: cairn.AsyncLock = store.lock("nightly", ttl="10m", timeout=30, max=1)
        async with lock:
            held: bool = lock.held
            await lock.renew(ttl=600)
        got: bool = await store.lock("nightly").acquire(timeout=0)
        holder: Optional[cairn.LockHolder] = await store.lock_holder("nightly")
        holders: List[cairn.LockHolder] = await store.lock_holders("pool", max=3)

        @store.lock("report", timeout=0)
        async def report(n: int) -> int:
            return n * 2

        doubled: int = await report(21)

        api: cairn.AsyncLimiter = store.limiter("api", "10/s", burst=5)
        async with api:
            pass
        slot_now: bool = await api.try_acquire()
        waited: bool = await api.acquire(timeout="1s")

        @api
        async def call_api(path: str) -> str:
            return path

        body: str = await call_api("/x")

        @store.step(version="2")
        async def fetch(page: int) -> str:
            return f"page {page}"

        async def count(tx: cairn.AsyncTransaction) -> int:
            return await tx.cache("c").incr("n")

        async with store.run("crawl", lease="1m", wait=0) as run:
            arun: cairn.AsyncRun = run
            first: List[int] = await run.step("list", lambda: [1, 2])
            page: str = await fetch(1)
            n: int = await run.step_tx("count", count)
            left: Optional[float] = await run.sleep("pause", 0, wait=False)
            attempt: int = run.attempt
        runs: cairn.AsyncRuns = store.runs()
        infos: List[cairn.RunInfo] = await runs.list("finished")
        info: Optional[cairn.RunInfo] = await runs.get("crawl")
        reset: int = await runs.reset("crawl", from_step="list")
        forgot: bool = await runs.forget("crawl")
        pruned: int = await runs.prune("30d")

        job: cairn.AsyncJob = store.job("hourly", every="1h")

        @store.job("nightly", cron="0 3 * * *", tz="Europe/Berlin")
        async def nightly(slot: cairn.Slot) -> None:
            print(slot.start.isoformat())

        async def work(slot: cairn.Slot) -> None:
            pass

        ran: bool = await job.run(work) or await nightly()
        history: List[cairn.JobRun] = await job.history(limit=5)
        current: cairn.Slot = await job.current_slot()
        healthy: bool = await job.check("1d")
        why: str = (await job.health("1d")).message
        jobs: List[cairn.JobInfo] = await store.jobs()
        del (held, got, holder, holders, doubled, slot_now, waited, body, arun, first, page, n, left, attempt)
        del (infos, info, reset, forgot, pruned, ran, history, current, healthy, why, jobs)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        exercise(Path(d))
        asyncio.run(exercise_async(Path(d)))
        asyncio.run(exercise_async_ledger(Path(d)))
        asyncio.run(exercise_async_locks_limits_runs_jobs(Path(d)))
