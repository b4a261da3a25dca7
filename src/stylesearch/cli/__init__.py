"""The ``stylesearch`` command line: thin wrappers that parse options and call the library.

Errors a user can fix (bad config, bad catalog, missing data) are printed to stderr as one
message with a non-zero exit status, never as a traceback.

One module per command or group; what they share (options, the progress-bar decision, the
friendly-error handler) is in :mod:`stylesearch.cli.options`.
"""

from __future__ import annotations

import click

from stylesearch import __version__
from stylesearch.cli.catalog import catalog
from stylesearch.cli.demo import demo_cmd
from stylesearch.cli.eval import eval_group
from stylesearch.cli.index import index_group
from stylesearch.cli.options import friendly_errors, images_root_option
from stylesearch.cli.search import search_cmd
from stylesearch.cli.serve import serve_cmd
from stylesearch.cli.train import refit_look_cmd, train_cmd, train_visual_cmd
from stylesearch.cli.tune import tune_cmd
from stylesearch.cli.vocab import vocab_cmd

__all__ = ["cli", "friendly_errors", "images_root_option", "main"]


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


for _command in (
    catalog, train_cmd, train_visual_cmd, refit_look_cmd, eval_group, tune_cmd, index_group,
    search_cmd, serve_cmd, demo_cmd, vocab_cmd,
):  # fmt: skip
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="stylesearch")
