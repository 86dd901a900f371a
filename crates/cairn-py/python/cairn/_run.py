"""Durable runs: scripts that resume at the step where they stopped."""

from __future__ import annotations

import contextvars
import datetime
import functools
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple, Type, TypeVar, cast

from . import _cairn
from ._blocking import in_loop, warn_blocking
from ._types import Duration
from .errors import InvalidInputError, RunHeldError

if TYPE_CHECKING:
    from ._store import Store, Transaction

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: The run whose ``with`` block this code runs in, for :meth:`Store.step`.
_current: contextvars.ContextVar[Optional[Run]] = contextvars.ContextVar("cairn_run", default=None)

#: The runs whose step's function this code runs inside: a step called there is a plain call
#: (its outer step's record stands for it, and a replay does not call it, so it must not take a
#: name the steps after it would shift by).
_stepping: contextvars.ContextVar[Tuple[Run, ...]] = contextvars.ContextVar("cairn_stepping", default=())


def _utc(millis: Optional[int]) -> Optional[datetime.datetime]:
    if millis is None:
        return None
    return datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.timezone.utc)


@dataclass(frozen=True)
class StepInfo:
    """A step of a run, as :meth:`Runs.get` shows it."""

    #: Its full name (``fetch#2`` for the second ``fetch`` of an attempt).
    name: str
    #: ``"done"`` (its result is recorded and replays) or ``"failed"`` (its last execution
    #: raised; the next attempt runs it again).
    state: str
    #: How many times it was executed until recorded (or so far).
    attempts: int
    #: The error of its last execution, while failed.
    error: Optional[str]
    #: When its last execution began and ended (UTC).
    started: datetime.datetime
    finished: datetime.datetime
    #: The version it was recorded with ("" for none).
    version: str
    #: For a command step (``cairn step``): the first lines of its output when done, the last
    #: lines of its error output when failed; None for a step of Python or Rust.
    output: Optional[str] = None

    @property
    def duration(self) -> datetime.timedelta:
        """How long its last execution took."""
        return self.finished - self.started


@dataclass(frozen=True)
class RunInfo:
    """A run, as :meth:`Runs.list` and :meth:`Runs.get` show it."""

    #: Its id.
    id: str
    #: ``"running"`` (an attempt holds it), ``"failed"`` (the last attempt raised, or stopped
    #: without finishing: its process died or its lease ran out) or ``"finished"``.
    state: str
    #: The attempts so far.
    attempts: int
    #: Why the last attempt failed.
    error: Optional[str]
    #: Who holds it while running (``pid N on this host``).
    holder: Optional[str]
    #: When the holder's lease runs out (UTC).
    lease_until: Optional[datetime.datetime]
    #: When its first attempt began, when it last changed, when it finished (UTC).
    started: datetime.datetime
    updated: datetime.datetime
    finished: Optional[datetime.datetime]
    #: Its steps in order (empty from :meth:`Runs.list`).
    steps: List[StepInfo] = field(default_factory=list)


def _info(raw: _cairn.RawRunInfo) -> RunInfo:
    steps = [
        StepInfo(
            name=s.name,
            state=s.state,
            attempts=s.attempts,
            error=s.error,
            started=cast(datetime.datetime, _utc(s.started_at_millis)),
            finished=cast(datetime.datetime, _utc(s.finished_at_millis)),
            version=s.version,
            output=s.output,
        )
        for s in raw.steps
    ]
    return RunInfo(
        id=raw.id,
        state=raw.state,
        attempts=raw.attempts,
        error=raw.error,
        holder=raw.holder,
        lease_until=_utc(raw.lease_until_millis),
        started=cast(datetime.datetime, _utc(raw.started_at_millis)),
        updated=cast(datetime.datetime, _utc(raw.updated_at_millis)),
        finished=_utc(raw.finished_at_millis),
        steps=steps,
    )


class Run:
    """An attempt at a durable run, from :meth:`Store.run`: use it as ``with store.run(id)
    as run:``.

    Each :meth:`step` executes its function until it succeeds once; its result is recorded
    (a typed value, as the cache stores them, never pickle) and every later attempt gets it
    back without executing it. The block finishes the run when it ends normally (later
    attempts replay only) and records the attempt as failed when it raises (the next one
    resumes at the first step not recorded). One attempt holds a run at a time: another
    process (or another ``with`` of this one) gets :class:`RunHeldError`, after waiting up to
    `wait`. While the block runs, a thread of the library renews the lease.

    >>> import cairn
    >>> store = cairn.Store(":memory:")
    >>> with store.run("backfill-2026-11-30") as run:
    ...     pages = run.step("list", lambda: [1, 2, 3])
    ...     total = sum(run.step(f"fetch-{p}", lambda p: p * 10, p) for p in pages)
    >>> total
    60
    """

    def __init__(self, store: Store, id: str, lease: Duration, wait: Optional[Duration]) -> None:
        if not isinstance(id, str):
            raise TypeError(f"a run id must be a str, not {type(id).__name__}")
        self._store = store
        self._id = id
        self._lease = lease
        self._wait = wait
        self._held: Optional[_cairn.HeldRun] = None
        self._keep: Optional[_cairn.KeepAlive] = None
        self._token: Optional[contextvars.Token[Optional[Run]]] = None
        self._ended = False

    @property
    def id(self) -> str:
        """The run's id."""
        return self._id

    @property
    def attempt(self) -> int:
        """Which attempt this is, from 1."""
        return self._attempt().attempt

    @property
    def finished(self) -> bool:
        """True if the run was finished before this attempt: its steps replay only, and a step
        it never recorded raises :class:`InvalidInputError`."""
        return self._attempt().finished

    def _attempt(self) -> _cairn.HeldRun:
        if self._held is None:
            raise InvalidInputError(f"invalid input: the run {self._id!r} is used as `with store.run(...) as run:`")
        return self._held

    def _ended_error(self) -> InvalidInputError:
        return InvalidInputError(
            f"invalid input: the `with store.run({self._id!r})` block has ended, and its steps are "
            "taken inside it; take this one in that block, or in a new `with store.run(...)`"
        )

    def __enter__(self) -> Run:
        """Take the run for this attempt (or join it finished, to replay it); the lease is
        renewed by a thread of the library until the block ends."""
        if self._held is not None:
            raise InvalidInputError("invalid input: a Run object is used once; call store.run() again")
        conn = self._store._conn()
        held = None
        if in_loop() and (self._wait is None or _cairn.duration_seconds(self._wait, "a wait") > 0):
            try:
                held = conn.run_take(self._id, self._lease, 0)
            except RunHeldError:
                warn_blocking(self._store, "run", f"waiting for the run {self._id!r}, held by another attempt", 2)
        if held is None:
            held = conn.run_take(self._id, self._lease, self._wait)
        self._held = held
        if not held.finished and not self._store._memory:
            self._keep = conn.run_keep_alive(held)
        self._token = _current.set(self)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Finish the run after a normal exit; after an exception (which propagates), record
        the attempt as failed with it, so that the next attempt resumes."""
        held = self._attempt()
        self._ended = True
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        keep, self._keep = self._keep, None
        if keep is not None:
            try:
                keep.stop()
            except Exception:
                # A renewal that failed (the lease lost, the store kept busy) is not this
                # block's outcome: the fenced end below says whether the run is still ours,
                # and an exception of the block's own must not be replaced by it.
                pass
        conn = self._store._conn()
        if exc is None:
            conn.run_end(held, True)
        else:
            try:
                conn.run_end(held, False, _describe(exc))
            except Exception:
                # The block's own exception is what the caller needs; the lease runs out.
                pass

    def step(self, name: str, fn: Callable[..., T], *args: Any, version: Optional[str] = None, **kwargs: Any) -> T:
        """Run step `name`: call ``fn(*args, **kwargs)`` the first time and record its result
        (a :data:`cairn.Value`: str, int, float, bytes, or JSON of lists and dicts); every
        later attempt returns the recorded result without calling `fn`. An exception records
        the attempt and its error, no result, and propagates: the next attempt calls `fn`
        again. The same `name` again in one attempt is a step of its own (``name#2``).

        Called from inside the function of another step of this run (in the same thread), it
        is a plain call of `fn`: the outer step's record stands for it.

        `version` is the step's (every other argument goes to `fn`): a step recorded under
        another version raises :class:`StepChangedError` instead of replaying a result the new
        code would not give.
        """
        # _lookup's work inline, and no _Pending unless the step fails: a step's Python is
        # measured in microseconds against a committed mark.
        stepping = _stepping.get()
        if self in stepping:
            return fn(*args, **kwargs)
        if self._ended:
            raise self._ended_error()
        held = self._attempt()
        conn = self._store._conn()
        v = "" if version is None else str(version)
        # The replay, the call and the record in one call into the extension; steps `fn`
        # takes meanwhile are plain calls.
        token = _stepping.set(stepping + (self,))
        try:
            done, value, full, seq, started = conn.run_step_call(held, name, v, fn, args, kwargs or None)
        finally:
            _stepping.reset(token)
        if done == 2:
            _Pending(conn, held, full, seq, v, started).failed(value)
            raise value
        return cast(T, value)

    def step_tx(self, name: str, fn: Callable[[Transaction], T], *, version: Optional[str] = None) -> T:
        """A step whose writes to the store commit with its record, in one transaction:
        exactly once, even across kills. ``fn(tx)`` writes through the transaction's handles
        (``tx.ledger("pages").mark_done(...)``) and returns the step's result.

        Not inside the function of another step of this run (:class:`InvalidInputError`): its
        writes would commit apart from that step's record, and again when it runs again."""
        stepping = _stepping.get()
        if self in stepping:
            raise _step_tx_inside_a_step(self._id, name)
        found, value, pending = self._lookup(name, version)
        if found:
            return cast(T, value)
        token = _stepping.set(stepping + (self,))
        try:
            with self._store.transaction() as tx:
                result = fn(tx)
                pending.record(result, tx._n, tx._conn())
        except BaseException as e:
            pending.failed(e)
            raise
        finally:
            _stepping.reset(token)
        return result

    def _lookup(self, name: str, version: Optional[str]) -> Tuple[bool, Any, _Pending]:
        """The next step called `name`: (True, its recorded result) to replay, else (False,
        None) and what records its execution."""
        if self._ended:
            raise self._ended_error()
        held = self._attempt()
        conn = self._store._conn()
        v = "" if version is None else str(version)
        found, value, full, seq, started = conn.run_step_begin(held, name, v)
        return found, value, _Pending(conn, held, full, seq, v, started)

    def sleep(self, name: str, duration: Duration, *, wait: bool = True) -> Optional[float]:
        """A durable sleep: the first time, its wake time (now plus `duration`) is recorded;
        every attempt then sleeps only what is left of it. With ``wait=False`` it returns at
        once the seconds still left (None once the time has passed), for a cron script that
        would rather exit and come back.

        Not inside the function of another step of this run (:class:`InvalidInputError`): it
        would take a name there that a replay of that step does not, and shift the later ones."""
        if self in _stepping.get():
            raise _sleep_inside_a_step(self._id, name)
        if self._ended:
            raise self._ended_error()
        held = self._attempt()
        conn = self._store._conn()
        full, seq = held.next_step(name)
        found, wake = conn.run_replay(held, full, "")
        if not found:
            now = conn.now_millis()
            wake = now + int(_cairn.duration_seconds(duration, "a sleep") * 1000)
            conn.run_record(held, full, seq, "", now, wake, None, 0)
        while True:
            left = (int(wake) - conn.now_millis()) / 1000
            if left <= 0:
                return None
            if not wait:
                return left
            time.sleep(min(left, 1.0))

    def __repr__(self) -> str:
        state = "not entered" if self._held is None else f"attempt {self._held.attempt}"
        return f"<cairn.Run {self._id!r} {state}>"


def _step_tx_inside_a_step(run: str, name: str) -> InvalidInputError:
    return InvalidInputError(
        f"invalid input: step_tx({name!r}) is called inside another step of the run {run!r}, "
        "where its writes could not commit exactly once; make it a step of the run's block, "
        "or make the outer step a step_tx that does these writes"
    )


def _sleep_inside_a_step(run: str, name: str) -> InvalidInputError:
    return InvalidInputError(
        f"invalid input: sleep({name!r}) is called inside another step of the run {run!r}: a durable sleep there "
        "would take a step's name that a replay of the outer step does not take; sleep in the run's block, "
        "or use time.sleep inside the step"
    )


class _Pending:
    """A step being executed: what its record needs."""

    def __init__(self, conn: _cairn.Connection, held: _cairn.HeldRun, name: str, seq: int, version: str, started: int):
        self._conn, self._held, self._name, self._seq, self._version, self._started = (
            conn,
            held,
            name,
            seq,
            version,
            started,
        )

    def record(self, result: Any, tx: int, conn: Optional[_cairn.Connection] = None) -> None:
        """Record its result (inside transaction `tx` on `conn`, if not 0)."""
        (conn or self._conn).run_record(self._held, self._name, self._seq, self._version, self._started, result, None, tx)

    def failed(self, e: BaseException) -> None:
        """Record its failure; the exception is what the caller needs, so a failure to record
        it (the run lost meanwhile) is not raised."""
        try:
            self._conn.run_record(self._held, self._name, self._seq, self._version, self._started, None, _describe(e), 0)
        except Exception:
            pass


def _describe(e: BaseException) -> str:
    """``Type: message`` for the record of a failure; the type's name alone when the message
    is empty or ``str(e)`` itself raises (the run must be released whatever it does)."""
    kind = type(e).__name__
    try:
        text = str(e)
    except Exception:
        return kind
    return f"{kind}: {text}" if text else kind


class Runs:
    """The runs of a store, from :meth:`Store.runs`: list, inspect, reset, forget, prune.

    >>> import cairn
    >>> store = cairn.Store(":memory:")
    >>> with store.run("deploy-1") as run:
    ...     _ = run.step("build", lambda: "ok")
    >>> [r.state for r in store.runs().list()]
    ['finished']
    >>> store.runs().reset("deploy-1", from_step="build")
    1
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def list(self, state: Optional[str] = None) -> List[RunInfo]:
        """Every run, or those in `state` (``"running"``, ``"failed"``, ``"finished"``), by
        id, without their steps."""
        return [_info(r) for r in self._store._conn().runs_list(state)]

    def get(self, id: str) -> Optional[RunInfo]:
        """A run with its steps in order; None if there is no such run."""
        raw = self._store._conn().run_get(id)
        return None if raw is None else _info(raw)

    def reset(self, id: str, from_step: Optional[str] = None) -> int:
        """Forget the recorded steps of run `id` from `from_step` on (all of them for None)
        so that its next attempt runs them again; a finished run becomes failed. Returns how
        many steps were forgotten. :class:`RunHeldError` while a live attempt holds it."""
        return self._store._conn().run_reset(id, from_step)

    def forget(self, id: str) -> bool:
        """Delete run `id` and its steps (the id starts afresh); False if there was none."""
        return self._store._conn().run_forget(id)

    def prune(self, older_than: Duration) -> int:
        """Delete the runs finished more than `older_than` ago, with their steps; how many."""
        return self._store._conn().runs_prune(older_than)


def step_decorator(store: Store, version: Optional[str], name: Optional[str]) -> Callable[[F], F]:
    """What :meth:`Store.step` returns: inside a ``with store.run(...)`` block of `store`, a
    call of the function is a step named after it; elsewhere (inside another step's function
    too), a plain call."""

    def wrap(fn: F) -> F:
        step_name = name or getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
        if not isinstance(step_name, str):
            raise TypeError(f"cannot name a step after {fn!r}; pass name=")
        step_name = step_name.replace("<locals>.", "").replace("#", "_")

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            run = _current.get()
            if run is None or run._store is not store:
                return fn(*args, **kwargs)
            return run.step(step_name, fn, *args, version=version, **kwargs)

        return cast(F, call)

    return wrap
