"""examples/backfill.py, the example a Python user copies: killed with SIGKILL mid-run, it
carries on where it was, and once finished it says there is nothing to do."""

from __future__ import annotations

import re
from pathlib import Path

import cairn

from conftest import Child

BACKFILL = Path(__file__).resolve().parents[1] / "examples" / "backfill.py"


def test_the_backfill_killed_mid_run_resumes_and_then_has_nothing_to_do(path: str, children: list[Child]) -> None:
    args = ("--db", path, "--orders", "3000", "--step-ms", "0.05")
    first = Child(*args, script=BACKFILL)
    children.append(first)
    assert first.line() == f"store: {path}"
    assert (first.line() or "").startswith("run #1: 3000 of 3000 orders to do")
    assert (first.line() or "").startswith("batch 1 committed")
    first.kill()
    committed = [line for line in first.all_lines() if line.startswith("batch")]

    second = Child(*args, script=BACKFILL)
    children.append(second)
    out = second.all_lines()
    assert second.wait() == 0, second.stderr()
    assert out[1].startswith("run #2: "), out
    batches = int(re.search(r"(\d+) batches committed so far", out[1]).group(1))  # type: ignore[union-attr]
    reported = 1 + len(committed)
    assert reported <= batches <= reported + 1, "every reported batch kept (and at most the one in flight)"
    assert any(line.startswith("run #2 finished") for line in out)

    third = Child(*args, script=BACKFILL)
    children.append(third)
    out = third.all_lines()
    assert third.wait() == 0
    assert "nothing to do" in out[1]
    with cairn.Store(path) as s:
        c = s.ledger("backfill-orders").counts()
        assert c.done + c.failed == 3000 and c.pending == 0 and c.claimed == 0
        assert s.integrity_check() == ["ok"]


def test_a_second_backfill_while_one_runs_is_turned_away(path: str, children: list[Child]) -> None:
    args = ("--db", path, "--orders", "100000", "--step-ms", "0.05")
    first = Child(*args, script=BACKFILL)
    children.append(first)
    first.line()
    assert (first.line() or "").startswith("run #1")
    second = Child(*args, script=BACKFILL)
    children.append(second)
    assert second.line() == f"store: {path}"
    assert second.line() is None
    assert second.wait() == 1
    assert "another run is in progress" in second.stderr()
