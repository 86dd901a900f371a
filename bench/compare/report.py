"""Turn bench/compare's results (JSON lines) into tables in docs/BENCHMARKS.md and a chart.

Usage: report.py RESULTS.jsonl docs/BENCHMARKS.md docs/img

The tables replace what stands between the bench-compare markers of the markdown file (the
section is appended the first time); the PostgreSQL tables, between the bench-compare-pg
markers. Each block is rewritten only when the results hold its workloads, so a
`bench/compare/run --pg-only` run leaves the SQLite tables as they were. Standard library only, except the chart (matplotlib),
which is reported as skipped with the reason when it cannot be drawn.
"""

import json
import os
import sys
from collections import defaultdict

BEGIN = "<!-- bench-compare:begin -->"
END = "<!-- bench-compare:end -->"
CLI_BEGIN = "<!-- bench-compare-cli:begin -->"
CLI_END = "<!-- bench-compare-cli:end -->"
# (row, what cairn runs, the other contender, what it runs, target ratio)
CLI_ROWS = [
    ("startup", "`cairn --version`", "rust-hello", "a minimal Rust binary printing a line", 1.5),
    ("cache_get", "`cairn cache get KEY`", "sqlite3", "`sqlite3 FILE \"SELECT value FROM cairn_cache WHERE ...\"`", 1.3),
    ("memo_hit", "`cairn memo --ttl 1h -- echo hello` (a fresh hit)", "bkt", "`bkt --ttl 1h -- echo hello`", 2.0),
]
SEED_BEGIN = "<!-- bench-compare-seed:begin -->"
SEED_END = "<!-- bench-compare-seed:end -->"
# (operation, what it is, the contender of its target, the speed-up over it that is the target)
SEED_ROWS = [
    ("set_ttl", "set with a TTL, one transaction each", "seed", 1.5),
    ("set_no_ttl", "set without a TTL (a namespace of 1,000 keys)", None, None),
    ("filter_new_10k", "`filter_new` of 10,000 ids (half known) at 1,000,000", "seed", 2.0),
    ("get_hit", "get, hit", "diskcache", 2.0),
    ("mark", "mark one id per transaction at 1,000,000", "seed", 1.0),
]
RUNS_BEGIN = "<!-- bench-compare-runs:begin -->"
RUNS_END = "<!-- bench-compare-runs:end -->"
QUEUES_BEGIN = "<!-- bench-compare-queues:begin -->"
QUEUES_END = "<!-- bench-compare-queues:end -->"
ASYNC_BEGIN = "<!-- bench-compare-async:begin -->"
ASYNC_END = "<!-- bench-compare-async:end -->"
PG_BEGIN = "<!-- bench-compare-pg:begin -->"
PG_END = "<!-- bench-compare-pg:end -->"
PG_TARGET = 1.3  # cairn's time per item at most this many times the floor's, at every K
ORDER = ["cairn", "cairn-python", "floor", "json", "python-sqlite3", "diskcache", "redis", "redis-aof"]


def us(x):
    if x >= 10_000:
        return f"{x / 1000:,.1f} ms"
    if x >= 100:
        return f"{x:,.0f} µs"
    return f"{x:.2f} µs"


def rank(name):
    return ORDER.index(name) if name in ORDER else len(ORDER)


def ms(x):
    return f"{x / 1000:.2f} ms"


def cli_block(rows, machine, loads):
    """The command-line rows: whole processes, in alternating rounds."""
    by = {(r["op"], r["contender"]): r for r in rows if "median_us" in r}
    rounds = next((r["rounds"] for r in rows if "rounds" in r), "?")
    out = [CLI_BEGIN, "",
           f"Produced by `bench/compare/run --cli` (or the full run). Each call spawns the process and waits "
           f"for it: start-up, opening the store, the work, exit. The two contenders of a row run in "
           f"alternation, one call each per round, {rounds} rounds; wall-clock medians (the interquartile "
           f"range beside them) and, in the last column, the median CPU time (user + system) of the "
           f"process, which other work on the machine disturbs much less.", ""]
    if machine:
        out += [f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores), Linux {machine.get('kernel')}, "
                f"{machine.get('fs')}; {machine.get('rustc')}; sqlite3 CLI {machine.get('sqlite3_cli')}. "
                f"Run {machine.get('date')}." + (f" Load average (1, 5, 15 min) before: {loads.get('before')}, "
                                                 f"after: {loads.get('after')}." if loads else ""), ""]
    out += ["| what | cairn | the other | wall ratio | target | CPU: cairn / other |",
            "|---|---:|---:|---:|---|---:|"]
    for op, cairn_cmd, other, other_cmd, target in CLI_ROWS:
        c, o = by.get((op, "cairn")), by.get((op, other))
        if not c:
            continue
        if not o:
            out.append(f"| {cairn_cmd} vs {other_cmd} | {ms(c['median_us'])} | skipped | | ≤ {target}× | |")
            continue
        ratio = c["median_us"] / o["median_us"]
        mark = "✔" if ratio <= target else "✘"
        iqr = lambda r: f"{ms(r['median_us'])} ({ms(r['q1_us'])}–{ms(r['q3_us'])})"
        out.append(f"| {cairn_cmd} vs {other_cmd} | {iqr(c)} | {iqr(o)} | **{ratio:.2f}×** | ≤ {target}× {mark} | "
                   f"{ms(c['cpu_median_us'])} / {ms(o['cpu_median_us'])} = {c['cpu_median_us'] / o['cpu_median_us']:.2f}× |")
    floor, c, b = by.get(("memo_hit", "rusqlite-read")), by.get(("memo_hit", "cairn")), by.get(("memo_hit", "bkt"))
    if floor and c and b:
        out += ["", f"The floor of any replay kept in SQLite, measured in the same rounds: a Rust process that opens "
                    f"the file and reads the row with rusqlite, nothing else (`cairn-read-floor`), takes "
                    f"{ms(floor['median_us'])}, {floor['median_us'] / b['median_us']:.2f}× bkt; cairn's replay is "
                    f"{c['median_us'] / floor['median_us']:.2f}× that floor."]
    skipped = [r for r in rows if "skipped" in r]
    if skipped:
        out += [""] + [f"- {r['contender']} skipped: {r['skipped']}" for r in skipped]
    out += ["", CLI_END]
    return "\n".join(out)


def write_cli(md_path, rows, machine, loads):
    text = open(md_path).read()
    block = cli_block(rows, machine, loads)
    if CLI_BEGIN in text and CLI_END in text:
        text = text[: text.index(CLI_BEGIN)] + block + text[text.index(CLI_END) + len(CLI_END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    open(md_path, "w").write(text)
    for op, _, other, _, target in CLI_ROWS:
        c = next((r for r in rows if r.get("op") == op and r["contender"] == "cairn" and "median_us" in r), None)
        o = next((r for r in rows if r.get("op") == op and r["contender"] == other and "median_us" in r), None)
        if c and o:
            print(f"cli {op}: cairn {ms(c['median_us'])}, {other} {ms(o['median_us'])}: "
                  f"{c['median_us'] / o['median_us']:.2f}× (target ≤ {target}×)")


def main(results_path, md_path, img_dir):
    rows = [json.loads(line) for line in open(results_path) if line.strip()]
    machine = next((r for r in rows if r["workload"] == "machine"), {})
    loads = {r["when"]: r["loadavg"] for r in rows if r["workload"] == "load"}
    cli = [r for r in rows if r["workload"] == "cli"]
    if cli:
        write_cli(md_path, cli, machine, loads)
    skipped = [r for r in rows if "skipped" in r and r["workload"] != "cli"]
    by = defaultdict(list)
    for r in rows:
        if "skipped" not in r and r["workload"] not in ("machine", "cli", "load"):
            by[r["workload"]].append(r)
    if not by:
        return  # a --cli run: the other tables stay as they are

    text = open(md_path).read() if os.path.exists(md_path) else "# Benchmarks\n"
    if any(w.startswith("pg_") for w in by):
        block = "\n".join(pg_block(by, machine, skipped))
        text = replace_block(text, PG_BEGIN, PG_END, block, "## On PostgreSQL")
        print("\n".join(pg_targets(by)))
    if by["seed"]:
        block = "\n".join(seed_block(by["seed"], machine, loads))
        text = replace_block(text, SEED_BEGIN, SEED_END, block, "## From Python, against the seed's class (issue 19)")
    if by["runs"]:
        block = "\n".join(runs_block(by["runs"][-1], machine))
        text = replace_block(text, RUNS_BEGIN, RUNS_END, block,
                             "## Durable runs: a step against a mark and a cache hit (issue 24)")
    queue_rows = [r for w in ("queue-claim-ack", "queue-wake", "limiter-rate", "limiter-bound") for r in by[w]]
    if queue_rows:
        block = "\n".join(queues_block(queue_rows, [r for r in skipped if r["workload"].startswith(("queue", "limiter"))],
                                        machine))
        text = replace_block(text, QUEUES_BEGIN, QUEUES_END, block,
                             "## Queue waits and rate limits beside Honker and PyrateLimiter (issue 20)")
    if by["async"]:
        block = "\n".join(async_block(by["async"][-1], machine))
        text = replace_block(text, ASYNC_BEGIN, ASYNC_END, block,
                             "## asyncio: cairn.AsyncStore beside aiosqlite and the sync Store (issue 22)")
    if not (by["cache"] or by["ledger"]):
        open(md_path, "w").write(text)
        return

    out = [BEGIN, "", "Produced by `bench/compare/run` (the whole run: builds, virtualenv, its own Redis "
           "servers, every workload; see the script's header). Every figure below comes from that "
           "one run on one machine. Times are per operation: the median of 7 rounds, the spread is "
           "the fastest and slowest round; ratios are to the raw-rusqlite floor.", ""]
    if machine:
        out.append(
            f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores), {machine.get('mem_gib')} GiB, "
            f"Linux {machine.get('kernel')}, {machine.get('fs')}; {machine.get('rustc')}; Python "
            f"{machine.get('python')}; Redis {machine.get('redis')}; sqlite3 CLI {machine.get('sqlite3_cli')}; "
            f"{machine.get('jq')}. Run {machine.get('date')}."
        )
        out.append("")

    floor = {}
    for r in by["cache"] + by["ledger"]:
        if r["contender"] == "floor":
            floor[(r["workload"], r["op"], r.get("size"))] = r["median_us"]

    def ratio(r):
        f = floor.get((r["workload"], r["op"], r.get("size")))
        return f"{r['median_us'] / f:.2f}×" if f else ""

    out += ["### Cache", "", "| operation | contender | median | spread | × floor |", "|---|---|---:|---:|---:|"]
    for op in ["get_hit", "get_miss", "set_ttl", "set_10k_tx"]:
        for r in sorted((r for r in by["cache"] if r["op"] == op), key=lambda r: rank(r["contender"])):
            out.append(f"| {op} | {r['contender']} | {us(r['median_us'])} | {us(r['min_us'])}–{us(r['max_us'])} | {ratio(r)} |")
    out.append("")

    out += ["### Ledger against its size", "", "| ids recorded | operation | contender | median | spread | × floor |",
            "|---:|---|---|---:|---:|---:|"]
    for r in sorted(by["ledger"], key=lambda r: (r["size"], r["op"], rank(r["contender"]))):
        out.append(f"| {r['size']:,} | {r['op']} | {r['contender']} | {us(r['median_us'])} | "
                   f"{us(r['min_us'])}–{us(r['max_us'])} | {ratio(r)} |")
    out.append("")

    out += ["### Stampede: 4 processes miss one key whose computation takes 100 ms", "",
            "| contender | computations | total |", "|---|---:|---:|"]
    for r in sorted(by["stampede"], key=lambda r: rank(r["contender"])):
        out.append(f"| {r['contender']} | {r['computations']} | {r['total_ms']:.0f} ms |")
    out.append("")

    out += ["### Cron overlap: K processes increment one counter", "",
            "| contender | K | increments/s | errors reaching the caller | lost updates |", "|---|---:|---:|---:|---:|"]
    for r in sorted(by["overlap"], key=lambda r: (rank(r["contender"]), r["k"])):
        out.append(f"| {r['contender']} | {r['k']} | {r['ops_per_s']:,.0f} | {r['errors']} | {r['lost']} |")
    out.append("")

    shell = sorted(by["shell"], key=lambda r: rank(r["contender"]))
    cairn_shell = next((r["total_ms"] for r in shell if r["contender"] == "cairn"), None)
    out += ["### Shell: 1,000 items, each checked then marked, one command per step", "",
            "| contender | total | per item | × cairn |", "|---|---:|---:|---:|"]
    for r in shell:
        x = f"{r['total_ms'] / cairn_shell:.2f}×" if cairn_shell else ""
        out.append(f"| {r['contender']} | {r['total_ms']:,} ms | {r['total_ms'] / r['items']:.2f} ms | {x} |")
    out.append("")

    if by["paired"]:
        out += ["### The Python package against its targets, in alternating rounds", "",
                "Measured in one process, each round timing every contender once, so that a change of "
                "load between workloads cannot favour either side; the ratio is the median over rounds "
                "of the per-round ratio (spread: fastest and slowest round).", "",
                "| operation | contender | median | other | median | other / cairn-python | spread |",
                "|---|---|---:|---|---:|---:|---:|"]
        for r in by["paired"]:
            other = next(c for c in r["contenders"] if c != "cairn-python")
            out.append(f"| {r['op']} | cairn-python | {us(r['median_us']['cairn-python'])} | {other} | "
                       f"{us(r['median_us'][other])} | {r['ratio']:.2f}× | {r['ratio_min']:.2f}×–{r['ratio_max']:.2f}× |")
        out.append("")

    out += ["### Targets", ""] + targets(by) + [""]

    chart = draw(by["ledger"], img_dir)
    out += ["### Cost against ledger size", "",
            f"![is_done and mark against the number of ids recorded](img/{os.path.basename(chart)})" if chart.endswith(".svg")
            else f"Chart skipped: {chart}", ""]

    sqlite_skipped = [r for r in skipped if not r["workload"].startswith("pg")]
    if sqlite_skipped:
        out += ["### Skipped", "", "| workload | contender | why |", "|---|---|---|"]
        out += [f"| {r['workload']} | {r['contender']} | {r['skipped']} |" for r in sqlite_skipped]
        out.append("")
    out.append(END)

    text = replace_block(text, BEGIN, END, "\n".join(out), "## Side by side with the alternatives (issue 6)")
    open(md_path, "w").write(text)
    print("\n".join(targets(by)))


def seed_block(rows, machine, loads):
    """Issue 19's table: cairn from Python, the seed's stdlib-sqlite3 class and diskcache."""
    by_op = {r["op"]: r for r in rows}
    any_row = rows[0]
    out = [SEED_BEGIN, "", "Produced by `bench/compare/run` (or `bench/compare/run --seed` for this table alone): "
           "`bench/compare/seed.py` in the bench's virtualenv. A cache of 100,000 keys with 100-character "
           "values, every contender filled the same way, read and written in one fixed random order; a "
           "ledger of 1,000,000 done ids. The seed's class is the standard library's `sqlite3`, WAL, "
           "`synchronous=NORMAL`, `INSERT ... ON CONFLICT DO UPDATE`, no index on expiry, `filter_new` by "
           f"chunked `IN (...)` of 999. The contenders run interleaved, {any_row['rounds']} rounds, each round "
           "timing every contender once in a rotating order; times are means over the rounds (total time "
           "over total calls, so that the log's checkpoint, every few thousand commits, counts in full), the "
           "speed-up is the ratio of the totals (the spread: the lowest and highest per-round ratio).", ""]
    if machine:
        out += [f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores), {machine.get('mem_gib')} GiB, "
                f"Linux {machine.get('kernel')}, {machine.get('fs')}; Python {machine.get('python')}. "
                f"Run {machine.get('date')}. Load average (1, 5, 15 min) during the rows: "
                + "; ".join(f"{r['op']} {' '.join(r['loadavg'])}" for r in rows) + ".", ""]
    out += ["| operation | cairn from Python | seed-style class | diskcache | cairn's speed-up | spread | target |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for op, label, over, target in SEED_ROWS:
        r = by_op.get(op)
        if not r:
            continue
        med = r.get("mean_us", r["median_us"])
        cell = lambda name: us(med[name]) if name in med else ""  # noqa: E731
        speed, spread, verdict = "", "", ""
        if over:
            x = r.get(f"speedup_over_{over}", {}).get("cairn-python")
            if x:
                x_total = x.get("total", x["median"])
                speed = f"**{x_total:.2f}×** over {'the seed class' if over == 'seed' else over}"
                spread = f"{x['min']:.2f}–{x['max']:.2f}×"
                ok = x_total >= target
                verdict = f"{'✔' if ok else '✘'} ≥ {target}×" if target != 1.0 else f"{'✔' if ok else '✘'} hold (≥ 1×)"
        elif op == "set_no_ttl" and "set_ttl" in by_op and "cairn-python" in med:
            ttl = by_op["set_ttl"].get("mean_us", by_op["set_ttl"]["median_us"]).get("cairn-python")
            if ttl:
                speed = f"a TTL costs {ttl / med['cairn-python']:.2f}× this"
                verdict = "(a TTL should cost little more)"
        out.append(f"| {label} | {cell('cairn-python')} | {cell('seed')} | {cell('diskcache')} | {speed} | {spread} | {verdict} |")
    out += ["", SEED_END]
    return out


def replace_block(text, begin, end, block, heading):
    """Put block in place of what stands between begin and end, or append it under heading."""
    if begin in text and end in text:
        return text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    return text.rstrip("\n") + f"\n\n{heading}\n\n" + block + "\n"


def per_s(x):
    return f"{x:,.0f}"


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def pg_claim_rows(by, batch):
    """(K, cairn row, floor row, paired ratios) for one batch size, by K."""
    rows = {}
    for r in by["pg_claims"]:
        if r["batch"] == batch:
            rows.setdefault(r["k"], {})[r["contender"]] = r
    out = []
    for k in sorted(rows):
        c, f = rows[k].get("cairn"), rows[k].get("floor")
        paired = [fr / cr for cr, fr in zip(c["rounds"], f["rounds"])] if c and f else []
        out.append((k, c, f, paired))
    return out


def pg_block(by, machine, skipped):
    out = [PG_BEGIN, "",
           "Produced by `bench/compare/run` (or `bench/compare/run --pg-only` for this section alone), on the "
           "PostgreSQL server named by `CAIRN_BENCH_PG`. Every queue is a fresh schema, `VACUUM (ANALYZE)`d "
           "before its run (autovacuum is off on this server). Contenders run one after the other within each "
           "round, alternating which goes first; rates are the median of the rounds, the spread is the slowest "
           "and fastest round.", ""]
    server = next((r for r in by["pg_server"]), None)
    if machine or server:
        m = machine or {}
        desc = f"Machine: {m.get('cpu')} ({m.get('cores')} cores), {m.get('mem_gib')} GiB, Linux {m.get('kernel')}; {m.get('rustc')}."
        if server:
            desc += (f" PostgreSQL {server['server_version']} on the same machine, over TCP loopback: "
                     f"synchronous_commit={server['synchronous_commit']}, fsync={server['fsync']}, "
                     f"wal_sync_method={server['wal_sync_method']}, commit_delay={server['commit_delay']}, "
                     f"shared_buffers={server['shared_buffers']}, autovacuum={server['autovacuum']}, "
                     f"max_locks_per_transaction={server['max_locks_per_transaction']}.")
        out += [desc + f" Run {m.get('date', '')}.", ""]
    lat = by["pg_latency"]
    if lat:
        out.append("What a round trip and a commit cost during the run (a prepared `SELECT 1`; an autocommit "
                   "one-row `UPDATE`, which waits for its WAL flush): " + "; ".join(
                       f"{r['when']}: {r['round_trip_us']:.0f} µs and {r['commit_us']:.0f} µs" for r in lat) + ".")
        out.append("")

    single = pg_claim_rows(by, 1)
    if single:
        items = single[0][1]["items"] if single[0][1] else ""
        out += [f"### Claim and complete, one item at a time: {items:,} items, K worker processes", "",
                "| K | cairn items/s | spread | floor items/s | spread | floor ÷ cairn (medians) | per round | target |",
                "|---:|---:|---:|---:|---:|---:|---:|---|"]
        for k, c, f, paired in single:
            if not (c and f):
                continue
            ratio = f["median_per_s"] / c["median_per_s"]
            ok = "✔" if ratio <= PG_TARGET else "✘"
            out.append(f"| {k} | {per_s(c['median_per_s'])} | {per_s(c['min_per_s'])}–{per_s(c['max_per_s'])} | "
                       f"{per_s(f['median_per_s'])} | {per_s(f['min_per_s'])}–{per_s(f['max_per_s'])} | "
                       f"**{ratio:.2f}×** | {min(paired):.2f}–{max(paired):.2f}× | {ok} ≤ {PG_TARGET}× |")
        if all(c and f and "client_cpu_us" in c for _, c, f, _ in single):
            out += ["", "CPU per item (median of the rounds; the workers' own CPU time and their server backends', "
                    "from `/proc/PID/schedstat`):", "",
                    "| K | cairn: worker | cairn: server | floor: worker | floor: server | cairn ÷ floor, both sides |",
                    "|---:|---:|---:|---:|---:|---:|"]
            for k, c, f, _ in single:
                cs, fs = c["client_cpu_us"] + c["server_cpu_us"], f["client_cpu_us"] + f["server_cpu_us"]
                out.append(f"| {k} | {c['client_cpu_us']:.0f} µs | {c['server_cpu_us']:.0f} µs | "
                           f"{f['client_cpu_us']:.0f} µs | {f['server_cpu_us']:.0f} µs | {cs / fs:.2f}× |")
        loads = [x for r in by["pg_claims"] if r["batch"] == 1 for x in r.get("load", [])]
        if loads:
            out += ["", f"Load average at the start of each run: {min(loads):.1f} to {max(loads):.1f} "
                    f"(median {median(loads):.1f}) on {machine.get('cores', '?')} cores."]
        out.append("")

    batches = sorted({r["batch"] for r in by["pg_claims"] if r["batch"] > 1})
    if batches:
        one = {(k, r["contender"]): r for r in by["pg_claims"] if r["batch"] == 1 for k in [r["k"]]}
        items = next(r["items"] for r in by["pg_claims"] if r["batch"] > 1)
        out += [f"### Batch claims: N items claimed at once, completed at once: {items:,} items", "",
                "cairn: `claim_next_many(worker, lease, N)`, then `complete_many` of the batch. Floor: the same "
                "claim statement with `LIMIT N`, then one fenced `UPDATE … FROM unnest(ids, tokens)` for the "
                "batch, each in autocommit.", "",
                "| N | K | cairn items/s | spread | × cairn one at a time | floor items/s | spread | floor ÷ cairn |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for b in batches:
            for k, c, f, _ in pg_claim_rows(by, b):
                if not (c and f):
                    continue
                base = one.get((k, "cairn"))
                gain = f"{c['median_per_s'] / base['median_per_s']:.1f}×" if base else ""
                out.append(f"| {b} | {k} | {per_s(c['median_per_s'])} | {per_s(c['min_per_s'])}–{per_s(c['max_per_s'])} | "
                           f"{gain} | {per_s(f['median_per_s'])} | {per_s(f['min_per_s'])}–{per_s(f['max_per_s'])} | "
                           f"{f['median_per_s'] / c['median_per_s']:.2f}× |")
        out.append("")

    trips = [r for r in by["pg_round_trips"] if r["op"] == "claim+complete"]
    if trips:
        out += ["### Round trips and statements per item, counted on the wire", "",
                "One worker through a relay that reads the client's side of the protocol (a `Sync` or a simple "
                "`Query` is a round trip; an `Execute` or a simple `Query` a statement). Prepared-statement "
                "set-up is included; the relay's own latency is not in any timed figure above.", "",
                "| N at a time | contender | round trips / item | statements / item | of which |",
                "|---:|---|---:|---:|---|"]
        for r in sorted(trips, key=lambda r: (r["batch"], rank(r["contender"]))):
            parts = sorted(r["by_statement"].items(), key=lambda kv: -kv[1])
            detail = "; ".join(f"{v:.2f} `{short_sql(k)}`" for k, v in parts if v >= 0.005)
            out.append(f"| {r['batch']} | {r['contender']} | {r['round_trips']:.2f} | {r['statements']:.2f} | {detail} |")
        out.append("")

    fn = by["pg_filter_new"]
    if fn:
        size = fn[0]["size"]
        floor = next((r["median_us"] for r in fn if r["contender"] == "floor"), None)
        fill = next((r for r in by["pg_fill"]), None)
        out += [f"### filter_new of 10,000 ids (half known) against a ledger of {size:,} done ids", ""]
        if fill:
            out += [f"Filled through `mark_done_many` in chunks of {fill['chunk']:,} ids: {fill['total_s']:.1f} s "
                    f"({per_s(fill['ids_per_s'])} ids/s), timed apart from the calls below.", ""]
        out += ["| contender | ms per call | spread | × floor |", "|---|---:|---:|---:|"]
        for r in sorted(fn, key=lambda r: rank(r["contender"])):
            x = f"{r['median_us'] / floor:.2f}×" if floor else ""
            out.append(f"| {r['contender']} | {r['median_us'] / 1000:.1f} | {r['min_us'] / 1000:.1f}–{r['max_us'] / 1000:.1f} | {x} |")
        out.append("")
        for r in by["pg_round_trips"]:
            if r["op"].startswith("filter_new"):
                out.append(f"- cairn `{r['op']}`: {r['round_trips']:.0f} round trip(s), {r['statements']:.0f} statement(s) on the wire")
        out.append("")
    steps = [r for r in by["pg_round_trips"] if r["op"].startswith("run.step")]
    if steps:
        out += ["### A durable run's step, counted on the wire (issue 24)", "",
                f"One process through the same relay, {steps[0]['items']} steps each (statements prepared before).", "",
                "| step | round trips / step | statements / step | of which |", "|---|---:|---:|---|"]
        for r in steps:
            detail = "; ".join(f"{n:.2f} `{short_sql(sql)}`" for sql, n in sorted(r["by_statement"].items(), key=lambda kv: -kv[1]))
            out.append(f"| {r['op'][len('run.step, '):]} | {r['round_trips']:.2f} | {r['statements']:.2f} | {detail} |")
        out.append("")

    out += ["### Targets (PostgreSQL)", ""] + pg_targets(by) + [""]
    pg_skipped = [r for r in skipped if r["workload"].startswith("pg")]
    if pg_skipped:
        out += ["### Skipped", "", "| workload | why |", "|---|---|"]
        out += [f"| {r['workload']} | {r['skipped']} |" for r in pg_skipped]
        out.append("")
    out.append(PG_END)
    return out


def runs_block(r, machine):
    """Issue 24's rows from Python: cairn's run.step beside DBOS Transact's @DBOS.step."""
    med, lo, hi = r.get("mean_us", r["median_us"]), r["min_us"], r["max_us"]
    out = [RUNS_BEGIN, "", "Produced by `bench/compare/run --runs` (or the whole run): `bench/compare/runs.py` in the "
           f"bench's virtualenv, {r['steps']:,} steps per run (or marks, or reads) per round, {r['rounds']} rounds, the "
           "contenders interleaved in a rotating order, each on a file of its own; means over the rounds (total time over "
           "total calls, so that the log's checkpoint, every few thousand commits, counts in full), the spread over the "
           "rounds, and ratios of the totals. "
           f"DBOS Transact {r.get('dbos') or '(skipped: ' + str(r.get('dbos_skipped')) + ')'} with its SQLite system "
           "database (`system_database_url: sqlite:///…`, no server; its defaults: a rollback journal, "
           "`synchronous=FULL`). cairn's store is opened as a script would (`durability=\"normal\"`: WAL, survives an "
           "application crash) and, for the like-for-like row, with `durability=\"full\"` (an fsync per commit). "
           f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores shared with builds, {machine.get('date', '?')}; "
           f"load average {' '.join(r['loadavg']['before'])} before, {' '.join(r['loadavg']['after'])} after.", "",
           "| per operation | mean | spread |", "|---|---:|---:|"]
    labels = [("dbos-step", "DBOS `@DBOS.step` in a `@DBOS.workflow` of 1,000 steps"),
              ("cairn-step", "cairn `run.step` in `with store.run(...)`"),
              ("cairn-step-full", "cairn `run.step`, `durability=\"full\"`"),
              ("cairn-mark", "cairn `ledger.mark_done`, one transaction each"),
              ("cairn-replay", "cairn `run.step` replayed (a finished run)"),
              ("cairn-get", "cairn `cache.get`, a hit")]
    for k, label in labels:
        if k in med:
            out.append(f"| {label} | {med[k]:.1f} µs | {lo[k]:.1f}–{hi[k]:.1f} µs |")
    out += ["", "| target | ratio (of the totals) | spread (per round) | met |", "|---|---:|---:|---|"]
    targets = [("step/mark", "a step ≤ 2× a committed mark", lambda x: x <= 2),
               ("dbos/step", "a step ≥ 100× faster than DBOS's", lambda x: x >= 100),
               ("dbos/step-full", "the same, both with an fsync per commit", lambda x: x >= 100),
               ("replay/get", "a replay ≤ 2× a cache hit", lambda x: x <= 2)]
    for k, label, ok in targets:
        x = r["ratios"].get(k)
        if x:
            x_total = x.get("total", x["median"])
            out.append(f"| {label} | {x_total:.2f}× | {x['min']:.2f}–{x['max']:.2f}× | {'✔' if ok(x_total) else '✘'} |")
    out += ["", RUNS_END]
    return out


def async_block(r, machine):
    """Issue 22's rows: 1,000 concurrent gets and sets from coroutines."""
    med, lo, hi, rate = r["median_ms"], r["min_ms"], r["max_ms"], r["per_s"]
    out = [ASYNC_BEGIN, "", "Produced by `bench/compare/run --async` (or the whole run): `bench/compare/aio.py` in the "
           f"bench's virtualenv. Each round times, per contender, {r['ops']:,} gets (hits) then {r['ops']:,} sets "
           "(a 100-character value, a TTL of 1 h, each set its own committed transaction) of distinct keys; "
           f"{r['rounds']} rounds, the contenders interleaved in a rotating order in one process and one event loop, "
           "each on a cairn store file of its own (WAL, `synchronous=NORMAL`); medians, the spread over the rounds. "
           "`cairn.AsyncStore` and aiosqlite "
           f"{r.get('aiosqlite') or '(skipped)'} run them as 1,000 coroutines at once (`asyncio.gather`); aiosqlite on "
           "one connection in autocommit mode on a file made by cairn, with cairn's own statements on cairn's own "
           "`cairn_cache` table (a get: the `SELECT` by `(ns, key)` with the expiry check; a set: the upsert, one "
           "statement committed on its own). The sync `cairn.Store` runs the same calls in a plain loop. "
           f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores shared with other work, {machine.get('date', '?')}; "
           f"load average {' '.join(r['loadavg']['before'])} before, {' '.join(r['loadavg']['after'])} after.", "",
           "| 1,000 calls | contender | median | spread | calls/s |", "|---|---|---:|---:|---:|"]
    labels = [("cairn-async", "`cairn.AsyncStore`, gathered"), ("aiosqlite", "aiosqlite, gathered"),
              ("cairn-sync", "`cairn.Store`, a loop")]
    for op in ("get", "set"):
        for k, label in labels:
            key = f"{k}/{op}"
            if key in med:
                out.append(f"| {op} | {label} | {med[key]:.1f} ms | {lo[key]:.1f}–{hi[key]:.1f} ms | {rate[key]:,.0f} |")
    out += ["", "| target | ratio (median of the rounds') | spread | met |", "|---|---:|---:|---|"]
    targets = [("async/aiosqlite get", "gets: AsyncStore's rate ≥ 3× aiosqlite's", lambda x: x >= 3),
               ("async/aiosqlite set", "sets: AsyncStore's rate ≥ 3× aiosqlite's", lambda x: x >= 3),
               ("async/sync get", "gets: AsyncStore's rate within 2× of the sync Store's (≥ 0.5×)", lambda x: x >= 0.5),
               ("async/sync set", "sets: AsyncStore's rate within 2× of the sync Store's (≥ 0.5×)", lambda x: x >= 0.5)]
    for k, label, ok in targets:
        x = r["ratios"].get(k)
        if x:
            out.append(f"| {label} | {x['median']:.2f}× | {x['min']:.2f}–{x['max']:.2f}× | {'✔' if ok(x['median']) else '✘'} |")
    out += ["", "Where the time goes (a burst of 1,000 gets, timed on the same machine with marks in the "
            "runner, medians of 80 bursts): the loop makes the 1,000 futures (about 1.05 µs each, against 0.2 µs "
            "for a bare `loop.create_future()`) and `gather` takes them (about 0.45 µs each); one worker reads "
            "the keys from one read snapshot in one call of the extension (1.3–1.8 µs a key; two workers with "
            "half each read no faster on 2 cores); the loop completes the futures in "
            "one callback (about 0.56 µs each, of which 0.50 µs is asyncio's own `set_result`) and `gather` "
            "collects them (0.6–0.9 µs each, asyncio's own cost); between them, two thread wake-ups (loop to "
            "worker, worker to loop) that a plain loop does not pay, 0.1–1.7 ms each at a load average of 3 on "
            "this 2-core machine and milliseconds when it is busier. Sets commit a burst together (one "
            "transaction for the lot; a set that fails runs again alone), hence faster than the sync loop's "
            "one commit each."]
    for k, why in (r.get("missing") or {}).items():
        out.append(f"\nSkipped: {k}: {why}")
    out += ["", ASYNC_END]
    return out


def queues_block(rows, skipped, machine):
    """Issue 20's rows from Python: cairn's queue beside Honker's, its limiter beside PyrateLimiter's."""
    first = rows[0]
    out = [QUEUES_BEGIN, "", "Produced by `bench/compare/run --queues` (or the whole run): `bench/compare/queues.py` in "
           "the bench's virtualenv, each contender on a file of its own in WAL mode. "
           f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, {machine.get('date', '?')}; load average "
           f"{' '.join(first['loadavg']['before'])} before, {' '.join(first['loadavg']['after'])} after.", ""]
    for r in rows:
        if r["workload"] == "queue-claim-ack":
            out += [f"Claim and acknowledge, one item at a time from one process ({r['items']:,} items per round, "
                    f"{r['rounds']} rounds interleaved; Honker {r.get('honker')}):", "",
                    "| contender | µs per item (median) | fastest round |", "|---|---:|---:|"]
            for k in sorted(r["median_us"], key=lambda k: k != "cairn"):
                out.append(f"| {k} | {r['median_us'][k]:.0f} | {r['min_us'][k]:.0f} |")
            out.append("")
    wakes = [r for r in rows if r["workload"] == "queue-wake"]
    if wakes:
        out += [f"Wake-up: a worker waiting in another process, items enqueued one at a time at random gaps of 5 to "
                f"25 ms, the delay from the enqueue to the worker's claim over {wakes[0]['wakes']} items; the "
                f"waiting worker's CPU over {wakes[0]['idle_s']:.0f} s idle (target for cairn: p50 ≤ 2 ms, "
                "p99 ≤ 20 ms, idle < 1% of a core):", "",
                "| contender | p50 | p90 | p99 | max | idle CPU |", "|---|---:|---:|---:|---:|---:|"]
        for r in wakes:
            out.append(f"| {r['contender']} | {r['p50_ms']:.2f} ms | {r['p90_ms']:.2f} ms | {r['p99_ms']:.2f} ms | "
                       f"{r['max_ms']:.1f} ms | {r['idle_cpu_pct']:.2f}% |")
        out.append("")
    for r in rows:
        if r["workload"] == "limiter-rate":
            out += [f"Acquires per second from one process when every acquire is granted (the cost of one; "
                    f"{r['acquires']:,} per round, median of {r['rounds']} rounds; PyrateLimiter "
                    f"{r.get('pyrate_limiter')}, its SQLite bucket; Honker's fixed window for reference):", "",
                    "| contender | acquires/s |", "|---|---:|"]
            for k, v in sorted(r["per_s"].items(), key=lambda kv: -kv[1]):
                out.append(f"| {k} | {per_s(v)} |")
            out.append("")
    bounds = [r for r in rows if r["workload"] == "limiter-bound"]
    if bounds:
        b = next((r for r in bounds if "rate" in r), bounds[0])
        out += [f"The bound across processes: N processes share one limit of {b.get('rate')}/s (burst 1) for "
                f"{b.get('seconds')} s, each acquiring as fast as it may; the most grants in any 1 s window against "
                "the most the limit allows in it, and the rate reached over the middle of the run:", "",
                "| contender | processes | most in 1 s | allowed | held | rate reached |", "|---|---:|---:|---:|---|---:|"]
        for r in bounds:
            if "failed" in r:
                out.append(f"| {r['contender']} | {r['procs']} | failed in {r['failed']} processes: {r['error']} | | | |")
            else:
                out.append(f"| {r['contender']} | {r['procs']} | {r['max_in_1s']} | {r['allowed_in_1s']} | "
                           f"{'✔' if r['held'] else '✘'} | {r['achieved_fraction'] * 100:.0f}% |")
        out.append("")
    for r in skipped:
        out.append(f"Skipped: {r.get('contender', r['workload'])}: {r['skipped']}")
    for r in rows:
        for k, why in (r.get("missing") or {}).items():
            out.append(f"Skipped in {r['workload']}: {k}: {why}")
    out += ["", QUEUES_END]
    return out


def short_sql(sql):
    sql = sql.replace("|", "\\|")
    return sql if len(sql) <= 60 else sql[:60] + "…"


def pg_targets(by):
    lines = []
    for k, c, f, _ in pg_claim_rows(by, 1):
        if c and f:
            ratio = f["median_per_s"] / c["median_per_s"]
            lines.append(f"- {'✔' if ratio <= PG_TARGET else '✘'} cairn claim+complete at K = {k}: "
                         f"{ratio:.2f}× the floor's time per item (target ≤ {PG_TARGET}×)")
    for r in by["pg_round_trips"]:
        if r["op"].startswith("filter_new"):
            lines.append(f"- {'✔' if r['round_trips'] <= 1 else '✘'} {r['op']}: {r['round_trips']:.0f} round trip(s) "
                         "(target: one per chunk)")
        if r["op"].startswith("run.step"):
            lines.append(f"- {'✔' if r['round_trips'] <= 1 else '✘'} {r['op']}: {r['round_trips']:.2f} round trip(s) "
                         "per step (target: one)")
    return lines


def median_of(by, workload, contender, op, size=None):
    for r in by[workload]:
        if r["contender"] == contender and r["op"] == op and r.get("size") == size:
            return r["median_us"]
    return None


def targets(by):
    lines = []

    def check(label, value, limit, better="below"):
        if value is None:
            lines.append(f"- {label}: not measured")
            return
        ok = value <= limit if better == "below" else value >= limit
        lines.append(f"- {'✔' if ok else '✘'} {label}: {value:.2f}× (target {'≤' if better == 'below' else '≥'} {limit}×)")

    def r(a, b):
        return a / b if a and b else None

    for op, limit in [("get_hit", 1.3), ("set_ttl", 1.3), ("set_10k_tx", 1.5)]:
        check(f"cairn {op} against the floor", r(median_of(by, "cache", "cairn", op), median_of(by, "cache", "floor", op)), limit)
    for op in ["get_hit", "set_ttl"]:
        check(f"diskcache {op} over cairn's", r(median_of(by, "cache", "diskcache", op), median_of(by, "cache", "cairn", op)), 5, "above")
    paired = {x["op"]: x["ratio"] for x in by["paired"]}
    for op in ["get_hit", "set_ttl"]:
        check(f"diskcache {op} over cairn-python's (the Python package{'; alternating rounds' if op in paired else ''})",
              paired.get(op) or r(median_of(by, "cache", "diskcache", op), median_of(by, "cache", "cairn-python", op)),
              2, "above")
    py_sizes = sorted({x["size"] for x in by["ledger"] if x["contender"] == "cairn-python"})
    if py_sizes or "filter_new_10k" in paired:
        check("python-sqlite3 filter_new_10k at 10,000 ids over cairn-python's"
              + (" (alternating rounds)" if "filter_new_10k" in paired else ""),
              paired.get("filter_new_10k") or r(median_of(by, "ledger", "python-sqlite3", "filter_new_10k", py_sizes[0]),
                                                 median_of(by, "ledger", "cairn-python", "filter_new_10k", py_sizes[0])),
              5, "above")
    for x in by["stampede"]:
        if x["contender"] == "cairn-python":
            lines.append(f"- {'✔' if x['computations'] == 1 else '✘'} cairn-python stampede ({x['procs']} processes): "
                         f"{x['computations']} computation(s) (target 1)")
    check("Redis (loopback) get_hit over cairn's",
          r(median_of(by, "cache", "redis", "get_hit"), median_of(by, "cache", "cairn", "get_hit")), 3, "above")
    sizes = sorted({x["size"] for x in by["ledger"] if x["contender"] == "cairn"})
    if sizes:
        check(f"cairn is_done at {sizes[-1]:,} ids against {sizes[0]:,}",
              r(median_of(by, "ledger", "cairn", "is_done", sizes[-1]), median_of(by, "ledger", "cairn", "is_done", sizes[0])), 2)
    json_mark = median_of(by, "ledger", "json", "mark", 100_000)
    cairn_mark = median_of(by, "ledger", "cairn", "mark", sizes[0]) if sizes else None
    if json_mark and cairn_mark:
        lines.append(f"- the JSON file's mark at 100,000 ids: {us(json_mark)}, {json_mark / cairn_mark:,.0f}× cairn's")
    bad = [x for x in by["overlap"] if x["contender"] == "cairn" and (x["errors"] or x["lost"])]
    ks = sorted(x["k"] for x in by["overlap"] if x["contender"] == "cairn")
    lines.append(f"- {'✘' if bad or not ks else '✔'} cairn under cron overlap (K = {', '.join(map(str, ks))}): "
                 f"{'no busy errors and no lost updates' if not bad else 'FAILURES: ' + str(bad)}")
    for x in by["overlap"]:
        if x["contender"] == "python-sqlite3" and (x["errors"] or x["lost"]):
            lines.append(f"  - the typical Python class at K = {x['k']}: {x['errors']} errors, {x['lost']} lost updates")
    return lines


def draw(ledger, img_dir):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # noqa: BLE001 - reported in the markdown instead
        return f"matplotlib unavailable ({e})"
    os.makedirs(img_dir, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, op in zip(axes, ["is_done", "mark"]):
        for name in sorted({r["contender"] for r in ledger}, key=rank):
            pts = sorted((r["size"], r["median_us"]) for r in ledger if r["contender"] == name and r["op"] == op)
            if pts:
                label = f"{name} (a set in memory)" if name == "json" and op == "is_done" else name
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ids already recorded")
        ax.set_ylabel("µs per operation (median)")
        ax.set_title(op)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = os.path.join(img_dir, "ledger-cost.svg")
    fig.savefig(path, metadata={"Date": None})
    return path


if __name__ == "__main__":
    main(*sys.argv[1:4])
