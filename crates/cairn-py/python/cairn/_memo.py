"""``@store.memoize``: a function's results, computed once across processes."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, cast

from ._types import Duration

if TYPE_CHECKING:
    from ._store import Store

F = TypeVar("F", bound=Callable[..., Any])

# Keys longer than this are hashed (cache keys are at most 4096 bytes).
_MAX_PLAIN_KEY = 512


def _arguments_key(prefix: str, sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        raise  # the call itself is wrong: the function would raise the same
    bound.apply_defaults()
    try:
        text = json.dumps(bound.arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"@memoize keys {prefix} by its arguments as JSON, and these are not JSON ({e}); "
            "pass key=lambda *args, **kwargs: '...' to build the key yourself"
        ) from None
    key = f"{prefix}:{text}"
    if len(key.encode()) > _MAX_PLAIN_KEY:
        key = f"{prefix}:sha256:{hashlib.sha256(text.encode()).hexdigest()}"
    return key


def memoize(
    store: Store,
    ttl: Optional[Duration],
    namespace: str,
    key: Optional[Callable[..., str]],
    version: Optional[str],
) -> Callable[[F], F]:
    """See :meth:`Store.memoize`."""

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):
            raise TypeError("@memoize does not support coroutine functions (their result is a coroutine)")
        prefix = f"{fn.__module__}.{fn.__qualname__}" + (f"@{version}" if version else "")
        sig = inspect.signature(fn)

        def cache_key(*args: Any, **kwargs: Any) -> str:
            if key is not None:
                k = key(*args, **kwargs)
                if not isinstance(k, str):
                    raise TypeError(f"the key function of @memoize returned {type(k).__name__}, not str")
                return f"{prefix}:{k}"
            return _arguments_key(prefix, sig, args, kwargs)

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
        return cast(F, wrapper)

    return decorate
