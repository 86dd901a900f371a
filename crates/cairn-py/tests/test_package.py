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


def test_every_module_of_the_package_compiles_with_warnings_as_errors() -> None:
    """An invalid escape in a docstring ("\\ ") is a SyntaxWarning that becomes an error under
    `python -W error` (and a SyntaxError in later Pythons): every module must compile clean."""
    import warnings
    from pathlib import Path

    package = Path(cairn.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert modules, package
    for module in modules:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compile(module.read_text(encoding="utf-8"), str(module), "exec")
