"""``combined`` with the joint and look cosines multiplied instead of added, on a query set.

The index ranks by ``c~^g * p``, where ``c`` is one cosine against the item's ``n([n(f_I);
look])``: a *sum* of the joint and look cosines at the look weight. Each candidate here ranks
the whole base catalog (brute force) by a *product* instead::

    c~_joint^gj * c~_look^gl * p^gp

(``c~ = (1 + c) / 2``; the joint part composed from the image and the words at the word weight
``w``, as the index composes it). A product rewards items that are close on both parts; the
powers set each part's pull, and ``gp`` above 1 keeps the words against a sharp look. ``gj 0``
ranks by the look and ``p`` alone. Each candidate is given as ``gj,gl,w,gp``; the index's own
``combined`` and ``filter`` are the first rows. Use the **validation** queries.

    .venv/bin/python benchmarks/blend_sweep.py --index runs/demo/index \\
        --queries runs/demo/queries/validation.jsonl --visual runs/demo/visual \\
        --truth runs/demo/catalog/truth.jsonl --candidates 4,4,0.25,1 1,8,0.25,2 0,16,0.25,3
"""

from __future__ import annotations

import numpy as np

import _common
from shape_caps import unit_rows
from stylesearch.evaluation.protocol import System
from stylesearch.evaluation.queries import load_queries
from stylesearch.search.query import Query
from stylesearch.search.response import SearchResponse
from stylesearch.search.scoring import ArithmeticConfig, rescale_cosine
from stylesearch.search.searcher import Searcher
from stylesearch.search.topk import attribute_probs, index_removal_scale


class ProductBlend(Searcher):
    """Ranks by ``c~_joint^gj * c~_look^gl * p^gp`` over the whole index; ``parts`` are the
    index's unit joint and look parts (:func:`split_parts`, shared by every candidate)."""

    def __init__(
        self, base: Searcher, parts: tuple[np.ndarray, np.ndarray],
        gj: float, gl: float, w: float, gp: float,
    ) -> None:  # fmt: skip
        super().__init__(base.index, base.model, settings=base.settings)
        self.powers, self.word_weight = (gj, gl, gp), w
        self.dim = base.model.config.embed_dim
        self.joint, self.look = parts

    def search(self, query: Query, *, image_vector: np.ndarray | None = None) -> SearchResponse:
        add, remove = self._ids(query.add), self._ids(query.remove)
        words = ArithmeticConfig.with_word_weight(self.word_weight)
        # look weight 0: the unit joint part alone; 1 (of the image, no words): the unit look
        joint = self._query_vector(query, add, remove, image_vector, words, 0.0)[: self.dim]
        image = Query(image=query.image, item_id=query.item_id, method="visual")
        look = self._query_vector(image, [], [], image_vector, None, 1.0)[self.dim :]
        cos_joint, cos_look = self.joint @ joint, self.look @ look
        p = attribute_probs(
            self.index.attributes, np.arange(self.index.count), add, remove,
            index_removal_scale(self.index),
        )  # fmt: skip
        gj, gl, gp = self.powers
        score = rescale_cosine(cos_joint, gj) * rescale_cosine(cos_look, gl) * p**gp
        return _common.ranked(self.index, query, score, cos_joint, p)


def split_parts(base: Searcher) -> tuple[np.ndarray, np.ndarray]:
    """The index's vectors ``n([n(f_I); look])`` split into unit joint and unit look parts."""
    if base.model.look is None:
        raise SystemExit("the index's model has no look: nothing to blend")
    dim = base.model.config.embed_dim
    vectors = np.asarray(base.index.vectors)
    return unit_rows(vectors[:, :dim]), unit_rows(vectors[:, dim:])


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_eval_args(parser)
    parser.add_argument(
        "--candidates", nargs="+", default=["4,4,0.25,1", "1,8,0.25,2", "0,16,0.25,3"],
        help="each gj,gl,w,gp (default: %(default)s)",
    )  # fmt: skip
    args = parser.parse_args()
    base = Searcher.load(args.index)
    queries = load_queries(args.queries)
    systems = [System("index settings", args.index, base, ("combined", "filter"))]
    parts = split_parts(base)
    for spec in args.candidates:
        gj, gl, w, gp = (float(v) for v in spec.split(","))
        name = f"product gj {gj:g}, gl {gl:g}, w {w:g}, gp {gp:g}"
        blend = ProductBlend(base, parts, gj, gl, w, gp)
        systems.append(System(name, args.index, blend, ("combined",)))
    table = _common.judged_rows(base, systems, queries, args)
    columns = "V-nDCG | MM | T (truth): all (add / remove / replace) | V-shape | MM-shape"
    print(f"| system | method | {columns} |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        kinds = r.get("by_type", {})
        per_kind = " / ".join(
            f"{kinds[k]['t_ndcg_truth']:.3f}" for k in ("add", "remove", "replace") if k in kinds
        )
        print(
            f"| {r['system']} | {r['method']} | {r['v_ndcg']:.3f} | {r['mm']:.3f} | "
            f"{r['t_ndcg_truth']:.3f} ({per_kind}) | {r['v_shape']:.3f} | {r['mm_shape']:.3f} |"
        )


if __name__ == "__main__":
    main()
