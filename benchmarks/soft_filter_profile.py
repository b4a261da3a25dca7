"""Where does a soft-filter query's time go? Latency of ``filter`` / ``combined`` under chosen
``TopKConfig`` knobs, on the index ``search_bench.py`` built (issue 4).

Loads ``WORKDIR/nN-faiss/index``, regenerates the benchmark's queries (same seeds), and times
``soft_filter_topk`` one query at a time on one thread (CPU time of the thread), optionally
after one untimed pass over all queries (``--warm``), with cProfile (``--profile``), and with
recall@10 against brute force (``--recall``). Prints p50 / p90 / p99 / max, how the queries
finished, and the slowest queries with their list entries read and rows scored.

    .venv/bin/python benchmarks/search_bench.py --sizes 1500000 --reuse --workdir runs/bench/search
    .venv/bin/python benchmarks/soft_filter_profile.py --n 1500000 --warm
    .venv/bin/python benchmarks/soft_filter_profile.py --n 1500000 --config '{"graph_depth": 450}'
    .venv/bin/python benchmarks/soft_filter_profile.py --n 1500000 --warm --clusters 2048

``--clusters C`` first rewrites the index's coarse partition with ``C`` clusters
(``search_bench.add_coarse_partition``: recorded in the manifest with its build time);
``--clusters 0`` puts back the default partition.
"""

from __future__ import annotations

import _common

_common.limit_threads()

import cProfile
import json
import pstats
import time
from collections import Counter

import faiss
import numpy as np

from search_bench import K, add_coarse_partition, replay_queries
from stylesearch.index.store import Index
from stylesearch.search.topk import TopKConfig, soft_filter_topk
from stylesearch.testing.oracle import exact_topk


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_bench_index(parser)
    parser.add_argument("--config", default="{}", help="TopKConfig fields as JSON.")
    parser.add_argument("--cosine-power", type=float, default=1.0)
    parser.add_argument("--warm", action="store_true", help="One untimed pass first.")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed pass.")
    parser.add_argument("--recall", action="store_true", help="Recall@10 vs brute force.")
    parser.add_argument(
        "--clusters", type=int, default=None,
        help="Rewrite the coarse partition with this many clusters first (0: the default).",
    )  # fmt: skip
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    queries = replay_queries(args.n, args.queries)  # search_bench.py's default seeds
    folder = _common.bench_index(args)
    if args.clusters is not None:
        add_coarse_partition(folder, args.clusters)
    index = Index.load(folder)
    config = TopKConfig(**json.loads(args.config))
    slowest = []
    for name, which in (("filter", 0), ("combined", 1)):

        def run(qv, which=which):
            return soft_filter_topk(
                index, qv[which], K, qv[2], qv[3], config=config, cosine_power=args.cosine_power
            )

        for qv in queries if args.warm else queries[:5]:
            run(qv)
        profiler = cProfile.Profile() if args.profile else None
        times, paths, recalls = [], Counter(), []
        for i, qv in enumerate(queries):
            if profiler:
                profiler.enable()
            c0 = time.thread_time()
            top = run(qv)
            times.append((time.thread_time() - c0) * 1e3)
            if profiler:
                profiler.disable()
            paths[top.stats.path] += 1
            st = top.stats
            slowest.append((times[-1], name, i, st.list_read, st.rechecked, qv[2], qv[3]))
            if args.recall:
                truth = exact_topk(
                    index.vectors, index.attributes, qv[which], K, qv[2], qv[3], soft=True,
                    cosine_power=args.cosine_power,
                ).rows  # fmt: skip
                recalls.append(len(set(top.rows.tolist()) & set(truth.tolist())) / len(truth))
        t = np.asarray(times)
        print(
            f"{name}: CPU p50 {np.percentile(t, 50):.2f} p90 {np.percentile(t, 90):.2f} "
            f"p99 {np.percentile(t, 99):.2f} max {t.max():.2f} ms; paths {dict(paths)}"
            + (f"; recall@10 {np.mean(recalls):.4f}" if recalls else "")
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    print("slowest (ms, method, query, list entries read, rows scored, wanted, unwanted):")
    for row in sorted(slowest, reverse=True)[:8]:
        print(f"  {row[0]:.2f}", *row[1:])


if __name__ == "__main__":
    main()
