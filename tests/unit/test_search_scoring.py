"""Pure scoring functions, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from stylesearch.search.scoring import (
    ArithmeticConfig,
    attribute_score,
    attribute_score_upper_bound,
    compose_query,
    rescale_cosine,
    soft_filter_score,
    unwanted_factor,
)
from stylesearch.search.topk import attribute_probs


def test_rescale_cosine():
    np.testing.assert_allclose(rescale_cosine([-1, 0, 0.5, 1, 1.0000001]), [0, 0.5, 0.75, 1, 1])


def test_negative_cosine_does_not_push_a_likely_item_down():
    # raw product: -0.2 * 0.9 = -0.18 < -0.1 * 0.1 = -0.01 would rank the unlikely item first
    likely, unlikely = soft_filter_score(np.array([-0.2, -0.1]), np.array([0.9, 0.1]))
    assert likely == pytest.approx(0.4 * 0.9) and unlikely == pytest.approx(0.45 * 0.1)
    assert likely > unlikely
    # with equal p the order is the cosine order, negative or not
    a, b = soft_filter_score(np.array([-0.3, -0.6]), np.array([0.5, 0.5]))
    assert a > b


def test_attribute_score_by_hand():
    p = attribute_score(np.array([[0.9, 0.5], [0.2, 1.0]]), np.array([[0.1], [0.5]]))
    np.testing.assert_allclose(p, [0.9 * 0.5 * 0.9, 0.2 * 1.0 * 0.5], rtol=1e-6)
    np.testing.assert_array_equal(attribute_score(np.zeros((3, 0)), np.zeros((3, 0))), [1, 1, 1])


@pytest.mark.parametrize("scale", [1.0, 2.0, 1.5])
def test_attribute_probs_is_attribute_score(scale):
    """The exact top-k's ``p`` (a column gather per word from the float16 matrix) is
    scoring.py's ``attribute_score`` of the same values, bit for bit."""
    rng = np.random.default_rng(int(scale * 10))
    attributes = np.asfortranarray(rng.random((300, 8)).astype(np.float16))
    attributes[:5] = [0.0, 1.0, 0.5, 0.25, 0.75, 1.0, 0.0, 0.5]  # the ends and exact halves
    rows = rng.choice(300, 120, replace=False)
    for n_add, n_remove in [(0, 0), (2, 0), (0, 3), (2, 2), (3, 4)]:
        words = rng.choice(8, n_add + n_remove, replace=False).tolist()
        add, remove = words[:n_add], words[n_add:]
        p_add = attributes[rows][:, add].astype(np.float32)
        p_remove = attributes[rows][:, remove].astype(np.float32)
        want = attribute_score(p_add, p_remove, scale)
        got = attribute_probs(attributes, rows, add, remove, scale)
        assert got.dtype == want.dtype == np.float32
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_attribute_upper_bound():
    assert attribute_score_upper_bound([0.9, 0.5], [0.2]) == pytest.approx(0.9 * 0.5 * 0.8)
    assert attribute_score_upper_bound([], []) == 1.0
    # r = 2: max(0, 1 - 2 * 0.2) = 0.6; a minimum of 0.6 gives max(0, -0.2) = 0
    assert attribute_score_upper_bound([0.9], [0.2], 2.0) == pytest.approx(0.9 * 0.6)
    assert attribute_score_upper_bound([0.9], [0.6], 2.0) == 0.0


def test_unwanted_words_with_a_removal_scale():
    # an index blended at b = 0.5 stores p_w / 2 (text lacks w) or p_w / 2 + 0.5 (text has w);
    # r = 2 gives back the head's 1 - p_w for the first and 0 for the second
    stored = np.array([[0.1], [0.45], [0.55], [1.0]], np.float32)
    np.testing.assert_allclose(unwanted_factor(stored[:, 0], 2.0), [0.8, 0.1, 0.0, 0.0], atol=1e-6)
    p = attribute_score(np.array([[0.5]] * 4), stored, removal_scale=2.0)
    np.testing.assert_allclose(p, [0.4, 0.05, 0.0, 0.0], atol=1e-6)
    np.testing.assert_array_equal(unwanted_factor(stored[:, 0]), 1 - stored[:, 0])


def test_compose_query_by_hand():
    image = np.array([2.0, 0, 0], np.float32)  # normalised to (1, 0, 0)
    add = np.array([[0, 3.0, 0]], np.float32)  # (0, 1, 0)
    remove = np.array([[0, 0, 0.5]], np.float32)  # (0, 0, 1)
    q = compose_query(image, add, remove)
    np.testing.assert_allclose(q, np.array([1, 1, -1]) / np.sqrt(3), rtol=1e-6)
    cfg = ArithmeticConfig(image_weight=2.0, add_weight=1.0, remove_weight=0.0)
    np.testing.assert_allclose(
        compose_query(image, add, remove, cfg), np.array([2, 1, 0]) / np.sqrt(5), rtol=1e-6
    )
    raw = ArithmeticConfig(normalize_words=False)
    np.testing.assert_allclose(
        compose_query(image, add, remove, raw), np.array([1, 3, -0.5]) / np.sqrt(10.25), rtol=1e-6
    )
    # the text method: no image
    np.testing.assert_allclose(compose_query(None, add, np.zeros((0, 3))), [0, 1, 0])


def test_compose_query_refuses_a_zero_query():
    with pytest.raises(ValueError, match="zero"):
        compose_query(None, np.array([[1.0, 0]]), np.array([[1.0, 0]]))
    with pytest.raises(ValueError):
        compose_query(None, np.zeros((0, 2)), np.zeros((0, 2)))
