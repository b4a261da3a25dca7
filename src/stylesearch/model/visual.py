"""The paper's baseline visual model, the judge of V-nDCG (PAPER.md "Evaluation protocol"),
and its folder.

An image-only network: an image backbone + a linear projection, L2-normalised output. It never
sees text, so its cosine measures what the shopper sees: shape, colour and pattern. Its trainer
is :mod:`stylesearch.training.visual`.

Folder (``stylesearch train-visual --out VISUAL_DIR``): ``model.safetensors`` and
``config.json`` (format, config, metrics, weights sha256, training catalog). :func:`save_visual`
writes it into a temporary folder and swaps it in at the end: an interrupted run leaves the
previous model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from stylesearch.config import (
    BACKBONES,
    DEFAULT_DEVICE,
    NEGATIVES,
    VISUAL_TABLE,
    ModelConfig,
    load_table,
)
from stylesearch.errors import StylesearchError
from stylesearch.folders import FolderSwap, ManifestFormat, read_manifest_json
from stylesearch.model.device import resolve_device
from stylesearch.model.io import file_sha256
from stylesearch.model.towers import build_image_backbone

__all__ = [
    "VisualConfig",
    "VisualModel",
    "VisualModelError",
    "load_visual",
    "load_visual_config",
    "read_visual_config",
    "save_visual",
]

FORMAT_NAME = "stylesearch-visual"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class VisualModelError(StylesearchError, ValueError):
    """A visual model folder that cannot be used, or a run that cannot start; says what to do."""


MANIFEST_FORMAT = ManifestFormat(
    file=CONFIG_FILE,
    name=FORMAT_NAME,
    title=f"{FORMAT_NAME} config",
    newest=FORMAT_VERSION,
    oldest=FORMAT_VERSION,
    error=VisualModelError,
    fix="train it again with `stylesearch train-visual`",
)


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
    device: str = DEFAULT_DEVICE

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
        if self.backbone not in BACKBONES:
            problems.append("backbone must be 'resnet18' or 'efficientnet_lite0'")
        if self.pretrained and self.backbone == "resnet18":
            problems.append(
                "pretrained ResNet-18 weights are not available offline; use "
                "--backbone efficientnet_lite0 --pretrained, or train from scratch"
            )
        if problems:
            raise VisualModelError("; ".join(problems))
        return self


def load_visual_config(path: str | Path | None, **given: Any) -> VisualConfig:
    """The ``[visual]`` table of the TOML config file at ``path`` (``None``: the defaults) with
    the ``given`` values that are not ``None`` (the command-line options given) on top,
    validated."""
    config = VisualConfig() if path is None else load_table(path, VISUAL_TABLE, VisualConfig)
    return replace(config, **{k: v for k, v in given.items() if v is not None}).validate()


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


def save_visual(
    out_dir: Path, state: dict[str, Tensor], config: VisualConfig, metrics: dict, catalog: str
) -> None:
    """Write the visual model folder ``out_dir`` (a new folder swapped in whole)."""
    with FolderSwap(out_dir) as folder:
        _write_visual(folder.tmp, state, config, metrics, catalog)
        folder.commit()


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
    missing = (
        f"{folder}: not a visual model folder (no {CONFIG_FILE}); train one with "
        "`stylesearch train-visual --catalog MANIFEST --out DIR`"
    )
    return read_manifest_json(folder, MANIFEST_FORMAT, missing)


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
    return model.to(resolve_device(device)).eval()
