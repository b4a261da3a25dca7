"""The exact answer of a search, computed the obvious way: the judge of every top-k path.

Written from the formula in docs/search.md ("Methods and scores"), not from the search code,
and never called by it:

- ``cos = vectors @ query``;
- ``p = prod_{w+} p_w * prod_{w-} max(0, 1 - r p_w)`` (1 without words), ``r`` the index's
  removal scale (1 for an index of the attribute head's ``p`` alone);
- the soft filter's score is ``((1 + cos) / 2) ** g * p`` with the rescaled cosine clipped to
  [0, 1]; a plain ranking's score is ``cos``;
- every allowed row is scored, and the best ``k`` come first by score (descending), ties by
  row (ascending).

Arithmetic is float32 throughout, words multiplied in the order given (wanted then unwanted),
which is the order the index's scores are documented in; a float64 oracle would disagree with
any float32 engine on near-ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stylesearch.index.filters import RowFilter

__all__ = ["OracleTopK", "exact_topk"]


@dataclass
class OracleTopK:
    """The best ``k`` rows, with their scores, cosines and ``p``, best first."""

    rows: np.ndarray
    scores: np.ndarray
    cosines: np.ndarray
    attribute_scores: np.ndarray


def exact_topk(
    vectors: np.ndarray,
    attributes: np.ndarray,
    query: np.ndarray,
    k: int,
    add: list[int],
    remove: list[int],
    *,
    soft: bool,
    allowed: RowFilter | None = None,
    cosine_power: float = 1.0,
    removal_scale: float = 1.0,
) -> OracleTopK:
    """Score every row of ``vectors`` ``(N, D)`` (only those in ``allowed``'s ``mask``, if
    given) for ``query`` ``(D,)`` and return the best ``k``.

    ``attributes`` ``(N, V)`` holds ``p_w``; ``add`` / ``remove`` are word ids; an unwanted word's
    factor is ``max(0, 1 - removal_scale * p_w)``. ``soft``: rank by
    ``((1 + cos) / 2) ** cosine_power * p``; else by ``cos`` (``p`` is still reported).
    """
    n = vectors.shape[0]
    rows = np.arange(n, dtype=np.int64)
    if allowed is not None:
        rows = rows[allowed.mask]
    scored = vectors if allowed is None else vectors[rows]  # no copy of a whole catalog
    cos = np.asarray(scored @ np.asarray(query, dtype=np.float32), dtype=np.float32)
    p = np.ones(len(rows), dtype=np.float32)
    for word in add:
        p *= np.asarray(attributes[rows, word], dtype=np.float32)
    r = np.float32(removal_scale)
    for word in remove:
        p_w = np.asarray(attributes[rows, word], dtype=np.float32)
        p *= np.maximum(np.float32(1.0) - p_w * r, np.float32(0.0))
    if soft:
        rescaled = np.clip((np.float32(1.0) + cos) * np.float32(0.5), 0.0, 1.0)
        if cosine_power != 1.0:
            rescaled = (rescaled**cosine_power).astype(np.float32)
        scores = rescaled * p
    else:
        scores = cos
    best = np.lexsort((rows, -scores))[:k]  # the last key sorts first
    return OracleTopK(rows[best], scores[best], cos[best], p[best])
