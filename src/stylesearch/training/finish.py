"""The end of a training run: what :func:`stylesearch.training.loop.train` does once the last
epoch is done, on the main process: fit the look and the look head, save the model folder,
then measure each word's grounding and learn the synonym groups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from stylesearch.catalog.manifest import CatalogItem
from stylesearch.config import TextConfig
from stylesearch.model.io import save_model
from stylesearch.model.joint import JointModel
from stylesearch.text.vocabulary import Vocabulary
from stylesearch.training.grounding import ground_and_group
from stylesearch.training.look import fit_look, fit_look_head

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
    if model.look is not None:
        log(f"look: fitting on the {len(items)} catalog images")
        fit_look(
            model, [it.image for it in items], device=device,
            num_workers=workers, progress=progress,
        )  # fmt: skip
    if model.look_head is not None:  # on the training rows: grounding is measured on the rest
        held = set(held_out)
        rows = [i for i in range(len(items)) if i not in held]
        fitted = fit_look_head(
            model, [items[i].image for i in rows], [bags[i] for i in rows], device=device,
            num_workers=workers, progress=progress,
        )  # fmt: skip
        log(
            f"look head: fitted on {fitted} training images"
            if fitted
            else "look head: too few training images with words to fit; the linear head gives p"
        )
    save_model(model, out_dir, vocab=vocab, text_config=text_config, extra=extra)
    if held_out:  # each word's visual grounding, on the same held-out items; then synonyms
        path, groups_file = ground_and_group(
            model, out_dir, items, bags, held_out,
            catalog=catalog, device=device, num_workers=workers, progress=progress,
        )  # fmt: skip
        # out_dir may be the folder that is swapped in at the end: name the files alone
        log(f"grounding: measured on the {len(held_out)} held-out items, in {path.name}")
        log(f"synonyms: learned from the {len(items)} catalog items, in {groups_file.name}")
