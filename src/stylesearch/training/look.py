"""Fitting the model's look (:mod:`stylesearch.model.look`) on the catalog's images."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from stylesearch.catalog.dataset import ImageDataset, collate_images
from stylesearch.catalog.transforms import eval_transform
from stylesearch.model.device import resolve_device
from stylesearch.model.joint import JointModel

__all__ = ["FLOOR_IMAGES", "fit_look"]

#: images (an even sample of the catalog's) the look's shading floor is read from
FLOOR_IMAGES = 1000


@torch.no_grad()
def fit_look(
    model: JointModel,
    paths: Sequence[Path],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool = False,
) -> None:
    """Fit ``model.look`` on the main images ``paths`` (no-op for a model without a look): a
    ``"shading"`` look's floor on an even sample of ``FLOOR_IMAGES`` of them, then the
    projection on all."""
    if model.look is None:
        return
    look = model.look
    device = resolve_device(device)
    paths = list(paths)
    if look.kind == "shading" and paths:
        sample = paths[:: -(-len(paths) // FLOOR_IMAGES)]
        batches = _batches(model, sample, device, batch_size, num_workers, progress, "look floor")
        look.fit_floor(torch.cat([look.tones(b).cpu() for b in batches]))
    batches = _batches(model, paths, device, batch_size, num_workers, progress, "look")
    grids = [look.grid(b).cpu() for b in batches]
    look.fit(torch.cat(grids) if grids else torch.zeros(0, look.mean.numel()))


def _batches(
    model: JointModel, paths: list[Path], device: torch.device, batch_size: int,
    num_workers: int, progress: bool, desc: str,
) -> Iterator[torch.Tensor]:  # fmt: skip
    """The images of ``paths`` as the model reads them, in batches on ``device``."""
    from tqdm.auto import tqdm

    size = model.config.image_size
    dataset = ImageDataset(paths, eval_transform(size), shrink_to=size)
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_images
    )
    bar = tqdm(total=len(dataset), desc=desc, unit="img", disable=not progress, file=sys.stderr)
    for batch in loader:
        yield batch["images"].to(device)
        bar.update(len(batch["index"]))
    bar.close()
