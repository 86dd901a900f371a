"""Helpers for testing code that uses cairn."""

from __future__ import annotations

import datetime
from typing import Optional, Union

from . import _cairn
from ._types import Duration
from .errors import InvalidInputError


def _millis(d: Duration, what: str) -> int:
    if isinstance(d, bool):
        raise TypeError(f"{what} must be seconds, a timedelta or a string like '5m', not a bool")
    if isinstance(d, datetime.timedelta):
        secs = d.total_seconds()
    elif isinstance(d, str):
        secs = _cairn.parse_duration(d)
    elif isinstance(d, (int, float)):
        secs = float(d)
    else:
        raise TypeError(f"{what} must be seconds, a timedelta or a string like '5m', not {type(d).__name__}")
    if secs != secs or secs < 0 or secs == float("inf"):
        raise InvalidInputError(f"invalid input: {what} must be a finite number of seconds, at least 0, not {secs}")
    return round(secs * 1000)


class ManualClock:
    """A clock that moves only when told to, for tests of expiry, leases and locks without
    sleeping: ``cairn.Store(path, clock=ManualClock())``. Stores given the same clock share its
    time. Waits inside cairn (a ``get_or_set`` waiting for another computation) advance it
    instead of sleeping.

    >>> from cairn.testing import ManualClock
    >>> import cairn
    >>> clock = ManualClock()
    >>> store = cairn.Store(":memory:", clock=clock)
    >>> store.cache("tokens").set("k", "v", ttl=60)
    >>> clock.advance(60)
    >>> store.cache("tokens").get("k") is None
    True
    """

    __slots__ = ("_raw",)

    def __init__(self, start: Optional[Union[float, datetime.datetime]] = None) -> None:
        """Start at `start`: seconds since the Unix epoch, an aware ``datetime``, or None for
        2020-01-01T00:00:00Z."""
        if start is None:
            millis = 1_577_836_800_000
        elif isinstance(start, datetime.datetime):
            if start.tzinfo is None:
                raise InvalidInputError("invalid input: give the clock an aware datetime (with a tzinfo)")
            millis = round(start.timestamp() * 1000)
        else:
            millis = _millis(start, "the start time")
        self._raw = _cairn.RawManualClock(millis)

    def now(self) -> float:
        """The time, in seconds since the Unix epoch."""
        return self._raw.now_millis() / 1000

    def advance(self, by: Duration) -> None:
        """Move time forward by `by`: a duration (seconds, a timedelta, or text like ``"5m"``;
        see :func:`cairn.parse_duration`)."""
        self._raw.advance_millis(_millis(by, "advance"))

    def set(self, when: Union[float, datetime.datetime]) -> None:
        """Set the time: seconds since the Unix epoch, or an aware ``datetime``."""
        if isinstance(when, datetime.datetime):
            if when.tzinfo is None:
                raise InvalidInputError("invalid input: give the clock an aware datetime (with a tzinfo)")
            self._raw.set_millis(round(when.timestamp() * 1000))
        else:
            self._raw.set_millis(_millis(when, "the time"))

    def __repr__(self) -> str:
        return f"<cairn.testing.ManualClock at {self.now():.3f}>"
