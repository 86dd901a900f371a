"""The typing example (type-checked by scripts/test-python with mypy --strict) is also correct
Python: it runs here, sync and async."""

from __future__ import annotations

from pathlib import Path

import typing_example


def test_the_typing_example_runs_as_written(tmp_path: Path) -> None:
    typing_example.exercise(tmp_path)


async def test_the_async_typing_example_runs_as_written(tmp_path: Path) -> None:
    await typing_example.exercise_async(tmp_path)
    await typing_example.exercise_async_ledger(tmp_path)
    await typing_example.exercise_async_locks_limits_runs_jobs(tmp_path)
