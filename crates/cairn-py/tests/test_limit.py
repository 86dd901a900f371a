"""Rate limits from Python: store.limiter(name, rate, burst=), with, acquire, try_acquire, @lim."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import cairn
from cairn.testing import ManualClock


def test_a_burst_is_taken_then_refused_until_the_next_slot(any_clocked: cairn.Store, clock: ManualClock) -> None:
    api = any_clocked.limiter("api", "10/s", burst=3)
    assert [api.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.099)
    assert not api.try_acquire()
    clock.advance(0.001)
    assert api.try_acquire()
    assert not api.try_acquire()


def test_acquire_waits_exactly_the_retry_after_or_gives_up_at_once(
    any_clocked: cairn.Store, clock: ManualClock
) -> None:
    api = any_clocked.limiter("api", "4/s")
    assert api.acquire()
    before = clock.now()
    assert api.acquire(timeout=0.2) is False, "the next slot is 250ms away"
    assert clock.now() == before, "no wait in vain"
    assert api.acquire(timeout="250ms") is True
    assert clock.now() == pytest.approx(before + 0.25)
    with api:
        pass
    assert clock.now() == pytest.approx(before + 0.5), "with waits for the next slot"


def test_a_decorated_function_waits_for_a_slot_per_call(clocked: cairn.Store, clock: ManualClock) -> None:
    calls = []

    @clocked.limiter("api", "2/s")
    def call(n: int) -> int:
        calls.append(clock.now())
        return n * 2

    assert [call(i) for i in range(3)] == [0, 2, 4]
    assert [round(t - calls[0], 3) for t in calls] == [0.0, 0.5, 1.0]
    assert call.__name__ == "call"


def test_a_coroutine_function_is_refused_by_the_decorator(store: cairn.Store) -> None:
    async def fetch() -> None:
        pass

    with pytest.raises(TypeError, match="coroutine function 'fetch'"):
        store.limiter("api", "1/s")(fetch)


@pytest.mark.parametrize(
    "rate, says",
    [("0/s", "lets nothing through"), ("-1/s", "negative"), ("10/0s", "no period"), ("fast", "no '/'"),
     ("1/fortnight", "not a period"), ("1.5/s", "not a whole number")],
)
def test_bad_rates_are_refused_when_the_limiter_is_made(store: cairn.Store, rate: str, says: str) -> None:
    with pytest.raises(cairn.InvalidInputError, match=says):
        store.limiter("api", rate)
    assert store.limiter("api", "1/h", burst=2).try_acquire(), "nothing was written"


def test_bad_bursts_and_names_are_refused(store: cairn.Store) -> None:
    for burst in (0, -1, cairn._cairn.MAX_BURST + 1):
        with pytest.raises(cairn.InvalidInputError, match="burst is 1 to"):
            store.limiter("api", "1/s", burst=burst)
    with pytest.raises(TypeError, match="burst must be an int"):
        store.limiter("api", "1/s", burst=True)
    with pytest.raises(TypeError, match="rate must be text"):
        store.limiter("api", 10)  # type: ignore[arg-type]
    with pytest.raises(cairn.InvalidInputError, match="must not be empty"):
        store.limiter("", "1/s")


def test_processes_sharing_a_file_share_the_limit(path: str) -> None:
    a, b = cairn.Store(path), cairn.Store(path)
    assert a.limiter("api", "1/h").try_acquire()
    assert not b.limiter("api", "1/h").try_acquire()
    assert b.limiter("other", "1/h").try_acquire()


def test_the_bench_harness_calls_keep_working(path: str) -> None:
    """bench/compare/queues.py: ``limiter(name, "N/Ps", burst=)``, ``acquire()``, ``try_acquire()``."""
    lim = cairn.Store(path).limiter("api", f"{10**9}/{1}s", burst=1)
    assert lim.acquire() and lim.try_acquire()


def test_other_threads_run_while_one_waits(store: cairn.Store) -> None:
    slow = store.limiter("api", "1/2s")
    assert slow.try_acquire()
    ticks = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.01)

    t = threading.Thread(target=tick)
    t.start()
    try:
        assert slow.acquire(timeout=5)
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 10, "the interpreter was free while waiting"


def test_ctrl_c_interrupts_a_wait(path: str) -> None:
    cairn.Store(path).limiter("api", "1/h").try_acquire()
    script = (
        "import sys, cairn\n"
        "lim = cairn.Store(sys.argv[1]).limiter('api', '1/h')\n"
        "print('waiting', flush=True)\n"
        "try:\n"
        "    lim.acquire()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, path], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "waiting"
    time.sleep(0.2)  # into the wait
    os.kill(child.pid, signal.SIGINT)
    out, _ = child.communicate(timeout=60)
    assert out.strip() == "interrupted"


def test_a_bad_timeout_is_refused_naming_the_limiter(store: cairn.Store) -> None:
    lim = store.limiter("api", "1/s")
    with pytest.raises(cairn.InvalidInputError, match="a limiter's timeout of -1.0 seconds is negative"):
        lim.acquire(timeout=-1)
    with pytest.raises(TypeError, match="timeout must be seconds"):
        lim.acquire(timeout=[1])  # type: ignore[arg-type]
