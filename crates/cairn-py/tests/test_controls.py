"""Queue controls from Python, on either engine: cancel, snooze, pause and resume. Time is the
manual clock's: nothing sleeps."""

from __future__ import annotations

import datetime
import subprocess
import sys

import pytest

import cairn
from cairn.testing import ManualClock

UTC = datetime.timezone.utc
START = datetime.datetime(2020, 1, 1, tzinfo=UTC)  # the manual clock's default start


def test_a_cancelled_item_is_never_handed_out_and_its_holder_loses_the_claim(any_clocked: cairn.Store) -> None:
    q = any_clocked.ledger("q")
    q.enqueue(["a", "b", "c"])
    held = q.claim_next(worker="w1")
    assert held is not None and held.id == "a"
    assert q.cancel("a") is True
    assert q.cancel("a") is False, "cancelled already"
    assert q.cancel_many(["b"]) == 1
    with pytest.raises(cairn.LeaseLostError):
        held.complete()
    with pytest.raises(cairn.LeaseLostError):
        held.snooze("1m")
    item = q.item("a")
    assert item is not None and item.state is cairn.ItemState.CANCELLED
    nxt = q.claim_next(worker="w2")
    assert nxt is not None and nxt.id == "c"
    assert q.claim_next(worker="w2") is None
    counts = q.counts()
    assert (counts.cancelled, counts.claimed, counts.paused, counts.paused_until) == (2, 1, False, None)
    assert [i.id for i in q.list(state="cancelled")] == ["a", "b"]
    assert len(q) == 3
    assert q.retry_all_failed() == 0, "cancelled items are named to retry"
    assert q.retry(["a"]) == 1
    again = q.claim_next(worker="w2")
    assert again is not None and again.id == "a"


def test_a_worker_block_on_a_cancelled_item_raises_lease_lost(any_clocked: cairn.Store) -> None:
    q = any_clocked.ledger("q")
    q.enqueue(["a"])
    with pytest.raises(cairn.LeaseLostError):
        with q.take(worker="w1") as claim:
            any_clocked.ledger("q").cancel(claim.id)
    item = q.item("a")
    assert item is not None and item.state is cairn.ItemState.CANCELLED


def test_cancelling_an_unknown_or_done_item_raises_and_changes_nothing(any_clocked: cairn.Store) -> None:
    q = any_clocked.ledger("q")
    q.enqueue(["a"])
    q.mark_done("d")
    with pytest.raises(cairn.InvalidInputError, match="nothing cancelled"):
        q.cancel_many(["a", "nope"])
    with pytest.raises(cairn.InvalidInputError, match="done already"):
        q.cancel("d")
    item = q.item("a")
    assert item is not None and item.state is cairn.ItemState.PENDING
    assert q.counts().cancelled == 0


def test_snooze_puts_the_item_back_due_later_with_its_attempts(any_clocked: cairn.Store, clock: ManualClock) -> None:
    q = any_clocked.ledger("q")
    q.set_policy(retry_delay=0)
    q.enqueue(["a"])
    first = q.claim_next(worker="w")
    assert first is not None
    first.fail("flaky")
    claim = q.claim_next(worker="w")
    assert claim is not None and claim.attempt == 2
    claim.snooze("10m")
    item = q.item("a")
    assert item is not None and (item.state, item.attempts) == (cairn.ItemState.PENDING, 1)
    assert item.due == START + datetime.timedelta(minutes=10)
    assert q.claim_next(worker="w") is None
    clock.advance(600)
    again = q.claim_next(worker="w")
    assert again is not None and again.attempt == 2
    with pytest.raises(cairn.InvalidInputError):
        again.snooze(0)
    with pytest.raises(ValueError):
        again.snooze(-5)
    item = q.item("a")
    assert item is not None and item.state is cairn.ItemState.CLAIMED, "a bad snooze changes nothing"


def test_pause_blocks_claims_until_resumed_or_its_end(any_clocked: cairn.Store, clock: ManualClock) -> None:
    q = any_clocked.ledger("q")
    q.enqueue(["a", "b", "c"])
    q.pause()
    assert q.is_paused() and q.paused_until() is None
    assert q.counts().paused is True
    assert q.claim_next(worker="w") is None
    assert q.claim("b", worker="w") is None
    assert q.resume() is True
    assert q.resume() is False
    a = q.claim_next(worker="w", lease="1d")
    assert a is not None and a.id == "a"
    q.pause(for_="1h")
    assert q.paused_until() == START + datetime.timedelta(hours=1)
    assert q.counts().paused_until == START + datetime.timedelta(hours=1)
    assert q.claim_next(worker="w") is None
    clock.advance(3600)
    assert not q.is_paused()
    b = q.claim_next(worker="w")
    assert b is not None and b.id == "b"
    q.pause(until=START + datetime.timedelta(hours=2))
    assert q.claim_next(worker="w") is None
    q.pause(until="2099-01-01T00:00:00Z")
    assert q.paused_until() == datetime.datetime(2099, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"for_": 0},
        {"for_": "0s"},
        {"until": START - datetime.timedelta(seconds=1)},
        {"until": "2001-01-01T00:00:00Z"},
        {"until": "tomorrow"},
        {"until": datetime.datetime(2099, 1, 1)},  # naive
        {"for_": "1h", "until": "2099-01-01T00:00:00Z"},
    ],
)
def test_a_bad_pause_raises_and_changes_nothing(any_clocked: cairn.Store, kwargs: dict) -> None:
    q = any_clocked.ledger("q")
    with pytest.raises(cairn.InvalidInputError):
        q.pause(**kwargs)
    assert not q.is_paused()


def test_the_cli_sees_a_pause_and_a_cancel_made_from_python(cli: str, store: cairn.Store) -> None:
    q = store.ledger("q")
    q.enqueue(["a", "b"])
    q.cancel("a")
    q.pause()
    run = lambda *args: subprocess.run([cli, "--db", store.path, "-n", "q", *args], capture_output=True, timeout=60)  # noqa: E731
    out = run("ledger", "count")
    assert out.returncode == 0
    assert b"cancelled\t1\n" in out.stdout and out.stdout.endswith(b"paused\tuntil-resumed\n")
    assert run("ledger", "next", "--worker", "w").returncode == 1
    assert run("ledger", "resume").returncode == 0
    assert not q.is_paused()
    assert sys.version_info >= (3, 8)
