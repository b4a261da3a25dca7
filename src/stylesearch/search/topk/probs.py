"""The attribute score ``p`` of rows, computed in the oracle's order.

``p = prod_{w in add} p_w * prod_{w in remove} (1 - p_w)`` in float32, one column gather per
word, ``add`` words first: the same arithmetic as :mod:`stylesearch.testing.oracle`, so both give
bit-identical ``p``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["all_probs", "attribute_probs", "factor"]


def factor(col: np.ndarray, wanted: bool) -> np.ndarray:
    """A word's factor of ``p``: its column for a wanted word, one minus it for an unwanted one."""
    col = np.asarray(col, dtype=np.float32)
    return col if wanted else 1.0 - col


def attribute_probs(
    attributes: np.ndarray, rows: np.ndarray, add: list[int], remove: list[int]
) -> np.ndarray:
    """``p`` of ``rows`` for the word ids ``add`` / ``remove`` from an ``(N, V)`` matrix.

    One column gather per word, multiplied in the order ``add`` then ``remove`` in float32: the
    same arithmetic as the oracle's, so both give bit-identical ``p``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    attributes = np.asarray(attributes)  # a plain view of a memmap: no memmap per slice
    p = np.ones(rows.shape[0], dtype=np.float32)
    for w in add:
        p *= factor(attributes[:, w][rows], True)
    for w in remove:
        p *= factor(attributes[:, w][rows], False)
    return p


def all_probs(attributes: np.ndarray, add: list[int], remove: list[int]) -> np.ndarray:
    """``p`` for every row, one contiguous column at a time (Fortran-ordered attributes)."""
    attributes = np.asarray(attributes)
    p = np.ones(attributes.shape[0], dtype=np.float32)
    for w in add:
        p *= factor(attributes[:, w], True)
    for w in remove:
        p *= factor(attributes[:, w], False)
    return p
