"""Issue 22's rows: 1,000 concurrent gets and 1,000 concurrent sets from coroutines.

Three contenders, each on a cairn store file of its own in DIR (WAL, ``synchronous=NORMAL``:
cairn's default durability), in this one process and one event loop, interleaved: each round
times every contender once, in a rotating order, so that a change of load on a shared machine
moves them together. The figure is each contender's median over the rounds, and a ratio the
median of the per-round ratios.

- ``cairn-async``: ``cairn.AsyncStore``; ``await asyncio.gather(*(cache.get(k) for k in
  keys))`` (1,000 hits), then ``await asyncio.gather(*(cache.set(k, v, ttl=3600) ...))`` (1,000
  sets, each its own committed transaction).
- ``aiosqlite``: aiosqlite (pinned in requirements.txt) on one connection, on a file made by
  cairn (so the very ``cairn_cache`` table, its primary key ``(ns, key)`` and its indexes),
  opened in autocommit mode (``isolation_level=None``) with cairn's pragmas. A get is cairn's
  own statement, ``SELECT value, kind FROM cairn_cache WHERE ns = ? AND key = ? AND
  (expires_at IS NULL OR expires_at > ?)``; a set cairn's own upsert (value, kind, expiry,
  sweep column), one statement committed on its own. The same ``asyncio.gather`` of 1,000
  coroutines, each ``await``-ing its ``execute`` (and, for a get, ``fetchone``).
- ``cairn-sync``: the blocking ``cairn.Store``, the same 1,000 gets and sets in a plain loop
  (the floor the issue measures the async API against: within 2x of its rate).

One JSON line on stdout (``"workload": "async"``), read by report.py.

    python bench/compare/aio.py --dir DIR [--ops 1000] [--rounds 15]
"""

import argparse
import asyncio
import json
import os
import sys
import time

VALUE = "v" * 100  # a short page fragment, a token, a small JSON document
TTL = 3600
NS = "bench"

# cairn's own statements on its own table (crates/cairn-state/src/storage/sqlite/cache.rs):
# the read of a fresh entry, and the upsert that files a new entry under its expiry.
GET_SQL = ("SELECT value, kind FROM cairn_cache WHERE ns = ? AND key = ? "
           "AND (expires_at IS NULL OR expires_at > ?)")
SET_SQL = ("INSERT INTO cairn_cache (ns, key, value, expires_at, touched, kind, sweep_at) "
           "VALUES (?1, ?2, ?3, ?4, NULL, 1, ?4) "
           "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, "
           "expires_at = excluded.expires_at, touched = excluded.touched, kind = excluded.kind "
           "WHERE excluded.expires_at IS NULL OR cairn_cache.sweep_at <= excluded.expires_at")


def fill(cairn, path, keys):
    """A cairn store file at `path` holding `keys`, each with VALUE and a TTL."""
    store = cairn.Store(path)
    store.cache(NS).set_many([(k, VALUE) for k in keys], ttl=TTL)
    store.close()


async def contenders(d, ops):
    import cairn

    keys = [f"key-{i}" for i in range(ops)]
    counter = {"n": 0}

    def fresh_value():
        # A new value each round, so that every set writes (none is a no-op rewrite).
        counter["n"] += 1
        return VALUE + str(counter["n"])

    fs = {}
    closers = []

    path = os.path.join(d, "async.db")
    fill(cairn, path, keys)
    astore = cairn.AsyncStore(path)
    await astore.open()
    closers.append(astore.close)
    acache = astore.cache(NS)

    async def async_gets():
        got = await asyncio.gather(*[acache.get(k) for k in keys])
        if got[-1] != VALUE and not str(got[-1]).startswith(VALUE):
            raise SystemExit(f"cairn-async: get returned {got[-1]!r}")

    async def async_sets():
        v = fresh_value()
        await asyncio.gather(*[acache.set(k, v, ttl=TTL) for k in keys])

    fs["cairn-async"] = (async_gets, async_sets)

    path = os.path.join(d, "sync.db")
    fill(cairn, path, keys)
    store = cairn.Store(path)
    scache = store.cache(NS)

    async def sync_gets():
        for k in keys:
            scache.get(k)

    async def sync_sets():
        v = fresh_value()
        for k in keys:
            scache.set(k, v, ttl=TTL)

    fs["cairn-sync"] = (sync_gets, sync_sets)

    missing = {}
    version = None
    try:
        import aiosqlite
    except Exception as e:  # not installed: reported as skipped
        missing["aiosqlite"] = f"import aiosqlite: {e}"
    else:
        version = getattr(aiosqlite, "__version__", None)
        path = os.path.join(d, "aiosqlite.db")
        fill(cairn, path, keys)
        db = await aiosqlite.connect(path, isolation_level=None)
        closers.append(db.close)
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 5000"):
            await db.execute(f"PRAGMA {pragma}")

        async def one_get(k, now):
            async with db.execute(GET_SQL, (NS, k, now)) as cur:
                return await cur.fetchone()

        async def aio_gets():
            now = int(time.time() * 1000)
            got = await asyncio.gather(*[one_get(k, now) for k in keys])
            if got[-1] is None:
                raise SystemExit("aiosqlite: a get missed")

        async def one_set(k, v, expires):
            await db.execute(SET_SQL, (NS, k, v, expires))

        async def aio_sets():
            v = fresh_value().encode()
            expires = int(time.time() * 1000) + TTL * 1000
            await asyncio.gather(*[one_set(k, v, expires) for k in keys])

        fs["aiosqlite"] = (aio_gets, aio_sets)
    return fs, closers, version, missing


async def interleaved(fs, rounds, ops):
    """(contender, op) -> per-round milliseconds for `ops` operations."""
    names = list(fs)
    out = {(n, op): [] for n in names for op in ("get", "set")}
    for name in names:  # warm-up: threads started, statements prepared, pages cached
        for f in fs[name]:
            await f()
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            for op, f in zip(("get", "set"), fs[name]):
                t = time.perf_counter()
                await f()
                out[(name, op)].append((time.perf_counter() - t) * 1e3)
    return out


def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


async def main_async(args):
    fs, closers, version, missing = await contenders(args.dir, args.ops)
    load_before = open("/proc/loadavg").read().split()[:3]
    per = await interleaved(fs, args.rounds, args.ops)
    load_after = open("/proc/loadavg").read().split()[:3]
    for close in closers:
        await close()

    def ratio(a, b, op):
        """Median over rounds of a's rate over b's (b's time over a's)."""
        if (a, op) not in per or (b, op) not in per:
            return None
        rs = sorted(y / x for x, y in zip(per[(a, op)], per[(b, op)]))
        return {"median": rs[len(rs) // 2], "min": rs[0], "max": rs[-1]}

    key = lambda k: f"{k[0]}/{k[1]}"  # noqa: E731
    row = {"workload": "async", "ops": args.ops, "rounds": args.rounds,
           "median_ms": {key(k): med(v) for k, v in per.items()},
           "min_ms": {key(k): min(v) for k, v in per.items()},
           "max_ms": {key(k): max(v) for k, v in per.items()},
           "per_s": {key(k): args.ops / med(v) * 1e3 for k, v in per.items()},
           # async over aiosqlite: the speed-up (target >= 3); async over sync: the fraction of
           # the sync rate reached (target >= 0.5, i.e. within 2x).
           "ratios": {f"async/aiosqlite {op}": ratio("cairn-async", "aiosqlite", op) for op in ("get", "set")}
           | {f"async/sync {op}": ratio("cairn-async", "cairn-sync", op) for op in ("get", "set")},
           "aiosqlite": version, "missing": missing,
           "loadavg": {"before": load_before, "after": load_after}}
    print(json.dumps(row), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--ops", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
