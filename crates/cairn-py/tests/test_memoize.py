"""@store.memoize: keyed by arguments, exceptions never cached, computed once."""

from __future__ import annotations

import pytest

import cairn
from cairn.testing import ManualClock


def test_results_are_reused_per_arguments_with_defaults_applied(store: cairn.Store) -> None:
    calls = []

    @store.memoize(ttl="1h")
    def fetch(url: str, lang: str = "en") -> dict[str, str]:
        calls.append((url, lang))
        return {"url": url, "lang": lang}

    assert fetch("a") == {"url": "a", "lang": "en"}
    assert fetch("a", "en") == fetch(url="a") == fetch("a", lang="en")
    assert fetch("a", "fr")["lang"] == "fr"
    assert calls == [("a", "en"), ("a", "fr")]
    assert fetch.__name__ == "fetch" and fetch.__wrapped__ is not None  # type: ignore[attr-defined]


def test_exceptions_are_not_cached(store: cairn.Store) -> None:
    attempts = []

    @store.memoize()
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("down")
        return "up"

    with pytest.raises(ConnectionError):
        flaky()
    assert flaky() == "up"
    assert flaky() == "up"
    assert len(attempts) == 2


def test_results_expire_with_the_ttl_and_can_be_invalidated(path: str, clock: ManualClock) -> None:
    store = cairn.Store(path, clock=clock)
    n = []

    @store.memoize(ttl=60)
    def count() -> int:
        n.append(1)
        return len(n)

    assert count() == 1 and count() == 1
    clock.advance(60)
    assert count() == 2
    assert count.invalidate() is True  # type: ignore[attr-defined]
    assert count() == 3
    store.close()


def test_none_results_are_cached(store: cairn.Store) -> None:
    calls = []

    @store.memoize()
    def nothing() -> None:
        calls.append(1)

    nothing()
    nothing()
    assert calls == [1]


def test_arguments_that_are_not_json_need_a_key_function(store: cairn.Store) -> None:
    @store.memoize()
    def f(x: object) -> int:
        return 1

    with pytest.raises(TypeError, match="key=lambda"):
        f(object())

    @store.memoize(key=lambda x: type(x).__name__)
    def g(x: object) -> str:
        return type(x).__name__

    assert g(object()) == "object"


def test_versions_and_namespaces_separate_results(store: cairn.Store) -> None:
    def make(version: str) -> int:
        @store.memoize(namespace="m", version=version)
        def value() -> str:
            return version

        return len(value())

    assert make("v1") == 2 and make("v22") == 3
    assert len(store.cache("m").keys()) == 2


def test_long_arguments_are_hashed_into_a_short_key(store: cairn.Store) -> None:
    @store.memoize()
    def f(s: str) -> int:
        return len(s)

    assert f("x" * 10_000) == 10_000
    (key,) = store.cache("memoize").keys()
    assert ":sha256:" in key and len(key) < 200


def test_coroutine_functions_are_refused(store: cairn.Store) -> None:
    with pytest.raises(TypeError, match="coroutine"):

        @store.memoize()
        async def f() -> int:
            return 1
