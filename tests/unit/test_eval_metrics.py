"""The paper's ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stylesearch.evaluation.metrics import (
    dcg,
    ideal_dcg,
    mm,
    ndcg,
    requirement_fraction,
    visual_relevance,
)


def test_dcg_hand_values() -> None:
    # 3/log2(2) + 2/log2(3) + 0/log2(4) + 1/log2(5)
    expected = 3.0 + 2.0 / math.log2(3) + 0.0 + 1.0 / math.log2(5)
    assert dcg([3, 2, 0, 1], 10) == pytest.approx(expected)
    assert dcg([3, 2, 0, 1], 2) == pytest.approx(3.0 + 2.0 / math.log2(3))
    assert dcg([], 5) == 0.0
    with pytest.raises(ValueError):
        dcg([1.0], 0)


def test_ideal_dcg_uses_the_whole_catalog() -> None:
    catalog = np.array([0.1, 0.9, 0.0, 0.5, 0.7])
    # ideal top-3: 0.9, 0.7, 0.5
    expected = 0.9 + 0.7 / math.log2(3) + 0.5 / 2.0
    assert ideal_dcg(catalog, 3) == pytest.approx(expected)
    assert ideal_dcg(catalog, 10) == pytest.approx(dcg(sorted(catalog, reverse=True), 10))


def test_ndcg_hand_value() -> None:
    catalog = np.array([1.0, 0.5, 0.5, 0.0, 0.0])
    ranked = [0.5, 1.0, 0.0]  # the returned list's gains in rank order
    num = 0.5 + 1.0 / math.log2(3) + 0.0
    den = 1.0 + 0.5 / math.log2(3) + 0.5 / 2.0
    assert ndcg(ranked, catalog, 3) == pytest.approx(num / den)
    assert ndcg([1.0, 0.5, 0.5], catalog, 3) == pytest.approx(1.0)


def test_ndcg_short_list_and_empty_catalog() -> None:
    catalog = np.array([1.0, 1.0, 1.0])
    # one result of three possible: 1 / (1 + 1/log2(3) + 1/2)
    assert ndcg([1.0], catalog, 3) == pytest.approx(1.0 / (1 + 1 / math.log2(3) + 0.5))
    assert ndcg([], catalog, 3) == 0.0
    assert ndcg([0.0, 0.0], np.zeros(4), 2) == 0.0


def test_visual_relevance_clips_negative_cosines() -> None:
    np.testing.assert_allclose(visual_relevance(np.array([-0.3, 0.0, 0.8])), [0.0, 0.0, 0.8])


def test_requirement_fraction() -> None:
    # items:            0      1      2      3
    has_red = np.array([True, True, False, False])
    has_striped = np.array([True, False, True, False])
    # +red -striped: item 0 -> 1/2, item 1 -> 2/2, item 2 -> 0/2, item 3 -> 1/2
    got = requirement_fraction(has_red[None], has_striped[None])
    np.testing.assert_allclose(got, [0.5, 1.0, 0.0, 0.5])
    # only unwanted words
    got = requirement_fraction(np.zeros((0, 4), bool), has_striped[None])
    np.testing.assert_allclose(got, [0.0, 1.0, 0.0, 1.0])
    # no requirement at all: every item satisfies everything
    np.testing.assert_allclose(
        requirement_fraction(np.zeros((0, 4), bool), np.zeros((0, 4), bool)), np.ones(4)
    )
    with pytest.raises(ValueError):
        requirement_fraction(has_red[None], np.zeros((1, 3), bool))


def test_mm_is_the_geometric_mean() -> None:
    assert mm(0.81, 0.49) == pytest.approx(math.sqrt(0.81 * 0.49))
    assert mm(0.0, 1.0) == 0.0
