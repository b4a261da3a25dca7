"""``stylesearch train-visual --config FILE``: the file's ``[visual]`` table, the options given on
top, one-line errors for a file it cannot use. The training itself is stubbed out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from stylesearch.cli import cli
from stylesearch.model.visual import VisualConfig
from stylesearch.training import visual


@pytest.fixture
def trained(monkeypatch: pytest.MonkeyPatch) -> list[VisualConfig]:
    """The configs ``train_visual`` is called with (it trains nothing)."""
    configs: list[VisualConfig] = []

    def fake_train_visual(_catalog: Path, _out: Path, config: VisualConfig, **_: Any) -> dict:
        configs.append(config)
        return {"final": {"val_r1": 0.5}}

    monkeypatch.setattr(visual, "train_visual", fake_train_visual)
    return configs


def train_visual(tmp_path: Path, toml: str, *options: str) -> Result:
    config = tmp_path / "visual.toml"
    config.write_text(toml)
    args = ["train-visual", "--catalog", "c.jsonl", "--out", "v", "--config", str(config)]
    return CliRunner().invoke(cli, [*args, *options])


def test_the_visual_table_is_used(tmp_path: Path, trained: list[VisualConfig]) -> None:
    toml = "[train]\nepochs = 9\n[visual]\nepochs = 3\nmargin = 0.3\nnegatives = 'hardest'\n"
    result = train_visual(tmp_path, toml)
    assert result.exit_code == 0, result.output
    (config,) = trained
    assert (config.epochs, config.margin, config.negatives) == (3, 0.3, "hardest")
    assert config.batch_size == VisualConfig().batch_size  # not in the table: the default


def test_the_options_given_override_the_table(tmp_path: Path, trained: list[VisualConfig]) -> None:
    toml = "[visual]\nepochs = 3\nseed = 4\nbackbone = 'efficientnet_lite0'\n"
    result = train_visual(tmp_path, toml, "--epochs", "5", "--pretrained")
    assert result.exit_code == 0, result.output
    (config,) = trained
    assert (config.epochs, config.seed, config.pretrained) == (5, 4, True)
    assert config.backbone == "efficientnet_lite0"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[visual]\nepochs = 3\nepochz = 4\n", "[visual] unknown key(s): epochz"),
        ("[visual]\nlr = 'fast'\n", "[visual] lr: expected float"),
        ("[train]\nepochs = 3\n", "no [visual] table (tables found: [train])"),
        ("visual = 3\n", "visual: expected a table"),
        ("[visual]\nnegatives = 'all'\n", "negatives must be one of"),
    ],
)
def test_a_file_it_cannot_use_is_a_one_line_error(
    tmp_path: Path, trained: list[VisualConfig], toml: str, message: str
) -> None:
    result = train_visual(tmp_path, toml)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    assert message in result.stderr, result.stderr
    assert not trained
