"""Model folders: save then load gives the same model, offline, refusing mismatched files."""

from __future__ import annotations

import hashlib
import json
import socket

import pytest
import torch

from stylesearch.config import ModelConfig, TextConfig
from stylesearch.model import JointModel, ModelFolderError, load_model, save_model
from stylesearch.text.vocabulary import Vocabulary


def make_vocab(words: list[str]) -> Vocabulary:
    counts = sorted((10 + i for i in range(len(words))), reverse=True)
    return Vocabulary(list(words), counts, n_items=100, min_count=2)


WORDS = ["red", "dress", "striped", "cotton", "blue"]


def _trained_ish_model(backbone: str = "resnet18", **kwargs) -> JointModel:
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, embed_dim=8, image_size=32, **kwargs)
    model = JointModel(cfg, vocab_size=len(WORDS))
    # one optimisation-like perturbation so nothing equals a fresh init, BN buffers included
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 32, 32), torch.tensor([[0, 1], [2, -1], [3, 4], [1, -1]]))
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
        model.log_temperature.fill_(-2.0)
    return model.eval()


def _embed(model: JointModel) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    images = torch.randn(3, 3, 32, 32, generator=g)
    words = torch.tensor([[0, 2, -1], [4, -1, -1], [-1, -1, -1]])
    with torch.no_grad():
        return (
            model.encode_images(images),
            model.encode_texts(words),
            model.encode_words(torch.arange(len(WORDS))),
            model.attribute_probs(images),
            model.temperature(),
        )


def test_save_then_load_gives_identical_embeddings(tmp_path):
    model = _trained_ish_model()
    vocab = make_vocab(WORDS)
    text_config = TextConfig(backend="simplemma", min_count=3)
    save_model(model, tmp_path / "m", vocab=vocab, text_config=text_config, extra={"epochs": 2})

    # only plain files: safetensors + json, nothing left over from the temp-file dance
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
        "vocab.json",
    ]
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["model"]["embed_dim"] == 8
    assert meta["text"]["backend"] == "simplemma"
    assert meta["vocab_size"] == len(WORDS)
    assert meta["vocab_fingerprint"] == vocab.fingerprint()
    assert meta["library_version"]
    assert meta["extra"] == {"epochs": 2}
    weights = (tmp_path / "m" / "model.safetensors").read_bytes()
    assert meta["weights_sha256"] == hashlib.sha256(weights).hexdigest()

    loaded = load_model(tmp_path / "m")
    assert not loaded.training
    assert loaded.fingerprint() == meta["weights_sha256"]
    assert loaded.vocab is not None and list(loaded.vocab.words) == WORDS
    assert loaded.text_config == text_config
    assert loaded.config == model.config
    for a, b in zip(_embed(model), _embed(loaded), strict=True):
        assert torch.equal(a, b)


def test_load_needs_no_network_and_never_unpickles(tmp_path, monkeypatch):
    # an EfficientNet model built with the packaged ImageNet weights: loading the folder must
    # not read them again (the safetensors hold everything), touch the network, or unpickle.
    model = _trained_ish_model("efficientnet_lite0", pretrained=True)
    save_model(model, tmp_path / "m", vocab=make_vocab(WORDS), text_config=None)

    def forbidden(*args, **kwargs):
        raise AssertionError("load_model must not use the network or torch.load")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    loaded = load_model(str(tmp_path / "m"))
    assert loaded.text_config is None
    for a, b in zip(_embed(model), _embed(loaded), strict=True):
        assert torch.equal(a, b)


def test_vocabulary_mismatch_is_refused(tmp_path):
    model = _trained_ish_model()
    save_model(model, tmp_path / "m", vocab=make_vocab(WORDS), text_config=None)
    # same size, other words: the fingerprint differs
    make_vocab(["a", "b", "c", "d", "e"]).save(tmp_path / "m" / "vocab.json")
    with pytest.raises(ModelFolderError, match="does not belong to this model"):
        load_model(tmp_path / "m")
    # wrong size
    make_vocab(WORDS[:3]).save(tmp_path / "m" / "vocab.json")
    with pytest.raises(ModelFolderError, match="expects 5 words"):
        load_model(tmp_path / "m")
    # saving with a vocabulary the model was not built for
    with pytest.raises(ValueError, match="vocabulary has 3 words"):
        save_model(model, tmp_path / "m2", vocab=make_vocab(WORDS[:3]), text_config=None)


def test_weights_fingerprint_mismatch_is_refused(tmp_path):
    save_model(_trained_ish_model(), tmp_path / "a", vocab=make_vocab(WORDS), text_config=None)
    other = _trained_ish_model()
    with torch.no_grad():
        other.image_proj.weight.add_(1.0)
    save_model(other, tmp_path / "b", vocab=make_vocab(WORDS), text_config=None)
    # weights from another save
    (tmp_path / "a" / "model.safetensors").write_bytes(
        (tmp_path / "b" / "model.safetensors").read_bytes()
    )
    with pytest.raises(ModelFolderError, match="sha256"):
        load_model(tmp_path / "a")


def test_not_a_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="missing vocab.json, model.safetensors"):
        load_model(tmp_path / "half")
    save_model(_trained_ish_model(), tmp_path / "m", vocab=make_vocab(WORDS), text_config=None)
    (tmp_path / "m" / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(ModelFolderError, match="not a stylesearch model config"):
        load_model(tmp_path / "m")


def test_save_overwrites_in_place_and_unwraps_module(tmp_path):
    model = _trained_ish_model()
    vocab = make_vocab(WORDS)
    save_model(model, tmp_path / "m", vocab=vocab, text_config=None)
    with torch.no_grad():
        model.text_tower.embedding.weight.mul_(2.0)
    wrapper = torch.nn.Module()
    wrapper.module = model  # what DistributedDataParallel looks like
    save_model(wrapper, tmp_path / "m", vocab=vocab, text_config=None)  # type: ignore[arg-type]
    loaded = load_model(tmp_path / "m")
    assert torch.equal(loaded.text_tower.embedding.weight, model.text_tower.embedding.weight)
    assert len(list((tmp_path / "m").iterdir())) == 3


@pytest.mark.parametrize("killed_after", [0, 1, 2])
def test_a_save_killed_between_its_renames_is_never_taken_for_a_model(
    tmp_path, monkeypatch, killed_after
):
    import os

    from stylesearch import folders  # model.io's files are replaced by folders.replace_files
    from stylesearch.model.io import model_is_complete

    model = _trained_ish_model()
    save_model(model, tmp_path / "m", vocab=make_vocab(WORDS), text_config=None)
    assert model_is_complete(tmp_path / "m")
    with torch.no_grad():
        model.text_tower.embedding.weight.mul_(2.0)
    renames = [0]
    real = os.replace

    def dying(src, dst):
        if str(dst).endswith(".tmp"):  # the vocabulary's own temporary file
            return real(src, dst)
        if renames[0] == killed_after:
            raise KeyboardInterrupt  # as if killed here: no more renames
        renames[0] += 1
        real(src, dst)

    monkeypatch.setattr(folders.os, "replace", dying)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, tmp_path / "m", vocab=make_vocab(WORDS[:4] + ["green"]), text_config=None)
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json", "model.safetensors", "vocab.json"
    ]  # fmt: skip
    if killed_after == 0:  # nothing renamed yet: the old model is whole
        assert model_is_complete(tmp_path / "m")
        load_model(tmp_path / "m")
    else:  # new weights (and vocabulary) beside the old config: refused, never mixed
        assert not model_is_complete(tmp_path / "m")
        with pytest.raises(ModelFolderError):
            load_model(tmp_path / "m")
