"""``stylesearch refit-look``: a trained model's look fitted again, weights kept."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import stylesearch.training.refit as refit_module
from stylesearch.cli import cli
from stylesearch.model import load_model
from stylesearch.model.io import read_model_config
from stylesearch.model.look import LOOK_VERSIONS
from stylesearch.training.checkpoint import TrainingError
from stylesearch.training.refit import refit_look

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny model trained on a shapes catalog, a quarter of it held out (so it has a
    grounding and synonyms); returns its folder."""
    from stylesearch.catalog.synthetic import make_shapes_catalog
    from stylesearch.config import Config, ModelConfig, TextConfig, TrainConfig
    from stylesearch.training.loop import train

    root = tmp_path_factory.mktemp("refit")
    manifest = make_shapes_catalog(root / "catalog", 48, seed=5, image_size=32)
    cfg = Config(
        text=TextConfig(min_count=2),
        model=ModelConfig(embed_dim=16, image_size=32, look_dim=8, look_head=16),
        train=TrainConfig(
            epochs=1, batch_size=16, num_workers=0, warmup_steps=1, val_fraction=0.25, seed=0
        ),
    )
    train(manifest, root / "model", cfg, progress=False)
    return root / "model"


def _copy(model: Path, tmp_path: Path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(model, out)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _quiet(_msg: str) -> None:
    pass


def test_refitting_a_current_model_gives_the_same_folder(trained, tmp_path):
    model_dir = _copy(trained, tmp_path)
    before = _files(model_dir)
    refit_look(model_dir, log=_quiet)
    after = _files(model_dir)
    assert set(after) == set(before)
    for name in ("model.safetensors", "grounding.json", "synonyms.json", "vocab.json"):
        assert after[name] == before[name], name
    old, new = json.loads(before["config.json"]), json.loads(after["config.json"])
    assert {k: v for k, v in new.items() if k != "library_version"} == {
        k: v for k, v in old.items() if k != "library_version"
    }
    assert (model_dir / "checkpoints").is_dir()
    assert not list(tmp_path.glob(".model.tmp-*"))


def test_a_stale_look_is_fitted_again_and_loads_without_a_warning(trained, tmp_path):
    model_dir = _copy(trained, tmp_path)
    config = model_dir / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "look_version": None}))
    with pytest.warns(UserWarning, match="refit-look"):
        load_model(model_dir)
    refit_look(model_dir, log=_quiet)
    assert read_model_config(model_dir)["look_version"] == LOOK_VERSIONS["pixel-shading"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(model_dir)
    assert model.grounding is not None and model.synonyms is not None


def test_another_kind_keeps_the_weights_and_fits_its_own_look(trained, tmp_path):
    model_dir = _copy(trained, tmp_path)
    before = load_model(model_dir).state_dict()
    refit_look(model_dir, kind="luminance", log=_quiet)
    model = load_model(model_dir)
    assert model.config.look_kind == "luminance"
    assert read_model_config(model_dir)["look_version"] == LOOK_VERSIONS["luminance"]
    assert bool(model.look.fitted) and model.look_head.is_fitted
    after = model.state_dict()
    kept = [k for k in before if not k.startswith(("look.", "look_head."))]
    assert kept and all(torch.equal(before[k], after[k]) for k in kept)
    assert not torch.equal(before["look.basis"], after["look.basis"])


def test_an_interrupted_refit_leaves_the_model_as_it_was(trained, tmp_path, monkeypatch):
    model_dir = _copy(trained, tmp_path)
    config = model_dir / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "look_version": None}))
    before = _files(model_dir)

    def killed(model, out_dir, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        (Path(out_dir) / "model.safetensors").write_bytes(b"half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(refit_module, "finish_run", killed)
    with pytest.raises(KeyboardInterrupt):
        refit_look(model_dir, log=_quiet)
    assert _files(model_dir) == before
    assert not list(tmp_path.glob(".model.tmp-*"))


def test_a_model_without_its_recorded_catalog_needs_one(trained, tmp_path):
    model_dir = _copy(trained, tmp_path)
    config = model_dir / "config.json"
    meta = json.loads(config.read_text())
    config.write_text(json.dumps({**meta, "extra": {}}))
    with pytest.raises(TrainingError, match="--catalog"):
        refit_look(model_dir, log=_quiet)
    moved = {**meta, "extra": {**meta["extra"], "training": {"catalog": str(tmp_path / "gone")}}}
    config.write_text(json.dumps(moved))
    with pytest.raises(TrainingError, match="records.*is not there.*--catalog"):
        refit_look(model_dir, log=_quiet)


def test_another_catalog_refits_without_grounding_and_says_so(trained, tmp_path):
    model_dir = _copy(trained, tmp_path)
    recorded = Path(read_model_config(model_dir)["extra"]["training"]["catalog"])
    other = recorded.with_name("same-items.jsonl")
    shutil.copy(recorded, other)
    said: list[str] = []
    refit_look(model_dir, catalog=other, log=said.append)
    assert any("not measured again" in line for line in said)
    assert not (model_dir / "grounding.json").exists()
    assert not (model_dir / "synonyms.json").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_model(model_dir).grounding is None


def test_the_command_refits_and_explains_a_missing_folder(trained, tmp_path):
    model_dir = _copy(trained, tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["refit-look", "--model", str(model_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "refit-look: saved" in result.output
    missing = runner.invoke(cli, ["refit-look", "--model", str(tmp_path / "nope")])
    assert missing.exit_code != 0
    assert "Traceback" not in missing.output
