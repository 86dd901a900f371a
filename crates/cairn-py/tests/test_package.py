"""The distribution: named ``cairn-state`` (``cairn`` on PyPI is another project's) while the
import is ``cairn``, with its URLs, and its version as ``cairn.__version__``."""

from __future__ import annotations

from importlib.metadata import metadata, version

import cairn


def test_the_distribution_is_cairn_state_with_its_urls_and_version() -> None:
    md = metadata("cairn-state")
    assert md["Name"] == "cairn-state"
    assert any(url.startswith("Documentation, https://") for url in md.get_all("Project-URL") or [])
    assert cairn.__version__ == version("cairn-state") != "0+unknown"
