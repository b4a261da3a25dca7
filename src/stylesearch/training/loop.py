"""The training loop: catalog -> vocabulary -> JointModel trained with MBMR + attribute loss.

``train()`` is what ``stylesearch train`` runs. It works on the CPU, on one GPU (mixed
precision) and under ``torchrun`` (DDP; the match loss sees the negatives of every rank, see
:mod:`stylesearch.training.distributed`). Per epoch it writes one line to ``metrics.jsonl`` and a
checkpoint; ``resume=True`` continues from the newest checkpoint. The finished model folder
(config.json, vocab.json, model.safetensors) is written last, so an interrupted run never leaves
a folder that looks finished. ``overwrite=True`` trains beside ``out_dir`` and swaps the finished
folder in (:func:`~stylesearch.training.checkpoint.run_folder`): until then the old model and
its checkpoints stay as they were.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from stylesearch.catalog.dataset import EpochSampler, PairDataset, collate_pairs
from stylesearch.catalog.manifest import CatalogItem, load_catalog
from stylesearch.catalog.transforms import eval_transform, same_item_transform, train_transform
from stylesearch.config import Config, to_dict
from stylesearch.folders import swap_into_place, writer_lock
from stylesearch.losses import compute_losses
from stylesearch.losses.attribute import attribute_pos_weight, multi_hot
from stylesearch.model.io import save_model
from stylesearch.model.joint import JointModel
from stylesearch.retrieval_metrics import mean_average_precision, recall_at_k
from stylesearch.text.pipeline import TextPipeline
from stylesearch.text.vocabulary import Vocabulary, scaled_min_count
from stylesearch.training import distributed as dist_utils
from stylesearch.training.checkpoint import (
    CHECKPOINT_DIR,
    TrainingError,
    list_checkpoints,
    load_checkpoint,
    run_folder,
    save_checkpoint,
)
from stylesearch.training.grounding import ground_held_out, synonyms_after_training
from stylesearch.training.look import fit_look
from stylesearch.training.setup import (
    lr_at,
    num_workers,
    param_groups,
    resolve_device,
    seed_everything,
    seed_worker,
    split_indices,
)

Log = Callable[[str], None]


@dataclass
class TrainResult:
    model_dir: Path
    metrics: list[dict[str, Any]]
    n_train: int
    n_val: int
    vocab_size: int


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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


@torch.no_grad()
def evaluate(model: JointModel, loader: DataLoader, *, device: torch.device) -> dict[str, float]:
    """Validation metrics on held-out items (:func:`validation_loader`): image<->text R@1/R@10
    and attribute mAP.

    The gallery is the held-out items themselves (each image's true text is its own metadata).
    """
    model.eval()
    img_f, txt_f, probs, targets = [], [], [], []
    for batch in loader:
        images = batch["images"].to(device, non_blocking=True)
        words = batch["words"].to(device, non_blocking=True)
        fi = model.encode_images(images)
        img_f.append(torch.nn.functional.normalize(fi.float(), dim=-1).cpu())
        txt_f.append(model.encode_texts(words, normalize=True).float().cpu())
        probs.append(torch.sigmoid(model.attribute_logits(fi).float()).cpu())
        targets.append(multi_hot(words, model.vocab_size).cpu())
    fi_all = torch.cat(img_f).numpy()
    ft_all = torch.cat(txt_f).numpy()
    sim = fi_all @ ft_all.T  # (N images, N texts)
    attr_map, n_words = mean_average_precision(torch.cat(probs).numpy(), torch.cat(targets).numpy())
    return {
        "val_i2t_r1": recall_at_k(sim, 1),
        "val_i2t_r10": recall_at_k(sim, 10),
        "val_t2i_r1": recall_at_k(sim.T, 1),
        "val_t2i_r10": recall_at_k(sim.T, 10),
        "val_attribute_map": attr_map,
        "val_attribute_words": n_words,
        "val_items": len(fi_all),
    }


def train(
    catalog_path: str | Path,
    out_dir: str | Path,
    config: Config,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Log | None = None,
    image_roots: Sequence[str | Path] = (),
) -> TrainResult:
    """Train a joint model on a catalog manifest and write the model folder ``out_dir``
    (``image_roots``: folders besides the manifest's own that its images may lie in)."""
    with ExitStack() as stack:
        return _train(catalog_path, Path(out_dir), config, resume, overwrite, progress,
                      log or _stderr, image_roots, stack)  # fmt: skip


def _train(
    catalog_path: str | Path,
    target: Path,
    config: Config,
    resume: bool,
    overwrite: bool,
    progress: bool,
    log: Log,
    image_roots: Sequence[str | Path],
    stack: ExitStack,
) -> TrainResult:
    distributed = dist_utils.init_distributed()
    rank, world, local_rank = dist_utils.dist_info()
    main = rank == 0
    if not main:
        log = lambda _msg: None  # noqa: E731
    progress = progress and main
    tcfg = config.train
    device = resolve_device(tcfg.device, local_rank)
    out_dir = run_folder(target, resume=resume, overwrite=overwrite)  # every rank: it only reads
    if main:
        if out_dir != target:
            # one writer of target at a time, from the start of the run to its swap
            stack.enter_context(writer_lock(target))
            if not resume:  # a new run: what an interrupted --overwrite run left goes
                shutil.rmtree(out_dir, ignore_errors=True)
            log(f"train: running in {out_dir}; {target} is replaced once the model is saved")
        out_dir.mkdir(parents=True, exist_ok=True)
    dist_utils.barrier()
    seed_everything(tcfg.seed, tcfg.deterministic)

    catalog = load_catalog(catalog_path, progress=progress, image_roots=image_roots)
    log(f"catalog: {catalog.summary()}")
    if main and catalog.rejected:
        catalog.write_rejects(out_dir / "rejects.jsonl")
        log(f"catalog: rejected rows with their reasons in {out_dir / 'rejects.jsonl'}")
    items = list(catalog.items)
    if len(items) < 4:
        raise TrainingError(f"{catalog_path}: only {len(items)} usable items; need at least 4")

    pipeline, word_bags = prepare_text(items, config, progress=progress, log=log)
    train_idx, val_idx = split_indices(len(items), tcfg.val_fraction, tcfg.seed)
    # the run's vocabulary lives with its checkpoints until the final model folder is written
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
    bags = [vocab.encode(b) for b in word_bags]
    empty = [i for i, b in enumerate(bags) if not b]
    keep_train = [int(i) for i in train_idx if bags[i]]
    keep_val = [int(i) for i in val_idx if bags[i]][: tcfg.val_max_items]
    log(
        f"text: vocabulary of {len(vocab)} words (min_count {vocab.min_count}); "
        f"{len(empty)} items have no vocabulary word and are skipped"
    )
    if len(keep_train) < 2 * world:
        raise TrainingError("too few training items with vocabulary words; lower min_count")
    batch_size = min(tcfg.batch_size, max(2, len(keep_train) // world))
    if batch_size != tcfg.batch_size:
        log(f"train: batch size lowered to {batch_size} (only {len(keep_train)} items)")

    model = JointModel(config.model, len(vocab)).to(device)
    model.vocab = vocab
    model.text_config = config.text
    if config.loss.name == "triplet":
        # the triplet loss has no temperature: freeze it so DDP sees no unused parameter
        model.log_temperature.requires_grad_(False)
    ddp_model: torch.nn.Module = model
    if distributed:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimizer = torch.optim.AdamW(param_groups(model, tcfg.weight_decay), lr=tcfg.lr)
    use_amp = tcfg.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    pos_weight = None
    if config.loss.attribute_weighting == "pos_weight":
        pos_weight = attribute_pos_weight(
            vocab.counts,
            vocab.n_items,
            power=config.loss.pos_weight_power,
            max_weight=config.loss.max_pos_weight,
        ).to(device)

    train_items = [items[i] for i in keep_train]
    train_bags = [bags[i] for i in keep_train]
    dataset = PairDataset(
        train_items,
        train_bags,
        train_transform(config.model.image_size),
        use_extra_images=True,
        seed=tcfg.seed,
        second_transform=same_item_transform(config.model.image_size)
        if config.loss.same_item_weight > 0
        else None,
    )
    distributed_sampler = (
        DistributedSampler(dataset, num_replicas=world, rank=rank, seed=tcfg.seed, drop_last=True)
        if distributed
        else None
    )
    workers = num_workers(tcfg.num_workers)
    steps_per_epoch = len(dataset) // (batch_size * world)
    total_steps = steps_per_epoch * tcfg.epochs
    config_dict = to_dict(config)

    start_epoch, step = 0, 0
    metrics_path = out_dir / "metrics.jsonl"
    history: list[dict[str, Any]] = []
    if resume:
        ckpts = list_checkpoints(out_dir)
        if not ckpts:
            raise TrainingError(f"--resume: no checkpoint in {out_dir / 'checkpoints'}")
        try:
            state = load_checkpoint(ckpts[-1], model=model, optimizer=optimizer, device=device)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise TrainingError(
                f"--resume: cannot restore {ckpts[-1]} ({exc}); remove that folder to resume "
                "from an earlier checkpoint, or start again with --overwrite"
            ) from None
        if (
            state.config["model"] != config_dict["model"]
            or state.config["loss"] != config_dict["loss"]
        ):
            raise TrainingError(
                f"--resume: {ckpts[-1]} was trained with another [model] or [loss] config; "
                "resume with the same config or start a new --out"
            )
        if state.scaler and scaler.is_enabled():
            scaler.load_state_dict(state.scaler)
        start_epoch, step = state.epoch, state.step
        if metrics_path.exists():
            history = [
                json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()
            ]
            history = [h for h in history if h["epoch"] <= start_epoch]
            if main:  # drop lines of epochs after the checkpoint (a crash between the two)
                metrics_path.write_text("".join(json.dumps(h) + "\n" for h in history))
        log(f"train: resuming after epoch {start_epoch} from {ckpts[-1]}")
        if start_epoch >= tcfg.epochs:
            log(f"train: already trained {start_epoch} of {tcfg.epochs} epochs")
    elif main and metrics_path.exists():
        metrics_path.unlink()

    log(
        f"train: {len(train_items)} items, {len(keep_val)} held out, {tcfg.epochs} epochs x "
        f"{steps_per_epoch} steps, batch {batch_size} x {world} rank(s), device {device}"
        + (f", mixed precision {str(amp_dtype).replace('torch.', '')}" if use_amp else "")
    )
    # one loader for the whole run: the epoch reaches the workers with every index, so they
    # persist instead of starting again (and re-importing their state) every epoch
    sampler = EpochSampler(len(dataset), tcfg.seed, base=distributed_sampler)
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
    val_loader = None
    if main and keep_val:
        val_loader = validation_loader(
            [items[i] for i in keep_val],
            [bags[i] for i in keep_val],
            batch_size=max(batch_size, 64),
            num_workers=workers,
            image_size=config.model.image_size,
        )
    for epoch in range(start_epoch, tcfg.epochs):
        torch.manual_seed(tcfg.seed + epoch)
        sampler.set_epoch(epoch)
        ddp_model.train()
        sums: dict[str, float] = {}
        n_batches, n_images, t0 = 0, 0, time.perf_counter()
        bar = tqdm(
            loader,
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{tcfg.epochs}",
            disable=not progress,
            leave=False,
            unit="batch",
            file=sys.stderr,
        )
        for batch in bar:
            lr = lr_at(step, total_steps, tcfg.lr, tcfg.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            images = batch["images"].to(device, non_blocking=True)
            words = batch["words"].to(device, non_blocking=True)
            second = batch.get("images2")
            if second is not None:
                second = second.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                outputs = ddp_model(images, words, second)
            outputs = {k: v.float() for k, v in outputs.items()}
            gathered = None
            if distributed:
                gathered = dist_utils.gather_features(
                    outputs["image_features"], outputs["text_features"]
                )
            terms = compute_losses(
                outputs, words, config.loss, pos_weight=pos_weight, gathered=gathered
            )
            # equals terms["total"] in one process; under DDP it makes DDP's gradient average
            # equal the single-process gradient on the global batch (training/distributed.py)
            objective = dist_utils.ddp_loss(terms, config.loss)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(objective).backward()
            scaler.step(optimizer)
            scaler.update()
            model.clamp_temperature_()
            step += 1
            n_batches += 1
            n_images += images.shape[0] * world
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            if progress:
                rate = n_images / max(1e-9, time.perf_counter() - t0)
                bar.set_postfix(loss=f"{float(terms['total'].detach()):.3f}", img_s=f"{rate:.0f}")
        bar.close()
        elapsed = time.perf_counter() - t0
        record: dict[str, Any] = {"epoch": epoch + 1, "step": step}
        record.update(
            {
                f"train_{k}": dist_utils.all_reduce_mean(v / max(1, n_batches))
                for k, v in sums.items()
            }
        )
        record.update(
            {
                "temperature": float(model.temperature().detach()),
                "lr": lr_at(max(0, step - 1), total_steps, tcfg.lr, tcfg.warmup_steps),
                "epoch_seconds": round(elapsed, 2),
                "images_per_second": round(n_images / max(elapsed, 1e-9), 1),
            }
        )
        if main:
            if val_loader is not None:
                record.update(evaluate(model, val_loader, device=device))
            history.append(record)
            with metrics_path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            save_checkpoint(
                out_dir,
                epoch=epoch + 1,
                step=step,
                model=model,
                optimizer=optimizer,
                config=config_dict,
                scaler=scaler,
                keep=tcfg.keep_checkpoints,
            )
            log(_format_epoch(record))
        dist_utils.barrier()

    if main:
        summary = {
            "catalog": str(Path(catalog_path).resolve()),
            "rows_in": catalog.rows_in,
            "rejected": len(catalog.rejected),
            "train_items": len(train_items),
            "val_items": len(keep_val),
            "text_pipeline": pipeline.name,
            "final_metrics": history[-1] if history else {},
        }
        if model.look is not None:
            log(f"look: fitting on the {len(items)} catalog images")
            fit_look(
                model, [it.image for it in items], device=device,
                num_workers=workers, progress=progress,
            )  # fmt: skip
        save_model(
            model,
            out_dir,
            vocab=vocab,
            text_config=config.text,
            extra={"train_config": config_dict, "training": summary},
        )
        if keep_val:  # each word's visual grounding, on the same held-out items
            path = ground_held_out(
                model, out_dir, [items[i] for i in keep_val], [bags[i] for i in keep_val],
                catalog=summary["catalog"], device=device, num_workers=workers, progress=progress,
            )  # fmt: skip
            log(f"grounding: measured on the {len(keep_val)} held-out items, in {path}")
            groups_file = synonyms_after_training(  # every catalog item, that grounding
                model, out_dir, items, bags, catalog=summary["catalog"], device=device,
                num_workers=workers, progress=progress,
            )  # fmt: skip
            log(f"synonyms: learned from the {len(items)} catalog items, in {groups_file}")
        if out_dir != target:
            swap_into_place(out_dir, target)  # the old folder goes only now
        log(f"model: saved to {target}")
    dist_utils.barrier()
    return TrainResult(
        model_dir=target,
        metrics=history,
        n_train=len(train_items),
        n_val=len(keep_val),
        vocab_size=len(vocab),
    )


def _format_epoch(r: dict[str, Any]) -> str:
    parts = [f"epoch {r['epoch']}", f"loss {r.get('train_total', float('nan')):.3f}"]
    for key in ("train_mbmr", "train_triplet", "train_attribute"):
        if key in r:
            parts.append(f"{key.removeprefix('train_')} {r[key]:.3f}")
    if "val_i2t_r1" in r:
        parts.append(
            f"val i2t R@1 {r['val_i2t_r1']:.3f} R@10 {r['val_i2t_r10']:.3f} | "
            f"t2i R@1 {r['val_t2i_r1']:.3f} R@10 {r['val_t2i_r10']:.3f} | "
            f"attr mAP {r['val_attribute_map']:.3f}"
        )
    parts.append(f"tau {r['temperature']:.3f}, {r['images_per_second']:.0f} img/s")
    return ", ".join(parts)
