"""The ledger as a collection and its worker loop, ``ledger.claims()`` (issue 25, item 9),
and the polish of item 12 that concerns it."""

from __future__ import annotations

import time

import pytest

import cairn


def test_len_counts_every_item_and_iteration_yields_the_ids_in_order(any_store: cairn.Store) -> None:
    ledger = any_store.ledger("l")
    assert len(ledger) == 0 and list(ledger) == []
    ids = [f"id-{i:04}" for i in range(1203)]
    ledger.enqueue(ids[:1000])
    ledger.mark_done_many(ids[1000:])
    ledger.fail("id-0001", "boom")
    assert len(ledger) == 1203
    assert list(ledger) == ids, "paged through, in id order"


def test_claims_settles_each_item_and_an_exception_does_not_end_the_loop(any_store: cairn.Store) -> None:
    q = any_store.ledger("q", max_attempts=1)
    q.enqueue(["a", "b", "c", "d"])
    seen = []
    for claim in q.claims(lease=60, worker="w"):
        seen.append(claim.id)
        if claim.id == "d":
            continue  # settled without `with`: completed when the loop moves on
        with claim:
            if claim.id == "b":
                raise ValueError("bad input")
    assert seen == ["a", "b", "c", "d"]
    assert q.counts() == cairn.LedgerCounts(pending=0, claimed=0, done=3, failed=1)
    failed = q.item("b")
    assert failed is not None and failed.error == "ValueError: bad input"


def test_claims_ending_on_an_unsettled_claim_records_a_failure(any_store: cairn.Store) -> None:
    q = any_store.ledger("q")
    q.enqueue(["a", "b"])
    for claim in q.claims(worker="w"):
        break
    item = q.item("a")
    assert item is not None and item.state is cairn.ItemState.PENDING and item.attempts == 1
    assert item.error == "the worker loop ended before the item was settled"
    with pytest.raises(KeyboardInterrupt):
        for claim in q.claims(worker="w"):
            with claim:
                raise KeyboardInterrupt
    b = q.item("b")
    assert b is not None and b.state is cairn.ItemState.PENDING and b.attempts == 0, "released, no attempt spent"


def test_claims_with_wait_waits_until_an_item_is_due_then_ends_when_none_comes(any_store: cairn.Store) -> None:
    q = any_store.ledger("q")
    q.enqueue(["later"], delay=0.3)
    started = time.monotonic()
    got = [c.id for c in q.claims(worker="w", wait=2)]
    assert got == ["later"]
    took = time.monotonic() - started
    # Deadlines are whole milliseconds of the wall clock, measured here on the monotonic one:
    # a few milliseconds either way is rounding, not an early hand-out.
    assert 0.29 <= took < 1.5 + 2, took
    assert q.is_done("later")
    started = time.monotonic()
    assert list(q.claims(worker="w", wait=0.2)) == []
    took = time.monotonic() - started
    assert 0.19 <= took < 1.5, took
    assert list(q.claims(worker="w")) == [], "without wait, an empty queue ends the loop at once"


def test_the_default_lease_is_the_cli_default_of_a_minute(store: cairn.Store) -> None:
    assert cairn._ledger.DEFAULT_LEASE == 60.0
    q = store.ledger("q")
    q.enqueue(["a"])
    claim = q.claim_next()
    assert claim is not None
    left = (claim.lease_until - cairn._ledger._utc(round(time.time() * 1000))).total_seconds()
    assert 55 < left <= 60


def test_an_item_state_formats_as_its_name(store: cairn.Store) -> None:
    ledger = store.ledger("l")
    ledger.mark_done("a")
    item = ledger.item("a")
    assert item is not None
    assert f"{item.state}" == "done" and str(item.state) == "done"
    assert f"{item.state:>6}" == "  done"
    assert item.state == "done"


def test_a_negative_limit_is_invalid_input_not_an_overflow(store: cairn.Store) -> None:
    ledger = store.ledger("l")
    with pytest.raises(cairn.InvalidInputError, match="limit is -1"):
        ledger.list(limit=-1)
    with pytest.raises(cairn.InvalidInputError, match="n is -2"):
        ledger.claim_next_many(-2)


def test_an_empty_id_is_named_with_an(store: cairn.Store) -> None:
    with pytest.raises(cairn.InvalidInputError, match="^invalid input: an id must not be empty$"):
        store.ledger("l").enqueue([""])


def test_integers_out_of_range_are_invalid_input_or_clamped_never_an_overflow(store: cairn.Store) -> None:
    with pytest.raises(cairn.InvalidInputError, match="max_attempts is -1"):
        store.ledger("l", max_attempts=-1)
    ledger = store.ledger("l")
    ledger.enqueue(["a"])
    assert [i.id for i in ledger.list(limit=2**70)] == ["a"], "a huge limit is no limit"
    assert [c.id for c in ledger.claim_next_many(2**40, worker="w")] == ["a"]
    with pytest.raises(cairn.InvalidInputError, match="a lock admits 1 or more holders at once; -1 was asked"):
        store.lock("x", max=-1)


def test_take_in_a_with_on_an_empty_queue_says_nothing_is_due(any_store: cairn.Store) -> None:
    """`with ledger.claim_next() as claim:` on an empty queue failed with a bare "'NoneType'
    object does not support the context manager protocol"; `take` is the form for `with`: it
    raises NothingDueError (a LookupError) naming the ledger and what to use instead, and
    spends nothing."""
    q = any_store.ledger("jobs")
    with pytest.raises(cairn.NothingDueError, match="nothing is due in ledger 'jobs'") as err:
        with q.take(lease=60):
            pytest.fail("the body ran without a claim")
    assert isinstance(err.value, LookupError) and isinstance(err.value, cairn.Error)
    assert "claim_next() returns None" in str(err.value)
    # An item due later is not taken either.
    q.enqueue_items([cairn.QueueItem("later", delay="1h")])
    with pytest.raises(cairn.NothingDueError):
        q.take()
    q.enqueue(["now"])
    with q.take(lease=60) as claim:
        assert claim.id == "now"
    assert q.is_done("now")
    assert q.claim_next() is None, "take still leaves claim_next's None for loops"
