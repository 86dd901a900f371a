"""JSON for the values that are stored as JSON: ``None``, ``bool``, ``dict``, ``list``,
``tuple``, and integers beyond 64 bits. The extension calls these two functions; nothing
here ever pickles."""

from __future__ import annotations

import json
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
loads = json.loads


def dumps(value: Any) -> str:
    """Compact JSON text for ``value``. Refused: NaN and infinities inside a structure, dict
    keys that are not ``str`` (JSON would turn ``{1: x}`` into ``{"1": x}`` silently), and
    objects JSON cannot represent."""
    _check_keys(value)
    try:
        return _encoder.encode(value)
    except ValueError as e:
        from .errors import InvalidInputError

        raise InvalidInputError(f"invalid input: the value cannot be stored as JSON: {e}") from None
    except TypeError as e:
        raise TypeError(
            f"the value cannot be stored as JSON ({e}); dicts and lists may hold str, int, float, "
            "bool, None, and further dicts and lists"
        ) from None


def _check_keys(value: Any, depth: int = 0) -> None:
    # No id()-based cycle tracking: id() is an audited event (see _guard.py), so each call
    # would run the audit hook. A cycle stops at the depth limit, and the encoder reports it.
    if depth > 200:
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"dict keys must be str to be stored as JSON, not {type(k).__name__} ({k!r}); "
                    "JSON would change them into strings"
                )
            if isinstance(item, (dict, list, tuple)):
                _check_keys(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (dict, list, tuple)):
                _check_keys(item, depth + 1)
