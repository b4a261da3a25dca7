"""Training checkpoints without pickles: tensors in safetensors, everything else in JSON.

A checkpoint is a folder ``MODEL_DIR/checkpoints/epoch-NNNN/`` with

- ``model.safetensors``: the model's state dict;
- ``optimizer.safetensors``: the optimizer's per-parameter state tensors, flattened to keys
  ``"<param index>/<name>"``;
- ``state.json``: epoch, global step, optimizer param groups and non-tensor state, the
  gradient scaler's state, and the resolved training config.

It is written to a temporary folder and renamed into place, so a crash mid-write never leaves a
checkpoint that looks complete.

It also decides which folder a run writes to (:func:`run_folder`). ``train --overwrite`` runs in
``DIR/.NAME.overwrite`` beside ``DIR/NAME`` and swaps the whole folder in once its model is
saved, so the old model and its checkpoints stay as they were until then.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from stylesearch.errors import StylesearchError
from stylesearch.folders import FolderSwap
from stylesearch.model.io import model_is_complete

CHECKPOINT_DIR = "checkpoints"


class TrainingError(StylesearchError, RuntimeError):
    """A training run that cannot start or continue; the message says what to do."""


@dataclass
class CheckpointState:
    """What :func:`load_checkpoint` returns besides restoring model and optimizer in place."""

    epoch: int
    step: int
    config: dict[str, Any]
    scaler: dict[str, Any] | None


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for pid, pstate in state_dict["state"].items():
        for name, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}/{name}"] = value.detach().cpu().contiguous()
            else:
                other.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "other": other}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        pid, name = key.split("/", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, extra in meta["other"].items():
        state.setdefault(int(pid), {}).update(extra)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def checkpoint_path(model_dir: Path, epoch: int) -> Path:
    return Path(model_dir) / CHECKPOINT_DIR / f"epoch-{epoch:04d}"


def save_checkpoint(
    model_dir: Path,
    *,
    epoch: int,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    config: dict[str, Any],
    scaler: torch.amp.GradScaler | None = None,
    keep: int = 2,
) -> Path:
    """Write the checkpoint of a finished epoch (1-based) and keep only the newest ``keep``."""
    final = checkpoint_path(model_dir, epoch)
    final.parent.mkdir(parents=True, exist_ok=True)
    # the run holds its model folder's writer lock; a checkpoint can be written again
    with FolderSwap(final, durable=False) as folder:
        tmp = folder.tmp
        model_state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(model_state, str(tmp / "model.safetensors"))
        opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        state = {
            "format_version": 1,
            "epoch": epoch,
            "step": step,
            "optimizer": opt_meta,
            "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
            "config": config,
        }
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        folder.commit()  # the old one is set aside first: never a half-deleted checkpoint
    for old in list_checkpoints(model_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(model_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders of interrupted writes are ignored)."""
    root = Path(model_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    files = ("state.json", "model.safetensors", "optimizer.safetensors")
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and p.name.startswith("epoch-") and all((p / f).is_file() for f in files)
    ]
    return sorted(found, key=lambda p: p.name)


def load_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    device: torch.device | str = "cpu",
) -> CheckpointState:
    """Restore model (and optimizer) from a checkpoint folder; returns epoch, step and config."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text())
    model.load_state_dict(load_file(str(path / "model.safetensors"), device=str(device)))
    if optimizer is not None:
        tensors = load_file(str(path / "optimizer.safetensors"), device=str(device))
        optimizer.load_state_dict(_unflatten_optimizer(tensors, state["optimizer"]))
    return CheckpointState(
        epoch=int(state["epoch"]),
        step=int(state["step"]),
        config=state["config"],
        scaler=state.get("scaler"),
    )


def overwrite_folder(out_dir: Path) -> Path:
    """``DIR/.NAME.overwrite``: where ``train --overwrite`` of ``DIR/NAME`` runs."""
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.overwrite"


def run_folder(out_dir: Path, *, resume: bool, overwrite: bool) -> Path:
    """The folder a run writes its checkpoints, metrics and model to; it only reads.

    ``out_dir`` itself, except for ``overwrite`` without ``resume`` (a new run in
    :func:`overwrite_folder`) and for ``resume`` when an interrupted ``--overwrite`` run left a
    checkpoint there (that run continues). Without either flag, ``out_dir`` must not hold a
    model or a run already.

    Raises:
        TrainingError: without ``resume`` or ``overwrite``, ``out_dir`` holds a model (complete
            or not) or checkpoints, or an interrupted ``--overwrite`` run left checkpoints.
    """
    out_dir = Path(out_dir)
    work = overwrite_folder(out_dir)
    if overwrite and not resume:
        return work
    if resume:
        return work if list_checkpoints(work) else out_dir
    if model_is_complete(out_dir):
        raise TrainingError(
            f"{out_dir} already holds a trained model; pass --overwrite to replace it, "
            "--resume to continue its last run, or choose another --out"
        )
    if (out_dir / "model.safetensors").exists() or (out_dir / "config.json").exists():
        raise TrainingError(
            f"{out_dir} holds an incomplete model (its files' checksums disagree: a save was "
            "interrupted); pass --resume to save it again from its last checkpoint, --overwrite "
            "to train it again, or choose another --out"
        )
    for folder in (out_dir, work):
        if list_checkpoints(folder):
            raise TrainingError(
                f"{folder} holds checkpoints of an unfinished run; pass --resume to continue it "
                "or --overwrite to start again"
            )
    return out_dir
