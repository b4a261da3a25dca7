"""Measure each word's visual grounding (:mod:`stylesearch.model.grounding`) with a model.

:func:`measure_grounding` scores the words on given items: the attribute head's probabilities
of their images (:func:`~stylesearch.model.inference.predict_attributes`) against the
vocabulary words of their metadata. :func:`grounding_items` picks those items for
``stylesearch vocab --catalog``: the held-out split of the training catalog, the same items as
training's validation, when the manifest is the one the model was trained on; every item of any
other manifest (a held-out catalog).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylesearch.catalog.manifest import CatalogItem, load_catalog
from stylesearch.errors import StylesearchError
from stylesearch.model.grounding import DEFAULT_MIN_POSITIVES, Grounding
from stylesearch.model.inference import predict_attributes
from stylesearch.model.joint import JointModel
from stylesearch.text.pipeline import TextPipeline

__all__ = ["GroundingError", "ground_held_out", "grounding_items", "measure_grounding"]


class GroundingError(StylesearchError, ValueError):
    """Grounding cannot be measured (no items with vocabulary words, no vocabulary)."""


def measure_grounding(
    model: JointModel,
    items: Sequence[CatalogItem],
    bags: Sequence[Sequence[int]],
    *,
    source: str = "",
    min_positives: int = DEFAULT_MIN_POSITIVES,
    device: str | torch.device = "cpu",
    num_workers: int = 2,
    progress: bool = False,
) -> Grounding:
    """Grounding of every vocabulary word on ``items``, whose metadata words (vocabulary ids)
    are ``bags``.

    Raises:
        GroundingError: no items, or a model without its vocabulary.
    """
    if model.vocab is None:
        raise GroundingError("the model has no vocabulary: load it with stylesearch.load_model")
    if not items:
        raise GroundingError("no held-out items with vocabulary words to measure grounding on")
    probs = predict_attributes(
        model, items, device=device, num_workers=num_workers, progress=progress
    )
    labels = np.zeros((len(items), model.vocab_size), dtype=bool)
    for row, bag in enumerate(bags):
        labels[row, list(bag)] = True
    return Grounding.from_arrays(
        model.vocab.words, probs, labels, source=source, min_positives=min_positives
    )


def ground_held_out(
    model: JointModel,
    model_dir: str | Path,
    items: Sequence[CatalogItem],
    bags: Sequence[Sequence[int]],
    *,
    catalog: str | Path,
    device: str | torch.device = "cpu",
    num_workers: int = 2,
    progress: bool = False,
) -> Path:
    """What training does after saving the model: measure the grounding on its held-out
    ``items`` (of the training ``catalog``) and save it in ``model_dir``; returns the file."""
    from stylesearch.model.io import save_grounding

    grounding = measure_grounding(
        model, items, bags, source=f"held-out split of the training catalog {catalog}",
        device=device, num_workers=num_workers, progress=progress,
    )  # fmt: skip
    return save_grounding(model_dir, grounding)


def grounding_items(
    model: JointModel,
    meta: dict[str, Any],
    catalog_path: str | Path,
    *,
    image_roots: Sequence[str | Path] = (),
    progress: bool = False,
) -> tuple[list[CatalogItem], list[list[int]], str]:
    """The items to measure grounding on, their vocabulary ids and a description of them.

    ``meta`` is the model folder's ``config.json``. When ``catalog_path`` is the training
    catalog it records, the items are that run's held-out split (its seed, ``val_fraction`` and
    ``val_max_items``, after the same text pipeline); otherwise every item of the manifest that
    has a vocabulary word.
    """
    from stylesearch.training.setup import split_indices

    if model.vocab is None or model.text_config is None:
        raise GroundingError("the model has no vocabulary: load it with stylesearch.load_model")
    catalog = load_catalog(catalog_path, progress=progress, image_roots=image_roots)
    items = list(catalog.items)
    texts = TextPipeline(model.text_config).words_many([it.text for it in items])
    bags = [model.vocab.encode(words) for words in texts]
    extra = meta.get("extra") or {}
    trained_on = (extra.get("training") or {}).get("catalog")
    train_cfg = (extra.get("train_config") or {}).get("train") or {}
    if trained_on and Path(trained_on) == Path(catalog_path).resolve() and train_cfg:
        _, val_idx = split_indices(
            len(items), float(train_cfg.get("val_fraction", 0.1)), int(train_cfg.get("seed", 0))
        )
        keep = [int(i) for i in val_idx if bags[i]][: int(train_cfg.get("val_max_items", 2000))]
        if not keep:
            raise GroundingError(
                f"{catalog_path} is the training catalog, but the run held out no items "
                "(val_fraction 0); pass a manifest of held-out items instead"
            )
        source = f"held-out split of the training catalog {trained_on}"
    else:
        keep = [i for i, bag in enumerate(bags) if bag]
        source = f"catalog {Path(catalog_path).resolve()}"
    if not keep:
        raise GroundingError(f"{catalog_path}: no item has a word of the model's vocabulary")
    return [items[i] for i in keep], [bags[i] for i in keep], source
