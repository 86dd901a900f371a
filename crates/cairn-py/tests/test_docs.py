"""The docstrings state the duration grammar once, where the others point."""

from __future__ import annotations

import pytest

import cairn


def test_the_duration_grammar_is_stated_once_and_its_examples_hold() -> None:
    doc = cairn.parse_duration.__doc__ or ""
    for said in ['"1.5h"', '"5 minutes"', '"M"', "months and years", "timedelta"]:
        assert said in doc, said
    assert cairn.parse_duration("1.5H") == cairn.parse_duration("1 hour 30 minutes") == 5400
    assert cairn.parse_duration("500ms") == 0.5
    for refused in ["10", "5M", "1y", "2 months"]:
        with pytest.raises(cairn.InvalidInputError):
            cairn.parse_duration(refused)


def test_the_docstrings_that_take_durations_point_to_the_grammar() -> None:
    from cairn.testing import ManualClock

    takers = [cairn.Store, cairn.Store.ledger, cairn.Store.lock, cairn.Store.memoize, cairn.Cache,
              cairn.QueueItem, cairn.Ledger.prune_done, ManualClock.advance]
    for obj in takers:
        assert "cairn.parse_duration" in (obj.__doc__ or ""), obj
