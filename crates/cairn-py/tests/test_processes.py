"""Several processes on one file: counters, compute-once, a shared queue with a killed worker
(on a file and on the PostgreSQL test server), and locks. Children are real processes
(tests/child.py) killed with SIGKILL."""

from __future__ import annotations

import os
import queue
from pathlib import Path
from typing import Optional

import pytest

import cairn

from conftest import DEADLINE, Child


def test_four_processes_incrementing_one_counter_lose_nothing(path: str, children: list[Child]) -> None:
    cairn.Store(path).close()
    for _ in range(4):
        children.append(Child("incr", path, "500"))
    for c in children:
        c.expect("done")
        assert c.wait() == 0
    with cairn.Store(path) as s:
        assert s.cache("counters")["shared"] == 2000


def _next(tap: queue.Queue[tuple[Child, Optional[str]]]) -> tuple[Child, Optional[str]]:
    try:
        return tap.get(timeout=DEADLINE)
    except queue.Empty:
        pytest.fail(f"no child printed anything for {DEADLINE} s")


def _stampede(path: str, marker: Path, children: list[Child], tap: queue.Queue[tuple[Child, Optional[str]]]) -> Child:
    """Four children wait at a barrier, then get_or_set one key at once; returns the one
    computing it (holding its computation until told how to end)."""
    marker.touch()
    cairn.Store(path).close()
    procs = [Child("compute-once", path, str(marker), tap=tap) for _ in range(4)]
    children.extend(procs)
    ready = 0
    while ready < 4:
        _, line = _next(tap)
        assert line == "ready"
        ready += 1
    for c in procs:
        c.send("go")
    while True:
        c, line = _next(tap)
        assert line in ("calling", "computing"), line
        if line == "computing":
            return c


def _outcomes(tap: queue.Queue[tuple[Child, Optional[str]]], running: int, until: str = "") -> tuple[dict[str, int], Optional[Child]]:
    """Count the children's last words until `running` of them have ended (or one says
    `until`, which is returned)."""
    counts: dict[str, int] = {}
    while running:
        c, line = _next(tap)
        if line is None:
            running -= 1
            continue
        if line == until:
            return counts, c
        word = line.split()[0]
        if word == "calling":
            continue
        counts[word] = counts.get(word, 0) + 1
    return counts, None


def test_four_processes_missing_one_key_compute_it_once(path: str, tmp_path: Path, children: list[Child]) -> None:
    tap: queue.Queue[tuple[Child, Optional[str]]] = queue.Queue()
    marker = tmp_path / "computed"
    computing = _stampede(path, marker, children, tap)
    computing.send("finish")
    counts, _ = _outcomes(tap, 4)
    assert counts == {"value": 4}, counts
    assert len(marker.read_text().split()) == 1, "computed more than once"
    for c in children:
        assert c.wait() == 0


def test_a_computation_that_raises_hands_over_to_the_next_waiter(
    path: str, tmp_path: Path, children: list[Child]
) -> None:
    tap: queue.Queue[tuple[Child, Optional[str]]] = queue.Queue()
    marker = tmp_path / "computed"
    first = _stampede(path, marker, children, tap)
    first.send("fail")
    counts, second = _outcomes(tap, 4, until="computing")
    assert second is not None and second is not first, "another waiter took over"
    second.send("finish")
    more, _ = _outcomes(tap, 4)
    assert counts.get("raised", 0) + more.get("raised", 0) == 1
    assert counts.get("value", 0) + more.get("value", 0) == 3
    assert len(marker.read_text().split()) == 2


def test_workers_drain_a_queue_exactly_once_and_take_over_a_killed_workers_item(
    location: str, children: list[Child]
) -> None:
    ids = [f"item-{i:03}" for i in range(200)]
    with cairn.Store(location) as s:
        assert s.ledger("queue").enqueue(ids) == 200
    # One worker claims an item and dies holding it (lease: an hour).
    victim = Child("worker", location, "queue", "3600", "1")
    children.append(victim)
    line = victim.line()
    assert line is not None and line.startswith("holding "), victim.stderr()
    held = line.split()[1]
    victim.kill()
    workers = [Child("worker", location, "queue", "3600", "0") for _ in range(4)]
    children.extend(workers)
    done: list[str] = []
    for w in workers:
        out = w.all_lines()
        assert w.wait() == 0, w.stderr()
        assert out[-1] == "empty"
        done.extend(line.split()[1] for line in out[:-1])
    assert sorted(done) == ids, "every item exactly once"
    assert held in done, "the dead worker's item was taken over at once, not after its hour"
    with cairn.Store(location) as s:
        assert s.ledger("queue").counts() == cairn.LedgerCounts(pending=0, claimed=0, done=200, failed=0)


def test_one_process_holds_a_lock_and_a_killed_holders_lock_is_taken_over_at_once(
    path: str, children: list[Child]
) -> None:
    holder = Child("hold-lock", path, "nightly")
    children.append(holder)
    line = holder.line()
    assert line == f"held {holder.proc.pid}", holder.stderr()
    contender = Child("hold-lock", path, "nightly")
    children.append(contender)
    assert contender.line() == "busy"
    with cairn.Store(path) as s:
        h = s.lock_holder("nightly")
        assert h is not None and h.pid == holder.proc.pid
        holder.kill()
        # Its TTL is an hour; a dead holder on this host is recognised at once.
        with s.lock("nightly", ttl=60, timeout=0):
            h = s.lock_holder("nightly")
            assert h is not None and h.pid == os.getpid()
