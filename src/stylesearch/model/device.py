"""Where a model runs: the one reading of a ``--device`` name, for training and encoding alike."""

from __future__ import annotations

import torch

from stylesearch.errors import StylesearchError

__all__ = ["DEVICE_HELP", "DeviceError", "resolve_device"]

DEVICE_HELP = '"auto" (a GPU when there is one, else the CPU), "cpu", "cuda", "cuda:N".'


class DeviceError(StylesearchError, RuntimeError):
    """A device name torch does not know, or a GPU asked for where there is none."""


def resolve_device(name: str | torch.device, local_rank: int = 0) -> torch.device:
    """The torch device a name stands for.

    ``"auto"`` is CUDA when available, else the CPU; ``"cuda"`` is this rank's GPU
    (``local_rank``); a ``torch.device`` is returned as it is.

    Raises:
        DeviceError: a GPU is asked for and none is available, or torch does not know the name.
    """
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"--device {name!r} is not a device torch knows: {exc}") from None
