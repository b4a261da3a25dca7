"""Crash-safe folder writes: the writer lock, kills at every step of the swap, recovery."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from stylesearch.folders import (
    FolderSwap,
    ManifestFormat,
    check_format_version,
    new_temp_folder,
    read_manifest_json,
    recover,
    swap_into_place,
    writer_lock,
)
from stylesearch.index.postings import csr_from_bags
from stylesearch.index.store import Index
from stylesearch.index.update import delete_items
from stylesearch.testing.index_arrays import write_index_arrays


def _write(out: Path, n: int = 8, tag: str = "old") -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 4)).astype(np.float32)
    attributes = rng.random((n, 3)).astype(np.float16)
    meta = csr_from_bags([[i % 3] for i in range(n)])
    write_index_arrays(out, vectors, attributes, metadata=meta, manifest={"build": tag})


def test_swap_without_the_lock_is_refused(tmp_path):
    tmp = new_temp_folder(tmp_path / "x")
    with pytest.raises(RuntimeError, match="without its writer_lock"):
        swap_into_place(tmp, tmp_path / "x")


def test_the_lock_entry_deletes_leftovers_of_killed_writers(tmp_path):
    target = tmp_path / "idx"
    target.mkdir()
    for name in (".idx.tmp-1", ".idx.new-2", ".idx.old-3", ".other.tmp-4"):
        (tmp_path / name).mkdir()
    with writer_lock(target):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".idx.lock", ".other.tmp-4", "idx"]


@pytest.mark.parametrize(
    ("leftovers", "expected"),
    [
        ((".idx.new-a", ".idx.old-b"), "new-a"),  # killed between the renames: finish the swap
        ((".idx.old-b",), "old-b"),  # no complete new folder: put the old one back
        ((".idx.tmp-c",), None),  # an unfinished folder is never put in
    ],
)
def test_recover_puts_back_a_missing_folder(tmp_path, leftovers, expected):
    for name in leftovers:
        (tmp_path / name).mkdir()
        (tmp_path / name / "which").write_text(name.split(".")[-1])
    restored = recover(tmp_path / "idx")
    assert restored == (expected is not None)
    if expected is None:
        assert not (tmp_path / "idx").exists()
    else:
        assert (tmp_path / "idx" / "which").read_text() == expected
        assert sorted(p.name for p in tmp_path.iterdir()) == [".idx.lock", "idx"]


def test_a_second_writer_waits_for_the_first(tmp_path, capfd):
    target = tmp_path / "idx"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from stylesearch.folders import writer_lock
            with writer_lock({str(target)!r}):
                print("held", flush=True)
                time.sleep(1.5)
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    t0 = time.perf_counter()
    with writer_lock(target):
        waited = time.perf_counter() - t0
    holder.wait(timeout=30)
    assert waited > 0.5
    assert "waiting for another writer of" in capfd.readouterr().err


def test_concurrent_deletes_are_all_applied(tmp_path):
    out = tmp_path / "idx"
    _write(out, n=12)
    errors: list[BaseException] = []

    def delete(ids: list[str]) -> None:
        try:
            delete_items(out, ids)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=delete, args=([f"item-{i}"],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    index = Index.load(out)
    assert index.live_count == 6 and np.flatnonzero(index.deleted).tolist() == list(range(6))


KILL_SCRIPT = """
import os, shutil, signal, sys
import numpy as np
from stylesearch import folders
from stylesearch.index.postings import csr_from_bags
from stylesearch.testing.index_arrays import write_index_arrays

step, out = int(sys.argv[1]), sys.argv[2]
calls = [0]
def dying(real):
    def call(*args, **kwargs):
        calls[0] += 1
        if calls[0] == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call
folders.os.rename = dying(os.rename)
folders.shutil.rmtree = dying(shutil.rmtree)
rng = np.random.default_rng(1)
write_index_arrays(out, rng.standard_normal((8, 4)).astype(np.float32),
                   rng.random((8, 3)).astype(np.float16),
                   metadata=csr_from_bags([[1]] * 8), manifest={"build": "new"})
"""


@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_a_writer_killed_at_any_step_of_the_swap_leaves_a_loadable_index(tmp_path, step):
    # the swap's calls: rename tmp -> new, rename old aside, rename new in, delete old
    out = tmp_path / "idx"
    _write(out)
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(step), str(out)])
    assert killed.returncode == -9
    build = Index.load(out).manifest["build"]  # loads, recovering if it must
    assert build == ("old" if step <= 2 else "new")
    _write(out, tag="next")  # the next writer cleans up whatever the killed one left
    assert sorted(p.name for p in tmp_path.iterdir()) == [".idx.lock", "idx"]


def test_folder_swap_commits_whole_or_leaves_the_old_folder(tmp_path):
    target = tmp_path / "x"
    with FolderSwap(target) as folder:
        (folder.tmp / "a").write_text("1")
        folder.commit()
    with pytest.raises(KeyboardInterrupt), FolderSwap(target) as folder:
        (folder.tmp / "a").write_text("2")
        raise KeyboardInterrupt
    with FolderSwap(target) as folder:
        (folder.tmp / "a").write_text("3")  # left without commit: nothing changes
    assert (target / "a").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".x.lock", "x"]
    with FolderSwap(tmp_path / "y", durable=False) as folder:  # no lock file beside it
        (folder.tmp / "b").write_text("4")
        folder.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".x.lock", "x", "y"]


def test_folder_swap_into_a_named_folder_keeps_it_until_the_commit(tmp_path):
    """A named ``tmp`` (a training run beside its model) survives a block left without a
    commit, so a later writer can continue it; the commit swaps it in."""
    target, run = tmp_path / "m", tmp_path / ".m.run"
    with FolderSwap(target) as folder:
        (folder.tmp / "a").write_text("old")
        folder.commit()
    with pytest.raises(KeyboardInterrupt), FolderSwap(target, tmp=run):
        run.mkdir()
        (run / "a").write_text("new")
        raise KeyboardInterrupt
    assert (target / "a").read_text() == "old"
    assert (run / "a").read_text() == "new"
    with FolderSwap(target, tmp=run) as folder:
        assert folder.tmp == run
        folder.commit()
    assert (target / "a").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.lock", "m"]


def test_read_manifest_json_says_what_is_wrong(tmp_path):
    fmt = ManifestFormat(
        file="m.json", name="thing", title="thing manifest", newest=3, oldest=2,
        error=ValueError, fix="rebuild it",
    )  # fmt: skip
    with pytest.raises(ValueError, match="^no manifest$"):
        read_manifest_json(tmp_path, fmt, "no manifest")
    path = tmp_path / "m.json"
    for body, message in [
        ("{", "not valid JSON"),
        ('{"format": "other", "format_version": 3}', "not a thing manifest"),
        ('{"format": "thing", "format_version": 4}', r"format 4 is not one .* \(2 to 3\); rebuild"),
        ('{"format": "thing"}', r"format 0 is not one"),
    ]:
        path.write_text(body)
        with pytest.raises(ValueError, match=message):
            read_manifest_json(tmp_path, fmt, "no manifest")
    path.write_text('{"format": "thing", "format_version": 2, "x": 1}')
    assert read_manifest_json(tmp_path, fmt, "no manifest")["x"] == 1


def test_check_format_version() -> None:
    assert check_format_version({}, 1, "grounding") == 0  # written before versions existed
    assert check_format_version({"format_version": 3}, 3, "x", oldest=2) == 3
    for version, message in [
        (4, r"^x: format_version 4 is newer than this stylesearch \(.*\) reads \(2 to 3\)$"),
        (1, r"^x: format_version 1 is not one this stylesearch \(.*\) reads \(2 to 3\)$"),
        ("3", r"format_version '3' is not one"),
        (True, r"format_version True is not one"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_format_version({"format_version": version}, 3, "x", oldest=2)
