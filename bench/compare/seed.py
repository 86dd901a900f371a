"""Issue 19's rows: cairn from Python against the class the seed describes, and diskcache.

The seed's class is what a careful engineer writes with the standard library: ``sqlite3``,
WAL, ``synchronous=NORMAL``, ``INSERT ... ON CONFLICT DO UPDATE``, an ``expires_at`` column
with no index, and ``filter_new`` by chunked ``IN (...)`` of 999 ids. Workloads:

- a cache of 100,000 keys with 100-character values, read and written in one fixed random
  order (``random.Random(19)``), every contender filled the same way first;
- a ledger of 1,000,000 done ids, ``filter_new`` of 10,000 ids (half known), and marking one
  new id per transaction.

Contenders run interleaved: each round times every contender once on the same operation, in
a rotating order, so that a change of load on a shared machine moves them together. The
figure is each contender's mean over the rounds (its total time over its total calls, so that a
cost that comes every few thousand calls, a checkpoint of the log, counts in full), the ratio the
ratio of the totals; the median and the spread of the per-round ratios are kept beside. One JSON line per operation on stdout (``"workload": "seed"``), read by report.py.

    python bench/compare/seed.py --dir DIR [--keys 100000] [--ledger 1000000] [--rounds 9]
"""

import argparse
import json
import os
import random
import sqlite3
import sys
import time

TTL = 3600.0
VALUE = "v" * 100


class SeedState:
    """The seed's class, exactly as described: no index on expiry, chunked IN for filter_new."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, timeout=5)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value, expires_at REAL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS processed (id TEXT PRIMARY KEY, done_at REAL)")
        self.db.commit()

    def get(self, key):
        row = self.db.execute(
            "SELECT value FROM cache WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)", (key, time.time())
        ).fetchone()
        return row[0] if row else None

    def set(self, key, value, ttl=None):
        self.db.execute(
            "INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value, expires_at = excluded.expires_at",
            (key, value, None if ttl is None else time.time() + ttl),
        )
        self.db.commit()

    def set_many(self, keys, value, ttl=None):
        with self.db:
            self.db.executemany(
                "INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value, expires_at = excluded.expires_at",
                [(k, value, None if ttl is None else time.time() + ttl) for k in keys],
            )

    def mark_done(self, id_):
        self.db.execute("INSERT OR IGNORE INTO processed (id, done_at) VALUES (?, ?)", (id_, time.time()))
        self.db.commit()

    def mark_done_many(self, ids):
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO processed (id, done_at) VALUES (?, 0)", ((i,) for i in ids))

    def filter_new(self, ids):
        done = set()
        for start in range(0, len(ids), 999):
            chunk = ids[start : start + 999]
            sql = f"SELECT id FROM processed WHERE id IN ({','.join('?' * len(chunk))})"
            done.update(r[0] for r in self.db.execute(sql, chunk))
        return [i for i in ids if i not in done]


def contenders(workdir, names):
    """name -> (cache-like, ledger-like or None)."""
    out = {}
    for name in names:
        d = os.path.join(workdir, name)
        os.makedirs(d, exist_ok=True)
        if name == "seed":
            s = SeedState(os.path.join(d, "seed.db"))
            out[name] = (s, s)
        elif name == "cairn-python":
            import cairn

            store = cairn.Store(os.path.join(d, "cairn.db"))
            out[name] = (store.cache("bench"), store.ledger("bench"))
            out[name + "/store"] = store
        elif name == "diskcache":
            import diskcache

            c = diskcache.Cache(os.path.join(d, "dc"))

            class D:
                get = staticmethod(c.get)

                @staticmethod
                def set(key, value, ttl=None):
                    c.set(key, value, expire=ttl)

            out[name] = (D(), None)
    return out


def interleaved(op, fs, n, rounds, baseline="seed"):
    """Time each of fs (name -> f(i)) over n calls per round, rounds rounds, rotating order."""
    names = list(fs)
    per = {k: [] for k in names}
    for name in names:  # warm-up, on indices the rounds do not use
        for i in range(min(n, 200)):
            fs[name](10**9 + i)
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            f = fs[name]
            t = time.perf_counter()
            for i in range(n):
                f(r * n + i)
            per[name].append((time.perf_counter() - t) * 1e6 / n)
    med = {k: sorted(v)[len(v) // 2] for k, v in per.items()}
    # The figure is the mean over every round (total time over total calls), and a speed-up the
    # ratio of the totals: a cost that comes every few thousand calls (a checkpoint of the log)
    # counts in full, where a median of rounds shorter than its period would skip it.
    mean = {k: sum(v) / len(v) for k, v in per.items()}
    ratios = {}
    if baseline in per:
        for k in names:
            if k != baseline:
                rs = sorted(b / a for a, b in zip(per[k], per[baseline]))
                ratios[k] = {"total": mean[baseline] / mean[k], "median": rs[len(rs) // 2], "min": rs[0], "max": rs[-1]}
    row = {"workload": "seed", "op": op, "n": n, "rounds": rounds, "mean_us": mean, "median_us": med,
           "min_us": {k: min(v) for k, v in per.items()}, "max_us": {k: max(v) for k, v in per.items()},
           "speedup_over_" + baseline: ratios, "loadavg": open("/proc/loadavg").read().split()[:3]}
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--ledger", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--contenders", default="cairn-python,seed,diskcache")
    ap.add_argument("--ops", default="set_ttl,set_no_ttl,get_hit,filter_new_10k,mark")
    args = ap.parse_args()
    names = args.contenders.split(",")
    ops = args.ops.split(",")
    cs = contenders(args.dir, names)
    rng = random.Random(19)
    keys = [f"https://example.com/page/{i}" for i in range(args.keys)]
    order = keys[:]
    rng.shuffle(order)
    nk = len(order)
    if {"set_ttl", "get_hit"} & set(ops):
        for name in names:
            c = cs[name][0]
            if name == "cairn-python":
                store = cs[name + "/store"]
                with store.transaction() as tx:
                    t = tx.cache("bench")
                    for k in keys:
                        t.set(k, VALUE, TTL)
            elif name == "seed":
                c.set_many(keys, VALUE, TTL)
            else:
                for k in keys:
                    c.set(k, VALUE, TTL)
    if "set_ttl" in ops:
        interleaved("set_ttl", {n: (lambda c: lambda i: c.set(order[i % nk], VALUE, TTL))(cs[n][0]) for n in names},
                    2000, args.rounds)
    if "get_hit" in ops:
        interleaved("get_hit", {n: (lambda c: lambda i: c.get(order[i % nk]))(cs[n][0]) for n in names},
                    20_000, args.rounds, baseline="diskcache" if "diskcache" in names else "seed")
    if "set_no_ttl" in ops:
        # A namespace of its own, small (1,000 keys): the "set without a TTL" row.
        small = {}
        for n in names:
            if n == "cairn-python":
                small[n] = cs[n + "/store"].cache("nottl")
            else:
                small[n] = cs[n][0]
        few = [f"k{i}" for i in range(1000)]
        interleaved("set_no_ttl", {n: (lambda c: lambda i: c.set(few[i * 7 % 1000], VALUE, None))(small[n])
                                   for n in names}, 2000, args.rounds)
    ledgers = {n: cs[n][1] for n in names if cs[n][1] is not None}
    if {"filter_new_10k", "mark"} & set(ops) and ledgers:
        for n, led in ledgers.items():
            for start in range(0, args.ledger, 100_000):
                led.mark_done_many([f"order-{i:09}" for i in range(start, min(start + 100_000, args.ledger))])
        batch = [f"order-{rng.randrange(args.ledger):09}" if i % 2 == 0 else f"fresh-{i:09}" for i in range(10_000)]
        answers = {n: led.filter_new(batch) for n, led in ledgers.items()}
        if len({tuple(a) for a in answers.values()}) != 1:
            raise SystemExit("filter_new: the contenders disagree")
        if "filter_new_10k" in ops:
            interleaved("filter_new_10k", {n: (lambda led: lambda i: led.filter_new(batch))(led)
                                           for n, led in ledgers.items()}, 3, args.rounds)
        if "mark" in ops:
            interleaved("mark", {n: (lambda led, n: lambda i: led.mark_done(f"new-{n}-{i}"))(led, n)
                                 for n, led in ledgers.items()}, 1000, args.rounds)


if __name__ == "__main__":
    sys.exit(main())
