"""``@store.memoize``: a function's results, computed once across processes."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import sys
import types
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
    qualname = getattr(fn, "__qualname__", "").rsplit(".<locals>.", 1)[-1]
    return first is not None and first.name in ("self", "cls") and "." in qualname


def _code_identity(code: types.CodeType) -> str:
    """A digest of what a function does, for functions without a file (typed at a prompt, run
    with ``python -c``, made by ``exec``): two programs' ``fetch`` differ by their code."""
    h = hashlib.sha256()
    # A nested code object's repr holds its address: digest it the same way instead.
    consts = [_code_identity(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    for part in (code.co_code, repr(consts).encode(), repr(code.co_names).encode()):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:20]


def _function_identity(fn: Callable[..., Any]) -> str:
    """Where results of `fn` are keyed: its defining file (absolute) and qualified name, so
    that two programs' functions of one name never share results."""
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(qualname, str):
        raise TypeError(
            f"@memoize keys results by the function's defining file and qualified name, and a "
            f"{type(fn).__module__}.{type(fn).__qualname__} has none; pass name='...' (a name for this function's results, "
            "unique in the store) or decorate a plain function"
        )
    module = getattr(fn, "__module__", None) or "?"
    try:
        # A wrapper made with functools.wraps has its function's names but the decorator's
        # code and file: the function it wraps is where it comes from.
        inner = inspect.unwrap(fn)
    except ValueError:  # a cycle of __wrapped__
        inner = fn
    code = getattr(inner, "__code__", None)
    if not isinstance(code, types.CodeType):
        return f"{module}.{qualname}"  # a builtin: the name says it all
    file = code.co_filename
    if file.startswith("<") and file.endswith(">"):
        where = f"{file}#{_code_identity(code)}"
    else:
        where = _short_path(os.path.abspath(file))
    if qualname.endswith("<lambda>"):
        # Every lambda of a scope has the same qualified name: tell them apart by their code.
        return f"{where}:{module}.{qualname}#{_code_identity(code)}"
    return f"{where}:{module}.{qualname}"


#: The longest defining file kept whole in a key; a longer one is its end and a digest of it.
_MAX_PATH_IN_KEY = 64


def _short_path(path: str) -> str:
    """`path` as a key shows it: whole when short, else its last characters and a digest of
    all of it, so that a checkout deep in a file system does not make every key long (keys
    are bounded) while two files still never share one."""
    if len(path) <= _MAX_PATH_IN_KEY:
        return path
    digest = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"...{path[-40:]}#{digest}"


def _cell_identity(value: Any) -> Any:
    """What a closure's captured value contributes to its key: the value as JSON, or the name
    of a module, class or function, or a store's path; None if it has no such identity."""
    if isinstance(value, types.ModuleType):
        return {"module": value.__name__}
    if isinstance(value, type) or inspect.isroutine(value):
        qualname = getattr(value, "__qualname__", None)
        if isinstance(qualname, str):
            return {"code": f"{getattr(value, '__module__', '?')}.{qualname}"}
        return None
    from ._aio_store import AsyncStore
    from ._store import Store

    if isinstance(value, (Store, AsyncStore)):
        return {"store": value.path}
    try:
        json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return value


def _cells_key(fn: Callable[..., Any]) -> str:
    """The part of the key that tells apart closures made by one factory: a digest of their
    captured values as they are now ("" for a function that captures nothing). A captured
    value without an identity (see `_cell_identity`) raises TypeError."""
    cells = getattr(fn, "__closure__", None)
    if not cells:
        return ""
    names = fn.__code__.co_freevars  # type: ignore[attr-defined]
    captured = {}
    for name, cell in zip(names, cells):
        try:
            value = cell.cell_contents
        except ValueError:
            continue  # not bound yet: the function itself, while it is being decorated
        ident = _cell_identity(value)
        if ident is None:
            raise TypeError(
                f"@memoize keys a closure by the values it captures, so that closures made by one "
                f"factory never share results, and {fn.__qualname__} captures {name!r}, a "
                f"{type(value).__name__}, which has no JSON form; pass name='...' (a name for this "
                "closure's results, unique in the store) to key it by that instead"
            )
        captured[name] = ident
    text = json.dumps(captured, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "#" + hashlib.sha256(text.encode()).hexdigest()[:20]


def key_function(
    fn: Callable[..., Any],
    key: Optional[Callable[..., str]],
    version: Optional[str],
    include_self: bool,
    name: Optional[str],
) -> Callable[..., str]:
    """The cache key of a call of `fn`, as ``@memoize`` makes it (sync and async alike)."""
    # Captured values are read once, here: a list the function appends to, say, must not
    # change its key at each call.
    identity = name if name is not None else _function_identity(fn) + _cells_key(fn)
    prefix = identity + (f"@{version}" if version else "")
    sig = inspect.signature(fn)
    skip_first = not include_self and _is_method(fn, sig)

    def cache_key(*args: Any, **kwargs: Any) -> str:
        if key is not None:
            k = key(*args, **kwargs)
            if not isinstance(k, str):
                raise TypeError(f"the key function of @memoize returned {type(k).__name__}, not str")
            return f"{prefix}:{k}"
        return _arguments_key(prefix, sig, skip_first, args, kwargs)

    return cache_key


def memoize(
    store: Store,
    ttl: Optional[Duration],
    namespace: str,
    key: Optional[Callable[..., str]],
    version: Optional[str],
    include_self: bool = False,
    name: Optional[str] = None,
) -> Callable[[Callable[P, R]], Memoized[P, R]]:
    """See :meth:`Store.memoize`."""

    def decorate(fn: Callable[P, R]) -> Memoized[P, R]:
        if not callable(fn):
            raise TypeError(f"@memoize decorates a function, not {type(fn).__name__}")
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(
                "Store.memoize does not support coroutine functions (their result is a coroutine); "
                "decorate them with the memoize of a cairn.AsyncStore"
            )
        if inspect.isgeneratorfunction(fn):
            raise TypeError(
                "@memoize does not support generator functions (their result is a generator, which "
                "cannot be stored); return a list instead"
            )
        cache_key = key_function(fn, key, version, include_self, name)

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
    name: Optional[str] = None,
) -> Callable[[Callable[P, R]], Memoized[P, R]]: ...


def store_memoize(
    self: Store,
    ttl: Union[Optional[Duration], Callable[..., Any]] = None,
    *,
    namespace: str = "memoize",
    key: Optional[Callable[..., str]] = None,
    version: Optional[str] = None,
    include_self: bool = False,
    name: Optional[str] = None,
) -> Any:
    """Decorate a function so that its results are stored in the cache and computed once
    across processes (:meth:`Cache.get_or_set`) while fresh (`ttl`, a duration: see
    :func:`cairn.parse_duration`; None: forever).
    ``@store.memoize`` without parentheses stores them forever.

    The key is the function's identity (and `version`, to drop old results when the code
    changes) plus its arguments as JSON, defaults applied; pass ``key=lambda *args, **kwargs:
    "..."`` for arguments that are not JSON. The identity tells apart every function that
    could share the store, so that none ever gets another's results: the defining file's
    absolute path (of the function a ``functools.wraps`` wrapper wraps), the module and the
    qualified name (for a function without a file, typed at
    a prompt or run by ``python -c``, and for a lambda, a digest of its code too); for a closure,
    also the values it captures, as they are when it is decorated, so that two closures made
    by one factory with different captured values do not share results. A captured value must
    be JSON, a module, a class, a function or a :class:`Store`, else decorating raises
    ``TypeError`` (a captured session or client, say);
    ``name="..."`` replaces the identity with a name of your own (it must then be unique in
    the store), for such closures, for ``functools.partial`` objects and other callables
    without a qualified name, and to keep results when the file moves. Coroutine and
    generator functions are refused (their results cannot be stored). On a method
    (a function of a class whose first parameter is ``self`` or ``cls``) that first
    argument is not part of the key: every instance shares the results (``include_self=True``
    keys by it too, as JSON). Exceptions are not cached: the next call computes again. A
    ``None`` result is cached. Results keep the types the store keeps, on the first call as
    on later ones (a tuple comes back as a list, a bytearray as bytes, an ``IntEnum`` as an
    int: see :class:`Cache`). A memoized function that calls itself with the same arguments
    raises :class:`InvalidInputError` at once (it would wait for its own result). Called inside a ``with store.transaction()`` block of the same thread, it joins
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
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"name must be a non-empty str, not {name!r}")
    if callable(ttl):
        return memoize(self, None, namespace, key, version, include_self, name)(ttl)
    return memoize(self, ttl, namespace, key, version, include_self, name)
