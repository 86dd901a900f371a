"""Named locks from Python: with-blocks, timeouts, renewal by the library, release."""

from __future__ import annotations

import threading
import time

import pytest

import cairn
from cairn.testing import ManualClock


def test_a_held_lock_refuses_a_second_holder_until_released(location: str) -> None:
    a, b = cairn.Store(location), cairn.Store(location)
    with a.lock("nightly", ttl="10m", timeout=0) as lk:
        assert lk.held
        holder = b.lock_holder("nightly")
        assert holder is not None and holder.pid == __import__("os").getpid()
        with pytest.raises(cairn.LockHeldError, match="'nightly' is held by this process .* not free at once"):
            with b.lock("nightly", timeout=0):
                pass
        with pytest.raises(TimeoutError):
            with a.lock("nightly", timeout=0):
                pass  # not re-entrant, even in the same store
    assert not lk.held
    assert b.lock_holder("nightly") is None
    with b.lock("nightly", timeout=0):
        pass
    a.close()
    b.close()


def test_acquire_waits_up_to_its_timeout(store: cairn.Store) -> None:
    holder = store.lock("x", ttl=60)
    assert holder.acquire(timeout=0)
    other = store.lock("x", ttl=60)
    start = time.monotonic()
    assert other.acquire(timeout=0.2) is False
    assert time.monotonic() - start >= 0.2
    assert holder.release() is True
    assert holder.release() is False, "not held any more"
    assert other.acquire(timeout=0)
    other.release()


def test_a_waiting_acquire_takes_the_lock_once_the_holder_releases_it(store: cairn.Store) -> None:
    holder = store.lock("x")
    assert holder.acquire(timeout=0)
    waiting = threading.Event()
    got: list[bool] = []

    def wait_for_it() -> None:
        waiting.set()
        got.append(store.lock("x").acquire(timeout=60))

    t = threading.Thread(target=wait_for_it)
    t.start()
    assert waiting.wait(timeout=60)
    holder.release()
    t.join(timeout=60)
    assert got == [True]


def test_a_lock_past_its_ttl_is_free_and_the_late_holder_learns_it_lost_it(
    location: str, clock: ManualClock
) -> None:
    store = cairn.Store(location, clock=clock)
    lk = store.lock("x", ttl=10, keep_alive=False)
    assert lk.acquire(timeout=0)
    clock.advance(11)
    other = store.lock("x", ttl=10, keep_alive=False)
    assert other.acquire(timeout=0), "expired"
    with pytest.raises(cairn.LeaseLostError):
        lk.renew()
    assert lk.release() is False
    other.release()
    store.close()


def test_the_library_keeps_a_held_lock_renewed(location: str) -> None:
    store = cairn.Store(location)
    with store.lock("x", ttl=0.3):
        first = store.lock_holder("x")
        assert first is not None
        # Renewed every ttl/3 by the library's thread, through a connection of its own (on
        # PostgreSQL, to the schema the URL names); wait (with a deadline) to see it moved.
        deadline = time.monotonic() + 30
        while True:
            now = store.lock_holder("x")
            assert now is not None, "the lock lapsed although its keep-alive runs"
            if now.expires_at > first.expires_at:
                break
            assert time.monotonic() < deadline, "never renewed"
            time.sleep(0.05)
    assert store.lock_holder("x") is None
    store.close()


def test_a_lock_of_max_holders_admits_that_many_and_names_them_when_full(location: str) -> None:
    a, b = cairn.Store(location), cairn.Store(location)
    with a.lock("pool", max=2, timeout=0), b.lock("pool", max=2, timeout=0):
        assert [h.slot for h in b.lock_holders("pool", max=2)] == [0, 1]
        with pytest.raises(cairn.LockHeldError, match="held by its 2 holders at most"):
            with b.lock("pool", max=2, timeout=0):
                pass
        with pytest.raises(cairn.LockHeldError):
            with b.lock("pool", timeout=0):
                pass  # a plain lock is slot 0
        with b.lock("pool", max=3, timeout=0) as third:
            assert third.held
    assert b.lock_holders("pool", max=3) == []
    with pytest.raises(cairn.InvalidInputError, match="1 to"):
        with a.lock("pool", max=0, timeout=0):
            pass
    a.close()
    b.close()


def test_lock_arguments_are_checked(store: cairn.Store) -> None:
    with pytest.raises(cairn.InvalidInputError, match="lock TTL of 0s"):
        with store.lock("x", ttl=0):
            pass
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        store.lock("x", timeout=-1)
    with pytest.raises(TypeError):
        store.lock("x", timeout=[1])  # type: ignore[arg-type]
    with pytest.raises(cairn.InvalidInputError, match="lock name"):
        with store.lock("", timeout=0):
            pass
    lk = store.lock("x")
    with pytest.raises(cairn.InvalidInputError, match="not held"):
        lk.renew()
