"""Train the visual judge (:mod:`stylesearch.model.visual`): ``stylesearch train-visual``.

The judge is trained with the triplet loss where *another image of the same item* is the
positive and images of the other items of the batch are the negatives (bidirectional, in-batch:
``losses.triplet``).

Each training step draws, per item, two different images of it (``image`` and one of
``extra_images``; an item with a single image uses two augmentations of it), both through the
training augmentation. Quality is reported on held-out items: the other view of each held-out
item is the query, the main images of all held-out items the gallery (same-item R@1 / R@10).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from stylesearch.catalog.images import DEFAULT_MAX_PIXELS, ImageError, load_image
from stylesearch.catalog.manifest import CatalogItem, load_catalog
from stylesearch.catalog.transforms import train_transform
from stylesearch.losses.triplet import triplet_loss
from stylesearch.model.device import resolve_device
from stylesearch.model.inference import embed_image_paths, progress_bar
from stylesearch.model.visual import (
    CONFIG_FILE,
    VisualConfig,
    VisualModel,
    VisualModelError,
    save_visual,
)
from stylesearch.retrieval_metrics import recall_at_k
from stylesearch.training.setup import (
    num_workers,
    seed_everything,
    seed_worker,
    split_indices,
)

__all__ = ["same_item_recall", "train_visual"]

Log = Callable[[str], None]


class _ViewPairs(Dataset[dict[str, Any]]):
    """Item i -> two augmented images of it (two different views when it has them)."""

    def __init__(self, items: Sequence[CatalogItem], image_size: int, seed: int) -> None:
        self.items = items
        self.transform = train_transform(image_size)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        views = item.all_images
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if len(views) >= 2:
            a, b = rng.choice(len(views), size=2, replace=False)
        else:
            a = b = 0
        out = []
        for v in (a, b):
            try:
                image = load_image(views[int(v)], max_pixels=DEFAULT_MAX_PIXELS)
            except ImageError as exc:
                raise type(exc)(f"item {item.id!r}: {exc}") from None  # same kind
            out.append(self.transform(image))
        return {"a": out[0], "b": out[1]}


def _collate_views(batch: list[dict[str, Any]]) -> dict[str, Tensor]:
    return {
        "a": torch.stack([s["a"] for s in batch]),
        "b": torch.stack([s["b"] for s in batch]),
    }


@torch.no_grad()
def same_item_recall(
    model: VisualModel, items: Sequence[CatalogItem], *, device: torch.device, workers: int
) -> dict[str, float]:
    """Held-out quality: another view of each item (query) vs the items' main images (gallery)."""
    model.eval()
    with_views = [it for it in items if it.extra_images]
    if len(with_views) < 2:
        return {}
    size = model.config.image_size
    gallery = embed_image_paths(
        model, [it.image for it in with_views], image_size=size, device=device, workers=workers
    )
    queries = embed_image_paths(
        model, [it.extra_images[0] for it in with_views], image_size=size, device=device,
        workers=workers,
    )  # fmt: skip
    sim = queries @ gallery.T
    return {
        "val_r1": recall_at_k(sim, 1),
        "val_r10": recall_at_k(sim, 10),
        "val_items": len(with_views),
    }


def _split_catalog(
    manifest: str | Path,
    config: VisualConfig,
    progress: bool,
    image_roots: Sequence[str | Path],
    log: Log,
) -> tuple[list[CatalogItem], list[CatalogItem]]:
    """The catalog's training items and held-out items."""
    catalog = load_catalog(manifest, progress=progress, image_roots=image_roots)
    items = list(catalog.items)
    if len(items) < 4:
        raise VisualModelError(f"{manifest}: {len(items)} usable items; need at least 4")
    if catalog.rejected:
        log(
            f"train-visual: {len(catalog.rejected)} rows rejected (see `stylesearch catalog check`)"
        )
    train_idx, val_idx = split_indices(len(items), config.val_fraction, config.seed)
    return [items[i] for i in train_idx], [items[i] for i in val_idx]


def _train_epoch(
    model: VisualModel,
    loader: DataLoader,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    config: VisualConfig,
    device: torch.device,
    bar: Any,
) -> list[float]:
    """One pass over ``loader``; returns each step's loss."""
    model.train()
    losses = []
    for batch in loader:
        a = model(batch["a"].to(device))
        b = model(batch["b"].to(device))
        loss = triplet_loss(a, b, margin=config.margin, negatives=config.negatives)["triplet"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        bar.update(len(a))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    bar.close()
    return losses


def _epoch_line(row: dict[str, Any], epochs: int, seconds: float) -> str:
    return (
        f"train-visual: epoch {row['epoch']}/{epochs} loss {row['loss']:.4f} "
        f"held-out same-item R@1 {row.get('val_r1', float('nan')):.3f} "
        f"R@10 {row.get('val_r10', float('nan')):.3f} ({seconds:.0f} s, "
        f"{row['images_per_s']} img/s)"
    )


def train_visual(
    manifest: str | Path,
    out_dir: str | Path,
    config: VisualConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    log: Log | None = None,
    image_roots: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Train the baseline visual model on ``manifest`` and save it to ``out_dir``
    (``image_roots``: folders besides the manifest's own that its images may lie in).

    Returns the metrics written to ``config.json`` (per-epoch loss, held-out R@1 / R@10).

    Raises:
        VisualModelError: ``out_dir`` holds a model and ``overwrite`` is false, or a bad config.
    """
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    config = (config or VisualConfig()).validate()
    out_dir = Path(out_dir)
    if (out_dir / CONFIG_FILE).exists() and not overwrite:
        raise VisualModelError(
            f"{out_dir} already holds a visual model; pass --overwrite to replace it"
        )
    seed_everything(config.seed)
    device = resolve_device(config.device)
    workers = num_workers(config.workers)
    train_items, val_items = _split_catalog(manifest, config, progress, image_roots, log)
    with_views = sum(1 for it in train_items if it.extra_images)
    log(
        f"train-visual: {len(train_items)} training items ({with_views} with 2+ images), "
        f"{len(val_items)} held out; {config.backbone}, {config.epochs} epochs on {device}"
    )

    model = VisualModel(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    data = _ViewPairs(train_items, config.image_size, config.seed)
    steps_per_epoch = max(1, len(train_items) // config.batch_size)
    total = steps_per_epoch * config.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=total, pct_start=0.1
    )
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    for epoch in range(config.epochs):
        data.epoch = epoch
        loader = DataLoader(
            data, batch_size=config.batch_size, shuffle=True, drop_last=True,
            num_workers=workers, collate_fn=_collate_views, worker_init_fn=seed_worker,
            generator=generator,
        )  # fmt: skip
        t0 = time.perf_counter()
        bar = progress_bar(
            steps_per_epoch * config.batch_size, f"visual epoch {epoch + 1}", progress
        )
        losses = _train_epoch(model, loader, opt, sched, config, device, bar)
        seconds = time.perf_counter() - t0
        row = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "seconds": round(seconds, 2),
            "images_per_s": round(2 * len(losses) * config.batch_size / max(seconds, 1e-9), 1),
        }
        row.update(same_item_recall(model, val_items, device=device, workers=workers))
        history.append(row)
        log(_epoch_line(row, config.epochs, seconds))

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metrics = {
        "epochs": history,
        "final": history[-1] if history else {},
        "train_items": len(train_items),
        "val_items": len(val_items),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    save_visual(out_dir, state, config, metrics, str(Path(manifest).absolute()))
    log(f"train-visual: saved {out_dir}")
    return metrics
