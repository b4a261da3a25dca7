"""Fitting the model's look (:mod:`stylesearch.model.look`) and its look-aware attribute head
(:mod:`stylesearch.model.look_head`) on the catalog's images, after training: the look's
shading floor first (:func:`fit_look_floor`), then one pass over the images
(:func:`read_images`) gives the grids its projection is fitted on and the ``f_I`` and grids
the head is fitted on (:func:`fit_look_head`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from stylesearch.catalog.dataset import ImageDataset, collate_images
from stylesearch.catalog.transforms import eval_transform
from stylesearch.model.device import resolve_device
from stylesearch.model.joint import JointModel
from stylesearch.model.look import FLOOR_KINDS
from stylesearch.training.grounding import bag_labels

__all__ = [
    "FLOOR_IMAGES",
    "HEAD_IMAGES",
    "fit_look_floor",
    "fit_look_head",
    "read_images",
]

#: images (an even sample of the catalog's) the look's shading floor is read from
FLOOR_IMAGES = 1000
#: at most this many images (an even sample) fit the look head: their features take about
#: 5 kB each
HEAD_IMAGES = 50_000


@torch.no_grad()
def fit_look_floor(
    model: JointModel,
    paths: Sequence[Path],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool = False,
) -> None:
    """Fit the shading floor of a ``FLOOR_KINDS`` look on an even sample of ``FLOOR_IMAGES``
    of the main images ``paths`` (no-op for any other look, or none)."""
    look = model.look
    paths = list(paths)
    if look is None or look.kind not in FLOOR_KINDS or not paths:
        return
    sample = paths[:: -(-len(paths) // FLOOR_IMAGES)]
    batches = _batches(
        model, sample, resolve_device(device), batch_size, num_workers, progress, "look floor"
    )
    look.fit_floor(torch.cat([look.tones(b).cpu() for b in batches]))


@torch.no_grad()
def read_images(
    model: JointModel,
    paths: Sequence[Path],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """One pass over the main images ``paths``: their unnormalised ``f_I`` ``(N, D)`` and,
    for a model with a look, its grids ``(N, GRID * GRID)`` (None without one), both float32
    on the CPU. A ``FLOOR_KINDS`` look's floor must be fitted first (:func:`fit_look_floor`).
    What the look's projection, the look head and ``p`` are then fitted and computed from."""
    device = resolve_device(device)
    model.eval()
    features, grids = [], []
    for b in _batches(model, list(paths), device, batch_size, num_workers, progress, "images"):
        features.append(model.encode_images(b).float().cpu())
        if model.look is not None:
            grids.append(model.look.grid(b).float().cpu())
    dim = model.config.embed_dim
    f = torch.cat(features) if features else torch.zeros(0, dim)
    if model.look is None:
        return f, None
    return f, torch.cat(grids) if grids else torch.zeros(0, model.look.mean.numel())


@torch.no_grad()
def fit_look_head(
    model: JointModel, features: Tensor, grids: Tensor | None, bags: Sequence[Sequence[int]]
) -> int:
    """Fit ``model.look_head`` on the rows whose vocabulary words ``bags`` (word ids) are not
    empty, from their frozen ``f_I`` ``features`` and look ``grids`` (:func:`read_images`;
    an even sample of at most ``HEAD_IMAGES`` of the rows). The look's projection must be
    fitted first. Returns the number of rows it was fitted on: 0, leaving the head unfitted,
    without a look head or grids, or with fewer than 2 such rows."""
    head = model.look_head
    rows = [i for i, bag in enumerate(bags) if bag]
    if head is None or model.look is None or grids is None or len(rows) < 2:
        return 0
    rows = rows[:: -(-len(rows) // HEAD_IMAGES)]
    labels = torch.from_numpy(bag_labels([bags[i] for i in rows], model.vocab_size))
    device = head.mean.device
    head.cpu().fit(features[rows], grids[rows], labels)
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
