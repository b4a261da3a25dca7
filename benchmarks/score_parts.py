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


def level_and_mask(look: np.ndarray, source: np.ndarray) -> dict[str, np.ndarray]:
    """Grids ``(N, GRID * GRID)``: ``look``'s with each row's garment cells (above 0) shifted to
    the mean of ``source``'s over those cells, and ``source``'s on ``look``'s garment cells (at
    least ``FLOOR_LEVEL``), 0 elsewhere."""
    garment = look > 0
    cells = garment.sum(1).clip(min=1)
    shift = ((source - look) * garment).sum(1) / cells
    return {
        "its grids, each item's level its source's": np.where(garment, look + shift[:, None], 0.0),
        "the source's shading in its mask": np.where(garment, np.maximum(source, FLOOR_LEVEL), 0.0),
    }


def worst_read(
    s: Searcher,
    ids: list[str],
    queries: list,
    stretched: Callable[[list[str]], np.ndarray],
    shares: list[float],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The ``look: ...`` parts of the look's own grids: as they are, with the worst-read
    ``shares`` of items swapped for their source's, and :func:`level_and_mask`'s; the image
    part is filled in by the caller."""
    size = s.model.config.image_size
    paths = [Path(s.index.item(r).image) for r in range(len(ids))]
    grid = s.model.look.grid
    look_b = embed_image_paths(grid, paths, image_size=size, batch_size=256).astype(np.float64)
    look_q = embed_image_paths(
        grid, [Path(q.image) for q in queries], image_size=size, batch_size=256
    ).astype(np.float64)

    def source_grids(item_ids: list[str]) -> np.ndarray:
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
    stretched = source_descriptors(args.truth, ids, s.model.config.image_size)[
        "source silhouette x stretched shading"
    ]
    src_b, src_q = centred_pair(stretched(ids), stretched([q.item_id for q in queries]))
    source = unit_rows(src_q) @ unit_rows(src_b).T
    parts = {
        "as indexed": (image, look),
        "look: the source garment": (image, source),
        "look: halfway to the source": (image, (look + source) / 2.0),
    }
    if args.worst_looks:
        worst = worst_read(s, ids, queries, stretched, args.worst_looks)
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
