"""Fitting the model's look (:mod:`stylesearch.model.look`) and its look-aware attribute head
(:mod:`stylesearch.model.look_head`) on the catalog's images, after training."""

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
from stylesearch.model.look import FLOOR_KINDS

__all__ = ["FLOOR_IMAGES", "HEAD_IMAGES", "fit_look", "fit_look_head"]

#: images (an even sample of the catalog's) the look's shading floor is read from
FLOOR_IMAGES = 1000
#: at most this many images (an even sample) fit the look head: their features take about
#: 5 kB each
HEAD_IMAGES = 50_000


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
    ``FLOOR_KINDS`` look's floor on an even sample of ``FLOOR_IMAGES`` of them, then the
    projection on all."""
    if model.look is None:
        return
    look = model.look
    device = resolve_device(device)
    paths = list(paths)
    if look.kind in FLOOR_KINDS and paths:
        sample = paths[:: -(-len(paths) // FLOOR_IMAGES)]
        batches = _batches(model, sample, device, batch_size, num_workers, progress, "look floor")
        look.fit_floor(torch.cat([look.tones(b).cpu() for b in batches]))
    batches = _batches(model, paths, device, batch_size, num_workers, progress, "look")
    grids = [look.grid(b).cpu() for b in batches]
    look.fit(torch.cat(grids) if grids else torch.zeros(0, look.mean.numel()))


@torch.no_grad()
def fit_look_head(
    model: JointModel,
    paths: Sequence[Path],
    bags: Sequence[Sequence[int]],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool = False,
) -> int:
    """Fit ``model.look_head`` on the main images ``paths`` whose vocabulary words ``bags``
    (word ids) are not empty, from frozen ``f_I`` and look grids of an even sample of at most
    ``HEAD_IMAGES`` of them. The look must be fitted first (:func:`fit_look`). Returns the
    number of images it was fitted on: 0, leaving the head unfitted, without a look head or
    with fewer than 2 such images."""
    head, look = model.look_head, model.look
    rows = [i for i, bag in enumerate(bags) if bag]
    if head is None or look is None or len(rows) < 2:
        return 0
    rows = rows[:: -(-len(rows) // HEAD_IMAGES)]
    labels = torch.zeros(len(rows), model.vocab_size, dtype=torch.bool)
    for row, i in enumerate(rows):
        labels[row, list(bags[i])] = True
    device = resolve_device(device)
    model.eval()
    features, grids = [], []
    batches = _batches(
        model, [Path(paths[i]) for i in rows], device, batch_size, num_workers, progress,
        "look head",
    )  # fmt: skip
    for b in batches:
        features.append(model.encode_images(b).float().cpu())
        grids.append(look.grid(b).float().cpu())
    head.cpu().fit(torch.cat(features), torch.cat(grids), labels)
    head.to(device)
    return len(rows)


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
