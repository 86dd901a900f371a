"""``@store.memoize``: a function's results, computed once across processes."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union, overload

from ._types import Duration

if TYPE_CHECKING:
    from ._store import Store

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

# Keys longer than this are hashed (cache keys are at most 4096 bytes).
_MAX_PLAIN_KEY = 512

if TYPE_CHECKING or sys.version_info >= (3, 10):
    from typing import ParamSpec, Protocol

    P = ParamSpec("P")

    class Memoized(Protocol[P, R_co]):
        """What ``@store.memoize`` returns: the function, with the same parameters and result,
        plus ``invalidate`` and ``cache_key`` taking the same arguments."""

        @property
        def __wrapped__(self) -> Callable[P, R_co]:
            """The decorated function."""
            ...

        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
            """The stored result for these arguments, computed (once across processes) on a
            miss."""
            ...

        def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
            """Forget the result stored for these arguments. True if there was one."""
            ...

        def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
            """The cache key of these arguments."""
            ...


def _arguments_key(
    prefix: str, sig: inspect.Signature, skip_first: bool, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        raise  # the call itself is wrong: the function would raise the same
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    if skip_first:
        del arguments[next(iter(sig.parameters))]
    try:
        text = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"@memoize keys {prefix} by its arguments as JSON, and these are not JSON ({e}); "
            "pass key=lambda *args, **kwargs: '...' to build the key yourself"
        ) from None
    key = f"{prefix}:{text}"
    if len(key.encode()) > _MAX_PLAIN_KEY:
        key = f"{prefix}:sha256:{hashlib.sha256(text.encode()).hexdigest()}"
    return key


def _is_method(fn: Callable[..., Any], sig: inspect.Signature) -> bool:
    """True for a function defined in a class body whose first parameter is ``self`` or
    ``cls``."""
    first = next(iter(sig.parameters.values()), None)
    qualname = fn.__qualname__.rsplit(".<locals>.", 1)[-1]
    return first is not None and first.name in ("self", "cls") and "." in qualname


def memoize(
    store: Store,
    ttl: Optional[Duration],
    namespace: str,
    key: Optional[Callable[..., str]],
    version: Optional[str],
    include_self: bool = False,
) -> Callable[[Callable[P, R]], Memoized[P, R]]:
    """See :meth:`Store.memoize`."""

    def decorate(fn: Callable[P, R]) -> Memoized[P, R]:
        if not callable(fn):
            raise TypeError(f"@memoize decorates a function, not {type(fn).__name__}")
        if inspect.iscoroutinefunction(fn):
            raise TypeError("@memoize does not support coroutine functions (their result is a coroutine)")
        prefix = f"{fn.__module__}.{fn.__qualname__}" + (f"@{version}" if version else "")
        sig = inspect.signature(fn)
        skip_first = not include_self and _is_method(fn, sig)

        def cache_key(*args: Any, **kwargs: Any) -> str:
            if key is not None:
                k = key(*args, **kwargs)
                if not isinstance(k, str):
                    raise TypeError(f"the key function of @memoize returned {type(k).__name__}, not str")
                return f"{prefix}:{k}"
            return _arguments_key(prefix, sig, skip_first, args, kwargs)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = cache_key(*args, **kwargs)
            return store._joined_cache(namespace).get_or_set(k, lambda: fn(*args, **kwargs), ttl)

        def invalidate(*args: Any, **kwargs: Any) -> bool:
            """Forget the result stored for these arguments. True if there was one."""
            return store._joined_cache(namespace).delete(cache_key(*args, **kwargs))

        w: Any = wrapper
        w.cache_key = cache_key
        w.invalidate = invalidate
        return w  # type: ignore[no-any-return]

    return decorate


@overload
def store_memoize(self: Store, fn: Callable[P, R], /) -> Memoized[P, R]: ...


@overload
def store_memoize(
    self: Store,
    ttl: Optional[Duration] = None,
    *,
    namespace: str = "memoize",
    key: Optional[Callable[..., str]] = None,
    version: Optional[str] = None,
    include_self: bool = False,
) -> Callable[[Callable[P, R]], Memoized[P, R]]: ...


def store_memoize(
    self: Store,
    ttl: Union[Optional[Duration], Callable[..., Any]] = None,
    *,
    namespace: str = "memoize",
    key: Optional[Callable[..., str]] = None,
    version: Optional[str] = None,
    include_self: bool = False,
) -> Any:
    """Decorate a function so that its results are stored in the cache and computed once
    across processes (:meth:`Cache.get_or_set`) while fresh (`ttl`, a duration: see
    :func:`cairn.parse_duration`; None: forever).
    ``@store.memoize`` without parentheses stores them forever.

    The key is the function's module and qualified name (and `version`, to drop old
    results when the code changes) plus its arguments as JSON, defaults applied; pass
    ``key=lambda *args, **kwargs: "..."`` for arguments that are not JSON. On a method
    (a function of a class whose first parameter is ``self`` or ``cls``) that first
    argument is not part of the key: every instance shares the results (``include_self=True``
    keys by it too, as JSON). Exceptions are not cached: the next call computes again. A
    ``None`` result is cached. Results keep the types the store keeps (a tuple comes back as
    a list). Called inside a ``with store.transaction()`` block of the same thread, it joins
    the transaction. The wrapper has ``invalidate(*args, **kwargs)`` and
    ``cache_key(*args, **kwargs)``, typed with the function's parameters.

    >>> import cairn
    >>> store = cairn.Store(":memory:")
    >>> @store.memoize(ttl="1h")
    ... def rate(currency: str) -> float:
    ...     return 1.08  # the slow call
    >>> rate("EUR")
    1.08
    >>> rate.invalidate("EUR")
    True
    """
    from ._store import _check_name

    _check_name("namespace", namespace)
    if callable(ttl):
        return memoize(self, None, namespace, key, version, include_self)(ttl)
    return memoize(self, ttl, namespace, key, version, include_self)
