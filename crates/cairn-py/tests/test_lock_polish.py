"""Locks as decorators, and what a lock this process holds says (issue 25, item 12)."""

from __future__ import annotations

import os
import threading

import pytest

import cairn


def test_a_lock_decorates_a_function_holding_it_for_each_call(store: cairn.Store) -> None:
    @store.lock("job", timeout=0)
    def job(x: int) -> int:
        holder = store.lock_holder("job")
        assert holder is not None and holder.pid == os.getpid()
        return x * 2

    assert job(21) == 42
    assert job(1) == 2, "released after each call"
    assert store.lock_holder("job") is None
    assert job.__name__ == "job"
    with store.lock("job", timeout=0):
        with pytest.raises(cairn.LockHeldError):
            job(1)


def test_a_decorated_function_called_from_threads_takes_turns(store: cairn.Store) -> None:
    inside = 0
    most = 0
    guard = threading.Lock()

    @store.lock("turns")
    def work() -> None:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        threading.Event().wait(0.02)
        with guard:
            inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1


def test_a_lock_this_process_holds_says_so(store: cairn.Store) -> None:
    with store.lock("nightly", timeout=0):
        with pytest.raises(cairn.LockHeldError, match=r"held by this process .*not re-entrant"):
            with store.lock("nightly", timeout=0):
                pass
