"""The cache's API from Python: mapping behaviour, every operation, and compute-once in one
process (across processes: test_processes.py)."""

from __future__ import annotations

import threading

import pytest

import cairn
from cairn.testing import ManualClock


def test_the_mapping_protocol_reads_writes_and_deletes(any_store: cairn.Store) -> None:
    c = any_store.cache("m")
    c["a"] = 1
    c["b"] = "two"
    assert c["a"] == 1 and c["b"] == "two"
    assert "a" in c and "z" not in c
    assert 42 not in c, "a key that is not a str is simply absent"
    assert list(c) == ["a", "b"]
    del c["a"]
    assert "a" not in c
    with pytest.raises(KeyError) as e:
        del c["a"]
    assert e.value.args == ("a",)
    with pytest.raises(KeyError):
        c["a"]


def test_get_returns_the_default_only_on_a_miss_so_a_stored_none_is_a_hit(any_store: cairn.Store) -> None:
    c = any_store.cache("m")
    c["none"] = None
    assert c.get("none", "default") is None
    assert c["none"] is None
    assert c.get("absent", "default") == "default"


def test_delete_and_touch_report_whether_a_fresh_entry_was_there(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    c = any_clocked.cache("m")
    c.set("k", 1, ttl=10)
    assert c.touch("k", ttl=100) is True
    clock.advance(50)
    assert c["k"] == 1, "touch gave it a new expiry"
    assert c.touch("k") is True  # now never expires
    clock.advance(10_000)
    assert c["k"] == 1
    assert c.delete("k") is True
    assert c.delete("k") is False
    assert c.touch("k", ttl=5) is False


def test_incr_counts_from_zero_keeps_the_expiry_and_reads_back_as_an_int(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    c = any_clocked.cache("m")
    assert c.incr("n") == 1
    assert c.incr("n", 10) == 11
    assert c.decr("n", 2) == 9
    assert c["n"] == 9 and isinstance(c["n"], int)
    assert c.incr("t", ttl=10) == 1
    clock.advance(5)
    assert c.incr("t", ttl=1000) == 2, "an existing entry keeps its expiry"
    clock.advance(5)
    assert "t" not in c
    c["s"] = "text"
    with pytest.raises(cairn.DecodeError, match="not an integer"):
        c.incr("s")
    c["big"] = 2**63 - 1
    with pytest.raises(cairn.InvalidInputError, match="overflows"):
        c.incr("big")
    with pytest.raises(TypeError):
        c.incr("n", 1.5)  # type: ignore[arg-type]


def test_keys_are_sorted_fresh_and_filtered_by_prefix(any_clocked: cairn.Store, clock: ManualClock) -> None:
    c = any_clocked.cache("m")
    for k in ["b/2", "a/1", "b/1", "c"]:
        c[k] = k
    c.set("b/3", 0, ttl=1)
    assert c.keys() == ["a/1", "b/1", "b/2", "b/3", "c"]
    clock.advance(1)
    assert c.keys("b/") == ["b/1", "b/2"]
    assert c.keys("zzz") == []


def test_clear_empties_one_namespace_only(any_store: cairn.Store) -> None:
    a, b = any_store.cache("a"), any_store.cache("b")
    a["x"] = a["y"] = 1
    b["x"] = 1
    assert a.clear() == 2
    assert a.keys() == [] and b.keys() == ["x"]
    assert any_store.cache_namespaces() == ["b"], "a has neither entries nor statistics left"


def test_clear_with_a_prefix_removes_only_those_keys(any_store: cairn.Store) -> None:
    c = any_store.cache("p")
    for k in ["user:1", "user:2", "users", "page:1"]:
        c[k] = 1
    assert c.clear(prefix="user:") == 2
    assert c.keys() == ["page:1", "users"]
    assert c.clear(prefix="nothing") == 0
    with any_store.transaction() as tx:
        assert tx.cache("p").clear(prefix="u") == 1
    assert c.keys() == ["page:1"]
    assert c.clear(prefix="") == 1, "the empty prefix is every key"


def test_stats_count_hits_misses_and_entries(any_store: cairn.Store) -> None:
    c = any_store.cache("s")
    c["k"] = "v"
    c.get("k")
    c.get("k")
    c.get("missing")
    s = c.stats()
    assert (s.entries, s.hits, s.misses, s.evictions) == (1, 2, 1, 0)
    assert s.hit_rate == pytest.approx(2 / 3)
    assert s.limits == cairn.CacheLimits()
    assert any_store.cache("never-read").stats().hit_rate is None


def test_limits_evict_the_least_recently_stored_first(any_store: cairn.Store) -> None:
    c = any_store.cache("bounded")
    c.set_limits(max_entries=2)
    assert c.limits() == cairn.CacheLimits(max_entries=2, max_bytes=None, eviction="lrs")
    c["a"], c["b"], c["c"] = 1, 2, 3
    assert c.keys() == ["b", "c"]
    assert c.stats().evictions == 1
    with pytest.raises(cairn.InvalidInputError):
        c.set_limits(max_entries=0)
    with pytest.raises(cairn.InvalidInputError, match="eviction"):
        c.set_limits(max_entries=2, eviction="fifo")


def test_get_or_set_computes_on_a_miss_only_and_returns_the_stored_form(any_store: cairn.Store) -> None:
    c = any_store.cache("g")
    calls = []

    def compute() -> tuple[int, str]:
        calls.append(1)
        return (1, "a")

    assert c.get_or_set("k", compute) == [1, "a"], "a tuple is stored as a JSON array"
    assert c.get_or_set("k", compute) == [1, "a"]
    assert len(calls) == 1


def test_get_or_set_stores_nothing_when_the_computation_raises(any_store: cairn.Store) -> None:
    c = any_store.cache("g")

    class Boom(Exception):
        pass

    def boom() -> int:
        raise Boom("no")

    with pytest.raises(Boom, match="no"):
        c.get_or_set("k", boom)
    assert "k" not in c
    assert c.get_or_set("k", lambda: 7) == 7, "the next call computes again"


def test_get_or_set_of_an_unstorable_result_raises_and_stores_nothing(store: cairn.Store) -> None:
    c = store.cache("g")
    with pytest.raises(TypeError, match="cannot store a value of type object"):
        c.get_or_set("k", object)
    assert "k" not in c
    with pytest.raises(TypeError, match="callable"):
        c.get_or_set("k", 42)  # type: ignore[arg-type]


def test_a_compute_may_use_the_same_store_on_the_same_thread(any_store: cairn.Store) -> None:
    c = any_store.cache("g")

    def compute() -> int:
        c["inner"] = 5  # re-enters the connection the outer call holds
        return c["inner"] + any_store.cache("other").incr("n")

    assert c.get_or_set("k", compute) == 6


def test_threads_missing_one_key_together_compute_it_once(location: str) -> None:
    store = cairn.Store(location)
    c = store.cache("g")
    started = threading.Barrier(4, timeout=60)
    calls = []
    computing = threading.Event()
    release = threading.Event()
    results: list[object] = []

    def compute() -> str:
        calls.append(threading.get_ident())
        computing.set()
        assert release.wait(timeout=60)
        return "value"

    def run() -> None:
        started.wait()
        results.append(c.get_or_set("k", compute))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    # The computing thread finishes only once it holds the computation.
    assert computing.wait(timeout=60)
    release.set()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    assert results == ["value"] * 4
    assert len(calls) == 1
    store.close()


def test_keys_and_namespaces_that_the_library_refuses_raise_invalid_input(any_store: cairn.Store) -> None:
    with pytest.raises(cairn.InvalidInputError, match="empty"):
        any_store.cache("m").set("", 1)
    with pytest.raises(cairn.InvalidInputError):
        any_store.cache("m").set("a\0b", 1)
    with pytest.raises(cairn.InvalidInputError):
        any_store.cache("m").set("k" * 5000, 1)
    with pytest.raises(cairn.InvalidInputError):
        any_store.cache("").get("k")
    with pytest.raises(TypeError):
        any_store.cache("m").get(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        any_store.cache(42)  # type: ignore[arg-type]
