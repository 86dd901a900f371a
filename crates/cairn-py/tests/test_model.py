"""A hypothesis state machine drives a store and a plain dict model side by side, under a
manual clock: every read must agree with the model, expired entries are misses, and a
transaction that raises changes nothing."""

from __future__ import annotations

import math
import os
from typing import Any, Optional

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import cairn
from cairn.testing import ManualClock

KEYS = st.sampled_from(["a", "b", "c", "d", "é"])
IDS = st.sampled_from(["1", "2", "3", "4"])
TTLS = st.one_of(st.none(), st.integers(min_value=1, max_value=5))
SCALARS = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.binary(max_size=8),
)
JSONISH = st.recursive(
    st.one_of(st.text(max_size=4), st.integers(-1000, 1000), st.booleans(), st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6,
)
VALUES = st.one_of(SCALARS, JSONISH)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type, all the way down (True is not 1, b"" is not "")."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.store = cairn.Store(":memory:", clock=self.clock)
        self.cache = self.store.cache("model")
        self.ledger = self.store.ledger("model", max_attempts=2)
        self.now = 0  # milliseconds since the clock's start
        self.entries: dict[str, tuple[Any, Optional[int]]] = {}
        self.items: dict[str, tuple[str, int]] = {}  # id -> (state, failures)

    # ---- the model -------------------------------------------------------------------------

    def fresh(self, key: str) -> bool:
        e = self.entries.get(key)
        return e is not None and (e[1] is None or e[1] > self.now)

    def expiry(self, ttl: Optional[int]) -> Optional[int]:
        return None if ttl is None else self.now + ttl * 1000

    def model_set(self, entries: dict[str, tuple[Any, Optional[int]]], key: str, value: Any, ttl: Optional[int]) -> None:
        entries[key] = (value, self.expiry(ttl))

    # ---- cache rules -----------------------------------------------------------------------

    @rule(key=KEYS, value=VALUES, ttl=TTLS)
    def set(self, key: str, value: Any, ttl: Optional[int]) -> None:
        self.cache.set(key, value, ttl=ttl)
        self.model_set(self.entries, key, value, ttl)

    @rule(key=KEYS, value=VALUES, ttl=TTLS)
    def add(self, key: str, value: Any, ttl: Optional[int]) -> None:
        expected = not self.fresh(key)
        assert self.cache.add(key, value, ttl=ttl) is expected
        if expected:
            self.model_set(self.entries, key, value, ttl)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        assert self.cache.delete(key) is self.fresh(key)
        self.entries.pop(key, None)

    @rule(key=KEYS, ttl=TTLS)
    def touch(self, key: str, ttl: Optional[int]) -> None:
        expected = self.fresh(key)
        assert self.cache.touch(key, ttl=ttl) is expected
        if expected:
            self.entries[key] = (self.entries[key][0], self.expiry(ttl))

    @rule(key=KEYS, by=st.integers(min_value=-(2**40), max_value=2**40), ttl=TTLS)
    def incr(self, key: str, by: int, ttl: Optional[int]) -> None:
        if self.fresh(key):
            current, expires = self.entries[key]
            if type(current) is not int:
                try:
                    self.cache.incr(key, by, ttl=ttl)
                except cairn.DecodeError:
                    return
                raise AssertionError(f"incr of {current!r} did not fail")
        else:
            current, expires = 0, self.expiry(ttl)
        if not -(2**63) <= current + by < 2**63:
            try:
                self.cache.incr(key, by, ttl=ttl)
            except cairn.InvalidInputError:
                return
            raise AssertionError("overflow not refused")
        assert self.cache.incr(key, by, ttl=ttl) == current + by
        self.entries[key] = (current + by, expires)

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        missing = object()
        got = self.cache.get(key, missing)
        if self.fresh(key):
            assert same(got, self.entries[key][0]), (got, self.entries[key][0])
            assert key in self.cache
        else:
            assert got is missing
            assert key not in self.cache

    @rule(seconds=st.integers(min_value=0, max_value=6))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.now += seconds * 1000

    @rule()
    def sweep(self) -> None:
        expired = [k for k in self.entries if not self.fresh(k)]
        # Writes also sweep a few expired entries in passing, so at most this many remain.
        assert self.cache.sweep() <= len(expired)
        for k in expired:
            del self.entries[k]
        assert self.cache.stats().entries == len(self.entries)

    @rule(ops=st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=4), commit=st.booleans())
    def transaction(self, ops: list[tuple[str, Any]], commit: bool) -> None:
        class Abort(Exception):
            pass

        try:
            with self.store.transaction() as tx:
                c = tx.cache("model")
                for key, value in ops:
                    c[key] = value
                    assert same(c[key], value)
                if not commit:
                    raise Abort
        except Abort:
            return
        for key, value in ops:
            self.model_set(self.entries, key, value, None)

    # ---- ledger rules ----------------------------------------------------------------------

    @rule(id=IDS)
    def mark_done(self, id: str) -> None:
        state = self.items.get(id, ("new", 0))
        assert self.ledger.mark_done(id) is (state[0] != "done")
        self.items[id] = ("done", state[1])

    @rule(id=IDS)
    def fail(self, id: str) -> None:
        state, failures = self.items.get(id, ("new", 0))
        got = self.ledger.fail(id, "boom")
        if state == "done":
            assert got is cairn.ItemState.DONE
            return
        failures += 1
        expected = "failed" if failures >= 2 else "pending"
        assert got.value == expected
        self.items[id] = (expected, failures)

    @rule(ids=st.lists(IDS, max_size=6))
    def filter_new(self, ids: list[str]) -> None:
        expected = [i for i in ids if self.items.get(i, ("new", 0))[0] not in ("done", "failed")]
        assert self.ledger.filter_new(ids) == expected

    # ---- invariants ------------------------------------------------------------------------

    @invariant()
    def keys_are_the_fresh_model_keys(self) -> None:
        assert self.cache.keys() == sorted(k for k in self.entries if self.fresh(k))

    @invariant()
    def ledger_counts_agree(self) -> None:
        c = self.ledger.counts()
        states = [s for s, _ in self.items.values()]
        assert (c.done, c.failed, c.pending) == (states.count("done"), states.count("failed"), states.count("pending"))

    def teardown(self) -> None:
        self.store.close()


StoreMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("CAIRN_PY_EXAMPLES", "200")),
    stateful_step_count=30,
    deadline=None,
    derandomize=os.environ.get("CI") is not None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStoreMachine = StoreMachine.TestCase
