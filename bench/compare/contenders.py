"""The Python contenders of bench/compare/run, on the same workloads as cairn-compare.

One JSON line per figure on stdout, in the same shape as cairn-compare's. Contenders:

- ``python-sqlite3``: a state class over the standard library's sqlite3, written the way a
  typical engineer would (WAL, a 5 s busy timeout, upserts, a processed-ids table);
- ``diskcache``: Python's diskcache from PyPI;
- ``cairn-python``: cairn's own Python package (``import cairn``, crates/cairn-py), the way a
  script would use it: ``store.cache(ns).get/set``, ``with store.transaction()``, ``get_or_set``;
- ``redis`` and ``redis-aof``: a real client against a Redis server on loopback, without and
  with append-only persistence (``appendfsync everysec``).

A contender that cannot run is reported with ``"skipped"`` and the reason.
"""

import argparse
import json
import multiprocessing as mp
import os
import sqlite3
import sys
import time

ROUNDS = 7
TTL = 3600


def emit(tags, fields):
    print(json.dumps({**tags, **fields}), flush=True)


def measure(n, f):
    """Per-operation microseconds over ROUNDS rounds of n calls: median, fastest, slowest."""
    for i in range(min(n, 1000)):
        f(i)
    per_op = []
    for r in range(ROUNDS):
        t = time.perf_counter()
        for i in range(n):
            f(r * n + i)
        per_op.append((time.perf_counter() - t) * 1e6 / n)
    per_op.sort()
    return {"median_us": per_op[ROUNDS // 2], "min_us": per_op[0], "max_us": per_op[-1], "n": n}


def get_then_set(c, key, compute):
    """The plain memoization everyone writes first (diskcache's memoize decorator does the
    same): no stampede protection, every process that misses computes."""
    value = c.get(key)
    if value is None:
        value = compute()
        c.set(key, value)
    return value


class TypicalState:
    """What an engineer writes when a JSON file stops being enough."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, timeout=5)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value BLOB, expires_at REAL)"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS processed (id TEXT PRIMARY KEY, done_at REAL)")
        self.db.commit()

    def get(self, key):
        row = self.db.execute(
            "SELECT value FROM cache WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
            (key, time.time()),
        ).fetchone()
        return row[0] if row else None

    def set(self, key, value, ttl=TTL):
        self.db.execute(
            "INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            (key, value, time.time() + ttl),
        )
        self.db.commit()

    def set_many(self, keys, value, ttl=TTL):
        with self.db:
            self.db.executemany(
                "INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                [(k, value, time.time() + ttl) for k in keys],
            )

    def incr(self, key):
        # Read, add, write: the natural code, and a race between processes.
        current = self.get(key)
        self.set(key, str(int(current or 0) + 1).encode(), ttl=10**9)

    def get_or_set(self, key, compute):
        return get_then_set(self, key, compute)

    def mark(self, id_):
        self.db.execute("INSERT OR IGNORE INTO processed (id, done_at) VALUES (?, ?)", (id_, time.time()))
        self.db.commit()

    def mark_many(self, ids):
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO processed (id, done_at) VALUES (?, ?)", [(i, 0.0) for i in ids]
            )

    def is_done(self, id_):
        return self.db.execute("SELECT 1 FROM processed WHERE id = ?", (id_,)).fetchone() is not None

    def filter_new(self, ids):
        return [i for i in ids if not self.is_done(i)]


def open_contender(name, workdir, args):
    """A uniform face: get, set, set_many, incr, get_or_set."""
    if name == "python-sqlite3":
        return TypicalState(os.path.join(workdir, "typical.db"))
    if name == "cairn-python":
        import cairn

        store = cairn.Store(os.path.join(workdir, "cairn-python.db"))
        cache = store.cache("bench")

        class P:
            get = staticmethod(cache.get)
            incr = staticmethod(cache.incr)

            @staticmethod
            def set(key, value, ttl=TTL):
                cache.set(key, value, ttl)

            @staticmethod
            def set_many(keys, value, ttl=TTL):
                with store.transaction() as tx:
                    c = tx.cache("bench")
                    for k in keys:
                        c.set(k, value, ttl)

            @staticmethod
            def get_or_set(key, compute):
                # cairn's own: computed once across processes.
                return cache.get_or_set(key, compute, ttl=TTL)

        P.store = store
        return P()
    if name == "diskcache":
        import diskcache

        c = diskcache.Cache(os.path.join(workdir, "diskcache"))

        class D:
            get = staticmethod(c.get)

            @staticmethod
            def set(key, value, ttl=TTL):
                c.set(key, value, expire=ttl)

            @staticmethod
            def set_many(keys, value, ttl=TTL):
                with c.transact():
                    for k in keys:
                        c.set(k, value, expire=ttl)

            @staticmethod
            def incr(key):
                c.incr(key)

        D.get_or_set = staticmethod(lambda key, compute: get_then_set(D, key, compute))
        return D()
    if name in ("redis", "redis-aof"):
        import redis

        port = args.redis_port if name == "redis" else args.redis_aof_port
        r = redis.Redis(host="127.0.0.1", port=port)

        class R:
            get = staticmethod(r.get)

            @staticmethod
            def set(key, value, ttl=TTL):
                r.set(key, value, ex=ttl)

            @staticmethod
            def set_many(keys, value, ttl=TTL):
                p = r.pipeline(transaction=True)
                for k in keys:
                    p.set(k, value, ex=ttl)
                p.execute()

            @staticmethod
            def incr(key):
                r.incr(key)

        R.get_or_set = staticmethod(lambda key, compute: get_then_set(R, key, compute))
        return R()
    raise ValueError(name)


def available(name, workdir, args):
    """None if the contender can run, else why not."""
    try:
        c = open_contender(name, workdir, args)
        c.set("probe", b"x")
        return None
    except Exception as e:  # noqa: BLE001 - any failure is a reason to report
        return f"{type(e).__name__}: {e}"


def cache_workload(name, workdir, args):
    c = open_contender(name, workdir, args)
    keys = [f"https://example.com/page/{i}" for i in range(10_000)]
    misses = [f"https://example.com/missing/{i}" for i in range(10_000)]
    value = b"x" * 100
    c.set_many(keys, value)
    tag = lambda op: {"workload": "cache", "contender": name, "op": op}  # noqa: E731
    emit(tag("get_hit"), measure(20_000, lambda i: c.get(keys[i * 7 % 10_000])))
    emit(tag("get_miss"), measure(20_000, lambda i: c.get(misses[i * 7 % 10_000])))
    emit(tag("set_ttl"), measure(2_000, lambda i: c.set(keys[i * 7 % 10_000], value)))
    emit(tag("set_10k_tx"), measure(3, lambda i: c.set_many(keys, value)))


def cairn_python_ledger_workload(workdir, sizes):
    import cairn

    store = cairn.Store(os.path.join(workdir, "cairn-python-ledger.db"))
    ledger = store.ledger("bench")
    filled = 0
    for size in sizes:
        for start in range(filled, size, 100_000):
            ledger.mark_done_many(f"order-{i:09}" for i in range(start, min(start + 100_000, size)))
        filled = size
        tag = lambda op: {"workload": "ledger", "contender": "cairn-python", "op": op, "size": size}  # noqa: E731
        emit(tag("mark"), measure(2_000, lambda i: ledger.mark_done(f"new-{size}-{i}")))
        emit(tag("is_done"), measure(20_000, lambda i: ledger.is_done(f"order-{i * 7919 % size:09}")))
        batch = [f"order-{i * 97 % size:09}" if i % 2 == 0 else f"fresh-{i}" for i in range(10_000)]
        emit(tag("filter_new_10k"), measure(3, lambda i: ledger.filter_new(batch)))
    store.close()


def ledger_workload(workdir, sizes):
    s = TypicalState(os.path.join(workdir, "typical-ledger.db"))
    filled = 0
    for size in sizes:
        for start in range(filled, size, 100_000):
            s.mark_many(f"order-{i:09}" for i in range(start, min(start + 100_000, size)))
        filled = size
        tag = lambda op: {"workload": "ledger", "contender": "python-sqlite3", "op": op, "size": size}  # noqa: E731
        emit(tag("mark"), measure(2_000, lambda i: s.mark(f"new-{size}-{i}")))
        emit(tag("is_done"), measure(20_000, lambda i: s.is_done(f"order-{i * 7919 % size:09}")))
        batch = [f"order-{i * 97 % size:09}" if i % 2 == 0 else f"fresh-{i}" for i in range(10_000)]
        emit(tag("filter_new_10k"), measure(3, lambda i: s.filter_new(batch)))


def _stampede_worker(name, workdir, args, compute_ms, q):
    c = open_contender(name, workdir, args)
    computed = []

    def compute():
        time.sleep(compute_ms / 1000)
        computed.append(1)
        return b"42"

    c.get_or_set("stampede-report", compute)
    q.put(len(computed))


def stampede_workload(name, workdir, args, procs=4, compute_ms=100):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    t = time.perf_counter()
    ps = [ctx.Process(target=_stampede_worker, args=(name, workdir, args, compute_ms, q)) for _ in range(procs)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    total_ms = (time.perf_counter() - t) * 1e3
    computations = sum(q.get() for _ in ps)
    emit(
        {"workload": "stampede", "contender": name, "procs": procs, "compute_ms": compute_ms},
        {"computations": computations, "total_ms": total_ms},
    )


def _overlap_worker(name, workdir, args, ops, q):
    c = open_contender(name, workdir, args)
    errors = 0
    for _ in range(ops):
        try:
            c.incr("overlap-counter")
        except Exception:  # noqa: BLE001 - "database is locked" and kin: counted
            errors += 1
    q.put(errors)


def overlap_workload(name, workdir, args, k, ops):
    sub = os.path.join(workdir, f"overlap-{name}-{k}")
    os.makedirs(sub, exist_ok=True)
    c = open_contender(name, sub, args)
    if name.startswith("redis"):
        import redis

        port = args.redis_port if name == "redis" else args.redis_aof_port
        redis.Redis(host="127.0.0.1", port=port).delete("overlap-counter")
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    t = time.perf_counter()
    ps = [ctx.Process(target=_overlap_worker, args=(name, sub, args, ops, q)) for _ in range(k)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    secs = time.perf_counter() - t
    errors = sum(q.get() for _ in ps)
    final = int(c.get("overlap-counter") or 0)
    emit(
        {"workload": "overlap", "contender": name, "k": k, "ops": ops},
        {"ops_per_s": k * ops / secs, "errors": errors, "lost": k * ops - errors - final, "final": final},
    )


def paired_workload(workdir, args):
    """The Python package's targets, measured in alternating rounds against the contender of
    each target, in one process: on a shared machine the load moves between workloads run
    minutes apart (a get measured at 3.4 us in one minute and 5.7 us in the next), and the
    ratio is what the targets are about. Each round times every contender once; the figure is
    the median over rounds of the per-round ratio."""
    os.makedirs(workdir, exist_ok=True)
    cp = open_contender("cairn-python", os.path.join(workdir, "cp"), args) if _mk(workdir, "cp") else None
    dc = open_contender("diskcache", os.path.join(workdir, "dc"), args) if _mk(workdir, "dc") else None
    keys = [f"https://example.com/page/{i}" for i in range(10_000)]
    value = b"x" * 100
    for c in (cp, dc):
        c.set_many(keys, value)

    def rounds(label, n, fs):
        per = {name: [] for name in fs}
        for name, f in fs.items():  # warm-up
            for i in range(min(n, 1000)):
                f(i)
        for r in range(ROUNDS):
            for name, f in fs.items():
                t = time.perf_counter()
                for i in range(n):
                    f(r * n + i)
                per[name].append((time.perf_counter() - t) * 1e6 / n)
        ratios = sorted(a / b for a, b in zip(*per.values()))
        names = list(fs)
        emit(
            {"workload": "paired", "op": label, "contenders": names},
            {
                "median_us": {k: sorted(v)[ROUNDS // 2] for k, v in per.items()},
                "ratio": ratios[ROUNDS // 2],
                "ratio_min": ratios[0],
                "ratio_max": ratios[-1],
            },
        )

    rounds("get_hit", 20_000, {"diskcache": lambda i: dc.get(keys[i * 7 % 10_000]),
                               "cairn-python": lambda i: cp.get(keys[i * 7 % 10_000])})
    rounds("set_ttl", 2_000, {"diskcache": lambda i: dc.set(keys[i * 7 % 10_000], value),
                              "cairn-python": lambda i: cp.set(keys[i * 7 % 10_000], value)})
    import cairn

    store = cairn.Store(os.path.join(workdir, "cp", "ledger.db"))
    ledger = store.ledger("bench")
    typical = TypicalState(os.path.join(workdir, "typical-ledger.db"))
    ids = [f"order-{i:09}" for i in range(10_000)]
    ledger.mark_done_many(ids)
    typical.mark_many(ids)
    batch = [f"order-{i * 97 % 10_000:09}" if i % 2 == 0 else f"fresh-{i}" for i in range(10_000)]
    assert ledger.filter_new(batch) == typical.filter_new(batch)
    rounds("filter_new_10k", 1, {"python-sqlite3": lambda i: typical.filter_new(batch),
                                 "cairn-python": lambda i: ledger.filter_new(batch)})
    store.close()


def _mk(workdir, sub):
    os.makedirs(os.path.join(workdir, sub), exist_ok=True)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--redis-port", type=int, default=6390)
    ap.add_argument("--redis-aof-port", type=int, default=6391)
    ap.add_argument("--sizes", default="10000,1000000,10000000")
    ap.add_argument("--ks", default="1,2,4,8")
    ap.add_argument("--ops", type=int, default=500)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    for name in ["cairn-python", "python-sqlite3", "diskcache", "redis", "redis-aof"]:
        workdir = os.path.join(args.dir, name)
        os.makedirs(workdir, exist_ok=True)
        why = available(name, workdir, args)
        if why:
            emit({"workload": "all", "contender": name}, {"skipped": why})
            continue
        cache_workload(name, workdir, args)
        stampede_workload(name, workdir, args)
        for k in [int(x) for x in args.ks.split(",")]:
            overlap_workload(name, workdir, args, k, args.ops)
    if not available("cairn-python", os.path.join(args.dir, "cairn-python"), args):
        cairn_python_ledger_workload(os.path.join(args.dir, "cairn-python"), sizes)
        if not available("diskcache", os.path.join(args.dir, "diskcache"), args):
            paired_workload(os.path.join(args.dir, "paired"), args)
    ledger_workload(os.path.join(args.dir, "python-sqlite3"), sizes)
    for name, why in [
        ("diskcache", "no ledger of processed ids: it is a cache"),
        ("redis", "no ledger of processed ids on disk: a set in memory is another design"),
    ]:
        emit({"workload": "ledger", "contender": name}, {"skipped": why})


if __name__ == "__main__":
    sys.exit(main())
