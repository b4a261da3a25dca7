"""Top-k by scoring the candidate rows directly, for when no bound prunes enough: every
(allowed) row (:func:`full_scan_topk`), or a small allowed set with ``p`` first
(:func:`score_rows_p_first`)."""

from __future__ import annotations

import numpy as np

from stylesearch.index.store import Index
from stylesearch.search.scoring import rescale_cosine
from stylesearch.search.topk.probs import all_probs, attribute_probs
from stylesearch.search.topk.results import RunningTopK, TopK, TopKStats, may_reach, rank_rows

__all__ = ["full_scan_topk", "score_rows_p_first"]


def full_scan_topk(
    vectors: np.ndarray,
    attributes: np.ndarray,
    query: np.ndarray,
    k: int,
    add: list[int],
    remove: list[int],
    *,
    soft: bool,
    allowed: np.ndarray | None = None,
    cosine_power: float = 1.0,
) -> TopK:
    """Score every (allowed) row and keep the best ``k``: the soft filter's last resort when no
    bound prunes enough. ``soft``: ``S = c~^g p`` (``g``: ``cosine_power``), else ``S = cos``.
    Tests judge it, like every other path, against :mod:`stylesearch.testing.oracle`."""
    rows = np.flatnonzero(allowed) if allowed is not None else np.arange(vectors.shape[0])
    sub = vectors if allowed is None else vectors[rows]  # no copy of the whole catalog
    cos = np.asarray(sub @ np.asarray(query, np.float32), dtype=np.float32)
    p = all_probs(attributes, add, remove)[rows]
    scores = rescale_cosine(cos, cosine_power) * p if soft else cos
    pos = rank_rows(rows, scores, k)
    return TopK(
        rows[pos], scores[pos], cos[pos], p[pos], TopKStats(path="full_scan", full_scan=True)
    )


def score_rows_p_first(
    index: Index,
    q: np.ndarray,
    k: int,
    rows: np.ndarray,
    add: list[int],
    remove: list[int],
    best: RunningTopK,
    c_bound: float = 1.0,
) -> int:
    """Score ``rows`` into ``best``: ``p`` first, the cosine only of rows with
    ``c_bound * p`` able to reach the k-th score (seeded with the k most likely rows).
    Returns the number of cosines computed."""
    p = attribute_probs(index.attributes, rows, add, remove)
    scored = 0
    if rows.shape[0] > 4 * k and (add or remove):
        seed = np.argpartition(-p, k - 1)[:k]
        best.add(rows[seed], index.backend.score_rows(q, rows[seed]), p[seed])
        scored += k
        if best.kth > 0:
            keep = may_reach(p, best.kth, c_bound)
            rows, p = rows[keep], p[keep]
    best.add(rows, index.backend.score_rows(q, rows), p)
    return scored + rows.shape[0]
