"""Child processes for the crash and multi-process tests: `python child.py COMMAND ARGS...`.

Each prints what it has done, one line at a time, flushed, so the parent knows what to expect
when it kills it; a child that must be killed mid-work blocks reading stdin (the parent never
writes to it), so nothing depends on timing.
"""

from __future__ import annotations

import os
import signal
import sys

import cairn


def say(*parts: object) -> None:
    print(*parts, flush=True)


def block() -> None:
    """Wait to be killed (or for the parent to close our stdin)."""
    sys.stdin.readline()


def tx_then_block(path: str) -> None:
    """Open a transaction, write 100 keys and a checkpoint in it, and block inside it."""
    store = cairn.Store(path)
    with store.transaction() as tx:
        c = tx.cache("crash")
        for i in range(100):
            c.set(f"k{i}", i)
        tx.checkpoint("crash").set(100)
        tx.ledger("crash").mark_done("item")
        say("inside")
        block()


def torture(path: str, keys: str, run: str) -> None:
    """Commit batch after batch, each K keys of this run and the run's checkpoint set to the
    batch number; print the number once committed."""
    store = cairn.Store(path)
    k = int(keys)
    for i in range(1, 1_000_000):
        with store.transaction() as tx:
            c = tx.cache("torture")
            for j in range(k):
                c.set(f"r{run}-b{i}-{j}", {"batch": i, "j": j})
            tx.ledger("torture").mark_done(f"r{run}-b{i}")
            tx.checkpoint(f"torture-{run}").set(i)
        say(i)


def incr(path: str, n: str) -> None:
    store = cairn.Store(path)
    c = store.cache("counters")
    for _ in range(int(n)):
        c.incr("shared")
    say("done")


def compute_once(path: str, marker: str) -> None:
    """Wait for 'go', then get_or_set one key. The compute appends to `marker`, says
    'computing', and waits for the parent's word: 'finish' returns a value, 'fail' raises."""
    store = cairn.Store(path)
    say("ready")
    if sys.stdin.readline().strip() != "go":
        return

    def compute() -> dict[str, int]:
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
        say("computing")
        word = sys.stdin.readline().strip()
        if word == "fail":
            raise RuntimeError("the computation failed")
        return {"pid": os.getpid()}

    say("calling")
    try:
        value = store.cache("stampede").get_or_set("report", compute, ttl="1h")
    except RuntimeError as e:
        say("raised", e)
        return
    say("value", value["pid"])


def worker(path: str, ns: str, lease: str, hold_first: str) -> None:
    """Drain the queue with claims; with hold_first=1, claim one item and block holding it."""
    store = cairn.Store(path)
    ledger = store.ledger(ns)
    if hold_first == "1":
        claim = ledger.claim_next(lease=float(lease))
        assert claim is not None
        say("holding", claim.id)
        block()
        return
    while True:
        claim = ledger.claim_next(lease=float(lease))
        if claim is None:
            break
        with claim:
            pass  # the work
        say("done", claim.id)
    say("empty")


def async_worker(location: str, ns: str, lease: str, coroutines: str, worker: str = "") -> None:
    """Work the queue from `coroutines` coroutines of one AsyncStore, each running ``async for
    claim in ledger.claims(wait=...)``: print ``claimed ID`` inside ``async with claim``, ``done
    ID`` once completed, and ``empty`` when the queue stays empty. With coroutines=0, wait for
    one item and block holding its claim. `worker` names the claims' worker ("": the default,
    host:pid:thread, taken over at once on this host once the process is dead)."""
    import asyncio

    async def main() -> None:
        async with cairn.AsyncStore(location) as store:
            q = store.ledger(ns)
            name = worker or None
            if coroutines == "0":
                claim = await q.claim_next(lease=float(lease), worker=name, wait=60)
                assert claim is not None
                say("holding", claim.id)
                await asyncio.get_running_loop().run_in_executor(None, block)
                return

            async def one() -> None:
                async for claim in q.claims(lease=float(lease), worker=name, wait=0.3):
                    async with claim:
                        say("claimed", claim.id)
                        await asyncio.sleep(0.002)  # the work
                    say("done", claim.id)

            await asyncio.gather(*(one() for _ in range(int(coroutines))))
            say("empty")

    asyncio.run(main())


def hold_lock(path: str, name: str) -> None:
    store = cairn.Store(path)
    try:
        with store.lock(name, ttl="1h", timeout=0):
            holder = store.lock_holder(name)
            say("held", holder.pid if holder else None)
            block()
    except cairn.LockHeldError:
        say("busy")


def write_acknowledged(path: str, n: str) -> None:
    """cairn writes in this process while the parent uses stdlib sqlite3 on the same file."""
    store = cairn.Store(path)
    c = store.cache("ack")
    for i in range(int(n)):
        c.set(f"k{i}", i)
        say(i)


def tx_flood(location: str) -> None:
    """Transaction after transaction while the parent floods this process with SIGINT, until
    SIGTERM; each interrupt is caught, and after each round no transaction may be open. Then
    one more write, and block (so the parent can check nothing is held by a live process)."""
    store = cairn.Store(location, busy_timeout=30)
    armed = False
    stop = False

    def on_int(signum: int, frame: object) -> None:
        # Raised only around the transaction, so that the loop itself is never cut short.
        if armed:
            raise KeyboardInterrupt

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_int)
    signal.signal(signal.SIGTERM, on_term)
    commits = interrupts = 0
    say("ready")
    while not stop:
        try:
            armed = True
            with store.transaction() as tx:
                tx.cache("flood").incr("n")
            armed = False
            commits += 1
        except KeyboardInterrupt:
            armed = False
            interrupts += 1
        armed = False
        if store.in_transaction or store._conn().in_transaction:
            say("left open", commits, interrupts)
            return
    say("stopped", commits, interrupts)
    with store.transaction() as tx:
        tx.cache("flood").set("after", commits)
    say("wrote")
    block()


# ---- durable runs under SIGKILL (test_runs_crash.py) -------------------------------------------


def run_step(run: cairn.Run, i: int, exec_id: str, log: str) -> str:
    """Step `i` of a torture run (``s000`` to ``s099``), executed by `exec_id`: prints ``BEGIN
    s<i>``, appends ``s<i> <exec_id>`` to the side file `log` in one write, synced, and returns
    ``s<i> by <exec_id>``. Every fifth (``s004``, ``s009``, ...) is a ``step_tx`` that also bumps
    the cache counter ``<run id>`` of namespace ``torture`` and marks ``<run id>/s<i>`` done in
    ledger ``torture``, with its record. Returns the step's value, executed or replayed."""
    name = f"s{i:03d}"

    def execute() -> str:
        say("BEGIN", name)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{name} {exec_id}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return f"{name} by {exec_id}"

    if i % 5 == 4:

        def in_tx(tx: cairn.Transaction) -> str:
            value = execute()
            tx.cache("torture").incr(run.id)
            tx.ledger("torture").mark_done(f"{run.id}/{name}")
            return value

        return run.step_tx(name, in_tx)
    return run.step(name, execute)


def run_steps(location: str, id: str, log: str, pause_after: str = "-1") -> None:
    """Run `id`'s 100 steps (see `run_step`), waiting up to 30 s for another holder: prints
    ``WAITING`` before taking it, ``READY <attempt>`` once held, ``STEP s<i> <value>`` as each
    step returns and ``FINISHED`` once the block has ended. With `pause_after` N, prints
    ``PAUSED`` before step N and waits, holding the run, for a line on stdin."""
    store = cairn.Store(location, busy_timeout=30)
    say("WAITING")
    with store.run(id, wait=30) as run:
        exec_id = f"a{run.attempt}-p{os.getpid()}"
        say("READY", run.attempt)
        for i in range(100):
            if i == int(pause_after):
                say("PAUSED")
                block()
            say("STEP", f"s{i:03d}", run_step(run, i, exec_id, log))
    say("FINISHED")


def run_stale(location: str, id: str, log: str, late: str) -> None:
    """A holder that goes stale: takes `id` with a lease of 0.3 s (renewed by the library's
    thread), runs step 0, prints ``HELD <pid>`` and waits for a line on stdin (the parent stops
    it meanwhile, and another attempt takes the run over); then runs each step numbered in
    `late` (``10,14``), printing ``LATE s<i> ok <value>`` or ``LATE s<i> <error class>``, and
    ends the block normally: ``EXIT ok`` or ``EXIT <error class>`` for what the ``with``
    raised."""
    store = cairn.Store(location, busy_timeout=30)
    try:
        with store.run(id, lease=0.3) as run:
            exec_id = f"a{run.attempt}-p{os.getpid()}"
            run_step(run, 0, exec_id, log)
            say("HELD", os.getpid())
            block()
            for n in late.split(","):
                i = int(n)
                try:
                    say("LATE", f"s{i:03d}", "ok", run_step(run, i, exec_id, log))
                except cairn.Error as e:
                    say("LATE", f"s{i:03d}", type(e).__name__)
    except cairn.Error as e:
        say("EXIT", type(e).__name__)
    else:
        say("EXIT", "ok")


COMMANDS = {
    "tx-flood": tx_flood,
    "tx-then-block": tx_then_block,
    "torture": torture,
    "incr": incr,
    "compute-once": compute_once,
    "worker": worker,
    "async-worker": async_worker,
    "hold-lock": hold_lock,
    "write-acknowledged": write_acknowledged,
    "run-steps": run_steps,
    "run-stale": run_stale,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
