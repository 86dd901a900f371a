"""The README's Python example runs as written (against $CAIRN_DB, the CLI's default store)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import DEADLINE, REPO


def test_the_readme_python_example_runs(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## From Python") :]
    (code,) = re.findall(r"```python\n(.*?)```", section[: section.index("\n## ", 3)], re.S)
    code += "\nassert store.ledger('invoices').filter_new(['inv-1', 'inv-2', 'inv-3', 'inv-4']) == ['inv-4']\n"
    code += "assert store.ledger('emails').counts().done == 1 and claim is None\n"
    code += "assert 'page-7' in store.ledger('exports') and store.checkpoint('exports').get() == {'page': 7}\n"
    code += "assert body == '<html>…</html>' and rate('EUR') == 1.08\n"
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
