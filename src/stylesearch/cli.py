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
    from stylesearch.catalog.demo import DemoSourceMissing
    from stylesearch.catalog.images import ImageError
    from stylesearch.catalog.manifest import CatalogError
    from stylesearch.config import ConfigError
    from stylesearch.evaluation.protocol import EvaluationError
    from stylesearch.evaluation.queries import QueryFileError
    from stylesearch.evaluation.visual import VisualModelError
    from stylesearch.index.milvus import MilvusError
    from stylesearch.index.store import IndexFormatError
    from stylesearch.model.io import ModelFolderError
    from stylesearch.search.query import SearchError
    from stylesearch.search.settings import SettingsError
    from stylesearch.text.pipeline import TextPipelineError
    from stylesearch.training.loop import TrainingError

    return (
        CatalogError, ConfigError, DemoSourceMissing, ImageError, ModelFolderError,
        TextPipelineError, TrainingError, IndexFormatError, SearchError, EvaluationError,
        QueryFileError, VisualModelError, MilvusError, SettingsError, FileNotFoundError,
        PermissionError, IsADirectoryError, NotADirectoryError,
    )  # fmt: skip


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


def images_root_option(func: F) -> F:
    """``--images-root DIR`` (repeatable) for commands that read a catalog manifest."""
    return click.option(
        "--images-root",
        "images_root",
        multiple=True,
        metavar="DIR",
        type=click.Path(path_type=Path, file_okay=False),
        help="Also accept catalog images under DIR (repeatable). By default an image path must "
        "resolve, symlinks followed, inside the manifest's folder.",
    )(func)


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
@images_root_option
@friendly_errors
def catalog_check(
    manifest: Path,
    rejects: Path | None,
    no_images: bool,
    max_pixels: int | None,
    as_json: bool,
    images_root: tuple[Path, ...],
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
        image_roots=images_root,
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
            who = f"id {rej.id!r}" if rej.id is not None else "no id"
            click.echo(f"  row {rej.row} ({who}): {rej.reason}")
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


@catalog.command("build-demo")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder (created; an existing demo catalog there is reused or replaced).",
)
@click.option(
    "--items",
    default=6000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Items in the training catalog.",
)
@click.option(
    "--base-items",
    default=4000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Items in the base catalog that is searched (the paper searched 1.5M; beyond the "
    "training images left over, shapes are reused with new colour/pattern combinations).",
)
@click.option(
    "--query-items",
    default=600,
    show_default=True,
    type=click.IntRange(min=1),
    help="Benchmark query items (from Fashion-MNIST's test images).",
)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--size",
    default=64,
    show_default=True,
    type=click.IntRange(min=32),
    help="Image side in pixels.",
)
@click.option(
    "--views",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Extra images (other views) per item.",
)
@click.option(
    "--missing-rate",
    default=0.15,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of items whose text leaves out one attribute.",
)
@click.option(
    "--wrong-rate",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of items whose text states one attribute wrongly.",
)
@click.option(
    "--source",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with the Fashion-MNIST IDX files [default: /usr/share/datasets/fashion-mnist].",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rendering processes.",
)
@friendly_errors
def catalog_build_demo(
    out: Path,
    items: int,
    base_items: int,
    query_items: int,
    seed: int,
    size: int,
    views: int,
    missing_rate: float,
    wrong_rate: float,
    source: Path | None,
    workers: int,
) -> None:
    """Build the demo style catalog from Fashion-MNIST garments (train / base / query splits).

    Writes OUT/{train,base,query}/manifest.jsonl, OUT/truth.jsonl (clean attributes, never used
    for training), a datasheet OUT/README.md and OUT/samples.png. A second run with the same
    options does no work.
    """
    from stylesearch.catalog.demo import DEFAULT_SOURCE, DemoConfig, build_demo_catalog

    cfg = DemoConfig(
        items=items,
        base_items=base_items,
        query_items=query_items,
        seed=seed,
        size=size,
        views=views,
        missing_rate=missing_rate,
        wrong_rate=wrong_rate,
        source=source or DEFAULT_SOURCE,
    )
    try:
        cat = build_demo_catalog(out, cfg, progress=sys.stderr.isatty(), workers=workers)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    verb = "reused" if cat.reused else "built"
    click.echo(
        f"{verb} {out} in {cat.seconds:.1f} s: {cat.counts['train']} train, "
        f"{cat.counts['base']} base, {cat.counts['query']} query items; "
        f"datasheet {cat.datasheet}"
    )


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

    cfg = _load_config_with_overrides(
        config_path,
        epochs=epochs,
        batch_size=batch_size,
        device=device,
        seed=seed,
        loss=loss,
        backbone=backbone,
    )
    result = train(
        catalog_path, out, cfg, resume=resume, overwrite=overwrite, progress=not quiet,
        image_roots=images_root,
    )  # fmt: skip
    if result.metrics:
        last = result.metrics[-1]
        click.echo(json.dumps({k: last[k] for k in sorted(last) if k.startswith("val_")}))


@cli.command("train-visual")
@click.option(
    "--catalog",
    "catalog_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Training catalog manifest; items with extra_images give same-item positives.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Visual model folder to write (model.safetensors, config.json).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="[default: 2]")
@click.option("--batch-size", type=click.IntRange(min=2), default=None, help="[default: 128]")
@click.option(
    "--backbone",
    type=click.Choice(["resnet18", "efficientnet_lite0"]),
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
@click.option("--device", default=None, help='"auto", "cpu", "cuda", "cuda:N" [default: auto].')
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="DataLoader workers [default: min(4, cores)].")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace a visual model in --out.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@images_root_option
@friendly_errors
def train_visual_cmd(
    catalog_path: Path,
    out: Path,
    overwrite: bool,
    quiet: bool,
    images_root: tuple[Path, ...],
    **overrides: Any,
) -> None:
    """Train the baseline visual model (the V-nDCG judge of `stylesearch eval`).

    An image-only network trained with the triplet loss: another image of the same item is the
    positive, images of other items are the negatives. Prints its held-out same-item R@1.
    """
    from stylesearch.evaluation.visual import VisualConfig, train_visual

    overrides["pretrained"] = overrides["pretrained"] or None  # the flag only turns it on
    config = VisualConfig(**{k: v for k, v in overrides.items() if v is not None})
    metrics = train_visual(
        catalog_path, out, config, overwrite=overwrite, progress=not quiet,
        image_roots=images_root,
    )  # fmt: skip
    final = metrics["final"]
    click.echo(json.dumps({k: final[k] for k in ("val_r1", "val_r10", "val_items") if k in final}))


# --------------------------------------------------------------------------- eval


def _scoring_options(func: F) -> F:
    """``--word-weight``, ``--cosine-power`` and ``--look-weight``: the scoring settings
    ``stylesearch tune`` picks on validation queries and records in the index (eval, search and
    serve take them alike). Unset, the index's recorded settings apply, else the measured
    defaults."""
    func = click.option(
        "--look-weight",
        type=click.FloatRange(min=0, max=1),
        default=None,
        help="Share a of the look (the colour-blind shape vector) in the query of every method "
        "with an image, on an index whose model has one; 0 ranks by the joint embedding alone "
        "[default: the value `stylesearch tune` recorded in the index, else 0.5].",
    )(func)
    func = click.option(
        "--cosine-power",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="g of the soft filter's score c~^g * p (filter, combined): above 1 the looks weigh "
        "more against the attribute probabilities [default: the value `stylesearch tune` "
        "recorded in the index, else 8].",
    )(func)
    return click.option(
        "--word-weight",
        type=click.FloatRange(min=0),
        default=None,
        help="Weight of each word vector in query arithmetic (b = c), for every method "
        "[default: the weights `stylesearch tune` recorded in the index, else 1 for "
        "arithmetic and 0.25 for combined].",
    )(func)


def _searcher_settings(
    word_weight: float | None, cosine_power: float | None, look_weight: float | None
) -> dict[str, Any]:
    """``Searcher`` keyword arguments for the ``_scoring_options`` values."""
    return {"word_weight": word_weight, "cosine_power": cosine_power, "look_weight": look_weight}


def _compare_option(values: tuple[str, ...]) -> list[tuple[str, Path]]:
    pairs = []
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise click.BadParameter(
                f"{value!r}: expected NAME=INDEX_DIR (e.g. triplet=runs/demo/triplet/index)",
                param_hint="--compare",
            )
        pairs.append((name.strip(), Path(folder.strip())))
    return pairs


@cli.group("eval", invoke_without_command=True)
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Index of the base catalog (built with `stylesearch index`); its model is loaded.",
)
@click.option(
    "--queries",
    "queries_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Benchmark queries (JSONL) from `stylesearch eval build-queries`.",
)
@click.option(
    "--visual",
    "visual_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Baseline visual model from `stylesearch train-visual` (the V-nDCG judge).",
)
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="nDCG cut-off K (results per query).")  # fmt: skip
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Report folder: report.json, report.md, per_query.jsonl, methods.png, examples.png.",
)
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(path_type=Path),
    default=None,
    help="truth.jsonl of the base catalog: adds T-nDCG / MM against the clean attributes, "
    "and, when it names each item's source image (a demo catalog), the shape judge "
    "(V-shape, MM-shape, category@K) and the oracle row.",
)
@click.option(
    "--shape-source",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Fashion-MNIST folder of the shape judge [default: the one recorded in the catalog's "
    "build.json beside --truth].",
)
@click.option(
    "--compare",
    multiple=True,
    metavar="NAME=INDEX_DIR",
    help="Another system (index + its model) over the same base catalog; repeatable.",
)
@click.option(
    "--name",
    default="main",
    show_default=True,
    help="Name of the --index system in the report.",
)
@click.option(
    "--methods",
    default=None,
    help="Comma-separated methods to run (default: all six).",
)
@_scoring_options
@click.option(
    "--no-baseline",
    is_flag=True,
    help="Skip the off-the-shelf baseline (ImageNet features + keyword filter).",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
@friendly_errors
def eval_group(
    ctx: click.Context,
    index_dir: Path | None,
    queries_path: Path | None,
    visual_dir: Path | None,
    k: int,
    out: Path | None,
    truth_path: Path | None,
    shape_source: Path | None,
    compare: tuple[str, ...],
    name: str,
    methods: str | None,
    word_weight: float | None,
    cosine_power: float,
    look_weight: float | None,
    no_baseline: bool,
    quiet: bool,
) -> None:
    """Evaluate search quality with the paper's protocol (V-nDCG, T-nDCG, MM).

    `stylesearch eval --index INDEX_DIR --queries QUERIES.jsonl --visual VISUAL_DIR --out DIR`
    runs every method (visual, text, arithmetic, filter, filter-hard, combined) on every
    query, judges the top K by the visual model (V-nDCG), by the items' metadata (T-nDCG) and,
    with --truth, by the clean attributes, and writes the report. Subcommands build the
    queries and score the attribute head.
    """
    if ctx.invoked_subcommand is not None:
        return
    missing = [
        opt
        for opt, value in (
            ("--index", index_dir), ("--queries", queries_path), ("--visual", visual_dir),
            ("--out", out),
        )
        if value is None
    ]  # fmt: skip
    if missing:
        raise click.UsageError(f"missing option(s) {', '.join(missing)} to run an evaluation")
    from stylesearch.evaluation.report import format_table, run_evaluation

    assert index_dir and queries_path and visual_dir and out
    report = run_evaluation(
        index_dir,
        queries_path,
        visual_dir,
        out,
        k=k,
        truth_path=truth_path,
        compare=_compare_option(compare),
        name=name,
        methods=[m.strip() for m in methods.split(",") if m.strip()] if methods else None,
        baseline=not no_baseline,
        word_weight=word_weight,
        cosine_power=cosine_power,
        look_weight=look_weight,
        shape_source=shape_source,
        progress=not quiet and sys.stderr.isatty(),
    )
    click.echo(format_table(report["table"], truth=report["truth"]))
    click.echo(f"report: {out / 'report.md'} (and report.json, methods.png, examples.png)")


@eval_group.command("build-queries")
@click.option(
    "--catalog",
    "catalog_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The query catalog (items never in the base catalog, e.g. the demo's query split).",
)
@click.option(
    "--truth",
    "truth_path",
    required=True,
    type=click.Path(path_type=Path),
    help="truth.jsonl with the clean attributes of the query items.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Queries file to write (JSONL).",
)
@click.option(
    "--set",
    "part",
    type=click.Choice(["validation", "test"]),
    default="test",
    show_default=True,
    help="Which half of the query items (split by a hash of the id; the halves never share "
    "an item): tune on validation, report on test.",
)
@click.option(
    "--n",
    type=click.IntRange(min=1),
    default=None,
    help="Number of queries [default: one per query item of the set].",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--groups",
    default="colour=0.4,pattern=0.4,category=0.2",
    show_default=True,
    help="Attribute groups of truth.jsonl to draw words from, with their share of each kind.",
)
@images_root_option
@friendly_errors
def eval_build_queries(
    catalog_path: Path,
    truth_path: Path,
    out: Path,
    part: str,
    n: int | None,
    seed: int,
    groups: str,
    images_root: tuple[Path, ...],
) -> None:
    """Build benchmark queries: add, remove and replace requirements in equal numbers.

    Words come from the query items' clean attributes (--groups: by default colour 40 %,
    pattern 40 %, category 20 % of each kind): "+striped" on a solid item, "-red" on a red one,
    "-red +blue".
    """
    from collections import Counter

    from stylesearch.catalog.manifest import load_catalog
    from stylesearch.evaluation.attributes import load_truth
    from stylesearch.evaluation.queries import build_queries, write_queries

    shares: dict[str, float] = {}
    for part_spec in groups.split(","):
        name, _, share = part_spec.partition("=")
        try:
            shares[name.strip()] = float(share)
        except ValueError:
            raise click.BadParameter(
                f"{part_spec!r}: expected GROUP=SHARE, e.g. colour=0.5", param_hint="--groups"
            ) from None
    items = list(load_catalog(catalog_path, validate_images=False, image_roots=images_root).items)
    try:
        queries = build_queries(
            items, load_truth(truth_path), part=part, n=n, seed=seed, group_shares=shares
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    write_queries(queries, out)
    mix = Counter((q.type, q.group) for q in queries)
    click.echo(
        f"{len(queries)} {part} queries -> {out} ("
        + ", ".join(f"{t}/{g} {c}" for (t, g), c in sorted(mix.items()))
        + ")"
    )


@eval_group.command("attributes")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Model folder written by `stylesearch train`.",
)
@click.option(
    "--catalog",
    "catalog_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Catalog to score (e.g. the demo's base/manifest.jsonl).",
)
@click.option(
    "--truth",
    "truth_path",
    required=True,
    type=click.Path(path_type=Path),
    help="truth.jsonl with clean attributes per item (the demo catalog writes one).",
)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@images_root_option
@friendly_errors
def eval_attributes(
    model_dir: Path,
    catalog_path: Path,
    truth_path: Path,
    device: str,
    as_json: bool,
    images_root: tuple[Path, ...],
) -> None:
    """Attribute average precision per group (category, colour, pattern) of the attribute head.

    Scores against the clean truth (a value counts its synonyms: crimson is red) and against
    the catalog's own noisy metadata. Groups and synonyms are those of the demo catalog.
    """
    import stylesearch
    from stylesearch.catalog.demo_text import VOCABULARY
    from stylesearch.catalog.manifest import load_catalog
    from stylesearch.evaluation.attributes import evaluate_attributes, load_truth

    model = stylesearch.load_model(model_dir, device=device)
    tty = sys.stderr.isatty()
    items = list(load_catalog(catalog_path, progress=tty, image_roots=images_root).items)
    scores = evaluate_attributes(
        model, items, load_truth(truth_path), VOCABULARY,
        device=device, progress=sys.stderr.isatty(),
    )  # fmt: skip
    if as_json:
        result = {g: s.as_dict() for g, s in scores.items()}
        for s in result.values():  # NaN (a group without vocabulary words) is not valid JSON
            s.update({k: None for k in ("truth_ap", "metadata_ap") if s[k] != s[k]})
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(f"{len(items)} items; average precision per group")
    click.echo(f"{'group':10s} {'vs truth':>9s} {'vs metadata':>12s}")
    for group, s in scores.items():
        click.echo(f"{group:10s} {s.truth_ap:9.3f} {s.metadata_ap:12.3f}")


# --------------------------------------------------------------------------- tune


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise click.BadParameter(f"{what}: numbers separated by commas, got {text!r}") from None


@cli.command("tune")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="The index to tune; the chosen settings are recorded in it.",
)
@click.option(
    "--queries",
    "queries_path",
    type=click.Path(path_type=Path),
    required=True,
    help="VALIDATION queries from `stylesearch eval build-queries --set validation` (never the "
    "test queries you report on).",
)
@click.option(
    "--visual",
    "visual_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Baseline visual model from `stylesearch train-visual` (the V-nDCG judge).",
)
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(path_type=Path),
    default=None,
    help="truth.jsonl of the catalog: adds the shape judge to the objective when it names each "
    "item's source image (a demo catalog).",
)
@click.option("--word-weights", default="0,0.25,0.5,1", show_default=True,
              help="Word weights to try (comma-separated).")  # fmt: skip
@click.option("--cosine-powers", default="4,8,16", show_default=True,
              help="Cosine powers to try for combined (comma-separated).")  # fmt: skip
@click.option("--look-weights", default="0,0.3,0.5,0.7", show_default=True,
              help="Look weights to try for combined, on an index whose model has a look "
              "(comma-separated).")  # fmt: skip
@click.option("--min-truth-t", type=click.FloatRange(min=0, max=1), default=0.95,
              show_default=True,
              help="With --truth, choose among the settings whose T-nDCG (truth) is at least "
              "this (all of them when none is).")  # fmt: skip
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="nDCG cut-off K.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Print the choice without recording it.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@friendly_errors
def tune_cmd(
    index_dir: Path,
    queries_path: Path,
    visual_dir: Path,
    truth_path: Path | None,
    word_weights: str,
    cosine_powers: str,
    look_weights: str,
    min_truth_t: float,
    k: int,
    dry_run: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Choose the search settings on validation queries and record them in the index.

    Tries every word weight x cosine power x look weight for `combined` (whose cosine power
    `filter` shares, and whose look weight every method shares), and every word weight for
    `arithmetic` at that look weight, judged as `stylesearch eval` judges. The objective is
    sqrt(MM x MM-shape), or MM when the truth names no source images; with the truth, only
    settings that keep T-nDCG (truth) >= --min-truth-t are chosen (when any do). `search`,
    `serve` and `eval` then use the recorded settings unless a flag overrides them.
    """
    from stylesearch.evaluation.tuning import tune_index

    result = tune_index(
        index_dir, queries_path, visual_dir, truth_path=truth_path,
        word_weights=_floats(word_weights, "--word-weights"),
        cosine_powers=_floats(cosine_powers, "--cosine-powers"),
        look_weights=_floats(look_weights, "--look-weights"), min_truth_t=min_truth_t, k=k,
        write=not dry_run,
        progress=not quiet and sys.stderr.isatty(),
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo("| method | word weight | cosine power | look weight | MM | MM-shape | objective |")
    click.echo("|---|---|---|---|---|---|---|")
    for r in result["table"]:
        shape = "-" if r["mm_shape"] is None else f"{r['mm_shape']:.3f}"
        power = "-" if r["cosine_power"] is None else f"{r['cosine_power']:g}"
        click.echo(
            f"| {r['method']} | {r['word_weight']:g} | {power} | {r['look_weight']:g} | "
            f"{r['mm']:.3f} | {shape} | "
            f"{r['objective']:.3f} |"
        )
    settings = result["settings"]
    weights = ", ".join(f"{m} {w:g}" for m, w in settings["word_weight"].items())
    verb = "would record" if dry_run else "recorded in " + str(index_dir)
    click.echo(
        f"chosen ({result['objective']}): word weight {weights}; cosine power "
        f"{settings['cosine_power']:g}; look weight {settings['look_weight']:g}; {verb}"
    )


# --------------------------------------------------------------------------- index / search


def _backend_options(func: F) -> F:
    """--backend and its parameters (shared by `index` and `index merge`)."""
    options = [
        click.option(
            "--backend",
            type=click.Choice(["faiss", "exact", "milvus"]),
            default="faiss",
            show_default=True,
            help="faiss: HNSW graph (the default, fast at scale); exact: numpy brute force (the "
            "oracle); milvus: a Milvus server or cluster (needs --milvus-uri).",
        ),
        click.option("--hnsw-m", type=click.IntRange(min=2), default=32, show_default=True),
        click.option(
            "--ef-construction", type=click.IntRange(min=1), default=100, show_default=True
        ),
        click.option("--ef-search", type=click.IntRange(min=1), default=128, show_default=True),
        click.option(
            "--milvus-uri",
            default=None,
            metavar="URI",
            help="Milvus address for --backend milvus, e.g. http://127.0.0.1:19530.",
        ),
        click.option(
            "--collection",
            default=None,
            help="Milvus collection to create (default: stylesearch_<random>); must not exist.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _backend_params(
    backend: str,
    hnsw_m: int,
    ef_construction: int,
    ef_search: int,
    milvus_uri: str | None,
    collection: str | None,
) -> dict[str, Any] | None:
    if backend != "milvus":
        if milvus_uri or collection:
            raise click.UsageError("--milvus-uri and --collection need --backend milvus")
        return (
            None
            if backend == "exact"
            else {"M": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search}
        )
    if not milvus_uri:
        raise click.UsageError("--backend milvus needs --milvus-uri URI")
    params: dict[str, Any] = {
        "M": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search,
        "uri": milvus_uri, "collection": collection,
    }  # fmt: skip
    return params


@cli.group("index", invoke_without_command=True)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Model folder written by `stylesearch train`.",
)
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Catalog manifest to index (e.g. the demo's base/manifest.jsonl).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Index folder to write (an existing index there is replaced only once the new one "
    "is complete).",
)
@_backend_options
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    help="Index only the I-th of N contiguous slices of the catalog (0-based), e.g. 0/4; "
    "join the shard folders with `stylesearch index merge`.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Images per batch.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="DataLoader workers.",
)
@click.option("--device", default="cpu", show_default=True, help='"cpu", "cuda", "cuda:N".')
@click.option("--quiet", is_flag=True, help="No progress bars.")
@images_root_option
@click.pass_context
@friendly_errors
def index_group(
    ctx: click.Context,
    model_dir: Path | None,
    catalog_path: Path | None,
    out: Path | None,
    backend: str,
    hnsw_m: int,
    ef_construction: int,
    ef_search: int,
    milvus_uri: str | None,
    collection: str | None,
    shard: str | None,
    batch_size: int,
    workers: int,
    device: str,
    quiet: bool,
    images_root: tuple[Path, ...],
) -> None:
    """Build a search index: `stylesearch index --model MODEL_DIR --catalog MANIFEST --out DIR`.

    Embeds every catalog image with the model, stores the unit vectors, each item's attribute
    probabilities for every vocabulary word and its metadata words, builds the vector backend,
    and records the model's fingerprint (searching with another model is refused). The folder is
    written beside OUT and swapped in at the end: a failure leaves any previous index intact.
    Subcommands add, delete and merge change or join existing indexes without a rebuild.
    """
    if ctx.invoked_subcommand is not None:
        return
    params = _backend_params(backend, hnsw_m, ef_construction, ef_search, milvus_uri, collection)
    missing = [
        name
        for name, value in (("--model", model_dir), ("--catalog", catalog_path), ("--out", out))
        if value is None
    ]
    if missing:
        raise click.UsageError(f"missing option(s) {', '.join(missing)} to build an index")
    from stylesearch.index.build import build_index

    assert model_dir is not None and catalog_path is not None and out is not None
    try:
        result = build_index(
            model_dir,
            catalog_path,
            out,
            backend=backend,
            backend_params=params,
            batch_size=batch_size,
            num_workers=workers,
            device=device,
            progress=not quiet and sys.stderr.isatty(),
            shard=shard,
            image_roots=images_root,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"indexed {result.count} items ({result.rejected} rejected rows skipped) into "
        f"{result.out_dir} [{result.backend}]: {result.images_per_second:.0f} images/s, "
        f"{result.total_seconds:.1f} s in all"
    )


@index_group.command("add")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Index folder to add to.",
)
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Catalog manifest of the new items (their ids must not be in the index yet).",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Model folder, when it moved since the index was built (it must be the same model).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--device", default="cpu", show_default=True, help='"cpu", "cuda", "cuda:N".')
@click.option("--quiet", is_flag=True, help="No progress bars.")
@images_root_option
@friendly_errors
def index_add(
    index_dir: Path,
    catalog_path: Path,
    model_dir: Path | None,
    batch_size: int,
    workers: int,
    device: str,
    quiet: bool,
    images_root: tuple[Path, ...],
) -> None:
    """Embed new catalog items and add them to an index (no rebuild).

    Only the new items are embedded; the backend is extended (faiss: the vectors are inserted
    into the graph; Milvus: into the collection). The updated index is written beside the old
    one and swapped in at the end: a failure leaves the old index as it was.
    """
    from stylesearch.index.update import add_items

    result = add_items(
        index_dir,
        catalog_path,
        model_dir=model_dir,
        batch_size=batch_size,
        num_workers=workers,
        device=device,
        progress=not quiet and sys.stderr.isatty(),
        image_roots=images_root,
    )
    click.echo(
        f"added {result.added} items ({result.rejected} rejected rows skipped) to "
        f"{result.index_dir}: {result.live} items now, {result.total_seconds:.1f} s"
    )


@index_group.command("delete")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Index folder to delete from.",
)
@click.option(
    "--ids",
    "ids_file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="File of item ids, one per line (# comments and blank lines skipped; JSON Lines with "
    'an "id" also work).',
)
@friendly_errors
def index_delete(index_dir: Path, ids_file: Path) -> None:
    """Delete items from an index (no rebuild): search never returns them again.

    Ids that are not in the index are listed on stderr; the exit status is 1 when none of the
    ids was found.
    """
    from stylesearch.index.update import delete_items, read_ids_file

    ids = read_ids_file(ids_file)
    result = delete_items(index_dir, ids)
    if result.unknown:
        shown = ", ".join(result.unknown[:10]) + (" ..." if len(result.unknown) > 10 else "")
        click.echo(f"{len(result.unknown)} id(s) not in the index: {shown}", err=True)
    if result.deleted == 0:
        raise click.ClickException(f"none of the {len(ids)} ids of {ids_file} is in the index")
    if result.warning:
        click.echo(f"warning: {result.warning}", err=True)
    click.echo(f"deleted {result.deleted} items from {index_dir}: {result.live} items left")


@index_group.command("merge")
@click.argument(
    "shards", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="SHARD_DIR..."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Index folder to write (an existing index there is replaced once the new one is "
    "complete).",
)
@_backend_options
@click.option("--quiet", is_flag=True, help="No progress bars.")
@friendly_errors
def index_merge(
    shards: tuple[Path, ...],
    out: Path,
    backend: str,
    hnsw_m: int,
    ef_construction: int,
    ef_search: int,
    milvus_uri: str | None,
    collection: str | None,
    quiet: bool,
) -> None:
    """Join shard indexes (`stylesearch index --shard I/N`) into one index: SHARD_DIR...

    The shards must come from the same model and hold different item ids; with I/N shards every
    one of the N must be given. Any backend: --backend milvus loads the shards into Milvus.
    """
    from stylesearch.index.update import merge_indexes

    params = _backend_params(backend, hnsw_m, ef_construction, ef_search, milvus_uri, collection)
    result = merge_indexes(
        out, shards, backend=backend, backend_params=params,
        progress=not quiet and sys.stderr.isatty(),
    )  # fmt: skip
    click.echo(
        f"merged {result.shards} indexes ({result.count} items) into {result.out_dir} "
        f"[{result.backend}] in {result.total_seconds:.1f} s"
    )


@cli.command("search")
@click.option(
    "--index",
    "index_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Index folder written by `stylesearch index`.",
)
@click.option("--image", type=click.Path(path_type=Path), default=None, help="Query image file.")
@click.option("--item", "item_id", default=None, help="Use this indexed item as the query image.")
@click.option("--add", "add", multiple=True, help="A wanted word (repeatable).")
@click.option("--remove", "remove", multiple=True, help="An unwanted word (repeatable).")
@click.option(
    "--query",
    "query_text",
    default=None,
    help='Words in the one-line syntax: "+red -striped dress" (bare words are wanted).',
)
@click.option("--must", multiple=True, help="Hard filter: the item's metadata has this word.")
@click.option(
    "--must-not",
    "must_not",
    multiple=True,
    help="Hard filter: the item's metadata lacks this word.",
)
@click.option(
    "--method",
    type=click.Choice(["visual", "text", "arithmetic", "filter", "filter-hard", "combined"]),
    default="combined",
    show_default=True,
)
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Model folder [default: the one the index records]; must be the one it was built with.",
)
@click.option("--device", default="cpu", show_default=True)
@_scoring_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@friendly_errors
def search_cmd(
    index_dir: Path,
    image: Path | None,
    item_id: str | None,
    add: tuple[str, ...],
    remove: tuple[str, ...],
    query_text: str | None,
    must: tuple[str, ...],
    must_not: tuple[str, ...],
    method: str,
    k: int,
    model_dir: Path | None,
    device: str,
    word_weight: float | None,
    cosine_power: float,
    look_weight: float | None,
    as_json: bool,
) -> None:
    """Search an index with an image (--image or --item) and wanted / unwanted words.

    \b
    Methods (docs/search.md):
      visual       the image alone (words ignored)
      text         the words alone
      arithmetic   f_I + f_T(wanted) - f_T(unwanted)
      filter       the image, ranked by (1 + cos) / 2 x attribute probability (soft filter)
      filter-hard  the image, among items whose metadata has the wanted words and lacks the
                   unwanted ones
      combined     the arithmetic query with the soft filter (default)
    """
    from stylesearch.search import Query, Searcher

    if method != "text" and (image is None) == (item_id is None):
        raise click.UsageError("give exactly one of --image PATH or --item ID")
    query = Query(
        image=image,
        item_id=item_id,
        add=add,
        remove=remove,
        method=method,
        k=k,
        must=must,
        must_not=must_not,
        text=query_text,
    )
    searcher = Searcher.load(
        index_dir,
        model_dir=model_dir,
        device=device,
        **_searcher_settings(word_weight, cosine_power, look_weight),
    )
    response = searcher.search(query)
    if as_json:
        click.echo(json.dumps(response.to_dict(), ensure_ascii=False))
        return
    q = response.query
    words = " ".join([*(f"+{w}" for w in q["add"]), *(f"-{w}" for w in q["remove"])])
    click.echo(f"{response.method} {words} ({response.took_ms:.1f} ms)".replace("  ", " "))
    if response.message:
        click.echo(response.message)
    if response.results:
        click.echo(f"{'#':>3} {'score':>7} {'cosine':>7} {'p(words)':>8}  {'id':<16} title")
        for rank, r in enumerate(response.results, 1):
            click.echo(
                f"{rank:>3} {r.score:7.4f} {r.cosine:7.4f} {r.attribute_score:8.4f}  "
                f"{r.id:<16} {r.title}"
            )


# --------------------------------------------------------------------------- serve


@cli.command("serve")
@click.option(
    "--index",
    "index_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Index folder written by `stylesearch index`.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Model folder [default: the one the index records]; must be the one it was built with.",
)
@click.option("--device", default="cpu", show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Torch threads for encoding uploads (more help only on an idle multi-core machine).",
)
@click.option(
    "--max-upload-bytes",
    type=click.IntRange(min=1),
    default=10 * 1024 * 1024,
    show_default=True,
    help="Largest accepted image upload (413 above it).",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=25_000_000,
    show_default=True,
    help="Largest accepted image, width x height, checked before decoding (413 above it).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests whose Host header names NAME (repeatable; '*': any, only behind "
    "a proxy that checks it). Always answered: the --host address and the loopback names.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds a client may take to send a request's headers (then 408 and closed).",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a client may take to send a request's body after its headers (then 408).",
)
@_scoring_options
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@friendly_errors
def serve_cmd(
    index_dir: Path,
    host: str,
    port: int,
    model_dir: Path | None,
    device: str,
    threads: int,
    max_upload_bytes: int,
    max_pixels: int,
    allowed_hosts: tuple[str, ...],
    header_timeout: float,
    body_timeout: float,
    word_weight: float | None,
    cosine_power: float,
    look_weight: float | None,
    log_level: str,
) -> None:
    """Serve the search engine over HTTP: the JSON API under /api and the web page at /.

    Loads the model and the index once. The OpenAPI documentation is at /docs (docs/server.md).
    There is no authentication: on an address other than 127.0.0.1, put it behind a reverse
    proxy that authenticates.
    """
    try:
        import uvicorn

        from stylesearch.server import create_app
    except ImportError as exc:
        raise click.ClickException(
            f"serving needs FastAPI and uvicorn ({exc}); install them with "
            "`pip install 'stylesearch[serve]'`"
        ) from None
    import torch

    from stylesearch.server.guards import browse_host, default_allowed_hosts, exposure_warning
    from stylesearch.server.protocol import uvicorn_options
    from stylesearch.server.service import SearchService, ServerLimits

    torch.set_num_threads(threads)
    hosts = tuple(dict.fromkeys((*default_allowed_hosts(host), *allowed_hosts)))
    limits = ServerLimits(
        max_upload_bytes=max_upload_bytes, max_pixels=max_pixels, header_timeout=header_timeout,
        body_timeout=body_timeout, allowed_hosts=hosts,
    )  # fmt: skip
    try:
        service = SearchService.load(
            index_dir,
            model_dir=model_dir,
            device=device,
            limits=limits,
            **_searcher_settings(word_weight, cosine_power, look_weight),
        )
    except ValueError as exc:  # an empty index, a model without a vocabulary
        raise click.ClickException(f"{index_dir}: {exc}") from None
    click.echo(
        f"stylesearch: {service.index.count} items, {len(service.words)} words; "
        f"open http://{browse_host(host)}:{port}/ (API docs at /docs)",
        err=True,
    )
    warning = exposure_warning(host, port, hosts)
    if warning:
        click.echo(f"stylesearch: {warning}", err=True)
    app = create_app(service)
    uvicorn.run(app, host=host, port=port, log_level=log_level, **uvicorn_options(limits))


# --------------------------------------------------------------------------- demo


@cli.command("demo")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
    help="Where the catalog, model and results go.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help='"auto" (a GPU when there is one), "cpu", "cuda".',
)
@click.option(
    "--compare",
    is_flag=True,
    help="Also train the joint model with the triplet loss and with a ResNet-18 tower from "
    "scratch (about twice the training time) and compare them in the report.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the demo catalog's draw (garments, colours, patterns, noise). Use another "
    "--workdir per seed to keep each run's stages.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@friendly_errors
def demo_cmd(workdir: Path, device: str, compare: bool, seed: int, quiet: bool) -> None:
    """Run the engine end to end on the built-in demo catalog and print the results.

    Builds the Fashion-MNIST style catalog, trains the joint model and the baseline visual
    model, indexes the base catalog, builds validation and test queries, tunes the search
    settings (word weights, cosine power, look weight) on validation, evaluates every search
    method on test (V-nDCG, T-nDCG, MM) and prints the table, three example searches and how
    to start the server. About 24-29 minutes on a 2-core CPU; a second run reuses every finished
    stage.
    """
    from stylesearch.catalog.demo import DemoConfig
    from stylesearch.demo import format_report, run_demo

    result = run_demo(
        workdir, catalog_config=DemoConfig(seed=seed), device=device, compare=compare,
        progress=not quiet,
    )  # fmt: skip
    click.echo(format_report(result))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="stylesearch")
