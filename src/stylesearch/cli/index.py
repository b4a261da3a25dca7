"""``stylesearch index``: build an index, add items to it, delete items from it, merge shards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

import click

from stylesearch.cli.options import (
    F,
    catalog_option,
    device_option,
    friendly_errors,
    images_root_option,
    index_option,
    model_option,
    path_option,
    quiet_option,
    require_options,
    show_progress,
    stack,
    table_options,
)
from stylesearch.config import DEFAULT_FUSION_WEIGHTS, FUSION_RULES

#: --backend and its parameters, as the command line gives them.
_backend_option_stack = stack(
    click.option(
        "--backend",
        type=click.Choice(["faiss", "exact", "milvus"]),
        default="faiss",
        show_default=True,
        help="faiss: HNSW graph (the default, fast at scale); exact: numpy brute force (the "
        "oracle); milvus: a Milvus server or cluster (needs --milvus-uri).",
    ),
    click.option("--hnsw-m", type=click.IntRange(min=2), default=32, show_default=True),
    click.option("--ef-construction", type=click.IntRange(min=1), default=100, show_default=True),
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
)


@dataclass(frozen=True)
class BackendChoice:
    """The :func:`backend_options` values: the backend's name and its parameters."""

    name: str
    hnsw_m: int
    ef_construction: int
    ef_search: int
    milvus_uri: str | None
    collection: str | None

    def params(self) -> dict[str, Any] | None:
        """The build's ``backend_params`` (``None`` for exact); a usage error for the Milvus
        options without ``--backend milvus``, or ``--backend milvus`` without ``--milvus-uri``.
        """
        if self.name != "milvus":
            if self.milvus_uri or self.collection:
                raise click.UsageError("--milvus-uri and --collection need --backend milvus")
            return None if self.name == "exact" else self._hnsw()
        if not self.milvus_uri:
            raise click.UsageError("--backend milvus needs --milvus-uri URI")
        return {**self._hnsw(), "uri": self.milvus_uri, "collection": self.collection}

    def _hnsw(self) -> dict[str, Any]:
        return {
            "M": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
        }


def backend_options(func: F) -> F:
    """--backend and its parameters (shared by `index` and `index merge`), passed to ``func``
    as one ``backend``: a :class:`BackendChoice`, checked only when its ``params()`` are asked
    for (``index`` with a subcommand never asks)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["backend"] = BackendChoice(
            kwargs.pop("backend"),
            kwargs.pop("hnsw_m"),
            kwargs.pop("ef_construction"),
            kwargs.pop("ef_search"),
            kwargs.pop("milvus_uri"),
            kwargs.pop("collection"),
        )
        return func(*args, **kwargs)

    return _backend_option_stack(wrapper)  # type: ignore[return-value]


def embedding_options(
    batch_help: str | None = None, workers_help: str | None = None
) -> Callable[[F], F]:
    """--batch-size, --workers, --device, --quiet and --images-root: how `index` and `index add`
    embed catalog images, passed to the command as one ``embedding``: the keyword arguments
    ``build_index`` and ``add_items`` share. ``batch_help`` and ``workers_help`` are the help of
    --batch-size and --workers (`index add` shows none)."""

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs["embedding"] = {
                "batch_size": kwargs.pop("batch_size"),
                "num_workers": kwargs.pop("workers"),
                "device": kwargs.pop("device"),
                "progress": show_progress(kwargs.pop("quiet")),
                "image_roots": kwargs.pop("images_root"),
            }
            return func(*args, **kwargs)

        options = stack(
            table_options(
                {
                    "batch_size": (128, click.IntRange(min=1), batch_help),
                    "workers": (2, click.IntRange(min=0), workers_help),
                }
            ),
            device_option(),
            quiet_option,
            images_root_option,
        )
        return options(wrapper)  # type: ignore[return-value]

    return decorate


@click.group("index", invoke_without_command=True)
@model_option("Model folder written by `stylesearch train`.")
@catalog_option("Catalog manifest to index (e.g. the demo's base/manifest.jsonl).", required=False)
@path_option(
    "--out",
    help="Index folder to write (an existing index there is replaced only once the new one "
    "is complete).",
)
@backend_options
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    help="Index only the I-th of N contiguous slices of the catalog (0-based), e.g. 0/4; "
    "join the shard folders with `stylesearch index merge`.",
)
@click.option(
    "--metadata-fusion",
    type=click.Choice(FUSION_RULES),
    default=FUSION_RULES[0],
    show_default=True,
    help="How each item's own text enters its attribute probabilities p_w. log-odds: "
    "logit p_w = logit h_w + weight (2 [w in the item's text] - 1), the text as evidence "
    "against the attribute head's h_w; blend: p_w = (1 - weight) h_w + weight [w in the text].",
)
@click.option(
    "--metadata-weight",
    type=click.FloatRange(min=0),
    default=None,
    help="How much each item's own text counts (default: "
    + ", ".join(f"{w:g} for {r}" for r, w in DEFAULT_FUSION_WEIGHTS.items())
    + "; a blend's is at most 1). 0: the attribute head alone (the paper's soft filter).",
)
@embedding_options("Images per batch.", "DataLoader workers.")
@click.pass_context
@friendly_errors
def index_group(
    ctx: click.Context,
    model_dir: Path | None,
    catalog_path: Path | None,
    out: Path | None,
    backend: BackendChoice,
    shard: str | None,
    metadata_fusion: str,
    metadata_weight: float | None,
    embedding: dict[str, Any],
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
    params = backend.params()
    require_options(
        "build an index", ("--model", model_dir), ("--catalog", catalog_path), ("--out", out)
    )
    from stylesearch.index.build import build_index
    from stylesearch.index.fusion import TextFusion

    fusion = TextFusion.of(metadata_fusion, metadata_weight)
    assert model_dir is not None and catalog_path is not None and out is not None
    result = build_index(
        model_dir,
        catalog_path,
        out,
        backend=backend.name,
        backend_params=params,
        shard=shard,
        fusion=fusion,
        **embedding,
    )
    click.echo(
        f"indexed {result.count} items ({result.rejected} rejected rows skipped) into "
        f"{result.out_dir} [{result.backend}]: {result.images_per_second:.0f} images/s, "
        f"{result.total_seconds:.1f} s in all"
    )


@index_group.command("add")
@index_option("Index folder to add to.")
@catalog_option("Catalog manifest of the new items (their ids must not be in the index yet).")
@model_option("Model folder, when it moved since the index was built (it must be the same model).")
@embedding_options()
@friendly_errors
def index_add(
    index_dir: Path, catalog_path: Path, model_dir: Path | None, embedding: dict[str, Any]
) -> None:
    """Embed new catalog items and add them to an index (no rebuild).

    Only the new items are embedded; the backend is extended (faiss: the vectors are inserted
    into the graph; Milvus: into the collection). The updated index is written beside the old
    one and swapped in at the end: a failure leaves the old index as it was.
    """
    from stylesearch.index.update import add_items

    result = add_items(index_dir, catalog_path, model_dir=model_dir, **embedding)
    click.echo(
        f"added {result.added} items ({result.rejected} rejected rows skipped) to "
        f"{result.index_dir}: {result.live} items now, {result.total_seconds:.1f} s"
    )


@index_group.command("delete")
@index_option("Index folder to delete from.")
@path_option(
    "--ids",
    "ids_file",
    dir_okay=False,
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
@path_option(
    "--out",
    required=True,
    help="Index folder to write (an existing index there is replaced once the new one is "
    "complete).",
)
@backend_options
@quiet_option
@friendly_errors
def index_merge(
    shards: tuple[Path, ...],
    out: Path,
    backend: BackendChoice,
    quiet: bool,
) -> None:
    """Join shard indexes (`stylesearch index --shard I/N`) into one index: SHARD_DIR...

    The shards must come from the same model and hold different item ids; with I/N shards every
    one of the N must be given. Any backend: --backend milvus loads the shards into Milvus.
    """
    from stylesearch.index.merge import merge_indexes

    params = backend.params()
    result = merge_indexes(
        out, shards, backend=backend.name, backend_params=params, progress=show_progress(quiet)
    )
    click.echo(
        f"merged {result.shards} indexes ({result.count} items) into {result.out_dir} "
        f"[{result.backend}] in {result.total_seconds:.1f} s"
    )
