"""Durable runs from Python: steps execute until they succeed once and replay after, one
attempt holds a run at a time, drift is refused, step_tx writes exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

import cairn


def test_finished_steps_replay_and_a_failed_one_runs_again(any_store: cairn.Store) -> None:
    calls: List[str] = []

    def fetch(page: int) -> dict:
        calls.append(f"fetch-{page}")
        if page == 2 and calls.count("fetch-2") == 1:
            raise ConnectionError("503")
        return {"page": page, "rows": [page, page * 2]}

    with pytest.raises(ConnectionError):
        with any_store.run("backfill") as run:
            assert run.attempt == 1
            pages = run.step("list", lambda: [1, 2, 3])
            for p in pages:
                run.step("fetch", fetch, p)
    info = any_store.runs().get("backfill")
    assert info is not None and info.state == "failed" and info.error == "ConnectionError: 503"
    assert [(s.name, s.state) for s in info.steps] == [("list", "done"), ("fetch", "done"), ("fetch#2", "failed")]

    with any_store.run("backfill") as run:
        assert run.attempt == 2
        pages = run.step("list", lambda: pytest.fail("replayed, not run"))
        got = [run.step("fetch", fetch, p) for p in pages]
    assert got == [{"page": p, "rows": [p, p * 2]} for p in (1, 2, 3)]
    assert calls == ["fetch-1", "fetch-2", "fetch-2", "fetch-3"], "only the failed step and the new one ran"
    info = any_store.runs().get("backfill")
    assert info is not None and info.state == "finished" and info.attempts == 2
    assert [s.attempts for s in info.steps] == [1, 1, 2, 1]

    with any_store.run("backfill") as run:
        assert run.finished
        assert run.step("list", lambda: pytest.fail("replayed")) == [1, 2, 3]
        with pytest.raises(cairn.InvalidInputError, match="cairn run reset backfill"):
            run.step("new-step", lambda: 1)


def test_a_second_attempt_is_refused_while_one_holds_the_run(any_store: cairn.Store) -> None:
    with any_store.run("deploy") as run:
        run.step("build", lambda: "ok")
        with pytest.raises(cairn.RunHeldError, match="is held by another attempt") as err:
            with any_store.run("deploy"):
                pytest.fail("a second attempt ran")
        assert isinstance(err.value, cairn.LockHeldError) and isinstance(err.value, TimeoutError)
    assert any_store.runs().get("deploy").state == "finished"  # type: ignore[union-attr]


def test_a_changed_version_is_refused_until_the_run_is_reset(any_store: cairn.Store) -> None:
    with any_store.run("deploy") as run:
        run.step("build", lambda: "v1", version="1")
    with pytest.raises(cairn.StepChangedError, match="cairn run reset deploy --from build") as err:
        with any_store.run("deploy") as run:
            run.step("build", lambda: "v2", version="2")
    assert isinstance(err.value, ValueError)
    assert any_store.runs().reset("deploy", from_step="build") == 1
    with any_store.run("deploy") as run:
        assert run.step("build", lambda: "v2", version="2") == "v2"


def test_step_tx_writes_with_its_record_exactly_once(any_store: cairn.Store) -> None:
    for _ in range(3):
        with any_store.run("mark") as run:
            n = run.step_tx("count", lambda tx: tx.cache("c").incr("n"))
            run.step_tx("mark", lambda tx: tx.ledger("pages").mark_done("all"))
    assert n == 1 and any_store.cache("c")["n"] == 1
    assert any_store.ledger("pages").is_done("all")


def test_the_step_decorator_is_a_step_inside_a_run_and_a_plain_call_outside(any_store: cairn.Store) -> None:
    calls: List[int] = []

    @any_store.step(version=2)
    def fetch(page: int) -> str:
        calls.append(page)
        return f"page {page}"

    assert fetch(7) == "page 7"
    for _ in range(2):
        with any_store.run("crawl"):
            assert [fetch(1), fetch(1)] == ["page 1", "page 1"]
    assert calls == [7, 1, 1], "two steps (fetch, fetch#2) ran once each"
    info = any_store.runs().get("crawl")
    assert info is not None
    name = fetch.__qualname__.replace("<locals>.", "")
    assert [(s.name, s.version) for s in info.steps] == [(name, "2"), (f"{name}#2", "2")]


def test_a_durable_sleep_is_not_slept_again(any_store: cairn.Store) -> None:
    with any_store.run("r") as run:
        left = run.sleep("cool-down", "1h", wait=False)
        assert left is not None and 3500 < left <= 3600
        assert run.sleep("short", 0) is None


def test_runs_list_forget_and_prune(any_store: cairn.Store) -> None:
    with any_store.run("a") as run:
        run.step("x", lambda: 1)
    with pytest.raises(RuntimeError):
        with any_store.run("b"):
            raise RuntimeError("boom")
    assert [(r.id, r.state) for r in any_store.runs().list()] == [("a", "finished"), ("b", "failed")]
    assert [r.id for r in any_store.runs().list("failed")] == ["b"]
    assert any_store.runs().forget("b") and not any_store.runs().forget("b")
    assert any_store.runs().prune("1h") == 0, "a finished just now"
    with pytest.raises(cairn.InvalidInputError):
        any_store.runs().list("sleeping")


def test_a_step_result_must_be_a_value_and_its_error_is_clear(store: cairn.Store) -> None:
    with pytest.raises(TypeError):
        with store.run("r") as run:
            run.step("obj", lambda: object())


def test_a_blocks_own_exception_is_not_replaced_when_the_run_was_taken_over(tmp_path: Path) -> None:
    """A block that raises after its run was taken over propagates its own exception: the
    renewal thread's LeaseLostError used to replace it (and skip recording the attempt)."""
    import time

    from cairn.testing import ManualClock

    clock = ManualClock()
    db = tmp_path / "state.db"
    with cairn.Store(db, clock=clock) as store, cairn.Store(db, clock=clock) as other:
        with pytest.raises(ValueError, match="the block's own"):
            with store.run("r", lease=1) as run:
                run.step("a", lambda: 1)
                taken = None
                for _ in range(50):  # a renewal may land between the advance and the take
                    clock.advance(2)
                    try:
                        taken = other.run("r", wait=0).__enter__()
                        break
                    except cairn.RunHeldError:
                        continue
                assert taken is not None, "the other store took the run over"
                time.sleep(0.5)  # the renewal thread meets the lost lease (lease / 3 apart)
                raise ValueError("the block's own")
        taken.__exit__(None, None, None)
        info = store.runs().get("r")
        assert info is not None and info.state == "finished" and info.attempts == 2


def test_a_step_called_inside_a_step_is_a_plain_call_and_its_exception_keeps_its_traceback(
    any_store: cairn.Store,
) -> None:
    """A step taken by a step's function is a plain call of its function, not recorded: a
    replay of the outer step does not call it, so it must not take a name (it used to, shifting
    the names of the steps after it). run.step calls the function inside one call of the
    extension: keyword arguments reach it, and its exception comes out as itself, with the frame
    that raised it."""
    calls: List[int] = []

    def inner(i: int, scale: int) -> int:
        calls.append(i)
        return i * scale

    def outer(run: cairn.Run, n: int, *, scale: int) -> int:
        return sum(run.step("inner", inner, i, scale) for i in range(n))

    def broken() -> None:
        raise KeyError("missing-page")

    with pytest.raises(KeyError) as raised:
        with any_store.run("nested") as run:
            assert run.step("outer", outer, run, 3, scale=10) == 30
            assert run.step("inner", inner, 7, 1) == 7
            run.step("broken", broken)
    assert raised.value.args == ("missing-page",)
    assert any(frame.name == "broken" for frame in raised.traceback), "the raising frame is kept"
    info = any_store.runs().get("nested")
    assert info is not None
    assert [(s.name, s.state) for s in info.steps] == [
        ("outer", "done"),
        ("inner", "done"),
        ("broken", "failed"),
    ], "the outer step's inner calls took no names"
    assert info.steps[-1].error == "KeyError: 'missing-page'"
    assert calls == [0, 1, 2, 7]

    with any_store.run("nested") as run:
        assert run.step("outer", outer, run, 3, scale=10) == 30
        assert run.step("inner", inner, 8, 1) == 7, "the top-level inner replays its own result"
        run.step("broken", lambda: None)
    assert calls == [0, 1, 2, 7], "replays only"


def test_a_nested_decorated_step_does_not_shift_the_names_of_later_steps(any_store: cairn.Store) -> None:
    """The adversarial case: `summary` calls `fetch(0)`; after it, a top-level `fetch(1)`. On
    resume `summary` replays without calling its inner fetch, and `fetch(1)` must still get
    page 1 (it used to be named `fetch` on resume and replay page 0's result)."""

    @any_store.step()
    def fetch(page: int) -> str:
        return f"page-{page}"

    @any_store.step()
    def summary() -> str:
        return fetch(0) + "+summary"

    with pytest.raises(RuntimeError):
        with any_store.run("r"):
            assert summary() == "page-0+summary"
            assert fetch(1) == "page-1"
            raise RuntimeError("the attempt dies")
    with any_store.run("r"):
        assert summary() == "page-0+summary"
        assert fetch(1) == "page-1"
    info = any_store.runs().get("r")
    assert info is not None
    name = fetch.__qualname__.replace("<locals>.", "")
    assert [s.name for s in info.steps] == [summary.__qualname__.replace("<locals>.", ""), name]


def test_step_tx_inside_a_step_is_refused_before_it_writes(any_store: cairn.Store) -> None:
    """step_tx inside another step's function could not commit exactly once (its transaction
    commits apart from the outer step's record): it raises, the outer step fails, nothing is
    written."""

    def outer(run: cairn.Run) -> int:
        return run.step_tx("write", lambda tx: tx.cache("c").incr("n"))

    with pytest.raises(cairn.InvalidInputError, match="inside another step"):
        with any_store.run("r") as run:
            run.step("outer", outer, run)
    assert any_store.cache("c").get("n") is None
    info = any_store.runs().get("r")
    assert info is not None and [(s.name, s.state) for s in info.steps] == [("outer", "failed")]
    # A step inside a step_tx's function is a plain call too.
    with any_store.run("r2") as run:
        assert run.step_tx("w", lambda tx: run.step("inner", lambda: 5)) == 5
    info = any_store.runs().get("r2")
    assert info is not None and [s.name for s in info.steps] == ["w"]


def test_a_durable_sleep_inside_a_step_is_refused(any_store: cairn.Store) -> None:
    """A durable sleep inside another step's function would take a name that the outer
    step's replay does not take, shifting the later steps' names: it raises, nothing recorded
    for it."""
    with pytest.raises(cairn.InvalidInputError, match="inside another step"):
        with any_store.run("r") as run:
            run.step("outer", lambda: run.sleep("nap", "1ms"))
    info = any_store.runs().get("r")
    assert info is not None and [(s.name, s.state) for s in info.steps] == [("outer", "failed")]


def test_a_step_after_the_runs_block_ended_is_refused_before_it_runs(any_store: cairn.Store) -> None:
    """A step of a Run whose block has ended raises a clear error and does not call its
    function (it used to call it, then report a lease 'taken over')."""
    with any_store.run("r") as run:
        run.step("a", lambda: 1)
    calls: List[int] = []
    with pytest.raises(cairn.InvalidInputError, match="block has ended"):
        run.step("late", lambda: calls.append(1))
    with pytest.raises(cairn.InvalidInputError, match="block has ended"):
        run.step_tx("late", lambda tx: calls.append(1))
    with pytest.raises(cairn.InvalidInputError, match="block has ended"):
        run.sleep("late", "1s")
    assert calls == []
    assert run.attempt == 1
    info = any_store.runs().get("r")
    assert info is not None and info.state == "finished" and [s.name for s in info.steps] == ["a"]


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no text for this one")


def test_an_exception_whose_str_raises_still_releases_the_run(any_store: cairn.Store) -> None:
    """The block's exception is recorded by its type's name when str() of it raises, and the
    run is released: a retry in the same process takes it (it used to stay held, RunHeldError
    naming this process)."""
    with pytest.raises(_Unprintable):
        with any_store.run("r") as run:
            run.step("bad", lambda: (_ for _ in ()).throw(_Unprintable()))
    info = any_store.runs().get("r")
    assert info is not None and info.state == "failed" and info.error == "_Unprintable"
    assert info.steps[0].state == "failed" and info.steps[0].error == "_Unprintable"
    with pytest.raises(_Unprintable):
        with any_store.run("r", wait=0):
            raise _Unprintable()
    info = any_store.runs().get("r")
    assert info is not None and info.state == "failed" and info.attempts == 2
    with any_store.run("r", wait=0) as run:
        assert run.step("bad", lambda: "ok") == "ok"
