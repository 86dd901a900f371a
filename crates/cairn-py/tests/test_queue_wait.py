"""Waiting instead of polling: ``claim_next(wait=...)`` woken by another connection's enqueue,
``wait_drained``, the duration forms they take, Ctrl-C, and the refusal inside a transaction.
No timing is asserted beyond "it returned"."""

from __future__ import annotations

import datetime
import os
import signal
import threading
import time

import pytest

import cairn


def later(seconds: float, action: "object") -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()  # type: ignore[operator]

    t = threading.Thread(target=run)
    t.start()
    return t


def test_claim_next_with_a_wait_is_woken_by_another_connections_enqueue(any_store: cairn.Store) -> None:
    q = any_store.ledger("q")
    # Another thread has a connection of its own: as another process would.
    producer = later(0.05, lambda: q.enqueue(["a"]))
    claim = q.claim_next(lease=60, worker="waiter", wait=120)  # bench/compare/queues.py's call
    producer.join()
    assert claim is not None and claim.id == "a"
    claim.complete()


def test_claim_next_with_a_wait_returns_none_once_it_passes(any_store: cairn.Store) -> None:
    q = any_store.ledger("q")
    q.enqueue(["tomorrow"], delay="1d")
    for wait in (0.05, "50ms", datetime.timedelta(milliseconds=50)):
        assert q.claim_next(worker="w", wait=wait) is None
    assert q.claim_next(worker="w") is None, "no wait: at once"


def test_a_bad_wait_is_refused_before_anything_is_claimed(store: cairn.Store) -> None:
    q = store.ledger("q")
    q.enqueue(["a"])
    with pytest.raises(cairn.InvalidInputError, match="negative"):
        q.claim_next(worker="w", wait=-1)
    with pytest.raises(TypeError):
        q.claim_next(worker="w", wait=True)
    with pytest.raises(cairn.InvalidInputError):
        q.wait_drained(timeout="soon")
    assert q.counts().pending == 1


def test_wait_drained_is_true_once_the_workers_are_done_and_false_at_its_timeout(any_store: cairn.Store) -> None:
    q = any_store.ledger("q")
    assert q.wait_drained(timeout=0) is True
    q.enqueue(["a", "b"])
    assert q.wait_drained(timeout=0.05) is False

    def work() -> None:
        for claim in q.claims(worker="w"):
            with claim:
                time.sleep(0.01)

    worker = later(0.05, work)
    assert q.wait_drained() is True
    worker.join()
    assert q.counts().done == 2


def test_claims_with_a_wait_takes_items_queued_while_it_waits(any_store: cairn.Store) -> None:
    q = any_store.ledger("q")
    producer = later(0.05, lambda: q.enqueue(["x", "y"]))
    got = [c.id for c in q.claims(worker="w", wait=0.5)]
    producer.join()
    assert got == ["x", "y"]


def test_ctrl_c_interrupts_a_waiting_claim_and_a_drain_wait(store: cairn.Store) -> None:
    q = store.ledger("q")
    q.enqueue(["later"], delay="1h")
    for call in (lambda: q.claim_next(worker="w", wait=None), lambda: q.wait_drained()):
        interrupter = later(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
        with pytest.raises(KeyboardInterrupt):
            call()
        interrupter.join()
    assert q.counts().claimed == 0


def test_waiting_inside_a_transaction_is_refused(store: cairn.Store) -> None:
    with store.transaction() as tx:
        with pytest.raises(cairn.InvalidInputError, match="inside a transaction"):
            tx.ledger("q").claim_next(worker="w", wait=1)
        with pytest.raises(cairn.InvalidInputError, match="inside a transaction"):
            tx.ledger("q").wait_drained(timeout=1)


def test_the_extensions_waits_end_when_their_stop_callable_says_so_or_raises(store: cairn.Store) -> None:
    """What AsyncLedger builds on: `stop` is asked at each slice of a wait without a limit."""
    conn = store._conn()
    store.ledger("q").enqueue(["later"], delay="1h")
    asked: list[int] = []

    def stop_on_third() -> bool:
        asked.append(1)
        return len(asked) >= 3

    assert conn.ledger_claim_next_wait("q", "w", 60, None, 0, stop_on_third) is None
    assert len(asked) == 3
    asked.clear()
    assert conn.ledger_wait_drained("q", None, 0, stop_on_third) is False
    assert len(asked) == 3

    def broken() -> bool:
        raise ZeroDivisionError("from stop")

    with pytest.raises(ZeroDivisionError, match="from stop"):
        conn.ledger_claim_next_wait("q", "w", 60, None, 0, broken)
    assert store.ledger("q").counts().claimed == 0
