"""The cache as a ``collections.abc.MutableMapping``, and its reads and writes of many keys
in one transaction (issue 25, item 9)."""

from __future__ import annotations

import collections.abc

import pytest

import cairn
from cairn.testing import ManualClock


def test_a_cache_is_a_mutable_mapping_of_its_fresh_entries(any_store: cairn.Store) -> None:
    c = any_store.cache("m")
    assert isinstance(c, collections.abc.MutableMapping)
    c.update({"a": 1, "b": [2]}, c="three")
    assert sorted(c.items()) == [("a", 1), ("b", [2]), ("c", "three")]
    assert list(c.values()) == [1, [2], "three"], "values in key order"
    assert ("a", 1) in c.items() and 1 in c.values()
    assert dict(c) == {"a": 1, "b": [2], "c": "three"}
    assert c == {"a": 1, "b": [2], "c": "three"}


def test_len_counts_fresh_entries_only(any_clocked: cairn.Store, clock: ManualClock) -> None:
    c = any_clocked.cache("m")
    assert len(c) == 0 and not c
    c.set("kept", 1)
    c.set("short", 2, ttl=60)
    any_clocked.cache("other")["x"] = 3
    assert len(c) == 2
    clock.advance(60)
    assert len(c) == 1, "an expired entry not yet swept is not counted"
    assert c.stats().entries == 2, "while stats count what is stored"
    assert list(c.items()) == [("kept", 1)]


def test_pop_removes_and_returns_or_gives_the_default(any_store: cairn.Store) -> None:
    c = any_store.cache("m")
    c["a"] = {"v": 1}
    assert c.pop("a") == {"v": 1}
    assert "a" not in c
    assert c.pop("a", None) is None
    with pytest.raises(KeyError):
        c.pop("a")
    c["b"] = 2
    assert c.popitem() == ("b", 2) and len(c) == 0


def test_setdefault_stores_only_when_absent(any_clocked: cairn.Store, clock: ManualClock) -> None:
    c = any_clocked.cache("m")
    assert c.setdefault("a", [1]) == [1]
    assert c.setdefault("a", [2]) == [1], "a fresh entry wins"
    c.set("e", "old", ttl=1)
    clock.advance(1)
    assert c.setdefault("e", "new") == "new", "an expired entry counts as absent"


def test_update_and_set_many_write_all_or_nothing(any_store: cairn.Store) -> None:
    c = any_store.cache("m")
    with pytest.raises(cairn.InvalidInputError):
        c.update({"ok": 1, "x" * 5000: 2})
    assert "ok" not in c, "a refused key leaves nothing of the batch"
    with pytest.raises(TypeError, match="key must be a str, not int"):
        c.set_many([("ok", 1), (2, 2)])  # type: ignore[list-item]
    assert "ok" not in c
    c.set_many({"a": 1, "b": 2}, ttl="1h")
    c.set_many([("c", 3)])
    assert c.get_many(["b", "zz", "a", "c"]) == [2, None, 1, 3]
    assert c.get_many(["zz"], default="-") == ["-"]
    with pytest.raises(TypeError, match="not one str"):
        c.get_many("ab")


def test_set_many_in_a_transaction_rolls_back_with_it(any_store: cairn.Store) -> None:
    with pytest.raises(RuntimeError):
        with any_store.transaction() as tx:
            tx.cache("m").set_many({"a": 1})
            assert tx.cache("m").get_many(["a"]) == [1]
            raise RuntimeError("roll back")
    assert "a" not in any_store.cache("m")


def test_a_key_of_the_wrong_type_is_named_in_the_error(store: cairn.Store) -> None:
    c = store.cache("m")
    for call in (
        lambda: c.get(1),  # type: ignore[arg-type]
        lambda: c[1],  # type: ignore[index]
        lambda: c.set(1, "v"),  # type: ignore[arg-type]
        lambda: c.__setitem__(1, "v"),  # type: ignore[index]
        lambda: c.delete(1),  # type: ignore[arg-type]
        lambda: c.incr(1),  # type: ignore[arg-type]
        lambda: c.get_or_set(1, lambda: 1),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError, match="^key must be a str, not int$"):
            call()
    with pytest.raises(TypeError, match="^prefix must be a str, not bytes$"):
        c.keys(b"a")  # type: ignore[arg-type]


def test_a_negative_cache_bound_is_invalid_input_not_an_overflow(store: cairn.Store) -> None:
    c = store.cache("m")
    with pytest.raises(cairn.InvalidInputError, match="max_entries is -1"):
        c.set_limits(max_entries=-1)
    with pytest.raises(cairn.InvalidInputError, match="max_bytes is 0"):
        c.set_limits(max_bytes=0)
