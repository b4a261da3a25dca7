"""Training throughput: the full stylesearch step (data pipeline included) vs a bare ResNet-18 step.

Measures, in one process and on the same device:

1. **full**: images/s of ``stylesearch`` training steps: PNG decoding + augmentation in
   DataLoader workers, JointModel (ResNet-18 + projection, bag-of-words text tower, attribute
   head) forward, MBMR + attribute loss, backward, AdamW step;
2. **bare**: images/s of a torchvision ResNet-18 classification training step on random
   tensors already in memory (no data loading, no text tower), same batch size and image size.

``full / bare`` close to 1 means the data pipeline keeps the model fed. Peak resident memory of
the process (and of its DataLoader workers) is reported too.

    .venv/bin/python benchmarks/train_throughput.py              # 64 px, batch 64, CPU
    .venv/bin/python benchmarks/train_throughput.py --device cuda --steps 50
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.data import DataLoader

import _common
from stylesearch.catalog.dataset import PairDataset, collate_pairs
from stylesearch.catalog.manifest import load_catalog
from stylesearch.catalog.synthetic import make_shapes_catalog
from stylesearch.catalog.transforms import train_transform
from stylesearch.config import LossConfig, ModelConfig, TextConfig
from stylesearch.losses import attribute_pos_weight, compute_losses
from stylesearch.model.joint import JointModel
from stylesearch.text.pipeline import TextPipeline
from stylesearch.text.vocabulary import Vocabulary


def _peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def bench_full(
    manifest: Path,
    *,
    size: int,
    batch: int,
    steps: int,
    warmup: int,
    workers: int,
    device: torch.device,
    backbone: str = "resnet18",
) -> float:
    cat = load_catalog(manifest)
    items = list(cat.items)
    pipeline = TextPipeline(TextConfig())
    words = pipeline.words_many([it.text for it in items])
    vocab = Vocabulary.build(words, min_count=2)
    bags = [vocab.encode(w) for w in words]
    ds = PairDataset(items, bags, train_transform(size), use_extra_images=True)
    loader = DataLoader(
        ds,
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        collate_fn=collate_pairs,
        persistent_workers=workers > 0,
    )
    model_cfg = ModelConfig(image_size=size, backbone=backbone)
    model = JointModel(model_cfg, len(vocab)).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_cfg = LossConfig()
    pos_weight = attribute_pos_weight(vocab.counts, vocab.n_items).to(device)
    done, t0 = 0, 0.0
    while done < warmup + steps:
        for b in loader:
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            images, w = b["images"].to(device), b["words"].to(device)
            terms = compute_losses(model(images, w), w, loss_cfg, pos_weight=pos_weight)
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            done += 1
            if done >= warmup + steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def bench_bare(*, size: int, batch: int, steps: int, warmup: int, device: torch.device) -> float:
    net = torchvision.models.resnet18(weights=None).to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__)
    ap.add_argument("--size", type=int, default=64, help="image size in pixels")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers (full pipeline)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--backbone",
        default="resnet18",
        choices=["resnet18", "efficientnet_lite0"],
        help="image tower of the full stylesearch step (the bare step is ResNet-18)",
    )
    ap.add_argument("--items", type=int, default=1024, help="items in the generated catalog")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_shapes_catalog(
            Path(tmp) / "shapes", args.items, seed=0, image_size=args.size
        )
        bare = bench_bare(
            size=args.size,
            batch=args.batch_size,
            steps=args.steps,
            warmup=args.warmup,
            device=device,
        )
        full = bench_full(
            manifest,
            size=args.size,
            batch=args.batch_size,
            steps=args.steps,
            warmup=args.warmup,
            workers=args.workers,
            device=device,
            backbone=args.backbone,
        )
    own, children = _peak_rss_mb()
    result = {
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "backbone": args.backbone,
        "image_size": args.size,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "bare_resnet18_images_per_s": round(bare, 1),
        "stylesearch_train_images_per_s": round(full, 1),
        "ratio_full_over_bare": round(full / bare, 3),
        "peak_rss_main_mb": round(own, 1),
        "peak_rss_largest_worker_mb": round(children, 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
