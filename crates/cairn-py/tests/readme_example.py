"""The README's Python example, with the checks that it did what it says, as one program.

Shared by test_readme.py (the installed package from the checkout) and scripts/test-wheel (the
wheel, in a virtualenv with no Rust toolchain), so that both run the example as the README
has it. As a script: `python readme_example.py README.md` prints the program.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def readme_example(readme: Path) -> str:
    """The code block of the README's "From Python" section, then assertions on its results."""
    text = readme.read_text()
    section = text[text.index("## From Python") :]
    code = re.findall(r"```python\n(.*?)```", section[: section.index("\n### ", 3)], re.S)[0]
    code += "\nassert store.ledger('invoices').filter_new(['inv-1', 'inv-2', 'inv-3', 'inv-4']) == ['inv-4']\n"
    code += "assert store.ledger('emails').counts().done == 1 and claim is None\n"
    code += "assert 'page-7' in store.ledger('exports') and store.checkpoint('exports').get() == {'page': 7}\n"
    code += "assert body == '<html>…</html>' and rate('EUR') == 1.08\n"
    return code


def readme_async_example(readme: Path) -> str:
    """The code block of the README's "From asyncio" section."""
    text = readme.read_text()
    section = text[text.index("### From asyncio") :]
    (code,) = re.findall(r"```python\n(.*?)```", section[: section.index("\n## ", 3)], re.S)
    return code


if __name__ == "__main__":
    sys.stdout.write(readme_example(Path(sys.argv[1])))
