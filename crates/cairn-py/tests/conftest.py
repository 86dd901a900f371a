"""Fixtures for the cairn Python suite: stores on temporary files, stores on each engine in
turn (a file, then a schema on the PostgreSQL test server), a manual clock, child processes
read line by line with deadlines, and the cairn CLI binary."""

from __future__ import annotations

import itertools
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import AsyncIterator, Iterator, List, Optional

import pytest

import cairn
from cairn.testing import ManualClock

HERE = Path(__file__).resolve().parent
CHILD = HERE / "child.py"
REPO = HERE.parents[2]

# Every wait in this suite has a deadline; this is the longest any single one may take.
DEADLINE = 60.0


@pytest.fixture
def path(tmp_path: Path) -> str:
    """A fresh store path."""
    return str(tmp_path / "state.db")


@pytest.fixture
def store(path: str) -> Iterator[cairn.Store]:
    """A store on a fresh file, closed afterwards."""
    s = cairn.Store(path)
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock at 2020-01-01T00:00:00Z."""
    return ManualClock()


@pytest.fixture
def clocked(path: str, clock: ManualClock) -> Iterator[cairn.Store]:
    """A store on a fresh file whose time is `clock`'s."""
    s = cairn.Store(path, clock=clock)
    yield s
    s.close()


class Child:
    """A child process running tests/child.py (or `script`), whose stdout lines are read with
    deadlines."""

    def __init__(
        self,
        *args: str,
        env: Optional[dict[str, str]] = None,
        tap: "Optional[queue.Queue[tuple[Child, Optional[str]]]]" = None,
        script: Path = CHILD,
    ) -> None:
        """Start it. With `tap`, its lines go there as (child, line), ending with (child, None),
        instead of to its own queue: one queue to wait on for several children."""
        self.args = args
        self.tap = tap
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._put(line.rstrip("\n"))
        self._put(None)

    def _put(self, line: Optional[str]) -> None:
        if self.tap is not None:
            self.tap.put((self, line))
        else:
            self.lines.put(line)

    def line(self, timeout: float = DEADLINE) -> Optional[str]:
        """The next line, or None at end of output; fails the test after `timeout` seconds."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            pytest.fail(f"child {self.args} printed nothing for {timeout} s; stderr: {self.stderr()}")

    def expect(self, want: str, timeout: float = DEADLINE) -> None:
        got = self.line(timeout)
        if got != want:
            self.kill()
            pytest.fail(f"child {self.args}: expected {want!r}, got {got!r}; stderr: {self.stderr()}")

    def all_lines(self, timeout: float = DEADLINE) -> List[str]:
        """Every line until the end of its output (it exited, or was killed)."""
        out = []
        while True:
            line = self.line(timeout)
            if line is None:
                return out
            out.append(line)

    def send(self, line: str) -> None:
        """Write a line to the child's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        """SIGKILL it (if still running), reap it and close its pipes."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=DEADLINE)
        self._close()

    def _close(self) -> None:
        self._reader.join(timeout=DEADLINE)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None and not f.closed:
                try:
                    f.close()
                except BrokenPipeError:
                    pass

    def wait(self, timeout: float = DEADLINE) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"child {self.args} did not exit within {timeout} s; stderr: {self.stderr()}")

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        if self.proc.stderr.closed:
            return "(closed)"
        return self.proc.stderr.read()


@pytest.fixture
def children() -> Iterator[List[Child]]:
    """Start children with `children.append(Child(...))`; any left running are killed."""
    started: List[Child] = []
    yield started
    for c in started:
        c.kill()


def _cli() -> Optional[str]:
    env = os.environ.get("CAIRN_BIN")
    if env:
        return env
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("debug", "release"):
        p = target / profile / "cairn"
        if p.is_file():
            return str(p)
    return shutil.which("cairn")


@pytest.fixture(scope="session")
def cli() -> str:
    """The cairn CLI binary ($CAIRN_BIN, else target/{debug,release}/cairn, else PATH)."""
    found = _cli()
    if found is None:
        pytest.skip("the cairn CLI is not built: cargo build -p cairn-state-cli, or set CAIRN_BIN")
    return found


# ---- PostgreSQL -------------------------------------------------------------------------------
# The server is CAIRN_TEST_PG (scripts/test and .ci/run set it: postgres://postgres@127.0.0.1:5432/test).
# Each test gets a schema of its own, dropped when it ends; schemas left by killed runs are
# dropped when a later run starts. Schemas are dropped with psql, there being no PostgreSQL
# client among the test's dependencies.

PG_PREFIX = "cairn_pytest_"
_schemas = itertools.count()


def _psql(url: str, sql: str) -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql")
    assert psql is not None
    return subprocess.run(
        [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


def pg_sql(url: str, sql: str) -> str:
    """Run `sql` on the server with psql (outside cairn); its output. Fails the test on error."""
    out = _psql(url, sql)
    if out.returncode != 0:
        pytest.fail(f"psql: {sql}: {out.stderr.strip()}")
    return out.stdout


def fresh_schema() -> str:
    """``cairn_pytest_<unix seconds>_<pid>_<n>``: unique, and stale ones recognisable by time."""
    return f"{PG_PREFIX}{int(time.time())}_{os.getpid()}_{next(_schemas)}"


def with_schema(url: str, schema: str) -> str:
    """`url` with ``cairn_schema=`schema``` added to its query."""
    return f"{url}{'&' if '?' in url else '?'}cairn_schema={schema}"


def drop_schema(url: str, *schemas: str) -> None:
    """Drop `schemas` and everything in them, fifty to a statement."""
    for i in range(0, len(schemas), 50):
        names = ", ".join(f'"{s}"' for s in schemas[i : i + 50])
        _psql(url, f"DROP SCHEMA IF EXISTS {names} CASCADE")


# The schemas this run has handed out, dropped when it ends: in one go, since dropping them one
# test at a time (a psql process each) took a third of the PostgreSQL tests' time.
_handed_out: List[str] = []


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The test server's URL: CAIRN_TEST_PG, if a server answers there. Otherwise the test
    skips, saying why (a failure under CAIRN_NO_SKIP)."""
    url = os.environ.get("CAIRN_TEST_PG", "")
    if not url:
        pytest.skip(
            "needs a PostgreSQL server: set CAIRN_TEST_PG=postgres://user@host:port/db "
            "(scripts/test and .ci/run set postgres://postgres@127.0.0.1:5432/test)"
        )
    if shutil.which("psql") is None:
        pytest.skip("needs psql (postgresql-client), to drop the schemas the PostgreSQL tests create")
    probe = fresh_schema()
    try:
        cairn.Store(url, schema=probe).close()
    except cairn.UnavailableError as e:
        pytest.skip(f"needs a PostgreSQL server at CAIRN_TEST_PG: {e}")
    drop_schema(url, probe)
    # Schemas of runs killed before they could drop theirs: older than an hour.
    names = pg_sql(url, f"SELECT nspname FROM pg_namespace WHERE nspname LIKE '{PG_PREFIX}%'").split()
    for name in names:
        stamp = name[len(PG_PREFIX) :].split("_")[0]
        if stamp.isdigit() and int(stamp) + 3600 < time.time():
            drop_schema(url, name)
    yield url
    drop_schema(url, *_handed_out)


@pytest.fixture
def pg_schema(pg_server: str) -> str:
    """A fresh schema name for the test's stores on the server (cairn creates the schema), and
    with ``_tables`` appended, the name of the one for the test's own tables (`own_tables`)."""
    schema = fresh_schema()
    _handed_out.extend([schema, f"{schema}_tables"])
    return schema


@pytest.fixture
def pg_url(pg_server: str, pg_schema: str) -> str:
    """The server's URL with the test's schema for cairn (``cairn_schema=...``), and the one for
    its own tables first on the session's search path (``options=-csearch_path=...``)."""
    sep = "&" if "?" in pg_server else "?"
    return with_schema(f"{pg_server}{sep}options=-csearch_path%3D{pg_schema}_tables", pg_schema)


@pytest.fixture
def own_tables(engine: str, request: pytest.FixtureRequest) -> None:
    """For a test that creates tables of its own with `migrate` or `execute`: on PostgreSQL,
    the schema they go in, first on the search path of `pg_url`. Without it they would land in
    ``public``, shared by every run and every test (a second run would find them there); it
    is made only for the tests that ask, being a psql process each."""
    if engine == "postgres":
        server: str = request.getfixturevalue("pg_server")
        schema: str = request.getfixturevalue("pg_schema")
        pg_sql(server, f'CREATE SCHEMA "{schema}_tables"')


@pytest.fixture
def pg(pg_url: str, clock: ManualClock) -> Iterator[cairn.Store]:
    """A store on a fresh schema of the test server whose time is `clock`'s."""
    s = cairn.Store(pg_url, clock=clock)
    yield s
    s.close()


# ---- either engine ----------------------------------------------------------------------------
# A test whose promise holds on either engine takes `any_store` (or `any_clocked`, or
# `location`) and runs twice: test_x[file], then test_x[postgres] on a fresh schema of the test
# server (skipped, saying why, without one; a failure under CAIRN_NO_SKIP). Tests of what only
# a file has (fork, processes on one file, the sqlite3 guard, WAL) keep the file fixtures.


@pytest.fixture(params=["file", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    """The engine the test runs on: ``"file"``, then ``"postgres"``."""
    name: str = request.param
    return name


@pytest.fixture
def location(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where a fresh store lives on `engine`: a file path, or the test server's URL with a
    fresh schema (`pg_url`)."""
    if engine == "file":
        return str(tmp_path / "state.db")
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def any_store(location: str) -> Iterator[cairn.Store]:
    """A fresh store on each engine in turn, closed afterwards."""
    s = cairn.Store(location)
    yield s
    s.close()


@pytest.fixture
def any_clocked(location: str, clock: ManualClock) -> Iterator[cairn.Store]:
    """A fresh store on each engine in turn whose time is `clock`'s."""
    s = cairn.Store(location, clock=clock)
    yield s
    s.close()


@pytest.fixture
async def astore(path: str) -> AsyncIterator[cairn.AsyncStore]:
    """An AsyncStore on a fresh file, closed afterwards."""
    async with cairn.AsyncStore(path) as s:
        yield s


@pytest.fixture
async def any_astore(location: str) -> AsyncIterator[cairn.AsyncStore]:
    """A fresh AsyncStore on each engine in turn, closed afterwards."""
    async with cairn.AsyncStore(location) as s:
        yield s


@pytest.fixture
async def any_aclocked(location: str, clock: ManualClock) -> AsyncIterator[cairn.AsyncStore]:
    """A fresh AsyncStore on each engine in turn whose time is `clock`'s."""
    async with cairn.AsyncStore(location, clock=clock) as s:
        yield s


def no_skip() -> bool:
    """Whether a skip must fail instead: ``CAIRN_NO_SKIP`` set, not empty and not ``0``, the
    rule of the Rust tests (cairn-testkit's `must_not_skip`) and of the README. CI sets it:
    whatever a test needs from the machine must be there."""
    return os.environ.get("CAIRN_NO_SKIP", "") not in ("", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CAIRN_NO_SKIP (see `no_skip`), a skipped test is a failed one."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    log = os.environ.get("CAIRN_SKIP_LOG")
    if log:  # scripts/test and .ci/run list every skip at the end
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        with open(log, "a") as f:
            f.write(f"python {item.nodeid}: {reason}\n")
    if no_skip():
        report.outcome = "failed"
        report.longrepr = f"skipped under CAIRN_NO_SKIP={os.environ['CAIRN_NO_SKIP']}: {report.longrepr}"
