"""``stylesearch demo``: the whole pipeline on the built-in demo catalog."""

from __future__ import annotations

from pathlib import Path

import click

from stylesearch.cli.options import (
    device_option,
    friendly_errors,
    path_option,
    quiet_option,
    show_progress,
)


@click.command("demo")
@path_option(
    "--workdir",
    default=Path("runs/demo"),
    show_default=True,
    help="Where the catalog, model and results go.",
)
@device_option()
@click.option(
    "--compare",
    is_flag=True,
    help="Also train the joint model with the paper's MBMR loss (the demo trains with the "
    "triplet loss) and with a ResNet-18 tower from scratch (about twice the training time) and "
    "compare them in the report.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the demo catalog's draw (garments, colours, patterns, noise). Use another "
    "--workdir per seed to keep each run's stages.",
)
@quiet_option
@friendly_errors
def demo_cmd(workdir: Path, device: str, compare: bool, seed: int, quiet: bool) -> None:
    """Run the engine end to end on the built-in demo catalog and print the results.

    Builds the Fashion-MNIST style catalog, trains the joint model and the baseline visual
    model, indexes the base catalog, builds validation and test queries, tunes the search
    settings (word weights, cosine power, look weight) on validation, evaluates every search
    method on test (V-nDCG, T-nDCG, MM) and prints the table, three example searches and how
    to start the server. It takes 9.5 to 13.5 minutes on 2 CPU cores (docs/results.md,
    "Time"); a second run reuses every finished stage.
    """
    from stylesearch.catalog.demo import DemoConfig
    from stylesearch.demo import format_report, run_demo

    result = run_demo(
        workdir, catalog_config=DemoConfig(seed=seed), device=device, compare=compare,
        progress=show_progress(quiet, piped=True),
    )  # fmt: skip
    click.echo(format_report(result))
