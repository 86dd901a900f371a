"""Jobs sharing a store never share a ledger by accident: ``store.ledger(ns)`` has no default
namespace (the default one is shared by every job that names none, and two jobs marking ids
``1``, ``2``, ... there skip each other's work), and every example in the README, the docs and
the docstrings names one per job."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import pytest

import cairn
from conftest import REPO


def test_a_ledger_has_no_default_namespace(store: cairn.Store) -> None:
    with pytest.raises(TypeError, match="ns"):
        store.ledger()  # type: ignore[call-arg]
    with store.transaction() as tx:
        with pytest.raises(TypeError, match="ns"):
            tx.ledger()  # type: ignore[call-arg]
    store.ledger("default").mark_done("1")
    assert store.ledger("nightly-export").filter_new(["1"]) == ["1"], "another job's '1' is not this one's"


def _subcommand(tokens: List[str]) -> Optional[str]:
    """The subcommand of a ``cairn`` command line: its first word that is not an option."""
    i = 1
    while i < len(tokens):
        if tokens[i] in ("-n", "--db", "--durability", "--busy-timeout"):
            i += 2
        elif tokens[i].startswith("-"):
            i += 1
        else:
            return tokens[i]
    return None


def _unnamed(text: str) -> List[str]:
    """The code lines of a Markdown text that use a ledger or a cache without naming its
    namespace: ``.ledger()`` or ``.cache()`` in Python, ``cairn ledger``/``cairn cache``
    without ``-n`` in a shell block that did not export ``CAIRN_NS``."""
    found = []
    for body in re.findall(r"```[a-z,_]*\n(.*?)```", text, re.S):
        exported = False
        for line in body.splitlines():
            exported = exported or "CAIRN_NS=" in line
            if re.search(r"\.(ledger|cache)\(\s*\)", line):
                found.append(line.strip())
            for command in re.split(r"\|\||&&|\||;|\$\(", line):
                tokens = command.split()
                if tokens[:1] == ["cairn"] and _subcommand(tokens) in ("ledger", "cache"):
                    if "-n" not in tokens and not exported:
                        found.append(line.strip())
    return found


DOCS = [REPO / "README.md", REPO / "crates/cairn-py/README.md", *sorted((REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_example_in_the_docs_names_a_namespace_per_job(doc: Path) -> None:
    assert _unnamed(doc.read_text()) == []


def test_every_docstring_example_names_a_namespace_per_job() -> None:
    package = Path(cairn.__file__).parent
    found = [
        f"{py.name}: {line.strip()}"
        for py in sorted(package.glob("*.py"))
        for line in py.read_text().splitlines()
        if line.lstrip().startswith((">>>", "...")) and re.search(r"\.(ledger|cache)\(\s*\)", line)
    ]
    assert found == []


def test_the_checker_sees_an_unnamed_ledger_in_python_and_in_the_shell() -> None:
    assert _unnamed("```python\nstore.ledger().mark_done(1)\n```\n") != []
    assert _unnamed("```sh\nlist | cairn --json ledger filter\n```\n") != []
    assert _unnamed("```sh\nlist | cairn -n jobs ledger filter\n```\n") == []
    assert _unnamed("```sh\nexport CAIRN_NS=jobs\ncairn ledger mark 1\n```\n") == []
