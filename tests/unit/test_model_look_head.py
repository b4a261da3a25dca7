"""The look-aware attribute head (model/look_head.py), fitted after training, and the model's p."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylesearch.config import ModelConfig
from stylesearch.model import JointModel, load_model, save_model
from stylesearch.model.look_head import LookHead
from stylesearch.text.vocabulary import Vocabulary


def test_forward_by_hand():
    head = LookHead(features=1, cells=1, hidden=2, vocab_size=1)
    head.mean.copy_(torch.tensor([1.0, 0.0]))
    head.scale.copy_(torch.tensor([2.0, 1.0]))
    head.weight1.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    head.bias1.copy_(torch.tensor([0.0, 0.5]))
    head.weight2.copy_(torch.tensor([[2.0, 3.0]]))
    head.bias2.copy_(torch.tensor([-1.0]))
    # f = 5, grid = 1: x = [(5 - 1) / 2, 1] = [2, 1]; hidden = relu([2, -1 + 0.5]) = [2, 0]
    # logit = 2 * 2 + 3 * 0 - 1 = 3
    # f = 1, grid = -2: x = [0, -2]; hidden = relu([0, 2.5]) = [0, 2.5]; logit = 7.5 - 1 = 6.5
    logits = head(torch.tensor([[5.0], [1.0]]), torch.tensor([[1.0], [-2.0]]))
    torch.testing.assert_close(logits, torch.tensor([[3.0], [6.5]]))


def _shape_words(n: int = 400) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features that are noise, and grids whose first cell alone decides word 0 and whose
    second cell's sign decides word 1."""
    g = torch.Generator().manual_seed(1)
    features = torch.randn(n, 6, generator=g)
    grids = torch.randn(n, 5, generator=g)
    labels = torch.stack([grids[:, 0] > 0.5, grids[:, 1] < 0], dim=1)
    return features, grids, labels


def _auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    pos, neg = scores[labels], scores[~labels]
    return float((pos[:, None] > neg[None, :]).float().mean())


def test_fit_learns_words_that_only_the_grid_shows():
    features, grids, labels = _shape_words()
    head = LookHead(6, 5, hidden=16, vocab_size=2)
    assert not head.is_fitted
    head.fit(features[:300], grids[:300], labels[:300])
    assert head.is_fitted
    with torch.no_grad():
        probs = torch.sigmoid(head(features[300:], grids[300:]))
    for word in range(2):  # held-out rows
        assert _auc(probs[:, word], labels[300:, word]) > 0.95


def test_fit_is_deterministic_and_leaves_the_global_random_state_alone():
    features, grids, labels = _shape_words(100)
    heads = [LookHead(6, 5, hidden=8, vocab_size=2) for _ in range(2)]
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    for head in heads:
        head.fit(features, grids, labels, seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    for a, b in zip(heads[0].state_dict().values(), heads[1].state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_fit_refuses_rows_that_do_not_match():
    head = LookHead(2, 3, hidden=4, vocab_size=1)
    with pytest.raises(ValueError, match="at least 2 rows"):
        head.fit(torch.zeros(1, 2), torch.zeros(1, 3), torch.zeros(1, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="got 3, 2 and 3"):
        head.fit(torch.zeros(3, 2), torch.zeros(2, 3), torch.zeros(3, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="hidden width"):
        LookHead(2, 3, hidden=0, vocab_size=1)


def _model(look_head: int = 4, look_dim: int = 2) -> JointModel:
    torch.manual_seed(0)
    config = ModelConfig(embed_dim=8, image_size=32, look_dim=look_dim, look_head=look_head)
    model = JointModel(config, vocab_size=3)
    if model.look is not None:
        images = torch.randn(10, 3, 32, 32)
        model.look.fit_floor(model.look.tones(images))
        model.look.fit(model.look.grid(images))
    return model.eval()


def _fit(model: JointModel) -> None:
    images = torch.randn(12, 3, 32, 32)
    with torch.no_grad():
        features, grids = model.encode_images(images), model.look.grid(images)
    labels = torch.zeros(12, 3, dtype=torch.bool)
    labels[::2, 0] = labels[1::3, 1] = True
    model.look_head.fit(features, grids, labels)


def test_the_model_p_is_the_linear_head_until_the_look_head_is_fitted():
    model = _model()
    assert model.look_head is not None
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        features = model.encode_images(images)
        linear = torch.sigmoid(model.attribute_logits(features))
        torch.testing.assert_close(model.attribute_probs(images), linear)
        _fit(model)
        looked = torch.sigmoid(model.look_head(features, model.look.grid(images)))
        torch.testing.assert_close(model.attribute_probs(images), looked)
        assert not torch.allclose(looked, linear)
        vectors, probs = model.index_rows(images)
        torch.testing.assert_close(vectors, model.encode_index(images))
        torch.testing.assert_close(probs, looked)


def test_attribute_probs_without_images_says_what_it_needs():
    model = _model()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features, grids = model.encode_images(images), model.look.grid(images)
        torch.testing.assert_close(
            model.attribute_probs(None, features), model.attribute_probs(images)
        )
        with pytest.raises(ValueError, match="give the images, or their features$"):
            model.attribute_probs(None)
        _fit(model)
        torch.testing.assert_close(
            model.attribute_probs(None, features, grids), model.attribute_probs(images)
        )
        with pytest.raises(ValueError, match="their features and grids"):
            model.attribute_probs(None, features)


def test_no_look_head_without_a_look_or_with_width_zero():
    assert _model(look_dim=0).look_head is None
    assert _model(look_head=0).look_head is None
    assert "look_head.weight1" not in _model(look_head=0).state_dict()


def test_a_fitted_look_head_survives_save_and_load(tmp_path):
    model = _model()
    _fit(model)
    vocab = Vocabulary(["red", "dress", "blue"], [12, 11, 10], n_items=100, min_count=2)
    save_model(model, tmp_path / "m", vocab=vocab, text_config=None)
    loaded = load_model(tmp_path / "m")
    assert loaded.look_head.is_fitted
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.attribute_probs(images), model.attribute_probs(images))


def test_fit_look_head_fits_on_the_rows_with_words():
    from stylesearch.training.look import fit_look_head

    g = torch.Generator().manual_seed(0)
    model = _model()
    features = torch.randn(5, model.config.embed_dim, generator=g)
    grids = torch.rand(5, model.look.mean.numel(), generator=g)
    bags = [[0], [], [1, 2], [], [0, 2]]
    assert fit_look_head(model, features, grids, [[], [], [1], [], []]) == 0  # one row with words
    assert not model.look_head.is_fitted
    assert fit_look_head(model, features, None, bags) == 0  # no grids
    assert fit_look_head(model, features, grids, bags) == 3
    assert model.look_head.is_fitted
    assert fit_look_head(_model(look_head=0), features, grids, bags) == 0


@pytest.mark.parametrize("fitted", [False, True])
def test_p_of_images_already_read_is_the_models_p_of_the_images(fitted):
    from stylesearch.model.inference import predict_attributes_from

    model = _model()
    if fitted:
        _fit(model)
    images = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        features, grids = model.encode_images(images), model.look.grid(images)
        expected = model.attribute_probs(images).numpy()
    got = predict_attributes_from(model, features, grids, batch_size=2)  # batches of 2, 2, 1
    assert got.shape == (5, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="give the look's grids"):
        predict_attributes_from(model, features, None)
    assert predict_attributes_from(model, features[:0], grids[:0]).shape == (0, 3)
