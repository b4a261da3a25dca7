"""What the scripts under ``benchmarks/`` share: the import path, the thread environment, the
common command-line arguments and a few small helpers.

Every script imports it before the package (import sorting puts it first among the project's
own imports). A script that times one thread imports it before anything else and limits the
threads before numpy, torch or faiss is imported::

    import _common

    _common.limit_threads()

    import numpy as np

Importing it puts this checkout's ``src/`` on the import path (after any ``PYTHONPATH``
entries, so another checkout given there still wins) and on ``PYTHONPATH`` for the servers,
writers and workers the scripts start, and ``benchmarks/`` itself, so that scripts import each
other (``from search_bench import replay_queries``). It imports nothing but the standard
library; the helpers import the package when they are called.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
SRC = ROOT / "src"

#: the thread-count variables of the OpenMP, OpenBLAS and MKL runtimes (faiss, numpy, torch)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: where the scripts on ``search_bench.py``'s synthetic indexes find them by default
DEFAULT_WORKDIR = "runs/bench/search"


def _use_this_checkout() -> None:
    """``src/`` right after the ``PYTHONPATH`` entries (before an installed copy) and at the end
    of ``PYTHONPATH`` (for child processes); ``benchmarks/`` on the path."""
    given = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    absolute = {os.path.abspath(p) for p in given}
    if str(SRC) not in sys.path:
        after = [i + 1 for i, p in enumerate(sys.path) if p and os.path.abspath(p) in absolute]
        sys.path.insert(max(after, default=1), str(SRC))
    if str(SRC) not in absolute:
        os.environ["PYTHONPATH"] = os.pathsep.join([*given, str(SRC)])
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(1, str(BENCHMARKS))


_use_this_checkout()


def limit_threads(n: int = 1) -> None:
    """Let the OpenMP / OpenBLAS / MKL runtimes use ``n`` threads (a variable already set wins).

    Takes effect in this process only when called before numpy, torch or faiss is imported;
    processes started afterwards inherit it either way."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(n))


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose ``--help`` shows the script's docstring: its first paragraph above the
    options, the rest (the commands) below them."""
    head, _, rest = (doc or "").strip().partition("\n\n")
    return argparse.ArgumentParser(
        description=head, epilog=rest or None, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_workdir(p: argparse.ArgumentParser) -> None:
    """``--workdir``: the folder of ``search_bench.py``'s synthetic indexes."""
    p.add_argument(
        "--workdir", default=DEFAULT_WORKDIR,
        help=f"search_bench.py's work folder (default: {DEFAULT_WORKDIR})",
    )  # fmt: skip


def add_bench_index(p: argparse.ArgumentParser, queries: int | None = 200) -> None:
    """``--workdir``, ``--n`` and (unless ``queries`` is None) ``--queries``: which of
    ``search_bench.py``'s indexes to load, and how many of its queries to replay."""
    add_workdir(p)
    p.add_argument("--n", type=int, default=1_500_000, help="catalog size of the index")
    if queries is not None:
        p.add_argument("--queries", type=int, default=queries, help="benchmark queries replayed")


def bench_folder(workdir: str | Path, n: int, backend: str = "faiss") -> Path:
    """``search_bench.py``'s folder for a catalog of ``n`` items on ``backend``; the index is
    its ``index`` subfolder."""
    return Path(workdir) / f"n{n}-{backend}"


def bench_index(args: argparse.Namespace) -> Path:
    """The index folder named by :func:`add_bench_index`'s arguments."""
    return bench_folder(args.workdir, args.n) / "index"


def add_eval_args(
    p: argparse.ArgumentParser, *, visual: bool = True, truth_required: bool = True
) -> None:
    """The evaluation protocol's inputs: ``--index``, ``--queries``, ``--visual`` (the judge's
    model, unless ``visual`` is False), ``--truth`` and ``-k``."""
    p.add_argument("--index", type=Path, required=True, help="the index folder")
    p.add_argument("--queries", type=Path, required=True, help="a query set (.jsonl)")
    if visual:
        p.add_argument("--visual", type=Path, required=True, help="the visual judge's folder")
    p.add_argument(
        "--truth", type=Path, required=truth_required, default=None,
        help="the catalog's clean truth (truth.jsonl)",
    )  # fmt: skip
    p.add_argument("-k", type=int, default=10, help="results per query")


def judged_rows(base: Any, systems: list[Any], queries: list[Any], args: Any) -> list[Any]:
    """The summary rows (``stylesearch.evaluation.protocol.summarize``) of ``systems`` on
    ``queries``, judged as ``stylesearch eval`` judges them with the shape judge: the sweep
    scripts' evaluation (``args`` from :func:`add_eval_args`; ``base`` the index's
    searcher, whose model reads the shape judge's sources). Prints the index's settings first."""
    from stylesearch.evaluation.attributes import load_truth
    from stylesearch.evaluation.judges import load_shape
    from stylesearch.evaluation.protocol import evaluate_systems, summarize

    result = evaluate_systems(
        systems, queries, args.visual, k=args.k, truth=load_truth(args.truth),
        shape=load_shape(base, queries, args.truth), baseline=False, progress=False,
    )  # fmt: skip
    print(f"settings: {base.settings.to_dict()}")
    return summarize(result)


def judgements(searcher: Any, queries: list[Any], args: Any, shape: Any) -> Any:
    """The evaluation's judges (``stylesearch.evaluation.judges.Judgements``) over the rows of
    ``searcher``'s index for ``queries``: the visual judge of ``args.visual``, the words, the
    truth of ``args.truth`` and ``shape`` (``load_shape``'s vectors, or ``None``), at
    ``args.k``. No row is deleted."""
    import numpy as np

    from stylesearch.evaluation.attributes import load_truth
    from stylesearch.evaluation.judges import Judge, embed_for_visual_judge, judge_queries
    from stylesearch.evaluation.protocol import _truth_groups

    index, n = searcher.index, searcher.index.count
    live = np.ones(n, dtype=bool)
    paths = [Path(index.item(row).image) for row in range(n)]
    visual_base, visual_q = embed_for_visual_judge(
        args.visual, paths, queries, progress=True, log=print
    )
    truth = load_truth(args.truth)

    def word_rows(word: str) -> Any:
        return index.rows_with_word(searcher.word_id(word))

    judge = Judge(visual_base, word_rows, _truth_groups(index, truth, live), n)
    return judge_queries(judge, queries, visual_q, shape, truth, live, args.k)


def write_rows(path: Path, table: list[dict[str, Any]]) -> None:
    """The rows of :func:`stylesearch.evaluation.protocol.summarize` as JSON (without the
    per-query-type breakdown)."""
    rows = [{k: v for k, v in r.items() if k != "by_type"} for r in table]
    path.write_text(json.dumps(rows, indent=1))


def ranked(index: Any, query: Any, score: Any, cos: Any, p: Any, *, titles: bool = False) -> Any:
    """A :class:`~stylesearch.search.response.SearchResponse` of the ``query.k`` best rows by
    ``score`` (an array over all rows; ties by row), for the brute-force searchers of the
    sweep scripts."""
    import numpy as np

    from stylesearch.search.response import Result, SearchResponse

    results = []
    for r in np.argsort(-score, kind="stable")[: query.k]:
        item = index.item(int(r))
        results.append(
            Result(item.id, float(score[r]), float(cos[r]), float(p[r]),
                   item.title if titles else "", row=int(r))
        )  # fmt: skip
    return SearchResponse(query.method, {}, 0.0, results)


def rss_mb(pid: int | str | None = "self") -> float:
    """Resident set of a process (this one by default), MB; NaN when unknown (Linux only)."""
    if pid is None:
        return float("nan")
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
