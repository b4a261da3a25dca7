"""Kill index and model writers at random moments and check that what they write always loads
(issue 15).

Runs a writer in a subprocess and sends it SIGKILL after a random delay, uniform over the
writer's own measured duration, N times per writer:

- ``delete``: ``stylesearch index delete`` of one live item (the CLI, end to end) on a synthetic
  index (``write_index_arrays``: random unit vectors, attribute probabilities and metadata);
- ``rebuild``: a full rebuild of that folder with new arrays (what ``stylesearch index`` into
  an existing folder does: the writer, the derived files, the backend, the swap);
- ``add``: ``stylesearch index add`` of 20 items to a copy of a 40-item index of a tiny model;
- ``train``: ``stylesearch train --overwrite`` (2 epochs, a new seed each time) over the tiny
  model's folder.

The tiny model and catalog (60 generated 32 px shapes, trained on the CPU) are built here, offline.
After each kill it loads the index (``Index.load``) or the model (``load_model``); both finish
a swap killed between its renames. It counts the outcome: the old state, the new one, or
unloadable (a failure).

    .venv/bin/python benchmarks/fault_bench.py --kills 50
    .venv/bin/python benchmarks/fault_bench.py --kills 50 --ops add,train
    .venv/bin/python benchmarks/fault_bench.py --kills 50 --rows 200000 --backend faiss
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

import _common
from stylesearch.index.postings import csr_from_bags
from stylesearch.index.store import Index, IndexFormatError
from stylesearch.testing.index_arrays import write_index_arrays

REBUILD = """
import sys
import numpy as np
from stylesearch.index.postings import csr_from_bags
from stylesearch.testing.index_arrays import write_index_arrays
out, rows, backend, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(int(tag))
write_index_arrays(out, rng.standard_normal((rows, 64)).astype(np.float32),
                   rng.random((rows, 50)).astype(np.float16),
                   metadata=csr_from_bags([[i % 50] for i in range(rows)]),
                   backend=backend, manifest={"build": tag})
"""


def build(out: Path, rows: int, backend: str, tag: str) -> None:
    rng = np.random.default_rng(int(tag))
    write_index_arrays(
        out,
        rng.standard_normal((rows, 64)).astype(np.float32),
        rng.random((rows, 50)).astype(np.float16),
        metadata=csr_from_bags([[i % 50] for i in range(rows)]),
        backend=backend,
        manifest={"build": tag},
    )


TINY_TOML = """
[text]
min_count = 2
[model]
embed_dim = 32
image_size = 32
[train]
epochs = 2
batch_size = 16
num_workers = 0
warmup_steps = 2
val_fraction = 0.0
"""


def build_tiny(root: Path) -> None:
    """``root/catalog`` (60 shapes; ``head.jsonl`` 40, ``tail.jsonl`` 20), ``root/tiny.toml``,
    ``root/model`` trained with it, and ``root/add-base``, an exact index of the head."""
    from stylesearch.catalog.synthetic import make_shapes_catalog
    from stylesearch.config import load_config
    from stylesearch.index.build import build_index
    from stylesearch.training.loop import train

    manifest = make_shapes_catalog(root / "catalog", 60, seed=3, image_size=32)
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    (manifest.parent / "head.jsonl").write_text("".join(lines[:40]), encoding="utf-8")
    (manifest.parent / "tail.jsonl").write_text("".join(lines[40:]), encoding="utf-8")
    (root / "tiny.toml").write_text(TINY_TOML, encoding="utf-8")
    train(manifest, root / "model", load_config(root / "tiny.toml"), progress=False)
    build_index(root / "model", manifest.parent / "head.jsonl", root / "add-base",
                backend="exact", num_workers=0)  # fmt: skip


def command(op: str, out: Path, rows: int, backend: str, step: int) -> list[str]:
    exe = str(Path(sys.executable).with_name("stylesearch"))
    if op == "delete":
        ids = out.parent / f"ids-{step}.txt"
        ids.write_text(f"item-{step}\n")
        return [exe, "index", "delete", "--index", str(out), "--ids", str(ids)]
    if op == "add":
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(out.parent / "add-base", out)
        tail = out.parent / "catalog" / "tail.jsonl"
        return [exe, "index", "add", "--index", str(out), "--catalog", str(tail),
                "--workers", "0", "--quiet"]  # fmt: skip
    if op == "train":
        return [exe, "train", "--catalog", str(out.parent / "catalog" / "manifest.jsonl"),
                "--out", str(out), "--config", str(out.parent / "tiny.toml"), "--overwrite",
                "--seed", str(1000 + step), "--quiet"]  # fmt: skip
    return [sys.executable, "-c", REBUILD, str(out), str(rows), backend, str(1000 + step)]


def state(out: Path, op: str, step: int) -> str:
    """``old`` / ``new`` / ``unloadable`` for the index or model after a writer was killed."""
    if op == "train":
        from stylesearch.model.io import ModelFolderError, load_model

        try:
            load_model(out)
        except (ModelFolderError, OSError) as exc:
            return f"unloadable ({exc})"
        config = json.loads((out / "config.json").read_text())
        return "new" if config["extra"]["train_config"]["train"]["seed"] == 1000 + step else "old"
    try:
        index = Index.load(out)
    except (IndexFormatError, OSError) as exc:
        return f"unloadable ({exc})"
    try:
        if op == "delete":
            done = index.row_of(f"item-{step}") is None  # live before; row_of skips deleted rows
        elif op == "add":
            done = index.count == 60
        else:
            done = index.manifest["build"] == str(1000 + step)
        return "new" if done else "old"
    finally:
        index.close()


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--kills", type=int, default=50, help="kills per writer")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the synthetic index")
    parser.add_argument("--backend", default="exact", help="exact or faiss")
    parser.add_argument("--ops", default="delete,rebuild,add,train", help="writers to kill")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    _common.limit_threads()  # the writers it starts: one thread each
    with tempfile.TemporaryDirectory() as tmp:
        ops = args.ops.split(",")
        if {"delete", "rebuild"} & set(ops):
            build(Path(tmp) / "index", args.rows, args.backend, "0")
        if {"add", "train"} & set(ops):
            build_tiny(Path(tmp))
        for op in ops:
            out = Path(tmp) / {"add": "added", "train": "model"}.get(op, "index")
            t0 = time.perf_counter()
            timing = command(op, out, args.rows, args.backend, args.kills)  # an item never killed
            subprocess.run(timing, check=True, capture_output=True)
            duration = time.perf_counter() - t0
            outcomes: Counter[str] = Counter()
            for step in range(args.kills):
                proc = subprocess.Popen(
                    command(op, out, args.rows, args.backend, step),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(rng.uniform(0, duration))
                proc.send_signal(signal.SIGKILL)
                killed = proc.wait() == -signal.SIGKILL
                outcome = state(out, op, step)
                outcomes[outcome if not outcome.startswith("unloadable") else "unloadable"] += 1
                if outcome.startswith("unloadable"):
                    print(f"  {op} kill {step}: {outcome}")
                outcomes["killed" if killed else "finished before the kill"] += 1
            print(
                f"{op:8s} one run {duration:5.2f} s; {args.kills} kills at uniform random "
                f"moments: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
            )
            leftovers = sorted(p.name for p in Path(tmp).glob(f".{out.name}.*"))
            print(f"         beside {out.name} now: {leftovers}")


if __name__ == "__main__":
    main()
