"""AsyncStore cron jobs: the async twins of test_jobs.py, a coroutine function run on the loop
once per slot, a cancelled run, and the same jobs as the sync store and the CLI."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import threading
from typing import List

import pytest

import cairn
from cairn.testing import ManualClock

HOUR = 3600.0
DEADLINE = 60.0


async def test_a_job_runs_once_per_slot_and_again_in_the_next(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    job = any_aclocked.job("nightly", every="1h")
    slots: List[cairn.Slot] = []
    loop_thread = threading.current_thread()

    async def record(slot: cairn.Slot) -> None:
        assert threading.current_thread() is loop_thread, "the job's coroutine runs on the loop"
        await asyncio.sleep(0)
        slots.append(slot)

    assert await job.run(record) is True
    assert await job.run(record) is False, "the slot is done"
    assert len(slots) == 1 and slots[0] == await job.current_slot()
    assert slots[0].end - slots[0].start == datetime.timedelta(hours=1)
    clock.advance(HOUR)
    assert await job.run(slots.append) is True, "a plain function runs too"
    assert [s.start for s in slots] == [slots[0].start, slots[0].end]


async def test_a_raising_run_is_recorded_failed_with_its_traceback_then_reraised_and_retried(
    any_astore: cairn.AsyncStore,
) -> None:
    job = any_astore.job("flaky", every=3600)

    async def boom(slot: cairn.Slot) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        await job.run(boom)
    [failed] = await job.history()
    assert (failed.outcome, failed.status) == ("failed", 1)
    assert failed.stderr_tail is not None and "RuntimeError: disk on fire" in failed.stderr_tail
    assert failed.pid == os.getpid() and failed.finished is not None and failed.duration is not None

    async def fine(slot: cairn.Slot) -> None:
        pass

    assert await job.run(fine) is True, "a failed slot stays due"
    assert [r.outcome for r in await job.history()] == ["succeeded", "failed"]


async def test_without_retry_a_failed_slot_is_done(any_astore: cairn.AsyncStore) -> None:
    job = any_astore.job("once", every="1d", retry=False)

    async def bad(slot: cairn.Slot) -> None:
        int("x")

    with pytest.raises(ValueError):
        await job.run(bad)
    assert await job.run(bad) is False


async def test_a_cancelled_run_is_recorded_like_ctrl_c_and_the_slot_stays_due(any_astore: cairn.AsyncStore) -> None:
    job = any_astore.job("long", every="1d")
    started = asyncio.Event()

    async def forever(slot: cairn.Slot) -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(job.run(forever))
    await asyncio.wait_for(started.wait(), DEADLINE)
    [info] = await any_astore.jobs()
    assert info.running, "held while its coroutine runs"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [run] = await job.history()
    assert (run.outcome, run.status) == ("failed", 130)
    [info] = await any_astore.jobs()
    assert not info.running, "nothing left held"
    ran: List[cairn.Slot] = []
    assert await job.run(ran.append) is True and len(ran) == 1


async def test_catch_up_all_runs_the_missed_slots_oldest_first_at_most_max(
    any_aclocked: cairn.AsyncStore, clock: ManualClock
) -> None:
    job = any_aclocked.job("hourly", every="1h", catch_up="all", max_catch_up=2)
    starts: List[datetime.datetime] = []

    async def note(s: cairn.Slot) -> None:
        starts.append(s.start)

    assert await job.run(note)
    clock.advance(5 * HOUR)
    assert await job.run(note)
    assert len(starts) == 3
    assert starts[2] - starts[1] == datetime.timedelta(hours=1), "the newest two missed slots"
    assert starts[2] == (await job.current_slot()).start


async def test_history_check_and_jobs_describe_the_runs(any_aclocked: cairn.AsyncStore, clock: ManualClock) -> None:
    job = any_aclocked.job("report", cron="0 3 * * *", tz="Europe/Berlin", keep=2)
    assert await job.check("1d") is False, "never succeeded"
    assert "never" in (await job.health("1d")).message
    for _ in range(3):
        assert await job.run(lambda s: None)
        clock.advance(24 * HOUR)
    assert len(await job.history()) == 2 and len(await job.history(limit=1)) == 1
    assert await job.check("2d") is True
    clock.advance(10 * 24 * HOUR)
    assert await job.check("2d") is False
    [info] = await any_aclocked.jobs()
    assert (info.name, info.succeeded, info.failed, info.running) == ("report", 3, 0, False)
    assert info.schedule.startswith("cron 0 3 * * *")


async def test_the_decorator_runs_the_coroutine_function_once_per_slot(any_astore: cairn.AsyncStore) -> None:
    calls: List[cairn.Slot] = []

    @any_astore.job("decorated", every="1h")
    async def nightly(slot: cairn.Slot) -> None:
        calls.append(slot)

    assert await nightly() is True
    assert await nightly() is False
    assert len(calls) == 1 and nightly.__name__ == "nightly"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"every": "1h", "cron": "0 3 * * *"},
        {"every": "1 fortnight"},
        {"every": 0},
        {"cron": "61 * * * *"},
        {"cron": "0 3 * * *", "tz": "Mars/Olympus"},
        {"every": "1h", "catch_up": "some"},
        {"every": "1h", "keep": 0},
        {"every": "1h", "max_catch_up": 0},
    ],
)
async def test_bad_input_is_refused_when_the_job_is_made_and_records_nothing(
    any_astore: cairn.AsyncStore, kwargs: dict  # type: ignore[type-arg]
) -> None:
    with pytest.raises(cairn.InvalidInputError):
        any_astore.job("bad", **kwargs)
    assert await any_astore.jobs() == []
    with pytest.raises(cairn.InvalidInputError):
        any_astore.job("", every="1h")


async def test_a_job_running_in_a_sync_store_is_not_run_again_and_the_cli_sees_async_runs(
    cli: str, location: str, any_astore: cairn.AsyncStore
) -> None:
    with cairn.Store(location) as sync:
        seen: List[bool] = []

        def in_sync(slot: cairn.Slot) -> None:
            # While the sync store runs it, the async store finds it running (from a thread:
            # this one is not the loop's).
            async def check() -> bool:
                async with cairn.AsyncStore(location) as other:
                    return await other.job("shared", every="1h").run(lambda s: None)

            seen.append(asyncio.run(check()))

        await asyncio.to_thread(sync.job("shared", every="1h").run, in_sync)
        assert seen == [False]
    with pytest.raises(ZeroDivisionError):
        await any_astore.job("div", every="1d").run(lambda s: print(1 / 0))
    out = await asyncio.to_thread(
        subprocess.run,
        [cli, "--db", location, "--json", "job", "history", "div"],
        capture_output=True,
        timeout=DEADLINE,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    [run] = [json.loads(line) for line in out.stdout.splitlines()]
    assert (run["outcome"], run["status"]) == ("failed", 1)
    assert "ZeroDivisionError" in run["stderr_tail"]
