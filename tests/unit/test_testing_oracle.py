"""The search oracle (stylesearch.testing.oracle) against scores computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from stylesearch.index.filters import RowFilter
from stylesearch.testing.oracle import exact_topk

# four items in 2-D; cosines with the query (1, 0) are 1, 0.6, 0, -0.8
VECTORS = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]], np.float32)
# p_w of words 0 ("red") and 1 ("striped")
ATTRS = np.array([[0.1, 0.5], [0.5, 0.0], [1.0, 0.5], [0.9, 0.0]], np.float16)
QUERY = np.array([1.0, 0.0], np.float32)


def test_soft_scores_by_hand():
    # +red -striped: p = 0.1 * 0.5, 0.5 * 1, 1 * 0.5, 0.9 * 1 = 0.05, 0.5, 0.5, 0.9
    # (1 + cos) / 2 = 1, 0.8, 0.5, 0.1 -> scores 0.05, 0.4, 0.25, 0.09
    top = exact_topk(VECTORS, ATTRS, QUERY, 4, [0], [1], soft=True)
    assert top.rows.tolist() == [1, 2, 3, 0]
    np.testing.assert_allclose(top.scores, [0.4, 0.25, 0.09, 0.05], rtol=1e-3)
    np.testing.assert_allclose(top.cosines, [0.6, 0.0, -0.8, 1.0], atol=1e-6)
    np.testing.assert_allclose(top.attribute_scores, [0.5, 0.5, 0.9, 0.05], rtol=1e-3)


def test_removal_scale_by_hand():
    # r = 2: striped's factor max(0, 1 - 2 p) = 0, 1, 0, 1 -> p = 0, 0.5, 0, 0.9
    # scores 0, 0.4, 0, 0.09; the two zeros by row
    top = exact_topk(VECTORS, ATTRS, QUERY, 4, [0], [1], soft=True, removal_scale=2.0)
    assert top.rows.tolist() == [1, 3, 0, 2]
    np.testing.assert_allclose(top.scores, [0.4, 0.09, 0.0, 0.0], rtol=1e-3)
    np.testing.assert_allclose(top.attribute_scores, [0.5, 0.9, 0.0, 0.0], rtol=1e-3)


def test_cosine_power_sharpens_the_cosine():
    # g = 2: 1, 0.64, 0.25, 0.01 times p -> 0.05, 0.32, 0.125, 0.009
    top = exact_topk(VECTORS, ATTRS, QUERY, 2, [0], [1], soft=True, cosine_power=2.0)
    assert top.rows.tolist() == [1, 2]
    np.testing.assert_allclose(top.scores, [0.32, 0.125], rtol=1e-3)


def test_plain_ranking_allowed_rows_and_ties():
    top = exact_topk(VECTORS, ATTRS, QUERY, 3, [], [], soft=False)
    assert top.rows.tolist() == [0, 1, 2] and top.attribute_scores.tolist() == [1, 1, 1]
    allowed = RowFilter.of_mask(np.array([False, True, False, True]))
    top = exact_topk(VECTORS, ATTRS, QUERY, 5, [], [], soft=False, allowed=allowed)
    assert top.rows.tolist() == [1, 3]
    # rows 0 and 1 are the same vector: equal scores
    tied = np.array([[0.6, 0.8], [0.6, 0.8], [1.0, 0.0]], np.float32)
    top = exact_topk(tied, np.ones((3, 1), np.float16), QUERY, 3, [0], [], soft=True)
    assert top.rows.tolist() == [2, 0, 1]  # equal scores: the lower row first


@pytest.mark.parametrize("k", [0, 1, 10])
def test_k_is_a_cap(k):
    assert len(exact_topk(VECTORS, ATTRS, QUERY, k, [], [], soft=True).rows) == min(k, 4)
