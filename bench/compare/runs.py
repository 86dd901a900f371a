"""Issue 24's rows: a durable run's step from Python beside DBOS Transact's, a mark and a cache hit.

Every contender works on a file in DIR, in this one process, interleaved: each round times
every contender once, in a rotating order, so that a change of load on a shared machine moves
them together. The figure is each contender's mean over the rounds (microseconds per step, per
mark or per read: its total time over its total calls, so that a cost that comes every few
thousand commits, a checkpoint of the log, counts in full), and a ratio the ratio of the
totals; the median and the spread of the per-round ratios are kept beside.

- ``dbos-step``: DBOS Transact (``dbos`` from PyPI, pinned in requirements.txt) with its SQLite
  system database (``system_database_url: sqlite:///DIR/dbos.sqlite``, no server): one
  ``@DBOS.workflow`` of ``--steps`` ``@DBOS.step`` calls, each returning a short string, a new
  workflow each round; the time of the whole workflow divided by its steps.
- ``cairn-step``: ``with store.run(id) as run:`` and ``--steps`` calls of ``run.step(name, fn)``
  returning the same strings, a new run each round; the whole block divided by its steps.
- ``cairn-step-full``: the same on a store opened with ``durability="full"`` (an fsync per
  commit, as DBOS's SQLite database has by default: rollback journal, ``synchronous=FULL``).
- ``cairn-mark``: ``ledger.mark_done(id)`` of new ids, one transaction each.
- ``cairn-replay``: the same block again on a run finished before (every step replays its
  recorded result, ``fn`` is not called), divided by its steps.
- ``cairn-get``: ``cache.get(key)`` hits on 1,000 keys holding the same strings.

One JSON line per comparison on stdout (``"workload": "runs"``), read by report.py.

    python bench/compare/runs.py --dir DIR [--steps 1000] [--rounds 9]
"""

import argparse
import json
import os
import sys
import time

RESULT = "r" * 20  # a small result: what a step hands to the next, an id or a path


def cairn_contenders(d, steps):
    import cairn

    store = cairn.Store(os.path.join(d, "cairn.db"))
    ledger = store.ledger("bench")
    cache = store.cache("bench")
    names = [f"step-{i}" for i in range(steps)]
    with store.transaction() as tx:
        c = tx.cache("bench")
        for i in range(steps):
            c.set(f"key-{i}", RESULT + str(i))
    counter = {"run": 0, "mark": 0}

    def step(i):
        return RESULT + str(i)

    def run_steps():
        counter["run"] += 1
        with store.run(f"bench-{counter['run']}") as run:
            for i, name in enumerate(names):
                run.step(name, step, i)

    with store.run("finished") as run:
        for i, name in enumerate(names):
            run.step(name, step, i)

    def replay_steps():
        with store.run("finished") as run:
            for i, name in enumerate(names):
                run.step(name, step, i)

    def marks():
        base = counter["mark"]
        counter["mark"] += steps
        for i in range(base, base + steps):
            ledger.mark_done(f"id-{i}")

    keys = [f"key-{i}" for i in range(steps)]

    def gets():
        for k in keys:
            cache.get(k)

    # The same steps with durability="full" (an fsync per commit, as DBOS's SQLite database
    # has by default: a rollback journal, synchronous=FULL): what survives a power loss.
    full = cairn.Store(os.path.join(d, "cairn-full.db"), durability="full")

    def run_steps_full():
        counter["run"] += 1
        with full.run(f"bench-{counter['run']}") as run:
            for i, name in enumerate(names):
                run.step(name, step, i)

    return {"cairn-step": run_steps, "cairn-step-full": run_steps_full, "cairn-mark": marks,
            "cairn-replay": replay_steps, "cairn-get": gets}, (store, full)


def dbos_contender(d, steps):
    """None and the reason when DBOS cannot run here."""
    try:
        import dbos
        from dbos import DBOS, SetWorkflowID
    except Exception as e:  # not installed: reported as skipped
        return None, f"import dbos: {e}"
    import logging

    @DBOS.step()
    def step(i):
        return RESULT + str(i)

    @DBOS.workflow()
    def workflow(n):
        for i in range(n):
            step(i)
        return n

    url = "sqlite:///" + os.path.join(d, "dbos.sqlite")
    DBOS(config={"name": "cairn-bench", "system_database_url": url, "log_level": "WARNING",
                 "console_log_level": "WARNING"})
    DBOS.launch()
    logging.getLogger("dbos").setLevel(logging.WARNING)
    counter = {"wf": 0}

    def run_workflow():
        counter["wf"] += 1
        with SetWorkflowID(f"bench-{counter['wf']}"):
            if workflow(steps) != steps:
                raise SystemExit("dbos: the workflow did not run its steps")

    version = getattr(dbos, "__version__", None)
    if version is None:
        from importlib.metadata import version as v

        version = v("dbos")
    return (run_workflow, version), None


def interleaved(fs, rounds, per):
    """name -> per-round microseconds per operation (each call of fs[name] is `per` operations)."""
    names = list(fs)
    out = {k: [] for k in names}
    for name in names:  # warm-up
        fs[name]()
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            t = time.perf_counter()
            fs[name]()
            out[name].append((time.perf_counter() - t) * 1e6 / per)
    return out


def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    fs, _store = cairn_contenders(args.dir, args.steps)
    dbos, why = dbos_contender(args.dir, args.steps)
    version = None
    if dbos is not None:
        fs["dbos-step"], version = dbos
    load_before = open("/proc/loadavg").read().split()[:3]
    per = interleaved(fs, args.rounds, args.steps)
    load_after = open("/proc/loadavg").read().split()[:3]

    def ratio(a, b):
        if a not in per or b not in per:
            return None
        rs = sorted(x / y for x, y in zip(per[a], per[b]))
        return {"total": sum(per[a]) / sum(per[b]), "median": rs[len(rs) // 2], "min": rs[0], "max": rs[-1]}

    row = {"workload": "runs", "steps": args.steps, "rounds": args.rounds,
           "mean_us": {k: sum(v) / len(v) for k, v in per.items()},
           "median_us": {k: med(v) for k, v in per.items()},
           "min_us": {k: min(v) for k, v in per.items()},
           "max_us": {k: max(v) for k, v in per.items()},
           "ratios": {"step/mark": ratio("cairn-step", "cairn-mark"),
                      "dbos/step": ratio("dbos-step", "cairn-step"),
                      "dbos/step-full": ratio("dbos-step", "cairn-step-full"),
                      "replay/get": ratio("cairn-replay", "cairn-get")},
           "dbos": version, "dbos_skipped": why,
           "loadavg": {"before": load_before, "after": load_after}}
    print(json.dumps(row), flush=True)
    if dbos is not None:
        from dbos import DBOS

        DBOS.destroy()


if __name__ == "__main__":
    sys.exit(main())
