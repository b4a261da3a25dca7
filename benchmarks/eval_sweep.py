"""Sweep the query-arithmetic settings of `arithmetic` and `combined` on a query set.

The paper leaves the weights and normalisation of ``q = a f_I + b sum f_T(w+) - c sum f_T(w-)``
open (PAPER.md, "ours, configurable"). This runs the evaluation protocol
(:mod:`stylesearch.evaluation.protocol`) once per setting, on the same judges, and prints
V-nDCG / T-nDCG / MM (and the truth-based MM) per setting. Use the **validation** queries: the
test set is for the one final run.

    .venv/bin/python benchmarks/eval_sweep.py --index runs/demo/index \\
        --queries runs/demo/queries/validation.jsonl --visual runs/demo/visual \\
        --truth runs/demo/catalog/truth.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stylesearch.evaluation.attributes import load_truth
from stylesearch.evaluation.protocol import System, evaluate_systems, summarize
from stylesearch.evaluation.queries import load_queries
from stylesearch.search.scoring import ArithmeticConfig
from stylesearch.search.searcher import Searcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--visual", type=Path, required=True)
    parser.add_argument("--truth", type=Path, default=None)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument(
        "--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0],
        help="word weights b = c to try",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()

    base = Searcher.load(args.index)
    systems = []
    for normalize in (True, False):
        for w in args.weights:
            config = ArithmeticConfig(add_weight=w, remove_weight=w, normalize_words=normalize)
            name = f"b=c={w:g}{'' if normalize else ' raw'}"
            searcher = Searcher(base.index, base.model, arithmetic=config)
            systems.append(System(name, args.index, searcher, ("arithmetic", "combined")))
    result = evaluate_systems(
        systems,
        load_queries(args.queries),
        args.visual,
        k=args.k,
        truth=load_truth(args.truth) if args.truth else None,
        baseline=False,
        progress=False,
    )
    table = summarize(result)
    print("| words | method | V-nDCG | T-nDCG | MM | MM (truth) |")
    print("|---|---|---|---|---|---|")
    for r in table:
        truth = "-" if r["mm_truth"] is None else f"{r['mm_truth']:.3f}"
        print(
            f"| {r['system']} | {r['method']} | {r['v_ndcg']:.3f} | {r['t_ndcg']:.3f} | "
            f"{r['mm']:.3f} | {truth} |"
        )
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "by_type"}
                                         for r in table], indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
