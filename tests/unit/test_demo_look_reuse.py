"""The demo reuses a model and an index only when their looks were read at today's version:
it fits an older model's look again, and builds an older index again; it evaluates again when
its cached report is of another format."""

from __future__ import annotations

import json

import numpy as np
import torch

import stylesearch.demo_stages as stages
import stylesearch.index.build as build
from stylesearch.config import Config, ModelConfig, to_dict
from stylesearch.demo_stages import ensure_index, ensure_model
from stylesearch.index.fusion import TextFusion
from stylesearch.index.postings import csr_from_bags
from stylesearch.model import JointModel, save_model
from stylesearch.model.io import read_model_config
from stylesearch.model.look import LOOK_VERSIONS
from stylesearch.testing.index_arrays import write_index_arrays
from stylesearch.text.vocabulary import Vocabulary


def _save(folder, extra=None):  # noqa: ANN001, ANN202
    torch.manual_seed(0)
    model = JointModel(ModelConfig(embed_dim=8, image_size=32, look_dim=4), vocab_size=3)
    images = torch.randn(10, 3, 32, 32)
    model.look.fit_floor(model.look.tones(images))
    model.look.fit(model.look.grid(images))
    vocab = Vocabulary(["red", "dress", "blue"], [12, 11, 10], n_items=100, min_count=2)
    save_model(model, folder, vocab=vocab, text_config=None, extra=extra)


def test_a_model_whose_look_was_fitted_at_an_older_version_has_its_look_fitted_again(
    tmp_path, monkeypatch
):
    config = Config()
    extra = {"train_config": to_dict(config), "training": {"final_metrics": {"r1": 0.5}}}
    _save(tmp_path / "model", extra)
    calls: list[str] = []
    monkeypatch.setattr(stages, "train", lambda *a, **k: calls.append("train"))
    monkeypatch.setattr(stages, "refit_look", lambda *a, **k: calls.append("refit"))

    def run() -> None:
        ensure_model(tmp_path / "c.jsonl", tmp_path / "model", config, progress=False,
                     log=lambda _: None)  # fmt: skip

    run()  # today's look: reused
    assert calls == []
    meta = json.loads((tmp_path / "model" / "config.json").read_text())
    (tmp_path / "model" / "config.json").write_text(json.dumps({**meta, "look_version": None}))
    run()  # the same training config: the look alone is fitted again
    assert calls == ["refit"]
    other = {**meta, "look_version": None, "extra": {**extra, "train_config": {"other": 1}}}
    (tmp_path / "model" / "config.json").write_text(json.dumps(other))
    run()  # another training config: trained again
    assert calls == ["refit", "train"]


def test_an_index_of_older_looks_is_built_again(tmp_path, monkeypatch):
    _save(tmp_path / "model")
    catalog = tmp_path / "base.jsonl"
    built: list[str] = []
    monkeypatch.setattr(build, "build_index", lambda *a, **k: built.append("built") or _Result())

    def index_with(look_version: int | None) -> None:
        manifest = {
            "model_fingerprint": read_model_config(tmp_path / "model")["weights_sha256"],
            "catalog": str(catalog.absolute()),
            **TextFusion().manifest_entries(),
            "look_version": look_version,
        }
        rng = np.random.default_rng(0)
        write_index_arrays(
            tmp_path / "index", rng.standard_normal((4, 8)).astype(np.float32),
            rng.random((4, 3)).astype(np.float16), metadata=csr_from_bags([[0], [1], [2], []]),
            manifest=manifest,
        )  # fmt: skip
        ensure_index(tmp_path / "model", catalog, tmp_path / "index", device="cpu",
                     progress=False, log=lambda _: None)  # fmt: skip

    index_with(LOOK_VERSIONS["pixel-shading"])  # today's looks: the index is reused
    assert built == []
    index_with(None)  # built before looks had versions
    assert built == ["built"]
    index_with(LOOK_VERSIONS["pixel-shading"] - 1)
    assert built == ["built", "built"]


class _Result:
    count = 4
    images_per_second = 1.0


def test_a_cached_report_of_another_format_is_written_again(tmp_path, monkeypatch):
    import stylesearch.evaluation.report as report_module

    (tmp_path / "queries.jsonl").write_text("{}\n")
    monkeypatch.setattr(stages, "_index_key", lambda d: ["index"])
    monkeypatch.setattr(stages, "read_visual_config", lambda d: {"weights_sha256": "v"})
    runs: list[int] = []

    def evaluate(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        runs.append(report_module.REPORT_FORMAT)
        args[3].mkdir(exist_ok=True)  # the report's folder, as the evaluation makes it
        return {"format": report_module.REPORT_FORMAT}

    monkeypatch.setattr(report_module, "run_evaluation", evaluate)

    def run() -> dict:
        return stages.evaluate_demo(
            tmp_path, tmp_path / "index", tmp_path / "queries.jsonl", tmp_path / "visual",
            tmp_path / "truth.jsonl", {"settings": {"word_weight": {}, "cosine_power": 4}}, {},
            name="joint", progress=False, log=lambda _: None,
        )  # fmt: skip

    assert run()["format"] == report_module.REPORT_FORMAT
    assert run()["format"] == report_module.REPORT_FORMAT  # the same inputs: reused
    assert len(runs) == 1
    monkeypatch.setattr(report_module, "REPORT_FORMAT", report_module.REPORT_FORMAT + 1)
    assert run()["format"] == report_module.REPORT_FORMAT  # a newer format: evaluated again
    assert len(runs) == 2
