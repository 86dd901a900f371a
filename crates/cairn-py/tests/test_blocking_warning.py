"""The sync Store used inside a running event loop warns (cairn.BlockingCallWarning), once per
store and kind of wait, when it is about to block on a wait; calls that do not wait, and
calls from outside a loop, never warn (pyproject's filterwarnings=error makes any other
warning fail these tests)."""

from __future__ import annotations

import warnings
from typing import Iterator, List

import pytest

import cairn


@pytest.fixture
def other(path: str) -> Iterator[cairn.Store]:
    """A second store on the same file: another holder of locks and runs."""
    with cairn.Store(path) as s:
        yield s


@pytest.fixture
def store(path: str) -> Iterator[cairn.Store]:
    with cairn.Store(path) as s:
        yield s


def recorded() -> "warnings.catch_warnings[List[warnings.WarningMessage]]":
    return warnings.catch_warnings(record=True)


def blocking(seen: List[warnings.WarningMessage]) -> List[str]:
    return [str(w.message) for w in seen if issubclass(w.category, cairn.BlockingCallWarning)]


def test_the_warning_is_a_runtime_warning_exported_by_the_package() -> None:
    assert issubclass(cairn.BlockingCallWarning, RuntimeWarning)
    assert "BlockingCallWarning" in cairn.__all__


async def test_waiting_for_a_held_lock_inside_a_loop_warns_at_the_callers_line(
    store: cairn.Store, other: cairn.Store
) -> None:
    with other.lock("nightly", ttl="1m", timeout=0):
        with pytest.warns(cairn.BlockingCallWarning, match="lock 'nightly'") as seen:
            assert store.lock("nightly", ttl="1m", timeout=0.05).acquire() is False
    assert seen[0].filename == __file__


async def test_a_free_lock_or_a_lock_tried_without_waiting_does_not_warn(store: cairn.Store, other: cairn.Store) -> None:
    with store.lock("free", ttl="1m", timeout=30):
        pass
    with other.lock("held", ttl="1m", timeout=0):
        with pytest.raises(cairn.LockHeldError):
            with store.lock("held", ttl="1m", timeout=0):
                pass


def test_waiting_for_a_held_lock_outside_a_loop_does_not_warn(store: cairn.Store, other: cairn.Store) -> None:
    with other.lock("nightly", ttl="1m", timeout=0):
        assert store.lock("nightly", ttl="1m", timeout=0.02).acquire() is False


async def test_a_store_warns_once_per_kind_of_wait(store: cairn.Store, other: cairn.Store, path: str) -> None:
    with other.lock("a", ttl="1m", timeout=0), recorded() as seen:
        warnings.simplefilter("always")
        store.lock("a", ttl="1m", timeout=0.02).acquire()
        store.lock("a", ttl="1m", timeout=0.02).acquire()
        store.cache("c").get_or_set("k", lambda: 1)  # another kind: warns
        store.cache("c").get_or_set("k2", lambda: 2)
        with cairn.Store(path) as third:  # another store: warns again
            third.lock("a", ttl="1m", timeout=0.02).acquire()
    said = blocking(seen)
    assert len(said) == 3, said
    assert "lock 'a'" in said[0] and "get_or_set of 'k'" in said[1] and "lock 'a'" in said[2]


async def test_claim_next_with_a_wait_warns_on_an_empty_queue_not_when_an_item_is_due(store: cairn.Store) -> None:
    q = store.ledger("jobs")
    q.enqueue(["a"])
    claim = q.claim_next(wait="10s")  # due at once: no wait, no warning
    assert claim is not None and claim.id == "a"
    claim.complete()
    with pytest.warns(cairn.BlockingCallWarning, match="ledger 'jobs'"):
        assert q.claim_next(wait=0.05) is None


async def test_the_claims_loop_with_a_wait_warns_when_it_waits(store: cairn.Store) -> None:
    q = store.ledger("loop")
    q.enqueue(["a", "b"])
    with pytest.warns(cairn.BlockingCallWarning, match="ledger 'loop'"):
        done = [c.id for c in q.claims(wait=0.05)]
    assert done == ["a", "b"]


async def test_wait_drained_warns_only_when_the_ledger_is_not_drained(store: cairn.Store) -> None:
    q = store.ledger("drain")
    assert q.wait_drained(timeout=5) is True  # empty: drained at once
    q.enqueue(["a"])
    with pytest.warns(cairn.BlockingCallWarning, match="ledger 'drain' to drain"):
        assert q.wait_drained(timeout=0.05) is False


async def test_a_limiter_warns_when_it_must_wait_for_a_slot(store: cairn.Store) -> None:
    limiter = store.limiter("api", "20/s")
    assert limiter.acquire(timeout=5) is True  # a free slot: no wait
    with pytest.warns(cairn.BlockingCallWarning, match="limiter 'api'"):
        assert limiter.acquire(timeout=5) is True


async def test_a_run_held_by_another_attempt_warns_when_waited_for(store: cairn.Store, other: cairn.Store) -> None:
    with store.run("free", wait=5) as run:  # nobody holds it: no wait
        run.step("s", lambda: 1)
    with other.run("held"):
        with pytest.warns(cairn.BlockingCallWarning, match="run 'held'"):
            with pytest.raises(cairn.RunHeldError):
                with store.run("held", wait=0.05):
                    pass


async def test_get_or_set_warns_on_a_miss_and_not_on_a_hit(store: cairn.Store) -> None:
    c = store.cache("pages")
    c.set("hit", "cached")
    assert c.get_or_set("hit", lambda: "computed") == "cached"
    with pytest.warns(cairn.BlockingCallWarning, match="get_or_set of 'miss'"):
        assert c.get_or_set("miss", lambda: "computed") == "computed"
    assert c.get("miss") == "computed"


async def test_memoize_of_a_plain_function_warns_on_a_miss(store: cairn.Store) -> None:
    calls: List[int] = []

    @store.memoize(ttl="1h")
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    with pytest.warns(cairn.BlockingCallWarning, match="get_or_set"):
        assert double(2) == 4
    assert double(2) == 4  # a hit: no warning (it would fail the test)
    assert calls == [2]


async def test_get_or_set_inside_a_loop_counts_one_miss_and_one_hit_as_outside(store: cairn.Store) -> None:
    c = store.cache("counted")
    with pytest.warns(cairn.BlockingCallWarning):
        assert c.get_or_set("k", lambda: 1) == 1
    assert c.get_or_set("k", lambda: 2) == 1
    store.flush_stats()
    stats = c.stats()
    assert (stats.hits, stats.misses) == (1, 1)
