"""What the commands share: options, the progress-bar decision and the friendly-error handler.

Errors a user can fix (bad config, bad catalog, missing data) are printed to stderr as one
message with a non-zero exit status, never as a traceback: every command is wrapped in
:func:`friendly_errors`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from stylesearch.config import DEFAULT_DEVICE
from stylesearch.errors import StylesearchError
from stylesearch.model.device import DEVICE_HELP
from stylesearch.model.grounding import VISUAL_THRESHOLD

F = TypeVar("F", bound=Callable[..., Any])

#: ``--quiet``'s help, the same on every command that draws progress bars.
QUIET_HELP = "No progress bars."


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is the whole story for a user (no traceback): every
    :class:`StylesearchError`, and the OS errors about a path the user gave. Anything else is
    a bug: traceback."""
    return (
        StylesearchError, FileNotFoundError, PermissionError, IsADirectoryError,
        NotADirectoryError,
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


def as_user_error(
    call: Callable[[], Any], errors: tuple[type[BaseException], ...], prefix: str = ""
) -> Any:
    """``call()``, with the ``errors`` it raises turned into a one-line ``click`` error."""
    try:
        return call()
    except errors as exc:
        raise click.ClickException(f"{prefix}{exc}") from None


def show_progress(quiet: bool = False, *, piped: bool = False) -> bool:
    """Whether a command draws progress bars: not with ``--quiet``, and only on a terminal
    (stderr), unless ``piped`` (``train``, ``train-visual`` and ``demo`` draw them into a log
    too)."""
    return not quiet and (piped or sys.stderr.isatty())


def stack(*options: Callable[[F], F]) -> Callable[[F], F]:
    """One decorator applying ``options`` in the order they are listed (as when stacked)."""

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


#: ``name -> (default, type, help)`` of options whose default ``--help`` shows (see
#: :func:`table_options`).
OptionTable = dict[str, tuple[Any, Any, str | None]]


def table_options(table: OptionTable) -> Callable[[F], F]:
    """One option per ``table`` entry, in the table's order: ``--name`` (``_`` written ``-``) for
    the parameter ``name``, with its default, type and help; ``--help`` shows the default."""
    options = [
        click.option(
            "--" + name.replace("_", "-"), default=default, show_default=True, type=kind, help=help
        )
        for name, (default, kind, help) in table.items()
    ]
    return stack(*options)


def path_option(*decls: str, required: bool = False, **kwargs: Any) -> Callable[[F], F]:
    """A ``click.Path`` option, ``required`` or else ``None`` by default (``file_okay`` and
    ``dir_okay`` go to ``click.Path``, the other ``kwargs`` to the option)."""
    path_kwargs = {k: kwargs.pop(k) for k in ("file_okay", "dir_okay") if k in kwargs}
    kwargs.update({"required": True} if required else {"default": kwargs.get("default")})
    return click.option(*decls, type=click.Path(path_type=Path, **path_kwargs), **kwargs)


def quiet_option(func: F) -> F:
    """``--quiet``: no progress bars (see :func:`show_progress`)."""
    return click.option("--quiet", is_flag=True, help=QUIET_HELP)(func)


def json_option(help: str) -> Callable[[F], F]:
    """``--json``: print the result as JSON (the parameter is ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def device_option(
    help: str | None = None, *, default: str | None = DEFAULT_DEVICE
) -> Callable[[F], F]:
    """``--device``: where the model runs. Every command defaults to ``"auto"``, a GPU when
    torch sees one, else the CPU. ``train`` and ``train-visual`` pass ``default=None``: the
    option then overrides the config file's device, whose default is also ``"auto"``. ``help``
    goes before the accepted names."""
    text = f"{help} {DEVICE_HELP}" if help else DEVICE_HELP
    shown = {"show_default": True} if default is not None else {}
    return click.option("--device", default=default, help=text, **shown)


def index_option(help: str, required: bool = True) -> Callable[[F], F]:
    """``--index INDEX_DIR`` (the parameter is ``index_dir``)."""
    return path_option("--index", "index_dir", required=required, help=help)


def model_option(help: str, required: bool = False) -> Callable[[F], F]:
    """``--model MODEL_DIR`` (the parameter is ``model_dir``)."""
    return path_option("--model", "model_dir", required=required, help=help)


def catalog_option(help: str, required: bool = True) -> Callable[[F], F]:
    """``--catalog MANIFEST`` (the parameter is ``catalog_path``)."""
    return path_option("--catalog", "catalog_path", required=required, help=help)


def k_option(help: str | None) -> Callable[[F], F]:
    """``-k K``: results per query, 10 by default."""
    return click.option(
        "-k", "k", type=click.IntRange(min=1), default=10, show_default=True, help=help
    )


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


def require_options(purpose: str, *pairs: tuple[str, Any]) -> None:
    """A usage error naming every ``(option, value)`` of ``pairs`` left unset, "to ``purpose``"
    (a group that also runs on its own, such as ``index`` or ``eval``, cannot make them
    required)."""
    missing = [opt for opt, value in pairs if value is None]
    if missing:
        raise click.UsageError(f"missing option(s) {', '.join(missing)} to {purpose}")


def scoring_options(func: F) -> F:
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
        "[default: the value `stylesearch tune` recorded in the index, else 0.4].",
    )(func)
    func = click.option(
        "--cosine-power",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="g of the soft filter's score c~^g * p (filter, combined): above 1 the looks weigh "
        "more against the attribute probabilities [default: the value `stylesearch tune` "
        "recorded in the index, else 4].",
    )(func)
    return click.option(
        "--word-weight",
        type=click.FloatRange(min=0),
        default=None,
        help="Weight of each word vector in query arithmetic (b = c), for every method "
        "[default: the weights `stylesearch tune` recorded in the index, else 1 for "
        "arithmetic and 0.25 for combined].",
    )(func)


def grounding_option(func: F) -> F:
    """``--grounding-threshold``: the least visual grounding of a word that ``search`` and
    ``serve`` use to rank (and ``serve`` suggests and shows as a facet)."""
    return click.option(
        "--grounding-threshold",
        type=click.FloatRange(min=-1, max=1),
        default=VISUAL_THRESHOLD,
        show_default=True,
        help="Least visual grounding (2 * AUC - 1, `stylesearch vocab`) of a wanted or unwanted "
        "word used to rank; a word below it is ignored with a message (a hard filter on it "
        "still works). A model folder without grounding.json uses every word.",
    )(func)


def searcher_settings(
    word_weight: float | None, cosine_power: float | None, look_weight: float | None
) -> dict[str, Any]:
    """``Searcher`` keyword arguments for the :func:`scoring_options` values."""
    return {"word_weight": word_weight, "cosine_power": cosine_power, "look_weight": look_weight}


#: ``--synonyms/--no-synonyms``' help for ``search`` and ``serve``.
SYNONYMS_HELP = (
    "Let a metadata filter word (filter-hard, --must / --must-not) cover its synonym group "
    "learned with the model (synonyms.json, `stylesearch vocab`): +red also keeps items "
    "described as scarlet. No effect for a model folder without synonyms.json."
)


def synonyms_option(help: str = SYNONYMS_HELP) -> Callable[[F], F]:
    """``--synonyms/--no-synonyms`` (on by default): with ``--no-synonyms`` a metadata filter
    word (``filter-hard``, ``--must`` / ``--must-not``) matches only itself, not its learned
    synonym group."""
    return click.option(
        "--synonyms/--no-synonyms", "synonyms", default=True, show_default=True, help=help
    )
