"""``@astore.memoize``: an async function's results, computed once across processes."""

from __future__ import annotations

import functools
import inspect
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar, Union, overload

from ._memo import key_function
from ._types import Duration

if TYPE_CHECKING:
    from ._aio_store import AsyncStore

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

if TYPE_CHECKING or sys.version_info >= (3, 10):
    from typing import ParamSpec, Protocol

    P = ParamSpec("P")

    class AsyncMemoized(Protocol[P, R_co]):
        """What ``@astore.memoize`` returns: a coroutine function with the decorated
        function's parameters whose result is the stored one, plus ``invalidate`` (a
        coroutine) and ``cache_key`` taking the same arguments."""

        @property
        def __wrapped__(self) -> Callable[P, Any]:
            """The decorated function."""
            ...

        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R_co]:
            """The stored result for these arguments, computed (once across processes) on a
            miss."""
            ...

        def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[bool]:
            """Forget the result stored for these arguments. True if there was one."""
            ...

        def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
            """The cache key of these arguments."""
            ...


def async_memoize(
    astore: AsyncStore,
    ttl: Optional[Duration],
    namespace: str,
    key: Optional[Callable[..., str]],
    version: Optional[str],
    include_self: bool,
    name: Optional[str],
) -> Callable[[Callable[P, Any]], AsyncMemoized[P, Any]]:
    """See :meth:`AsyncStore.memoize`."""

    def decorate(fn: Callable[P, Any]) -> AsyncMemoized[P, Any]:
        if not callable(fn):
            raise TypeError(f"@memoize decorates a function, not {type(fn).__name__}")
        if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            raise TypeError(
                "@memoize does not support generator functions (their result is a generator, which "
                "cannot be stored); return a list instead"
            )
        cache_key = key_function(fn, key, version, include_self, name)

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = cache_key(*args, **kwargs)
            return await astore._joined_cache(namespace).get_or_set(k, lambda: fn(*args, **kwargs), ttl)

        async def invalidate(*args: Any, **kwargs: Any) -> bool:
            """Forget the result stored for these arguments. True if there was one."""
            return await astore._joined_cache(namespace).delete(cache_key(*args, **kwargs))

        w: Any = wrapper
        w.cache_key = cache_key
        w.invalidate = invalidate
        return w  # type: ignore[no-any-return]

    return decorate


@overload
def astore_memoize(self: AsyncStore, fn: Callable[P, Awaitable[R]], /) -> AsyncMemoized[P, R]: ...


@overload
def astore_memoize(
    self: AsyncStore,
    ttl: Optional[Duration] = None,
    *,
    namespace: str = "memoize",
    key: Optional[Callable[..., str]] = None,
    version: Optional[str] = None,
    include_self: bool = False,
    name: Optional[str] = None,
) -> Callable[[Callable[P, Awaitable[R]]], AsyncMemoized[P, R]]: ...


def astore_memoize(
    self: AsyncStore,
    ttl: Union[Optional[Duration], Callable[..., Any]] = None,
    *,
    namespace: str = "memoize",
    key: Optional[Callable[..., str]] = None,
    version: Optional[str] = None,
    include_self: bool = False,
    name: Optional[str] = None,
) -> Any:
    """Decorate a coroutine function so that its results are stored in the cache and computed
    once across processes (:meth:`AsyncCache.get_or_set`) while fresh (`ttl`; None: forever).
    The keys are :meth:`Store.memoize`'s, so a sync program's ``@store.memoize`` of the same
    function (same file, name and arguments) shares the results. The wrapper is a coroutine
    function (a plain function decorated here becomes one too, its result awaited), with
    ``invalidate`` (a coroutine) and ``cache_key``. Called inside ``async with
    store.transaction()``, it joins the transaction.

    >>> import asyncio, cairn
    >>> async def main() -> float:
    ...     async with cairn.AsyncStore(":memory:") as store:
    ...         @store.memoize(ttl="1h")
    ...         async def rate(currency: str) -> float:
    ...             return 1.08  # the slow call
    ...         return await rate("EUR")
    >>> asyncio.run(main())
    1.08
    """
    from ._store import _check_name

    _check_name("namespace", namespace)
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"name must be a non-empty str, not {name!r}")
    if callable(ttl):
        return async_memoize(self, None, namespace, key, version, include_self, name)(ttl)
    return async_memoize(self, ttl, namespace, key, version, include_self, name)
