"""The TTL cache."""

from __future__ import annotations

from collections.abc import ItemsView, MutableMapping, ValuesView
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, List, Mapping, Optional, Tuple, TypeVar, Union

from ._blocking import in_loop, warn_blocking
from ._types import Duration

if TYPE_CHECKING:
    from . import _cairn
    from ._store import _Source

T = TypeVar("T")

_MISSING: Any = object()


@dataclass(frozen=True)
class CacheLimits:
    """Size bounds of a namespace, stored in the file so every process enforces them."""

    #: At most this many entries (expired ones not yet swept included); None: unbounded.
    max_entries: Optional[int] = None
    #: At most this many bytes of keys and values; None: unbounded.
    max_bytes: Optional[int] = None
    #: What goes first: ``"lrs"`` (least recently stored) or ``"lru"`` (least recently used;
    #: every hit then becomes a small write).
    eviction: str = "lrs"


@dataclass(frozen=True)
class CacheStats:
    """A namespace's size and counters."""

    #: Entries stored, including expired ones not yet swept.
    entries: int
    #: Bytes of keys and values stored.
    bytes: int
    #: Reads that found a fresh entry, in every process.
    hits: int
    #: Reads that found nothing fresh.
    misses: int
    #: Entries removed to respect a size bound.
    evictions: int
    #: The namespace's bounds.
    limits: CacheLimits

    @property
    def hit_rate(self) -> Optional[float]:
        """Hits over reads, or None before the first read."""
        reads = self.hits + self.misses
        return self.hits / reads if reads else None


def _check_key(key: object, what: str = "key") -> None:
    """A TypeError naming the argument, for a key that is not a str."""
    if not isinstance(key, str):
        raise TypeError(f"{what} must be a str, not {type(key).__name__}")


def _check_bound(value: Optional[int], what: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int or None, not {type(value).__name__}")
    if value < 1:
        from .errors import InvalidInputError

        raise InvalidInputError(f"invalid input: {what} is {value}; a cache bound must be at least 1")


class _Items(ItemsView[str, Any]):
    """``cache.items()``: the fresh entries, read in one transaction when iterated."""

    _mapping: Cache

    def __iter__(self) -> Iterator[Tuple[str, Any]]:
        cache = self._mapping
        keys = cache.keys()
        for k, v in zip(keys, cache.get_many(keys, default=_MISSING)):
            if v is not _MISSING:  # expired between the two reads
                yield k, v


class _Values(ValuesView[Any]):
    """``cache.values()``: the fresh values, read in one transaction when iterated."""

    _mapping: Cache

    def __iter__(self) -> Iterator[Any]:
        for _, v in _Items(self._mapping):
            yield v


def _limits(raw: _cairn.RawCacheLimits) -> CacheLimits:
    return CacheLimits(max_entries=raw.max_entries, max_bytes=raw.max_bytes, eviction=raw.eviction)


class Cache(MutableMapping[str, Any]):
    """One namespace of the TTL cache, from :meth:`Store.cache` (each call is its own
    transaction) or :meth:`Transaction.cache` (calls join the transaction).

    Keys are non-empty ``str`` (at most 4096 bytes, no NUL). Values keep their type: ``str``,
    ``int``, ``float``, ``bool``, ``None``, ``bytes``, and dicts and lists of JSON values;
    nothing is ever pickled. What is made of those types comes back as them: a tuple (a
    namedtuple too) as a list, a ``bytearray`` as ``bytes``, a subclass of ``str`` or ``int``
    (a ``str`` ``Enum``, an ``IntEnum``) as a plain ``str`` or ``int``. Text with a lone
    surrogate (from bytes decoded with ``errors="surrogateescape"``) is not Unicode and is
    refused with :class:`InvalidInputError`, in keys, names and values alike. TTLs are seconds (int or float), a ``timedelta``, or text such
    as ``"5m"`` (see :func:`cairn.parse_duration`); ``None`` means no expiry. An entry is expired from the moment its TTL
    has passed: it then reads as a miss everywhere, and is removed by :meth:`sweep` (or a few
    at a time by later writes).

    >>> import cairn
    >>> store = cairn.Store(":memory:")
    >>> pages = store.cache("pages")
    >>> pages.set("home", "<html>", ttl="1h")
    >>> pages["home"]
    '<html>'
    >>> "away" in pages
    False
    >>> pages.incr("fetches")
    1

    It is a :class:`collections.abc.MutableMapping` of its fresh entries: ``len(cache)``
    counts them (expired entries not yet swept are not counted), ``items()`` and
    ``values()`` read them in one transaction, ``update`` and :meth:`set_many` write in one,
    ``setdefault`` is atomic across processes. :meth:`get_many` reads several keys at once.

    >>> pages.update({"a": 1, "b": 2})
    >>> len(pages), sorted(pages.items())[:2]
    (4, [('a', 1), ('b', 2)])
    """

    __slots__ = ("_src", "_holder", "_ns", "_tx")

    def __init__(self, src: _Source, ns: str, tx: int) -> None:
        self._src = src
        self._holder = src._holder
        self._ns = ns
        self._tx = tx

    @property
    def namespace(self) -> str:
        """The namespace's name."""
        return self._ns

    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key`, or `default` when it is absent or expired."""
        try:
            conn: _cairn.Connection = self._holder.conn
        except AttributeError:
            conn = self._src._conn()
        try:
            return conn.cache_get(self._ns, key, self._tx, default)
        except TypeError:
            _check_key(key)
            raise

    def __getitem__(self, key: str) -> Any:
        """The value of `key`; ``KeyError`` when it is absent or expired."""
        try:
            conn: _cairn.Connection = self._holder.conn
        except AttributeError:
            conn = self._src._conn()
        try:
            v = conn.cache_get(self._ns, key, self._tx, _MISSING)
        except TypeError:
            _check_key(key)
            raise
        if v is _MISSING:
            raise KeyError(key)
        return v

    def __setitem__(self, key: str, value: Any) -> None:
        """Store `value` under `key` without expiry (use :meth:`set` for a TTL)."""
        _check_key(key)
        self._src._conn().cache_set(self._ns, key, value, None, self._tx)

    def __delitem__(self, key: str) -> None:
        """Remove `key`; ``KeyError`` if it had no fresh entry."""
        _check_key(key)
        if not self._src._conn().cache_delete(self._ns, key, self._tx):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        """True if `key` has a fresh entry (counts neither a hit nor a miss)."""
        if not isinstance(key, str):
            return False
        return self._src._conn().cache_contains(self._ns, key, self._tx)

    def __iter__(self) -> Iterator[str]:
        """The fresh keys, sorted (read at once, as :meth:`keys`)."""
        return iter(self.keys())

    def __len__(self) -> int:
        """How many fresh entries the namespace holds (expired ones not yet swept are not
        counted, unlike :attr:`CacheStats.entries`)."""
        return self._src._conn().cache_len(self._ns, self._tx)

    def items(self) -> ItemsView[str, Any]:
        """The fresh ``(key, value)`` pairs, sorted by key; iterating reads them in one
        transaction."""
        return _Items(self)

    def values(self) -> ValuesView[Any]:
        """The fresh values, in key order; iterating reads them in one transaction."""
        return _Values(self)

    def get_many(self, keys: Iterable[str], default: Any = None) -> List[Any]:
        """The values of `keys`, in order (`default` for one absent or expired), read in one
        transaction: no other process's write lands between two of them."""
        if isinstance(keys, str):
            raise TypeError("keys must be an iterable of str (a list, say), not one str")
        ks = list(keys)
        for k in ks:
            _check_key(k)
        return self._src._conn().cache_get_many(self._ns, ks, self._tx, default)

    def set_many(
        self, items: Union[Mapping[str, Any], Iterable[Tuple[str, Any]]], ttl: Optional[Duration] = None
    ) -> None:
        """Store each ``key: value`` of a mapping (or each ``(key, value)`` pair), all with
        `ttl`, in one transaction: all of them, or on an error none."""
        pairs: List[Tuple[str, Any]] = []
        for p in items.items() if isinstance(items, Mapping) else items:
            if isinstance(p, (str, bytes)) or len(p) != 2:
                raise TypeError(f"set_many takes a mapping or (key, value) pairs, not {type(p).__name__} items")
            _check_key(p[0])
            pairs.append((p[0], p[1]))
        self._src._conn().cache_set_many(self._ns, pairs, ttl, self._tx)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store the entries of a mapping or of ``(key, value)`` pairs, and of `kwargs`,
        without expiry, in one transaction (:meth:`set_many` for a TTL)."""
        pairs: List[Tuple[str, Any]] = []
        if isinstance(other, Mapping):
            pairs.extend(other.items())
        elif hasattr(other, "keys"):
            pairs.extend((k, other[k]) for k in other.keys())
        else:
            pairs.extend(other)
        pairs.extend(kwargs.items())
        self.set_many(pairs)

    def setdefault(self, key: str, default: Any = None) -> Any:
        """The value of `key`; if it has no fresh entry, store `default` (without expiry)
        and return it. Atomic across processes: of several callers, one stores."""
        _check_key(key)
        while True:
            if self.add(key, default):
                return default
            v = self.get(key, _MISSING)
            if v is not _MISSING:
                return v
            # expired between the two calls: try again

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove `key` and return its value; `default` if it has no fresh entry (else
        ``KeyError``)."""
        v = self.get(key, _MISSING)
        if v is _MISSING or not self.delete(key):
            if default is _MISSING:
                raise KeyError(key)
            return default
        return v

    def set(self, key: str, value: Any, ttl: Optional[Duration] = None) -> None:
        """Store `value` under `key`, replacing any entry; it expires `ttl` from now (never
        with None)."""
        _check_key(key)
        try:
            conn: _cairn.Connection = self._holder.conn
        except AttributeError:
            conn = self._src._conn()
        conn.cache_set(self._ns, key, value, ttl, self._tx)

    def add(self, key: str, value: Any, ttl: Optional[Duration] = None) -> bool:
        """Store `value` only if `key` has no fresh entry. True if it was stored."""
        _check_key(key)
        return self._src._conn().cache_add(self._ns, key, value, ttl, self._tx)

    def delete(self, key: str) -> bool:
        """Remove `key`. True if a fresh entry was removed."""
        _check_key(key)
        return self._src._conn().cache_delete(self._ns, key, self._tx)

    def touch(self, key: str, ttl: Optional[Duration] = None) -> bool:
        """Give a fresh entry a new expiry, `ttl` from now (never with None). False if there
        was no fresh entry."""
        _check_key(key)
        return self._src._conn().cache_touch(self._ns, key, ttl, self._tx)

    def incr(self, key: str, by: int = 1, ttl: Optional[Duration] = None) -> int:
        """Add `by` to the integer at `key` and return the result, atomically across
        processes. A missing or expired entry counts as 0 and is created with `ttl`; an
        existing one keeps its expiry. ``DecodeError`` if the value is not an integer."""
        _check_key(key)
        if isinstance(by, bool) or not isinstance(by, int):
            raise TypeError(f"by must be an int, not {type(by).__name__}")
        return self._src._conn().cache_incr(self._ns, key, by, ttl, self._tx)

    def decr(self, key: str, by: int = 1, ttl: Optional[Duration] = None) -> int:
        """:meth:`incr` by ``-by``."""
        if isinstance(by, bool) or not isinstance(by, int):
            raise TypeError(f"by must be an int, not {type(by).__name__}")
        return self.incr(key, -by, ttl)

    def keys(self, prefix: str = "") -> list[str]:  # type: ignore[override]
        """The fresh keys that start with `prefix` (all with ``""``), sorted (a list, read at
        once)."""
        _check_key(prefix, "prefix")
        return self._src._conn().cache_keys(self._ns, prefix, self._tx)

    def sweep(self) -> int:
        """Remove this namespace's expired entries. Returns how many."""
        return self._src._conn().cache_sweep(self._ns, self._tx)

    def clear(self, prefix: Optional[str] = None) -> int:  # type: ignore[override]
        """Remove every entry of the namespace, or with `prefix` those whose key starts with
        it (expired ones included). Returns how many. Bounds and statistics stay.

        >>> import cairn
        >>> c = cairn.Store(":memory:").cache("c")
        >>> c["user:1"] = c["user:2"] = c["page:1"] = 1
        >>> c.clear(prefix="user:")
        2
        >>> c.keys()
        ['page:1']
        """
        return self._src._conn().cache_clear(self._ns, prefix, self._tx)

    def stats(self) -> CacheStats:
        """Size and counters of the namespace (hits and misses of every process)."""
        s = self._src._conn().cache_stats(self._ns, self._tx)
        return CacheStats(
            entries=s.entries,
            bytes=s.bytes,
            hits=s.hits,
            misses=s.misses,
            evictions=s.evictions,
            limits=_limits(s.limits),
        )

    def limits(self) -> CacheLimits:
        """The namespace's size bounds."""
        return _limits(self._src._conn().cache_limits(self._ns, self._tx))

    def set_limits(
        self, max_entries: Optional[int] = None, max_bytes: Optional[int] = None, eviction: str = "lrs"
    ) -> None:
        """Bound the namespace's size (None: unbounded), evicting at once if it is over.
        `eviction` is ``"lrs"`` (least recently stored) or ``"lru"`` (least recently used)."""
        _check_bound(max_entries, "max_entries")
        _check_bound(max_bytes, "max_bytes")
        self._src._conn().cache_set_limits(self._ns, max_entries, max_bytes, eviction, self._tx)

    def get_or_set(self, key: str, compute: Callable[[], T], ttl: Optional[Duration] = None) -> T:
        """The value of `key`; on a miss, call `compute()`, store its result with `ttl` and
        return it.

        Across processes (and threads), a missing key is computed once: the first to miss
        computes, the others wait for its value. If `compute` raises, nothing is stored, the
        exception comes out unchanged, and the next waiter computes. A computing process that
        dies is taken over at once on the same host, else after the store's fill timeout.
        The value returned is the one stored (a tuple comes back as a list, as it would from
        any other process). A `compute` that asks for the same key again (on this thread:
        recursion) raises :class:`InvalidInputError` at once; it would wait for itself. While it waits for another process's computation the GIL is
        released, but Ctrl-C is only seen once the wait ends (at most the store's fill
        timeout)."""
        _check_key(key)
        if not callable(compute):
            raise TypeError(f"compute must be callable, not {type(compute).__name__}")
        if in_loop() and not self.__contains__(key):
            # A miss (`in` counts neither a hit nor a miss: the call below counts it once).
            warn_blocking(self._src, "compute", f"get_or_set of {key!r} in cache {self._ns!r} missed: it computes or waits", 2)
        result: T = self._src._conn().cache_get_or_set(self._ns, key, compute, ttl, self._tx)
        return result

    def __repr__(self) -> str:
        return f"<cairn.Cache {self._ns!r}>"
