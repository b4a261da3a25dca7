"""Fitting the model's look (:mod:`stylesearch.model.look`) on the catalog's images."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from stylesearch.catalog.dataset import ImageDataset, collate_images
from stylesearch.catalog.transforms import eval_transform
from stylesearch.model.device import resolve_device
from stylesearch.model.joint import JointModel

__all__ = ["fit_look"]


def fit_look(
    model: JointModel,
    paths: Sequence[Path],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool = False,
) -> None:
    """Fit ``model.look`` on the main images ``paths`` (no-op for a model without a look)."""
    from tqdm.auto import tqdm

    if model.look is None:
        return
    device = resolve_device(device)
    size = model.config.image_size
    dataset = ImageDataset(list(paths), eval_transform(size), shrink_to=size)
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_images
    )
    grids = []
    bar = tqdm(total=len(dataset), desc="look", unit="img", disable=not progress, file=sys.stderr)
    with torch.no_grad():
        for batch in loader:
            grids.append(model.look.grid(batch["images"].to(device)).cpu())
            bar.update(len(batch["index"]))
    bar.close()
    model.look.fit(torch.cat(grids))
