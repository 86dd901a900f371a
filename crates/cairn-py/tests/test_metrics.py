"""`cairn stats --format prometheus` read back by a real parser (prometheus_client's), on each
engine: every family with its type and help, label values that need escaping intact, and the
values the store holds."""

import os
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

import cairn

# Each family as the parser names it (a counter without its `_total`), with its type.
FAMILIES = {
    "cairn_ledger_items": "gauge",
    "cairn_ledger_oldest_queued_age_seconds": "gauge",
    "cairn_ledger_paused": "gauge",
    "cairn_cache_entries": "gauge",
    "cairn_cache_bytes": "gauge",
    "cairn_cache_hits": "counter",
    "cairn_cache_misses": "counter",
    "cairn_cache_evictions": "counter",
    "cairn_locks_held": "gauge",
    "cairn_lock_slots_held": "gauge",
    "cairn_job_last_success_timestamp_seconds": "gauge",
    "cairn_job_last_duration_seconds": "gauge",
    "cairn_job_last_exit_status": "gauge",
    "cairn_job_runs": "counter",
    "cairn_job_running": "gauge",
}

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def parse(text: str) -> Tuple[Dict[str, Metric], Samples]:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    return families, samples


def scrape(cli: str, location: str, *args: str) -> str:
    out = subprocess.run(
        [cli, "--db", location, "stats", "--format", "prometheus", *args], capture_output=True, timeout=60
    )
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


def test_prometheus_stats_parse_back_with_their_types_labels_and_values(
    cli: str, any_store: cairn.Store, location: str
) -> None:
    odd = 'say "hi" \\ and\nbye'
    q = any_store.ledger("q")
    q.enqueue(["a", "b", "c"])
    q.mark_done("x")
    assert q.cancel("c")
    any_store.ledger(odd).enqueue(["z"])
    any_store.ledger(odd).pause()
    pages = any_store.cache("pages")
    pages.set("k", "xyz")
    assert pages.get("k") == "xyz"
    assert pages.get("missing") is None
    assert any_store.job("backup", every="1d").run(lambda slot: None)
    any_store.flush_stats()
    with any_store.lock("nightly", ttl=60, timeout=0):
        text = scrape(cli, location)

    families, samples = parse(text)
    assert {name: f.type for name, f in families.items()} == FAMILIES
    assert all(f.documentation for f in families.values())

    def items(ns: str, state: str) -> float:
        return samples[("cairn_ledger_items", (("ns", ns), ("state", state)))]

    assert [items("q", s) for s in ("pending", "claimed", "done", "failed", "cancelled")] == [2, 0, 1, 0, 1]
    assert items(odd, "pending") == 1, "a namespace with a quote, a backslash and a line feed comes back intact"
    assert samples[("cairn_ledger_paused", (("ns", odd),))] == 1
    assert samples[("cairn_ledger_paused", (("ns", "q"),))] == 0
    assert 0 <= samples[("cairn_ledger_oldest_queued_age_seconds", (("ns", "q"),))] < 3600
    assert samples[("cairn_cache_entries", (("ns", "pages"),))] == 1
    assert samples[("cairn_cache_bytes", (("ns", "pages"),))] == 4
    assert samples[("cairn_cache_hits_total", (("ns", "pages"),))] == 1
    assert samples[("cairn_cache_misses_total", (("ns", "pages"),))] == 1
    assert samples[("cairn_locks_held", ())] == 1
    assert samples[("cairn_lock_slots_held", (("lock", "nightly"),))] == 1
    assert samples[("cairn_job_runs_total", (("job", "backup"), ("outcome", "succeeded")))] == 1
    assert samples[("cairn_job_runs_total", (("job", "backup"), ("outcome", "failed")))] == 0
    assert samples[("cairn_job_last_exit_status", (("job", "backup"),))] == 0
    assert samples[("cairn_job_running", (("job", "backup"),))] == 0
    assert samples[("cairn_job_last_success_timestamp_seconds", (("job", "backup"),))] > 1.5e9
    assert samples[("cairn_job_last_duration_seconds", (("job", "backup"),))] >= 0

    released, _ = parse(scrape(cli, location))
    assert [s.value for s in released["cairn_locks_held"].samples] == [0]
    assert released["cairn_lock_slots_held"].samples == []


def test_the_textfile_parses_to_what_stdout_says(cli: str, any_store: cairn.Store, location: str, tmp_path: Path) -> None:
    any_store.cache("c").set("k", 1)
    path = tmp_path / "cairn.prom"
    assert scrape(cli, location, "--textfile", str(path)) == ""
    written, _ = parse(path.read_text())
    printed, _ = parse(scrape(cli, location))
    assert written.keys() == printed.keys() == FAMILIES.keys()
    assert written["cairn_cache_entries"].samples == printed["cairn_cache_entries"].samples
    assert os.stat(path).st_mode & 0o777 == 0o644
    names: List[str] = sorted(os.listdir(tmp_path))
    assert "cairn.prom" in names and not any(n.startswith(".cairn-metrics-") for n in names)


def test_python_gives_the_same_families_as_the_cli(cli: str, any_store: cairn.Store, location: str) -> None:
    any_store.ledger("q").enqueue(["a"])
    any_store.cache("c").set("k", "v")
    with any_store.lock("nightly", ttl=60, timeout=0):
        families, samples = parse(any_store.prometheus_metrics())
        _, from_cli = parse(scrape(cli, location))
    assert {name: f.type for name, f in families.items()} == FAMILIES
    timeless = {k: v for k, v in samples.items() if not k[0].endswith("_age_seconds")}
    assert timeless == {k: v for k, v in from_cli.items() if not k[0].endswith("_age_seconds")}
    assert samples[("cairn_lock_slots_held", (("lock", "nightly"),))] == 1
