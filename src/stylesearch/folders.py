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

:class:`FolderSwap` does steps 1 to 3 for a writer that fills a whole new folder (an index, the
visual judge, the demo catalog, a ``train --overwrite`` run); :func:`replace_files` replaces some
files inside a folder (a model folder's files, a manifest). :func:`read_manifest_json` reads a
folder's versioned JSON manifest (``{"format": ..., "format_version": ...}``), finishing a killed
swap first; :func:`check_format_version` checks the version of the other versioned JSON files
(``grounding.json``, ``synonyms.json``, ``vocab.json``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FolderSwap",
    "ManifestFormat",
    "check_format_version",
    "fsync_tree",
    "new_temp_folder",
    "read_manifest_json",
    "recover",
    "replace_files",
    "share_file",
    "swap_into_place",
    "writer_lock",
]

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


def swap_into_place(tmp: Path, out_dir: Path, *, durable: bool = True) -> None:
    """Make the complete folder ``tmp`` the folder ``out_dir``, replacing (then deleting) what
    is there; a kill at any moment leaves a folder that :func:`recover` makes whole. The caller
    holds :func:`writer_lock` of ``out_dir`` (from before it made ``tmp``).

    ``durable=False`` (a folder that can be built again, see :class:`FolderSwap`) needs no lock
    and syncs nothing to disk: the renames alone."""
    out_dir = Path(out_dir)
    if durable and _lock_path(out_dir) not in _held():
        raise RuntimeError(f"swap_into_place({out_dir}) without its writer_lock held")
    if durable:
        fsync_tree(tmp)
    ready = _sibling(out_dir, _NEW)
    os.rename(tmp, ready)
    if durable:
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
    if durable:
        _fsync_path(out_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def share_file(src: str | Path, dst: str | Path) -> None:
    """Put the file ``src`` at ``dst`` too, for a new folder that is swapped in later: a hard
    link (the writers here replace files by renames and never write into one, so the two
    folders never see each other's changes), or a copy where the file system refuses links."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class FolderSwap:
    """Replace the folder ``target`` by a new one, written beside it and swapped in whole::

        with FolderSwap(out) as folder:
            write_everything_into(folder.tmp)
            folder.commit()  # swap it in (the old folder goes only now)

    From construction to :meth:`commit` it holds ``target``'s :func:`writer_lock` (its entry
    finishes what a killed writer left). Leaving the block without :meth:`commit` (an exception,
    or none) deletes the temporary folder and leaves ``target`` as it was.

    ``durable=False`` is for a folder that can be built again (the demo catalog, millions of
    small files): no lock (and no lock file beside it) and no sync to disk, only the renames,
    so a kill still never leaves a half-written ``target``.

    ``tmp`` names the folder to fill instead of a new ``.NAME.tmp-XXXX`` (the caller makes it,
    under the lock): a run that can be continued (``train --overwrite``, then ``--resume``).
    Such a folder is kept when the block is left without :meth:`commit`.
    """

    def __init__(
        self,
        target: str | Path,
        *,
        durable: bool = True,
        quiet: bool = False,
        tmp: str | Path | None = None,
    ) -> None:
        self.target = Path(target)
        self.durable = durable
        self.committed = False
        self._keep = tmp is not None
        self._lock = ExitStack()
        if durable:
            self._lock.enter_context(writer_lock(self.target, quiet=quiet))
        try:
            self.tmp = new_temp_folder(self.target) if tmp is None else Path(tmp)
        except BaseException:
            self._lock.close()
            raise

    def __enter__(self) -> FolderSwap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def commit(self) -> Path:
        """Swap the temporary folder in as ``target`` and release the lock; returns ``target``."""
        try:
            swap_into_place(self.tmp, self.target, durable=self.durable)
            self.committed = True
        finally:
            self.close()
        return self.target

    def close(self) -> None:
        """Without a commit, delete the temporary folder (unless the caller named it); release
        the lock (idempotent)."""
        if not self.committed and not self._keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self._lock.close()


def replace_files(folder: Path, writers: dict[str, Callable[[Path], object]]) -> None:
    """Replace files of ``folder``: every ``write(tmp)`` of ``writers`` (name -> write; what it
    returns is ignored, e.g. ``Vocabulary.save``'s path) fills a temporary path beside its final
    one and is synced to disk, and only then are they renamed into place, in order, and the
    folder synced.

    A kill while writing leaves the old files as they were; a kill during the renames (a few
    microseconds) can leave files of two saves, which a reader must refuse (the model folder's
    config, renamed last, records the checksums of the others).
    """
    token = uuid.uuid4().hex[:12]
    temps = {name: folder / f".{name}.{token}.tmp" for name in writers}
    try:
        for name, write in writers.items():
            write(temps[name])
            _fsync_path(temps[name])
        for name in writers:
            os.replace(temps[name], folder / name)
        _fsync_path(folder)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class ManifestFormat:
    """A folder's versioned JSON manifest: the file ``file`` of the folder holds a JSON object
    with ``"format": name`` and a ``"format_version"`` from ``oldest`` to ``newest``."""

    file: str
    name: str
    #: what the file is, for messages ("stylesearch index manifest")
    title: str
    newest: int
    oldest: int
    #: the error raised for a file that is not one (its message says what to do)
    error: type[Exception]
    #: what to do about a version outside oldest..newest
    fix: str


def read_manifest_json(folder: str | Path, fmt: ManifestFormat, missing: str) -> dict[str, Any]:
    """The parsed manifest ``fmt.file`` of ``folder``, checked against ``fmt``.

    A missing ``folder`` is first recovered (:func:`recover`: a writer killed between the two
    renames of its swap). Raises ``fmt.error``: ``missing`` when there is no file, or the file
    is not JSON, not a ``fmt.name`` manifest, or of a version outside ``oldest..newest``.
    """
    folder = Path(folder)
    path = folder / fmt.file
    if not folder.exists():
        recover(folder)
    if not path.is_file():
        raise fmt.error(missing)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise fmt.error(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt.name:
        raise fmt.error(f"{path}: not a {fmt.title}")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or not fmt.oldest <= version <= fmt.newest:
        reads = _reads(fmt.oldest, fmt.newest)
        raise fmt.error(
            f"{path}: format {version!r} is not one this stylesearch {reads}; {fmt.fix}"
        )
    return meta


def _reads(oldest: int, newest: int) -> str:
    """``"(0.4.0) reads (2 to 3)"``: this stylesearch's version and the formats it reads."""
    from stylesearch import __version__

    return f"({__version__}) reads ({newest if oldest == newest else f'{oldest} to {newest}'})"


def check_format_version(
    data: Mapping[str, Any], newest: int, what: str, *, oldest: int = 0
) -> int:
    """The ``"format_version"`` of the JSON object ``data`` (0 when it has none), an integer from
    ``oldest`` to ``newest``; ``ValueError`` starting with ``what`` (the file's kind) otherwise."""
    version = data.get("format_version", 0)
    is_int = isinstance(version, int) and not isinstance(version, bool)
    if is_int and oldest <= version <= newest:
        return version
    how = "is newer than" if is_int and version > newest else "is not one"
    raise ValueError(
        f"{what}: format_version {version!r} {how} this stylesearch {_reads(oldest, newest)}"
    )
