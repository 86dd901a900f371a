"""Values keep their Python type, in the cache, checkpoints and ledger results, and across
processes; nothing is pickled; what cannot be stored faithfully is refused."""

from __future__ import annotations

import math

import pytest

import cairn

ROUND_TRIPS = [
    "hello",
    "",
    "héllo ☃ \x00 nul",
    0,
    -7,
    2**63 - 1,
    -(2**63),
    2**64,  # beyond 64 bits: kept exactly, as JSON
    -(2**100),
    1.5,
    0.1,
    -0.0,
    1e300,
    float("inf"),
    float("-inf"),
    True,
    False,
    None,
    b"",
    b"\x00\xff raw",
    {"a": [1, 2.5, None, True, "x"], "nested": {"k": {}}},
    [],
    [1, "two", [3], {"four": 4}],
    {},
]


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=repr)
def test_every_kind_of_value_reads_back_equal_and_of_the_same_type(any_store: cairn.Store, value: object) -> None:
    c = any_store.cache("values")
    c["k"] = value
    got = c["k"]
    assert type(got) is type(value)
    assert got == value
    if isinstance(value, float):
        assert math.copysign(1, got) == math.copysign(1, value)
    any_store.checkpoint("job").set(value)
    assert any_store.checkpoint("job").get("absent") == value
    ledger = any_store.ledger("results")
    ledger.mark_done("x", result=value)
    if value is not None:  # None means "no result"
        assert ledger.result("x") == value and type(ledger.result("x")) is type(value)


def test_nan_reads_back_as_nan(any_store: cairn.Store) -> None:
    c = any_store.cache("values")
    c["nan"] = float("nan")
    assert math.isnan(c["nan"])


def test_bytearray_reads_back_as_bytes_and_tuples_as_lists(any_store: cairn.Store) -> None:
    c = any_store.cache("values")
    c["ba"] = bytearray(b"ab")
    assert c["ba"] == b"ab" and type(c["ba"]) is bytes
    c["t"] = (1, (2, 3))
    assert c["t"] == [1, [2, 3]]


@pytest.mark.parametrize(
    "value, error, message",
    [
        (object(), TypeError, "cannot store a value of type object"),
        ({1, 2}, TypeError, "cannot store a value of type set"),
        ({1: "a"}, TypeError, "dict keys must be str"),
        ({"a": {(1, 2): "b"}}, TypeError, "dict keys must be str"),
        ([1, object()], TypeError, "cannot be stored as JSON"),
        ({"x": float("nan")}, cairn.InvalidInputError, "cannot be stored as JSON"),
        ([float("inf")], cairn.InvalidInputError, "cannot be stored as JSON"),
        (memoryview(b"x"), TypeError, "memoryview"),
    ],
)
def test_values_that_cannot_be_stored_faithfully_are_refused(
    store: cairn.Store, value: object, error: type, message: str
) -> None:
    c = store.cache("values")
    with pytest.raises(error, match=message):
        c["k"] = value
    assert "k" not in c


def test_a_circular_structure_is_refused_not_a_crash(store: cairn.Store) -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(cairn.InvalidInputError, match="Circular"):
        store.cache("values")["k"] = loop


def test_subclasses_of_str_and_int_are_stored_as_their_base_type(store: cairn.Store) -> None:
    import enum

    class Color(str, enum.Enum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    c = store.cache("values")
    c["color"] = Color.RED
    c["level"] = Level.HIGH
    assert c["color"] == "red" and type(c["color"]) is str
    assert c["level"] == 3 and type(c["level"]) is int


def test_nothing_is_pickled_a_custom_object_is_refused_with_advice(store: cairn.Store) -> None:
    class Point:
        def __init__(self) -> None:
            self.x = 1

    with pytest.raises(TypeError, match="never pickled"):
        store.cache("values")["p"] = Point()


def test_lone_surrogates_are_refused_as_invalid_input_saying_where_they_come_from(any_store: cairn.Store) -> None:
    """Issue 19.12: text with a lone surrogate (bytes decoded with surrogateescape) raised a
    bare UnicodeEncodeError from every call; it is InvalidInputError (a ValueError still)."""
    bad = "name-\udcff"
    c = any_store.cache("c")
    attempts = [
        lambda: c.set(bad, 1),
        lambda: c.get(bad),
        lambda: c.set("k", bad),
        lambda: c.set("k", {"nested": [bad]}),
        lambda: c.set("k", {bad: 1}),
        lambda: any_store.cache(bad).set("k", 1),
        lambda: any_store.ledger("l").mark_done(bad),
        lambda: any_store.ledger("l").filter_new([bad]),
        lambda: any_store.checkpoint("job").set(bad),
    ]
    for attempt in attempts:
        with pytest.raises(cairn.InvalidInputError, match="lone surrogate.*surrogateescape") as info:
            attempt()
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value.__cause__, UnicodeEncodeError)
    assert len(c) == 0, "nothing was stored"
