"""Would an 8-bit HNSW graph make the soft filter's graph seed cheaper? (issue 4)

The exact soft-filter top-k on a large faiss index starts with a graph search of depth
``TopKConfig.graph_depth`` (docs/search.md, "Graph seed"), a large part of a `filter` /
`combined` query (docs/performance.md). This script builds a second HNSW graph over the same
vectors with 8-bit scalar-quantised storage (faiss ``IndexHNSWSQ``, same M and efConstruction)
and times, one thread, the seed search (k = 600, efSearch 600) and a plain top-10 (efSearch 128)
on both graphs, for the benchmark's image queries and arithmetic queries, twice in alternation.

Needs the 1.5M index of ``search_bench.py`` (its ``--workdir``); the SQ8 graph is written beside
it and reused on the next run (it is built with 2 threads).

    .venv/bin/python benchmarks/seed_storage.py --workdir runs/bench/search
"""

from __future__ import annotations

import _common

_common.limit_threads()

import time

import faiss
import numpy as np

from search_bench import DIM, replay_queries


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_bench_index(parser, queries=100)
    args = parser.parse_args()
    folder = _common.bench_folder(args.workdir, args.n)
    flat = faiss.read_index(str(folder / "index" / "hnsw.faiss"))
    sq_path = folder / "hnsw_sq8.faiss"
    if not sq_path.exists():
        vectors = np.load(folder / "index" / "vectors.npy", mmap_mode="r")
        faiss.omp_set_num_threads(2)
        t0 = time.perf_counter()
        sq = faiss.IndexHNSWSQ(DIM, faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(len(vectors), min(100_000, len(vectors)), replace=False))
        sq.train(np.ascontiguousarray(vectors[sample]))
        sq.hnsw.efConstruction = 100
        for start in range(0, len(vectors), 100_000):
            sq.add(np.ascontiguousarray(vectors[start : start + 100_000]))
        print(f"SQ8 graph built in {time.perf_counter() - t0:.0f} s (2 threads)")
        faiss.write_index(sq, str(sq_path))
    sq = faiss.read_index(str(sq_path))
    faiss.omp_set_num_threads(1)
    queries = replay_queries(args.n, args.queries)  # search_bench.py's default seeds
    print("| graph | queries | k (efSearch) | CPU p50 ms | CPU p99 ms |\n|---|---|---|---|---|")
    for name, index in (("flat", flat), ("sq8", sq), ("flat", flat), ("sq8", sq)):
        for which, what in ((0, "image"), (1, "arithmetic")):
            for k, ef in ((600, 600), (10, 128)):
                params = faiss.SearchParametersHNSW(efSearch=ef)
                times = []
                for qv in queries:
                    c0 = time.thread_time()
                    index.search(qv[which][None], k, params=params)
                    times.append((time.thread_time() - c0) * 1e3)
                p50, p99 = np.percentile(times, 50), np.percentile(times, 99)
                print(f"| {name} | {what} | {k} ({ef}) | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
