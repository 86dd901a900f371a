"""Named locks, against cron overlap and for singletons."""

from __future__ import annotations

import datetime
import functools
import os
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, Type, TypeVar

from ._blocking import in_loop, warn_blocking
from ._types import Duration
from .errors import InvalidInputError, LeaseLostError, LockHeldError

if TYPE_CHECKING:
    from . import _cairn
    from ._store import Store


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock."""

    #: The holder's unique owner name.
    owner: str
    #: Its process id.
    pid: int
    #: When its hold runs out unless renewed (UTC).
    expires_at: datetime.datetime
    #: Which slot it holds: 0 for a plain lock, below `max` for a lock of ``max=N`` holders.
    slot: int = 0


def holder_from(raw: _cairn.RawLockHolder) -> LockHolder:
    """The extension's record of a holder, as a :class:`LockHolder`."""
    expires_at = datetime.datetime.fromtimestamp(raw.expires_at_millis / 1000, tz=datetime.timezone.utc)
    return LockHolder(owner=raw.owner, pid=raw.pid, expires_at=expires_at, slot=raw.slot)


def _timeout_seconds(timeout: Optional[Duration], what: str = "a lock timeout") -> Optional[float]:
    """Seconds to wait, or None for no limit (None or infinity); `what` names it in errors."""
    if timeout is None:
        return None
    if isinstance(timeout, bool):
        raise TypeError("timeout must be seconds, a timedelta or a string like '5m', not a bool")
    if isinstance(timeout, datetime.timedelta):
        secs = timeout.total_seconds()
    elif isinstance(timeout, str):
        from . import parse_duration

        secs = parse_duration(timeout)
    elif isinstance(timeout, (int, float)):
        secs = float(timeout)
    else:
        raise TypeError(
            f"timeout must be seconds, a timedelta or a string like '5m', not {type(timeout).__name__}"
        )
    if secs != secs:
        raise InvalidInputError(f"invalid input: {what} is NaN; give a number of seconds")
    if secs < 0:
        raise InvalidInputError(f"invalid input: {what} of {secs} seconds is negative")
    return None if secs == float("inf") else secs


def held_error(store: Store, name: str, max: int, timeout: Optional[float]) -> LockHeldError:
    """The :class:`LockHeldError` for lock `name` (of `max` holders) not taken within `timeout`
    seconds, naming who holds it (read from `store`: a blocking call)."""
    within = "at once" if timeout == 0 else f"within {timeout:g} s"
    if max > 1:
        pids = ", ".join(str(h.pid) for h in store.lock_holders(name, max))
        return LockHeldError(
            f"the lock {name!r} is held by its {max} holders at most (processes {pids}); no slot was free {within}"
        )
    holder = store.lock_holder(name)
    if holder is None:
        who = "another holder (just released)"
    elif holder.pid == os.getpid():
        who = (
            f"this process ({holder.pid}, owner {holder.owner}), through another Lock object or "
            "an outer `with` (a lock is not re-entrant)"
        )
    else:
        who = f"process {holder.pid} (owner {holder.owner}) until {holder.expires_at.isoformat()}"
    return LockHeldError(f"the lock {name!r} is held by {who}; it was not free {within}")


class Lock:
    """A named lock of a store, from :meth:`Store.lock`. Not re-entrant: a second acquisition
    of a lock this process holds fails like anyone else's.

    ``with store.lock("nightly", ttl="10m", timeout=0):`` takes it or raises
    :class:`LockHeldError`, and releases it at the end of the block. While it is held, a
    thread of the library renews it every ``ttl / 3`` (``keep_alive=True``, the default, for
    file stores), so a long job never loses it; the `ttl` then only bounds how long a holder
    that died on *another host* keeps it (on the same host a dead holder's lock is taken over
    at once). If it was lost anyway (the process was frozen longer than the TTL), leaving the
    block raises :class:`LeaseLostError`.

    With ``max=N`` (:meth:`Store.lock`) up to N holders have it at once, a counting
    semaphore: each holds one of its N slots, with the same expiry, renewal and dead-holder
    recovery. A plain lock is slot 0 of the same name.

    The waiting happens in Python, in short sleeps, so Ctrl-C interrupts it.

    It is also a decorator: each call of the function holds the lock (a lock of its own per
    call, so calls from several threads wait for each other as processes do).

    >>> import cairn
    >>> store = cairn.Store(":memory:")
    >>> @store.lock("report", timeout=0)
    ... def report() -> str:
    ...     return "made"
    >>> report()
    'made'
    """

    __slots__ = ("_store", "_name", "_ttl", "_max", "_timeout", "_keep_alive", "_held", "_renewer")

    def __init__(
        self,
        store: Store,
        name: str,
        ttl: Duration,
        timeout: Optional[Duration],
        keep_alive: bool,
        max: int = 1,
    ) -> None:
        self._store = store
        self._name = name
        self._ttl = ttl
        if isinstance(max, int) and not isinstance(max, bool) and max < 0:
            raise InvalidInputError(f"invalid input: a lock admits 1 or more holders at once; {max} was asked")
        self._max = max
        self._timeout = _timeout_seconds(timeout)
        self._keep_alive = keep_alive
        self._held: Optional[_cairn.HeldLock] = None
        self._renewer: Optional[_cairn.KeepAlive] = None

    @property
    def name(self) -> str:
        """The lock's name."""
        return self._name

    @property
    def held(self) -> bool:
        """True between a successful :meth:`acquire` and :meth:`release`."""
        return self._held is not None

    def acquire(self, timeout: Optional[Duration] = None) -> bool:
        """Take the lock, waiting up to `timeout` (0: not at all; ``math.inf``: without limit;
        None: the timeout given to :meth:`Store.lock`). True if it was taken."""
        if self._held is not None:
            raise InvalidInputError(f"invalid input: this Lock object already holds {self._name!r}")
        wait = self._timeout if timeout is None else _timeout_seconds(timeout)
        deadline = None if wait is None else time.monotonic() + wait
        nap = 0.002
        while True:
            held = self._store._conn().lock_try(self._name, self._ttl, self._max)
            if held is not None:
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            if nap == 0.002 and in_loop():
                warn_blocking(self._store, "lock", f"waiting for the lock {self._name!r}, held elsewhere", 2)
            time.sleep(nap if deadline is None else min(nap, deadline - now))
            nap = min(nap * 2, 0.1)
        self._held = held
        if self._keep_alive and not self._store._memory:
            try:
                self._renewer = self._store._conn().lock_keep_alive(held, self._ttl)
            except BaseException:
                self.release()
                raise
        return True

    def release(self) -> bool:
        """Release the lock. False if it had been taken over (or was not held)."""
        held, self._held = self._held, None
        renewer, self._renewer = self._renewer, None
        if held is None:
            return False
        lost = None
        if renewer is not None:
            try:
                renewer.stop()
            except LeaseLostError as e:
                lost = e
        released = self._store._conn().lock_release(held)
        if lost is not None:
            raise lost
        return released

    def renew(self, ttl: Optional[Duration] = None) -> None:
        """Push the expiry to `ttl` (the lock's TTL when None) from now. ``LeaseLostError`` if
        it expired and another process took it."""
        if self._held is None:
            raise InvalidInputError(f"invalid input: the lock {self._name!r} is not held by this Lock object")
        self._store._conn().lock_renew(self._held, self._ttl if ttl is None else ttl)

    def __enter__(self) -> Lock:
        """Acquire within the lock's timeout, or raise :class:`LockHeldError` naming the
        holder."""
        if not self.acquire():
            raise held_error(self._store, self._name, self._max, self._timeout)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Release; raise :class:`LeaseLostError` if the lock was lost while held (unless the
        block raised)."""
        try:
            self.release()
        except LeaseLostError:
            if exc is None:
                raise

    def __call__(self, fn: F) -> F:
        """Decorate `fn` so that each call runs holding the lock (:class:`LockHeldError` if
        it is not free within the timeout), a fresh acquisition per call."""
        if not callable(fn):
            raise TypeError(f"a Lock decorates a function, not {type(fn).__name__}")

        @functools.wraps(fn)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with Lock(self._store, self._name, self._ttl, self._timeout, self._keep_alive, self._max):
                return fn(*args, **kwargs)

        return locked  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<cairn.Lock {self._name!r} {'held' if self.held else 'not held'}>"
