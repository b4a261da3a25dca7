"""How long each epoch waits for its first training batch: a DataLoader made per epoch (its
workers start again every epoch) against the one persistent loader ``stylesearch train`` uses.

Only data loading is timed (no model), over whole epochs of the first ``--items`` items of a
catalog (an epoch left early would make a persistent loader drain its workers first):

    .venv/bin/python benchmarks/loader_startup.py --catalog runs/demo/catalog/train/manifest.jsonl
"""

from __future__ import annotations

import time
from pathlib import Path

from torch.utils.data import DataLoader

import _common
from stylesearch.catalog.dataset import EpochSampler, PairDataset, collate_pairs
from stylesearch.catalog.manifest import load_catalog
from stylesearch.catalog.transforms import train_transform


def first_batches(loader: DataLoader, sampler: EpochSampler, epochs: int) -> list:
    """Per epoch: seconds to the first batch, and to the end of the epoch."""
    out = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        first = None
        for _ in loader:
            first = first if first is not None else time.perf_counter() - t0
        out.append((first, time.perf_counter() - t0))
    return out


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--items", type=int, default=1280)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()

    items = list(load_catalog(args.catalog, validate_images=False).items)[: args.items]
    dataset = PairDataset(
        items, [[0]] * len(items), train_transform(args.image_size), use_extra_images=True
    )
    for persistent in (False, True):
        sampler = EpochSampler(len(dataset), seed=0)
        loader = DataLoader(
            dataset, batch_size=args.batch_size, sampler=sampler, drop_last=True,
            num_workers=args.workers, collate_fn=collate_pairs, persistent_workers=persistent,
        )  # fmt: skip
        times = first_batches(loader, sampler, args.epochs)
        print(
            f"persistent_workers={persistent}: first batch "
            f"{', '.join(f'{t[0]:.2f}' for t in times)} s, whole epoch "
            f"{', '.join(f'{t[1]:.2f}' for t in times)} s (epochs 1-{args.epochs}, "
            f"{len(dataset)} items)"
        )


if __name__ == "__main__":
    main()
