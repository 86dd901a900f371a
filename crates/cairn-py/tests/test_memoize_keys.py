"""@store.memoize keys: functions of one name in different programs, closures of one factory
and callables without a name never share results (issue 19.3); forms that cannot be stored
are refused when decorating (issue 19.12)."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import cairn

SCRIPT = """\
import os, sys
import cairn

store = cairn.Store(sys.argv[1])

@store.memoize
def fetch(url):
    return "{who}:" + url + ":" + str(os.getpid())

print(fetch("https://example.com"))
"""


def _run(*args: str) -> str:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_two_scripts_with_their_own_main_fetch_never_get_each_others_results(path: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text(SCRIPT.format(who="A"))
    b.write_text(SCRIPT.format(who="B"))
    first_a = _run(str(a), path)
    first_b = _run(str(b), path)
    assert first_a.startswith("A:") and first_b.startswith("B:"), (first_a, first_b)
    assert _run(str(a), path) == first_a, "a second run of the same script reuses its result"
    assert _run(str(b), path) == first_b
    with cairn.Store(path) as s:
        assert len(s.cache("memoize")) == 2


WRAPPED = """\
import os, sys
import cairn
import deco

store = cairn.Store(sys.argv[1])

@store.memoize
@deco.logged
def fetch(url):
    return "{who}:" + url + ":" + str(os.getpid())

print(fetch("https://example.com"))
"""

DECO = """\
import functools

def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper
"""


def test_two_scripts_wrapping_fetch_in_one_decorator_never_get_each_others_results(
    path: str, tmp_path: Path
) -> None:
    # The wrapper has fetch's names but the decorator's file: keyed by the function it wraps.
    (tmp_path / "deco.py").write_text(DECO)
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text(WRAPPED.format(who="A"))
    b.write_text(WRAPPED.format(who="B"))
    assert _run(str(a), path).startswith("A:")
    assert _run(str(b), path).startswith("B:")


def test_programs_without_a_file_are_told_apart_by_their_code(path: str) -> None:
    code_a, code_b = SCRIPT.format(who="A"), SCRIPT.format(who="B")
    first_a = _run("-c", code_a, path)
    assert _run("-c", code_b, path).startswith("B:")
    assert _run("-c", code_a, path) == first_a, "the same code run again reuses its result"


@pytest.fixture
def counted(store: cairn.Store) -> Iterator[Callable[[str], Any]]:
    """A factory of memoized closures, each labelling its argument with its own prefix (and
    counting its computations in the store)."""

    def make(prefix: str) -> Any:
        @store.memoize
        def label(x: int) -> str:
            store.cache("calls").incr(prefix)
            return f"{prefix}{x}"

        return label

    yield make


def test_closures_of_one_factory_are_keyed_by_what_they_capture(
    store: cairn.Store, counted: Callable[[str], Any]
) -> None:
    a, b = counted("a-"), counted("b-")
    assert (a(1), b(1)) == ("a-1", "b-1")
    assert a.cache_key(1) != b.cache_key(1)
    again = counted("a-")
    assert again.cache_key(1) == a.cache_key(1), "the same captured values share results"
    assert again(1) == "a-1"
    assert store.cache("calls")["a-"] == 1, "computed once"


def test_two_lambdas_of_one_scope_are_told_apart(store: cairn.Store) -> None:
    double = store.memoize(lambda x: x * 2)
    square = store.memoize(lambda x: x * x)
    assert (double(3), square(3)) == (6, 9)
    assert double.cache_key(3) != square.cache_key(3)


def test_a_closure_capturing_a_value_without_json_form_needs_a_name(store: cairn.Store) -> None:
    lock = threading.Lock()

    with pytest.raises(TypeError, match=r"captures 'lock', a lock.*name="):

        @store.memoize
        def guarded(x: int) -> int:
            with lock:
                return x

    @store.memoize(name="guarded-square")
    def named(x: int) -> int:
        with lock:
            return x * x

    assert named(3) == 9
    assert named.cache_key(3) == 'guarded-square:{"x":3}'


def test_a_closure_may_capture_the_store_a_module_and_functions(store: cairn.Store) -> None:
    helper = functools.partial(int, base=16)  # a partial is not JSON either: refused

    @store.memoize
    def parse(text: str) -> int:
        store.cache("log").incr("parses")
        return int(text, 16) + len(sys.argv) * 0

    assert parse("ff") == 255
    with pytest.raises(TypeError, match="helper"):

        @store.memoize
        def parse2(text: str) -> int:
            return helper(text)


def test_a_partial_is_refused_without_a_name_and_keyed_by_it_with_one(store: cairn.Store) -> None:
    def power(base: int, exp: int) -> int:
        return base**exp

    with pytest.raises(TypeError, match=r"functools.partial has none; pass name="):
        store.memoize(functools.partial(power, exp=2))
    square = store.memoize(name="square")(functools.partial(power, exp=2))
    assert square(7) == 49
    assert square.cache_key(7) == 'square:{"base":7,"exp":2}'


def test_generator_functions_are_refused_when_decorating(store: cairn.Store) -> None:
    with pytest.raises(TypeError, match="generator functions"):

        @store.memoize
        def numbers() -> Iterator[int]:
            yield 1


def test_a_memoized_function_calling_itself_with_the_same_arguments_is_refused_at_once(path: str) -> None:
    # Before: the inner call waited for the outer one's fill marker until the fill timeout
    # (30 s by default; 3 here, so that the old behaviour fails quickly) and then computed.
    with cairn.Store(path, fill_timeout=3) as store:

        @store.memoize
        def loop(n: int) -> int:
            return loop(n)

        with pytest.raises(cairn.InvalidInputError, match="asked for again by its own computation"):
            loop(1)

        @store.memoize
        def fact(n: int) -> int:
            return 1 if n <= 1 else n * fact(n - 1)

        assert fact(5) == 120, "recursion on other arguments is fine"


def test_a_function_defined_deep_in_the_file_system_still_gets_a_short_key(tmp_path: Path) -> None:
    """The defining file is part of a memoized function's key; a long path (a checkout deep in
    a build directory) is shortened to its end and a digest, so keys stay short, and two
    such files whose paths end alike still get keys of their own."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    other = tmp_path / ("f" * 60) / ("e" * 60)
    keys = []
    for i, where in enumerate((deep, other)):
        where.mkdir(parents=True)
        script = where / "job.py"
        script.write_text(
            "import sys, cairn\n"
            "store = cairn.Store(sys.argv[1])\n"
            "@store.memoize\n"
            "def f(s: str) -> int:\n"
            "    return len(s)\n"
            "f('x' * 10000)\n"
            "print(*store.cache('memoize').keys())\n"
        )
        db = tmp_path / f"state{i}.db"
        out = subprocess.run([sys.executable, str(script), str(db)], capture_output=True, text=True, check=True)
        keys.append(out.stdout.strip())
    assert all(len(k) < 200 and ":sha256:" in k for k in keys), keys
    assert keys[0] != keys[1] and keys[0].split(":sha256:")[0] != keys[1].split(":sha256:")[0], keys
