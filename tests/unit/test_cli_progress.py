"""``--quiet`` on every command that draws progress bars: the bar is drawn on a terminal, not
with ``--quiet``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import stylesearch
from stylesearch.catalog import demo, manifest
from stylesearch.cli import cli, options
from stylesearch.errors import StylesearchError

#: (command line, module and function that receives ``progress``); the files need not exist.
COMMANDS = [
    (["catalog", "check", "shop.jsonl"], manifest, "load_catalog"),
    (["catalog", "build-demo", "--out", "demo"], demo, "build_demo_catalog"),
    (
        ["eval", "attributes", "--model", "m", "--catalog", "c.jsonl", "--truth", "t.jsonl"],
        manifest,
        "load_catalog",
    ),
]


@pytest.mark.parametrize(
    ("args", "module", "name"), COMMANDS, ids=[" ".join(c[0][:2]) for c in COMMANDS]
)
def test_quiet_suppresses_the_progress_bar(
    args: list[str], module: object, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []

    def spy(*_: object, progress: bool, **__: object) -> None:
        seen.append(progress)
        raise StylesearchError("stopped by the test")

    terminal = SimpleNamespace(stderr=SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(options, "sys", terminal)  # show_progress sees a terminal
    monkeypatch.setattr(module, name, spy)
    monkeypatch.setattr(stylesearch, "load_model", lambda *_, **__: None)
    for extra in ([], ["--quiet"]):
        result = CliRunner().invoke(cli, [*args, *extra])
        assert result.exit_code == 1 and "stopped by the test" in result.stderr, result.output
    assert seen == [True, False]
