"""The ``stylesearch`` command line: thin wrappers that parse options and call the library.

Errors a user can fix (bad config, bad catalog, missing data) are printed to stderr as one
message with a non-zero exit status, never as a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from stylesearch import __version__

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is the whole story for a user (no traceback)."""
    from stylesearch.catalog.images import ImageError
    from stylesearch.catalog.manifest import CatalogError
    from stylesearch.config import ConfigError
    from stylesearch.text.pipeline import TextPipelineError
    from stylesearch.training.loop import TrainingError

    errors: list[type[BaseException]] = [
        CatalogError,
        ConfigError,
        ImageError,
        TextPipelineError,
        TrainingError,
    ]
    try:
        from stylesearch.catalog.demo import DemoSourceMissing

        errors.append(DemoSourceMissing)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def friendly_errors(func: F) -> F:
    """Turn the library's user-facing exceptions into ``click`` errors (message, exit 1)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except _user_errors() as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="stylesearch")
def cli() -> None:
    """Multimodal style search: find catalog items that look like an image and honour words.

    \b
    Quick start:
      stylesearch demo                       build the demo catalog, train, report
      stylesearch catalog check MANIFEST     validate your own catalog
      stylesearch train --catalog MANIFEST --out MODEL_DIR
    """


# --------------------------------------------------------------------------- catalog


@cli.group()
def catalog() -> None:
    """Validate catalogs and build the demo catalog."""


@catalog.command("check")
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option(
    "--rejects",
    type=click.Path(path_type=Path),
    default=None,
    help="Write rejected rows (row, id, reason) as JSON Lines here "
    "[default: MANIFEST's folder / <name>.rejects.jsonl when any row is rejected].",
)
@click.option("--no-images", is_flag=True, help="Only check that image files exist (no decoding).")
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=None,
    help="Refuse images with more pixels than this (decompression-bomb guard) [default: 50M].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
@friendly_errors
def catalog_check(
    manifest: Path, rejects: Path | None, no_images: bool, max_pixels: int | None, as_json: bool
) -> None:
    """Validate MANIFEST (JSONL, CSV or Parquet): print counts and the reason of every rejection.

    Exits with status 0 when every row is accepted, 3 when some rows were rejected (they are
    written to the rejects file), 1 when the file itself cannot be read.
    """
    from stylesearch.catalog.images import DEFAULT_MAX_PIXELS
    from stylesearch.catalog.manifest import load_catalog

    cat = load_catalog(
        manifest,
        validate_images=not no_images,
        max_pixels=max_pixels or DEFAULT_MAX_PIXELS,
        progress=sys.stderr.isatty(),
    )
    rejects_path = None
    if cat.rejected:
        rejects_path = rejects or manifest.with_name(manifest.stem + ".rejects.jsonl")
        cat.write_rejects(rejects_path)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "manifest": str(manifest),
                    "rows_in": cat.rows_in,
                    "accepted": len(cat.items),
                    "rejected": len(cat.rejected),
                    "rejects_file": str(rejects_path) if rejects_path else None,
                }
            )
        )
    else:
        click.echo(cat.summary())
        for rej in cat.rejected[:20]:
            click.echo(f"  row {rej.row} (id {rej.id!r}): {rej.reason}")
        if len(cat.rejected) > 20:
            click.echo(f"  ... and {len(cat.rejected) - 20} more")
        if rejects_path:
            click.echo(f"rejected rows written to {rejects_path}")
    if cat.rejected:
        sys.exit(3)


@catalog.command("make-shapes")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--items", default=800, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--size", default=64, show_default=True, type=click.IntRange(min=16))
@friendly_errors
def catalog_make_shapes(out: Path, items: int, seed: int, size: int) -> None:
    """Generate a small synthetic catalog of coloured shapes with noisy titles (for smoke tests)."""
    from stylesearch.catalog.synthetic import make_shapes_catalog

    manifest = make_shapes_catalog(out, items, seed=seed, image_size=size)
    click.echo(f"wrote {items} items: {manifest}")


# --------------------------------------------------------------------------- train


def _training_options(func: F) -> F:
    options = [
        click.option(
            "--config",
            "config_path",
            type=click.Path(path_type=Path),
            default=None,
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
        click.option(
            "--device",
            default=None,
            help='Override [train] device: "auto", "cpu", "cuda", "cuda:N".',
        ),
        click.option("--seed", type=int, default=None, help="Override [train] seed."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _load_config_with_overrides(config_path: Path | None, **overrides: Any) -> Any:
    from stylesearch.config import load_config, validate

    cfg = load_config(config_path)
    train_fields = {"epochs", "batch_size", "device", "seed"}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in train_fields:
            cfg.train = dataclasses.replace(cfg.train, **{key: value})
        elif key == "loss":
            cfg.loss = dataclasses.replace(cfg.loss, name=value)
        elif key == "backbone":
            cfg.model = dataclasses.replace(cfg.model, backbone=value)
    return validate(cfg)


@cli.command("train")
@click.option(
    "--catalog",
    "catalog_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Training catalog manifest (JSONL, CSV or Parquet).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Model folder to write (config.json, vocab.json, model.safetensors, "
    "metrics.jsonl, checkpoints/).",
)
@_training_options
@click.option(
    "--loss",
    type=click.Choice(["mbmr", "triplet"]),
    default=None,
    help="Override [loss] name: MBMR (the paper's) or the triplet-loss baseline.",
)
@click.option(
    "--backbone",
    type=click.Choice(["resnet18", "efficientnet_lite0"]),
    default=None,
    help="Override [model] backbone.",
)
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out.")
@click.option("--overwrite", is_flag=True, help="Replace a model or unfinished run in --out.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
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
) -> None:
    """Train the joint model (MBMR + attribute head) on a catalog.

    Runs on the CPU or a GPU; for several GPUs launch it with
    `torchrun --nproc_per_node=G -m stylesearch train ...` (DDP; MBMR sees every rank's
    negatives). Writes one line per epoch to MODEL_DIR/metrics.jsonl and a checkpoint per epoch.
    """
    from stylesearch.training.loop import train

    cfg = _load_config_with_overrides(
        config_path,
        epochs=epochs,
        batch_size=batch_size,
        device=device,
        seed=seed,
        loss=loss,
        backbone=backbone,
    )
    result = train(catalog_path, out, cfg, resume=resume, overwrite=overwrite, progress=not quiet)
    if result.metrics:
        last = result.metrics[-1]
        click.echo(json.dumps({k: last[k] for k in sorted(last) if k.startswith("val_")}))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="stylesearch")
