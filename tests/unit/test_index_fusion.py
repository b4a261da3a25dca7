"""Blending an item's own text into its attribute probabilities (index/build.py), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from stylesearch.config import ConfigError
from stylesearch.index.build import fuse_metadata, head_probs
from stylesearch.index.postings import csr_from_bags


def _attributes() -> np.ndarray:
    # 3 items x 3 words, Fortran order as in the index folder
    rows = [[0.2, 0.8, 0.0], [0.6, 0.4, 1.0], [0.1, 0.1, 0.5]]
    return np.asfortranarray(np.array(rows, np.float16))


def test_blend_by_hand():
    a = _attributes()
    offsets, words = csr_from_bags([[1], [], [0, 2]])  # item 0 says word 1; item 2 words 0, 2
    fuse_metadata(a, offsets, words, 0.5)
    # p <- 0.5 p + 0.5 [word in the item's text]
    want = [[0.1, 0.9, 0.0], [0.3, 0.2, 0.5], [0.55, 0.05, 0.75]]
    np.testing.assert_allclose(a.astype(np.float32), want, atol=1e-3)
    assert a.dtype == np.float16 and a.flags.f_contiguous


def test_weight_zero_is_the_attribute_head_and_one_is_the_text():
    offsets, words = csr_from_bags([[1], [], [0, 2]])
    a = _attributes()
    fuse_metadata(a, offsets, words, 0.0)
    np.testing.assert_array_equal(a, _attributes())
    fuse_metadata(a, offsets, words, 1.0)
    np.testing.assert_array_equal(a, [[0, 1, 0], [0, 0, 0], [1, 0, 1]])


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_the_weight_is_checked(weight):
    offsets, words = csr_from_bags([[], [], []])
    with pytest.raises(ConfigError, match="metadata weight"):
        fuse_metadata(_attributes(), offsets, words, weight)


def test_head_probs_undo_the_blend():
    offsets, words = csr_from_bags([[1], [], [0, 2]])
    a = _attributes()
    fuse_metadata(a, offsets, words, 0.5)
    stored = a.copy()
    head = head_probs(a, offsets, words, 0.5)
    assert head.dtype == np.float32
    np.testing.assert_allclose(head, _attributes().astype(np.float32), atol=2e-3)
    np.testing.assert_array_equal(a, stored)  # a new array; the stored one is untouched
    with pytest.raises(ConfigError, match="cannot be recovered"):
        head_probs(a, offsets, words, 1.0)
