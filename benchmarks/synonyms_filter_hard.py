"""filter-hard with the learned synonym groups on vs off: T-nDCG@k against the truth.

For each benchmark query, ``filter-hard`` keeps the items whose metadata has every wanted word
and no unwanted word, and ranks them by cosine; with synonyms on, each word covers its group
(``synonyms.json``). The gain of an item is the share of the query's requirements its clean
attributes (``truth.jsonl``) meet; nDCG@k divides by the ideal ordering of the whole catalog
(the eval protocol's T-truth). Reported on all queries and on those whose word has synonyms::

    python benchmarks/synonyms_filter_hard.py --index runs/demo/index --model runs/demo/model \\
        --queries runs/demo/queries/test.jsonl --truth runs/demo/catalog/truth.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import _common


def ndcg(gains: np.ndarray, rows: np.ndarray, k: int) -> float:
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = float((np.sort(gains)[::-1][:k] * discounts[: min(k, gains.size)]).sum())
    got = float((gains[rows[:k]] * discounts[: min(k, rows.size)]).sum())
    return got / ideal if ideal > 0 else 0.0


def main() -> None:
    from stylesearch.search import Query, Searcher

    ap = _common.parser(__doc__)
    _common.add_eval_args(ap, visual=False)
    ap.add_argument(
        "--model", default=None, help="the model folder (default: the one the index records)"
    )
    args = ap.parse_args()
    on = Searcher.load(args.index, model_dir=args.model, grounding_threshold=None)
    if on.model.synonyms is None:
        raise SystemExit(f"{args.model}: no synonyms.json (stylesearch vocab --write)")
    truth = {}
    for line in Path(args.truth).read_text().splitlines():
        row = json.loads(line)
        truth[row["id"]] = row
    n = on.index.count
    ids = [on.index.item(r).id for r in range(n)]
    queries = [json.loads(x) for x in Path(args.queries).read_text().splitlines() if x.strip()]
    base = Path(args.queries).parent
    scores: dict[str, dict[bool, list[float]]] = {"all": {True: [], False: []}}
    scores["with synonyms"] = {True: [], False: []}
    for q in queries:
        group = q.get("group")
        values = np.array([truth[i].get(group) for i in ids], dtype=object)
        met = [values == w for w in q["add"]] + [values != w for w in q["remove"]]
        gains = np.mean(met, axis=0).astype(np.float64)
        has = any(len(on.model.synonyms.group(w)) > 1 for w in [*q["add"], *q["remove"]])
        for use in (True, False):
            query = Query(
                image=str(base / q["image"]), add=q["add"], remove=q["remove"],
                method="filter-hard", k=args.k, synonyms=use,
            )  # fmt: skip
            rows = np.array([r.row for r in on.search(query).results], dtype=np.int64)
            value = ndcg(gains, rows, args.k)
            scores["all"][use].append(value)
            if has:
                scores["with synonyms"][use].append(value)
    for name, by in scores.items():
        print(
            f"{name}: {len(by[True])} queries, T-nDCG@{args.k} (truth) synonyms on "
            f"{np.mean(by[True]):.4f}, off {np.mean(by[False]):.4f}"
        )


if __name__ == "__main__":
    main()
