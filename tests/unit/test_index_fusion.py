"""Fusing an item's own text into its attribute probabilities (index/fusion.py), by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stylesearch.config import ConfigError
from stylesearch.index.fusion import TextFusion
from stylesearch.index.postings import csr_from_bags


def _attributes() -> np.ndarray:
    # 3 items x 3 words, Fortran order as in the index folder
    rows = [[0.2, 0.8, 0.0], [0.6, 0.4, 1.0], [0.1, 0.1, 0.5]]
    return np.asfortranarray(np.array(rows, np.float16))


def _bags():
    return csr_from_bags([[1], [], [0, 2]])  # item 0 says word 1; item 2 words 0 and 2


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def test_blend_by_hand():
    a = _attributes()
    TextFusion("blend", 0.5).fuse(a, *_bags())
    # p <- 0.5 p + 0.5 [word in the item's text]
    want = [[0.1, 0.9, 0.0], [0.3, 0.2, 0.5], [0.55, 0.05, 0.75]]
    np.testing.assert_allclose(a.astype(np.float32), want, atol=1e-3)
    assert a.dtype == np.float16 and a.flags.f_contiguous


def test_blend_zero_is_the_attribute_head_and_one_is_the_text():
    a = _attributes()
    TextFusion("blend", 0.0).fuse(a, *_bags())
    np.testing.assert_array_equal(a, _attributes())
    TextFusion("blend", 1.0).fuse(a, *_bags())
    np.testing.assert_array_equal(a, [[0, 1, 0], [0, 0, 0], [1, 0, 1]])


def test_log_odds_by_hand():
    a = _attributes()
    TextFusion("log-odds", 3.0).fuse(a, *_bags())
    # named: logit p = logit h + 3; silent: logit h - 3. h = 0.5 named: sigmoid(3) = 0.9526;
    # h = 0.8 named: 0.9877; h = 0.6 silent: sigmoid(0.4055 - 3) = 0.0695; h = 0 is kept at
    # 1e-4 before its logit: sigmoid(-9.2102 - 3) = 4.98e-6
    want = [
        [_sigmoid(_logit(0.2) - 3), 0.98771, 4.98e-6],
        [0.069519, _sigmoid(_logit(0.4) - 3), _sigmoid(_logit(1 - 1e-4) - 3)],
        [_sigmoid(_logit(0.1) + 3), _sigmoid(_logit(0.1) - 3), 0.952574],
    ]
    np.testing.assert_allclose(a.astype(np.float32), want, rtol=2e-3, atol=1e-7)
    assert a.dtype == np.float16 and a.flags.f_contiguous


def test_log_odds_zero_is_the_attribute_head():
    a = _attributes()
    TextFusion("log-odds", 0.0).fuse(a, *_bags())
    np.testing.assert_allclose(a.astype(np.float32), _attributes().astype(np.float32), atol=2e-4)


def test_a_pullover_titled_sandals_is_doubted():
    # the module's example: h = 0.01 with the word in the text is 0.5 in a blend, 0.17 here
    for fusion, want in ((TextFusion("blend", 0.5), 0.505), (TextFusion(), 0.1692)):
        a = np.asfortranarray(np.array([[0.01]], np.float16))
        fusion.fuse(a, *csr_from_bags([[0]]))
        assert float(a[0, 0]) == pytest.approx(want, abs=1e-3)


@pytest.mark.parametrize(
    ("rule", "weight"),
    [("blend", -0.1), ("blend", 1.5), ("log-odds", -1.0), ("log-odds", math.inf)],
)
def test_the_weight_is_checked(rule, weight):
    with pytest.raises(ConfigError, match="metadata weight"):
        TextFusion(rule, weight)


def test_the_rule_is_checked_and_defaults_are_the_rules_own():
    with pytest.raises(ConfigError, match="unknown metadata fusion 'mean'"):
        TextFusion.of("mean")
    assert TextFusion.of() == TextFusion() == TextFusion("log-odds", 3.0)
    assert TextFusion.of("blend") == TextFusion("blend", 0.5)
    assert TextFusion.of("blend", 0.25).weight == 0.25


def test_removal_scale_by_hand():
    assert TextFusion("log-odds", 3.0).removal_scale == 1.0
    assert TextFusion("blend", 0.0).removal_scale == 1.0
    assert TextFusion("blend", 0.5).removal_scale == 2.0
    assert TextFusion("blend", 0.75).removal_scale == pytest.approx(4.0)
    assert TextFusion("blend", 1.0).removal_scale == 1.0


def test_the_manifest_round_trip_and_old_folders():
    fusion = TextFusion("log-odds", 2.5)
    assert fusion.manifest_entries() == {"metadata_fusion": "log-odds", "metadata_weight": 2.5}
    assert TextFusion.from_manifest(fusion.manifest_entries()) == fusion
    # folders written before the rules: a weight alone is a blend; nothing is the head alone
    assert TextFusion.from_manifest({"metadata_weight": 0.5}) == TextFusion("blend", 0.5)
    assert TextFusion.from_manifest({}) == TextFusion("blend", 0.0)
    assert TextFusion.from_manifest({}).removal_scale == 1.0


@pytest.mark.parametrize("fusion", [TextFusion("blend", 0.5), TextFusion("log-odds", 3.0)])
def test_head_takes_the_text_back_out(fusion):
    a = _attributes()
    fusion.fuse(a, *_bags())
    stored = a.copy()
    head = fusion.head(a, *_bags())
    assert head.dtype == np.float32
    # the head's 0 and 1 come back as about EPS e^3 (float16 and the clip before the logit)
    np.testing.assert_allclose(head, _attributes().astype(np.float32), atol=3e-3)
    np.testing.assert_array_equal(a, stored)  # a new array; the stored one is untouched


def test_a_blend_of_weight_one_keeps_no_head():
    with pytest.raises(ConfigError, match="cannot be recovered"):
        TextFusion("blend", 1.0).head(_attributes(), *_bags())


@pytest.mark.parametrize("fusion", [TextFusion("blend", 0.5), TextFusion("log-odds", 3.0)])
def test_tiles_give_the_same_bits(fusion, monkeypatch):
    from stylesearch.index import fusion as module

    rng = np.random.default_rng(0)
    a = np.asfortranarray(rng.random((7, 5)).astype(np.float16))
    bags = csr_from_bags([[0, 3], [], [4], [1, 2], [], [0], [2, 4]])
    whole = a.copy()
    fusion.fuse(whole, *bags)
    monkeypatch.setattr(module, "_ROWS", 2)
    monkeypatch.setattr(module, "_BLOCK", 2)
    tiled = a.copy()
    fusion.fuse(tiled, *bags)
    np.testing.assert_array_equal(tiled, whole)
    np.testing.assert_array_equal(fusion.head(tiled, *bags), fusion.head(whole, *bags))
