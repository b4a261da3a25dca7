"""``stylesearch search``: one query against an index, printed as a table or as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from stylesearch.cli.options import (
    device_option,
    friendly_errors,
    grounding_option,
    index_option,
    json_option,
    k_option,
    model_option,
    path_option,
    scoring_options,
    searcher_settings,
    synonyms_option,
)
from stylesearch.config import DEFAULT_METHOD, METHOD_LABELS

#: ``--index``'s and ``--model``'s help for the commands that search an index.
INDEX_HELP = "Index folder written by `stylesearch index`."
MODEL_HELP = "Model folder [default: the one the index records]; must be the one it was built with."


@click.command("search")
@index_option(INDEX_HELP)
@path_option("--image", help="Query image file.")
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
    "--like",
    "like",
    multiple=True,
    metavar="ID",
    help="More like this: move the query towards this indexed item (repeatable).",
)
@click.option(
    "--unlike",
    "unlike",
    multiple=True,
    metavar="ID",
    help="Less like this: move the query away from this indexed item and leave it out of the "
    "results (repeatable).",
)
@click.option(
    "--method",
    type=click.Choice(list(METHOD_LABELS)),
    default=DEFAULT_METHOD,
    show_default=True,
)
@k_option(None)
@model_option(MODEL_HELP)
@device_option()
@scoring_options
@grounding_option
@synonyms_option()
@json_option("Print the result as one JSON object.")
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
    like: tuple[str, ...],
    unlike: tuple[str, ...],
    method: str,
    k: int,
    model_dir: Path | None,
    device: str,
    word_weight: float | None,
    cosine_power: float,
    look_weight: float | None,
    grounding_threshold: float,
    synonyms: bool,
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

    Words that are not visual (grounding below --grounding-threshold: brands, "bestseller")
    are left out of every method but filter-hard, with a message; --must / --must-not and
    filter-hard match the metadata's text and use every word.
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
        like=like,
        unlike=unlike,
    )
    searcher = Searcher.load(
        index_dir,
        model_dir=model_dir,
        device=device,
        grounding_threshold=grounding_threshold,
        synonyms=synonyms,
        **searcher_settings(word_weight, cosine_power, look_weight),
    )
    response = searcher.search(query)
    if as_json:
        click.echo(json.dumps(response.to_dict(), ensure_ascii=False))
        return
    echo_response(response)


def echo_response(response: Any) -> None:
    """A search ``Response`` as ``search`` prints it: the query (its words, then its liked and
    unliked items), then one line per result."""
    q = response.query
    words = " ".join(
        [
            *(f"+{w}" for w in q["add"]),
            *(f"-{w}" for w in q["remove"]),
            *(f"like:{i}" for i in q["like"]),
            *(f"unlike:{i}" for i in q["unlike"]),
        ]
    )
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
