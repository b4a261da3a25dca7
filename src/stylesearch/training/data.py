"""The training run's data (:mod:`stylesearch.training.loop`): the catalog, its words and
vocabulary, the items that have words, and the loaders of the training pairs and held-out items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler

from stylesearch.catalog.dataset import EpochSampler, PairDataset, collate_pairs
from stylesearch.catalog.manifest import Catalog, CatalogItem, load_catalog
from stylesearch.catalog.transforms import eval_transform, same_item_transform, train_transform
from stylesearch.config import Config, TrainConfig
from stylesearch.text.pipeline import TextPipeline
from stylesearch.text.vocabulary import Vocabulary, scaled_min_count
from stylesearch.training.checkpoint import CHECKPOINT_DIR, TrainingError
from stylesearch.training.setup import seed_worker

__all__ = [
    "batch_size_for",
    "held_out_loader",
    "items_with_words",
    "load_training_catalog",
    "pair_dataset",
    "prepare_text",
    "run_vocabulary",
    "train_loader",
    "validation_loader",
]

Log = Callable[[str], None]


def prepare_text(
    items: list[CatalogItem], config: Config, *, progress: bool, log: Log
) -> tuple[TextPipeline, list[list[str]]]:
    pipeline = TextPipeline(config.text)
    log(f"text: extracting words from {len(items)} items with {pipeline.name}")
    bags = pipeline.words_many([it.text for it in items], progress=progress)
    return pipeline, bags


def validation_loader(
    items: list[CatalogItem],
    bags: list[list[int]],
    *,
    batch_size: int,
    num_workers: int,
    image_size: int,
) -> DataLoader:
    """The held-out items in a fixed order; its workers persist across the epochs' validations."""
    return DataLoader(
        PairDataset(items, bags, eval_transform(image_size)),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_pairs,
        persistent_workers=num_workers > 0,
    )


def load_training_catalog(
    catalog_path: str | Path,
    out_dir: Path,
    *,
    main: bool,
    progress: bool,
    image_roots: Sequence[str | Path],
    log: Log,
) -> Catalog:
    """The catalog, its rejected rows written beside the run; at least 4 usable items."""
    catalog = load_catalog(catalog_path, progress=progress, image_roots=image_roots)
    log(f"catalog: {catalog.summary()}")
    if main and catalog.rejected:
        catalog.write_rejects(out_dir / "rejects.jsonl")
        log(f"catalog: rejected rows with their reasons in {out_dir / 'rejects.jsonl'}")
    if len(catalog.items) < 4:
        raise TrainingError(
            f"{catalog_path}: only {len(catalog.items)} usable items; need at least 4"
        )
    return catalog


def run_vocabulary(
    out_dir: Path,
    config: Config,
    word_bags: list[list[str]],
    train_idx: Sequence[int],
    *,
    resume: bool,
    main: bool,
) -> Vocabulary:
    """The run's vocabulary: the one saved with its checkpoints (``resume``), else built from
    the training items' words and saved there (it lives with the checkpoints until the final
    model folder is written)."""
    vocab_path = out_dir / CHECKPOINT_DIR / "vocab.json"
    if resume and vocab_path.exists():
        try:
            vocab = Vocabulary.load(vocab_path)
        except ValueError as exc:
            raise TrainingError(f"--resume: {exc}; start again with --overwrite") from None
    else:
        min_count = config.text.min_count or scaled_min_count(len(train_idx))
        vocab = Vocabulary.build(
            (word_bags[i] for i in train_idx), min_count=min_count, max_words=config.text.max_words
        )
        if main:
            vocab_path.parent.mkdir(parents=True, exist_ok=True)
            vocab.save(vocab_path)
    if len(vocab) == 0:
        raise TrainingError(
            "the vocabulary is empty: no word occurs in enough items. Lower [text] min_count "
            "or check that titles contain nouns and adjectives"
        )
    return vocab


def items_with_words(
    vocab: Vocabulary,
    word_bags: list[list[str]],
    train_idx: Sequence[int],
    val_idx: Sequence[int],
    tcfg: TrainConfig,
    log: Log,
) -> tuple[list[list[int]], list[int], list[int]]:
    """Every item's word ids, and the training and held-out items that have any."""
    bags = [vocab.encode(b) for b in word_bags]
    empty = [i for i, b in enumerate(bags) if not b]
    keep_train = [int(i) for i in train_idx if bags[i]]
    keep_val = [int(i) for i in val_idx if bags[i]][: tcfg.val_max_items]
    log(
        f"text: vocabulary of {len(vocab)} words (min_count {vocab.min_count}); "
        f"{len(empty)} items have no vocabulary word and are skipped"
    )
    return bags, keep_train, keep_val


def pair_dataset(items: list[CatalogItem], bags: list[list[int]], config: Config) -> PairDataset:
    """The training pairs: augmented images (a second view with the same-item loss) and words."""
    return PairDataset(
        items,
        bags,
        train_transform(config.model.image_size),
        use_extra_images=True,
        seed=config.train.seed,
        second_transform=same_item_transform(config.model.image_size)
        if config.loss.same_item_weight > 0
        else None,
    )


def train_loader(
    dataset: PairDataset,
    batch_size: int,
    workers: int,
    device: torch.device,
    seed: int,
    rank: int,
    world: int,
    distributed: bool,
) -> tuple[EpochSampler, DataLoader]:
    """One loader for the whole run: the epoch reaches the workers with every index, so they
    persist instead of starting again (and re-importing their state) every epoch."""
    distributed_sampler = (
        DistributedSampler(dataset, num_replicas=world, rank=rank, seed=seed, drop_last=True)
        if distributed
        else None
    )
    sampler = EpochSampler(len(dataset), seed, base=distributed_sampler)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=workers,
        collate_fn=collate_pairs,
        worker_init_fn=seed_worker,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    return sampler, loader


def held_out_loader(
    held_out: tuple[list[CatalogItem], list[list[int]]],
    batch_size: int,
    workers: int,
    image_size: int,
) -> DataLoader | None:
    """The validation loader of the ``held_out`` (items, word ids), ``None`` when there are none."""
    if not held_out[0]:
        return None
    return validation_loader(
        *held_out, batch_size=max(batch_size, 64), num_workers=workers, image_size=image_size
    )


def batch_size_for(n_train: int, tcfg: TrainConfig, world: int, log: Log) -> int:
    """The configured batch size per rank, lowered when there are too few training items."""
    if n_train < 2 * world:
        raise TrainingError("too few training items with vocabulary words; lower min_count")
    batch_size = min(tcfg.batch_size, max(2, n_train // world))
    if batch_size != tcfg.batch_size:
        log(f"train: batch size lowered to {batch_size} (only {n_train} items)")
    return batch_size
