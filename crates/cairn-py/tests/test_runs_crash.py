"""Durable runs under SIGKILL from Python (issue 24; crates/cairn-testkit/tests/process/crash/runs.rs
is the Rust half). The bug this guards against: a step recorded and then executed again by a
later attempt, a recorded value that is not the one its last execution returned, a `step_tx`
whose writes land twice or without its record, and a holder that lost the run still recording
steps (or finishing the run another attempt holds).

A ``run-steps`` child (tests/child.py) runs 100 steps, each appending its name and an execution
id to a side file (synced) before returning a value naming that execution; every fifth is a
``step_tx`` that bumps a counter and marks a ledger id with its record. The parent SIGKILLs it
at random moments (start-up, mid-step, mid-record) and starts it again until it prints
FINISHED, then checks the side file against the store. ``CAIRN_PY_RUN_KILLS`` kills per engine
(60 by default), ``CAIRN_PY_SEED`` replays a run.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import time
from pathlib import Path
from typing import Dict, List

import pytest

import cairn

from conftest import Child

STEPS = 100


def is_tx_step(i: int) -> bool:
    """The steps that are ``step_tx`` (as child.py's `run_step` decides): every fifth."""
    return i % 5 == 4


def step_name(i: int) -> str:
    return f"s{i:03d}"


def executions(log: Path) -> Dict[str, List[str]]:
    """The side file of a run: each step's executions, in order."""
    by_step: Dict[str, List[str]] = {}
    for line in log.read_text().splitlines():
        name, sep, exec_id = line.partition(" ")
        assert sep and exec_id, f"a torn side-file line {line!r}"
        by_step.setdefault(name, []).append(exec_id)
    return by_step


def returned_values(lines: List[str]) -> Dict[str, List[str]]:
    """The values a child printed its steps returning (``STEP s<i> <value>``)."""
    out: Dict[str, List[str]] = {}
    for line in lines:
        if line.startswith("STEP "):
            name, value = line[len("STEP ") :].split(" ", 1)
            out.setdefault(name, []).append(value)
    return out


def verify(location: str, id: str, log: Path, returned: Dict[str, List[str]]) -> int:
    """Check a finished run against its side file and the values its children saw returned;
    returns how many executions were superseded (killed before their record)."""
    store = cairn.Store(location)
    try:
        if store.journal_mode != "postgres":
            assert store.integrity_check() == ["ok"]
        info = store.runs().get(id)
        assert info is not None
        assert info.state == "finished", info
        assert [s.name for s in info.steps] == [step_name(i) for i in range(STEPS)], info
        assert all(s.state == "done" for s in info.steps), info
        executed = executions(log)
        superseded = 0
        # Joined once finished, the run replays every step: a step it would execute is a failure.
        with store.run(id) as replay:
            assert replay.finished
            for i in range(STEPS):
                name = step_name(i)

                def executed_again(name: str = name) -> str:
                    raise AssertionError(f"{id}: {name} executed in a finished run")

                recorded = replay.step(name, executed_again)
                runs = executed.get(name, [])
                assert runs, f"{id}: {name} recorded but never executed"
                # The record is the last execution's: one after it (a recorded step executed
                # again) or an older one's value would differ.
                assert recorded == f"{name} by {runs[-1]}", f"{id}: {name} executed {runs}"
                superseded += len(runs) - 1
                for seen in returned.get(name, []):
                    assert seen == recorded, f"{id}: {name} returned a value other than its record"
        tx_steps = [i for i in range(STEPS) if is_tx_step(i)]
        assert store.cache("torture").get(id) == len(tx_steps), f"{id}: each step_tx counts once"
        ledger = store.ledger("torture")
        for i in tx_steps:
            assert f"{id}/{step_name(i)}" in ledger, f"{id}: {step_name(i)} not marked"
        return superseded
    finally:
        store.close()


def test_sigkill_at_random_points_of_a_100_step_run_never_executes_a_recorded_step_again_or_applies_a_step_tx_twice(
    location: str, engine: str, tmp_path: Path, children: List[Child]
) -> None:
    kills = int(os.environ.get("CAIRN_PY_RUN_KILLS", "60"))
    seed = os.environ.get("CAIRN_PY_SEED") or str(random.randrange(1 << 32))
    print(f"run torture ({engine}): {kills} kills, CAIRN_PY_SEED={seed}")
    rng = random.Random(seed)
    started = time.monotonic()
    done_kills = mid_step = runs = superseded = 0
    while done_kills < kills:
        runs += 1
        id = f"run-{runs}"
        log = tmp_path / f"{id}.log"
        returned: Dict[str, List[str]] = {}
        without_progress = 0
        while True:
            child = Child("run-steps", location, id, str(log))
            children.append(child)
            lines: List[str] = []
            ended = False
            if rng.randrange(5) == 0:
                # At start-up: importing, opening the store, taking the run.
                time.sleep(rng.randrange(300) / 1000)
            else:
                # After a random number of the attempt's executions (replays go by fast), then
                # a little longer, to land inside what follows.
                executions_wanted = 1 + rng.randrange(25)
                begun = 0
                while begun < executions_wanted:
                    line = child.line()
                    if line is None:
                        ended = True
                        break
                    lines.append(line)
                    begun += line.startswith("BEGIN ")
                time.sleep(rng.randrange(3000) / 1_000_000)
            child.kill()
            # Lines it printed before dying that were not read yet count too.
            if not ended:
                lines += child.all_lines()
            # A killed child's last line may be torn mid-write; every line before it is whole.
            whole = lines if "FINISHED" in lines else lines[:-1]
            for name, values in returned_values(whole).items():
                returned.setdefault(name, []).extend(values)
            if "FINISHED" in lines:
                break
            done_kills += 1
            if lines and lines[-1].startswith("BEGIN "):
                mid_step += 1
            progressed = any(line.startswith("BEGIN ") for line in lines)
            without_progress = 0 if progressed else without_progress + 1
            assert without_progress < 50, f"{id}: 50 attempts in a row executed nothing (CAIRN_PY_SEED={seed})"
        try:
            superseded += verify(location, id, log, returned)
        except AssertionError as e:
            raise AssertionError(f"CAIRN_PY_SEED={seed}: {e}") from e
    print(
        f"run torture ({engine}): {done_kills} kills survived ({mid_step} mid-step) over {runs} runs "
        f"of {STEPS} steps, {superseded} executions killed before their record and run again, "
        f"in {time.monotonic() - started:.1f} s"
    )
    assert mid_step > 0 or done_kills < 20, "no kill landed mid-step: the kill points are off"


def until(child: Child, prefix: str) -> List[str]:
    """`child`'s lines up to the first that starts with `prefix`, which is the last."""
    lines: List[str] = []
    while True:
        line = child.line()
        assert line is not None, f"{child.args} ended before printing {prefix!r}: {child.stderr()}"
        lines.append(line)
        if line.startswith(prefix):
            return lines


def test_a_stopped_holder_whose_run_was_taken_over_gets_lease_lost_for_its_late_steps_and_records_nothing(
    location: str, tmp_path: Path, children: List[Child]
) -> None:
    log = tmp_path / "stale.log"
    id = "stale"
    a = Child("run-stale", location, id, str(log), "10,14")
    children.append(a)
    pid = int(until(a, "HELD ")[-1].split()[1])
    b = Child("run-steps", location, id, str(log), "10")
    children.append(b)
    b.expect("WAITING")
    # Stopped, A's renewal thread stops too and its lease runs out; B takes the run over. A
    # stop that lands inside a renewal's transaction would leave B waiting on the store's
    # lock: then A runs a moment and is stopped again.
    for _ in range(5):
        os.kill(pid, signal.SIGSTOP)
        try:
            ready = b.lines.get(timeout=10)
            break
        except queue.Empty:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.05)
    else:
        pytest.fail(f"B never took the run over from the stopped A: {b.stderr()}")
    assert ready is not None and ready.startswith("READY "), f"B: {ready!r}; {b.stderr()}"
    b_lines = until(b, "PAUSED")
    os.kill(pid, signal.SIGCONT)
    a.send("go")
    a_lines = a.all_lines()
    assert a.wait() == 0, a.stderr()
    assert [line for line in a_lines if line.startswith(("LATE ", "EXIT "))] == [
        "LATE s010 LeaseLostError",
        "LATE s014 LeaseLostError",
        # Ending its block normally, A must not finish the run B holds.
        "EXIT LeaseLostError",
    ], a_lines
    with cairn.Store(location) as store:
        info = store.runs().get(id)
        assert info is not None and info.state == "running" and info.attempts == 2, info
        assert [s.name for s in info.steps] == [step_name(i) for i in range(10)], info
    b.send("go")
    b_lines += b.all_lines()
    assert b.wait() == 0 and b_lines[-1:] == ["FINISHED"], b.stderr()
    # A's step 0 is recorded and replayed to B; A's late executions are in the side file
    # before B's, whose records they are not; the step_tx counter counts B's s014 alone.
    verify(location, id, log, returned_values(b_lines))
    executed = executions(log)
    a_exec = executed["s000"][0]
    for late in ["s010", "s014"]:
        assert executed[late] == [a_exec, executed[late][1]], f"{late}: A's refused execution, then B's"
        assert executed[late][1] != a_exec

