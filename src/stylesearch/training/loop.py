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
from torch.utils.data import DataLoader
from tqdm import tqdm

from stylesearch.catalog.dataset import EpochSampler
from stylesearch.config import Config, to_dict
from stylesearch.folders import FolderSwap
from stylesearch.losses import compute_losses
from stylesearch.losses.attribute import attribute_pos_weight, multi_hot
from stylesearch.model.device import resolve_device
from stylesearch.model.joint import JointModel
from stylesearch.retrieval_metrics import mean_average_precision, recall_at_k
from stylesearch.text.vocabulary import Vocabulary
from stylesearch.training import distributed as dist_utils
from stylesearch.training.checkpoint import (
    TrainingError,
    list_checkpoints,
    load_checkpoint,
    run_folder,
    save_checkpoint,
)
from stylesearch.training.data import (
    batch_size_for,
    held_out_loader,
    items_with_words,
    load_training_catalog,
    pair_dataset,
    prepare_text,
    run_vocabulary,
    train_loader,
)
from stylesearch.training.finish import finish_run
from stylesearch.training.setup import (
    lr_at,
    num_workers,
    param_groups,
    seed_everything,
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
    swap = _open_run_folder(out_dir, target, resume=resume, main=main, log=log, stack=stack)
    dist_utils.barrier()
    seed_everything(tcfg.seed, tcfg.deterministic)

    catalog = load_training_catalog(
        catalog_path, out_dir, main=main, progress=progress, image_roots=image_roots, log=log
    )
    items = list(catalog.items)
    pipeline, word_bags = prepare_text(items, config, progress=progress, log=log)
    train_idx, val_idx = split_indices(len(items), tcfg.val_fraction, tcfg.seed)
    vocab = run_vocabulary(out_dir, config, word_bags, train_idx, resume=resume, main=main)
    bags, keep_train, keep_val = items_with_words(vocab, word_bags, train_idx, val_idx, tcfg, log)
    batch_size = batch_size_for(len(keep_train), tcfg, world, log)

    trainer = _Trainer(config, vocab, device, distributed, world, progress=progress)
    train_items = [items[i] for i in keep_train]
    held_out = ([items[i] for i in keep_val], [bags[i] for i in keep_val])
    dataset = pair_dataset(train_items, [bags[i] for i in keep_train], config)
    workers = num_workers(tcfg.num_workers)
    steps_per_epoch = len(dataset) // (batch_size * world)
    trainer.total_steps = steps_per_epoch * tcfg.epochs
    metrics_path = out_dir / "metrics.jsonl"
    start_epoch, history = trainer.start(out_dir, metrics_path, resume=resume, main=main, log=log)

    amp = str(trainer.amp_dtype).replace("torch.", "")
    log(
        f"train: {len(train_items)} items, {len(keep_val)} held out, {tcfg.epochs} epochs x "
        f"{steps_per_epoch} steps, batch {batch_size} x {world} rank(s), device {device}"
        + (f", mixed precision {amp}" if trainer.use_amp else "")
    )
    sampler, loader = train_loader(
        dataset, batch_size, workers, device, tcfg.seed, rank, world, distributed
    )
    val_loader = (
        held_out_loader(held_out, batch_size, workers, config.model.image_size) if main else None
    )
    for epoch in range(start_epoch, tcfg.epochs):
        record = trainer.train_epoch(epoch, loader, sampler, steps_per_epoch)
        if main:
            trainer.end_epoch(record, out_dir, metrics_path, history, val_loader, log)
        dist_utils.barrier()

    if main:
        summary = {
            "catalog": str(Path(catalog_path).resolve()), "rows_in": catalog.rows_in,
            "rejected": len(catalog.rejected), "train_items": len(train_items),
            "val_items": len(keep_val), "text_pipeline": pipeline.name,
            "final_metrics": history[-1] if history else {},
        }  # fmt: skip
        finish_run(
            trainer.model, out_dir, items, bags, keep_val,
            vocab=trainer.vocab, text_config=trainer.config.text,
            extra={"train_config": trainer.config_dict, "training": summary},
            catalog=summary["catalog"], device=trainer.device, workers=workers,
            progress=trainer.progress, log=log,
        )  # fmt: skip
        if swap is not None:
            swap.commit()  # the old folder goes only now
        log(f"model: saved to {target}")
    dist_utils.barrier()
    return TrainResult(target, history, len(train_items), len(keep_val), len(vocab))


def _open_run_folder(
    out_dir: Path, target: Path, *, resume: bool, main: bool, log: Log, stack: ExitStack
) -> FolderSwap | None:
    """Make the run's folder (on the main rank). A run beside ``target`` (``--overwrite``, or
    ``--resume`` of such a run) holds ``target``'s writer lock from here to its swap: the
    returned :class:`FolderSwap`, whose commit swaps the finished folder in."""
    if not main:
        return None
    swap = None
    if out_dir != target:
        # one writer of target at a time, from the start of the run to its swap; a run left
        # without a commit stays for --resume
        swap = stack.enter_context(FolderSwap(target, tmp=out_dir))
        if not resume:  # a new run: what an interrupted --overwrite run left goes
            shutil.rmtree(out_dir, ignore_errors=True)
        log(f"train: running in {out_dir}; {target} is replaced once the model is saved")
    out_dir.mkdir(parents=True, exist_ok=True)
    return swap


class _Trainer:
    """One run's model (and its DDP wrapper), optimiser, mixed precision and step counter: it
    restores a checkpoint, trains epochs and saves their checkpoints."""

    def __init__(
        self,
        config: Config,
        vocab: Vocabulary,
        device: torch.device,
        distributed: bool,
        world: int,
        *,
        progress: bool,
    ) -> None:
        tcfg = config.train
        self.config, self.config_dict, self.vocab = config, to_dict(config), vocab
        self.device, self.distributed, self.world, self.progress = (
            device, distributed, world, progress,
        )  # fmt: skip
        self.model = model = JointModel(config.model, len(vocab)).to(device)
        model.vocab = vocab
        model.text_config = config.text
        if config.loss.name == "triplet":
            # the triplet loss has no temperature: freeze it so DDP sees no unused parameter
            model.log_temperature.requires_grad_(False)
        self.ddp_model: torch.nn.Module = model
        if distributed:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.optimizer = torch.optim.AdamW(param_groups(model, tcfg.weight_decay), lr=tcfg.lr)
        self.use_amp = tcfg.amp and device.type == "cuda"
        self.amp_dtype = (
            torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        )
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self.amp_dtype == torch.float16
        )
        self.pos_weight = None
        if config.loss.attribute_weighting == "pos_weight":
            self.pos_weight = attribute_pos_weight(
                vocab.counts,
                vocab.n_items,
                power=config.loss.pos_weight_power,
                max_weight=config.loss.max_pos_weight,
            ).to(device)
        self.step = 0
        self.total_steps = 0  # set once the loader's length is known

    def start(
        self, out_dir: Path, metrics_path: Path, *, resume: bool, main: bool, log: Log
    ) -> tuple[int, list[dict[str, Any]]]:
        """The epoch to start from and the metrics so far: a new run starts at 0 with no
        ``metrics_path`` (the main rank deletes one left there), ``resume`` from a checkpoint."""
        if resume:
            return self.resume(out_dir, metrics_path, main=main, log=log)
        if main and metrics_path.exists():
            metrics_path.unlink()
        return 0, []

    def resume(
        self, out_dir: Path, metrics_path: Path, *, main: bool, log: Log
    ) -> tuple[int, list[dict[str, Any]]]:
        """Restore the newest checkpoint of ``out_dir``; returns its epoch and the metrics of
        the epochs up to it (the main rank drops later lines from ``metrics_path``)."""
        ckpts = list_checkpoints(out_dir)
        if not ckpts:
            raise TrainingError(f"--resume: no checkpoint in {out_dir / 'checkpoints'}")
        try:
            state = load_checkpoint(
                ckpts[-1], model=self.model, optimizer=self.optimizer, device=self.device
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise TrainingError(
                f"--resume: cannot restore {ckpts[-1]} ({exc}); remove that folder to resume "
                "from an earlier checkpoint, or start again with --overwrite"
            ) from None
        if (
            state.config["model"] != self.config_dict["model"]
            or state.config["loss"] != self.config_dict["loss"]
        ):
            raise TrainingError(
                f"--resume: {ckpts[-1]} was trained with another [model] or [loss] config; "
                "resume with the same config or start a new --out"
            )
        if state.scaler and self.scaler.is_enabled():
            self.scaler.load_state_dict(state.scaler)
        start_epoch, self.step = state.epoch, state.step
        history: list[dict[str, Any]] = []
        if metrics_path.exists():
            history = [
                json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()
            ]
            history = [h for h in history if h["epoch"] <= start_epoch]
            if main:  # drop lines of epochs after the checkpoint (a crash between the two)
                metrics_path.write_text("".join(json.dumps(h) + "\n" for h in history))
        log(f"train: resuming after epoch {start_epoch} from {ckpts[-1]}")
        if start_epoch >= self.config.train.epochs:
            log(f"train: already trained {start_epoch} of {self.config.train.epochs} epochs")
        return start_epoch, history

    def train_epoch(
        self, epoch: int, loader: DataLoader, sampler: EpochSampler, steps_per_epoch: int
    ) -> dict[str, Any]:
        """One epoch over ``loader``; returns its record (mean loss terms over every rank)."""
        tcfg = self.config.train
        torch.manual_seed(tcfg.seed + epoch)
        sampler.set_epoch(epoch)
        self.ddp_model.train()
        sums: dict[str, float] = {}
        n_batches, n_images, t0 = 0, 0, time.perf_counter()
        bar = tqdm(
            loader,
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{tcfg.epochs}",
            disable=not self.progress,
            leave=False,
            unit="batch",
            file=sys.stderr,
        )
        for batch in bar:
            terms = self._train_step(batch)
            n_batches += 1
            n_images += batch["images"].shape[0] * self.world
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            if self.progress:
                rate = n_images / max(1e-9, time.perf_counter() - t0)
                bar.set_postfix(loss=f"{float(terms['total'].detach()):.3f}", img_s=f"{rate:.0f}")
        bar.close()
        elapsed = time.perf_counter() - t0
        record: dict[str, Any] = {"epoch": epoch + 1, "step": self.step}
        record.update(
            {
                f"train_{k}": dist_utils.all_reduce_mean(v / max(1, n_batches))
                for k, v in sums.items()
            }
        )
        record.update(
            {
                "temperature": float(self.model.temperature().detach()),
                "lr": lr_at(max(0, self.step - 1), self.total_steps, tcfg.lr, tcfg.warmup_steps),
                "epoch_seconds": round(elapsed, 2),
                "images_per_second": round(n_images / max(elapsed, 1e-9), 1),
            }
        )
        return record

    def _train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One optimiser step on ``batch``; returns the loss terms."""
        tcfg, device = self.config.train, self.device
        lr = lr_at(self.step, self.total_steps, tcfg.lr, tcfg.warmup_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        images = batch["images"].to(device, non_blocking=True)
        words = batch["words"].to(device, non_blocking=True)
        second = batch.get("images2")
        if second is not None:
            second = second.to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            outputs = self.ddp_model(images, words, second)
        outputs = {k: v.float() for k, v in outputs.items()}
        gathered = None
        if self.distributed:
            gathered = dist_utils.gather_features(
                outputs["image_features"], outputs["text_features"]
            )
        terms = compute_losses(
            outputs, words, self.config.loss, pos_weight=self.pos_weight, gathered=gathered
        )
        # equals terms["total"] in one process; under DDP it makes DDP's gradient average
        # equal the single-process gradient on the global batch (training/distributed.py)
        objective = dist_utils.ddp_loss(terms, self.config.loss)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(objective).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.model.clamp_temperature_()
        self.step += 1
        return terms

    def end_epoch(
        self,
        record: dict[str, Any],
        out_dir: Path,
        metrics_path: Path,
        history: list[dict[str, Any]],
        val_loader: DataLoader | None,
        log: Log,
    ) -> None:
        """On the main rank: validate, append the epoch's record to ``history`` and
        ``metrics_path``, save its checkpoint and log it."""
        if val_loader is not None:
            record.update(evaluate(self.model, val_loader, device=self.device))
        history.append(record)
        with metrics_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        save_checkpoint(
            out_dir,
            epoch=record["epoch"],
            step=self.step,
            model=self.model,
            optimizer=self.optimizer,
            config=self.config_dict,
            scaler=self.scaler,
            keep=self.config.train.keep_checkpoints,
        )
        log(_format_epoch(record))


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
