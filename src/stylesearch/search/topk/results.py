"""What every exact top-k path shares: its result, its statistics, the running top-k, the
ranking with the oracle's tie-break, and the one bound test.

Every pruning decision of the soft filter compares an upper bound of a score with the k-th best
score found so far, ``s_k``. Bounds carry a relative slack (``BOUND_EPS`` of
:mod:`stylesearch.search.scoring`, plus a tiny absolute one) so float rounding of two code paths
cannot drop a tied row: :func:`may_reach` is that test, :func:`certainly_below` its negation
for a bound that must prove the answer, and :func:`needed_factor` its inverse (the smallest
factor that can still reach ``s_k``). ``may_reach`` and ``needed_factor`` are defined in
:mod:`stylesearch.search.scoring` (the compiled loops use the same definitions) and
re-exported here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from stylesearch.search.kernels import merge_best
from stylesearch.search.scoring import may_reach, needed_factor, soft_filter_score

__all__ = [
    "RunningTopK",
    "TopK",
    "TopKStats",
    "certainly_below",
    "may_reach",
    "needed_factor",
    "rank_rows",
]


def certainly_below(bound: float, s_k: float) -> bool:
    """True when a score upper bound is below ``s_k`` by more than the rounding slack, so that
    no row under it can enter the top-k (never while there is no k-th score, ``s_k <= 0``)."""
    return s_k > 0 and not may_reach(bound, s_k)


@dataclass
class TopKStats:
    """How a top-k was found (diagnostics only; the rows never depend on it).

    Read as attributes; ``stats["path"]`` also works (a read-only mapping view for callers that
    index it like the dict it once was), and :meth:`as_dict` gives a plain dict.
    """

    #: the step that proved the answer: ``"coarse"`` (cluster bounds alone), ``"coarse+list"``,
    #: ``"coarse+scan"``, ``"coarse+columns"``, ``"allowed"`` (a small allowed set scored
    #: whole); ``"bound"`` when there was nothing to search (k = 0 or no allowed row)
    path: str = "bound"
    #: cosine searches made by the backend (the graph seed of the coarse path)
    rounds: int = 0
    #: depth of that search
    depth: int = 0
    #: clusters scanned whole
    clusters: int = 0
    #: attribute-list entries read
    list_read: int = 0
    #: rows from lists, clusters or columns whose cosine was computed exactly
    rechecked: int = 0

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TopK:
    """Ranked rows with their score parts (all ``(n,)``, best first, ``n <= k``)."""

    rows: np.ndarray
    scores: np.ndarray
    cosines: np.ndarray
    attribute_scores: np.ndarray
    stats: TopKStats = field(default_factory=TopKStats)


def rank_rows(rows: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the best ``k`` by (score desc, row asc)."""
    if rows.shape[0] > k:
        # keep everything tied with the k-th score so the tie-break by row is exact
        kth = np.partition(-scores, k - 1)[k - 1]
        keep = np.flatnonzero(-scores <= kth)
    else:
        keep = np.arange(rows.shape[0])
    order = np.lexsort((rows[keep], -scores[keep]))
    return keep[order[:k]]


class RunningTopK:
    """The running top-k of every row scored so far (score desc, row asc), deduplicated."""

    def __init__(self, k: int, power: float = 1.0) -> None:
        self.k = k
        #: the soft-filter score's cosine power g (``S = c~^g p``)
        self.power = power
        self.rows = np.zeros(0, np.int64)
        self.cos = np.zeros(0, np.float32)
        self.p = np.zeros(0, np.float32)
        self.scores = np.zeros(0, np.float32)

    @property
    def kth(self) -> float:
        """The k-th best score (-1 while fewer than k rows were scored)."""
        return float(self.scores[-1]) if self.scores.shape[0] >= self.k else -1.0

    def add(self, rows: np.ndarray, cos: np.ndarray, p: np.ndarray) -> None:
        """Score ``rows`` (distinct; their cosines and ``p``) and keep the best ``k`` of all."""
        if rows.shape[0] == 0:
            return
        # one dtype each (one numba compilation of merge_best; the callers' arrays are
        # writable and contiguous: their own results, never a memory map)
        rows = np.asarray(rows, dtype=np.int64)
        cos = np.asarray(cos, dtype=np.float32)
        p = np.asarray(p, dtype=np.float32)
        scores = soft_filter_score(cos, p, self.power)
        self.rows, self.cos, self.p, self.scores = merge_best(
            self.rows, self.cos, self.p, self.scores, self.k, rows, cos, p, scores
        )

    def result(self, stats: TopKStats) -> TopK:
        return TopK(self.rows, self.scores, self.cos, self.p, stats)
