"""Interleaved A/B of the exact soft-filter top-k: a git revision's ``topk.py`` (and its
``kernels.py``, when it has one) against the working tree's, in one process, on the index
``search_bench.py`` built (issue 4).

    .venv/bin/python benchmarks/topk_ab.py --rev d7ebba0 --n 1500000 --workdir runs/bench/search

This VM's timings move by 20-30 % between runs (and more between minutes), so a comparison of
two separate benchmark runs says little; here each query runs with both versions in turn (the
order alternating), after ``--warmup`` untimed queries, and the results must be the same rows.
Prints CPU p50 / p90 / p99 / max (ms, the query thread) per version, method and round. The rest
of the package (scoring, index, backends) is the working tree's for both.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import stylesearch.search.topk as current  # noqa: E402
from search_bench import K, replay_queries  # noqa: E402
from stylesearch.index.store import Index  # noqa: E402

SEARCH = "src/stylesearch/search"


def load_revision(rev: str, folder: Path):
    """Import ``topk.py`` of ``rev`` (with its own ``kernels.py`` if it has one)."""
    root = Path(__file__).resolve().parent.parent

    def show(name: str) -> str | None:
        out = subprocess.run(
            ["git", "show", f"{rev}:{SEARCH}/{name}"], cwd=root, capture_output=True, text=True
        )
        return out.stdout if out.returncode == 0 else None

    tag = "".join(c for c in rev if c.isalnum())
    topk = show("topk.py")
    if topk is None:
        raise SystemExit(f"no {SEARCH}/topk.py at {rev}")
    kernels = show("kernels.py")
    if kernels is not None:
        (folder / f"kernels_{tag}.py").write_text(kernels)
        topk = topk.replace("from stylesearch.search.kernels import", f"from kernels_{tag} import")
    (folder / f"topk_{tag}.py").write_text(topk)
    sys.path.insert(0, str(folder))
    return importlib.import_module(f"topk_{tag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", required=True, help="git revision to compare with")
    parser.add_argument("--workdir", default="runs/bench/search")
    parser.add_argument("--n", type=int, default=1_500_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    queries = replay_queries(args.n, args.queries)
    index = Index.load(Path(args.workdir) / f"n{args.n}-faiss" / "index")
    with tempfile.TemporaryDirectory() as tmp:
        versions = {args.rev: load_revision(args.rev, Path(tmp)), "working tree": current}
        names = list(versions)
        for rnd in range(args.rounds):
            for which, method in ((0, "filter"), (1, "combined")):
                times: dict[str, list[float]] = {name: [] for name in names}
                for qv in queries[: args.warmup]:
                    for module in versions.values():
                        module.soft_filter_topk(index, qv[which], K, qv[2], qv[3])
                for i, qv in enumerate(queries):
                    rows = {}
                    for name in names if (i + rnd) % 2 == 0 else names[::-1]:
                        t0 = time.thread_time()
                        top = versions[name].soft_filter_topk(index, qv[which], K, qv[2], qv[3])
                        times[name].append((time.thread_time() - t0) * 1e3)
                        rows[name] = sorted(top.rows.tolist())
                    if rows[names[0]] != rows[names[1]]:
                        raise SystemExit(f"{method} query {i}: the versions' results differ")
                for name in names:
                    t = np.asarray(times[name])
                    p50, p90, p99 = np.percentile(t, [50, 90, 99])
                    print(
                        f"round {rnd} {method:9s} {name:14s} CPU p50 {p50:.2f} p90 {p90:.2f} "
                        f"p99 {p99:.2f} max {t.max():.2f} ms"
                    )


if __name__ == "__main__":
    main()
