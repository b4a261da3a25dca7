"""The soft-filter top-k: the entry point that picks the path for a query.

The soft-filter score ``S = c~^g * p`` (:mod:`stylesearch.search.scoring`) can rank first an
item that is far down the cosine list (a likely red dress at cosine rank 500 beats 499 closer
items whose ``p`` is tiny), so re-ranking a fixed window of nearest vectors silently loses it.
:func:`soft_filter_topk` proves its answer with upper bounds instead:

* a small allowed set (a selective hard filter) is scored whole, ``p`` first
  (:func:`_score_allowed`);
* every other query uses the index's coarse partition: the per-cluster and per-row bounds plus
  the wanted words' sorted lists (:mod:`.coarse`).

With the exact backend every step is exact, so the result equals brute force (ties broken by the
lower row, as the oracle does; bounds carry a relative slack so float rounding of two code paths
cannot drop a tied row: :func:`~.results.may_reach`).
"""

from __future__ import annotations

import numpy as np

from stylesearch.index.filters import RowFilter
from stylesearch.index.store import Index
from stylesearch.search.topk.coarse import CoarseTopK
from stylesearch.search.topk.config import TopKConfig
from stylesearch.search.topk.probs import attribute_probs, index_removal_scale
from stylesearch.search.topk.results import RunningTopK, TopK, TopKStats, may_reach

__all__ = ["soft_filter_topk"]


def soft_filter_topk(
    index: Index,
    query: np.ndarray,
    k: int,
    add: list[int],
    remove: list[int],
    *,
    allowed: RowFilter | None = None,
    config: TopKConfig | None = None,
    cosine_power: float = 1.0,
) -> TopK:
    """Top-``k`` rows by ``S = c~^g * p`` (see the module docstring for the algorithm and its
    bound; ``g`` = ``cosine_power``, 1 by default: every bound on ``c~`` is raised to it).

    Args:
        index: the loaded index (backend, vectors, attribute matrix and sorted lists).
        query: ``(D,)`` float32 unit query vector.
        k: results wanted (fewer when fewer rows are allowed).
        add, remove: vocabulary ids of the wanted / unwanted words.
        allowed: the hard filter's rows (``None``: every row).
        config: the knobs of the search (speed only).
        cosine_power: ``g`` > 0; above 1 the cosine weighs more against ``p``.

    Returns:
        :class:`~.results.TopK`, whose ``stats`` (:class:`~.results.TopKStats`) say how it was
        found.
    """
    cfg = config or TopKConfig()
    n = index.count
    n_allowed = n if allowed is None else allowed.count
    k = min(k, n_allowed)
    empty = np.zeros(0, np.float32)
    stats = TopKStats()
    if k <= 0:
        return TopK(np.zeros(0, np.int64), empty, empty, empty, stats)
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    if cosine_power <= 0:
        raise ValueError(f"cosine_power must be > 0, got {cosine_power}")
    best = RunningTopK(k, cosine_power)
    if allowed is not None and n_allowed <= max(cfg.scan_fraction * n, cfg.scan_rows):
        stats.path = "allowed"
        stats.rechecked = _score_allowed(index, q, k, allowed.allowed_rows(), add, remove, best)
        return best.result(stats)
    search = CoarseTopK(index, index.coarse, q, add, remove, allowed, best, stats, cfg, n_allowed)
    return search.run()


def _score_allowed(
    index: Index,
    q: np.ndarray,
    k: int,
    rows: np.ndarray,
    add: list[int],
    remove: list[int],
    best: RunningTopK,
) -> int:
    """Score the allowed ``rows`` into ``best``: ``p`` first, the cosine only of rows whose
    ``p`` can still reach the k-th score (seeded with the k most likely rows). Returns the
    number of cosines computed."""
    p = attribute_probs(index.attributes, rows, add, remove, index_removal_scale(index))
    scored = 0
    if rows.shape[0] > 4 * k and (add or remove):
        seed = np.argpartition(-p, k - 1)[:k]
        best.add(rows[seed], index.backend.score_rows(q, rows[seed]), p[seed])
        scored += k
        if best.kth > 0:
            keep = may_reach(p, best.kth)
            rows, p = rows[keep], p[keep]
    best.add(rows, index.backend.score_rows(q, rows), p)
    return scored + rows.shape[0]
