"""End-to-end training runs on small generated catalogs (CPU)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import stylesearch
from stylesearch.catalog.dataset import collate_pairs
from stylesearch.catalog.synthetic import make_shapes_catalog
from stylesearch.config import Config, LossConfig, ModelConfig, TextConfig, TrainConfig
from stylesearch.training import loop
from stylesearch.training.checkpoint import list_checkpoints
from stylesearch.training.loop import TrainingError, train


def tiny_config(**train_overrides) -> Config:
    train_cfg = TrainConfig(
        epochs=2, batch_size=16, num_workers=0, warmup_steps=2, val_fraction=0.2, lr=2e-3
    )
    return Config(
        text=TextConfig(min_count=2),
        model=ModelConfig(embed_dim=32, image_size=32),
        loss=LossConfig(),
        train=replace(train_cfg, **train_overrides),
    )


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return make_shapes_catalog(tmp_path_factory.mktemp("shapes"), 96, seed=3, image_size=32)


def _weights_sha(model_dir: Path) -> str:
    return json.loads((model_dir / "config.json").read_text())["weights_sha256"]


def test_train_writes_a_loadable_model_folder(shapes, tmp_path):
    out = tmp_path / "model"
    result = train(shapes, out, tiny_config(), progress=False)
    for name in ("config.json", "vocab.json", "model.safetensors", "metrics.jsonl"):
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.pt")) and not list(out.rglob("*.pkl"))
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    for key in (
        "train_mbmr",
        "train_mbmr_i2t",
        "train_mbmr_t2i",
        "train_attribute",
        "train_total",
        "val_i2t_r1",
        "val_i2t_r10",
        "val_t2i_r1",
        "val_t2i_r10",
        "val_attribute_map",
        "temperature",
        "images_per_second",
    ):
        assert key in lines[-1], key
    assert result.n_val > 0 and result.vocab_size > 5
    assert [p.name for p in list_checkpoints(out)] == ["epoch-0001", "epoch-0002"]

    model = stylesearch.load_model(out)
    assert model.vocab is not None and len(model.vocab) == result.vocab_size
    assert not model.training
    words = torch.tensor([[0, 1, -1]])
    emb = model.encode_texts(words, normalize=True)
    assert emb.shape == (1, 32)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(1), atol=1e-5)


def test_same_seed_gives_identical_weights(shapes, tmp_path):
    cfg = tiny_config(epochs=1)
    train(shapes, tmp_path / "a", cfg, progress=False)
    train(shapes, tmp_path / "b", cfg, progress=False)
    assert _weights_sha(tmp_path / "a") == _weights_sha(tmp_path / "b")
    train(shapes, tmp_path / "c", tiny_config(epochs=1, seed=1), progress=False)
    assert _weights_sha(tmp_path / "a") != _weights_sha(tmp_path / "c")


def test_loader_workers_persist_and_do_not_change_the_model(shapes, tmp_path):
    """Two epochs with two persistent workers train the same weights as in-process loading:
    each sample's view and augmentation come from (seed, epoch, index), not from a worker."""
    train(shapes, tmp_path / "inline", tiny_config(epochs=2), progress=False)
    train(shapes, tmp_path / "workers", tiny_config(epochs=2, num_workers=2), progress=False)
    assert _weights_sha(tmp_path / "inline") == _weights_sha(tmp_path / "workers")


def test_same_item_term_trains_and_is_recorded(shapes, tmp_path):
    cfg = tiny_config(epochs=1)
    cfg = replace(cfg, loss=replace(cfg.loss, same_item_weight=0.5, same_item_dims=16))
    result = train(shapes, tmp_path / "same", cfg, progress=False)
    record = result.metrics[-1]
    assert record["train_same_item"] > 0
    assert record["train_total"] > record["train_mbmr"] + 0.5 * record["train_same_item"] - 1e-6
    saved = json.loads((tmp_path / "same" / "config.json").read_text())
    assert saved["extra"]["train_config"]["loss"]["same_item_weight"] == 0.5


def test_interrupted_run_resumes_to_the_same_model(shapes, tmp_path, monkeypatch):
    cfg = tiny_config(epochs=2)
    train(shapes, tmp_path / "full", cfg, progress=False)

    real_save = loop.save_checkpoint

    def save_then_crash(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("simulated crash after the first epoch")

    monkeypatch.setattr(loop, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(shapes, tmp_path / "resumed", cfg, progress=False)
    monkeypatch.undo()
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    with pytest.raises(TrainingError, match="--resume"):
        train(shapes, tmp_path / "resumed", cfg, progress=False)

    train(shapes, tmp_path / "resumed", cfg, resume=True, progress=False)
    assert _weights_sha(tmp_path / "full") == _weights_sha(tmp_path / "resumed")
    epochs = [
        json.loads(x)["epoch"]
        for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [1, 2]


def test_existing_model_is_not_overwritten_by_accident(shapes, tmp_path):
    out = tmp_path / "m"
    train(shapes, out, tiny_config(epochs=1), progress=False)
    with pytest.raises(TrainingError, match="--overwrite"):
        train(shapes, out, tiny_config(epochs=1), progress=False)
    train(shapes, out, tiny_config(epochs=1), overwrite=True, progress=False)


def test_triplet_loss_and_fixed_temperature(shapes, tmp_path):
    cfg = tiny_config(epochs=1)
    cfg.loss = replace(cfg.loss, name="triplet")
    cfg.model = replace(cfg.model, learn_temperature=False)
    result = train(shapes, tmp_path / "t", cfg, progress=False)
    last = result.metrics[-1]
    assert "train_triplet" in last and "train_mbmr" not in last
    assert last["temperature"] == pytest.approx(cfg.model.temperature)


def test_rejected_rows_are_reported_in_the_model_folder(shapes, tmp_path):
    bad = shapes.parent / "with_bad_row.jsonl"
    missing = json.dumps({"id": "nope", "image": "missing.png", "title": "red circle"})
    bad.write_text(shapes.read_text() + missing + "\n")
    out = tmp_path / "m"
    train(bad, out, tiny_config(epochs=1), progress=False)
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rejects] == ["nope"]


def test_collate_feeds_the_model(shapes):
    # the dataset/collate contract the loop relies on
    batch = collate_pairs(
        [
            {"image": torch.zeros(3, 32, 32), "words": torch.tensor([1, 2]), "index": 0},
            {"image": torch.zeros(3, 32, 32), "words": torch.tensor([3]), "index": 1},
        ]
    )
    assert batch["words"].tolist() == [[1, 2], [3, -1]]


@pytest.mark.slow
def test_smoke_training_run_beats_chance_by_far(tmp_path):
    """The issue's smoke run: a few minutes on the CPU, validation R@1 far above chance."""
    manifest = make_shapes_catalog(tmp_path / "shapes", 1000, seed=0, image_size=64)
    cfg = Config(
        text=TextConfig(min_count=3),
        model=ModelConfig(embed_dim=128, image_size=64),
        train=TrainConfig(epochs=6, batch_size=64, val_fraction=0.2, val_max_items=200),
    )
    result = train(manifest, tmp_path / "model", cfg, progress=False)
    last = result.metrics[-1]
    chance_r1 = 1 / last["val_items"]
    print("smoke run:", json.dumps(last))
    assert last["val_i2t_r1"] > 5 * chance_r1
    assert last["val_i2t_r10"] > 5 * 10 * chance_r1
    assert last["val_attribute_map"] > 0.2


def test_resume_drops_metrics_of_epochs_after_the_checkpoint(shapes, tmp_path, monkeypatch):
    """A crash after an epoch's metrics line but before its checkpoint: no duplicate epoch."""
    cfg = tiny_config(epochs=2)
    out = tmp_path / "m"
    real_save = loop.save_checkpoint
    calls = []

    def crash_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash before the second checkpoint")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(loop, "save_checkpoint", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        train(shapes, out, cfg, progress=False)
    monkeypatch.undo()
    epochs = [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]  # epoch 2's line was written, its checkpoint was not
    train(shapes, out, cfg, resume=True, progress=False)
    epochs = [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


def test_overwrite_starts_a_clean_run(shapes, tmp_path):
    out = tmp_path / "m"
    train(shapes, out, tiny_config(epochs=2), progress=False)
    train(shapes, out, tiny_config(epochs=1), overwrite=True, progress=False)
    # the old run's epoch-0002 checkpoint is gone, so it can never be resumed into the new run
    assert [p.name for p in list_checkpoints(out)] == ["epoch-0001"]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1]


def test_interrupted_overwrite_leaves_the_old_model_and_checkpoints(shapes, tmp_path, monkeypatch):
    """`--overwrite` runs beside the old folder: a crash after its first checkpoint leaves the
    old model, its checkpoints and metrics as they were; `--resume` finishes the new run."""
    out = tmp_path / "m"
    train(shapes, out, tiny_config(epochs=2), progress=False)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    old_sha = _weights_sha(out)

    real_save = loop.save_checkpoint

    def save_then_crash(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("simulated crash after the new run's first checkpoint")

    monkeypatch.setattr(loop, "save_checkpoint", save_then_crash)
    new_cfg = tiny_config(epochs=2, seed=7)
    with pytest.raises(KeyboardInterrupt):
        train(shapes, out, new_cfg, overwrite=True, progress=False)
    monkeypatch.undo()
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # weights, vocabulary, config, checkpoints, metrics: untouched
    assert stylesearch.load_model(out).fingerprint() == old_sha
    work = tmp_path / ".m.overwrite"
    assert [p.name for p in list_checkpoints(work)] == ["epoch-0001"]
    with pytest.raises(TrainingError, match="--overwrite"):
        train(shapes, out, new_cfg, progress=False)  # still refused without a flag

    train(shapes, out, new_cfg, resume=True, progress=False)  # continues the new run
    assert not work.exists()
    assert _weights_sha(out) != old_sha
    assert stylesearch.load_model(out).fingerprint() == _weights_sha(out)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    assert (
        json.loads((out / "config.json").read_text())["extra"]["train_config"]["train"]["seed"] == 7
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.") and p.is_dir()]


def test_a_swap_killed_between_its_renames_is_finished_by_load_model(shapes, tmp_path):
    """What a kill of `train --overwrite` between the swap's two renames leaves: no MODEL_DIR,
    the new folder as .NAME.new-*, the old one as .NAME.old-*. Loading finishes the swap."""
    out = tmp_path / "m"
    train(shapes, out, tiny_config(epochs=1), progress=False)
    sha = _weights_sha(out)
    out.rename(tmp_path / ".m.new-0000")
    (tmp_path / ".m.old-0000").mkdir()  # an old folder, already half deleted
    assert stylesearch.load_model(out).fingerprint() == sha
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["m"]


def test_images_outside_the_catalog_need_image_roots(shapes, tmp_path):
    rows = [json.loads(x) for x in shapes.read_text().splitlines()]
    for row in rows:
        row["image"] = str(shapes.parent / row["image"])
        row["extra_images"] = [str(shapes.parent / p) for p in row.get("extra_images", [])]
    manifest = tmp_path / "elsewhere" / "m.jsonl"
    manifest.parent.mkdir()
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(TrainingError, match="only 0 usable items"):
        train(manifest, tmp_path / "refused", tiny_config(epochs=1), progress=False)
    train(manifest, tmp_path / "m", tiny_config(epochs=1), progress=False,
          image_roots=[shapes.parent])  # fmt: skip
    assert stylesearch.load_model(tmp_path / "m").fingerprint() == _weights_sha(tmp_path / "m")
