"""Async workers in processes of their own, SIGKILLed mid-claim: nothing is lost. An item a
killed worker held is handed out again (at once on this host, where its process is known dead;
after its lease for a worker elsewhere), each item is completed once, and none is given up.
``CAIRN_PY_ASYNC_KILLS`` sets the kills per engine (12 by default), ``CAIRN_PY_SEED`` replays
a run."""

from __future__ import annotations

import os
import random
from typing import Dict, List

import cairn

from conftest import Child

KILLS = int(os.environ.get("CAIRN_PY_ASYNC_KILLS", "12"))


def test_a_killed_async_worker_s_claim_is_handed_out_again_after_its_lease(
    location: str, children: List[Child]
) -> None:
    with cairn.Store(location) as s:
        s.ledger("q").enqueue(["a", "b"])
    # A worker named as on another host: its death is seen only when its lease runs out.
    victim = Child("async-worker", location, "q", "2", "0", "elsewhere:1:async")
    children.append(victim)
    assert victim.line() == "holding a", victim.stderr()
    victim.kill()
    with cairn.Store(location) as s:
        q = s.ledger("q")
        got = {}
        for _ in range(2):  # b at once; a once the killed worker's lease ran out (the first, if it has)
            c = q.claim_next(worker="rescuer", wait=60)
            assert c is not None
            got[c.id] = c.attempt
            c.complete()
        assert got == {"a": 2, "b": 1}, "the lost claim counted as an attempt"
        assert q.counts() == cairn.LedgerCounts(pending=0, claimed=0, done=2, failed=0)


def test_async_workers_killed_at_random_moments_lose_no_item_and_complete_each_once(
    location: str, children: List[Child]
) -> None:
    seed = int(os.environ.get("CAIRN_PY_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    # A kill comes after 20 lines (10 items) on average: enough items that the queue outlasts them.
    n = max(200, 25 * KILLS)
    ids = [f"item-{i:05}" for i in range(n)]
    with cairn.Store(location) as s:
        q = s.ledger("q", max_attempts=1000)  # claims lost to kills count as attempts
        q.enqueue(ids)
    done: Dict[str, int] = {}
    kills = 0
    finished = False
    while not finished:
        w = Child("async-worker", location, "q", "3600", "8")
        children.append(w)
        stop_after = rng.randint(1, 40) if kills < KILLS else None
        seen = 0
        while True:
            line = w.line()
            if line is None or line == "empty":
                finished = line == "empty"
                break
            what, id = line.split(" ", 1)
            assert what in ("claimed", "done"), line
            if what == "done":
                done[id] = done.get(id, 0) + 1
            seen += 1
            if stop_after is not None and seen >= stop_after:
                w.kill()  # SIGKILL: mid-claim, mid-commit, between items
                kills += 1
                break
        if finished:
            assert w.wait() == 0, w.stderr()
        else:
            assert line is not None or w.proc.returncode is not None, f"seed {seed}: {w.stderr()}"
    assert kills == KILLS, f"seed {seed}: the queue emptied after {kills} kills"
    assert [id for id, n in done.items() if n > 1] == [], f"seed {seed}: completed twice"
    with cairn.Store(location) as s:
        q = s.ledger("q")
        assert q.counts() == cairn.LedgerCounts(pending=0, claimed=0, done=n, failed=0), f"seed {seed}"
        # A "done" line is printed after the commit: a kill in between loses the line, never the item.
        assert set(done) <= set(ids)
        assert sorted(i.id for i in q.list(state="done", limit=n + 1)) == ids
