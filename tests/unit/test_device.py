"""``--device`` names, read once for training and encoding (``stylesearch.model.device``)."""

from __future__ import annotations

import pytest
import torch

from stylesearch.config import DEFAULT_DEVICE
from stylesearch.model.device import DeviceError, resolve_device


def test_auto_is_the_cpu_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert DEFAULT_DEVICE == "auto"
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_auto_and_cuda_are_this_ranks_gpu_when_there_is_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda:0")
    assert resolve_device("cuda", local_rank=3) == torch.device("cuda:3")
    assert resolve_device("cuda:1", local_rank=3) == torch.device("cuda:1")


def test_a_torch_device_is_kept_as_it_is() -> None:
    device = torch.device("cpu")
    assert resolve_device(device) is device


def test_a_gpu_where_there_is_none_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:1"):
        with pytest.raises(DeviceError, match=f"--device {name}: no CUDA GPU .* use --device cpu"):
            resolve_device(name)


def test_an_unknown_name_is_a_user_error() -> None:
    with pytest.raises(DeviceError, match="'tpu' is not a device torch knows"):
        resolve_device("tpu")
