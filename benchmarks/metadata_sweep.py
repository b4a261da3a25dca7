"""How an item's own text should enter ``p``: ``combined`` under several text fusions.

The index stores ``p_w`` fused with the item's metadata words by the rule and weight it was
built with (``stylesearch index --metadata-fusion --metadata-weight``,
``stylesearch.index.fusion``). This script takes the text back out (``TextFusion.head``) and
scores ``combined`` by brute force as if the index had been built with each fusion of
``--fusions`` (``RULE:WEIGHT``: ``log-odds:3``, ``blend:0.5``; ``log-odds:0`` is the attribute
head alone), with the index's tuned settings, or the look weights of ``--look-weights``; and
judges each on a query set (V-nDCG, MM, T-nDCG (truth) overall and per query kind, V-shape,
MM-shape, the tuning objective). Unwanted words take each fusion's own removal scale. Use the
**validation** queries:

    .venv/bin/python benchmarks/metadata_sweep.py --index runs/demo/index \\
        --queries runs/demo/queries/validation.jsonl --visual runs/demo/visual \\
        --truth runs/demo/catalog/truth.jsonl
"""

from __future__ import annotations

import argparse

import numpy as np

import _common
from stylesearch.config import ConfigError
from stylesearch.evaluation.protocol import System
from stylesearch.evaluation.queries import load_queries
from stylesearch.evaluation.tuning import objective
from stylesearch.index.fusion import TextFusion
from stylesearch.search.query import Query
from stylesearch.search.response import SearchResponse
from stylesearch.search.scoring import rescale_cosine
from stylesearch.search.searcher import Searcher
from stylesearch.search.topk import attribute_probs


class Fused(Searcher):
    """``combined`` by brute force over the head's ``p`` fused with the metadata by ``fusion``."""

    def __init__(self, base: Searcher, head: np.ndarray, fusion: TextFusion, look_weight: float):
        settings = base.settings.overridden(look_weight=look_weight)
        super().__init__(base.index, base.model, settings=settings)
        index = base.index
        self.attributes = np.array(head, dtype=np.float16, order="F")
        fusion.fuse(self.attributes, np.asarray(index.meta_offsets), np.asarray(index.meta_words))
        self.scale = fusion.removal_scale

    def search(self, query: Query, *, image_vector: np.ndarray | None = None) -> SearchResponse:
        add, remove = self._ids(query.add), self._ids(query.remove)
        arithmetic = self.arithmetic_for("combined")
        q = self._query_vector(
            query, add, remove, image_vector, arithmetic, self.settings.look_weight
        )
        cos = np.asarray(self.index.vectors) @ q
        rows = np.arange(self.index.count)
        p = attribute_probs(self.attributes, rows, add, remove, self.scale)
        score = rescale_cosine(cos, self.settings.cosine_power) * p
        return _common.ranked(self.index, query, score, cos, p)


def parse_fusion(text: str) -> TextFusion:
    """``RULE:WEIGHT`` (or ``RULE``, at its default weight) -> a fusion."""
    rule, _, weight = text.partition(":")
    try:
        return TextFusion.of(rule, float(weight) if weight else None)
    except (ConfigError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_eval_args(parser)
    parser.add_argument(
        "--fusions", type=parse_fusion, nargs="+",
        default=[parse_fusion(f) for f in ("log-odds:0", "blend:0.5", "log-odds:2", "log-odds:3",
                                           "log-odds:4")],
        help="RULE:WEIGHT, e.g. log-odds:3 or blend:0.5",
    )  # fmt: skip
    parser.add_argument(
        "--look-weights", type=float, nargs="+", help="look weights (default: the index's)"
    )
    args = parser.parse_args()

    base = Searcher.load(args.index)
    index = base.index
    head = TextFusion.from_manifest(index.manifest).head(
        index.attributes, index.meta_offsets, index.meta_words
    )
    queries = load_queries(args.queries)
    looks = args.look_weights or [base.settings.look_weight]
    systems = [
        System(f"{f.describe()}, a={a:g}", args.index, Fused(base, head, f, a), ("combined",))
        for a in looks
        for f in args.fusions
    ]
    table = _common.judged_rows(base, systems, queries, args)
    kinds = "| T (truth) add / remove / replace | objective |"
    print("| fusion | V-nDCG | MM | T-nDCG | T-nDCG (truth) | V-shape | MM-shape " + kinds)
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        if r["system"] == "oracle":
            continue
        print(
            f"| {r['system']} | {r['v_ndcg']:.3f} | {r['mm']:.3f} | {r['t_ndcg']:.3f} | "
            f"{r['t_ndcg_truth']:.3f} | {r['v_shape']:.3f} | {r['mm_shape']:.3f} | "
            + " / ".join(f"{v['t_ndcg_truth']:.3f}" for v in r["by_type"].values())
            + f" | {objective(r):.3f} |"
        )


if __name__ == "__main__":
    main()
