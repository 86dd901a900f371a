"""Priority and groups from Python: `QueueItem(priority=, group=)` and `enqueue(priority=,
group=)`, on every engine the tests reach."""

from __future__ import annotations

from typing import List

import pytest

import cairn


def drain(ledger: cairn.Ledger) -> List[str]:
    """Claim and complete everything claimable now; the ids in the order handed out."""
    out = []
    while (c := ledger.claim_next(lease="1d", worker="w")) is not None:
        out.append(c.id)
        c.complete()
    return out


def test_higher_priorities_go_first_and_equal_ones_in_queue_order(any_clocked: cairn.Store) -> None:
    q = any_clocked.ledger("q")
    q.enqueue(["a", "b"])
    q.enqueue(["hi-1", "hi-2"], priority=5)
    q.enqueue_items([cairn.QueueItem("top", priority=1000), cairn.QueueItem("low", priority=-1)])
    assert drain(q) == ["top", "hi-1", "hi-2", "a", "b", "low"]


def test_a_group_hands_out_one_item_at_a_time_in_queue_order(any_clocked: cairn.Store) -> None:
    q = any_clocked.ledger("q")
    q.enqueue(["acme-1", "acme-2"], group="acme")
    q.enqueue_items([cairn.QueueItem("bolt-1", group="bolt", priority=3)])
    first = q.claim_next(lease="1m", worker="w1")
    second = q.claim_next(lease="1m", worker="w2")
    assert first is not None and second is not None
    assert (first.id, second.id) == ("bolt-1", "acme-1")
    assert q.claim_next(lease="1m", worker="w3") is None, "acme-2 waits for acme-1"
    assert q.counts().pending == 1
    second.complete()
    assert drain(q) == ["acme-2"]


@pytest.mark.parametrize("priority", [1001, -1001, 2**70])
def test_a_priority_out_of_range_is_refused_and_queues_nothing(any_clocked: cairn.Store, priority: int) -> None:
    q = any_clocked.ledger("q")
    with pytest.raises(cairn.InvalidInputError, match="-1000 to 1000"):
        q.enqueue_items([cairn.QueueItem("ok"), cairn.QueueItem("bad", priority=priority)])
    assert q.counts().pending == 0


def test_a_priority_or_group_of_the_wrong_type_is_a_type_error(any_clocked: cairn.Store) -> None:
    q = any_clocked.ledger("q")
    with pytest.raises(TypeError, match="priority must be an int"):
        q.enqueue_items([cairn.QueueItem("a", priority=1.5)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="priority must be an int"):
        q.enqueue(["a"], priority=True)
    with pytest.raises(TypeError, match="group must be a str"):
        q.enqueue(["a"], group=b"acme")  # type: ignore[arg-type]
    with pytest.raises(cairn.InvalidInputError):
        q.enqueue(["a"], group="")
    assert q.counts().pending == 0
