"""A resumable backfill, the Python twin of the Rust demo (crates/cairn-state/examples/demo.rs).

It enriches 20,000 orders. Each needs its customer's profile (an expensive lookup, computed
once and cached for an hour, even across processes) and a slow call that fails now and then.
Each batch's results go into the ledger together with the job's checkpoint, in one
transaction; failed orders are retried in later passes and given up after three attempts. A
named lock keeps two runs from overlapping.

Kill it at any moment (Ctrl-C, ``kill -9``) and run it again: it carries on without redoing a
single order. Run it once more when it has finished: it says there is nothing to do.

    python crates/cairn-py/examples/backfill.py [--db PATH] [--orders N] [--step-ms MS] [--reset]

``--db`` defaults to the store the CLI uses ($CAIRN_DB, else ~/.local/state/cairn/state.db).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import cairn

LEDGER = "backfill-orders"
BATCH = 500
CUSTOMERS = 2_000
MAX_ATTEMPTS = 3


def stable_hash(text: str, salt: int = 0) -> int:
    """A hash that is the same in every process (Python's hash() is not)."""
    digest = hashlib.blake2b(f"{salt}:{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def customer_of(order: str) -> str:
    return f"customer-{stable_hash(order) % CUSTOMERS}"


def lookup_customer(customer: str) -> str:
    """Stands in for a slow profile service."""
    time.sleep(0.0002)
    return ["bronze", "silver", "gold"][stable_hash(customer, 1) % 3]


def slow_call(order: str, step: float, nonce: int) -> int:
    """Stands in for a slow API call that fails about 3% of the time."""
    time.sleep(step)
    h = stable_hash(order, nonce)
    if h % 100 < 3:
        raise ConnectionError(f"upstream returned HTTP 503 for {order}")
    return h % 100_000


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", help="the store's file (default: the CLI's default store)")
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--step-ms", type=float, default=0.1, help="how long each slow call takes")
    ap.add_argument("--reset", action="store_true", help="forget all progress and start over")
    args = ap.parse_args(argv)
    started = time.monotonic()

    with cairn.Store(args.db) as store:
        print(f"store: {store.path}", flush=True)
        try:
            # No two runs at once; a run killed with -9 leaves a lock the next run takes over
            # at once (its process is gone), and a long run keeps it renewed.
            with store.lock(LEDGER, ttl="1m", timeout=0):
                return run(store, args, started)
        except cairn.LockHeldError as e:
            print(f"another run is in progress: {e}", file=sys.stderr)
            return 1


def run(store: cairn.Store, args: argparse.Namespace, started: float) -> int:
    if args.reset:
        with store.transaction() as tx:
            tx.ledger(LEDGER).clear()
            tx.checkpoint(LEDGER).delete()
        print("reset: starting over", flush=True)

    ids = [f"order-{i:06}" for i in range(args.orders)]
    ledger = store.ledger(LEDGER, max_attempts=MAX_ATTEMPTS)
    todo = ledger.filter_new(ids)
    progress: Dict[str, int] = store.checkpoint(LEDGER).get() or {
        "runs": 0,
        "batches": 0,
        "enriched": 0,
        "failures": 0,
    }
    if not todo:
        c = ledger.counts()
        elapsed = (time.monotonic() - started) * 1000
        print(
            f"all {len(ids)} orders already handled ({c.done} done, {c.failed} given up) - "
            f"nothing to do; checked in {elapsed:.0f} ms",
            flush=True,
        )
        return 0
    progress["runs"] += 1
    print(
        f"run #{progress['runs']}: {len(todo)} of {len(ids)} orders to do "
        f"({progress['enriched']} enriched before, {progress['batches']} batches committed so far)",
        flush=True,
    )

    customers = store.cache("backfill-customers")
    lookups = 0
    nonce = time.monotonic_ns()
    for attempt in range(MAX_ATTEMPTS):
        if not todo:
            break
        if attempt > 0:
            print(f"pass {attempt + 1}: retrying {len(todo)} failed orders", flush=True)
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            done: List[Tuple[str, Dict[str, Any]]] = []
            failed: List[Tuple[str, BaseException]] = []
            for order in batch:
                customer = customer_of(order)

                def lookup(customer: str = customer) -> str:
                    nonlocal lookups
                    lookups += 1
                    return lookup_customer(customer)

                tier = customers.get_or_set(customer, lookup, ttl="1h")
                try:
                    total = slow_call(order, args.step_ms / 1000, nonce + attempt)
                except ConnectionError as e:
                    failed.append((order, e))
                    continue
                done.append((order, {"customer": customer, "tier": tier, "total_cents": total}))
            progress["batches"] += 1
            progress["enriched"] += len(done)
            progress["failures"] += len(failed)
            # The batch's marks, its failures and the checkpoint: all of it, or none of it.
            with store.transaction() as tx:
                tx_ledger = tx.ledger(LEDGER, max_attempts=MAX_ATTEMPTS)
                for order, result in done:
                    tx_ledger.mark_done(order, result=result)
                for order, error in failed:
                    tx_ledger.fail(order, error)
                tx.checkpoint(LEDGER).set(progress)
            print(f"batch {progress['batches']} committed: {len(done)} done, {len(failed)} failed", flush=True)
        todo = ledger.filter_new(todo)

    c = ledger.counts()
    stats = customers.stats()
    print(
        f"run #{progress['runs']} finished in {time.monotonic() - started:.1f} s: {c.done} orders done, "
        f"{c.failed} given up after {MAX_ATTEMPTS} attempts",
        flush=True,
    )
    print(
        f"customer lookups: {lookups} computed this run, cache hit rate "
        f"{100 * (stats.hit_rate or 0):.1f}% over all runs",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
