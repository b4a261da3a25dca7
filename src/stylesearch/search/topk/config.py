"""The knobs of the exact top-k: they change its speed, never its result."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DeepeningConfig"]


@dataclass(frozen=True)
class DeepeningConfig:
    """Knobs of :func:`~stylesearch.search.topk.soft_filter_topk` and
    :func:`~stylesearch.search.topk.hard_filter_topk`: they change speed, never the result.

    The per-row costs are estimates (how they were measured: docs/performance.md, "Why the
    top-k code is shaped as it is"); they only steer the choice between reading further down an
    attribute list and searching deeper by cosine.
    """

    #: first cosine depth is max(initial, 4 k)
    initial: int = 400
    #: cosine depth multiplier per deepening
    growth: float = 2.0
    #: deepest cosine search; past it, finish from the attribute columns
    max_depth: int = 2048
    #: first attribute block (entries); later blocks double
    block: int = 2048
    #: cost (us) of the cosine source per row at depth 1000; the cost of a search of depth m is
    #: modelled as ``search_us_per_row * m * sqrt(m / 1000)``
    search_us_per_row: float = 2.0
    #: cost of scoring one candidate row exactly (vector gather + dot)
    score_us_per_row: float = 0.15
    #: cost of reading one list entry and its p (per word gathered)
    read_us_per_entry: float = 0.01
    #: cost of computing p of one row from the columns, per query word (the column fallback)
    column_us_per_row: float = 0.003
    #: allowed rows at most this fraction of the catalog (or 4 x the first depth): score them all
    scan_fraction: float = 0.05
    #: coarse path: rows scanned cluster by cluster (best bound first) before the attribute list
    coarse_rows: int = 1024
    #: coarse path: first take the backend's ``coarse_graph_depth`` nearest rows (0: none) and
    #: cap every other row's cosine bound at the last one's (exact with the exact backend, up to
    #: the graph's recall with faiss): far rows then need a higher ``p`` to be read. ``None``:
    #: ``graph_depth`` with a graph backend on ``graph_min_count`` rows or more, else 0 (on a
    #: small catalog the coarse bounds alone are faster)
    coarse_graph_depth: int | None = None
    graph_depth: int = 600
    graph_min_count: int = 500_000
    #: coarse path: clusters put in bound order up front (the rest sorted only when reached:
    #: few clusters are ever scanned, so a full sort would be wasted)
    cluster_head: int = 64

    def search_cost(self, m: int) -> float:
        """Modelled cost (us) of one cosine search of depth ``m``."""
        return self.search_us_per_row * m * float(np.sqrt(m / 1000.0))

    def __post_init__(self) -> None:
        if (
            self.initial < 1
            or self.growth <= 1
            or self.block < 1
            or self.max_depth < 1
            or self.cluster_head < 1
        ):
            raise ValueError(f"invalid DeepeningConfig: {self}")
