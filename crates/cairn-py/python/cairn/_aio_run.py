"""Durable runs of an :class:`AsyncStore`: ``async with store.run(id) as run:``."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Optional, Tuple, Type, TypeVar, cast

from . import _aio_runner, _cairn
from ._aio_lock import Gate, taking
from ._lock import _timeout_seconds
from ._run import RunInfo, _describe, _info, _sleep_inside_a_step, _step_tx_inside_a_step
from ._types import Duration
from .errors import InvalidInputError, RunHeldError

if TYPE_CHECKING:
    from ._aio_store import AsyncStore, AsyncTransaction
    from ._store import Store

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
T = TypeVar("T")

#: The run whose ``async with`` block this task (or a task it started) runs in, for
#: :meth:`AsyncStore.step`.
_current: contextvars.ContextVar[Optional[AsyncRun]] = contextvars.ContextVar("cairn_async_run", default=None)

#: The runs whose step's function this task runs inside (or a task started from there): a step
#: called there is a plain call, as the sync run's (its outer step's record stands for it).
_stepping: contextvars.ContextVar[Tuple[AsyncRun, ...]] = contextvars.ContextVar("cairn_async_stepping", default=())

#: The first and longest nap between tries of a held run (the library's own wait's).
_FIRST_NAP = 0.02
_LONGEST_NAP = 1.0


def _take(store: Store, id: str, lease: Duration) -> Tuple[_cairn.HeldRun, Optional[_cairn.KeepAlive]]:
    """On a worker: take the run now (RunHeldError if held), with the renewer of its lease."""
    conn = store._conn()
    held = conn.run_take(id, lease, 0)
    keep = None
    if not held.finished and not store._memory:
        try:
            keep = conn.run_keep_alive(held)
        except BaseException:
            conn.run_end(held, False, "the lease's renewal could not start")
            raise
    return held, keep


def _end(store: Store, taken: Tuple[_cairn.HeldRun, Optional[_cairn.KeepAlive]], error: Optional[str]) -> None:
    """On a worker: stop the renewer, then finish the attempt (`error` None) or record it as
    failed with `error`."""
    held, keep = taken
    if keep is not None:
        try:
            keep.stop()
        except Exception:
            # A renewal that failed is not the block's outcome: the fenced end says whether
            # the run is still ours (as Run.__exit__).
            pass
    store._conn().run_end(held, error is None, error)


def _abandon(store: Store, taken: Tuple[_cairn.HeldRun, Optional[_cairn.KeepAlive]]) -> None:
    """A run taken as its task was cancelled: record the attempt as failed at once."""
    try:
        _end(store, taken, "CancelledError: the task was cancelled while it took the run")
    except Exception:
        pass  # the lease runs out


def _gate(astore: AsyncStore, id: str) -> Gate:
    """The line of this store's coroutines waiting for the held run `id`."""
    gates: Dict[str, Gate] = astore.__dict__.setdefault("_run_gates", {})
    gate = gates.get(id)
    if gate is None:
        gate = gates[id] = Gate(1)
    return gate


class AsyncRun:
    """An attempt at a durable run of an :class:`AsyncStore`, from :meth:`AsyncStore.run`:
    ``async with store.run(id) as run:``. :class:`Run`'s semantics: each :meth:`step` executes
    until it succeeds once and replays after; the block finishes the run on a normal exit and
    records the attempt failed on an exception (a cancellation included); one attempt holds a
    run at a time (:class:`RunHeldError` after waiting up to `wait`, on the loop: a try on a
    thread of the store's, then ``await asyncio.sleep``, 20 ms doubling to 1 s; a store's
    coroutines waiting for one run queue in memory, one of them trying at a time).

    A step's function may be a coroutine function (awaited) or a plain callable: a plain one
    is called on the event loop, as the code of the coroutine calling the step would be (give
    blocking work to ``asyncio.to_thread`` yourself). Steps started at once (``gather``) are
    named in the order they were called.

    >>> import asyncio, cairn
    >>> async def main() -> object:
    ...     async with cairn.AsyncStore(":memory:") as store:
    ...         async with store.run("backfill-2026-11-30") as run:
    ...             pages = await run.step("list", lambda: [1, 2, 3])
    ...             async def fetch(p: int) -> int:
    ...                 return p * 10
    ...             return sum([await run.step(f"fetch-{p}", fetch, p) for p in pages])
    >>> asyncio.run(main())
    60
    """

    def __init__(self, astore: AsyncStore, id: str, lease: Duration, wait: Optional[Duration]) -> None:
        if not isinstance(id, str):
            raise TypeError(f"a run id must be a str, not {type(id).__name__}")
        self._astore = astore
        self._id = id
        self._lease = lease
        self._wait = _timeout_seconds(wait, "a run's wait")
        self._taken: Optional[Tuple[_cairn.HeldRun, Optional[_cairn.KeepAlive]]] = None
        self._attempt_no = 0
        self._finished = False
        self._token: Optional[contextvars.Token[Optional[AsyncRun]]] = None
        self._entered = False
        self._ended = False
        # Step names are given on the loop, in call order; the HeldRun is touched by one
        # thread at a time (a call detached from the interpreter keeps it borrowed).
        self._seen: Dict[str, int] = {}
        self._seq = 0
        self._mu = threading.Lock()

    @property
    def id(self) -> str:
        """The run's id."""
        return self._id

    @property
    def attempt(self) -> int:
        """Which attempt this is, from 1."""
        self._held()
        return self._attempt_no

    @property
    def finished(self) -> bool:
        """True if the run was finished before this attempt: its steps replay only."""
        self._held()
        return self._finished

    def _held(self) -> _cairn.HeldRun:
        if self._taken is None:
            raise InvalidInputError(
                f"invalid input: the run {self._id!r} is used as `async with store.run(...) as run:`"
            )
        return self._taken[0]

    async def __aenter__(self) -> AsyncRun:
        """Take the run for this attempt (or join it finished), waiting on the loop while
        another attempt holds it."""
        if self._entered:
            raise InvalidInputError("invalid input: a Run object is used once; call store.run() again")
        self._entered = True
        store = await self._astore._store()
        deadline = None if self._wait is None else time.monotonic() + self._wait
        try:
            taken = await self._try(store)
        except RunHeldError:
            if deadline is not None and time.monotonic() >= deadline:
                raise
            # Held: wait in line behind this store's other waiters for the run (one of them
            # tries the database at a time).
            gate = _gate(self._astore, self._id)
            if not await gate.acquire(None if deadline is None else max(deadline - time.monotonic(), 0.0)):
                taken = await self._try(store)  # RunHeldError naming the holder, as the sync wait's
            else:
                try:
                    taken = await self._poll(store, deadline)
                finally:
                    gate.release()
        self._taken = taken
        self._attempt_no = taken[0].attempt
        self._finished = taken[0].finished
        self._token = _current.set(self)
        return self

    async def _try(self, store: Store) -> Tuple[_cairn.HeldRun, Optional[_cairn.KeepAlive]]:
        """One try at taking the run (RunHeldError if another attempt holds it)."""
        return await taking(self._astore, _take, (store, self._id, self._lease), functools.partial(_abandon, store))

    async def _poll(
        self, store: Store, deadline: Optional[float]
    ) -> Tuple[_cairn.HeldRun, Optional[_cairn.KeepAlive]]:
        """Try until taken, napping on the loop (20 ms doubling to 1 s) until `deadline`."""
        nap = _FIRST_NAP
        while True:
            try:
                return await self._try(store)
            except RunHeldError:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise
                await asyncio.sleep(nap if deadline is None else min(nap, deadline - now))
                nap = min(nap * 2, _LONGEST_NAP)

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Finish the run after a normal exit; after an exception (which propagates; a
        cancellation included), record the attempt as failed with it."""
        taken = self._taken
        if taken is None:
            raise InvalidInputError(f"invalid input: the run {self._id!r} was not entered")
        self._ended = True
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # exited in another context than entered
                pass
            self._token = None
        store = await self._astore._store()
        fut = self._astore._submit(self._locked, (_end, store, taken, None if exc is None else _describe(exc)))
        if exc is None:
            await _aio_runner.finish(fut)
        else:
            try:
                await _aio_runner.finish(fut)
            except Exception:
                pass  # the block's own exception is what the caller needs; the lease runs out

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on this thread, the only one touching the attempt meanwhile."""
        with self._mu:
            return fn(*args)

    def _next(self, name: str) -> Tuple[str, int]:
        """The full name and position of the next step called `name` (on the loop: in call
        order)."""
        if not isinstance(name, str):
            raise TypeError(f"a step name must be a str, not {type(name).__name__}")
        if self._ended:
            raise InvalidInputError(
                f"invalid input: the `async with store.run({self._id!r})` block has ended, and its steps "
                "are taken inside it; take this one in that block, or in a new `async with store.run(...)`"
            )
        self._held()
        count = self._seen.get(name, 0) + 1
        self._seen[name] = count
        self._seq += 1
        return (name if count == 1 else f"{name}#{count}"), self._seq

    async def _lookup(self, name: str, version: Optional[str]) -> Tuple[bool, Any, str, int, str, int]:
        """The next step `name`: (found, recorded value, full name, position, version, start)."""
        full, seq = self._next(name)
        held = self._held()
        v = "" if version is None else str(version)
        store = await self._astore._store()

        def lookup() -> Tuple[bool, Any, int]:
            conn = store._conn()
            held.next_step(name)  # checks the name as the sync run does (its count is unused)
            found, value = conn.run_replay(held, full, v)
            return found, value, 0 if found else conn.now_millis()

        found, value, started = await self._astore._submit(self._locked, (lookup,))
        return found, value, full, seq, v, started

    async def _failed(self, full: str, seq: int, v: str, started: int, e: BaseException) -> None:
        """Record a step's failure; a failure to record it is not raised (the exception is
        what the caller needs)."""
        held = self._held()
        store = await self._astore._store()

        def record() -> None:
            store._conn().run_record(held, full, seq, v, started, None, _describe(e), 0)

        try:
            await _aio_runner.finish(self._astore._submit(self._locked, (record,)))
        except Exception:
            pass

    async def step(
        self, name: str, fn: Callable[..., Any], *args: Any, version: Optional[str] = None, **kwargs: Any
    ) -> Any:
        """Run step `name`: call ``fn(*args, **kwargs)`` (awaiting it if it is a coroutine
        function, or returns an awaitable) the first time and record its result (a
        :data:`cairn.Value`); every later attempt returns the recorded result without calling
        `fn`. An exception (a cancellation included) records the attempt's failure and
        propagates. `version` as :meth:`Run.step`.

        Called from inside the function of another step of this run (its task, or a task
        started there), it is a plain call of `fn`: the outer step's record stands for it."""
        stepping = _stepping.get()
        if self in stepping:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        found, value, full, seq, v, started = await self._lookup(name, version)
        if found:
            return value
        token = _stepping.set(stepping + (self,))
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as e:
            await self._failed(full, seq, v, started, e)
            raise
        finally:
            _stepping.reset(token)
        held = self._held()
        store = await self._astore._store()

        def record() -> None:
            store._conn().run_record(held, full, seq, v, started, result, None, 0)

        await _aio_runner.finish(self._astore._submit(self._locked, (record,)))
        return result

    async def step_tx(self, name: str, fn: Callable[[AsyncTransaction], Any], *, version: Optional[str] = None) -> Any:
        """A step whose writes to the store commit with its record, in one transaction:
        ``fn(tx)`` (a coroutine function, or a plain one) writes through the handles of
        `tx`, an :class:`AsyncTransaction` (``await tx.cache("c").incr("n")``), and returns
        the step's result. Exactly once, even across kills; a cancellation rolls it back.
        Not inside the function of another step of this run (:class:`InvalidInputError`), as
        :meth:`Run.step_tx`."""
        stepping = _stepping.get()
        if self in stepping:
            raise _step_tx_inside_a_step(self._id, name)
        found, value, full, seq, v, started = await self._lookup(name, version)
        if found:
            return value
        held = self._held()
        try:
            async with self._astore.transaction() as atx:
                token = _stepping.set(stepping + (self,))
                try:
                    result = fn(atx)
                    if inspect.isawaitable(result):
                        result = await result
                finally:
                    _stepping.reset(token)
                tx = atx._tx()
                n, conn = tx._n, tx._conn()

                def record() -> None:
                    conn.run_record(held, full, seq, v, started, result, None, n)

                await atx._submit(self._locked, (record,))
        except BaseException as e:
            await self._failed(full, seq, v, started, e)
            raise
        return result

    async def sleep(self, name: str, duration: Duration, *, wait: bool = True) -> Optional[float]:
        """A durable sleep, as :meth:`Run.sleep`: its wake time is recorded the first time,
        and every attempt sleeps (``await asyncio.sleep``) only what is left. With
        ``wait=False`` the seconds still left come back at once (None once passed). Not
        inside the function of another step of this run (:class:`InvalidInputError`)."""
        if self in _stepping.get():
            raise _sleep_inside_a_step(self._id, name)
        full, seq = self._next(name)
        held = self._held()
        store = await self._astore._store()

        def wake_time() -> float:
            conn = store._conn()
            held.next_step(name)
            found, wake = conn.run_replay(held, full, "")
            if not found:
                now = conn.now_millis()
                wake = now + int(_cairn.duration_seconds(duration, "a sleep") * 1000)
                conn.run_record(held, full, seq, "", now, wake, None, 0)
            return float(wake)

        def left(wake: float) -> float:
            return (wake - store._conn().now_millis()) / 1000

        wake = await self._astore._submit(self._locked, (wake_time,))
        while True:
            rest: float = await self._astore._submit(left, (wake,))
            if rest <= 0:
                return None
            if not wait:
                return rest
            await asyncio.sleep(min(rest, 1.0))

    def __repr__(self) -> str:
        state = "not entered" if self._taken is None else f"attempt {self._attempt_no}"
        return f"<cairn.AsyncRun {self._id!r} {state}>"


class AsyncRuns:
    """The runs of an :class:`AsyncStore`, from :meth:`AsyncStore.runs`: :class:`Runs`'
    operations as coroutines."""

    __slots__ = ("_astore",)

    def __init__(self, astore: AsyncStore) -> None:
        self._astore = astore

    async def list(self, state: Optional[str] = None) -> List[RunInfo]:
        """Every run, or those in `state`, by id, without their steps."""
        return await self._astore._call(lambda s: [_info(r) for r in s._conn().runs_list(state)])

    async def get(self, id: str) -> Optional[RunInfo]:
        """A run with its steps in order; None if there is no such run."""
        raw = await self._astore._call(lambda s: s._conn().run_get(id))
        return None if raw is None else _info(raw)

    async def reset(self, id: str, from_step: Optional[str] = None) -> int:
        """:meth:`Runs.reset`."""
        return await self._astore._call(lambda s: s._conn().run_reset(id, from_step))

    async def forget(self, id: str) -> bool:
        """:meth:`Runs.forget`."""
        return await self._astore._call(lambda s: s._conn().run_forget(id))

    async def prune(self, older_than: Duration) -> int:
        """:meth:`Runs.prune`."""
        return await self._astore._call(lambda s: s._conn().runs_prune(older_than))

    def __repr__(self) -> str:
        return "<cairn.AsyncRuns>"


def step_decorator(astore: AsyncStore, version: Optional[str], name: Optional[str]) -> Callable[[F], F]:
    """What :meth:`AsyncStore.step` returns: inside an ``async with store.run(...)`` block of
    `astore`, a call of the coroutine function is a step named after it; elsewhere (inside
    another step's function too), a plain call."""

    def wrap(fn: F) -> F:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"an AsyncStore's step decorates coroutine functions (async def), not {fn!r}; "
                "for a plain function use store.sync.step inside `with store.sync.run(...)`"
            )
        step_name = name or getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
        if not isinstance(step_name, str):
            raise TypeError(f"cannot name a step after {fn!r}; pass name=")
        step_name = step_name.replace("<locals>.", "").replace("#", "_")

        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            run = _current.get()
            if run is None or run._astore is not astore:
                return await fn(*args, **kwargs)
            return await run.step(step_name, fn, *args, version=version, **kwargs)

        return cast(F, call)

    return wrap
