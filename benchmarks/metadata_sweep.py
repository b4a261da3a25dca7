"""How much an item's own text should count in ``p``: ``combined`` under several metadata weights.

The index stores ``p_w`` blended with the item's metadata words at the weight it was built with
(``stylesearch index --metadata-weight``, docs/search.md). This script scores ``combined`` by
brute force as if the index had been built with each weight ``b`` of ``--weights``:
``p_w <- (1 - b) p_w + b [w in the item's metadata]`` on top of an index built with weight 0,
with the index's tuned settings, and judges each on a query set (V-nDCG, MM, T-nDCG (truth),
V-shape, MM-shape). An unwanted word's factor is the engine's ``max(0, 1 - p_w / (1 - b))``
(``--removal scaled``, docs/search.md), or with ``--removal blend`` the plain ``1 - p_w`` of
the blended ``p``. Use an index built with ``--metadata-weight 0`` and the **validation**
queries:

    .venv/bin/python benchmarks/metadata_sweep.py --index runs/exp/demo-sil-index \\
        --queries runs/demo/queries/validation.jsonl --visual runs/demo/visual \\
        --truth runs/demo/catalog/truth.jsonl
"""

from __future__ import annotations

import numpy as np

import _common
from stylesearch.evaluation.protocol import System
from stylesearch.evaluation.queries import load_queries
from stylesearch.index.build import fuse_metadata
from stylesearch.search.query import Query
from stylesearch.search.response import SearchResponse
from stylesearch.search.scoring import removal_scale, rescale_cosine
from stylesearch.search.searcher import Searcher
from stylesearch.search.topk import attribute_probs


class Blended(Searcher):
    """``combined`` by brute force over ``p`` blended with the metadata at ``weight``."""

    def __init__(self, base: Searcher, weight: float, removal: str = "scaled") -> None:
        super().__init__(base.index, base.model, settings=base.settings)
        index = base.index
        self.attributes = np.array(index.attributes, dtype=np.float16, order="F")
        fuse_metadata(
            self.attributes, np.asarray(index.meta_offsets), np.asarray(index.meta_words), weight
        )
        self.scale = removal_scale(weight) if removal == "scaled" else 1.0

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


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_eval_args(parser)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75])
    parser.add_argument(
        "--removal",
        choices=("scaled", "blend"),
        nargs="+",
        default=["scaled"],
        help="unwanted words' factor: max(0, 1 - p / (1 - b)) (the engine's), or 1 - p",
    )
    args = parser.parse_args()

    base = Searcher.load(args.index)
    built = base.index.manifest.get("metadata_weight", 0.0)
    if built != 0.0:
        raise SystemExit(
            f"{args.index} is built with metadata weight {built}; index with --metadata-weight 0"
        )
    queries = load_queries(args.queries)
    systems = [
        System(f"b={w:g}" + ("" if r == "scaled" else f" {r}"), args.index,
               Blended(base, w, r), ("combined",))
        for r in args.removal
        for w in args.weights
    ]  # fmt: skip
    table = _common.judged_rows(base, systems, queries, args)
    kinds = "| T (truth) add / remove / replace | MM add / remove / replace |"
    print("| metadata weight | V-nDCG | MM | T-nDCG (truth) | V-shape | MM-shape " + kinds)
    print("|---|---|---|---|---|---|---|---|")
    for r in table:
        if r["system"] == "oracle":
            continue
        print(
            f"| {r['system']} | {r['v_ndcg']:.3f} | {r['mm']:.3f} | {r['t_ndcg_truth']:.3f} | "
            f"{r['v_shape']:.3f} | {r['mm_shape']:.3f} | "
            + " / ".join(f"{v['t_ndcg_truth']:.3f}" for v in r["by_type"].values())
            + " | "
            + " / ".join(f"{v['mm']:.3f}" for v in r["by_type"].values())
            + " |"
        )


if __name__ == "__main__":
    main()
