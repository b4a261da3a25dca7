"""Measure each word's visual grounding (:mod:`stylesearch.model.grounding`) with a model.

:func:`measure_grounding` scores the words on given items: the attribute head's probabilities
of their images (:func:`~stylesearch.model.inference.predict_attributes`) against the
vocabulary words of their metadata. :func:`grounding_items` picks those items for
``stylesearch vocab --catalog``: the held-out split of the training catalog, the same items as
training's validation, when the manifest is the one the model was trained on; every item of any
other manifest (a held-out catalog). :func:`learn_synonyms` learns the synonym groups
(:mod:`stylesearch.model.synonyms`) from the head's probabilities of a catalog's images and
their text. :func:`ground_and_group` is the step training runs after saving the model: both, from
the head's probabilities of the training catalog's images, read once with the look's fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylesearch.catalog.manifest import CatalogItem, load_catalog
from stylesearch.errors import StylesearchError
from stylesearch.model.grounding import (
    DEFAULT_MIN_POSITIVES,
    VISUAL_THRESHOLD,
    Grounding,
    visual_mask,
)
from stylesearch.model.inference import predict_attributes
from stylesearch.model.joint import JointModel
from stylesearch.model.synonyms import (
    DEFAULT_MAX_COOCCURRENCE,
    DEFAULT_MIN_CORRELATION,
    STRONG_ANCHOR,
    Synonyms,
)
from stylesearch.text.pipeline import TextPipeline

__all__ = [
    "GroundingError",
    "LabelledItems",
    "catalog_bags",
    "ground_and_group",
    "grounding_items",
    "held_out_rows",
    "learn_synonyms",
    "measure_grounding",
    "synonym_items",
]


class GroundingError(StylesearchError, ValueError):
    """Grounding cannot be measured (no items with vocabulary words, no vocabulary)."""


@dataclass(frozen=True)
class LabelledItems:
    """Catalog items with the vocabulary words of their metadata: what grounding is measured
    on and synonyms are learned from."""

    items: list[CatalogItem]
    #: each item's metadata words (vocabulary ids)
    bags: list[list[int]]
    #: where the items come from, recorded in ``grounding.json`` / ``synonyms.json``
    source: str


def _probs_and_labels(
    model: JointModel,
    items: Sequence[CatalogItem],
    bags: Sequence[Sequence[int]],
    what: str,
    *,
    device: str | torch.device,
    num_workers: int,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The attribute head's ``(N, V)`` probabilities of ``items``' images and the ``(N, V)``
    bool labels of their metadata words ``bags``.

    Raises:
        GroundingError: no items (``what`` says which were wanted), or a model without its
            vocabulary.
    """
    labels = _labels(model, bags)
    if not items:
        raise GroundingError(f"no {what}")
    probs = predict_attributes(
        model, items, device=device, num_workers=num_workers, progress=progress
    )
    return probs, labels


def bag_labels(bags: Sequence[Sequence[int]], vocab_size: int) -> np.ndarray:
    """``(N, vocab_size)`` bool: which vocabulary words each of ``bags`` (word ids) holds."""
    labels = np.zeros((len(bags), vocab_size), dtype=bool)
    for row, bag in enumerate(bags):
        labels[row, list(bag)] = True
    return labels


def _labels(model: JointModel, bags: Sequence[Sequence[int]]) -> np.ndarray:
    """:func:`bag_labels` over ``model``'s vocabulary."""
    if model.vocab is None:
        raise GroundingError("the model has no vocabulary: load it with stylesearch.load_model")
    return bag_labels(bags, model.vocab_size)


def measure_grounding(
    model: JointModel,
    labelled: LabelledItems,
    *,
    min_positives: int = DEFAULT_MIN_POSITIVES,
    device: str | torch.device = "cpu",
    num_workers: int = 2,
    progress: bool = False,
) -> Grounding:
    """Grounding of every vocabulary word on ``labelled``'s items.

    Raises:
        GroundingError: no items, or a model without its vocabulary.
    """
    probs, labels = _probs_and_labels(
        model, labelled.items, labelled.bags,
        "held-out items with vocabulary words to measure grounding on",
        device=device, num_workers=num_workers, progress=progress,
    )  # fmt: skip
    return Grounding.from_arrays(
        model.vocab.words, probs, labels, source=labelled.source, min_positives=min_positives
    )


def grounding_items(
    model: JointModel,
    meta: dict[str, Any],
    catalog_path: str | Path,
    *,
    image_roots: Sequence[str | Path] = (),
    progress: bool = False,
) -> LabelledItems:
    """The items to measure grounding on.

    ``meta`` is the model folder's ``config.json``. When ``catalog_path`` is the training
    catalog it records, the items are that run's held-out split (its seed, ``val_fraction`` and
    ``val_max_items``, after the same text pipeline); otherwise every item of the manifest that
    has a vocabulary word.
    """
    items, bags = catalog_bags(model, catalog_path, image_roots, progress)
    keep = held_out_rows(meta, catalog_path, bags)
    if keep is None:
        keep = [i for i, bag in enumerate(bags) if bag]
        source = f"catalog {Path(catalog_path).resolve()}"
    elif not keep:
        raise GroundingError(
            f"{catalog_path} is the training catalog, but the run held out no items "
            "(val_fraction 0); pass a manifest of held-out items instead"
        )
    else:
        trained_on = meta["extra"]["training"]["catalog"]
        source = f"held-out split of the training catalog {trained_on}"
    return _kept(catalog_path, items, bags, keep, source)


def held_out_rows(
    meta: dict[str, Any], catalog_path: str | Path, bags: Sequence[Sequence[int]]
) -> list[int] | None:
    """The rows of ``catalog_path`` (whose items have the vocabulary words ``bags``) that the
    run saved with ``meta`` (its ``config.json``) held out: its seed's split at its
    ``val_fraction``, items with words, at most ``val_max_items``, as training holds them out.
    ``None`` when ``catalog_path`` is not the training catalog ``meta`` records."""
    from stylesearch.training.setup import split_indices

    extra = meta.get("extra") or {}
    trained_on = (extra.get("training") or {}).get("catalog")
    train_cfg = (extra.get("train_config") or {}).get("train") or {}
    if not (trained_on and train_cfg and Path(trained_on) == Path(catalog_path).resolve()):
        return None
    _, val_idx = split_indices(
        len(bags), float(train_cfg.get("val_fraction", 0.1)), int(train_cfg.get("seed", 0))
    )
    return [int(i) for i in val_idx if bags[i]][: int(train_cfg.get("val_max_items", 2000))]


def catalog_bags(
    model: JointModel,
    catalog_path: str | Path,
    image_roots: Sequence[str | Path],
    progress: bool,
) -> tuple[list[CatalogItem], list[list[int]]]:
    """Every item of the manifest and its metadata words (vocabulary ids)."""
    if model.vocab is None or model.text_config is None:
        raise GroundingError("the model has no vocabulary: load it with stylesearch.load_model")
    catalog = load_catalog(catalog_path, progress=progress, image_roots=image_roots)
    items = list(catalog.items)
    texts = TextPipeline(model.text_config).words_many([it.text for it in items])
    return items, [model.vocab.encode(words) for words in texts]


def _kept(
    catalog_path: str | Path,
    items: list[CatalogItem],
    bags: list[list[int]],
    keep: list[int],
    source: str,
) -> LabelledItems:
    """The ``keep`` rows of ``items`` and ``bags``; GroundingError when there are none."""
    if not keep:
        raise GroundingError(f"{catalog_path}: no item has a word of the model's vocabulary")
    return LabelledItems([items[i] for i in keep], [bags[i] for i in keep], source)


def learn_synonyms(
    model: JointModel,
    labelled: LabelledItems,
    *,
    min_correlation: float = DEFAULT_MIN_CORRELATION,
    max_cooccurrence: float = DEFAULT_MAX_COOCCURRENCE,
    grounding_threshold: float = VISUAL_THRESHOLD,
    device: str | torch.device = "cpu",
    num_workers: int = 2,
    progress: bool = False,
) -> Synonyms:
    """Synonym groups (:mod:`stylesearch.model.synonyms`) of the model's visual words, from the
    attribute head's probabilities of ``labelled``'s images and their metadata words. The
    candidates are the words visual at ``grounding_threshold`` in ``model.grounding`` (none
    without one: no groups).

    Raises:
        GroundingError: no items, or a model without its vocabulary.
    """
    probs, labels = _probs_and_labels(
        model, labelled.items, labelled.bags, "items with vocabulary words to learn synonyms from",
        device=device, num_workers=num_workers, progress=progress,
    )  # fmt: skip
    return _synonyms_of(
        model, probs, labels, source=labelled.source, min_correlation=min_correlation,
        max_cooccurrence=max_cooccurrence, grounding_threshold=grounding_threshold,
    )  # fmt: skip


def _synonyms_of(
    model: JointModel,
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    source: str,
    min_correlation: float = DEFAULT_MIN_CORRELATION,
    max_cooccurrence: float = DEFAULT_MAX_COOCCURRENCE,
    grounding_threshold: float = VISUAL_THRESHOLD,
) -> Synonyms:
    """:meth:`Synonyms.learn` on the model's ``probs`` and the metadata ``labels``: each group
    holding a word ``model.grounding`` marks visual; a word scoring below the threshold stays
    in one only beside a word scoring at least ``STRONG_ANCHOR`` (none without a grounding: no
    groups)."""
    grounding = getattr(model, "grounding", None)
    words = model.vocab.words
    none = np.zeros(model.vocab_size, dtype=bool)
    if grounding is None:  # nothing shows which words an image can show: no candidates
        candidates = visual = weak = strong = none
    else:
        candidates = ~none
        visual = visual_mask(grounding, words, grounding_threshold)
        scores = np.array([grounding.score(w) for w in words], dtype=float)  # None -> nan
        weak, strong = ~np.isnan(scores) & ~visual, scores >= STRONG_ANCHOR
    return Synonyms.learn(
        words, model.vocab.counts, probs, labels, candidates, anchors=visual, weak=weak,
        strong=strong, strong_anchor=STRONG_ANCHOR, min_correlation=min_correlation,
        max_cooccurrence=max_cooccurrence, grounding_threshold=grounding_threshold,
        source=source,
    )  # fmt: skip


def ground_and_group(
    model: JointModel,
    model_dir: str | Path,
    probs: np.ndarray,
    bags: Sequence[Sequence[int]],
    held_out: Sequence[int],
    *,
    catalog: str | Path,
) -> tuple[Path, Path]:
    """What training does after saving the model, from the attribute head's probabilities
    ``probs`` ``(N, V)`` of the training catalog's item images (their words ``bags``), over the
    items that have vocabulary words: measure each word's grounding on the ``held_out`` rows
    (the run's validation split) and save it in ``model_dir``, then learn the synonym groups of
    the words it marks visual from all of those items (rare synonyms need many) and save them.
    Returns the two files.

    Raises:
        GroundingError: no held-out row has a vocabulary word, or a model without its
            vocabulary.
    """
    from stylesearch.model.io import read_grounding, save_grounding, save_synonyms

    keep = [i for i, bag in enumerate(bags) if bag]
    at = {row: i for i, row in enumerate(keep)}
    held = [at[row] for row in held_out if row in at]
    if not held:
        raise GroundingError("no held-out items with vocabulary words to measure grounding on")
    probs, labels = probs[keep], _labels(model, [bags[i] for i in keep])
    grounding = Grounding.from_arrays(
        model.vocab.words, probs[held], labels[held],
        source=f"held-out split of the training catalog {catalog}",
    )  # fmt: skip
    grounding_file = save_grounding(model_dir, grounding)
    model.grounding = read_grounding(model_dir)  # the scores as saved, which searches read
    synonyms = _synonyms_of(model, probs, labels, source=f"training catalog {catalog}")
    return grounding_file, save_synonyms(model_dir, synonyms)


def synonym_items(
    model: JointModel,
    catalog_path: str | Path,
    *,
    image_roots: Sequence[str | Path] = (),
    progress: bool = False,
) -> LabelledItems:
    """Every item of the manifest with a vocabulary word: what ``stylesearch vocab --catalog``
    learns the synonyms from."""
    items, bags = catalog_bags(model, catalog_path, image_roots, progress)
    keep = [i for i, bag in enumerate(bags) if bag]
    return _kept(catalog_path, items, bags, keep, f"catalog {Path(catalog_path).resolve()}")
