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

The shape judge (ours, for catalogs whose truth names each item's uncoloured source image) uses
the same nDCG with another relevance: the cosine of the items' source pixels after
:func:`centred_unit_rows`, clipped at 0 like V. It is blind to colour and pattern by
construction, so a correct colour replacement costs nothing. :func:`category_preservation` and
:func:`oracle_ranking` are its companions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "category_preservation",
    "centred_unit_rows",
    "dcg",
    "ideal_dcg",
    "mm",
    "ndcg",
    "oracle_ranking",
    "requirement_fraction",
    "visual_relevance",
]


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


def centred_unit_rows(pixels: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``(x - mean) / |x - mean|`` per row, in float64; a row equal to the mean stays zero.

    Centring on the split's mean pixel takes out what every garment shares (a dark background,
    a bright centre), so the cosine measures how two silhouettes differ from the average one.
    """
    x = np.asarray(pixels, dtype=np.float64)
    x = x.reshape(len(x), -1) - np.asarray(mean, dtype=np.float64).reshape(1, -1)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def category_preservation(
    result_categories: Sequence[object] | np.ndarray, expected: object, k: int
) -> float:
    """The fraction of the K ranks that hold an item of category ``expected`` (or of any other
    group's value: kept@K applies it to the groups a query leaves alone).

    A list shorter than K counts its missing ranks as not preserved, as nDCG counts them as 0.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    cats = list(result_categories)[:k]
    return sum(c == expected for c in cats) / k


def oracle_ranking(meets: np.ndarray, relevance: np.ndarray, k: int) -> np.ndarray:
    """The K rows of the best possible answer: rows with ``meets`` true, most relevant first.

    Ties keep row order (a stable sort), so the oracle is deterministic. Fewer than K rows
    meet the requirements: all of them are returned.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rows = np.flatnonzero(np.asarray(meets, dtype=bool))
    order = np.argsort(-np.asarray(relevance, dtype=np.float64)[rows], kind="stable")
    return rows[order[:k]]
