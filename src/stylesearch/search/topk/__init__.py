"""Exact top-k for the soft-filter score, and hard metadata filters.

Modules, one idea each:

* :mod:`.soft`: :func:`soft_filter_topk`, which picks the path for a query;
* :mod:`.coarse`: the path over the index's coarse partition (cluster cosine cones and
  per-cluster ``p`` bounds, plus the wanted words' sorted lists);
* :mod:`.lists`: incremental reading of a word's sorted attribute list;
* :mod:`.hard`: hard metadata filters (:func:`hard_filter_mask`, :func:`hard_filter_topk`);
* :mod:`.probs`: ``p`` of rows, in the oracle's arithmetic (:func:`attribute_probs`);
* :mod:`.results`: :class:`TopK`, :class:`TopKStats`, the running top-k and the bound test;
* :mod:`.config`: :class:`TopKConfig`, the knobs (speed only, never the result).

Tests judge every path against :func:`stylesearch.testing.oracle.exact_topk`.
"""

from __future__ import annotations

from stylesearch.search.topk.config import TopKConfig
from stylesearch.search.topk.hard import hard_filter_mask, hard_filter_topk
from stylesearch.search.topk.probs import attribute_probs, index_removal_scale
from stylesearch.search.topk.results import TopK, TopKStats
from stylesearch.search.topk.soft import soft_filter_topk

__all__ = [
    "TopKConfig",
    "TopK",
    "TopKStats",
    "attribute_probs",
    "hard_filter_mask",
    "hard_filter_topk",
    "index_removal_scale",
    "soft_filter_topk",
]
