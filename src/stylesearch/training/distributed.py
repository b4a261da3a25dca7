"""Distributed data parallel helpers (ARCHITECTURE.md "Scale-out").

Launch with ``torchrun --nproc_per_node=G -m stylesearch train ...``; every rank sees a disjoint,
equally sized slice of each global batch (``DistributedSampler`` + ``drop_last=True``).

How the match loss and its gradients work across ranks (as open_clip does, plus exact scaling):

1. Each rank computes its local features and all-gathers every rank's features with
   :func:`gather_features`. The other ranks' slices are constants; the local slice is the local
   (autograd-connected) tensor.
2. Every rank computes the FULL match loss (MBMR or triplet) over the gathered global batch, so
   its value is identical on every rank and equals the single-process loss on the concatenated
   batch (with the same reduction).
3. Feature gradients: on each rank, gradient reaches only the local slice, and the gradient of
   the global loss is the SUM over ranks of these per-slice contributions. Parameters that enter
   the loss directly, not through one rank's features (the learned temperature), get the FULL
   gradient on every rank.
4. DistributedDataParallel AVERAGES gradients over ranks (divides by world_size). To turn that
   average into the sum for the feature path while leaving the temperature's full gradient alone,
   :func:`gather_features` multiplies the gradient flowing back into the local slice by
   world_size (its forward value is untouched). Scaling the whole match loss by world_size
   instead would also multiply the temperature's gradient by world_size, which is wrong, so the
   match loss itself is never scaled. Net effect: after DDP's average, every parameter's gradient
   equals the single-process gradient on the concatenated batch (tested in
   ``tests/integration/test_distributed.py``).
5. The attribute loss is local: with ``reduction="mean"`` DDP's average of the equal-sized local
   means is the global mean and needs no scaling; with ``reduction="sum"`` the average of local
   sums is the global sum / world_size, so it is scaled by world_size
   (:func:`attribute_loss_scale`). :func:`ddp_loss` applies both factors: call ``backward()`` on
   it.

In one process (no torchrun) every helper is the identity / a no-op and :func:`ddp_loss` equals
``losses["total"]``.

Caveats: BatchNorm layers in train mode normalise with *local* batch statistics, so DDP training
is not bit-identical to one process on the global batch (use ``SyncBatchNorm`` for that). Every
parameter that requires grad must receive one: with the triplet loss the temperature is unused, so
freeze it (``model.log_temperature.requires_grad_(False)``) or pass
``find_unused_parameters=True`` to DDP.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from stylesearch.config import LossConfig


def _initialised() -> bool:
    return dist.is_available() and dist.is_initialized()


def dist_info() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)``.

    ``(0, 1, 0)`` while torch.distributed is not initialised; otherwise rank and world size come
    from the process group and local_rank from torchrun's ``LOCAL_RANK`` environment variable.
    """
    if not _initialised():
        return 0, 1, 0
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed(backend: str | None = None) -> bool:
    """Initialise the default process group when launched by torchrun with ``WORLD_SIZE > 1``.

    Args:
        backend: "nccl" or "gloo"; ``None`` picks nccl when CUDA is available, else gloo. With
            nccl the process's CUDA device is set to ``cuda:LOCAL_RANK``.

    Returns:
        whether this process is part of a multi-process run (also True if the group was
        already initialised).
    """
    if _initialised():
        return True
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend, init_method="env://")
    return True


def destroy_distributed() -> None:
    """Tear the process group down (no-op when not initialised)."""
    if _initialised():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """Whether this is rank 0 (always true in one process): the rank that logs and saves."""
    return dist_info()[0] == 0


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if _initialised() and dist.get_world_size() > 1:
        dist.barrier()


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(value: float) -> float:
    """The mean of a Python number over ranks (the value itself in one process); for logging."""
    if not _initialised() or dist.get_world_size() == 1:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / dist.get_world_size()


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by ``scale`` in backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None


def gather_features(image_features: Tensor, text_features: Tensor) -> tuple[Tensor, Tensor]:
    """All-gather ``(B, D)`` image and text features into ``(B * world_size, D)`` each.

    Rows are in rank order (rank r's batch at rows ``r*B:(r+1)*B``). The other ranks' slices are
    constants; this rank's slice has the local tensor's value and passes gradient back to it
    (and only to it) multiplied by world_size, which DDP's gradient average then cancels (see
    the module docstring). Every rank must pass the same B. Identity in one process.
    """
    if not _initialised() or dist.get_world_size() == 1:
        return image_features, text_features
    rank, world_size = dist.get_rank(), dist.get_world_size()
    out = []
    for local in (image_features, text_features):
        local = local.contiguous()
        parts = [torch.zeros_like(local) for _ in range(world_size)]
        dist.all_gather(parts, local.detach())
        parts[rank] = _ScaleGradient.apply(local, float(world_size))
        out.append(torch.cat(parts, dim=0))
    return out[0], out[1]


def attribute_loss_scale(reduction: str) -> int:
    """Factor for the local attribute loss before ``backward()`` under DDP.

    1 for ``reduction="mean"`` (DDP's average of equal-sized local means is the global mean);
    world_size for ``"sum"`` (DDP's average of local sums is the global sum / world_size).
    """
    if reduction == "mean":
        return 1
    if reduction == "sum":
        return dist_info()[1]
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def ddp_loss(losses: Mapping[str, Tensor], config: LossConfig) -> Tensor:
    """The scalar to call ``backward()`` on under DDP, from :func:`compute_losses` terms.

    ``losses[config.name]
    + config.attribute_weight * attribute_loss_scale(config.reduction) * losses["attribute"]``
    (use it with :func:`gather_features` for the match loss). In one process this equals
    ``losses["total"]``. Log ``losses[...]``, not this value.
    """
    match = losses[config.name]
    attribute = losses["attribute"] * attribute_loss_scale(config.reduction)
    return match + config.attribute_weight * attribute
