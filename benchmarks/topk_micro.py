"""Micro-costs behind the exact top-k's design choices (issue 4), on the index ``search_bench.py``
built: per-entry costs of a list block, a ``np.memmap`` slice against a plain view, first-touch
page faults with and without populating the attribute matrix, and the must-word intersection.

    .venv/bin/python benchmarks/topk_micro.py --workdir runs/bench/search --n 1500000

Single thread; each figure is the mean of repeated calls (warm caches, so a lower bound of what
the same work costs inside a query).
"""

from __future__ import annotations

import _common

_common.limit_threads()

import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from stylesearch.index.store import Index


def per_call(fn, repeat: int = 50) -> float:
    """Mean seconds of one call (after one untimed call)."""
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def faults_child(path: str, populate: bool) -> None:
    """In a fresh process: load the attribute matrix, touch every column, count page faults."""
    from stylesearch.index.memory import mapped

    t0 = time.perf_counter()
    attributes = mapped(Path(path), populate=populate)
    load = time.perf_counter() - t0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    for w in range(attributes.shape[1]):
        attributes[::512, w].view(np.uint16).sum()
    touch = time.perf_counter() - t0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(f"populate={populate}: load {load:.3f} s, touching every column {touch * 1e3:.0f} ms, "
          f"{faults} page faults")  # fmt: skip


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_bench_index(parser, queries=None)
    parser.add_argument("--faults-child", nargs=2, metavar=("PATH", "POPULATE"), help="internal")
    args = parser.parse_args()
    if args.faults_child:
        faults_child(args.faults_child[0], args.faults_child[1] == "1")
        return
    folder = _common.bench_index(args)
    index = Index.load(folder)
    coarse = index.coarse
    assert coarse is not None and coarse.list_cluster is not None
    # the longest list and a second word, as a two-word query reads them
    lengths = np.diff(index.attr_post_offsets)
    word, other = (int(w) for w in np.argsort(-lengths)[:2])
    rows, values, _ = index.attribute_list(word)
    e = min(50_000, rows.shape[0])
    start = int(index.attr_post_offsets[word])
    block = np.asarray(rows[:e])
    cl = coarse.list_cluster[start : start + e]
    ang = coarse.list_angle[start : start + e]
    rng = np.random.default_rng(0)
    q = rng.standard_normal(index.dimension).astype(np.float32)
    q /= np.linalg.norm(q)
    angles = coarse.query_angles(q)
    caps = rng.random(coarse.centroids.shape[0])
    print(f"list block of {e} entries (word {word}), per entry:")
    costs = {
        "value, float16 -> float64": lambda: values[:e].astype(np.float64),
        "per-cluster cap (list-order cluster ids)": lambda: caps[cl],
        "cluster id gathered by row (no list-order copy)": lambda: coarse.assign[block],
        "other word's p gathered by row": lambda: index.attributes[:, other][block],
        "per-row cone bound": lambda: coarse.row_cosine_bounds(angles, block, cl, ang),
    }
    for name, fn in costs.items():
        print(f"  {name:50s} {per_call(fn) / e * 1e9:6.2f} ns")
    few = block[:5000].astype(np.int64)
    exact = per_call(lambda: index.backend.score_rows(q, few), 20) / few.shape[0]
    print(f"  {'exact cosine (faiss compute_distance_subset)':50s} {exact * 1e9:6.1f} ns")
    mapped = np.load(folder / "attributes.npy", mmap_mode="r")
    plain = np.asarray(mapped)
    for name, arr in (("np.memmap", mapped), ("plain view", plain)):
        cost = per_call(lambda a=arr: a[:, word][:10], 2000)
        print(f"slice + column of a {name}: {cost * 1e6:.1f} us")
    # must-word intersection of the two longest metadata postings
    post_lengths = np.diff(index.post_offsets)
    a, b = (index.rows_with_word(int(w)) for w in np.argsort(-post_lengths)[:2])

    def marked() -> np.ndarray:
        mark = np.zeros(index.count, dtype=bool)
        mark[a] = True
        return b[mark[b]]

    assert np.array_equal(marked(), np.intersect1d(a, b, assume_unique=True))
    print(f"intersection of postings of {a.shape[0]} and {b.shape[0]} rows: np.intersect1d "
          f"{per_call(lambda: np.intersect1d(a, b, assume_unique=True), 5) * 1e3:.1f} ms, "
          f"marking {per_call(marked, 5) * 1e3:.1f} ms")  # fmt: skip
    for populate in ("0", "1"):
        subprocess.run(
            [sys.executable, __file__, "--faults-child", str(folder / "attributes.npy"), populate],
            check=True,
        )


if __name__ == "__main__":
    main()
