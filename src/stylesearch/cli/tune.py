"""``stylesearch tune``: choose the search settings on validation queries, record them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from stylesearch.cli.eval import VISUAL_HELP
from stylesearch.cli.options import (
    friendly_errors,
    index_option,
    json_option,
    k_option,
    path_option,
    quiet_option,
    show_progress,
)


def parse_floats(text: str, what: str) -> list[float]:
    """Numbers separated by commas (or spaces) of option ``what``."""
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise click.BadParameter(f"{what}: numbers separated by commas, got {text!r}") from None


@click.command("tune")
@index_option("The index to tune; the chosen settings are recorded in it.")
@path_option(
    "--queries",
    "queries_path",
    required=True,
    help="VALIDATION queries from `stylesearch eval build-queries --set validation` (never the "
    "test queries you report on).",
)
@path_option("--visual", "visual_dir", required=True, help=VISUAL_HELP)
@path_option(
    "--truth",
    "truth_path",
    help="truth.jsonl of the catalog: adds the shape judge to the objective when it names each "
    "item's source image (a demo catalog).",
)
@click.option("--word-weights", default="0,0.25,0.5,1", show_default=True,
              help="Word weights to try (comma-separated).")  # fmt: skip
@click.option("--cosine-powers", default="4,8", show_default=True,
              help="Cosine powers to try for combined (comma-separated).")  # fmt: skip
@click.option("--look-weights", default="0,0.3,0.4,0.5,0.6,0.7", show_default=True,
              help="Look weights to try for combined, on an index whose model has a look "
              "(comma-separated).")  # fmt: skip
@click.option("--min-truth-t", type=click.FloatRange(min=0, max=1), default=0.95,
              show_default=True,
              help="With --truth, choose among the settings whose T-nDCG (truth) is at least "
              "this on every query kind: add, remove, replace (all of them when none "
              "is).")  # fmt: skip
@click.option("--tie", type=click.FloatRange(min=0), default=0.002, show_default=True,
              help="Objectives at most this far below the best count as a tie; of the tied "
              "settings, the one whose worst query kind has the highest T-nDCG (truth) "
              "wins.")  # fmt: skip
@k_option("nDCG cut-off K.")
@click.option("--dry-run", is_flag=True, help="Print the choice without recording it.")
@json_option("Print the whole result as JSON.")
@quiet_option
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
    tie: float,
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
    settings that keep T-nDCG (truth) >= --min-truth-t on every query kind are chosen (when
    any do). Settings within --tie of the best objective are a tie, which the one that obeys
    the words best on its worst query kind wins. `search`, `serve` and `eval` then use the
    recorded settings unless a flag overrides them.
    """
    from stylesearch.evaluation.tuning import tune_index

    result = tune_index(
        index_dir, queries_path, visual_dir, truth_path=truth_path,
        word_weights=parse_floats(word_weights, "--word-weights"),
        cosine_powers=parse_floats(cosine_powers, "--cosine-powers"),
        look_weights=parse_floats(look_weights, "--look-weights"), min_truth_t=min_truth_t, k=k,
        tie=tie, write=not dry_run,
        progress=show_progress(quiet),
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    echo_tuning(result, "would record" if dry_run else "recorded in " + str(index_dir))


def echo_tuning(result: dict[str, Any], verb: str) -> None:
    """``tune``'s table of the settings tried and its choice."""
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
    click.echo(
        f"chosen ({result['objective']}): word weight {weights}; cosine power "
        f"{settings['cosine_power']:g}; look weight {settings['look_weight']:g}; {verb}"
    )
