"""``stylesearch serve``: the JSON API and the web page over HTTP."""

from __future__ import annotations

from pathlib import Path

import click

from stylesearch.cli.options import (
    OptionTable,
    as_user_error,
    device_option,
    friendly_errors,
    grounding_option,
    index_option,
    model_option,
    scoring_options,
    searcher_settings,
    synonyms_option,
    table_options,
)
from stylesearch.cli.search import INDEX_HELP, MODEL_HELP

#: How large an upload may be.
UPLOAD_LIMITS: OptionTable = {
    "max_upload_bytes": (
        10 * 1024 * 1024,
        click.IntRange(min=1),
        "Largest accepted image upload (413 above it).",
    ),
    "max_pixels": (
        25_000_000,
        click.IntRange(min=1),
        "Largest accepted image, width x height, checked before decoding (413 above it).",
    ),
}

#: How long a client may take to send a request.
CLIENT_TIMEOUTS: OptionTable = {
    "header_timeout": (
        10.0,
        click.FloatRange(min=0, min_open=True),
        "Seconds a client may take to send a request's headers (then 408 and closed).",
    ),
    "body_timeout": (
        30.0,
        click.FloatRange(min=0, min_open=True),
        "Seconds a client may take to send a request's body after its headers (then 408).",
    ),
}


@click.command("serve")
@index_option(INDEX_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@model_option(MODEL_HELP)
@device_option()
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Torch threads for encoding uploads (more help only on an idle multi-core machine).",
)
@table_options(UPLOAD_LIMITS)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests whose Host header names NAME (repeatable; '*': any, only behind "
    "a proxy that checks it). Always answered: the --host address and the loopback names.",
)
@table_options(CLIENT_TIMEOUTS)
@scoring_options
@grounding_option
@synonyms_option()
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
    grounding_threshold: float,
    synonyms: bool,
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
    from stylesearch.server.service import SearchService, ServerLimits, ServiceError

    torch.set_num_threads(threads)
    hosts = tuple(dict.fromkeys((*default_allowed_hosts(host), *allowed_hosts)))
    limits = ServerLimits(
        max_upload_bytes=max_upload_bytes, max_pixels=max_pixels, header_timeout=header_timeout,
        body_timeout=body_timeout, allowed_hosts=hosts,
    )  # fmt: skip
    service = as_user_error(  # an empty index, a model without a vocabulary: name the index
        lambda: SearchService.load(
            index_dir,
            model_dir=model_dir,
            device=device,
            limits=limits,
            grounding_threshold=grounding_threshold,
            synonyms=synonyms,
            **searcher_settings(word_weight, cosine_power, look_weight),
        ),
        (ServiceError,),
        prefix=f"{index_dir}: ",
    )
    click.echo(
        f"stylesearch: {service.index.count} items, {len(service.words)} words "
        f"({int(service.visual.sum())} visual); "
        f"open http://{browse_host(host)}:{port}/ (API docs at /docs)",
        err=True,
    )
    warning = exposure_warning(host, port, hosts)
    if warning:
        click.echo(f"stylesearch: {warning}", err=True)
    app = create_app(service)
    uvicorn.run(app, host=host, port=port, log_level=log_level, **uvicorn_options(limits))
