"""How well the look reads each garment, by the truth's pattern and colour.

Each base item's look grid (unprojected, as ``ShapeLook.grid`` gives it) is compared with its
source garment's shading, stretched as the look stretches its own, on the same grid
(``score_parts.py``'s ``look: the source garment``). The error of an item is one minus the
cosine of the two grids, each centred on its own catalog's mean grid, as the shape judge
centres its pixels: it counts the garment's level as well as its shape. "With the source's
level" is the error left once each grid's garment cells are shifted by one number to the
source's mean over them; "shape" is one minus the plain correlation of the two grids of one
item (blind to level and contrast).

For each pattern and each colour of the truth: the items, their mean and median error, the
share of the catalog's summed error they hold, and the mean of the two other errors. Then, by
how much of its source garment's silhouette lets the background through (``score_parts.py``'s
``see_through_share``): the items, the patterned ones among them, the mean **level error**
(``score_parts.py``'s ``level_error``: the grid's mean over its garment cells less the
source's) of the patterned and of the plain ones, and the share of the items among the tenth
of the catalog whose level errs most. Needs the demo catalog's truth (the source garments).

    .venv/bin/python benchmarks/look_error.py --index runs/demo/index \\
        --truth runs/demo/catalog/truth.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import _common
from score_parts import level_and_mask, level_error, see_through_share
from shape_caps import source_descriptors, unit_rows
from stylesearch.model.inference import embed_image_paths
from stylesearch.model.look import GRID
from stylesearch.search.searcher import Searcher


def centred_error(look: np.ndarray, source: np.ndarray) -> np.ndarray:
    """One minus the cosine of each row pair, each side centred on its own mean row."""
    a, b = look - look.mean(0), source - source.mean(0)
    return 1.0 - (unit_rows(a) * unit_rows(b)).sum(1)


def shape_error(look: np.ndarray, source: np.ndarray) -> np.ndarray:
    """One minus each row pair's correlation (each row centred on its own mean)."""
    a, b = look - look.mean(1, keepdims=True), source - source.mean(1, keepdims=True)
    return 1.0 - (unit_rows(a) * unit_rows(b)).sum(1)


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--index", type=Path, required=True, help="an index whose model has a look")
    parser.add_argument(
        "--truth", type=Path, required=True, help="the demo catalog's truth.jsonl (its sources)"
    )
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    s = Searcher.load(args.index, grounding_threshold=None)
    if s.model.look is None:
        parser.error(f"{args.index}'s model has no look")
    n, size = s.index.count, s.model.config.image_size
    ids = [s.index.item(r).id for r in range(n)]
    paths = [Path(s.index.item(r).image) for r in range(n)]
    truth = {}
    for line in args.truth.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            truth[row["id"]] = row
    sources = source_descriptors(args.truth, ids, size)
    stretched = sources["source silhouette x stretched shading"]
    source = torch.from_numpy(stretched(ids).reshape(n, 1, size, size))
    source = F.interpolate(source, size=(GRID, GRID), mode="area").flatten(1).numpy()
    look = embed_image_paths(s.model.look.grid, paths, image_size=size, batch_size=256)
    look = look.astype(np.float64)

    error = centred_error(look, source)
    level = centred_error(
        level_and_mask(look, source)["its grids, each item's level its source's"], source
    )
    shape = shape_error(look, source)
    print(f"{n} items: error {error.mean():.4f} (median {np.median(error):.4f}), "
          f"with the source's level {level.mean():.4f}, shape {shape.mean():.4f}")  # fmt: skip
    print("| group | items | error | median | share of error | with the source's level | shape |")
    print("|---|---|---|---|---|---|---|")
    for key in ("pattern", "colour"):
        values = np.array([str(truth[i].get(key)) for i in ids])
        for value in sorted(set(values)):
            m = values == value
            print(
                f"| {key} {value} | {m.sum()} | {error[m].mean():.4f} | {np.median(error[m]):.4f}"
                f" | {error[m].sum() / error.sum():.3f} | {level[m].mean():.4f}"
                f" | {shape[m].mean():.4f} |"
            )

    miss = level_error(look, source)
    worst = np.abs(miss) >= np.quantile(np.abs(miss), 0.9)
    thin = see_through_share(sources["source silhouette"](ids))
    patterned = np.array([truth[i].get("pattern") != "solid" for i in ids])
    print("\n| see-through share of the source | items | patterned | level error, patterned "
          "| level error, plain | in the worst tenth by level |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    edges = [0.0, 0.1, 0.2, 0.3, 0.5, 1.01]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (thin >= lo) & (thin < hi)
        cells = [
            f"{miss[m & k].mean():+.3f}" if (m & k).any() else "-" for k in (patterned, ~patterned)
        ]
        print(f"| {lo:.0%} to {min(hi, 1.0):.0%} | {m.sum()} | {(m & patterned).sum()} | "
              f"{cells[0]} | {cells[1]} | {worst[m].mean():.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
