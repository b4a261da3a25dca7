"""JointModel and its towers: shapes, text sums, temperature, backbone weights (offline)."""

from __future__ import annotations

import math

import pytest
import torch

from stylesearch.config import ModelConfig
from stylesearch.model import JointModel, TextTower, build_image_backbone
from stylesearch.model.towers import IMAGENET_MEAN, IMAGENET_STD, EfficientNetLite0Backbone

V = 7
D = 16


def _images(n: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


@pytest.mark.parametrize(
    ("backbone", "features"), [("resnet18", 512), ("efficientnet_lite0", 1280)]
)
def test_output_shapes_at_64px(backbone, features):
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, embed_dim=D, image_size=64)
    module, n_features = build_image_backbone(cfg)
    assert n_features == features
    model = JointModel(cfg, vocab_size=V).eval()
    images = _images()
    words = torch.tensor([[0, 3, -1], [6, -1, -1]])
    with torch.no_grad():
        assert module(images).shape == (2, features)
        out = model(images, words)
        assert out["image_features"].shape == (2, D)
        assert out["text_features"].shape == (2, D)
        assert out["attribute_logits"].shape == (2, V)
        assert out["temperature"].shape == ()
        probs = model.attribute_probs(images)
        assert probs.shape == (2, V) and (probs >= 0).all() and (probs <= 1).all()
        unit = model.encode_images(images, normalize=True)
        assert torch.allclose(unit.norm(dim=-1), torch.ones(2), atol=1e-5)
        # the attribute head reads the unnormalised f_I
        feats = model.encode_images(images)
        assert torch.allclose(model.attribute_logits(feats), out["attribute_logits"], atol=1e-5)
        # second views (the same-item term) are encoded in the same pass, as encode_images would
        both = model(images, words, images.flip(0))
        assert torch.allclose(both["image_features"], feats, atol=1e-5)
        assert torch.allclose(both["second_image_features"], feats.flip(0), atol=1e-5)
        assert "second_image_features" not in out
    assert model.fingerprint() is None


def test_efficientnet_pretrained_loads_packaged_weights_offline(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    path = EfficientNetLite0Backbone.packaged_weights_path()
    state = torch.load(path, map_location="cpu", weights_only=True)

    torch.manual_seed(0)
    pretrained = JointModel(ModelConfig(backbone="efficientnet_lite0", pretrained=True), V)
    torch.manual_seed(0)
    random_init = JointModel(ModelConfig(backbone="efficientnet_lite0", pretrained=False), V)
    net = pretrained.image_backbone.net
    for key in ("_conv_stem.weight", "_blocks.3._depthwise_conv.weight", "_bn1.running_mean"):
        assert torch.equal(net.state_dict()[key], state[key])
    stem_random = random_init.image_backbone.net._conv_stem.weight
    assert not torch.equal(stem_random, state["_conv_stem.weight"])
    # the classifier is not part of the model
    assert not any(k.startswith("image_backbone.net._fc") for k in pretrained.state_dict())


def test_efficientnet_wrapper_converts_imagenet_normalisation():
    torch.manual_seed(0)
    backbone = EfficientNetLite0Backbone().eval()
    rgb = torch.rand(2, 3, 32, 32)  # [0, 1]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = backbone((rgb - mean) / std)
        expected = backbone.net.extract_features((rgb * 255 - 127) / 128).mean(dim=(2, 3))
    assert ours.shape == (2, 1280)
    assert torch.allclose(ours, expected, atol=1e-4)


def test_encode_texts_is_the_sum_of_its_words():
    torch.manual_seed(0)
    model = JointModel(ModelConfig(embed_dim=D), vocab_size=V)
    words = torch.tensor([[0, 3, 5, -1], [2, -1, -1, -1], [-1, -1, -1, -1], [4, 4, 1, 6]])
    with torch.no_grad():
        texts = model.encode_texts(words)
        single = model.encode_words(torch.arange(V))
    assert single.shape == (V, D)
    assert torch.allclose(texts[0], single[0] + single[3] + single[5], atol=1e-6)
    assert torch.allclose(texts[1], single[2], atol=1e-6)  # padding ignored
    assert torch.equal(texts[2], torch.zeros(D))  # empty bag -> zero vector
    assert torch.allclose(texts[3], 2 * single[4] + single[1] + single[6], atol=1e-6)
    # normalised: unit rows, the empty bag stays zero (no NaN)
    unit = model.encode_texts(words, normalize=True)
    assert torch.isfinite(unit).all()
    assert torch.allclose(unit[[0, 1, 3]].norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.equal(unit[2], torch.zeros(D))
    # no words at all
    assert model.encode_texts(torch.zeros(2, 0, dtype=torch.long)).shape == (2, D)
    with pytest.raises(ValueError):
        model.encode_texts(torch.tensor([[V]]))
    with pytest.raises(ValueError):
        model.encode_words(torch.tensor([-1]))


def test_text_tower_padding_gets_no_gradient():
    torch.manual_seed(0)
    tower = TextTower(5, 4)
    tower(torch.tensor([[1, -1, -1]])).sum().backward()
    grad = tower.embedding.weight.grad
    assert grad[1].abs().sum() > 0
    assert grad[[0, 2, 3, 4]].abs().sum() == 0  # -1 is clamped to id 0 but masked out
    assert tower.embedding.weight.std().item() < 0.1  # small normal init


def test_temperature_initial_value_and_clamp():
    cfg = ModelConfig(embed_dim=D, temperature=0.07, min_temperature=0.01, max_temperature=1.0)
    model = JointModel(cfg, vocab_size=V)
    assert model.temperature().item() == pytest.approx(0.07, rel=1e-5)
    assert model.log_temperature.requires_grad
    with torch.no_grad():
        model.log_temperature.fill_(math.log(5.0))
    assert model.temperature().item() == pytest.approx(1.0, rel=1e-5)
    with torch.no_grad():
        model.log_temperature.fill_(math.log(0.001))
    assert model.temperature().item() == pytest.approx(0.01, rel=1e-5)
    model.clamp_temperature_()
    assert model.log_temperature.item() == pytest.approx(math.log(0.01), rel=1e-5)
    fixed = JointModel(ModelConfig(embed_dim=D, learn_temperature=False), vocab_size=V)
    assert not fixed.log_temperature.requires_grad


def test_pretrained_resnet18_without_weights_path_is_a_clear_error():
    with pytest.raises(ValueError, match="weights_path") as info:
        JointModel(ModelConfig(backbone="resnet18", pretrained=True), vocab_size=V)
    assert "efficientnet_lite0" in str(info.value)
    assert "offline" in str(info.value)
    # building a model to load a saved folder into never needs the backbone weights
    JointModel(ModelConfig(pretrained=True), vocab_size=V, load_backbone_weights=False)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_resnet18_weights_path_round_trip(tmp_path, suffix):
    from safetensors.torch import save_file
    from torchvision.models import resnet18

    torch.manual_seed(123)
    reference = resnet18(weights=None)
    with torch.no_grad():
        reference.bn1.running_mean.uniform_()  # buffers travel too
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}  # fc.* included
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)

    torch.manual_seed(0)
    for pretrained in (True, False):  # weights_path is loaded whenever it is given
        cfg = ModelConfig(backbone="resnet18", pretrained=pretrained, weights_path=str(path))
        model = JointModel(cfg, vocab_size=V)
        loaded = model.image_backbone.net.state_dict()
        for key, value in state.items():
            if not key.startswith("fc."):
                assert torch.equal(loaded[key], value), key
    # same features as the reference network without its classifier
    reference.fc = torch.nn.Identity()
    reference.eval()
    model.eval()
    with torch.no_grad():
        x = _images(size=32)
        assert torch.allclose(model.image_backbone(x), reference(x), atol=1e-5)


def test_resnet18_weights_path_errors(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(FileNotFoundError):
        JointModel(ModelConfig(weights_path=str(tmp_path / "missing.pth")), vocab_size=V)
    bad = tmp_path / "bad.safetensors"
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, str(bad))  # most keys missing
    with pytest.raises(ValueError, match="ResNet-18 state dict"):
        JointModel(ModelConfig(weights_path=str(bad)), vocab_size=V)
