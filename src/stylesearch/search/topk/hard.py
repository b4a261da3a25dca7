"""Hard metadata filters: the allowed rows, and the exact cosine top-k among them.

Hard filters (``must`` / ``must_not`` metadata words) become a
:class:`~stylesearch.index.filters.RowFilter` (a bool mask of the allowed rows, and the words)
from the inverted postings before any scoring; every search path then keeps only those rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stylesearch.index.filters import RowFilter
from stylesearch.index.store import Index
from stylesearch.search.scoring import BOUND_EPS
from stylesearch.search.topk.config import TopKConfig
from stylesearch.search.topk.results import rank_rows

__all__ = ["hard_filter_mask", "hard_filter_topk"]


MustWords = Sequence[int | Sequence[int]]


def _group_rows(index: Index, group: Sequence[int]) -> np.ndarray:
    """Sorted rows that have at least one word of ``group`` (the union of their postings)."""
    if len(group) == 1:
        return np.asarray(index.rows_with_word(group[0]))
    return np.unique(np.concatenate([index.rows_with_word(w) for w in group]))


def _groups(must: MustWords) -> list[tuple[int, ...]]:
    return [(int(w),) if isinstance(w, int | np.integer) else tuple(map(int, w)) for w in must]


def _intersect_postings(index: Index, must: list[tuple[int, ...]]) -> np.ndarray:
    """Sorted rows that have a word of every ``must`` group: the shortest posting (a group's:
    the union of its words'), filtered by the others.

    Both sides are sorted, so one side is marked in a bool array and the other's marked rows
    kept: linear in the postings (``np.intersect1d`` sorts their concatenation).
    """
    postings = sorted((_group_rows(index, g) for g in must), key=len)
    rows = postings[0]
    for other in postings[1:]:
        mark = np.zeros(index.count, dtype=bool)
        mark[rows] = True
        rows = other[mark[other]]
    return np.asarray(rows, dtype=np.int64)


def hard_filter_mask(index: Index, must: MustWords, must_not: list[int]) -> RowFilter | None:
    """The rows whose metadata has every ``must`` word and no ``must_not`` word, and that are
    not deleted (``index delete``): a :class:`~stylesearch.index.filters.RowFilter` that keeps
    the words for server-side backends. An entry of ``must`` may be a group of words (a word
    and its synonyms): a row needs one of them (the filter's ``must_any``).

    ``None`` when there is no condition (every row allowed). With a ``must`` word the filter
    also carries its sorted allowed rows (``rows``, read from the postings: no pass over the
    catalog).
    """
    live = index.live_mask()
    groups = _groups(must)
    if not groups and not must_not:
        return None if live is None else RowFilter.of_words(live, [], [])
    if not groups:
        mask = np.ones(index.count, dtype=bool) if live is None else live.copy()
        for w in must_not:
            mask[index.rows_with_word(w)] = False
        return RowFilter.of_words(mask, [], must_not)
    rows = _intersect_postings(index, groups)
    mask = np.zeros(index.count, dtype=bool)
    mask[rows] = True
    for w in must_not:
        mask[index.rows_with_word(w)] = False
    if live is not None:
        mask &= live
    single = [g[0] for g in groups if len(g) == 1]
    any_of = [g for g in groups if len(g) > 1]
    return RowFilter.of_words(mask, single, must_not, must_any=any_of, rows=rows[mask[rows]])


def hard_filter_topk(
    index: Index,
    query: np.ndarray,
    k: int,
    allowed: RowFilter | None,
    config: TopKConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` by cosine among the ``allowed`` rows (``None``: every row): ``(cosines,
    rows)``, best first.

    A selective filter (its rows known, at most ``scan_fraction`` of the catalog) is answered
    exactly without scoring every allowed row: the rows of the best-bounded clusters of the
    coarse partition are scored first, then only the rows whose cone bound (the cluster's,
    then the row's own) reaches the k-th cosine. Otherwise the backend searches (faiss: exact
    below its own ``exact_below``, the graph with a selector above).
    """
    cfg = config or TopKConfig()
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    known = None if allowed is None else allowed.rows
    coarse = index.coarse
    if known is None or known.shape[0] > cfg.scan_fraction * index.count:
        cos, rows = index.backend.search(q[None, :], k, allowed)
        keep = rows[0] >= 0
        return cos[0][keep], rows[0][keep]
    rows = known
    k = min(k, rows.shape[0])
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    first = min(rows.shape[0], max(4 * k, cfg.coarse_rows))
    if first < rows.shape[0]:
        angles = coarse.query_angles(q)
        ub = coarse.cosine_bounds(q, angles)[coarse.assign[rows]]
        top = np.argpartition(-ub, first - 1)[:first]
        cand, cos = rows[top], index.backend.score_rows(q, rows[top])
        kth = float(np.partition(cos, cos.shape[0] - k)[cos.shape[0] - k])
        rest = np.ones(rows.shape[0], dtype=bool)
        rest[top] = False
        rest &= ub >= kth - BOUND_EPS  # rows left out have cos <= ub < kth
        more = rows[rest]
        more = more[coarse.row_cosine_bounds(angles, more) >= kth - BOUND_EPS]
        if more.shape[0]:
            cand = np.concatenate([cand, more])
            cos = np.concatenate([cos, index.backend.score_rows(q, more)])
    else:
        cand, cos = rows, index.backend.score_rows(q, rows)
    pos = rank_rows(cand, cos, k)
    return cos[pos], cand[pos]
