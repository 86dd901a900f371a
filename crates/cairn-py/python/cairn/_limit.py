"""Rate limits shared by every process (and host) using a store."""

from __future__ import annotations

import functools
import inspect
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, Type, TypeVar

from . import _cairn
from ._blocking import in_loop, warn_blocking
from ._lock import _timeout_seconds
from ._types import Duration
from .errors import InvalidInputError

if TYPE_CHECKING:
    from ._store import Store


F = TypeVar("F", bound=Callable[..., Any])


def check_args(name: str, rate: str, burst: int) -> None:
    """Refuse a limiter's bad name, rate or burst, before anything is taken."""
    if not name:
        raise InvalidInputError("invalid input: a limiter name must not be empty")
    if not isinstance(rate, str):
        raise TypeError(f"rate must be text like '10/s' or '5/10s', not {type(rate).__name__}")
    _cairn.parse_rate(rate)  # refused here, not at the first acquire
    if isinstance(burst, bool) or not isinstance(burst, int):
        raise TypeError(f"burst must be an int, not {type(burst).__name__}")
    if not 1 <= burst <= _cairn.MAX_BURST:
        raise InvalidInputError(f"invalid input: a limiter's burst is 1 to {_cairn.MAX_BURST} slots; {burst} was asked")


class Limiter:
    """A rate limit shared by every process (and host) using the store, from
    :meth:`Store.limiter`: ``store.limiter("api", "10/s", burst=5)``.

    The guarantee: in any window of time of length W, at most ``rate × W + burst`` slots are
    handed out, whoever asks; a steady demand gets the whole rate. Each slot is one atomic
    statement on one row (GCRA), on the server's clock on PostgreSQL; nothing is held between
    calls, so a killed process leaves nothing behind. ``burst`` is how many slots may be taken
    at once after a quiet spell (1: every slot is spaced by the interval). Every user of a
    name should give the same rate and burst.

    ``with lim:`` and a function decorated with ``@lim`` wait for a slot (as long as it
    takes); :meth:`acquire` waits up to a timeout, :meth:`try_acquire` not at all. Waiting
    sleeps the exact time until the next slot, in Python, so Ctrl-C interrupts it and other
    threads run meanwhile.

    >>> import cairn
    >>> from cairn.testing import ManualClock
    >>> store = cairn.Store(":memory:", clock=ManualClock())
    >>> api = store.limiter("api", "10/s", burst=2)
    >>> api.try_acquire(), api.try_acquire(), api.try_acquire()
    (True, True, False)
    >>> @api
    ... def call() -> str:
    ...     return "called"
    >>> call()  # waited for the next slot (on the manual clock, by moving it)
    'called'
    """

    __slots__ = ("_store", "_name", "_rate", "_burst")

    def __init__(self, store: Store, name: str, rate: str, burst: int = 1) -> None:
        check_args(name, rate, burst)
        self._store = store
        self._name = name
        self._rate = rate
        self._burst = burst

    @property
    def name(self) -> str:
        """The limit's name."""
        return self._name

    @property
    def rate(self) -> str:
        """The rate, as given (``"10/s"``)."""
        return self._rate

    @property
    def burst(self) -> int:
        """How many slots may be taken at once after a quiet spell."""
        return self._burst

    def try_acquire(self) -> bool:
        """Take a slot if one is free now; False at once otherwise."""
        return self._take() is None

    def acquire(self, timeout: Optional[Duration] = None) -> bool:
        """Take a slot, waiting until one frees; False if none can be had within `timeout`
        (None or ``math.inf``: no limit; a duration, see :func:`cairn.parse_duration`). When
        the next slot is beyond the timeout, False comes at once rather than after waiting in
        vain."""
        wait = _timeout_seconds(timeout, "a limiter's timeout")
        clock = self._store._clock
        now: Callable[[], float] = time.monotonic if clock is None else clock.now
        deadline = None if wait is None else now() + wait
        while True:
            retry = self._take()
            if retry is None:
                return True
            if deadline is not None and now() + retry > deadline:
                return False
            if clock is None:
                if in_loop():
                    warn_blocking(self._store, "limiter", f"waiting for a slot of the limiter {self._name!r}", 2)
                time.sleep(retry)
            else:
                clock.advance(max(retry, 0.001))

    def _take(self) -> Optional[float]:
        """None if a slot was taken, else the seconds until the next one frees."""
        return self._store._conn().limit_take(self._name, self._rate, self._burst)

    def __enter__(self) -> Limiter:
        """Wait for a slot, as long as it takes."""
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Nothing to give back: a slot is used when taken."""

    def __call__(self, fn: F) -> F:
        """Decorate `fn` so that each call first waits for a slot. Plain functions only: a
        coroutine function is refused with ``TypeError`` (its waits would block the event loop)."""
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"a cairn.Limiter decorates plain functions, not the coroutine function {fn.__name__!r}: "
                "its waits would block the event loop; call limiter.try_acquire() in it and sleep with "
                "asyncio.sleep instead"
            )
        if not callable(fn):
            raise TypeError(f"a cairn.Limiter decorates a function, not {type(fn).__name__}")

        @functools.wraps(fn)
        def limited(*args: Any, **kwargs: Any) -> Any:
            self.acquire()
            return fn(*args, **kwargs)

        return limited  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<cairn.Limiter {self._name!r} {self._rate} burst {self._burst}>"
