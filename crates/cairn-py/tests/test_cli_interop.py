"""One file shared with the cairn CLI: each side reads what the other wrote, with its type,
while a Python store has the file open."""

from __future__ import annotations

import datetime
import os
import json
import subprocess
from pathlib import Path

import pytest

import cairn


def run(cli: str, path: str, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([cli, "--db", path, *args], input=input, capture_output=True, timeout=60)


def test_text_set_by_the_cli_reads_as_str(cli: str, store: cairn.Store) -> None:
    assert run(cli, store.path, "cache", "set", "greeting", "hello").returncode == 0
    assert store.cache()["greeting"] == "hello"
    assert run(cli, store.path, "-n", "other", "cache", "set", "raw", input=b"\xff\x00").returncode == 0
    assert store.cache("other")["raw"] == b"\xff\x00", "stdin that is not UTF-8 stays bytes"


def test_values_typed_on_the_cli_read_as_their_python_type(cli: str, store: cairn.Store) -> None:
    run(cli, store.path, "cache", "set", "--type", "json", "j", '{"a": [1, 2]}').check_returncode()
    run(cli, store.path, "cache", "set", "--type", "int", "i", "42").check_returncode()
    run(cli, store.path, "cache", "set", "--type", "float", "f", "1.5").check_returncode()
    c = store.cache()
    assert c["j"] == {"a": [1, 2]}
    assert c["i"] == 42 and type(c["i"]) is int
    assert c["f"] == 1.5


def test_cli_increments_read_as_int_and_python_increments_continue_them(cli: str, store: cairn.Store) -> None:
    for _ in range(3):
        run(cli, store.path, "cache", "incr", "runs").check_returncode()
    assert store.cache()["runs"] == 3
    assert store.cache().incr("runs") == 4
    out = run(cli, store.path, "cache", "incr", "runs")
    assert out.stdout == b"5\n"


@pytest.mark.parametrize(
    "value, printed",
    [
        ("plain text", b"plain text"),
        (42, b"42"),
        (1.5, b"1.5"),
        (b"\x00raw\xff", b"\x00raw\xff"),
        ({"a": [1, "x"], "b": None}, b'{"a":[1,"x"],"b":null}'),
        (True, b"true"),
        ("héllo", "héllo".encode()),
    ],
    ids=repr,
)
def test_python_values_print_plainly_from_the_cli(cli: str, store: cairn.Store, value: object, printed: bytes) -> None:
    store.cache()["k"] = value
    out = run(cli, store.path, "cache", "get", "k")
    assert out.returncode == 0, out.stderr
    assert out.stdout == printed
    if isinstance(value, dict):
        assert json.loads(out.stdout) == value


def test_ledger_marks_and_checkpoints_are_shared(cli: str, store: cairn.Store) -> None:
    run(cli, store.path, "ledger", "mark", "from-cli").check_returncode()
    assert "from-cli" in store.ledger("default")
    store.ledger("default").mark_done("from-python")
    assert run(cli, store.path, "ledger", "has", "from-python").returncode == 0
    assert run(cli, store.path, "ledger", "has", "never").returncode == 1
    out = run(cli, store.path, "ledger", "filter", input=b"from-cli\nfrom-python\nnew\n")
    assert out.stdout == b"new\n"
    store.checkpoint("export").set({"page": 3})
    assert json.loads(run(cli, store.path, "checkpoint", "get", "export").stdout) == {"page": 3}
    run(cli, store.path, "checkpoint", "set", "export", "p-4").check_returncode()
    assert store.checkpoint("export").get() == "p-4"


def test_a_lock_held_in_python_stops_a_cli_run_and_the_reverse(cli: str, store: cairn.Store) -> None:
    with store.lock("nightly", ttl=60, timeout=0):
        out = run(cli, store.path, "lock", "nightly", "--no-wait", "--", "true")
        assert out.returncode == 1
    assert run(cli, store.path, "lock", "nightly", "--no-wait", "--", "true").returncode == 0


def test_python_errors_carry_the_same_message_as_the_cli(cli: str, tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_bytes(b"not a database, and long enough for the header check to see it" * 4)
    out = run(cli, str(p), "cache", "get", "k")
    with pytest.raises(cairn.NotADatabaseError) as e:
        cairn.Store(p)
    assert out.stderr.decode().strip() == f"cairn: {e.value}"


def test_queue_items_from_the_cli_reach_python_workers_with_their_data_typed(cli: str, store: cairn.Store) -> None:
    lines = [
        {"id": "text", "data": "hello"},
        {"id": "json", "data": {"url": "https://example.com", "tries": [1, 2]}},
        {"id": "number", "data": 5},
        {"id": 7},
        {"id": "later", "data": "x", "not_before": "2999-01-01T00:00:00Z"},
    ]
    out = run(cli, store.path, "--json", "ledger", "enqueue", input="".join(json.dumps(x) + "\n" for x in lines).encode())
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"queued": 5}
    q = store.ledger("default")
    got = {}
    while (c := q.claim_next(lease=60)) is not None:
        got[c.id] = c.data
        assert c.attempt == 1
    assert got == {"text": "hello", "json": {"url": "https://example.com", "tries": [1, 2]}, "number": 5, "7": None}
    assert type(got["number"]) is int
    later = q.item("later")
    assert later is not None and later.data == "x"
    assert later.due == datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc), "not handed out before then"


@pytest.mark.parametrize(
    "data, kind, printed",
    [
        ("hello", "text", "hello"),
        (42, "int", 42),
        (1.5, "float", 1.5),
        (b"\x00\xff", "bytes", [0, 255]),
        ({"a": [1, None]}, "json", {"a": [1, None]}),
        (True, "json", True),
    ],
    ids=repr,
)
def test_queue_data_from_python_reaches_a_cli_worker_with_its_kind(
    cli: str, store: cairn.Store, data: object, kind: str, printed: object
) -> None:
    store.ledger("default").enqueue_items([cairn.QueueItem("job", data=data)])
    out = run(cli, store.path, "--json", "ledger", "next", "--worker", "w")
    assert out.returncode == 0, out.stderr
    claim = json.loads(out.stdout)
    assert (claim["id"], claim["data"], claim["data_kind"], claim["attempt"]) == ("job", printed, kind, 1)


def test_attempts_and_retries_are_shared_between_the_cli_and_python(cli: str, store: cairn.Store) -> None:
    q = store.ledger("default", max_attempts=2, retry_delay=0)
    q.enqueue_items([cairn.QueueItem("job", data={"n": 1})])
    first = q.claim_next(lease=60)
    assert first is not None
    first.fail("python failed")
    out = run(cli, store.path, "--json", "ledger", "next", "--worker", "w")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["attempt"] == 2, "the CLI sees Python's failure"
    out = run(cli, store.path, "ledger", "fail", "job", "--worker", "w", "--error", "cli failed", "--max-attempts", "2")
    assert out.stdout == b"failed\n", out.stderr
    assert q.item("job") is not None and q.filter_new(["job"]) == [], "given up"
    assert run(cli, store.path, "ledger", "retry", "--all-failed").stdout == b"1\n"
    again = q.claim_next(lease=60)
    assert again is not None and again.attempt == 1 and again.data == {"n": 1}


def test_a_not_before_time_from_python_is_what_the_cli_lists(cli: str, store: cairn.Store) -> None:
    at = datetime.datetime(2999, 1, 1, 9, 30, tzinfo=datetime.timezone.utc)
    store.ledger("default").enqueue(["report"], not_before=at)
    out = run(cli, store.path, "ledger", "list")
    assert out.stdout == b"report\tpending\t2999-01-01T09:30:00.000Z\n", out.stderr
    assert run(cli, store.path, "ledger", "next", "--worker", "w").returncode == 1, "not due"


def test_a_run_started_from_python_is_seen_and_replayed_by_the_cli(cli: str, store: cairn.Store) -> None:
    """A run's steps recorded from Python show in `cairn run status --json` and `run list`,
    and a reset from the CLI is what Python sees next."""
    with store.run("deploy-1") as attempt:
        attempt.step("build", lambda: {"artifact": "app.tar"})
    shown = run(cli, store.path, "--json", "run", "status", "deploy-1")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["state"] == "finished" and status["attempts"] == 1
    assert [(s["name"], s["state"]) for s in status["steps"]] == [("build", "done")]
    listed = run(cli, store.path, "--json", "run", "list")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == ["deploy-1"]
    stepped = subprocess.run(
        [cli, "--db", store.path, "step", "--run", "deploy-1", "--pid", str(os.getpid()), "notify", "--", "echo", "sent"],
        capture_output=True,
        timeout=60,
    )
    assert stepped.returncode == 2 and b"is finished" in stepped.stderr, "the run is finished: a new step is refused"
    assert run(cli, store.path, "run", "reset", "deploy-1").returncode == 0
    info = store.runs().get("deploy-1")
    assert info is not None and info.state == "failed" and info.steps == []


def test_a_cli_step_shows_its_output_head_to_python(cli: str, store: cairn.Store) -> None:
    """What `cairn step` printed is kept beside the step for operators: Python's StepInfo
    shows the head of a done step's output and the tail of a failed one's errors."""
    base = [cli, "--db", store.path, "step", "--run", "sh-1", "--pid", str(os.getpid())]
    ok = subprocess.run([*base, "build", "--", "sh", "-c", "echo built; echo v1.2"], capture_output=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout == b"built\nv1.2\n", ok
    bad = subprocess.run([*base, "push", "--", "sh", "-c", "echo denied >&2; exit 5"], capture_output=True, timeout=60)
    assert bad.returncode == 5, bad
    info = store.runs().get("sh-1")
    assert info is not None
    assert [(s.name, s.state, s.output) for s in info.steps] == [("build", "done", "built\nv1.2"), ("push", "failed", "denied")]
