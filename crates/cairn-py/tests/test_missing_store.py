"""A script that only reads can ask not to create a store where none exists (issue 25.1): a
mistyped path then reads as an empty store and says so, instead of silently starting fresh."""

from __future__ import annotations

from pathlib import Path

import pytest

import cairn


def test_read_missing_as_empty_reads_as_an_empty_store_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "typo" / "state.db"
    with cairn.Store(db, read_missing_as_empty=True) as store:
        assert store.is_missing
        assert store.cache("c").get("k") is None
        assert len(store.cache("c")) == 0
        assert store.ledger("l").filter_new(["a", "b"]) == ["a", "b"]
        assert store.checkpoint("job").get() is None
        with pytest.raises(cairn.ReadOnlyError):
            store.ledger("l").mark_done("a")
    assert not (tmp_path / "typo").exists(), "a reading open created the directory"


def test_read_missing_as_empty_on_an_existing_store_reads_it_and_is_not_missing(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with cairn.Store(db) as writer:
        writer.ledger("l").mark_done("a")
    with cairn.Store(db, read_missing_as_empty=True) as store:
        assert not store.is_missing
        assert store.ledger("l").filter_new(["a", "b"]) == ["b"]
    with cairn.Store(db) as plain:
        assert not plain.is_missing


def test_read_missing_as_empty_must_be_a_bool(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="read_missing_as_empty must be a bool"):
        cairn.Store(tmp_path / "x.db", read_missing_as_empty="yes")  # type: ignore[arg-type]
