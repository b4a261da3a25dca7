"""Sweep the query-arithmetic settings of `arithmetic` and `combined` on a query set.

The paper leaves the weights and normalisation of ``q = a f_I + b sum f_T(w+) - c sum f_T(w-)``
open (PAPER.md, "ours, configurable"). This runs the evaluation protocol
(:mod:`stylesearch.evaluation.protocol`) once per setting, on the same judges, and prints
V-nDCG / T-nDCG / MM (and the truth-based MM) per setting. Use the **validation** queries: the
test set is for the one final run.

``--cosine-powers`` adds an experiment that is *not* a product setting: ``filter`` and
``combined`` ranked by ``c~^g * p`` instead of ``c~ * p`` (``c~ = (1 + cos) / 2``), a sharper
cosine against the same attribute probabilities, by brute force over an exact index.

    .venv/bin/python benchmarks/eval_sweep.py --index runs/demo/index \\
        --queries runs/demo/queries/validation.jsonl --visual runs/demo/visual \\
        --truth runs/demo/catalog/truth.jsonl
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import _common
from stylesearch.evaluation.attributes import load_truth
from stylesearch.evaluation.protocol import System, evaluate_systems, summarize
from stylesearch.evaluation.queries import load_queries
from stylesearch.search.query import Query
from stylesearch.search.response import SearchResponse
from stylesearch.search.scoring import ArithmeticConfig, rescale_cosine
from stylesearch.search.searcher import Searcher
from stylesearch.search.topk import attribute_probs, index_removal_scale


class PoweredSoftFilter(Searcher):
    """Brute-force ``filter`` / ``combined`` ranked by ``c~^power * p`` (experiment only)."""

    def __init__(self, base: Searcher, power: float, arithmetic: ArithmeticConfig) -> None:
        super().__init__(base.index, base.model, arithmetic=arithmetic)
        self.power = power

    def search(self, query: Query, *, image_vector: np.ndarray | None = None) -> SearchResponse:
        add, remove = self._ids(query.add), self._ids(query.remove)
        q = self._query_vector(query, add, remove, image_vector)
        rows = np.arange(self.index.count)
        cos = np.asarray(self.index.vectors, dtype=np.float32) @ q
        p = attribute_probs(
            self.index.attributes, rows, add, remove, index_removal_scale(self.index)
        )
        score = rescale_cosine(cos) ** self.power * p
        return _common.ranked(self.index, query, score, cos, p, titles=True)


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_eval_args(parser, truth_required=False)
    parser.add_argument(
        "--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0],
        help="word weights b = c to try",
    )  # fmt: skip
    parser.add_argument(
        "--cosine-powers", type=float, nargs="*", default=[],
        help="experiment: filter / combined ranked by c~^g * p, for each g (exact index)",
    )  # fmt: skip
    parser.add_argument(
        "--power-word-weight", type=float, default=1.0,
        help="word weight of the combined query in the cosine-power experiment",
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
    w = args.power_word_weight
    for g in args.cosine_powers:
        arithmetic = ArithmeticConfig(add_weight=w, remove_weight=w)
        searcher = PoweredSoftFilter(base, g, arithmetic)
        systems.append(System(f"c~^{g:g}, b=c={w:g}", args.index, searcher, ("filter", "combined")))
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
        _common.write_rows(args.json, table)


if __name__ == "__main__":
    main()
