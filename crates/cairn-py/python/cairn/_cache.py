"""The TTL cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, TypeVar

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


def _limits(raw: _cairn.RawCacheLimits) -> CacheLimits:
    return CacheLimits(max_entries=raw.max_entries, max_bytes=raw.max_bytes, eviction=raw.eviction)


class Cache:
    """One namespace of the TTL cache, from :meth:`Store.cache` (each call is its own
    transaction) or :meth:`Transaction.cache` (calls join the transaction).

    Keys are non-empty ``str`` (at most 4096 bytes, no NUL). Values keep their type: ``str``,
    ``int``, ``float``, ``bool``, ``None``, ``bytes``, and dicts and lists of JSON values;
    nothing is ever pickled. TTLs are seconds (int or float), a ``timedelta``, or text such
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
        return conn.cache_get(self._ns, key, self._tx, default)

    def __getitem__(self, key: str) -> Any:
        """The value of `key`; ``KeyError`` when it is absent or expired."""
        try:
            conn: _cairn.Connection = self._holder.conn
        except AttributeError:
            conn = self._src._conn()
        v = conn.cache_get(self._ns, key, self._tx, _MISSING)
        if v is _MISSING:
            raise KeyError(key)
        return v

    def __setitem__(self, key: str, value: Any) -> None:
        """Store `value` under `key` without expiry (use :meth:`set` for a TTL)."""
        self._src._conn().cache_set(self._ns, key, value, None, self._tx)

    def __delitem__(self, key: str) -> None:
        """Remove `key`; ``KeyError`` if it had no fresh entry."""
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

    def set(self, key: str, value: Any, ttl: Optional[Duration] = None) -> None:
        """Store `value` under `key`, replacing any entry; it expires `ttl` from now (never
        with None)."""
        try:
            conn: _cairn.Connection = self._holder.conn
        except AttributeError:
            conn = self._src._conn()
        conn.cache_set(self._ns, key, value, ttl, self._tx)

    def add(self, key: str, value: Any, ttl: Optional[Duration] = None) -> bool:
        """Store `value` only if `key` has no fresh entry. True if it was stored."""
        return self._src._conn().cache_add(self._ns, key, value, ttl, self._tx)

    def delete(self, key: str) -> bool:
        """Remove `key`. True if a fresh entry was removed."""
        return self._src._conn().cache_delete(self._ns, key, self._tx)

    def touch(self, key: str, ttl: Optional[Duration] = None) -> bool:
        """Give a fresh entry a new expiry, `ttl` from now (never with None). False if there
        was no fresh entry."""
        return self._src._conn().cache_touch(self._ns, key, ttl, self._tx)

    def incr(self, key: str, by: int = 1, ttl: Optional[Duration] = None) -> int:
        """Add `by` to the integer at `key` and return the result, atomically across
        processes. A missing or expired entry counts as 0 and is created with `ttl`; an
        existing one keeps its expiry. ``DecodeError`` if the value is not an integer."""
        if isinstance(by, bool) or not isinstance(by, int):
            raise TypeError(f"by must be an int, not {type(by).__name__}")
        return self._src._conn().cache_incr(self._ns, key, by, ttl, self._tx)

    def decr(self, key: str, by: int = 1, ttl: Optional[Duration] = None) -> int:
        """:meth:`incr` by ``-by``."""
        if isinstance(by, bool) or not isinstance(by, int):
            raise TypeError(f"by must be an int, not {type(by).__name__}")
        return self.incr(key, -by, ttl)

    def keys(self, prefix: str = "") -> list[str]:
        """The fresh keys that start with `prefix` (all with ``""``), sorted."""
        return self._src._conn().cache_keys(self._ns, prefix, self._tx)

    def sweep(self) -> int:
        """Remove this namespace's expired entries. Returns how many."""
        return self._src._conn().cache_sweep(self._ns, self._tx)

    def clear(self, prefix: Optional[str] = None) -> int:
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
        self._src._conn().cache_set_limits(self._ns, max_entries, max_bytes, eviction, self._tx)

    def get_or_set(self, key: str, compute: Callable[[], T], ttl: Optional[Duration] = None) -> T:
        """The value of `key`; on a miss, call `compute()`, store its result with `ttl` and
        return it.

        Across processes (and threads), a missing key is computed once: the first to miss
        computes, the others wait for its value. If `compute` raises, nothing is stored, the
        exception comes out unchanged, and the next waiter computes. A computing process that
        dies is taken over at once on the same host, else after the store's fill timeout.
        The value returned is the one stored (a tuple comes back as a list, as it would from
        any other process). While it waits for another process's computation the GIL is
        released, but Ctrl-C is only seen once the wait ends (at most the store's fill
        timeout)."""
        if not callable(compute):
            raise TypeError(f"compute must be callable, not {type(compute).__name__}")
        result: T = self._src._conn().cache_get_or_set(self._ns, key, compute, ttl, self._tx)
        return result

    def __repr__(self) -> str:
        return f"<cairn.Cache {self._ns!r}>"
