"""Cron jobs from Python (`store.job`): once per slot, retries, catch-up on the manual clock,
history and health, the decorator, bad input, and the same jobs as `cairn job`."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from typing import List

import pytest

import cairn
from cairn.testing import ManualClock

HOUR = 3600.0


def test_a_job_runs_once_per_slot_and_again_in_the_next(any_clocked: cairn.Store, clock: ManualClock) -> None:
    job = any_clocked.job("nightly", every="1h")
    slots: List[cairn.Slot] = []
    assert job.run(slots.append) is True
    assert job.run(slots.append) is False, "the slot is done"
    assert len(slots) == 1 and slots[0] == job.current_slot()
    assert slots[0].end - slots[0].start == datetime.timedelta(hours=1)
    assert slots[0].start.tzinfo is not None
    clock.advance(HOUR)
    assert job.run(slots.append) is True
    assert [s.start for s in slots] == [slots[0].start, slots[0].end]


def test_a_raising_run_is_recorded_failed_with_its_traceback_then_reraised_and_retried(
    any_store: cairn.Store,
) -> None:
    job = any_store.job("flaky", every=3600)

    def boom(slot: cairn.Slot) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        job.run(boom)
    [failed] = job.history()
    assert (failed.outcome, failed.status) == ("failed", 1)
    assert failed.stderr_tail is not None and "RuntimeError: disk on fire" in failed.stderr_tail
    assert failed.pid == os.getpid() and failed.finished is not None and failed.duration is not None
    assert job.run(lambda slot: None) is True, "a failed slot stays due"
    assert [r.outcome for r in job.history()] == ["succeeded", "failed"]


def test_keyboard_interrupt_is_recorded_with_status_130_and_reraised(any_store: cairn.Store) -> None:
    job = any_store.job("ctrl-c", every="1d")

    def interrupted(slot: cairn.Slot) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        job.run(interrupted)
    assert job.history()[0].status == 130


def test_without_retry_a_failed_slot_is_done(any_store: cairn.Store) -> None:
    job = any_store.job("once", every="1d", retry=False)
    with pytest.raises(ValueError):
        job.run(lambda slot: int("x"))
    assert job.run(lambda slot: None) is False


def test_catch_up_all_runs_the_missed_slots_oldest_first_at_most_max(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    job = any_clocked.job("hourly", every="1h", catch_up="all", max_catch_up=2)
    starts: List[datetime.datetime] = []
    assert job.run(lambda s: starts.append(s.start))
    clock.advance(5 * HOUR)
    assert job.run(lambda s: starts.append(s.start))
    assert len(starts) == 3
    assert starts[2] - starts[1] == datetime.timedelta(hours=1), "the newest two missed slots"
    assert starts[2] == job.current_slot().start
    plain = any_clocked.job("plain", every="1h")
    assert plain.run(lambda s: None)
    clock.advance(5 * HOUR)
    ran: List[cairn.Slot] = []
    assert plain.run(ran.append) and ran == [plain.current_slot()]


def test_history_check_and_jobs_describe_the_runs(any_clocked: cairn.Store, clock: ManualClock) -> None:
    job = any_clocked.job("report", cron="0 3 * * *", tz="Europe/Berlin", keep=2)
    assert job.check("1d") is False, "never succeeded"
    assert "never" in job.health("1d").message
    for _ in range(3):
        assert job.run(lambda s: None)
        clock.advance(24 * HOUR)
    assert len(job.history()) == 2 and len(job.history(limit=1)) == 1
    assert job.check("2d") is True
    health = job.health("2d")
    assert health.healthy and health.last_success is not None and health.message
    clock.advance(10 * 24 * HOUR)
    assert job.check("2d") is False and not job.health("2d").healthy
    [info] = any_clocked.jobs()
    assert (info.name, info.succeeded, info.failed, info.running) == ("report", 3, 0, False)
    assert info.schedule.startswith("cron 0 3 * * *")
    assert info.last_run == info.last_success and info.last_failure is None
    assert info.last_run is not None and info.last_run.slot.start.astimezone(
        datetime.timezone(datetime.timedelta(hours=1))
    ).hour in (3, 4)


def test_the_decorator_runs_the_function_once_per_slot(any_store: cairn.Store) -> None:
    calls: List[cairn.Slot] = []

    @any_store.job("decorated", every="1h")
    def nightly(slot: cairn.Slot) -> None:
        calls.append(slot)

    assert nightly() is True
    assert nightly() is False
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
def test_bad_input_is_refused_and_records_nothing(any_store: cairn.Store, kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(cairn.InvalidInputError):
        any_store.job("bad", **kwargs)
    assert any_store.jobs() == []
    with pytest.raises(cairn.InvalidInputError):
        any_store.job("", every="1h")


def test_the_cli_sees_a_run_made_from_python_and_python_one_made_by_the_cli(
    cli: str, any_store: cairn.Store, location: str
) -> None:
    with pytest.raises(ZeroDivisionError):
        any_store.job("shared", every="1d").run(lambda s: print(1 / 0))
    out = subprocess.run(
        [cli, "--db", location, "--json", "job", "history", "shared"], capture_output=True, timeout=60, text=True
    )
    assert out.returncode == 0, out.stderr
    [run] = [json.loads(line) for line in out.stdout.splitlines()]
    assert (run["outcome"], run["status"]) == ("failed", 1)
    assert "ZeroDivisionError" in run["stderr_tail"]
    ran = subprocess.run(
        [cli, "--db", location, "job", "run", "shared", "--every", "1d", "--", "true"], capture_output=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert any_store.job("shared", every="1d").run(lambda s: None) is False, "the CLI did the slot"
    assert [r.outcome for r in any_store.job("shared", every="1d").history()] == ["succeeded", "failed"]


def test_a_job_running_in_another_store_is_not_run_again(any_store: cairn.Store, location: str) -> None:
    other = cairn.Store(location)
    seen: List[bool] = []
    try:
        job = any_store.job("long", every="1h")
        assert job.run(lambda slot: seen.append(other.job("long", every="1h").run(lambda s: None)))
        assert seen == [False], "held by the first store while its function runs"
        assert [info.running for info in other.jobs()] == [False]
    finally:
        other.close()


def test_processes_started_at_once_run_the_slot_once(any_store: cairn.Store, location: str) -> None:
    code = (
        "import sys, cairn\n"
        "store = cairn.Store(sys.argv[1])\n"
        "print(store.job('race', every='1d').run(lambda slot: None))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, location], stdout=subprocess.PIPE, text=True) for _ in range(6)
    ]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(outs) == ["False"] * 5 + ["True"]
    assert len(any_store.job("race", every="1d").history()) == 1
