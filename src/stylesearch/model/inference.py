"""Run a model over images in batches: :func:`embed_image_paths` (any encoder, e.g. the
visual judge's) and :func:`predict_attributes` (the attribute head's probabilities of catalog
items, or :func:`predict_attributes_from` their ``f_I`` and look grids already read), with
:func:`progress_bar` for their progress."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from stylesearch.catalog.dataset import ImageDataset, collate_images
from stylesearch.catalog.manifest import CatalogItem
from stylesearch.catalog.transforms import eval_transform
from stylesearch.model.device import resolve_device
from stylesearch.model.joint import JointModel

__all__ = ["embed_image_paths", "predict_attributes", "predict_attributes_from", "progress_bar"]


@torch.no_grad()
def embed_image_paths(
    encode: Callable[[Tensor], Tensor],
    paths: Sequence[Path],
    *,
    image_size: int,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    workers: int = 0,
    progress: bool = False,
    desc: str = "embedding",
) -> np.ndarray:
    """``encode`` applied to the images at ``paths`` (eval transform): ``(N, D)`` float32."""
    device = resolve_device(device)
    loader = DataLoader(
        ImageDataset(list(paths), eval_transform(image_size)),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_images,
    )
    out = []
    bar = progress_bar(len(paths), desc, progress)
    for batch in loader:
        out.append(encode(batch["images"].to(device)).float().cpu().numpy())
        bar.update(len(batch["images"]))
    bar.close()
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "img") -> Any:
    """A tqdm bar on stderr (``enabled=False``: a silent one)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr)


@torch.no_grad()
def predict_attributes(
    model: JointModel,
    items: Sequence[CatalogItem],
    *,
    batch_size: int = 256,
    num_workers: int = 2,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """The model's attribute probabilities (:meth:`JointModel.attribute_probs`) of the items'
    main images: (N, |V|) float32 in [0, 1]."""
    from tqdm import tqdm

    device = resolve_device(device)
    model.eval().to(device)
    size = model.config.image_size
    ds = ImageDataset([it.image for it in items], eval_transform(size), shrink_to=size)
    loader = DataLoader(
        ds, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_images
    )
    out = []
    for batch in tqdm(loader, desc="attributes", disable=not progress, leave=False):
        out.append(model.attribute_probs(batch["images"].to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.vocab_size), np.float32)


@torch.no_grad()
def predict_attributes_from(
    model: JointModel, features: Tensor, grids: Tensor | None, *, batch_size: int = 4096
) -> np.ndarray:
    """:func:`predict_attributes` of images already read: their unnormalised ``f_I``
    ``features`` ``(N, D)`` and, for a model with a look, its ``grids`` ``(N, G)``
    (:func:`stylesearch.training.look.read_images`), in batches on the model's device:
    ``(N, |V|)`` float32 in [0, 1]."""
    if model.look is not None and grids is None:
        raise ValueError("this model has a look: give the look's grids of the images too")
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(features), batch_size):
        f = features[start : start + batch_size].to(device)
        g = None if grids is None else grids[start : start + batch_size].to(device)
        out.append(model.attribute_probs(None, f, g).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.vocab_size), np.float32)
