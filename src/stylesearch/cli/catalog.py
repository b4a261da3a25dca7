"""``stylesearch catalog``: validate catalogs, build the demo and the synthetic shapes catalogs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from stylesearch.cli.options import (
    OptionTable,
    friendly_errors,
    images_root_option,
    json_option,
    path_option,
    quiet_option,
    show_progress,
    table_options,
)

#: Rejected rows ``catalog check`` lists on the terminal (all of them go to the rejects file).
SHOWN_REJECTS = 20


@click.group("catalog")
def catalog() -> None:
    """Validate catalogs and build the demo catalog."""


@catalog.command("check")
@click.argument("manifest", type=click.Path(path_type=Path))
@path_option(
    "--rejects",
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
@json_option("Print the counts as one JSON object.")
@images_root_option
@quiet_option
@friendly_errors
def catalog_check(
    manifest: Path,
    rejects: Path | None,
    no_images: bool,
    max_pixels: int | None,
    as_json: bool,
    images_root: tuple[Path, ...],
    quiet: bool,
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
        progress=show_progress(quiet),
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
        for rej in cat.rejected[:SHOWN_REJECTS]:
            who = f"id {rej.id!r}" if rej.id is not None else "no id"
            click.echo(f"  row {rej.row} ({who}): {rej.reason}")
        if len(cat.rejected) > SHOWN_REJECTS:
            click.echo(f"  ... and {len(cat.rejected) - SHOWN_REJECTS} more")
        if rejects_path:
            click.echo(f"rejected rows written to {rejects_path}")
    if cat.rejected:
        sys.exit(3)


#: ``catalog make-shapes``' settings (see :func:`table_options`).
SHAPES_SETTINGS: OptionTable = {
    "items": (800, click.IntRange(min=1), None),
    "seed": (0, int, None),
    "size": (64, click.IntRange(min=16), None),
}

#: ``catalog build-demo``'s settings, each a :class:`~stylesearch.catalog.demo.DemoConfig`
#: field of the same name (see :func:`table_options`).
DEMO_SETTINGS: OptionTable = {
    "items": (6000, click.IntRange(min=1), "Items in the training catalog."),
    "base_items": (
        4000,
        click.IntRange(min=1),
        "Items in the base catalog that is searched (the paper searched 1.5M; beyond the "
        "training images left over, shapes are reused with new colour/pattern combinations).",
    ),
    "query_items": (
        600,
        click.IntRange(min=1),
        "Benchmark query items (from Fashion-MNIST's test images).",
    ),
    "seed": (0, click.IntRange(min=0), None),
    "size": (64, click.IntRange(min=32), "Image side in pixels."),
    "views": (1, click.IntRange(min=1), "Extra images (other views) per item."),
    "missing_rate": (
        0.15,
        click.FloatRange(0, 1),
        "Fraction of items whose text leaves out one attribute.",
    ),
    "wrong_rate": (
        0.05,
        click.FloatRange(0, 1),
        "Fraction of items whose text states one attribute wrongly.",
    ),
}


@catalog.command("make-shapes")
@path_option("--out", required=True, help="Output folder.")
@table_options(SHAPES_SETTINGS)
@friendly_errors
def catalog_make_shapes(out: Path, items: int, seed: int, size: int) -> None:
    """Generate a small synthetic catalog of coloured shapes with noisy titles (for smoke tests)."""
    from stylesearch.catalog.synthetic import make_shapes_catalog

    manifest = make_shapes_catalog(out, items, seed=seed, image_size=size)
    click.echo(f"wrote {items} items: {manifest}")


@catalog.command("build-demo")
@path_option(
    "--out",
    required=True,
    help="Output folder (created; an existing demo catalog there is reused or replaced).",
)
@table_options(DEMO_SETTINGS)
@path_option(
    "--source",
    help="Folder with the Fashion-MNIST IDX files [default: /usr/share/datasets/fashion-mnist].",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rendering processes.",
)
@quiet_option
@friendly_errors
def catalog_build_demo(
    out: Path, source: Path | None, workers: int, quiet: bool, **settings: Any
) -> None:
    """Build the demo style catalog from Fashion-MNIST garments (train / base / query splits).

    Writes OUT/{train,base,query}/manifest.jsonl, OUT/truth.jsonl (clean attributes, never used
    for training), a datasheet OUT/README.md and OUT/samples.png. A second run with the same
    options does no work.
    """
    from stylesearch.catalog.demo import DEFAULT_SOURCE, DemoConfig, build_demo_catalog

    cfg = DemoConfig(**settings, source=source or DEFAULT_SOURCE)
    cat = build_demo_catalog(out, cfg, progress=show_progress(quiet), workers=workers)
    verb = "reused" if cat.reused else "built"
    click.echo(
        f"{verb} {out} in {cat.seconds:.1f} s: {cat.counts['train']} train, "
        f"{cat.counts['base']} base, {cat.counts['query']} query items; "
        f"datasheet {cat.datasheet}"
    )
