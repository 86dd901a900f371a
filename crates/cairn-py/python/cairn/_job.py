"""Cron jobs: a function run once per slot of a schedule, across processes and hosts."""

from __future__ import annotations

import datetime
import functools
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Literal, Optional, Tuple

from . import _cairn
from ._types import Duration
from .errors import InvalidInputError

if TYPE_CHECKING:
    from ._store import Store

#: How much of a failed run's traceback its history keeps (its end: the exception).
TAIL_CHARS = 4000

#: The exit status a run that raised is recorded with (KeyboardInterrupt: 130, SystemExit: its
#: code when it is an int).
FAILED_STATUS = 1


def _time(millis: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.timezone.utc)


@dataclass(frozen=True)
class Slot:
    """A slot of a job's schedule: the run for it is due from `start` until `end` (UTC)."""

    start: datetime.datetime
    end: datetime.datetime


def _slot(raw: Tuple[int, int]) -> Slot:
    return Slot(_time(raw[0]), _time(raw[1]))


@dataclass(frozen=True)
class JobRun:
    """One run in a job's history (:meth:`Job.history`)."""

    #: Its number: a job's runs are numbered from 1.
    seq: int
    #: The slot it ran.
    slot: Slot
    #: When it started.
    started: datetime.datetime
    #: When it ended, if it recorded its end.
    finished: Optional[datetime.datetime]
    #: ``"running"`` (or died before recording its end), ``"succeeded"`` or ``"failed"``.
    outcome: Literal["running", "succeeded", "failed"]
    #: Its exit status, if it recorded its end (a run that raised: 1, 130 for Ctrl-C).
    status: Optional[int]
    #: How long it took in seconds, if it recorded its end.
    duration: Optional[float]
    #: The host it ran on.
    host: str
    #: The process that ran it.
    pid: int
    #: The end of its standard error (from Python: the traceback's end).
    stderr_tail: Optional[str]


def _run(raw: Optional[_cairn.RawJobRun]) -> Optional[JobRun]:
    if raw is None:
        return None
    return JobRun(
        seq=raw.seq,
        slot=Slot(_time(raw.slot_start_millis), _time(raw.slot_end_millis)),
        started=_time(raw.started_millis),
        finished=None if raw.finished_millis is None else _time(raw.finished_millis),
        outcome=raw.outcome,  # type: ignore[arg-type]
        status=raw.status,
        duration=raw.duration,
        host=raw.host,
        pid=raw.pid,
        stderr_tail=raw.stderr_tail,
    )


def _runs(raws: List[_cairn.RawJobRun]) -> List[JobRun]:
    return [r for r in (_run(x) for x in raws) if r is not None]


@dataclass(frozen=True)
class JobInfo:
    """A job as :meth:`Store.jobs` lists it."""

    name: str
    #: Its schedule as its last run gave it (``every 1h``, ``cron 0 3 * * * UTC``).
    schedule: str
    last_run: Optional[JobRun]
    last_success: Optional[JobRun]
    last_failure: Optional[JobRun]
    #: The slot after the current one (None if its schedule no longer parses).
    next_slot: Optional[Slot]
    #: The start of the newest done slot.
    done_through: Optional[datetime.datetime]
    #: Whether a process holds it now.
    running: bool
    #: Runs that ever succeeded (history is pruned; this count is not).
    succeeded: int
    #: Runs that ever failed.
    failed: int


def info_from(raw: _cairn.RawJobInfo) -> JobInfo:
    return JobInfo(
        name=raw.name,
        schedule=raw.schedule,
        last_run=_run(raw.last_run),
        last_success=_run(raw.last_success),
        last_failure=_run(raw.last_failure),
        next_slot=None if raw.next_slot is None else _slot(raw.next_slot),
        done_through=None if raw.done_through_millis is None else _time(raw.done_through_millis),
        running=raw.running,
        succeeded=raw.succeeded,
        failed=raw.failed,
    )


@dataclass(frozen=True)
class JobHealth:
    """What :meth:`Job.health` found."""

    #: True if the last success ended within the maximum age.
    healthy: bool
    last_success: Optional[JobRun]
    last_failure: Optional[JobRun]
    #: One line saying when it last succeeded and how it last failed.
    message: str

    def __bool__(self) -> bool:
        return self.healthy


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, SystemExit):
        code = exc.code
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return FAILED_STATUS


def _tail(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return text[-TAIL_CHARS:]


def _count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 1 <= value <= 2**32 - 1:
        raise InvalidInputError(f"invalid input: {what} must be at least 1; {value} was given")
    return value


class Job:
    """A job of a store, from :meth:`Store.job`: a function run at most once per slot of its
    schedule (``every="1h"``, or ``cron="0 3 * * *"`` in ``tz``), whichever process or host
    gets there first; the others find the slot done (or the job running) and do nothing.

    :meth:`run` calls the function with the :class:`Slot` it runs for and returns whether it
    ran. A run that raises is recorded as failed (status 1; 130 for ``KeyboardInterrupt``; a
    ``SystemExit``'s int code) with the traceback's end as its ``stderr_tail``, and the
    exception is re-raised; the slot stays due (retried by the next call) unless
    ``retry=False``. The function runs in the calling thread with the interpreter held; the
    waits on the store release it.

    As a decorator, ``@store.job("nightly", every="1d")`` makes a function of no arguments
    that runs the decorated one (given the slot) when its slot is due, and returns whether it
    ran.

    >>> import cairn
    >>> store = cairn.Store(":memory:")
    >>> job = store.job("report", every="1h")
    >>> job.run(lambda slot: print("running for", slot.start.year > 2000))
    running for True
    True
    >>> job.run(lambda slot: print("again"))  # the slot is done
    False
    """

    __slots__ = ("_store", "_name", "_args")

    def __init__(
        self,
        store: Store,
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
        if (every is None) == (cron is None):
            raise InvalidInputError("invalid input: a job needs exactly one of every= and cron=")
        if cron is not None and not isinstance(cron, str):
            raise TypeError(f"cron must be a string like '0 3 * * *', not {type(cron).__name__}")
        if not isinstance(tz, str):
            raise TypeError(f"tz must be an IANA time zone name, not {type(tz).__name__}")
        if catch_up not in ("none", "all"):
            raise InvalidInputError(f"invalid input: invalid catch-up {catch_up!r}: give 'none' or 'all'")
        self._store = store
        self._name = name
        self._args: Tuple[Any, ...] = (
            every,
            cron,
            tz,
            catch_up,
            _count(max_catch_up, "max_catch_up"),
            not retry,
            _count(keep, "keep"),
        )
        self.current_slot()  # a bad schedule is refused here, before anything runs

    @property
    def name(self) -> str:
        """The job's name."""
        return self._name

    def current_slot(self) -> Slot:
        """The slot of the schedule that holds the present time."""
        return _slot(self._store._conn().job_current_slot(self._name, *self._args))

    def run(self, fn: Callable[[Slot], object]) -> bool:
        """Run `fn(slot)` for each due slot (the current one; with ``catch_up="all"``, the
        missed ones too, oldest first) unless another process is running the job. True if it
        ran; an exception from `fn` is recorded as a failed run, then re-raised."""
        raised: List[BaseException] = []

        def call(start_ms: int, end_ms: int) -> Tuple[int, Optional[str]]:
            try:
                fn(Slot(_time(start_ms), _time(end_ms)))
            except BaseException as e:  # recorded, then re-raised below
                raised.append(e)
                return _status_of(e), _tail(e)
            return 0, None

        outcome = self._store._conn().job_run(self._name, *self._args, call)
        if raised:
            raise raised[0]
        return outcome.kind == "ran" and bool(outcome.runs)

    def history(self, limit: int = 100) -> List[JobRun]:
        """The job's runs, newest first, at most `limit`."""
        return _runs(self._store._conn().job_history(self._name, _count(limit, "limit")))

    def check(self, max_age: Duration) -> bool:
        """Whether the job's last success ended within `max_age` (a duration, see
        :func:`cairn.parse_duration`): ``cairn job check``'s answer. :meth:`health` says why."""
        return self.health(max_age).healthy

    def health(self, max_age: Duration) -> JobHealth:
        """What :meth:`check` looks at: whether healthy, the last success and failure, and one
        line saying when it last succeeded and how it last failed (``cairn job check``'s)."""
        h = self._store._conn().job_check(self._name, max_age)
        return JobHealth(h.healthy, _run(h.last_success), _run(h.last_failure), h.message)

    def __call__(self, fn: Callable[[Slot], object]) -> Callable[[], bool]:
        """Decorate `fn`: the result, called with no arguments, runs ``fn(slot)`` if its slot
        is due and returns whether it ran."""
        if not callable(fn):
            raise TypeError(f"a cairn.Job decorates a function, not {type(fn).__name__}")

        @functools.wraps(fn)
        def run() -> bool:
            return self.run(fn)

        run.job = self  # type: ignore[attr-defined]
        return run

    def __repr__(self) -> str:
        every, cron, tz = self._args[:3]
        schedule = f"every {every}" if cron is None else f"cron {cron!r} {tz}"
        return f"<cairn.Job {self._name!r} {schedule}>"
