"""Type-checked with `mypy --strict` by scripts/test-python: the public API as a user would
write it, so that a wrong annotation or a missing py.typed shows up there. Also run by the
suite (test_typing.py), so that it is correct Python too."""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Type

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


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        exercise(Path(d))
