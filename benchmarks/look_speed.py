"""Time each way the look reads an image's shaded silhouette, on a catalog's own images.

    .venv/bin/python benchmarks/look_speed.py --catalog runs/demo/catalog/base/manifest.jsonl

Reads ``--images`` main images of the manifest at ``--size`` pixels once, then times
``silhouette.shaded_silhouette`` (the ``"shading"`` and ``"silhouette"`` kinds) and
``pixel_shading.pixel_shading`` (the ``"pixel-shading"`` kind) over them in batches of
``--batch``, ``--repeats`` times each, and prints the best time per image. Only the reading is
timed: the grid, the projection and the image decoding are the same for every kind.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import _common
from stylesearch.catalog.manifest import load_catalog
from stylesearch.model.pixel_shading import pixel_shading
from stylesearch.model.silhouette import shaded_silhouette


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--catalog", type=Path, required=True, help="a catalog manifest")
    parser.add_argument("--images", type=int, default=1024, help="images to read (default 1024)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (default 3)")
    args = parser.parse_args()

    items = load_catalog(args.catalog).items[: args.images]
    if not items:
        raise SystemExit(f"{args.catalog} has no items")
    pixels = [
        np.asarray(Image.open(it.image).convert("RGB").resize((args.size, args.size)))
        for it in items
    ]
    rgb = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float()
    print(f"{len(rgb)} images of {args.size} px, batches of {args.batch}, torch threads "
          f"{torch.get_num_threads()}")  # fmt: skip
    for name, read in (("shaded_silhouette", shaded_silhouette), ("pixel_shading", pixel_shading)):
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for i in range(0, len(rgb), args.batch):
                read(rgb[i : i + args.batch])
            best = min(best, time.perf_counter() - t0)
        print(f"{name:18s} {best / len(rgb) * 1000:.2f} ms per image (best of {args.repeats})")


if __name__ == "__main__":
    main()
