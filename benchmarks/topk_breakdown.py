"""Where the slowest soft-filter queries spend their time (issue 4), on the index
``search_bench.py`` built: the graph seed, the compiled per-row loops, the exact cosines, the
running top-k, the query-to-centroid angles, and the rest (Python glue).

    .venv/bin/python benchmarks/topk_breakdown.py --n 1500000 --workdir runs/bench/search

Replays the benchmark's ``filter`` and ``combined`` queries one at a time on one thread, twice
(the first pass untimed), wraps each part in a wall-clock timer (a few microseconds of overhead
per call) and prints the ``--top`` slowest queries: total ms, the list entries read and rows
scored exactly, then ms / calls per part (``rows``: the compiled per-row loops; ``rest``: the
Python glue between the parts).
"""

from __future__ import annotations

import _common

_common.limit_threads()

import time
from collections import defaultdict

import faiss
import numpy as np

import stylesearch.search.topk as topk
from search_bench import K, replay_queries
from stylesearch.index.store import Index
from stylesearch.search.topk import coarse as topk_coarse
from stylesearch.search.topk import results as topk_results
from stylesearch.search.topk import soft as topk_soft


def graph_stats(index: Index, queries: list) -> None:
    """Per method: p50 / p99 of the distance computations and hops of the graph seed (the
    ``TopKConfig.graph_depth`` nearest rows, efSearch as deep)."""
    depth = topk.TopKConfig().graph_depth
    stats = faiss.cvar.hnsw_stats
    params = faiss.SearchParametersHNSW(efSearch=depth)
    for which, method in ((0, "filter"), (1, "combined")):
        dis, hops = [], []
        for qv in queries:
            stats.reset()
            index.backend.index.search(qv[which][None, :].astype(np.float32), depth, params=params)
            dis.append(stats.ndis)
            hops.append(stats.nhops)
        d50, d99 = np.percentile(dis, [50, 99])
        h50, h99 = np.percentile(hops, [50, 99])
        print(
            f"{method} graph seed: distances p50 / p99 {d50:.0f} / {d99:.0f}, "
            f"hops {h50:.0f} / {h99:.0f}"
        )


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_bench_index(parser)
    parser.add_argument("--top", type=int, default=10, help="Slowest queries to print.")
    parser.add_argument(
        "--graph-stats", action="store_true",
        help="Also print the graph seed's distance computations and hops (faiss hnsw_stats).",
    )  # fmt: skip
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    queries = replay_queries(args.n, args.queries)
    index = Index.load(_common.bench_index(args))
    if args.graph_stats:
        graph_stats(index, queries)
    spent: dict[str, int] = defaultdict(int)
    calls: dict[str, int] = defaultdict(int)

    def timed(owner: object, name: str, part: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*a, **kw):
            t0 = time.perf_counter_ns()
            try:
                return inner(*a, **kw)
            finally:
                spent[part] += time.perf_counter_ns() - t0
                calls[part] += 1

        setattr(owner, name, wrapper)

    timed(index.backend, "search", "graph")
    timed(index.backend, "score_rows", "cosines")
    # the compiled loops and helpers, where the top-k modules look them up
    timed(topk_coarse, "survivors", "rows")
    timed(topk_coarse, "list_bounds", "list-bounds")
    timed(topk_results, "merge_best", "top-k")
    timed(topk_coarse, "attribute_probs", "p")
    timed(topk_soft, "attribute_probs", "p")
    timed(index.coarse, "query_angles", "angles")
    runs = []
    for timed_pass in (False, True):
        for which, method in ((0, "filter"), (1, "combined")):
            for i, qv in enumerate(queries):
                spent.clear()
                calls.clear()
                t0 = time.perf_counter_ns()
                top = topk.soft_filter_topk(index, qv[which], K, qv[2], qv[3])
                total = time.perf_counter_ns() - t0
                if timed_pass:
                    work = (top.stats.list_read, top.stats.rechecked)
                    runs.append((total, method, i, dict(spent), dict(calls), work))
    runs.sort(key=lambda r: -r[0])
    print("ms total, method, query (list entries read, rows scored): part ms / calls ..., rest")
    for total, method, i, part_ns, part_calls, (read, scored) in runs[: args.top]:
        parts = " ".join(f"{p} {ns / 1e6:.2f}/{part_calls[p]}" for p, ns in sorted(part_ns.items()))
        rest = (total - sum(part_ns.values())) / 1e6
        print(f"{total / 1e6:.2f} {method} {i} ({read}, {scored}): {parts} rest {rest:.2f}")


if __name__ == "__main__":
    main()
