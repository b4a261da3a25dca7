"""``stylesearch train`` (the joint model) and ``stylesearch train-visual`` (the V-nDCG judge)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from stylesearch.cli.options import (
    catalog_option,
    device_option,
    friendly_errors,
    images_root_option,
    path_option,
    quiet_option,
    show_progress,
    stack,
)
from stylesearch.config import BACKBONES, LOOK_KINDS

BACKBONE_CHOICE = click.Choice(BACKBONES)

#: The ``[train]`` keys ``train``'s options override.
TRAIN_OVERRIDES = {"epochs", "batch_size", "device", "seed"}

training_options = stack(
    path_option(
        "--config",
        "config_path",
        help="TOML config file ([text], [model], [loss], [train]); see docs/training.md.",
    ),
    click.option(
        "--epochs", type=click.IntRange(min=1), default=None, help="Override [train] epochs."
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(min=2),
        default=None,
        help="Override [train] batch_size (per process).",
    ),
    device_option("Override [train] device (default auto):", default=None),
    click.option("--seed", type=int, default=None, help="Override [train] seed."),
)


def load_config_with_overrides(config_path: Path | None, **overrides: Any) -> Any:
    """The config of ``config_path`` (or the defaults) with the options that were given."""
    from stylesearch.config import load_config, validate

    cfg = load_config(config_path)
    for key, value in overrides.items():
        if value is None:
            continue
        if key in TRAIN_OVERRIDES:
            cfg.train = dataclasses.replace(cfg.train, **{key: value})
        elif key == "loss":
            cfg.loss = dataclasses.replace(cfg.loss, name=value)
        elif key == "backbone":
            cfg.model = dataclasses.replace(cfg.model, backbone=value)
    return validate(cfg)


@click.command("train")
@catalog_option("Training catalog manifest (JSONL, CSV or Parquet).")
@path_option(
    "--out",
    required=True,
    help="Model folder to write (config.json, vocab.json, model.safetensors, "
    "grounding.json, metrics.jsonl, checkpoints/).",
)
@training_options
@click.option(
    "--loss",
    type=click.Choice(["mbmr", "triplet"]),
    default=None,
    help="Override [loss] name: MBMR (the paper's) or the triplet-loss baseline.",
)
@click.option("--backbone", type=BACKBONE_CHOICE, default=None, help="Override [model] backbone.")
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out.")
@click.option("--overwrite", is_flag=True, help="Replace a model or unfinished run in --out.")
@quiet_option
@images_root_option
@friendly_errors
def train_cmd(
    catalog_path: Path,
    out: Path,
    config_path: Path | None,
    epochs: int | None,
    batch_size: int | None,
    device: str | None,
    seed: int | None,
    loss: str | None,
    backbone: str | None,
    resume: bool,
    overwrite: bool,
    quiet: bool,
    images_root: tuple[Path, ...],
) -> None:
    """Train the joint model (MBMR + attribute head) on a catalog.

    Runs on the CPU or a GPU; for several GPUs launch it with
    `torchrun --nproc_per_node=G -m stylesearch train ...` (DDP; MBMR sees every rank's
    negatives). Writes one line per epoch to MODEL_DIR/metrics.jsonl and a checkpoint per epoch.
    """
    from stylesearch.training.loop import train

    cfg = load_config_with_overrides(
        config_path,
        epochs=epochs,
        batch_size=batch_size,
        device=device,
        seed=seed,
        loss=loss,
        backbone=backbone,
    )
    result = train(
        catalog_path, out, cfg, resume=resume, overwrite=overwrite,
        progress=show_progress(quiet, piped=True), image_roots=images_root,
    )  # fmt: skip
    if result.metrics:
        last = result.metrics[-1]
        click.echo(json.dumps({k: last[k] for k in sorted(last) if k.startswith("val_")}))


@click.command("train-visual")
@catalog_option("Training catalog manifest; items with extra_images give same-item positives.")
@path_option(
    "--out",
    required=True,
    help="Visual model folder to write (model.safetensors, config.json).",
)
@path_option(
    "--config",
    "config_path",
    help="TOML config file whose [visual] table holds the settings (see docs/training.md); "
    "the options given override it.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="[default: 2]")
@click.option("--batch-size", type=click.IntRange(min=2), default=None, help="[default: 128]")
@click.option(
    "--backbone",
    type=BACKBONE_CHOICE,
    default=None,
    help="Image network [default: resnet18, from scratch].",
)
@click.option(
    "--pretrained",
    is_flag=True,
    help="Start from ImageNet weights (efficientnet_lite0 only).",
)
@click.option("--image-size", type=click.IntRange(min=16), default=None, help="[default: 64]")
@click.option("--embed-dim", type=click.IntRange(min=2), default=None, help="[default: 128]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Peak learning rate (one-cycle) [default: 0.002].")  # fmt: skip
@click.option("--seed", type=int, default=None, help="[default: 0]")
@device_option("Override [visual] device (default auto):", default=None)
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="DataLoader workers [default: min(4, cores)].")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace a visual model in --out.")
@quiet_option
@images_root_option
@friendly_errors
def train_visual_cmd(
    catalog_path: Path,
    out: Path,
    config_path: Path | None,
    overwrite: bool,
    quiet: bool,
    images_root: tuple[Path, ...],
    **overrides: Any,
) -> None:
    """Train the baseline visual model (the V-nDCG judge of `stylesearch eval`).

    An image-only network trained with the triplet loss: another image of the same item is the
    positive, images of other items are the negatives. Prints its held-out same-item R@1.
    """
    from stylesearch.model.visual import load_visual_config
    from stylesearch.training.visual import train_visual

    overrides["pretrained"] = overrides["pretrained"] or None  # the flag only turns it on
    config = load_visual_config(config_path, **overrides)
    metrics = train_visual(
        catalog_path, out, config, overwrite=overwrite, progress=show_progress(quiet, piped=True),
        image_roots=images_root,
    )  # fmt: skip
    final = metrics["final"]
    click.echo(json.dumps({k: final[k] for k in ("val_r1", "val_r10", "val_items") if k in final}))


@click.command("refit-look")
@path_option("--model", "model_dir", required=True, file_okay=False, help="A trained model folder.")
@path_option(
    "--catalog",
    "catalog_path",
    dir_okay=False,
    help="Its training catalog manifest [default: the one its config.json records].",
)
@click.option(
    "--kind",
    type=click.Choice(LOOK_KINDS),
    default=None,
    help="Read the look this way instead [default: the model's own kind].",
)
@device_option()
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="DataLoader workers [default: min(4, cores)].")  # fmt: skip
@quiet_option
@images_root_option
@friendly_errors
def refit_look_cmd(
    model_dir: Path,
    catalog_path: Path | None,
    kind: str | None,
    device: str,
    workers: int | None,
    quiet: bool,
    images_root: tuple[Path, ...],
) -> None:
    """Fit a trained model's look again, without training it again.

    Use it when a newer stylesearch reads the look at another version (loading the model
    warns of it), or to read the look another way (--kind). The same weights are kept; the
    look, the look head, each word's grounding and the synonym groups are fitted again on the
    training catalog, as at the end of `stylesearch train`. The folder is replaced whole, so
    an interrupted refit leaves the model as it was. Then rebuild the model's indexes
    (`stylesearch index`): they hold looks read the old way.
    """
    from stylesearch.training.refit import refit_look

    refit_look(
        model_dir, catalog=catalog_path, kind=kind, image_roots=images_root, device=device,
        workers=workers, progress=show_progress(quiet, piped=True),
        log=lambda msg: click.echo(msg, err=True),
    )  # fmt: skip
