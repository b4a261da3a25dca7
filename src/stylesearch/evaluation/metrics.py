"""The paper's ranking metrics (PAPER.md "Evaluation protocol"): pure functions on numpy arrays.

``DCG@K = sum_{i=1..K} rel_i / log2(i + 1)`` over the returned list, ``nDCG@K = DCG@K / IDCG@K``
where IDCG@K is the DCG of the ideal ordering of the *whole* base catalog (the K largest
relevances). Conventions:

- a result list shorter than K (a filter left fewer items) adds nothing for the missing ranks;
- IDCG = 0 (no item of the catalog is relevant at all) gives nDCG = 0, as scikit-learn does;
- V-nDCG relevance is the visual model's cosine clipped at 0 (``max(0, cos)``): an item that
  looks *less* like the query than an unrelated one is not "negatively relevant", and nDCG
  needs non-negative gains to stay within [0, 1];
- T-nDCG relevance is the fraction of the query's requirements an item satisfies: each wanted
  word present, each unwanted word absent (:func:`requirement_fraction`);
- MM = sqrt(V-nDCG x T-nDCG), computed per query and averaged (and also reported from the
  averages: :func:`mm`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["dcg", "ideal_dcg", "mm", "ndcg", "requirement_fraction", "visual_relevance"]


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def dcg(relevances: Sequence[float] | np.ndarray, k: int) -> float:
    """``sum_{i=1..min(K, n)} rel_i / log2(i + 1)`` of a ranked list of relevances."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rel = np.asarray(relevances, dtype=np.float64)[:k]
    return float(rel @ _discounts(len(rel)))


def ideal_dcg(catalog_relevances: np.ndarray, k: int) -> float:
    """DCG@K of the ideal ordering: the K largest relevances over the whole catalog."""
    rel = np.asarray(catalog_relevances, dtype=np.float64).ravel()
    if len(rel) > k:
        rel = np.partition(rel, len(rel) - k)[len(rel) - k :]
    return dcg(np.sort(rel)[::-1], k)


def ndcg(
    ranked_relevances: Sequence[float] | np.ndarray, catalog_relevances: np.ndarray, k: int
) -> float:
    """``DCG@K(ranked) / IDCG@K(catalog)``; 0 when the catalog has no relevant item."""
    ideal = ideal_dcg(catalog_relevances, k)
    if ideal <= 0:
        return 0.0
    return dcg(ranked_relevances, k) / ideal


def visual_relevance(cosines: np.ndarray) -> np.ndarray:
    """V-nDCG gains: the baseline visual model's cosines clipped at 0."""
    return np.clip(np.asarray(cosines, dtype=np.float64), 0.0, None)


def requirement_fraction(wanted: np.ndarray, unwanted: np.ndarray) -> np.ndarray:
    """T-nDCG gains from membership tests.

    Args:
        wanted: ``(R+, N)`` bool, ``wanted[j, i]``: item i has the j-th wanted word (R+ may
            be 0: shape ``(0, N)``).
        unwanted: ``(R-, N)`` bool, ``unwanted[j, i]``: item i has the j-th unwanted word.

    Returns:
        ``(N,)`` float64: (wanted words present + unwanted words absent) / (R+ + R-); an empty
        requirement list gives 1 for every item.
    """
    wanted = np.asarray(wanted, dtype=bool)
    unwanted = np.asarray(unwanted, dtype=bool)
    if wanted.ndim != 2 or unwanted.ndim != 2 or wanted.shape[1] != unwanted.shape[1]:
        raise ValueError(
            f"wanted and unwanted must be (R, N) with the same N, got {wanted.shape} and "
            f"{unwanted.shape}"
        )
    n_req = wanted.shape[0] + unwanted.shape[0]
    if n_req == 0:
        return np.ones(wanted.shape[1], dtype=np.float64)
    met = wanted.sum(axis=0, dtype=np.float64) + (~unwanted).sum(axis=0, dtype=np.float64)
    return met / n_req


def mm(v_ndcg: float | np.ndarray, t_ndcg: float | np.ndarray) -> float | np.ndarray:
    """The paper's combined metric: the geometric mean ``sqrt(V x T)``."""
    return np.sqrt(np.asarray(v_ndcg) * np.asarray(t_ndcg))
