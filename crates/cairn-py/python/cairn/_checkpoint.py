"""Checkpoints: a job's saved position (a cursor, a page token, an offset)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._store import _Source


class Checkpoint:
    """The checkpoint of one job, from :meth:`Store.checkpoint` (each call is its own
    transaction) or :meth:`Transaction.checkpoint` (calls join the transaction, so the
    position commits together with the ledger marks it belongs to).

    >>> import cairn
    >>> store = cairn.Store(":memory:")
    >>> cp = store.checkpoint("export")
    >>> cp.get() is None
    True
    >>> cp.set({"page": 3, "token": "abc"})
    >>> cp.get()
    {'page': 3, 'token': 'abc'}
    """

    __slots__ = ("_src", "_job", "_tx")

    def __init__(self, src: _Source, job: str, tx: int) -> None:
        self._src = src
        self._job = job
        self._tx = tx

    @property
    def job(self) -> str:
        """The job's name."""
        return self._job

    def get(self, default: Any = None) -> Any:
        """The saved value, with the type it was saved with, or `default` if there is none."""
        return self._src._conn().checkpoint_get(self._job, self._tx, default)

    def set(self, value: Any) -> None:
        """Save `value` (str, int, float, bool, None, bytes, or a dict/list of JSON values),
        replacing the previous one."""
        self._src._conn().checkpoint_set(self._job, value, self._tx)

    def delete(self) -> bool:
        """Remove the checkpoint. True if there was one."""
        return self._src._conn().checkpoint_delete(self._job, self._tx)

    def __repr__(self) -> str:
        return f"<cairn.Checkpoint {self._job!r}>"
