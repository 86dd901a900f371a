"""The ledger of processed items: what is done, what failed, and who works on what."""

from __future__ import annotations

import datetime
import enum
import os
import socket
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, List, Optional, Sequence, Type, TypeVar, Union

from . import _cairn
from ._blocking import in_loop, warn_blocking
from ._types import Duration, Id
from .errors import InvalidInputError, LeaseLostError, NothingDueError

if TYPE_CHECKING:
    from ._store import _Source

I = TypeVar("I", bound=Id)  # noqa: E741 - the ids' own type comes back from filter_new


class ItemState(str, enum.Enum):
    """Where an item stands."""

    #: Queued, or waiting for a retry after a failure.
    PENDING = "pending"
    #: Held by a worker whose lease has not run out.
    CLAIMED = "claimed"
    #: Done.
    DONE = "done"
    #: Given up after too many failures.
    FAILED = "failed"
    #: Cancelled (:meth:`Ledger.cancel`): never handed out again, unless retried.
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        """The state's name as the CLI prints it: ``done``, not ``ItemState.DONE``."""
        return self.value

    def __format__(self, spec: str) -> str:
        """``f"{item.state}"`` formats the name, as :meth:`__str__`."""
        return format(self.value, spec)


@dataclass(frozen=True)
class LedgerCounts:
    """How many items stand where."""

    pending: int
    claimed: int
    done: int
    failed: int
    cancelled: int = 0
    #: Whether the namespace is paused (:meth:`Ledger.pause`).
    paused: bool = False
    #: Until when (UTC) while paused; None until resumed (or when not paused).
    paused_until: Optional[datetime.datetime] = None


@dataclass(frozen=True)
class LedgerPolicy:
    """A ledger namespace's policy, as kept in the store for every process and the CLI
    (``cairn ledger policy``): ``None`` where the default applies (3 attempts; a 1 s backoff
    base)."""

    #: Attempts after which an item is given up: failures, and claims lost because their
    #: worker died or hung.
    max_attempts: Optional[int]
    #: The base of a failed item's backoff, in seconds.
    retry_delay: Optional[float]


@dataclass(frozen=True)
class Item:
    """One item as recorded."""

    id: str
    state: ItemState
    #: Failures recorded.
    attempts: int
    #: The last failure's message.
    error: Optional[str]
    #: The worker holding or last holding a claim.
    worker: Optional[str]
    #: The result stored when it was done, with its type.
    result: Any
    #: When it last changed (UTC).
    updated_at: datetime.datetime
    #: What it carries for its worker (:attr:`QueueItem.data`), with its type; None if nothing.
    data: Any = None
    #: For a pending item, when it may be handed out (UTC): later than now for an item queued
    #: with a delay or one waiting out its retry backoff. None if it has no due time.
    due: Optional[datetime.datetime] = None


@dataclass(frozen=True)
class QueueItem:
    """An item for :meth:`Ledger.enqueue_items`: its id, and optionally data for its worker
    (read back as :attr:`Claim.data`, with its type, as cache values are) and when it may be
    handed out: after a `delay` from when it is queued (a duration: seconds, a ``timedelta`` or
    text like ``"5m"``, see :func:`cairn.parse_duration`), or not before `not_before` (an aware ``datetime``, or an RFC 3339 string
    such as ``"2026-12-01T09:00:00Z"``). Give at most one of the two.

    A higher `priority` (-1000 to 1000, default 0) is handed out first, once due. Items of one
    `group` are handed out one at a time, in queue order (one customer's jobs in sequence while
    other customers' run beside them): the next once the one before is done, given up or
    deleted.

    >>> import cairn
    >>> cairn.QueueItem("report-42", data={"format": "pdf"}, delay="10m", group="acme")
    QueueItem(id='report-42', data={'format': 'pdf'}, delay='10m', not_before=None, priority=0, group='acme')
    """

    #: The item's id (an int is taken as its decimal text).
    id: Id
    #: Data for the worker: str, int, float, bool, bytes, or dicts and lists of JSON values;
    #: None for no data.
    data: Any = None
    #: Not handed out before this long after it is queued.
    delay: Optional[Duration] = None
    #: Not handed out before this time.
    not_before: Optional[Union[datetime.datetime, str]] = None
    #: Higher first (-1000 to 1000); equal priorities by due time, then in queue order.
    priority: int = 0
    #: At most one item of a group is handed out at a time, in queue order.
    group: Optional[str] = None


def _utc(millis: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.timezone.utc)


def _item(raw: _cairn.RawItem) -> Item:
    due = raw.due_millis
    return Item(
        id=raw.id,
        state=ItemState(raw.state),
        attempts=raw.attempts,
        error=raw.error,
        worker=raw.worker,
        result=raw.result,
        updated_at=_utc(raw.updated_at_millis),
        data=raw.data,
        due=None if due is None else _utc(due),
    )


def _raw_item(item: QueueItem) -> tuple[Any, Any, Any, Any, Any, Any]:
    """`item` as the extension takes it: `not_before` in Unix milliseconds (or its text)."""
    if not isinstance(item, QueueItem):
        raise TypeError(f"enqueue_items takes cairn.QueueItem objects, not {type(item).__name__}")
    at: Any = item.not_before
    if isinstance(at, datetime.datetime):
        if at.tzinfo is None:
            raise InvalidInputError(
                f"invalid input: the queue item {item.id!r} has a naive not_before datetime; give it a tzinfo "
                "(datetime.timezone.utc, say)"
            )
        at = round(at.timestamp() * 1000)
    elif at is not None and not isinstance(at, str):
        raise TypeError(
            f"not_before must be an aware datetime or an RFC 3339 string, not {type(at).__name__}"
        )
    return (item.id, item.data, item.delay, at, item.priority, item.group)


def _error_text(error: str | BaseException) -> str:
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    if not isinstance(error, str):
        raise TypeError(f"error must be a str or an exception, not {type(error).__name__}")
    return error


#: The lease a claim gets unless told otherwise, in seconds: the same as the CLI's
#: ``ledger claim``/``ledger next`` default. Short, so that an item held by a worker that died
#: on another host comes back within a minute (on the same host it comes back at once); a
#: slow item keeps its claim with :meth:`Claim.extend`.
DEFAULT_LEASE: float = _cairn.DEFAULT_LEASE


def _limit(n: int, what: str, most: int = 2**63 - 1) -> int:
    """`n` checked as a count: a TypeError for a non-int, InvalidInputError below 0; above
    `most` (more than the extension's integer holds) it is `most`, as good as unlimited."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} must be an int, not {type(n).__name__}")
    if n < 0:
        raise InvalidInputError(f"invalid input: {what} is {n}; it must be 0 or more")
    return min(n, most)


def _wait_seconds(wait: Optional[Duration]) -> Optional[float]:
    """`wait` in seconds; None (wait without limit) stays None."""
    if wait is None:
        return None
    if isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait == 0:
        return 0.0
    return _cairn.duration_seconds(wait, "a wait")


def default_worker() -> str:
    """This thread's worker name: ``host:pid:thread``."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


class Ledger:
    """One namespace of the ledger, from :meth:`Store.ledger` (each call is its own
    transaction) or :meth:`Transaction.ledger` (calls join the transaction).

    Ids are ``str`` (an ``int`` is taken as its decimal text). A job that marks each id done
    when its work is finished becomes idempotent: a re-run skips what is done.

    >>> import cairn
    >>> store = cairn.Store(":memory:")
    >>> invoices = store.ledger("invoices")
    >>> for id in invoices.filter_new(["a", "b", "c"]):
    ...     invoices.mark_done(id)
    True
    True
    True
    >>> invoices.filter_new(["a", "b", "c", "d"])
    ['d']

    Several workers share one list through claims: ``claim_next`` hands each item to one
    worker for a lease; a worker that dies has its items taken over (at once on the same
    host, else when the lease runs out), and a worker that lost its claim cannot record the
    item done (:class:`LeaseLostError`).

    It is also a work queue: :meth:`enqueue_items` queues items with data for their workers
    (:attr:`Claim.data`) and a time before which they are not handed out. A failed item is
    handed out again after a backoff: about `retry_delay` after its first failure, twice that
    after the second, and so on (at most an hour), each scaled by 50 to 100% so that items
    failing together do not come back together; after `max_attempts` failures it is given up,
    until :meth:`retry` puts it back.

    >>> queue = store.ledger("emails", retry_delay="30s")
    >>> queue.enqueue_items([cairn.QueueItem("msg-1", data={"to": "a@example.com"})])
    1
    >>> claim = queue.claim_next(lease=60)
    >>> (claim.data, claim.attempt)
    ({'to': 'a@example.com'}, 1)
    """

    __slots__ = ("_src", "_holder", "_ns", "_tx", "_max_attempts", "_retry_delay")

    def __init__(
        self,
        src: _Source,
        ns: str,
        tx: int,
        max_attempts: Optional[int] = None,
        retry_delay: Optional[Duration] = None,
    ) -> None:
        if max_attempts is not None:
            if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
                raise TypeError(f"max_attempts must be an int, not {type(max_attempts).__name__}")
            max_attempts = _limit(max_attempts, "max_attempts", 2**32 - 1)
        self._src = src
        self._holder = src._holder
        self._ns = ns
        self._tx = tx
        # Checked now, not at the first failure. Given, they are the namespace's policy, kept in
        # the store (see Store.ledger); the handle passes no override, so that every handle, a
        # transaction's included, and the CLI apply the stored policy alike.
        delay = None if retry_delay is None else _cairn.duration_seconds(retry_delay, "a retry delay")
        self._max_attempts: Optional[int] = None
        self._retry_delay: Optional[float] = None
        if max_attempts is not None or delay is not None:
            stored = self.policy()
            wanted = LedgerPolicy(
                max_attempts=stored.max_attempts if max_attempts is None else max_attempts,
                retry_delay=stored.retry_delay if delay is None else delay,
            )
            if wanted != stored:
                self.set_policy(max_attempts=wanted.max_attempts, retry_delay=wanted.retry_delay)

    @property
    def namespace(self) -> str:
        """The namespace's name."""
        return self._ns

    @property
    def max_attempts(self) -> int:
        """How many attempts give an item up: the namespace's policy (default 3)."""
        stored = self.policy().max_attempts
        return _cairn.DEFAULT_MAX_ATTEMPTS if stored is None else stored

    @property
    def retry_delay(self) -> float:
        """The base of a failed item's backoff, in seconds (0: handed out again at once): the
        namespace's policy (default 1 s)."""
        stored = self.policy().retry_delay
        return _cairn.DEFAULT_RETRY_DELAY if stored is None else stored

    def policy(self) -> LedgerPolicy:
        """The namespace's policy as kept in the store (``None`` where the default applies)."""
        p = self._src._conn().ledger_policy(self._ns, self._tx)
        return LedgerPolicy(max_attempts=p.max_attempts, retry_delay=p.retry_delay)

    def set_policy(self, max_attempts: Optional[int] = None, retry_delay: Optional[Duration] = None) -> None:
        """Keep the namespace's policy in the store, for every handle, process and the CLI
        (``None``: the default): items are given up after `max_attempts` attempts (failures,
        and claims lost because their worker died or hung), and a failed item is handed out
        again after a backoff based on `retry_delay` (a duration: see
        :func:`cairn.parse_duration`).

        >>> import cairn
        >>> queue = cairn.Store(":memory:").ledger("emails")
        >>> queue.set_policy(max_attempts=10, retry_delay="30s")
        >>> queue.policy()
        LedgerPolicy(max_attempts=10, retry_delay=30.0)
        """
        if max_attempts is not None:
            if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
                raise TypeError(f"max_attempts must be an int, not {type(max_attempts).__name__}")
            max_attempts = _limit(max_attempts, "max_attempts", 2**32 - 1)
        self._src._conn().ledger_set_policy(self._ns, max_attempts, retry_delay, self._tx)

    def __len__(self) -> int:
        """How many items the ledger knows, in every state (see :meth:`counts`)."""
        c = self.counts()
        return c.pending + c.claimed + c.done + c.failed + c.cancelled

    def __iter__(self) -> Iterator[str]:
        """The ids the ledger knows, in id order, read a page at a time (an id added or
        removed meanwhile may or may not be seen)."""
        after: Optional[str] = None
        while True:
            page = self.list(after=after, limit=500)
            for item in page:
                yield item.id
            if len(page) < 500:
                return
            after = page[-1].id

    def filter_new(self, ids: Iterable[I]) -> List[I]:
        """The ids that still need work (neither done nor given up), in input order, as the
        very objects given, read from one snapshot of the ledger."""
        return self._src._conn().ledger_filter_new(self._ns, ids, self._tx)

    def each(self, ids: Iterable[I]) -> Iterator[I]:
        """Yield the ids that still need work, marking each done when the loop body for it
        finishes: an exception or a ``break`` leaves it undone.

        >>> for id in ledger.each(ids):  # doctest: +SKIP
        ...     process(id)
        """
        for id in self.filter_new(ids):
            yield id
            self.mark_done(id)

    def mark_done(self, id: Id, result: Any = None) -> bool:
        """Record `id` as done, with an optional small `result`. True if this call did it;
        False if it already was done (the first result is kept)."""
        try:
            conn: _cairn.Connection = self._holder.conn
        except AttributeError:
            conn = self._src._conn()
        return conn.ledger_mark_done(self._ns, id, result, self._tx)

    def mark_done_many(self, ids: Iterable[Id]) -> int:
        """Record many ids as done in one transaction; returns how many were newly done."""
        return self._src._conn().ledger_mark_done_many(self._ns, ids, self._tx)

    def is_done(self, id: Id) -> bool:
        """True if `id` is done."""
        try:
            conn: _cairn.Connection = self._holder.conn
        except AttributeError:
            conn = self._src._conn()
        return conn.ledger_is_done(self._ns, id, self._tx)

    def __contains__(self, id: object) -> bool:
        """``id in ledger``: True if `id` is done."""
        if isinstance(id, bool) or not isinstance(id, (str, int)):
            return False
        return self._src._conn().ledger_is_done(self._ns, id, self._tx)

    def result(self, id: Id, default: Any = None) -> Any:
        """The result recorded with a done item, or `default`."""
        return self._src._conn().ledger_result(self._ns, id, self._tx, default)

    def item(self, id: Id) -> Optional[Item]:
        """Everything recorded about `id`, or None if it was never seen."""
        raw = self._src._conn().ledger_item(self._ns, id, self._tx)
        return None if raw is None else _item(raw)

    def fail(self, id: Id, error: str | BaseException) -> ItemState:
        """Record a failure of `id` (a message, or the exception itself). Below
        ``max_attempts`` failures the item is pending again, handed out once its backoff
        (see :attr:`retry_delay`) has passed; at ``max_attempts`` it is given up. A done item
        stays done. Returns its new state."""
        state = self._src._conn().ledger_fail(
            self._ns, id, _error_text(error), self._max_attempts, self._retry_delay, self._tx
        )
        return ItemState(state)

    def enqueue(
        self,
        ids: Iterable[Id],
        *,
        delay: Optional[Duration] = None,
        not_before: Optional[Union[datetime.datetime, str]] = None,
        priority: int = 0,
        group: Optional[str] = None,
    ) -> int:
        """Queue ids for :meth:`claim_next`, in order; ids the ledger knows already are
        skipped. Returns how many were queued. `delay` or `not_before` hold them back, and
        `priority` and `group` order them, as :class:`QueueItem`'s do."""
        if delay is None and not_before is None and priority == 0 and group is None:
            return self._src._conn().ledger_enqueue(self._ns, ids, self._tx)
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be an iterable of ids (a list, say), not one str")
        return self.enqueue_items(
            QueueItem(id, delay=delay, not_before=not_before, priority=priority, group=group) for id in ids
        )

    def enqueue_items(self, items: Iterable[QueueItem]) -> int:
        """Queue :class:`QueueItem` objects, in order, in one transaction; ids the ledger knows
        already are skipped. Returns how many were queued. Items are handed out by the time
        they are due, then in queue order."""
        raw = [_raw_item(item) for item in items]
        return self._src._conn().ledger_enqueue_items(self._ns, raw, self._tx)

    def retry(self, ids: Iterable[Id]) -> int:
        """Put given-up (or cancelled) items back in the queue, due now, their attempts and
        error reset (once the cause of their failures is fixed). Ids that are neither are left
        as they are. Returns how many were put back."""
        return self._src._conn().ledger_retry(self._ns, ids, self._tx)

    def retry_all_failed(self) -> int:
        """:meth:`retry` every given-up item of the namespace (not the cancelled ones: name
        them to :meth:`retry`). Returns how many."""
        return self._src._conn().ledger_retry_all_failed(self._ns, self._tx)

    def prune_done(self, older_than: Duration) -> int:
        """Delete the items done more than `older_than` ago (a duration such as ``"30d"``, see
        :func:`cairn.parse_duration`), to keep a long-lived ledger small. Returns how many. A re-run
        no longer skips a pruned id: prune only what will not come again."""
        return self._src._conn().ledger_prune_done(self._ns, older_than, self._tx)

    def claim(self, id: Id, *, lease: Duration = DEFAULT_LEASE, worker: Optional[str] = None) -> Optional[Claim]:
        """Claim `id` for `lease`; None if it is done, given up, or held by a live worker."""
        raw = self._src._conn().ledger_claim(self._ns, id, worker or default_worker(), lease, self._tx)
        return None if raw is None else Claim(self, raw)

    def claim_next(
        self, *, lease: Duration = DEFAULT_LEASE, worker: Optional[str] = None, wait: Optional[Duration] = 0
    ) -> Optional[Claim]:
        """Claim the next item for `lease` (default 60 s, as the CLI's): one whose lease ran
        out or whose worker died first, else the oldest pending one. None if there is nothing
        to do (check for it before ``with``, or use :meth:`take`, which raises then;
        :meth:`claims` does the loop for you).

        With `wait` (seconds, a ``timedelta`` or a string like ``"30s"``; None: no limit), it
        waits up to that long for an item instead of returning None at once: it wakes within
        milliseconds when another process queues one, and when a delayed item or a retry
        comes due, a lease runs out or a pause ends. An idle wait costs next to nothing (no
        polling on a file), releases the interpreter, and Ctrl-C interrupts it. The default,
        0, does not wait.

        >>> claim = queue.claim_next(lease="5m", wait="30s")  # doctest: +SKIP

        The claim is a context manager: ``with claim:`` completes it when the block succeeds
        and records a failure (with the exception's text) when it raises.
        """
        wait_s = _wait_seconds(wait)
        if wait_s == 0:
            raw = self._src._conn().ledger_claim_next(self._ns, worker or default_worker(), lease, self._tx)
        elif in_loop() and (
            raw := self._src._conn().ledger_claim_next(self._ns, worker or default_worker(), lease, self._tx)
        ) is not None:
            pass  # due at once: no wait
        else:
            if in_loop():
                warn_blocking(self._src, "claim", f"waiting for an item of ledger {self._ns!r} (claim_next/claims with a wait)", 2)
            raw = self._src._conn().ledger_claim_next_wait(
                self._ns, worker or default_worker(), lease, wait_s, self._tx
            )
        return None if raw is None else Claim(self, raw)

    def wait_drained(self, timeout: Optional[Duration] = None) -> bool:
        """Wait until no item of the namespace is pending (queued, delayed, waiting for a
        retry) or claimed: what a script that queued work for other workers waits on. True
        once drained; False if `timeout` (seconds, a ``timedelta`` or a string like ``"5m"``)
        passed first; None waits as long as it takes. Waits as :meth:`claim_next` does
        (woken by other processes' commits, interruptible by Ctrl-C).

        >>> queue.enqueue(["a", "b"])  # doctest: +SKIP
        >>> queue.wait_drained(timeout="1h")  # the workers took and completed both  # doctest: +SKIP
        True
        """
        wait_s = _wait_seconds(timeout)
        if wait_s != 0 and in_loop():
            if self._src._conn().ledger_wait_drained(self._ns, 0.0, self._tx):
                return True
            warn_blocking(self._src, "drain", f"waiting for ledger {self._ns!r} to drain (wait_drained)", 2)
        return self._src._conn().ledger_wait_drained(self._ns, wait_s, self._tx)

    def take(self, *, lease: Duration = DEFAULT_LEASE, worker: Optional[str] = None) -> Claim:
        """Claim the next item, as :meth:`claim_next` does, or raise :class:`NothingDueError`
        when none is due: the form for ``with``, where a None would fail with a bare
        "'NoneType' object does not support the context manager protocol".

        >>> with queue.take(lease="5m") as claim:  # doctest: +SKIP
        ...     send(claim.data)

        :meth:`claim_next` keeps returning None for nothing due (so ``while (claim :=
        ledger.claim_next()) is not None`` loops end), and :meth:`claims` is the worker loop.
        """
        claim = self.claim_next(lease=lease, worker=worker)
        if claim is None:
            raise NothingDueError(
                f"nothing is due in ledger {self._ns!r}: it is empty, or its items are claimed by"
                " other workers or not due yet; ledger.claim_next() returns None instead, and"
                " `for claim in ledger.claims(wait=...)` waits for items"
            )
        return claim

    def claim_next_many(
        self, n: int, *, lease: Duration = DEFAULT_LEASE, worker: Optional[str] = None
    ) -> List[Claim]:
        """Claim up to `n` items at once, in the order :meth:`claim_next` would (fewer, or
        none, when the queue holds fewer). Each claim is fenced on its own."""
        n = _limit(n, "n", 2**32 - 1)
        raws = self._src._conn().ledger_claim_next_many(self._ns, worker or default_worker(), lease, n, self._tx)
        return [Claim(self, raw) for raw in raws]

    def claims(
        self, *, lease: Duration = DEFAULT_LEASE, wait: Optional[Duration] = 0, worker: Optional[str] = None
    ) -> Iterator[Claim]:
        """The worker loop: claim items one at a time (as :meth:`claim_next`) until none is
        due, settling each.

        >>> for claim in ledger.claims(lease="1m", wait="30s"):  # doctest: +SKIP
        ...     with claim:
        ...         send(claim.data)

        Inside the loop, ``with claim:`` completes the item when the block succeeds and, when
        it raises an ``Exception``, records the failure (it is retried after its backoff) and
        goes on with the next item instead of ending the loop; other exceptions
        (``KeyboardInterrupt``, ``SystemExit``) release the item without spending an attempt
        and end it. A claim the body did not settle is
        completed when the loop moves on to the next item, and recorded as failed if the loop
        ends on it (a ``break`` or an exception outside ``with claim:``). A claim taken over
        meanwhile raises :class:`LeaseLostError` from its completion, which ends the loop.

        With `wait` (seconds, a ``timedelta`` or a string like ``"30s"``; None: no limit), the
        loop waits for an item to come due before it ends, as :meth:`claim_next` with `wait`
        does (woken within milliseconds of another process's enqueue, not polling), and ends
        once no item came within `wait` of the last one. The default, 0, ends it as soon as
        the queue has nothing due.
        """
        wait_s = _wait_seconds(wait)
        while True:
            claim = self.claim_next(lease=lease, worker=worker, wait=wait_s)
            if claim is None:
                return
            claim._in_loop = True
            try:
                yield claim
            except GeneratorExit:
                if not claim._settled:
                    claim.fail("the worker loop ended before the item was settled")
                raise
            if not claim._settled:
                claim.complete()

    def complete_many(self, claims: Sequence[Claim]) -> List[bool]:
        """Complete several claims at once (one statement on PostgreSQL, one transaction on
        a file). Each is fenced on its own: the answer says, in order, which were recorded as
        done (True, also for one completed already) and which another worker had claimed
        since (False: that work must not count). Inside a transaction, it joins it."""
        raws = []
        for c in claims:
            if not isinstance(c, Claim):
                raise TypeError(f"complete_many takes Claim objects, not {type(c).__name__}")
            raws.append(c._raw)
        done = self._src._conn().ledger_complete_many(self._ns, raws, self._tx)
        for c in claims:
            c._settled = True
        return done

    def held_claim(self, id: Id, worker: str) -> Optional[Claim]:
        """The claim `worker` holds on `id`, for a process that did not make it; None if
        another worker claimed the item since, or it is no longer claimed."""
        raw = self._src._conn().ledger_held_claim(self._ns, id, worker, self._tx)
        return None if raw is None else Claim(self, raw)

    def counts(self) -> LedgerCounts:
        """How many items stand where."""
        c = self._src._conn().ledger_counts(self._ns, self._tx)
        until = c.paused_until_millis
        return LedgerCounts(
            pending=c.pending,
            claimed=c.claimed,
            done=c.done,
            failed=c.failed,
            cancelled=c.cancelled,
            paused=c.paused,
            paused_until=None if until is None else _utc(until),
        )

    def cancel(self, id: Id) -> bool:
        """Cancel `id`: it is never handed out again (:attr:`ItemState.CANCELLED`), unless
        :meth:`retry` puts it back. A worker holding it loses its claim: its
        :meth:`Claim.complete` raises :class:`LeaseLostError`. Pending, claimed and given-up
        items can be cancelled; True if this call cancelled it, False if it was already. An
        unknown id, or a done item, raises :class:`InvalidInputError` and changes nothing.

        >>> import cairn
        >>> queue = cairn.Store(":memory:").ledger("jobs")
        >>> queue.enqueue(["a", "b"])
        2
        >>> claim = queue.claim_next()
        >>> queue.cancel("a")
        True
        >>> claim.complete()
        Traceback (most recent call last):
        ...
        cairn.errors.LeaseLostError: ...
        >>> queue.claim_next().id
        'b'
        """
        return self._src._conn().ledger_cancel(self._ns, [id], self._tx) == 1

    def cancel_many(self, ids: Iterable[Id]) -> int:
        """:meth:`cancel` several items, all or none: if any id is unknown or done, nothing is
        cancelled (:class:`InvalidInputError`). Returns how many this call cancelled."""
        return self._src._conn().ledger_cancel(self._ns, ids, self._tx)

    def pause(
        self,
        for_: Optional[Duration] = None,
        until: Optional[Union[datetime.datetime, str]] = None,
    ) -> None:
        """Pause the namespace: :meth:`claim_next` and :meth:`claim` hand nothing out (a worker
        may still renew a claim it holds; claims held go on) for `for_` (a duration, see
        :func:`cairn.parse_duration`), until `until` (an aware ``datetime`` or an RFC 3339
        string), or, with neither, until :meth:`resume`. A zero duration or a time already
        past raises :class:`InvalidInputError` and changes nothing.

        >>> import cairn
        >>> queue = cairn.Store(":memory:").ledger("jobs")
        >>> queue.enqueue(["a"])
        1
        >>> queue.pause()
        >>> queue.is_paused(), queue.claim_next()
        (True, None)
        >>> queue.resume()
        True
        >>> queue.claim_next().id
        'a'
        """
        if for_ is not None and until is not None:
            raise InvalidInputError("invalid input: pause for a while or until a time, not both")
        at: Any = until
        if isinstance(at, datetime.datetime):
            if at.tzinfo is None:
                raise InvalidInputError(
                    "invalid input: a naive datetime to pause until; give it a tzinfo (datetime.timezone.utc, say)"
                )
            at = round(at.timestamp() * 1000)
        elif at is not None and not isinstance(at, str):
            raise TypeError(f"until must be an aware datetime or an RFC 3339 string, not {type(at).__name__}")
        self._src._conn().ledger_pause(self._ns, for_, at, self._tx)

    def resume(self) -> bool:
        """End a pause (:meth:`pause`): the queue hands items out again. True if it was
        paused."""
        return self._src._conn().ledger_resume(self._ns, self._tx)

    def is_paused(self) -> bool:
        """Whether the namespace is paused now (:meth:`pause`)."""
        return self._src._conn().ledger_paused(self._ns, self._tx)[0]

    def paused_until(self) -> Optional[datetime.datetime]:
        """When the pause ends (UTC); None if the namespace is not paused, or paused until
        :meth:`resume` (tell the two apart with :meth:`is_paused`)."""
        until = self._src._conn().ledger_paused(self._ns, self._tx)[1]
        return None if until is None else _utc(until)

    def list(self, state: Optional[ItemState | str] = None, after: Optional[str] = None, limit: int = 100) -> List[Item]:
        """A page of items in id order, after the id `after`, only those in `state` if given."""
        s = None if state is None else ItemState(state).value
        limit = _limit(limit, "limit")
        return [_item(raw) for raw in self._src._conn().ledger_list(self._ns, s, after, limit, self._tx)]

    def delete(self, id: Id) -> bool:
        """Forget `id` entirely. True if it was known."""
        return self._src._conn().ledger_delete(self._ns, id, self._tx)

    def clear(self) -> int:
        """Forget every item of the namespace. Returns how many."""
        return self._src._conn().ledger_clear(self._ns, self._tx)

    def __repr__(self) -> str:
        return f"<cairn.Ledger {self._ns!r}>"


class Claim:
    """A worker's hold on a ledger item, from :meth:`Ledger.claim_next` or :meth:`Ledger.claim`.

    As a context manager it settles itself: :meth:`complete` when the block succeeds, and
    :meth:`fail` with the exception's text when it raises (the exception propagates). A claim
    that was taken over meanwhile raises :class:`LeaseLostError` from :meth:`complete`. A
    ``KeyboardInterrupt``, ``SystemExit`` or ``GeneratorExit`` is no failure of the item: the
    block releases it (:meth:`release`): pending again at once, without spending an attempt.
    """

    __slots__ = ("_ledger", "_raw", "_settled", "_in_loop")

    def __init__(self, ledger: Ledger, raw: _cairn.RawClaim) -> None:
        self._ledger = ledger
        self._raw = raw
        self._settled = False
        # Handed out by Ledger.claims: `with claim:` then records an item's exception and the
        # loop goes on.
        self._in_loop = False

    @property
    def id(self) -> str:
        """The item's id."""
        return self._raw.id

    @property
    def worker(self) -> str:
        """The worker holding it."""
        return self._raw.worker

    @property
    def token(self) -> int:
        """The fencing token, bumped by every claim of the item."""
        return self._raw.token

    @property
    def lease_until(self) -> datetime.datetime:
        """When the lease runs out (UTC)."""
        return _utc(self._raw.lease_until_millis)

    @property
    def attempt(self) -> int:
        """Which attempt this is: 1 the first time the item is worked on, 2 after one
        failure..."""
        return self._raw.attempt

    @property
    def data(self) -> Any:
        """What the item carries for its worker (:attr:`QueueItem.data`), with the type it
        was queued with; None if nothing."""
        return self._raw.data

    def complete(self, result: Any = None) -> None:
        """Record the item done, with an optional result. ``LeaseLostError`` (recording
        nothing) if another worker claimed it since."""
        lg = self._ledger
        lg._src._conn().ledger_complete(lg._ns, self._raw, result, lg._tx)
        self._settled = True

    def fail(self, error: str | BaseException) -> ItemState:
        """Record a failure (see :meth:`Ledger.fail`). ``LeaseLostError`` if another worker
        claimed the item since."""
        lg = self._ledger
        state = lg._src._conn().ledger_fail_claim(
            lg._ns, self._raw, _error_text(error), lg._max_attempts, lg._retry_delay, lg._tx
        )
        self._settled = True
        return ItemState(state)

    def release(self) -> None:
        """Give the item back without spending an attempt: pending again at once, for the next
        claim (which shows the same :attr:`attempt`). For work stopped for a reason that is not
        the item's (Ctrl-C, a shutdown). ``LeaseLostError`` if another worker claimed the item
        since."""
        lg = self._ledger
        lg._src._conn().ledger_release(lg._ns, self._raw, lg._tx)
        self._settled = True

    def snooze(self, delay: Duration) -> None:
        """Give the item back to the queue, due after `delay` (a duration, see
        :func:`cairn.parse_duration`), its attempts unchanged: for an item that cannot be
        worked on yet. The claim ends. ``LeaseLostError`` if the claim was lost (another
        worker claimed the item, or it was cancelled); a zero `delay` raises
        :class:`InvalidInputError`.

        >>> import cairn
        >>> queue = cairn.Store(":memory:").ledger("jobs")
        >>> queue.enqueue(["a"])
        1
        >>> queue.claim_next().snooze("10m")
        >>> queue.claim_next() is None
        True
        """
        lg = self._ledger
        lg._src._conn().ledger_snooze(lg._ns, self._raw, delay, lg._tx)
        self._settled = True

    def extend(self, lease: Duration) -> None:
        """Push the lease to `lease` from now (a heartbeat). ``LeaseLostError`` if another
        worker claimed the item since."""
        lg = self._ledger
        self._raw = lg._src._conn().ledger_extend(lg._ns, self._raw, lease, lg._tx)

    def __enter__(self) -> Claim:
        """The claim itself; the end of the block settles it."""
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        """Complete the claim after a normal exit; record a failure (with the exception's
        text) after an exception, which propagates, except in the loop of
        :meth:`Ledger.claims`, where an ``Exception`` is recorded and the loop goes on. After
        an exception that is not an ``Exception`` (``KeyboardInterrupt``, ``SystemExit``,
        ``GeneratorExit``) the claim is released instead, without spending an attempt."""
        if self._settled:
            return self._in_loop and isinstance(exc, Exception)
        if exc is None:
            self.complete()
            return False
        try:
            if isinstance(exc, Exception):
                self.fail(exc)
            else:
                self.release()
        except LeaseLostError:
            pass  # another worker has the item now; the block's own exception matters
        return self._in_loop and isinstance(exc, Exception)

    def __repr__(self) -> str:
        return f"<cairn.Claim {self.id!r} by {self.worker!r} token {self.token}>"
