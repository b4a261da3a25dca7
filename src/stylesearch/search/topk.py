"""Exact top-k for the soft-filter score, hard metadata filters, and the brute-force oracle.

The soft-filter score ``S = c~ * p`` (:mod:`stylesearch.search.scoring`) can rank first an item
that is far down the cosine list (a likely red dress at cosine rank 500 beats 499 closer items
whose ``p`` is tiny), so re-ranking a fixed window of nearest vectors silently loses it.
:func:`soft_filter_topk` instead proves its answer:

1. Take the ``m`` nearest rows by cosine from the backend (``m = max(initial, 4 k)``, 400 by
   default) and score them exactly; ``s_k`` is the k-th best score so far, ``c_m`` the
   rescaled cosine of the ``m``-th row. Every unseen row has ``c~ <= c_m``.
2. If ``c_m * P_max < s_k`` (``P_max``: the product of per-word column maxima of ``p`` resp.
   ``1 - p``), no unseen row can reach ``s_k``: done.
3. Otherwise an unseen row can reach ``s_k`` only if ``p >= tau = s_k / c_m``, which needs every
   factor of ``p`` >= ``tau``; the quantised attribute columns (``attributes_q8.npy``, 1 byte,
   contiguous per word) find that superset in one vectorised pass. If it holds at most
   ``recheck_max`` rows they are scored exactly and merged: done.
4. Else deepen: ``m *= growth`` (``c_m`` falls, so ``tau`` rises and the superset shrinks). Once
   ``m`` passes ``full_scan_fraction`` of the allowed rows, score every allowed row (the exact
   scan, O(N D)).

With the exact backend every step is exact, so the result equals brute force (ties broken by the
lower row, as the oracle does). With faiss, step 1's "every unseen row has ``c~ <= c_m``" holds
up to the graph's own recall, so the result's recall@10 is that of the graph search at depth
``m``, and items with a high ``p`` are recovered exactly by step 3 whatever their cosine rank.

Hard filters (``must`` / ``must_not`` metadata words) become a boolean mask from the inverted
postings before any scoring; the backend then searches only the allowed rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stylesearch.index.store import Index
from stylesearch.search.scoring import (
    attribute_score,
    attribute_score_upper_bound,
    q8_prefilter,
    rescale_cosine,
)

__all__ = [
    "DeepeningConfig",
    "TopK",
    "attribute_probs",
    "brute_force_topk",
    "hard_filter_mask",
    "soft_filter_topk",
]


@dataclass(frozen=True)
class DeepeningConfig:
    """Knobs of :func:`soft_filter_topk` (they change speed, never the result)."""

    #: first candidate depth is max(initial, 4 k)
    initial: int = 400
    #: depth multiplier per round
    growth: int = 4
    #: score the prefiltered unseen rows exactly when there are at most this many
    recheck_max: int = 16384
    #: deeper than this fraction of the allowed rows: scan them all
    full_scan_fraction: float = 0.05


@dataclass
class TopK:
    """Ranked rows with their score parts (all ``(n,)``, best first, ``n <= k``)."""

    rows: np.ndarray
    scores: np.ndarray
    cosines: np.ndarray
    attribute_scores: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)


def _rank(rows: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the best ``k`` by (score desc, row asc)."""
    if rows.shape[0] > k:
        # keep everything tied with the k-th score so the tie-break by row is exact
        kth = np.partition(-scores, k - 1)[k - 1]
        keep = np.flatnonzero(-scores <= kth)
    else:
        keep = np.arange(rows.shape[0])
    order = np.lexsort((rows[keep], -scores[keep]))
    return keep[order[:k]]


def attribute_probs(
    attributes: np.ndarray, rows: np.ndarray, add: list[int], remove: list[int]
) -> np.ndarray:
    """``p`` of ``rows`` for the word ids ``add`` / ``remove`` from an ``(N, V)`` matrix."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray([*add, *remove], dtype=np.int64)
    if cols.size == 0:
        return np.ones(rows.shape[0], dtype=np.float32)
    probs = np.asarray(attributes[rows[:, None], cols[None, :]], dtype=np.float32)
    return attribute_score(probs[:, : len(add)], probs[:, len(add) :])


def _all_probs(attributes: np.ndarray, add: list[int], remove: list[int]) -> np.ndarray:
    """``p`` for every row, one contiguous column at a time (Fortran-ordered attributes)."""
    p = np.ones(attributes.shape[0], dtype=np.float32)
    for w in add:
        p *= np.asarray(attributes[:, w], dtype=np.float32)
    for w in remove:
        p *= 1.0 - np.asarray(attributes[:, w], dtype=np.float32)
    return p


def brute_force_topk(
    vectors: np.ndarray,
    attributes: np.ndarray,
    query: np.ndarray,
    k: int,
    add: list[int],
    remove: list[int],
    *,
    soft: bool,
    allowed: np.ndarray | None = None,
) -> TopK:
    """The oracle: score every (allowed) row, sort. ``soft``: ``S = c~ p``, else ``S = cos``."""
    rows = np.flatnonzero(allowed) if allowed is not None else np.arange(vectors.shape[0])
    cos = np.asarray(vectors[rows] @ np.asarray(query, np.float32), dtype=np.float32)
    p = _all_probs(attributes, add, remove)[rows]
    scores = rescale_cosine(cos) * p if soft else cos
    pos = _rank(rows, scores, k)
    return TopK(rows[pos], scores[pos], cos[pos], p[pos], {"full_scan": True})


def hard_filter_mask(index: Index, must: list[int], must_not: list[int]) -> np.ndarray | None:
    """``(N,)`` bool: rows whose metadata has every ``must`` word and no ``must_not`` word.

    ``None`` when there is no condition (every row allowed).
    """
    if not must and not must_not:
        return None
    mask = np.zeros(index.count, dtype=bool) if must else np.ones(index.count, dtype=bool)
    if must:
        postings = sorted((index.rows_with_word(w) for w in must), key=len)
        rows = postings[0]
        for other in postings[1:]:
            rows = np.intersect1d(rows, other, assume_unique=True)
        mask[rows] = True
    for w in must_not:
        mask[index.rows_with_word(w)] = False
    return mask


def soft_filter_topk(
    index: Index,
    query: np.ndarray,
    k: int,
    add: list[int],
    remove: list[int],
    *,
    allowed: np.ndarray | None = None,
    config: DeepeningConfig | None = None,
) -> TopK:
    """Top-``k`` rows by ``S = c~ * p`` (see the module docstring for the algorithm and its bound).

    Args:
        index: the loaded index (backend, vectors, attribute matrices).
        query: ``(D,)`` float32 unit query vector.
        k: results wanted (fewer when fewer rows are allowed).
        add, remove: vocabulary ids of the wanted / unwanted words.
        allowed: optional ``(N,)`` bool hard-filter mask.
        config: deepening knobs.

    Returns:
        :class:`TopK`, whose ``stats`` say how it was found (``depth``, ``rounds``,
        ``rechecked``, ``full_scan``).
    """
    cfg = config or DeepeningConfig()
    n = index.count
    n_allowed = n if allowed is None else int(np.count_nonzero(allowed))
    k = min(k, n_allowed)
    empty = np.zeros(0, np.float32)
    if k <= 0:
        return TopK(np.zeros(0, np.int64), empty, empty, empty, {"depth": 0})
    q = np.asarray(query, dtype=np.float32)
    p_max = attribute_score_upper_bound(index.attr_max[add], index.attr_min[remove])
    m = min(max(cfg.initial, 4 * k), n_allowed)
    stats: dict[str, Any] = {"rounds": 0, "rechecked": 0, "full_scan": False}
    while True:
        stats["rounds"] += 1
        stats["depth"] = m
        cos, rows = index.backend.search(q[None, :], m, allowed)
        keep = rows[0] >= 0
        cos, rows = cos[0][keep], rows[0][keep]
        p = attribute_probs(index.attributes, rows, add, remove)
        scores = rescale_cosine(cos) * p
        if rows.shape[0] >= n_allowed:  # every allowed row seen
            pos = _rank(rows, scores, k)
            return TopK(rows[pos], scores[pos], cos[pos], p[pos], stats)
        best = _rank(rows, scores, k)
        s_k = float(scores[best[-1]]) if best.shape[0] == k else 0.0
        c_m = float(rescale_cosine(cos.min())) if cos.size else 1.0
        if c_m * p_max < s_k:
            return TopK(rows[best], scores[best], cos[best], p[best], stats)
        if c_m > 0:
            tau = s_k / c_m
            mask = q8_prefilter(
                [index.attributes_q8[:, w] for w in add],
                [index.attributes_q8[:, w] for w in remove],
                tau,
                n,
            )
            mask[rows] = False
            if allowed is not None:
                mask &= allowed
            extra = np.flatnonzero(mask)
            if extra.shape[0] <= cfg.recheck_max:
                stats["rechecked"] = int(extra.shape[0])
                cos_x = np.asarray(index.vectors[extra] @ q, dtype=np.float32)
                p_x = attribute_probs(index.attributes, extra, add, remove)
                rows = np.concatenate([rows, extra])
                cos = np.concatenate([cos, cos_x])
                p = np.concatenate([p, p_x])
                scores = rescale_cosine(cos) * p
                pos = _rank(rows, scores, k)
                return TopK(rows[pos], scores[pos], cos[pos], p[pos], stats)
        if m >= cfg.full_scan_fraction * n_allowed or m * cfg.growth >= n_allowed:
            stats["full_scan"] = True
            result = brute_force_topk(
                index.vectors, index.attributes, q, k, add, remove, soft=True, allowed=allowed
            )
            result.stats = stats
            return result
        m = m * cfg.growth
