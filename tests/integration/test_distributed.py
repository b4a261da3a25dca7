"""DDP with all-gathered negatives equals one process on the concatenated batch.

``ddp_worker.py`` runs one step under ``torchrun --nproc_per_node=2 --standalone`` (gloo, CPU,
127.0.0.1) and once as a plain process on the whole batch; the match loss must be identical on
every rank and equal to the single-process loss, and the (DDP-averaged) gradients must equal the
single-process gradients.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stylesearch.training import distributed as dist_utils

WORKER = Path(__file__).with_name("ddp_worker.py")
TIMEOUT_S = 120
#: two local CPU processes under torchrun (gloo on 127.0.0.1)
TORCHRUN_2 = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}
    }
    env.update(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", CUDA_VISIBLE_DEVICES="")
    return env


def _run(args: list[str], deadline: float) -> None:
    proc = subprocess.run(
        args,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=max(1.0, deadline - time.monotonic()),
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


@pytest.mark.slow
def test_ddp_step_matches_single_process(tmp_path):
    deadline = time.monotonic() + TIMEOUT_S
    _run([sys.executable, str(WORKER), str(tmp_path / "single")], deadline)
    _run(
        [
            *TORCHRUN_2,
            str(WORKER),
            str(tmp_path / "ddp"),
        ],
        deadline,
    )
    single = load_file(str(tmp_path / "single" / "single.safetensors"))
    ranks = [load_file(str(tmp_path / "ddp" / f"rank{r}.safetensors")) for r in (0, 1)]
    assert set(ranks[0]) == set(ranks[1]) == set(single)

    cases = sorted({key.split("/")[0] for key in single})
    assert cases == [
        "mbmr_mean",
        "mbmr_sum",
        "triplet_hardest_mean",
        "triplet_semihard_sum",
    ]
    grads = [k for k in single if "/grad/" in k]
    assert any(k.endswith("log_temperature") for k in grads)  # learned for MBMR
    assert any("image_tower" in k for k in grads) and any("text_tower" in k for k in grads)
    for key, expected in single.items():
        for rank, result in enumerate(ranks):
            got = result[key]
            # the same full-batch match loss on every rank; the gathered features in rank order;
            # the mean (sum) of the local attribute losses; DDP-averaged gradients
            assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6), (
                f"rank {rank} {key}: {got} != {expected}"
            )
        if key.endswith("/match"):
            assert expected.item() > 0


def test_single_process_helpers_are_identities():
    assert dist_utils.dist_info() == (0, 1, 0)
    assert dist_utils.init_distributed() is False or dist_utils.dist_info()[1] > 1
    assert dist_utils.is_main_process()
    assert dist_utils.attribute_loss_scale("sum") == 1
    assert dist_utils.all_reduce_mean(2.5) == 2.5
    dist_utils.barrier()
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    ga, gb = dist_utils.gather_features(a, b)
    assert ga is a and gb is b
    from stylesearch.config import LossConfig

    losses = {"mbmr": torch.tensor(2.0), "attribute": torch.tensor(4.0)}
    assert dist_utils.ddp_loss(losses, LossConfig(attribute_weight=0.5)).item() == 4.0


@pytest.mark.slow
def test_train_command_runs_under_torchrun(tmp_path):
    """The real training loop under two gloo processes: one model folder, metrics per epoch."""
    from stylesearch.catalog.synthetic import make_shapes_catalog

    manifest = make_shapes_catalog(tmp_path / "shapes", 64, seed=0, image_size=32)
    config = tmp_path / "tiny.toml"
    config.write_text(
        "[text]\nmin_count = 2\n[model]\nimage_size = 32\nembed_dim = 16\n"
        "[train]\nepochs = 2\nbatch_size = 8\nnum_workers = 0\nval_fraction = 0.2\n"
    )
    out = tmp_path / "model"
    deadline = time.monotonic() + TIMEOUT_S
    _run(
        [
            *TORCHRUN_2,
            "-m",
            "stylesearch",
            "train",
            "--catalog",
            str(manifest),
            "--out",
            str(out),
            "--config",
            str(config),
            "--device",
            "cpu",
            "--quiet",
        ],
        deadline,
    )
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # written by rank 0 only
    import stylesearch

    model = stylesearch.load_model(out)
    assert model.vocab is not None and len(model.vocab) > 0
