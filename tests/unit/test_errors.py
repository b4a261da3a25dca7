"""One base class for the errors a user can fix: the CLI prints those as one line, only those."""

from __future__ import annotations

import pickle
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from stylesearch.catalog.demo import DemoConfig, DemoConfigError, NotADemoCatalog
from stylesearch.catalog.fashion_mnist import DemoSourceError, DemoSourceMissing
from stylesearch.catalog.images import ImageError
from stylesearch.catalog.manifest import CatalogError
from stylesearch.cli import friendly_errors
from stylesearch.config import ConfigError
from stylesearch.errors import StylesearchError
from stylesearch.evaluation.attributes import TruthFileError, load_truth
from stylesearch.evaluation.protocol import EvaluationError
from stylesearch.evaluation.queries import QueryBuildError, QueryFileError
from stylesearch.model.device import DeviceError
from stylesearch.model.visual import VisualModelError
from stylesearch.search.query import SearchError
from stylesearch.search.settings import SettingsError
from stylesearch.server.service import ServiceError
from stylesearch.text.pipeline import TextPipelineError
from stylesearch.training.loop import TrainingError

#: each user-facing error and the built-in type it also is (callers may catch that one).
USER_ERRORS = [
    (CatalogError, ValueError), (ConfigError, ValueError), (DemoConfigError, ValueError),
    (DemoSourceError, ValueError), (DemoSourceMissing, FileNotFoundError),
    (DeviceError, RuntimeError), (EvaluationError, ValueError), (ImageError, ValueError),
    (NotADemoCatalog, FileExistsError),
    (QueryBuildError, ValueError), (QueryFileError, ValueError), (SearchError, ValueError),
    (ServiceError, ValueError), (SettingsError, ValueError), (TextPipelineError, RuntimeError),
    (TrainingError, RuntimeError), (TruthFileError, ValueError), (VisualModelError, ValueError),
]  # fmt: skip


@pytest.mark.parametrize(("error", "builtin"), USER_ERRORS, ids=lambda e: e.__name__)
def test_user_errors_share_the_base_and_keep_their_builtin_type(
    error: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(error, StylesearchError) and issubclass(error, builtin)
    exc = error("what to do")
    assert str(exc) == "what to do"
    assert str(pickle.loads(pickle.dumps(exc))) == "what to do"  # crosses worker processes


def _command(exc: BaseException) -> click.Command:
    @click.command()
    @friendly_errors
    def command() -> None:
        raise exc

    return command


def test_a_user_error_is_one_line_and_a_bug_keeps_its_traceback() -> None:
    result = CliRunner().invoke(_command(QueryBuildError("n must be >= 1, got 0")))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.strip() == "Error: n must be >= 1, got 0"

    result = CliRunner().invoke(_command(ValueError("a bug")))
    assert isinstance(result.exception, ValueError) and not isinstance(
        result.exception, StylesearchError
    )


def test_demo_config_errors_are_user_errors() -> None:
    with pytest.raises(DemoConfigError, match="views"):
        DemoConfig(views=0).validate()


def test_a_broken_truth_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    path.write_text('{"id": "a", "colour": "red"}\nnot json\n')
    with pytest.raises(TruthFileError, match=r"truth.jsonl line 2: not JSON"):
        load_truth(path)
    path.write_text('{"id": "a", "colour": "red"}\n\n["b"]\n')
    with pytest.raises(TruthFileError, match=r'line 3: expected a JSON object with an "id"'):
        load_truth(path)
    path.write_text('{"id": "a", "colour": "red", "n": 3}\n')
    assert load_truth(path) == {"a": {"colour": "red"}}
