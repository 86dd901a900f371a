"""The threads an :class:`AsyncStore` does its SQLite (or PostgreSQL) work on.

The event loop never waits for the database: every call is handed to a thread of the store's
own (never the loop's default executor, which the application may size or fill), and its
result comes back through a future of the caller's loop.

Two kinds of threads, each with its own connection (the sync :class:`Store` keeps one per
thread):

- **workers**, shared by the store's autocommit calls. Calls queue in one deque; an idle
  worker takes a batch of them, runs them back to back and hands all their results to the
  loop in one ``call_soon_threadsafe``: a thousand coroutines that each ``await cache.get(k)``
  cost one wake-up of the loop per batch, not one per call (where aiosqlite pays a thread
  hop and a loop wake-up each).
- **lanes**, leased by one user at a time and running its calls in order: a transaction
  (``BEGIN`` ... ``COMMIT`` on one connection, in call order), or a wait that blocks in the
  library (a claim waiting for work) and is stopped through a flag when its task is
  cancelled. Idle lanes are kept for reuse, their connections open.

Bursts cost little more than the sync loop: the calls made through a :class:`Group` (a cache
get or set outside transactions) during one step of the loop are collected, consecutive calls of
one group in one :class:`_Run`, and handed to the workers at the end of that step rather than
at once (a worker woken at the first call would take the interpreter lock from the loop at every
call it runs while the loop is still making the rest). One worker runs a whole run in one call
of the extension (one release of the interpreter lock for the lot; the sets committed together,
each still all or nothing) and hands its results back in one callback, which completes the
futures with the least Python per call.

A call whose task was cancelled before its result came back still ran: the result of a call
that took something (a claim, a lock) is handed to its ``cleanup`` on a worker, which gives it
back, so a cancelled task leaves nothing held.
"""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import threading
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, TypeVar, Union

T = TypeVar("T")

#: Looked up once: a burst of gets calls it once per get.
_running_loop = asyncio.get_running_loop

# (future, or None when nobody waits for the result; function, arguments, cleanup of an
# orphaned result)
_Call = Tuple[Optional["asyncio.Future[Any]"], Callable[..., Any], Tuple[Any, ...], Optional[Callable[[Any], Any]]]
# (future, succeeded, result or exception, cleanup)
_Done = Tuple["asyncio.Future[Any]", bool, Any, Optional[Callable[[Any], Any]]]

#: Calls (outside groups) one worker takes at once: enough to amortise the loop's wake-up, few
#: enough that the other worker shares a burst.
_BATCH = 256

#: Idle lanes kept for reuse (each keeps a connection open).
_KEEP_LANES = 8


def in_thread(fn: Callable[[], T]) -> "asyncio.Future[T]":
    """`fn()` on a thread of its own (not the loop's default executor), awaited by the loop."""
    cf: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            cf.set_result(fn())
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
            cf.set_exception(e)

    threading.Thread(target=run, name="cairn-async-open", daemon=True).start()
    return asyncio.wrap_future(cf)


async def finish(fut: "asyncio.Future[T]") -> T:
    """Await `fut` to its end even if this task is cancelled meanwhile (the work it stands for
    cannot be taken back: a COMMIT, a ROLLBACK, a release); a cancellation is raised after."""
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(fut)
            break
        except asyncio.CancelledError:
            if fut.cancelled():
                raise
            if fut.done():
                result = fut.result()
                cancelled = True
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


class RunnerClosed(RuntimeError):
    """Raised into calls made after the store was closed."""


class Group:
    """A call that a worker may run together with the consecutive calls of the same `key`:
    ``one(*args)`` alone (what the call is), ``many([args, ...])`` for several, giving one
    value each: the call's result, the exception it raised (no result of a group's call is an
    exception), or `missing`, which stands for the call's last argument (a get's default).
    When ``many`` raises, each call runs alone. A group's call takes nothing that a task
    cancelled meanwhile would have to give back (no ``cleanup``). A worker takes every consecutive call of the
    group made in one step of the loop at once: for writes, one transaction rather than two
    workers taking turns at the write lock; for reads, one release of the interpreter lock,
    while the loop, with nothing to do, does not contend for it. One worker runs the lot: two,
    each reading half, read no faster on a 2-core machine (the conversions to Python objects
    hold the interpreter lock) and add a wake-up of the second, which on a busy machine costs
    more than its half of the reads."""

    __slots__ = ("key", "one", "many", "missing")

    def __init__(
        self,
        key: Tuple[Any, ...],
        one: Callable[..., Any],
        many: Callable[[List[Tuple[Any, ...]]], List[Any]],
        missing: Any = None,
    ) -> None:
        self.key = key
        self.one = one
        self.many = many
        self.missing = missing if missing is not None else _NEVER

    def __call__(self, *args: Any) -> Any:
        return self.one(*args)


#: What ``many`` never returns (the `missing` of a group whose calls have no default).
_NEVER = object()


class _Run:
    """Consecutive calls of one :class:`Group` made in one step of `loop`: one item of the
    workers' queue, run by one worker in one call of ``many``. Each call is its future and its
    arguments, in two lists (no tuple per call: a thousand gathered gets make enough garbage
    as it is)."""

    __slots__ = ("group", "loop", "futs", "args")

    def __init__(self, group: Group, loop: asyncio.AbstractEventLoop) -> None:
        self.group = group
        self.loop = loop
        self.futs: List["asyncio.Future[Any]"] = []
        self.args: List[Tuple[Any, ...]] = []


def _run_group(run: _Run, runner: Runner) -> None:
    """Run `run` on this thread (in one call of ``many`` when it holds several calls) and hand
    its results to its loop in one callback."""
    group, futs, args = run.group, run.futs, run.args
    for f in futs:
        if f.cancelled():
            # A call whose task stopped waiting before it ran never happens.
            live = [i for i, f in enumerate(futs) if not f.cancelled()]
            futs, args = [futs[i] for i in live], [args[i] for i in live]
            break
    if len(futs) > 1:
        try:
            values: Optional[List[Any]] = group.many(args)
        except Exception:  # noqa: BLE001 - each call alone then raises its own error
            values = None
        if values is not None and len(values) == len(futs):
            try:
                run.loop.call_soon_threadsafe(_settle_run, futs, args, values, group.missing)
            except RuntimeError:
                pass  # the loop is closed: nobody awaits these any more (and a get or set holds nothing)
            return
    _run_batch([(f, group, a, None) for f, a in zip(futs, args)], runner)


def _settle_run(futs: List["asyncio.Future[Any]"], args: List[Tuple[Any, ...]], values: List[Any], missing: Any) -> None:
    """On the loop: complete the future of each call of a run with its value (see
    :class:`Group`), unless its task stopped waiting meanwhile."""
    for fut, a, v in zip(futs, args, values):
        if fut.done():  # cancelled meanwhile
            pass
        elif v is missing:
            fut.set_result(a[-1])
        elif isinstance(v, BaseException):
            fut.set_exception(v)
        else:
            fut.set_result(v)


def _run_batch(batch: List[_Call], runner: Runner) -> None:
    """Run `batch` on this thread, one call after the other, and hand the results to their
    loops, one wake-up each."""
    by_loop: Dict[asyncio.AbstractEventLoop, List[_Done]] = {}
    for fut, fn, args, cleanup in batch:
        _run_one(by_loop, fut, fn, args, cleanup)
    _hand_over(by_loop, runner)


def _run_one(
    by_loop: Dict[asyncio.AbstractEventLoop, List[_Done]],
    fut: Optional["asyncio.Future[Any]"],
    fn: Callable[..., Any],
    args: Tuple[Any, ...],
    cleanup: Optional[Callable[[Any], Any]],
) -> None:
    if fut is None:
        _quietly(fn, *args)
        return
    if fut.cancelled():
        return  # its task stopped waiting before it ran: it never happens
    try:
        done: _Done = (fut, True, fn(*args), cleanup)
    except BaseException as e:  # noqa: BLE001 - handed to the awaiting task as it is
        done = (fut, False, e, cleanup)
    by_loop.setdefault(fut.get_loop(), []).append(done)


def _hand_over(by_loop: Dict[asyncio.AbstractEventLoop, List[_Done]], runner: Runner) -> None:
    """The results to their loops, one wake-up each."""
    for loop, results in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, results, runner)
        except RuntimeError:
            # The loop is closed: nobody awaits these any more. Give back what was taken.
            for _, ok, value, cleanup in results:
                if ok and cleanup is not None:
                    _quietly(cleanup, value)


def _settle(results: List[_Done], runner: Runner) -> None:
    """On the loop: complete each future, or clean up after a task that stopped waiting."""
    for fut, ok, value, cleanup in results:
        if fut.done():  # cancelled meanwhile
            if ok and cleanup is not None:
                runner.post(cleanup, (value,))
        elif ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - best effort: a lease or TTL frees it anyway
        pass


class Runner:
    """The workers and lanes of one :class:`AsyncStore`."""

    def __init__(self, workers: int) -> None:
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._q: Deque[Union[_Call, _Run]] = deque()
        self._sleeping = 0
        self._workers: List[threading.Thread] = []
        self._max_workers = workers
        self._closed = False
        self._idle_lanes: List[Lane] = []
        self._lanes: "set[Lane]" = set()
        # Group calls made during the current step of each loop, in runs, handed to the
        # workers at its end (`_flush`).
        self._pending: Dict[asyncio.AbstractEventLoop, List[_Run]] = {}

    def submit(
        self, fn: Callable[..., Any], args: Tuple[Any, ...] = (), cleanup: Optional[Callable[[Any], Any]] = None
    ) -> "asyncio.Future[Any]":
        """`fn(*args)` on a worker; its result through a future of the running loop. A
        :class:`Group` call is handed over at the end of the loop's current step."""
        if type(fn) is Group and cleanup is None:
            return self.submit_group(fn, args)
        fut: asyncio.Future[Any] = _running_loop().create_future()
        with self._lock:
            if self._closed:
                raise RunnerClosed("the store is closed")
            self._q.append((fut, fn, args, cleanup))
            self._wake()
        return fut

    def submit_group(self, group: Group, args: Tuple[Any, ...]) -> "asyncio.Future[Any]":
        """:meth:`submit` of a :class:`Group` call (which gives nothing back to clean up): the
        path of a burst of cache gets, kept short (a thousand gathered gets spent as long here
        as in the database)."""
        loop = _running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        with self._lock:  # the bare lock under the condition: its own `with` is Python code
            if self._closed:
                raise RunnerClosed("the store is closed")
            pending = self._pending.get(loop)
            if pending is None:
                pending = self._pending[loop] = []
                loop.call_soon(self._flush, loop)
                run = None
            else:
                run = pending[-1]
                if run.group is not group and run.group.key != group.key:
                    run = None
            if run is None:
                run = _Run(group, loop)
                pending.append(run)
            run.futs.append(fut)
            run.args.append(args)
        return fut

    def _wake(self) -> None:
        """A worker for the queue (the lock held)."""
        if self._sleeping:
            self._cv.notify()
        elif len(self._workers) < self._max_workers:
            self._start_worker()

    def post(self, fn: Callable[..., Any], args: Tuple[Any, ...] = ()) -> None:
        """`fn(*args)` on a worker, its result and any error dropped (what a cancelled task
        leaves to give back). After close, on a thread of its own: it must still happen."""
        with self._cv:
            if not self._closed:
                self._q.append((None, fn, args, None))
                self._wake()
                return
        threading.Thread(target=_quietly, args=(fn, *args), daemon=True).start()

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """On `loop`: its group calls of the step that ended, to the workers."""
        with self._cv:
            pending = self._pending.pop(loop, None)
            if pending:
                self._q.extend(pending)
                self._wake()

    def _start_worker(self) -> None:
        t = threading.Thread(target=self._work, name=f"cairn-async-{len(self._workers)}", daemon=True)
        self._workers.append(t)
        t.start()

    def _work(self) -> None:
        cv, q = self._cv, self._q
        while True:
            with cv:
                while not q:
                    if self._closed:
                        return
                    self._sleeping += 1
                    cv.wait()
                    self._sleeping -= 1
                run: Optional[_Run] = None
                batch: List[_Call] = []
                if type(q[0]) is _Run:
                    run = q.popleft()  # type: ignore[assignment]
                else:
                    while q and len(batch) < _BATCH and type(q[0]) is not _Run:
                        batch.append(q.popleft())  # type: ignore[arg-type]
                if q and self._sleeping:
                    cv.notify()
            if run is not None:
                _run_group(run, self)
            else:
                _run_batch(batch, self)

    def lane(self) -> Lane:
        """A thread of the caller's own until :meth:`Lane.release`."""
        with self._cv:
            if self._closed:
                raise RunnerClosed("the store is closed")
            if self._idle_lanes:
                return self._idle_lanes.pop()
            lane = Lane(self)
            self._lanes.add(lane)
        lane.start()
        return lane

    def _lane_released(self, lane: Lane) -> bool:
        """True if `lane` is kept for reuse; False if it should end."""
        with self._cv:
            if self._closed or len(self._idle_lanes) >= _KEEP_LANES:
                self._lanes.discard(lane)
                return False
            self._idle_lanes.append(lane)
            return True

    def close(self) -> None:
        """Let every thread finish what it was given, then end. Idempotent."""
        with self._cv:
            # Calls made before the close still run.
            for pending in self._pending.values():
                self._q.extend(pending)
            self._pending.clear()
            if self._q and not self._workers:
                self._start_worker()
            self._closed = True
            self._cv.notify_all()
            lanes = list(self._lanes)
            self._idle_lanes.clear()
        for lane in lanes:
            lane._end()

    def join(self, timeout: Optional[float] = None) -> None:
        for t in list(self._workers):
            t.join(timeout)


class Lane:
    """One thread running its user's calls in order (a transaction, a blocking wait)."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._cv = threading.Condition(threading.Lock())
        self._q: Deque[Optional[_Call]] = deque()
        self._ended = False
        self._thread = threading.Thread(target=self._work, name="cairn-async-lane", daemon=True)

    def start(self) -> None:
        # Thread.start() waits until the new thread runs: on a busy 2-core machine, up to
        # milliseconds of the loop's time per new lane (50 transactions opening at once
        # stalled the loop 11 ms). A bare thread starts it instead and the loop goes on at
        # once; calls submitted meanwhile wait in the lane's queue.
        _thread.start_new_thread(self._start, ())

    def _start(self) -> None:
        try:
            self._thread.start()
        except BaseException as e:  # noqa: BLE001 - no thread: fail what waits for the lane
            with self._cv:
                self._ended = True
                calls = [c for c in self._q if c is not None]
                self._q.clear()
            by_loop: Dict[asyncio.AbstractEventLoop, List[_Done]] = {}
            for fut, _, _, cleanup in calls:
                if fut is not None:
                    by_loop.setdefault(fut.get_loop(), []).append((fut, False, e, cleanup))
            _hand_over(by_loop, self._runner)

    def submit(
        self, fn: Callable[..., Any], args: Tuple[Any, ...] = (), cleanup: Optional[Callable[[Any], Any]] = None
    ) -> "asyncio.Future[Any]":
        """`fn(*args)` on this lane, after every call submitted before it."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with self._cv:
            if self._ended:
                raise RunnerClosed("the store is closed")
            self._q.append((fut, fn, args, cleanup))
            self._cv.notify()
        return fut

    def post(self, fn: Callable[..., Any], args: Tuple[Any, ...] = ()) -> None:
        """`fn(*args)` on this lane after every call submitted before it, its result and any
        error dropped: what a cancelled task leaves to be undone (a rollback)."""
        with self._cv:
            self._q.append((None, fn, args, None))
            self._cv.notify()

    def release(self) -> None:
        """Give the lane back once the calls submitted so far have run."""
        with self._cv:
            self._q.append(None)
            self._cv.notify()

    def _end(self) -> None:
        with self._cv:
            self._ended = True
            self._cv.notify()

    def _work(self) -> None:
        cv, q = self._cv, self._q
        while True:
            with cv:
                while not q:
                    if self._ended:
                        return
                    cv.wait()
                batch: List[_Call] = []
                released = False
                while q:
                    item = q.popleft()
                    if item is None:
                        released = True
                        break
                    batch.append(item)
            if batch:
                _run_batch(batch, self._runner)
            if released and not self._runner._lane_released(self):
                return
