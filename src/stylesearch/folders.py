"""Crash-safe folder writes: one writer at a time per folder, a swap that leaves a loadable
folder at every moment of a kill, and recovery of what a killed writer left.

A writer of the folder ``DIR/NAME`` (an index, the visual judge) works like this:

1. :func:`writer_lock` takes an exclusive ``flock`` on ``DIR/.NAME.lock``. A second writer
   waits for it (saying so once on stderr); readers never take it and are never blocked. The
   kernel drops the lock when its process dies, however it dies.
2. Under the lock, :func:`recover` puts back a folder that a killed swap left out and deletes
   the leftovers of killed writers (``.NAME.tmp-*``, ``.NAME.new-*``, ``.NAME.old-*``).
3. The writer fills ``DIR/.NAME.tmp-XXXX``; :func:`swap_into_place` then syncs every file
   in it and renames it ``.NAME.new-XXXX`` (complete, to be swapped in), renames the old folder
   ``.NAME.old-XXXX``, renames the new one to ``NAME`` and deletes the old one, syncing
   the parent folder after each rename.

A kill between the two renames leaves no ``NAME``, a complete ``.NAME.new-*`` and the old
``.NAME.old-*``: :func:`recover` (run by the next writer, and by a reader that finds ``NAME``
missing) finishes the swap. A kill before that leaves the old folder in place.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["fsync_tree", "new_temp_folder", "recover", "swap_into_place", "writer_lock"]

#: prefixes (after ``.NAME.``) of the folders a writer makes beside ``NAME``
_TMP, _NEW, _OLD = "tmp-", "new-", "old-"

_local = threading.local()  # .held: lock path -> (fd, depth); re-entrant within one thread


def _held() -> dict[Path, tuple[int, int]]:
    if not hasattr(_local, "held"):
        _local.held = {}
    return _local.held


def _sibling(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}{uuid.uuid4().hex[:8]}"


def _lock_path(target: Path) -> Path:
    target = Path(target).absolute()
    return target.parent / f".{target.name}.lock"


def _leftovers(target: Path, kind: str) -> list[Path]:
    """``.NAME.<kind>*`` beside ``target``, oldest first."""
    if not target.parent.is_dir():
        return []
    found = [p for p in target.parent.glob(f".{target.name}.{kind}*") if p.is_dir()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """``fsync`` every file under ``folder``, then each folder (so a power loss after a rename
    cannot leave empty files behind a complete-looking folder)."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            _fsync_path(Path(root) / name)
        _fsync_path(Path(root))


@contextmanager
def writer_lock(target: str | Path, *, quiet: bool = False) -> Iterator[None]:
    """Hold the exclusive writer lock of the folder ``target`` (re-entrant within a thread;
    another thread of the same process waits like another process).

    Waits while another process holds it, after one line on stderr unless ``quiet``. On entry
    (the outermost one) it runs :func:`recover`.
    """
    target = Path(target).absolute()
    lock_path = _lock_path(target)
    held = _held()
    if lock_path in held:
        fd, depth = held[lock_path]
        held[lock_path] = (fd, depth + 1)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not quiet:
                    print(
                        f"waiting for another writer of {target} to finish (it holds {lock_path})",
                        file=sys.stderr,
                        flush=True,
                    )
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        held[lock_path] = (fd, 1)
        try:
            recover(target, locked=True)
        except BaseException:
            del held[lock_path]
            os.close(fd)
            raise
    try:
        yield
    finally:
        fd, depth = held[lock_path]
        if depth > 1:
            held[lock_path] = (fd, depth - 1)
        else:
            del held[lock_path]
            os.close(fd)  # closing the only descriptor releases the flock


def recover(target: str | Path, *, locked: bool = False) -> bool:
    """Undo what a killed writer of ``target`` left; returns whether ``target`` was put back.

    Without ``locked`` it takes the writer lock itself (waiting for a writer that holds it).
    When ``target`` is missing, the newest complete ``.NAME.new-*`` is renamed in (a swap killed
    between its renames), else the newest ``.NAME.old-*``. Then every leftover beside it goes.
    """
    target = Path(target).absolute()
    if not locked:
        if target.exists() or not any(_leftovers(target, k) for k in (_NEW, _OLD)):
            return False  # nothing to put back (leftovers alone wait for the next writer)
        with writer_lock(target, quiet=True):  # its entry runs recover(locked=True)
            return target.exists()
    restored = False
    if not target.exists():
        candidates = _leftovers(target, _NEW) or _leftovers(target, _OLD)
        if candidates:
            os.rename(candidates[-1], target)
            _fsync_path(target.parent)
            restored = True
    for kind in (_TMP, _NEW, _OLD):
        for path in _leftovers(target, kind):
            shutil.rmtree(path, ignore_errors=True)
    return restored


def new_temp_folder(target: str | Path) -> Path:
    """A new empty ``.NAME.tmp-XXXX`` beside ``target`` to fill, then :func:`swap_into_place`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, _TMP)
    tmp.mkdir()
    return tmp


def swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Make the complete folder ``tmp`` the folder ``out_dir``, replacing (then deleting) what
    is there; a kill at any moment leaves a folder that :func:`recover` makes whole. The caller
    holds :func:`writer_lock` of ``out_dir`` (from before it made ``tmp``)."""
    out_dir = Path(out_dir)
    if _lock_path(out_dir) not in _held():
        raise RuntimeError(f"swap_into_place({out_dir}) without its writer_lock held")
    fsync_tree(tmp)
    ready = _sibling(out_dir, _NEW)
    os.rename(tmp, ready)
    _fsync_path(out_dir.parent)
    old = None
    if out_dir.exists():
        old = _sibling(out_dir, _OLD)
        os.rename(out_dir, old)
    try:
        os.rename(ready, out_dir)
    except BaseException:
        if old is not None:
            os.rename(old, out_dir)
        raise
    _fsync_path(out_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
