"""Cron jobs of an :class:`AsyncStore`: a coroutine function run once per slot."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import threading
from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, Literal, Optional, Tuple

from . import _aio_runner, _cairn
from ._aio_runner import RunnerClosed
from ._job import Job, JobHealth, JobRun, Slot, _run, _runs, _slot, _status_of, _tail, _time
from ._types import Duration
from .errors import ClosedError

if TYPE_CHECKING:
    from ._aio_store import AsyncStore
    from ._store import Store

#: A private in-memory store on which a job's schedule and policy are checked when the job is
#: made (the AsyncStore may not be open yet; the check reads no table).
#: (process id, store): a forked child makes its own (an in-memory store stays in its process).
_checker: Optional[Tuple[int, Store]] = None
_checker_lock = threading.Lock()


def _check(name: str, **kwargs: Any) -> Tuple[Any, ...]:
    """The arguments of a job's calls, refused now if bad (as :class:`Job` refuses them)."""
    global _checker
    with _checker_lock:
        if _checker is None or _checker[0] != os.getpid():
            from ._store import Store

            _checker = (os.getpid(), Store(":memory:"))
        return Job(_checker[1], name, **kwargs)._args


async def _invoke(fn: Callable[[Slot], Any], slot: Slot) -> None:
    """On the loop: the job's function, awaited if it gives an awaitable."""
    result = fn(slot)
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        await result
    elif hasattr(result, "__await__"):
        await result


class AsyncJob:
    """A job of an :class:`AsyncStore`, from :meth:`AsyncStore.job`: :class:`Job`'s semantics
    (at most once per slot of its schedule, across processes and hosts; a run that raises is
    recorded failed with its traceback's end, then re-raised, the slot staying due unless
    ``retry=False``) for a coroutine function (or a plain one), run on the event loop.

    The library's side of a run (the job's lock, the run's records, its renewal) is on a thread
    of the store's, which waits for the function's task on the loop. Cancelling the task that
    awaits :meth:`run` cancels the function; the run is recorded failed with status 130 (as
    Ctrl-C is) and the cancellation propagates. On an in-memory store the function must not
    use the store (its one connection is busy with the run meanwhile): use a file.

    As a decorator, ``@store.job("nightly", every="1d")`` on ``async def nightly(slot)`` makes
    a coroutine function of no arguments that runs it when its slot is due and returns whether
    it ran.

    >>> import asyncio, cairn
    >>> async def main() -> object:
    ...     async with cairn.AsyncStore(":memory:") as store:
    ...         @store.job("report", every="1h")
    ...         async def report(slot: cairn.Slot) -> None:
    ...             pass
    ...         return await report(), await report()
    >>> asyncio.run(main())
    (True, False)
    """

    __slots__ = ("_astore", "_name", "_args")

    def __init__(
        self,
        astore: AsyncStore,
        name: str,
        *,
        every: Optional[Duration] = None,
        cron: Optional[str] = None,
        tz: str = "UTC",
        catch_up: Literal["none", "all"] = "none",
        max_catch_up: int = _cairn.DEFAULT_MAX_CATCH_UP,
        retry: bool = True,
        keep: int = _cairn.DEFAULT_KEEP,
    ) -> None:
        self._astore = astore
        self._name = name
        self._args = _check(
            name, every=every, cron=cron, tz=tz, catch_up=catch_up, max_catch_up=max_catch_up, retry=retry, keep=keep
        )

    @property
    def name(self) -> str:
        """The job's name."""
        return self._name

    async def current_slot(self) -> Slot:
        """The slot of the schedule that holds the present time."""
        return _slot(await self._astore._call(lambda s: s._conn().job_current_slot(self._name, *self._args)))

    async def run(self, fn: Callable[[Slot], Any]) -> bool:
        """Run `fn(slot)` (awaited, on the loop) for each due slot unless another process is
        running the job. True if it ran; an exception from `fn` is recorded as a failed run,
        then re-raised."""
        store = await self._astore._store()
        loop = asyncio.get_running_loop()
        raised: List[BaseException] = []
        running: List[concurrent.futures.Future[None]] = []
        stop = threading.Event()

        def call(start_ms: int, end_ms: int) -> Tuple[int, Optional[str]]:
            """On the lane: the function's run on the loop, waited for."""
            if stop.is_set():
                e: BaseException = asyncio.CancelledError()
                raised.append(e)
                return 130, "CancelledError: the task awaiting the job was cancelled"
            cf = asyncio.run_coroutine_threadsafe(_invoke(fn, Slot(_time(start_ms), _time(end_ms))), loop)
            running.append(cf)
            if stop.is_set():
                cf.cancel()
            try:
                cf.result()
            except BaseException as e:  # noqa: BLE001 - recorded, then re-raised on the loop
                if isinstance(e, (asyncio.CancelledError, concurrent.futures.CancelledError)):
                    raised.append(asyncio.CancelledError())
                    return 130, "CancelledError: the task awaiting the job was cancelled"
                raised.append(e)
                return _status_of(e), _tail(e)
            return 0, None

        def job_run() -> Any:
            return store._conn().job_run(self._name, *self._args, call)

        try:
            lane = self._astore._runner.lane()
        except RunnerClosed:
            raise ClosedError("the store is closed; open a new cairn.AsyncStore to use the file again") from None
        try:
            fut = lane.submit(job_run)
            try:
                outcome = await asyncio.shield(fut)
            except asyncio.CancelledError:
                stop.set()
                for cf in running:
                    cf.cancel()
                await _aio_runner.finish(fut)  # the run's end is recorded; then the cancellation
                raise
        finally:
            lane.release()
        if raised:
            raise raised[0]
        return outcome.kind == "ran" and bool(outcome.runs)

    async def history(self, limit: int = 100) -> List[JobRun]:
        """The job's runs, newest first, at most `limit`."""
        from ._job import _count

        n = _count(limit, "limit")
        return _runs(await self._astore._call(lambda s: s._conn().job_history(self._name, n)))

    async def check(self, max_age: Duration) -> bool:
        """Whether the job's last success ended within `max_age` (see :meth:`Job.check`)."""
        return (await self.health(max_age)).healthy

    async def health(self, max_age: Duration) -> JobHealth:
        """What :meth:`check` looks at (see :meth:`Job.health`)."""
        h = await self._astore._call(lambda s: s._conn().job_check(self._name, max_age))
        return JobHealth(h.healthy, _run(h.last_success), _run(h.last_failure), h.message)

    def __call__(self, fn: Callable[[Slot], Awaitable[Any]]) -> Callable[[], Awaitable[bool]]:
        """Decorate `fn`: the result, called with no arguments and awaited, runs ``fn(slot)``
        if its slot is due and returns whether it ran."""
        if not callable(fn):
            raise TypeError(f"a cairn.AsyncJob decorates a function, not {type(fn).__name__}")

        @functools.wraps(fn)
        async def run() -> bool:
            return await self.run(fn)

        run.job = self  # type: ignore[attr-defined]
        return run

    def __repr__(self) -> str:
        every, cron, tz = self._args[:3]
        schedule = f"every {every}" if cron is None else f"cron {cron!r} {tz}"
        return f"<cairn.AsyncJob {self._name!r} {schedule}>"
