"""What a training run sets up before its first step: the seeds, the train /
validation split, the DataLoader workers, AdamW's parameter groups and the learning-rate
schedule. Shared by the joint model's loop and the visual judge's trainer."""

from __future__ import annotations

import math
import os
import random
from typing import Any

import numpy as np
import torch

__all__ = [
    "lr_at",
    "num_workers",
    "param_groups",
    "seed_everything",
    "seed_worker",
    "split_indices",
]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into (train, val) index arrays, both sorted."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 20:
        n_val = max(n_val, 10)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def lr_at(step: int, total: int, cfg_lr: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return cfg_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return cfg_lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on weight matrices and kernels only, never on biases, norm
    parameters or the temperature (decay would pull tau towards 1)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim < 2 or "temperature" in name:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def num_workers(cfg_value: int | None) -> int:
    """The configured DataLoader worker count, or min(4, CPU cores) when unset."""
    if cfg_value is not None:
        return cfg_value
    return min(4, os.cpu_count() or 1)


def seed_worker(worker_id: int) -> None:
    """A DataLoader worker's numpy and random seeds, from its torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
