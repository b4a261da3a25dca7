"""The attribute score ``p`` of rows, computed in the oracle's order.

``p = prod_{w in add} p_w * prod_{w in remove} max(0, 1 - r p_w)`` in float32 (``r``: the
index's removal scale, :attr:`~stylesearch.index.fusion.TextFusion.removal_scale`), one column
gather per word, ``add`` words first: :func:`~stylesearch.search.scoring.product_of_factors`,
the one definition of ``p`` (the oracle's arithmetic, so both give bit-identical ``p``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stylesearch.index.fusion import TextFusion
from stylesearch.search.scoring import product_of_factors, unwanted_factor

__all__ = ["all_probs", "attribute_probs", "factor", "index_removal_scale"]


def index_removal_scale(index: Any) -> float:
    """The removal scale ``r`` of an index, from the text fusion its manifest records
    (none: an index whose ``p`` is the attribute head's alone, ``r = 1``)."""
    return TextFusion.from_manifest(index.manifest).removal_scale


def factor(col: np.ndarray, wanted: bool, removal_scale: float = 1.0) -> np.ndarray:
    """A word's factor of ``p``: its column for a wanted word, ``max(0, 1 - r col)`` for an
    unwanted one."""
    col = np.asarray(col, dtype=np.float32)
    return col if wanted else unwanted_factor(col, removal_scale)


def attribute_probs(
    attributes: np.ndarray,
    rows: np.ndarray,
    add: list[int],
    remove: list[int],
    removal_scale: float = 1.0,
) -> np.ndarray:
    """``p`` of ``rows`` for the word ids ``add`` / ``remove`` from an ``(N, V)`` matrix.

    One column gather per word (held one at a time), multiplied in the order ``add`` then
    ``remove`` in float32 by :func:`~stylesearch.search.scoring.product_of_factors`.
    """
    rows = np.asarray(rows, dtype=np.int64)
    attributes = np.asarray(attributes)  # a plain view of a memmap: no memmap per slice
    columns = [(attributes[:, w][rows] for w in words) for words in (add, remove)]
    return product_of_factors(rows.shape[0], *columns, removal_scale)


def all_probs(
    attributes: np.ndarray, add: list[int], remove: list[int], removal_scale: float = 1.0
) -> np.ndarray:
    """``p`` for every row, one contiguous column at a time (Fortran-ordered attributes)."""
    attributes = np.asarray(attributes)
    columns = [(attributes[:, w] for w in words) for words in (add, remove)]
    return product_of_factors(attributes.shape[0], *columns, removal_scale)
