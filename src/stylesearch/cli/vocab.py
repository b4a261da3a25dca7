"""``stylesearch vocab``: a model's words with their catalog counts and visual grounding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stylesearch.cli.options import (
    catalog_option,
    device_option,
    friendly_errors,
    images_root_option,
    json_option,
    model_option,
    quiet_option,
    show_progress,
)
from stylesearch.model.grounding import DEFAULT_MIN_POSITIVES, VISUAL_THRESHOLD

if TYPE_CHECKING:
    from stylesearch.model.grounding import Grounding
    from stylesearch.model.joint import JointModel
    from stylesearch.model.synonyms import Synonyms


@click.command("vocab")
@model_option("Model folder written by `stylesearch train`.", required=True)
@catalog_option(
    "Measure the grounding on this manifest instead of reading the model folder's: the "
    "training catalog (its held-out split is used, as in training) or a held-out catalog "
    "(all its items).",
    required=False,
)
@click.option(
    "--write",
    is_flag=True,
    help="Save the grounding measured with --catalog (grounding.json) and the synonym groups "
    "learned from all its items (synonyms.json) in the model folder.",
)
@click.option(
    "--threshold",
    type=float,
    default=VISUAL_THRESHOLD,
    show_default=True,
    help="Least grounding of a visual word.",
)
@click.option(
    "--min-positives",
    type=click.IntRange(min=1),
    default=DEFAULT_MIN_POSITIVES,
    show_default=True,
    help="With --catalog: fewest items whose metadata has a word for it to get a score.",
)
@json_option('Print a JSON list of {"word", "count", "grounding", "visual", "synonyms"}.')
@device_option()
@quiet_option
@images_root_option
@friendly_errors
def vocab_cmd(
    model_dir: Path,
    catalog_path: Path | None,
    write: bool,
    threshold: float,
    min_positives: int,
    as_json: bool,
    device: str,
    quiet: bool,
    images_root: tuple[Path, ...],
) -> None:
    """List a model's words by visual grounding, with their catalog counts.

    A word's grounding (2 * AUC - 1 of the attribute head on held-out items, see
    docs/training.md) says how well an image predicts it; a word is visual when it reaches
    --threshold. The scores come from the model folder's grounding.json (written by
    `stylesearch train`), or are measured now with --catalog (and saved with --write).
    """
    import stylesearch
    from stylesearch.model.grounding import vocabulary_rows
    from stylesearch.model.io import GROUNDING_FILE

    if write and catalog_path is None:
        raise click.UsageError("--write saves a grounding measured with --catalog: give --catalog")
    model = stylesearch.load_model(model_dir, device=device)
    assert model.vocab is not None  # load_model sets it
    grounding = model.grounding
    synonyms = model.synonyms
    if catalog_path is not None:
        grounding, synonyms = _measure(
            model, model_dir, catalog_path, write=write, threshold=threshold,
            min_positives=min_positives, device=device, quiet=quiet, images_root=images_root,
        )  # fmt: skip
    elif grounding is None:
        click.echo(
            f"vocab: {model_dir} has no {GROUNDING_FILE}; every word counts as visual. Measure "
            f"it with `stylesearch vocab --model {model_dir} --catalog TRAIN_MANIFEST --write`",
            err=True,
        )
    rows = vocabulary_rows(model.vocab.words, model.vocab.counts, grounding, threshold, synonyms)
    if as_json:
        click.echo(
            json.dumps(
                [row | {"synonyms": [] if synonyms is None else synonyms.others(row["word"])}
                 for row in rows]
            )
        )  # fmt: skip
    else:
        _print_table(rows, synonyms)


def _measure(
    model: JointModel, model_dir: Path, catalog_path: Path, *, write: bool, threshold: float,
    min_positives: int, device: str, quiet: bool, images_root: tuple[Path, ...],
) -> tuple[Grounding, Synonyms]:  # fmt: skip
    """The grounding measured on ``catalog_path`` (set on ``model``) and the synonym groups
    learned from it, both saved in ``model_dir`` with ``write``."""
    from stylesearch.model.io import read_model_config, save_grounding, save_synonyms
    from stylesearch.training.grounding import (
        grounding_items,
        learn_synonyms,
        measure_grounding,
        synonym_items,
    )

    progress = show_progress(quiet)
    held_out = grounding_items(
        model, read_model_config(model_dir), catalog_path,
        image_roots=images_root, progress=progress,
    )  # fmt: skip
    click.echo(
        f"vocab: measuring grounding on the {len(held_out.items)} items of the {held_out.source}",
        err=True,
    )
    grounding = measure_grounding(
        model, held_out, min_positives=min_positives,
        device=device, progress=progress,
    )  # fmt: skip
    model.grounding = grounding
    every = synonym_items(model, catalog_path, image_roots=images_root, progress=progress)
    click.echo(
        f"vocab: learning synonyms from the {len(every.items)} items of the {every.source}",
        err=True,
    )
    synonyms = learn_synonyms(
        model, every, grounding_threshold=threshold, device=device,
        progress=progress,
    )  # fmt: skip
    if write:
        for path in (save_grounding(model_dir, grounding), save_synonyms(model_dir, synonyms)):
            click.echo(f"vocab: saved {path}", err=True)
    return grounding, synonyms


def _print_table(rows: list[dict[str, Any]], synonyms: Any = None) -> None:
    width = max([4, *(len(r["word"]) for r in rows)])
    click.echo(f"{'word':<{width}}  {'count':>7}  {'grounding':>9}  visual  synonyms")
    for r in rows:
        score = "-" if r["grounding"] is None else f"{r['grounding']:.3f}"
        visual = "yes" if r["visual"] else "no "
        others = "" if synonyms is None else ", ".join(synonyms.others(r["word"]))
        line = f"{r['word']:<{width}}  {r['count']:>7}  {score:>9}  {visual}     {others}"
        click.echo(line.rstrip())
