"""``stylesearch eval``: the paper's evaluation protocol, its benchmark queries and the
attribute head's average precision."""

from __future__ import annotations

import json
from pathlib import Path

import click

from stylesearch.cli.options import (
    catalog_option,
    device_option,
    friendly_errors,
    images_root_option,
    index_option,
    json_option,
    k_option,
    model_option,
    path_option,
    quiet_option,
    require_options,
    scoring_options,
    show_progress,
    synonyms_option,
)

#: ``--visual``'s help, the same for ``eval`` and ``tune``.
VISUAL_HELP = "Baseline visual model from `stylesearch train-visual` (the V-nDCG judge)."


def parse_compare(values: tuple[str, ...]) -> list[tuple[str, Path]]:
    """``--compare NAME=INDEX_DIR`` values as (name, folder) pairs."""
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


def parse_group_shares(groups: str) -> dict[str, float]:
    """``--groups colour=0.4,pattern=0.4,...`` as {group: share}."""
    shares: dict[str, float] = {}
    for part_spec in groups.split(","):
        name, _, share = part_spec.partition("=")
        try:
            shares[name.strip()] = float(share)
        except ValueError:
            raise click.BadParameter(
                f"{part_spec!r}: expected GROUP=SHARE, e.g. colour=0.5", param_hint="--groups"
            ) from None
    return shares


@click.group("eval", invoke_without_command=True)
@index_option(
    "Index of the base catalog (built with `stylesearch index`); its model is loaded.",
    required=False,
)
@path_option(
    "--queries",
    "queries_path",
    help="Benchmark queries (JSONL) from `stylesearch eval build-queries`.",
)
@path_option("--visual", "visual_dir", help=VISUAL_HELP)
@k_option("nDCG cut-off K (results per query).")
@path_option(
    "--out",
    help="Report folder: report.json, report.md, per_query.jsonl, methods.png, examples.png.",
)
@path_option(
    "--truth",
    "truth_path",
    help="truth.jsonl of the base catalog: adds T-nDCG / MM against the clean attributes, "
    "and, when it names each item's source image (a demo catalog), the shape judge "
    "(V-shape, MM-shape, category@K, kept@K) and the two oracle rows.",
)
@path_option(
    "--shape-source",
    file_okay=False,
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
@scoring_options
@synonyms_option(
    "Let a filter-hard word cover its synonym group learned with each system's model "
    "(synonyms.json); off, it matches the word as given, as the metadata T-nDCG judge reads "
    "it. No effect for a model folder without synonyms.json."
)
@click.option(
    "--no-baseline",
    is_flag=True,
    help="Skip the off-the-shelf baseline (ImageNet features + keyword filter).",
)
@quiet_option
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
    synonyms: bool,
    no_baseline: bool,
    quiet: bool,
) -> None:
    """Evaluate search quality with the paper's protocol (V-nDCG, T-nDCG, MM).

    `stylesearch eval --index INDEX_DIR --queries QUERIES.jsonl --visual VISUAL_DIR --out DIR`
    runs every method (visual, text, arithmetic, filter, filter-hard, combined) on every
    query, judges the top K by the visual model (V-nDCG), by the items' metadata (T-nDCG) and,
    with --truth, by the clean attributes, and writes the report, with 95 % paired bootstrap
    intervals on combined's lead over every other list. Subcommands build the
    queries and score the attribute head.
    """
    if ctx.invoked_subcommand is not None:
        return
    require_options(
        "run an evaluation",
        ("--index", index_dir), ("--queries", queries_path), ("--visual", visual_dir),
        ("--out", out),
    )  # fmt: skip
    from stylesearch.evaluation.report import format_bootstrap, format_table, run_evaluation

    assert index_dir and queries_path and visual_dir and out
    report = run_evaluation(
        index_dir,
        queries_path,
        visual_dir,
        out,
        k=k,
        truth_path=truth_path,
        compare=parse_compare(compare),
        name=name,
        methods=[m.strip() for m in methods.split(",") if m.strip()] if methods else None,
        baseline=not no_baseline,
        word_weight=word_weight,
        cosine_power=cosine_power,
        look_weight=look_weight,
        synonyms=synonyms,
        shape_source=shape_source,
        progress=show_progress(quiet),
    )
    click.echo(format_table(report["table"], truth=report["truth"]))
    if report["bootstrap"]:
        click.echo("\nHow sure (95 % paired bootstrap intervals over the queries):")
        click.echo(format_bootstrap(report))
    click.echo(f"report: {out / 'report.md'} (and report.json, methods.png, examples.png)")


@eval_group.command("build-queries")
@catalog_option("The query catalog (items never in the base catalog, e.g. the demo's query split).")
@path_option(
    "--truth",
    "truth_path",
    required=True,
    help="truth.jsonl with the clean attributes of the query items.",
)
@path_option("--out", required=True, help="Queries file to write (JSONL).")
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

    shares = parse_group_shares(groups)
    items = list(load_catalog(catalog_path, validate_images=False, image_roots=images_root).items)
    truth = load_truth(truth_path)
    queries = build_queries(items, truth, part=part, n=n, seed=seed, group_shares=shares)
    write_queries(queries, out)
    mix = Counter((q.type, q.group) for q in queries)
    click.echo(
        f"{len(queries)} {part} queries -> {out} ("
        + ", ".join(f"{t}/{g} {c}" for (t, g), c in sorted(mix.items()))
        + ")"
    )


@eval_group.command("attributes")
@model_option("Model folder written by `stylesearch train`.", required=True)
@catalog_option("Catalog to score (e.g. the demo's base/manifest.jsonl).")
@path_option(
    "--truth",
    "truth_path",
    required=True,
    help="truth.jsonl with clean attributes per item (the demo catalog writes one).",
)
@device_option()
@json_option("Print the full result as JSON.")
@images_root_option
@quiet_option
@friendly_errors
def eval_attributes(
    model_dir: Path,
    catalog_path: Path,
    truth_path: Path,
    device: str,
    as_json: bool,
    images_root: tuple[Path, ...],
    quiet: bool,
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
    progress = show_progress(quiet)
    items = list(load_catalog(catalog_path, progress=progress, image_roots=images_root).items)
    scores = evaluate_attributes(
        model, items, load_truth(truth_path), VOCABULARY, device=device, progress=progress
    )
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
