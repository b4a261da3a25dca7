"""Losses against hand-computed values (PAPER.md "Losses"), and gradient flow."""

from __future__ import annotations

import math

import pytest
import torch

from stylesearch.config import LossConfig, ModelConfig
from stylesearch.losses import (
    attribute_loss,
    attribute_pos_weight,
    compute_losses,
    mbmr_loss,
    multi_hot,
    same_item_loss,
    triplet_loss,
)
from stylesearch.model import JointModel


def _mbmr_features() -> tuple[torch.Tensor, torch.Tensor]:
    """Images 2e1, 3e2, e3 and texts 2e1, 5e2, (-3, 0, 4) (norm 5): cosines

    S = [[1, 0, -0.6],
         [0, 1,  0  ],
         [0, 0,  0.8]]     (rows: images, columns: texts)
    """
    images = torch.tensor([[2.0, 0, 0], [0, 3.0, 0], [0, 0, 1.0]])
    texts = torch.tensor([[2.0, 0, 0], [0, 5.0, 0], [-3.0, 0, 4.0]])
    return images, texts


def test_mbmr_hand_computed_3x3_sum_and_mean():
    images, texts = _mbmr_features()
    tau = 0.5  # logits S / tau = [[2, 0, -1.2], [0, 2, 0], [0, 0, 1.6]]
    e = math.exp
    # image -> text: row i, -log softmax(row)[i]
    i2t = (
        (math.log(e(2) + 1 + e(-1.2)) - 2)  # row 1: (2, 0, -1.2)
        + (math.log(1 + e(2) + 1) - 2)  # row 2: (0, 2, 0)
        + (math.log(1 + 1 + e(1.6)) - 1.6)  # row 3: (0, 0, 1.6)
    )
    # text -> image: column i, -log softmax(column)[i]
    t2i = (
        (math.log(e(2) + 1 + 1) - 2)  # column 1: (2, 0, 0)
        + (math.log(1 + e(2) + 1) - 2)  # column 2: (0, 2, 0)
        + (math.log(e(-1.2) + 1 + e(1.6)) - 1.6)  # column 3: (-1.2, 0, 1.6)
    )
    # the same numbers, evaluated by hand
    assert i2t == pytest.approx(0.162202 + 0.239545 + 0.339178, abs=1e-5)
    assert t2i == pytest.approx(0.239545 + 0.239545 + 0.233257, abs=1e-5)

    out = mbmr_loss(images, texts, torch.tensor(tau), reduction="sum")
    assert out["mbmr_i2t"].item() == pytest.approx(i2t, abs=1e-5)
    assert out["mbmr_t2i"].item() == pytest.approx(t2i, abs=1e-5)
    assert out["mbmr"].item() == pytest.approx(i2t + t2i, abs=1e-5)

    out = mbmr_loss(images, texts, tau, reduction="mean")
    assert out["mbmr_i2t"].item() == pytest.approx(i2t / 3, abs=1e-5)
    assert out["mbmr_t2i"].item() == pytest.approx(t2i / 3, abs=1e-5)
    assert out["mbmr"].item() == pytest.approx((i2t + t2i) / 3, abs=1e-5)


def test_mbmr_directions_are_not_symmetric_and_scale_invariant():
    images, texts = _mbmr_features()
    a = mbmr_loss(images, texts, 0.5)
    b = mbmr_loss(images * 7.0, texts * 0.1, 0.5)  # cosine ignores norms
    assert a["mbmr_i2t"].item() != pytest.approx(a["mbmr_t2i"].item(), abs=1e-3)
    assert a["mbmr"].item() == pytest.approx(b["mbmr"].item(), abs=1e-6)
    with pytest.raises(ValueError):
        mbmr_loss(images, texts, 0.5, reduction="max")
    with pytest.raises(ValueError):
        mbmr_loss(images, texts[:2], 0.5)


def _triplet_features() -> tuple[torch.Tensor, torch.Tensor]:
    """Images e1, 2e2, 3e3; texts (3,4,0)/5, (2,1,2)/3, (2,3,6)/7 (unnormalised): cosines

    S = [[0.6, 2/3, 2/7],
         [0.8, 1/3, 3/7],
         [0,   2/3, 6/7]]
    """
    images = torch.tensor([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]])
    texts = torch.tensor([[3.0, 4.0, 0], [2.0, 1.0, 2.0], [2.0, 3.0, 6.0]])
    return images, texts


def test_triplet_hardest_hand_computed():
    images, texts = _triplet_features()
    m = 0.4
    # image anchors (rows): pos 0.6 / hardest 2/3; pos 1/3 / hardest 0.8; pos 6/7 / hardest 2/3
    i2t = [m + 2 / 3 - 0.6, m + 0.8 - 1 / 3, m + 2 / 3 - 6 / 7]  # 7/15, 13/15, 22/105
    # text anchors (columns): pos 0.6 / hardest 0.8; pos 1/3 / 2/3; pos 6/7 / 3/7 (hinge < 0)
    t2i = [m + 0.8 - 0.6, m + 2 / 3 - 1 / 3, 0.0]  # 3/5, 11/15, 0
    out = triplet_loss(images, texts, margin=m, negatives="hardest", reduction="sum")
    assert out["triplet_i2t"].item() == pytest.approx(7 / 15 + 13 / 15 + 22 / 105, abs=1e-6)
    assert out["triplet_i2t"].item() == pytest.approx(sum(i2t), abs=1e-6)
    assert out["triplet_t2i"].item() == pytest.approx(3 / 5 + 11 / 15, abs=1e-6)
    assert out["triplet"].item() == pytest.approx(sum(i2t) + sum(t2i), abs=1e-6)
    mean = triplet_loss(images, texts, margin=m, negatives="hardest", reduction="mean")
    assert mean["triplet"].item() == pytest.approx((sum(i2t) + sum(t2i)) / 3, abs=1e-6)


def test_triplet_semi_hard_hand_computed():
    images, texts = _triplet_features()
    m = 0.4
    # image anchors: I1 pos 0.6, negatives below it {2/7} -> 0.4 + 2/7 - 0.6 = 3/35;
    # I2 pos 1/3, none below (0.8, 3/7) -> fall back to hardest 0.8 -> 13/15;
    # I3 pos 6/7, below {0, 2/3} -> 2/3 -> 22/105
    i2t = 3 / 35 + 13 / 15 + 22 / 105
    # text anchors: T1 pos 0.6, below {0} -> hinge < 0 -> 0; T2 pos 1/3, none below -> hardest
    # 2/3 -> 11/15; T3 pos 6/7, below {2/7, 3/7} -> 3/7 -> hinge < 0 -> 0
    t2i = 11 / 15
    out = triplet_loss(images, texts, margin=m, negatives="semi-hard", reduction="sum")
    assert out["triplet_i2t"].item() == pytest.approx(i2t, abs=1e-6)
    assert out["triplet_t2i"].item() == pytest.approx(t2i, abs=1e-6)
    assert out["triplet"].item() == pytest.approx(i2t + t2i, abs=1e-6)
    with pytest.raises(ValueError):
        triplet_loss(images, texts, negatives="easy")


def test_triplet_single_item_batch_is_zero_and_finite():
    img = torch.randn(1, 4, requires_grad=True)
    txt = torch.randn(1, 4, requires_grad=True)
    for negatives in ("hardest", "semi-hard"):
        out = triplet_loss(img, txt, negatives=negatives)
        out["triplet"].backward()
        assert out["triplet"].item() == 0.0
        assert torch.isfinite(img.grad).all()


def test_multi_hot_ignores_padding_and_repeats():
    words = torch.tensor([[0, 2, -1, -1], [2, 2, 1, -1], [-1, -1, -1, -1]])
    expected = torch.tensor([[1.0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]])
    assert torch.equal(multi_hot(words, 4), expected)
    assert multi_hot(torch.zeros(2, 0, dtype=torch.long), 3).shape == (2, 3)
    with pytest.raises(ValueError):
        multi_hot(torch.tensor([[4]]), 4)


def test_attribute_loss_hand_computed():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # positive: -log sigmoid(x) = log(1 + e^-x); negative: -log(1 - sigmoid(x)) = log(1 + e^x)
    entries = [math.log(2), math.log(1 + math.exp(2)), math.log(1 + math.exp(-1)), math.log(2)]
    total = sum(entries)  # 0.693147 + 2.126928 + 0.313262 + 0.693147
    assert total == pytest.approx(3.826484, abs=1e-5)
    out = attribute_loss(logits, targets, reduction="sum")
    assert out["attribute"].item() == pytest.approx(total, abs=1e-5)
    out = attribute_loss(logits, targets, reduction="mean")  # mean over batch AND words
    assert out["attribute"].item() == pytest.approx(total / 4, abs=1e-6)

    # word 0's positive weighted 3x, word 1's positive 1x; negatives unweighted
    pos_weight = torch.tensor([3.0, 1.0])
    weighted = 3 * math.log(2) + entries[1] + entries[2] + math.log(2)
    out = attribute_loss(logits, targets, pos_weight=pos_weight, reduction="sum")
    assert out["attribute"].item() == pytest.approx(weighted, abs=1e-5)
    out = attribute_loss(logits, targets, pos_weight=pos_weight, reduction="mean")
    assert out["attribute"].item() == pytest.approx(weighted / 4, abs=1e-6)


def test_attribute_pos_weight_hand_computed():
    counts = [1, 4, 50, 90, 100, 0]
    w = attribute_pos_weight(counts, 100, power=0.5, max_weight=30.0)
    # sqrt(99/1), sqrt(96/4), sqrt(50/50) = 1, sqrt(10/90) < 1 -> 1, 0 -> 1, unseen -> max
    expected = [math.sqrt(99), math.sqrt(24), 1.0, 1.0, 1.0, 30.0]
    assert w.dtype == torch.float32 and w.shape == (6,)
    assert w.tolist() == pytest.approx(expected, abs=1e-5)
    # power 1: fully balanced, capped at max_weight
    w1 = attribute_pos_weight(torch.tensor(counts), 100, power=1.0, max_weight=30.0)
    assert w1.tolist() == pytest.approx([30.0, 24.0, 1.0, 1.0, 1.0, 30.0], abs=1e-5)
    # power 0: no weighting at all (unseen words included)
    assert attribute_pos_weight(counts, 100, power=0.0).tolist() == [1.0] * 6
    with pytest.raises(ValueError):
        attribute_pos_weight([1, -1], 10)
    with pytest.raises(ValueError):
        attribute_pos_weight([1], 0)


def test_rare_word_positive_counts_more():
    # two words: rare (2 of 100 items), common (50 of 100); one item has both, both missed
    pos_weight = attribute_pos_weight([2, 50], 100)  # [7.0, 1.0]
    assert pos_weight.tolist() == pytest.approx([7.0, 1.0], abs=1e-5)
    logits = torch.tensor([[-2.0, -2.0]])
    targets = torch.tensor([[1.0, 1.0]])
    per_word = [
        attribute_loss(logits[:, [i]], targets[:, [i]], pos_weight=pos_weight[[i]])["attribute"]
        for i in range(2)
    ]
    unweighted = math.log(1 + math.exp(2))
    assert per_word[0].item() == pytest.approx(7.0 * unweighted, abs=1e-5)
    assert per_word[1].item() == pytest.approx(unweighted, abs=1e-5)
    # negatives are never re-weighted
    neg = attribute_loss(logits, torch.zeros(1, 2), pos_weight=pos_weight)["attribute"]
    assert neg.item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)


def _outputs(n: int = 4, d: int = 3, v: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image_features": torch.randn(n, d, generator=g),
        "text_features": torch.randn(n, d, generator=g),
        "attribute_logits": torch.randn(n, v, generator=g),
        "temperature": torch.tensor(0.1),
    }


def test_compute_losses_terms_and_total():
    out = _outputs()
    words = torch.tensor([[0, 1], [2, -1], [4, 3], [-1, -1]])
    cfg = LossConfig(name="mbmr", attribute_weight=0.5, attribute_weighting="none")
    losses = compute_losses(out, words, cfg)
    assert set(losses) == {"mbmr_i2t", "mbmr_t2i", "mbmr", "attribute", "total"}
    expected_attr = attribute_loss(out["attribute_logits"], multi_hot(words, 5))["attribute"]
    assert losses["attribute"].item() == pytest.approx(expected_attr.item())
    assert losses["total"].item() == pytest.approx(
        losses["mbmr"].item() + 0.5 * expected_attr.item()
    )

    cfg = LossConfig(name="triplet", negatives="semi-hard", margin=0.3, attribute_weighting="none")
    losses = compute_losses(out, words, cfg)
    assert {"triplet_i2t", "triplet_t2i", "triplet", "attribute", "total"} == set(losses)
    ref = triplet_loss(
        out["image_features"], out["text_features"], margin=0.3, negatives="semi-hard"
    )
    assert losses["triplet"].item() == pytest.approx(ref["triplet"].item())


def test_same_item_loss_hand_computed():
    eye = torch.eye(2)
    # matched views: every row's logits are (1, 0) with target 0 -> log(1 + e^-1)
    matched = same_item_loss(eye * 3.0, eye, temperature=1.0)["same_item"]
    assert matched.item() == pytest.approx(math.log(1 + math.exp(-1)))
    # swapped views: logits (0, 1) with target 0 -> log(1 + e^1)
    swapped = same_item_loss(eye, eye.flip(0), temperature=1.0)["same_item"]
    assert swapped.item() == pytest.approx(math.log(1 + math.e))
    # tau = 0.5 doubles the logits: log(1 + e^-2)
    sharp = same_item_loss(eye, eye, temperature=0.5)["same_item"]
    assert sharp.item() == pytest.approx(math.log(1 + math.exp(-2)))
    # only the first `dims` coordinates count: the third one would swap the match
    a = torch.tensor([[1.0, 0.0, 9.0], [0.0, 1.0, -9.0]])
    b = torch.tensor([[1.0, 0.0, -9.0], [0.0, 1.0, 9.0]])
    assert same_item_loss(a, b, temperature=1.0, dims=2)["same_item"].item() == pytest.approx(
        math.log(1 + math.exp(-1))
    )
    assert same_item_loss(a, b, temperature=1.0)["same_item"].item() > 1.0
    with pytest.raises(ValueError):
        same_item_loss(a, b[:1], temperature=1.0)
    with pytest.raises(ValueError):
        same_item_loss(a, b, temperature=1.0, dims=4)


def test_compute_losses_adds_the_same_item_term_when_weighted():
    out = _outputs()
    words = torch.tensor([[0, 1], [2, -1], [4, 3], [-1, -1]])
    plain = compute_losses(out, words, LossConfig(attribute_weighting="none"))
    assert "same_item" not in plain
    cfg = LossConfig(
        attribute_weighting="none", same_item_weight=0.5, same_item_temperature=0.2,
        same_item_dims=2,
    )  # fmt: skip
    with pytest.raises(ValueError, match="second_image_features"):
        compute_losses(out, words, cfg)
    second = out["image_features"].flip(0)
    losses = compute_losses({**out, "second_image_features": second}, words, cfg)
    ref = same_item_loss(out["image_features"], second, temperature=0.2, dims=2)["same_item"]
    assert losses["same_item"].item() == pytest.approx(ref.item())
    assert losses["total"].item() == pytest.approx(plain["total"].item() + 0.5 * ref.item())


def test_compute_losses_pos_weight_and_gathered():
    out = _outputs()
    words = torch.tensor([[0, 1], [2, -1], [4, 3], [-1, -1]])
    cfg = LossConfig(name="mbmr", attribute_weighting="pos_weight")
    with pytest.raises(ValueError, match="pos_weight"):
        compute_losses(out, words, cfg)
    with pytest.raises(ValueError, match="none"):
        compute_losses(out, words, LossConfig(attribute_weighting="none"), pos_weight=torch.ones(5))
    pw = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    losses = compute_losses(out, words, cfg, pos_weight=pw)
    ref = attribute_loss(out["attribute_logits"], multi_hot(words, 5), pos_weight=pw)
    assert losses["attribute"].item() == pytest.approx(ref["attribute"].item())

    # gathered features (a bigger "global" batch) drive the match loss; attribute stays local
    other = _outputs(seed=1)
    gathered = (
        torch.cat([out["image_features"], other["image_features"]]),
        torch.cat([out["text_features"], other["text_features"]]),
    )
    losses_g = compute_losses(out, words, cfg, pos_weight=pw, gathered=gathered)
    ref_match = mbmr_loss(*gathered, out["temperature"])
    assert losses_g["mbmr"].item() == pytest.approx(ref_match["mbmr"].item())
    assert losses_g["attribute"].item() == pytest.approx(losses["attribute"].item())


def _tiny_model(learn_temperature: bool = True) -> JointModel:
    torch.manual_seed(0)
    cfg = ModelConfig(
        backbone="resnet18", embed_dim=8, image_size=32, learn_temperature=learn_temperature
    )
    return JointModel(cfg, vocab_size=6)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(3, 3, 32, 32, generator=g)
    words = torch.tensor([[0, 1, -1], [2, 3, 4], [5, -1, -1]])
    return images, words


@pytest.mark.parametrize("name", ["mbmr", "triplet"])
def test_gradients_reach_both_towers_temperature_and_attribute_head(name):
    model = _tiny_model()
    images, words = _batch()
    cfg = LossConfig(name=name, attribute_weighting="none", margin=1.0)

    # the match loss alone: towers (+ temperature for MBMR), not the attribute head
    losses = compute_losses(model(images, words), words, cfg)
    losses[name].backward()
    assert model.image_backbone.net.conv1.weight.grad.abs().sum() > 0
    assert model.image_proj.weight.grad.abs().sum() > 0
    emb_grad = model.text_tower.embedding.weight.grad
    assert (emb_grad.abs().sum(dim=1) > 0).all()  # every word used in the batch
    if name == "mbmr":
        assert model.log_temperature.grad is not None and model.log_temperature.grad != 0
    assert model.attribute_head.weight.grad is None

    # the total loss also trains the attribute head
    model.zero_grad(set_to_none=True)
    compute_losses(model(images, words), words, cfg)["total"].backward()
    assert model.attribute_head.weight.grad.abs().sum() > 0
    assert model.attribute_head.bias.grad.abs().sum() > 0


def test_fixed_temperature_gets_no_gradient():
    model = _tiny_model(learn_temperature=False)
    assert not model.log_temperature.requires_grad
    images, words = _batch()
    cfg = LossConfig(attribute_weighting="none")
    compute_losses(model(images, words), words, cfg)["total"].backward()
    assert model.log_temperature.grad is None
    assert model.image_proj.weight.grad is not None
    assert model.temperature().item() == pytest.approx(0.07)
