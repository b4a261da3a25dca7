"""Interleaved A/B of the exact soft-filter top-k: a git revision's ``topk.py`` or ``topk/``
package (and its ``kernels.py``, when it has one) against the working tree's, in one process, on
the index ``search_bench.py`` built (issue 4).

    .venv/bin/python benchmarks/topk_ab.py --rev d7ebba0 --n 1500000 --workdir runs/bench/search

Timings on a shared or virtual machine move between runs (docs/performance.md says how much on
the development machine), so a comparison of two separate benchmark runs says little; here each
query runs with both versions in turn (the order alternating), after ``--warmup`` untimed
queries, and the results must be the same rows.
Prints CPU p50 / p90 / p99 / max (ms, the query thread) per version, method and round. The rest
of the package (scoring, index, backends) is the working tree's for both.
"""

from __future__ import annotations

import _common

_common.limit_threads()

import importlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

import stylesearch.search.topk as current
from search_bench import K, replay_queries
from stylesearch.index.store import Index

SEARCH = "src/stylesearch/search"


def load_revision(rev: str, folder: Path):
    """Import the top-k of ``rev``: its ``topk.py``, or its ``topk/`` package, with its own
    ``kernels.py`` and ``index/filters.py`` if it has them."""

    def git(*cmd: str) -> str | None:
        out = subprocess.run(["git", *cmd], cwd=_common.ROOT, capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else None

    def show(name: str) -> str | None:
        return git("show", f"{rev}:{SEARCH}/{name}")

    tag = "".join(c for c in rev if c.isalnum())
    kernels = show("kernels.py")
    if kernels is not None:
        (folder / f"kernels_{tag}.py").write_text(kernels)
    # the hard-filter value the revision's top-k imports (its type changed since)
    filters = git("show", f"{rev}:src/stylesearch/index/filters.py")
    if filters is not None:
        (folder / f"filters_{tag}.py").write_text(filters)

    def own(text: str) -> str:
        """The revision's source, importing the revision's top-k modules, kernels and filter
        value."""
        if kernels is not None:
            text = text.replace(
                "from stylesearch.search.kernels import", f"from kernels_{tag} import"
            )
        if filters is not None:
            text = text.replace(
                "from stylesearch.index.filters import", f"from filters_{tag} import"
            )
        return text.replace("stylesearch.search.topk", f"topk_{tag}")

    topk = show("topk.py")
    if topk is not None:
        (folder / f"topk_{tag}.py").write_text(own(topk))
    else:
        listing = git("ls-tree", "--name-only", rev, f"{SEARCH}/topk/") or ""
        names = [Path(line).name for line in listing.splitlines() if line.endswith(".py")]
        if not names:
            raise SystemExit(f"no {SEARCH}/topk.py or topk/ at {rev}")
        package = folder / f"topk_{tag}"
        package.mkdir()
        for name in names:
            (package / name).write_text(own(show(f"topk/{name}") or ""))
    sys.path.insert(0, str(folder))
    return importlib.import_module(f"topk_{tag}")


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--rev", required=True, help="git revision to compare with")
    _common.add_bench_index(parser)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    queries = replay_queries(args.n, args.queries)
    index = Index.load(_common.bench_index(args))
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
