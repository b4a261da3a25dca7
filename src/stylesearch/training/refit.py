"""Fitting a trained model's look again (``stylesearch refit-look``), without training it again.

The joint model's training never reads the look: ``stylesearch train`` fits the look, then the
look head, after the last epoch, and measures each word's grounding and the synonym groups on
the head's ``p`` after that (:func:`stylesearch.training.finish.finish_run`). So when a new
stylesearch reads the look at another version (``LOOK_VERSIONS``), or a model should read it
another way (its ``kind``), those last steps alone bring the model folder up to date: the same
weights, and the look, the look head, the grounding and the synonyms fitted as a training run
that ended now would fit them. The folder is rewritten beside itself and swapped in whole, so
an interrupted refit leaves the model as it was.
"""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from stylesearch.config import LOOK_KINDS
from stylesearch.folders import FolderSwap, share_file
from stylesearch.model.device import resolve_device
from stylesearch.model.io import (
    GROUNDING_FILE,
    SYNONYMS_FILE,
    StaleLookWarning,
    load_model,
    read_model_config,
)
from stylesearch.model.joint import JointModel
from stylesearch.training.checkpoint import TrainingError
from stylesearch.training.finish import finish_run
from stylesearch.training.grounding import catalog_bags, held_out_rows
from stylesearch.training.setup import num_workers

__all__ = ["refit_look"]


def refit_look(
    model_dir: str | Path,
    *,
    catalog: str | Path | None = None,
    kind: str | None = None,
    image_roots: Sequence[str | Path] = (),
    device: str | torch.device = "cpu",
    workers: int | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> JointModel:
    """Fit the look of the model in ``model_dir`` again on its training catalog (``catalog``,
    the one its ``config.json`` records when not given), read as ``kind`` (the model's own
    when not given), with the look head, the grounding and the synonyms after it; the folder
    is replaced whole. Returns the refitted model.

    Raises:
        TrainingError: the model has no look, or no training catalog is recorded or given.
        ValueError: an unknown ``kind``.
    """
    model_dir = Path(model_dir)
    meta = read_model_config(model_dir)
    extra = dict(meta.get("extra") or {})
    recorded = (extra.get("training") or {}).get("catalog")
    catalog = catalog if catalog is not None else recorded
    if catalog is None:
        raise TrainingError(
            f"{model_dir} does not record its training catalog; pass it (--catalog MANIFEST)"
        )
    if not Path(catalog).is_file():
        said = "the training catalog it records" if catalog == recorded else "the catalog"
        raise TrainingError(
            f"{said}, {catalog}, is not there; pass the manifest (--catalog MANIFEST)"
        )
    if kind is not None and kind not in LOOK_KINDS:
        raise ValueError(f"unknown look kind {kind!r}; choose one of {LOOK_KINDS}")
    device = resolve_device(device)
    with warnings.catch_warnings():  # the stale look it warns of is what is refitted here
        warnings.simplefilter("ignore", StaleLookWarning)
        model = load_model(model_dir, device=device)
    if model.look is None:
        raise TrainingError(f"{model_dir}: the model has no look (look_dim 0) to fit")
    if kind is not None and kind != model.look.kind:
        model = _with_look_kind(model, kind).to(device)
    items, bags = catalog_bags(model, catalog, image_roots, progress)
    held_out = held_out_rows(meta, catalog, bags) or []
    if not held_out:
        log(
            f"refit-look: the model records no held-out split of {catalog}, so each word's "
            "grounding and the synonym groups are not measured again (the old ones are dropped)"
        )
    log(f"refit-look: {model.look.kind!r} look of {model_dir}, on {len(items)} images of {catalog}")
    with FolderSwap(model_dir) as folder:
        _copy_folder(model_dir, folder.tmp)
        finish_run(
            model, folder.tmp, items, bags, held_out, vocab=model.vocab,
            text_config=model.text_config, extra=extra, catalog=Path(catalog).resolve(),
            device=device, workers=num_workers(workers), progress=progress, log=log,
        )  # fmt: skip
        folder.commit()
    log(f"refit-look: saved {model_dir}")
    return model


def _copy_folder(model_dir: Path, tmp: Path) -> None:
    """Copy the model folder's files into ``tmp``, but the grounding and the synonyms (fitted
    again from the new ``p``); its subfolders (the training checkpoints, which the refit never
    writes) are hard-linked where the file system allows."""
    for entry in model_dir.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, tmp / entry.name, copy_function=share_file)
        elif entry.name not in (GROUNDING_FILE, SYNONYMS_FILE):
            shutil.copy2(entry, tmp / entry.name)


def _with_look_kind(model: JointModel, kind: str) -> JointModel:
    """A copy of ``model`` whose look reads images as ``kind`` (unfitted), other weights kept."""
    config = dataclasses.replace(model.config, look_kind=kind)
    new = JointModel(config, model.vocab_size, load_backbone_weights=False)
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith("look.")}
    missing, unexpected = new.load_state_dict(kept, strict=False)
    if unexpected or any(not k.startswith("look.") for k in missing):
        raise TrainingError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    for name in ("vocab", "text_config", "grounding", "synonyms"):
        setattr(new, name, getattr(model, name))
    return new.eval()
