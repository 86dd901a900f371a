"""The seed's three promises, from Python: upserts are idempotent, an expired entry is a miss
and is then swept, and a process killed inside a transaction leaves nothing of it behind."""

from __future__ import annotations

import os
import random
import re

import pytest

import cairn
from cairn.testing import ManualClock

from conftest import Child


def test_set_twice_keeps_one_entry_and_the_last_value(any_store: cairn.Store) -> None:
    c = any_store.cache("upsert")
    c.set("k", "first")
    c.set("k", "second")
    assert c["k"] == "second"
    assert c.stats().entries == 1
    assert c.keys() == ["k"]


def test_add_does_not_overwrite_a_fresh_entry(any_store: cairn.Store) -> None:
    c = any_store.cache("upsert")
    assert c.add("k", 1) is True
    assert c.add("k", 2) is False
    assert c["k"] == 1


def test_mark_done_is_true_once_and_mark_done_many_counts_only_new_ids(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("jobs")
    assert ledger.mark_done("a") is True
    assert ledger.mark_done("a") is False
    assert ledger.mark_done_many(["a", "b", "c", "b"]) == 2
    assert ledger.counts().done == 3


def test_a_rerun_of_a_filter_and_mark_loop_does_nothing(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("backfill")
    ids = [f"order-{i}" for i in range(50)]
    worked = []
    for _ in range(2):
        for id in ledger.filter_new(ids):
            worked.append(id)
            ledger.mark_done(id)
    assert worked == ids
    assert ledger.filter_new(ids) == []


def test_an_entry_is_a_hit_until_its_ttl_then_a_miss_everywhere_until_swept(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    c = any_clocked.cache("ttl")
    c.set("k", "v", ttl=10)
    c.set("forever", "v")
    clock.advance(9.999)
    assert c["k"] == "v"
    clock.advance(0.001)  # exactly 10 s: expiry is strict, the entry is gone
    assert "k" not in c
    assert c.get("k") is None
    assert c.get("k", "default") == "default"
    with pytest.raises(KeyError):
        c["k"]
    assert c.keys() == ["forever"]
    assert c.stats().entries == 2, "an expired entry stays stored until swept"
    assert c.sweep() == 1
    assert c.stats().entries == 1
    assert c.sweep() == 0


def test_ttls_are_seconds_timedeltas_or_duration_strings(any_clocked: cairn.Store, clock: ManualClock) -> None:
    import datetime

    c = any_clocked.cache("ttl")
    c.set("int", 1, ttl=60)
    c.set("float", 1, ttl=59.5)
    c.set("td", 1, ttl=datetime.timedelta(seconds=61))
    c.set("str", 1, ttl="1m2s")
    clock.advance(59.5)
    assert c.keys() == ["int", "str", "td"]
    clock.advance(0.5)
    assert c.keys() == ["str", "td"]
    clock.advance(1)
    assert c.keys() == ["str"]
    clock.advance(1)
    assert c.keys() == []


@pytest.mark.parametrize(
    "ttl, error, message",
    [
        (0, cairn.InvalidInputError, "a TTL of 0s"),
        (-1, cairn.InvalidInputError, "negative"),
        (-0.5, cairn.InvalidInputError, "negative"),
        (float("nan"), cairn.InvalidInputError, "NaN"),
        (float("inf"), cairn.InvalidInputError, "too long"),
        ("10", cairn.InvalidInputError, "no unit"),
        ("soon", cairn.InvalidInputError, "e.g. 90s"),
        (True, TypeError, "not a bool"),
        ([1], TypeError, "not list"),
    ],
)
def test_bad_ttls_raise_clear_errors_and_store_nothing(
    store: cairn.Store, ttl: object, error: type, message: str
) -> None:
    c = store.cache("ttl")
    with pytest.raises(error, match=re.escape(message)):
        c.set("k", "v", ttl=ttl)  # type: ignore[arg-type]
    assert "k" not in c


def test_a_child_killed_inside_a_transaction_leaves_nothing_of_it(
    path: str, children: list[Child]
) -> None:
    child = Child("tx-then-block", path)
    children.append(child)
    child.expect("inside")
    child.kill()
    store = cairn.Store(path, busy_timeout=0)
    try:
        assert store.cache("crash").keys() == []
        assert store.checkpoint("crash").get() is None
        assert "item" not in store.ledger("crash")
        assert store.integrity_check() == ["ok"]
        # No stale lock: a write with a zero busy timeout succeeds at once.
        store.cache("crash").set("after", 1)
        assert store.cache("crash")["after"] == 1
    finally:
        store.close()


def test_batches_killed_at_random_moments_are_all_there_or_all_absent(
    path: str, children: list[Child]
) -> None:
    kills = int(os.environ.get("CAIRN_PY_KILLS", "20"))
    keys = 5
    rng = random.Random(os.environ.get("CAIRN_PY_SEED", "cairn"))
    reported = {}
    for run in range(kills):
        child = Child("torture", path, str(keys), str(run))
        children.append(child)
        # Let it commit a random number of batches, then kill it wherever it is.
        n = 0
        for _ in range(rng.randint(1, 6)):
            line = child.line()
            assert line is not None, child.stderr()
            n = int(line)
        child.kill()
        # Lines it printed before dying that were not read yet count too.
        rest = child.all_lines()
        reported[run] = int(rest[-1]) if rest else n
    store = cairn.Store(path)
    try:
        c = store.cache("torture")
        present: dict[int, dict[int, set[int]]] = {}
        for key in c.keys():
            run, batch, j = map(int, re.fullmatch(r"r(\d+)-b(\d+)-(\d+)", key).groups())  # type: ignore[union-attr]
            assert c[key] == {"batch": batch, "j": j}
            present.setdefault(run, {}).setdefault(batch, set()).add(j)
        for run, n in reported.items():
            batches = present.get(run, {})
            for b, js in batches.items():
                assert js == set(range(keys)), f"run {run} batch {b} is partial: {sorted(js)}"
                assert f"r{run}-b{b}" in store.ledger("torture"), f"run {run} batch {b} lost its mark"
            last = max(batches, default=0)
            # Every batch reported before the kill is there; at most the one in flight beyond.
            assert sorted(batches) == list(range(1, last + 1))
            assert n <= last <= n + 1, f"run {run}: reported {n}, found {last}"
            assert store.checkpoint(f"torture-{run}").get() == (last or None)
        assert store.integrity_check() == ["ok"]
    finally:
        store.close()
