"""Kill index writers at random moments and check that the index always loads (issue 15).

Builds a synthetic index (``write_index_arrays``: random unit vectors, attribute probabilities
and metadata), then runs a writer in a subprocess and sends it SIGKILL after a random delay,
uniform over the writer's own measured duration, N times per writer:

- ``delete``: ``stylesearch index delete`` of one live item (the CLI, end to end);
- ``rebuild``: a full rebuild of the same folder with new arrays (what ``stylesearch index``
  into an existing folder does: the writer, the derived files, the backend, the swap).

After each kill it loads the index (``Index.load``, which finishes a swap killed between its
renames) and counts the outcome: the old index, the new one, or unloadable (a failure).

    .venv/bin/python benchmarks/fault_bench.py --kills 50
    .venv/bin/python benchmarks/fault_bench.py --kills 50 --rows 200000 --backend faiss
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from stylesearch.index.store import Index, IndexFormatError, csr_from_bags, write_index_arrays

REBUILD = """
import sys
import numpy as np
from stylesearch.index.store import csr_from_bags, write_index_arrays
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


def command(op: str, out: Path, rows: int, backend: str, step: int) -> list[str]:
    if op == "delete":
        ids = out.parent / f"ids-{step}.txt"
        ids.write_text(f"item-{step}\n")
        exe = Path(sys.executable).with_name("stylesearch")
        return [str(exe), "index", "delete", "--index", str(out), "--ids", str(ids)]
    return [sys.executable, "-c", REBUILD, str(out), str(rows), backend, str(1000 + step)]


def state(out: Path, op: str, step: int) -> str:
    """``old`` / ``new`` / ``unloadable`` for the index after a writer was killed."""
    try:
        index = Index.load(out)
    except (IndexFormatError, OSError) as exc:
        return f"unloadable ({exc})"
    try:
        if op == "delete":
            done = index.row_of(f"item-{step}") is None  # live before; row_of skips deleted rows
        else:
            done = index.manifest["build"] == str(1000 + step)
        return "new" if done else "old"
    finally:
        index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="kills per writer")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the synthetic index")
    parser.add_argument("--backend", default="exact", help="exact or faiss")
    parser.add_argument("--ops", default="delete,rebuild", help="writers to kill")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "index"
        build(out, args.rows, args.backend, "0")
        for op in args.ops.split(","):
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
            leftovers = sorted(
                p.name for p in Path(tmp).iterdir() if p.name != "index" and "ids-" not in p.name
            )
            print(f"         beside the index now: {leftovers}")


if __name__ == "__main__":
    main()
