"""The end of a training run: what :func:`stylesearch.training.loop.train` does once the last
epoch is done, on the main process: fit the look and the look head, save the model folder,
then measure each word's grounding and learn the synonym groups, all from one pass over the
catalog's images (after the look's shading floor, read from a sample)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from stylesearch.catalog.manifest import CatalogItem
from stylesearch.config import TextConfig
from stylesearch.model.inference import predict_attributes_from
from stylesearch.model.io import save_model
from stylesearch.model.joint import JointModel
from stylesearch.text.vocabulary import Vocabulary
from stylesearch.training.grounding import ground_and_group
from stylesearch.training.look import fit_look_floor, fit_look_head, read_images

__all__ = ["finish_run"]


def finish_run(
    model: JointModel,
    out_dir: Path,
    items: list[CatalogItem],
    bags: list[list[int]],
    held_out: list[int],
    *,
    vocab: Vocabulary,
    text_config: TextConfig | None,
    extra: dict[str, Any],
    catalog: str | Path,
    device: torch.device,
    workers: int,
    progress: bool,
    log: Callable[[str], None],
) -> None:
    """Fit the look, then the look head on the rows not ``held_out`` (if the model has them),
    save the model folder (``text_config`` and ``extra`` recorded), then measure each word's
    grounding on the ``held_out`` rows of ``items`` (the training catalog ``catalog``) and learn
    the synonym groups from every catalog item (``items`` with their word ids ``bags``)."""
    paths = [it.image for it in items]
    features = grids = None
    if model.look is not None or model.look_head is not None or held_out:
        opts = dict(device=device, num_workers=workers, progress=progress)
        fit_look_floor(model, paths, **opts)
        log(
            f"reading the {len(items)} catalog images once, for what is fitted and measured on them"
        )
        features, grids = read_images(model, paths, **opts)
    if model.look is not None:
        model.look.fit(grids)
    if model.look_head is not None:  # on the training rows: grounding is measured on the rest
        held = set(held_out)
        rows = [i for i in range(len(items)) if i not in held]
        fitted = fit_look_head(
            model, features[rows], None if grids is None else grids[rows], [bags[i] for i in rows]
        )
        log(
            f"look head: fitted on {fitted} training images"
            if fitted
            else "look head: too few training images with words to fit; the linear head gives p"
        )
    save_model(model, out_dir, vocab=vocab, text_config=text_config, extra=extra)
    if held_out:  # each word's visual grounding, on the same held-out items; then synonyms
        probs = predict_attributes_from(model, features, grids)
        path, groups_file = ground_and_group(model, out_dir, probs, bags, held_out, catalog=catalog)
        # out_dir may be the folder that is swapped in at the end: name the files alone
        log(f"grounding: measured on the {len(held_out)} held-out items, in {path.name}")
        log(f"synonyms: learned from the {len(items)} catalog items, in {groups_file.name}")
