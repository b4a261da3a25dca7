"""The paper's baseline visual model: the judge of V-nDCG (PAPER.md "Evaluation protocol").

An image-only network (an image backbone + a linear projection, L2-normalised output) trained
with the triplet loss where *another image of the same item* is the positive and images of the
other items of the batch are the negatives (bidirectional, in-batch: ``losses.triplet``). It
never sees text, so its cosine measures what the shopper sees: shape, colour and pattern.

Each training step draws, per item, two different images of it (``image`` and one of
``extra_images``; an item with a single image uses two augmentations of it), both through the
training augmentation. Quality is reported on held-out items: the other view of each held-out
item is the query, the main images of all held-out items the gallery (same-item R@1 / R@10).

Folder (``stylesearch train-visual --out VISUAL_DIR``): ``model.safetensors`` and
``config.json`` (format, config, metrics, weights sha256, training catalog). It is written into
a temporary folder and swapped in at the end: an interrupted run leaves the previous model.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from stylesearch.catalog.dataset import ImageDataset, collate_images
from stylesearch.catalog.images import DEFAULT_MAX_PIXELS, ImageError, load_image
from stylesearch.catalog.manifest import CatalogItem, load_catalog
from stylesearch.catalog.transforms import eval_transform, train_transform
from stylesearch.config import ModelConfig
from stylesearch.errors import StylesearchError
from stylesearch.evaluation.retrieval import recall_at_k
from stylesearch.folders import new_temp_folder, swap_into_place, writer_lock
from stylesearch.losses.triplet import NEGATIVES, triplet_loss
from stylesearch.model.io import file_sha256
from stylesearch.model.towers import build_image_backbone
from stylesearch.training.setup import (
    num_workers,
    resolve_device,
    seed_everything,
    seed_worker,
    split_indices,
)

__all__ = [
    "VisualConfig",
    "VisualModel",
    "VisualModelError",
    "embed_image_paths",
    "load_visual",
    "train_visual",
]

FORMAT_NAME = "stylesearch-visual"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
Log = Callable[[str], None]


class VisualModelError(StylesearchError, ValueError):
    """A visual model folder that cannot be used, or a run that cannot start; says what to do."""


@dataclass
class VisualConfig:
    """Hyper-parameters of ``stylesearch train-visual`` (defaults: the demo's)."""

    backbone: str = "resnet18"
    #: ImageNet weights (efficientnet_lite0 only: no offline ResNet-18 weights exist)
    pretrained: bool = False
    embed_dim: int = 128
    image_size: int = 64
    epochs: int = 2
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    margin: float = 0.2
    negatives: str = "semi-hard"
    val_fraction: float = 0.1
    seed: int = 0
    #: DataLoader workers (None: min(4, cores))
    workers: int | None = None
    device: str = "auto"

    def validate(self) -> VisualConfig:
        problems = []
        for name in ("embed_dim", "image_size", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.batch_size < 2:
            problems.append("batch_size must be >= 2 (the other items are the negatives)")
        if self.lr <= 0:
            problems.append("lr must be > 0")
        if not 0 <= self.val_fraction < 1:
            problems.append("val_fraction must be in [0, 1)")
        if self.negatives not in NEGATIVES:
            problems.append(f"negatives must be one of {', '.join(NEGATIVES)}")
        if self.backbone not in ("resnet18", "efficientnet_lite0"):
            problems.append("backbone must be 'resnet18' or 'efficientnet_lite0'")
        if self.pretrained and self.backbone == "resnet18":
            problems.append(
                "pretrained ResNet-18 weights are not available offline; use "
                "--backbone efficientnet_lite0 --pretrained, or train from scratch"
            )
        if problems:
            raise VisualModelError("; ".join(problems))
        return self


class VisualModel(nn.Module):
    """Backbone + linear projection; ``forward`` returns unit vectors ``(B, embed_dim)``."""

    def __init__(self, config: VisualConfig, *, load_weights: bool = True) -> None:
        super().__init__()
        self.config = config
        model_config = ModelConfig(
            backbone=config.backbone,
            pretrained=config.pretrained,
            image_size=config.image_size,
        )
        self.backbone, features = build_image_backbone(model_config, load_weights=load_weights)
        self.proj = nn.Linear(features, config.embed_dim)

    def forward(self, images: Tensor) -> Tensor:
        return nn.functional.normalize(self.proj(self.backbone(images)).float(), dim=-1)


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
                raise ImageError(f"item {item.id!r}: {exc}") from None
            out.append(self.transform(image))
        return {"a": out[0], "b": out[1]}


def _collate_views(batch: list[dict[str, Any]]) -> dict[str, Tensor]:
    return {
        "a": torch.stack([s["a"] for s in batch]),
        "b": torch.stack([s["b"] for s in batch]),
    }


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
    catalog = load_catalog(manifest, progress=progress, image_roots=image_roots)
    items = list(catalog.items)
    if len(items) < 4:
        raise VisualModelError(f"{manifest}: {len(items)} usable items; need at least 4")
    if catalog.rejected:
        log(
            f"train-visual: {len(catalog.rejected)} rows rejected (see `stylesearch catalog check`)"
        )
    train_idx, val_idx = split_indices(len(items), config.val_fraction, config.seed)
    train_items = [items[i] for i in train_idx]
    val_items = [items[i] for i in val_idx]
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
            data,
            batch_size=config.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            collate_fn=_collate_views,
            worker_init_fn=seed_worker,
            generator=generator,
        )
        model.train()
        losses = []
        t0 = time.perf_counter()
        bar = progress_bar(
            steps_per_epoch * config.batch_size, f"visual epoch {epoch + 1}", progress
        )
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
        seconds = time.perf_counter() - t0
        row = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "seconds": round(seconds, 2),
            "images_per_s": round(2 * len(losses) * config.batch_size / max(seconds, 1e-9), 1),
        }
        row.update(same_item_recall(model, val_items, device=device, workers=workers))
        history.append(row)
        log(
            f"train-visual: epoch {row['epoch']}/{config.epochs} loss {row['loss']:.4f} "
            f"held-out same-item R@1 {row.get('val_r1', float('nan')):.3f} "
            f"R@10 {row.get('val_r10', float('nan')):.3f} ({seconds:.0f} s, "
            f"{row['images_per_s']} img/s)"
        )

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metrics = {
        "epochs": history,
        "final": history[-1] if history else {},
        "train_items": len(train_items),
        "val_items": len(val_items),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    _save(out_dir, state, config, metrics, str(Path(manifest).absolute()))
    log(f"train-visual: saved {out_dir}")
    return metrics


def _save(
    out_dir: Path, state: dict[str, Tensor], config: VisualConfig, metrics: dict, catalog: str
) -> None:
    with writer_lock(out_dir):
        tmp = new_temp_folder(out_dir)
        try:
            _write_visual(tmp, state, config, metrics, catalog)
            swap_into_place(tmp, out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _write_visual(
    tmp: Path, state: dict[str, Tensor], config: VisualConfig, metrics: dict, catalog: str
) -> None:
    from safetensors.torch import save_file

    save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": asdict(config),
        "metrics": metrics,
        "catalog": catalog,
        "weights_sha256": file_sha256(tmp / WEIGHTS_FILE),
    }
    (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_visual_config(folder: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a visual model folder (VisualModelError when it is not one)."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise VisualModelError(
            f"{folder}: not a visual model folder (no {CONFIG_FILE}); train one with "
            "`stylesearch train-visual --catalog MANIFEST --out DIR`"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VisualModelError(f"{path}: not valid JSON ({exc}); train the model again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise VisualModelError(f"{folder}: {CONFIG_FILE} is not a {FORMAT_NAME} config")
    return meta


def load_visual(folder: str | Path, *, device: str | torch.device = "cpu") -> VisualModel:
    """Load a visual model folder (safetensors only; the weights' sha256 is checked)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = read_visual_config(folder)
    names = {f.name for f in fields(VisualConfig)}
    config = VisualConfig(**{k: v for k, v in meta["config"].items() if k in names})
    weights = folder / WEIGHTS_FILE
    if file_sha256(weights) != meta["weights_sha256"]:
        raise VisualModelError(
            f"{weights}: the weights do not match config.json (sha256); train it again"
        )
    model = VisualModel(config, load_weights=False)
    model.load_state_dict(load_file(str(weights)))
    return model.to(device).eval()
