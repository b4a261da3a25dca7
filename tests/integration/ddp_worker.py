"""Worker for test_distributed.py: one training step's losses and gradients, written to a file.

Run plainly (``python ddp_worker.py OUT_DIR``) it is the single-process reference on the whole
global batch of 8 and writes ``OUT_DIR/single.safetensors``. Run under
``torchrun --nproc_per_node=2`` (gloo, CPU) each rank takes its half of the same batch, wraps the
model in DistributedDataParallel, gathers features across ranks, backpropagates
``ddp_loss`` (the match loss scaled by world_size) and writes ``OUT_DIR/rank{r}.safetensors``.

The model is a tiny deterministic stand-in for JointModel (a two-layer MLP image tower, the real
TextTower, a linear attribute head, a learned log temperature) with no BatchNorm, so the
distributed step must reproduce the single-process step exactly.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from stylesearch.config import LossConfig
from stylesearch.losses import attribute_pos_weight, compute_losses
from stylesearch.model.towers import TextTower
from stylesearch.training import distributed as dist_utils

GLOBAL_BATCH = 8
VOCAB = 6
DIM = 5

CASES: dict[str, LossConfig] = {
    "mbmr_mean": LossConfig(name="mbmr", reduction="mean", attribute_weight=0.5),
    "mbmr_sum": LossConfig(name="mbmr", reduction="sum", attribute_weighting="none"),
    "triplet_hardest_mean": LossConfig(
        name="triplet", negatives="hardest", margin=0.5, reduction="mean"
    ),
    "triplet_semihard_sum": LossConfig(
        name="triplet",
        negatives="semi-hard",
        margin=0.5,
        reduction="sum",
        attribute_weighting="none",
    ),
}


class TinyJoint(nn.Module):
    """JointModel's interface on (B, 3, 4, 4) images, without BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.image_tower = nn.Sequential(
            nn.Flatten(), nn.Linear(48, 12), nn.Tanh(), nn.Linear(12, DIM)
        )
        self.text_tower = TextTower(VOCAB, DIM, init_std=0.5)
        self.attribute_head = nn.Linear(DIM, VOCAB)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(0.2)))

    def forward(self, images: Tensor, words: Tensor) -> dict[str, Tensor]:
        image_features = self.image_tower(images)
        return {
            "image_features": image_features,
            "text_features": self.text_tower(words),
            "attribute_logits": self.attribute_head(image_features),
            "temperature": self.log_temperature.exp(),
        }


def global_batch() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    images = torch.randn(GLOBAL_BATCH, 3, 4, 4, generator=g)
    words = torch.tensor(
        [[0, 1, -1], [2, -1, -1], [3, 4, 5], [1, -1, -1], [5, 0, -1], [4, -1, -1], [2, 3, -1],
         [0, -1, -1]]
    )  # fmt: skip
    return images, words


def run_case(name: str, cfg: LossConfig, distributed: bool) -> dict[str, Tensor]:
    rank, world, _ = dist_utils.dist_info()
    images, words = global_batch()
    per_rank = GLOBAL_BATCH // world
    local = slice(rank * per_rank, (rank + 1) * per_rank)
    images, words = images[local], words[local]

    torch.manual_seed(0)
    model = TinyJoint()
    if cfg.name == "triplet":  # the temperature is unused: freeze it, as the training loop must
        model.log_temperature.requires_grad_(False)
    net: nn.Module = nn.parallel.DistributedDataParallel(model) if distributed else model
    pos_weight = None
    if cfg.attribute_weighting == "pos_weight":
        pos_weight = attribute_pos_weight([1, 2, 3, 4, 5, 6], 20)

    outputs = net(images, words)
    gathered = None
    if distributed:
        gathered = dist_utils.gather_features(outputs["image_features"], outputs["text_features"])
    losses = compute_losses(outputs, words, cfg, pos_weight=pos_weight, gathered=gathered)
    dist_utils.ddp_loss(losses, cfg).backward()

    attribute = dist_utils.all_reduce_mean(float(losses["attribute"]))
    if cfg.reduction == "sum":
        attribute *= world  # the global sum of the local sums
    record = {
        f"{name}/match": losses[cfg.name].detach().clone(),
        f"{name}/attribute": torch.tensor(attribute, dtype=torch.float64),
        f"{name}/gathered_image": (
            gathered[0] if gathered is not None else outputs["image_features"]
        )
        .detach()
        .clone(),
    }
    for param_name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"{name}: no gradient for {param_name}"
            record[f"{name}/grad/{param_name}"] = param.grad.detach().clone()
    return record


def main(out_dir: str) -> None:
    distributed = dist_utils.init_distributed(backend="gloo")
    rank, world, _ = dist_utils.dist_info()
    assert world == (2 if distributed else 1), (distributed, world)
    torch.set_num_threads(1)
    record: dict[str, Tensor] = {}
    for name, cfg in CASES.items():
        record.update(run_case(name, cfg, distributed))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    filename = f"rank{rank}.safetensors" if distributed else "single.safetensors"
    save_file({k: v.contiguous() for k, v in record.items()}, str(out / filename))
    dist_utils.barrier()
    dist_utils.destroy_distributed()


if __name__ == "__main__":
    main(sys.argv[1])
