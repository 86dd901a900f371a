"""``@store.memoize`` without parentheses, on methods, and its typed wrapper (issue 25,
item 10)."""

from __future__ import annotations

from typing import List

import cairn


def test_memoize_without_parentheses_caches_forever(store: cairn.Store) -> None:
    calls: List[int] = []

    @store.memoize
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert square(3) == 9 and square(3) == 9
    assert calls == [3]
    assert square.invalidate(3) is True
    assert square(3) == 9 and calls == [3, 3]
    assert square.__name__ == "square"


def test_on_a_method_self_is_not_part_of_the_key(store: cairn.Store) -> None:
    calls: List[str] = []

    class Rates:
        def __init__(self) -> None:
            self.conn = object()  # not JSON: it must not be needed for the key

        @store.memoize(ttl="1h")
        def rate(self, currency: str) -> float:
            calls.append(currency)
            return 1.08

    assert Rates().rate("EUR") == 1.08
    assert Rates().rate("EUR") == 1.08, "another instance shares the result"
    assert calls == ["EUR"]
    key = Rates.rate.cache_key(Rates(), "EUR")
    assert "Rates.rate" in key and key.endswith(':{"currency":"EUR"}'), key
    assert Rates.rate.invalidate(Rates(), "EUR")


def test_include_self_keys_by_the_instance_too(store: cairn.Store) -> None:
    class Account:
        @store.memoize(include_self=True, key=None)
        def balance(self) -> int:
            return 1

    # With include_self the instance is part of the JSON key; this one is not JSON.
    try:
        Account().balance()
    except TypeError as e:
        assert "not JSON" in str(e)
    else:
        raise AssertionError("the instance was left out of the key")
