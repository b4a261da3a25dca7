"""What fusing the items' text into ``p`` costs an index build: time and peak memory.

``stylesearch index`` fuses every item's metadata words into its attribute probabilities
(``stylesearch.index.fusion.TextFusion.fuse``) in place, on the index's float16 ``(N, V)``
array. This script writes such an array of random probabilities as a memory-mapped ``.npy``
file (Fortran order, as the index folder keeps it) with ``--words`` random metadata words per
item, then fuses it by each rule in a fresh process and prints the seconds and the growth of
the process's peak RSS over what it held before the call (the array's pages already mapped in,
so the growth is the fusion's own temporaries).

    .venv/bin/python benchmarks/fusion_memory.py --items 1000000

Linux only (it reads the peak RSS from ``getrusage``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import _common


def fuse_once(folder: Path, rule: str) -> dict[str, float]:
    """In this process: fuse ``folder``'s arrays by ``rule`` at its default weight."""
    import resource
    import time

    import numpy as np

    from stylesearch.index.fusion import TextFusion

    attributes = np.load(folder / "attributes.npy", mmap_mode="r+")
    offsets, words = np.load(folder / "offsets.npy"), np.load(folder / "words.npy")
    for c in range(attributes.shape[1]):  # the mapped pages resident first: not counted below
        float(attributes[:, c].max())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    TextFusion.of(rule).fuse(attributes, offsets, words)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_growth_mb": (after - before) / 1024}


def write_arrays(folder: Path, items: int, vocab: int, per_item: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    attributes = np.lib.format.open_memmap(
        folder / "attributes.npy", mode="w+", dtype=np.float16, shape=(items, vocab),
        fortran_order=True,
    )  # fmt: skip
    for c in range(vocab):
        attributes[:, c] = rng.random(items).astype(np.float16)
    attributes.flush()
    words = rng.integers(0, vocab, size=items * per_item, dtype=np.int32)
    np.save(folder / "offsets.npy", np.arange(0, items * per_item + 1, per_item, dtype=np.int64))
    np.save(folder / "words.npy", words)


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--items", type=int, default=1_000_000, help="rows of the array")
    parser.add_argument("--vocab", type=int, default=178, help="columns (the demo's vocabulary)")
    parser.add_argument("--words", type=int, default=6, help="metadata words per item")
    parser.add_argument("--rules", nargs="+", default=["log-odds", "blend"])
    parser.add_argument("--fuse", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--rule", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fuse:  # the child process
        print(json.dumps(fuse_once(Path(args.fuse), args.rule)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_arrays(folder, args.items, args.vocab, args.words)
        mb = (folder / "attributes.npy").stat().st_size / 2**20
        print(f"{args.items:,} items x {args.vocab} words ({mb:.0f} MB float16), "
              f"{args.words} metadata words each")  # fmt: skip
        print("| rule | seconds | peak RSS growth |")
        print("|---|---|---|")
        for rule in args.rules:
            out = subprocess.run(
                [sys.executable, __file__, "--fuse", str(folder), "--rule", rule],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            r = json.loads(out.stdout)
            print(f"| {rule} | {r['seconds']:.2f} | {r['peak_growth_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
