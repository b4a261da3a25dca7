"""Which part of ``combined``'s score holds each judge back: the look, or the image embedding.

At word weight 0, ``combined`` ranks by ``p x c~^g``, where ``c`` is the cosine of an index row
``n([n(f_I); n(look)])`` with the query at look weight ``a`` (``with_look`` in
``stylesearch.search.scoring``): ``((1 - a) cos(f_I) + a cos(look)) / sqrt(2 ((1 - a)^2 +
a^2))``. This script ranks the base catalog by that score with one part of ``c`` swapped for
another descriptor's cosine, keeping the index's own ``p`` and the power ``g``:

- ``as indexed``: both parts as the index has them (``combined`` itself at word weight 0);
- ``look: the source garment``: the look's cosine replaced by that of the source garments'
  shading, stretched as the look stretches its own (the renderer's inputs, which no system
  sees: the ceiling of a hand-made look);
- ``look: halfway to the source``: the mean of the two cosines (the look's error halved);
- ``look: the source for the worst-read X``: the look's grids (unprojected, centred on the
  base catalog's mean) with the grids of the share X of items whose grid agrees least with
  their source's (Pearson correlation) replaced by the source's (``--worst-looks``), beside
  ``look: its grids, unprojected``: whether the look's loss lies in a few badly read items or
  spreads over all of them;
- ``look: its grids, each item's level its source's``: each grid's garment cells (those above
  0) shifted by one number, so that their mean is the source's over the same cells; and
  ``look: the source's shading in its mask``: the source's grid on the look's garment cells
  (at least ``FLOOR_LEVEL``), 0 elsewhere. Beside the source garment's row, they tell whether
  the look misses by its mask, its overall level or the shading's pattern inside;
- ``look: the worst-read X by level, given their source's level`` (``--worst-levels``): that
  shift for the share X of items whose level (:func:`level_error`) misses most, and ``look:
  the rest, given their source's level`` for the others: whether the ranking follows the
  level's typical error or its tail;
- ``look: sources at least X see-through, given their source's level`` (``--see-through``):
  that shift for the items whose source garment lets the background through on at least the
  share X of its silhouette (:func:`see_through_share`);
- ``f_I: another visual model`` (``--other-visual DIR``): the image embedding's cosine replaced
  by a visual model's, e.g. one that ``stylesearch train-visual --seed 7`` trained the way the
  paper's judge is trained, from another seed. Given several folders, their cosines are
  averaged (``f_I: N visual models``), and ``--visual-mix M`` adds rows whose image part is
  ``(1 - M) cos(f_I) + M`` times that mean (``f_I mixed M with ...``).

Each row gives the paper's V-nDCG and MM, T-nDCG (truth) overall and on the worst query kind,
V-shape, MM-shape and the tuning objective, for each look weight of ``--look-weights``. It
needs an index whose model has a look and the demo catalog's truth (the source garments).

    .venv/bin/python benchmarks/score_parts.py --index runs/demo/index \\
        --queries runs/demo/queries/validation.jsonl --visual runs/demo/visual \\
        --truth runs/demo/catalog/truth.jsonl --other-visual runs/exp/visual-seed7
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import _common
from shape_caps import centred_pair, source_descriptors, unit_rows
from stylesearch.evaluation.judges import (
    embed_for_visual_judge,
    load_shape,
)
from stylesearch.evaluation.protocol import summarize
from stylesearch.evaluation.queries import load_queries
from stylesearch.evaluation.tuning import objective
from stylesearch.model.inference import embed_image_paths
from stylesearch.model.look import GRID
from stylesearch.model.silhouette import FLOOR_LEVEL
from stylesearch.search.scoring import soft_filter_score
from stylesearch.search.searcher import Searcher
from stylesearch.search.topk import attribute_probs, index_removal_scale


def mixed_cosine(image: np.ndarray, look: np.ndarray, a: float) -> np.ndarray:
    """The cosine of a row and a query that both have a look, from the parts' cosines."""
    return ((1.0 - a) * image + a * look) / np.sqrt(2.0 * ((1.0 - a) ** 2 + a**2))


def level_error(look: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``(N,)``: how far each row of ``look`` (grids ``(N, GRID * GRID)``) is above ``source``
    on average over its garment cells (those above 0): the error of its level."""
    garment = look > 0
    return ((look - source) * garment).sum(1) / garment.sum(1).clip(min=1)


def with_source_level(look: np.ndarray, source: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``look`` with the garment cells of the ``rows`` (a bool mask) shifted by one number each,
    so that their mean is ``source``'s over the same cells."""
    shift = np.where(rows, level_error(look, source), 0.0)
    return np.where(look > 0, look - shift[:, None], 0.0)


def see_through_share(alpha: np.ndarray) -> np.ndarray:
    """``(N,)``: the share of each silhouette's pixels (``alpha`` ``(N, P)``, the renderer's
    coverage, above 0.05) that let the background through (coverage below 0.9)."""
    garment = alpha > 0.05
    return (garment & (alpha < 0.9)).sum(1) / garment.sum(1).clip(min=1)


def level_and_mask(look: np.ndarray, source: np.ndarray) -> dict[str, np.ndarray]:
    """Grids ``(N, GRID * GRID)``: ``look``'s with each row's level its source's
    (:func:`with_source_level`), and ``source``'s on ``look``'s garment cells (at least
    ``FLOOR_LEVEL``), 0 elsewhere."""
    every, garment = np.ones(len(look), dtype=bool), look > 0
    return {
        "its grids, each item's level its source's": with_source_level(look, source, every),
        "the source's shading in its mask": np.where(garment, np.maximum(source, FLOOR_LEVEL), 0.0),
    }


def worst_read(
    s: Searcher,
    ids: list[str],
    queries: list,
    sources: dict[str, Callable[[list[str]], np.ndarray]],
    shares: list[float],
    level_shares: list[float],
    see_through: list[float],
) -> dict[str, np.ndarray]:
    """The ``look: ...`` cosines of the look's own grids: as they are, with the worst-read
    ``shares`` of items swapped for their source's, :func:`level_and_mask`'s, and given their
    source's level for the ``level_shares`` read worst by level (and for the rest) and for the
    sources at least ``see_through`` see-through. ``sources``: :func:`source_descriptors`."""
    size = s.model.config.image_size
    paths = [Path(s.index.item(r).image) for r in range(len(ids))]
    grid = s.model.look.grid
    look_b = embed_image_paths(grid, paths, image_size=size, batch_size=256).astype(np.float64)
    look_q = embed_image_paths(
        grid, [Path(q.image) for q in queries], image_size=size, batch_size=256
    ).astype(np.float64)

    def source_grids(item_ids: list[str]) -> np.ndarray:
        stretched = sources["source silhouette x stretched shading"]
        x = torch.from_numpy(stretched(item_ids).reshape(len(item_ids), 1, size, size))
        return F.interpolate(x, size=(GRID, GRID), mode="area").flatten(1).numpy()

    src_b, src_q = source_grids(ids), source_grids([q.item_id for q in queries])

    def agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        return (unit_rows(a) * unit_rows(b)).sum(1)

    def cosine(base: np.ndarray, qs: np.ndarray) -> np.ndarray:
        base, qs = centred_pair(base, qs)
        return unit_rows(qs) @ unit_rows(base).T

    agree_b, agree_q = agreement(look_b, src_b), agreement(look_q, src_q)
    parts = {"look: its grids, unprojected": cosine(look_b, look_q)}
    for share in shares:
        worst_b = agree_b <= np.quantile(agree_b, share)
        worst_q = agree_q <= np.quantile(agree_q, share)
        base = np.where(worst_b[:, None], src_b, look_b)
        qs = np.where(worst_q[:, None], src_q, look_q)
        parts[f"look: the source for the worst-read {share:.0%}"] = cosine(base, qs)
    fixed_b, fixed_q = level_and_mask(look_b, src_b), level_and_mask(look_q, src_q)
    parts.update({f"look: {name}": cosine(b, fixed_q[name]) for name, b in fixed_b.items()})

    def given_level(rows_b: np.ndarray, rows_q: np.ndarray) -> np.ndarray:
        base = with_source_level(look_b, src_b, rows_b)
        return cosine(base, with_source_level(look_q, src_q, rows_q))

    miss_b, miss_q = np.abs(level_error(look_b, src_b)), np.abs(level_error(look_q, src_q))
    for share in level_shares:
        worst_b = miss_b >= np.quantile(miss_b, 1.0 - share)
        worst_q = miss_q >= np.quantile(miss_q, 1.0 - share)
        parts[f"look: the worst-read {share:.0%} by level, given their source's level"] = (
            given_level(worst_b, worst_q)
        )
        parts[f"look: the rest, given their source's level ({share:.0%})"] = given_level(
            ~worst_b, ~worst_q
        )
    if see_through:
        alpha = sources["source silhouette"]
        thin_b = see_through_share(alpha(ids))
        thin_q = see_through_share(alpha([q.item_id for q in queries]))
        for share in see_through:
            parts[f"look: sources at least {share:.0%} see-through, given their source's level"] = (
                given_level(thin_b >= share, thin_q >= share)
            )
    return parts


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_eval_args(parser)
    parser.add_argument("--look-weights", type=float, nargs="+", default=[0.5, 0.7])
    parser.add_argument("--power", type=float, help="cosine power (default: the index's)")
    parser.add_argument(
        "--other-visual", type=Path, nargs="+", default=[],
        help="visual models to swap in for f_I (several: their mean cosine)",
    )  # fmt: skip
    parser.add_argument(
        "--visual-mix", type=float, nargs="*", default=[],
        help="shares of the other visual models' cosine mixed with f_I's",
    )  # fmt: skip
    parser.add_argument(
        "--worst-looks", type=float, nargs="*", default=[0.1, 0.25],
        help="shares of items whose look grids are swapped for their source's",
    )  # fmt: skip
    parser.add_argument(
        "--worst-levels", type=float, nargs="*", default=[0.1],
        help="shares of items, read worst by level, given their source's level (and the rest)",
    )  # fmt: skip
    parser.add_argument(
        "--see-through", type=float, nargs="*", default=[0.1],
        help="items whose source lets the background through on at least this share of its "
        "silhouette are given their source's level",
    )  # fmt: skip
    args = parser.parse_args()
    if args.visual_mix and not args.other_visual:
        parser.error("--visual-mix mixes f_I with the models of --other-visual; give them")

    s = Searcher.load(args.index, grounding_threshold=None)
    index, n = s.index, s.index.count
    dim = s.model.config.embed_dim
    vectors = np.asarray(index.vectors, dtype=np.float64)
    if vectors.shape[1] <= dim:
        raise SystemExit(f"{args.index}: its model has no look; nothing to swap")
    power = args.power or s.cosine_power
    queries = load_queries(args.queries)
    shape = load_shape(s, queries, args.truth)
    if shape is None:
        raise SystemExit(f"{args.truth} does not name every item's source garment")
    judged = _common.judgements(s, queries, args, shape)

    qvec = np.stack([s.encode_image(q.image) for q in queries]).astype(np.float64)
    image = unit_rows(qvec[:, :dim]) @ unit_rows(vectors[:, :dim]).T
    look = unit_rows(qvec[:, dim:]) @ unit_rows(vectors[:, dim:]).T
    ids = [index.item(r).id for r in range(n)]
    sources = source_descriptors(args.truth, ids, s.model.config.image_size)
    stretched = sources["source silhouette x stretched shading"]
    src_b, src_q = centred_pair(stretched(ids), stretched([q.item_id for q in queries]))
    source = unit_rows(src_q) @ unit_rows(src_b).T
    parts = {
        "as indexed": (image, look),
        "look: the source garment": (image, source),
        "look: halfway to the source": (image, (look + source) / 2.0),
    }
    if args.worst_looks or args.worst_levels or args.see_through:
        worst = worst_read(
            s, ids, queries, sources, args.worst_looks, args.worst_levels, args.see_through
        )
        parts.update({name: (image, cos) for name, cos in worst.items()})
    if args.other_visual:
        paths = [Path(index.item(r).image) for r in range(n)]
        k = len(args.other_visual)
        other = np.zeros_like(image)
        for folder in args.other_visual:
            other_b, other_q = embed_for_visual_judge(
                folder, paths, queries, progress=True, log=print
            )
            other += (other_q @ other_b.T) / k
        name = "another visual model" if k == 1 else f"{k} visual models"
        parts[f"f_I: {name}"] = (other, look)
        for m in args.visual_mix:
            parts[f"f_I mixed {m:g} with {name}"] = ((1.0 - m) * image + m * other, look)
    scale = index_removal_scale(index)
    p = np.stack(
        [attribute_probs(index.attributes, np.arange(n), s._ids(q.add), s._ids(q.remove), scale)
         for q in queries]
    )  # fmt: skip
    for name, (img, lk) in parts.items():
        for a in args.look_weights:
            score = soft_filter_score(mixed_cosine(img, lk, a), p, power)
            for qi in range(len(queries)):
                top = np.argsort(-score[qi], kind="stable")[: args.k]
                judged.record(f"{name}, a={a:g}", "combined", qi, top, 0.0, [])

    rows = summarize({"per_query": judged.per_query})
    print(f"\n{len(queries)} queries, K = {args.k}, cosine power {power:g}, word weight 0\n")
    print("| scored with | V-nDCG | MM | T (truth) | worst kind | V-shape | MM-shape | objective |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        worst = min(kind["t_ndcg_truth"] for kind in r["by_type"].values())
        print(
            f"| {r['system']} | {r['v_ndcg']:.3f} | {r['mm']:.3f} | {r['t_ndcg_truth']:.3f} | "
            f"{worst:.3f} | {r['v_shape']:.3f} | {r['mm_shape']:.3f} | {objective(r):.3f} |"
        )


if __name__ == "__main__":
    main()
