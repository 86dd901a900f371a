"""The warning of a sync :class:`Store` used inside a running event loop, about to block it."""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

__all__ = ["BlockingCallWarning"]


class BlockingCallWarning(RuntimeWarning):
    """Warned when a sync :class:`cairn.Store` called from inside a running asyncio event loop
    (a coroutine, or a callback of the loop) is about to block on a wait: a lock held by
    another holder (with a timeout other than 0), ``claim_next``/``claims`` with a `wait` and
    nothing due, ``wait_drained`` on a ledger that is not drained, a limiter with no free slot,
    ``store.run`` with a `wait` on a run another attempt holds, ``get_or_set`` (and
    ``@store.memoize``) on a miss (it computes, or waits for another process's computation).
    The whole loop, every other task included, stops meanwhile: use :class:`cairn.AsyncStore`
    (the same calls, awaited), or run the blocking call in a thread (``asyncio.to_thread``).

    Warned once per store and kind of wait (the later waits of that kind on that store do not
    warn again); calls that do not wait (a get, a set, a free lock) never warn. It is a
    ``RuntimeWarning``: ``warnings.simplefilter("error", cairn.BlockingCallWarning)`` makes it
    an exception, ``"ignore"`` silences it.

    >>> import asyncio, warnings, cairn
    >>> store = cairn.Store(":memory:")
    >>> async def main() -> None:
    ...     store.cache("c").get_or_set("k", lambda: 1)  # a miss: computes on the loop
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     asyncio.run(main())
    >>> [w.category.__name__ for w in seen]
    ['BlockingCallWarning']
    """


_lock = threading.Lock()


def in_loop() -> bool:
    """True when called from the thread of a running event loop."""
    return asyncio._get_running_loop() is not None


def warn_blocking(src: Any, kind: str, what: str, stacklevel: int) -> None:
    """Warn that `what` is about to block the running loop, unless the store of `src` (a
    :class:`Store`, or a :class:`Transaction` of one) has warned of this `kind` of wait
    already. `stacklevel` counts from the caller of this function to the user's call."""
    store = getattr(src, "_store", src)
    with _lock:
        seen = store.__dict__.setdefault("_blocking_warned", set())
        if kind in seen:
            return
        seen.add(kind)
    warnings.warn(
        f"{what}: a call of the sync cairn.Store inside a running event loop stops the whole loop "
        "(every other task) while it waits; use cairn.AsyncStore and await the call, or run it in a thread "
        "(asyncio.to_thread). Warned once per store for this kind of wait.",
        BlockingCallWarning,
        stacklevel=stacklevel + 1,
    )
