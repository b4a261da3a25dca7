"""Two memory effects on search latency at 1.5M items (issue 4), on the index ``search_bench.py``
built: 2 MB pages for faiss's arrays, and the first queries after an index load.

``pages``: loads ``hnsw.faiss`` with plain faiss (4 KB pages), times the soft filter's graph
seed (600 nearest) and the exact scoring of 3000 random rows per benchmark query, then moves
the vectors and the graph onto huge pages (:func:`stylesearch.index.memory.huge_pages`, what
``FaissHNSWBackend`` does at load) and times them again.

``first``: loads the index with :meth:`Index.load` and times ``filter`` (soft filter) over the
benchmark's queries in four groups of 100: three groups never queried before, then the first
again, to tell slow first queries after a load (cold pages) from machine noise. Run it with
another checkout on ``PYTHONPATH`` to compare code versions.

    .venv/bin/python benchmarks/memory_warmth.py pages --n 1500000
    .venv/bin/python benchmarks/memory_warmth.py first --n 1500000
"""

from __future__ import annotations

import _common

_common.limit_threads()

import time
from pathlib import Path

import faiss
import numpy as np

from search_bench import K, replay_queries
from stylesearch.index.memory import huge_pages
from stylesearch.index.store import Index
from stylesearch.search.topk import soft_filter_topk


def percentiles(times: list[float]) -> str:
    p50, p99 = np.percentile(times, [50, 99])
    return f"CPU p50 {p50:.2f} p99 {p99:.2f} ms"


def pages(folder: Path, queries: list) -> None:
    index = faiss.read_index(str(folder / "hnsw.faiss"))
    storage = faiss.downcast_index(index.storage)
    n, dim = index.ntotal, index.d
    rng = np.random.default_rng(0)

    def run(tag: str) -> None:
        seed, rows = [], []
        for qv in queries:
            q = np.ascontiguousarray(qv[0][None], dtype=np.float32)
            c0 = time.thread_time()
            index.search(q, 600, params=faiss.SearchParametersHNSW(efSearch=600))
            seed.append((time.thread_time() - c0) * 1e3)
            pick = rng.integers(0, n, 3000)
            out = np.empty(pick.shape[0], np.float32)
            c0 = time.thread_time()
            storage.compute_distance_subset(
                1, faiss.swig_ptr(q), pick.shape[0], faiss.swig_ptr(out), faiss.swig_ptr(pick)
            )
            rows.append((time.thread_time() - c0) * 1e3)
        print(f"{tag}: graph seed {percentiles(seed)}; 3000 exact rows {percentiles(rows)}")

    run("4 KB pages")
    run("4 KB pages")
    vectors = faiss.rev_swig_ptr(storage.get_xb(), n * dim)
    ok = huge_pages(np.asarray(vectors).ctypes.data, n * dim * 4)
    huge_pages(int(index.hnsw.neighbors.data()), 4 * int(index.hnsw.neighbors.size()))
    print(f"collapsed onto 2 MB pages: {ok}")
    run("2 MB pages")
    run("2 MB pages")


def first(folder: Path, queries: list) -> None:
    t0 = time.perf_counter()
    index = Index.load(folder)
    print(f"load {time.perf_counter() - t0:.2f} s")
    groups = [("A", queries[:100]), ("B", queries[100:200]), ("C", queries[200:300])]
    for tag, group in [*groups, ("A again", queries[:100])]:
        times = []
        for v, _, add, remove in group:
            c0 = time.thread_time()
            soft_filter_topk(index, v, K, add, remove)
            times.append((time.thread_time() - c0) * 1e3)
        print(f"{tag}: filter {percentiles(times)}")


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("what", choices=["pages", "first"])
    _common.add_bench_index(parser, queries=None)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    folder = _common.bench_index(args)
    queries = replay_queries(args.n, 300 if args.what == "first" else 200)
    (pages if args.what == "pages" else first)(folder, queries)


if __name__ == "__main__":
    main()
