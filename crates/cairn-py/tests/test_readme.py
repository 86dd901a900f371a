"""The README's Python example runs as written (against $CAIRN_DB, the CLI's default store)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import DEADLINE, REPO
from readme_example import readme_async_example, readme_example


def test_the_readme_python_example_runs(tmp_path: Path) -> None:
    code = readme_example(REPO / "README.md")
    db = tmp_path / "state.db"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "CAIRN_DB": str(db)},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert out.returncode == 0, out.stderr
    assert db.exists()


def test_the_readme_asyncio_example_runs_and_prints_what_it_did(tmp_path: Path) -> None:
    code = readme_async_example(REPO / "README.md")
    db = tmp_path / "state.db"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "CAIRN_DB": str(db)},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["<html>https://example.com/a</html>", "['https://example.com/a']", "1.08", "2"]
