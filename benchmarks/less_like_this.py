"""What "less like this" does to the results: the rejected item and items like it, per weight.

For each of the first ``--n`` demo test queries (query image plus words, method ``combined``,
``k`` results) the top result is rejected, and the query is searched again with ``unlike`` =
that item, for each weight ``beta`` of :mod:`stylesearch.search.feedback` (``q' = n(q - beta
v_rejected)``; ``beta = 0``: the rejected item is only left out). Prints a Markdown table: how
often the rejected item is still in the top k, the share of the other results that share its
category and colour (by the catalog's clean truth), the share that share its category, and the
share that still satisfy the query's own words (wanted values present, unwanted absent):

    PYTHONPATH=src .venv/bin/python benchmarks/less_like_this.py --index runs/demo/index \\
        --queries runs/demo/queries/test.jsonl --truth runs/demo/catalog/truth.jsonl

The "before" row is the first search's top k without the rejected item (its other k - 1
results): the share of items like it that the user saw next to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import _common

_common.limit_threads()

from stylesearch.evaluation.attributes import load_truth  # noqa: E402
from stylesearch.search import Query, Searcher  # noqa: E402


def satisfies(truth: dict[str, str], query: dict, groups: dict[str, str]) -> bool:
    """The item's truth has every wanted value and no unwanted one (words of known groups)."""
    values = set(truth.values())
    wanted = all(w in values for w in query["add"] if w in groups)
    return wanted and not any(w in values for w in query["remove"] if w in groups)


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True, help="the demo's test.jsonl")
    parser.add_argument("--truth", type=Path, required=True, help="the catalog's truth.jsonl")
    parser.add_argument("--n", type=int, default=100, help="queries used (the first n)")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    args = parser.parse_args()

    truth = load_truth(args.truth)
    groups = {v: g for t in truth.values() for g, v in t.items() if g != "split"}
    lines = args.queries.read_text().splitlines()
    queries = [json.loads(line) for line in lines if line.strip()][: args.n]
    searcher = Searcher.load(args.index)
    keys = ("still_there", "same_cat_colour", "same_category", "keeps_query")
    rows: dict[str, dict[str, float]] = {}

    def tally(name: str, ids: list[str], rejected: str, query: dict) -> None:
        rej = truth[rejected]
        others = [truth[i] for i in ids if i != rejected]
        row = rows.setdefault(name, dict.fromkeys(keys, 0.0) | {"n": 0.0, "results": 0.0})
        row["still_there"] += rejected in ids
        row["same_cat_colour"] += sum(
            t["category"] == rej["category"] and t["colour"] == rej["colour"] for t in others
        )
        row["same_category"] += sum(t["category"] == rej["category"] for t in others)
        row["keeps_query"] += sum(satisfies(t, query, groups) for t in others)
        row["n"] += 1
        row["results"] += len(others)

    for q in queries:
        image = (args.queries.parent / q["image"]).resolve()
        vector = searcher.encode_image(image)
        base = dict(image=str(image), add=q["add"], remove=q["remove"], method="combined")
        first = searcher.search(Query(**base, k=args.k), image_vector=vector)
        ids = [r.id for r in first.results]
        rejected = ids[0]
        tally("before (the first search)", ids, rejected, q)
        for beta in args.weights:
            again = searcher.search(
                Query(**base, k=args.k, unlike=[rejected], unlike_weight=beta),
                image_vector=vector,
            )
            tally(f"unlike, beta = {beta:g}", [r.id for r in again.results], rejected, q)

    print(f"{len(queries)} queries, method combined, k = {args.k}, the top result rejected\n")
    print(
        "| search | rejected item in the top k | same category and colour | same category "
        "| results satisfying the query's words |"
    )
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        n, res = r["n"], max(r["results"], 1)
        print(
            f"| {name} | {r['still_there'] / n:.0%} | {r['same_cat_colour'] / res:.1%} | "
            f"{r['same_category'] / res:.1%} | {r['keeps_query'] / res:.1%} |"
        )


if __name__ == "__main__":
    main()
