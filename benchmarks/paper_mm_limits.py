"""What the paper's MM allows a method that obeys the words: its limits under three gates.

The paper's MM is ``sqrt(V-nDCG x T-nDCG)``: V by a colour-aware visual judge, T by the items'
*metadata* words. On a catalog whose text leaves out or misstates attributes (the demo's does on
15 % and 5 % of items), the two can pull against what the query asks. For "without stripes",
the items that look most like a striped query are striped; those among them whose text forgot
the word pass a metadata filter and score high on both judges. This script measures how much of
a hard filter's lead comes from that, by ranking the base catalog with the visual judge itself
(the best V any list can have) among the items that pass one of three gates:

- ``metadata gate``: every requirement met by the metadata words (T = 1): the limit of any
  keyword filter, ``filter-hard`` included;
- ``truth gate``: every requirement met by the clean truth (T-nDCG (truth) = 1): the limit of a
  method that obeys the words as the images show them;
- ``both gates``: met by both.

Per query kind (add, remove, replace), each row gives V-nDCG, T-nDCG, MM and T-nDCG (truth),
and V-shape where the truth names each item's source garment (the demo's does).
No system is searched: the numbers are limits, read against the report's rows.
``--look-weights A ...`` adds, for each look weight, the items of both gates ranked by the
index's own cosine (the ``visual`` method's query at that look weight): what the engine's
embedding gives with perfect attributes, to read against the judge's order.

    .venv/bin/python benchmarks/paper_mm_limits.py --index runs/demo/index \\
        --queries runs/demo/queries/test.jsonl --visual runs/demo/visual \\
        --truth runs/demo/catalog/truth.jsonl
"""

from __future__ import annotations

import numpy as np

import _common
from stylesearch.evaluation.judges import (
    load_shape,
)
from stylesearch.evaluation.metrics import oracle_ranking
from stylesearch.evaluation.protocol import summarize
from stylesearch.evaluation.queries import KINDS, load_queries
from stylesearch.search.query import Query
from stylesearch.search.searcher import Searcher

GATES = ("metadata gate", "truth gate", "both gates")


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_eval_args(parser)
    parser.add_argument(
        "--look-weights", type=float, nargs="*", default=[],
        help="also rank both gates' items by the index's cosine at these look weights",
    )  # fmt: skip
    args = parser.parse_args()

    searcher = Searcher.load(args.index, grounding_threshold=None)
    index = searcher.index
    queries = load_queries(args.queries)
    live = np.ones(index.count, dtype=bool)
    judged = _common.judgements(searcher, queries, args, load_shape(searcher, queries, args.truth))
    vectors = np.asarray(index.vectors, dtype=np.float32)
    for qi, q in enumerate(queries):
        visual, meta, by_truth, _ = judged.gains[qi]
        meets = {
            "metadata gate": meta[0] >= 1.0,
            "truth gate": by_truth[0] >= 1.0,
            "both gates": (meta[0] >= 1.0) & (by_truth[0] >= 1.0),
        }
        for gate in GATES:
            top = oracle_ranking(meets[gate] & live, visual[0], args.k)
            judged.record(gate, "visual judge", qi, top, 0.0, [])
        for a in args.look_weights:
            query = Query(image=q.image, method="visual")
            cosine = vectors @ searcher._query_vector(query, [], [], None, None, a)
            top = oracle_ranking(meets["both gates"] & live, cosine, args.k)
            judged.record(f"both gates, index cosine a={a:g}", "index", qi, top, 0.0, [])

    rows = summarize({"per_query": judged.per_query})
    print(f"\n{len(queries)} queries, K = {args.k}; each gate's items in the judge's order")
    print("| gate | kind | V-nDCG | T-nDCG | MM | T-nDCG (truth) | V-shape |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        for kind in ("all", *KINDS):
            r = row if kind == "all" else row["by_type"].get(kind)
            if r is None:
                continue
            print(
                f"| {row['system']} | {kind} | {r['v_ndcg']:.3f} | {r['t_ndcg']:.3f} | "
                f"{r['mm']:.3f} | {r['t_ndcg_truth']:.3f} | {_or_dash(r['v_shape'])} |"
            )


def _or_dash(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    main()
