"""The public surface: the names the issue asks for, each documented and annotated."""

from __future__ import annotations

import inspect

import pytest

import cairn
import cairn.testing

REQUIRED = {
    cairn.Store: ["cache", "ledger", "checkpoint", "transaction", "memoize", "lock", "migrate", "query", "execute", "close"],
    cairn.Cache: ["get", "set", "add", "delete", "touch", "incr", "keys", "sweep", "clear", "stats", "get_or_set",
                  "__getitem__", "__contains__", "__delitem__"],
    cairn.Ledger: ["filter_new", "mark_done", "is_done", "__contains__", "fail", "enqueue", "claim_next", "counts",
                   "enqueue_items", "retry", "retry_all_failed", "prune_done", "claim_next_many", "complete_many"],
    cairn.Claim: ["complete", "fail", "extend", "__enter__", "__exit__"],
    cairn.Checkpoint: ["get", "set", "delete"],
    cairn.Transaction: ["cache", "ledger", "checkpoint", "execute", "query", "__enter__", "__exit__"],
}


@pytest.mark.parametrize("cls", list(REQUIRED), ids=lambda c: c.__name__)
def test_the_issues_names_exist(cls: type) -> None:
    for name in REQUIRED[cls]:
        assert callable(getattr(cls, name)), f"{cls.__name__}.{name}"


def test_the_queue_api_of_issue_13_exists() -> None:
    for cls, props in ((cairn.Claim, ["data", "attempt"]), (cairn.Ledger, ["retry_delay", "max_attempts"])):
        for name in props:
            assert isinstance(vars(cls)[name], property), f"{cls.__name__}.{name}"
    fields = cairn.QueueItem.__dataclass_fields__  # type: ignore[attr-defined]
    assert list(fields) == ["id", "data", "delay", "not_before", "priority", "group"]  # issue 20 added the last two
    assert {"data", "due"} <= set(cairn.Item.__dataclass_fields__)  # type: ignore[attr-defined]
    assert "retry_delay" in inspect.signature(cairn.Store.ledger).parameters
    assert "retry_delay" in inspect.signature(cairn.Transaction.ledger).parameters


def public_members() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for module in (cairn, cairn.testing):
        for name in getattr(module, "__all__", [n for n in dir(module) if not n.startswith("_")]):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            out.append((f"{module.__name__}.{name}", obj))
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and attr not in ("__init__", "__enter__", "__getitem__"):
                        continue
                    if isinstance(member, (property, staticmethod, classmethod)) or inspect.isfunction(member):
                        out.append((f"{module.__name__}.{name}.{attr}", member))
    return out


@pytest.mark.parametrize("qualname, obj", public_members(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_public_name_has_a_docstring_and_annotations(qualname: str, obj: object) -> None:
    target = obj.fget if isinstance(obj, property) else obj
    doc = inspect.getdoc(target)
    if inspect.isclass(obj) and getattr(obj, "__dataclass_fields__", None):
        assert obj.__doc__ and not obj.__doc__.startswith(obj.__name__ + "("), qualname
        return
    assert doc, f"{qualname} has no docstring"
    if inspect.isfunction(target):
        sig = inspect.signature(target)
        for p in sig.parameters.values():
            if p.name not in ("self", "cls"):
                assert p.annotation is not inspect.Parameter.empty, f"{qualname}: {p.name} is not annotated"
        assert sig.return_annotation is not inspect.Signature.empty, f"{qualname}: no return annotation"


def test_a_lost_server_is_a_connection_error_exported_and_documented() -> None:
    assert "UnavailableError" in cairn.__all__ and cairn.UnavailableError is cairn.errors.UnavailableError
    assert issubclass(cairn.UnavailableError, cairn.Error) and issubclass(cairn.UnavailableError, ConnectionError)
    assert cairn.UnavailableError.kind == "unavailable" and cairn.UnavailableError.__doc__
    assert "maybe_committed" in cairn.UnavailableError.__doc__


def test_the_package_is_typed() -> None:
    from pathlib import Path

    assert (Path(cairn.__file__).parent / "py.typed").exists()
    assert (Path(cairn.__file__).parent / "_cairn.pyi").exists()
