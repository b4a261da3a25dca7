"""How the exact top-k schedules its work: knobs that change its speed, never its result."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TopKConfig"]


@dataclass(frozen=True)
class TopKConfig:
    """Knobs of :func:`~stylesearch.search.topk.soft_filter_topk` and
    :func:`~stylesearch.search.topk.hard_filter_topk`: they change speed, never the result
    (why the defaults are what they are: docs/performance.md, "Why the top-k code is shaped as
    it is").
    """

    #: a hard filter allowing at most ``max(scan_fraction * N, scan_rows)`` rows is answered by
    #: scoring its rows (``p`` first) rather than by the coarse partition's bounds; the
    #: cosine-only ``hard_filter_topk`` uses ``scan_fraction`` alone
    scan_fraction: float = 0.05
    scan_rows: int = 1600
    #: rows scanned cluster by cluster (best bound first) before the attribute lists
    coarse_rows: int = 1024
    #: first attribute-list block (entries); later blocks double
    block: int = 2048
    #: first take the backend's ``coarse_graph_depth`` nearest rows (0: none) and cap every
    #: other row's cosine bound at the last one's (exact with the exact backend, up to the
    #: graph's recall with faiss): far rows then need a higher ``p`` to be read. ``None``:
    #: ``graph_depth`` with a graph backend on ``graph_min_count`` rows or more, else 0 (on a
    #: small catalog the coarse bounds alone are faster)
    coarse_graph_depth: int | None = None
    graph_depth: int = 600
    graph_min_count: int = 500_000
    #: clusters put in bound order up front (the rest sorted only when reached: few clusters
    #: are ever scanned, so a full sort would be wasted)
    cluster_head: int = 64

    def __post_init__(self) -> None:
        if self.block < 1 or self.cluster_head < 1 or self.scan_rows < 0:
            raise ValueError(f"invalid TopKConfig: {self}")
