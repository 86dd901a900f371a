"""One file, one SQLite per process.

cairn carries its own SQLite (the extension links it statically); the ``sqlite3`` module uses
the system's. Two SQLite libraries in one process do not see each other's locks (POSIX locks
belong to the process, and each library's bookkeeping of them is private), and closing *any*
descriptor of a database file drops every lock the process holds on it. Both lose committed
writes silently (reproduced: of 200 acknowledged cairn writes, 1 survived). See
crates/cairn-py/README.md and "How To Corrupt An SQLite Database File" (sqlite.org), 2.2.

So, while a :class:`cairn.Store` of this process has a file open:

* ``sqlite3.connect`` of that file (by any name: relative, through a symlink or a hard link,
  a ``file:`` URI) is refused, through an audit hook installed at ``import cairn``;
* so is a plain ``open()``/``os.open()`` of the file or its ``-wal``/``-shm``/``-journal``,
  by any name: closing that descriptor would drop cairn's locks;
* and opening a store whose file this process already holds open some other way (found in
  ``/proc/self/fd``, under any name) is refused the same way.

Files are told apart by device and inode, not by name: a hard link or a symbolic link with
another name is the same file.

All refusals raise :class:`cairn.SQLiteCopyError`. Other native SQLite copies (apsw, another
extension) opened after cairn are not seen; that is documented.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

from .errors import SQLiteCopyError

_SIDES = ("", "-wal", "-shm", "-journal")

_lock = threading.Lock()
# realpath of a store file -> how many live cairn.Store objects (and migrate_file calls) hold it
_open: dict[str, int] = {}
# base names of every file in _open and of its side files, for a cheap first test in the
# hook (str.endswith of a tuple: a false positive only costs a realpath)
_names: tuple[str, ...] = ()
# descriptors a forked child inherited from its parent's cairn connections: not "another copy"
_inherited: set[int] = set()
# (device, inode) of every file in _open and of its side files, by which other names of them
# (hard links, symbolic links named otherwise) are recognised; recomputed when _ids_stale
# (a store registered before its file existed, or the set of files changed)
_ids: dict[tuple[int, int], str] = {}
_devices: frozenset[int] = frozenset()
_ids_stale = False


def _id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _refresh_ids() -> None:
    """The ids of the open stores' files and side files, as they are now. Stays stale while a
    store's file does not exist yet (it is registered before it is created)."""
    global _ids, _devices, _ids_stale
    ids: dict[tuple[int, int], str] = {}
    complete = True
    for key in list(_open):
        for s in _SIDES:
            fid = _id(key + s)
            if fid is not None:
                ids[fid] = key + s
            elif not s:
                complete = False
    _ids, _devices, _ids_stale = ids, frozenset(d for d, _ in ids), not complete


def _same_file_as_open(path: str) -> str | None:
    """The open store file (or side file) that `path` is, by device and inode, if any."""
    if _ids_stale:
        _refresh_ids()
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if st.st_dev not in _devices:
        return None
    found = _ids.get((st.st_dev, st.st_ino))
    if found is None and st.st_nlink > 1:
        # A hard link to a side file made after the ids were taken (a -journal, a -wal made
        # again). Only then: refreshing costs a stat per side file of every open store.
        _refresh_ids()
        found = _ids.get((st.st_dev, st.st_ino))
    return found


def _key(path: str | bytes | os.PathLike[Any]) -> str:
    p = os.fsdecode(os.fspath(path))
    return os.path.realpath(p)


def _refresh_names() -> None:
    global _names, _ids_stale
    _names = tuple(sorted({os.path.basename(k) + s for k in _open for s in _SIDES}))
    _ids_stale = True


def _holders(key: str) -> list[str]:
    """Descriptors of this process open on `key` or its side files, by any name (compared by
    device and inode), as ``fd -> path``."""
    targets = {key + s for s in _SIDES}
    target_ids = {fid for fid in (_id(t) for t in targets) if fid is not None}
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return []  # no /proc: nothing can be checked here
    found = []
    for fd in fds:
        if not fd.isdigit() or int(fd) in _inherited:
            continue
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (listdir's own descriptor)
        if target in targets or (target_ids and _id(f"/proc/self/fd/{fd}") in target_ids):
            found.append(f"descriptor {fd} -> {target}")
    return found


def register(path: str | os.PathLike[str]) -> str:
    """Count one more holder of `path`; on the first, refuse if the process already has the
    file open some other way. Returns the key to give back to :func:`unregister`."""
    key = _key(path)
    with _lock:
        first = _open.get(key, 0) == 0
        _open[key] = _open.get(key, 0) + 1
        _refresh_names()
    if first:
        found = _holders(key)
        if found:
            unregister(key)
            raise SQLiteCopyError(
                f"{key} is already open in this process outside cairn ({', '.join(found)}), by the sqlite3 "
                "module or a plain open(): a second SQLite library in one process does not see cairn's locks, "
                "and closing that descriptor would drop them, so committed writes could be lost. Close it "
                "first (and use store.query / tx.execute for your own tables), or use the file from another "
                "process"
            )
    return key


def unregister(key: str) -> None:
    """Count one holder of `key` less."""
    with _lock:
        n = _open.get(key, 0) - 1
        if n > 0:
            _open[key] = n
        else:
            _open.pop(key, None)
        _refresh_names()


@contextmanager
def holding(path: str | os.PathLike[str]) -> Iterator[str]:
    """Hold `path` for the duration of a block (``cairn.migrate_file``)."""
    key = register(path)
    try:
        yield key
    finally:
        unregister(key)


def is_open(path: str | os.PathLike[str]) -> bool:
    """True while a live cairn.Store of this process has the file open (by any name)."""
    key = _key(path)
    return _open.get(key, 0) > 0 or (bool(_open) and _same_file_as_open(key) is not None)


def _uri_path(db: str) -> str | None:
    """The file a ``file:`` URI names, if any."""
    if not db.startswith("file:"):
        return None
    u = urlsplit(db)
    if u.netloc not in ("", "localhost"):
        return None
    return unquote(u.path) or None


def _refuse(what: str, key: str, advice: str) -> None:
    raise SQLiteCopyError(
        f"{what} {key} is refused: a cairn.Store of this process has this store open, and {advice}, so "
        "committed writes could be lost. Use the store itself (store.query, tx.execute, store.backup), "
        "close it first, or do this from another process"
    )


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Runs for every audited event of the process (every open(), import, id()...): the common
    # case must return after a comparison or two.
    if event == "open":
        if not _open or not args:
            return
        path = args[0]
        if isinstance(path, str):
            p = path
        elif isinstance(path, (bytes, os.PathLike)):
            try:
                p = os.fsdecode(os.fspath(path))
            except (TypeError, ValueError):
                return
        else:
            return  # a descriptor number
        if p.endswith(_names):
            # By name first: a side file that does not exist yet has no inode to compare.
            real = os.path.realpath(p)
            for s in _SIDES:
                base = real[: len(real) - len(s)] if s else real
                if (not s or real.endswith(s)) and _open.get(base, 0) > 0:
                    _refuse(
                        "opening",
                        real,
                        "closing another descriptor of the file drops every lock the process holds on it",
                    )
        # Any other name of the same file (a hard link, a symbolic link named otherwise): one
        # stat, and a comparison of device and inode.
        same = _same_file_as_open(p)
        if same is not None:
            _refuse(
                "opening",
                f"{os.path.realpath(p)} (the same file as {same})",
                "closing another descriptor of the file drops every lock the process holds on it",
            )
    elif event == "sqlite3.connect":
        if not _open or not args:
            return
        db = args[0]
        try:
            name = os.fsdecode(os.fspath(db))
        except TypeError:
            return
        if name in ("", ":memory:"):
            return
        candidates = [name]
        uri = _uri_path(name)
        if uri is not None:
            candidates.append(uri)
        for c in candidates:
            key = os.path.realpath(c)
            same = key if _open.get(key, 0) > 0 else _same_file_as_open(c)
            if same is not None:
                shown = key if same == key else f"{key} (the same file as {same})"
                _refuse(
                    "sqlite3.connect of",
                    shown,
                    "the sqlite3 module's SQLite is a second copy of SQLite that does not see cairn's locks",
                )


def after_fork_in_child() -> None:
    """In a forked child: the lock may have been held by a parent thread, and the parent's
    cairn descriptors are inherited (never closed: their connections are let go of)."""
    global _lock
    _lock = threading.Lock()
    if not _open:
        return
    keys = set(_open)
    targets = {k + s for k in keys for s in _SIDES}
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return
    for fd in fds:
        if not fd.isdigit():
            continue
        try:
            if os.readlink(f"/proc/self/fd/{fd}") in targets:
                _inherited.add(int(fd))
        except OSError:
            continue


_installed = False


def install() -> None:
    """Install the audit hook (once per process; audit hooks cannot be removed)."""
    global _installed
    if not _installed:
        sys.addaudithook(_audit)
        _installed = True
