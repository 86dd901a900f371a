"""Issue 20's rows: cairn's queue and limiter from Python beside Honker and PyrateLimiter.

Every figure comes from this one run on one machine; each contender works on a file of its own
in DIR (WAL mode for all of them). One JSON line per workload on stdout, read by report.py.

- ``claim-ack``: a queue of ``--items`` items filled in one transaction, then drained by one
  process, one item at a time: claim, then acknowledge (cairn ``claim_next`` + ``complete``;
  Honker ``claim_one`` + ``ack``, ``pip install honker``, its Rust core). Rounds interleave the
  contenders; the figure is each one's median microseconds per item over the rounds.
- ``wake``: a waiting worker in another process, and this process enqueueing one item at a
  time, each carrying the time it was enqueued (``time.time()``), at random gaps of 5 to 25 ms.
  The worker claims it (cairn ``claim_next(wait=...)``; Honker ``async for job in
  q.claim(...)``, which wakes on its update watcher), notes the delay from the enqueue to its
  claim, and acknowledges it. p50, p90, p99 and max over ``--wakes`` items. Also the worker's
  CPU time over an idle ``--idle`` seconds with nothing queued (percent of one core).
- ``limiter-rate``: acquires per second from one process against a rate far above what it can
  reach (every acquire is granted, so the figure is the cost of one): cairn ``try_acquire``,
  PyrateLimiter's SQLite bucket (``create_sqlite_limiter``, with and without its file lock,
  ``try_acquire(blocking=False)``) and Honker's fixed-window ``try_rate_limit``.
- ``limiter-bound``: ``--procs`` processes (1, 8, 32) share one limit of ``--rate`` per second
  for ``--seconds`` seconds, each acquiring (waiting) as fast as it can and noting the time of
  every grant. The most grants seen in any window of 1 s (sliding over every grant), against
  what the limit allows in it (``rate x 1 s + burst``), and the rate achieved over the middle of
  the run as a fraction of the limit. PyrateLimiter with its file lock (its multi-process mode)
  and without (its default), cairn with ``burst=1``.

    python bench/compare/queues.py --dir DIR [--items 2000] [--rounds 5] [--wakes 500]
        [--procs 1,8,32] [--rate 50] [--seconds 6]
"""

import argparse
import asyncio
import bisect
import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)


def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def version_of(dist):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None


# --- claim and acknowledge -----------------------------------------------------------------


def cairn_claim_ack(d, items):
    import cairn

    store = cairn.Store(os.path.join(d, "cairn-claim.db"))
    counter = {"round": 0}

    def fill():
        counter["round"] += 1
        ns = f"q{counter['round']}"
        store.ledger(ns).enqueue_items(cairn.QueueItem(f"job-{i}", data={"n": i}) for i in range(items))
        return ns

    def drain(ns):
        ledger = store.ledger(ns)
        n = 0
        while (claim := ledger.claim_next(lease=60, worker="w1")) is not None:
            claim.data
            claim.complete()
            n += 1
        return n

    return fill, drain


def honker_claim_ack(d, items):
    import honker

    db = honker.open(os.path.join(d, "honker-claim.db"))
    counter = {"round": 0}

    def fill():
        counter["round"] += 1
        q = db.queue(f"q{counter['round']}")
        with db.transaction() as tx:
            for i in range(items):
                q.enqueue({"n": i}, tx=tx)
        return q

    def drain(q):
        n = 0
        while (job := q.claim_one("w1")) is not None:
            job.payload
            job.ack()
            n += 1
        return n

    return fill, drain


def claim_ack(args):
    contenders, skipped = {}, {}
    for name, make in (("cairn", cairn_claim_ack), ("honker", honker_claim_ack)):
        try:
            contenders[name] = make(args.dir, args.items)
        except Exception as e:  # not installed or failing: reported as skipped
            skipped[name] = f"{type(e).__name__}: {e}"
    per = {k: [] for k in contenders}
    names = list(contenders)
    for r in range(args.rounds + 1):  # round 0 warms up
        for name in names[r % max(1, len(names)):] + names[: r % max(1, len(names))]:
            fill, drain = contenders[name]
            q = fill()
            t = time.perf_counter()
            n = drain(q)
            dt = time.perf_counter() - t
            if n != args.items:
                raise SystemExit(f"{name}: drained {n} items of {args.items}")
            if r:
                per[name].append(dt * 1e6 / n)
    return {"workload": "queue-claim-ack", "items": args.items, "rounds": args.rounds,
            "median_us": {k: med(v) for k, v in per.items()},
            "min_us": {k: min(v) for k, v in per.items() if v},
            "missing": skipped, "honker": version_of("honker")}


# --- wake-up latency -----------------------------------------------------------------------


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker(args):
    """The waiting side of ``wake``: claims --wakes items, then prints the delays as JSON."""
    delays = []
    out = sys.stdout
    if args.kind == "cairn":
        import cairn

        store = cairn.Store(args.db)
        ledger = store.ledger("wake")
        print("ready", file=out, flush=True)
        while len(delays) < args.wakes:
            claim = ledger.claim_next(lease=60, worker="waiter", wait=120)
            if claim is None:
                break
            delays.append(time.time() - claim.data)
            claim.complete()
    else:
        import honker

        db = honker.open(args.db)
        q = db.queue("wake")

        async def loop():
            print("ready", file=out, flush=True)
            async for job in q.claim("waiter"):
                delays.append(time.time() - job.payload)
                job.ack()
                if len(delays) >= args.wakes:
                    return

        asyncio.run(loop())
    print(json.dumps(delays), file=out, flush=True)


def wake(args):
    rows = []
    for kind in ("cairn", "honker"):
        db = os.path.join(args.dir, f"{kind}-wake.db")
        try:
            if kind == "cairn":
                import cairn

                store = cairn.Store(db)
                ledger = store.ledger("wake")

                def put(i, ledger=ledger, cairn=cairn):
                    ledger.enqueue_items([cairn.QueueItem(f"w{i}", data=time.time())])
            else:
                import honker

                hdb = honker.open(db)
                q = hdb.queue("wake")

                def put(i, q=q):
                    q.enqueue(time.time())
        except Exception as e:
            rows.append({"workload": "queue-wake", "contender": kind, "skipped": f"{type(e).__name__}: {e}"})
            continue
        p = subprocess.Popen([sys.executable, HERE, "--dir", args.dir, "worker", "--kind", kind, "--db", db,
                              "--wakes", str(args.wakes)], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        if p.stdout.readline().strip() != "ready":
            raise SystemExit(f"{kind}: the waiting worker did not start")
        time.sleep(0.5)  # into its wait
        c0 = cpu_seconds(p.pid)
        time.sleep(args.idle)
        idle_pct = (cpu_seconds(p.pid) - c0) / args.idle * 100
        rnd = random.Random(7)
        for i in range(args.wakes):
            put(i)
            time.sleep(rnd.uniform(0.005, 0.025))
        out, _ = p.communicate(timeout=300)
        delays = [x * 1000 for x in json.loads(out.strip().splitlines()[-1])]
        if len(delays) != args.wakes:
            raise SystemExit(f"{kind}: the worker claimed {len(delays)} items of {args.wakes}")
        rows.append({"workload": "queue-wake", "contender": kind, "wakes": len(delays),
                     "p50_ms": pct(delays, 50), "p90_ms": pct(delays, 90), "p99_ms": pct(delays, 99),
                     "max_ms": max(delays), "idle_cpu_pct": idle_pct, "idle_s": args.idle,
                     "version": version_of("honker") if kind == "honker" else None})
    return rows


# --- limiters ------------------------------------------------------------------------------


def limiter_makers(d, rate, per_s, burst):
    """name -> (function making a limiter in this process, acquire(lim) -> granted after waiting,
    try(lim) -> granted now)."""
    makers = {}

    def cairn_make(tag):
        import cairn

        return cairn.Store(os.path.join(d, f"cairn-limit-{tag}.db")).limiter(tag, f"{rate}/{per_s}s", burst=burst)

    makers["cairn"] = (cairn_make, lambda lim: lim.acquire(), lambda lim: lim.try_acquire())

    def pyrate_make(locked):
        def make(tag):
            from pyrate_limiter import Duration, limiter_factory

            return limiter_factory.create_sqlite_limiter(
                rate_per_duration=rate, duration=Duration.SECOND * per_s,
                db_path=os.path.join(d, f"pyrate-{'lock' if locked else 'nolock'}-{tag}.db"),
                table_name="bucket", use_file_lock=locked)

        return make

    # PyrateLimiter 4.6's non-blocking try with its file lock fails inside ("timeout must be a
    # number of seconds, not bool"): its blocking form stands in, which does not wait while the
    # rate is not reached (limiter-rate's case).
    makers["pyrate-filelock"] = (pyrate_make(True), lambda lim: lim.try_acquire("api", blocking=True),
                                 lambda lim: lim.try_acquire("api", blocking=True))
    makers["pyrate"] = (pyrate_make(False), lambda lim: lim.try_acquire("api", blocking=True),
                        lambda lim: lim.try_acquire("api", blocking=False))
    return makers


def limiter_rate(args):
    """Acquires per second when every acquire is granted: the cost of one."""
    makers = limiter_makers(args.dir, 10**9, 1, 1)
    n = args.acquires
    rates, skipped = {}, {}
    fs = {}
    for name, (make, _acq, try_) in makers.items():
        try:
            lim = make("rate")
            if not try_(lim):
                raise RuntimeError("the first acquire was refused")
            fs[name] = (lim, try_)
        except Exception as e:
            skipped[name] = f"{type(e).__name__}: {e}"
    try:
        import honker

        hdb = honker.open(os.path.join(args.dir, "honker-limit.db"))
        fs["honker-fixed-window"] = (hdb, lambda db: db.try_rate_limit("api", 10**9, 1))
    except Exception as e:
        skipped["honker-fixed-window"] = f"{type(e).__name__}: {e}"
    per = {k: [] for k in fs}
    names = list(fs)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            lim, try_ = fs[name]
            t = time.perf_counter()
            for _ in range(n):
                try_(lim)
            per[name].append(n / (time.perf_counter() - t))
    rates = {k: med(v) for k, v in per.items()}
    return {"workload": "limiter-rate", "acquires": n, "rounds": args.rounds, "per_s": rates,
            "missing": skipped, "pyrate_limiter": version_of("pyrate-limiter"), "honker": version_of("honker")}


def limiter_proc(args):
    """One of the competing processes of ``limiter-bound``: grants until --until, printed as JSON."""
    make, acquire, _try = limiter_makers(args.dir, args.rate, 1, args.burst)[args.kind]
    lim = make(args.tag)
    while time.time() < args.start:
        time.sleep(0.001)
    grants = []
    while True:
        ok = acquire(lim)
        now = time.time()
        if now >= args.until:
            break
        if ok:
            grants.append(now)
    print(json.dumps(grants), flush=True)


def max_in_window(ts, w):
    ts = sorted(ts)
    best = 0
    for i, t in enumerate(ts):
        j = bisect.bisect_right(ts, t + w - 1e-9)
        best = max(best, j - i)
    return best


def limiter_bound(args):
    rows = []
    for kind in ("cairn", "pyrate-filelock", "pyrate"):
        for procs in args.procs:
            tag = f"bound-{procs}"
            start = time.time() + 1.5 + procs * 0.05
            until = start + args.seconds
            ps = [subprocess.Popen([sys.executable, HERE, "--dir", args.dir, "limiter-proc", "--kind", kind,
                                    "--tag", tag, "--rate", str(args.rate), "--burst", "1",
                                    "--start", str(start), "--until", str(until)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for _ in range(procs)]
            grants, errors = [], []
            for p in ps:
                out, err = p.communicate(timeout=args.seconds + 120)
                if p.returncode != 0:
                    errors.append(err.strip().splitlines()[-1] if err.strip() else f"exit {p.returncode}")
                    continue
                grants += json.loads(out.strip().splitlines()[-1])
            if errors:
                rows.append({"workload": "limiter-bound", "contender": kind, "procs": procs,
                             "failed": len(errors), "error": errors[0], "grants": len(grants)})
                continue
            allowed = args.rate * 1 + 1
            seen = max_in_window(grants, 1.0)
            mid = [t for t in grants if start + 1 <= t < until - 1]
            achieved = len(mid) / max(1e-9, (args.seconds - 2)) / args.rate
            rows.append({"workload": "limiter-bound", "contender": kind, "procs": procs, "rate": args.rate,
                         "seconds": args.seconds, "grants": len(grants), "max_in_1s": seen,
                         "allowed_in_1s": allowed, "held": seen <= allowed, "achieved_fraction": achieved})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    sub = ap.add_subparsers(dest="what")
    sub.add_parser("all")
    w = sub.add_parser("worker")
    w.add_argument("--kind", required=True)
    w.add_argument("--db", required=True)
    w.add_argument("--wakes", type=int, required=True)
    lp = sub.add_parser("limiter-proc")
    lp.add_argument("--kind", required=True)
    lp.add_argument("--tag", required=True)
    lp.add_argument("--rate", type=int, required=True)
    lp.add_argument("--burst", type=int, default=1)
    lp.add_argument("--start", type=float, required=True)
    lp.add_argument("--until", type=float, required=True)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--wakes", type=int, default=500)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--acquires", type=int, default=5000)
    ap.add_argument("--procs", default="1,8,32")
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--only", default="claim-ack,wake,limiter-rate,limiter-bound")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    if args.what == "worker":
        return worker(args)
    if args.what == "limiter-proc":
        return limiter_proc(args)
    args.procs = [int(x) for x in args.procs.split(",")]
    only = set(args.only.split(","))
    load = lambda: open("/proc/loadavg").read().split()[:3]  # noqa: E731
    rows = []
    before = load()
    if "claim-ack" in only:
        rows.append(claim_ack(args))
    if "wake" in only:
        rows += wake(args)
    if "limiter-rate" in only:
        rows.append(limiter_rate(args))
    if "limiter-bound" in only:
        rows += limiter_bound(args)
    after = load()
    for row in rows:
        row["loadavg"] = {"before": before, "after": after}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    sys.exit(main())
