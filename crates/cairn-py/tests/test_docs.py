"""``help(cairn)`` leads somewhere, its examples and the docstrings' run as written, and
docs/NAMES.md's Python column names methods that exist."""

from __future__ import annotations

import doctest
import importlib
import re

import pytest

import cairn
from conftest import REPO

MODULES = [
    "cairn",
    "cairn._store",
    "cairn._aio_store",
    "cairn._aio_cache",
    "cairn._aio_memo",
    "cairn._cache",
    "cairn._ledger",
    "cairn._aio_ledger",
    "cairn._lock",
    "cairn._job",
    "cairn._checkpoint",
    "cairn._blocking",
    "cairn._migrate",
    "cairn.errors",
    "cairn.testing",
    "cairn._aio_lock",
    "cairn._aio_limit",
    "cairn._aio_run",
    "cairn._aio_job",
]


def test_help_cairn_leads_to_each_part_and_the_docs() -> None:
    doc = cairn.__doc__ or ""
    for name in ["cairn.Store", "cairn.Cache", "cairn.Ledger", "cairn.Claim", "cairn.Lock", "cairn.errors",
                 "cairn.testing", "cairn.parse_duration", "NAMES.md", ".each(", "claim_next"]:
        assert name in doc, name


@pytest.mark.parametrize("module", MODULES)
def test_the_docstring_examples_run_as_written(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


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


HANDLES = {
    "store": cairn.Store,
    "tx": cairn.Transaction,
    "cache": cairn.Cache,
    "ledger": cairn.Ledger,
    "claim": cairn.Claim,
    "cp": cairn.Checkpoint,
}


def test_the_names_table_python_column_names_methods_that_exist() -> None:
    text = (REPO / "docs" / "NAMES.md").read_text()
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and " | " in line]
    python = " ".join(cells[2] for cells in rows if len(cells) >= 4)
    calls = re.findall(r"\b(store|tx|cache|ledger|claim|cp)\.([a-z_]+)\(", python)
    assert len(calls) > 40
    missing = sorted({f"{h}.{m}" for h, m in calls if not hasattr(HANDLES[h], m)})
    assert missing == []
    for name in re.findall(r"\bcairn\.([A-Za-z_]+)", python):
        assert hasattr(cairn, name), name
